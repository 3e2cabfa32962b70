package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// Limit is one quota: Rate requests per Period, with bursts up to Burst
// (default Rate).
//
// Limits are plain values: the stores keep no reference to them and read them
// on every decision, so a config reload may change a limit's numbers while its
// state (the theoretical arrival time) carries on.
type Limit struct {
	// Name identifies the limit's state within a key and names its policy
	// in the RateLimit headers. The limits decided together must have
	// distinct names.
	Name string
	// Rate is the number of requests (cost units) refilled per Period.
	Rate int64
	// Period is the refill period of Rate.
	Period time.Duration
	// Burst is the bucket's capacity: the most requests that can pass at
	// once after an idle spell. 0 means Rate.
	Burst int64
}

// Bounds of a Limit. They keep every intermediate value of the arithmetic
// below 2^53, so the Redis script, whose Lua numbers are doubles, computes
// exactly what the local limiter computes.
const (
	// MaxRate is the largest Rate and Burst.
	MaxRate = 1<<52 - 1
	// MaxWindow is the longest time an empty bucket takes to fill up again,
	// Burst × Period / Rate: about 52 days.
	MaxWindow = time.Duration(1 << 52)
)

// InfDuration is the RetryAfter of a request that can never pass: its cost
// is larger than the Burst of one of its limits. (The name and value are those
// of golang.org/x/time/rate.)
const InfDuration = time.Duration(math.MaxInt64)

// Decision is the outcome of one request against a set of limits (all limits
// of a route are decided together).
type Decision struct {
	// Allowed is true when every limit let the request pass; it was then
	// charged to all of them.
	Allowed bool
	// RetryAfter is, when denied, how long until the same request could pass
	// if nothing else is charged meanwhile (InfDuration when it never can);
	// 0 when allowed.
	RetryAfter time.Duration
	// States holds, per limit and in the order of the limits passed, the
	// remaining quota and the time until it is fully reset. Decide reuses
	// the slice's capacity, so a Decision kept per request allocates once.
	States []LimitState
	// Fallback is true when the decision was taken by the local limiter
	// because Redis failed.
	Fallback bool
}

// LimitState is one limit's part of a Decision.
type LimitState struct {
	// Remaining is the number of cost units that could still pass at once,
	// after this request's charge when it was allowed.
	Remaining int64
	// Reset is the time until the limit is fully reset (its bucket full
	// again) if nothing else is charged.
	Reset time.Duration
	// Allowed is false when this limit on its own denies the request.
	Allowed bool
}

// Store decides requests against limits.
type Store interface {
	// Decide charges cost against every limit for key atomically: if any
	// limit denies, none is charged. Cost 0 consults the limits without
	// charging them. The outcome is written to d, reusing d.States. An
	// error means no decision was taken: the limits are invalid, cost is
	// negative, or ctx was done.
	Decide(ctx context.Context, key string, limits []Limit, cost int64, d *Decision) error
}

// Errors of Decide and ValidateLimits, wrapped with the offending limit.
var (
	// ErrInvalidLimit reports a Limit outside the bounds documented on it.
	ErrInvalidLimit = errors.New("invalid rate limit")
	// ErrNegativeCost reports a cost below zero.
	ErrNegativeCost = errors.New("rate limit cost is negative")
)

// ValidateLimits reports the first problem of limits, the set of limits of
// one decision: a Rate, Burst or Period out of bounds, an empty name, a name
// that cannot appear in a header (only printable ASCII can), or a name used
// twice. Decide runs the same checks except the two about names' spelling, so
// call ValidateLimits when loading a config.
func ValidateLimits(limits []Limit) error {
	for i := range limits {
		l := &limits[i]
		if l.Name == "" {
			return fmt.Errorf("limit #%d: %w: empty name", i+1, ErrInvalidLimit)
		}
		for j := 0; j < len(l.Name); j++ {
			if c := l.Name[j]; c < 0x20 || c > 0x7e {
				return fmt.Errorf("limit %q: %w: name has byte %#x; only printable ASCII fits a header", l.Name, ErrInvalidLimit, c)
			}
		}
	}
	return checkLimits(limits)
}

// checkLimits validates limits for a decision.
func checkLimits(limits []Limit) error {
	for i := range limits {
		l := &limits[i]
		switch {
		case l.Rate < 1 || l.Rate > MaxRate:
			return fmt.Errorf("limit %q: %w: rate %d not in [1, %d]", l.Name, ErrInvalidLimit, l.Rate, int64(MaxRate))
		case l.Period <= 0:
			return fmt.Errorf("limit %q: %w: period %v is not positive", l.Name, ErrInvalidLimit, l.Period)
		case l.Burst < 0 || l.Burst > MaxRate:
			return fmt.Errorf("limit %q: %w: burst %d not in [0, %d]", l.Name, ErrInvalidLimit, l.Burst, int64(MaxRate))
		}
		if w, ok := mulDiv(l.burst(), int64(l.Period), l.Rate); !ok || w.n >= int64(MaxWindow) {
			return fmt.Errorf("limit %q: %w: burst %d × period %v / rate %d is longer than %v", l.Name, ErrInvalidLimit, l.burst(), l.Period, l.Rate, MaxWindow)
		}
		for j := 0; j < i; j++ {
			if limits[j].Name == l.Name {
				return fmt.Errorf("limit %q: %w: name used twice in one decision", l.Name, ErrInvalidLimit)
			}
		}
	}
	return nil
}

func (l *Limit) burst() int64 {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// span is an exact duration: n nanoseconds plus f/rate of a nanosecond, with
// 0 <= f < rate, where rate is the Rate of the limit it belongs to. The
// emission interval Period/Rate is rarely a whole number of nanoseconds; the
// fraction keeps the sum of many of them exact, so a limit never drifts.
type span struct{ n, f int64 }

func (a span) add(b span, rate int64) span {
	a.n += b.n
	a.f += b.f
	if a.f >= rate {
		a.n++
		a.f -= rate
	}
	return a
}

// sub returns a-b; a >= b.
func (a span) sub(b span, rate int64) span {
	a.n -= b.n
	a.f -= b.f
	if a.f < 0 {
		a.n--
		a.f += rate
	}
	return a
}

func (a span) le(b span) bool { return a.n < b.n || a.n == b.n && a.f <= b.f }

// ceil rounds up to whole nanoseconds.
func (a span) ceil() time.Duration {
	if a.f > 0 {
		return time.Duration(a.n + 1)
	}
	return time.Duration(a.n)
}

// mulDiv returns a×b/c as a span in units of 1/c (quotient and remainder),
// exactly; ok is false when the quotient does not fit an int64. a, b >= 0,
// c > 0.
func mulDiv(a, b, c int64) (span, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		return span{}, false
	}
	q, r := bits.Div64(hi, lo, uint64(c))
	if q > math.MaxInt64 {
		return span{}, false
	}
	return span{int64(q), int64(r)}, true
}

// params is one limit prepared for one decision: the spans the GCRA test
// compares, in units of the limit's Rate.
type params struct {
	rate, period, burst int64
	cost                span // cost × T (emission interval T = Period/Rate)
	window              span // burst × T: the bucket's capacity as time
	over                bool // cost > burst: never allowed
}

// prepare computes the params of a limit that checkLimits accepted.
func prepare(l *Limit, cost int64) params {
	p := params{rate: l.Rate, period: int64(l.Period), burst: l.burst()}
	p.window, _ = mulDiv(p.burst, p.period, p.rate)
	if cost > p.burst {
		// Any span above the window denies; this one keeps the arithmetic
		// far from overflow whatever the cost.
		p.over = true
		p.cost = p.window.add(span{n: 1}, p.rate)
	} else {
		p.cost, _ = mulDiv(cost, p.period, p.rate) // <= window: fits
	}
	return p
}

// debt is the GCRA state of a limit at time now: how far its theoretical
// arrival time tat lies in the future (zero when it is in the past). Both are
// in nanoseconds of one clock; tat's fraction is in units of 1/rate.
func (p *params) debt(tat span, now int64) span {
	if tat.f >= p.rate { // left by a larger Rate before a reload
		tat.f = p.rate - 1
	}
	if tat.n > now || tat.n == now && tat.f > 0 {
		return span{tat.n - now, tat.f}
	}
	return span{}
}

// remaining converts a debt to the quota units still available:
// floor((window - debt) / T).
func (p *params) remaining(debt span) int64 {
	if !debt.le(p.window) {
		return 0
	}
	s := p.window.sub(debt, p.rate)
	// s/T = (s.n×rate + s.f) / period, with s <= window so the quotient
	// is at most burst.
	hi, lo := bits.Mul64(uint64(s.n), uint64(p.rate))
	var c uint64
	lo, c = bits.Add64(lo, uint64(s.f), 0)
	hi += c
	q, _ := bits.Div64(hi, lo, uint64(p.period))
	return int64(q)
}

// outcome fills st for a limit whose debt before the decision was x, and
// returns how long until the request could pass on this limit alone (0 when
// it can now). allowedAll is the decision's verdict; charge is cost > 0.
func (p *params) outcome(x span, allowedAll, charge bool, st *LimitState) time.Duration {
	need := x.add(p.cost, p.rate)
	st.Allowed = !p.over && need.le(p.window)
	after := x
	if allowedAll && charge {
		after = need
	}
	st.Remaining = p.remaining(after)
	st.Reset = after.ceil()
	switch {
	case st.Allowed:
		return 0
	case p.over:
		return InfDuration
	}
	return need.sub(p.window, p.rate).ceil()
}

// reset clears d for a decision over n limits, reusing its States.
func (d *Decision) reset(n int) {
	d.Allowed = false
	d.RetryAfter = 0
	d.Fallback = false
	if cap(d.States) < n {
		d.States = make([]LimitState, n)
	}
	d.States = d.States[:n]
}

// maxStack is the number of limits a decision prepares without allocating.
const maxStack = 8
