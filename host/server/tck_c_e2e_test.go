package server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck"
)

// TestTCKCGuest runs the conformance kit (sdk/tck) with its C guest,
// sdk/tck/hostcheck-c, through a real gateway, as TestPluginHostFunctions
// does with the Go one: the same runner, the same assertions. It builds
// the guest with Debian's clang, lld and wasi-libc (as sdk/c's tests do)
// and skips without them, except with CI=true.
func TestTCKCGuest(t *testing.T) {
	module := buildCHostcheck(t)
	runKitOnEngines(t, tck.CGuest(module))
}

// cToolchain is what to install for buildCHostcheck (Debian 12).
const cToolchain = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"

// buildCHostcheck builds sdk/tck/hostcheck-c with sdk/c/wasmgate.c into a
// WASI reactor with sdk/c/README.md's line (every warning an error) and
// returns the module's path. The compiler is $WASMGATE_CLANG, else clang
// on PATH; a build takes a second or two.
func buildCHostcheck(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("WASMGATE_CLANG")
	if cc == "" {
		p, err := exec.LookPath("clang")
		if err != nil {
			cSkipOrFail(t, "clang not installed ("+cToolchain+")")
		}
		cc = p
	}
	root := filepath.Join("..", "..")
	sources, err := filepath.Glob(filepath.Join(root, "sdk", "tck", "hostcheck-c", "src", "*.c"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no C sources in sdk/tck/hostcheck-c/src (%v)", err)
	}
	out := filepath.Join(t.TempDir(), "hostcheck-c.wasm")
	args := []string{"--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wl,--strip-debug",
		"-Wall", "-Wextra", "-Werror", "-I", filepath.Join(root, "sdk", "c"), "-o", out}
	args = append(append(args, sources...), filepath.Join(root, "sdk", "c", "wasmgate.c"))
	if b, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		// A clang without the wasm32 target, wasi-libc or lld cannot link a
		// reactor at all: that is a missing toolchain, not a broken guest.
		probe := exec.Command(cc, "--target=wasm32-wasi", "-mexec-model=reactor", "-o", filepath.Join(t.TempDir(), "probe.wasm"), "-x", "c", "-")
		probe.Stdin = strings.NewReader("#include <stdio.h>\nint x(void) { return printf(\"\"); }\n")
		if pb, perr := probe.CombinedOutput(); perr != nil {
			cSkipOrFail(t, fmt.Sprintf("%s cannot build a WASI reactor (%s): %v\n%s", cc, cToolchain, perr, pb))
		}
		t.Fatalf("%s %v: %v\n%s", cc, args, err, b)
	}
	return out
}

// cSkipOrFail skips for a missing toolchain, except in CI (CI=true),
// where the Makefile installs it and its absence is a failure.
func cSkipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: it must be installed)", why)
	}
	t.Skip(why)
}
