package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
)

// promSample is a scrape as the gateway's admin /metrics serves it
// (client_golang's text format), trimmed to two plugins, with a metric that
// shares the histogram's name as a prefix and comment lines.
const promSample = `# HELP wasmgate_plugin_instantiate_seconds Cold start of a plugin instance.
# TYPE wasmgate_plugin_instantiate_seconds histogram
wasmgate_plugin_instantiate_seconds_bucket{plugin="noop",version="964c53deb694",le="0.001"} 0
wasmgate_plugin_instantiate_seconds_bucket{plugin="noop",version="964c53deb694",le="0.002"} 2
wasmgate_plugin_instantiate_seconds_bucket{plugin="noop",version="964c53deb694",le="0.004"} 6
wasmgate_plugin_instantiate_seconds_bucket{plugin="noop",version="964c53deb694",le="+Inf"} 8
wasmgate_plugin_instantiate_seconds_sum{plugin="noop",version="964c53deb694"} 0.032
wasmgate_plugin_instantiate_seconds_count{plugin="noop",version="964c53deb694"} 8
wasmgate_plugin_instantiate_seconds_bucket{plugin="we\"ird\\name\n",version="x",le="1e-05"} 1 1700000000000
wasmgate_plugin_instantiate_seconds_bucket{plugin="we\"ird\\name\n",version="x",le="+Inf"} 1 1700000000000
wasmgate_plugin_instantiate_seconds_sum{plugin="we\"ird\\name\n",version="x"} 5e-06
wasmgate_plugin_instantiate_seconds_count{plugin="we\"ird\\name\n",version="x"} 1
wasmgate_plugin_instantiate_seconds_total_extra{plugin="noop"} 99
wasmgate_plugin_instances{plugin="noop",version="964c53deb694"} 8
`

func TestParsePromHistograms(t *testing.T) {
	hs, err := ParsePromHistograms([]byte(promSample), instantiateMetric)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 2 {
		t.Fatalf("got %d series, want 2: %+v", len(hs), hs)
	}
	noop := hs[0]
	if noop.Labels["plugin"] != "noop" || noop.Labels["version"] != "964c53deb694" || len(noop.Labels) != 2 {
		t.Errorf("labels = %v", noop.Labels)
	}
	want := []Bucket{{0.001, 0}, {0.002, 2}, {0.004, 6}, {math.Inf(1), 8}}
	if !slices.Equal(noop.Buckets, want) || noop.Count != 8 || noop.Sum != 0.032 {
		t.Errorf("noop = %+v", noop)
	}
	if got := hs[1].Labels["plugin"]; got != "we\"ird\\name\n" {
		t.Errorf("escaped label value = %q", got)
	}
	if got := noop.Mean(); math.Abs(got-0.004) > 1e-15 {
		t.Errorf("mean = %v, want 0.004", got)
	}

	// Another histogram's name may be absent: no series, no error.
	if hs, err := ParsePromHistograms([]byte(promSample), "absent_seconds"); err != nil || len(hs) != 0 {
		t.Errorf("absent histogram = %v, %v", hs, err)
	}
}

// TestParsePromHistogramsClientGolang reads back what client_golang, the
// gateway's metrics library, writes for a histogram vector.
func TestParsePromHistogramsClientGolang(t *testing.T) {
	reg := prometheus.NewRegistry()
	hv := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: instantiateMetric, Help: "Cold start.", Buckets: []float64{0.001, 0.01, 0.1},
	}, []string{"plugin", "version"})
	reg.MustRegister(hv)
	for _, v := range []float64{0.0005, 0.005, 0.005, 0.05, 5} {
		hv.WithLabelValues("noop", "abc").Observe(v)
	}
	hv.WithLabelValues("raw-wat", "def").Observe(0.00002)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	hs, err := ParsePromHistograms(text.Bytes(), instantiateMetric)
	if err != nil {
		t.Fatalf("%v\n%s", err, text.Bytes())
	}
	if len(hs) != 2 {
		t.Fatalf("got %d series, want 2: %+v", len(hs), hs)
	}
	noop := *findSeries(hs, "plugin", "noop")
	want := []Bucket{{0.001, 1}, {0.01, 3}, {0.1, 4}, {math.Inf(1), 5}}
	if noop.Labels["version"] != "abc" || len(noop.Labels) != 2 || !slices.Equal(noop.Buckets, want) ||
		noop.Count != 5 || math.Abs(noop.Sum-5.0605) > 1e-12 {
		t.Errorf("noop = %+v\n%s", noop, text.Bytes())
	}
	if got := noop.Quantile(0.5); math.Abs(got-0.00775) > 1e-12 { // rank 2.5: 1.5 of the 2 in (0.001, 0.01]
		t.Errorf("p50 = %v, want 0.00775", got)
	}
}

// TestParsePromHistogramsErrors: a malformed exposition, anywhere in it, or
// a series that is not a well-formed histogram is an error, never a histogram
// read wrong.
func TestParsePromHistogramsErrors(t *testing.T) {
	const typ = "# TYPE h histogram\n"
	const b = "h_bucket"
	const ok = typ + b + `{le="1"} 1` + "\n" + b + `{le="+Inf"} 2` + "\nh_sum 3\nh_count 2\n"
	tests := []struct{ name, in string }{
		{"decreasing counts", typ + b + `{le="1"} 3` + "\n" + b + `{le="+Inf"} 2` + "\n"},
		{"count differs from +Inf", typ + b + `{le="+Inf"} 2` + "\nh_count 3\n"},
		{"no buckets", typ + "h_count 3\nh_sum 1\n"},
		{"no +Inf bucket and no count", typ + b + `{le="1"} 1` + "\n"},
		{"bad le", typ + b + `{le="x"} 1` + "\n"},
		{"repeated le", typ + b + `{le="1"} 1` + "\n" + b + `{le="1.0"} 1` + "\n" + b + `{le="+Inf"} 1` + "\n"},
		{"negative count", typ + b + `{le="+Inf"} -1` + "\n"},
		{"NaN count", typ + b + `{le="+Inf"} NaN` + "\n"},
		{"infinite count", typ + b + `{le="+Inf"} +Inf` + "\n"},
		{"bad value", typ + b + `{le="+Inf"} one` + "\n"},
		{"bad timestamp", typ + b + `{le="+Inf"} 1 soon` + "\n"},
		{"unterminated label", typ + b + `{le="+Inf} 1` + "\n"},
		{"bad label name", typ + b + `{1a="x",le="+Inf"} 1` + "\n"},
		{"missing comma", typ + b + `{a="x" le="+Inf"} 1` + "\n"},
		{"repeated label", typ + b + `{a="x",a="y",le="+Inf"} 1` + "\n"},
		{"no value", typ + b + `{le="+Inf"}` + "\n"},
		{"no final newline", strings.TrimSuffix(ok, "\n")},
		{"buckets without # TYPE", b + `{le="+Inf"} 1` + "\n"},
		{"not a histogram", "# TYPE h counter\nh 1\n"},
		{"malformed line of another metric", ok + "other{{{ garbage\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if hs, err := ParsePromHistograms([]byte(tc.in), "h"); err == nil {
				t.Errorf("accepted:\n%s\nas %+v", tc.in, hs)
			}
		})
	}
	// The well-formed base of those cases is read as it is written.
	hs, err := ParsePromHistograms([]byte(ok), "h")
	if err != nil || len(hs) != 1 || hs[0].Count != 2 || hs[0].Sum != 3 ||
		!slices.Equal(hs[0].Buckets, []Bucket{{1, 1}, {math.Inf(1), 2}}) {
		t.Errorf("well-formed histogram = %+v, %v", hs, err)
	}
	// Without a +Inf bucket, _count is its count (as in the protobuf format).
	hs, err = ParsePromHistograms([]byte(typ+b+`{le="1"} 1`+"\nh_count 4\n"), "h")
	if err != nil || len(hs) != 1 || hs[0].Count != 4 ||
		!slices.Equal(hs[0].Buckets, []Bucket{{1, 1}, {math.Inf(1), 4}}) {
		t.Errorf("histogram without +Inf = %+v, %v", hs, err)
	}
}

func TestHistogramQuantile(t *testing.T) {
	inf := math.Inf(1)
	h := &Histogram{Buckets: []Bucket{{0.1, 10}, {0.2, 30}, {0.4, 40}, {inf, 40}}, Count: 40}
	tests := []struct {
		h    *Histogram
		q    float64
		want float64 // NaN: undefined
	}{
		{h, 0.5, 0.15},   // rank 20: halfway through (0.1, 0.2]
		{h, 0.99, 0.392}, // rank 39.6: 96% through (0.2, 0.4]
		{h, 0.25, 0.1},   // rank 10: the top of the first bucket
		{h, 0.1, 0.04},   // rank 4 in the first bucket, from 0
		{h, 0, 0},
		{h, 1, 0.4},
		{h, -0.1, math.NaN()},
		{h, 1.1, math.NaN()},
		{h, math.NaN(), math.NaN()},
		// A rank in +Inf reports the highest finite bound.
		{&Histogram{Buckets: []Bucket{{1, 1}, {inf, 10}}, Count: 10}, 0.5, 1},
		// A first bucket with a negative bound is its own value.
		{&Histogram{Buckets: []Bucket{{-1, 5}, {inf, 5}}, Count: 5}, 0.5, -1},
		{&Histogram{Buckets: []Bucket{{1, 0}, {inf, 0}}}, 0.5, math.NaN()},
		{&Histogram{Buckets: []Bucket{{inf, 3}}, Count: 3}, 0.5, math.NaN()},
		{&Histogram{}, 0.5, math.NaN()},
	}
	for _, tc := range tests {
		got := tc.h.Quantile(tc.q)
		if math.IsNaN(tc.want) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.want) > 1e-12) {
			t.Errorf("Quantile(%v) of %+v = %v, want %v", tc.q, tc.h.Buckets, got, tc.want)
		}
	}
	if !math.IsNaN((&Histogram{}).Mean()) {
		t.Error("mean of an empty histogram is not NaN")
	}
}

func TestHistogramSub(t *testing.T) {
	inf := math.Inf(1)
	a := &Histogram{Buckets: []Bucket{{1, 1}, {inf, 2}}, Count: 2, Sum: 1.5}
	b := &Histogram{Buckets: []Bucket{{1, 4}, {inf, 7}}, Count: 7, Sum: 9}
	d, err := b.Sub(a)
	if err != nil {
		t.Fatal(err)
	}
	if d.Count != 5 || d.Sum != 7.5 || !slices.Equal(d.Buckets, []Bucket{{1, 3}, {inf, 5}}) {
		t.Errorf("b - a = %+v", d)
	}
	if _, err := a.Sub(b); err == nil {
		t.Error("a counter going down was accepted")
	}
	if _, err := b.Sub(&Histogram{Buckets: []Bucket{{2, 1}, {inf, 2}}}); err == nil {
		t.Error("different bucket bounds were accepted")
	}
	if _, err := b.Sub(&Histogram{Buckets: []Bucket{{inf, 2}}}); err == nil {
		t.Error("a different bucket count was accepted")
	}
}

// FuzzParsePromHistograms checks that no input panics the parser and that
// whatever it accepts is a histogram whose quantiles lie within its bounds.
func FuzzParsePromHistograms(f *testing.F) {
	f.Add([]byte(promSample), instantiateMetric)
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"), "h")
	f.Add([]byte("# TYPE h histogram\nh_bucket{a=\"\\\"\",le=\"-Inf\"} 0\nh_bucket{le=\"+Inf\"} 0 12\n"), "h")
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"+Inf\",} 1e308\n"), "h")
	f.Add([]byte("# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_count 3\n"), "h")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		hs, err := ParsePromHistograms(data, name)
		if err != nil {
			return
		}
		for _, h := range hs {
			n := len(h.Buckets)
			if n == 0 || !math.IsInf(h.Buckets[n-1].UpperBound, 1) || h.Count != h.Buckets[n-1].Count {
				t.Fatalf("accepted a malformed histogram: %+v", h)
			}
			lo, hi := math.Min(0, h.Buckets[0].UpperBound), math.Inf(-1)
			for i, b := range h.Buckets {
				if i > 0 && (b.UpperBound <= h.Buckets[i-1].UpperBound || b.Count < h.Buckets[i-1].Count) {
					t.Fatalf("buckets out of order: %+v", h.Buckets)
				}
				if !math.IsInf(b.UpperBound, 1) {
					hi = b.UpperBound
				}
			}
			for _, q := range []float64{0, 0.5, 0.99, 1} {
				v := h.Quantile(q)
				if !math.IsNaN(v) && (v < lo || v > hi) {
					t.Fatalf("Quantile(%v) = %v outside [%v, %v] for %+v", q, v, lo, hi, h.Buckets)
				}
			}
		}
	})
}

func TestFormatRatioSig(t *testing.T) {
	for in, want := range map[float64]string{
		1.234: "1.23x", 309.49: "309.49x", 0.5: "0.500x", 0.0076: "0.00760x", 0.012345: "0.0123x",
		0: "0.00x", math.NaN(): "n/a", 1e-300: "0.000000000000x",
	} {
		if got := formatRatioSig(in); got != want {
			t.Errorf("formatRatioSig(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestFloatJSON(t *testing.T) {
	b, err := json.Marshal([]Float{1.5, Float(math.NaN()), Float(math.Inf(1))})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "[1.5,null,null]" {
		t.Errorf("Marshal = %s", b)
	}
	var back []Float
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back) != 3 || back[0] != 1.5 || !math.IsNaN(float64(back[1])) {
		t.Errorf("Unmarshal = %v", back)
	}
}

func TestSelectRoutes(t *testing.T) {
	tests := []struct {
		in, want []string
		err      bool
	}{
		{in: nil, want: pluginRoutes},
		{in: []string{RouteAuthTransform, RouteNoop}, want: []string{RouteNone, RouteNoop, RouteAuthTransform}},
		{in: []string{RouteNone}, want: []string{RouteNone}},
		{in: []string{RouteNoop, RouteNoop}, want: []string{RouteNone, RouteNoop}},
		{in: []string{"nope"}, err: true},
	}
	for _, tc := range tests {
		got, err := selectRoutes(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("selectRoutes(%v) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
	// Every route has a spec whose plugins are defined.
	for _, r := range pluginRoutes {
		spec, ok := pluginRouteSpecs[r]
		if !ok || spec.name != r {
			t.Errorf("route %s: spec %+v", r, spec)
		}
		for _, p := range spec.chain {
			if _, ok := pluginDefByName(p); !ok {
				t.Errorf("route %s: plugin %s undefined", r, p)
			}
		}
	}
}

func TestPluginsOptions(t *testing.T) {
	o := PluginsOptions{LoadOptions: LoadOptions{Duration: 1500 * time.Millisecond}}.withDefaults()
	if o.Duration != 2*time.Second || o.Runs != 3 || o.Connections != 64 || o.PluginsDir != "plugins" ||
		o.OutDir != "bench/results" || o.Progress == nil {
		t.Errorf("withDefaults = %+v", o)
	}
	const def = "wasmgate bench plugins -duration 5s -runs 3 -connections 64 -plugins plugins -out bench/results"
	if got := (PluginsOptions{}).Command(); got != def {
		t.Errorf("Command() = %q", got)
	}
	if got := (PluginsOptions{Routes: []string{RouteWATFresh}}).Command(); got != def+" -routes none,wat-fresh" {
		t.Errorf("Command() with routes = %q", got)
	}

	if o.Root != "." {
		t.Errorf("root = %q, want the parent of plugins", o.Root)
	}

	// The flags RegisterFlags defines read back into the same command.
	var o2 PluginsOptions
	fs := newFlagSet()
	o2.RegisterFlags(fs)
	if err := fs.Parse([]string{"-duration", "2s", "-runs", "1", "-connections", "8", "-plugins", "p",
		"-out", "o", "-routes", "noop, wat-fresh", "-langs", "go,c", "-engines", "wasmtime", "-root", "/r"}); err != nil {
		t.Fatal(err)
	}
	if got := o2.Command(); got != "wasmgate bench plugins -duration 2s -runs 1 -connections 8 -plugins p -out o -root /r -routes none,noop,wat-fresh -langs go,c -engines wasmtime" {
		t.Errorf("Command() after flags = %q", got)
	}
	for _, bad := range [][]string{{"-routes", "bogus"}, {"-langs", "cobol"}, {"-engines", "v8"}} {
		fs = newFlagSet()
		o2.RegisterFlags(fs)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestPluginMatrix checks the language × engine routes: a no-op route for
// every language and engine, an api-key + json-transform route for every
// language but WAT, the ABI pair on every engine, the classic routes where
// the matrix meets them, plugins with unique names and SDK modules where
// `make examples` puts them.
func TestPluginMatrix(t *testing.T) {
	if len(pluginRoutes) != 6+len(pluginLangs)*len(pluginEngines)-2+(len(pluginLangs)-1)*len(pluginEngines)+2*len(pluginEngines) {
		t.Errorf("%d routes: %v", len(pluginRoutes), pluginRoutes)
	}
	for _, engine := range pluginEngines {
		for _, name := range []string{"abi-native", "abi-httpwasm"} {
			if r, ok := pluginRouteSpecs[abiRoute(name, engine)]; !ok || r.kind != kindABI || r.engine != engine || r.check != checkABI {
				t.Errorf("%s route on %s = %+v", name, engine, r)
			}
		}
	}
	for _, lang := range pluginLangs {
		for _, engine := range pluginEngines {
			noop, ok := pluginRouteSpecs[matrixName(kindNoop, lang, engine)]
			if !ok || noop.kind != kindNoop || noop.lang != lang || noop.engine != engine || len(noop.chain) != 1 {
				t.Errorf("%s %s no-op route = %+v", lang, engine, noop)
			}
			chain, ok := pluginRouteSpecs[matrixName(kindKeysJSON, lang, engine)]
			if lang == LangWAT {
				if ok {
					t.Errorf("a WAT chain: %+v", chain)
				}
				continue
			}
			if !ok || chain.kind != kindKeysJSON || chain.rewrite != UpstreamJSONPath || len(chain.chain) != 2 ||
				chain.check != checkKeysJSON || strings.Contains(chain.config, "+") {
				t.Errorf("%s %s chain route = %+v", lang, engine, chain)
			}
			for _, p := range append(noop.chain, chain.chain...) {
				d, ok := pluginDefByName(p)
				if !ok || d.engine != engine || d.language != LanguageName(lang) || d.fresh ||
					d.sdk != (lang != LangGo && lang != LangWAT) {
					t.Errorf("%s %s plugin %s = %+v", lang, engine, p, d)
				}
			}
		}
	}
	if got := pluginRouteSpecs[RouteNoop]; got.lang != LangGo || got.engine != EngineWazero || got.kind != kindNoop {
		t.Errorf("the classic noop route is not Go's wazero no-op: %+v", got)
	}
	names := map[string]bool{}
	for _, d := range pluginDefs {
		if names[d.name] {
			t.Errorf("plugin %s defined twice", d.name)
		}
		names[d.name] = true
	}
	for name, want := range map[string]string{
		"noop-c-wasmtime":            "bin/examples/c/noop.wasm",
		"api-key-rust":               "sdk/rust/target/wasm32-wasi/release/examples/api_key.wasm",
		"json-transform-as-wasmtime": "sdk/assemblyscript/build/json-transform.wasm",
		"api-key-go-wasmtime":        "api-key/api-key.wasm",
	} {
		if d, _ := pluginDefByName(name); d.module != want {
			t.Errorf("%s: module %q, want %q", name, d.module, want)
		}
	}
	if d, _ := pluginDefByName("noop-rust"); !slices.Contains(d.alts, "sdk/rust/target/wasm32-wasi/release/examples/headers.wasm") {
		t.Errorf("the Rust no-op has no stand-in: %+v", d)
	}

	got := filterRoutes(pluginRoutes, []string{LangC}, []string{EngineWasmtime})
	if !slices.Equal(got, []string{RouteNone, "noop-c-wasmtime", "apikey+json-c-wasmtime"}) {
		t.Errorf("filterRoutes(c, wasmtime) = %v", got)
	}
	if got := filterRoutes(pluginRoutes, nil, nil); !slices.Equal(got, pluginRoutes) {
		t.Errorf("filterRoutes without filters = %v", got)
	}
}

// TestResolveModules: a missing Go module is an error; a missing SDK
// example leaves its routes out with a note; a missing no-op takes its
// stand-in, with a note.
func TestResolveModules(t *testing.T) {
	root := t.TempDir()
	pluginsDir := filepath.Join(root, "plugins")
	write := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("\x00asm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range pluginDefs {
		switch {
		case !d.sdk:
			write(filepath.Join(pluginsDir, d.module))
		case strings.HasPrefix(d.name, "noop-rust"):
			write(filepath.Join(root, d.alts[0])) // headers only: no Rust no-op
		case strings.HasSuffix(d.name, "-as") || strings.Contains(d.name, "-as-"):
			// AssemblyScript: nothing built
		default:
			write(filepath.Join(root, d.module))
		}
	}
	modules, routes, notes, err := resolveModules(pluginsDir, root, pluginRoutes)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if pluginRouteSpecs[r].lang == LangAS {
			t.Errorf("route %s kept without its modules", r)
		}
	}
	if len(routes) != len(pluginRoutes)-4 {
		t.Errorf("%d routes kept, want %d: %v", len(routes), len(pluginRoutes)-4, routes)
	}
	if m := modules["noop-rust-wasmtime"]; !strings.HasSuffix(m, "examples/headers.wasm") {
		t.Errorf("Rust no-op module = %q, want the headers stand-in", m)
	}
	if m := modules["noop-c"]; m != filepath.Join(root, "bin/examples/c/noop.wasm") {
		t.Errorf("C no-op module = %q", m)
	}
	text := strings.Join(notes, "\n")
	for _, want := range []string{"route noop-as left out", "route apikey+json-as-wasmtime left out", "make examples",
		"headers.wasm stands in for the no-op"} {
		if !strings.Contains(text, want) {
			t.Errorf("notes lack %q:\n%s", want, text)
		}
	}
	if err := os.Remove(filepath.Join(pluginsDir, "noop/noop.wasm")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := resolveModules(pluginsDir, root, pluginRoutes); err == nil || !strings.Contains(err.Error(), "bash plugins/build.sh") {
		t.Errorf("a missing Go module: %v", err)
	}
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("bench plugins", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// TestPluginsGatewayConfigParses feeds the generated config to the real
// config loader, so a schema change that breaks it fails here, not mid-run.
func TestPluginsGatewayConfigParses(t *testing.T) {
	conf, err := pluginsGatewayConfig("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", "/tmp/cache dir",
		modulePaths("/opt/wasm plugins", "/opt/repo", pluginDefs), pluginRoutes, 32)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("gateway.yaml", conf)
	if err != nil {
		t.Fatalf("generated config rejected: %v\n%s", err, conf)
	}
	if cfg.Runtime.CacheDir != "/tmp/cache dir" || cfg.Listen.Address != "127.0.0.1:1001" || cfg.Log.AccessLog != "off" {
		t.Errorf("config = %+v", cfg)
	}
	if len(cfg.Plugins) != len(pluginDefs) || len(cfg.Routes) != len(pluginRoutes) {
		t.Fatalf("%d plugins and %d routes, want %d and %d", len(cfg.Plugins), len(cfg.Routes), len(pluginDefs), len(pluginRoutes))
	}
	for _, p := range cfg.Plugins {
		d, ok := pluginDefByName(p.Name)
		if !ok {
			t.Errorf("unexpected plugin %s", p.Name)
			continue
		}
		wantMode := map[bool]string{true: "fresh", false: "pooled"}[d.fresh]
		wantModule := filepath.Join("/opt/wasm plugins", d.module)
		if d.sdk {
			wantModule = filepath.Join("/opt/repo", d.module)
		}
		wantEngine := map[string]string{EngineWazero: "", EngineWasmtime: "wasmtime"}[d.engine]
		if p.Mode != wantMode || p.Module != wantModule || p.Engine != wantEngine ||
			p.Pool.MaxInstances != 32 || p.Pool.AcquireTimeout.D() != pluginAcquireTimeout ||
			p.Limits.CallTimeout.D() != pluginCallTimeout {
			t.Errorf("plugin %s = %+v", p.Name, p)
		}
		if !d.fresh && p.Pool.MinInstances != pooledStartup {
			t.Errorf("plugin %s: min_instances %d, want %d", p.Name, p.Pool.MinInstances, pooledStartup)
		}
		if (d.config == nil) != (len(p.Config) == 0) {
			t.Errorf("plugin %s: config %s", p.Name, p.Config)
		}
	}
	for i, r := range cfg.Routes {
		spec := pluginRouteSpecs[pluginRoutes[i]]
		var chain []string
		for _, p := range r.Plugins {
			chain = append(chain, p.Name)
		}
		rewrite := ""
		if r.Rewrite != nil {
			rewrite = r.Rewrite.Path
		}
		if r.Name != spec.config || r.Match.Path != spec.path() || r.Upstream != "bench" || !slices.Equal(chain, spec.chain) ||
			rewrite != spec.rewrite {
			t.Errorf("route %d = %+v, want %+v", i, r, spec)
		}
	}

	// A subset configures only the plugins it uses.
	conf, err = pluginsGatewayConfig("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", "/c", nil,
		[]string{RouteNone}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := config.Parse("gateway.yaml", conf); err != nil || len(cfg.Plugins) != 0 || len(cfg.Routes) != 1 {
		t.Errorf("none-only config: %v\n%s", err, conf)
	}
}

func TestBenchJWT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := benchJWT(now)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", tok, len(parts))
	}
	mac := hmac.New(sha256.New, []byte(benchJWTSecret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if got := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != parts[2] {
		t.Error("signature does not verify")
	}
	var header map[string]string
	var claims map[string]any
	for i, v := range []any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	if header["alg"] != "HS256" || header["kid"] != "bench" {
		t.Errorf("header = %v", header)
	}
	if claims["iss"] != "wasmgate-bench" || claims["sub"] != "bench-user" || claims["exp"].(float64) != float64(now.Unix()+86400) {
		t.Errorf("claims = %v", claims)
	}
}

func TestCheckRouteAnswer(t *testing.T) {
	transformed := []byte(`{"id":4711,"status":"active","user":{"name":"Ada Lovelace","email":"ada@example.com"},` +
		`"items":[{"id":1,"name":"alpha"},{"id":2,"name":"beta"}],"total":2,"meta":{"via":"wasmgate"}}`)
	wat := http.Header{"X-Raw-Wat-Response": {"1"}}
	rewritten := http.Header{"X-Bench-Rewritten": {"1"}}
	tests := []struct {
		name, route string
		status      int
		h           http.Header
		body        []byte
		ok          bool
	}{
		{"none ok", RouteNone, 200, nil, upstreamBody, true},
		{"none 502", RouteNone, 502, nil, upstreamBody, false},
		{"noop other body", RouteNoop, 200, nil, []byte("x"), false},
		{"wat ok", RouteNoopWAT, 200, wat, upstreamBody, true},
		{"wat without its header", RouteWATFresh, 200, nil, upstreamBody, false},
		{"auth ok", RouteAuthTransform, 200, rewritten, transformed, true},
		{"auth untransformed", RouteAuthTransform, 200, rewritten, upstreamJSON, false},
		{"auth not rewritten", RouteAuthTransform, 200, rewritten, upstreamBody, false},
		{"auth no response rewrite", RouteAuthTransform, 200, nil, transformed, false},
		{"keys+json ok", "apikey+json-c", 200, nil, transformed, true},
		{"keys+json untransformed", "apikey+json-wasmtime", 200, nil, upstreamJSON, false},
		{"keys+json 401", "apikey+json-rust", 401, nil, []byte(`{"error":"missing API key"}`), false},
		{"rust no-op ok", "noop-rust-wasmtime", 200, nil, upstreamBody, true},
		{"wat on wasmtime without its header", "noop-wat-wasmtime", 200, nil, upstreamBody, false},
	}
	for _, tc := range tests {
		err := checkRouteAnswer(tc.route, tc.status, tc.h, tc.body)
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestCheckModules(t *testing.T) {
	dir := t.TempDir()
	defs := usedPlugins(pluginRoutes)
	err := checkModules(dir, defs)
	if err == nil || !strings.Contains(err.Error(), "bash plugins/build.sh") ||
		!strings.Contains(err.Error(), filepath.Join(dir, "noop/noop.wasm")) {
		t.Fatalf("error = %v", err)
	}
	if strings.Count(err.Error(), "noop/noop.wasm") != 1 {
		t.Errorf("a module used twice is named twice: %v", err)
	}
	for _, d := range defs {
		p := filepath.Join(dir, d.module)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("\x00asm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := checkModules(dir, defs); err != nil {
		t.Errorf("all modules present: %v", err)
	}
}

func TestUpstreamJSON(t *testing.T) {
	if !json.Valid(upstreamJSON) || len(UpstreamJSON) < 180 || len(UpstreamJSON) > 240 {
		t.Errorf("UpstreamJSON is %d bytes, valid %v", len(UpstreamJSON), json.Valid(upstreamJSON))
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetRequestURI(UpstreamJSONPath)
	upstreamHandler(&ctx)
	if string(ctx.Response.Body()) != UpstreamJSON || string(ctx.Response.Header.ContentType()) != "application/json" {
		t.Errorf("%s answered %q (%s)", UpstreamJSONPath, ctx.Response.Body(), ctx.Response.Header.ContentType())
	}
	if n := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		upstreamHandler(&ctx)
	}); n != 0 {
		t.Errorf("the JSON answer allocates %v times per request", n)
	}
	// Only the exact URI: a query or a longer path gets the text body.
	for _, uri := range []string{"/json?x=1", "/json/x", "/"} {
		ctx.Request.Header.SetRequestURI(uri)
		ctx.Response.Reset()
		upstreamHandler(&ctx)
		if string(ctx.Response.Body()) != UpstreamBody {
			t.Errorf("%s answered %q", uri, ctx.Response.Body())
		}
	}

	// Through a real server.
	addr := freeAddr(t)
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeUpstream(sctx, addr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeUpstream: %v", err)
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = client.Get("http://" + addr + UpstreamJSONPath); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != UpstreamJSON || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET %s = %q (%s), %v", UpstreamJSONPath, body, resp.Header.Get("Content-Type"), err)
	}
}

// TestWaitIdle checks waitIdle on a child that never uses CPU: it returns a
// CPU time, and with no wait it reads at once.
func TestWaitIdle(t *testing.T) {
	p, err := startProc("sleeper", []string{"sleep", "30"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	for _, within := range []time.Duration{0, 5 * time.Second} {
		if _, err := waitIdle(context.Background(), p.pid(), within); err != nil {
			t.Errorf("waitIdle(%s): %v", within, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	busy, err := startProc("busy", []string{"sh", "-c", "while :; do :; done"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.stop()
	if _, err := waitIdle(ctx, busy.pid(), time.Minute); err == nil {
		t.Error("waitIdle on a busy process ignored a cancelled context")
	}
}

// samplePluginsReport is a report as RunPlugins fills it, without running
// anything.
func samplePluginsReport() *PluginsReport {
	r := &PluginsReport{
		LoadRun: LoadRun{Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Command: "wasmgate bench plugins -runs 2",
			Duration: "1s", Runs: 2, Connections: 64, Threads: 2,
			Machine: MachineInfo{NProc: 2, CPUModel: "Test CPU", GoVersion: "go1.26", WrkVersion: "wrk 4.1.0"},
			Pinning: Pinning{Tool: "taskset", ProxyCPU: 0, LoadCPU: 1}},
		Routes: []string{RouteNone, RouteNoop, RouteNoopWAT, RouteNoopFresh, RouteWATFresh},
	}
	add := func(round int, route string, rps, cpu float64) {
		r.Measurements = append(r.Measurements, PluginRun{Round: round, Route: route,
			Wrk:                 WrkResult{Requests: int64(rps), Seconds: 1, RequestsPerSec: rps, P50Micros: 100, P99Micros: 900},
			CPUMicrosPerRequest: cpu})
	}
	for round, k := range []float64{1, 1.1} {
		add(round+1, RouteNone, 40000*k, 16*k)
		add(round+1, RouteNoop, 38000*k, 17*k)
		add(round+1, RouteNoopWAT, 37000*k, 18*k)
		add(round+1, RouteNoopFresh, 200*k, 5000*k)
		add(round+1, RouteWATFresh, 14000*k, 72*k)
	}
	nan := Float(math.NaN())
	r.Instantiate = []InstantiateStats{
		{Plugin: "noop", Language: "Go", Mode: "pooled", Startup: HistogramSummary{Count: 8, P50Micros: 4000, MeanMicros: 4200},
			Load: HistogramSummary{MeanMicros: nan, P50Micros: nan, P99Micros: nan}},
		{Plugin: "noop-wat", Language: "WAT", Mode: "pooled", Startup: HistogramSummary{Count: 8, P50Micros: 25, MeanMicros: 30},
			Load: HistogramSummary{MeanMicros: nan, P50Micros: nan, P99Micros: nan}},
		{Plugin: "noop-fresh", Language: "Go", Mode: "fresh", Startup: HistogramSummary{Count: 1, P50Micros: 4000, MeanMicros: 4000},
			Load: HistogramSummary{Count: 400, P50Micros: 6000, P99Micros: 9000, MeanMicros: 6500}},
		{Plugin: "wat-fresh", Language: "WAT", Mode: "fresh", Startup: HistogramSummary{Count: 1, P50Micros: 40, MeanMicros: 40},
			Load: HistogramSummary{Count: 28000, P50Micros: 30, P99Micros: 400, MeanMicros: 50}},
	}
	r.summarize()
	return r
}

func ratioNamed(r *PluginsReport, prefix string) float64 {
	for _, x := range r.Ratios {
		if strings.HasPrefix(x.Name, prefix) {
			return float64(x.Value)
		}
	}
	return math.Inf(-1)
}

func TestPluginsSummarize(t *testing.T) {
	r := samplePluginsReport()
	if len(r.Medians) != 5 || r.Medians[0].Route != RouteNone {
		t.Fatalf("medians = %+v", r.Medians)
	}
	noop, _ := r.Summary(RouteNoop)
	if noop.RequestsPerSec != 39900 || math.Abs(noop.CPUMicrosPerRequest-17.85) > 1e-9 || noop.Runs != 2 ||
		!slices.Equal(noop.Plugins, []string{"noop"}) {
		t.Errorf("noop median = %+v", noop)
	}
	if got := float64(noop.CPUVsNone); math.Abs(got-17.0/16) > 1e-12 {
		t.Errorf("noop CPU vs none = %v", got)
	}
	if got := float64(noop.RequestsPerSecVsNone); math.Abs(got-0.95) > 1e-12 {
		t.Errorf("noop req/s vs none = %v", got)
	}
	if got := float64(noop.CPUOverheadMicros); math.Abs(got-1.05) > 1e-9 {
		t.Errorf("noop CPU over none = %v", got)
	}
	for prefix, want := range map[string]float64{
		"instantiate p50, WAT ÷ Go (startup":     25.0 / 4000,
		"instantiate mean, WAT ÷ Go (startup":    30.0 / 4200,
		"instantiate p50, WAT ÷ Go (fresh":       30.0 / 6000,
		"CPU-µs/req, fresh ÷ pooled (Go":         5000.0 / 17,
		"req/s, fresh ÷ pooled (WAT)":            14000.0 / 37000,
		"CPU-µs/req, WAT ÷ Go (pooled)":          18.0 / 17,
		"CPU-µs/req, fresh ÷ pooled (WAT)":       72.0 / 18,
		"req/s, fresh ÷ pooled (Go noop)":        200.0 / 38000,
		"instantiate p50, WAT ÷ Go (startup, id": 25.0 / 4000,
	} {
		if got := ratioNamed(r, prefix); math.Abs(got-want) > 1e-9 {
			t.Errorf("ratio %q = %v, want %v", prefix, got, want)
		}
	}
	var b bytes.Buffer
	for _, tab := range []*Table{r.routeTable(), r.instantiateTable(), r.ratioTable()} {
		if err := tab.WriteText(&b); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"gateway CPU-µs/req", "CPU vs none", "39,900", "1.06x", "0.00526x", "startup p50", "25.0µs", "4.00ms", "n/a", "fresh ÷ pooled"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, b.String())
		}
	}

	// The language × engine routes, the target and their ratios.
	r = samplePluginsReport()
	r.Routes = append(r.Routes, RouteAuthTransform, "noop-c", "noop-c-wasmtime", "apikey+json", "apikey+json-c", "apikey+json-c-wasmtime")
	for round, k := range []float64{1, 1.1} {
		for route, cpu := range map[string]float64{RouteAuthTransform: 200, "noop-c": 16.5, "noop-c-wasmtime": 17,
			"apikey+json": 80, "apikey+json-c": 19, "apikey+json-c-wasmtime": 21} {
			r.Measurements = append(r.Measurements, PluginRun{Round: round + 1, Route: route,
				Wrk:                 WrkResult{Requests: 1000, Seconds: 1, RequestsPerSec: 1000, P50Micros: 100, P99Micros: 900},
				CPUMicrosPerRequest: cpu * k})
		}
	}
	r.summarize()
	c, _ := r.Summary("apikey+json-c-wasmtime")
	if c.Language != "C" || c.Engine != EngineWasmtime || c.Kind != kindKeysJSON {
		t.Errorf("route metadata = %+v", c)
	}
	if len(r.Targets) != 1 {
		t.Fatalf("targets = %+v", r.Targets)
	}
	tg := r.Targets[0]
	// none's median CPU is 16.8: C's chain on wazero is the fastest at 19.95 / 16.8.
	if tg.Route != "apikey+json-c" || math.Abs(float64(tg.Value)-19.95/16.8) > 1e-9 || tg.Met == nil || !*tg.Met ||
		!strings.Contains(tg.Note, "of 4 chains") || !strings.Contains(tg.Note, "jwt-auth chain: 12") ||
		!strings.Contains(tg.Note, "per round: 1.19x–1.19x") {
		t.Errorf("target = %+v", tg)
	}
	for prefix, want := range map[string]float64{
		"CPU-µs/req, no-op: wasmtime ÷ wazero (C)":       17.0 / 16.5,
		"CPU-µs/req, apikey+json: wasmtime ÷ wazero (C)": 21.0 / 19,
		"CPU-µs/req, apikey+json: C ÷ Go (wazero)":       19.0 / 80,
		"CPU-µs/req, Go: jwt-auth+rewrite":               200.0 / 80,
	} {
		if got := ratioNamed(r, prefix); math.Abs(got-want) > 1e-9 {
			t.Errorf("ratio %q = %v, want %v", prefix, got, want)
		}
	}
	if got := ratioNamed(r, "CPU-µs/req, apikey+json: C ÷ Go (wasmtime)"); !math.IsInf(got, -1) {
		t.Errorf("a ratio without Go's wasmtime chain is listed: %v", got)
	}
	b.Reset()
	for _, tab := range []*Table{r.matrixTable(), r.targetTable()} {
		if err := tab.WriteText(&b); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"apikey+json CPU-µs/req", "AssemblyScript", "wasmtime", "1.19x", "**met**", "fastest auth+transform"} {
		if want == "AssemblyScript" {
			if strings.Contains(b.String(), want) {
				t.Errorf("matrix has a row for a language not measured:\n%s", b.String())
			}
			continue
		}
		if !strings.Contains(b.String(), want) {
			t.Errorf("matrix or targets lack %q:\n%s", want, b.String())
		}
	}
	if rows := r.matrixTable().Rows; len(rows) != 4 { // Go and WAT on wazero, C on both
		t.Errorf("matrix rows = %v", rows)
	}

	// Without the baseline, ratios are undefined, not zero or infinite.
	r.Measurements = slices.DeleteFunc(r.Measurements, func(m PluginRun) bool { return m.Route == RouteNone })
	r.summarize()
	if s, _ := r.Summary(RouteNoop); !math.IsNaN(float64(s.CPUVsNone)) {
		t.Errorf("CPU vs a missing none = %v", s.CPUVsNone)
	}
}

func TestRoundOrder(t *testing.T) {
	routes := []string{RouteNone, "a", "b", "c", "d", "e", "f", "g", "h", "i"}
	want := []string{RouteNone, "a", "b", "c", "d", RouteNone, "e", "f", "g", "h", RouteNone, "i", RouteNone}
	if got := roundOrder(routes); !slices.Equal(got, want) {
		t.Errorf("roundOrder = %v\nwant %v", got, want)
	}
	if got := roundOrder([]string{RouteNone}); !slices.Equal(got, []string{RouteNone}) {
		t.Errorf("roundOrder(none) = %v", got)
	}
	if got := roundOrder([]string{RouteNone, "a", "b", "c", "d"}); !slices.Equal(got, []string{RouteNone, "a", "b", "c", "d", RouteNone}) {
		t.Errorf("roundOrder of noneEvery routes = %v", got)
	}
}

// TestLocalBaselines: a route is compared with the none runs next to it,
// so that a drift of the machine within a round (none from 10 to 20
// CPU-µs/req) does not show as the plugin's cost.
func TestLocalBaselines(t *testing.T) {
	run := func(round int, route string, cpu float64) PluginRun {
		return PluginRun{Round: round, Route: route, CPUMicrosPerRequest: cpu,
			Wrk: WrkResult{Requests: 1000, Seconds: 1, RequestsPerSec: 1000 / cpu}}
	}
	r := &PluginsReport{Routes: []string{RouteNone, "noop", "noop-wat"}}
	for round := 1; round <= 3; round++ {
		r.Measurements = append(r.Measurements,
			run(round, RouteNone, 10), run(round, "noop", 11), run(round, RouteNone, 20), run(round, "noop-wat", 22))
	}
	r.summarize()
	noop, _ := r.Summary("noop")
	wat, _ := r.Summary("noop-wat")
	none, _ := r.Summary(RouteNone)
	// noop: 11 against (10+20)/2; noop-wat: 22 against 20, the last none
	// of its round (a round's last none missing, as in an interrupted run).
	if math.Abs(float64(noop.CPUVsNone)-11.0/15) > 1e-12 || math.Abs(float64(wat.CPUVsNone)-1.1) > 1e-12 ||
		noop.CPUVsNoneMin != noop.CPUVsNone || noop.CPUVsNoneMax != noop.CPUVsNone ||
		math.Abs(float64(wat.CPUOverheadMicros)-2) > 1e-12 || none.CPUVsNone != 1 || none.CPUMicrosPerRequest != 15 {
		t.Errorf("noop %+v\nnoop-wat %+v\nnone %+v", noop, wat, none)
	}
	if math.Abs(float64(wat.RequestsPerSecVsNone)-(1000.0/22)/(1000.0/20)) > 1e-12 {
		t.Errorf("req/s vs none = %v", wat.RequestsPerSecVsNone)
	}
	if got := r.noneSpread(); !strings.Contains(got, "6 `none` runs") || !strings.Contains(got, "from 10.00 to 20.00") {
		t.Errorf("noneSpread = %q", got)
	}
}

func TestPluginsReportFiles(t *testing.T) {
	r := samplePluginsReport()
	dir := filepath.Join(t.TempDir(), "results")
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	checkPluginsReportFiles(t, r, dir)
}

// checkPluginsReportFiles asserts that RunPlugins's files exist and are well
// formed.
func checkPluginsReportFiles(t *testing.T, r *PluginsReport, dir string) {
	t.Helper()
	if len(r.Files) != 4 || filepath.Dir(r.Files[0]) != dir || !strings.HasPrefix(filepath.Base(r.Files[0]), "plugins-2") {
		t.Fatalf("files = %v", r.Files)
	}
	js, err := os.ReadFile(r.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	latest, err := os.ReadFile(filepath.Join(dir, "plugins-latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, latest) {
		t.Error("plugins-latest.json differs from the timestamped report")
	}
	var back PluginsReport
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if len(back.Measurements) != len(r.Measurements) || len(back.Medians) != len(r.Medians) ||
		len(back.Instantiate) != len(r.Instantiate) || len(back.Ratios) != len(r.Ratios) || back.Machine.NProc == 0 {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
	md, err := os.ReadFile(filepath.Join(dir, "plugins-latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	checkLinksCommitted(t, md)
	wants := []string{"| route |", "| plugin |", "| ratio |", r.Command, filepath.Base(r.Files[0]),
		"(plugins-latest.json)", "plugins-latest.svg", "bash plugins/build.sh"}
	for _, m := range r.Medians {
		wants = append(wants, "| "+m.Route+" |")
	}
	for _, want := range wants {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	checkLoadChart(t, filepath.Join(dir, "plugins-latest.svg"), len(r.Medians))
}

func TestInstantiateStats(t *testing.T) {
	before, err := parseSnapshot([]byte(promSample))
	if err != nil {
		t.Fatal(err)
	}
	after, err := parseSnapshot([]byte(strings.NewReplacer(
		`le="0.002"} 2`, `le="0.002"} 2`,
		`le="0.004"} 6`, `le="0.004"} 16`,
		`le="+Inf"} 8`, `le="+Inf"} 18`,
		`_sum{plugin="noop",version="964c53deb694"} 0.032`, `_sum{plugin="noop",version="964c53deb694"} 0.062`,
		`_count{plugin="noop",version="964c53deb694"} 8`, `_count{plugin="noop",version="964c53deb694"} 18`,
	).Replace(promSample)))
	if err != nil {
		t.Fatal(err)
	}
	noop, _ := pluginDefByName("noop")
	stats, err := instantiateStats(before, after, []pluginDef{noop})
	if err != nil {
		t.Fatal(err)
	}
	s := stats[0]
	if s.Plugin != "noop" || s.Version != "964c53deb694" || s.Mode != "pooled" || s.Language != "Go" ||
		s.Startup.Count != 8 || s.Load.Count != 10 {
		t.Fatalf("stats = %+v", s)
	}
	// Load: 10 observations, all in (0.002, 0.004], mean 3ms.
	if math.Abs(float64(s.Load.MeanMicros)-3000) > 1e-6 || math.Abs(float64(s.Load.P50Micros)-3000) > 1e-6 {
		t.Errorf("load = %+v", s.Load)
	}
	fresh, _ := pluginDefByName("noop-fresh")
	if _, err := instantiateStats(before, after, []pluginDef{fresh}); err == nil {
		t.Error("a plugin without a series was accepted")
	}
	if err := checkPluginsRan(after, []pluginDef{noop}); err == nil {
		t.Error("a snapshot without call counts passed checkPluginsRan")
	}
}

// pluginsTestDir is where the end-to-end test finds the built plugins: the
// repository's, or WASMGATE_BENCH_PLUGINS when set (a copy elsewhere).
func pluginsTestDir() string {
	if d := os.Getenv("WASMGATE_BENCH_PLUGINS"); d != "" {
		return d
	}
	return filepath.Join("..", "plugins")
}

// TestRunPluginsEndToEnd builds the real gateway and runs a short plugin
// benchmark over a subset of the routes that covers the WAT plugin pooled
// and fresh, Go plugins pooled in the auth+transform chain, and the C
// no-op and C and Rust api-key + json-transform chains, one on wasmtime
// (those of an SDK whose examples are not built are left out with a note).
// It asserts only that the report is well formed: timing depends on the
// machine.
func TestRunPluginsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end benchmark skipped in -short mode")
	}
	if _, err := lookTool("wrk"); err != nil {
		// Outside CI, never install packages from a test.
		skipUnlessCI(t, "wrk not installed (apt-get install wrk); skipping the end-to-end plugin benchmark")
	}
	sdkRoutes := []string{"noop-c", "apikey+json-c-wasmtime", "apikey+json-rust"}
	routes := append([]string{RouteNoopWAT, RouteWATFresh, RouteAuthTransform}, sdkRoutes...)
	pluginsDir := pluginsTestDir()
	all, _ := selectRoutes(routes)
	var plain []pluginDef
	for _, d := range usedPlugins(all) {
		if !d.sdk {
			plain = append(plain, d)
		}
	}
	if err := checkModules(pluginsDir, plain); err != nil {
		skipUnlessCI(t, err.Error())
	}
	dir := t.TempDir()
	gateway := buildGateway(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	outDir := filepath.Join(dir, "results")
	var table, progress bytes.Buffer
	rep, err := RunPlugins(ctx, PluginsOptions{
		LoadOptions: LoadOptions{Gateway: gateway, Duration: time.Second, Runs: 1, Connections: 8, OutDir: outDir, Progress: &progress},
		PluginsDir:  pluginsDir, Routes: routes,
	}, &table)
	if err != nil {
		t.Fatalf("RunPlugins: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", table.String())
	// Every SDK route ran, or a note says why not.
	notes := strings.Join(rep.Notes, "\n")
	var ran []string
	for _, r := range all {
		if slices.Contains(rep.Routes, r) {
			ran = append(ran, r)
		} else if !strings.Contains(notes, "route "+r+" left out") {
			t.Errorf("route %s neither ran nor is noted: %v", r, rep.Notes)
		}
	}
	if order := roundOrder(ran); !slices.Equal(rep.Routes, ran) || len(rep.Measurements) != len(order) || len(rep.Medians) != len(ran) {
		t.Fatalf("report has routes %v, %d runs and %d medians, want %v in %d runs", rep.Routes, len(rep.Measurements),
			len(rep.Medians), ran, len(order))
	}
	if len(rep.Targets) != 1 || rep.Targets[0].Route == "" || !(rep.Targets[0].Value > 0) {
		t.Errorf("target of the fastest chain = %+v", rep.Targets)
	}
	if len(rep.matrixTable().Rows) == 0 {
		t.Error("no language × engine row")
	}
	for _, m := range rep.Measurements {
		if m.Wrk.Requests <= 0 || m.Wrk.RequestsPerSec <= 0 || m.Wrk.P99Micros < m.Wrk.P50Micros || m.CPUSeconds < 0 {
			t.Errorf("implausible measurement %+v", m)
		}
	}
	if len(rep.Instantiate) != len(usedPlugins(ran)) {
		t.Errorf("instantiate stats for %d plugins, want %d: %+v", len(rep.Instantiate), len(usedPlugins(ran)), rep.Instantiate)
	}
	for _, s := range rep.Instantiate {
		if s.Startup.Count == 0 || s.Version == "" || !(s.Startup.MeanMicros > 0) {
			t.Errorf("plugin %s made no measured instance at startup: %+v", s.Plugin, s)
		}
		if s.Mode == "fresh" && s.Load.Count == 0 {
			t.Errorf("fresh plugin %s made no instance under load: %+v", s.Plugin, s)
		}
	}
	// The ratios the subset defines are numbers; the others are n/a.
	if v := ratioNamed(rep, "CPU-µs/req, fresh ÷ pooled (WAT)"); !(v > 0) || math.IsInf(v, 0) {
		t.Errorf("fresh ÷ pooled (WAT) = %v", v)
	}
	if v := ratioNamed(rep, "CPU-µs/req, fresh ÷ pooled (Go"); !math.IsNaN(v) {
		t.Errorf("fresh ÷ pooled (Go) without the Go routes = %v, want NaN", v)
	}
	for _, want := range []string{"none", "noop-wat", "wat-fresh", "auth+transform", "CPU vs none", "startup p50",
		"fastest auth+transform chain", "reproduce: wasmgate bench plugins"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("printed output lacks %q:\n%s", want, table.String())
		}
	}
	checkPluginsReportFiles(t, rep, outDir)
	if rep.Pinning.Tool == "" || rep.Machine.WrkVersion == "" {
		t.Errorf("report lacks pinning or wrk version: %+v %+v", rep.Pinning, rep.Machine)
	}
}

// TestRunPluginsRejects checks argument errors come before any process is
// started.
func TestRunPluginsRejects(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    PluginsOptions
		want string
	}{
		{"no gateway", PluginsOptions{}, "no gateway"},
		{"missing gateway", PluginsOptions{LoadOptions: LoadOptions{Gateway: "/nonexistent/wasmgate"}}, "gateway binary"},
		{"unknown route", PluginsOptions{LoadOptions: LoadOptions{Gateway: self}, Routes: []string{"bogus"}}, "unknown route"},
		{"modules not built", PluginsOptions{LoadOptions: LoadOptions{Gateway: self}, PluginsDir: t.TempDir()}, "bash plugins/build.sh"},
	}
	for _, tc := range tests {
		out := filepath.Join(t.TempDir(), "out")
		tc.o.OutDir = out
		_, err := RunPlugins(context.Background(), tc.o, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: reports written", tc.name)
		}
	}
}

// TestRunPluginsCancelLeavesNothing cancels a benchmark while it waits for
// its upstream and checks that none of its children survive. A shell-script
// "gateway" and empty module files stand in for the real ones.
func TestRunPluginsCancelLeavesNothing(t *testing.T) {
	if _, err := lookTool("wrk"); err != nil {
		skipUnlessCI(t, "wrk not installed")
	}
	dir := t.TempDir()
	pluginsDir := filepath.Join(dir, "plugins")
	for _, d := range pluginDefs {
		p := filepath.Join(pluginsDir, d.module)
		if d.sdk {
			p = filepath.Join(dir, d.module) // the root: the parent of plugins
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("\x00asm"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	checkCancelLeavesNothing(t, "RunPlugins", dir, func(ctx context.Context, gateway, outDir string) error {
		_, err := RunPlugins(ctx, PluginsOptions{LoadOptions: LoadOptions{Gateway: gateway, OutDir: outDir}, PluginsDir: pluginsDir}, io.Discard)
		return err
	})
}
