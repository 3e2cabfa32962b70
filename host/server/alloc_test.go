package server

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestProxyPathDoesNotAllocate: a plainly proxied request, admission checks
// and all, allocates nothing in steady state (fasthttp style: pooled state,
// reused buffers).
func TestProxyPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ln := quietUpstream(t)
	// The access log is off: slog's JSON lines allocate.
	g := startGatewayConfig(t, strings.Replace(fmt.Sprintf(baseConfig, 1000), "access_log: stdout", `access_log: "off"`, 1)+fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: all, match: {path_prefix: /api}, upstream: a}]
`, ln.Addr()))
	var ctx fasthttp.RequestCtx // reused, as fasthttp's server does
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	for _, uri := range []string{"/api/users/42?x=1", "/api/./x/../users/%7e42?x=1"} {
		var req fasthttp.Request
		req.Header.SetMethod("GET")
		req.SetRequestURI(uri)
		req.Header.SetHost("gw.test")
		req.Header.Set("User-Agent", "bench")
		req.Header.Set("Accept", "*/*")
		proxiedWithoutAllocating(t, g, &ctx, &req, remote)
	}
}

func proxiedWithoutAllocating(t *testing.T, g *gateway, ctx *fasthttp.RequestCtx, req *fasthttp.Request, remote net.Addr) {
	t.Helper()
	ctx.Init(req, remote, nil)
	run := func() {
		req.CopyTo(&ctx.Request)
		ctx.Response.Reset()
		g.handle(ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	for range 50 {
		run() // warm the pools
	}
	if n := testing.AllocsPerRun(500, run); n > 0 {
		t.Errorf("%s: a proxied request allocates %v times", req.RequestURI(), n)
	}
}

// TestPluginRoutesDoNotAllocate: a route running the header plugin, native
// and http-wasm (plugins/httpwasm: a header in each hook), on each engine,
// allocates nothing per request in steady state either.
func TestPluginRoutesDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ln := quietUpstream(t)
	for _, wat := range []string{"header-native", "header"} {
		src, err := os.ReadFile("../../plugins/httpwasm/" + wat + ".wat")
		if err != nil {
			t.Fatal(err)
		}
		module := compileWAT(t, wat, string(src))
		for _, engine := range e2eEngines() {
			t.Run(wat+"/"+engine, func(t *testing.T) {
				g := startGatewayConfig(t, strings.Replace(fmt.Sprintf(baseConfig, 1000), "access_log: stdout", `access_log: "off"`, 1)+fmt.Sprintf(`
plugin_runtime: {engine: %s}
plugins: [{name: p, module: %q}]
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: all, match: {path_prefix: /api}, upstream: a, plugins: [{name: p}]}]
`, engine, module, ln.Addr()))
				var ctx fasthttp.RequestCtx
				var req fasthttp.Request
				req.Header.SetMethod("GET")
				req.SetRequestURI("/api/users/42?x=1")
				req.Header.SetHost("gw.test")
				ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
				run := func() {
					req.CopyTo(&ctx.Request)
					ctx.Response.Reset()
					g.handle(&ctx)
					if ctx.Response.StatusCode() != 200 || string(ctx.Response.Header.Peek("X-Bench-Response")) != "1" {
						t.Fatalf("status %d, X-Bench-Response %q: %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("X-Bench-Response"), ctx.Response.Body())
					}
				}
				for range 100 {
					run()
				}
				if n := testing.AllocsPerRun(500, run); n != 0 {
					t.Errorf("%v allocations per request", n)
				}
			})
		}
	}
}

// quietUpstream is an upstream that allocates nothing either: it runs in
// this process, whose allocations the tests count.
func quietUpstream(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ok := []byte("ok")
	up := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.Response.SetBodyRaw(ok) }}
	go up.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = up.Shutdown() })
	return ln
}
