package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// burstOf sends n requests to url, eight at a time, with headers, and
// counts the answers by status.
func burstOf(t *testing.T, n int, url string, headers map[string]string) map[int]int {
	t.Helper()
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				r, err := tryDo("GET", url, headers, nil)
				mu.Lock()
				if err != nil {
					counts[-1]++
				} else {
					counts[r.status]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return counts
}

func TestRateLimits(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 1000, fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - name: per-ip
    match: {path_prefix: /ip}
    upstream: a
    rate_limits:
      - {name: burst, rate: 1, period: 1h, burst: 3}
      - {name: daily, rate: 100, period: 24h}
  - name: per-tenant
    match: {path_prefix: /tenant}
    upstream: a
    rate_limits: [{name: tenant, rate: 2, period: 1h, key: "header:X-Tenant"}]
  - name: everyone
    match: {path_prefix: /all}
    upstream: a
    rate_limits: [{name: total, rate: 25, period: 1h}]
  - name: consumer-without-plugins
    match: {path_prefix: /nobody}
    upstream: a
    rate_limits: [{name: c, rate: 1, period: 1h, burst: 2, key: consumer}]
`, a.addr))

	t.Run("headers and 429", func(t *testing.T) {
		for i := range 3 {
			r := do(t, "GET", g.url("/ip"), nil, nil)
			if r.status != 200 {
				t.Fatalf("request %d: %d", i+1, r.status)
			}
			if got, want := r.headers["Ratelimit-Policy"], `"burst";q=3;w=10800, "daily";q=100;w=86400`; got != want {
				t.Fatalf("RateLimit-Policy %q, want %q", got, want)
			}
			if want := fmt.Sprintf(`"burst";r=%d;`, 2-i); !strings.HasPrefix(r.headers["Ratelimit"], want) {
				t.Fatalf("request %d: RateLimit %q, want prefix %q", i+1, r.headers["Ratelimit"], want)
			}
		}
		r := do(t, "GET", g.url("/ip"), nil, nil)
		if r.status != 429 || r.headers["Retry-After"] == "" || !strings.HasPrefix(r.headers["Ratelimit"], `"burst";r=0;`) {
			t.Fatalf("4th request: %d %v %s", r.status, r.headers, r.body)
		}
		var body struct{ Error, RequestID string }
		if json.Unmarshal(r.body, &body) != nil || body.Error != "rate_limited" {
			t.Fatalf("429 body %s", r.body)
		}
		// A refused request is charged to no limit: "daily" still has 97.
		if _, err := g.Reload("test"); err != nil { // and a reload keeps the quotas
			t.Fatal(err)
		}
		r = do(t, "GET", g.url("/ip"), nil, nil)
		if r.status != 429 || !strings.Contains(r.headers["Ratelimit"], `"burst";r=0`) {
			t.Fatalf("after reload: %d %q", r.status, r.headers["Ratelimit"])
		}
	})

	t.Run("exact under concurrency", func(t *testing.T) {
		if c := burstOf(t, 60, g.url("/all"), nil); c[200] != 25 || c[429] != 35 {
			t.Fatalf("60 concurrent requests on a limit of 25: %v", c)
		}
	})

	t.Run("keyed by header", func(t *testing.T) {
		for _, tenant := range []string{"acme", "globex"} {
			if c := burstOf(t, 5, g.url("/tenant"), map[string]string{"X-Tenant": tenant}); c[200] != 2 || c[429] != 3 {
				t.Fatalf("tenant %s: %v", tenant, c)
			}
		}
		// Without the header the client IP is the key: a quota of its own.
		if c := burstOf(t, 5, g.url("/tenant"), nil); c[200] != 2 {
			t.Fatalf("no tenant: %v", c)
		}
	})

	t.Run("keyed by consumer without plugins", func(t *testing.T) {
		// Nobody names a consumer: the client IP is the key.
		if c := burstOf(t, 6, g.url("/nobody"), nil); c[200] != 2 || c[429] != 4 {
			t.Fatalf("%v, want 2 passed", c)
		}
	})

	if !strings.Contains(string(g.admin(t, "GET", "/metrics").body), `wasmgate_ratelimit_decisions_total{result="limited",route="everyone"} 35`) {
		t.Errorf("metrics do not count the limited requests")
	}
}

// TestRateLimitsWithPlugins covers the limits plugins take part in: keyed by
// the consumer an auth plugin identified, and charged by a plugin through
// the rate_limit host function.
func TestRateLimitsWithPlugins(t *testing.T) {
	warmPlugins(t, "api-key")
	a := startUpstream(t, "a")
	g := startGateway(t, 1000, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: api-key, module: %q, limits: {call_timeout: 5s}}
  - {name: hostcheck, module: %q, limits: {call_timeout: 5s}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - name: partner
    match: {path_prefix: /partner}
    upstream: a
    plugins:
      - name: api-key
        config: {keys: [{consumer: acme, key: acme-key-0123456789}, {consumer: globex, key: globex-key-0123456789}]}
    rate_limits: [{name: per-consumer, rate: 1, period: 1h, burst: 2, key: consumer}]
  - name: credits
    match: {path_prefix: /credits}
    upstream: a
    plugins: [{name: hostcheck, config: {check: gateway}}]
    rate_limits:
      - {name: credits, rate: 1, period: 1h, burst: 5, key: plugin}
      - {name: per-consumer, rate: 1, period: 1h, burst: 3, key: consumer}
  # The consumer limit counts once api-key has named the consumer, before
  # the next plugin answers locally (as an aggregation plugin would).
  - name: local-answer
    match: {path_prefix: /local}
    plugins:
      - name: api-key
        config: {keys: [{consumer: acme, key: acme-key-0123456789}]}
      - {name: hostcheck, config: {check: chain, tag: x, stop: true}}
    rate_limits: [{name: per-consumer, rate: 1, period: 1h, burst: 2, key: consumer}]
`, e2eCacheDir(t), pluginPath(t, "api-key"), pluginPath(t, "hostcheck"), a.addr))

	t.Run("keyed by consumer", func(t *testing.T) {
		for _, key := range []string{"acme-key-0123456789", "globex-key-0123456789"} {
			c := burstOf(t, 4, g.url("/partner"), map[string]string{"X-Api-Key": key})
			if c[200] != 2 || c[429] != 2 {
				t.Fatalf("key %s: %v, want 2 passed and 2 limited", key, c)
			}
		}
		// Refused by the plugin before the limit counts: a 401, not a 429.
		if r := do(t, "GET", g.url("/partner"), map[string]string{"X-Api-Key": "wrong-key-0123456789"}, nil); r.status != 401 {
			t.Fatalf("bad key: %d", r.status)
		}
		g.b.stdout.Flush()
		if !strings.Contains(g.access.String(), `"consumer":"globex"`) {
			t.Errorf("the access log does not show the consumer")
		}
	})

	t.Run("charged by a plugin", func(t *testing.T) {
		type answer struct {
			RC        int   `json:"rc"`
			Allowed   bool  `json:"allowed"`
			Remaining int64 `json:"remaining"`
			RetryMS   int64 `json:"retry_ms"`
		}
		n := 0
		charge := func(query string) answer {
			t.Helper()
			// Each call as a consumer of its own, so that the route's
			// consumer limit does not count these calls together.
			n++
			r := do(t, "GET", g.url(fmt.Sprintf("/credits?%s&consumer=caller-%d", query, n)), nil, nil)
			var a answer
			if r.status != 200 || json.Unmarshal(r.body, &a) != nil {
				t.Fatalf("%s: %d %s", query, r.status, r.body)
			}
			return a
		}
		for _, tc := range []struct {
			query string
			want  answer
		}{
			{"limit=credits&key=t1&cost=3", answer{Allowed: true, Remaining: 2}},
			{"limit=credits&key=t1&cost=0", answer{Allowed: true, Remaining: 2}}, // consult only
			{"limit=credits&key=t2&cost=5", answer{Allowed: true, Remaining: 0}}, // another subject
			{"limit=nope&key=t1&cost=1", answer{RC: -1}},
		} {
			if got := charge(tc.query); got != tc.want {
				t.Errorf("%s: %+v, want %+v", tc.query, got, tc.want)
			}
		}
		if got := charge("limit=credits&key=t1&cost=3"); got.Allowed || got.Remaining != 2 || got.RetryMS < 3_000_000 {
			t.Errorf("over the quota: %+v, want refused with about an hour to wait", got)
		}
		// A limit with key: plugin is only charged by plugins; the
		// consumer limit counts these requests (per IP: no consumer named).
		if c := burstOf(t, 3, g.url("/credits"), nil); c[200] != 3 {
			t.Errorf("requests without a plugin charge: %v", c)
		}
		// A plugin consults the gateway's own quota by naming the subject
		// as the gateway keys it: here the consumer "bob", who then sends
		// three requests of his own.
		if got := charge("limit=per-consumer&key=bob&cost=0"); !got.Allowed || got.Remaining != 3 {
			t.Errorf("consult before: %+v", got)
		}
		for i := range 3 {
			if r := do(t, "GET", g.url("/credits?consumer=bob"), nil, nil); r.status != 200 {
				t.Fatalf("bob's request %d: %d", i+1, r.status)
			}
		}
		if got := charge("limit=per-consumer&key=bob&cost=0"); !got.Allowed || got.Remaining != 0 {
			t.Errorf("consult after bob's 3 requests: %+v, want 0 left", got)
		}
		if r := do(t, "GET", g.url("/credits?consumer=bob"), nil, nil); r.status != 429 {
			t.Errorf("bob's 4th request: %d", r.status)
		}
	})

	t.Run("before a local answer", func(t *testing.T) {
		c := burstOf(t, 4, g.url("/local"), map[string]string{"X-Api-Key": "acme-key-0123456789"})
		if c[200] != 2 || c[429] != 2 {
			t.Fatalf("%v, want 2 local answers and 2 limited", c)
		}
	})
}
