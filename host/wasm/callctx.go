package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
)

// clockBase anchors mono: monotonic nanoseconds are cheaper to read than
// time.Now (one clock read, no wall time).
var clockBase = time.Now()

// mono is the monotonic time in nanoseconds since clockBase.
func mono() int64 { return int64(time.Since(clockBase)) }

// callCtx is the context of every guest call of one instance: the call's
// deadline for wazero (WithCloseOnContextDone watches Done), for outbound
// requests of host functions (abi.Call.Ctx), and the way host functions
// find the instance's abi.Call.
//
// It is reused across calls, so a hook allocates nothing, and its timer is
// lazy: a call only stores its deadline when the timer is already set to
// go off before it, and the instance's one timer, when it goes off, either
// fires (the running call is past its deadline), re-arms itself for the
// running call's deadline, or rests (no call running; the next call sets
// it). A stream of short calls costs about one timer operation per
// CallTimeout, instead of a Reset and a Stop each.
//
// Once fired, a callCtx stays fired: the instance is discarded.
type callCtx struct {
	call     *abi.Call
	timer    *time.Timer
	seq      uint64        // calls made; owned by the calling goroutine
	state    atomic.Uint64 // seq<<2 | one of the states below
	deadline atomic.Int64  // mono nanoseconds of the running call's deadline; 0: none

	mu      sync.Mutex   // serializes setting the timer
	timerAt atomic.Int64 // when the timer goes off (mono); 0: not set. Written under mu
	done    chan struct{}

	// onFire interrupts the guest at the deadline (sets its interruption
	// global), in the timer's goroutine. Nil when wazero watches the
	// context itself.
	onFire func()
	// meter, when set, makes the deadline a budget of work (deadline.go):
	// at the deadline the timer looks again later if the call has not
	// used its budget. Set once, before the first call.
	meter budget
}

// States of a callCtx, in the low bits of state; the call's sequence
// number in the high bits makes the timer's CAS fail on a later call than
// the one whose deadline it read. The timer moves running to firing (then
// fired); the caller moves running back to idle. Whoever wins the CAS
// decides.
const (
	ctxIdle uint64 = iota
	ctxRunning
	ctxFiring
	ctxFired
	ctxMask = 3
)

// callKey finds the abi.Call through Value, for engines or wrappers that
// pass a derived context.
type callKey struct{}

func (c *callCtx) init(call *abi.Call) {
	c.call = call
	c.done = make(chan struct{})
}

// arm starts a call with a deadline timeout from now (none if <= 0).
func (c *callCtx) arm(timeout time.Duration) {
	c.seq++
	if timeout <= 0 {
		c.deadline.Store(0)
		c.state.Store(c.seq<<2 | ctxRunning)
		return
	}
	now := mono()
	d := now + int64(timeout)
	if c.meter != nil {
		c.meter.arm(timeout, now)
	}
	c.deadline.Store(d)
	c.state.Store(c.seq<<2 | ctxRunning)
	// The fast path: the timer is set to go off no later than this
	// deadline, and will re-arm itself for it.
	if at := c.timerAt.Load(); at != 0 && at <= d {
		return
	}
	c.mu.Lock()
	if at := c.timerAt.Load(); at == 0 || at > d {
		c.setTimer(d, timeout)
	}
	c.mu.Unlock()
}

// setTimer makes the timer go off at mono time at, in d from now; under mu.
func (c *callCtx) setTimer(at int64, d time.Duration) {
	c.timerAt.Store(at)
	if c.timer == nil {
		c.timer = time.AfterFunc(d, c.expire)
	} else {
		c.timer.Reset(d)
	}
}

// disarm ends a call and reports whether its deadline fired.
func (c *callCtx) disarm() (fired bool) {
	if c.state.CompareAndSwap(c.seq<<2|ctxRunning, c.seq<<2|ctxIdle) {
		return false
	}
	// The timer won; it does not block, so this wait is short.
	for c.state.Load()&ctxMask != ctxFired {
		time.Sleep(time.Microsecond)
	}
	return true
}

// expire runs in the timer's goroutine: it fires the running call if it
// is past its deadline, else re-arms for it, else lets the timer rest.
func (c *callCtx) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	// From here a starting call sees no timer and takes the lock to set
	// one, or this loop sees it running: never neither.
	c.timerAt.Store(0)
	for {
		s := c.state.Load()
		if s&ctxMask != ctxRunning {
			return
		}
		d := c.deadline.Load()
		if d == 0 { // a call without deadline: nothing to watch
			return
		}
		now := mono()
		if left := d - now; left > 0 {
			c.setTimer(d, time.Duration(left))
			return
		}
		if c.meter != nil {
			// Past the deadline, under budget: the call's deadline moves to
			// the next look, unless the call changed meanwhile.
			if next := c.meter.recheck(now); next != 0 {
				if c.state.Load() == s && c.deadline.CompareAndSwap(d, next) {
					c.setTimer(next, time.Duration(next-now))
					return
				}
				continue
			}
		}
		call := s &^ ctxMask
		if c.state.CompareAndSwap(s, call|ctxFiring) {
			if c.onFire != nil {
				c.onFire()
			}
			close(c.done)
			c.state.Store(call | ctxFired)
			return
		}
		// That call just ended: look again.
	}
}

// sleep is the guest's nanosleep (WASI poll_oneoff on a clock): it
// returns early at the deadline, so a sleeping guest cannot outlive it.
func (c *callCtx) sleep(ns int64) {
	if ns <= 0 {
		return
	}
	if c.meter != nil {
		c.meter.sleep(ns) // waiting by choice uses the budget
	}
	t := time.NewTimer(time.Duration(ns))
	select {
	case <-t.C:
	case <-c.done:
	}
	t.Stop()
}

// stop releases the timer when the instance closes.
func (c *callCtx) stop() {
	c.mu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
}

// Deadline implements context.Context.
func (c *callCtx) Deadline() (time.Time, bool) {
	d := c.deadline.Load()
	if d == 0 {
		return time.Time{}, false
	}
	return clockBase.Add(time.Duration(d)), true
}

// Done implements context.Context.
func (c *callCtx) Done() <-chan struct{} { return c.done }

// Err implements context.Context. It is set before Done is closed, as
// wazero reads it right after Done to pick the exit code.
func (c *callCtx) Err() error {
	if s := c.state.Load() & ctxMask; s == ctxFiring || s == ctxFired {
		return context.DeadlineExceeded
	}
	return nil
}

// Value implements context.Context.
func (c *callCtx) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c.call
	}
	return nil
}
