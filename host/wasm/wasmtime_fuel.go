//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64))

package wasm

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// CPU-fair deadlines on wasmtime (deadline.go has the why).
//
// wasmtime counts fuel in compiled code: about one unit per instruction,
// checked at function entries and loop headers, and the guest traps when
// its store runs out. A call starts with the fuel this machine burns in
// CallTimeout of CPU (wtFuelRate, calibrated once per process against the
// thread's CPU clock), so it is stopped for the work it did, on its own
// thread, whatever the wait for a CPU. The call's timer then only enforces
// the wall-clock ceiling, through the epoch (wasmtime.go).

// wtTrapOutOfFuel is WASMTIME_TRAP_CODE_OUT_OF_FUEL.
const wtTrapOutOfFuel = 12

// wtFuel is a wasmtime instance's budget.
type wtFuel struct {
	w    wtInst
	rate float64 // fuel per second of CPU
	// Of the running call, set by arm before it starts.
	timeout atomic.Int64 // ns
	slept   atomic.Int64 // ns the guest asked to sleep
	ceiling atomic.Int64 // mono ns past which the call stops whatever its work
}

var _ budget = (*wtFuel)(nil)

// fuelFor is the fuel of a call with deadline timeout (none: unlimited).
func (f *wtFuel) fuelFor(timeout time.Duration) uint64 {
	if timeout <= 0 {
		return math.MaxUint64
	}
	return max(uint64(timeout.Seconds()*f.rate), 1)
}

func (f *wtFuel) arm(timeout time.Duration, now int64) {
	f.timeout.Store(int64(timeout))
	f.slept.Store(0)
	f.ceiling.Store(now + wallCeilingOf(timeout))
}

// recheck lets a working call run on to its ceiling (its fuel stops it
// first, the ceiling when it is blocked in the host or far slower than
// calibration), and stops a sleeping one when it has slept its budget:
// the timer cannot see the fuel, which the guest's thread owns.
func (f *wtFuel) recheck(now int64) int64 {
	c := f.ceiling.Load()
	left := f.timeout.Load() - f.slept.Load()
	if left <= 0 || now >= c {
		return 0
	}
	return min(now+max(left, int64(minRecheck)), c)
}

// sleep runs on the guest's thread (WASI poll_oneoff), where the store's
// fuel may be touched.
func (f *wtFuel) sleep(ns int64) {
	f.slept.Add(min(ns, 1<<62))
	wtCharge(f.w, uint64(min(float64(ns)/1e9*f.rate, 1<<62)))
}

// wtFuelRate is the fuel per CPU-second wasmtime burns on this machine,
// measured once; 0 when it cannot be measured (no thread CPU clock), and
// then wasmtime's deadlines are wall-clock epochs.
var wtFuelRate = sync.OnceValue(func() float64 {
	if threadCPU() < 0 {
		return 0
	}
	// The engine's configuration, epochs included: their checks slow the
	// code per unit of fuel, and the budget must be what production runs.
	cfg := wasmtime.NewConfig()
	cfg.SetConsumeFuel(true)
	cfg.SetEpochInterruption(true)
	engine := wasmtime.NewEngineWithConfig(cfg)
	defer engine.Close()
	mod, err := wasmtime.NewModule(engine, calibrationModule())
	if err != nil {
		return 0
	}
	defer mod.Close()
	store := wasmtime.NewStore(engine)
	defer store.Close()
	store.SetEpochDeadline(1 << 62)
	inst, err := wasmtime.NewInstance(store, mod, nil)
	if err != nil {
		return 0
	}
	spin := inst.GetFunc(store, "spin")
	if spin == nil {
		return 0
	}
	const full = 1 << 62
	return bestRate(1<<20, func(n uint64) (int64, bool) {
		if store.SetFuel(full) != nil {
			return 0, false
		}
		if _, err := spin.Call(store, int32(min(n, math.MaxInt32))); err != nil {
			return 0, false
		}
		left, err := store.GetFuel()
		return int64(full - left), err == nil
	})
})
