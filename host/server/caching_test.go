package server

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// cacheOrigin is a real fasthttp upstream for cache tests: every answer
// says how many requests it has served, echoes the request headers (a
// reflector, as poisoning attacks need), and takes its caching headers from
// the query: cc= Cache-Control, tags= Surrogate-Key.
type cacheOrigin struct {
	addr string
	hits atomic.Int64
}

func startCacheOrigin(t *testing.T) *cacheOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &cacheOrigin{addr: ln.Addr().String()}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		n := o.hits.Add(1)
		args := ctx.QueryArgs()
		if cc := args.Peek("cc"); len(cc) > 0 {
			ctx.Response.Header.SetBytesV("Cache-Control", cc)
		}
		if tags := args.Peek("tags"); len(tags) > 0 {
			ctx.Response.Header.SetBytesV("Surrogate-Key", tags)
		}
		headers := map[string]string{}
		for k, v := range ctx.Request.Header.All() {
			headers[string(k)] = string(v)
		}
		body, _ := json.Marshal(map[string]any{"n": n, "uri": string(ctx.RequestURI()), "headers": headers})
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return o
}

// served is what the origin said in a response body.
type served struct {
	N       int64             `json:"n"`
	URI     string            `json:"uri"`
	Headers map[string]string `json:"headers"`
}

func (r response) served(t *testing.T) served {
	t.Helper()
	var s served
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("status %d body %q: %v", r.status, r.body, err)
	}
	return s
}

func TestCacheThroughGateway(t *testing.T) {
	o := startCacheOrigin(t)
	warmPlugins(t)
	cfg := fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: hostcheck, module: %q, limits: {call_timeout: 5s}}
upstreams: [{name: o, targets: [{address: %s}]}]
routes:
  - name: cached
    match: {path_prefix: /c}
    upstream: o
    cache: {max_bytes: 4MiB, default_ttl: 1m, key: {ignore_query: ["utm_*"]}}
  - name: keyed-by-plugin
    match: {path_prefix: /p}
    upstream: o
    cache: {max_bytes: 1MiB}
    plugins: [{name: hostcheck, config: {check: gateway}}]
  - name: uncached
    match: {path_prefix: /u}
    upstream: o
`, e2eCacheDir(t), pluginPath(t, "hostcheck"), o.addr)
	g := startGateway(t, 1000, cfg)
	get := func(path string, headers map[string]string) response {
		t.Helper()
		return do(t, "GET", g.url(path), headers, nil)
	}

	t.Run("miss then hit", func(t *testing.T) {
		first := get("/c/a?x=1&y=2", nil)
		again := get("/c/a?y=2&x=1&utm_source=mail", nil) // same key: sorted, utm_* ignored
		if first.headers["X-Cache-Status"] != "MISS" || again.headers["X-Cache-Status"] != "HIT" {
			t.Fatalf("statuses %q then %q", first.headers["X-Cache-Status"], again.headers["X-Cache-Status"])
		}
		if first.served(t).N != again.served(t).N {
			t.Fatalf("a hit went upstream")
		}
		if again.headers["Age"] == "" || again.headers["X-Request-Id"] == "" || again.headers["X-Request-Id"] == first.headers["X-Request-Id"] {
			t.Fatalf("a hit needs its own request id and an Age: %v", again.headers)
		}
		if u := first.served(t).URI; strings.Contains(u, "utm_") {
			t.Fatalf("an ignored parameter reached the upstream: %s", u)
		}
		if r := get("/u/a", nil); r.headers["X-Cache-Status"] != "" {
			t.Fatalf("an uncached route answers with a cache status")
		}
	})

	t.Run("what reaches the upstream", func(t *testing.T) {
		// A bypass is the client's own request, prepared like any proxied one.
		r := do(t, "POST", g.url("/c/bypass"), map[string]string{"Connection": "keep-alive, X-Hop", "X-Hop": "x"}, []byte("body"))
		h := r.served(t).Headers
		if r.headers["X-Cache-Status"] != "BYPASS" || h["X-Forwarded-For"] != "127.0.0.1" || h["Traceparent"] == "" || h["X-Hop"] != "" {
			t.Fatalf("bypass: %q, upstream saw %v", r.headers["X-Cache-Status"], h)
		}
		// A fill is the cache's own: forwarding proto and host, a trace, no client chain.
		r = get("/c/fill", nil)
		h = r.served(t).Headers
		if h["X-Forwarded-Host"] != g.ProxyAddr() || h["X-Forwarded-Proto"] != "http" || h["Traceparent"] == "" || h["X-Forwarded-For"] != "" {
			t.Fatalf("fill: upstream saw %v", h)
		}
	})

	t.Run("unkeyed headers cannot poison", func(t *testing.T) {
		attack := map[string]string{
			"X-Forwarded-Host": "evil.example", "X-Host": "evil.example", "X-Forwarded-Scheme": "nothttps",
			"X-Original-URL": "/admin", "X-Rewrite-URL": "/admin", "X-HTTP-Method-Override": "DELETE",
			"X-Forwarded-For": "6.6.6.6", "Cookie": "session=attacker",
		}
		poisoned := get("/c/poison", attack)
		victim := get("/c/poison", nil)
		if victim.headers["X-Cache-Status"] != "HIT" {
			t.Fatalf("victim: %q", victim.headers["X-Cache-Status"])
		}
		for _, r := range []response{poisoned, victim} {
			if b := string(r.body); strings.Contains(b, "evil") || strings.Contains(b, "admin") || strings.Contains(b, "DELETE") ||
				strings.Contains(b, "6.6.6.6") || strings.Contains(b, "attacker") || strings.Contains(b, "nothttps") {
				t.Fatalf("an unkeyed request header reached the cached response: %s", b)
			}
		}
	})

	t.Run("purge", func(t *testing.T) {
		for _, p := range []string{"/c/purge/1?tags=blue", "/c/purge/2?tags=blue%20red", "/c/other?tags=red"} {
			get(p, nil)
		}
		purge := func(body string) int {
			t.Helper()
			r := do(t, "POST", "http://"+g.AdminAddr()+"/cache/purge", map[string]string{"Authorization": "Bearer " + testToken}, []byte(body))
			var out struct{ Purged int }
			if r.status != 200 || json.Unmarshal(r.body, &out) != nil {
				t.Fatalf("purge %s: %d %s", body, r.status, r.body)
			}
			return out.Purged
		}
		host := g.ProxyAddr()
		if n := purge(`{"surrogate_key":"blue"}`); n != 2 {
			t.Fatalf("purged %d by surrogate key, want 2", n)
		}
		if r := get("/c/purge/1?tags=blue", nil); r.headers["X-Cache-Status"] != "MISS" {
			t.Fatalf("after purge: %q", r.headers["X-Cache-Status"])
		}
		if n := purge(`{"route":"cached","prefix":"` + host + `/c/purge/"}`); n != 1 {
			t.Fatalf("purged %d by prefix, want 1", n)
		}
		if n := purge(`{"key":"` + host + `/c/other?tags=red"}`); n != 1 {
			t.Fatalf("purged %d by key, want 1", n)
		}
		if r := do(t, "POST", "http://"+g.AdminAddr()+"/cache/purge", map[string]string{"Authorization": "Bearer " + testToken}, []byte(`{"key":"a","prefix":"b"}`)); r.status != 400 {
			t.Fatalf("two selectors: %d", r.status)
		}
		if r := do(t, "POST", "http://"+g.AdminAddr()+"/cache/purge", nil, []byte(`{"key":"a"}`)); r.status != 401 {
			t.Fatalf("purge without a token: %d", r.status)
		}
	})

	t.Run("key set by a plugin", func(t *testing.T) {
		a := get("/p/one?cache_key=shared&cc=max-age%3D60", nil)
		b := get("/p/two?cache_key=shared&cc=max-age%3D60", nil)
		if a.headers["X-Cache-Status"] != "MISS" || b.headers["X-Cache-Status"] != "HIT" || a.served(t).N != b.served(t).N {
			t.Fatalf("plugin key: %q then %q", a.headers["X-Cache-Status"], b.headers["X-Cache-Status"])
		}
	})

	t.Run("reload keeps the contents", func(t *testing.T) {
		before := get("/c/keep", nil).served(t).N
		writeConfig(t, g.cfgPath, fmt.Sprintf(baseConfig, 1000)+strings.Replace(cfg, "max_bytes: 4MiB", "max_bytes: 8MiB", 1))
		if _, err := g.Reload("test"); err != nil {
			t.Fatal(err)
		}
		r := get("/c/keep", nil)
		if r.headers["X-Cache-Status"] != "HIT" || r.served(t).N != before {
			t.Fatalf("after reload: %q", r.headers["X-Cache-Status"])
		}
		var list struct {
			Caches []struct {
				Route string
				Stats struct {
					MaxBytes int64 `json:"max_bytes"`
				}
			}
		}
		if err := json.Unmarshal(g.admin(t, "GET", "/cache").body, &list); err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Caches {
			if c.Route == "cached" && c.Stats.MaxBytes != 8<<20 {
				t.Fatalf("new budget not applied: %d", c.Stats.MaxBytes)
			}
		}
	})

	m := string(g.admin(t, "GET", "/metrics").body)
	for _, want := range []string{`wasmgate_cache_requests_total{route="cached",status="HIT"}`, `wasmgate_cache_bytes{route="cached"}`, `wasmgate_cache_hit_ratio{route="cached"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestCacheRouteChanges covers a cached route with a host rewrite and the
// cache across reloads: a new policy is checked before the swap, and a
// route pointed at another upstream starts with an empty cache.
func TestCacheRouteChanges(t *testing.T) {
	o1, o2 := startCacheOrigin(t), startCacheOrigin(t)
	cfg := func(origin, keyHeaders string) string {
		return fmt.Sprintf(baseConfig, 100) + fmt.Sprintf(`
upstreams:
  - {name: one, targets: [{address: %s}]}
  - {name: two, targets: [{address: %s}]}
routes:
  - name: cached
    match: {path_prefix: /}
    upstream: %s
    rewrite: {host: internal.svc}
    cache: {max_bytes: 1MiB, default_ttl: 1m, key: {headers: [%s]}}
`, o1.addr, o2.addr, origin, keyHeaders)
	}
	g := startGateway(t, 100, "")
	writeConfig(t, g.cfgPath, cfg("one", "Accept"))
	if _, err := g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	get := func() response {
		t.Helper()
		return do(t, "GET", g.url("/page"), map[string]string{"Host": "www.example.com"}, nil)
	}

	r := get()
	if h := r.served(t).Headers; h["Host"] != "internal.svc" || h["X-Forwarded-Host"] != "www.example.com" {
		t.Fatalf("a fill must reach internal.svc on behalf of www.example.com: %v", h)
	}
	if get().headers["X-Cache-Status"] != "HIT" {
		t.Fatal("no hit")
	}

	// A policy the cache refuses fails the reload; the old one keeps serving.
	writeConfig(t, g.cfgPath, cfg("one", "Host"))
	if _, err := g.Reload("test"); err == nil {
		t.Fatal("a reload keying the Host header was accepted")
	}
	if get().headers["X-Cache-Status"] != "HIT" {
		t.Fatal("a rejected reload dropped the cache")
	}

	// The same route fetching from another upstream starts empty.
	writeConfig(t, g.cfgPath, cfg("two", "Accept"))
	if _, err := g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if r := get(); r.headers["X-Cache-Status"] != "MISS" || o2.hits.Load() != 1 {
		t.Fatalf("after pointing the route elsewhere: %q, origin two hits %d", r.headers["X-Cache-Status"], o2.hits.Load())
	}
}
