package server

import (
	"fmt"
	"testing"

	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

// runKitOnEngines runs the conformance kit with guest on every engine of
// this build: wazero, and wasmtime when built with cgo. A guest or an
// engine that differs fails.
func runKitOnEngines(t *testing.T, guest tck.Guest) {
	for _, engine := range e2eEngines() {
		t.Run(engine, func(t *testing.T) {
			tck.Run(t, guest, func(t *testing.T, config string) tck.Gateway {
				return kitGateway{startGateway(t, 1000, fmt.Sprintf("plugin_runtime: {cache_dir: %q, engine: %s}\n", e2eCacheDir(t), engine)+config)}
			})
		})
	}
}

// e2eEngines are the engines of this build: wazero, and wasmtime when
// built with cgo.
func e2eEngines() []string {
	if wasm.WasmtimeAvailable() {
		return []string{"wazero", "wasmtime"}
	}
	return []string{"wazero"}
}
