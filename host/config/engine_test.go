package config

import (
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/host/wasm"
)

func TestEngineKeys(t *testing.T) {
	c, err := Parse("c.yaml", []byte("plugins: [{name: p, module: p.wasm}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if rt := c.Runtime; rt.Engine != "wazero" || rt.WazeroMode != "compiler" || c.Plugins[0].Engine != "" {
		t.Errorf("defaults: engine %q, wazero_mode %q, plugin engine %q", rt.Engine, rt.WazeroMode, c.Plugins[0].Engine)
	}
	wasmtimeErr := []string{`2:26: plugin_runtime.engine: ` + wasmtimeMissing, `5:39: plugin "q": engine: ` + wasmtimeMissing}
	if wasmtimeBuilt {
		wasmtimeErr = nil
	}
	tests := []struct {
		name string
		yaml string
		errs []string
	}{
		{"wazero interpreter", `
plugin_runtime: {engine: wazero, wazero_mode: interpreter}
plugins:
  - {name: p, module: p.wasm}
  - {name: q, module: q.wasm, engine: wazero}
`, nil},
		{"wasmtime", `
plugin_runtime: {engine: wasmtime}
plugins:
  - {name: p, module: p.wasm}
  - {name: q, module: q.wasm, engine: wasmtime}
`, wasmtimeErr},
		{"wazero modes moved", `
plugin_runtime: {engine: interpreter}
plugins:
  - {name: p, module: p.wasm}
  - {name: q, module: q.wasm, engine: compiler}
`, []string{
			`2:26: plugin_runtime.engine: "interpreter" is a wazero mode: write engine: wazero (or leave it out) and plugin_runtime.wazero_mode: interpreter`,
			`5:39: plugin "q": engine: "compiler" is a wazero mode`,
		}},
		{"unknown", `
plugin_runtime: {engine: v8, wazero_mode: jit}
plugins:
  - {name: p, module: p.wasm, engine: wasm3}
`, []string{`2:26: bad engine "v8" (want one of: wazero, wasmtime)`, `2:43: bad wazero_mode "jit"`, `4:39: bad engine "wasm3"`}},
		{"wasmtime pool", `
plugin_runtime: {wasmtime_pool_slots: 1000}
`, nil},
		{"wasmtime pool too large", `
plugin_runtime: {wasmtime_pool_slots: 100000}
`, []string{`2:39: plugin_runtime.wasmtime_pool_slots must be between 0 and 10000`}},
		{"wasmtime pool negative", `
plugin_runtime: {wasmtime_pool_slots: -1}
`, []string{`2:39: plugin_runtime.wasmtime_pool_slots must be between 0 and 10000`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tc.yaml))
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.errs)
			}
			got := err.Error()
			for _, want := range tc.errs {
				if !strings.Contains(got, "c.yaml:"+want) {
					t.Errorf("missing %q in:\n%s", want, got)
				}
			}
			if n := strings.Count(got, "\n") + 1; n != len(tc.errs) {
				t.Errorf("%d errors, want %d:\n%s", n, len(tc.errs), got)
			}
		})
	}
}

// TestWasmtimeBuilt: the config knows the builds with wasmtime as
// host/wasm does (their build constraints are the same).
func TestWasmtimeBuilt(t *testing.T) {
	if wasmtimeBuilt != wasm.WasmtimeAvailable() {
		t.Errorf("config says wasmtime built: %v, host/wasm says %v", wasmtimeBuilt, wasm.WasmtimeAvailable())
	}
	if !wasmtimeBuilt {
		_, err := wasm.NewWasmtimeEngine(wasm.WasmtimeOptions{})
		if err == nil || err.Error() != wasmtimeMissing {
			t.Errorf("host/wasm says %v, config %q", err, wasmtimeMissing)
		}
	}
}
