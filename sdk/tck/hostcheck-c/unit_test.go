// Package hostcheckc holds the Go test of the C hostcheck guest's own logic
// (tests/unit.c, built natively). The guest's C sources are in src/ and its
// test in tests/, directories without Go files, because Go refuses a
// package directory holding .c files without cgo. The guest itself is run
// through a real gateway by host/server's TestTCKCGuest; see README.md.
package hostcheckc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNativeUnitTests builds tests/unit.c with the guest's sources and
// sdk/c/wasmgate.c natively (with AddressSanitizer and UBSan when they
// link) and runs it. It needs clang ($WASMGATE_CLANG, else clang on PATH)
// and skips without it, except with CI=true.
func TestNativeUnitTests(t *testing.T) {
	cc := os.Getenv("WASMGATE_CLANG")
	if cc == "" {
		p, err := exec.LookPath("clang")
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("clang not installed (CI=true: it must be installed)")
			}
			t.Skip("clang not installed (apt-get install clang)")
		}
		cc = p
	}
	sources, err := filepath.Glob(filepath.Join("src", "*.c"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no sources in src (%v)", err)
	}
	exe := filepath.Join(t.TempDir(), "unit")
	args := append([]string{"-g", "-O1", "-Wall", "-Wextra", "-Werror", "-I", filepath.Join("..", "..", "c"), "-I", "src",
		"-o", exe, filepath.Join("tests", "unit.c"), filepath.Join("..", "..", "c", "wasmgate.c")}, sources...)
	san := append([]string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all"}, args...)
	if out, err := exec.Command(cc, san...).CombinedOutput(); err != nil {
		t.Logf("without sanitizers (%v: %s)", err, strings.TrimSpace(string(out)))
		if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(exe).CombinedOutput()
	if err != nil || !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("tests/unit.c: %v\n%s", err, out)
	}
}
