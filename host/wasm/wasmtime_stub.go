//go:build !(cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64)))

package wasm

import (
	"context"
	"errors"
	"runtime"

	"github.com/wasmgate/wasmgate/host/abi"
)

// This build has no wasmtime engine: wasmtime-go needs cgo, and ships its
// library for linux and darwin on amd64 and arm64, and windows on amd64.

// WasmtimeAvailable reports whether this build has the wasmtime engine.
func WasmtimeAvailable() bool { return false }

// errWasmtimeUnavailable says why this build has no wasmtime.
var errWasmtimeUnavailable = func() error {
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64":
		return errors.New("wasmtime needs a build with cgo (CGO_ENABLED=1)")
	}
	return errors.New("wasmtime is not available on " + runtime.GOOS + "/" + runtime.GOARCH)
}()

// WasmtimeOptions configure the wasmtime engine.
type WasmtimeOptions struct {
	CacheDir  string
	Host      []abi.Func
	PoolSlots uint32
}

// WasmtimeEngine is the wasmtime engine, absent from this build.
type WasmtimeEngine struct{}

// NewWasmtimeEngine fails: this build has no wasmtime.
func NewWasmtimeEngine(WasmtimeOptions) (*WasmtimeEngine, error) { return nil, errWasmtimeUnavailable }

// Name implements Engine.
func (*WasmtimeEngine) Name() string { return "wasmtime" }

// Compile implements Engine.
func (*WasmtimeEngine) Compile(context.Context, []byte) (CompiledModule, error) {
	return nil, errWasmtimeUnavailable
}

// Close implements Engine.
func (*WasmtimeEngine) Close(context.Context) error { return nil }

// LiveModules is the number of compiled modules not yet closed.
func (*WasmtimeEngine) LiveModules() int64 { return 0 }

// LiveInstances is the number of instances not yet closed.
func (*WasmtimeEngine) LiveInstances() int64 { return 0 }

// Compilations is the number of Compile calls.
func (*WasmtimeEngine) Compilations() int64 { return 0 }

// CacheHits is the number of Compile calls served from the disk cache.
func (*WasmtimeEngine) CacheHits() int64 { return 0 }
