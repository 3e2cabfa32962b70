package server

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/wasmgate/wasmgate/host/testkit/faulty"
	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// The fault suite (issue #12): a real gateway in front of upstreams that
// misbehave at the TCP level, clients that misbehave, and plugins that do.
// Each case checks the exact answer (status, error code, headers), the
// error kind the gateway counts and logs, that the gateway leaves no
// goroutine behind once shut down (faulty.CheckLeaks, first in every case),
// and, where a fault could make it buffer without end, that its memory
// stays bounded. The cases do not run in parallel: the leak check counts
// every goroutine of the process.

// faultListen is the listener of the fault suite's gateways; %s is its
// read_timeout.
const faultListen = `
listen:
  address: 127.0.0.1:0
  read_timeout: %s
  max_header_bytes: 4KiB
  max_body_bytes: 1MiB
  max_response_bytes: 1MiB
  shutdown_timeout: 5s
admin:
  address: 127.0.0.1:0
  token: ${TEST_ADMIN_TOKEN}
  watch_config: false
log: {access_log: stdout}
`

func startFaultGateway(t *testing.T, rest string) *gateway {
	t.Helper()
	return startGatewayConfig(t, fmt.Sprintf(faultListen, "1s")+rest)
}

// reqID numbers the requests of the suite, so that each one's access log
// line can be found by its X-Request-Id.
var reqID atomic.Int64

// getReq is a GET of path with a fresh request id, and the id.
func getReq(path string) (raw, id string) {
	id = fmt.Sprintf("fault-%d", reqID.Add(1))
	return "GET " + path + " HTTP/1.1\r\nHost: gw.test\r\nX-Request-Id: " + id + "\r\n\r\n", id
}

// errorCode is the "error" of a gateway's JSON error body ("" for any
// other body).
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Error
}

// adminGet is GET path on the admin API, on a connection of its own.
func (g *gateway) adminGet(t *testing.T, path string) []byte {
	t.Helper()
	r, err := faulty.Fetch(g.AdminAddr(), "GET "+path+" HTTP/1.1\r\nHost: admin\r\nAuthorization: Bearer "+testToken+"\r\nConnection: close\r\n\r\n")
	if err != nil || r.Status != 200 {
		t.Fatalf("GET %s: %v %+v", path, err, r)
	}
	return r.Body
}

// metric is the value of one series of the admin API's /metrics (labels in
// Prometheus order, sorted by name); 0 when the series does not exist.
func (g *gateway) metric(t *testing.T, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(string(g.adminGet(t, "/metrics")), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			return f
		}
	}
	return 0
}

// metricSum sums the series of a metric that have all these labels
// (`name="value"`), whatever their others.
func (g *gateway) metricSum(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
	for _, l := range strings.Split(string(g.adminGet(t, "/metrics")), "\n") {
		rest, ok := strings.CutPrefix(l, name+"{")
		if !ok {
			continue
		}
		set, v, _ := strings.Cut(rest, "} ")
		all := true
		for _, lb := range labels {
			all = all && slices.Contains(strings.Split(set, ","), lb)
		}
		if all {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			sum += f
		}
	}
	return sum
}

// accessLine is the access log line of the request with this id.
func (g *gateway) accessLine(t *testing.T, id string) map[string]any {
	t.Helper()
	var line map[string]any
	waitFor(t, "the access log line of "+id, func() bool {
		g.b.stdout.Flush()
		for _, l := range strings.Split(g.access.String(), "\n") {
			if strings.Contains(l, `"request_id":"`+id+`"`) {
				return json.Unmarshal([]byte(l), &line) == nil
			}
		}
		return false
	})
	return line
}

// targetView is a target as GET /upstreams shows it.
type targetView struct {
	Address  string `json:"address"`
	Healthy  bool   `json:"healthy"`
	Circuit  string `json:"circuit"`
	Requests int64  `json:"requests"`
	Failures int64  `json:"failures"`
}

func (g *gateway) target(t *testing.T, upstream, addr string) targetView {
	t.Helper()
	var st struct {
		Upstreams []struct {
			Name    string       `json:"name"`
			Targets []targetView `json:"targets"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal(g.adminGet(t, "/upstreams"), &st); err != nil {
		t.Fatal(err)
	}
	for _, u := range st.Upstreams {
		for _, tv := range u.Targets {
			if u.Name == upstream && tv.Address == addr {
				return tv
			}
		}
	}
	t.Fatalf("GET /upstreams has no target %s in %s", addr, upstream)
	return targetView{}
}

// hang reads a request and never answers.
func hang(c *faulty.Conn) {
	if _, _, err := c.ReadRequest(); err == nil {
		<-c.Down()
	}
}

// answerAfter answers every request with raw after d.
func answerAfter(d time.Duration, raw string) faulty.Handler {
	return func(c *faulty.Conn) {
		for {
			if _, _, err := c.ReadRequest(); err != nil || !c.Wait(d) || c.Send(raw) != nil {
				return
			}
		}
	}
}

// breakOff answers a request with head and part of its body, then ends the
// connection: with a reset, or a plain close.
func breakOff(head, part string, reset bool) faulty.Handler {
	return func(c *faulty.Conn) {
		if _, _, err := c.ReadRequest(); err != nil || c.Send(head+part) != nil {
			return
		}
		c.Wait(50 * time.Millisecond) // the head is read before the end comes
		if reset {
			c.Reset()
		}
	}
}

// dribble answers each request with head, then body one byte every d.
func dribble(head, body string, d time.Duration) faulty.Handler {
	return func(c *faulty.Conn) {
		for {
			if _, _, err := c.ReadRequest(); err != nil || c.Send(head) != nil {
				return
			}
			for i := range len(body) {
				if !c.Wait(d) || c.Send(body[i:i+1]) != nil {
					return
				}
			}
		}
	}
}

// TestFaultUpstreamAnswers: an upstream that hangs, answers slowly, breaks
// off mid-body or sends a malformed answer gets the route the gateway's
// own answer for that kind of failure, counted under its kind in
// wasmgate_upstream_errors_total and logged with the upstream and the
// target; nothing of the broken answer reaches the client.
func TestFaultUpstreamAnswers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handler  faulty.Handler
		timeouts string // the route's
		status   int
		code     string // the gateway's error code; "" for the upstream's answer
		kind     string // counted in wasmgate_upstream_errors_total
		body     string // the upstream's body, when it answered
		atLeast  time.Duration
		unread   bool // the upstream never reads the request
	}{
		{name: "hangs: total timeout", handler: hang, timeouts: "{total: 300ms}", status: 504, code: "upstream_timeout", kind: "timeout", atLeast: 300 * time.Millisecond},
		{name: "hangs: read timeout", handler: hang, timeouts: "{read: 300ms}", status: 504, code: "upstream_timeout", kind: "timeout", atLeast: 300 * time.Millisecond},
		{name: "accepts and never reads", handler: func(c *faulty.Conn) { <-c.Down() }, timeouts: "{total: 300ms}", status: 504, code: "upstream_timeout", kind: "timeout", atLeast: 300 * time.Millisecond, unread: true},
		{name: "answers after the timeout", handler: answerAfter(time.Second, faulty.OK("late")), timeouts: "{total: 300ms}", status: 504, code: "upstream_timeout", kind: "timeout", atLeast: 300 * time.Millisecond},
		{name: "answers slowly within the timeout", handler: answerAfter(100*time.Millisecond, faulty.OK("slow")), timeouts: "{total: 5s}", status: 200, body: "slow", atLeast: 100 * time.Millisecond},
		{name: "dribbles the body past the timeout", handler: dribble("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", "0123456789", 100*time.Millisecond), timeouts: "{total: 300ms}", status: 504, code: "upstream_timeout", kind: "timeout", atLeast: 300 * time.Millisecond},
		{name: "dribbles the body within the timeout", handler: dribble("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "01234", 20*time.Millisecond), timeouts: "{total: 5s}", status: 200, body: "01234"},
		{name: "resets mid-body", handler: breakOff("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("x", 100), true), status: 502, code: "upstream_reset", kind: "reset"},
		{name: "closes mid-body", handler: breakOff("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("x", 100), false), status: 502, code: "upstream_reset", kind: "reset"},
		{name: "resets mid-chunk", handler: breakOff("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "64\r\n"+strings.Repeat("x", 50), true), status: 502, code: "upstream_reset", kind: "reset"},
		{name: "resets before answering", handler: func(c *faulty.Conn) {
			if _, _, err := c.ReadRequest(); err == nil {
				c.Reset()
			}
		}, status: 502, code: "upstream_reset", kind: "reset"},
		{name: "garbage status line", handler: faulty.Serve(func(*http.Request, []byte) string { return "HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\nok" }), status: 502, code: "upstream_other", kind: "other"},
		{name: "not HTTP at all", handler: faulty.Serve(func(*http.Request, []byte) string { return "SSH-2.0-OpenSSH_9.6\r\n\r\n" }), status: 502, code: "upstream_other", kind: "other"},
		{name: "header line without a colon", handler: faulty.Serve(func(*http.Request, []byte) string { return "HTTP/1.1 200 OK\r\nNoColon\r\nContent-Length: 2\r\n\r\nok" }), status: 502, code: "upstream_other", kind: "other"},
		{name: "space in a header name", handler: faulty.Serve(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok"
		}), status: 502, code: "upstream_other", kind: "other"},
		{name: "control byte in a header value", handler: faulty.Serve(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 2\r\n\r\nok"
		}), status: 502, code: "upstream_other", kind: "other"},
		{name: "status code out of range", handler: faulty.Serve(func(*http.Request, []byte) string { return "HTTP/1.1 1000 Weird\r\nContent-Length: 2\r\n\r\nok" }), status: 502, code: "upstream_other", kind: "other"},
		{name: "two Content-Lengths", handler: faulty.Serve(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok"
		}), status: 502, code: "upstream_other", kind: "other"},
		{name: "unknown transfer coding", handler: faulty.Serve(func(*http.Request, []byte) string { return "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok" }), status: 502, code: "upstream_other", kind: "other"},
		{name: "Content-Length and chunked", handler: faulty.Serve(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
		}), status: 502, code: "upstream_other", kind: "other"},
		{name: "chunked and Content-Length", handler: faulty.Serve(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n2\r\nok\r\n0\r\n\r\n"
		}), status: 502, code: "upstream_other", kind: "other"},
		{name: "response headers over 4 KiB", handler: faulty.Serve(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 5000) + "\r\nContent-Length: 2\r\n\r\nok"
		}), status: 502, code: "upstream_other", kind: "other"},
		{name: "response headers under 4 KiB", handler: faulty.Serve(func(*http.Request, []byte) string {
			return "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("b", 3000) + "\r\nContent-Length: 2\r\n\r\nok"
		}), status: 200, body: "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faulty.CheckLeaks(t)
			up := faulty.Start(t, tc.handler)
			timeouts := ""
			if tc.timeouts != "" {
				timeouts = ", timeouts: " + tc.timeouts
			}
			g := startFaultGateway(t, fmt.Sprintf(`
upstreams: [{name: up, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: up%s}]
`, up.Addr(), timeouts))
			raw, id := getReq("/x")
			start := time.Now()
			r, err := faulty.Fetch(g.ProxyAddr(), raw)
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("no answer after %v: %v", elapsed, err)
			}
			if r.Status != tc.status || errorCode(r.Body) != tc.code || tc.body != "" && string(r.Body) != tc.body {
				t.Fatalf("got %d %q, want %d %q %q", r.Status, r.Body, tc.status, tc.code, tc.body)
			}
			if elapsed < tc.atLeast {
				t.Fatalf("answered after %v, before the upstream could have made it (%v)", elapsed, tc.atLeast)
			}
			if r.Header.Get("X-Request-Id") != id {
				t.Fatalf("X-Request-Id %q, want %q", r.Header.Get("X-Request-Id"), id)
			}
			for _, h := range []string{"Bad Header", "X-Big", "X-A"} {
				if tc.status != 200 && r.Header.Get(h) != "" {
					t.Fatalf("the broken answer's %s reached the client", h)
				}
			}
			line := g.accessLine(t, id)
			if line["status"] != float64(tc.status) || line["upstream"] != "up" || line["target"] != up.Addr() || line["route"] != "r" {
				t.Fatalf("access log line %v", line)
			}
			if tc.kind != "" {
				if n := g.metric(t, `wasmgate_upstream_errors_total{kind="`+tc.kind+`",upstream="up"}`); n != 1 {
					t.Fatalf("wasmgate_upstream_errors_total{kind=%q} = %v, want 1", tc.kind, n)
				}
			}
			if n := up.Requests(); n != 1 && !tc.unread || tc.unread && up.Accepted() != 1 {
				t.Fatalf("the upstream got %d requests on %d connections, want 1 (no retry is configured)", n, up.Accepted())
			}
			// The gateway still serves the route's next request.
			if r, err := faulty.Get(g.ProxyAddr(), "/x"); err != nil || r.Status != tc.status {
				t.Fatalf("the next request: %v %+v", err, r)
			}
		})
	}
}

// TestFaultResponseFramedTwice: a response with both Content-Length and
// Transfer-Encoding (RFC 9112, 6.3: a smuggling attempt, to be handled as
// an error) is a malformed answer (502): never forwarded, whichever
// framing the client would pick, and its connection is not used again, so
// that bytes it carried past one framing cannot become the answer to
// another request.
func TestFaultResponseFramedTwice(t *testing.T) {
	faulty.CheckLeaks(t)
	// The first answer is framed twice: read as chunked it ends at "0",
	// and what follows would be read as the answer to the next request on
	// the connection. Every connection starts with it; a second request on
	// one gets "clean".
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled"
	up := faulty.Start(t, func(c *faulty.Conn) {
		for n := 0; ; n++ {
			if _, _, err := c.ReadRequest(); err != nil {
				return
			}
			out := faulty.OK("clean")
			if n == 0 {
				out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 43\r\n\r\n0\r\n\r\n" + smuggled
			}
			if c.Send(out) != nil {
				return
			}
		}
	})
	g := startFaultGateway(t, fmt.Sprintf(`
upstreams: [{name: up, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: up}]
`, up.Addr()))
	c := &faulty.Client{Addr: g.ProxyAddr()}
	defer c.Close()
	for i := range 3 {
		raw, _ := getReq("/x")
		r, err := c.Do(raw)
		if err != nil || r.Status != 502 || errorCode(r.Body) != "upstream_other" {
			t.Fatalf("request %d: %v %+v, want 502 upstream_other", i, err, r)
		}
		if r.Header.Get("Transfer-Encoding") != "" || strings.Contains(string(r.Body), "smuggled") {
			t.Fatalf("request %d: the answer carries the upstream's framing or body: %+v", i, r)
		}
	}
	// Each request found its connection closed after the one before:
	// every one was the first on a connection of its own.
	if a := up.Accepted(); a != 3 {
		t.Fatalf("the upstream accepted %d connections for 3 requests; a connection was reused after a response framed twice", a)
	}
	if n := g.metric(t, `wasmgate_upstream_errors_total{kind="other",upstream="up"}`); n != 3 {
		t.Fatalf("errors of kind other: %v, want 3", n)
	}
}

// TestFaultOversizedResponse: a response body over the limit, announced
// by Content-Length, chunked or read until the upstream closes, is
// answered 502 upstream_body_too_large once the limit is passed: the
// gateway reads no more of it, so its memory does not grow with what the
// upstream sends. The target is not blamed for it (its breaker stays
// closed) and the request is not retried.
func TestFaultOversizedResponse(t *testing.T) {
	const sent = 64 << 20 // what the upstream sends; the limit is 1 MiB
	// Made once: what the upstream writes allocates nothing per write.
	chunk := []byte(strings.Repeat("x", 64<<10))
	frame := fmt.Appendf(nil, "%x\r\n%s\r\n", len(chunk), chunk)
	stream := func(c *faulty.Conn, head string, chunked bool) {
		if _, _, err := c.ReadRequest(); err != nil || c.Send(head) != nil {
			return
		}
		for n := 0; n < sent; n += len(chunk) {
			out := chunk
			if chunked {
				out = frame
			}
			if _, err := c.Conn.Write(out); err != nil {
				return // the gateway hung up: what it should do
			}
		}
		if chunked {
			_ = c.Send("0\r\n\r\n")
		}
	}
	for _, tc := range []struct {
		name    string
		handler faulty.Handler
	}{
		{"Content-Length", func(c *faulty.Conn) {
			stream(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", sent), false)
		}},
		{"chunked", func(c *faulty.Conn) { stream(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true) }},
		{"until close", func(c *faulty.Conn) { stream(c, "HTTP/1.1 200 OK\r\n\r\n", false) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faulty.CheckLeaks(t)
			up := faulty.Start(t, tc.handler)
			g := startFaultGateway(t, fmt.Sprintf(`
upstreams:
  - name: up
    targets: [{address: %s}]
    circuit_breaker: {consecutive_failures: 1, open_for: 1m}
    retries: {attempts: 2, on: [connect_error, reset, timeout]}
routes: [{name: r, match: {path_prefix: /}, upstream: up, timeouts: {total: 20s}}]
`, up.Addr()))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			raw, id := getReq("/big")
			r, err := faulty.Fetch(g.ProxyAddr(), raw)
			runtime.ReadMemStats(&after)
			if err != nil || r.Status != 502 || errorCode(r.Body) != "upstream_body_too_large" {
				t.Fatalf("%v: %d %.200q, want 502 upstream_body_too_large", err, r.Status, r.Body)
			}
			// Everything the process allocated while the upstream sent
			// 64 MiB: the gateway's read of the body up to its limit
			// (1 MiB) and the buffers around it, not the body.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Fatalf("the process allocated %d MiB while a %d MiB response was refused at 1 MiB", grew>>20, sent>>20)
			}
			if line := g.accessLine(t, id); line["status"] != float64(502) || line["target"] != up.Addr() {
				t.Fatalf("access log line %v", line)
			}
			if n := g.metric(t, `wasmgate_upstream_errors_total{kind="body_too_large",upstream="up"}`); n != 1 {
				t.Fatalf("errors of kind body_too_large: %v, want 1", n)
			}
			if n := up.Requests(); n != 1 {
				t.Fatalf("the upstream got %d requests, want 1: a body too large is not retried", n)
			}
			if tv := g.target(t, "up", up.Addr()); tv.Circuit != "closed" || tv.Failures != 0 {
				t.Fatalf("the target was blamed for the gateway's limit: %+v", tv)
			}
		})
	}
}

// TestFault5xxBursts: a target that answers 503 in bursts. With retries on
// "503" the client never sees them: each goes to the other target, until
// the target's breaker opens (after consecutive_failures) and it is
// skipped; after open_for one trial request goes to it, and its success
// closes the circuit. Without retries, the 503s pass through as the
// upstream's answers until the breaker opens; then the gateway answers
// 503 upstream_circuit_open itself.
func TestFault5xxBursts(t *testing.T) {
	// burst answers 503 to its first n requests, 200 after.
	burst := func(n int64, id string) faulty.Handler {
		var count atomic.Int64
		return faulty.Serve(func(*http.Request, []byte) string {
			if count.Add(1) <= n {
				return faulty.Status(503, id+" is overloaded")
			}
			return faulty.OK(id)
		})
	}
	t.Run("retried on the other target, breaker opens and closes", func(t *testing.T) {
		faulty.CheckLeaks(t)
		bad, good := faulty.Start(t, burst(3, "bad")), faulty.Start(t, burst(0, "good"))
		g := startFaultGateway(t, fmt.Sprintf(`
upstreams:
  - name: pool
    targets: [{address: %s}, {address: %s}]
    retries: {attempts: 1, on: ["503"]}
    circuit_breaker: {consecutive_failures: 3, open_for: 300ms}
routes: [{name: r, match: {path_prefix: /}, upstream: pool}]
`, bad.Addr(), good.Addr()))
		c := &faulty.Client{Addr: g.ProxyAddr()}
		defer c.Close()
		get := func() string {
			t.Helper()
			raw, _ := getReq("/x")
			r, err := c.Do(raw)
			if err != nil || r.Status != 200 {
				t.Fatalf("%v %+v", err, r)
			}
			return string(r.Body)
		}
		// Round robin sends each request to bad first: its 503 is
		// retried on good, three times, and bad's circuit opens.
		for range 10 {
			if body := get(); body != "good" {
				t.Fatalf("got %q, want good", body)
			}
		}
		if n := bad.Requests(); n != 3 {
			t.Fatalf("bad got %d requests, want 3: its circuit must open after 3 consecutive 503s", n)
		}
		if tv := g.target(t, "pool", bad.Addr()); tv.Circuit != "open" || tv.Failures != 3 {
			t.Fatalf("bad: %+v, want its circuit open after 3 failures", tv)
		}
		if n := g.metric(t, `wasmgate_upstream_retries_total{upstream="pool"}`); n != 3 {
			t.Fatalf("retries %v, want 3", n)
		}
		// After open_for, one trial request reaches bad, which is
		// well again: the circuit closes and bad takes its share.
		waitFor(t, "the trial request to bad", func() bool { get(); return bad.Requests() == 4 })
		if tv := g.target(t, "pool", bad.Addr()); tv.Circuit != "closed" {
			t.Fatalf("bad after a successful trial: %+v", tv)
		}
		for range 4 {
			get()
		}
		if n := bad.Requests(); n != 6 {
			t.Fatalf("bad got %d requests, want 6: 2 of the 4 after its circuit closed", n)
		}
	})
	t.Run("no retries: passed through until the breaker opens", func(t *testing.T) {
		faulty.CheckLeaks(t)
		bad := faulty.Start(t, burst(1000, "bad"))
		g := startFaultGateway(t, fmt.Sprintf(`
upstreams:
  - name: one
    targets: [{address: %s}]
    circuit_breaker: {consecutive_failures: 3, open_for: 1m}
routes: [{name: r, match: {path_prefix: /}, upstream: one}]
`, bad.Addr()))
		for i := range 5 {
			raw, id := getReq("/x")
			r, err := faulty.Fetch(g.ProxyAddr(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if i < 3 {
				if r.Status != 503 || string(r.Body) != "bad is overloaded" {
					t.Fatalf("request %d: %d %q, want the upstream's 503", i, r.Status, r.Body)
				}
				continue
			}
			if r.Status != 503 || errorCode(r.Body) != "upstream_circuit_open" {
				t.Fatalf("request %d: %d %q, want the gateway's 503 upstream_circuit_open", i, r.Status, r.Body)
			}
			if line := g.accessLine(t, id); line["upstream"] != "one" || line["target"] != "" {
				t.Fatalf("access log line of a refused request: %v", line)
			}
		}
		if n := bad.Requests(); n != 3 {
			t.Fatalf("bad got %d requests, want 3", n)
		}
		if n := g.metric(t, `wasmgate_upstream_errors_total{kind="circuit_open",upstream="one"}`); n != 2 {
			t.Fatalf("errors of kind circuit_open: %v, want 2", n)
		}
	})
}

// TestFaultTargetDiesAndComesBack: active health checks eject a target
// that died and admit it again once it is back on the same port. Requests
// sent all along never fail: before the ejection, the connect errors are
// retried on the other target.
func TestFaultTargetDiesAndComesBack(t *testing.T) {
	faulty.CheckLeaks(t)
	serve := func(id string) faulty.Handler {
		return faulty.Serve(func(r *http.Request, _ []byte) string { return faulty.OK(id) })
	}
	a, b := faulty.Start(t, serve("a")), faulty.Start(t, serve("b"))
	g := startFaultGateway(t, fmt.Sprintf(`
upstreams:
  - name: pool
    targets: [{address: %s}, {address: %s}]
    health_check: {path: /healthz, interval: 50ms, timeout: 200ms, unhealthy_threshold: 1, healthy_threshold: 1}
    retries: {attempts: 1, on: [connect_error, reset]}
routes: [{name: r, match: {path_prefix: /}, upstream: pool}]
`, a.Addr(), b.Addr()))
	c := &faulty.Client{Addr: g.ProxyAddr()}
	defer c.Close()
	get := func() string {
		t.Helper()
		raw, _ := getReq("/x")
		r, err := c.Do(raw)
		if err != nil || r.Status != 200 {
			t.Fatalf("a request failed: %v %+v", err, r)
		}
		return string(r.Body)
	}
	seen := map[string]int{}
	for range 4 {
		seen[get()]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("both healthy: %v, want 2 each", seen)
	}

	a.Kill()
	for range 4 { // before the ejection too
		if body := get(); body != "b" {
			t.Fatalf("got %q with a dead", body)
		}
	}
	waitFor(t, "a ejected", func() bool { return !g.target(t, "pool", a.Addr()).Healthy })
	sent := g.target(t, "pool", a.Addr()).Requests
	for range 10 {
		if body := get(); body != "b" {
			t.Fatalf("got %q with a ejected", body)
		}
	}
	if n := g.target(t, "pool", a.Addr()).Requests; n != sent {
		t.Fatalf("%d requests went to the ejected target", n-sent)
	}

	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a admitted again", func() bool { return g.target(t, "pool", a.Addr()).Healthy })
	seen = map[string]int{}
	for range 4 {
		seen[get()]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Fatalf("a back: %v, want 2 each", seen)
	}
	if !strings.Contains(g.logs.String(), `"msg":"target unhealthy"`) || !strings.Contains(g.logs.String(), `"msg":"target healthy"`) {
		t.Fatalf("the health changes are not logged:\n%s", g.logs.String())
	}
}

// TestFaultTargetKilledUnderLoad (the headline): clients send idempotent
// GETs without pause while one of an upstream's three targets is killed
// (listener closed, connections reset) and restarted on the same port.
// Not one GET fails: a connect error or a reset goes to another target,
// and the restarted target takes requests again.
func TestFaultTargetKilledUnderLoad(t *testing.T) {
	faulty.CheckLeaks(t)
	var ups [3]*faulty.Upstream
	for i := range ups {
		id := fmt.Sprint("t", i)
		ups[i] = faulty.Start(t, faulty.Serve(func(*http.Request, []byte) string { return faulty.OK(id) }))
	}
	g := startFaultGateway(t, fmt.Sprintf(`
upstreams:
  - name: pool
    targets: [{address: %s}, {address: %s}, {address: %s}]
    retries: {attempts: 1, on: [connect_error, reset]}
routes: [{name: r, match: {path_prefix: /}, upstream: pool}]
`, ups[0].Addr(), ups[1].Addr(), ups[2].Addr()))

	const workers = 4
	var ok, failed atomic.Int64
	var served [3]atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := &faulty.Client{Addr: g.ProxyAddr()}
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				raw, id := getReq("/x")
				r, err := c.Do(raw)
				if err != nil || r.Status != 200 {
					failed.Add(1)
					if err == nil {
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", id, r.Status, r.Body))
					} else {
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", id, err))
					}
					continue
				}
				ok.Add(1)
				if n, err := strconv.Atoi(strings.TrimPrefix(string(r.Body), "t")); err == nil && n < 3 {
					served[n].Add(1)
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	// Each phase lasts until the load has made progress in it, however
	// slow the machine: no fixed sleeps.
	progress := func(what string, n int64) {
		t.Helper()
		from := ok.Load()
		waitFor(t, what, func() bool { return ok.Load() >= from+n })
	}
	progress("load on three targets", 300)
	ups[1].Kill()
	progress("load with t1 dead", 300)
	before := served[1].Load()
	progress("load with t1 still dead", 300)
	if n := served[1].Load(); n != before {
		t.Fatalf("t1 served %d requests while dead", n-before)
	}
	if err := ups[1].Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "t1 serving again", func() bool { return served[1].Load() > before+50 })
	progress("load after the restart", 300)
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d GETs failed; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d GETs, none failed; served by t0/t1/t2: %d/%d/%d", ok.Load(), served[0].Load(), served[1].Load(), served[2].Load())
}

// TestFaultSlowloris: a client that dribbles its request head one byte a
// second is cut off by listen.read_timeout, which bounds the whole
// request, not the gap between bytes: it gets 408 read_timeout and its
// connection is closed. Clients beside it are served all along.
func TestFaultSlowloris(t *testing.T) {
	faulty.CheckLeaks(t)
	up := faulty.Start(t, faulty.Serve(func(*http.Request, []byte) string { return faulty.OK("ok") }))
	g := startGatewayConfig(t, fmt.Sprintf(faultListen, "2500ms")+fmt.Sprintf(`
upstreams: [{name: up, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: up}]
`, up.Addr()))
	start := time.Now() // before the gateway can have accepted the connection
	conn, err := net.Dial("tcp", g.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := "GET /slow HTTP/1.1\r\nHost: gw.test\r\nX-Slow: " + strings.Repeat("s", 100) + "\r\n\r\n"
	var wrote atomic.Int64
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := range len(head) {
			if _, err := conn.Write([]byte{head[i]}); err != nil {
				return // the gateway closed the connection
			}
			wrote.Add(1)
			select {
			case <-time.After(time.Second):
			case <-quit:
				return
			}
		}
	}()
	defer func() { close(quit); <-done }()
	// Meanwhile, other clients are served.
	c := &faulty.Client{Addr: g.ProxyAddr()}
	defer c.Close()
	fast := int64(0)
	for wrote.Load() < 2 {
		raw, _ := getReq("/fast")
		if r, err := c.Do(raw); err != nil || r.Status != 200 {
			t.Fatalf("a client beside the slowloris: %v %+v", err, r)
		}
		fast++
		time.Sleep(20 * time.Millisecond)
	}
	got, err := faulty.ClosedWithin(conn, 10*time.Second)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("the slowloris connection: %v after %v", err, elapsed)
	}
	if elapsed < 2500*time.Millisecond {
		t.Fatalf("cut off after %v, before read_timeout", elapsed)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 408 ") || !strings.Contains(string(got), `"error":"read_timeout"`) {
		t.Fatalf("the slowloris got %q", got)
	}
	if w := wrote.Load(); w < 2 || w >= int64(len(head)) {
		t.Fatalf("the slowloris wrote %d bytes of %d", w, len(head))
	}
	if n := g.metric(t, `wasmgate_rejected_requests_total{reason="read_timeout"}`); n != 1 {
		t.Fatalf("read_timeout rejections: %v, want 1", n)
	}
	g.b.stdout.Flush()
	if n := up.Requests(); n != fast || strings.Contains(g.access.String(), "/slow") {
		t.Fatalf("the upstream got %d requests for %d fast ones; access log:\n%s", n, fast, g.access.String())
	}
}

// rejectedBadRequest counts the requests fasthttp could not read whole,
// a client hanging up mid-request among them.
const rejectedBadRequest = `wasmgate_rejected_requests_total{reason="bad_request"}`

// TestFaultClientDisconnects: a client that hangs up mid-request (its
// head or part of its body sent) never gets its request to the upstream:
// it is counted as a request that could not be read (bad_request). One
// that hangs up while the upstream is still answering, or while a large
// answer is being written to it, costs the gateway the exchange and
// nothing more: the exchange completes and is counted with the upstream's
// status. Clients beside them are served, and the gateway leaves nothing
// running.
func TestFaultClientDisconnects(t *testing.T) {
	big := strings.Repeat("y", 8<<20)
	for _, tc := range []struct {
		name    string
		handler faulty.Handler
		// send writes the client's part and hangs up.
		send func(t *testing.T, conn net.Conn)
		// upstream is how many requests the upstream gets.
		upstream int64
		// counted is the series that counts the abandoned request.
		counted string
	}{
		{
			name:    "mid-request body, with a FIN",
			handler: faulty.Serve(func(*http.Request, []byte) string { return faulty.OK("ok") }),
			send: func(t *testing.T, conn net.Conn) {
				fmt.Fprintf(conn, "POST /up HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("b", 100))
				conn.Close()
			},
			counted: rejectedBadRequest,
		},
		{
			name:    "mid-request body, with a reset",
			handler: faulty.Serve(func(*http.Request, []byte) string { return faulty.OK("ok") }),
			send: func(t *testing.T, conn net.Conn) {
				fmt.Fprintf(conn, "POST /up HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1000\r\n\r\n%s", strings.Repeat("b", 100))
				conn.(*net.TCPConn).SetLinger(0) //nolint:errcheck
				conn.Close()
			},
			counted: rejectedBadRequest,
		},
		{
			name:    "mid-request head",
			handler: faulty.Serve(func(*http.Request, []byte) string { return faulty.OK("ok") }),
			send: func(t *testing.T, conn net.Conn) {
				fmt.Fprint(conn, "GET /up HTTP/1.1\r\nHost: gw.te")
				conn.Close()
			},
			counted: rejectedBadRequest,
		},
		{
			name:    "while the upstream answers",
			handler: answerAfter(300*time.Millisecond, faulty.OK("late")),
			send: func(t *testing.T, conn net.Conn) {
				fmt.Fprint(conn, "GET /up HTTP/1.1\r\nHost: gw.test\r\n\r\n")
				time.Sleep(50 * time.Millisecond)
				conn.Close()
			},
			upstream: 1,
			counted:  `wasmgate_requests_total{route="up",status="2xx"}`,
		},
		{
			name: "mid-response, a large chunked answer",
			handler: faulty.Serve(func(*http.Request, []byte) string {
				return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big), big)
			}),
			send: func(t *testing.T, conn net.Conn) {
				fmt.Fprint(conn, "GET /up HTTP/1.1\r\nHost: gw.test\r\n\r\n")
				if _, err := io.ReadFull(conn, make([]byte, 64<<10)); err != nil {
					t.Errorf("reading the start of the answer: %v", err)
				}
				conn.(*net.TCPConn).SetLinger(0) //nolint:errcheck
				conn.Close()
			},
			upstream: 1,
			counted:  `wasmgate_requests_total{route="up",status="2xx"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			faulty.CheckLeaks(t)
			up := faulty.Start(t, tc.handler)
			other := faulty.Start(t, faulty.Serve(func(*http.Request, []byte) string { return faulty.OK("other") }))
			g := startFaultGateway(t, fmt.Sprintf(`
upstreams:
  - {name: up, targets: [{address: %s}]}
  - {name: other, targets: [{address: %s}]}
routes:
  - {name: up, match: {path_prefix: /up}, upstream: up, max_response_bytes: 16MiB}
  - {name: other, match: {path_prefix: /other}, upstream: other}
`, up.Addr(), other.Addr()))
			// A client beside it keeps its connection and is served
			// before, during and after.
			c := &faulty.Client{Addr: g.ProxyAddr()}
			defer c.Close()
			beside := func() {
				t.Helper()
				raw, _ := getReq("/other")
				if r, err := c.Do(raw); err != nil || r.Status != 200 || string(r.Body) != "other" {
					t.Fatalf("the client beside: %v %+v", err, r)
				}
			}
			beside()
			conn, err := net.Dial("tcp", g.ProxyAddr())
			if err != nil {
				t.Fatal(err)
			}
			tc.send(t, conn)
			beside()
			// The exchange the client left ends on its own, counted.
			waitFor(t, tc.counted, func() bool { return g.metric(t, tc.counted) == 1 })
			if n := up.Requests(); n != tc.upstream {
				t.Fatalf("the upstream got %d requests, want %d", n, tc.upstream)
			}
			beside()
		})
	}
}

// TestFaultTLSHandshakeStall: clients that connect to the HTTPS listener
// and stall in the handshake (nothing sent, half a ClientHello, a
// ClientHello and then nothing) are closed once listen.read_timeout
// passes; a client beside them shakes hands and is served meanwhile.
func TestFaultTLSHandshakeStall(t *testing.T) {
	faulty.CheckLeaks(t)
	up := faulty.Start(t, faulty.Serve(func(*http.Request, []byte) string { return faulty.OK("ok") }))
	ca := tlstest.NewCA(t, "gateway CA")
	crt, key := tlstest.WriteCert(t, t.TempDir(), "site", ca.Server(t))
	g := startGatewayConfig(t, strings.Replace(fmt.Sprintf(faultListen, "1s"), "listen:\n", fmt.Sprintf(`listen:
  tls: {address: 127.0.0.1:0, certificates: [{cert: %q, key: %q}]}
`, crt, key), 1)+fmt.Sprintf(`
upstreams: [{name: up, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: up}]
`, up.Addr()))
	addr := g.edge.tlsLn.Addr().String()
	hello := clientHello(t)
	stalls := map[string][]byte{
		"nothing":            nil,
		"half a ClientHello": hello[:len(hello)/2],
		"a ClientHello only": hello,
	}
	type result struct {
		name    string
		elapsed time.Duration
		err     error
	}
	results := make(chan result, len(stalls))
	start := time.Now()
	for name, sent := range stalls {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(sent); err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := faulty.ClosedWithin(conn, 10*time.Second)
			results <- result{name, time.Since(start), err}
		}()
	}
	// While they stall, another client is served over TLS, HTTP/1.1 and
	// HTTP/2 alike.
	c := &faulty.Client{Addr: addr, TLS: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"http/1.1"}}}
	defer c.Close()
	for range 3 {
		raw, _ := getReq("/x")
		if r, err := c.Do(raw); err != nil || r.Status != 200 || string(r.Body) != "ok" {
			t.Fatalf("a TLS client beside the stalled ones: %v %+v", err, r)
		}
	}
	h2 := h2Client(ca)
	defer h2.CloseIdleConnections()
	if resp, err := (&http.Client{Transport: h2}).Get("https://" + addr + "/h2"); err != nil || resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("an HTTP/2 client beside the stalled ones: %v %+v", err, resp)
	} else {
		resp.Body.Close()
	}
	for range stalls {
		r := <-results
		if r.err != nil {
			t.Errorf("%s: %v after %v", r.name, r.err, r.elapsed)
		} else if r.elapsed < time.Second {
			t.Errorf("%s: closed after %v, before read_timeout", r.name, r.elapsed)
		}
	}
	if n := up.Requests(); n != 4 {
		t.Fatalf("the upstream got %d requests, want 4", n)
	}
}

// clientHello is the first flight of a Go TLS client to localhost: a
// ClientHello record.
func clientHello(t *testing.T) []byte {
	t.Helper()
	client, server := net.Pipe()
	defer server.Close()
	go func() {
		_ = tls.Client(client, &tls.Config{ServerName: "localhost"}).Handshake()
		client.Close()
	}()
	br := bufio.NewReader(server)
	head := make([]byte, 5)
	if _, err := io.ReadFull(br, head); err != nil || head[0] != 22 {
		t.Fatalf("no handshake record: %v %x", err, head)
	}
	body := make([]byte, int(head[3])<<8|int(head[4]))
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	return append(head, body...)
}

// TestFaultPlugins: a plugin that traps, loops past its deadline, hits its
// memory cap, returns what the ABI does not define, panics, exits or hands
// the host a bad pointer fails its request per its failure policy
// (fail_closed: 502 plugin_failed naming the plugin and the kind;
// fail_open: the request goes on without it, the skip counted under the
// kind); a route without it, taking traffic all along, is unaffected. The
// modes share one gateway (a Go plugin takes seconds to load under -race):
// the leak check covers them together.
func TestFaultPlugins(t *testing.T) {
	warmPlugins(t, "fault")
	faulty.CheckLeaks(t)
	modes := []struct{ mode, limits, kind string }{
		{"trap", "{call_timeout: 5s}", "trap"},
		{"loop", "{call_timeout: 100ms}", "timeout"},
		{"alloc", "{call_timeout: 30s, memory_pages: 128}", "memory"},
		{"garbage", "{call_timeout: 5s}", "bad_return"},
		{"panic", "{call_timeout: 5s}", "bad_return"},
		{"exit", "{call_timeout: 5s}", "trap"},
		{"bad_pointer", "{call_timeout: 5s}", "trap"},
	}
	up := faulty.Start(t, faulty.Serve(func(r *http.Request, _ []byte) string { return faulty.OK("up " + r.URL.Path) }))
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "plugin_runtime: {cache_dir: %q}\nplugins:\n", e2eCacheDir(t))
	// quarantine.after is high: each answer here is a failing plugin's,
	// not a quarantined one's (quarantine_e2e_test.go tests those).
	for _, m := range modes {
		fmt.Fprintf(&cfg, "  - {name: fault-%s, module: %q, limits: %s, quarantine: {after: 100}, config: {mode: %s, on: request}}\n",
			m.mode, pluginPath(t, "fault"), m.limits, m.mode)
	}
	fmt.Fprintf(&cfg, "upstreams: [{name: up, targets: [{address: %s}]}]\nroutes:\n", up.Addr())
	fmt.Fprintf(&cfg, "  - {name: plain, match: {path_prefix: /plain}, upstream: up}\n")
	for _, m := range modes {
		for _, p := range []string{"fail_closed", "fail_open"} {
			fmt.Fprintf(&cfg, "  - {name: %s-%s, match: {path: /%s/%s}, upstream: up, plugins: [{name: fault-%s, failure_policy: %s}]}\n",
				m.mode, p, m.mode, p, m.mode, p)
		}
	}
	g := startFaultGateway(t, cfg.String())

	// A route without the plugins takes traffic all along.
	var failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for range 2 {
		wg.Go(func() {
			c := &faulty.Client{Addr: g.ProxyAddr()}
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				raw, _ := getReq("/plain")
				if r, err := c.Do(raw); err != nil || r.Status != 200 || string(r.Body) != "up /plain" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint(err, r))
				}
			}
		})
	}
	for _, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			plugin := "fault-" + m.mode
			raw, id := getReq("/" + m.mode + "/fail_closed")
			r, err := faulty.Fetch(g.ProxyAddr(), raw)
			if err != nil {
				t.Fatal(err)
			}
			var body struct{ Error, Plugin, Kind string }
			_ = json.Unmarshal(r.Body, &body)
			if r.Status != 502 || body.Error != "plugin_failed" || body.Plugin != plugin || body.Kind != m.kind {
				t.Fatalf("fail_closed: %d %s, want 502 plugin_failed kind %s", r.Status, r.Body, m.kind)
			}
			if line := g.accessLine(t, id); line["status"] != float64(502) || line["route"] != m.mode+"-fail_closed" || line["upstream"] != "" {
				t.Fatalf("access log line %v", line)
			}
			raw, _ = getReq("/" + m.mode + "/fail_open")
			if r, err := faulty.Fetch(g.ProxyAddr(), raw); err != nil || r.Status != 200 || string(r.Body) != "up /"+m.mode+"/fail_open" {
				t.Fatalf("fail_open: %v %+v, want the upstream's answer", err, r)
			}
			if n := g.metric(t, fmt.Sprintf(`wasmgate_plugin_skipped_total{kind=%q,plugin=%q,route="%s-fail_open"}`, m.kind, plugin, m.mode)); n != 1 {
				t.Fatalf("skips of kind %s on the fail_open route: %v, want 1", m.kind, n)
			}
			if n := g.metricSum(t, "wasmgate_plugin_failures_total", `kind="`+m.kind+`"`, `plugin="`+plugin+`"`); n != 2 {
				t.Fatalf("failures of kind %s: %v, want 2", m.kind, n)
			}
		})
	}
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d requests on the route without the plugins failed; first: %v", n, firstErr.Load())
	}
}

// h2Client speaks only HTTP/2 to a gateway whose certificate ca issued.
func h2Client(ca *tlstest.CA) *http2.Transport {
	return &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
}
