package wasm

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// grow checks out n instances at once and gives them back unused, so that
// the pool holds at least n.
func grow(t *testing.T, b *Binding, n int) {
	t.Helper()
	held := make([]*Instance, 0, n)
	for range n {
		inst, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, inst)
	}
	for _, i := range held {
		b.Release(i, false)
	}
}

// idleHarness is a binding on a fake clock whose reaper the test runs by
// hand: IdleTimeout is an hour of the fake clock, and the real timer, of
// an hour too, never fires during the test.
type idleHarness struct {
	t     *testing.T
	b     *Binding
	clock *fakeClock
}

func newIdleHarness(t *testing.T, cfg BindingConfig) *idleHarness {
	t.Helper()
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	r := newTestRuntime(t, Options{Now: clock.now})
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = time.Hour
	}
	return &idleHarness{t: t, b: bind(t, r, fixture(t, "noop"), cfg), clock: clock}
}

// after advances the clock by d and runs the reaper as its timer would.
func (h *idleHarness) after(d time.Duration) BindingStats {
	h.clock.advance(d)
	h.b.reap()
	return h.b.Stats()
}

func TestIdleShrink(t *testing.T) {
	tests := []struct {
		name     string
		min, max int
		// run drives the binding and returns the stats to check.
		run       func(h *idleHarness) BindingStats
		live      int
		idle      int
		reaped    uint64
		rearmed   bool // the reaper waits for another idle instance
		unchanged bool
	}{
		{name: "above min closed", min: 1, max: 4, live: 1, idle: 1, reaped: 3,
			run: func(h *idleHarness) BindingStats { grow(h.t, h.b, 4); return h.after(time.Hour) }},
		{name: "min kept", min: 3, max: 4, live: 3, idle: 3, reaped: 1,
			run: func(h *idleHarness) BindingStats { grow(h.t, h.b, 4); return h.after(2 * time.Hour) }},
		{name: "not idle long enough", min: 1, max: 4, live: 4, idle: 4, rearmed: true,
			run: func(h *idleHarness) BindingStats { grow(h.t, h.b, 4); return h.after(30 * time.Minute) }},
		{name: "at min from the start", min: 2, max: 4, live: 2, idle: 2,
			run: func(h *idleHarness) BindingStats { return h.after(time.Hour) }},
		{name: "coldest first, warm ones kept", min: 1, max: 4, live: 2, idle: 2, reaped: 2, rearmed: true,
			run: func(h *idleHarness) BindingStats {
				grow(h.t, h.b, 4)
				h.clock.advance(40 * time.Minute)
				grow(h.t, h.b, 2) // the two warmest run again
				return h.after(20 * time.Minute)
			}},
		{name: "in use never closed", min: 1, max: 4, live: 2, idle: 0, reaped: 2,
			run: func(h *idleHarness) BindingStats {
				grow(h.t, h.b, 4)
				a, _ := h.b.Acquire(context.Background())
				c, _ := h.b.Acquire(context.Background())
				h.t.Cleanup(func() { h.b.Release(a, false); h.b.Release(c, false) })
				s := h.after(24 * time.Hour)
				// The held instances still serve.
				for _, i := range []*Instance{a, c} {
					req, resp := request("/")
					if _, err := i.OnRequest(req, resp, nil); err != nil {
						h.t.Errorf("held instance: %v", err)
					}
				}
				return s
			}},
		{name: "released ones shrink later", min: 1, max: 4, live: 1, idle: 1, reaped: 3,
			run: func(h *idleHarness) BindingStats {
				grow(h.t, h.b, 4)
				a, _ := h.b.Acquire(context.Background())
				c, _ := h.b.Acquire(context.Background())
				h.clock.advance(30 * time.Minute)
				h.b.Release(c, false)
				// The two others are closed; c, idle for 30m, is not yet.
				if s := h.after(30 * time.Minute); s.Live != 2 || s.Idle != 1 {
					h.t.Errorf("live %d idle %d with a in use, want 2 1", s.Live, s.Idle)
				}
				h.b.Release(a, false)
				if s := h.after(29 * time.Minute); s.Live != 2 {
					h.t.Errorf("live %d before c's idle timeout, want 2", s.Live)
				}
				return h.after(time.Minute) // c goes; a, released later, stays as the minimum
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newIdleHarness(t, BindingConfig{PoolMin: tt.min, PoolMax: tt.max})
			s := tt.run(h)
			if s.Live != tt.live || s.Idle != tt.idle || s.Reaped != tt.reaped {
				t.Errorf("live %d idle %d reaped %d, want %d %d %d", s.Live, s.Idle, s.Reaped, tt.live, tt.idle, tt.reaped)
			}
			h.b.mu.Lock()
			armed := h.b.reapArmed
			h.b.mu.Unlock()
			if armed != tt.rearmed {
				t.Errorf("reaper armed %v, want %v", armed, tt.rearmed)
			}
			// The binding still serves after shrinking.
			if _, err := serve(t, h.b, "/"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIdleNever: a negative IdleTimeout, fresh mode, and a pool that cannot
// grow past its minimum have no reaper at all.
func TestIdleNever(t *testing.T) {
	r := newTestRuntime(t, Options{})
	for _, tt := range []struct {
		name string
		cfg  BindingConfig
	}{
		{"negative", BindingConfig{PoolMax: 4, IdleTimeout: -1}},
		{"fresh", BindingConfig{Mode: ModeFresh, PoolMax: 4, IdleTimeout: time.Millisecond}},
		{"min is max", BindingConfig{PoolMin: 2, PoolMax: 2, IdleTimeout: time.Millisecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := bind(t, r, fixture(t, "noop"), tt.cfg)
			if b.reaper != nil {
				t.Fatal("a reaper")
			}
			grow(t, b, 2)
			if _, err := serve(t, b, "/"); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The default is 30s.
	b := bind(t, r, fixture(t, "noop"), BindingConfig{PoolMax: 2})
	if got := b.Config().IdleTimeout; got != DefaultIdleTimeout {
		t.Errorf("default idle timeout %v", got)
	}
}

// TestIdleShrinkTimer runs the real timer: a pool grown to its maximum
// shrinks back to its minimum on its own, and Close leaves no goroutine.
func TestIdleShrinkTimer(t *testing.T) {
	r := newTestRuntime(t, Options{})
	ctx := context.Background()
	m, err := r.Load(ctx, "test", fixture(t, "noop"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Release(ctx) })
	opts := goleak.IgnoreCurrent()
	b, err := m.Bind(ctx, testEnv(), BindingConfig{PoolMin: 2, PoolMax: 6, IdleTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	grow(t, b, 6)
	if s := b.Stats(); s.Live != 6 {
		t.Fatalf("live %d, want 6", s.Live)
	}
	waitFor(t, func() bool { return b.Stats().Live == 2 })
	if s := b.Stats(); s.Idle != 2 || s.Reaped != 4 {
		t.Errorf("idle %d reaped %d, want 2 4", s.Idle, s.Reaped)
	}
	// It grows and shrinks again.
	grow(t, b, 5)
	waitFor(t, func() bool { return b.Stats().Live == 2 })
	if s := b.Stats(); s.Reaped != 7 {
		t.Errorf("reaped %d, want 7", s.Reaped)
	}
	// Close with instances above the minimum and the reaper armed.
	grow(t, b, 4)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Live != 0 || s.MemoryBytes != 0 {
		t.Errorf("after Close: live %d memory %d", s.Live, s.MemoryBytes)
	}
	goleak.VerifyNone(t, opts)
}

// TestIdleShrinkRace checks out and gives back instances from many
// goroutines while the reaper, on a 1ms idle timeout, closes idle ones: an
// instance in use is never closed (busy fails when one is, or when two
// requests share one), and the counts add up.
func TestIdleShrinkRace(t *testing.T) { onEngines(t, testIdleShrinkRace) }

func testIdleShrinkRace(t *testing.T, opts Options) {
	r := newTestRuntime(t, opts)
	b := bind(t, r, fixture(t, "busy"), BindingConfig{PoolMin: 1, PoolMax: 8, IdleTimeout: time.Millisecond, AcquireTimeout: time.Minute})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range 150 {
				if _, err := serve(t, b, "/"); err != nil {
					t.Error(err)
					return
				}
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				}
			}
		}()
	}
	wg.Wait()
	waitFor(t, func() bool { return b.Stats().Live == 1 })
	s := b.Stats()
	// No instance failed: every one made but the last was reaped.
	if s.Reaped != s.Instantiate.Count-1 {
		t.Errorf("reaped %d of %d instances made, want all but one", s.Reaped, s.Instantiate.Count)
	}
	if s.MemoryBytes != 1<<16 {
		t.Errorf("memory %d, want one page", s.MemoryBytes)
	}
}

// waitFor polls cond for up to 10s: the reaper runs on its own timer.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIdleNoAlloc: with the reaper scheduled (more instances than the
// minimum), checking out and giving back an instance does not allocate.
func TestIdleNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := newTestRuntime(t, Options{})
	b := bind(t, r, fixture(t, "noop"), BindingConfig{PoolMin: 1, PoolMax: 4, IdleTimeout: time.Hour})
	grow(t, b, 3)
	ctx := context.Background()
	run := func() {
		inst, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b.Release(inst, false)
	}
	run()
	b.mu.Lock()
	armed := b.reapArmed
	b.mu.Unlock()
	if !armed {
		t.Fatal("reaper not scheduled")
	}
	if n := testing.AllocsPerRun(200, run); n > 0 {
		t.Errorf("Acquire and Release allocate %v times", n)
	}
}
