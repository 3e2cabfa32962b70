package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/wasmgate/wasmgate/host/config"
)

// rawUpstream is a TCP server on 127.0.0.1 that reads each request's head
// and answers it with answer(n) (n counts requests from 1; "" closes the
// connection without answering; an answer ending in NUL is sent without
// the NUL, then the connection is reset). It counts requests and
// connections.
type rawUpstream struct {
	addr            string
	requests, conns atomic.Int64
}

func startRaw(t *testing.T, answer func(n int64) string) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &rawUpstream{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					out := answer(r.requests.Add(1))
					if out == "" {
						return
					}
					reset := strings.HasSuffix(out, "\x00")
					if _, err := io.WriteString(c, strings.TrimSuffix(out, "\x00")); err != nil || reset {
						c.(*net.TCPConn).SetLinger(0) //nolint:errcheck // close with a reset
						return
					}
				}
			}()
		}
	}()
	return r
}

// TestExactAttempts: a policy of N attempts sends exactly 1+N requests,
// each counted, whatever the failure: the upstream client retries nothing
// on its own.
func TestExactAttempts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string // "" closes the connection without answering
		on     string
	}{
		{"closed before answering", "", "reset"},
		{"status 503", "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "503"},
	} {
		for _, attempts := range []int{0, 1, 2} {
			for _, method := range []string{"GET", "POST"} {
				raw := startRaw(t, func(int64) string { return tc.answer })
				cfg := upstreamConfig("round_robin", raw.addr)
				cfg.Retries = &config.Retries{Attempts: attempts, On: []string{tc.on}}
				no := false
				cfg.Retries.IdempotentOnly = &no
				u := newUpstream(t, cfg)
				_, x, _ := send(u, method, nil)
				if got := raw.requests.Load(); got != int64(1+attempts) || x.Attempts != 1+attempts {
					t.Errorf("%s, %s, attempts %d: upstream got %d requests, Do counted %d; want %d", tc.name, method, attempts, got, x.Attempts, 1+attempts)
				}
			}
		}
	}
}

// TestStaleConnectionRetried: a pooled connection the target closed while
// idle fails the next request before any response byte; that request is
// sent once more on a new connection and counted as an attempt.
func TestStaleConnectionRetried(t *testing.T) {
	idle := startIdleCloser(t)
	u2 := newUpstream(t, upstreamConfig("round_robin", idle.addr))
	if body, x, err := send(u2, "GET", nil); err != nil || body != "ok" || x.Attempts != 1 {
		t.Fatalf("warm-up: %q %v after %d attempts", body, err, x.Attempts)
	}
	idle.closeIdle()
	body, x, err := send(u2, "GET", nil)
	if err != nil || body != "ok" || x.Attempts != 2 {
		t.Fatalf("after the idle close: %q %v after %d attempts; want ok after 2", body, err, x.Attempts)
	}
	if got := idle.requests.Load(); got != 2 {
		t.Fatalf("upstream saw %d requests, want 2 (the stale connection carried none)", got)
	}
	// Not idempotent: not resent.
	if body, x, err := send(u2, "GET", nil); err != nil || x.Attempts != 1 {
		t.Fatalf("warm-up 2: %q %v after %d attempts", body, err, x.Attempts)
	}
	idle.closeIdle()
	if _, x, err := send(u2, "POST", nil); err == nil || x.Attempts != 1 || kindOf(err) != "reset" {
		t.Fatalf("POST on a stale connection: %v after %d attempts; want a reset after 1", err, x.Attempts)
	}
}

// idleCloser is a fasthttp upstream whose open connections can be closed
// from the server side, as a server does with idle keep-alive connections.
type idleCloser struct {
	addr     string
	requests atomic.Int64
	conns    chan net.Conn
}

func startIdleCloser(t *testing.T) *idleCloser {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ic := &idleCloser{addr: ln.Addr().String(), conns: make(chan net.Conn, 64)}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ic.requests.Add(1)
		ctx.SetBodyString("ok")
	}}
	go func() { _ = srv.Serve(connTracker{ln, ic.conns}) }()
	t.Cleanup(func() { ln.Close() })
	return ic
}

// closeIdle closes every connection accepted so far and waits a moment
// for the FIN to arrive.
func (ic *idleCloser) closeIdle() {
	for {
		select {
		case c := <-ic.conns:
			c.Close()
		default:
			time.Sleep(20 * time.Millisecond)
			return
		}
	}
}

type connTracker struct {
	net.Listener
	conns chan net.Conn
}

func (l connTracker) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.conns <- c
	}
	return c, err
}

// TestRequestErrorsSpareTheBreaker: a request without a Host (HTTP/1.0
// allows it) is sent with the target's address as Host, and what the
// gateway cannot send never counts against the target.
func TestRequestErrorsSpareTheBreaker(t *testing.T) {
	be := startBackend(t, "a")
	var host atomic.Value
	be.setHandler(func(ctx *fasthttp.RequestCtx) { host.Store(string(ctx.Host())) })
	cfg := upstreamConfig("round_robin", be.addr)
	cfg.CircuitBreaker = &config.CircuitBreaker{ConsecutiveFailures: 2, OpenFor: config.Duration(time.Minute)}
	u := newUpstream(t, cfg)
	for range 5 {
		_, x, err := send(u, "GET", func(x *Exchange) {
			x.Req.Header.SetProtocol("HTTP/1.0")
			x.Req.Header.Del("Host")
			x.Req.URI().SetHost("")
		})
		if err != nil || x.Resp.StatusCode() != 200 {
			t.Fatalf("HTTP/1.0 without Host: %v", err)
		}
	}
	if got := host.Load(); got != be.addr {
		t.Fatalf("upstream saw Host %q, want the target %q", got, be.addr)
	}
	if kind := classify(errors.New("missing required host header in request")); kind != ErrRequest {
		t.Fatalf("classify: %v, want request", kind)
	}
	if st := u.Status().Targets[0]; st.Circuit != "closed" || st.Failures != 0 {
		t.Fatalf("target after request errors: %+v", st)
	}
	if s := (&Error{Kind: ErrRequest}).Status(); s != 500 {
		t.Fatalf("a request error answers %d, want 500", s)
	}
}

// TestOnlyTheTargetsFaultsCount: a full connection pool of the gateway's
// own, and a target that answers early and closes while a large body is
// still being written, leave the target's breaker closed; a half-open
// circuit whose trial tells nothing lets the next request be the trial.
func TestOnlyTheTargetsFaultsCount(t *testing.T) {
	t.Run("pool exhausted", func(t *testing.T) {
		be := startBackend(t, "a")
		release := make(chan struct{})
		be.setHandler(func(ctx *fasthttp.RequestCtx) {
			if string(ctx.Path()) == "/slow" {
				<-release
			}
			ctx.SetBodyString("ok")
		})
		cfg := upstreamConfig("round_robin", be.addr)
		cfg.MaxConns = 1
		cfg.Timeouts.Connect = config.Duration(50 * time.Millisecond)
		cfg.CircuitBreaker = &config.CircuitBreaker{ConsecutiveFailures: 2, OpenFor: config.Duration(time.Minute)}
		u := newUpstream(t, cfg)
		done := make(chan struct{})
		go func() {
			defer close(done)
			send(u, "GET", func(x *Exchange) { x.Req.SetRequestURI("/slow") }) //nolint:errcheck
		}()
		time.Sleep(50 * time.Millisecond) // the slow request holds the only connection
		for range 4 {
			_, _, err := send(u, "GET", nil)
			if kindOf(err) != "busy" || err.(*Error).Status() != 503 {
				t.Fatalf("with the pool full: %v", err)
			}
		}
		close(release)
		<-done
		if st := u.Status().Targets[0]; st.Circuit != "closed" || st.Failures != 0 {
			t.Fatalf("target after a full pool: %+v", st)
		}
	})
	t.Run("early answer to a large body", func(t *testing.T) {
		raw := startRaw(t, func(int64) string {
			return "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
		})
		cfg := upstreamConfig("round_robin", raw.addr)
		cfg.CircuitBreaker = &config.CircuitBreaker{ConsecutiveFailures: 2, OpenFor: config.Duration(time.Minute)}
		u := newUpstream(t, cfg)
		body := make([]byte, 16<<20)
		for range 4 {
			_, x, err := send(u, "POST", func(x *Exchange) { x.Req.SetBodyRaw(body) })
			if err == nil && x.Resp.StatusCode() == 413 {
				continue // the answer arrived before the write broke
			}
			if kindOf(err) != "reset" {
				t.Fatalf("a target closing early: %v", err)
			}
		}
		if st := u.Status().Targets[0]; st.Circuit != "closed" || st.Failures != 0 {
			t.Fatalf("target after early answers: %+v", st)
		}
	})
	t.Run("broken mid-response is no stale connection", func(t *testing.T) {
		// Answers the first request, then, on the same connection, sends
		// part of a response and resets the connection.
		raw := startRaw(t, func(n int64) string {
			if n == 1 {
				return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
			}
			return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial\x00"
		})
		u := newUpstream(t, upstreamConfig("round_robin", raw.addr))
		if _, _, err := send(u, "GET", nil); err != nil {
			t.Fatal(err)
		}
		_, x, err := send(u, "GET", nil)
		if err == nil || x.Attempts != 1 || raw.requests.Load() != 2 {
			t.Fatalf("%v after %d attempts; the target got %d requests, want 2", err, x.Attempts, raw.requests.Load())
		}
	})
}
