package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// FuzzRequestPath sends raw bytes to a real gateway in front of a capturing
// upstream and checks, for whatever the bytes are: every answer is a
// well-formed HTTP response and never a 500 (a gateway bug); every request
// the upstream receives is the gateway's own form of it (HTTP/1.1, a valid
// Host, a canonical path, token header names, one X-Request-Id, no
// hop-by-hop header, no credentials the client did not send as such); and
// the gateway still serves afterwards. The seed corpus in
// testdata/fuzz/FuzzRequestPath holds every hostile input of issue #9.
func FuzzRequestPath(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: gw.test\r\n\r\n"))
	priv, pub, cb := startCapture(f, "private"), startCapture(f, "public"), startCapture(f, "cb")
	g := startGateway(f, 1000, fmt.Sprintf(hostileRoutes, priv.addr, pub.addr, cb.addr))
	ups := []*capture{priv, pub, cb}
	f.Fuzz(func(t *testing.T, req []byte) {
		before := make([]int, len(ups))
		for i, u := range ups {
			before[i] = u.count()
		}
		out := exchangeRaw(t, g.ProxyAddr(), req)
		br := bufio.NewReader(bytes.NewReader(out))
		for {
			var resp fasthttp.Response
			err := resp.Read(br)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("the gateway's answer is not HTTP: %v\n%q", err, out)
			}
			if resp.StatusCode() == 500 {
				t.Fatalf("500 for %q: %s", req, resp.Body())
			}
		}
		hasAuth := bytes.Contains(bytes.ToLower(req), []byte("authorization"))
		for i, u := range ups {
			u.mu.Lock()
			seen := append([]captured(nil), u.seen[before[i]:]...)
			u.mu.Unlock()
			for _, r := range seen {
				checkForwarded(t, req, r, hasAuth)
			}
		}
		if r := raw(t, g.ProxyAddr(), "GET /alive HTTP/1.1\r\nHost: gw.test\r\n\r\n"); r.StatusCode() != 200 {
			t.Fatalf("after %q the gateway answers %d", req, r.StatusCode())
		}
	})
}

// exchangeRaw writes req on a new connection, closes the writing side and
// returns all the gateway wrote back before closing.
func exchangeRaw(t *testing.T, addr string, req []byte) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(req); err != nil {
		return nil // the gateway hung up early: nothing to check
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	out, _ := io.ReadAll(conn)
	return out
}

var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Upgrade", "Proxy-Authorization", "Transfer-Encoding"}

func checkForwarded(t *testing.T, req []byte, r captured, clientAuth bool) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("for %q the upstream got %s %s %s %q: %s", req, r.method, r.uri, r.proto, r.headers, fmt.Sprintf(format, args...))
	}
	if r.proto != "HTTP/1.1" {
		fail("version %s", r.proto)
	}
	if !httpsyntax.ValidHost([]byte(r.host)) {
		fail("Host %q", r.host)
	}
	p, _, _ := strings.Cut(r.uri, "?")
	if clean, err := httpsyntax.CleanPath(nil, []byte(p), httpsyntax.RejectEscapedSlashes); err != nil || string(clean) != p {
		fail("a path not in canonical form (%v)", err)
	}
	if _, err := url.ParseRequestURI(r.uri); err != nil {
		fail("a request target Go cannot parse: %v", err)
	}
	for _, h := range r.headers {
		name, _, _ := strings.Cut(h, ": ")
		if !httpsyntax.IsToken([]byte(name)) {
			fail("header name %q", name)
		}
		for _, hop := range hopByHop {
			if strings.EqualFold(name, hop) {
				fail("hop-by-hop header %q", name)
			}
		}
	}
	if n := len(r.header("X-Request-Id")); n != 1 {
		fail("%d X-Request-Id headers", n)
	}
	if n := len(r.header("Traceparent")); n != 1 {
		fail("%d traceparent headers", n)
	}
	if r.header("Authorization") != nil && !clientAuth {
		fail("an Authorization header the client did not send")
	}
}
