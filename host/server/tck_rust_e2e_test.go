package server

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck"
)

// TestConformanceRustGuest runs the conformance kit (sdk/tck) with its Rust
// guest, sdk/tck/hostcheck-rust, through a real gateway, as
// TestPluginHostFunctions does with the Go one: the same runner, the same
// assertions. It builds the guest with Debian's Rust toolchain (as
// sdk/rust's tests do) and skips without it, except with CI=true.
func TestConformanceRustGuest(t *testing.T) {
	module := buildRustHostcheck(t)
	runKitOnEngines(t, tck.RustGuest(module))
}

// buildRustHostcheck builds sdk/tck/hostcheck-rust for wasm32-wasi with
// /usr/bin/cargo and /usr/bin/rustc (WASMGATE_CARGO and WASMGATE_RUSTC
// point elsewhere) and returns the module's path. cargo's target directory
// is kept across runs, like GOCACHE, in $WASMGATE_TEST_CACHE/rust-target
// or $TMPDIR/wasmgate-test-rust-target (sdk/rust's tests use the same), so
// that only a change rebuilds (a cold build takes about 30 s).
func buildRustHostcheck(t *testing.T) string {
	t.Helper()
	cargo, rustc := "/usr/bin/cargo", "/usr/bin/rustc"
	if v := os.Getenv("WASMGATE_CARGO"); v != "" {
		cargo = v
	}
	if v := os.Getenv("WASMGATE_RUSTC"); v != "" {
		rustc = v
	}
	for _, p := range []string{cargo, rustc} {
		if _, err := os.Stat(p); err != nil {
			rustSkipOrFail(t, p+" not installed (apt-get install rustc cargo libstd-rust-dev-wasm32 lld)")
		}
	}
	out, err := exec.Command(rustc, "--print", "target-libdir", "--target", "wasm32-wasi").Output()
	if err != nil {
		rustSkipOrFail(t, rustc+" has no wasm32-wasi target (apt-get install libstd-rust-dev-wasm32)")
	}
	if m, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "libstd-*.rlib")); len(m) == 0 {
		rustSkipOrFail(t, "no wasm32-wasi standard library in "+strings.TrimSpace(string(out))+" (apt-get install libstd-rust-dev-wasm32)")
	}
	target := filepath.Join(os.TempDir(), "wasmgate-test-rust-target")
	if d := os.Getenv("WASMGATE_TEST_CACHE"); d != "" {
		target = filepath.Join(d, "rust-target")
	}
	target, err = filepath.Abs(filepath.Join(target, "tck-hostcheck"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cargo, "build", "--offline", "--release", "--target", "wasm32-wasi", "--target-dir", target)
	cmd.Dir = filepath.Join("..", "..", "sdk", "tck", "hostcheck-rust")
	cmd.Env = append(os.Environ(), "RUSTC="+rustc, "PATH=/usr/bin:"+os.Getenv("PATH"), "CARGO_TERM_COLOR=never")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cargo build (in %s): %v\n%s", cmd.Dir, err, out)
	}
	return filepath.Join(target, "wasm32-wasi", "release", "hostcheck.wasm")
}

// rustSkipOrFail skips for a missing toolchain, except in CI (CI=true),
// where the Makefile installs it and its absence is a failure.
func rustSkipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: it must be installed)", why)
	}
	t.Skip(why)
}
