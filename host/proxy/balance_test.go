package proxy

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/wasmgate/wasmgate/host/config"
)

// Balancer tests below pick without sending: the addresses are never dialed.

func fakeAddrs(n int) []string {
	var a []string
	for i := range n {
		a = append(a, fmt.Sprintf("10.0.0.%d:80", i+1))
	}
	return a
}

func pickAddr(t testing.TB, u *Upstream, req *fasthttp.Request, ip []byte) string {
	t.Helper()
	tg, kind := u.pick(u.pool.Load(), req, ip, &tried{})
	if tg == nil {
		t.Fatalf("no pick: %s", kind)
	}
	return tg.addr
}

func hashUpstream(t testing.TB, source, name string, addrs []string) *Upstream {
	cfg := upstreamConfig("consistent_hash", addrs...)
	cfg.Hash = &config.HashOn{Source: source, Name: name}
	return newUpstream(t, cfg)
}

func TestConsistentHashRemap(t *testing.T) {
	const keys, n = 10000, 5
	addrs := fakeAddrs(n)
	u := hashUpstream(t, "header", "X-User", addrs)
	req := new(fasthttp.Request)
	mapping := func() []string {
		m := make([]string, keys)
		for i := range keys {
			req.Header.Set("X-User", "user-"+strconv.Itoa(i))
			m[i] = pickAddr(t, u, req, nil)
		}
		return m
	}
	before := mapping()
	share := map[string]int{}
	for _, a := range before {
		share[a]++
	}
	for _, a := range addrs {
		if share[a] < keys/n/2 || share[a] > keys/n*2 {
			t.Fatalf("uneven shares %v", share)
		}
	}
	removed := addrs[2]
	var ts []Target
	for _, a := range addrs {
		if a != removed {
			ts = append(ts, Target{Address: a, Weight: 1})
		}
	}
	u.SetTargets(ts)
	after := mapping()
	moved := 0
	for i := range keys {
		switch {
		case before[i] == removed:
			moved++
		case after[i] != before[i]:
			t.Fatalf("key %d moved from %s to %s though its target stayed", i, before[i], after[i])
		}
	}
	if moved > keys/n+keys/20 {
		t.Fatalf("%d of %d keys moved", moved, keys)
	}
	// Back to the full set: the original mapping returns.
	u.SetTargets(append(ts, Target{Address: removed, Weight: 1}))
	for i, a := range mapping() {
		if a != before[i] {
			t.Fatalf("key %d: %s, was %s", i, a, before[i])
		}
	}
}

func TestConsistentHashWeights(t *testing.T) {
	cfg := upstreamConfig("consistent_hash", fakeAddrs(2)...)
	cfg.Hash = &config.HashOn{Source: "client_ip"}
	cfg.Targets[0].Weight = 3
	u := newUpstream(t, cfg)
	share := map[string]int{}
	for i := range 4000 {
		share[pickAddr(t, u, nil, []byte(fmt.Sprintf("192.0.%d.%d", i/256, i%256)))]++
	}
	if r := float64(share[cfg.Targets[0].Address]) / 4000; r < 0.65 || r > 0.85 {
		t.Fatalf("weight 3 of 4 got share %.2f", r)
	}
}

func TestHashSources(t *testing.T) {
	addrs := fakeAddrs(5)
	for _, tc := range []struct {
		source, name string
		set          func(req *fasthttp.Request, key string) []byte // returns the client IP
	}{
		{"header", "X-User", func(r *fasthttp.Request, k string) []byte { r.Header.Set("X-User", k); return nil }},
		{"cookie", "sid", func(r *fasthttp.Request, k string) []byte { r.Header.SetCookie("sid", k); return nil }},
		{"client_ip", "", func(r *fasthttp.Request, k string) []byte { return []byte(k) }},
	} {
		t.Run(tc.source, func(t *testing.T) {
			u := hashUpstream(t, tc.source, tc.name, addrs)
			seen := map[string]bool{}
			for i := range 50 {
				key := "10.1.0." + strconv.Itoa(i)
				var first string
				for j := range 3 {
					req := new(fasthttp.Request)
					got := pickAddr(t, u, req, tc.set(req, key))
					if j > 0 && got != first {
						t.Fatalf("key %s: %s then %s", key, first, got)
					}
					first = got
				}
				seen[first] = true
			}
			if len(seen) < 4 {
				t.Fatalf("50 keys on %d targets", len(seen))
			}
			// No key: round robin.
			seen = map[string]bool{}
			for range 5 {
				seen[pickAddr(t, u, new(fasthttp.Request), nil)] = true
			}
			if len(seen) != 5 {
				t.Fatalf("keyless requests on %d targets", len(seen))
			}
		})
	}
}

func TestHashHeaderRawSpelling(t *testing.T) {
	u := hashUpstream(t, "header", "X-User", fakeAddrs(5))
	canon := new(fasthttp.Request)
	canon.Header.Set("X-User", "alice")
	raw := parseRequest(t, "GET / HTTP/1.1\r\nHost: h\r\nx-user: alice\r\n\r\n", true)
	if a, b := pickAddr(t, u, canon, nil), pickAddr(t, u, raw, nil); a != b {
		t.Fatalf("x-user and X-User hash apart: %s %s", a, b)
	}
}

func TestPickSkipsUnhealthyAndTried(t *testing.T) {
	for _, algo := range balanceNames {
		t.Run(algo, func(t *testing.T) {
			cfg := upstreamConfig(algo, fakeAddrs(3)...)
			cfg.Hash = &config.HashOn{Source: "client_ip"}
			u := newUpstream(t, cfg)
			p := u.pool.Load()
			p.targets[0].healthy.Store(false)
			var tr tried
			tr.add(p.targets[1])
			for range 6 {
				tg, _ := u.pick(p, new(fasthttp.Request), []byte("1.2.3.4"), &tr)
				if tg != p.targets[2] {
					t.Fatalf("picked %v", tg)
				}
			}
			p.targets[2].healthy.Store(false)
			if tg, _ := u.pick(p, new(fasthttp.Request), []byte("1.2.3.4"), &tr); tg != p.targets[1] {
				t.Fatal("a tried target is better than none")
			}
			p.targets[1].healthy.Store(false)
			if tg, kind := u.pick(p, new(fasthttp.Request), nil, &tr); tg != nil || kind != ErrNoTarget {
				t.Fatalf("all unhealthy: %v %s", tg, kind)
			}
		})
	}
}

func pickSetup(tb testing.TB, algo string) (*Upstream, *fasthttp.Request) {
	cfg := upstreamConfig(algo, fakeAddrs(8)...)
	for i := range cfg.Targets {
		cfg.Targets[i].Weight = i + 1
	}
	cfg.Hash = &config.HashOn{Source: "header", Name: "X-User"}
	u := newUpstream(tb, cfg)
	req := new(fasthttp.Request)
	req.Header.Set("X-User", "alice")
	return u, req
}

func TestPickAllocs(t *testing.T) {
	for _, algo := range balanceNames {
		u, req := pickSetup(t, algo)
		ip := []byte("192.0.2.1")
		if n := testing.AllocsPerRun(1000, func() {
			var tr tried
			tg, _ := u.pick(u.pool.Load(), req, ip, &tr)
			tr.add(tg)
			u.pick(u.pool.Load(), req, ip, &tr)
		}); n != 0 {
			t.Errorf("%s: %v allocations per pick", algo, n)
		}
	}
}

func BenchmarkPick(b *testing.B) {
	for _, algo := range balanceNames {
		b.Run(algo, func(b *testing.B) {
			u, req := pickSetup(b, algo)
			p := u.pool.Load()
			b.ReportAllocs()
			for b.Loop() {
				var tr tried
				u.pick(p, req, nil, &tr)
			}
		})
	}
}
