package wasm

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/wasmgate/wasmgate/host/abi"
)

// WizerPackage is the Wizer (npm) that Snapshot is tested with.
const WizerPackage = "@bytecodealliance/wizer@10.0.0"

// Snapshot runs Wizer on the reactor at in and writes the pre-initialized
// module to out, checked as the gateway will load it.
func Snapshot(wizerPath, in, out string) error {
	code, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	info, err := Inspect(code)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if !info.Reactor {
		return fmt.Errorf("%s exports no _initialize: there is nothing to pre-initialize", in)
	}
	wizer, err := findWizer(wizerPath)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wasmgate-snapshot-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	stubs := filepath.Join(dir, "wasmgate-stubs.wat")
	if err := os.WriteFile(stubs, []byte(hostStubs()), 0o600); err != nil {
		return err
	}
	tmp := out + ".tmp"
	cmd := exec.Command(wizer, "--allow-wasi", "--inherit-stdio", "false", "--inherit-env", "false",
		"--init-func", "_initialize", "--preload", abi.ModuleName+"="+stubs, "-o", tmp, in)
	if msg, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("wizer: %v\n%s", err, msg)
	}
	snap, err := os.ReadFile(tmp)
	if err == nil {
		var si ModuleInfo
		si, err = Inspect(snap)
		if err == nil && si.Reactor {
			err = errors.New("the snapshot still exports _initialize")
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("the snapshot of %s is not a module the gateway accepts: %w", in, err)
	}
	return os.Rename(tmp, out)
}

// findWizer returns the wizer binary: the flag's, $WIZER, on PATH, or the
// one `make tools` installs in bin/tools.
func findWizer(flagPath string) (string, error) {
	for _, p := range []string{flagPath, os.Getenv("WIZER")} {
		if p != "" {
			return p, nil
		}
	}
	if p, err := exec.LookPath("wizer"); err == nil {
		return p, nil
	}
	local := filepath.Join("bin", "tools", "node_modules", ".bin", "wizer")
	if _, err := os.Stat(local); err == nil {
		return local, nil
	}
	return "", fmt.Errorf("wizer not found (-wizer, $WIZER, PATH, %s): install it with `npm install -g %s`, or run `make tools` in the repository", local, WizerPackage)
}

// hostStubs is a module, in the text format, that exports every host
// function of the ABI answering NOT_ALLOWED: what Wizer links the guest
// against while _initialize runs.
func hostStubs() string {
	var b strings.Builder
	b.WriteString("(module\n")
	for _, f := range abi.Functions() {
		fmt.Fprintf(&b, "  (func (export %q)", f.Name)
		if len(f.Params) > 0 {
			b.WriteString(" (param")
			for _, p := range f.Params {
				b.WriteString(" " + p.String())
			}
			b.WriteString(")")
		}
		if len(f.Results) == 1 {
			fmt.Fprintf(&b, " (result %[1]s) (%[1]s.const %d)", f.Results[0], abi.ErrNotAllowed)
		}
		b.WriteString(")\n")
	}
	b.WriteString(")\n")
	return b.String()
}
