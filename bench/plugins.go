package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/wasmgate/wasmgate/host/wasm"
)

// Route names of the plugin benchmark, as they appear in reports.
const (
	RouteNone          = "none"           // no plugin: the baseline
	RouteNoop          = "noop"           // the Go noop plugin, pooled
	RouteNoopWAT       = "noop-wat"       // the raw WAT plugin, pooled
	RouteNoopFresh     = "noop-fresh"     // the Go noop plugin, a new instance per request
	RouteWATFresh      = "wat-fresh"      // the raw WAT plugin, a new instance per request
	RouteAuthTransform = "auth+transform" // jwt-auth (HS256), rewrite, json-transform
)

// Kinds of routes: what a route's chain is, for the language × engine
// table.
const (
	kindNone     = "none"
	kindNoop     = "noop"        // a language's no-op, pooled
	kindFresh    = "fresh"       // a no-op, a new instance per request
	kindKeysJSON = "apikey+json" // a language's api-key and json-transform examples
	// kindABI: the same header plugin (plugins/httpwasm) against the
	// native ABI and http-wasm's
	kindABI      = "abi"
	kindJWTChain = "jwt-chain" // the Go jwt-auth, rewrite, json-transform chain
)

// Engines of the plugin benchmark's routes: the plugin's `engine:`.
var pluginEngines = []string{EngineWazero, EngineWasmtime}

// pluginLangs are the languages of the language × engine routes, in report
// order.
var pluginLangs = []string{LangGo, LangRust, LangC, LangAS, LangWAT}

// The answers a route's probe checks.
const (
	checkBody     = iota // the upstream's text body
	checkWAT             // the text body and the WAT plugin's header
	checkJWTChain        // 401 without a token; the rewritten, transformed JSON with one
	checkKeysJSON        // 401 without a key; the transformed JSON with one
	checkABI             // the text body and the header plugin's header (plugins/httpwasm)
)

const (
	defaultPluginsDir = "plugins"

	// pooledStartup is the instances a pooled plugin makes before the
	// route takes traffic (min_instances): they are instantiated one after
	// the other with no load, so their instantiate times are the quiet
	// cold-start figure.
	pooledStartup = 8
	// pluginReadyTimeout covers compiling every module at startup: the
	// cache directory is new for each run, and GOMAXPROCS is 1.
	pluginReadyTimeout = 5 * time.Minute
	// pluginAcquireTimeout and pluginCallTimeout are far above anything a
	// healthy run needs: with GOMAXPROCS=1 and dozens of requests in
	// flight, a fresh Go instance can wait behind others' instantiation,
	// and a benchmark must not turn a slow request into a 503.
	pluginAcquireTimeout = 10 * time.Second
	pluginCallTimeout    = time.Second
	// pluginWrkTimeout is wrk's --timeout: a fresh Go instance costs
	// milliseconds, so with 64 connections on one core a request waits
	// close to wrk's default of 2s, and a timed-out request is missing
	// from wrk's latencies.
	pluginWrkTimeout = 10 * time.Second
	// pluginSettle is how long a measurement waits for the gateway to go
	// idle after wrk, charging the garbage collection of a fresh route's
	// dead instances to that route, not the next.
	pluginSettle = 5 * time.Second

	// benchJWTSecret is the HS256 key of the auth route; the harness signs
	// its token with it.
	benchJWTSecret = "wasmgate-bench-hs256-secret-0123456789"

	// maxMetricsBytes bounds the admin /metrics read: the plugin
	// histograms alone are tens of KiB.
	maxMetricsBytes = 16 << 20

	instantiateMetric = "wasmgate_plugin_instantiate_seconds"
	callMetric        = "wasmgate_plugin_call_seconds"

	// targetFastestChain is issue 13's target: the fastest language's
	// auth+transform chain at most this many times the CPU per request of
	// the route without plugins.
	targetFastestChain = 1.2
)

// pluginDef is a plugin entry of the benchmark gateway's config.
type pluginDef struct {
	name string // config name: the plugin label of its metrics
	// module is the .wasm file, relative to the plugins directory (Go,
	// WAT) or, when sdk is set, to the repository root; alts are
	// stand-ins (relative to the root) when it is not built.
	module   string
	sdk      bool
	alts     []string
	language string // "Go", "WAT", "Rust", "C", "AssemblyScript"
	engine   string // EngineWazero (the gateway's default) or EngineWasmtime
	fresh    bool   // mode fresh, else pooled
	config   any    // plugin config, marshalled to JSON; nil for none
}

// pluginRouteSpec is one route of the benchmark gateway.
type pluginRouteSpec struct {
	name   string   // report name
	config string   // config name (also the path, after a slash)
	chain  []string // plugin config names, in chain order
	lang   string   // LangGo, ...; "" for none
	engine string   // EngineWazero or EngineWasmtime; "" for none
	kind   string   // kindNone, ...
	check  int      // checkBody, ...
	// rewrite is the route's path rewrite (host side): the JSON chains
	// reach UpstreamJSONPath without a rewrite plugin.
	rewrite string
}

func (r pluginRouteSpec) path() string { return "/" + r.config }

// pluginDefs are every plugin the benchmark can use, in config order;
// pluginRoutes the routes in round order; pluginRouteSpecs the routes by
// name. makePluginMatrix makes them.
var pluginDefs, pluginRoutes, pluginRouteSpecs = makePluginMatrix()

// abiRoute names a route of the ABI pair: "abi-native", "abi-httpwasm-wasmtime".
func abiRoute(name, engine string) string {
	if engine == EngineWasmtime {
		return name + "-wasmtime"
	}
	return name
}

// matrixName is the name of a language × engine route or plugin: prefix,
// then the language unless Go, then "-wasmtime" on wasmtime: "noop",
// "noop-rust", "apikey+json-c-wasmtime".
func matrixName(prefix, lang, engine string) string {
	n := prefix
	if lang != LangGo {
		n += "-" + lang
	}
	if engine == EngineWasmtime {
		n += "-wasmtime"
	}
	return n
}

// sdkPluginModule returns the module of the cold-start plugin name (an
// SDK example) and its stand-ins.
func sdkPluginModule(names ...string) (string, []string) {
	var mods []string
	for _, n := range names {
		p, _ := coldPluginByName(n)
		mods = append(mods, p.module)
	}
	return mods[0], mods[1:]
}

// makePluginMatrix returns the plugins and routes: the six classic routes
// (none, the Go and WAT no-ops pooled and fresh, the Go jwt-auth chain, all
// on wazero), then a no-op route and an api-key + json-transform route per
// language and engine.
func makePluginMatrix() ([]pluginDef, []string, map[string]pluginRouteSpec) {
	defs := []pluginDef{
		{name: "noop", module: "noop/noop.wasm", language: "Go", engine: EngineWazero},
		{name: "noop-wat", module: "raw-wat/plugin.wasm", language: "WAT", engine: EngineWazero},
		{name: "noop-fresh", module: "noop/noop.wasm", language: "Go", engine: EngineWazero, fresh: true},
		{name: "wat-fresh", module: "raw-wat/plugin.wasm", language: "WAT", engine: EngineWazero, fresh: true},
		{name: "jwt-auth", module: "jwt-auth/jwt-auth.wasm", language: "Go", engine: EngineWazero, config: map[string]any{
			"keys":           []any{map[string]any{"kid": "bench", "secret": benchJWTSecret}},
			"issuer":         "wasmgate-bench",
			"forward_claims": map[string]any{"sub": "X-User-Id"},
		}},
		{name: "rewrite", module: "rewrite/rewrite.wasm", language: "Go", engine: EngineWazero, config: map[string]any{
			"request": map[string]any{
				"path":    map[string]any{"prefix": authTransformPath, "replace": UpstreamJSONPath},
				"headers": map[string]any{"set": map[string]any{"X-Gateway": "wasmgate"}},
			},
			"response": map[string]any{
				"headers": map[string]any{"set": map[string]any{"X-Bench-Rewritten": "1"}},
			},
		}},
		{name: "json-transform", module: "json-transform/json-transform.wasm", language: "Go", engine: EngineWazero, config: jsonTransformConfig},
	}
	routes := []string{RouteNone, RouteNoop, RouteNoopWAT, RouteNoopFresh, RouteWATFresh, RouteAuthTransform}
	specs := map[string]pluginRouteSpec{
		RouteNone:      {name: RouteNone, config: "none", kind: kindNone},
		RouteNoop:      {name: RouteNoop, config: "noop", chain: []string{"noop"}, lang: LangGo, engine: EngineWazero, kind: kindNoop},
		RouteNoopWAT:   {name: RouteNoopWAT, config: "noop-wat", chain: []string{"noop-wat"}, lang: LangWAT, engine: EngineWazero, kind: kindNoop, check: checkWAT},
		RouteNoopFresh: {name: RouteNoopFresh, config: "noop-fresh", chain: []string{"noop-fresh"}, lang: LangGo, engine: EngineWazero, kind: kindFresh},
		RouteWATFresh:  {name: RouteWATFresh, config: "wat-fresh", chain: []string{"wat-fresh"}, lang: LangWAT, engine: EngineWazero, kind: kindFresh, check: checkWAT},
		RouteAuthTransform: {name: RouteAuthTransform, config: "auth-transform", chain: []string{"jwt-auth", "rewrite", "json-transform"},
			lang: LangGo, engine: EngineWazero, kind: kindJWTChain, check: checkJWTChain},
	}
	add := func(spec pluginRouteSpec, ds ...pluginDef) {
		if _, ok := specs[spec.name]; ok {
			return // a classic route already
		}
		defs = append(defs, ds...)
		routes = append(routes, spec.name)
		specs[spec.name] = spec
	}
	// No-ops first, then the chains, so that a round alternates neither.
	for _, lang := range pluginLangs {
		for _, engine := range pluginEngines {
			name := matrixName("noop", lang, engine)
			d := pluginDef{name: name, language: LanguageName(lang), engine: engine}
			check := checkBody
			switch lang {
			case LangGo:
				d.module = "noop/noop.wasm"
			case LangWAT:
				d.module, check = "raw-wat/plugin.wasm", checkWAT
			default:
				d.sdk = true
				d.module, d.alts = sdkPluginModule(coldNoops[lang]...)
			}
			add(pluginRouteSpec{name: name, config: name, chain: []string{name}, lang: lang, engine: engine, kind: kindNoop, check: check}, d)
		}
	}
	// The same plugin against each ABI, on each engine.
	for _, engine := range pluginEngines {
		for _, a := range [...]struct{ name, module string }{
			{"abi-native", "httpwasm/header-native.wasm"}, {"abi-httpwasm", "httpwasm/header.wasm"},
		} {
			name := abiRoute(a.name, engine)
			add(pluginRouteSpec{name: name, config: name, chain: []string{name}, lang: LangWAT, engine: engine, kind: kindABI, check: checkABI},
				pluginDef{name: name, module: a.module, language: "WAT", engine: engine})
		}
	}
	for _, lang := range pluginLangs {
		if lang == LangWAT {
			continue // no api-key or json-transform in WAT
		}
		for _, engine := range pluginEngines {
			name := matrixName(kindKeysJSON, lang, engine)
			suffix := strings.TrimPrefix(matrixName("", lang, engine), "-")
			if lang == LangGo {
				suffix = strings.TrimSuffix("go-"+suffix, "-")
			}
			keys := pluginDef{name: "api-key-" + suffix, language: LanguageName(lang), engine: engine, config: apiKeyConfig}
			transform := pluginDef{name: "json-transform-" + suffix, language: LanguageName(lang), engine: engine, config: jsonTransformConfig}
			if lang == LangGo {
				keys.module, transform.module = "api-key/api-key.wasm", "json-transform/json-transform.wasm"
			} else {
				keys.sdk, transform.sdk = true, true
				keys.module, _ = sdkPluginModule(lang + "-api-key")
				transform.module, _ = sdkPluginModule(lang + "-json-transform")
			}
			add(pluginRouteSpec{name: name, config: strings.ReplaceAll(name, "+", "-"), chain: []string{keys.name, transform.name},
				lang: lang, engine: engine, kind: kindKeysJSON, check: checkKeysJSON, rewrite: UpstreamJSONPath}, keys, transform)
		}
	}
	return defs, routes, specs
}

func pluginDefByName(name string) (pluginDef, bool) {
	for _, d := range pluginDefs {
		if d.name == name {
			return d, true
		}
	}
	return pluginDef{}, false
}

// authTransformPath is the auth route's path, which rewrite turns into
// UpstreamJSONPath: only a rewritten request gets the JSON body.
const authTransformPath = "/auth-transform"

// PluginsOptions configures RunPlugins. Zero fields take the defaults below.
type PluginsOptions struct {
	LoadOptions // Connections also sizes the plugin pools, so a pooled plugin never makes a request wait
	// PluginsDir holds the built Go and WAT plugins (default "plugins", the
	// repository's, built by `bash plugins/build.sh`).
	PluginsDir string
	// Root is the repository root, where the Rust, C and AssemblyScript
	// examples are built (`make examples`); default the parent of
	// PluginsDir. A route whose SDK module is not built is left out with a
	// note.
	Root string
	// Routes selects the routes to measure (default all, in round order).
	// RouteNone, the baseline, is always measured.
	Routes []string
	// Langs and Engines narrow the routes to those languages and engines
	// (default all); RouteNone is always measured.
	Langs   []string
	Engines []string
}

// RegisterFlags binds o's tunables to flags on fs, with the defaults as flag
// defaults, so that a command line and Command agree on names.
func (o *PluginsOptions) RegisterFlags(fs *flag.FlagSet) {
	o.registerFlags(fs, "routes", "; plugin pools are sized to it")
	fs.StringVar(&o.PluginsDir, "plugins", defaultPluginsDir, "directory of the built Go and WAT plugins (bash plugins/build.sh)")
	fs.StringVar(&o.Root, "root", "", "repository root holding the built Rust, C and AssemblyScript examples (make examples; default: the parent of -plugins)")
	fs.Func("routes", "comma-separated routes to measure (default all: "+strings.Join(pluginRoutes, ",")+"); none is always measured",
		func(s string) error {
			o.Routes = splitList(s)
			_, err := selectRoutes(o.Routes)
			return err
		})
	fs.Func("langs", "comma-separated languages of the routes (default all: "+strings.Join(pluginLangs, ",")+")", func(s string) error {
		o.Langs = splitList(s)
		return checkAll("language", o.Langs, pluginLangs)
	})
	fs.Func("engines", "comma-separated engines of the routes (default all: "+strings.Join(pluginEngines, ",")+")", func(s string) error {
		o.Engines = splitList(s)
		return checkAll("engine", o.Engines, pluginEngines)
	})
}

// checkAll fails for the first of got not in have.
func checkAll(what string, got, have []string) error {
	for _, g := range got {
		if !slices.Contains(have, g) {
			return fmt.Errorf("unknown %s %q (have %s)", what, g, strings.Join(have, ", "))
		}
	}
	return nil
}

// Command returns the command line that reproduces a run with o (after
// defaults), using the flags RegisterFlags defines.
func (o PluginsOptions) Command() string {
	o = o.withDefaults()
	cmd := fmt.Sprintf("wasmgate bench plugins %s -plugins %s -out %s", o.flags(), o.PluginsDir, o.OutDir)
	if o.Root != filepath.Join(o.PluginsDir, "..") {
		cmd += " -root " + o.Root
	}
	if len(o.Routes) > 0 {
		if routes, err := selectRoutes(o.Routes); err == nil && len(routes) < len(pluginRoutes) {
			cmd += " -routes " + strings.Join(routes, ",")
		}
	}
	if len(o.Langs) > 0 && !slices.Equal(o.Langs, pluginLangs) {
		cmd += " -langs " + strings.Join(o.Langs, ",")
	}
	if len(o.Engines) > 0 && !slices.Equal(o.Engines, pluginEngines) {
		cmd += " -engines " + strings.Join(o.Engines, ",")
	}
	return cmd
}

func (o PluginsOptions) withDefaults() PluginsOptions {
	o.LoadOptions = o.LoadOptions.withDefaults()
	if o.PluginsDir == "" {
		o.PluginsDir = defaultPluginsDir
	}
	if o.Root == "" {
		o.Root = filepath.Join(o.PluginsDir, "..")
	}
	return o
}

// selectRoutes returns the routes to measure in round order: RouteNone and
// those of want (all when empty). An unknown name is an error.
func selectRoutes(want []string) ([]string, error) {
	if len(want) == 0 {
		return slices.Clone(pluginRoutes), nil
	}
	for _, w := range want {
		if !slices.Contains(pluginRoutes, w) {
			return nil, fmt.Errorf("unknown route %q (have %s)", w, strings.Join(pluginRoutes, ", "))
		}
	}
	var routes []string
	for _, r := range pluginRoutes {
		if r == RouteNone || slices.Contains(want, r) {
			routes = append(routes, r)
		}
	}
	return routes, nil
}

// filterRoutes keeps RouteNone and the routes of langs and engines (all
// when empty).
func filterRoutes(routes, langs, engines []string) []string {
	return slices.DeleteFunc(slices.Clone(routes), func(r string) bool {
		spec := pluginRouteSpecs[r]
		if spec.kind == kindNone {
			return false
		}
		return len(langs) > 0 && !slices.Contains(langs, spec.lang) || len(engines) > 0 && !slices.Contains(engines, spec.engine)
	})
}

// usedPlugins returns the plugin definitions the routes need, in config order.
func usedPlugins(routes []string) []pluginDef {
	var defs []pluginDef
	for _, d := range pluginDefs {
		for _, r := range routes {
			if slices.Contains(pluginRouteSpecs[r].chain, d.name) {
				defs = append(defs, d)
				break
			}
		}
	}
	return defs
}

// Float is a float64 that encodes NaN and infinities as JSON null: an
// undefined ratio or the quantile of an empty histogram, which
// encoding/json would otherwise refuse.
type Float float64

// MarshalJSON implements json.Marshaler.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON implements json.Unmarshaler; null reads back as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// PluginsReport is the outcome of RunPlugins: every raw measurement, the
// medians and ratios per route, the instantiate times per plugin, and where
// and how it ran. It is also the JSON written to OutDir.
type PluginsReport struct {
	LoadRun
	// LoadAvgEnd is /proc/loadavg when the measurements ended; with
	// Machine.LoadAvg (at the start) it shows how busy the machine was.
	LoadAvgEnd string `json:"load_avg_end,omitempty"`
	// PluginsDir is where the modules were read from.
	PluginsDir string `json:"plugins_dir"`
	// Routes are the routes measured, in round order.
	Routes []string `json:"routes"`
	// Measurements are the raw runs in the order they ran.
	Measurements []PluginRun `json:"measurements"`
	// Medians has one entry per route, in Routes order, with its ratios to
	// RouteNone.
	Medians []PluginSummary `json:"medians"`
	// Instantiate has the cold-start histogram of every plugin in use,
	// from the gateway's wasmgate_plugin_instantiate_seconds.
	Instantiate []InstantiateStats `json:"instantiate"`
	// Ratios are the comparisons bench/README.md quotes: WAT vs Go instantiate
	// time, fresh vs pooled per-request cost, wasmtime vs wazero and each
	// language vs Go per request.
	Ratios []NamedRatio `json:"ratios"`
	// Targets are issue 13's target on this run: the fastest
	// auth+transform chain at most 1.2× the CPU per request of none.
	Targets []PluginsTarget `json:"targets"`
	// Notes say which routes were asked for and left out, and why (a
	// module not built, an engine this build lacks), and which plugin
	// stands in for a language's missing no-op.
	Notes []string `json:"notes"`
	// Files are the reports written: the timestamped JSON, then
	// plugins-latest.md, .svg and .json.
	Files []string `json:"files,omitempty"`
}

// PluginRun is one wrk measurement of one route.
type PluginRun struct {
	Round   int       `json:"round"`
	Route   string    `json:"route"`
	URL     string    `json:"url"`
	Plugins []string  `json:"plugins"`
	Wrk     WrkResult `json:"wrk"`
	// CPUSeconds is the gateway's CPU time during the run.
	CPUSeconds          float64 `json:"cpu_seconds"`
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request"`
	// UpstreamCPUMicrosPerRequest is the upstream's cost, a check that it
	// did comparable work behind every route.
	UpstreamCPUMicrosPerRequest float64 `json:"upstream_cpu_us_per_request"`
}

// PluginSummary is the per-route median over rounds.
type PluginSummary struct {
	Route   string   `json:"route"`
	Plugins []string `json:"plugins"`
	// Language, Engine and Kind place the route in the language × engine
	// table: Kind is "noop", "apikey+json", "fresh", "jwt-chain" or "none".
	Language                    string  `json:"language,omitempty"`
	Engine                      string  `json:"engine,omitempty"`
	Kind                        string  `json:"kind"`
	Runs                        int     `json:"runs"`
	RequestsPerSec              float64 `json:"requests_per_sec"`
	P50Micros                   float64 `json:"p50_us"`
	P99Micros                   float64 `json:"p99_us"`
	CPUMicrosPerRequest         float64 `json:"cpu_us_per_request"`
	UpstreamCPUMicrosPerRequest float64 `json:"upstream_cpu_us_per_request"`
	// CPUVsNone and RequestsPerSecVsNone are the medians over rounds of
	// this route's figure divided by that of RouteNone measured next to
	// it (localBaselines): on a busy machine the cost of everything drifts
	// within a round, so a route is compared with the none runs around it,
	// not with none's median.
	CPUVsNone            Float `json:"cpu_us_per_request_vs_none"`
	RequestsPerSecVsNone Float `json:"requests_per_sec_vs_none"`
	// CPUVsNoneMin and CPUVsNoneMax are the lowest and highest of the
	// per-round ratios whose median CPUVsNone is: the noise it carries.
	CPUVsNoneMin Float `json:"cpu_us_per_request_vs_none_min"`
	CPUVsNoneMax Float `json:"cpu_us_per_request_vs_none_max"`
	// CPUOverheadMicros is the median over rounds of CPU-µs/req minus that
	// of the none runs next to it: what the chain itself costs per request.
	CPUOverheadMicros Float `json:"cpu_us_per_request_over_none"`
}

// InstantiateStats is the cold-start time of one plugin (one series of
// wasmgate_plugin_instantiate_seconds), split at the moment traffic began.
type InstantiateStats struct {
	Plugin   string `json:"plugin"`
	Version  string `json:"version"`
	Module   string `json:"module"`
	Language string `json:"language"`
	Mode     string `json:"mode"`
	// Startup are the instances made before the first request: the pool's
	// min_instances (one for a fresh plugin, which proves the config),
	// made one after the other on an idle gateway.
	Startup HistogramSummary `json:"startup"`
	// Load are the instances made afterwards, while requests ran: one per
	// request for a fresh plugin, pool growth for a pooled one.
	Load HistogramSummary `json:"load"`
}

// HistogramSummary condenses a histogram. Quantiles are interpolated inside
// buckets, as Prometheus's histogram_quantile does, so they are estimates
// whose resolution is the bucket width (exponential buckets: a constant
// factor); the mean is exact.
type HistogramSummary struct {
	Count      uint64 `json:"count"`
	MeanMicros Float  `json:"mean_us"`
	P50Micros  Float  `json:"p50_us"`
	P99Micros  Float  `json:"p99_us"`
}

// summarizeHistogram condenses h; nil is an empty histogram.
func summarizeHistogram(h *Histogram) HistogramSummary {
	if h == nil || h.Count == 0 {
		nan := Float(math.NaN())
		return HistogramSummary{MeanMicros: nan, P50Micros: nan, P99Micros: nan}
	}
	return HistogramSummary{
		Count:      uint64(h.Count),
		MeanMicros: Float(h.Mean() * 1e6),
		P50Micros:  Float(h.Quantile(0.5) * 1e6),
		P99Micros:  Float(h.Quantile(0.99) * 1e6),
	}
}

// PluginsTarget is a target checked against this run.
type PluginsTarget struct {
	Name string `json:"name"`
	// Route is the route the target is checked on: the fastest of its
	// kind.
	Route string `json:"route"`
	Value Float  `json:"value"`
	Limit Float  `json:"limit"`
	Met   *bool  `json:"met,omitempty"`
	Note  string `json:"note,omitempty"`
}

// NamedRatio is one comparison: Of divided by To.
type NamedRatio struct {
	Name  string `json:"name"`
	Of    string `json:"of"`
	To    string `json:"to"`
	Value Float  `json:"value"`
}

// Summary returns the median of route, or false if it has none.
func (r *PluginsReport) Summary(route string) (PluginSummary, bool) {
	for _, s := range r.Medians {
		if s.Route == route {
			return s, true
		}
	}
	return PluginSummary{}, false
}

// InstantiateOf returns the instantiate statistics of plugin, or false.
func (r *PluginsReport) InstantiateOf(plugin string) (InstantiateStats, bool) {
	for _, s := range r.Instantiate {
		if s.Plugin == plugin {
			return s, true
		}
	}
	return InstantiateStats{}, false
}

// pluginsEnv is what RunPlugins started: the children and where they listen.
type pluginsEnv struct {
	runner
	o        PluginsOptions
	routes   []string
	upstream *proc
	gateway  *proc
	upURL    string            // the upstream, reached directly
	urls     map[string]string // by route
	metrics  string            // the gateway's admin /metrics
	token    string            // the auth route's bearer token
	modules  map[string]string // module path by plugin name
}

// RunPlugins measures, in one run on loopback, the gateway (GOMAXPROCS=1,
// pinned to its own CPU when possible) serving one route per plugin setup
// (see the Route constants), all to the same upstream, with wrk. It prints
// the median table to out and writes plugins-<UTC time>.json (with a copy as
// plugins-latest.json), plugins-latest.md and plugins-latest.svg to
// o.OutDir. Every child process is stopped before it returns, also when ctx
// is cancelled.
func RunPlugins(ctx context.Context, o PluginsOptions, out io.Writer) (*PluginsReport, error) {
	o = o.withDefaults()
	if out == nil {
		out = io.Discard
	}
	routes, err := selectRoutes(o.Routes)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	if err := errors.Join(checkAll("language", o.Langs, pluginLangs), checkAll("engine", o.Engines, pluginEngines)); err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	routes = filterRoutes(routes, o.Langs, o.Engines)
	if o.Gateway == "" {
		return nil, errors.New("bench plugins: no gateway binary given")
	}
	if _, err := os.Stat(o.Gateway); err != nil {
		return nil, fmt.Errorf("bench plugins: gateway binary: %w", err)
	}
	pluginsDir, err := filepath.Abs(o.PluginsDir)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	var notes []string
	if !wasm.WasmtimeAvailable() {
		// The gateway is this binary (os.Executable) in `wasmgate bench`.
		routes = slices.DeleteFunc(routes, func(r string) bool {
			if pluginRouteSpecs[r].engine == EngineWasmtime {
				notes = append(notes, fmt.Sprintf("route %s left out: no wasmtime engine in this build (cgo)", r))
				return true
			}
			return false
		})
	}
	modules, routes, more, err := resolveModules(pluginsDir, root, routes)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	notes = append(notes, more...)
	for _, n := range notes {
		fmt.Fprintf(o.Progress, "bench: note: %s\n", n)
	}
	t, err := findTools(ctx, o.Progress, false)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	clk := clockTicks()
	rep := &PluginsReport{
		LoadRun:    newLoadRun(ctx, t, clk, o.Command(), o.Duration, o.Runs, o.Connections),
		PluginsDir: pluginsDir,
		Routes:     routes,
		Notes:      notes,
	}
	fmt.Fprintf(o.Progress, "bench: %d routes; %s; pinning: %s; load average %s\n", len(routes),
		rep.Machine.WrkVersion, rep.Pinning, rep.Machine.LoadAvg)

	tmp, err := os.MkdirTemp("", "wasmgate-bench-plugins-")
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	defer os.RemoveAll(tmp)

	env := &pluginsEnv{
		runner: runner{tools: t, pin: rep.Pinning, clk: float64(clk), conns: o.Connections,
			wrkTimeout: pluginWrkTimeout, settle: pluginSettle},
		o: o, routes: routes, urls: map[string]string{}, modules: modules,
	}
	defer env.stopAll()
	token, err := benchJWT(rep.Started)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	env.token = token
	if err := env.start(ctx, tmp); err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	startup, err := env.scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: metrics before the load: %w", err)
	}
	if err := env.probe(ctx); err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}

	for _, route := range routes {
		fmt.Fprintf(o.Progress, "bench: warmup %s (%s)\n", route, warmup)
		if _, err := env.wrk(ctx, env.urls[route], warmup, env.headers(route)...); err != nil {
			return nil, fmt.Errorf("bench plugins: warmup %s: %w", route, err)
		}
	}
	order := roundOrder(routes)
	for round := 1; round <= o.Runs; round++ {
		for _, route := range order {
			run, err := env.measure(ctx, round, route)
			if err != nil {
				return nil, fmt.Errorf("bench plugins: round %d, %s: %w", round, route, err)
			}
			rep.Measurements = append(rep.Measurements, run)
			fmt.Fprintf(o.Progress, "bench: round %d/%d %-26s %s req/s, p50 %s, p99 %s, %s CPU-µs/req\n",
				round, o.Runs, route, FormatNumber(run.Wrk.RequestsPerSec), FormatMicros(run.Wrk.P50Micros),
				FormatMicros(run.Wrk.P99Micros), FormatNumber(run.CPUMicrosPerRequest))
		}
	}
	rep.LoadAvgEnd = loadAvg()
	final, err := env.scrape(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: metrics after the load: %w", err)
	}
	env.stopAll() // free the CPUs before writing reports

	if err := checkPluginsRan(final, usedPlugins(routes)); err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	if rep.Instantiate, err = instantiateStats(startup, final, usedPlugins(routes)); err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	rep.summarize()
	for _, t := range []*Table{rep.routeTable(), rep.matrixTable(), rep.targetTable(), rep.instantiateTable(), rep.ratioTable()} {
		if err := t.WriteText(out); err != nil {
			return rep, fmt.Errorf("bench plugins: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	if err := rep.write(o.OutDir); err != nil {
		return rep, fmt.Errorf("bench plugins: %w", err)
	}
	fmt.Fprintf(out, "reports: %s\nreproduce: %s\n", strings.Join(rep.Files, ", "), rep.Command)
	return rep, nil
}

// resolveModules returns the module of every plugin the routes use and the
// routes that can run. A Go or WAT module missing is an error (checkModules);
// an SDK example missing leaves its routes out with a note (a toolchain
// this machine lacks: `make examples`), and a no-op's stand-in is used,
// with a note, when the no-op is not built.
func resolveModules(pluginsDir, root string, routes []string) (map[string]string, []string, []string, error) {
	var plain []pluginDef
	modules := map[string]string{}
	missing := map[string]string{}
	var notes []string
	for _, d := range usedPlugins(routes) {
		if !d.sdk {
			plain = append(plain, d)
			modules[d.name] = filepath.Join(pluginsDir, d.module)
			continue
		}
		cands := append([]string{d.module}, d.alts...)
		i := slices.IndexFunc(cands, func(m string) bool { return fileBuilt(filepath.Join(root, m)) })
		switch {
		case i < 0:
			missing[d.name] = filepath.Join(root, d.module)
		case i > 0:
			notes = append(notes, fmt.Sprintf("plugin %s: %s is not built, so %s stands in for the no-op (%s)",
				d.name, d.module, cands[i], headersNote))
			fallthrough
		default:
			modules[d.name] = filepath.Join(root, cands[i])
		}
	}
	if err := checkModules(pluginsDir, plain); err != nil {
		return nil, nil, nil, err
	}
	routes = slices.DeleteFunc(slices.Clone(routes), func(r string) bool {
		for _, p := range pluginRouteSpecs[r].chain {
			if m, ok := missing[p]; ok {
				notes = append(notes, fmt.Sprintf("route %s left out: %s not built (`make examples` builds it; it needs the language's toolchain)", r, m))
				return true
			}
		}
		return false
	})
	return modules, routes, notes, nil
}

func fileBuilt(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Size() > 0
}

// checkModules fails, naming the build command, when a module is missing.
func checkModules(dir string, defs []pluginDef) error {
	var missing []string
	for _, d := range defs {
		p := filepath.Join(dir, d.module)
		if fi, err := os.Stat(p); err != nil || fi.IsDir() || fi.Size() == 0 {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		missing = slices.Compact(missing)
		return fmt.Errorf("plugin modules not built: %s; build them with `bash plugins/build.sh` from the repository root, or pass -plugins DIR",
			strings.Join(missing, ", "))
	}
	return nil
}

// benchJWT signs the auth route's token: HS256 with benchJWTSecret, issued
// by the config's issuer, valid for a day from now.
func benchJWT(now time.Time) (string, error) {
	enc := base64.RawURLEncoding
	header, err := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "bench"})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"sub": "bench-user", "iss": "wasmgate-bench",
		"iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix(),
	})
	if err != nil {
		return "", err
	}
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(benchJWTSecret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// headers returns wrk's extra request headers for route.
func (e *pluginsEnv) headers(route string) []string {
	switch pluginRouteSpecs[route].check {
	case checkJWTChain:
		return []string{"Authorization: Bearer " + e.token}
	case checkKeysJSON:
		return []string{"X-Api-Key: " + coldAPIKey}
	}
	return nil
}

// start launches the upstream and the gateway and waits until both answer.
func (e *pluginsEnv) start(ctx context.Context, tmp string) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	upAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	gwAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	adminAddr := "127.0.0.1:" + strconv.Itoa(ports[2])
	e.upURL = "http://" + upAddr + "/"
	for _, r := range e.routes {
		e.urls[r] = "http://" + gwAddr + pluginRouteSpecs[r].path()
	}
	e.metrics = "http://" + adminAddr + "/metrics"

	up, err := e.launch("upstream", e.pin.LoadCPU,
		[]string{e.o.Gateway, "bench", "upstream", "-addr", upAddr}, nil)
	if err != nil {
		return err
	}
	e.upstream = up
	if err := waitHTTP(ctx, up, e.upURL, nil, true); err != nil {
		return err
	}
	fmt.Fprintf(e.o.Progress, "bench: upstream ready on %s\n", upAddr)

	conf, err := pluginsGatewayConfig(gwAddr, adminAddr, upAddr, filepath.Join(tmp, "cache"),
		e.modules, e.routes, e.o.Connections)
	if err != nil {
		return err
	}
	gwConf := filepath.Join(tmp, "gateway.yaml")
	if err := os.WriteFile(gwConf, conf, 0o600); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	gwEnv := append(os.Environ(), "WASMGATE_ADMIN_TOKEN="+benchAdminToken, "GOMAXPROCS=1")
	gw, err := e.launch("gateway", e.pin.ProxyCPU,
		[]string{e.o.Gateway, "serve", "--config", gwConf}, gwEnv)
	if err != nil {
		return err
	}
	e.gateway = gw
	fmt.Fprintf(e.o.Progress, "bench: gateway compiling %d plugin modules\n", len(usedPlugins(e.routes)))
	if err := waitHTTPWithin(ctx, gw, "http://"+adminAddr+"/readyz", adminAuth(), false, pluginReadyTimeout); err != nil {
		return err
	}
	fmt.Fprintf(e.o.Progress, "bench: gateway ready on %s\n", gwAddr)
	return nil
}

func adminAuth() http.Header {
	return http.Header{"Authorization": {"Bearer " + benchAdminToken}}
}

// probe sends one request to every route and checks that its plugins did
// their work, so that the benchmark measures what it claims: the WAT
// plugin's response header, the auth routes' 401 without a token or key,
// and their transformed JSON with one.
func (e *pluginsEnv) probe(ctx context.Context) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	for _, route := range e.routes {
		hdr := http.Header{}
		for _, h := range e.headers(route) {
			name, value, _ := strings.Cut(h, ": ")
			hdr.Set(name, value)
		}
		resp, body, err := fetch(ctx, client, e.urls[route], hdr, 64<<10)
		if err != nil {
			return fmt.Errorf("route %s: %w", route, err)
		}
		if err := checkRouteAnswer(route, resp.StatusCode, resp.Header, body); err != nil {
			return fmt.Errorf("route %s: %w", route, err)
		}
		if len(hdr) > 0 {
			resp, body, err := fetch(ctx, client, e.urls[route], nil, 64<<10)
			if err != nil {
				return fmt.Errorf("route %s without credentials: %w", route, err)
			}
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("route %s without credentials: status %d, want 401 (is its auth plugin running?): %s",
					route, resp.StatusCode, lastBytes(body, 512))
			}
		}
	}
	return nil
}

// checkRouteAnswer checks one answer of route to a valid request.
func checkRouteAnswer(route string, status int, h http.Header, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("status %d, want 200: %s", status, lastBytes(body, 512))
	}
	switch pluginRouteSpecs[route].check {
	case checkWAT:
		if h.Get("X-Raw-Wat-Response") != "1" {
			return errors.New("no X-Raw-Wat-Response header: the WAT plugin did not run")
		}
	case checkABI:
		if h.Get("X-Bench-Response") != "1" {
			return errors.New("no X-Bench-Response header: the header plugin's response hook did not run")
		}
	case checkJWTChain:
		if h.Get("X-Bench-Rewritten") != "1" {
			return errors.New("no X-Bench-Rewritten header: the rewrite plugin's on_response did not run")
		}
		return checkTransformed(body)
	case checkKeysJSON:
		return checkTransformed(body)
	}
	if string(body) != UpstreamBody {
		return fmt.Errorf("body %q is not the upstream's", lastBytes(body, 512))
	}
	return nil
}

// checkTransformed checks that body is UpstreamJSON as json-transform's
// four ops leave it.
func checkTransformed(body []byte) error {
	var got struct {
		User  map[string]any `json:"user"`
		Meta  map[string]any `json:"meta"`
		Items []any          `json:"items"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Errorf("body is not the upstream's JSON (was the path rewritten to %s?): %w: %s",
			UpstreamJSONPath, err, lastBytes(body, 512))
	}
	if got.Meta["via"] != "wasmgate" || got.User["name"] != "Ada Lovelace" ||
		bytes.Contains(body, []byte("internal_id")) || len(got.Items) != 2 {
		return fmt.Errorf("json-transform did not transform the body: %s", lastBytes(body, 512))
	}
	return nil
}

// scrape reads the gateway's plugin histograms from its admin /metrics.
func (e *pluginsEnv) scrape(ctx context.Context) (promSnapshot, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	resp, body, err := fetch(ctx, client, e.metrics, adminAuth(), maxMetricsBytes)
	if err != nil {
		return promSnapshot{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return promSnapshot{}, fmt.Errorf("GET %s: status %d: %s", e.metrics, resp.StatusCode, lastBytes(body, 512))
	}
	return parseSnapshot(body)
}

// promSnapshot holds the plugin histograms of one scrape.
type promSnapshot struct {
	instantiate []Histogram
	call        []Histogram
}

func parseSnapshot(body []byte) (promSnapshot, error) {
	var s promSnapshot
	families, err := parseExposition(body)
	if err != nil {
		return s, err
	}
	if s.instantiate, err = histogramsOf(families, instantiateMetric); err != nil {
		return s, err
	}
	if s.call, err = histogramsOf(families, callMetric); err != nil {
		return s, err
	}
	return s, nil
}

// checkPluginsRan fails when a plugin in use served no request hook (on_init
// does not count): its route would have measured the gateway without it.
func checkPluginsRan(s promSnapshot, defs []pluginDef) error {
	for _, d := range defs {
		var calls float64
		for _, h := range s.call {
			if h.Labels["plugin"] == d.name && h.Labels["hook"] != "on_init" {
				calls += h.Count
			}
		}
		if calls == 0 {
			return fmt.Errorf("plugin %s: no request hook calls in %s after the run", d.name, callMetric)
		}
	}
	return nil
}

// instantiateStats pairs every plugin's instantiate histogram before and
// after the load.
func instantiateStats(startup, final promSnapshot, defs []pluginDef) ([]InstantiateStats, error) {
	var stats []InstantiateStats
	for _, d := range defs {
		end := findSeries(final.instantiate, "plugin", d.name)
		if end == nil {
			return nil, fmt.Errorf("plugin %s: no %s series on the gateway", d.name, instantiateMetric)
		}
		mode := "pooled"
		if d.fresh {
			mode = "fresh"
		}
		st := InstantiateStats{Plugin: d.name, Version: end.Labels["version"], Module: d.module,
			Language: d.language, Mode: mode}
		begin := findSeries(startup.instantiate, "plugin", d.name)
		load := end
		if begin != nil {
			if begin.Labels["version"] != st.Version {
				return nil, fmt.Errorf("plugin %s: version changed during the run (%s, then %s)",
					d.name, begin.Labels["version"], st.Version)
			}
			diff, err := end.Sub(begin)
			if err != nil {
				return nil, fmt.Errorf("plugin %s: %w", d.name, err)
			}
			load = &diff
		}
		st.Startup = summarizeHistogram(begin)
		st.Load = summarizeHistogram(load)
		stats = append(stats, st)
	}
	return stats, nil
}

// findSeries returns the first series whose label key is value, or nil.
func findSeries(hs []Histogram, key, value string) *Histogram {
	for i := range hs {
		if hs[i].Labels[key] == value {
			return &hs[i]
		}
	}
	return nil
}

// measure runs wrk once against route and reads the gateway's CPU time.
func (e *pluginsEnv) measure(ctx context.Context, round int, route string) (PluginRun, error) {
	run := PluginRun{Round: round, Route: route, URL: e.urls[route], Plugins: pluginRouteSpecs[route].chain}
	l, err := e.load(ctx, run.URL, e.o.Duration, e.gateway, e.upstream, e.headers(route)...)
	run.Wrk = l.wrk
	if err != nil {
		return run, err
	}
	if n := l.wrk.TimeoutErrors; float64(n) > maxBadShare*float64(l.wrk.Requests) {
		return run, fmt.Errorf("%d of %d requests timed out (after %s)", n, l.wrk.Requests, pluginWrkTimeout)
	}
	run.CPUSeconds = l.cpuSeconds
	run.CPUMicrosPerRequest = l.cpuMicrosPerRequest()
	run.UpstreamCPUMicrosPerRequest = l.upstreamSeconds * 1e6 / float64(l.wrk.Requests)
	return run, nil
}

// pluginsGatewayConfig is the gateway's YAML: one exact-path route per
// benchmark route, all to the same upstream, each with its own plugin
// entries so that every plugin's metrics are its own. modules maps each
// plugin to its module. Pools hold conns instances at most, so pooled mode
// never waits for one.
func pluginsGatewayConfig(listen, admin, upstream, cacheDir string, modules map[string]string, routes []string, conns int) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `# generated by wasmgate bench plugins
listen: {address: %q}
admin: {address: %q, watch_config: false}
log: {level: warn, access_log: "off"}
plugin_runtime: {cache_dir: %q}
upstreams:
  - name: bench
    targets: [{address: %q}]
`, listen, admin, cacheDir, upstream)
	if defs := usedPlugins(routes); len(defs) > 0 {
		b.WriteString("plugins:\n")
		for _, d := range defs {
			module, ok := modules[d.name]
			if !ok {
				return nil, fmt.Errorf("plugin %s: no module", d.name)
			}
			fmt.Fprintf(&b, "  - name: %q\n    module: %q\n", d.name, module)
			if d.engine == EngineWasmtime {
				fmt.Fprintf(&b, "    engine: %s\n", d.engine)
			}
			fmt.Fprintf(&b, "    limits: {call_timeout: %s}\n", pluginCallTimeout)
			if d.fresh {
				fmt.Fprintf(&b, "    mode: fresh\n    pool: {max_instances: %d, acquire_timeout: %s}\n",
					conns, pluginAcquireTimeout)
			} else {
				fmt.Fprintf(&b, "    mode: pooled\n    pool: {max_instances: %d, min_instances: %d, acquire_timeout: %s}\n",
					conns, min(pooledStartup, conns), pluginAcquireTimeout)
			}
			if d.config != nil {
				js, err := json.Marshal(d.config)
				if err != nil {
					return nil, fmt.Errorf("plugin %s config: %w", d.name, err)
				}
				// JSON is YAML: the flow style needs no indentation.
				fmt.Fprintf(&b, "    config: %s\n", js)
			}
		}
	}
	b.WriteString("routes:\n")
	for _, r := range routes {
		spec := pluginRouteSpecs[r]
		fmt.Fprintf(&b, "  - name: %q\n    match: {path: %q}\n    upstream: bench\n", spec.config, spec.path())
		if spec.rewrite != "" {
			fmt.Fprintf(&b, "    rewrite: {path: %q}\n", spec.rewrite)
		}
		if len(spec.chain) > 0 {
			b.WriteString("    plugins:\n")
			for _, p := range spec.chain {
				fmt.Fprintf(&b, "      - name: %q\n", p)
			}
		}
	}
	return b.Bytes(), nil
}

// modulePaths maps every plugin of defs to its first-choice module: under
// pluginsDir, or root for an SDK example.
func modulePaths(pluginsDir, root string, defs []pluginDef) map[string]string {
	m := make(map[string]string, len(defs))
	for _, d := range defs {
		if d.sdk {
			m[d.name] = filepath.Join(root, d.module)
		} else {
			m[d.name] = filepath.Join(pluginsDir, d.module)
		}
	}
	return m
}

// noneEvery is how many routes a round measures between two runs of
// RouteNone: each route's ratio to none uses the none runs next to it.
const noneEvery = 4

// roundOrder is the order of the measurements of one round: RouteNone
// first, again after every noneEvery other routes, and last.
func roundOrder(routes []string) []string {
	order := []string{RouteNone}
	n := 0
	for _, r := range routes {
		if r == RouteNone {
			continue
		}
		if n == noneEvery {
			order = append(order, RouteNone)
			n = 0
		}
		order = append(order, r)
		n++
	}
	if n > 0 && slices.Contains(routes, RouteNone) {
		order = append(order, RouteNone)
	}
	if !slices.Contains(routes, RouteNone) {
		order = order[1:]
	}
	return order
}

// localBaselines returns, for each measurement, the mean CPU-µs/req and
// req/s of the RouteNone runs just before and just after it in the same
// round (in the order of Measurements, which is the order they ran); NaN
// when its round has none.
func (r *PluginsReport) localBaselines() (cpu, rps []float64) {
	cpu, rps = make([]float64, len(r.Measurements)), make([]float64, len(r.Measurements))
	for i, m := range r.Measurements {
		var c, q []float64
		for _, step := range []int{-1, 1} {
			for j := i + step; j >= 0 && j < len(r.Measurements); j += step {
				o := r.Measurements[j]
				if o.Round != m.Round {
					continue // another round's runs, appended in between
				}
				if o.Route == RouteNone {
					c, q = append(c, o.CPUMicrosPerRequest), append(q, o.Wrk.RequestsPerSec)
					break
				}
			}
		}
		cpu[i], rps[i] = mean(c), mean(q)
	}
	return cpu, rps
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// medianDefined is the median of the defined values of xs, NaN for none.
func medianDefined(xs []float64) float64 {
	return median(slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }))
}

// extremeDefined is the least (sign < 0) or greatest defined value of xs,
// NaN for none.
func extremeDefined(xs []float64, sign int) float64 {
	d := slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) })
	switch {
	case len(d) == 0:
		return math.NaN()
	case sign < 0:
		return slices.Min(d)
	}
	return slices.Max(d)
}

// summarize fills Medians and Ratios from Measurements and Instantiate.
func (r *PluginsReport) summarize() {
	r.Medians = r.Medians[:0]
	for _, route := range r.Routes {
		var rps, p50, p99, cpu, upcpu []float64
		spec := pluginRouteSpecs[route]
		s := PluginSummary{Route: route, Plugins: spec.chain, Engine: spec.engine, Kind: spec.kind}
		if spec.lang != "" {
			s.Language = LanguageName(spec.lang)
		}
		for _, m := range r.Measurements {
			if m.Route != route {
				continue
			}
			rps = append(rps, m.Wrk.RequestsPerSec)
			p50 = append(p50, m.Wrk.P50Micros)
			p99 = append(p99, m.Wrk.P99Micros)
			cpu = append(cpu, m.CPUMicrosPerRequest)
			upcpu = append(upcpu, m.UpstreamCPUMicrosPerRequest)
		}
		s.Runs = len(rps)
		if s.Runs == 0 {
			continue
		}
		s.RequestsPerSec, s.P50Micros, s.P99Micros = median(rps), median(p50), median(p99)
		s.CPUMicrosPerRequest, s.UpstreamCPUMicrosPerRequest = median(cpu), median(upcpu)
		r.Medians = append(r.Medians, s)
	}
	baseCPU, baseRPS := r.localBaselines()
	for i := range r.Medians {
		s := &r.Medians[i]
		var cpuRatio, rpsRatio, over []float64
		for j, m := range r.Measurements {
			if m.Route != s.Route {
				continue
			}
			cpuRatio = append(cpuRatio, div(m.CPUMicrosPerRequest, baseCPU[j]))
			rpsRatio = append(rpsRatio, div(m.Wrk.RequestsPerSec, baseRPS[j]))
			over = append(over, m.CPUMicrosPerRequest-baseCPU[j])
		}
		s.CPUVsNone, s.RequestsPerSecVsNone = Float(medianDefined(cpuRatio)), Float(medianDefined(rpsRatio))
		s.CPUOverheadMicros = Float(medianDefined(over))
		s.CPUVsNoneMin, s.CPUVsNoneMax = Float(extremeDefined(cpuRatio, -1)), Float(extremeDefined(cpuRatio, 1))
		if s.Route == RouteNone {
			s.CPUVsNone, s.RequestsPerSecVsNone, s.CPUOverheadMicros = 1, 1, 0 // by definition
			s.CPUVsNoneMin, s.CPUVsNoneMax = 1, 1
		}
	}

	routeRatio := func(name, of, to string, metric func(PluginSummary) float64) NamedRatio {
		v := math.NaN()
		a, okA := r.Summary(of)
		b, okB := r.Summary(to)
		if okA && okB {
			v = div(metric(a), metric(b))
		}
		return NamedRatio{Name: name, Of: of, To: to, Value: Float(v)}
	}
	inst := func(name, of, to string, metric func(InstantiateStats) Float) NamedRatio {
		v := math.NaN()
		a, okA := r.InstantiateOf(of)
		b, okB := r.InstantiateOf(to)
		if okA && okB {
			v = div(float64(metric(a)), float64(metric(b)))
		}
		return NamedRatio{Name: name, Of: of, To: to, Value: Float(v)}
	}
	cpu := func(s PluginSummary) float64 { return s.CPUMicrosPerRequest }
	rps := func(s PluginSummary) float64 { return s.RequestsPerSec }
	r.Ratios = []NamedRatio{
		inst("instantiate p50, WAT ÷ Go (startup, idle)", "noop-wat", "noop",
			func(s InstantiateStats) Float { return s.Startup.P50Micros }),
		inst("instantiate mean, WAT ÷ Go (startup, idle)", "noop-wat", "noop",
			func(s InstantiateStats) Float { return s.Startup.MeanMicros }),
		inst("instantiate p50, WAT ÷ Go (fresh, under load)", "wat-fresh", "noop-fresh",
			func(s InstantiateStats) Float { return s.Load.P50Micros }),
		routeRatio("CPU-µs/req, fresh ÷ pooled (Go noop)", RouteNoopFresh, RouteNoop, cpu),
		routeRatio("req/s, fresh ÷ pooled (Go noop)", RouteNoopFresh, RouteNoop, rps),
		routeRatio("CPU-µs/req, fresh ÷ pooled (WAT)", RouteWATFresh, RouteNoopWAT, cpu),
		routeRatio("req/s, fresh ÷ pooled (WAT)", RouteWATFresh, RouteNoopWAT, rps),
		routeRatio("CPU-µs/req, WAT ÷ Go (pooled)", RouteNoopWAT, RouteNoop, cpu),
	}
	// The language × engine routes: only the ratios this run measured.
	both := func(name, of, to string) {
		if x := routeRatio(name, of, to, cpu); !math.IsNaN(float64(x.Value)) {
			r.Ratios = append(r.Ratios, x)
		}
	}
	for _, lang := range pluginLangs {
		both("CPU-µs/req, no-op: wasmtime ÷ wazero ("+LanguageName(lang)+")",
			matrixName(kindNoop, lang, EngineWasmtime), matrixName(kindNoop, lang, EngineWazero))
	}
	for _, lang := range pluginLangs {
		both("CPU-µs/req, apikey+json: wasmtime ÷ wazero ("+LanguageName(lang)+")",
			matrixName(kindKeysJSON, lang, EngineWasmtime), matrixName(kindKeysJSON, lang, EngineWazero))
	}
	for _, engine := range pluginEngines {
		for _, lang := range pluginLangs[1:] {
			both("CPU-µs/req, apikey+json: "+LanguageName(lang)+" ÷ Go ("+engine+")",
				matrixName(kindKeysJSON, lang, engine), matrixName(kindKeysJSON, LangGo, engine))
		}
	}
	both("CPU-µs/req, Go: jwt-auth+rewrite+json-transform ÷ api-key+json-transform (wazero)",
		RouteAuthTransform, matrixName(kindKeysJSON, LangGo, EngineWazero))
	for _, engine := range pluginEngines {
		both("CPU-µs/req, the header plugin: http-wasm ÷ native ABI ("+engine+")",
			abiRoute("abi-httpwasm", engine), abiRoute("abi-native", engine))
	}
	r.targets()
}

// targets fills Targets: the fastest auth+transform chain (an
// apikey+json route of any language and engine, or the Go jwt chain) ÷
// none, against issue 13's 1.2×.
func (r *PluginsReport) targets() {
	t := PluginsTarget{Name: "fastest auth+transform chain ≤ 1.2× the CPU-µs/req of no plugin",
		Value: Float(math.NaN()), Limit: targetFastestChain}
	var chains []string
	for _, s := range r.Medians {
		if s.Kind != kindKeysJSON && s.Kind != kindJWTChain || math.IsNaN(float64(s.CPUVsNone)) {
			continue
		}
		chains = append(chains, s.Route)
		if math.IsNaN(float64(t.Value)) || s.CPUVsNone < t.Value {
			t.Route, t.Value = s.Route, s.CPUVsNone
		}
	}
	t.Met = metWithin(t.Value, t.Limit)
	if len(chains) > 0 {
		best, _ := r.Summary(t.Route)
		t.Note = fmt.Sprintf("the least CPU of %d chains; its ratio per round: %s–%s", len(chains),
			formatRatioSig(float64(best.CPUVsNoneMin)), formatRatioSig(float64(best.CPUVsNoneMax)))
		if s, ok := r.Summary(RouteAuthTransform); ok {
			t.Note += fmt.Sprintf("; the Go jwt-auth chain: %s", formatRatioSig(float64(s.CPUVsNone)))
		}
	}
	r.Targets = []PluginsTarget{t}
}

// matrixTable is the language × engine table: each language's no-op and
// api-key + json-transform chain on each engine, CPU per request and its
// ratio to none.
func (r *PluginsReport) matrixTable() *Table {
	t := &Table{
		Columns: []string{"language", "engine", "no-op CPU-µs/req", "vs none", "apikey+json CPU-µs/req", "vs none", "over none", "req/s", "p99"},
		Align:   []Align{AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	for _, lang := range pluginLangs {
		for _, engine := range pluginEngines {
			noop, okN := r.Summary(matrixName(kindNoop, lang, engine))
			chain, okC := r.Summary(matrixName(kindKeysJSON, lang, engine))
			if !okN && !okC {
				continue
			}
			row := []string{LanguageName(lang), engine, "-", "-", "-", "-", "-", "-", "-"}
			if okN {
				row[2], row[3] = FormatNumber(noop.CPUMicrosPerRequest), formatRatioSig(float64(noop.CPUVsNone))
			}
			if okC {
				row[4], row[5] = FormatNumber(chain.CPUMicrosPerRequest), formatRatioSig(float64(chain.CPUVsNone))
				row[6] = formatSignedMicros(float64(chain.CPUOverheadMicros))
				row[7], row[8] = FormatNumber(chain.RequestsPerSec), FormatMicros(chain.P99Micros)
			}
			t.Rows = append(t.Rows, row)
		}
	}
	return t
}

// noneSpread says how far the none runs of this run spread: the noise
// every ratio to none carries.
func (r *PluginsReport) noneSpread() string {
	var cpu []float64
	for _, m := range r.Measurements {
		if m.Route == RouteNone {
			cpu = append(cpu, m.CPUMicrosPerRequest)
		}
	}
	if len(cpu) < 2 {
		return ""
	}
	return fmt.Sprintf("The %d `none` runs of this run ranged from %s to %s CPU-µs/req (median %s): the noise floor of every ratio.",
		len(cpu), FormatNumber(slices.Min(cpu)), FormatNumber(slices.Max(cpu)), FormatNumber(median(cpu)))
}

// formatSignedMicros renders a difference of µs with its sign: "+8.54 µs",
// "−0.07 µs".
func formatSignedMicros(us float64) string {
	switch {
	case math.IsNaN(us) || math.IsInf(us, 0):
		return "n/a"
	case us < 0:
		return "−" + FormatNumber(-us) + " µs"
	}
	return "+" + FormatNumber(us) + " µs"
}

// targetTable states each target, the measured figure and whether it is
// met.
func (r *PluginsReport) targetTable() *Table {
	t := &Table{Columns: []string{"target", "route", "measured", "met"},
		Align: []Align{AlignLeft, AlignLeft, AlignRight, AlignLeft}}
	for _, x := range r.Targets {
		met, route, val := "-", x.Route, "not measured"
		if x.Met != nil && *x.Met {
			met = "**met**"
		} else if x.Met != nil {
			met = "not met"
		}
		if route == "" {
			route = "-"
		} else {
			val = formatRatioSig(float64(x.Value))
		}
		if x.Note != "" {
			met += " (" + x.Note + ")"
		}
		t.Rows = append(t.Rows, []string{x.Name, route, val, met})
	}
	return t
}

// routeTable is the per-route median table.
func (r *PluginsReport) routeTable() *Table {
	t := &Table{
		Columns: []string{"route", "plugins", "req/s", "p50", "p99", "gateway CPU-µs/req", "CPU vs none", "req/s vs none"},
		Align:   []Align{AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	for _, s := range r.Medians {
		plugins := strings.Join(s.Plugins, ", ")
		if plugins == "" {
			plugins = "-"
		}
		t.Rows = append(t.Rows, []string{
			s.Route, plugins,
			FormatNumber(s.RequestsPerSec),
			FormatMicros(s.P50Micros),
			FormatMicros(s.P99Micros),
			FormatNumber(s.CPUMicrosPerRequest),
			formatRatioSig(float64(s.CPUVsNone)),
			formatRatioSig(float64(s.RequestsPerSecVsNone)),
		})
	}
	return t
}

// instantiateTable is the cold-start table, one row per plugin.
func (r *PluginsReport) instantiateTable() *Table {
	t := &Table{
		Columns: []string{"plugin", "lang", "mode", "startup n", "startup p50", "startup mean", "load n", "load p50", "load p99", "load mean"},
		Align:   []Align{AlignLeft, AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	us := func(f Float) string { return formatMicrosPrecise(float64(f)) }
	for _, s := range r.Instantiate {
		t.Rows = append(t.Rows, []string{
			s.Plugin, s.Language, s.Mode,
			strconv.FormatUint(s.Startup.Count, 10), us(s.Startup.P50Micros), us(s.Startup.MeanMicros),
			strconv.FormatUint(s.Load.Count, 10), us(s.Load.P50Micros), us(s.Load.P99Micros), us(s.Load.MeanMicros),
		})
	}
	return t
}

// formatMicrosPrecise is FormatMicros with one decimal below a millisecond:
// a WAT instance starts in a few µs.
func formatMicrosPrecise(us float64) string {
	if us >= 0 && us < 100 {
		return strconv.FormatFloat(us, 'f', 1, 64) + "µs"
	}
	return FormatMicros(us)
}

// formatRatioSig is FormatRatio keeping three significant digits below 1,
// where the ratios of this benchmark span four orders of magnitude: a WAT
// cold start is "0.00760x" a Go one, not "0.01x".
func formatRatioSig(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) || r == 0 || math.Abs(r) >= 1 {
		return FormatRatio(r)
	}
	prec := min(2-int(math.Floor(math.Log10(math.Abs(r)))), 12)
	return strconv.FormatFloat(r, 'f', prec, 64) + "x"
}

// ratioTable lists the named ratios.
func (r *PluginsReport) ratioTable() *Table {
	t := &Table{Columns: []string{"ratio", "value"}, Align: []Align{AlignLeft, AlignRight}}
	for _, x := range r.Ratios {
		t.Rows = append(t.Rows, []string{x.Name, formatRatioSig(float64(x.Value))})
	}
	return t
}

// chart is the SVG: req/s and gateway CPU-µs/req per route.
func (r *PluginsReport) chart() *BarChart {
	return loadChart("Plugin overhead", r.Runs, r.Threads, r.Connections, r.Duration, "gateway CPU-µs per request (lower is better)",
		r.Medians, func(s PluginSummary) (string, float64, float64) {
			return s.Route, float64(s.RequestsPerSec), float64(s.CPUMicrosPerRequest)
		})
}

// markdown renders plugins-latest.md.
func (r *PluginsReport) markdown(jsonName string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Plugin benchmark\n\n")
	fmt.Fprintf(&b, "%s. Medians of %d runs of `wrk --latency -t%d -c%d -d%s` per route on loopback; rounds interleave the routes. "+
		"One gateway (GOMAXPROCS=1) serves every route to the same upstream.\n\n",
		r.Started.Format("2006-01-02 15:04:05 UTC"), r.Runs, r.Threads, r.Connections, r.Duration)
	writeMachineMarkdown(&b, r.Machine, r.Pinning)
	if r.LoadAvgEnd != "" {
		fmt.Fprintf(&b, "- Load average at the end: %s. The machine is small and shared: absolute figures move between runs; "+
			"compare the ratios, measured side by side.\n", r.LoadAvgEnd)
	}
	fmt.Fprintf(&b, "- Gateway CPU-µs/req: user+system CPU of the gateway over the run, per completed request.\n")
	fmt.Fprintf(&b, "- Routes: `none` has no plugin; `noop` runs plugins/noop (Go: on_request only) from a pool; "+
		"`noop-wat` runs plugins/raw-wat (hand-written WAT: adds a header in on_request and in on_response); "+
		"`noop-fresh` and `wat-fresh` run the same modules with a new instance per request; "+
		"`auth+transform` chains jwt-auth (HS256), rewrite (path and headers) and json-transform (four ops on a %d-byte JSON response). "+
		"`noop-LANG` runs the no-op of the Rust, C or AssemblyScript SDK (its `examples/noop`: on_request only, where the SDK has one; `noop-wasmtime` is Go's), "+
		"`apikey+json[-LANG]` chains that language's api-key example (an X-Api-Key checked against one key) and json-transform example "+
		"(the same four ops; the route rewrites the path to the JSON); a `-wasmtime` suffix runs the route's plugins on wasmtime "+
		"(`engine: wasmtime`), the others on wazero. Every plugin is pooled unless the route says fresh.\n",
		len(UpstreamJSON))
	fmt.Fprintf(&b, "- CPU vs none, req/s vs none, over none: medians over the rounds of the route's figure against the mean of the `none` runs "+
		"just before and after it (a round runs `none` first, after every %d routes, and last), so that a slow drift of the machine's load "+
		"does not show as a plugin's cost. %s\n", noneEvery, r.noneSpread())
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- Note: %s\n", n)
	}
	b.WriteString("\n")
	_ = r.routeTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n## Language × engine\n\nGateway CPU-µs per request (medians) and its ratio to the `none` runs next to it; "+
		"over none: the chain's own CPU-µs per request (its figure minus that of the `none` runs next to it). "+
		"On a busy machine every figure grows, none's too, and none's the most: the ratios shrink toward 1, "+
		"so read them with the load averages above.\n\n")
	_ = r.matrixTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n## Targets\n\n")
	_ = r.targetTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n## Instantiate\n")
	fmt.Fprintf(&b, "\nInstantiate (cold start: instantiation, `_initialize`, `on_init`) from the gateway's `%s`. "+
		"Startup instances are made one after another before any traffic; load instances while wrk ran "+
		"(fresh: one per request; pooled: pool growth, if any). Times are wall time, so under load they include "+
		"waiting for the gateway's one CPU. p50 and p99 are interpolated within the histogram's buckets; the mean is exact.\n\n",
		instantiateMetric)
	_ = r.instantiateTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n## Ratios\n\n")
	_ = r.ratioTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n![requests/s and gateway CPU-µs per request](plugins-latest.svg)\n\n")
	fmt.Fprintf(&b, "Raw runs and machine details: [plugins-latest.json](plugins-latest.json). %s\n\n"+
		"Reproduce (after `bash plugins/build.sh` and `make examples`):\n\n```sh\n%s\n```\n", rawDataNote(jsonName), r.Command)
	return b.Bytes()
}

// write stores the JSON, markdown and SVG reports in dir.
func (r *PluginsReport) write(dir string) error {
	r.Files = reportFiles(dir, "plugins", r.Started)
	return writeReports(r.Files, r, r.markdown(filepath.Base(r.Files[0])), r.chart())
}

// Histogram is one series of a Prometheus histogram, as the text exposition
// format shows it.
type Histogram struct {
	// Labels are the series' labels, without "le".
	Labels map[string]string
	// Buckets are cumulative, by ascending upper bound; the last is +Inf.
	Buckets []Bucket
	// Count and Sum are the _count and _sum samples.
	Count, Sum float64
}

// Bucket is one cumulative histogram bucket.
type Bucket struct {
	UpperBound float64 // the "le" label
	Count      float64 // observations <= UpperBound
}

// Mean is Sum/Count, NaN for an empty histogram.
func (h *Histogram) Mean() float64 {
	if h.Count == 0 {
		return math.NaN()
	}
	return h.Sum / h.Count
}

// Quantile estimates the q-quantile (0 <= q <= 1) as Prometheus's
// histogram_quantile does: it finds the bucket holding the rank and
// interpolates linearly inside it, taking 0 as the lower bound of the first
// bucket (when its upper bound is positive) and returning the highest finite
// bound for a rank in the +Inf bucket. It returns NaN for an empty
// histogram, a q outside [0, 1], or buckets without a finite bound.
func (h *Histogram) Quantile(q float64) float64 {
	n := len(h.Buckets)
	if !(q >= 0 && q <= 1) || n < 2 || !math.IsInf(h.Buckets[n-1].UpperBound, 1) {
		return math.NaN()
	}
	total := h.Buckets[n-1].Count
	if !(total > 0) {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(n-1, func(i int) bool { return h.Buckets[i].Count >= rank })
	if b == n-1 {
		return h.Buckets[n-2].UpperBound
	}
	end := h.Buckets[b].UpperBound
	if b == 0 && end <= 0 {
		return end
	}
	start, count := 0.0, h.Buckets[b].Count
	if b > 0 {
		start = h.Buckets[b-1].UpperBound
		count -= h.Buckets[b-1].Count
		rank -= h.Buckets[b-1].Count
	}
	if count <= 0 {
		return start
	}
	return start + (end-start)*(rank/count)
}

// Sub returns h minus an earlier scrape of the same series: the
// observations made in between. The buckets must match.
func (h *Histogram) Sub(prev *Histogram) (Histogram, error) {
	if len(h.Buckets) != len(prev.Buckets) {
		return Histogram{}, fmt.Errorf("histogram: %d buckets, earlier %d", len(h.Buckets), len(prev.Buckets))
	}
	d := Histogram{Labels: h.Labels, Buckets: make([]Bucket, len(h.Buckets)),
		Count: h.Count - prev.Count, Sum: h.Sum - prev.Sum}
	for i, b := range h.Buckets {
		p := prev.Buckets[i]
		if b.UpperBound != p.UpperBound && !(math.IsInf(b.UpperBound, 1) && math.IsInf(p.UpperBound, 1)) {
			return Histogram{}, fmt.Errorf("histogram: bucket %d bound %v, earlier %v", i, b.UpperBound, p.UpperBound)
		}
		if b.Count < p.Count {
			return Histogram{}, fmt.Errorf("histogram: bucket le=%v went down from %v to %v (counter reset?)", b.UpperBound, p.Count, b.Count)
		}
		d.Buckets[i] = Bucket{UpperBound: b.UpperBound, Count: b.Count - p.Count}
	}
	if d.Count < 0 {
		return Histogram{}, fmt.Errorf("histogram: count went down from %v to %v (counter reset?)", prev.Count, h.Count)
	}
	return d, nil
}

// ParsePromHistograms returns the series of the histogram name in text, a
// Prometheus text exposition (format 0.0.4) as the gateway's admin /metrics
// serves it, in the order first seen. The exposition is parsed whole by
// expfmt, so a malformed line anywhere is an error; name must be declared a
// histogram (# TYPE), its buckets must not decrease, and the +Inf bucket, when
// given, must agree with _count. A name with no samples yields no series.
func ParsePromHistograms(text []byte, name string) ([]Histogram, error) {
	families, err := parseExposition(text)
	if err != nil {
		return nil, err
	}
	return histogramsOf(families, name)
}

// parseExposition parses a Prometheus text exposition into metric families.
func parseExposition(text []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return families, nil
}

// histogramsOf returns the series of the histogram family name.
func histogramsOf(families map[string]*dto.MetricFamily, name string) ([]Histogram, error) {
	mf := families[name]
	if mf == nil {
		if _, ok := families[name+"_bucket"]; ok {
			return nil, fmt.Errorf("metrics: %s_bucket samples without # TYPE %s histogram", name, name)
		}
		return nil, nil
	}
	if t := mf.GetType(); t != dto.MetricType_HISTOGRAM {
		return nil, fmt.Errorf("metrics: %s is a %s, not a histogram", name, strings.ToLower(t.String()))
	}
	out := make([]Histogram, 0, len(mf.GetMetric()))
	for _, m := range mf.GetMetric() {
		h, err := histogramOf(m)
		if err != nil {
			return nil, fmt.Errorf("metrics: %s%s: %w", name, seriesKeyOf(h.Labels), err)
		}
		out = append(out, h)
	}
	return out, nil
}

// histogramOf converts one classic histogram series and checks it. The
// +Inf bucket is the _count when the exposition leaves it out.
func histogramOf(m *dto.Metric) (Histogram, error) {
	h := Histogram{Labels: make(map[string]string, len(m.GetLabel()))}
	for _, l := range m.GetLabel() {
		h.Labels[l.GetName()] = l.GetValue()
	}
	ph := m.GetHistogram()
	if ph == nil {
		return h, errors.New("no histogram samples")
	}
	count, hasCount := float64(ph.GetSampleCount()), ph.SampleCount != nil
	if ph.SampleCountFloat != nil {
		count, hasCount = ph.GetSampleCountFloat(), true
	}
	h.Sum = ph.GetSampleSum()
	for _, b := range ph.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			c = b.GetCumulativeCountFloat()
		}
		h.Buckets = append(h.Buckets, Bucket{UpperBound: b.GetUpperBound(), Count: c})
	}
	n := len(h.Buckets)
	if n == 0 {
		return h, errors.New("no buckets")
	}
	sort.Slice(h.Buckets, func(i, j int) bool { return h.Buckets[i].UpperBound < h.Buckets[j].UpperBound })
	if !math.IsInf(h.Buckets[n-1].UpperBound, 1) {
		if !hasCount {
			return h, errors.New("no +Inf bucket and no _count")
		}
		h.Buckets = append(h.Buckets, Bucket{UpperBound: math.Inf(1), Count: count})
		n++
	} else if hasCount && count != h.Buckets[n-1].Count {
		return h, fmt.Errorf("_count %v differs from the +Inf bucket's %v", count, h.Buckets[n-1].Count)
	}
	for i, b := range h.Buckets {
		if math.IsNaN(b.UpperBound) {
			return h, errors.New("bucket with le=NaN")
		}
		if !(b.Count >= 0) || math.IsInf(b.Count, 0) {
			return h, fmt.Errorf("bucket le=%v: %v is not a count", b.UpperBound, b.Count)
		}
		if i == 0 {
			continue
		}
		if prev := h.Buckets[i-1]; b.UpperBound == prev.UpperBound {
			return h, fmt.Errorf("bucket le=%v repeated", b.UpperBound)
		} else if b.Count < prev.Count {
			return h, fmt.Errorf("bucket le=%v counts %v, fewer than le=%v", b.UpperBound, b.Count, prev.UpperBound)
		}
	}
	h.Count = h.Buckets[n-1].Count
	return h, nil
}

// seriesKeyOf renders labels canonically: {a="1",b="2"}, sorted by name.
func seriesKeyOf(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + strconv.Quote(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}
