package proxy

// Circuit breaker states of a target.
const (
	circuitClosed uint32 = iota
	circuitOpen
	circuitHalfOpen
)

var circuitNames = [...]string{"closed", "open", "half_open"}

// admit reports whether the circuit lets a request through. Once open_for
// has passed, the first caller turns the circuit half-open and is its one
// trial request; everyone else is refused until the trial's outcome is
// recorded.
func (u *Upstream) admit(t *target) bool {
	switch t.state.Load() {
	case circuitClosed:
		return true
	case circuitOpen:
		return u.now() >= t.openUntil.Load() && t.state.CompareAndSwap(circuitOpen, circuitHalfOpen)
	}
	return false
}

// mayAdmit is admit without taking the trial, for balancers that compare
// candidates before choosing one.
func (u *Upstream) mayAdmit(t *target) bool {
	switch t.state.Load() {
	case circuitClosed:
		return true
	case circuitOpen:
		return u.now() >= t.openUntil.Load()
	}
	return false
}

// record feeds an exchange's outcome to the target's counters and breaker.
func (u *Upstream) record(t *target, failed bool) {
	if failed {
		t.failures.Add(1)
	}
	if u.cbFailures == 0 {
		return
	}
	switch st := t.state.Load(); {
	case !failed:
		if t.fails.Load() != 0 {
			t.fails.Store(0)
		}
		if st == circuitHalfOpen && t.state.CompareAndSwap(circuitHalfOpen, circuitClosed) {
			u.log.Info("circuit closed", "target", t.addr)
		}
	case st == circuitHalfOpen:
		t.openUntil.Store(u.now() + u.cbOpenFor)
		if t.state.CompareAndSwap(circuitHalfOpen, circuitOpen) {
			u.log.Warn("circuit reopened: trial request failed", "target", t.addr)
		}
	case st == circuitClosed && t.fails.Add(1) >= u.cbFailures:
		t.openUntil.Store(u.now() + u.cbOpenFor)
		if t.state.CompareAndSwap(circuitClosed, circuitOpen) {
			t.fails.Store(0)
			u.log.Warn("circuit opened", "target", t.addr, "consecutive_failures", u.cbFailures)
		}
	}
}

// uncounted records an exchange that tells nothing of the target: when it
// was the trial of a half-open circuit, the circuit opens again for no
// time at all, so that the next request is the trial.
func (u *Upstream) uncounted(t *target) {
	if t.state.Load() == circuitHalfOpen {
		t.openUntil.Store(u.now())
		t.state.CompareAndSwap(circuitHalfOpen, circuitOpen)
	}
}
