package server

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"

	"github.com/valyala/fasthttp"
)

// BenchmarkFirstRequestAfterHotLoad times the first request served by a
// freshly hot-loaded plugin version (the hot-load itself is not timed),
// beside requests on a warm version. With pools pre-warmed before the swap
// the new version should show no cold start.
//
// The fair baseline is "warm-after-other-hot-load": the same hot-load work
// (compile, instantiate, snapshot swap) done for another plugin, then a
// request on the warm, unchanged route. A hot-load churns the CPU caches
// and the heap whichever plugin it loads, and that, not the new version,
// is what a request right after it pays; "warm" (back to back) and
// "warm-after-pause" (after a 2 ms idle gap) are shown for scale.
// "settled" waits for the retired version to close and for a garbage
// collection before the request:
//
//	go test -run '^$' -bench HotLoad -benchtime 300x ./host/server/
func BenchmarkFirstRequestAfterHotLoad(b *testing.B) {
	for _, bc := range []struct {
		name           string
		reload, settle bool
		pause          bool
		other          bool // hot-load the plugin of another route
	}{
		{"warm", false, false, false, false},
		{"warm-after-pause", false, false, true, false},
		{"warm-after-other-hot-load", true, false, false, true},
		{"first-after-hot-load", true, false, false, false},
		{"first-after-hot-load-settled", true, true, false, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g, versions := benchGateway(b)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(g.url("/x"))
			hc := &fasthttp.HostClient{Addr: g.ProxyAddr()}
			if err := hc.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if bc.pause {
					// As long as a hot-load takes, doing nothing: the
					// baseline for a request that follows an idle moment.
					b.StopTimer()
					time.Sleep(2 * time.Millisecond)
					b.StartTimer()
				}
				if bc.reload {
					b.StopTimer()
					name := "raw"
					if bc.other {
						name = "raw2"
					}
					engine := g.b.plugins.runtime.Engine().(*wasm.WazeroEngine)
					before := engine.LiveRuntimes()
					if _, err := g.HotLoad(name, versions[i%2], "admin"); err != nil {
						b.Fatal(err)
					}
					if bc.settle {
						// Let the retired version close first: its cleanup
						// runs beside the first request otherwise.
						deadline := time.Now().Add(5 * time.Second)
						for engine.LiveRuntimes() > before && time.Now().Before(deadline) {
							time.Sleep(100 * time.Microsecond)
						}
						runtime.GC() // and the swap's garbage collected
					}
					b.StartTimer()
				}
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("%v %d", err, resp.StatusCode())
				}
			}
		})
	}
}

// benchGateway starts a gateway with the raw-wat plugin on two routes, as
// plugins raw (requested) and raw2 (not), and returns two other versions
// of it.
func benchGateway(b *testing.B) (*gateway, [][]byte) {
	b.Helper()
	a := startUpstream(b, "a")
	g := startGateway(b, 1000, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q, auto_rollback: {window: 0s}}
plugins:
  - {name: raw, module: %[2]q, pool: {min_instances: 4}}
  - {name: raw2, module: %[2]q, pool: {min_instances: 4}}
upstreams: [{name: a, targets: [{address: %[3]s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
  - {name: wat2, match: {path_prefix: /other}, upstream: a, plugins: [{name: raw2}]}
`, b.TempDir(), pluginPath(b, "raw-wat"), a.addr))
	return g, [][]byte{rawWatVariant(b, "2"), rawWatVariant(b, "3")}
}
