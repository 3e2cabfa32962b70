package astest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// The cost of a module outside the gateway: wazero's compiler, every host
// function a stub answering 0 except config_get, which hands over config.
// (The gateway's own figures, with its host functions, sandbox and pools,
// are TestGateway's "cold start" log line and bench/.)
//
//	go test -run '^$' -bench . ./sdk/assemblyscript/astest/

// rawWat is the hand-written plugin, the smallest possible cold start: the
// reference the AssemblyScript modules are measured beside (side by side
// in one run, as this machine class is noisy). It is built by
// plugins/raw-wat/build.sh.
const rawWat = "../../../plugins/raw-wat/plugin.wasm"

// stubRuntime returns a runtime with a "wasmgate" module of stubs and the
// compiled module (an AssemblyScript module by name, or a path).
func stubRuntime(b *testing.B, name string, config []byte) (wazero.Runtime, wazero.CompiledModule) {
	b.Helper()
	path := name
	if !strings.HasSuffix(name, ".wasm") {
		path = wasmPath(b, name)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		b.Skip(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	b.Cleanup(func() { r.Close(ctx) })
	hb := r.NewHostModuleBuilder(abi.ModuleName)
	for _, f := range abi.Functions() {
		params := make([]api.ValueType, len(f.Params))
		for i, p := range f.Params {
			params[i] = api.ValueType(p)
		}
		results := make([]api.ValueType, len(f.Results))
		for i, p := range f.Results {
			results[i] = api.ValueType(p)
		}
		fn := api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
			if len(stack) > 0 {
				stack[0] = 0
			}
		})
		if f.Name == abi.FuncConfigGet {
			fn = func(ctx context.Context, m api.Module, stack []uint64) {
				ptr, n := uint32(stack[0]), uint32(stack[1])
				m.Memory().Write(ptr, config[:min(int(n), len(config))])
				stack[0] = uint64(len(config))
			}
		}
		hb.NewFunctionBuilder().WithGoModuleFunction(fn, params, results).Export(f.Name)
	}
	if _, err := hb.Instantiate(ctx); err != nil {
		b.Fatal(err)
	}
	compiled, err := r.CompileModule(ctx, bin)
	if err != nil {
		b.Fatal(err)
	}
	return r, compiled
}

// BenchmarkColdStart: instantiate, _initialize and on_init, then close: a
// request's overhead in mode fresh; raw-wat beside them for the ratio.
func BenchmarkColdStart(b *testing.B) {
	for _, tc := range []struct{ name, config string }{
		{rawWat, `{}`},
		{"headers", `{"request":{"X-A":"1"},"response":{"X-B":"2"}}`},
		{"api-key", `{"keys":[{"consumer":"alice","key":"alice-key-0123456789","scope":"orders:read"}]}`},
	} {
		label := tc.name
		if label == rawWat {
			label = "raw-wat"
		}
		b.Run(label, func(b *testing.B) {
			r, compiled := stubRuntime(b, tc.name, []byte(tc.config))
			ctx := context.Background()
			cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize")
			for b.Loop() {
				m, err := r.InstantiateModule(ctx, compiled, cfg)
				if err != nil {
					b.Fatal(err)
				}
				res, err := m.ExportedFunction("on_init").Call(ctx, uint64(len(tc.config)))
				if err != nil || res[0] != 0 {
					b.Fatalf("on_init: %v %v", res, err)
				}
				m.Close(ctx)
			}
		})
	}
}

// BenchmarkOnRequest: one on_request of a warm instance (mode pooled),
// the collection after the hook included.
func BenchmarkOnRequest(b *testing.B) {
	config := []byte(`{"request":{"X-A":"1"}}`)
	r, compiled := stubRuntime(b, "headers", config)
	ctx := context.Background()
	m, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		b.Fatal(err)
	}
	if res, err := m.ExportedFunction("on_init").Call(ctx, uint64(len(config))); err != nil || res[0] != 0 {
		b.Fatalf("on_init: %v %v", res, err)
	}
	onRequest := m.ExportedFunction("on_request")
	for b.Loop() {
		if res, err := onRequest.Call(ctx); err != nil || res[0] != 0 {
			b.Fatalf("on_request: %v %v", res, err)
		}
	}
}
