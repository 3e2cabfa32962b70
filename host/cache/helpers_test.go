package cache

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/testkit"
)

// clock is an injected Policy.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seen is a request as the upstream received it.
type seen struct {
	method, uri, host string
	header            string // the raw header block
	body              string
	req               *fasthttp.Request // a copy
}

// upstream is a real fasthttp server on loopback that records what it
// receives and answers with a swappable handler.
type upstream struct {
	addr    string
	client  *fasthttp.HostClient
	handler atomic.Pointer[fasthttp.RequestHandler]
	mu      sync.Mutex
	reqs    []seen
}

func startUpstream(t testing.TB, h fasthttp.RequestHandler) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String()}
	u.set(h)
	// No Date: the tests' clock is not the wall clock, and a response
	// without Date is dated at its arrival (Policy.Now).
	srv := &fasthttp.Server{Handler: u.serve, NoDefaultDate: true, NoDefaultServerHeader: true}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	u.client = &fasthttp.HostClient{Addr: u.addr, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	// Not Shutdown: it polls every 100 ms, too slow for a test per case.
	// Closing the listener ends Serve; closing the client's connections
	// ends the connection goroutines.
	t.Cleanup(func() { ln.Close(); u.client.CloseIdleConnections() })
	return u
}

func (u *upstream) set(h fasthttp.RequestHandler) { u.handler.Store(&h) }

func (u *upstream) serve(ctx *fasthttp.RequestCtx) {
	cp := new(fasthttp.Request)
	ctx.Request.CopyTo(cp)
	u.mu.Lock()
	u.reqs = append(u.reqs, seen{
		method: string(ctx.Method()), uri: string(ctx.RequestURI()), host: string(ctx.Host()),
		header: ctx.Request.Header.String(), body: string(ctx.Request.Body()), req: cp,
	})
	u.mu.Unlock()
	(*u.handler.Load())(ctx)
}

// fetch is the Fetcher: one exchange with the upstream.
func (u *upstream) fetch(req *fasthttp.Request, resp *fasthttp.Response) error {
	return u.client.Do(req, resp)
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstream) last() seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		return seen{}
	}
	return u.reqs[len(u.reqs)-1]
}

func (u *upstream) all() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.reqs...)
}

// gateway is a real fasthttp server whose handler is Cache.Serve in front
// of an upstream, with a client to it.
type gateway struct {
	c      *Cache
	up     *upstream
	client *fasthttp.HostClient
	key    atomic.Pointer[[]byte] // plugin key for the next requests; nil: computed
}

func startGateway(t testing.TB, c *Cache, up *upstream) *gateway {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{c: c, up: up}
	srv := &fasthttp.Server{Handler: g.serve, NoDefaultServerHeader: true}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	g.client = &fasthttp.HostClient{Addr: ln.Addr().String(), ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	t.Cleanup(func() { ln.Close(); g.client.CloseIdleConnections() })
	return g
}

func (g *gateway) serve(ctx *fasthttp.RequestCtx) {
	var key []byte
	if k := g.key.Load(); k != nil {
		key = *k
	}
	_, err := g.c.Serve(&ctx.Request, &ctx.Response, key, Fetchers{g.up.fetch, g.up.fetch})
	if err != nil {
		ctx.Response.Reset()
		ctx.Response.SetStatusCode(fasthttp.StatusBadGateway)
		ctx.Response.SetBodyString("upstream failed: " + err.Error())
	}
}

// result is a client-side view of a response.
type result struct {
	status int
	cache  string // X-Cache-Status
	age    string
	body   string
	header string
	resp   *fasthttp.Response
}

func (r result) get(name string) string { return string(r.resp.Header.Peek(name)) }

// do sends a request to the gateway. target is a path or an absolute URL
// (its host becomes the Host header); hdr are "Name: value" lines.
func (g *gateway) do(t testing.TB, method, target string, hdr ...string) result {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if !strings.Contains(target, "://") {
		target = "http://example.com" + target
	}
	req.SetRequestURI(target)
	req.Header.SetMethod(method)
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp := new(fasthttp.Response)
	if err := g.client.Do(req, resp); err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return result{
		status: resp.StatusCode(), cache: string(resp.Header.Peek("X-Cache-Status")),
		age: string(resp.Header.Peek("Age")), body: string(resp.Body()), header: resp.Header.String(), resp: resp,
	}
}

func (g *gateway) get(t testing.TB, target string, hdr ...string) result {
	t.Helper()
	return g.do(t, fasthttp.MethodGet, target, hdr...)
}

// setup starts an upstream with h, a Cache with p (clock injected) and a
// gateway in front.
func setup(t testing.TB, p Policy, h fasthttp.RequestHandler) (*gateway, *clock) {
	t.Helper()
	clk := newClock()
	if p.Now == nil {
		p.Now = clk.Now
	}
	if p.MaxBytes == 0 {
		p.MaxBytes = 64 << 20
	}
	c, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	up := startUpstream(t, h)
	return startGateway(t, c, up), clk
}

// reply returns a handler answering status, body and "Name: value" header
// lines.
func reply(status int, body string, hdr ...string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(status)
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ":")
			ctx.Response.Header.Add(k, strings.TrimSpace(v))
		}
		ctx.SetBodyString(body)
	}
}

// counting returns a handler whose body is "<prefix><n>" for the n-th
// request, with the header lines given.
func counting(prefix string, hdr ...string) fasthttp.RequestHandler {
	var n atomic.Int64
	return func(ctx *fasthttp.RequestCtx) {
		i := n.Add(1)
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ":")
			ctx.Response.Header.Add(k, strings.TrimSpace(v))
		}
		ctx.SetBodyString(prefix + itoa(int(i)))
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// startRawUpstream serves raw HTTP responses (for fields fasthttp's server
// manages itself, like Date) on loopback; respond returns the response
// text for each request.
func startRawUpstream(t testing.TB, respond func(req *fasthttp.Request) string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{addr: ln.Addr().String()}
	u.client = &fasthttp.HostClient{Addr: u.addr, ReadTimeout: 10 * time.Second}
	var (
		wg    sync.WaitGroup
		cmu   sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		cmu.Lock()
		for _, c := range conns {
			c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns = append(conns, conn)
			cmu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					u.mu.Lock()
					u.reqs = append(u.reqs, seen{method: string(req.Header.Method()), uri: string(req.RequestURI()), header: req.Header.String()})
					u.mu.Unlock()
					if _, err := conn.Write([]byte(respond(&req))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return u
}

// waitFor polls cond for up to 10 s: long enough for a loaded machine,
// never a wall-clock assertion.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, 10*time.Second, what, cond)
}

func waitForWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, d, what, cond)
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
