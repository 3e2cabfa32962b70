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
//
// Reports are a Table (text and markdown) and a BarChart (SVG), written with
// the standard library only so that later benchmarks reuse them as is.
package bench
