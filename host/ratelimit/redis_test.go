package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
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
	o.OnRecover = func() {
		h.recovers.Add(1)
		select { // hooks must not block, even when a store flaps
		case h.recovered <- struct{}{}:
		default:
		}
	}
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

// scriptCounter counts the decisions a client sends, not the probes.
type scriptCounter struct{ n atomic.Int64 }

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		// Decisions only: EVAL[SHA] script numkeys key, not on the probe's key.
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			if args := cmd.Args(); len(args) < 4 || !strings.HasSuffix(fmt.Sprint(args[3]), probeSuffix) {
				c.n.Add(1)
			}
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
	if _, err := NewRedis(RedisOptions{Addr: "127.0.0.1:1", PoolSize: -1}); err == nil {
		t.Error("negative pool size accepted")
	}
	r, err := NewRedis(RedisOptions{Addr: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if r.prefix != "ratelimit:" || r.probeKey != "ratelimit:\x00probe" || r.timeout != 50*time.Millisecond || r.probeInterval != time.Second || r.fallback == nil {
		t.Errorf("defaults: prefix %q probe key %q timeout %v probe %v fallback %v", r.prefix, r.probeKey, r.timeout, r.probeInterval, r.fallback)
	}
	// The wait for a connection ends before the decision's deadline.
	if o := r.client.Options(); o.PoolTimeout != 25*time.Millisecond || o.PoolSize < 1 {
		t.Errorf("pool: timeout %v size %d", o.PoolTimeout, o.PoolSize)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	r, err = NewRedis(RedisOptions{Addr: "127.0.0.1:1", Timeout: time.Second, PoolSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if o := r.client.Options(); o.PoolTimeout != 500*time.Millisecond || o.PoolSize != 3 {
		t.Errorf("pool: timeout %v size %d, want 500ms 3", o.PoolTimeout, o.PoolSize)
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
	var fallbacks atomic.Int64
	stop := decideInBackground(t, a, 8, "w", 10, limits, func(d *Decision) {
		if d.Fallback {
			fallbacks.Add(1)
		}
	})
	time.Sleep(20 * time.Millisecond)
	srv.Kill()
	for deadline := time.Now().Add(10 * time.Second); fallbacks.Load() < 100; {
		if time.Now().After(deadline) {
			t.Fatal("no fallback decisions after killing redis")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
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
	var wg sync.WaitGroup
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

// TestRedisDecideAfterClose: the server closes the store of an old config
// while requests on it still decide. They get fallback decisions, exact, and
// no hook is called: nothing failed.
func TestRedisDecideAfterClose(t *testing.T) {
	srv := redistest.Start(t)
	limits := []Limit{{Name: "day", Rate: 20, Period: 24 * time.Hour}}
	for _, own := range []bool{false, true} {
		t.Run(fmt.Sprint("own fallback ", own), func(t *testing.T) {
			h := newHooks()
			o := h.opts(RedisOptions{Addr: srv.Addr(), Timeout: testTimeout, ProbeInterval: 20 * time.Millisecond, Prefix: fmt.Sprint("close-", own, ":")})
			var fallback *Local
			if !own {
				fallback = newLocal(t)
				o.Fallback = fallback
			}
			r, err := NewRedis(o)
			if err != nil {
				t.Fatal(err)
			}
			var d Decision
			if err := r.Decide(bg, "k", limits, 1, &d); err != nil || d.Fallback || !d.Allowed {
				t.Fatalf("before Close: %v %+v", err, d)
			}

			// Decisions in flight while Close runs: none fails.
			stop := decideInBackground(t, r, 4, "busy-", 5, limits, nil)
			time.Sleep(10 * time.Millisecond)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			stop()

			// After Close: the fallback decides, exactly its quota.
			if got := hammer(t, r, "after-close", limits, 4, 10); got != 20 {
				t.Fatalf("after Close %d passed, want the local quota of 20", got)
			}
			if err := r.Decide(bg, "after-close", limits, 0, &d); err != nil || !d.Fallback || d.States[0].Remaining != 0 {
				t.Fatalf("after Close: %v %+v", err, d)
			}
			if fallback != nil {
				if err := fallback.Decide(bg, "after-close", limits, 0, &d); err != nil || d.States[0].Remaining != 0 {
					t.Fatalf("the given fallback was not used: %v %+v", err, d)
				}
			}
			if n := h.fallbacks.Load(); n != 0 {
				t.Fatalf("OnFallback called %d times: Close is not an outage", n)
			}
			if r.Degraded() {
				t.Fatal("degraded after Close")
			}
		})
	}
}

// TestRedisProbeRunsTheScript: when decisions fail although Redis answers
// (no permission to run scripts or to write the keys, no memory left to
// write), the probe fails too,
// so the store stays on the fallback instead of switching back and forth at
// the probe's pace; it recovers once decisions work again.
func TestRedisProbeRunsTheScript(t *testing.T) {
	srv := redistest.Start(t)
	do := func(t *testing.T, args ...string) {
		t.Helper()
		if v, err := srv.Do(args...); err != nil || v != "OK" {
			t.Fatalf("%v: %q %v", args, v, err)
		}
	}
	acl := func(rules ...string) []string { return append([]string{"ACL", "SETUSER", "gw"}, rules...) }
	for _, tt := range []struct {
		name     string
		restrict []string // a command that breaks decisions
		restore  []string
		code     string // the error's code
	}{
		{"no scripting", acl("-@scripting"), acl("+@scripting"), "NOPERM"},
		{"read-only keys", acl("resetkeys", "%R~*"), acl("resetkeys", "~*"), "NOPERM"},
		// Reads still work: a probe that only consulted would pass.
		{"out of memory", []string{"CONFIG", "SET", "maxmemory", "1"}, []string{"CONFIG", "SET", "maxmemory", "0"}, "OOM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			do(t, acl("reset", "on", ">secret", "~*", "&*", "+@all")...)
			h := newHooks()
			r := newRedis(t, h.opts(RedisOptions{Addr: srv.Addr(), Username: "gw", Password: "secret", ProbeInterval: 10 * time.Millisecond}))
			limits := []Limit{{Name: "day", Rate: 1000, Period: 24 * time.Hour}}
			var d Decision
			if err := r.Decide(bg, "k", limits, 1, &d); err != nil || d.Fallback {
				t.Fatalf("healthy: %v %+v", err, d)
			}

			do(t, tt.restrict...)
			restored := false
			defer func() {
				if !restored {
					do(t, tt.restore...)
				}
			}()
			if err := r.Decide(bg, "k", limits, 1, &d); err != nil || !d.Fallback {
				t.Fatalf("restricted: %v %+v", err, d)
			}
			if err, _ := h.lastErr.Load().(error); !redis.HasErrorPrefix(errors.Unwrap(err), tt.code) {
				t.Fatalf("OnFallback error %v, want %s", err, tt.code)
			}
			// Many probe intervals, with requests meanwhile: a probe that
			// only PINGs would recover and fail again every time.
			for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
				if err := r.Decide(bg, "k", limits, 1, &d); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Millisecond)
			}
			if f, rc := h.fallbacks.Load(), h.recovers.Load(); f != 1 || rc != 0 {
				t.Fatalf("while restricted: OnFallback %d times, OnRecover %d times; want 1 and 0", f, rc)
			}

			do(t, tt.restore...)
			restored = true
			h.waitRecovered(t)
			if err := r.Decide(bg, "k", limits, 1, &d); err != nil || d.Fallback {
				t.Fatalf("restored: %v %+v", err, d)
			}
			if f, rc := h.fallbacks.Load(), h.recovers.Load(); f != 1 || rc != 1 {
				t.Fatalf("restored: OnFallback %d times, OnRecover %d times; want 1 and 1", f, rc)
			}
		})
	}
	// The probe's key is under the prefix and expires a moment after the
	// last probe.
	for deadline := time.Now().Add(10 * time.Second); ; {
		v, err := srv.Do("KEYS", "ratelimit:*probe*")
		if err != nil {
			t.Fatal(err)
		}
		if v == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe keys left: %q", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisWrongTypeKey: a key under the prefix holding another program's
// value fails the decisions on that key only. They are taken by the
// fallback; the store keeps deciding every other key on Redis.
func TestRedisWrongTypeKey(t *testing.T) {
	srv := redistest.Start(t)
	h := newHooks()
	r := newRedis(t, h.opts(RedisOptions{Addr: srv.Addr(), ProbeInterval: 10 * time.Millisecond}))
	if v, err := srv.Do("SET", "ratelimit:foreign", "not a hash"); err != nil || v != "OK" {
		t.Fatalf("SET: %q %v", v, err)
	}
	limits := []Limit{{Name: "day", Rate: 3, Period: 24 * time.Hour}}
	var d Decision
	for i := 0; i < 5; i++ {
		if err := r.Decide(bg, "foreign", limits, 1, &d); err != nil || !d.Fallback {
			t.Fatalf("foreign key, decision %d: %v %+v", i, err, d)
		}
		if d.Allowed != (i < 3) {
			t.Fatalf("foreign key, decision %d: allowed %v; the fallback limits it", i, d.Allowed)
		}
		if err := r.Decide(bg, "mine", limits, 0, &d); err != nil || d.Fallback {
			t.Fatalf("other key, decision %d: %v %+v", i, err, d)
		}
	}
	if r.Degraded() || h.fallbacks.Load() != 0 {
		t.Fatalf("one foreign key switched the store: degraded %v, OnFallback %d times", r.Degraded(), h.fallbacks.Load())
	}
	if v, _ := srv.Do("GET", "ratelimit:foreign"); v != "not a hash" {
		t.Fatalf("the foreign value was changed: %q", v)
	}
}

// blockingDial holds the first dial until released: the connection it
// makes holds the pool's only turn meanwhile.
type blockingDial struct {
	entered, release chan struct{}
	once             sync.Once
}

func (b *blockingDial) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		first := false
		b.once.Do(func() { first = true })
		if first {
			close(b.entered)
			<-b.release
		}
		return next(ctx, network, addr)
	}
}
func (b *blockingDial) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (b *blockingDial) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRedisPoolTimeoutIsNotAnOutage: a decision that cannot get a connection
// because all of them are busy is taken by the fallback, and the store does
// not switch: in a burst, Redis is busy, not down.
func TestRedisPoolTimeoutIsNotAnOutage(t *testing.T) {
	srv := redistest.Start(t)
	h := newHooks()
	r := newRedis(t, h.opts(RedisOptions{Addr: srv.Addr(), PoolSize: 1, Timeout: 2 * time.Second, ProbeInterval: 10 * time.Millisecond}))
	dial := &blockingDial{entered: make(chan struct{}), release: make(chan struct{})}
	r.client.AddHook(dial)
	limits := []Limit{{Name: "day", Rate: 10, Period: 24 * time.Hour}}

	// The first decision takes the only connection (its dial hangs).
	first := make(chan Decision, 1)
	go func() {
		var d Decision
		if err := r.Decide(bg, "k", limits, 1, &d); err != nil {
			t.Error(err)
		}
		first <- d
	}()
	<-dial.entered

	// The second waits for it, past the pool timeout (a second).
	var d Decision
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || !d.Fallback || !d.Allowed {
		t.Fatalf("waiting for a connection: %v %+v", err, d)
	}
	if r.Degraded() || h.fallbacks.Load() != 0 {
		t.Fatalf("a saturated pool switched the store: degraded %v, OnFallback %d times", r.Degraded(), h.fallbacks.Load())
	}
	close(dial.release)
	<-first
	if err := r.Decide(bg, "k", limits, 1, &d); err != nil || d.Fallback {
		t.Fatalf("after the burst: %v %+v", err, d)
	}
}

// TestCostAboveBurst pins what doc.go promises for a cost no wait can
// satisfy, on every store and on the Redis fallback: denied, nothing
// charged, RetryAfter InfDuration even when another limit would only ask for
// a finite wait, and the states of a consultation.
func TestCostAboveBurst(t *testing.T) {
	srv := redistest.Start(t)
	down := redistest.Start(t)
	down.Kill()
	limits := []Limit{
		{Name: "small", Rate: 10, Period: time.Hour, Burst: 3},
		{Name: "big", Rate: 100, Period: time.Hour},
	}
	for name, s := range map[string]Store{
		"local":          newLocal(t),
		"redis":          newRedis(t, RedisOptions{Addr: srv.Addr()}),
		"redis fallback": newRedis(t, RedisOptions{Addr: down.Addr(), ProbeInterval: time.Hour}),
	} {
		t.Run(name, func(t *testing.T) {
			var d Decision
			if err := s.Decide(bg, "k", limits, 2, &d); err != nil || !d.Allowed {
				t.Fatalf("charge: %v %+v", err, d)
			}
			for _, cost := range []int64{4, 101, math.MaxInt64} {
				if err := s.Decide(bg, "k", limits, cost, &d); err != nil {
					t.Fatal(err)
				}
				if d.Allowed || d.RetryAfter != InfDuration {
					t.Fatalf("cost %d: allowed %v retry %v, want denied, InfDuration", cost, d.Allowed, d.RetryAfter)
				}
				if d.States[0].Allowed || d.States[0].Remaining != 1 || d.States[1].Remaining != 98 {
					t.Fatalf("cost %d: states %+v, want small denied with 1 left, big 98 left", cost, d.States)
				}
			}
			if err := s.Decide(bg, "k", limits, 1, &d); err != nil || !d.Allowed || d.States[0].Remaining != 0 || d.States[1].Remaining != 97 {
				t.Fatalf("the denied requests were charged: %v %+v", err, d)
			}
		})
	}
}

// decideInBackground has workers goroutines decide on s without pause, each
// over mod keys of its own named from prefix, handing every decision to
// check (nil: none), until the returned stop is called; stop waits for them.
// A failed decision fails the test.
func decideInBackground(t *testing.T, s Store, workers int, prefix string, mod int, limits []Limit, check func(*Decision)) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d Decision
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if err := s.Decide(bg, fmt.Sprint(prefix, w, "-", i%mod), limits, 1, &d); err != nil {
					t.Errorf("decision: %v", err)
					return
				}
				if check != nil {
					check(&d)
				}
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
