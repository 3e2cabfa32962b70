package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/wasmgate/wasmgate/host/redistest"
)

// TestGatewaysShareRedisLimit runs two gateway processes with one limit
// kept on a real redis-server: together they let exactly the limit through.
// With Redis killed each falls back onto its own local limiter (so together
// they allow twice the burst, no more, and say so in the log and metrics);
// with Redis back they share the limit again.
func TestGatewaysShareRedisLimit(t *testing.T) {
	rd := redistest.Start(t)
	b := startBackend(t, "a")
	const burst = 30
	body := fmt.Sprintf(`
redis: {address: %q, timeout: 250ms, probe_interval: 100ms}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - name: api
    match: {path_prefix: /}
    upstream: a
    rate_limits: [{name: tenant-hour, rate: 1, period: 1h, burst: %d, key: "header:X-Tenant", store: redis}]
`, rd.Addr(), b.addr, burst)
	gws := []*gatewayProc{startServe(t, "false", body), startServe(t, "false", body)}

	// hammer sends perGateway requests for tenant to each gateway, four
	// at a time per gateway, and counts the answers by status.
	hammer := func(tenant string, perGateway int) map[int]int {
		t.Helper()
		var mu sync.Mutex
		counts := map[int]int{}
		var wg sync.WaitGroup
		for _, g := range gws {
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < perGateway; i += 4 {
						r, err := request("GET", g.url("/x"), map[string]string{"X-Tenant": tenant}, "")
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
		}
		wg.Wait()
		return counts
	}
	metric := func(g *gatewayProc, name string) float64 {
		t.Helper()
		r := get(t, "http://"+g.admin+"/metrics", bearer(testToken))
		m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindStringSubmatch(r.body)
		if m == nil {
			t.Fatalf("metric %s not found", name)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}

	if c := hammer("shared", 40); c[200] != burst || c[429] != 80-burst {
		t.Fatalf("with Redis: %v, want exactly %d x 200 across both gateways", c, burst)
	}

	rd.Kill()
	// Each gateway decides locally now: its own burst, exactly.
	if c := hammer("outage", 40); c[200] != 2*burst || c[429] != 80-2*burst {
		t.Fatalf("Redis down: %v, want exactly %d x 200 (each gateway's local burst)", c, 2*burst)
	}
	for _, g := range gws {
		if n := strings.Count(g.stderr.String(), "rate limits fall back onto this instance's local limiter"); n != 1 {
			t.Errorf("fallback logged %d times, want once per outage", n)
		}
		if v := metric(g, "wasmgate_ratelimit_redis_fallback_total"); v < 1 {
			t.Errorf("wasmgate_ratelimit_redis_fallback_total = %v", v)
		}
		if v := metric(g, "wasmgate_ratelimit_redis_up"); v != 0 {
			t.Errorf("wasmgate_ratelimit_redis_up = %v during the outage", v)
		}
	}

	rd.Restart()
	for _, g := range gws {
		waitFor(t, "the gateway to use Redis again", func() bool { return metric(g, "wasmgate_ratelimit_redis_up") == 1 })
		if !strings.Contains(g.stderr.String(), "rate limits are shared again") {
			t.Errorf("recovery not logged")
		}
	}
	if c := hammer("after", 40); c[200] != burst || c[429] != 80-burst {
		t.Fatalf("Redis back: %v, want exactly %d x 200 across both gateways", c, burst)
	}
}
