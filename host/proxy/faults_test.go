package proxy

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
)

// TestStaleResendIsNoRetry: a target that died with a pooled connection
// to it costs a request the one stale resend there (refused) and leaves
// it the retries of its policy: with attempts 1 it goes to the other
// target. The resend is counted, on top of 1 + attempts.
func TestStaleResendIsNoRetry(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 64)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("dying") }}
	go func() { _ = srv.Serve(connTracker{ln, conns}) }()
	t.Cleanup(func() { ln.Close() })
	other := startBackend(t, "other")
	cfg := upstreamConfig("round_robin", ln.Addr().String(), other.addr)
	cfg.Retries = &config.Retries{Attempts: 1, On: []string{"connect_error"}}
	u := newUpstream(t, cfg)
	for range 2 { // one request each: a pooled connection to dying
		if _, _, err := send(u, "GET", nil); err != nil {
			t.Fatal(err)
		}
	}
	// dying dies: no more connections, and those open are closed.
	ln.Close()
	for len(conns) > 0 {
		(<-conns).Close()
	}
	time.Sleep(20 * time.Millisecond) // for the FIN to arrive
	body, x, err := send(u, "GET", nil)
	if err != nil || body != "other" || x.Attempts != 3 {
		t.Fatalf("%q %v after %d attempts; want other's answer after 3 (stale, refused, retried)", body, err, x.Attempts)
	}
}

// TestResponseBodyLimit: a response body over the limit (the exchange's,
// else the upstream's) fails the exchange with body_too_large, from its
// Content-Length before a byte of it is read, or once the bytes read pass
// it (chunked, or until the connection closes); it is not retried, not
// blamed on the target, and a HEAD answer's Content-Length is no body.
func TestResponseBodyLimit(t *testing.T) {
	big := strings.Repeat("x", 4096)
	for _, tc := range []struct {
		name   string
		answer string
	}{
		{"Content-Length", fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big)},
		{"Content-Length, no body sent", "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n"},
		{"chunked", fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big)},
		{"until close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big},
	} {
		for _, where := range []string{"upstream", "exchange"} {
			raw := startRaw(t, func(int64) string { return tc.answer })
			cfg := upstreamConfig("round_robin", raw.addr)
			cfg.Retries = &config.Retries{Attempts: 2, On: []string{"connect_error", "reset", "timeout"}}
			cfg.CircuitBreaker = &config.CircuitBreaker{ConsecutiveFailures: 1, OpenFor: config.Duration(time.Minute)}
			u := newUpstream(t, cfg)
			var mod func(*Exchange)
			if where == "upstream" {
				u.SetMaxResponseBody(1024)
			} else {
				u.SetMaxResponseBody(1 << 20) // the exchange's limit wins
				mod = func(x *Exchange) { x.MaxResponseBody = 1024 }
			}
			_, x, err := send(u, "GET", mod)
			if kindOf(err) != "body_too_large" || x.Attempts != 1 || err.(*Error).Status() != fasthttp.StatusBadGateway {
				t.Fatalf("%s, limit of the %s: %v after %d attempts", tc.name, where, err, x.Attempts)
			}
			if st := u.Status().Targets[0]; st.Circuit != "closed" || st.Failures != 0 {
				t.Fatalf("%s: the target was blamed: %+v", tc.name, st)
			}
		}
	}
	// Under the limit, and HEAD whatever its Content-Length.
	raw := startRaw(t, func(int64) string { return "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" })
	u := newUpstream(t, upstreamConfig("round_robin", raw.addr))
	u.SetMaxResponseBody(1024)
	if _, x, err := send(u, "HEAD", nil); err != nil || x.Resp.Header.ContentLength() != 1000000000 {
		t.Fatalf("HEAD: %v", err)
	}
	ok := startRaw(t, func(int64) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n" + strings.Repeat("y", 1024)
	})
	u = newUpstream(t, upstreamConfig("round_robin", ok.addr))
	u.SetMaxResponseBody(1024)
	if body, _, err := send(u, "GET", nil); err != nil || len(body) != 1024 {
		t.Fatalf("a body at the limit: %d bytes, %v", len(body), err)
	}
}
