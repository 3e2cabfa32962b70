//go:build !(cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64)))

package wasm

import (
	"context"
	"strings"
	"testing"
)

// TestWasmtimeUnavailable: without cgo the gateway still builds, wazero
// only, and asking for wasmtime says why it cannot have it.
func TestWasmtimeUnavailable(t *testing.T) {
	if WasmtimeAvailable() {
		t.Fatal("wasmtime available in a build without it")
	}
	want := "wasmtime needs a build with cgo (CGO_ENABLED=1)"
	if _, err := NewRuntime(Options{DefaultEngine: EngineWasmtime, Log: quiet}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("runtime on wasmtime: %v, want %q", err, want)
	}
	r := newTestRuntime(t, Options{})
	if _, err := r.LoadOn(context.Background(), EngineWasmtime, "p", fixture(t, "noop")); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("load on wasmtime: %v, want %q", err, want)
	}
	b := bind(t, r, fixture(t, "noop"), BindingConfig{})
	if _, err := serve(t, b, "/"); err != nil {
		t.Errorf("wazero without cgo: %v", err)
	}
}
