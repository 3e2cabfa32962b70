package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var bg = context.Background()

// hammer runs workers goroutines that each decide attempts times on key and
// returns how many decisions were allowed.
func hammer(t *testing.T, s Store, key string, limits []Limit, workers, attempts int) int64 {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d Decision
			<-start
			for i := 0; i < attempts; i++ {
				if err := s.Decide(bg, key, limits, 1, &d); err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return allowed.Load()
}

func TestLocalBurstExactUnderConcurrency(t *testing.T) {
	clk := newFakeClock()
	l := clk.local(0)
	limits := []Limit{{Name: "burst", Rate: 1, Period: time.Hour, Burst: 100}}
	if got := hammer(t, l, "k", limits, 32, 20); got != 100 {
		t.Fatalf("%d of 640 passed, want exactly the burst of 100", got)
	}
	// Another key has its own bucket.
	if got := hammer(t, l, "other", limits, 8, 30); got != 100 {
		t.Fatalf("other key: %d passed, want 100", got)
	}
}

func TestLocalWindowExactUnderConcurrency(t *testing.T) {
	// 7 per second (T = 142857142.857 ns), burst 5, the clock moving 37ms
	// at a time for 200 steps with eight goroutines contending at each
	// step. A saturated GCRA allows Burst + floor(elapsed × Rate / Period).
	clk := newFakeClock()
	l := clk.local(0)
	limits := []Limit{
		{Name: "per-second", Rate: 7, Period: time.Second, Burst: 5},
		{Name: "per-hour", Rate: 1000, Period: time.Hour}, // never binding
	}
	const steps, step = 200, 37 * time.Millisecond
	var total int64
	for i := 0; i <= steps; i++ {
		if i > 0 {
			clk.Advance(step)
		}
		total += hammer(t, l, "k", limits, 8, 4)
	}
	elapsed := int64(steps * step)
	want := 5 + elapsed*7/int64(time.Second)
	if total != want {
		t.Fatalf("%d passed over %v, want exactly %d", total, time.Duration(elapsed), want)
	}
	// The never-binding limit was charged exactly once per allowed request.
	var d Decision
	if err := l.Decide(bg, "k", limits, 0, &d); err != nil {
		t.Fatal(err)
	}
	// per-hour: T = 3.6s; its debt never drained (the first step put 18s
	// of it), so it is total × T - elapsed.
	T := int64(3600 * time.Millisecond)
	debt := total*T - elapsed
	if want := (1000*T - debt) / T; d.States[1].Remaining != want {
		t.Errorf("per-hour remaining %d, want %d", d.States[1].Remaining, want)
	}
}

func TestLocalMultiLimitAtomicUnderConcurrency(t *testing.T) {
	clk := newFakeClock()
	l := clk.local(0)
	limits := []Limit{
		{Name: "wide", Rate: 1000, Period: time.Hour},
		{Name: "narrow", Rate: 10, Period: time.Hour},
	}
	if got := hammer(t, l, "k", limits, 16, 25); got != 10 {
		t.Fatalf("%d passed, want 10", got)
	}
	var d Decision
	if err := l.Decide(bg, "k", limits, 0, &d); err != nil {
		t.Fatal(err)
	}
	// 390 denied requests charged nothing to the wide limit.
	if d.States[0].Remaining != 990 || d.States[1].Remaining != 0 {
		t.Fatalf("remaining %d and %d, want 990 and 0", d.States[0].Remaining, d.States[1].Remaining)
	}
}

func TestLocalManyKeysUnderConcurrency(t *testing.T) {
	clk := newFakeClock()
	l := clk.local(0)
	limits := []Limit{{Name: "n", Rate: 3, Period: time.Hour}}
	var wg sync.WaitGroup
	var allowed atomic.Int64
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var d Decision
			for i := 0; i < 2000; i++ {
				key := strconv.Itoa(i % 500)
				if err := l.Decide(bg, key, limits, 1, &d); err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					allowed.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	if got := allowed.Load(); got != 500*3 {
		t.Fatalf("%d passed, want 3 for each of 500 keys", got)
	}
	if n := l.Len(); n != 500 {
		t.Fatalf("Len %d, want 500", n)
	}
}

func TestLocalDropsIdleKeys(t *testing.T) {
	clk := newFakeClock()
	l := clk.local(0)
	limits := []Limit{{Name: "s", Rate: 10, Period: time.Second}}
	long := []Limit{{Name: "h", Rate: 10, Period: time.Hour}}
	var d Decision
	for i := 0; i < 1000; i++ {
		if err := l.Decide(bg, "idle"+strconv.Itoa(i), limits, 1, &d); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 50; i++ {
		if err := l.Decide(bg, "busy"+strconv.Itoa(i), long, 1, &d); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Len(); n != 1050 {
		t.Fatalf("Len %d, want 1050", n)
	}
	// Consulting an unknown key creates nothing, and a denied request on
	// an unknown key neither.
	if err := l.Decide(bg, "consult", limits, 0, &d); err != nil || !d.Allowed {
		t.Fatalf("consult: %v %+v", err, d)
	}
	if err := l.Decide(bg, "too-big", limits, 11, &d); err != nil || d.Allowed {
		t.Fatalf("too big: %v %+v", err, d)
	}
	if n := l.Len(); n != 1050 {
		t.Fatalf("Len %d after consulting, want 1050", n)
	}

	// 100ms later the first keys are idle; decisions sweep them away,
	// on every shard they touch, and keep the busy ones.
	clk.Advance(100*time.Millisecond + 1)
	for i := 0; i < 100_000 && l.Len() > 50; i++ {
		if err := l.Decide(bg, "probe"+strconv.Itoa(i%997), limits, 0, &d); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.Len(); n != 50 {
		t.Fatalf("Len %d, want the 50 keys with debt", n)
	}
	if err := l.Decide(bg, "busy7", long, 0, &d); err != nil || d.States[0].Remaining != 9 {
		t.Fatalf("busy key lost its state: %v %+v", err, d.States)
	}
}

func TestLocalMaxKeys(t *testing.T) {
	clk := newFakeClock()
	l := clk.local(numShards * 4)
	limits := []Limit{{Name: "h", Rate: 10, Period: time.Hour}}
	var d Decision
	for i := 0; i < 10_000; i++ {
		if err := l.Decide(bg, strconv.Itoa(i), limits, 1, &d); err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			t.Fatalf("key %d denied", i)
		}
	}
	if n := l.Len(); n > numShards*4 {
		t.Fatalf("Len %d, want at most %d", n, numShards*4)
	}
	if e := l.Evictions(); e < 10_000-numShards*4 {
		t.Fatalf("%d evictions, want at least %d", e, 10_000-numShards*4)
	}
	// The most recent key is kept.
	if err := l.Decide(bg, "9999", limits, 0, &d); err != nil || d.States[0].Remaining != 9 {
		t.Fatalf("latest key: %v %+v", err, d.States)
	}
}

func TestLocalLimitChangesKeepState(t *testing.T) {
	clk := newFakeClock()
	l := clk.local(0)
	var d Decision
	three := []Limit{{Name: "x", Rate: 3, Period: time.Second}}
	if err := l.Decide(bg, "k", three, 2, &d); err != nil {
		t.Fatal(err)
	}
	// The fraction of the stored TAT is in thirds; rate 2 reads it
	// clamped, and the debt carries over.
	two := []Limit{{Name: "x", Rate: 2, Period: time.Second}}
	if err := l.Decide(bg, "k", two, 0, &d); err != nil {
		t.Fatal(err)
	}
	if d.States[0].Remaining != 0 || d.States[0].Reset != 666666667 {
		t.Fatalf("after reload: %+v", d.States[0])
	}
	// A new limit joining an existing key starts full; the order of
	// limits does not matter.
	both := []Limit{{Name: "y", Rate: 5, Period: time.Second}, {Name: "x", Rate: 3, Period: time.Second}}
	if err := l.Decide(bg, "k", both, 1, &d); err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.States[0].Remaining != 4 || d.States[1].Remaining != 0 {
		t.Fatalf("reordered: %+v", d)
	}
}

func TestLocalDecideAllocations(t *testing.T) {
	l := newLocal(t)
	limits := []Limit{
		{Name: "per-second", Rate: 1_000_000_000, Period: time.Second},
		{Name: "per-hour", Rate: 1_000_000_000, Period: time.Hour},
	}
	d := Decision{States: make([]LimitState, 0, 2)}
	if err := l.Decide(bg, "key", limits, 1, &d); err != nil {
		t.Fatal(err)
	}
	for name, cost := range map[string]int64{"charge": 1, "consult": 0, "deny": 1 << 40} {
		if n := testing.AllocsPerRun(1000, func() {
			_ = l.Decide(bg, "key", limits, cost, &d)
		}); n != 0 {
			t.Errorf("%s: %v allocations per decision on a known key, want 0", name, n)
		}
	}
}

func TestLocalNoLimits(t *testing.T) {
	var d Decision
	d.States = append(d.States, LimitState{Remaining: 5})
	if err := newLocal(t).Decide(bg, "k", nil, 1, &d); err != nil || !d.Allowed || len(d.States) != 0 {
		t.Fatalf("no limits: %v %+v", err, d)
	}
}

func TestLocalManyLimits(t *testing.T) {
	// More limits than the stack buffers hold.
	clk := newFakeClock()
	l := clk.local(0)
	var limits []Limit
	for i := 0; i < maxStack+3; i++ {
		limits = append(limits, Limit{Name: strconv.Itoa(i), Rate: int64(i + 1), Period: time.Minute})
	}
	var d Decision
	if err := l.Decide(bg, "k", limits, 1, &d); err != nil || !d.Allowed {
		t.Fatalf("%v %+v", err, d)
	}
	if err := l.Decide(bg, "k", limits, 1, &d); err != nil || d.Allowed || !d.States[1].Allowed || d.States[0].Allowed {
		t.Fatalf("second: %v %+v", err, d)
	}
	if d.RetryAfter != time.Minute {
		t.Fatalf("retry %v, want 1m (limit 0 refills one per minute)", d.RetryAfter)
	}
}

func TestLocalJanitor(t *testing.T) {
	clk := newFakeClock()
	l := NewLocal(LocalOptions{Now: clk.Now, SweepInterval: time.Millisecond})
	defer l.Close()
	short := []Limit{{Name: "s", Rate: 10, Period: time.Second}}
	long := []Limit{{Name: "h", Rate: 10, Period: time.Hour}}
	var d Decision
	// A spike: enough keys for most shards to pass shrinkMin.
	const spike = 100_000
	for i := 0; i < spike; i++ {
		if err := l.Decide(bg, strconv.Itoa(i), short, 1, &d); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		if err := l.Decide(bg, "live"+strconv.Itoa(i), long, 1, &d); err != nil {
			t.Fatal(err)
		}
	}
	// Then quiet: no decision at all. The janitor alone drops the idle
	// keys and gives the shards' memory back.
	clk.Advance(time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for l.Len() > 10 {
		if time.Now().After(deadline) {
			t.Fatalf("janitor left %d keys, want 10", l.Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a last round, for the rebuilds
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rebuilt := 0
	for i := range l.shards {
		if sh := &l.shards[i]; sh.peak < shrinkMin/4 {
			rebuilt++
		}
	}
	if rebuilt < numShards/2 {
		t.Fatalf("only %d of %d shards rebuilt their maps", rebuilt, numShards)
	}
	if err := l.Decide(bg, "live3", long, 0, &d); err != nil || d.States[0].Remaining != 9 {
		t.Fatalf("a live key lost its state: %v %+v", err, d.States)
	}
	if err := l.Close(); err != nil { // twice is fine
		t.Fatal(err)
	}
}
