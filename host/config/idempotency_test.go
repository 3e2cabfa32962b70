package config

import (
	"strings"
	"testing"
	"time"
)

func TestIdempotencyConfig(t *testing.T) {
	const head = `
upstreams:
  - {name: u, targets: [{address: 127.0.0.1:1}]}
routes:
  - name: r
    match: {path_prefix: /}
`
	for _, c := range []struct {
		name, route string
		redis       bool
		errs        []string
	}{
		{"defaults", "    upstream: u\n    idempotency: {}\n", false, nil},
		{"everything", "    upstream: u\n    idempotency: {header: X-Key, methods: [POST, PUT], required: true, ttl: 1h, wait: 2s, lease: 30s, max_body_bytes: 64KiB, store: redis, on_store_failure: pass}\n", true, nil},
		{"no upstream", "    plugins: [{name: p}]\n    idempotency: {}\n", false, []string{"the route has no upstream"}},
		{"bad header", "    upstream: u\n    idempotency: {header: \"X Key\"}\n", false, []string{`8:27: route "r": idempotency: header "X Key" is not a header name`}},
		{"bad methods", "    upstream: u\n    idempotency: {methods: [POST, \"PO ST\", POST]}\n", false, []string{`method "PO ST" is not a method name`, `method "POST" listed twice`}},
		{"no methods", "    upstream: u\n    idempotency: {methods: []}\n", false, []string{"methods must name at least one method"}},
		{"durations", "    upstream: u\n    idempotency: {ttl: -1s, wait: 2m, lease: -1s}\n", false, []string{"ttl must be > 0", "wait must be between 0 and 1m, got 2m0s", "lease must not be negative"}},
		{"redis without redis", "    upstream: u\n    idempotency: {store: redis}\n", false, []string{"store redis needs a redis section"}},
		{"unknown store", "    upstream: u\n    idempotency: {store: disk}\n", false, []string{`bad store "disk"`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			y := head + c.route
			if c.redis {
				y = "redis: {address: 127.0.0.1:6379}\n" + y
			}
			if strings.Contains(c.route, "plugins:") {
				y = "plugins:\n  - {name: p, module: p.wasm}\n" + y
			}
			cfg, err := Parse("c.yaml", []byte(y))
			if len(c.errs) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				p := cfg.Routes[0].Idempotency
				if c.name == "defaults" && (p.Header != "Idempotency-Key" || strings.Join(p.Methods, ",") != "POST,PATCH" || p.TTL.D() != 24*time.Hour || p.MaxBodyBytes != 1<<20) {
					t.Fatalf("defaults: %+v", p)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.errs)
			}
			for _, want := range c.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("missing %q in:\n%v", want, err)
				}
			}
		})
	}
}
