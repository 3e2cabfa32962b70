// Package bench holds wasmgate's benchmark harnesses and the report writers
// they share.
//
// The proxy benchmark (RunProxy, behind `wasmgate bench proxy`) measures, in
// one run on loopback, an upstream reached directly, the gateway proxying to
// it, and nginx proxying to it, and quotes the gateway relative to both: this
// machine class is small and noisy, so absolute numbers from different runs
// are not comparable, while ratios measured side by side are. Each target is
// driven by wrk; the proxy's CPU time per request is read from /proc, which
// shows cost even when the load generator, not the proxy, is the bottleneck.
// Unless -tls=false, the same run measures the gateway's HTTPS listener
// against nginx terminating TLS, with the same certificate and upstream
// (tls.go): HTTPS/1.1 (wrk), HTTP/2 (h2load, whose per-request log gives
// the percentiles) and TLS handshakes, full and resumed, made by a Go
// client in the harness (handshake.go), each quoted as a ratio to nginx.
//
// The plugin benchmark (RunPlugins, behind `wasmgate bench plugins`) runs
// one gateway with a route per plugin setup (none, a Go and a WAT no-op
// plugin pooled and fresh, the Go jwt-auth chain, and per language and
// engine a no-op and an api-key + json-transform chain) and quotes each
// route's CPU time per request and throughput relative to the route without
// plugins, with the plugins' cold-start times read from the gateway's
// Prometheus histograms (its /metrics, parsed with prometheus/common/expfmt).
//
// The traffic benchmark (RunTraffic, behind `wasmgate bench traffic`) runs
// one gateway with a plain route, a sticky 90/10 split over two upstreams
// and the plain route with 10% and 100% shadow traffic, wrk sending varying
// user ids from a Lua script, and quotes each route's gateway CPU time per
// client request relative to the plain route, against issue 11's targets,
// with the upstreams' own request counts and the gateway's shadow counters
// showing where the requests went.
//
// The cold-start benchmark (RunColdstart, `wasmgate bench coldstart`:
// language × engine × instance mode, snapshot mode through Wizer) and the
// cache hit-ratio study (RunCacheHitRatio, `wasmgate bench cache`) run in
// process. How to run each, and the figures they gave, with their
// reports in bench/results: bench/README.md.
//
// Reports are a Table (text and markdown) and a BarChart (SVG), written with
// the standard library only so that later benchmarks reuse them as is.
package bench
