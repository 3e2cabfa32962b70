package abi

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// serve runs a fasthttp server with handler on 127.0.0.1 and returns its
// address; it stops with the test.
func serve(t *testing.T, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: handler}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// echo answers 201 with what it received.
func echo(ctx *fasthttp.RequestCtx) {
	ctx.SetStatusCode(201)
	ctx.Response.Header.Set("X-Method", string(ctx.Method()))
	ctx.Response.Header.Set("X-Uri", string(ctx.RequestURI()))
	ctx.Response.Header.Set("X-In", string(ctx.Request.Header.Peek("X-In")))
	ctx.Response.Header.Set("X-Host", string(ctx.Host()))
	ctx.SetBody(append([]byte("got:"), ctx.PostBody()...))
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// batch runs http_batch with reqs and returns its code and the decoded
// results (read back through http_batch_result, with a size query first).
func (h *harness) batch(reqs []BatchRequest) (int32, []BatchResult) {
	h.t.Helper()
	enc := EncodeBatch(nil, reqs)
	p := h.alloc(len(enc))
	copy(h.mem[p:], enc)
	return h.runBatch(p, uint64(len(enc)))
}

func (h *harness) runBatch(p, n uint64) (int32, []BatchResult) {
	h.t.Helper()
	code := h.call32("http_batch", p, n)
	if code < 0 {
		return code, nil
	}
	if size := h.call32("http_batch_result", 0, 0); size != code {
		h.t.Fatalf("http_batch_result size %d, http_batch said %d", size, code)
	}
	buf := h.alloc(int(code))
	if r := h.call32("http_batch_result", buf, uint64(code)); r != code {
		h.t.Fatalf("http_batch_result = %d", r)
	}
	res, err := DecodeResults(bytes.Clone(h.bytes(buf, int(code))))
	if err != nil {
		h.t.Fatalf("results do not decode: %v", err)
	}
	return code, res
}

func get(url string) BatchRequest {
	return BatchRequest{Method: []byte("GET"), URL: []byte(url)}
}

func header(r *BatchResult, name string) string {
	for _, h := range r.Headers {
		if strings.EqualFold(string(h.Name), name) {
			return string(h.Value)
		}
	}
	return ""
}

func TestHTTPBatchHosts(t *testing.T) {
	addr := serve(t, echo)
	dead := closedAddr(t)
	h := newHarness(t, PhaseRequest)
	h.c.Env.Out = &Outbound{Hosts: map[string]bool{addr: true, dead: true}}
	post := BatchRequest{
		Method: []byte("POST"), URL: []byte("http://" + addr + "/p%2Fq?a=1"), TimeoutMS: 5000,
		Headers: []Header{{Name: []byte("X-In"), Value: []byte("v1")}, {Name: []byte("Content-Length"), Value: []byte("999")}},
		Body:    []byte("payload"),
	}
	code, res := h.batch([]BatchRequest{
		post,
		get("http://" + strings.ToUpper("localhost") + ":1/"), // not in the list
		get("https://" + addr + "/"),
		get("ftp://" + addr + "/"),
		get("http://" + dead + "/"),
		get("http://evil@" + addr + "/"),
		get("http://" + addr + "/a b"),
		get("http://" + addr),
	})
	if code <= 0 || len(res) != 8 {
		t.Fatalf("http_batch = %d, %d results", code, len(res))
	}
	r := &res[0]
	if r.Status != 201 || string(r.Body) != "got:payload" || header(r, "X-Method") != "POST" ||
		header(r, "X-Uri") != "/p%2Fq?a=1" || header(r, "X-In") != "v1" || header(r, "X-Host") != addr {
		t.Errorf("POST result %d %q %+v", r.Status, r.Body, r.Headers)
	}
	want := []int32{201, StatusNotAllowed, StatusNotAllowed, StatusNotAllowed, StatusNetwork, StatusNotAllowed, StatusNotAllowed, 201}
	for i, w := range want {
		if res[i].Status != w {
			t.Errorf("result %d: status %d, want %d", i, res[i].Status, w)
		}
		if w < 0 && (len(res[i].Headers) != 0 || len(res[i].Body) != 0) {
			t.Errorf("result %d: a failure carries headers or body", i)
		}
	}
	if header(&res[7], "X-Uri") != "/" {
		t.Errorf("URL without a path sent %q", header(&res[7], "X-Uri"))
	}
	// Without outbound rules, everything is not allowed.
	h.c.Env.Out = nil
	if _, res := h.batch([]BatchRequest{get("http://" + addr + "/")}); res[0].Status != StatusNotAllowed {
		t.Errorf("nil Outbound: status %d", res[0].Status)
	}
}

func TestHostKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Example.COM", "example.com:80"},
		{"example.com:8080", "example.com:8080"},
		{"[::1]", "[::1]:80"},
		{"[::1]:81", "[::1]:81"},
	}
	for _, tt := range tests {
		if got := string(hostKey(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("hostKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHTTPBatchParallel proves the requests of a batch run at once: each
// waits at the server until all three are in flight together.
func TestHTTPBatchParallel(t *testing.T) {
	var inflight, peak atomic.Int32
	all := make(chan struct{})
	var once sync.Once
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == 3 {
			once.Do(func() { close(all) })
		}
		select {
		case <-all:
		case <-time.After(3 * time.Second): // serial requests never get here together
		}
		ctx.SetBodyString("ok")
	})
	h := newHarness(t, PhaseResponse)
	h.c.Env.Out = &Outbound{Hosts: map[string]bool{addr: true}}
	reqs := []BatchRequest{get("http://" + addr + "/1"), get("http://" + addr + "/2"), get("http://" + addr + "/3")}
	for i := range reqs {
		reqs[i].TimeoutMS = 10000
	}
	_, res := h.batch(reqs)
	if peak.Load() != 3 {
		t.Fatalf("at most %d requests in flight together, want 3", peak.Load())
	}
	for i, r := range res {
		if r.Status != 200 || string(r.Body) != "ok" {
			t.Errorf("result %d: %d %q", i, r.Status, r.Body)
		}
	}
}

func TestHTTPBatchTimeouts(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			<-release
		}
		ctx.SetBodyString("fast")
	})
	t.Cleanup(func() { close(release) })
	h := newHarness(t, PhaseRequest)
	h.c.Env.Out = &Outbound{Hosts: map[string]bool{addr: true}}
	slow := get("http://" + addr + "/slow")
	slow.TimeoutMS = 50
	fast := get("http://" + addr + "/fast")
	fast.TimeoutMS = 5000
	_, res := h.batch([]BatchRequest{slow, fast})
	if res[0].Status != StatusTimeout || res[1].Status != 200 {
		t.Fatalf("statuses %d %d, want -1 200", res[0].Status, res[1].Status)
	}
	// Timeout 0 is the hook's deadline; the hook's deadline also cuts a
	// longer per-request timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	h.c.Ctx = ctx
	slow.TimeoutMS = 0
	long := get("http://" + addr + "/slow")
	long.TimeoutMS = 60000
	_, res = h.batch([]BatchRequest{slow, long})
	if res[0].Status != StatusTimeout || res[1].Status != StatusTimeout {
		t.Fatalf("statuses %d %d under the hook deadline, want -1 -1", res[0].Status, res[1].Status)
	}
}

func TestHTTPBatchUpstream(t *testing.T) {
	addr := serve(t, echo)
	var names []string
	var mu sync.Mutex
	client := &fasthttp.Client{}
	h := newHarness(t, PhaseRequest)
	h.c.Env.Out = &Outbound{
		Upstreams: map[string]bool{"users": true, "down": true, "slow": true},
		Upstream: func(ctx context.Context, name string, req *fasthttp.Request, resp *fasthttp.Response) error {
			mu.Lock()
			names = append(names, name)
			mu.Unlock()
			switch name {
			case "down":
				return ErrUnreachable
			case "slow":
				<-ctx.Done()
				return ctx.Err()
			}
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("no deadline")
			}
			req.URI().SetHost(addr)
			dl, _ := ctx.Deadline()
			return client.DoDeadline(req, resp, dl)
		},
	}
	users := BatchRequest{Method: []byte("PUT"), URL: []byte("upstream://users/u/1?full=1"), TimeoutMS: 5000, Body: []byte("b")}
	slow := get("upstream://slow/")
	slow.TimeoutMS = 20
	_, res := h.batch([]BatchRequest{users, get("upstream://down/x"), get("upstream://other/x"), slow})
	if r := &res[0]; r.Status != 201 || header(r, "X-Uri") != "/u/1?full=1" || header(r, "X-Method") != "PUT" || string(r.Body) != "got:b" {
		t.Errorf("upstream result %d %q %+v", r.Status, r.Body, r.Headers)
	}
	if res[1].Status != StatusNetwork || res[2].Status != StatusNotAllowed || res[3].Status != StatusTimeout {
		t.Errorf("statuses %d %d %d, want -2 -3 -1", res[1].Status, res[2].Status, res[3].Status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(names) != 3 {
		t.Errorf("Upstream called for %v: a disallowed name reached it", names)
	}
	// An allowed name without an Upstream function is not reachable.
	h.c.Env.Out.Upstream = nil
	if _, res := h.batch([]BatchRequest{get("upstream://users/")}); res[0].Status != StatusNotAllowed {
		t.Errorf("nil Upstream: %d", res[0].Status)
	}
}

func TestHTTPBatchLimits(t *testing.T) {
	addr := serve(t, func(ctx *fasthttp.RequestCtx) { ctx.SetBody(make([]byte, 2000)) })
	h := newHarness(t, PhaseRequest)
	out := &Outbound{Hosts: map[string]bool{addr: true}, MaxResponseBody: 1000}
	h.c.Env.Out = out
	if _, res := h.batch([]BatchRequest{get("http://" + addr + "/")}); res[0].Status != StatusOther {
		t.Errorf("body over MaxResponseBody: %d", res[0].Status)
	}
	many := make([]BatchRequest, MaxBatch+1)
	for i := range many {
		many[i] = get("ftp://x/")
	}
	if code, _ := h.batch(many); code != ErrTooLarge {
		t.Errorf("%d requests = %d", len(many), code)
	}
	if code, res := h.batch(many[:MaxBatch]); code <= 0 || len(res) != MaxBatch {
		t.Errorf("%d requests = %d", MaxBatch, code)
	}
	out.MaxBatch = 2
	if code, _ := h.batch(many[:3]); code != ErrTooLarge {
		t.Errorf("over MaxBatch = %d", code)
	}
	out.MaxBatch = 0
	out.MaxInflight = 1
	if code, _ := h.batch([]BatchRequest{get("http://" + addr + "/"), get("http://" + addr + "/")}); code != ErrUnavailable {
		t.Errorf("over MaxInflight = %d", code)
	}
	if code, _ := h.batch([]BatchRequest{get("http://" + addr + "/")}); code <= 0 || out.inflight.Load() != 0 {
		t.Errorf("within MaxInflight = %d, %d left in flight", code, out.inflight.Load())
	}
	bad := []struct {
		name string
		req  BatchRequest
	}{
		{"empty method", BatchRequest{URL: []byte("http://x/")}},
		{"method with space", BatchRequest{Method: []byte("GE T"), URL: []byte("http://x/")}},
		{"header name", BatchRequest{Method: []byte("GET"), URL: []byte("http://x/"), Headers: []Header{{Name: []byte("a b"), Value: nil}}}},
		{"header value", BatchRequest{Method: []byte("GET"), URL: []byte("http://x/"), Headers: []Header{{Name: []byte("a"), Value: []byte("x\r\ny: z")}}}},
	}
	for _, b := range bad {
		if code, _ := h.batch([]BatchRequest{b.req}); code != ErrBadArgument {
			t.Errorf("%s = %d", b.name, code)
		}
	}
	enc := EncodeBatch(nil, []BatchRequest{get("http://x/")})
	for name, b := range map[string][]byte{
		"truncated":     enc[:len(enc)-1],
		"trailing byte": append(bytes.Clone(enc), 0),
		"empty":         nil,
		"lying count":   {2, 0, 0, 0},
	} {
		p := h.alloc(len(b))
		copy(h.mem[p:], b)
		if code, _ := h.runBatch(p, uint64(len(b))); code != ErrBadArgument {
			t.Errorf("%s batch = %d", name, code)
		}
		if r := h.call32("http_batch_result", 0, 0); r != 0 {
			t.Errorf("%s batch left %d bytes of results", name, r)
		}
	}
	// An empty batch is valid: zero results.
	if code, res := h.batch(nil); code != 4 || len(res) != 0 {
		t.Errorf("empty batch = %d, %d results", code, len(res))
	}
	// Outside request and response hooks.
	hi := newHarness(t, PhaseInit)
	if code, _ := hi.batch([]BatchRequest{get("http://x/")}); code != ErrNotAllowed {
		t.Errorf("http_batch in on_init = %d", code)
	}
	if r := hi.call32("http_batch_result", 0, 0); r != ErrNotAllowed {
		t.Errorf("http_batch_result in on_init = %d", r)
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		err  error
		want int32
	}{
		{nil, 0},
		{fasthttp.ErrTimeout, StatusTimeout},
		{fasthttp.ErrDialTimeout, StatusTimeout},
		{context.DeadlineExceeded, StatusTimeout},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, StatusNetwork},
		{ErrUnreachable, StatusNetwork},
		{fasthttp.ErrConnectionClosed, StatusNetwork},
		{fasthttp.ErrBodyTooLarge, StatusOther},
		{errors.New("other"), StatusOther},
	}
	for _, tt := range tests {
		if got := outcome(tt.err); got != tt.want {
			t.Errorf("outcome(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
