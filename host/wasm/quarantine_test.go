package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// hooksWat fails on_request when the request path starts with /q and
// on_response when it starts with /s (a trap in both cases); anything else
// succeeds. For the per-hook quarantine tests.
const hooksWat = `(module
  (import "wasmgate" "request_path" (func $request_path (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $first (result i32)
    (drop (call $request_path (i32.const 0) (i32.const 16)))
    (i32.load8_u (i32.const 1)))
  (func (export "on_request") (result i32)
    (if (i32.eq (call $first) (i32.const 0x71)) ;; 'q'
      (then unreachable))
    (i32.const 0))
  (func (export "on_response") (result i32)
    (if (i32.eq (call $first) (i32.const 0x73)) ;; 's'
      (then unreachable))
    (i32.const 0)))
`

func hooksModule(tb testing.TB) []byte {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "hooks.wat")
	if err := os.WriteFile(p, []byte(hooksWat), 0o600); err != nil {
		tb.Fatal(err)
	}
	return wat(tb, p)
}

// flakyModule fails instantiation while fail is set: a cold start failure
// without a module that fails on its own.
type flakyModule struct {
	CompiledModule
	fail atomic.Bool
}

func (f *flakyModule) Instantiate(ctx context.Context, opts InstanceOptions) (ModuleInstance, error) {
	if f.fail.Load() {
		return nil, errors.New("injected instantiation failure")
	}
	return f.CompiledModule.Instantiate(ctx, opts)
}

// quarantineHarness drives a binding of hooksWat the way the gateway does.
type quarantineHarness struct {
	t     *testing.T
	b     *Binding
	flaky *flakyModule
}

func newQuarantineHarness(t *testing.T, now func() time.Time, cfg BindingConfig) *quarantineHarness {
	t.Helper()
	r := newTestRuntime(t, Options{Now: now})
	b := bind(t, r, hooksModule(t), cfg)
	f := &flakyModule{CompiledModule: b.cm}
	b.cm = f
	t.Cleanup(func() { b.cm = f.CompiledModule }) // before bind's Close
	return &quarantineHarness{t: t, b: b, flaky: f}
}

// step runs one step of a scenario and returns the error the gateway would
// see (nil on success):
//
//	R+ R-  a pooled on_request checkout that succeeds / traps
//	S+ S-  a pooled on_response checkout that succeeds / traps
//	I-     a checkout whose cold start fails (idle instances held aside)
//	F++    a fresh-mode request: one checkout, both hooks succeed
//	F+-    on_request succeeds, on_response traps
//	F-     on_request traps (on_response is not run)
func (h *quarantineHarness) step(tok string) error {
	h.t.Helper()
	b := h.b
	switch tok {
	case "I-":
		var held []*Instance
		for b.Stats().Idle > 0 {
			inst, err := b.Acquire(context.Background())
			if err != nil {
				h.t.Fatalf("holding idle instances: %v", err)
			}
			held = append(held, inst)
		}
		h.flaky.fail.Store(true)
		inst, err := b.Acquire(context.Background())
		h.flaky.fail.Store(false)
		for _, i := range held {
			b.Release(i, false) // no hook ran: no count changes
		}
		if err == nil {
			b.Release(inst, false)
			h.t.Fatal("I-: the cold start did not fail")
		}
		return err
	}
	inst, err := b.Acquire(context.Background())
	if err != nil {
		return err
	}
	path := "/ok"
	if strings.HasSuffix(tok, "-") {
		path = map[byte]string{'R': "/q", 'S': "/s", 'F': "/q"}[tok[0]]
		if tok == "F+-" {
			path = "/s"
		}
	}
	req, resp := request(path)
	switch tok[0] {
	case 'R':
		_, err = inst.OnRequest(req, resp, nil)
	case 'S':
		err = inst.OnResponse(req, resp, nil)
	case 'F':
		if _, err = inst.OnRequest(req, resp, nil); err == nil {
			err = inst.OnResponse(req, resp, nil)
		}
	default:
		h.t.Fatalf("unknown step %q", tok)
	}
	b.Release(inst, err != nil)
	if (err == nil) != strings.HasSuffix(tok, "+") {
		h.t.Fatalf("step %s: error %v", tok, err)
	}
	return err
}

// run runs steps until one is refused as quarantined; it returns the index
// of the step after which the binding was quarantined (-1: never).
func (h *quarantineHarness) run(steps string) int {
	h.t.Helper()
	for i, tok := range strings.Fields(steps) {
		if err := h.step(tok); errors.Is(err, ErrQuarantined) {
			h.t.Fatalf("step %d (%s) refused as quarantined, but Stats said it was not", i, tok)
		}
		if h.b.Stats().Quarantined {
			return i
		}
	}
	return -1
}

func (h *quarantineHarness) refused() {
	h.t.Helper()
	_, err := h.b.Acquire(context.Background())
	if !errors.Is(err, ErrQuarantined) {
		h.t.Fatalf("want ErrQuarantined, got %v", err)
	}
}

// TestQuarantinePerHook: each stage (cold start, on_request, on_response)
// has its own consecutive-failure count, which only its own successes
// reset; any count reaching QuarantineAfter quarantines the binding.
func TestQuarantinePerHook(t *testing.T) {
	const after = 3
	tests := []struct {
		name  string
		mode  Mode
		steps string
		want  int // index of the step that quarantines; -1 never
		fails int // ConsecutiveFailures after the steps
	}{
		{"response always fails, request always ok", ModePooled,
			"R+ S- R+ S- R+ S- R+ S-", 5, 3},
		{"request always fails, no response", ModePooled,
			"R- R- R- R-", 2, 3},
		{"request always fails, response ok (fail_open)", ModePooled,
			"R- S+ R- S+ R- S+", 4, 3},
		{"on_request's count runs across on_response's outcomes", ModePooled,
			"R- S- R- S+ R-", 4, 3},
		{"failing hooks alternate between requests", ModePooled,
			// Odd requests fail in on_request (on_response not run), even
			// ones in on_response: only on_response's count never resets.
			"R- R+ S- R- R+ S- R- R+ S-", 8, 3},
		{"a hook failing every other call is never quarantined", ModePooled,
			"R+ S- R+ S+ R+ S- R+ S+ R+ S- R+ S+ R+ S-", -1, 1},
		{"every hook failing every other request is never quarantined", ModePooled,
			"R- R+ S- R+ S+ R- R+ S- R+ S+ R- R+ S-", -1, 1},
		{"whole-request successes reset both counts", ModePooled,
			"R+ S- R+ S- R+ S+ R+ S- R+ S-", -1, 2},
		{"cold start always fails while a warm instance serves", ModePooled,
			"I- R+ S+ I- R+ S+ I-", 6, 3},
		{"a successful cold start resets the cold start count", ModePooled,
			// S- closes the only instance: the next R+ cold-starts.
			"I- I- R+ S- R+ I- I- S+", -1, 2},
		{"fresh: response always fails", ModeFresh,
			"F+- F+- F+- F+-", 2, 3},
		{"fresh: request always fails", ModeFresh,
			"F- F- F-", 2, 3},
		{"fresh: a request success resets", ModeFresh,
			// F- does not run on_response: its count goes on.
			"F+- F+- F++ F+- F+- F- F+-", 6, 3},
		{"fresh: cold start always fails", ModeFresh,
			"F++ I- F+- I- I- I-", 5, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1e9, 0)}
			h := newQuarantineHarness(t, clock.now, BindingConfig{Mode: tt.mode, PoolMax: 4,
				QuarantineAfter: after, QuarantineBackoff: time.Second})
			if got := h.run(tt.steps); got != tt.want {
				t.Fatalf("quarantined after step %d, want %d", got, tt.want)
			}
			if tt.want >= 0 {
				h.refused()
				if s := h.b.Stats(); !s.QuarantineUntil.Equal(clock.now().Add(time.Second)) {
					t.Errorf("quarantined until %v, want %v", s.QuarantineUntil, clock.now().Add(time.Second))
				}
			}
			if s := h.b.Stats(); s.ConsecutiveFailures != tt.fails {
				t.Errorf("ConsecutiveFailures %d, want %d", s.ConsecutiveFailures, tt.fails)
			}
		})
	}
}

// TestQuarantineTrialPerHook: a trial that passes one hook lifts the
// quarantine, but while another hook goes on failing each quarantine is
// twice as long as the one before; the backoff restarts only once every
// hook has succeeded again.
func TestQuarantineTrialPerHook(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	h := newQuarantineHarness(t, clock.now, BindingConfig{PoolMax: 4,
		QuarantineAfter: 3, QuarantineBackoff: time.Second, QuarantineMaxBackoff: 8 * time.Second})
	b := h.b
	until := func(want time.Duration) { t.Helper(); quarantinedFor(t, b, clock, want) }

	if got := h.run("R+ S- R+ S- R+ S-"); got != 5 {
		t.Fatalf("quarantined after step %d, want 5", got)
	}
	until(time.Second)
	for n, backoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		clock.advance(backoff - time.Millisecond)
		h.refused()
		clock.advance(time.Millisecond)
		// The trial's on_request succeeds: the quarantine is lifted, but
		// on_response is still past its threshold.
		h.step("R+")
		if s := b.Stats(); s.Quarantined || s.ConsecutiveFailures != 3+n {
			t.Fatalf("after a successful trial: stats %+v", s)
		}
		// Its on_response fails again: quarantined at once, for longer.
		h.step("S-")
		until(min(2*backoff, 8*time.Second))
		h.refused()
	}

	// The plugin recovers: a trial passes on_request, then on_response.
	clock.advance(8 * time.Second)
	h.step("R+")
	h.step("S+")
	if s := b.Stats(); s.Quarantined || s.ConsecutiveFailures != 0 {
		t.Fatalf("after recovering: stats %+v", s)
	}
	// Healthy in every hook: the next quarantine starts at the first backoff.
	if got := h.run("R+ S- R+ S- R+ S-"); got != 5 {
		t.Fatalf("quarantined after step %d, want 5", got)
	}
	until(time.Second)

	// A trial that fails (here its cold start: the failed on_response
	// closed the idle instance) doubles the backoff.
	clock.advance(time.Second)
	if n := b.Stats().Idle; n != 0 {
		t.Fatalf("%d idle instances, want 0", n)
	}
	h.flaky.fail.Store(true)
	_, err := b.Acquire(context.Background())
	h.flaky.fail.Store(false)
	pluginErr(t, err, KindInit)
	until(2 * time.Second)
}

// TestQuarantineTrialFresh: in fresh mode one checkout serves both hooks,
// so the trial is the whole request.
func TestQuarantineTrialFresh(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	h := newQuarantineHarness(t, clock.now, BindingConfig{Mode: ModeFresh, PoolMax: 4,
		QuarantineAfter: 3, QuarantineBackoff: time.Second, QuarantineMaxBackoff: 8 * time.Second})
	b := h.b
	until := func(want time.Duration) { t.Helper(); quarantinedFor(t, b, clock, want) }
	if got := h.run("F+- F+- F+-"); got != 2 {
		t.Fatalf("quarantined after step %d, want 2", got)
	}
	until(time.Second)
	clock.advance(time.Second)
	h.step("F+-") // on_request passes, but the trial fails in on_response
	until(2 * time.Second)
	h.refused()
	clock.advance(2 * time.Second)
	h.step("F++")
	if s := b.Stats(); s.Quarantined || s.ConsecutiveFailures != 0 {
		t.Fatalf("after recovering: stats %+v", s)
	}
	if got := h.run("F+- F+- F+-"); got != 2 {
		t.Fatalf("quarantined after step %d, want 2", got)
	}
	until(time.Second)
}

// TestQuarantineInFlight: checkouts made before the quarantine still
// count when they come back, but a success among them neither lifts the
// quarantine nor resets the backoff.
func TestQuarantineInFlight(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	h := newQuarantineHarness(t, clock.now, BindingConfig{PoolMax: 4,
		QuarantineAfter: 2, QuarantineBackoff: time.Second})
	b := h.b
	early, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Release(early, false) }) // if the test fails first: Close waits for it
	if got := h.run("R+ S- R+ S-"); got != 3 {
		t.Fatalf("quarantined after step %d, want 3", got)
	}
	req, resp := request("/ok")
	if err := early.OnResponse(req, resp, nil); err != nil {
		t.Fatal(err)
	}
	b.Release(early, false)
	if s := b.Stats(); !s.Quarantined || s.ConsecutiveFailures != 0 {
		t.Fatalf("stats %+v: want still quarantined, on_response's count reset", s)
	}
	// The trial: both hooks pass, and the backoff restarts.
	clock.advance(time.Second)
	h.step("R+")
	h.step("S+")
	if got := h.run("S- S-"); got != 1 {
		t.Fatalf("quarantined after step %d, want 1", got)
	}
	if s := b.Stats(); !s.QuarantineUntil.Equal(clock.now().Add(time.Second)) {
		t.Fatalf("stats %+v, want the first backoff again", s)
	}
}

// TestQuarantineCallerFailure: a failure the caller reports with no hook
// failing counts against the hook the instance ran last.
func TestQuarantineCallerFailure(t *testing.T) {
	h := newQuarantineHarness(t, nil, BindingConfig{PoolMax: 2, QuarantineAfter: 2})
	b := h.b
	for range 2 {
		h.step("R+") // on_request's successes do not reset on_response's count
		inst, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		req, resp := request("/ok")
		if _, err := inst.OnRequest(req, resp, nil); err != nil {
			t.Fatal(err)
		}
		if err := inst.OnResponse(req, resp, nil); err != nil {
			t.Fatal(err)
		}
		b.Release(inst, true)
	}
	if s := b.Stats(); !s.Quarantined || s.ConsecutiveFailures != 2 {
		t.Fatalf("stats %+v", s)
	}
}

// quarantinedFor fails the test unless b is quarantined for want from now.
func quarantinedFor(t *testing.T, b *Binding, clock *fakeClock, want time.Duration) {
	t.Helper()
	s := b.Stats()
	if !s.Quarantined || !s.QuarantineUntil.Equal(clock.now().Add(want)) {
		t.Fatalf("stats %+v, want quarantined for %v", s, want)
	}
}
