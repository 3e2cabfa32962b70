package router

import (
	"fmt"
	"testing"

	"github.com/wasmgate/wasmgate/host/config"
)

// benchRoutes returns n routes, a third each exact, template and prefix, so
// the trie has n/3 services side by side the way a large gateway would.
func benchRoutes(n int) []config.Route {
	routes := make([]config.Route, 0, n)
	for i := 0; len(routes) < n; i++ {
		svc := fmt.Sprintf("/svc%d", i)
		for _, m := range []config.Match{
			{Path: svc + "/items", Methods: []string{"GET"}},
			{Path: svc + "/items/{id}/parts/{part}"},
			{PathPrefix: svc + "/static"},
		} {
			if len(routes) < n {
				routes = append(routes, config.Route{Name: fmt.Sprint("r", len(routes)), Match: m})
			}
		}
	}
	return routes
}

// BenchmarkMatch compares 10 and 10,000 routes; the per-op cost should barely
// move between them because lookup depends on path depth, not route count.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 10000} {
		routes := benchRoutes(n)
		tbl := compile(b, routes)
		last := n/3 - 1 // the last complete service: the deepest in config order
		for _, c := range []struct{ name, uri string }{
			{"exact", fmt.Sprintf("/svc%d/items", last)},
			{"template", fmt.Sprintf("/svc%d/items/42/parts/7", last)},
			{"prefix", fmt.Sprintf("/svc%d/static/css/site.css", last)},
			{"miss", fmt.Sprintf("/svc%d/unknown/path", last)},
		} {
			b.Run(fmt.Sprintf("routes=%d/%s", n, c.name), func(b *testing.B) {
				req := mkReq(b, "GET", "api.example.com", c.uri)
				path := reqPath(req)
				var res Result
				want := c.name != "miss"
				b.ReportAllocs()
				for b.Loop() {
					if tbl.Match(req, path, &res) != want {
						b.Fatalf("%s: match = %v, want %v", c.uri, !want, want)
					}
				}
			})
		}
	}
}
