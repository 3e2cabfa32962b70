package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/sdk/assemblyscript/asnpm"
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
// It installs the SDK's locked packages first (asnpm.Install, as
// sdk/assemblyscript/astest does), so that a machine without the registry
// builds offline once installed. A build takes about ten seconds.
func buildASHostcheck(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		asSkipOrFail(t, "node not installed (node 20 and npm build the AssemblyScript SDK)")
	}
	if ok, why := asnpm.LockInstalled(asSDKDir); !ok {
		if _, err := exec.LookPath("npm"); err != nil {
			asSkipOrFail(t, "npm not installed, and sdk/assemblyscript/node_modules "+why)
		}
		if err := asnpm.Install(asSDKDir, 5*time.Minute); err != nil {
			t.Fatal(err)
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
