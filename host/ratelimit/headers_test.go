package ratelimit

import (
	"math"
	"math/big"
	"testing"
	"time"
)

func TestAppendPolicy(t *testing.T) {
	tests := []struct {
		name   string
		limits []Limit
		want   string
	}{
		{"none", nil, ""},
		{"burst defaults to rate", []Limit{{Name: "per-second", Rate: 10, Period: time.Second}}, `"per-second";q=10;w=1`},
		{
			"two, burst above rate",
			[]Limit{{Name: "per-second", Rate: 10, Period: time.Second, Burst: 20}, {Name: "per-hour", Rate: 1000, Period: time.Hour}},
			`"per-second";q=20;w=2, "per-hour";q=1000;w=3600`,
		},
		{"burst 2 of 1 per second", []Limit{{Name: "b", Rate: 1, Period: time.Second, Burst: 2}}, `"b";q=2;w=2`},
		{"burst below rate", []Limit{{Name: "b", Rate: 10, Period: time.Second, Burst: 1}}, `"b";q=1;w=1`},
		{"window rounded up", []Limit{{Name: "fast", Rate: 5, Period: 1500 * time.Millisecond}}, `"fast";q=5;w=2`},
		{"window of a third", []Limit{{Name: "b", Rate: 3, Period: time.Second, Burst: 4}}, `"b";q=4;w=2`},
		{"whole seconds stay exact", []Limit{{Name: "b", Rate: 3, Period: time.Second, Burst: 6}}, `"b";q=6;w=2`},
		{"window under a second", []Limit{{Name: "tenth", Rate: 1, Period: 100 * time.Millisecond}}, `"tenth";q=1;w=1`},
		{"escaped name", []Limit{{Name: `a "quoted" \name`, Rate: 1, Period: time.Minute}}, `"a \"quoted\" \\name";q=1;w=60`},
		{"non-ASCII name", []Limit{{Name: "caf\xc3\xa9\n", Rate: 1, Period: time.Minute}}, `"caf???";q=1;w=60`},
		{"q clamped", []Limit{{Name: "huge", Rate: MaxRate, Period: time.Nanosecond}}, `"huge";q=999999999999999;w=1`},
		{"invalid: no rate", []Limit{{Name: "bad", Rate: -1, Period: 0}}, `"bad";q=0;w=999999999999999`},
		{"invalid: no period", []Limit{{Name: "bad", Rate: 1, Period: -1, Burst: 3}}, `"bad";q=3;w=1`},
		{"invalid: negative burst", []Limit{{Name: "bad", Rate: 1, Period: time.Second, Burst: -3}}, `"bad";q=0;w=1`},
		{"longest period", []Limit{{Name: "long", Rate: 1, Period: math.MaxInt64}}, `"long";q=1;w=9223372037`},
		{"window beyond int64", []Limit{{Name: "long", Rate: 1, Period: math.MaxInt64, Burst: 3}}, `"long";q=3;w=27670116111`},
		{"w clamped", []Limit{{Name: "long", Rate: 1, Period: math.MaxInt64, Burst: MaxRate}}, `"long";q=999999999999999;w=999999999999999`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendPolicy([]byte("x"), tt.limits))
			if got != "x"+tt.want {
				t.Errorf("AppendPolicy(%+v) = %s, want %s", tt.limits, got[1:], tt.want)
			}
		})
	}
}

// TestHeadersMatchDecisions checks that RateLimit counts down from what
// RateLimit-Policy advertises: r = q and t = 0 on an untouched key, r = 0
// and t = w once the whole burst is spent, for limits whose bucket is not
// their Rate per Period.
func TestHeadersMatchDecisions(t *testing.T) {
	for _, l := range []Limit{
		{Name: "burst-above-rate", Rate: 1, Period: time.Second, Burst: 2},
		{Name: "burst-below-rate", Rate: 100, Period: time.Minute, Burst: 10},
		{Name: "default-burst", Rate: 5, Period: 1500 * time.Millisecond},
		{Name: "thirds", Rate: 3, Period: time.Second, Burst: 4},
		{Name: "hourly", Rate: 1000, Period: time.Hour, Burst: 50},
	} {
		t.Run(l.Name, func(t *testing.T) {
			limits := []Limit{l}
			policy, err := parseSFList(string(AppendPolicy(nil, limits)))
			if err != nil || len(policy) != 1 {
				t.Fatalf("policy %v %+v", err, policy)
			}
			q, w := policy[0].params["q"], policy[0].params["w"]
			loc := newFakeClock().local(0)
			defer loc.Close()
			header := func(cost int64) (r, tt int64) {
				t.Helper()
				var d Decision
				if err := loc.Decide(bg, "k", limits, cost, &d); err != nil || !d.Allowed {
					t.Fatalf("cost %d: %v %+v", cost, err, d)
				}
				rl, err := parseSFList(string(AppendRateLimit(nil, limits, &d)))
				if err != nil || len(rl) != 1 {
					t.Fatalf("RateLimit %v %+v", err, rl)
				}
				return rl[0].params["r"], rl[0].params["t"]
			}
			if r, tt := header(0); r != q || tt != 0 {
				t.Errorf("untouched: r=%d t=%d, want r=q=%d t=0", r, tt, q)
			}
			if r, _ := header(1); r != q-1 {
				t.Errorf("after one: r=%d, want q-1=%d", r, q-1)
			}
			if r, tt := header(q - 1); r != 0 || tt != w {
				t.Errorf("burst spent: r=%d t=%d, want r=0 t=w=%d", r, tt, w)
			}
		})
	}
}

func TestAppendRateLimit(t *testing.T) {
	two := []Limit{{Name: "per-second", Rate: 10, Period: time.Second}, {Name: "per-hour", Rate: 1000, Period: time.Hour}}
	tests := []struct {
		name   string
		limits []Limit
		states []LimitState
		want   string
	}{
		{"none", nil, nil, ""},
		{"states missing", two, nil, ""},
		{"least remaining", two, []LimitState{st(9, 100*time.Millisecond, true), st(3, 1501*time.Millisecond, true)}, `"per-hour";r=3;t=2`},
		{"denying limit first", two, []LimitState{st(0, time.Second, false), st(0, time.Hour, true)}, `"per-second";r=0;t=1`},
		{"tie: longer reset", two, []LimitState{st(0, time.Second, true), st(0, 30*time.Second, true)}, `"per-hour";r=0;t=30`},
		{"reset zero", two[:1], []LimitState{st(10, 0, true)}, `"per-second";r=10;t=0`},
		{"fewer states than limits", two, []LimitState{st(1, 2*time.Second, true)}, `"per-second";r=1;t=2`},
		{"clamped", two[:1], []LimitState{st(math.MaxInt64, InfDuration, false)}, `"per-second";r=999999999999999;t=9223372037`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decision{States: tt.states}
			if got := string(AppendRateLimit(nil, tt.limits, &d)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{-time.Second, 1}, {0, 1}, {1, 1}, {time.Second, 1}, {time.Second + 1, 2},
		{90 * time.Second, 90}, {InfDuration, 9223372037},
	} {
		if got := RetryAfterSeconds(tt.d); got != tt.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestHeadersDoNotAllocate(t *testing.T) {
	limits := []Limit{{Name: "per-second", Rate: 10, Period: time.Second}, {Name: "per-hour", Rate: 1000, Period: 90 * time.Minute}}
	d := Decision{States: []LimitState{st(3, time.Second, true), st(1, time.Hour, true)}}
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendPolicy(buf[:0], limits)
		buf = AppendRateLimit(buf[:0], limits, &d)
	}); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
}

// FuzzHeaders checks that whatever the limits and states, both headers are
// valid Structured Field Lists that say what they should: the policy
// advertises the bucket (q = Burst, w = the window in whole seconds, rounded
// up), and the RateLimit of a real decision stays within it.
func FuzzHeaders(f *testing.F) {
	f.Add("per-second", int64(10), int64(time.Second), int64(0), "per-hour", int64(1000), int64(time.Hour), int64(50), int64(3), int64(time.Second), false, int64(1))
	f.Add(`q"\`, int64(-5), int64(-1), int64(-1), "\x00\xff", int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(-1), int64(-1), true, int64(0))
	f.Add("", int64(0), int64(0), int64(0), "", int64(1), int64(1500*time.Millisecond), int64(2), int64(math.MaxInt64), int64(math.MaxInt64), true, int64(3))
	f.Add("a", int64(1), int64(time.Second), int64(2), "b", int64(3), int64(time.Second), int64(4), int64(0), int64(0), true, int64(2))
	f.Fuzz(func(t *testing.T, n1 string, r1, p1, b1 int64, n2 string, r2, p2, b2, remaining, reset int64, allowed bool, cost int64) {
		limits := []Limit{{Name: n1, Rate: r1, Period: time.Duration(p1), Burst: b1}, {Name: n2, Rate: r2, Period: time.Duration(p2), Burst: b2}}
		policy, err := parseSFList(string(AppendPolicy(nil, limits)))
		if err != nil {
			t.Fatalf("RateLimit-Policy %q: %v", AppendPolicy(nil, limits), err)
		}
		if len(policy) != 2 {
			t.Fatalf("%d policies, want 2", len(policy))
		}
		for i, p := range policy {
			if p.params["q"] < 0 || p.params["w"] < 1 || len(p.order) != 2 || p.order[0] != "q" || p.order[1] != "w" {
				t.Fatalf("policy %d: %+v", i, p)
			}
			if ValidateLimits(limits[i:i+1]) == nil {
				l := &limits[i]
				if p.name != l.Name || p.params["q"] != min(l.burst(), maxSFInteger) {
					t.Fatalf("policy %d: %+v for %+v", i, p, *l)
				}
				// w = ceil(Burst × Period / Rate / 1s), at least 1.
				num := new(big.Int).Mul(big.NewInt(l.burst()), big.NewInt(int64(l.Period)))
				den := new(big.Int).Mul(big.NewInt(l.Rate), big.NewInt(int64(time.Second)))
				num.Add(num, den).Sub(num, big.NewInt(1))
				if want := max(num.Div(num, den).Int64(), 1); p.params["w"] != want {
					t.Fatalf("policy %d: w=%d for %+v, want %d", i, p.params["w"], *l, want)
				}
			}
		}
		d := Decision{States: []LimitState{{Remaining: remaining, Reset: time.Duration(reset), Allowed: allowed}, {Remaining: 5, Reset: time.Second, Allowed: true}}}
		rl, err := parseSFList(string(AppendRateLimit(nil, limits, &d)))
		if err != nil {
			t.Fatalf("RateLimit %q: %v", AppendRateLimit(nil, limits, &d), err)
		}
		if len(rl) != 1 || len(rl[0].order) != 2 || rl[0].order[0] != "r" || rl[0].order[1] != "t" {
			t.Fatalf("RateLimit: %+v", rl)
		}
		if r := rl[0].params["r"]; r < 0 || r > min(max(remaining, 5), maxSFInteger) {
			t.Fatalf("r=%d out of range", r)
		}
		if tt := rl[0].params["t"]; tt < 0 || tt > maxSFInteger {
			t.Fatalf("t=%d out of range", tt)
		}

		// A real decision, twice (the second one sees the first's
		// charge): the RateLimit it yields never exceeds the policy of
		// the limit it names.
		if ValidateLimits(limits) != nil || cost < 0 {
			return
		}
		loc := newFakeClock().local(0)
		defer loc.Close()
		for k := 0; k < 2; k++ {
			if err := loc.Decide(bg, "k", limits, cost, &d); err != nil {
				t.Fatal(err)
			}
			rl, err := parseSFList(string(AppendRateLimit(nil, limits, &d)))
			if err != nil || len(rl) != 1 {
				t.Fatalf("RateLimit %v %+v", err, rl)
			}
			i := 0
			if rl[0].name != policy[0].name {
				i = 1
			}
			if r, q := rl[0].params["r"], policy[i].params["q"]; r > q {
				t.Fatalf("decision %d: r=%d above q=%d of %+v", k, r, q, limits[i])
			}
			if tt, w := rl[0].params["t"], policy[i].params["w"]; tt > w {
				t.Fatalf("decision %d: t=%d above w=%d of %+v", k, tt, w, limits[i])
			}
		}
	})
}
