package ratelimit

import (
	"math"
	"testing"
	"time"
)

func TestAppendPolicy(t *testing.T) {
	tests := []struct {
		limits []Limit
		want   string
	}{
		{nil, ""},
		{[]Limit{{Name: "per-second", Rate: 10, Period: time.Second}}, `"per-second";q=10;w=1`},
		{
			[]Limit{{Name: "per-second", Rate: 10, Period: time.Second, Burst: 20}, {Name: "per-hour", Rate: 1000, Period: time.Hour}},
			`"per-second";q=10;w=1, "per-hour";q=1000;w=3600`,
		},
		{[]Limit{{Name: "fast", Rate: 5, Period: 1500 * time.Millisecond}}, `"fast";q=6;w=2`},
		{[]Limit{{Name: "tenth", Rate: 1, Period: 100 * time.Millisecond}}, `"tenth";q=10;w=1`},
		{[]Limit{{Name: `a "quoted" \name`, Rate: 1, Period: time.Minute}}, `"a \"quoted\" \\name";q=1;w=60`},
		{[]Limit{{Name: "caf\xc3\xa9\n", Rate: 1, Period: time.Minute}}, `"caf???";q=1;w=60`},
		{[]Limit{{Name: "huge", Rate: MaxRate, Period: time.Nanosecond}}, `"huge";q=999999999999999;w=1`},
		{[]Limit{{Name: "bad", Rate: -1, Period: 0}}, `"bad";q=0;w=0`},
		{[]Limit{{Name: "long", Rate: 1, Period: math.MaxInt64}}, `"long";q=1;w=9223372037`},
	}
	for _, tt := range tests {
		got := string(AppendPolicy([]byte("x"), tt.limits))
		if got != "x"+tt.want {
			t.Errorf("AppendPolicy(%+v) = %s, want %s", tt.limits, got[1:], tt.want)
		}
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
// valid Structured Field Lists that say what they should.
func FuzzHeaders(f *testing.F) {
	f.Add("per-second", int64(10), int64(time.Second), "per-hour", int64(1000), int64(time.Hour), int64(3), int64(time.Second), false)
	f.Add(`q"\`, int64(-5), int64(-1), "\x00\xff", int64(math.MaxInt64), int64(math.MaxInt64), int64(-1), int64(-1), true)
	f.Add("", int64(0), int64(0), "", int64(1), int64(1500*time.Millisecond), int64(math.MaxInt64), int64(math.MaxInt64), true)
	f.Fuzz(func(t *testing.T, n1 string, r1, p1 int64, n2 string, r2, p2, remaining, reset int64, allowed bool) {
		limits := []Limit{{Name: n1, Rate: r1, Period: time.Duration(p1)}, {Name: n2, Rate: r2, Period: time.Duration(p2)}}
		policy, err := parseSFList(string(AppendPolicy(nil, limits)))
		if err != nil {
			t.Fatalf("RateLimit-Policy %q: %v", AppendPolicy(nil, limits), err)
		}
		if len(policy) != 2 {
			t.Fatalf("%d policies, want 2", len(policy))
		}
		for i, p := range policy {
			if p.params["q"] < 0 || p.params["w"] < 0 || len(p.order) != 2 || p.order[0] != "q" || p.order[1] != "w" {
				t.Fatalf("policy %d: %+v", i, p)
			}
			if ValidateLimits(limits[i:i+1]) == nil {
				if p.name != limits[i].Name || p.params["w"] < 1 {
					t.Fatalf("policy %d: %+v for %+v", i, p, limits[i])
				}
				if limits[i].Period%time.Second == 0 && p.params["q"] != min(limits[i].Rate, maxSFInteger) {
					t.Fatalf("policy %d: q=%d for rate %d", i, p.params["q"], limits[i].Rate)
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
	})
}
