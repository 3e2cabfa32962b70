//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64))

package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
)

func newWasmtime(t *testing.T, opts WasmtimeOptions) *WasmtimeEngine {
	t.Helper()
	e, err := NewWasmtimeEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

// TestWasmtimeRefusesUnmeteredBulk: a module whose bulk memory
// operations cannot be charged by length (here one on a 64-bit memory,
// which $bulk's i32 length does not fit) is refused when deadlines are
// fuel, rather than run with each operation at one unit.
func TestWasmtimeRefusesUnmeteredBulk(t *testing.T) {
	if wtFuelRate() == 0 {
		t.Skip("no thread CPU clock: wasmtime deadlines are wall-clock here")
	}
	out := filepath.Join(t.TempDir(), "m.wasm")
	if msg, err := exec.Command("wat2wasm", "--enable-memory64", "--enable-multi-memory", filepath.Join("testdata", "memory64", "bulk.wat"), "-o", out).CombinedOutput(); err != nil {
		t.Skipf("wat2wasm: %v\n%s", err, msg) // fixture() fails in CI without wat2wasm
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	e := newWasmtime(t, WasmtimeOptions{})
	if _, err := e.Compile(context.Background(), wasm); err == nil || !strings.Contains(err.Error(), "metering bulk memory") {
		t.Fatalf("compiled: %v, want a refusal", err)
	}
}

// TestWasmtimeStopsOneStore: interrupting one instance stops its guest
// and no other, although epochs are the engine's: the stop another
// goroutine (a deadline watcher) can call at any time.
func TestWasmtimeStopsOneStore(t *testing.T) {
	e := newWasmtime(t, WasmtimeOptions{})
	ctx := context.Background()
	cm, err := e.Compile(ctx, fixture(t, "loop"))
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close(ctx)
	var insts [2]*wtInstance
	var done [2]chan error
	for k := range insts {
		mi, err := cm.Instantiate(ctx, InstanceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer mi.Close(ctx)
		insts[k] = mi.(*wtInstance)
		done[k] = make(chan error, 1)
		go func() {
			_, err := mi.CallHook(HookRequest, 0, time.Minute)
			done[k] <- err
		}()
	}
	time.Sleep(20 * time.Millisecond) // both spinning
	insts[0].interrupt()
	select {
	case err := <-done[0]:
		if err == nil || !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("interrupted guest: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the interrupted guest runs on")
	}
	// Others saw the epoch move and ran on.
	select {
	case err := <-done[1]:
		t.Fatalf("the other guest stopped too: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	insts[1].interrupt()
	if err := <-done[1]; err == nil {
		t.Error("second guest: no error")
	}
	if _, err := insts[0].CallHook(HookRequest, 0, time.Second); err == nil {
		t.Error("an interrupted instance took another call")
	}
}

// TestWasmtimeDiskCache: compiled code goes to the cache directory and a
// new engine (a restart) loads it instead of compiling; a damaged entry
// is compiled again. A module is mapped from its cache file, not copied
// into anonymous memory, on the first compile as on a restart.
func TestWasmtimeDiskCache(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	wasm := rawWat(t)
	compile := func() *WasmtimeEngine {
		e := newWasmtime(t, WasmtimeOptions{CacheDir: dir})
		cm, err := e.Compile(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		mi, err := cm.Instantiate(ctx, InstanceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if maps, err := os.ReadFile("/proc/self/maps"); err == nil {
			files, _ := filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-*", "*.cwasm"))
			if len(files) != 1 || !bytes.Contains(maps, []byte(files[0])) {
				t.Errorf("the module's code is not mapped from its cache file %v", files)
			}
		}
		_ = mi.Close(ctx)
		_ = cm.Close(ctx)
		return e
	}
	if e := compile(); e.CacheHits() != 0 {
		t.Errorf("%d cache hits in an empty cache", e.CacheHits())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "wasmtime-"+wasmtimeVersion+"-*", "*.cwasm"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}
	if e := compile(); e.CacheHits() != 1 {
		t.Errorf("%d cache hits after a restart, want 1", e.CacheHits())
	}
	// Read-only (gateways map it): replaced by a new file, not in place.
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("cache file mode %v (%v), want 0444", fi.Mode(), err)
	}
	_ = os.Remove(files[0])
	if err := os.WriteFile(files[0], []byte("not compiled code"), 0o600); err != nil {
		t.Fatal(err)
	}
	if e := compile(); e.CacheHits() != 0 {
		t.Errorf("a damaged entry was used")
	}
	if e := compile(); e.CacheHits() != 1 {
		t.Errorf("the damaged entry was not replaced")
	}
}

// TestEnginesSideBySide: one runtime runs a module on both engines, as
// plugins ask, and keeps the versions apart in its registry.
func TestEnginesSideBySide(t *testing.T) {
	r := newTestRuntime(t, Options{})
	ctx := context.Background()
	wasm := fixture(t, "counter")
	r.SetPluginEngine("b", EngineWasmtime)
	if r.PluginEngine("a") != EngineWazero || r.PluginEngine("b") != EngineWasmtime {
		t.Fatalf("engines %s %s", r.PluginEngine("a"), r.PluginEngine("b"))
	}
	ma, err := r.Load(ctx, "a", wasm)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := r.Load(ctx, "b", wasm)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := r.LoadOn(ctx, EngineWasmtime, "c", wasm)
	if err != nil {
		t.Fatal(err)
	}
	if ma == mb || mb != mc || r.Modules() != 2 {
		t.Fatalf("modules %p %p %p, %d in the registry", ma, mb, mc, r.Modules())
	}
	if ma.Info().Engine != r.Engine().Name() || mb.Info().Engine != "wasmtime" || mb.Info().Interruption != "fuel" {
		t.Errorf("engines %q and %q (%s)", ma.Info().Engine, mb.Info().Engine, mb.Info().Interruption)
	}
	for _, m := range []*Module{ma, mb} {
		b, err := m.Bind(ctx, testEnv(), BindingConfig{PoolMax: 1})
		if err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= 2; n++ {
			resp, err := serve(t, b, "/")
			if err != nil || resp.StatusCode() != 200+n {
				t.Errorf("%s: request %d: %d %v", m.Info().Engine, n, resp.StatusCode(), err)
			}
		}
		mustClose(t, b)
	}
	for _, m := range []*Module{ma, mb, mc} {
		_ = m.Release(ctx)
	}
	if r.Modules() != 0 {
		t.Errorf("%d modules after release", r.Modules())
	}
	wt, err := r.EngineOf(EngineWasmtime)
	if err != nil {
		t.Fatal(err)
	}
	if n := wt.(*WasmtimeEngine).LiveModules(); n != 0 {
		t.Errorf("%d wasmtime modules left", n)
	}
	r.SetPluginEngine("b", "")
	if r.PluginEngine("b") != EngineWazero {
		t.Error("the plugin's engine was not reset")
	}
}

// TestWasmtimeCloseOrder: a compiled module closed before its instances
// leaves them working until their owner closes them (a store is never
// freed under a running call).
func TestWasmtimeCloseOrder(t *testing.T) {
	e := newWasmtime(t, WasmtimeOptions{})
	ctx := context.Background()
	cm, err := e.Compile(ctx, fixture(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	capped, err := cm.WithMemoryLimit(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	mi, err := capped.Instantiate(ctx, InstanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = cm.Close(ctx)
	_ = capped.Close(ctx)
	if _, err := capped.Instantiate(ctx, InstanceOptions{}); err == nil {
		t.Error("instantiated a closed module")
	}
	if e.LiveModules() != 0 || e.LiveInstances() != 1 {
		t.Errorf("%d modules, %d instances", e.LiveModules(), e.LiveInstances())
	}
	call := mi.(*wtInstance).call
	call.Phase = 1 // on_request: counter answers with send_response
	req, resp := request("/")
	call.Req, call.Resp = req, resp
	if _, err := mi.CallHook(HookRequest, 0, time.Second); err != nil {
		t.Errorf("instance of a closed module: %v", err)
	}
	if err := mi.Close(ctx); err != nil || e.LiveInstances() != 0 {
		t.Errorf("close: %v, %d instances", err, e.LiveInstances())
	}
}

// TestWasmtimeStartFunction: a start function runs at instantiation, may
// call the host (memory included), and is bounded by the init deadline.
func TestWasmtimeStartFunction(t *testing.T) {
	var logs syncBuffer
	r := newTestRuntime(t, Options{DefaultEngine: EngineWasmtime, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	path := filepath.Join(t.TempDir(), "start.wat")
	src := `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "from start\n")
  (func $boot
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 11))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8))))
  (start $boot)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m, err := r.Load(ctx, "start", wat(t, path))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release(ctx)
	env := testEnv()
	env.Log = nil // the runtime's
	b, err := m.Bind(ctx, env, BindingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, b)
	if !strings.Contains(logs.String(), "from start") {
		t.Errorf("log %q", logs.String())
	}
	ms, err := r.Load(ctx, "startloop", fixture(t, "startloop"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Release(ctx)
	_, err = ms.Bind(ctx, testEnv(), BindingConfig{InitTimeout: 20 * time.Millisecond})
	if pe := pluginErr(t, err, KindInit); !errors.Is(err, ErrDeadline) || !strings.Contains(pe.Msg, "instantiate") {
		t.Errorf("start loop: %v", err)
	}
}

// TestWasmtimeMemoryCap: the store's limiter refuses memory.grow past the
// cap (the guest sees -1), at any cap.
func TestWasmtimeMemoryCap(t *testing.T) {
	r := newTestRuntime(t, Options{DefaultEngine: EngineWasmtime})
	for _, pages := range []uint32{2, 17, 300} {
		b := bind(t, r, fixture(t, "grow"), BindingConfig{MemoryPages: pages, CallTimeout: time.Minute})
		inst, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req, resp := request("/")
		_, err = inst.OnRequest(req, resp, nil)
		if got := inst.MemorySize(); got != pages<<16 {
			t.Errorf("cap %d: memory %d pages at the failure", pages, got>>16)
		}
		b.Release(inst, true)
		if pe := pluginErr(t, err, KindMemory); !bytes.Contains([]byte(pe.Msg), []byte(".hog()")) {
			t.Errorf("cap %d: %s", pages, pe.Msg)
		}
	}
}

func TestWtFuelRecheck(t *testing.T) {
	ms := int64(time.Millisecond)
	for _, c := range []struct {
		name  string
		slept int64 // during the call
		at    int64 // mono ns of the look, the call armed at 0 for 10ms
		want  int64 // next look; 0: stop
	}{
		{"working at the deadline: the fuel decides, look again later", 0, 10 * ms, 20 * ms},
		{"slept part of the budget: look when the rest could have run", 4 * ms, 10 * ms, 16 * ms},
		{"slept the budget", 10 * ms, 10 * ms, 0},
		{"look capped at the wall ceiling", 0, 995 * ms, 1000 * ms},
		{"wall ceiling reached", 0, 1000 * ms, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &wtFuel{rate: 0} // rate 0: sleep charges no fuel (and touches no store)
			f.arm(10*time.Millisecond, 0)
			f.slept.Add(c.slept)
			if got := f.recheck(c.at); got != c.want {
				t.Fatalf("recheck(%d) = %d, want %d", c.at, got, c.want)
			}
		})
	}
}

// TestWasmtimeFuel: a call's fuel is its budget of work at the calibrated
// rate; a guest that uses it traps, and the error is a deadline error
// although no timer fired; a guest's sleep is charged.
func TestWasmtimeFuel(t *testing.T) {
	rate := wtFuelRate()
	if rate == 0 {
		t.Skip("no thread CPU clock: wasmtime deadlines are wall-clock here")
	}
	// A wasm instruction is somewhere between a tenth of a ns and
	// hundreds of ns: a rate outside is a broken measurement.
	if rate < 1e7 || rate > 1e11 {
		t.Fatalf("wtFuelRate() = %.3g fuel/s", rate)
	}
	e := newWasmtime(t, WasmtimeOptions{})
	ctx := context.Background()
	for _, c := range []struct {
		fixture string
		fuel    uint64
		timeout time.Duration
	}{
		// A loop runs out of the fuel it was given; with a minute's
		// deadline, only the fuel can have stopped it this soon.
		{"loop", 1_000_000, time.Minute},
		// So does a loop of 64 KiB fills, charged by length (chargeBulk):
		// 4,096 fuel a round, so about 2,400 rounds, where one unit per
		// fill would be some 1.5 million.
		{"bulkloop", 10_000_000, time.Minute},
		// And a loop of 4,000-byte fills, under a coarse round: 240 fuel
		// a round (in 256-byte steps), where it was about 20.
		{"bulkloopsmall", 10_000_000, time.Minute},
		// A guest asking to sleep an hour is charged it at once: out of
		// fuel, or stopped when it slept its budget.
		{"sleep", 0, 20 * time.Millisecond},
	} {
		t.Run(c.fixture, func(t *testing.T) {
			cm, err := e.Compile(ctx, fixture(t, c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			defer cm.Close(ctx)
			if got := cm.Info().Interruption; got != "fuel" {
				t.Errorf("interruption %q, want fuel", got)
			}
			call := new(abi.Call)
			mi, err := cm.Instantiate(ctx, InstanceOptions{InitTimeout: time.Second, Call: call})
			if err != nil {
				t.Fatal(err)
			}
			defer mi.Close(ctx)
			i := mi.(*wtInstance)
			if want := uint64(c.timeout.Seconds() * rate); i.fuelFor(c.timeout) != want {
				t.Errorf("fuelFor(%v) = %d, want %d", c.timeout, i.fuelFor(c.timeout), want)
			}
			if c.fuel != 0 {
				i.cc.arm(c.timeout)
				_, fl := wtCall(i.w, int(HookRequest), 0, 0, c.fuel)
				if fired := i.cc.disarm(); fired || !fl.outOfFuel() {
					t.Fatalf("fired %v, failure %+v: want out of fuel", fired, fl)
				}
				if size := map[string]uint64{"bulkloop": 65536, "bulkloopsmall": 4000}[c.fixture]; size > 0 {
					b, _ := call.Mem.Read(0x20000, 4)
					rounds := binary.LittleEndian.Uint32(b)
					if limit := c.fuel / (size/bulkBytesPerInstr - bulkFuelFine); rounds == 0 || uint64(rounds) > limit {
						t.Errorf("%d rounds of a %d-byte fill on %d fuel, want 1 to %d", rounds, size, c.fuel, limit)
					}
				}
				return
			}
			_, err = mi.CallHook(HookRequest, 0, c.timeout)
			if !errors.Is(err, ErrDeadline) {
				t.Fatalf("got %v, want a deadline error", err)
			}
			if slept := time.Duration(i.fuel.slept.Load()); slept != time.Hour {
				t.Fatalf("charged a sleep of %v, want the hour asked for", slept)
			}
		})
	}
}

// TestWasmtimePoolSlots: with the pooling allocator, instances take slots
// and give them back; one past the pool fails to instantiate, with an
// error that says so, and a slot freed serves again.
func TestWasmtimePoolSlots(t *testing.T) {
	e := newWasmtime(t, WasmtimeOptions{PoolSlots: 2})
	ctx := context.Background()
	cm, err := e.Compile(ctx, fixture(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close(ctx)
	var live []ModuleInstance
	for range 2 {
		mi, err := cm.Instantiate(ctx, InstanceOptions{InitTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mi.CallHook(HookRequest, 0, time.Second); err != nil {
			t.Fatal(err)
		}
		live = append(live, mi)
	}
	if _, err := cm.Instantiate(ctx, InstanceOptions{InitTimeout: time.Second}); !errors.Is(err, ErrPoolExhausted) || !strings.Contains(err.Error(), "wasmtime_pool_slots") {
		t.Fatalf("third instance in a pool of 2: %v", err)
	}
	_ = live[0].Close(ctx)
	mi, err := cm.Instantiate(ctx, InstanceOptions{InitTimeout: time.Second})
	if err != nil {
		t.Fatalf("after a slot was freed: %v", err)
	}
	_ = mi.Close(ctx)
	_ = live[1].Close(ctx)
}

// TestWasmtimePoolTooLarge: a pool the system cannot reserve is refused
// with an error, before wasmtime (which would abort the process) tries.
func TestWasmtimePoolTooLarge(t *testing.T) {
	// 1<<32 slots of 6 GiB: far past any 64-bit address space.
	if _, err := NewWasmtimeEngine(WasmtimeOptions{PoolSlots: 1<<32 - 1}); err == nil || !strings.Contains(err.Error(), "wasmtime_pool_slots") {
		t.Fatalf("an impossible pool: %v", err)
	}
}

// TestWasmtimePoolFullIsBackpressure: a binding whose engine has no free
// instance slot answers as a full pool does, and is not quarantined for
// it however often it happens: the plugin did nothing wrong.
func TestWasmtimePoolFullIsBackpressure(t *testing.T) {
	r := newTestRuntime(t, Options{DefaultEngine: EngineWasmtime, WasmtimePoolSlots: 1})
	b := bind(t, r, fixture(t, "noop"), BindingConfig{PoolMax: 4, QuarantineAfter: 2})
	ctx := context.Background()
	held, err := b.Acquire(ctx) // the pre-warmed instance: the only slot
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		_, err := b.Acquire(ctx)
		if pe := pluginErr(t, err, KindExhausted); !errors.Is(err, ErrPoolExhausted) {
			t.Fatalf("no free slot: %v", pe)
		}
	}
	if b.Stats().Quarantined {
		t.Fatal("quarantined for the engine's full pool")
	}
	b.Release(held, false)
	inst, err := b.Acquire(ctx)
	if err != nil {
		t.Fatalf("a slot free again: %v", err)
	}
	b.Release(inst, false)
}
