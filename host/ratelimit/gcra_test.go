package ratelimit

import (
	"context"
	"errors"
	"math"
	"math/big"
	"testing"
	"time"
)

// step is one decision of a scenario: at offset at from the start, cost
// units against the scenario's limits, and what must come out.
type step struct {
	at      time.Duration
	cost    int64
	allowed bool
	retry   time.Duration
	states  []LimitState
}

func st(remaining int64, reset time.Duration, allowed bool) LimitState {
	return LimitState{Remaining: remaining, Reset: reset, Allowed: allowed}
}

func TestGCRA(t *testing.T) {
	ms := time.Millisecond
	perSecond10 := []Limit{{Name: "s", Rate: 10, Period: time.Second}}
	tests := []struct {
		name   string
		limits []Limit
		steps  []step
	}{
		{
			name:   "burst defaults to rate, then one per interval",
			limits: perSecond10,
			steps: []step{
				{0, 1, true, 0, []LimitState{st(9, 100*ms, true)}},
				{0, 1, true, 0, []LimitState{st(8, 200*ms, true)}},
				{0, 8, true, 0, []LimitState{st(0, time.Second, true)}},
				{0, 1, false, 100 * ms, []LimitState{st(0, time.Second, false)}},
				{99 * ms, 1, false, ms, []LimitState{st(0, 901*ms, false)}},
				{100 * ms, 1, true, 0, []LimitState{st(0, time.Second, true)}},
				{150 * ms, 1, false, 50 * ms, []LimitState{st(0, 950*ms, false)}},
				{time.Hour, 1, true, 0, []LimitState{st(9, 100*ms, true)}},
			},
		},
		{
			name:   "burst above rate",
			limits: []Limit{{Name: "b", Rate: 1, Period: time.Second, Burst: 5}},
			steps: []step{
				{0, 5, true, 0, []LimitState{st(0, 5*time.Second, true)}},
				{0, 1, false, time.Second, []LimitState{st(0, 5*time.Second, false)}},
				{2500 * ms, 2, true, 0, []LimitState{st(0, 4500*ms, true)}},
				{2500 * ms, 1, false, 500 * ms, []LimitState{st(0, 4500*ms, false)}},
			},
		},
		{
			name:   "burst of one spaces requests",
			limits: []Limit{{Name: "one", Rate: 10, Period: time.Second, Burst: 1}},
			steps: []step{
				{0, 1, true, 0, []LimitState{st(0, 100*ms, true)}},
				{50 * ms, 1, false, 50 * ms, []LimitState{st(0, 50*ms, false)}},
				{100 * ms, 1, true, 0, []LimitState{st(0, 100*ms, true)}},
			},
		},
		{
			name:   "costs above one",
			limits: perSecond10,
			steps: []step{
				{0, 4, true, 0, []LimitState{st(6, 400*ms, true)}},
				{0, 7, false, 100 * ms, []LimitState{st(6, 400*ms, false)}}, // not charged
				{0, 6, true, 0, []LimitState{st(0, time.Second, true)}},
				{300 * ms, 4, false, 100 * ms, []LimitState{st(3, 700*ms, false)}},
			},
		},
		{
			name:   "cost above burst never passes and charges nothing",
			limits: perSecond10,
			steps: []step{
				{0, 3, true, 0, []LimitState{st(7, 300*ms, true)}},
				{0, 11, false, InfDuration, []LimitState{st(7, 300*ms, false)}},
				{time.Hour, math.MaxInt64, false, InfDuration, []LimitState{st(10, 0, false)}},
			},
		},
		{
			name:   "cost zero consults",
			limits: perSecond10,
			steps: []step{
				{0, 0, true, 0, []LimitState{st(10, 0, true)}},
				{0, 10, true, 0, []LimitState{st(0, time.Second, true)}},
				{0, 0, true, 0, []LimitState{st(0, time.Second, true)}},
				{250 * ms, 0, true, 0, []LimitState{st(2, 750*ms, true)}},
			},
		},
		{
			name: "limits decided together",
			limits: []Limit{
				{Name: "per-second", Rate: 2, Period: time.Second},
				{Name: "per-minute", Rate: 3, Period: time.Minute},
			},
			steps: []step{
				{0, 1, true, 0, []LimitState{st(1, 500*ms, true), st(2, 20*time.Second, true)}},
				{0, 1, true, 0, []LimitState{st(0, time.Second, true), st(1, 40*time.Second, true)}},
				// Per-second denies, so per-minute is not charged.
				{0, 1, false, 500 * ms, []LimitState{st(0, time.Second, false), st(1, 40*time.Second, true)}},
				{500 * ms, 1, true, 0, []LimitState{st(0, time.Second, true), st(0, 59500*ms, true)}},
				// Both deny; the retry is the longer wait.
				{500 * ms, 1, false, 19500 * ms, []LimitState{st(0, time.Second, false), st(0, 59500*ms, false)}},
				{20 * time.Second, 1, true, 0, []LimitState{st(1, 500*ms, true), st(0, 60*time.Second, true)}},
			},
		},
		{
			name:   "interval of a third of a second, kept exact",
			limits: []Limit{{Name: "t", Rate: 3, Period: time.Second}},
			steps: []step{
				{0, 1, true, 0, []LimitState{st(2, 333333334, true)}},
				{0, 1, true, 0, []LimitState{st(1, 666666667, true)}},
				// Three thirds make one second exactly: no drift.
				{0, 1, true, 0, []LimitState{st(0, time.Second, true)}},
				{0, 1, false, 333333334, []LimitState{st(0, time.Second, false)}},
				// One third of a nanosecond short.
				{333333333, 1, false, 1, []LimitState{st(0, 666666667, false)}},
				{333333334, 1, true, 0, []LimitState{st(0, time.Second, true)}},
				{time.Second, 1, true, 0, []LimitState{st(1, 666666667, true)}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			start := clk.ns.Load()
			l := clk.local(0)
			var d Decision
			for i, s := range tt.steps {
				clk.ns.Store(start + int64(s.at))
				if err := l.Decide(context.Background(), "k", tt.limits, s.cost, &d); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				checkDecision(t, i, &d, s)
			}
		})
	}
}

func checkDecision(t *testing.T, i int, d *Decision, s step) {
	t.Helper()
	if d.Allowed != s.allowed || d.RetryAfter != s.retry {
		t.Errorf("step %d (cost %d at %v): allowed %v retry %v, want %v %v", i, s.cost, s.at, d.Allowed, d.RetryAfter, s.allowed, s.retry)
	}
	if len(d.States) != len(s.states) {
		t.Fatalf("step %d: %d states, want %d", i, len(d.States), len(s.states))
	}
	for j := range s.states {
		if d.States[j] != s.states[j] {
			t.Errorf("step %d limit %d: %+v, want %+v", i, j, d.States[j], s.states[j])
		}
	}
}

func TestDecideErrors(t *testing.T) {
	ok := Limit{Name: "ok", Rate: 1, Period: time.Second}
	tests := []struct {
		name   string
		limits []Limit
		cost   int64
		want   error
		strict bool // only ValidateLimits reports it
	}{
		{"rate zero", []Limit{{Name: "a", Period: time.Second}}, 1, ErrInvalidLimit, false},
		{"rate above max", []Limit{{Name: "a", Rate: MaxRate + 1, Period: time.Second}}, 1, ErrInvalidLimit, false},
		{"period zero", []Limit{{Name: "a", Rate: 1}}, 1, ErrInvalidLimit, false},
		{"negative burst", []Limit{{Name: "a", Rate: 1, Period: time.Second, Burst: -1}}, 1, ErrInvalidLimit, false},
		{"window too long", []Limit{{Name: "a", Rate: 1, Period: 53 * 24 * time.Hour}}, 1, ErrInvalidLimit, false},
		{"window overflows", []Limit{{Name: "a", Rate: 1, Period: math.MaxInt64, Burst: MaxRate}}, 1, ErrInvalidLimit, false},
		{"duplicate names", []Limit{ok, ok}, 1, ErrInvalidLimit, false},
		{"negative cost", []Limit{ok}, -1, ErrNegativeCost, false},
		{"empty name", []Limit{{Rate: 1, Period: time.Second}}, 1, ErrInvalidLimit, true},
		{"name not printable", []Limit{{Name: "a\nb", Rate: 1, Period: time.Second}}, 1, ErrInvalidLimit, true},
		{"name not ascii", []Limit{{Name: "é", Rate: 1, Period: time.Second}}, 1, ErrInvalidLimit, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decision
			err := newLocal(t).Decide(context.Background(), "k", tt.limits, tt.cost, &d)
			if tt.strict {
				if err != nil {
					t.Errorf("Decide: %v, want nil (names are checked by ValidateLimits)", err)
				}
			} else if !errors.Is(err, tt.want) {
				t.Errorf("Decide: %v, want %v", err, tt.want)
			}
			if tt.want == ErrNegativeCost {
				return
			}
			if err := ValidateLimits(tt.limits); !errors.Is(err, tt.want) {
				t.Errorf("ValidateLimits: %v, want %v", err, tt.want)
			}
		})
	}
	good := []Limit{
		{Name: `per "second"`, Rate: 10, Period: time.Second, Burst: 20},
		{Name: "max window", Rate: 1, Period: 52 * 24 * time.Hour},
		{Name: "max rate", Rate: MaxRate, Period: time.Hour},
	}
	if err := ValidateLimits(good); err != nil {
		t.Errorf("ValidateLimits(good): %v", err)
	}
}

// model is a reference GCRA written straight from the definitions in
// doc.go, in big integers: a limit's times are counted in units of 1/Rate of
// a nanosecond, where T is exactly Period units.
type model struct {
	tat map[string]*big.Int // scaled by the limit's Rate
}

func (m *model) decide(now int64, limits []Limit, cost int64) (allowed bool, retry time.Duration, states []LimitState) {
	if m.tat == nil {
		m.tat = map[string]*big.Int{}
	}
	bi := big.NewInt
	n := len(limits)
	xs, needs, windows := make([]*big.Int, n), make([]*big.Int, n), make([]*big.Int, n)
	ok := make([]bool, n)
	allowed = true
	for i, l := range limits {
		period, rate := bi(int64(l.Period)), bi(l.Rate)
		scaledNow := new(big.Int).Mul(bi(now), rate)
		windows[i] = new(big.Int).Mul(bi(l.burst()), period)
		x := new(big.Int)
		if tat, found := m.tat[l.Name]; found && tat.Cmp(scaledNow) > 0 {
			x.Sub(tat, scaledNow)
		}
		xs[i] = x
		needs[i] = new(big.Int).Add(x, new(big.Int).Mul(bi(cost), period))
		ok[i] = cost <= l.burst() && needs[i].Cmp(windows[i]) <= 0
		allowed = allowed && ok[i]
	}
	for i, l := range limits {
		period, rate := bi(int64(l.Period)), bi(l.Rate)
		after := xs[i]
		if allowed && cost > 0 {
			after = needs[i]
			m.tat[l.Name] = new(big.Int).Add(new(big.Int).Mul(bi(now), rate), after)
		}
		s := LimitState{Allowed: ok[i], Reset: time.Duration(ceilDiv(after, rate))}
		if slack := new(big.Int).Sub(windows[i], after); slack.Sign() > 0 {
			s.Remaining = new(big.Int).Quo(slack, period).Int64()
		}
		states = append(states, s)
		if !ok[i] {
			w := InfDuration
			if cost <= l.burst() {
				w = time.Duration(ceilDiv(new(big.Int).Sub(needs[i], windows[i]), rate))
			}
			retry = max(retry, w)
		}
	}
	return allowed, retry, states
}

func ceilDiv(a, b *big.Int) int64 {
	q, m := new(big.Int).QuoRem(a, b, new(big.Int))
	if m.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	return q.Int64()
}

// FuzzGCRA checks the integer GCRA of Local against the rational model over
// a sequence of decisions drawn from the input.
func FuzzGCRA(f *testing.F) {
	f.Add(int64(3), int64(time.Second), int64(1), int64(7), int64(time.Minute), int64(10), []byte{1, 0, 1, 33, 2, 1, 0, 200, 1})
	f.Add(int64(1_000_000_007), int64(time.Millisecond), int64(0), int64(1), int64(1), int64(1), []byte{255, 255, 0, 0, 1, 2, 3})
	f.Add(int64(10), int64(time.Second), int64(10), int64(100), int64(time.Hour), int64(5), []byte{10, 0, 11, 0, 0, 3, 5, 7})
	f.Fuzz(func(t *testing.T, r1, p1, b1, r2, p2, b2 int64, ops []byte) {
		limits := []Limit{
			{Name: "a", Rate: r1, Period: time.Duration(p1), Burst: b1},
			{Name: "b", Rate: r2, Period: time.Duration(p2), Burst: b2},
		}
		if err := checkLimits(limits); err != nil {
			t.Skip()
		}
		clk := newFakeClock()
		start := clk.ns.Load()
		l := clk.local(0)
		var m model
		var d Decision
		elapsed := int64(0)
		for k := 0; k < 64 && len(ops) >= 2; k++ {
			// Each op: a time step (the high bits scale it up to a
			// window) and a cost (a few units, or beyond a burst).
			adv, c := int64(ops[0]), int64(ops[1])
			ops = ops[2:]
			maxPeriod := max(p1, p2)
			elapsed += adv * adv * adv * (maxPeriod/1_000_000 + 1)
			cost := c % 8
			if c >= 250 {
				cost = max(limits[0].burst(), limits[1].burst()) + int64(c-250)
			}
			clk.ns.Store(start + elapsed)
			if err := l.Decide(context.Background(), "k", limits, cost, &d); err != nil {
				t.Fatal(err)
			}
			allowed, retry, states := m.decide(elapsed, limits, cost)
			if d.Allowed != allowed || d.RetryAfter != retry {
				t.Fatalf("at %d cost %d: allowed %v retry %v, model %v %v", elapsed, cost, d.Allowed, d.RetryAfter, allowed, retry)
			}
			for i := range states {
				if d.States[i] != states[i] {
					t.Fatalf("at %d cost %d limit %d: %+v, model %+v", elapsed, cost, i, d.States[i], states[i])
				}
			}
		}
	})
}
