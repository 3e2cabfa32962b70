package wasm

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmgate/wasmgate/host/abi"
)

// checkout acquires an instance for a benchmark and releases it at the end.
func checkout(b *testing.B, bd *Binding) *Instance {
	inst, err := bd.Acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bd.Release(inst, false) })
	return inst
}

// BenchmarkHostCall: a guest calling a cheap host function (request_method
// asking for the size only) 1000 times per hook; ns/hostcall is the cost of
// one guest→host→guest round trip with the Call lookup.
func BenchmarkHostCall(b *testing.B) {
	r := newTestRuntime(b, Options{})
	bd := bind(b, r, fixture(b, "hostcall"), BindingConfig{CallTimeout: time.Second})
	inst := checkout(b, bd)
	req, resp := request("/")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := inst.OnRequest(req, resp, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/hostcall")
}

// BenchmarkCallLookup compares ways for a host function to find the
// running instance's abi.Call: the runtime's type assertion on its own
// context, a context value, and a map keyed by the calling module.
func BenchmarkCallLookup(b *testing.B) {
	var cc callCtx
	call := new(abi.Call)
	cc.init(call)
	var ctx context.Context = &cc
	b.Run("ctx-assert", func(b *testing.B) {
		for b.Loop() {
			if callOf(ctx) != call {
				b.Fatal("lookup")
			}
		}
	})
	vctx := context.WithValue(context.Background(), callKey{}, call)
	b.Run("ctx-value", func(b *testing.B) {
		for b.Loop() {
			if callOf(vctx) != call {
				b.Fatal("lookup")
			}
		}
	})
	var m sync.Map
	key := new(int) // stands for the api.Module of the caller
	m.Store(key, call)
	b.Run("sync-map", func(b *testing.B) {
		for b.Loop() {
			if v, _ := m.Load(key); v.(*abi.Call) != call {
				b.Fatal("lookup")
			}
		}
	})
	var mu sync.RWMutex
	mm := map[*int]*abi.Call{key: call}
	b.Run("rwmutex-map", func(b *testing.B) {
		for b.Loop() {
			mu.RLock()
			c := mm[key]
			mu.RUnlock()
			if c != call {
				b.Fatal("lookup")
			}
		}
	})
}

// BenchmarkAcquireRelease: pool checkout and return of a warm instance.
func BenchmarkAcquireRelease(b *testing.B) {
	r := newTestRuntime(b, Options{})
	bd := bind(b, r, fixture(b, "noop"), BindingConfig{PoolMin: 4, PoolMax: 16})
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			inst, err := bd.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			bd.Release(inst, false)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				inst, err := bd.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				bd.Release(inst, false)
			}
		})
	})
}

// BenchmarkNoopChain: a no-op WAT plugin on the request path; "hook" is one
// OnRequest on a held instance, "request" the whole per-request cost
// (acquire, on_request, on_response, release).
func BenchmarkNoopChain(b *testing.B) {
	r := newTestRuntime(b, Options{})
	bd := bind(b, r, fixture(b, "noop"), BindingConfig{})
	req, resp := request("/")
	b.Run("hook", func(b *testing.B) {
		inst := checkout(b, bd)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := inst.OnRequest(req, resp, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("request", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			inst, err := bd.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := inst.OnRequest(req, resp, nil); err != nil {
				b.Fatal(err)
			}
			if err := inst.OnResponse(req, resp, nil); err != nil {
				b.Fatal(err)
			}
			bd.Release(inst, false)
		}
	})
}

// BenchmarkInstantiate: the cold start of the raw-wat plugin through a
// fresh-mode binding (instantiate, on_init, close) against wazero's own
// InstantiateModule+Close of the same compiled module.
func BenchmarkInstantiate(b *testing.B) {
	r := newTestRuntime(b, Options{})
	bd := bind(b, r, rawWat(b), BindingConfig{Mode: ModeFresh})
	ctx := context.Background()
	b.Run("binding-fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			inst, err := bd.Acquire(ctx)
			if err != nil {
				b.Fatal(err)
			}
			bd.Release(inst, false)
		}
	})
	b.Run("wazero-raw", func(b *testing.B) {
		c := bd.cm.(*wzCompiled)
		cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
		b.ReportAllocs()
		for b.Loop() {
			mod, err := c.rt.InstantiateModule(ctx, c.cm, cfg)
			if err != nil {
				b.Fatal(err)
			}
			_ = mod.Close(ctx)
		}
	})
}

// BenchmarkDeadlineOverhead: the cost of deadline enforcement. "off" runs
// the guest in a wazero runtime without WithCloseOnContextDone and a
// background context; "on-withtimeout" with it and a context.WithTimeout
// per call; "on-runtime" is the runtime's own path (a reusable per-instance
// deadline context). compute is a 100k-round arithmetic loop (interruption
// checks in a hot loop), noop an empty hook (the fixed cost per call).
func BenchmarkDeadlineOverhead(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"compute", "noop"} {
		wasm := fixture(b, name)
		raw := func(b *testing.B, closeOnDone, withTimeout bool) {
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(closeOnDone))
			defer rt.Close(ctx)
			mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithStartFunctions())
			if err != nil {
				b.Fatal(err)
			}
			fn := mod.ExportedFunction("on_request")
			var stack [1]uint64
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				cctx, cancel := ctx, context.CancelFunc(func() {})
				if withTimeout {
					cctx, cancel = context.WithTimeout(ctx, time.Second)
				}
				err := fn.CallWithStack(cctx, stack[:])
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.Run(name+"/off", func(b *testing.B) { raw(b, false, false) })
		b.Run(name+"/on-withtimeout", func(b *testing.B) { raw(b, true, true) })
		b.Run(name+"/on-runtime", func(b *testing.B) {
			r := newTestRuntime(b, Options{})
			bd := bind(b, r, wasm, BindingConfig{CallTimeout: time.Second})
			inst := checkout(b, bd)
			req, resp := request("/")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := inst.OnRequest(req, resp, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
