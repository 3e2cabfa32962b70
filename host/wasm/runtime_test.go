package wasm

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/testkit"
)

func pluginErr(t *testing.T, err error, kind Kind) *PluginError {
	t.Helper()
	var pe *PluginError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T), want a *PluginError", err, err)
	}
	if pe.Kind != kind {
		t.Fatalf("kind %s (%v), want %s", pe.Kind, err, kind)
	}
	return pe
}

func TestRawWatPlugin(t *testing.T) {
	for _, e := range modeEngines() {
		t.Run(e.name, func(t *testing.T) {
			r := newTestRuntime(t, e.opts)
			if want := e.engine; compilerSupported() && r.Engine().Name() != want {
				t.Errorf("engine %s, want %s", r.Engine().Name(), want)
			}
			b := bind(t, r, rawWat(t), BindingConfig{})

			inst, err := b.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			req, resp := request("/hello")
			action, err := inst.OnRequest(req, resp, &abi.Scope{Client: []byte("127.0.0.1")})
			if err != nil || action != abi.Continue {
				t.Fatalf("on_request = %d, %v", action, err)
			}
			if got := string(req.Header.Peek("X-Raw-Wat")); got != "1" {
				t.Errorf("request header X-Raw-Wat = %q", got)
			}
			if err := inst.OnResponse(req, resp, nil); err != nil {
				t.Fatal(err)
			}
			if got := string(resp.Header.Peek("X-Raw-Wat-Response")); got != "1" {
				t.Errorf("response header X-Raw-Wat-Response = %q", got)
			}
			b.Release(inst, false)

			inst, err = b.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			req, resp = request("/raw-wat/deny")
			action, err = inst.OnRequest(req, resp, nil)
			if err != nil || action != abi.Stop {
				t.Fatalf("deny: on_request = %d, %v", action, err)
			}
			if resp.StatusCode() != 403 || string(resp.Body()) != "denied by raw-wat" {
				t.Errorf("deny: %d %q", resp.StatusCode(), resp.Body())
			}
			b.Release(inst, false)
			if s := b.Stats(); s.Live != 1 || s.Idle != 1 || s.InUse != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestPooledVsFresh(t *testing.T) { onEngines(t, testPooledVsFresh) }

func testPooledVsFresh(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	wasm := fixture(t, "counter")
	status := func(b *Binding) int {
		resp, err := serve(t, b, "/")
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode()
	}
	pooled := bind(t, r, wasm, BindingConfig{Mode: ModePooled, PoolMax: 1})
	fresh := bind(t, r, wasm, BindingConfig{Mode: ModeFresh, PoolMax: 1})
	for n := 1; n <= 3; n++ {
		// The pooled instance counts its requests; each fresh one sees one.
		if got := status(pooled); got != 200+n {
			t.Errorf("pooled request %d: status %d, want %d", n, got, 200+n)
		}
		if got := status(fresh); got != 201 {
			t.Errorf("fresh request %d: status %d, want 201", n, got)
		}
	}
	if s := fresh.Stats(); s.Live != 0 {
		t.Errorf("fresh binding keeps %d instances, want 0", s.Live)
	}
	if s := pooled.Stats(); s.Live != 1 {
		t.Errorf("pooled binding keeps %d instances, want 1", s.Live)
	}
}

func TestPoolExhausted(t *testing.T) { onEngines(t, testPoolExhausted) }

func testPoolExhausted(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	b := bind(t, r, fixture(t, "noop"), BindingConfig{PoolMax: 2, AcquireTimeout: 20 * time.Millisecond})
	ctx := context.Background()
	a1, err := b.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := b.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a1 == a2 {
		t.Fatal("one instance handed out twice")
	}
	// Concurrent demand beyond the bound: every waiter gives up with
	// ErrPoolExhausted, none gets an instance, none queues forever.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			inst, err := b.Acquire(ctx)
			if err == nil {
				b.Release(inst, false)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrPoolExhausted) {
			t.Fatalf("waiter %d: %v, want ErrPoolExhausted", i, err)
		}
		if pe := pluginErr(t, err, KindExhausted); pe.Plugin != "test" {
			t.Errorf("plugin %q", pe.Plugin)
		}
	}
	if s := b.Stats(); s.Live != 2 || s.InUse != 2 {
		t.Errorf("stats %+v, want 2 live in use", s)
	}

	// A waiter gets the instance released during its wait.
	slow := bind(t, r, fixture(t, "noop"), BindingConfig{PoolMax: 1, AcquireTimeout: time.Minute})
	held, err := slow.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Instance)
	go func() {
		inst, err := slow.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- inst
	}()
	slow.Release(held, false)
	if inst := <-got; inst != held {
		t.Error("the waiter did not get the released instance")
	} else {
		slow.Release(inst, false)
	}

	// A cancelled request stops waiting.
	held, _ = slow.Acquire(ctx)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := slow.Acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait: %v", err)
	}
	slow.Release(held, false)
	b.Release(a1, false)
	b.Release(a2, false)
}

func TestNoInstanceSharedConcurrently(t *testing.T) { onEngines(t, testNoInstanceSharedConcurrently) }

func testNoInstanceSharedConcurrently(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	b := bind(t, r, fixture(t, "busy"), BindingConfig{PoolMax: 3, PoolMin: 2, AcquireTimeout: time.Minute})
	var inUse sync.Map // *Instance -> *atomic.Bool
	var served atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 12; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 40; n++ {
				inst, err := b.Acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				flag, _ := inUse.LoadOrStore(inst, new(atomic.Bool))
				if !flag.(*atomic.Bool).CompareAndSwap(false, true) {
					t.Error("instance handed to two requests at once")
				}
				req, resp := request("/")
				if _, err := inst.OnRequest(req, resp, nil); err != nil {
					t.Error(err) // the guest saw itself busy
				} else if err := inst.OnResponse(req, resp, nil); err != nil {
					t.Error(err)
				}
				flag.(*atomic.Bool).Store(false)
				b.Release(inst, false)
				served.Add(1)
			}
		}()
	}
	wg.Wait()
	if served.Load() != 12*40 {
		t.Errorf("served %d", served.Load())
	}
	if s := b.Stats(); s.Live > 3 {
		t.Errorf("%d instances live, over the bound of 3", s.Live)
	}
}

func TestDeadline(t *testing.T) {
	for _, e := range modeEngines() {
		t.Run(e.name, func(t *testing.T) {
			r := newTestRuntime(t, e.opts)
			b := bind(t, r, fixture(t, "paths"), BindingConfig{PoolMax: 1, CallTimeout: 30 * time.Millisecond})
			for round := 0; round < 2; round++ {
				_, err := serve(t, b, "/loop")
				pe := pluginErr(t, err, KindTimeout)
				if !errors.Is(err, ErrDeadline) || !strings.Contains(pe.Msg, "on_request ran past its deadline") {
					t.Errorf("timeout error: %v", err)
				}
				// The binding keeps serving, with a new instance.
				if _, err := serve(t, b, "/ok"); err != nil {
					t.Fatalf("after a timeout: %v", err)
				}
			}
			if s := b.Stats(); s.Live != 1 || s.ConsecutiveFailures != 0 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

func TestGuestFailures(t *testing.T) { onEngines(t, testGuestFailures) }

func testGuestFailures(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	tests := []struct {
		fixture string
		cfg     BindingConfig
		kind    Kind
		want    []string
	}{
		{"trap", BindingConfig{}, KindTrap, []string{"unreachable", "explode", "on_request"}},
		{"badreturn", BindingConfig{}, KindBadReturn, []string{"on_request returned 7"}},
		{"badptr", BindingConfig{}, KindTrap, []string{"out of bounds: wasmgate.request_method(ptr=4294967280, len=100)", "poke"}},
		{"grow", BindingConfig{MemoryPages: 4}, KindMemory, []string{"out of memory (cap 4 pages, memory 4 pages)", "hog"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			b := bind(t, r, fixture(t, tt.fixture), tt.cfg)
			for round := 0; round < 2; round++ { // a failure is not a crash: it fails again, cleanly
				_, err := serve(t, b, "/")
				pe := pluginErr(t, err, tt.kind)
				for _, w := range tt.want {
					if !strings.Contains(pe.Msg, w) {
						t.Errorf("message %q\nwant it to contain %q", pe.Msg, w)
					}
				}
			}
			if s := b.Stats(); s.Live != 0 {
				t.Errorf("%d failed instances kept", s.Live)
			}
		})
	}
}

func TestLocalResponseEndsRequest(t *testing.T) { onEngines(t, testLocalResponseEndsRequest) }

func testLocalResponseEndsRequest(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	b := bind(t, r, fixture(t, "sendzero"), BindingConfig{})
	inst, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	req, resp := request("/")
	action, err := inst.OnRequest(req, resp, nil)
	b.Release(inst, err != nil)
	if err != nil || action != abi.Stop || resp.StatusCode() != 418 {
		t.Errorf("send_response then 0: action %d, status %d, %v", action, resp.StatusCode(), err)
	}
	_, err = serve(t, b, "/stop")
	if pe := pluginErr(t, err, KindBadReturn); !strings.Contains(pe.Msg, "without calling send_response") {
		t.Errorf("1 without send_response: %v", err)
	}
}

// TestMemoryFailureKinds: a failure right after a refused memory.grow is a
// memory failure; with instrumentation (wazero) or recordGrows (wasmtime)
// that is known exactly, else guessed from how close the memory is to its
// cap.
func TestMemoryFailureKinds(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			r := newTestRuntime(t, e.opts)
			// A generous deadline: on a loaded machine (CI, -race) growing
			// memory must hit the cap first, whatever the time it takes.
			b := bind(t, r, fixture(t, "biggrow"), BindingConfig{MemoryPages: 64, CallTimeout: time.Minute})
			_, err := serve(t, b, "/greedy")
			want := KindMemory
			if e.want == "context" { // wasmtime ("fuel") records its grows too
				want = KindTrap // 1 page of 64: too far from the cap to guess
			}
			pluginErr(t, err, want)
			_, err = serve(t, b, "/ok") // the last grow succeeded
			pluginErr(t, err, KindTrap)
			g := bind(t, r, fixture(t, "grow"), BindingConfig{MemoryPages: 64, CallTimeout: time.Minute})
			_, err = serve(t, g, "/")
			pluginErr(t, err, KindMemory)
		})
	}
}

func TestConfigRejected(t *testing.T) { onEngines(t, testConfigRejected) }

func testConfigRejected(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	m, err := r.Load(ctx, "jwt", fixture(t, "reject"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release(ctx)
	env := testEnv()
	env.Plugin = "jwt"
	_, err = m.Bind(ctx, env, BindingConfig{})
	reason, ok := ConfigRejected(err)
	if !ok || reason != `missing "keys"` {
		t.Fatalf("ConfigRejected(%v) = %q, %v", err, reason, ok)
	}
	if want := `plugin "jwt" rejected its config: missing "keys"`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	pluginErr(t, err, KindInit)
	if n := liveCompiled(t, r); n != 1 {
		t.Errorf("%d runtimes after a failed bind, want 1 (the module's)", n)
	}
}

// syncBuffer is a goroutine-safe log destination.
type syncBuffer = testkit.SyncBuffer

func TestReactorAndStdout(t *testing.T) { onEngines(t, testReactorAndStdout) }

func testReactorAndStdout(t *testing.T, opts Options) {
	var logs syncBuffer
	opts.Log = slog.New(slog.NewTextHandler(&logs, nil))
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	m, err := r.Load(ctx, "hello", fixture(t, "reactor"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release(ctx)
	// on_init fails unless _initialize ran exactly once and config_len is
	// that of "{}".
	b, err := m.Bind(ctx, &abi.Env{Plugin: "hello", Route: "home"}, BindingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	out := logs.String()
	for _, w := range []string{"plugin=hello", "route=home", "stream=stdout", `line="hello from the guest"`} {
		if !strings.Contains(out, w) {
			t.Errorf("log %q lacks %q", out, w)
		}
	}
}

func TestQuarantine(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	r := newTestRuntime(t, Options{Now: clock.now})
	b := bind(t, r, fixture(t, "paths"), BindingConfig{
		PoolMax: 2, QuarantineAfter: 3, QuarantineBackoff: time.Second, QuarantineMaxBackoff: 4 * time.Second,
	})
	fail := func() {
		t.Helper()
		if _, err := serve(t, b, "/fail"); err == nil || errors.Is(err, ErrQuarantined) {
			t.Fatalf("want a trap, got %v", err)
		}
	}
	quarantined := func() {
		t.Helper()
		_, err := b.Acquire(context.Background())
		if !errors.Is(err, ErrQuarantined) {
			t.Fatalf("want ErrQuarantined, got %v", err)
		}
		pluginErr(t, err, KindQuarantined)
	}

	fail()
	fail()
	if _, err := serve(t, b, "/ok"); err != nil { // a success resets the count
		t.Fatal(err)
	}
	fail()
	fail()
	fail() // third in a row
	quarantined()
	if s := b.Stats(); !s.Quarantined || !s.QuarantineUntil.Equal(clock.now().Add(time.Second)) {
		t.Fatalf("stats %+v", s)
	}

	// Backoff over: one trial at a time; a failed trial doubles the backoff.
	for _, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		clock.advance(backoff - time.Millisecond)
		quarantined()
		clock.advance(time.Millisecond)
		trial, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatalf("trial after %v: %v", backoff, err)
		}
		quarantined() // while the trial runs
		req, resp := request("/fail")
		_, err = trial.OnRequest(req, resp, nil)
		b.Release(trial, err != nil)
		quarantined()
	}
	// A successful trial lifts the quarantine.
	clock.advance(4 * time.Second)
	if _, err := serve(t, b, "/ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := serve(t, b, "/ok"); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Quarantined || s.ConsecutiveFailures != 0 {
		t.Errorf("stats %+v", s)
	}
	// Failures count from zero again, and the backoff restarts at 1s.
	fail()
	fail()
	fail()
	quarantined()
	clock.advance(time.Second)
	if _, err := serve(t, b, "/ok"); err != nil {
		t.Fatal(err)
	}
}

func TestRecycle(t *testing.T) { onEngines(t, testRecycle) }

func testRecycle(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	statuses := func(b *Binding, n int) []int {
		var out []int
		for range n {
			resp, err := serve(t, b, "/")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, resp.StatusCode())
		}
		return out
	}
	t.Run("max requests", func(t *testing.T) {
		b := bind(t, r, fixture(t, "counter"), BindingConfig{PoolMax: 1, MaxRequestsPerInstance: 2})
		if got, want := statuses(b, 5), []int{201, 202, 201, 202, 201}; !equalInts(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
	})
	t.Run("memory high water", func(t *testing.T) {
		// Each request grows memory a page and answers 200+pages; past 3
		// pages the instance is retired after its request.
		b := bind(t, r, fixture(t, "grower"), BindingConfig{PoolMax: 1, MemoryHighWaterPages: 3})
		if got, want := statuses(b, 5), []int{202, 203, 204, 202, 203}; !equalInts(got, want) {
			t.Errorf("statuses %v, want %v", got, want)
		}
		if hw := b.Stats().MemoryHighWater; hw != 4<<16 {
			t.Errorf("memory high water %d, want %d", hw, 4<<16)
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCompileOnceAndRuntimes(t *testing.T) { onEngines(t, testCompileOnceAndRuntimes) }

func testCompileOnceAndRuntimes(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	wasm := rawWat(t)
	m1, err := r.Load(ctx, "a", wasm)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := r.Load(ctx, "b", bytes.Clone(wasm))
	if err != nil {
		t.Fatal(err)
	}
	if m1 != m2 || compilations(r) != 1 || r.Modules() != 1 {
		t.Fatalf("same bytes: modules %p %p, %d compilations, %d modules", m1, m2, compilations(r), r.Modules())
	}
	if info := m1.Info(); info.CompileTime <= 0 || info.Engine == "" || info.SHA256[:12] != m1.Version() {
		t.Errorf("info %+v", info)
	}
	// One runtime for the module, one per memory cap in use.
	b1, err := m1.Bind(ctx, testEnv(), BindingConfig{MemoryPages: 16})
	if err != nil {
		t.Fatal(err)
	}
	b2, err := m2.Bind(ctx, testEnv(), BindingConfig{MemoryPages: 16})
	if err != nil {
		t.Fatal(err)
	}
	b3, err := m2.Bind(ctx, testEnv(), BindingConfig{MemoryPages: 32})
	if err != nil {
		t.Fatal(err)
	}
	if n := liveCompiled(t, r); n != 3 {
		t.Errorf("%d runtimes, want 3", n)
	}
	if compilations(r) != 1 {
		t.Errorf("%d compilations", compilations(r))
	}
	mustClose(t, b1)
	if n := liveCompiled(t, r); n != 3 {
		t.Errorf("%d runtimes after closing one of two bindings of a cap, want 3", n)
	}
	mustClose(t, b2)
	mustClose(t, b3)
	if n := liveCompiled(t, r); n != 1 {
		t.Errorf("%d runtimes with no binding, want 1", n)
	}
	_ = m1.Release(ctx)
	if r.Modules() != 1 {
		t.Error("module closed while still loaded")
	}
	_ = m2.Release(ctx)
	if n := liveCompiled(t, r); n != 0 || r.Modules() != 0 {
		t.Errorf("%d runtimes, %d modules after release, want 0", n, r.Modules())
	}
}

func TestMemoryCapVersusDeclaration(t *testing.T) { onEngines(t, testMemoryCapVersusDeclaration) }

func testMemoryCapVersusDeclaration(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	m, err := r.Load(ctx, "big", fixture(t, "bigmem"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release(ctx)
	for _, tt := range []struct {
		pages uint32
		want  string // "" binds
	}{
		{100, ""},
		{1000, ""},
		{50, "declares a maximum of 100 memory pages, over the cap of 50 pages"},
		{10, "needs 20 memory pages at start, over the cap of 10 pages"},
	} {
		b, err := m.Bind(ctx, testEnv(), BindingConfig{MemoryPages: tt.pages})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("cap %d: %v", tt.pages, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("cap %d: %v, want %q", tt.pages, err, tt.want)
		}
		if b != nil {
			mustClose(t, b)
		}
	}
	if n := liveCompiled(t, r); n != 1 {
		t.Errorf("%d runtimes, want 1", n)
	}
}

func mustClose(t *testing.T, b *Binding) {
	t.Helper()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDiskCache(t *testing.T) { onEngines(t, testDiskCache) }

func testDiskCache(t *testing.T, opts Options) {
	dir := t.TempDir()
	ctx := context.Background()
	run := func() {
		opts.CacheDir = dir
		r := newTestRuntime(t, opts)
		b := bind(t, r, rawWat(t), BindingConfig{})
		if _, err := serve(t, b, "/x"); err != nil {
			t.Fatal(err)
		}
		_ = b.Close(ctx)
	}
	run()
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return nil
	})
	if files == 0 {
		t.Fatal("the compilation cache directory is empty")
	}
	run() // from the cache
}

func TestBindingClose(t *testing.T) { onEngines(t, testBindingClose) }

func testBindingClose(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	m, err := r.Load(ctx, "test", fixture(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release(ctx)
	b, err := m.Bind(ctx, testEnv(), BindingConfig{PoolMin: 2})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := b.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan error)
	go func() { closed <- b.Close(ctx) }()
	for i := 0; ; i++ { // wait until Close has started
		other, err := b.Acquire(ctx)
		if errors.Is(err, ErrClosed) {
			break
		}
		if err == nil {
			b.Release(other, false)
		}
		if i > 1e6 {
			t.Fatal("Close did not start")
		}
		runtime.Gosched()
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v with an instance in use", err)
	default:
	}
	req, resp := request("/")
	if _, err := inst.OnRequest(req, resp, nil); err != nil {
		t.Errorf("in-flight request during Close: %v", err)
	}
	b.Release(inst, false)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Live != 0 {
		t.Errorf("%d instances left", s.Live)
	}

	// Close bounded by its context: an instance never released.
	b, err = m.Bind(ctx, testEnv(), BindingConfig{})
	if err != nil {
		t.Fatal(err)
	}
	inst, _ = b.Acquire(ctx)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.Close(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Close with a done context: %v", err)
	}
	b.Release(inst, false) // late: closes the instance
	if n := liveCompiled(t, r); n != 1 {
		t.Errorf("%d runtimes", n)
	}
}

func TestNoLeaks(t *testing.T) { onEngines(t, testNoLeaks) }

func testNoLeaks(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	wasms := [][]byte{rawWat(t), fixture(t, "counter"), fixture(t, "paths")}
	cycle := func(i int) {
		m, err := r.Load(ctx, "leak", wasms[i%len(wasms)])
		if err != nil {
			t.Fatal(err)
		}
		b, err := m.Bind(ctx, testEnv(), BindingConfig{MemoryPages: uint32(8 + i%3), Mode: Mode(i % 2), CallTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := serve(t, b, "/ok"); err != nil {
			t.Fatal(err)
		}
		_ = b.Close(ctx)
		_ = m.Release(ctx)
	}
	cycle(0) // warm up lazily started goroutines
	before := runtime.NumGoroutine()
	for i := range 200 {
		cycle(i)
	}
	if n := liveCompiled(t, r); n != 0 {
		t.Errorf("%d compiled modules leaked", n)
	}
	if n := r.Modules(); n != 0 {
		t.Errorf("%d modules leaked", n)
	}
	// Goroutines that are finishing (deadline watchers) get time to exit.
	after := runtime.NumGoroutine()
	for i := 0; i < 100 && after > before+2; i++ {
		time.Sleep(10 * time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before+2 {
		t.Errorf("goroutines %d -> %d after 200 cycles", before, after)
	}
}

func TestMetrics(t *testing.T) { onEngines(t, testMetrics) }

func testMetrics(t *testing.T, opts Options) {
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	m, err := r.Load(ctx, "test", fixture(t, "paths"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bind(ctx, testEnv(), BindingConfig{PoolMin: 2, CallTimeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := serve(t, b, "/ok"); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = serve(t, b, "/fail")
	_, _ = serve(t, b, "/loop")
	if _, err := serve(t, b, "/ok"); err != nil { // on a new instance: both failed ones are gone
		t.Fatal(err)
	}

	v := m.Version()
	want := map[string]float64{
		`wasmgate_plugin_instantiate_seconds{plugin="test",version="` + v + `"} count`:            3,
		`wasmgate_plugin_call_seconds{hook="on_request",plugin="test",version="` + v + `"} count`: 6,
		`wasmgate_plugin_failures_total{kind="trap",plugin="test",version="` + v + `"}`:           1,
		`wasmgate_plugin_failures_total{kind="timeout",plugin="test",version="` + v + `"}`:        1,
		`wasmgate_plugin_instances{plugin="test",version="` + v + `"}`:                            1,
		`wasmgate_plugin_memory_high_water_bytes{plugin="test",version="` + v + `"}`:              65536,
	}
	got := gather(t, reg)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %v, want %v", k, got[k], w)
		}
	}
	if got[`wasmgate_plugin_compile_seconds{plugin="test",version="`+v+`"}`] <= 0 {
		t.Error("no compile time")
	}
	q := b.Stats().Instantiate
	if q.Count != 3 || q.P50 <= 0 || q.P99 < q.P50 {
		t.Errorf("instantiate quantiles %+v", q)
	}
	if rq, ok := r.InstantiateQuantiles("test", v); !ok || rq != q {
		t.Errorf("runtime quantiles %+v %v, want %+v", rq, ok, q)
	}
	// Retiring the version deletes its series.
	_ = b.Close(ctx)
	_ = m.Release(ctx)
	for k := range gather(t, reg) {
		if strings.Contains(k, v) {
			t.Errorf("series left after release: %s", k)
		}
	}
	if _, ok := r.InstantiateQuantiles("test", v); ok {
		t.Error("quantiles of a released version")
	}
}

// gather flattens a registry into "name{labels}" (and " count" for
// histograms) -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
			}
			key := mf.GetName() + "{" + strings.Join(ls, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_HISTOGRAM:
				out[key+" count"] = float64(m.GetHistogram().GetSampleCount())
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

func TestCallCtx(t *testing.T) {
	newCtx := func() *callCtx {
		c := new(callCtx)
		c.init(new(abi.Call))
		return c
	}
	c := newCtx()
	if callOf(c) != c.call {
		t.Fatal("callOf")
	}
	// Calls far from their deadline never fire, however many.
	for range 5000 {
		c.arm(time.Hour)
		if c.disarm() || c.Err() != nil {
			t.Fatal("a call fired long before its deadline")
		}
	}
	if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Errorf("deadline %v %v", d, ok)
	}
	// Short deadlines: whichever side wins, the context is consistent; a
	// fired one stays fired (its instance is discarded).
	fired := 0
	for i := range 2000 {
		c.arm(time.Duration(i%50) * time.Microsecond)
		select {
		case <-c.Done():
			if c.Err() != context.DeadlineExceeded {
				t.Fatal("Done closed, Err nil")
			}
		default:
		}
		if c.disarm() {
			fired++
			select {
			case <-c.Done():
			default:
				t.Fatal("fired, Done open")
			}
			c.stop()
			c = newCtx()
		} else if c.Err() != nil {
			t.Fatal("Err without firing")
		}
	}
	// A call that overruns fires.
	c.arm(time.Millisecond)
	<-c.Done()
	if !c.disarm() || c.Err() != context.DeadlineExceeded {
		t.Fatal("an overrunning call did not fire")
	}
	c.stop()
	t.Logf("%d of 2000 short deadlines fired", fired)
}

// engines are the deadline mechanisms every deadline test runs under:
// wazero's three, and wasmtime's epochs in builds with cgo.
var engines = func() []struct {
	name string
	opts Options
	want string // ModuleInfo.Interruption
} {
	es := []struct {
		name string
		opts Options
		want string
	}{
		{"instrumented", Options{}, "instrumented"},
		{"context", Options{ContextInterruption: true}, "context"},
		{"interpreter", Options{Interpreter: true}, "context"},
	}
	if WasmtimeAvailable() {
		es = append(es, struct {
			name string
			opts Options
			want string
		}{"wasmtime", Options{DefaultEngine: EngineWasmtime}, "fuel"})
	}
	return es
}()

// modeEngines are the engines and modes a plugin runs on: wazero's
// compiler and interpreter, and wasmtime in builds with cgo; engine is the
// engine's Name.
func modeEngines() []struct {
	name, engine string
	opts         Options
} {
	es := []struct {
		name, engine string
		opts         Options
	}{
		{"compiler", "wazero-compiler", Options{}},
		{"interpreter", "wazero-interpreter", Options{Interpreter: true}},
	}
	if WasmtimeAvailable() {
		es = append(es, struct {
			name, engine string
			opts         Options
		}{"wasmtime", "wasmtime", Options{DefaultEngine: EngineWasmtime}})
	}
	return es
}

func TestDeadlineMechanisms(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			r := newTestRuntime(t, e.opts)
			if !compilerSupported() && e.name == "instrumented" {
				t.Skip("no compiler on this platform")
			}
			ctx := context.Background()

			// A guest looping in on_request is interrupted; so is one
			// sleeping through WASI.
			for _, f := range []string{"loop", "sleep"} {
				b := bind(t, r, fixture(t, f), BindingConfig{CallTimeout: 20 * time.Millisecond})
				if got := b.Module().Info().Interruption; got != e.want {
					t.Errorf("%s: interruption %q, want %q", f, got, e.want)
				}
				_, err := serve(t, b, "/")
				pluginErr(t, err, KindTimeout)
			}

			// A start function that never returns fails the bind instead of
			// hanging it.
			m, err := r.Load(ctx, "start", fixture(t, "startloop"))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Release(ctx)
			_, err = m.Bind(ctx, testEnv(), BindingConfig{InitTimeout: 20 * time.Millisecond})
			if pe := pluginErr(t, err, KindInit); !errors.Is(err, ErrDeadline) {
				t.Errorf("start loop: %v", pe)
			}

			// So does an on_init that never returns, and the error says
			// which deadline it ran past.
			mi, err := r.Load(ctx, "initloop", fixture(t, "initloop"))
			if err != nil {
				t.Fatal(err)
			}
			defer mi.Release(ctx)
			_, err = mi.Bind(ctx, testEnv(), BindingConfig{InitTimeout: 20 * time.Millisecond})
			if pe := pluginErr(t, err, KindInit); !errors.Is(err, ErrDeadline) || !strings.Contains(err.Error(), "on_init ran past the cold-start deadline of 20ms") {
				t.Errorf("on_init loop: %v", pe)
			}
		})
	}
}

// TestGCDuringGuestLoop: a guest spinning in native code must not hold off
// a garbage collection (which stops the world) until its deadline: the
// instrumented module leaves native code every yieldEvery iterations.
func TestGCDuringGuestLoop(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			r := newTestRuntime(t, e.opts)
			// The deadline is far beyond what three collections take even on
			// a loaded machine: a collector that waits for it is the bug,
			// not a slow one.
			b := bind(t, r, fixture(t, "loop"), BindingConfig{CallTimeout: 5 * time.Second})
			inst, err := b.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			hook := make(chan struct{})
			go func() {
				req, resp := request("/")
				_, _ = inst.OnRequest(req, resp, nil)
				close(hook)
			}()
			runtime.Gosched()
			gc := make(chan struct{})
			go func() {
				for range 3 {
					runtime.GC()
				}
				close(gc)
			}()
			select {
			case <-gc: // while the guest still spins
			case <-hook:
				t.Error("the garbage collector waited for the guest's deadline")
			}
			<-hook
			b.Release(inst, true)
		})
	}
}
