package wasm

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/testkit"
)

// BenchmarkEngines measures what a plugin costs on each engine, side by
// side in one run, for ratios (this machine is noisy: compare the engines
// within a run, not runs):
//
//   - compile/M: Engine.Compile of module M with no cache (wazero: the
//     instrumentation included; wasmtime: the grow record included), on
//     bytes made unique per iteration so that no in-memory cache hits;
//     cpu-ns/op is the process's CPU, compiler threads included;
//   - restart/M: a new engine loading M from a warm disk cache, what a
//     gateway restart costs per module (engine creation included);
//   - instantiate/M: a fresh-mode cold start: instantiate, _initialize,
//     on_init, close;
//   - hook/M: one on_request on a held instance (the per-request cost of
//     the engine for a plugin that does nothing);
//   - request/raw-wat: acquire, on_request and on_response (each calling
//     host functions), release: a whole request through a small plugin;
//   - hostcall: a guest calling a cheap host function 1000 times per hook
//     (ns/hostcall).
//
// wasmtime-pool is wasmtime with its pooling allocator
// (plugin_runtime.wasmtime_pool_slots).
//
// M is raw-wat (571 bytes of WAT) or noop-go (plugins/noop, a 2.3 MB Go
// wasip1 reactor; bash plugins/build.sh noop builds it). The per-request
// benchmarks also report cpu-ns/op, the CPU time of the benchmark's
// thread, which waiting for a CPU on a loaded machine does not inflate.
//
//	go test ./host/wasm -run '^$' -bench BenchmarkEngines -benchtime 2s
func BenchmarkEngines(b *testing.B) {
	mods := map[string][]byte{"raw-wat": rawWat(b)}
	if goNoop, err := os.ReadFile(filepath.Join("..", "..", "plugins", "noop", "noop.wasm")); err == nil {
		mods["noop-go"] = goNoop
	}
	names := []string{"raw-wat", "noop-go"}
	ctx := context.Background()
	engines := testEngines()
	if WasmtimeAvailable() {
		engines = append(engines, testEngine{"wasmtime-pool", Options{DefaultEngine: EngineWasmtime, WasmtimePoolSlots: 1000}})
	}
	for _, e := range engines {
		newEngine := func(b *testing.B, cacheDir string) Engine {
			var eng Engine
			var err error
			if e.opts.DefaultEngine == EngineWasmtime {
				eng, err = NewWasmtimeEngine(WasmtimeOptions{CacheDir: cacheDir, PoolSlots: e.opts.WasmtimePoolSlots})
			} else {
				eng, err = NewWazeroEngine(WazeroOptions{CacheDir: cacheDir})
			}
			if err != nil {
				b.Fatal(err)
			}
			return eng
		}
		for _, name := range names {
			wasm := mods[name]
			if wasm == nil {
				continue
			}
			b.Run(e.name+"/compile/"+name, func(b *testing.B) {
				eng := newEngine(b, "")
				defer eng.Close(ctx)
				n := 0
				c0 := testkit.ProcessCPU()
				for b.Loop() {
					n++
					cm, err := eng.Compile(ctx, withCustomSection(wasm, n))
					if err != nil {
						b.Fatal(err)
					}
					_ = cm.Close(ctx)
				}
				reportProcessCPU(b, c0, n)
			})
			b.Run(e.name+"/restart/"+name, func(b *testing.B) {
				dir := b.TempDir()
				warm := newEngine(b, dir)
				cm, err := warm.Compile(ctx, wasm)
				if err != nil {
					b.Fatal(err)
				}
				_ = cm.Close(ctx)
				_ = warm.Close(ctx)
				c0, n := testkit.ProcessCPU(), 0
				for b.Loop() {
					eng := newEngine(b, dir)
					cm, err := eng.Compile(ctx, wasm)
					if err != nil {
						b.Fatal(err)
					}
					_ = cm.Close(ctx)
					_ = eng.Close(ctx)
					n++
				}
				reportProcessCPU(b, c0, n)
			})
			r := newTestRuntime(b, e.opts)
			b.Run(e.name+"/instantiate/"+name, func(b *testing.B) {
				bd := bind(b, r, wasm, BindingConfig{Mode: ModeFresh, CallTimeout: time.Second})
				b.ReportAllocs()
				cpuLoop(b, func() {
					inst, err := bd.Acquire(ctx)
					if err != nil {
						b.Fatal(err)
					}
					bd.Release(inst, false)
				})
			})
			b.Run(e.name+"/hook/"+name, func(b *testing.B) {
				fix := wasm
				if name == "raw-wat" {
					fix = fixture(b, "noop") // raw-wat's hook does work; noop.wat none
				}
				bd := bind(b, r, fix, BindingConfig{CallTimeout: time.Second})
				inst := checkout(b, bd)
				req, resp := request("/")
				b.ReportAllocs()
				cpuLoop(b, func() {
					if _, err := inst.OnRequest(req, resp, nil); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
		r := newTestRuntime(b, e.opts)
		b.Run(e.name+"/request/raw-wat", func(b *testing.B) {
			bd := bind(b, r, rawWat(b), BindingConfig{CallTimeout: time.Second})
			scope := &abi.Scope{Client: []byte("127.0.0.1")}
			b.ReportAllocs()
			cpuLoop(b, func() {
				inst, err := bd.Acquire(ctx)
				if err != nil {
					b.Fatal(err)
				}
				req, resp := request("/hello")
				if _, err := inst.OnRequest(req, resp, scope); err != nil {
					b.Fatal(err)
				}
				if err := inst.OnResponse(req, resp, scope); err != nil {
					b.Fatal(err)
				}
				bd.Release(inst, false)
			})
		})
		b.Run(e.name+"/hostcall", func(b *testing.B) {
			bd := bind(b, r, fixture(b, "hostcall"), BindingConfig{CallTimeout: time.Second})
			inst := checkout(b, bd)
			req, resp := request("/")
			b.ReportAllocs()
			cpuLoop(b, func() {
				if _, err := inst.OnRequest(req, resp, nil); err != nil {
					b.Fatal(err)
				}
			})
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/hostcall")
		})
	}
}

// cpuLoop runs the benchmark loop on one locked thread and reports the
// thread's CPU time per iteration (cpu-ns/op): on a busy machine the wall
// time per op also counts waiting for a CPU, the CPU time does not. Guest
// code and host functions run on the calling thread on both engines.
func cpuLoop(b *testing.B, body func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, n := threadCPU(), 0
	for b.Loop() {
		body()
		n++
	}
	if c1 := threadCPU(); c0 >= 0 && n > 0 {
		b.ReportMetric(float64(c1-c0)/float64(n), "cpu-ns/op")
	}
}

// reportProcessCPU reports the process's CPU time per iteration since c0
// (cpu-ns/op): compilers run worker threads (wasmtime compiles functions
// in parallel), which the wall time per op hides.
func reportProcessCPU(b *testing.B, c0 int64, n int) {
	if c1 := testkit.ProcessCPU(); c0 >= 0 && n > 0 {
		b.ReportMetric(float64(c1-c0)/float64(n), "cpu-ns/op")
	}
}

// withCustomSection appends a custom section numbered n: the same code
// under new bytes, which no compilation cache has seen.
func withCustomSection(wasm []byte, n int) []byte {
	name := "bench-" + strconv.Itoa(n)
	payload := append(appendName(nil, name), 0)
	out := append([]byte(nil), wasm...)
	return appendSection(out, 0, payload)
}
