package server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

// wizerPath finds Wizer as `make tools` installs it, or on PATH; without
// it the test is skipped (failed with CI=true).
func wizerPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("wizer"); err == nil {
		return p
	}
	p, err := filepath.Abs(filepath.Join("..", "..", "bin", "tools", "node_modules", ".bin", "wizer"))
	if err == nil {
		if _, err = os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("wizer not installed (make tools): %v", err)
	}
	t.Skipf("wizer not installed (make tools): %v", err)
	return ""
}

// TestSnapshotPassesTheKit: the Go conformance guest pre-initialized with
// Wizer (wasmgate plugin snapshot) behaves as the guest it was made from,
// on every host function, in pooled and fresh mode. Its _initialize ran at
// build time, so the kit's checks of what _initialize sees are left out.
func TestSnapshotPassesTheKit(t *testing.T) {
	wizer := wizerPath(t)
	snap := filepath.Join(t.TempDir(), "hostcheck-snap.wasm")
	if err := wasm.Snapshot(wizer, pluginPath(t, "hostcheck"), snap); err != nil {
		t.Fatal(err)
	}
	guest := tck.GoGuest(snap)
	guest.Initialize = false
	tck.Run(t, guest, func(t *testing.T, config string) tck.Gateway {
		return kitGateway{startGateway(t, 1000, fmt.Sprintf("plugin_runtime: {cache_dir: %q}\n", e2eCacheDir(t))+config)}
	})
}
