package main

// A gateway that stalls or dies holding an idempotency key, with real
// processes: a redis-server (host/redistest) and two `wasmgate serve`
// children sharing it, A and B. A is frozen with SIGSTOP (it holds its
// Redis claim and can neither settle nor renew it) or killed with SIGKILL
// while its request is at the upstream; the client's retries go to B.
//
// The property under test is the README's ("Idempotency keys", "The
// guarantee"): while A's lease lasts, no repeat reaches the upstream (409
// with Retry-After); once it ends, B claims the key with a higher fencing
// token and sends the request once; A, resumed, neither sends again nor
// stores its stale answer over B's, so every later repeat replays B's.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/redistest"
)

// stallBound bounds every wait of these tests for something that is not a
// lease running out: generous, the machine may be busy.
const stallBound = 60 * time.Second

// orderEvent is a request the fenced upstream saw: when it arrived (status
// 0), or what it answered.
type orderEvent struct {
	key    string
	fence  uint64
	status int
}

// fencedOrders is an upstream that creates an order per POST and must be
// exact, as the README advises such an upstream to be: it records the
// Idempotency-Key and Idempotency-Fence of every request as it arrives,
// keeps the highest fence seen per key, and refuses to act on a request
// whose fence is below it by the time it acts (409 stale_fence): the
// request of a holder that lost its lease. The first request of each key
// is held until release (holdFirst: a slow upstream), or answered 500 at
// once (failFirst); the others are acted on at once.
type fencedOrders struct {
	addr                 string
	holdFirst, failFirst bool
	arrived, answered    chan orderEvent
	release              chan struct{}
	releaseOnce          sync.Once

	mu      sync.Mutex
	fences  map[string][]uint64 // per key, in order of arrival
	highest map[string]uint64
	created int
}

func startFencedOrders(t *testing.T, holdFirst, failFirst bool) *fencedOrders {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &fencedOrders{
		addr: ln.Addr().String(), holdFirst: holdFirst, failFirst: failFirst,
		arrived: make(chan orderEvent, 64), answered: make(chan orderEvent, 64), release: make(chan struct{}),
		fences: map[string][]uint64{}, highest: map[string]uint64{},
	}
	srv := &fasthttp.Server{Handler: o.serve}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	// Runs before Shutdown, which waits for a held request.
	t.Cleanup(o.releaseHeld)
	return o
}

func (o *fencedOrders) releaseHeld() { o.releaseOnce.Do(func() { close(o.release) }) }

func (o *fencedOrders) serve(ctx *fasthttp.RequestCtx) {
	key := string(ctx.Request.Header.Peek("Idempotency-Key"))
	fence, _ := strconv.ParseUint(string(ctx.Request.Header.Peek("Idempotency-Fence")), 10, 64)
	o.mu.Lock()
	first := len(o.fences[key]) == 0
	o.fences[key] = append(o.fences[key], fence)
	o.highest[key] = max(o.highest[key], fence)
	o.mu.Unlock()
	notifyOrder(o.arrived, orderEvent{key: key, fence: fence})
	status := o.act(ctx, key, fence, first)
	notifyOrder(o.answered, orderEvent{key: key, fence: fence, status: status})
}

func (o *fencedOrders) act(ctx *fasthttp.RequestCtx, key string, fence uint64, first bool) int {
	ctx.SetContentType("application/json")
	switch {
	case first && o.failFirst:
		ctx.SetStatusCode(500)
		fmt.Fprintf(ctx, `{"error":"order service failed","fence":%d}`, fence)
		return 500
	case first && o.holdFirst:
		select {
		case <-o.release:
		case <-time.After(2 * stallBound): // never outlive the test
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if fence < o.highest[key] {
		ctx.SetStatusCode(409)
		fmt.Fprintf(ctx, `{"error":"stale_fence","fence":%d,"highest":%d}`, fence, o.highest[key])
		return 409
	}
	o.created++
	ctx.SetStatusCode(201)
	ctx.Response.Header.Set("Location", fmt.Sprintf("/orders/ord_%d", o.created))
	fmt.Fprintf(ctx, `{"id":"ord_%d","fence":%d,"item":%s}`, o.created, fence, ctx.Request.Body())
	return 201
}

// notifyOrder sends ev without ever blocking the upstream: a test that
// lets more through than it reads has failed already.
func notifyOrder(ch chan orderEvent, ev orderEvent) {
	select {
	case ch <- ev:
	default:
	}
}

// fencesOf returns the fences of key's requests, in order of arrival.
func (o *fencedOrders) fencesOf(key string) []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]uint64(nil), o.fences[key]...)
}

func (o *fencedOrders) orders() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.created
}

// nextOrderEvent returns the next event of ch, failing the test after
// stallBound.
func nextOrderEvent(t *testing.T, ch chan orderEvent, what string) orderEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(stallBound):
		t.Fatalf("timed out waiting for %s", what)
		return orderEvent{}
	}
}

// ---- clients ----

// stallClient opens a connection per request: the transport never resends
// a request on its own (net/http may resend one carrying Idempotency-Key
// over a pooled connection that broke), and a request to a frozen gateway
// waits for it to be resumed.
var stallClient = &http.Client{Timeout: 3 * stallBound, Transport: &http.Transport{DisableKeepAlives: true}}

type idemReply struct {
	status int
	header http.Header
	body   string
}

func idemPost(url, key, body string) (idemReply, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return idemReply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	resp, err := stallClient.Do(req)
	if err != nil {
		return idemReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return idemReply{status: resp.StatusCode, header: resp.Header, body: string(b)}, err
}

type idemResult struct {
	r   idemReply
	err error
}

// postAsync sends a POST in the background; its answer comes on the
// channel.
func postAsync(url, key, body string) <-chan idemResult {
	ch := make(chan idemResult, 1)
	go func() {
		r, err := idemPost(url, key, body)
		ch <- idemResult{r, err}
	}()
	return ch
}

func awaitResult(t *testing.T, ch <-chan idemResult, what string) idemResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(3 * stallBound):
		t.Fatalf("timed out waiting for %s", what)
		return idemResult{}
	}
}

// ---- the rig ----

type stallRig struct {
	up    *fencedOrders
	a, b  *gatewayProc
	lease time.Duration
}

// startStallRig starts a redis-server, the upstream and gateways A and B
// with route (the orders route's timeouts, retries and idempotency lines).
func startStallRig(t *testing.T, up *fencedOrders, lease time.Duration, route string) *stallRig {
	t.Helper()
	rd := redistest.Start(t)
	// A generous Redis timeout: a claim that timed out on a busy machine
	// would be a store failure, which the routes (on_store_failure:
	// reject) answer 503 rather than forwarding the request unprotected.
	body := fmt.Sprintf(`
redis: {address: %q, timeout: 2s}
upstreams:
  - {name: orders, targets: [{address: %s}]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    upstream: orders
%s`, rd.Addr(), up.addr, route)
	return &stallRig{up: up, a: startServe(t, "false", body), b: startServe(t, "false", body), lease: lease}
}

// freezeGateway stops g with SIGSTOP and waits until the kernel reports it
// stopped.
func freezeGateway(t *testing.T, g *gatewayProc) {
	t.Helper()
	g.signal(t, syscall.SIGSTOP)
	stat := fmt.Sprintf("/proc/%d/stat", g.cmd.Process.Pid)
	if _, err := os.Stat(stat); err != nil {
		return // no procfs: SIGSTOP takes hold at once anyway
	}
	waitForWithin(t, "the gateway to be stopped", stallBound, func() bool {
		b, err := os.ReadFile(stat)
		if err != nil {
			return false
		}
		// pid (comm) state ...: the state follows the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		return i >= 0 && i+2 < len(s) && (s[i+2] == 'T' || s[i+2] == 't')
	})
}

// expectInFlight sends a repeat of key through g and checks that it is
// refused as in flight without reaching the upstream.
func (r *stallRig) expectInFlight(t *testing.T, g *gatewayProc, key, body string) {
	t.Helper()
	rep, err := idemPost(g.url("/orders"), key, body)
	if err != nil {
		t.Fatalf("repeat while the key is held: %v", err)
	}
	if rep.status != 409 || rep.header.Get("Retry-After") == "" || !strings.Contains(rep.body, "idempotency_key_in_flight") {
		t.Fatalf("repeat while the holder's lease lasts: %d Retry-After %q %s, want 409 idempotency_key_in_flight with Retry-After",
			rep.status, rep.header.Get("Retry-After"), rep.body)
	}
	if f := r.up.fencesOf(key); len(f) != 1 {
		t.Fatalf("requests of key %s at the upstream while the holder's lease lasts: fences %v, want the holder's one", key, f)
	}
}

// retryUntilClaimed repeats key through g until the key is no longer in
// flight (the holder's lease ran out), checking every refusal on the way,
// and returns the answer that got through. sentAt is when the holder's
// request was sent: its claim came later, so the key cannot be free before
// sentAt plus the lease.
func (r *stallRig) retryUntilClaimed(t *testing.T, g *gatewayProc, key, body string, sentAt time.Time) idemReply {
	t.Helper()
	deadline := time.Now().Add(r.lease + stallBound)
	for {
		if f := r.up.fencesOf(key); len(f) != 1 {
			t.Fatalf("requests of key %s at the upstream before the holder's lease ran out: fences %v, want the holder's one", key, f)
		}
		rep, err := idemPost(g.url("/orders"), key, body)
		if err != nil {
			t.Fatalf("retry: %v", err)
		}
		if rep.status != 409 {
			// Redis expires on its own millisecond clock: a little slack.
			if held := time.Since(sentAt); held < r.lease-100*time.Millisecond {
				t.Fatalf("the key was free %v after the holder's request, before its lease of %v: %d %s", held, r.lease, rep.status, rep.body)
			}
			return rep
		}
		if rep.header.Get("Retry-After") == "" || !strings.Contains(rep.body, "idempotency_key_in_flight") {
			t.Fatalf("retry while the key is held: 409 Retry-After %q %s, want idempotency_key_in_flight with Retry-After", rep.header.Get("Retry-After"), rep.body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s still in flight %v after the holder's request (lease %v)", key, time.Since(sentAt), r.lease)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkTakeover checks what reached the upstream once B got the key: the
// holder's request then B's, B's with a higher fence, acted on; and B's
// answer, fresh.
func (r *stallRig) checkTakeover(t *testing.T, key string, got idemReply) (holderFence, bFence uint64) {
	t.Helper()
	if got.status != 201 || got.header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("retry after the lease: %d Idempotent-Replayed %q %s, want a fresh 201", got.status, got.header.Get("Idempotent-Replayed"), got.body)
	}
	f := r.up.fencesOf(key)
	if len(f) != 2 {
		t.Fatalf("requests of key %s at the upstream: fences %v, want the holder's and B's", key, f)
	}
	if f[0] == 0 || f[1] <= f[0] {
		t.Fatalf("fences at the upstream %v: B's request must carry a higher Idempotency-Fence than the holder's", f)
	}
	if want := fmt.Sprintf(`"fence":%d`, f[1]); !strings.Contains(got.body, want) {
		t.Fatalf("B's answer %s is not the upstream's answer to B's request (%s)", got.body, want)
	}
	return f[0], f[1]
}

// expectReplays checks that a repeat of key through each gateway is B's
// answer, replayed, and reaches no upstream.
func (r *stallRig) expectReplays(t *testing.T, key, body string, want idemReply, upstreamRequests int) {
	t.Helper()
	for _, gw := range []struct {
		name string
		g    *gatewayProc
	}{{"A", r.a}, {"B", r.b}} {
		name := gw.name
		rep, err := idemPost(gw.g.url("/orders"), key, body)
		if err != nil {
			t.Fatalf("repeat through %s: %v", name, err)
		}
		if rep.status != want.status || rep.header.Get("Idempotent-Replayed") != "true" || rep.body != want.body ||
			rep.header.Get("Location") != want.header.Get("Location") {
			t.Errorf("repeat through %s: %d Idempotent-Replayed %q Location %q %s; want B's answer replayed: %d Location %q %s",
				name, rep.status, rep.header.Get("Idempotent-Replayed"), rep.header.Get("Location"), rep.body, want.status, want.header.Get("Location"), want.body)
		}
	}
	if f := r.up.fencesOf(key); len(f) != upstreamRequests {
		t.Errorf("requests of key %s at the upstream after the repeats: fences %v, want %d", key, f, upstreamRequests)
	}
}

// idemOutcome reads g's wasmgate_idempotency_requests_total for the orders
// route and outcome (0 when the series does not exist yet).
func idemOutcome(t *testing.T, g *gatewayProc, outcome string) int {
	t.Helper()
	r := get(t, "http://"+g.admin+"/metrics", bearer(testToken))
	m := regexp.MustCompile(`(?m)^wasmgate_idempotency_requests_total\{outcome="` + outcome + `",route="orders"\} (\d+)$`).FindStringSubmatch(r.body)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// targetCounts reads g's only orders target's requests, in flight and
// failures from GET /upstreams.
func targetCounts(t *testing.T, g *gatewayProc) (requests, inFlight, failures int64) {
	t.Helper()
	r := get(t, "http://"+g.admin+"/upstreams", bearer(testToken))
	var v struct {
		Upstreams []struct {
			Name    string `json:"name"`
			Targets []struct {
				InFlight int64 `json:"in_flight"`
				Requests int64 `json:"requests"`
				Failures int64 `json:"failures"`
			} `json:"targets"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || len(v.Upstreams) != 1 || len(v.Upstreams[0].Targets) != 1 {
		t.Fatalf("GET /upstreams: %v %s", err, r.body)
	}
	tg := v.Upstreams[0].Targets[0]
	return tg.Requests, tg.InFlight, tg.Failures
}

// ---- the tests ----

// TestIdempotencyStalledHolderNoDoubleSend: a gateway frozen or killed
// while holding an idempotency key on a shared Redis does not cause a
// double send after its lease, and its stale answer never replaces the
// answer of the gateway that took the key over.
func TestIdempotencyStalledHolderNoDoubleSend(t *testing.T) {
	const body = `{"item":"book"}`

	// A is frozen while its request is at the (slow) upstream. Its lease
	// (5s) outlives its total upstream timeout (2s), as config
	// validation requires, and A's timeouts run on the wall clock while
	// it is frozen: once resumed after its lease, A's exchange has timed
	// out before the upstream could answer it (the test releases the
	// upstream only after A's client got its answer). So A's client gets
	// 504 upstream_timeout, and settleKey takes its "the upstream may have
	// acted" path: the key is neither completed nor released by A
	// (outcome not_stored, "held until its lease ends" in A's log) and
	// B's stored answer stands.
	t.Run("SIGSTOP while in flight", func(t *testing.T) {
		const key = "stall-frozen"
		r := startStallRig(t, startFencedOrders(t, true, false), 5*time.Second,
			"    timeouts: {total: 2s}\n    idempotency: {lease: 5s, on_store_failure: reject}\n")

		sentAt := time.Now()
		aDone := postAsync(r.a.url("/orders"), key, body)
		if ev := nextOrderEvent(t, r.up.arrived, "A's request at the upstream"); ev.key != key || ev.fence == 0 {
			t.Fatalf("first request at the upstream: %+v, want key %s with a fence", ev, key)
		}
		freezeGateway(t, r.a)

		// 2. Before the lease ends: 409, and nothing reaches the upstream.
		r.expectInFlight(t, r.b, key, body)

		// 3. After it: B claims the key and sends it once, with a
		// higher fence.
		got := r.retryUntilClaimed(t, r.b, key, body, sentAt)
		aFence, bFence := r.checkTakeover(t, key, got)
		if ev := nextOrderEvent(t, r.up.answered, "B's request answered"); ev.fence != bFence || ev.status != 201 {
			t.Fatalf("upstream's first answer: %+v, want 201 to B's fence %d", ev, bFence)
		}

		// 4. A resumes: its exchange has timed out.
		r.a.signal(t, syscall.SIGCONT)
		res := awaitResult(t, aDone, "A's answer after SIGCONT")
		if res.err != nil || res.r.status != 504 || !strings.Contains(res.r.body, "upstream_timeout") {
			t.Fatalf("A's client after the resume: %v %d %s, want 504 upstream_timeout (A's total timeout ran out while it was frozen)", res.err, res.r.status, res.r.body)
		}
		// The upstream now finishes A's request: an exact upstream refuses
		// it, B's fence being higher.
		r.up.releaseHeld()
		if ev := nextOrderEvent(t, r.up.answered, "A's held request answered"); ev.fence != aFence || ev.status != 409 {
			t.Fatalf("upstream's answer to A's held request: %+v, want 409 stale_fence to fence %d", ev, aFence)
		}

		r.expectBsAnswerOnly(t, key, body, got)
		waitFor(t, "A to log that it holds the key until its lease ends", func() bool {
			return strings.Contains(r.a.stderr.String(), "idempotency key held until its lease ends")
		})
	})

	// A is frozen after its upstream answered 500 and before it retries
	// (a retry backoff longer than the time the test needs to freeze it):
	// the one way to resume A with an answer in hand after its lease, as
	// its lease (8s) outlives its total timeout (6s). Resumed, A finds its
	// total timeout spent and does not retry: nothing more reaches the
	// upstream. It settles its key with the 500 it holds: Complete is
	// fenced and refuses (ErrLeaseLost: B's token holds the key now), so
	// nothing is stored (outcome not_stored, "lease ran out before the
	// answer" in A's log) and A's client gets that 500 (the upstream's
	// answer to A's own attempt, not replayed, not B's); B's answer stands.
	t.Run("SIGSTOP with the answer in hand", func(t *testing.T) {
		const key = "stall-answered"
		r := startStallRig(t, startFencedOrders(t, false, true), 8*time.Second,
			"    timeouts: {total: 6s}\n    retries: {attempts: 1, on: [\"500\"], backoff: 5s}\n    idempotency: {lease: 8s, on_store_failure: reject}\n")

		sentAt := time.Now()
		aDone := postAsync(r.a.url("/orders"), key, body)
		ev := nextOrderEvent(t, r.up.answered, "A's first attempt answered")
		if ev.key != key || ev.fence == 0 || ev.status != 500 {
			t.Fatalf("first answer of the upstream: %+v, want 500 to key %s with a fence", ev, key)
		}
		// A has read the 500 (its target is no longer in flight) and is in
		// its backoff: freeze it there.
		waitForWithin(t, "A to read its 500", stallBound, func() bool {
			req, inFlight, failures := targetCounts(t, r.a)
			return req == 1 && inFlight == 0 && failures == 1
		})
		freezeGateway(t, r.a)
		if f := r.up.fencesOf(key); len(f) != 1 {
			t.Fatalf("A's retry went out before it was frozen (fences %v): the machine is too slow for the 5s backoff", f)
		}

		r.expectInFlight(t, r.b, key, body)
		got := r.retryUntilClaimed(t, r.b, key, body, sentAt)
		aFence, _ := r.checkTakeover(t, key, got)

		r.a.signal(t, syscall.SIGCONT)
		res := awaitResult(t, aDone, "A's answer after SIGCONT")
		if f := r.up.fencesOf(key); len(f) != 2 {
			t.Fatalf("requests of key %s at the upstream once A resumed: fences %v, want A's first attempt and B's: A sent again after its lease", key, f)
		}
		if res.err != nil || res.r.status != 500 || res.r.header.Get("Idempotent-Replayed") != "" || res.r.body != fmt.Sprintf(`{"error":"order service failed","fence":%d}`, aFence) {
			t.Fatalf("A's client after the resume: %v %d Idempotent-Replayed %q %s; want the upstream's 500 to A's attempt (fence %d), not replayed",
				res.err, res.r.status, res.r.header.Get("Idempotent-Replayed"), res.r.body, aFence)
		}

		r.expectBsAnswerOnly(t, key, body, got)
		// The answer was settled before A's client got it: the log is
		// there by now, give or take the pipe.
		waitFor(t, "A to log its lost lease", func() bool {
			return strings.Contains(r.a.stderr.String(), "lease ran out before the answer: not stored")
		})
	})

	// A is killed while its request is at the upstream: its claim stays
	// in Redis until its lease ends; then B's retry goes through, once.
	t.Run("SIGKILL while in flight", func(t *testing.T) {
		const key = "stall-killed"
		r := startStallRig(t, startFencedOrders(t, true, false), 5*time.Second,
			"    timeouts: {total: 2s}\n    idempotency: {lease: 5s, on_store_failure: reject}\n")

		sentAt := time.Now()
		aDone := postAsync(r.a.url("/orders"), key, body)
		if ev := nextOrderEvent(t, r.up.arrived, "A's request at the upstream"); ev.key != key || ev.fence == 0 {
			t.Fatalf("first request at the upstream: %+v, want key %s with a fence", ev, key)
		}
		r.a.signal(t, syscall.SIGKILL)
		r.a.wait(t, stallBound)
		if res := awaitResult(t, aDone, "A's client to see A die"); res.err == nil {
			t.Fatalf("A's client got %d %s from a killed gateway", res.r.status, res.r.body)
		}

		r.expectInFlight(t, r.b, key, body)
		got := r.retryUntilClaimed(t, r.b, key, body, sentAt)
		aFence, bFence := r.checkTakeover(t, key, got)
		if ev := nextOrderEvent(t, r.up.answered, "B's request answered"); ev.fence != bFence || ev.status != 201 {
			t.Fatalf("upstream's first answer: %+v, want 201 to B's fence %d", ev, bFence)
		}
		r.up.releaseHeld()
		if ev := nextOrderEvent(t, r.up.answered, "A's held request answered"); ev.fence != aFence || ev.status != 409 {
			t.Fatalf("upstream's answer to A's held request: %+v, want 409 stale_fence to fence %d", ev, aFence)
		}

		// B's answer is replayed, through B only: A is gone.
		for range 2 {
			rep, err := idemPost(r.b.url("/orders"), key, body)
			if err != nil || rep.status != got.status || rep.header.Get("Idempotent-Replayed") != "true" || rep.body != got.body {
				t.Fatalf("repeat through B: %v %d Idempotent-Replayed %q %s; want B's answer replayed: %s",
					err, rep.status, rep.header.Get("Idempotent-Replayed"), rep.body, got.body)
			}
		}
		if f := r.up.fencesOf(key); len(f) != 2 {
			t.Errorf("requests of key %s at the upstream: fences %v, want A's and B's only", key, f)
		}
		if n := r.up.orders(); n != 1 {
			t.Errorf("%d orders created, want 1 (B's)", n)
		}
		if s, rp := idemOutcome(t, r.b, "stored"), idemOutcome(t, r.b, "replayed"); s != 1 || rp != 2 {
			t.Errorf("B's outcomes: stored %d, replayed %d; want 1 and 2", s, rp)
		}
	})
}

// expectBsAnswerOnly checks the end of a takeover whose holder, A, came
// back: repeats through either gateway replay B's answer (got), one order
// was created, A stored nothing and settled its key as not stored, and B
// stored its answer.
func (r *stallRig) expectBsAnswerOnly(t *testing.T, key, body string, got idemReply) {
	t.Helper()
	r.expectReplays(t, key, body, got, 2)
	if n := r.up.orders(); n != 1 {
		t.Errorf("%d orders created, want 1 (B's)", n)
	}
	if s, ns := idemOutcome(t, r.a, "stored"), idemOutcome(t, r.a, "not_stored"); s != 0 || ns != 1 {
		t.Errorf("A's outcomes: stored %d, not_stored %d; want 0 and 1", s, ns)
	}
	if s := idemOutcome(t, r.b, "stored"); s != 1 {
		t.Errorf("B's outcomes: stored %d, want 1", s)
	}
}
