// Package asnpm makes sure the AssemblyScript SDK's locked npm packages
// (package-lock.json: the pinned compiler) are installed, for the Go tests
// that build AssemblyScript modules: sdk/assemblyscript/astest and the
// conformance test of host/server. It has no other dependency, so both can
// import it.
package asnpm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Install runs npm ci in dir (the SDK's directory), unless node_modules
// already holds exactly the locked versions: a machine without the
// registry then builds once they are installed. bound limits npm ci.
func Install(dir string, bound time.Duration) error {
	ok, why := LockInstalled(dir)
	if ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("still running after %v: %w", bound, err)
		}
		return fmt.Errorf("node_modules %s, and npm ci (in %s) failed: %w\n%s", why, dir, err, out.Bytes())
	}
	if ok, why := LockInstalled(dir); !ok {
		return fmt.Errorf("after npm ci, %s/node_modules %s", dir, why)
	}
	return nil
}

// LockInstalled reports whether every package of dir's package-lock.json
// is installed at its locked version, and if not, why.
func LockInstalled(dir string) (bool, string) {
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return false, "cannot be checked: " + err.Error()
	}
	var lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		return false, "cannot be checked: package-lock.json: " + err.Error()
	}
	n := 0
	for path, p := range lock.Packages {
		if !strings.HasPrefix(path, "node_modules/") {
			continue
		}
		n++
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path), "package.json"))
		if err != nil {
			return false, "lacks " + path
		}
		var pkg struct {
			Version string `json:"version"`
		}
		if json.Unmarshal(b, &pkg) != nil || pkg.Version != p.Version {
			return false, fmt.Sprintf("has %s %s, the lock %s", path, pkg.Version, p.Version)
		}
	}
	if n == 0 {
		return false, "cannot be checked: package-lock.json lists no packages"
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", ".bin", "asc")); err != nil {
		return false, "lacks .bin/asc"
	}
	return true, ""
}
