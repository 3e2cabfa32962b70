package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/testkit"
)

func twoUpstreamConfig(a, b *upstream) string {
	return fmt.Sprintf(`
upstreams:
  - name: alpha
    targets: [{address: %s}]
  - name: beta
    targets: [{address: %s}]
routes:
  - name: users-by-id
    match: {path: "/api/users/{id}", methods: [GET]}
    upstream: alpha
    rewrite: {path: "/users/{id}/profile"}
  - name: api
    match: {path_prefix: /api}
    upstream: alpha
    rewrite: {strip_prefix: /api}
  - name: beta-header
    match:
      path_prefix: /api
      headers: [{name: X-Api-Version, value: "2"}]
    upstream: beta
  - name: small-body
    match: {path: /upload}
    upstream: beta
    max_body_bytes: 16
  - name: host-route
    match: {hosts: ["*.example.test"], path_prefix: /}
    upstream: beta
`, a.addr, b.addr)
}

func TestProxyForwardsAndRewrites(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	g := startGateway(t, 100, twoUpstreamConfig(a, b))

	tests := []struct {
		name     string
		method   string
		path     string
		headers  map[string]string
		wantID   string
		wantURI  string
		wantHost string
	}{
		{name: "template rewrite", method: "GET", path: "/api/users/42?x=1", wantID: "a", wantURI: "/users/42/profile?x=1"},
		{name: "strip prefix", method: "POST", path: "/api/users/42", wantID: "a", wantURI: "/users/42"},
		{name: "strip prefix keeps query", method: "GET", path: "/api/orders?limit=5", wantID: "a", wantURI: "/orders?limit=5"},
		{name: "header condition wins", method: "GET", path: "/api/orders", headers: map[string]string{"X-Api-Version": "2"}, wantID: "b", wantURI: "/api/orders"},
		{name: "wildcard host", method: "GET", path: "/anything", headers: map[string]string{"Host": "shop.example.test"}, wantID: "b", wantURI: "/anything", wantHost: "shop.example.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, g.url(tc.path), tc.headers, nil)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			e := r.echo(t)
			if e.ID != tc.wantID || e.URI != tc.wantURI {
				t.Fatalf("got upstream %q uri %q, want %q %q", e.ID, e.URI, tc.wantID, tc.wantURI)
			}
			if tc.wantHost != "" && e.Host != tc.wantHost {
				t.Fatalf("upstream saw Host %q, want %q", e.Host, tc.wantHost)
			}
		})
	}
}

var (
	hex32         = regexp.MustCompile(`^[0-9a-f]{32}$`)
	traceparentRe = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
)

func TestProxyHeaders(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	g := startGateway(t, 100, twoUpstreamConfig(a, b))

	t.Run("request id generated, forwarded, echoed", func(t *testing.T) {
		r := do(t, "GET", g.url("/api/x"), nil, nil)
		id := r.headers["X-Request-Id"]
		if !hex32.MatchString(id) {
			t.Fatalf("X-Request-Id %q is not 32 hex digits", id)
		}
		if got := r.echo(t).Headers["X-Request-Id"]; got != id {
			t.Fatalf("upstream got request id %q, client got %q", got, id)
		}
	})
	t.Run("client request id kept", func(t *testing.T) {
		r := do(t, "GET", g.url("/api/x"), map[string]string{"X-Request-Id": "client-id-1"}, nil)
		if r.headers["X-Request-Id"] != "client-id-1" || r.echo(t).Headers["X-Request-Id"] != "client-id-1" {
			t.Fatalf("client id not kept: %v", r.headers)
		}
	})
	t.Run("unsafe client request id replaced", func(t *testing.T) {
		r := do(t, "GET", g.url("/api/x"), map[string]string{"X-Request-Id": `bad"id`}, nil)
		if !hex32.MatchString(r.headers["X-Request-Id"]) {
			t.Fatalf("unsafe id echoed: %q", r.headers["X-Request-Id"])
		}
	})
	t.Run("traceparent created", func(t *testing.T) {
		e := do(t, "GET", g.url("/api/x"), nil, nil).echo(t)
		if !traceparentRe.MatchString(e.Headers["Traceparent"]) {
			t.Fatalf("traceparent %q", e.Headers["Traceparent"])
		}
	})
	t.Run("traceparent propagated with a new parent id", func(t *testing.T) {
		in := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		e := do(t, "GET", g.url("/api/x"), map[string]string{"Traceparent": in, "Tracestate": "k=v"}, nil).echo(t)
		m := traceparentRe.FindStringSubmatch(e.Headers["Traceparent"])
		if m == nil || m[1] != "4bf92f3577b34da6a3ce929d0e0e4736" || m[2] == "00f067aa0ba902b7" || m[3] != "01" {
			t.Fatalf("traceparent %q from %q", e.Headers["Traceparent"], in)
		}
		if e.Headers["Tracestate"] != "k=v" {
			t.Fatalf("tracestate not passed through: %q", e.Headers["Tracestate"])
		}
	})
	t.Run("forwarded headers", func(t *testing.T) {
		e := do(t, "GET", g.url("/api/x"), map[string]string{"X-Forwarded-For": "203.0.113.7", "Host": "api.local"}, nil).echo(t)
		if e.Headers["X-Forwarded-For"] != "203.0.113.7, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q", e.Headers["X-Forwarded-For"])
		}
		if e.Headers["X-Forwarded-Proto"] != "http" || e.Headers["X-Forwarded-Host"] != "api.local" {
			t.Errorf("X-Forwarded-Proto/Host %q %q", e.Headers["X-Forwarded-Proto"], e.Headers["X-Forwarded-Host"])
		}
		if !strings.Contains(e.Headers["Forwarded"], "for=127.0.0.1") || !strings.Contains(e.Headers["Forwarded"], "proto=http") {
			t.Errorf("Forwarded %q", e.Headers["Forwarded"])
		}
	})
	t.Run("hop-by-hop headers stripped both ways", func(t *testing.T) {
		r := do(t, "GET", g.url("/api/x"), map[string]string{"Connection": "keep-alive, X-Hop", "X-Hop": "secret", "Keep-Alive": "timeout=1", "Te": "trailers"}, nil)
		e := r.echo(t)
		for _, h := range []string{"X-Hop", "Keep-Alive", "Te"} {
			if _, ok := e.Headers[h]; ok {
				t.Errorf("upstream received hop-by-hop header %s", h)
			}
		}
		for _, h := range []string{"X-Secret-Hop", "Keep-Alive"} {
			if _, ok := r.headers[h]; ok {
				t.Errorf("client received hop-by-hop header %s", h)
			}
		}
	})
}

func TestErrorsAndLimits(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	g := startGateway(t, 100, twoUpstreamConfig(a, b))

	t.Run("no route is 404 JSON with the request id", func(t *testing.T) {
		r := do(t, "GET", g.url("/nowhere"), nil, nil)
		var body struct{ Error, RequestID string }
		_ = json.Unmarshal(r.body, &struct {
			Error     *string `json:"error"`
			RequestID *string `json:"request_id"`
		}{&body.Error, &body.RequestID})
		if r.status != 404 || body.Error != "no_route" || body.RequestID != r.headers["X-Request-Id"] {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("route body limit is 413", func(t *testing.T) {
		r := do(t, "POST", g.url("/upload"), nil, []byte(strings.Repeat("x", 17)))
		if r.status != 413 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		if r := do(t, "POST", g.url("/upload"), nil, []byte("small")); r.status != 200 {
			t.Fatalf("small body: %d", r.status)
		}
	})
	t.Run("listener body limit is 413 before the body is read", func(t *testing.T) {
		// Announce 2 MiB (the listener allows 1 MiB) and send none of it: the
		// gateway must answer from the headers alone, not wait for the body.
		conn, err := net.Dial("tcp", g.ProxyAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /api/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 2<<20)
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 256)
		n, _ := conn.Read(buf)
		if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 413") {
			t.Fatalf("got %q", buf[:n])
		}
	})
	t.Run("header limit is 431", func(t *testing.T) {
		r := do(t, "GET", g.url("/api/x"), map[string]string{"X-Big": strings.Repeat("h", 8<<10)}, nil)
		if r.status != 431 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
	t.Run("dead upstream is 502 naming the kind", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := ln.Addr().String()
		ln.Close()
		writeConfig(t, g.cfgPath, fmt.Sprintf(baseConfig, 100)+fmt.Sprintf(`
upstreams:
  - name: dead
    targets: [{address: %s}]
routes:
  - name: dead
    match: {path_prefix: /}
    upstream: dead
`, dead))
		if _, err := g.Reload("test"); err != nil {
			t.Fatal(err)
		}
		r := do(t, "GET", g.url("/x"), nil, nil)
		if r.status != 502 || !strings.Contains(string(r.body), "upstream_connect") {
			t.Fatalf("got %d %s", r.status, r.body)
		}
	})
}

func TestSlowlorisIsCutOff(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: all, match: {path_prefix: /}, upstream: a}]
`, a.addr))
	// baseConfig sets a 1s read timeout: a raw connection that sends half a
	// request must be answered 408 or closed, not held open.
	conn, err := net.Dial("tcp", g.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err == nil && !strings.Contains(string(buf[:n]), "408") {
		t.Fatalf("expected a 408 or a closed connection, got %q", buf[:n])
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the gateway kept a half-sent request open")
	}
}

func TestConcurrencyLimitAnswers503(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 2, fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: all, match: {path_prefix: /}, upstream: a}]
`, a.addr))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); do(t, "GET", g.url("/slow"), nil, nil) }()
	}
	waitFor(t, "two requests in flight", func() bool { return g.inFlight.Load() == 2 })
	r := do(t, "GET", g.url("/fast"), nil, nil)
	if r.status != 503 || r.headers["Retry-After"] != "1" {
		t.Fatalf("over the limit: got %d Retry-After %q", r.status, r.headers["Retry-After"])
	}
	close(a.release)
	wg.Wait()
	if r := do(t, "GET", g.url("/fast"), nil, nil); r.status != 200 {
		t.Fatalf("after the burst: %d", r.status)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, what, cond)
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	cfgA := fmt.Sprintf(`
upstreams:
  - {name: a, targets: [{address: %s}]}
  - {name: b, targets: [{address: %s}]}
routes:
  - {name: main, match: {path_prefix: /}, upstream: a}
`, a.addr, b.addr)
	cfgB := fmt.Sprintf(`
upstreams:
  - {name: a, targets: [{address: %s}]}
  - {name: b, targets: [{address: %s}], balance: least_inflight}
routes:
  - {name: other, match: {path_prefix: /v2}, upstream: b}
  - {name: main, match: {path_prefix: /}, split: [{upstream: a, weight: 1}, {upstream: b, weight: 1}]}
`, a.addr, b.addr)
	g := startGateway(t, 1000, cfgA)

	// Eight clients send requests until the end of the test. Each records
	// the reload generation its latest successful request started in; after
	// every reload the test waits (bounded) until every client has completed
	// a request started after it, so every config swapped in has served the
	// load, however slow the machine, instead of hoping a fixed sleep was
	// long enough.
	const workers = 8
	ctx, cancel := context.WithCancel(context.Background())
	var ok, failed, gen atomic.Int64
	var doneGen [workers]atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }() // also when the test fails early
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				started := gen.Load()
				r, err := tryDo("GET", g.url("/x"), nil, nil)
				if err != nil || r.status != 200 {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err=%v status=%d body=%s", err, r.status, r.body))
					continue
				}
				ok.Add(1)
				doneGen[w].Store(started)
			}
		}()
	}
	everyClientPast := func(g int64) bool {
		if n := failed.Load(); n > 0 {
			t.Fatalf("%d requests failed during reloads; first: %v", n, firstErr.Load())
		}
		for w := range workers {
			if doneGen[w].Load() < g {
				return false
			}
		}
		return true
	}
	aUp := g.snap.Load().upstreams["a"]
	for i := 0; i < 40; i++ {
		cfg := cfgA
		if i%2 == 0 {
			cfg = cfgB
		}
		writeConfig(t, g.cfgPath, fmt.Sprintf(baseConfig, 1000)+cfg)
		if _, err := g.Reload("test"); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		n := gen.Add(1)
		waitFor(t, fmt.Sprintf("every client served after reload %d", i+1), func() bool { return everyClientPast(n) })
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), ok.Load()+failed.Load(), firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Fatal("no requests completed")
	}
	if g.snap.Load().upstreams["a"] != aUp {
		t.Error("upstream a was unchanged by every reload but its pool was replaced")
	}
	if g.snap.Load().version != 41 {
		t.Errorf("config version %d, want 41", g.snap.Load().version)
	}
}

func TestInvalidReloadKeepsRunningConfig(t *testing.T) {
	a := startUpstream(t, "a")
	good := fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: all, match: {path_prefix: /}, upstream: a}]
`, a.addr)
	g := startGateway(t, 100, good)
	writeConfig(t, g.cfgPath, fmt.Sprintf(baseConfig, 100)+`
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes:
  - name: all
    match: {path_prefix: /}
    upstream: nope
`)
	r := g.admin(t, "POST", "/config/reload")
	if r.status != 422 {
		t.Fatalf("reload of a bad config: %d %s", r.status, r.body)
	}
	var body struct {
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) == 0 {
		t.Fatalf("no errors listed: %s", r.body)
	}
	if !regexp.MustCompile(`wasmgate\.yaml:\d+:\d+: .*"nope"`).MatchString(body.Errors[0]) {
		t.Fatalf("error lacks file:line:col or the bad name: %q", body.Errors[0])
	}
	if r := do(t, "GET", g.url("/still"), nil, nil); r.status != 200 || r.echo(t).ID != "a" {
		t.Fatalf("old config stopped serving: %d", r.status)
	}
	if !strings.Contains(g.logs.String(), "config reload rejected") {
		t.Error("rejection not logged")
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: all, match: {path_prefix: /}, upstream: a}]
`, a.addr))
	done := make(chan response, 1)
	go func() {
		r, _ := tryDo("GET", g.url("/slow"), nil, nil)
		done <- r
	}()
	waitFor(t, "the slow request in flight", func() bool { return g.inFlight.Load() == 1 })
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- g.Shutdown(ctx)
	}()
	waitFor(t, "not ready while draining", func() bool { return !g.Ready() })
	if _, err := net.DialTimeout("tcp", g.ProxyAddr(), time.Second); err == nil {
		// The listener closes at the start of Shutdown; allow the race with the check above.
		waitFor(t, "listener closed", func() bool {
			c, err := net.DialTimeout("tcp", g.ProxyAddr(), time.Second)
			if c != nil {
				c.Close()
			}
			return err != nil
		})
	}
	close(a.release)
	if r := <-done; r.status != 200 {
		t.Fatalf("in-flight request got %d during drain", r.status)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestAdminAPI(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	g := startGateway(t, 100, twoUpstreamConfig(a, b))
	do(t, "GET", g.url("/api/x"), nil, nil)

	if r := do(t, "GET", "http://"+g.AdminAddr()+"/healthz", nil, nil); r.status != 401 || r.headers["Www-Authenticate"] == "" {
		t.Fatalf("no token: %d %v", r.status, r.headers)
	}
	if r := do(t, "GET", "http://"+g.AdminAddr()+"/healthz", map[string]string{"Authorization": "Bearer wrong"}, nil); r.status != 401 {
		t.Fatalf("wrong token: %d", r.status)
	}
	for _, tc := range []struct {
		method, path string
		status       int
		contains     []string
		absent       []string
	}{
		{"GET", "/healthz", 200, []string{`"ok"`}, nil},
		{"GET", "/readyz", 200, []string{`"ready"`}, nil},
		{"GET", "/config", 200, []string{`"routes"`, `"users-by-id"`, "[redacted]"}, []string{testToken}},
		{"GET", "/routes", 200, []string{`"users-by-id"`, `"p99_ms"`, `"config_version"`}, nil},
		{"GET", "/upstreams", 200, []string{`"alpha"`, a.addr, `"healthy"`}, nil},
		{"GET", "/metrics", 200, []string{`wasmgate_requests_total{route="api",status="2xx"} 1`, "wasmgate_request_duration_seconds_bucket", "wasmgate_in_flight_requests", "wasmgate_config_reloads_total"}, []string{"/api/x"}},
		{"POST", "/healthz", 405, nil, nil},
		{"GET", "/config/reload", 405, nil, nil},
		{"GET", "/nope", 404, nil, nil},
	} {
		r := g.admin(t, tc.method, tc.path)
		if r.status != tc.status {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, r.status, tc.status, r.body)
			continue
		}
		for _, s := range tc.contains {
			if !strings.Contains(string(r.body), s) {
				t.Errorf("%s %s: missing %q in %s", tc.method, tc.path, s, r.body)
			}
		}
		for _, s := range tc.absent {
			if strings.Contains(string(r.body), s) {
				t.Errorf("%s %s: must not contain %q", tc.method, tc.path, s)
			}
		}
	}
	if r := g.admin(t, "POST", "/config/reload"); r.status != 200 {
		t.Fatalf("reload: %d %s", r.status, r.body)
	}
}

func TestAccessLog(t *testing.T) {
	a, b := startUpstream(t, "a"), startUpstream(t, "b")
	g := startGateway(t, 100, twoUpstreamConfig(a, b))
	r := do(t, "POST", g.url("/api/users/7"), map[string]string{"X-Request-Id": "log-me"}, []byte("hello"))
	if r.status != 200 {
		t.Fatal(r.status)
	}
	g.b.stdout.Flush()
	var line map[string]any
	for _, l := range strings.Split(g.access.String(), "\n") {
		if strings.Contains(l, `"log-me"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatalf("access log line is not JSON: %s", l)
			}
		}
	}
	if line == nil {
		t.Fatalf("no access log line for the request in %q", g.access.String())
	}
	want := map[string]any{"route": "api", "status": 200.0, "upstream": "alpha", "target": a.addr, "bytes_in": 5.0, "client_ip": "127.0.0.1", "method": "POST"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["duration_ms"].(float64); !ok {
		t.Error("access log lacks duration_ms")
	}
}

func TestAdminTokenRules(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/c.yaml"
	writeConfig(t, path, `
admin: {address: 0.0.0.0:0}
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes: [{name: all, match: {path_prefix: /}, upstream: a}]
`)
	if _, _, err := Check(path, ""); err == nil || !strings.Contains(err.Error(), "not loopback") {
		t.Fatalf("non-loopback admin without a token accepted: %v", err)
	}
	if _, _, err := Check(path, "from-env"); err != nil {
		t.Fatalf("env token should satisfy the rule: %v", err)
	}
	_ = os.Remove(path)
}

func TestClientConnectionCloseIsHonoured(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: all, match: {path_prefix: /}, upstream: a}]
`, a.addr))
	conn, err := net.Dial("tcp", g.ProxyAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(conn) // returns only when the gateway closes the connection
	if err != nil {
		t.Fatalf("the gateway kept a Connection: close connection open: %v", err)
	}
	if !strings.HasPrefix(string(all), "HTTP/1.1 200") || !strings.Contains(string(all), "Connection: close") {
		t.Fatalf("got %q", all)
	}
	if e := a.hits.Load(); e != 1 {
		t.Fatalf("upstream hits %d", e)
	}
}
