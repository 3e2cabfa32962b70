package wasm

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// CPU-fair deadlines.
//
// A hook's CallTimeout is a budget of work, not of wall-clock time: a guest
// that waited for a CPU (the machine busy, the Go scheduler running other
// goroutines, a garbage collection) has not used its budget, and must not
// fail for it. Instrumented modules (interrupt.go) count the instructions
// they run in $work; the budget of a call is CallTimeout at the rate this
// machine runs guest code, calibrated once per process against the
// thread's CPU clock (so a busy machine at calibration time does not shrink
// it). When the call's wall-clock deadline comes, the timer looks at the
// work done instead of firing: under budget, it checks again when the rest
// of the budget could have run; over it, it stops the guest. A sleeping
// guest (WASI poll_oneoff) is charged the time it asked to sleep.
//
// Wall-clock time still bounds a call, as a last resort: a guest blocked
// in the host, or whose instructions are far slower than calibration's,
// is stopped at wallCeiling times its CallTimeout, or minWallCeiling when
// that is longer (the Go scheduler alone may keep a runnable goroutine
// waiting tens of ms on a busy machine). Modules that are not
// instrumented (the interpreter, interruption: context) have wall-clock
// deadlines. On wasmtime the work is fuel (wasmtime_fuel.go), the same
// budget counted by the engine.

// wallCeiling is how many CallTimeouts of wall-clock time a call may take
// when it is under its work budget.
const wallCeiling = 10

// minWallCeiling is the least wall-clock time a call under its work budget
// may take.
const minWallCeiling = time.Second

// minRecheck is the least time between two looks at a call's work, so a
// call far behind its budget costs the timer little.
const minRecheck = time.Millisecond

// budget makes the deadline of a call a budget of work: a timer at the
// call's deadline asks recheck whether to look again later or stop the
// guest. Each engine has its own source of work: the instrumented
// module's $work on wazero (workMeter), fuel on wasmtime (wtFuel).
type budget interface {
	// arm starts a call with its budget for timeout, at mono time now.
	arm(timeout time.Duration, now int64)
	// recheck is called at the call's deadline or a later check, at mono
	// time now. It returns when to look again, or 0 when the call has
	// used its budget (or reached its wall-clock ceiling) and must stop.
	recheck(now int64) int64
	// sleep charges a sleep of ns nanoseconds: waiting by choice uses the
	// budget.
	sleep(ns int64)
}

// wallCeilingOf is the wall-clock time a call with deadline timeout may
// take while under its work budget.
func wallCeilingOf(timeout time.Duration) int64 {
	return int64(max(wallCeiling*timeout, minWallCeiling))
}

var _ budget = (*workMeter)(nil)

// workMeter charges an instrumented instance's calls for their work.
type workMeter struct {
	work    api.Global   // the module's $work: instructions run so far
	charged atomic.Int64 // instructions charged for sleeps so far
	rate    float64      // instructions per second of CPU
	// Of the running call, set by arm before it starts.
	start   atomic.Int64 // work + charged when the call started
	budget  atomic.Int64 // instructions
	ceiling atomic.Int64 // mono ns past which the call stops whatever its work
}

// used is the work of the running call so far.
func (m *workMeter) used() int64 {
	return int64(m.work.Get()) + m.charged.Load() - m.start.Load()
}

func (m *workMeter) arm(timeout time.Duration, now int64) {
	m.start.Store(int64(m.work.Get()) + m.charged.Load())
	m.budget.Store(int64(timeout.Seconds() * m.rate))
	m.ceiling.Store(now + wallCeilingOf(timeout))
}

func (m *workMeter) recheck(now int64) int64 {
	ceiling := m.ceiling.Load()
	left := m.budget.Load() - m.used()
	if left <= 0 || now >= ceiling {
		return 0
	}
	next := now + max(int64(float64(left)/m.rate*1e9), int64(minRecheck))
	return min(next, ceiling)
}

func (m *workMeter) sleep(ns int64) {
	// Clamped: a sleep of "forever" must not wrap to a negative charge.
	m.charged.Add(int64(min(float64(ns)/1e9*m.rate, 1<<62)))
}

// workRate is the instructions per CPU-second this machine runs guest code
// at, measured once; 0 when it cannot be measured (no compiler, no thread
// CPU clock), and then deadlines are wall-clock.
var workRate = sync.OnceValue(calibrate)

// calibrate runs an instrumented loop of loads, stores, arithmetic and
// calls, several times, and returns the best rate of work per second of
// the thread's CPU time.
func calibrate() float64 {
	if !compilerSupported() || threadCPU() < 0 {
		return 0
	}
	code, err := instrument(calibrationModule())
	if err != nil {
		return 0
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer rt.Close(ctx)
	mod, err := rt.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return 0
	}
	spin, work := mod.ExportedFunction("spin"), mod.ExportedGlobal(workExport)
	if spin == nil || work == nil {
		return 0
	}
	return bestRate(1<<16, func(n uint64) (int64, bool) {
		w0 := work.Get()
		if _, err := spin.Call(ctx, n); err != nil {
			return 0, false
		}
		return int64(work.Get() - w0), true
	})
}

// bestRate runs the calibration loop (run spins n times and returns the
// work it did) several times on a locked thread, n growing until a run is
// long enough to measure, and returns the best rate of work per second of
// the thread's CPU time: the best, as a busy machine only slows a run.
func bestRate(n uint64, run func(n uint64) (work int64, ok bool)) float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	best := 0.0
	for range 5 {
		c0 := threadCPU()
		w, ok := run(n)
		if !ok {
			return 0
		}
		if cpu := threadCPU() - c0; cpu > 0 {
			best = max(best, float64(w)/float64(cpu)*1e9)
			if cpu < int64(5*time.Millisecond) {
				n *= 4 // too short to measure well: longer next time
			}
		}
	}
	return best
}

// calibrationModule is, in the text format:
//
//	(module
//	  (memory (export "memory") 1)
//	  (func $mix (param i32) (result i32) local.get 0 i32.const 7 i32.xor)
//	  (func (export "spin") (param $n i32)
//	    (loop $l
//	      (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (call $mix (local.get $n))))
//	      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))
func calibrationModule() []byte {
	mix := []byte{0x00, 0x20, 0x00, 0x41, 0x07, 0x73, 0x0b}
	spin := []byte{0x00, 0x03, 0x40,
		0x41, 0x00, 0x41, 0x00, 0x28, 0x02, 0x00, 0x20, 0x00, 0x10, 0x00, 0x6a, 0x36, 0x02, 0x00,
		0x20, 0x00, 0x41, 0x01, 0x6b, 0x22, 0x00, 0x0d, 0x00,
		0x0b, 0x0b}
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = appendSection(b, 1, []byte{0x02, 0x60, 0x01, 0x7f, 0x01, 0x7f, 0x60, 0x01, 0x7f, 0x00})
	b = appendSection(b, 3, []byte{0x02, 0x00, 0x01})
	b = appendSection(b, 5, []byte{0x01, 0x00, 0x01})
	exports := appendName([]byte{0x02}, "memory")
	exports = append(exports, byte(ExternMemory), 0x00)
	exports = appendName(exports, "spin")
	exports = append(exports, byte(ExternFunc), 0x01)
	b = appendSection(b, 7, exports)
	code := appendULEB([]byte{0x02}, uint64(len(mix)))
	code = append(code, mix...)
	code = appendULEB(code, uint64(len(spin)))
	code = append(code, spin...)
	return appendSection(b, 10, code)
}
