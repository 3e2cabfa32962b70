package wasm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmgate/wasmgate/host/abi"
)

// TestHostStubsCoverTheABI: the module Wizer links a guest against
// exports every host function with the ABI's signature.
func TestHostStubsCoverTheABI(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stubs.wat")
	if err := os.WriteFile(path, []byte(hostStubs()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, wat(t, path))
	if err != nil {
		t.Fatal(err)
	}
	exports := cm.ExportedFunctions()
	for _, f := range abi.Functions() {
		def, ok := exports[f.Name]
		if !ok {
			t.Errorf("no stub for %s", f.Name)
			continue
		}
		if got, want := fmt.Sprint(def.ParamTypes(), def.ResultTypes()), fmt.Sprint(valueTypes(f.Params), valueTypes(f.Results)); got != want {
			t.Errorf("stub %s: %s, want %s", f.Name, got, want)
		}
	}
	if len(exports) != len(abi.Functions()) {
		t.Errorf("%d stubs for %d host functions", len(exports), len(abi.Functions()))
	}
}

func valueTypes(ts []abi.ValueType) []byte {
	out := make([]byte, len(ts))
	for i, v := range ts {
		out[i] = byte(v)
	}
	return out
}

func TestSnapshotRefusals(t *testing.T) {
	dir := t.TempDir()
	notReactor := filepath.Join(dir, "plain.wasm")
	if err := os.WriteFile(notReactor, fixture(t, "noop"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Snapshot("/nonexistent/wizer", notReactor, filepath.Join(dir, "out.wasm")); err == nil || !strings.Contains(err.Error(), "exports no _initialize: there is nothing to pre-initialize") {
		t.Errorf("a module without _initialize: %v", err)
	}
	reactor := filepath.Join(dir, "reactor.wasm")
	if err := os.WriteFile(reactor, fixture(t, "reactor"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WIZER", "")
	t.Setenv("PATH", dir)
	t.Chdir(dir)
	err := Snapshot("", reactor, filepath.Join(dir, "out.wasm"))
	if err == nil || !strings.Contains(err.Error(), "wizer not found") || !strings.Contains(err.Error(), "npm install -g "+WizerPackage) {
		t.Errorf("without wizer: %v", err)
	}
	err = Snapshot("/nonexistent/wizer", reactor, filepath.Join(dir, "out.wasm"))
	if err == nil || !strings.Contains(err.Error(), "wizer:") {
		t.Errorf("a wizer that does not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out.wasm")); !os.IsNotExist(err) {
		t.Errorf("a failed snapshot left its output: %v", err)
	}
}
