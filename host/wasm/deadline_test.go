package wasm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// fakeWork is a $work global the test sets.
type fakeWork struct{ v atomic.Uint64 }

func (f *fakeWork) Type() api.ValueType { return api.ValueTypeI64 }
func (f *fakeWork) Get() uint64         { return f.v.Load() }
func (f *fakeWork) String() string      { return "work" }

func TestWorkMeterRecheck(t *testing.T) {
	const rate = 1e9 // instructions per second: 1 per ns
	ms := int64(time.Millisecond)
	for _, c := range []struct {
		name        string
		work, slept int64 // during the call
		at          int64 // mono ns of the look, the call armed at 0 for 10ms
		want        int64 // next look; 0: stop
	}{
		{"idle at the deadline: look when the budget could have run", 0, 0, 10 * ms, 20 * ms},
		{"half used: look after the other half", 5 * ms, 0, 10 * ms, 15 * ms},
		{"nearly used: look no sooner than minRecheck", 10*ms - 10, 0, 10 * ms, 11 * ms},
		{"budget used", 10 * ms, 0, 10 * ms, 0},
		{"budget used by sleeping", 2 * ms, 8 * ms, 10 * ms, 0},
		{"look capped at the wall ceiling", 0, 0, 995 * ms, 1000 * ms},
		{"wall ceiling reached", 0, 0, 1000 * ms, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &fakeWork{}
			w.v.Store(1 << 40) // work before the call is not the call's
			m := &workMeter{work: w, rate: rate}
			m.arm(10*time.Millisecond, 0)
			w.v.Add(uint64(c.work))
			m.sleep(c.slept)
			if got := m.recheck(c.at); got != c.want {
				t.Fatalf("recheck(%d) = %d, want %d (used %d of %d)", c.at, got, c.want, m.used(), m.budget.Load())
			}
		})
	}
}

func TestCalibration(t *testing.T) {
	if _, err := instrument(calibrationModule()); err != nil {
		t.Fatalf("the calibration module does not instrument: %v", err)
	}
	if !compilerSupported() || threadCPU() < 0 {
		t.Skip("no compiler or thread CPU clock: deadlines are wall-clock here")
	}
	// A wasm instruction is somewhere between a tenth of a ns and
	// hundreds of ns: a rate outside is a broken measurement.
	if r := workRate(); r < 1e7 || r > 1e11 {
		t.Fatalf("workRate() = %.3g instructions/s", r)
	}
}

// hog keeps every P busy with goroutines that never block, until stop
// closes: the scheduler then hands a hook's goroutine a slice of CPU now
// and then, as a busy machine does.
func hog(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			x := 1
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 1 << 16 {
					x ^= x<<13 ^ i
				}
			}
		})
	}
	return &wg
}

// TestDeadlineIsWorkNotWaiting: with every CPU busy, a guest that does a
// fraction of its budget's work never fails, however long it waits for a
// CPU; a guest that loops still stops, within the wall-clock ceiling; on
// each engine (wazero's instrumented work, wasmtime's fuel). The same
// calls with wall-clock deadlines (wazero's interruption: context) are
// the control: they fail on a busy machine.
//
// The hog runs more threads than CPUs (GOMAXPROCS raised for the test),
// so the operating system, not only the Go scheduler, makes the guest
// wait: a wasmtime guest runs on a thread of its own in cgo, outside the
// Go scheduler's Ps.
func TestDeadlineIsWorkNotWaiting(t *testing.T) {
	if testing.Short() {
		t.Skip("loads every CPU for seconds")
	}
	if !compilerSupported() || workRate() == 0 {
		t.Skip("deadlines are wall-clock here (no compiler or thread CPU clock)")
	}
	// compute's on_request is ~100k rounds of a dozen instructions: about
	// 0.2–0.5ms of CPU, a fifth of its budget or less.
	const timeout = 2 * time.Millisecond
	cfg := BindingConfig{CallTimeout: timeout, PoolMax: 1}
	type engine struct {
		name          string
		fair, looping *Binding
	}
	wazero := newTestRuntime(t, Options{})
	engines := []engine{{"wazero", bind(t, wazero, fixture(t, "compute"), cfg), bind(t, wazero, fixture(t, "loop"), cfg)}}
	if WasmtimeAvailable() {
		wt := newTestRuntime(t, Options{DefaultEngine: EngineWasmtime})
		engines = append(engines, engine{"wasmtime", bind(t, wt, fixture(t, "compute"), cfg), bind(t, wt, fixture(t, "loop"), cfg)})
	}
	wall := bind(t, newTestRuntime(t, Options{ContextInterruption: true}), fixture(t, "compute"), cfg)

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4 * runtime.NumCPU()))
	stop := make(chan struct{})
	wg := hog(stop)
	defer func() { close(stop); wg.Wait() }()

	const calls = 300
	fairFailed := make([]int, len(engines))
	wallFailed := 0
	for range calls {
		for k, e := range engines {
			if _, err := serve(t, e.fair, "/"); err != nil {
				fairFailed[k]++
				if fairFailed[k] == 1 {
					t.Errorf("%s: a call within its work budget failed on a busy machine: %v", e.name, err)
				}
			}
		}
		if _, err := serve(t, wall, "/"); err != nil {
			wallFailed++
		}
	}
	t.Logf("on a busy machine, of %d calls: %v failed with work budgets (%d engines), %d with wall-clock deadlines (the control)", calls, fairFailed, len(engines), wallFailed)

	for _, e := range engines {
		for range 3 {
			start := time.Now()
			_, err := serve(t, e.looping, "/")
			took := time.Since(start)
			if !errors.Is(err, ErrDeadline) {
				t.Fatalf("%s: a looping guest returned %v, want a deadline error", e.name, err)
			}
			// The ceiling is minWallCeiling here; the slack covers the
			// timer's own wait for a CPU.
			if limit := minWallCeiling + 500*time.Millisecond; took > limit {
				t.Fatalf("%s: a looping guest stopped after %v, past its wall-clock ceiling (%v)", e.name, took, limit)
			}
		}
	}
}

// TestGuestCannotReachTheCounters: a module whose code names a global past
// its own (invalid, but valid once instrument appends $fuel, $stop, $grow
// and $work there) is refused at load, instead of running with a guest
// that refills its fuel or resets its work and is never stopped; so is one
// whose exports, start, element segments or call_indirect name a function
// or type past its own, which the rewriters' appended $yield and $bulk
// would make valid.
func TestGuestCannotReachTheCounters(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("wat2wasm (wabt) is required in CI")
		}
		t.Skip("wat2wasm (wabt) not installed")
	}
	for _, name := range []string{"guest_sets_fuel", "guest_sets_work", "past_badexport", "past_badstart", "past_badtype", "past_badelem"} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), name+".wasm")
			// --no-check: the module is invalid on purpose.
			if msg, err := exec.Command("wat2wasm", "--no-check", filepath.Join("testdata", "invalid", name+".wat"), "-o", out).CombinedOutput(); err != nil {
				t.Fatalf("wat2wasm: %v\n%s", err, msg)
			}
			code, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := instrument(code); err == nil || !strings.Contains(err.Error(), "does not exist") && !strings.Contains(err.Error(), "past the module's") {
				t.Fatalf("instrument: %v, want a refusal of the index", err)
			}
			if _, changed, err := chargeBulk(code); err == nil && changed {
				t.Fatal("chargeBulk rewrote a module naming an index past its own")
			}
			r := newTestRuntime(t, Options{})
			if _, err := r.Load(context.Background(), "test", code); err == nil {
				t.Fatal("the runtime loaded a module that writes a global it does not have")
			}
		})
	}
}
