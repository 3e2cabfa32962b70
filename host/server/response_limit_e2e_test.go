package server

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/host/testkit/faulty"
)

// TestResponseLimitPerRoute: listen.max_response_bytes bounds the upstream
// response bodies a route reads, a route's max_response_bytes overrides
// it (higher or lower), and the request body limit has nothing to do with
// it.
func TestResponseLimitPerRoute(t *testing.T) {
	body := strings.Repeat("x", 1536<<10) // 1.5 MiB
	up := faulty.Start(t, faulty.Serve(func(*http.Request, []byte) string { return faulty.OK(body) }))
	g := startGatewayListen(t, "max_response_bytes: 1MiB", fmt.Sprintf(`
upstreams: [{name: up, targets: [{address: %s}]}]
routes:
  - {name: default, match: {path_prefix: /default}, upstream: up}
  - {name: larger, match: {path_prefix: /larger}, upstream: up, max_response_bytes: 2MiB, max_body_bytes: 1KiB}
  - {name: smaller, match: {path_prefix: /smaller}, upstream: up, max_response_bytes: 64KiB}
`, up.Addr()))
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/default", 502},
		{"/larger", 200},
		{"/smaller", 502},
	} {
		r := do(t, "GET", g.url(c.path), nil, nil)
		if r.status != c.status {
			t.Errorf("%s: %d %.80s, want %d", c.path, r.status, r.body, c.status)
		}
		if c.status == 502 && !strings.Contains(string(r.body), "body_too_large") {
			t.Errorf("%s: %s, want upstream_body_too_large", c.path, r.body)
		}
		if c.status == 200 && len(r.body) != len(body) {
			t.Errorf("%s: %d bytes, want %d", c.path, len(r.body), len(body))
		}
	}
}
