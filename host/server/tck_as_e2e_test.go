package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/sdk/tck"
)

// TestTCKASGuest runs the conformance kit (sdk/tck) with its AssemblyScript
// guest, sdk/tck/hostcheck-as, through a real gateway, as
// TestPluginHostFunctions does with the Go one: the same runner, the same
// assertions. It builds the guest with the AssemblyScript SDK's pinned
// compiler (sdk/assemblyscript/node_modules, installed by npm ci as the
// SDK's own tests do) and skips without node, except with CI=true.
func TestTCKASGuest(t *testing.T) {
	module := buildASHostcheck(t)
	runKitOnEngines(t, tck.ASGuest(module))
}

// asSDKDir is sdk/assemblyscript: its package.json pins the compiler, its
// node_modules holds it, and the build runs there.
var asSDKDir = filepath.Join("..", "..", "sdk", "assemblyscript")

// buildASHostcheck builds sdk/tck/hostcheck-as with the build line of
// tck.ASGuest into a temporary directory and returns the module's path.
// It installs the SDK's locked packages first (npm ci), unless
// node_modules already holds exactly them, as sdk/assemblyscript/astest
// does, so that a machine without the registry builds offline once
// installed. A build takes about ten seconds.
func buildASHostcheck(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		asSkipOrFail(t, "node not installed (node 20 and npm build the AssemblyScript SDK)")
	}
	if ok, why := asLockInstalled(); !ok {
		if _, err := exec.LookPath("npm"); err != nil {
			asSkipOrFail(t, "npm not installed, and sdk/assemblyscript/node_modules "+why)
		}
		if out, err := asRun(5*time.Minute, "npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"); err != nil {
			t.Fatalf("node_modules %s, and npm ci (in %s) failed: %v\n%s", why, asSDKDir, err, out)
		}
		if ok, why := asLockInstalled(); !ok {
			t.Fatalf("after npm ci, sdk/assemblyscript/node_modules %s", why)
		}
	}
	out := filepath.Join(t.TempDir(), "hostcheck-as.wasm")
	asc, err := filepath.Abs(filepath.Join(asSDKDir, "node_modules", ".bin", "asc"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{filepath.Join("..", "tck", "hostcheck-as", "index.ts"),
		"--config", filepath.Join("..", "tck", "hostcheck-as", "asconfig.json"), "--target", "release", "-o", out}
	if b, err := asRun(3*time.Minute, asc, args...); err != nil {
		t.Fatalf("asc %s (in %s): %v\n%s", strings.Join(args, " "), asSDKDir, err, b)
	}
	return out
}

// asLockInstalled reports whether every package of the SDK's
// package-lock.json is installed at its locked version, and if not, why
// (sdk/assemblyscript/astest's check).
func asLockInstalled() (bool, string) {
	b, err := os.ReadFile(filepath.Join(asSDKDir, "package-lock.json"))
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
		b, err := os.ReadFile(filepath.Join(asSDKDir, filepath.FromSlash(path), "package.json"))
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
	if _, err := os.Stat(filepath.Join(asSDKDir, "node_modules", ".bin", "asc")); err != nil {
		return false, "lacks .bin/asc"
	}
	return true, ""
}

// asRun runs a command in asSDKDir, bounded in time, and returns its
// combined output.
func asRun(bound time.Duration, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = asSDKDir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %v: %w", bound, err)
	}
	return out.Bytes(), err
}

// asSkipOrFail skips for a missing toolchain, except in CI (CI=true),
// where the Makefile installs it and its absence is a failure.
func asSkipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: it must be installed)", why)
	}
	t.Skip(why)
}
