package server

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/redistest"
)

// TestCachePurgeSharedThroughRedis: two gateways on one Redis, each with
// the entry cached; a purge through one gateway's admin API empties the
// other's entry too (it says how many gateways it reached), and a gateway
// whose subscription broke (Redis restarted) empties its caches when it
// subscribes again, as it cannot know what it missed.
func TestCachePurgeSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	up := startUpstream(t, "a")
	cfg := fmt.Sprintf(`redis: {address: %s}
upstreams: [{name: o, targets: [{address: %s}]}]
routes:
  - {name: cached, match: {path_prefix: /c}, upstream: o, cache: {max_bytes: 1MiB, default_ttl: 1m}}
`, srv.Addr(), up.addr)
	gs := []*gateway{startGateway(t, 100, cfg), startGateway(t, 100, cfg)}
	// One name for both, as behind a load balancer: the cache key has it.
	host := map[string]string{"Host": "api.example"}
	fill := func() {
		t.Helper()
		for i, g := range gs {
			do(t, "GET", g.url("/c/x"), host, nil)
			if r := do(t, "GET", g.url("/c/x"), host, nil); r.headers["X-Cache-Status"] != "HIT" {
				t.Fatalf("gateway %d: %q, want a HIT once filled", i, r.headers["X-Cache-Status"])
			}
		}
	}
	// eventually waits for gateway g to miss /c/x: the purge reaches it
	// asynchronously, within milliseconds.
	eventually := func(g *gateway, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			if r := do(t, "GET", g.url("/c/x"), host, nil); r.headers["X-Cache-Status"] == "MISS" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the other gateway still serves the entry", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	fill()
	var keys CacheKeysView
	if err := json.Unmarshal(gs[0].admin(t, "GET", "/cache?route=cached").body, &keys); err != nil || len(keys.Keys) != 1 {
		t.Fatalf("cache keys: %v %+v", err, keys)
	}
	body, _ := json.Marshal(map[string]string{"key": keys.Keys[0]})
	r := gs[0].adminBody(t, "POST", "/cache/purge", body)
	var res PurgeResult
	if err := json.Unmarshal(r.body, &res); err != nil || r.status != 200 || res.Purged != 1 || res.Gateways == nil || *res.Gateways != 1 {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	eventually(gs[1], "a purge through the first gateway")

	fill()
	srv.Restart()
	eventually(gs[1], "a subscription broken by a Redis restart")
}
