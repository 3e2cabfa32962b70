package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/testkit"
)

// backend is a real fasthttp server on 127.0.0.1 that answers with its id.
type backend struct {
	id     string
	addr   string
	hits   atomic.Int64
	health atomic.Int32 // status of /healthz
	handle atomic.Pointer[fasthttp.RequestHandler]
}

func startBackend(t testing.TB, id string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{id: id, addr: ln.Addr().String()}
	b.health.Store(fasthttp.StatusOK)
	srv := &fasthttp.Server{Handler: b.serve}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.ShutdownWithContext(ctx)
	})
	return b
}

func (b *backend) serve(ctx *fasthttp.RequestCtx) {
	if string(ctx.Path()) == "/healthz" {
		ctx.SetStatusCode(int(b.health.Load()))
		return
	}
	b.hits.Add(1)
	if h := b.handle.Load(); h != nil {
		(*h)(ctx)
		return
	}
	ctx.SetBodyString(b.id)
}

func (b *backend) setHandler(h fasthttp.RequestHandler) { b.handle.Store(&h) }

// deadAddr returns an address nothing listens on.
func deadAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func upstreamConfig(balance string, addrs ...string) config.Upstream {
	cfg := config.Upstream{
		Name:        "test",
		Balance:     balance,
		MaxConns:    64,
		MaxIdleTime: config.Duration(10 * time.Second),
		Timeouts: config.Timeouts{
			Connect: config.Duration(time.Second), Read: config.Duration(5 * time.Second),
			Write: config.Duration(5 * time.Second), Total: config.Duration(10 * time.Second),
		},
	}
	for _, a := range addrs {
		cfg.Targets = append(cfg.Targets, config.Target{Address: a, Weight: 1})
	}
	return cfg
}

func newUpstream(t testing.TB, cfg config.Upstream) *Upstream {
	t.Helper()
	u, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

// send proxies one request and returns the body of the answer.
func send(u *Upstream, method string, mod func(*Exchange)) (string, *Exchange, error) {
	x := &Exchange{Req: new(fasthttp.Request), Resp: new(fasthttp.Response)}
	x.Req.SetRequestURI("/x")
	x.Req.Header.SetHost("gw.test")
	x.Req.Header.SetMethod(method)
	if mod != nil {
		mod(x)
	}
	err := u.Do(x)
	return string(x.Resp.Body()), x, err
}

func kindOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind.String()
	}
	return fmt.Sprint(err)
}

// waitFor polls cond; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, what, cond)
}

func targetStatus(u *Upstream, addr string) TargetStatus {
	for _, ts := range u.Status().Targets {
		if ts.Address == addr {
			return ts
		}
	}
	return TargetStatus{}
}

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*config.Upstream)
	}{
		{"unknown balance", func(c *config.Upstream) { c.Balance = "random" }},
		{"hash without hash", func(c *config.Upstream) { c.Balance = "consistent_hash" }},
		{"hash header without name", func(c *config.Upstream) {
			c.Balance, c.Hash = "consistent_hash", &config.HashOn{Source: "header"}
		}},
		{"target without port", func(c *config.Upstream) { c.Targets[0].Address = "127.0.0.1" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := upstreamConfig("round_robin", "127.0.0.1:1")
			tc.mod(&cfg)
			if _, err := New(cfg, nil); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
	cfg := upstreamConfig("", "127.0.0.1:1")
	u := newUpstream(t, cfg)
	if u.Name() != "test" || u.Config().Targets[0].Address != "127.0.0.1:1" || u.Status().Balance != "round_robin" {
		t.Fatalf("got %q %+v", u.Name(), u.Status())
	}
}

func TestRoundRobinCycle(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	u := newUpstream(t, upstreamConfig("round_robin", a.addr, b.addr, c.addr))
	var got []string
	for range 9 {
		body, _, err := send(u, "GET", nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, body)
	}
	if !slices.Equal(got[:3], []string{"a", "b", "c"}) {
		t.Fatalf("first cycle %v", got)
	}
	for i := 3; i < len(got); i++ {
		if got[i] != got[i-3] {
			t.Fatalf("not a cycle: %v", got)
		}
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	cfg := upstreamConfig("weighted_round_robin", a.addr, b.addr, c.addr)
	cfg.Targets[0].Weight = 5
	var seq string
	u := newUpstream(t, cfg)
	for range 14 { // two cycles
		body, _, err := send(u, "GET", nil)
		if err != nil {
			t.Fatal(err)
		}
		seq += body
	}
	// Smooth WRR (nginx): the heavy target's turns are spread out.
	if seq != "aabacaaaabacaa" {
		t.Fatalf("sequence %q", seq)
	}
	st := u.Status()
	if st.Targets[0].Requests != 10 || st.Targets[1].Requests != 2 || st.Targets[2].Requests != 2 {
		t.Fatalf("counts %+v", st.Targets)
	}
}

func TestSchedule(t *testing.T) {
	for _, w := range [][]int{{1}, {3, 2, 1}, {100, 100}, {7, 13, 1, 1}, {1 << 20, 1}} {
		s := schedule(w)
		counts := make([]int, len(w))
		for _, i := range s {
			counts[i]++
		}
		for i := range w {
			// Exact once reduced by the gcd; scaled (still proportional) past maxSchedule.
			want := float64(w[i]) / float64(sumOf(w)) * float64(len(s))
			if d := float64(counts[i]) - want; d > 1 || d < -1 {
				t.Fatalf("weights %v: counts %v over %d", w, counts, len(s))
			}
		}
	}
}

func sumOf(w []int) int {
	s := 0
	for _, v := range w {
		s += v
	}
	return s
}

func TestLeastInflight(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	arrived := make(chan string, 32)
	hold := map[string]chan struct{}{"a": make(chan struct{}), "b": make(chan struct{})}
	for _, be := range []*backend{a, b} {
		be.setHandler(func(ctx *fasthttp.RequestCtx) {
			arrived <- be.id
			<-hold[be.id]
			ctx.SetBodyString(be.id)
		})
	}
	u := newUpstream(t, upstreamConfig("least_inflight", a.addr, b.addr))
	first := make(chan string, 1)
	go func() { body, _, _ := send(u, "GET", nil); first <- body }()
	busy := <-arrived // one request in flight on busy
	second := make(chan string, 1)
	go func() { body, _, _ := send(u, "GET", nil); second <- body }()
	idle := <-arrived
	if idle == busy {
		t.Fatalf("second request went to the busy target %s", busy)
	}
	close(hold[idle])
	if got := <-second; got != idle {
		t.Fatalf("second answered by %s", got)
	}
	for i := range 10 { // busy still has one in flight, idle none
		body, _, err := send(u, "GET", nil)
		if err != nil || body != idle {
			t.Fatalf("request %d: %q %v, want %s", i, body, err, idle)
		}
		<-arrived
	}
	close(hold[busy])
	if got := <-first; got != busy {
		t.Fatalf("first answered by %s", got)
	}
}

func TestConsistentHashDo(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	cfg := upstreamConfig("consistent_hash", a.addr, b.addr, c.addr)
	cfg.Hash = &config.HashOn{Source: "header", Name: "X-User"}
	u := newUpstream(t, cfg)
	seen := map[string]bool{}
	for i := range 30 {
		key := fmt.Sprint("user-", i%10)
		var want string
		for range 3 {
			body, _, err := send(u, "GET", func(x *Exchange) { x.Req.Header.Set("X-User", key) })
			if err != nil {
				t.Fatal(err)
			}
			if want != "" && body != want {
				t.Fatalf("key %s went to %s then %s", key, want, body)
			}
			want = body
		}
		seen[want] = true
	}
	if len(seen) < 2 {
		t.Fatalf("10 keys all on %v", seen)
	}
}

func TestHealthCheck(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	dead := deadAddr(t)
	cfg := upstreamConfig("round_robin", a.addr, b.addr, dead)
	cfg.HealthCheck = &config.HealthCheck{
		Path: "/healthz", Interval: config.Duration(10 * time.Millisecond), Timeout: config.Duration(time.Second),
		UnhealthyThreshold: 2, HealthyThreshold: 2,
	}
	u := newUpstream(t, cfg)
	u.Start()
	u.Start() // idempotent
	waitFor(t, "dead target down", func() bool { return !targetStatus(u, dead).Healthy })
	a.health.Store(fasthttp.StatusServiceUnavailable)
	waitFor(t, "a down", func() bool { return !targetStatus(u, a.addr).Healthy })
	for range 6 {
		if body, _, err := send(u, "GET", nil); err != nil || body != "b" {
			t.Fatalf("got %q %v with only b healthy", body, err)
		}
	}
	b.health.Store(fasthttp.StatusInternalServerError)
	waitFor(t, "b down", func() bool { return !targetStatus(u, b.addr).Healthy })
	if _, _, err := send(u, "GET", nil); kindOf(err) != "no_target" || err.(*Error).Status() != 503 {
		t.Fatalf("all down: %v", err)
	}
	a.health.Store(fasthttp.StatusFound) // 3xx counts as healthy
	waitFor(t, "a up", func() bool { return targetStatus(u, a.addr).Healthy })
	if body, _, err := send(u, "GET", nil); err != nil || body != "a" {
		t.Fatalf("after recovery: %q %v", body, err)
	}
	u.Close()
}

func TestCircuitBreaker(t *testing.T) {
	be := startBackend(t, "a")
	cfg := upstreamConfig("round_robin", be.addr)
	cfg.CircuitBreaker = &config.CircuitBreaker{ConsecutiveFailures: 3, OpenFor: config.Duration(10 * time.Second)}
	u := newUpstream(t, cfg)
	var clock atomic.Int64
	clock.Store(int64(time.Hour))
	u.now = clock.Load
	fail := func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusInternalServerError) }
	circuit := func() string { return targetStatus(u, be.addr).Circuit }

	be.setHandler(fail)
	for i := range 3 {
		if circuit() != "closed" {
			t.Fatalf("open after %d failures", i)
		}
		if _, x, err := send(u, "GET", nil); err != nil || x.Resp.StatusCode() != 500 {
			t.Fatalf("5xx is passed on: %v", err)
		}
	}
	if circuit() != "open" {
		t.Fatalf("circuit %s after 3 failures", circuit())
	}
	_, x, err := send(u, "GET", nil)
	if kindOf(err) != "circuit_open" || err.(*Error).Status() != 503 || x.Attempts != 0 {
		t.Fatalf("open circuit: %v, %d attempts", err, x.Attempts)
	}

	// After open_for one trial goes through; the others are refused meanwhile.
	clock.Add(int64(10 * time.Second))
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	be.setHandler(func(ctx *fasthttp.RequestCtx) { arrived <- struct{}{}; <-release })
	trial := make(chan error, 1)
	go func() { _, _, err := send(u, "GET", nil); trial <- err }()
	<-arrived
	if circuit() != "half_open" {
		t.Fatalf("circuit %s during the trial", circuit())
	}
	if _, _, err := send(u, "GET", nil); kindOf(err) != "circuit_open" {
		t.Fatalf("second request during the trial: %v", err)
	}
	close(release)
	if err := <-trial; err != nil {
		t.Fatal(err)
	}
	if circuit() != "closed" {
		t.Fatalf("circuit %s after a good trial", circuit())
	}

	// A failed trial opens the circuit again.
	be.setHandler(fail)
	for range 3 {
		send(u, "GET", nil)
	}
	clock.Add(int64(10 * time.Second))
	if _, x, err := send(u, "GET", nil); err != nil || x.Attempts != 1 {
		t.Fatalf("trial: %v", err)
	}
	if _, _, err := send(u, "GET", nil); kindOf(err) != "circuit_open" || circuit() != "open" {
		t.Fatalf("after a failed trial: %v, %s", err, circuit())
	}
	if f := targetStatus(u, be.addr).Failures; f != 7 {
		t.Fatalf("failures %d, want 7", f)
	}
}

func TestCircuitSkipsTarget(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	cfg := upstreamConfig("round_robin", a.addr, b.addr)
	cfg.CircuitBreaker = &config.CircuitBreaker{ConsecutiveFailures: 1, OpenFor: config.Duration(time.Hour)}
	u := newUpstream(t, cfg)
	a.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(502) })
	for range 2 {
		send(u, "GET", nil)
	}
	for range 4 {
		if body, _, err := send(u, "GET", nil); err != nil || body != "b" {
			t.Fatalf("got %q %v", body, err)
		}
	}
}

func TestRetries(t *testing.T) {
	alive := startBackend(t, "alive")
	bad := startBackend(t, "bad")
	bad.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusServiceUnavailable) })
	dead := deadAddr(t)
	onConnect := &config.Retries{Attempts: 2, On: []string{"connect_error"}}
	no := false
	for _, tc := range []struct {
		name      string
		method    string
		key       bool
		upstream  *config.Retries
		route     *config.Retries
		other     string // the target besides alive
		wantFails int    // of 4 requests
	}{
		{"GET retried", "GET", false, onConnect, nil, dead, 0},
		{"GET without policy", "GET", false, nil, nil, dead, 2},
		{"POST not retried", "POST", false, onConnect, nil, dead, 2},
		{"POST with Idempotency-Key", "POST", true, onConnect, nil, dead, 0},
		{"POST with idempotent_only false", "POST", false, &config.Retries{Attempts: 1, On: []string{"connect_error"}, IdempotentOnly: &no}, nil, dead, 0},
		{"route policy", "GET", false, nil, onConnect, dead, 0},
		{"route policy without connect_error", "GET", false, onConnect, &config.Retries{Attempts: 1, On: []string{"timeout"}}, dead, 2},
		{"status 503 retried", "GET", false, &config.Retries{Attempts: 1, On: []string{"503"}, Backoff: config.Duration(time.Millisecond)}, nil, bad.addr, 0},
		{"status 503 not retried", "GET", false, onConnect, nil, bad.addr, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := upstreamConfig("round_robin", tc.other, alive.addr)
			cfg.Retries = tc.upstream
			u := newUpstream(t, cfg)
			fails := 0
			for range 4 {
				body, x, err := send(u, tc.method, func(x *Exchange) {
					x.Retries = tc.route
					if tc.key {
						x.Req.Header.Set("idempotency-key", "k1")
					}
				})
				switch {
				case err == nil && body == "alive":
					if x.Target != alive.addr || x.Attempts > 2 {
						t.Fatalf("answered by %s after %d attempts", x.Target, x.Attempts)
					}
				case err != nil && kindOf(err) == "connect" && x.Attempts == 1 && x.Target == dead,
					err == nil && x.Resp.StatusCode() == 503 && x.Attempts == 1:
					fails++
				default:
					t.Fatalf("%q %v after %d attempts", body, err, x.Attempts)
				}
			}
			if fails != tc.wantFails {
				t.Fatalf("%d failed, want %d", fails, tc.wantFails)
			}
		})
	}
}

func TestRetrySameTargetWhenAlone(t *testing.T) {
	be := startBackend(t, "a")
	be.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(fasthttp.StatusServiceUnavailable) })
	cfg := upstreamConfig("round_robin", be.addr)
	cfg.Retries = &config.Retries{Attempts: 2, On: []string{"503"}}
	u := newUpstream(t, cfg)
	_, x, err := send(u, "GET", nil)
	if err != nil || x.Attempts != 3 || x.Resp.StatusCode() != 503 || be.hits.Load() != 3 {
		t.Fatalf("%v, %d attempts, %d hits", err, x.Attempts, be.hits.Load())
	}
}

func TestTimeouts(t *testing.T) {
	slow := startBackend(t, "slow")
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) }) // runs before the server's shutdown
	slow.setHandler(func(ctx *fasthttp.RequestCtx) { <-stop })
	ms := func(n int) config.Duration { return config.Duration(time.Duration(n) * time.Millisecond) }
	for _, tc := range []struct {
		name     string
		read     config.Duration // the upstream's
		route    config.Timeouts
		wantKind string
		clients  int
	}{
		{"read", ms(50), config.Timeouts{}, "timeout", 1},
		{"route read", ms(30000), config.Timeouts{Read: ms(50)}, "timeout", 1},
		{"route total", ms(30000), config.Timeouts{Total: ms(50)}, "timeout", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := upstreamConfig("round_robin", slow.addr)
			cfg.Timeouts.Read = tc.read
			cfg.Retries = &config.Retries{Attempts: 3, On: []string{"connect_error"}}
			u := newUpstream(t, cfg)
			before := slow.hits.Load()
			_, x, err := send(u, "GET", func(x *Exchange) { x.Timeouts = tc.route })
			if kindOf(err) != tc.wantKind || err.(*Error).Status() != 504 || x.Attempts != 1 {
				t.Fatalf("%v after %d attempts", err, x.Attempts)
			}
			if n := slow.hits.Load() - before; n != 1 {
				t.Fatalf("the target saw the request %d times", n)
			}
			if n := len(*u.pool.Load().targets[0].clients.Load()); n != tc.clients {
				t.Fatalf("%d clients", n)
			}
		})
	}
	u := newUpstream(t, upstreamConfig("round_robin", deadAddr(t)))
	if _, _, err := send(u, "GET", nil); kindOf(err) != "connect" || err.(*Error).Status() != 502 ||
		!errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dead target: %v", err)
	}
}

func TestSetTargetsUnderLoad(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	u := newUpstream(t, upstreamConfig("least_inflight", a.addr, b.addr))
	tb := u.pool.Load().targets[1]
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, _, err := send(u, "GET", nil); err != nil {
					failed.Add(1)
					t.Log(err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	sets := [][]string{{b.addr, c.addr}, {a.addr, b.addr, c.addr}, {b.addr}, {a.addr, b.addr}}
	var retired []*target
	for i := 0; ; i++ {
		select {
		case <-done:
		default:
			var ts []Target
			for _, addr := range sets[i%len(sets)] {
				ts = append(ts, Target{Address: addr, Weight: 1})
			}
			retired = append(retired, u.pool.Load().targets...)
			u.SetTargets(ts)
			time.Sleep(time.Millisecond)
			continue
		}
		break
	}
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d requests failed", n)
	}
	if got := u.pool.Load(); !slices.Contains(got.targets, tb) {
		t.Fatal("b, present in every set, lost its target state")
	}
	u.SetTargets([]Target{{Address: b.addr}})
	total := a.hits.Load() + b.hits.Load() + c.hits.Load()
	if total != 800 || tb.requests.Load() != b.hits.Load() {
		t.Fatalf("hits a=%d b=%d c=%d, b counted %d", a.hits.Load(), b.hits.Load(), c.hits.Load(), tb.requests.Load())
	}
	for _, t2 := range retired {
		if t2 == tb || t2.clients.Load() == nil {
			continue
		}
		for _, e := range *t2.clients.Load() {
			if n := e.hc.ConnsCount(); n != 0 {
				t.Fatalf("retired %s keeps %d connections", t2.addr, n)
			}
		}
	}
}

func TestNoTargets(t *testing.T) {
	u := newUpstream(t, upstreamConfig("weighted_round_robin"))
	if _, _, err := send(u, "GET", nil); kindOf(err) != "no_target" {
		t.Fatalf("empty upstream: %v", err)
	}
	u.SetTargets([]Target{{Address: "127.0.0.1:1", Weight: 2}, {Address: "127.0.0.1:1", Weight: 3}, {Address: ""}})
	if st := u.Status(); len(st.Targets) != 1 || st.Targets[0].Weight != 5 {
		t.Fatalf("status %+v", st)
	}
	u.Close()
	u.SetTargets(nil) // ignored after Close
	if len(u.Status().Targets) != 1 {
		t.Fatal("SetTargets after Close changed the set")
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want ErrorKind
	}{
		{&dialError{syscall.ECONNREFUSED}, ErrConnect},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ErrConnect},
		{fasthttp.ErrDialTimeout, ErrConnect},
		{fasthttp.ErrNoFreeConns, ErrBusy},
		{fasthttp.ErrTimeout, ErrTimeout},
		{fasthttp.ErrConnectionClosed, ErrReset},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), ErrReset},
		{&net.OpError{Op: "write", Err: syscall.EPIPE}, ErrReset},
		{fasthttp.ErrBodyTooLarge, ErrBodyTooLarge},
		{errors.New("garbage"), ErrOther},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	for k, want := range map[ErrorKind]int{ErrConnect: 502, ErrReset: 502, ErrOther: 502, ErrTimeout: 504, ErrNoTarget: 503, ErrCircuitOpen: 503} {
		if got := (&Error{Kind: k}).Status(); got != want {
			t.Errorf("%s: status %d, want %d", k, got, want)
		}
	}
	if ErrorKind(200).String() != "other" {
		t.Error("an unknown kind must map into the bounded set")
	}
}

func TestDoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	a, b := startBackend(t, "a"), startBackend(t, "b")
	for _, algo := range balanceNames {
		cfg := upstreamConfig(algo, a.addr, b.addr)
		cfg.Hash = &config.HashOn{Source: "client_ip"}
		u := newUpstream(t, cfg)
		x := &Exchange{Req: new(fasthttp.Request), Resp: new(fasthttp.Response), ClientIP: []byte("192.0.2.1")}
		x.Req.SetRequestURI("/x")
		x.Req.Header.SetHost("gw.test")
		if n := testing.AllocsPerRun(100, func() {
			if err := u.Do(x); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per exchange", algo, n)
		}
	}
}
