package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmgate/wasmgate/host/redistest"
)

// TestMain silences go-redis, which logs every failed dial: these tests
// make many on purpose.
func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// A generous timeout for tests that must not fall back on a busy machine.
const testTimeout = 5 * time.Second

// hooks records the calls a Redis makes to its callbacks.
type hooks struct {
	fallbacks, recovers atomic.Int32
	recovered           chan struct{}
	lastErr             atomic.Value
}

func newHooks() *hooks { return &hooks{recovered: make(chan struct{}, 16)} }

func (h *hooks) opts(o RedisOptions) RedisOptions {
	o.OnFallback = func(err error) { h.fallbacks.Add(1); h.lastErr.Store(err) }
	o.OnRecover = func() { h.recovers.Add(1); h.recovered <- struct{}{} }
	return o
}

func (h *hooks) waitRecovered(t *testing.T) {
	t.Helper()
	select {
	case <-h.recovered:
	case <-time.After(20 * time.Second):
		t.Fatal("OnRecover not called within 20s")
	}
}

// scriptCounter counts the scripts a client sends.
type scriptCounter struct{ n atomic.Int64 }

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func newRedis(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = testTimeout
	}
	r, err := NewRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

func TestNewRedisOptions(t *testing.T) {
	if _, err := NewRedis(RedisOptions{}); err == nil {
		t.Error("empty address accepted")
	}
	if _, err := NewRedis(RedisOptions{Addr: "127.0.0.1:1", Timeout: -1}); err == nil {
		t.Error("negative timeout accepted")
	}
	r, err := NewRedis(RedisOptions{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.prefix != "ratelimit:" || r.timeout != 50*time.Millisecond || r.probeInterval != time.Second || r.fallback == nil {
		t.Errorf("defaults: prefix %q timeout %v probe %v fallback %v", r.prefix, r.timeout, r.probeInterval, r.fallback)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var d Decision
	if err := r.Decide(bg, "k", []Limit{{Name: "a", Rate: 1, Period: time.Second}}, 1, &d); !errors.Is(err, ErrClosed) {
		t.Errorf("Decide after Close: %v, want ErrClosed", err)
	}
}

// TestStoresAgree runs one scenario on Local and on Redis: slow limits, so
// that the real time passing during the test changes no count.
func TestStoresAgree(t *testing.T) {
	srv := redistest.Start(t)
	limits := []Limit{
		{Name: "hourly", Rate: 10, Period: time.Hour, Burst: 5},
		{Name: "daily", Rate: 7, Period: 24 * time.Hour},
	}
	steps := []struct {
		cost    int64
		allowed bool
		remain  [2]int64
		inf     bool
	}{
		{1, true, [2]int64{4, 6}, false},
		{2, true, [2]int64{2, 4}, false},
		{3, false, [2]int64{2, 4}, false}, // hourly denies: nothing charged
		{2, true, [2]int64{0, 2}, false},
		{0, true, [2]int64{0, 2}, false},
		{6, false, [2]int64{0, 2}, true}, // above hourly's burst
		{1, false, [2]int64{0, 2}, false},
	}
	stores := map[string]Store{
		"local": newLocal(t),
		"redis": newRedis(t, RedisOptions{Addr: srv.Addr()}),
	}
	for name, s := range stores {
		t.Run(name, func(t *testing.T) {
			var d Decision
			for i, step := range steps {
				if err := s.Decide(bg, "agree", limits, step.cost, &d); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if d.Fallback {
					t.Fatalf("step %d: fallback", i)
				}
				if d.Allowed != step.allowed || d.States[0].Remaining != step.remain[0] || d.States[1].Remaining != step.remain[1] {
					t.Fatalf("step %d (cost %d): allowed %v remaining %d/%d, want %v %v", i, step.cost, d.Allowed, d.States[0].Remaining, d.States[1].Remaining, step.allowed, step.remain)
				}
				if step.inf != (d.RetryAfter == InfDuration) {
					t.Fatalf("step %d: retry %v", i, d.RetryAfter)
				}
				if !d.Allowed && !step.inf {
					// hourly: T = 6min, window 30min, debt 30min minus
					// the little time the test took.
					if d.RetryAfter > 6*time.Minute || d.RetryAfter < 6*time.Minute-time.Minute {
						t.Fatalf("step %d: retry %v, want about 6m", i, d.RetryAfter)
					}
				}
			}
			if d.States[0].Reset > 30*time.Minute || d.States[0].Reset < 29*time.Minute {
				t.Fatalf("reset %v, want about 30m", d.States[0].Reset)
			}
		})
	}
}

func TestRedisSharedExactlyUnderConcurrency(t *testing.T) {
	srv := redistest.Start(t)
	// Two gateways, each with its own client and fallback, one limit.
	a := newRedis(t, RedisOptions{Addr: srv.Addr()})
	b := newRedis(t, RedisOptions{Addr: srv.Addr()})
	limits := []Limit{
		{Name: "shared", Rate: 100, Period: 24 * time.Hour},
		{Name: "roomy", Rate: 10_000, Period: 24 * time.Hour},
	}
	var ga, gb int64
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ga = hammer(t, a, "k", limits, 8, 40) }()
	go func() { defer wg.Done(); gb = hammer(t, b, "k", limits, 8, 40) }()
	wg.Wait()
	if ga+gb != 100 {
		t.Fatalf("%d + %d passed, want exactly 100 in all", ga, gb)
	}
	if a.Degraded() || b.Degraded() {
		t.Fatal("a store fell back")
	}
	var d Decision
	if err := a.Decide(bg, "k", limits, 0, &d); err != nil {
		t.Fatal(err)
	}
	if d.States[1].Remaining != 10_000-100 {
		t.Fatalf("roomy remaining %d, want 9900: denied requests were charged", d.States[1].Remaining)
	}
}

func TestRedisFractionsAndExpiry(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedis(t, RedisOptions{Addr: srv.Addr(), Prefix: "test:"})
	// T = 1h/7 = 514285714285 ns + 5/7: the stored fraction is exact.
	limits := []Limit{{Name: "sevenths", Rate: 7, Period: time.Hour}}
	var d Decision
	for k := int64(1); k <= 7; k++ {
		if err := r.Decide(bg, "frac", limits, 1, &d); err != nil || !d.Allowed || d.Fallback {
			t.Fatalf("decision %d: %v %+v", k, err, d)
		}
		if d.States[0].Remaining != 7-k {
			t.Fatalf("decision %d: remaining %d", k, d.States[0].Remaining)
		}
		v, err := srv.Do("HGET", "test:frac", "sevenths")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(v)
		if len(f) != 3 || f[2] != strconv.FormatInt(k*5%7, 10) {
			t.Fatalf("decision %d: stored %q, want fraction %d/7", k, v, k*5%7)
		}
	}
	if err := r.Decide(bg, "frac", limits, 1, &d); err != nil || d.Allowed {
		t.Fatalf("8th: %v %+v", err, d)
	}
	pttl, err := srv.Do("PTTL", "test:frac")
	if err != nil {
		t.Fatal(err)
	}
	if ms, _ := strconv.ParseInt(pttl, 10, 64); ms <= 59*60*1000 || ms > 60*60*1000+1 {
		t.Fatalf("PTTL %s ms, want about an hour", pttl)
	}

	// A key expires once its debt is paid: 20 per second, 10 taken.
	fast := []Limit{{Name: "fast", Rate: 20, Period: time.Second}}
	if err := r.Decide(bg, "gone", fast, 10, &d); err != nil || !d.Allowed {
		t.Fatalf("fast: %v %+v", err, d)
	}
	if v, _ := srv.Do("EXISTS", "test:gone"); v != "1" {
		t.Fatalf("EXISTS test:gone = %s right after", v)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if v, _ := srv.Do("EXISTS", "test:gone"); v == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key still there 10s after its 500ms debt")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A longer limit on the same key keeps it alive: a short one never
	// shortens the key's expiry.
	long := []Limit{{Name: "long", Rate: 1, Period: time.Hour}}
	if err := r.Decide(bg, "mixed", long, 1, &d); err != nil || !d.Allowed {
		t.Fatal(err)
	}
	if err := r.Decide(bg, "mixed", fast, 1, &d); err != nil || !d.Allowed {
		t.Fatal(err)
	}
	if v, _ := srv.Do("PTTL", "test:mixed"); len(v) < 7 {
		t.Fatalf("PTTL test:mixed = %s ms, want about an hour", v)
	}
}

func TestRedisReloadsScripts(t *testing.T) {
	srv := redistest.Start(t)
	r := newRedis(t, RedisOptions{Addr: srv.Addr()})
	limits := []Limit{{Name: "n", Rate: 3, Period: time.Hour}}
	var d Decision
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || !d.Allowed || d.Fallback {
		t.Fatalf("%v %+v", err, d)
	}
	if v, err := srv.Do("SCRIPT", "FLUSH"); err != nil || v != "OK" {
		t.Fatalf("SCRIPT FLUSH: %q %v", v, err)
	}
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || !d.Allowed || d.Fallback || d.States[0].Remaining != 1 {
		t.Fatalf("after SCRIPT FLUSH: %v %+v", err, d)
	}
}

func TestRedisFailoverAndRecovery(t *testing.T) {
	srv := redistest.Start(t)
	ha, hb := newHooks(), newHooks()
	fallback := newLocal(t)
	a := newRedis(t, ha.opts(RedisOptions{Addr: srv.Addr(), ProbeInterval: 20 * time.Millisecond, Fallback: fallback}))
	b := newRedis(t, hb.opts(RedisOptions{Addr: srv.Addr(), ProbeInterval: 20 * time.Millisecond}))
	counter := &scriptCounter{}
	a.client.AddHook(counter)
	limits := []Limit{{Name: "day", Rate: 50, Period: 24 * time.Hour}}

	var d Decision
	if err := a.Decide(bg, "warm", limits, 1, &d); err != nil || d.Fallback {
		t.Fatalf("healthy: %v %+v", err, d)
	}

	// Kill Redis while 8 goroutines decide: each decision after the
	// outage is a fallback decision, and OnFallback is called once.
	stop := make(chan struct{})
	var fallbacks atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var d Decision
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := a.Decide(bg, fmt.Sprint("w", w, "-", i%10), limits, 1, &d); err != nil {
					t.Error(err)
					return
				}
				if d.Fallback {
					fallbacks.Add(1)
				}
			}
		}(w)
	}
	time.Sleep(20 * time.Millisecond)
	srv.Kill()
	for deadline := time.Now().Add(10 * time.Second); fallbacks.Load() < 100; {
		if time.Now().After(deadline) {
			t.Fatal("no fallback decisions after killing redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if n := ha.fallbacks.Load(); n != 1 {
		t.Fatalf("OnFallback called %d times, want once", n)
	}
	if err, _ := ha.lastErr.Load().(error); err == nil || !strings.Contains(err.Error(), srv.Addr()) {
		t.Fatalf("OnFallback error %v does not name the server", err)
	}
	if !a.Degraded() {
		t.Fatal("not degraded")
	}

	// While failed, decisions go straight to the fallback, exact per
	// instance, without sending anything to Redis.
	sent := counter.n.Load()
	if got := hammer(t, a, "outage", limits, 4, 25); got != 50 {
		t.Fatalf("fallback allowed %d, want the local quota of 50", got)
	}
	if err := fallback.Decide(bg, "outage", limits, 0, &d); err != nil || d.States[0].Remaining != 0 {
		t.Fatalf("the given fallback was not used: %v %+v", err, d)
	}
	if n := counter.n.Load() - sent; n != 0 {
		t.Fatalf("%d scripts sent to a failed Redis", n)
	}

	// b has not noticed yet: its first decision fails over too, once.
	if err := b.Decide(bg, "k", limits, 1, &d); err != nil || !d.Fallback {
		t.Fatalf("b during outage: %v %+v", err, d)
	}

	srv.Restart()
	ha.waitRecovered(t)
	hb.waitRecovered(t)
	if a.Degraded() || b.Degraded() || ha.recovers.Load() != 1 || hb.recovers.Load() != 1 || hb.fallbacks.Load() != 1 {
		t.Fatalf("after recovery: degraded %v %v, recovers %d %d, b fallbacks %d", a.Degraded(), b.Degraded(), ha.recovers.Load(), hb.recovers.Load(), hb.fallbacks.Load())
	}
	// Shared again: the restarted Redis is empty, and the two gateways
	// together get the quota once.
	var ga, gb int64
	wg.Add(2)
	go func() { defer wg.Done(); ga = hammer(t, a, "after", limits, 4, 20) }()
	go func() { defer wg.Done(); gb = hammer(t, b, "after", limits, 4, 20) }()
	wg.Wait()
	if ga+gb != 50 {
		t.Fatalf("after recovery %d + %d passed, want 50 in all", ga, gb)
	}
	if ha.fallbacks.Load() != 1 || hb.fallbacks.Load() != 1 {
		t.Fatal("fell back again after recovery")
	}
}

func TestRedisSlowFallsBack(t *testing.T) {
	srv := redistest.Start(t)
	h := newHooks()
	r := newRedis(t, h.opts(RedisOptions{Addr: srv.Addr(), Timeout: 300 * time.Millisecond, ProbeInterval: 20 * time.Millisecond}))
	limits := []Limit{{Name: "n", Rate: 5, Period: time.Hour}}
	var d Decision
	// Warm up (connect, load the script). A busy machine may make even
	// that slow; this test is about a hung server, so wait it out.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if err := r.Decide(bg, "warm", limits, 1, &d); err != nil {
			t.Fatal(err)
		}
		if !d.Fallback {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("redis never answered in time")
		}
		h.waitRecovered(t)
	}
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || d.Fallback {
		t.Skipf("machine too slow for a 300ms timeout: %v %+v", err, d)
	}
	before := h.fallbacks.Load()

	srv.Pause()
	paused := true
	defer func() {
		if paused {
			srv.Resume()
		}
	}()
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || !d.Fallback || !d.Allowed {
		t.Fatalf("hung redis: %v %+v", err, d)
	}
	if n := h.fallbacks.Load() - before; n != 1 {
		t.Fatalf("OnFallback called %d times", n)
	}
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || !d.Fallback {
		t.Fatalf("second: %v %+v", err, d)
	}
	srv.Resume()
	paused = false
	h.waitRecovered(t)
	// The state on Redis is the one from before the pause: one charge.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if err := r.Decide(bg, "k", limits, 0, &d); err != nil {
			t.Fatal(err)
		}
		if !d.Fallback {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still falling back")
		}
		h.waitRecovered(t)
	}
	// Two charges: the one before the pause, and the decision that timed
	// out, which Redis received and ran once it was resumed.
	if d.States[0].Remaining != 3 {
		t.Fatalf("after recovery: %+v, want 2 charges", d)
	}
}

func TestRedisDownAtStart(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	h := newHooks()
	r := newRedis(t, h.opts(RedisOptions{Addr: srv.Addr(), ProbeInterval: 20 * time.Millisecond}))
	limits := []Limit{{Name: "n", Rate: 5, Period: time.Hour}}
	var d Decision
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || !d.Fallback || !d.Allowed {
		t.Fatalf("redis down: %v %+v", err, d)
	}
	srv.Restart()
	h.waitRecovered(t)
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || d.Fallback {
		t.Fatalf("after start: %v %+v", err, d)
	}
}

func TestRedisCallerContext(t *testing.T) {
	srv := redistest.Start(t)
	h := newHooks()
	r := newRedis(t, h.opts(RedisOptions{Addr: srv.Addr()}))
	ctx, cancel := context.WithCancel(bg)
	cancel()
	var d Decision
	err := r.Decide(ctx, "k", []Limit{{Name: "n", Rate: 5, Period: time.Hour}}, 1, &d)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled caller: %v, want context.Canceled", err)
	}
	if r.Degraded() || h.fallbacks.Load() != 0 {
		t.Fatal("a canceled caller made the store fall back")
	}
	// Invalid input is reported before any round trip.
	if err := r.Decide(bg, "k", []Limit{{Name: "n"}}, 1, &d); !errors.Is(err, ErrInvalidLimit) {
		t.Fatalf("invalid limit: %v", err)
	}
	if err := r.Decide(bg, "k", nil, -1, &d); !errors.Is(err, ErrNegativeCost) {
		t.Fatalf("negative cost: %v", err)
	}
	if err := r.Decide(bg, "k", nil, 1, &d); err != nil || !d.Allowed {
		t.Fatalf("no limits: %v %+v", err, d)
	}
}
