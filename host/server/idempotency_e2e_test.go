package server

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/redistest"
)

// orders is an upstream that creates an order per POST it receives, as a
// non-idempotent service does: the test counts what reached it.
type orders struct {
	addr       string
	created    atomic.Int64
	delay      atomic.Int64 // ns each POST takes
	fail       atomic.Int64 // POSTs still to answer failStatus
	failStatus atomic.Int64
	fences     sync.Map // Idempotency-Fence values seen
}

func startOrders(t testing.TB) *orders {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &orders{addr: ln.Addr().String()}
	o.failStatus.Store(503)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if d := o.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if f := ctx.Request.Header.Peek("Idempotency-Fence"); len(f) > 0 {
			o.fences.Store(string(f), true)
		}
		if o.fail.Add(-1) >= 0 {
			ctx.SetStatusCode(int(o.failStatus.Load()))
			return
		}
		n := o.created.Add(1)
		ctx.SetStatusCode(201)
		ctx.Response.Header.Set("Location", fmt.Sprintf("/orders/ord_%d", n))
		ctx.Response.Header.Add("Set-Cookie", "a=1")
		ctx.Response.Header.Add("Set-Cookie", "b=2")
		ctx.SetContentType("application/json")
		fmt.Fprintf(ctx, `{"id":"ord_%d","item":%s}`, n, ctx.Request.Body())
	}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return o
}

func idemConfig(o *orders, redisAddr, policy string) string {
	redis := ""
	if redisAddr != "" {
		// A generous timeout: a decision slower than it is forwarded
		// unprotected (on_store_failure: pass, when keys are optional),
		// which a loaded machine's slow dial turned into a double send.
		redis = fmt.Sprintf("redis: {address: %s, timeout: 2s}\n", redisAddr)
	}
	return redis + fmt.Sprintf(`upstreams:
  - {name: orders, targets: [{address: %s}]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    upstream: orders
    idempotency: %s
`, o.addr, policy)
}

func post(t *testing.T, g *gateway, key, body string) response {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["Idempotency-Key"] = key
	}
	return do(t, "POST", g.url("/orders"), h, []byte(body))
}

// TestIdempotencyLocal: a repeat gets the first answer, replayed, and
// the upstream creates one order; the key with another body is 422; a
// route requiring keys refuses a POST without one (400); a 5xx is not
// stored, so the client's retry goes through; GET is not concerned.
func TestIdempotencyLocal(t *testing.T) {
	o := startOrders(t)
	g := startGateway(t, 100, idemConfig(o, "", "{required: true, ttl: 1h}"))

	first := post(t, g, "k1", `1`)
	again := post(t, g, "k1", `1`)
	if first.status != 201 || again.status != 201 || string(again.body) != string(first.body) {
		t.Fatalf("first %d %s, repeat %d %s", first.status, first.body, again.status, again.body)
	}
	if first.headers["Idempotent-Replayed"] != "" || again.headers["Idempotent-Replayed"] != "true" {
		t.Fatalf("Idempotent-Replayed: first %q, repeat %q", first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"])
	}
	if again.headers["Location"] != first.headers["Location"] || again.headers["Content-Type"] != "application/json" {
		t.Fatalf("replayed headers %v, want the first's %v", again.headers, first.headers)
	}
	if n := o.created.Load(); n != 1 {
		t.Fatalf("%d orders created, want 1", n)
	}
	if r := post(t, g, "k1", `2`); r.status != 422 || !strings.Contains(string(r.body), "idempotency_key_reused") {
		t.Fatalf("same key, another body: %d %s, want 422", r.status, r.body)
	}
	if r := post(t, g, "", `1`); r.status != 400 || !strings.Contains(string(r.body), "idempotency_key_missing") {
		t.Fatalf("no key: %d %s, want 400", r.status, r.body)
	}
	if r := post(t, g, strings.Repeat("k", 256), `1`); r.status != 400 {
		t.Fatalf("a 256-byte key: %d %s, want 400", r.status, r.body)
	}

	// 503 says the request was not processed: the key is released.
	o.fail.Store(1)
	if r := post(t, g, "k2", `3`); r.status != 503 {
		t.Fatalf("upstream unavailable: %d, want its 503", r.status)
	}
	if r := post(t, g, "k2", `3`); r.status != 201 || r.headers["Idempotent-Replayed"] != "" {
		t.Fatalf("retry after a 503: %d %v, want a fresh 201", r.status, r.headers)
	}
	// A 500 is the upstream's answer to the request: stored and replayed.
	o.fail.Store(1)
	o.failStatus.Store(500)
	if r := post(t, g, "k3", `4`); r.status != 500 {
		t.Fatalf("upstream failing: %d, want its 500", r.status)
	}
	if r := post(t, g, "k3", `4`); r.status != 500 || r.headers["Idempotent-Replayed"] != "true" {
		t.Fatalf("repeat after a 500: %d %v, want the 500 replayed", r.status, r.headers)
	}
	if r := do(t, "GET", g.url("/orders"), nil, nil); r.status != 201 {
		t.Fatalf("GET: %d", r.status)
	}
	if n := o.created.Load(); n != 3 {
		t.Fatalf("%d orders created, want 3 (k1, k2's retry, the GET)", n)
	}
	metrics := string(g.adminGet(t, "/metrics"))
	for _, want := range []string{
		`wasmgate_idempotency_requests_total{outcome="replayed",route="orders"} 2`,
		`wasmgate_idempotency_requests_total{outcome="mismatch",route="orders"} 1`,
		`wasmgate_idempotency_requests_total{outcome="not_stored",route="orders"} 1`,
		`wasmgate_idempotency_requests_total{outcome="stored",route="orders"} 3`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestIdempotencyInFlight: a repeat of a request still in flight gets 409
// with Retry-After, or, with wait, the first's answer once it is ready;
// the upstream sees one request either way.
func TestIdempotencyInFlight(t *testing.T) {
	for _, c := range []struct {
		policy     string
		wantStatus int
	}{{"{}", 409}, {"{wait: 5s}", 201}} {
		t.Run(c.policy, func(t *testing.T) {
			o := startOrders(t)
			o.delay.Store(int64(300 * time.Millisecond))
			g := startGateway(t, 100, idemConfig(o, "", c.policy))
			done := make(chan response)
			go func() { done <- post(t, g, "k", `1`) }()
			time.Sleep(100 * time.Millisecond) // the first is at the upstream
			r := post(t, g, "k", `1`)
			first := <-done
			if first.status != 201 || r.status != c.wantStatus {
				t.Fatalf("first %d, repeat %d %s; want 201 and %d", first.status, r.status, r.body, c.wantStatus)
			}
			if c.wantStatus == 409 && r.headers["Retry-After"] == "" {
				t.Error("409 without Retry-After")
			}
			if c.wantStatus == 201 && string(r.body) != string(first.body) {
				t.Errorf("waited repeat %s, want the first's %s", r.body, first.body)
			}
			if n := o.created.Load(); n != 1 {
				t.Fatalf("%d orders created, want 1", n)
			}
		})
	}
}

// TestIdempotencyFleet: two gateways on one Redis; the same key sent to
// both at once reaches the upstream once, and both clients get its
// answer; the upstream sees the fencing token.
func TestIdempotencyFleet(t *testing.T) {
	srv := redistest.Start(t)
	o := startOrders(t)
	o.delay.Store(int64(100 * time.Millisecond))
	cfg := idemConfig(o, srv.Addr(), "{wait: 5s}")
	gs := []*gateway{startGateway(t, 100, cfg), startGateway(t, 100, cfg)}
	const keys = 20
	var wg sync.WaitGroup
	answers := make([][2]response, keys)
	for k := range keys {
		for i, g := range gs {
			wg.Go(func() { answers[k][i] = post(t, g, "key-"+strconv.Itoa(k), `{"n":`+strconv.Itoa(k)+`}`) })
		}
	}
	wg.Wait()
	for k, a := range answers {
		if a[0].status != 201 || a[1].status != 201 || string(a[0].body) != string(a[1].body) {
			t.Fatalf("key %d: %d %s and %d %s, want one answer twice", k, a[0].status, a[0].body, a[1].status, a[1].body)
		}
	}
	if n := o.created.Load(); n != keys {
		t.Fatalf("%d orders created for %d keys sent twice each", n, keys)
	}
	fences := 0
	o.fences.Range(func(any, any) bool { fences++; return true })
	if fences != keys {
		t.Fatalf("%d distinct fencing tokens reached the upstream, want %d", fences, keys)
	}

	// Redis down: a route that requires keys refuses (503), one that does
	// not forwards unprotected (on_store_failure defaults).
	srv.Kill()
	if r := post(t, gs[0], "down", `1`); r.status != 201 {
		t.Fatalf("optional keys, Redis down: %d %s, want the request forwarded", r.status, r.body)
	}
	g := startGateway(t, 100, idemConfig(o, srv.Addr(), "{required: true}"))
	if r := post(t, g, "down", `1`); r.status != 503 || !strings.Contains(string(r.body), "idempotency_store_unavailable") {
		t.Fatalf("required keys, Redis down: %d %s, want 503", r.status, r.body)
	}
}

// TestIdempotencyTimeoutHoldsKey: after a timeout nobody knows whether the
// upstream acted, so the key stays claimed: the client's retry is in
// flight (409), not a second order; a client's own Idempotency-Fence never
// reaches the upstream.
func TestIdempotencyTimeoutHoldsKey(t *testing.T) {
	o := startOrders(t)
	o.delay.Store(int64(400 * time.Millisecond))
	g := startGateway(t, 100, strings.Replace(idemConfig(o, "", "{}"), "    upstream: orders\n", "    upstream: orders\n    timeouts: {total: 150ms}\n", 1))
	if r := post(t, g, "k", `1`); r.status != 504 {
		t.Fatalf("slow upstream: %d %s, want 504", r.status, r.body)
	}
	if r := post(t, g, "k", `1`); r.status != 409 {
		t.Fatalf("retry after a timeout: %d %s, want 409 (the first may have taken effect)", r.status, r.body)
	}
	time.Sleep(500 * time.Millisecond) // the first request reached the upstream
	if n := o.created.Load(); n != 1 {
		t.Fatalf("%d orders created, want 1", n)
	}
	o.delay.Store(0)
	r := do(t, "POST", g.url("/orders"), map[string]string{"Idempotency-Fence": "777"}, []byte(`2`))
	if r.status != 201 {
		t.Fatal(r.status)
	}
	if _, ok := o.fences.Load("777"); ok {
		t.Fatal("a client's Idempotency-Fence reached the upstream")
	}
}
