package main

import (
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/host/wasm"
)

// TestPluginCheckEngine: -engine picks the engine a module is compiled
// with, and the report names it.
func TestPluginCheckEngine(t *testing.T) {
	paths := examplePaths(t)
	for _, bad := range [][]string{{"-engine", "v8"}, {"-engine", "wasmtime", "-interpreter"}} {
		if code, _, stderr := runCheck(t, append(bad, paths[0])...); code != 2 || !strings.Contains(stderr, "-") {
			t.Errorf("%v: exit %d, stderr %q", bad, code, stderr)
		}
	}
	if !wasm.WasmtimeAvailable() {
		code, _, stderr := runCheck(t, "-engine", "wasmtime", paths[0])
		if code != 2 || !strings.Contains(stderr, "wasmtime needs a build with cgo (CGO_ENABLED=1)") {
			t.Errorf("wasmtime without cgo: exit %d, stderr %q", code, stderr)
		}
		return
	}
	code, stdout, stderr := runCheck(t, append([]string{"-engine", "wasmtime"}, paths...)...)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	for _, want := range []string{"engine        wasmtime, compiled in", "interruption  fuel"} {
		if n := strings.Count(stdout, want); n != len(paths) {
			t.Errorf("%q %d times, want %d:\n%s", want, n, len(paths), stdout)
		}
	}
	code, stdout, _ = runCheck(t, "-engine", "wasmtime", "-config", `{}`, paths[0])
	if code != 0 || !strings.Contains(stdout, "on_init") {
		t.Errorf("instantiated on wasmtime: exit %d\n%s", code, stdout)
	}
}
