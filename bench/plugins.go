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

// pluginRoutes is the order of routes inside a round.
var pluginRoutes = []string{RouteNone, RouteNoop, RouteNoopWAT, RouteNoopFresh, RouteWATFresh, RouteAuthTransform}

const (
	defaultPluginsDir = "plugins"

	// pooledStartup is the instances a pooled plugin makes before the
	// route takes traffic (min_instances): they are instantiated one after
	// the other with no load, so their instantiate times are the quiet
	// cold-start figure.
	pooledStartup = 8
	// pluginReadyTimeout covers compiling every module at startup: the
	// cache directory is new for each run, and GOMAXPROCS is 1.
	pluginReadyTimeout = 3 * time.Minute
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
)

// pluginDef is a plugin entry of the benchmark gateway's config.
type pluginDef struct {
	name     string // config name: the plugin label of its metrics
	module   string // the .wasm file, relative to the plugins directory
	language string // "Go" or "WAT"
	fresh    bool   // mode fresh, else pooled
	config   any    // plugin config, marshalled to JSON; nil for none
}

// pluginDefs are every plugin the benchmark can use, in config order.
var pluginDefs = []pluginDef{
	{name: "noop", module: "noop/noop.wasm", language: "Go"},
	{name: "noop-wat", module: "raw-wat/plugin.wasm", language: "WAT"},
	{name: "noop-fresh", module: "noop/noop.wasm", language: "Go", fresh: true},
	{name: "wat-fresh", module: "raw-wat/plugin.wasm", language: "WAT", fresh: true},
	{name: "jwt-auth", module: "jwt-auth/jwt-auth.wasm", language: "Go", config: map[string]any{
		"keys":           []any{map[string]any{"kid": "bench", "secret": benchJWTSecret}},
		"issuer":         "wasmgate-bench",
		"forward_claims": map[string]any{"sub": "X-User-Id"},
	}},
	{name: "rewrite", module: "rewrite/rewrite.wasm", language: "Go", config: map[string]any{
		"request": map[string]any{
			"path":    map[string]any{"prefix": authTransformPath, "replace": UpstreamJSONPath},
			"headers": map[string]any{"set": map[string]any{"X-Gateway": "wasmgate"}},
		},
		"response": map[string]any{
			"headers": map[string]any{"set": map[string]any{"X-Bench-Rewritten": "1"}},
		},
	}},
	{name: "json-transform", module: "json-transform/json-transform.wasm", language: "Go", config: map[string]any{
		"response": []any{
			map[string]any{"op": "remove", "path": "items.internal_id"},
			map[string]any{"op": "remove", "path": "user.internal_id"},
			map[string]any{"op": "rename", "path": "user.fullName", "to": "name"},
			map[string]any{"op": "add", "path": "meta.via", "value": "wasmgate"},
		},
		"statuses": []int{200},
	}},
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

// pluginRouteSpec is one route of the benchmark gateway.
type pluginRouteSpec struct {
	name   string   // report name
	config string   // config name (also the path, after a slash)
	chain  []string // plugin config names, in chain order
}

var pluginRouteSpecs = map[string]pluginRouteSpec{
	RouteNone:          {name: RouteNone, config: "none"},
	RouteNoop:          {name: RouteNoop, config: "noop", chain: []string{"noop"}},
	RouteNoopWAT:       {name: RouteNoopWAT, config: "noop-wat", chain: []string{"noop-wat"}},
	RouteNoopFresh:     {name: RouteNoopFresh, config: "noop-fresh", chain: []string{"noop-fresh"}},
	RouteWATFresh:      {name: RouteWATFresh, config: "wat-fresh", chain: []string{"wat-fresh"}},
	RouteAuthTransform: {name: RouteAuthTransform, config: "auth-transform", chain: []string{"jwt-auth", "rewrite", "json-transform"}},
}

func (r pluginRouteSpec) path() string { return "/" + r.config }

// PluginsOptions configures RunPlugins. Zero fields take the defaults below.
type PluginsOptions struct {
	LoadOptions // Connections also sizes the plugin pools, so a pooled plugin never makes a request wait
	// PluginsDir holds the built plugins (default "plugins", the
	// repository's, built by `bash plugins/build.sh`).
	PluginsDir string
	// Routes selects the routes to measure (default all, in the order of
	// the Route constants). RouteNone, the baseline, is always measured.
	Routes []string
}

// RegisterFlags binds o's tunables to flags on fs, with the defaults as flag
// defaults, so that a command line and Command agree on names.
func (o *PluginsOptions) RegisterFlags(fs *flag.FlagSet) {
	o.registerFlags(fs, "routes", "; plugin pools are sized to it")
	fs.StringVar(&o.PluginsDir, "plugins", defaultPluginsDir, "directory of the built plugins (bash plugins/build.sh)")
	fs.Func("routes", "comma-separated routes to measure (default all: "+strings.Join(pluginRoutes, ",")+"); none is always measured",
		func(s string) error {
			o.Routes = nil
			for r := range strings.SplitSeq(s, ",") {
				if r = strings.TrimSpace(r); r != "" {
					o.Routes = append(o.Routes, r)
				}
			}
			_, err := selectRoutes(o.Routes)
			return err
		})
}

// Command returns the command line that reproduces a run with o (after
// defaults), using the flags RegisterFlags defines.
func (o PluginsOptions) Command() string {
	o = o.withDefaults()
	cmd := fmt.Sprintf("wasmgate bench plugins %s -plugins %s -out %s", o.flags(), o.PluginsDir, o.OutDir)
	if routes, err := selectRoutes(o.Routes); err == nil && len(routes) < len(pluginRoutes) {
		cmd += " -routes " + strings.Join(routes, ",")
	}
	return cmd
}

func (o PluginsOptions) withDefaults() PluginsOptions {
	o.LoadOptions = o.LoadOptions.withDefaults()
	if o.PluginsDir == "" {
		o.PluginsDir = defaultPluginsDir
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
	// time, fresh vs pooled per-request cost.
	Ratios []NamedRatio `json:"ratios"`
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
	Route                       string   `json:"route"`
	Plugins                     []string `json:"plugins"`
	Runs                        int      `json:"runs"`
	RequestsPerSec              float64  `json:"requests_per_sec"`
	P50Micros                   float64  `json:"p50_us"`
	P99Micros                   float64  `json:"p99_us"`
	CPUMicrosPerRequest         float64  `json:"cpu_us_per_request"`
	UpstreamCPUMicrosPerRequest float64  `json:"upstream_cpu_us_per_request"`
	// CPUVsNone and RequestsPerSecVsNone divide this route's medians by
	// those of RouteNone.
	CPUVsNone            Float `json:"cpu_us_per_request_vs_none"`
	RequestsPerSecVsNone Float `json:"requests_per_sec_vs_none"`
	// CPUOverheadMicros is CPU-µs/req minus RouteNone's: what the chain
	// itself costs per request.
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
	if err := checkModules(pluginsDir, usedPlugins(routes)); err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
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
	}
	fmt.Fprintf(o.Progress, "bench: %s; pinning: %s; load average %s\n",
		rep.Machine.WrkVersion, rep.Pinning, rep.Machine.LoadAvg)

	tmp, err := os.MkdirTemp("", "wasmgate-bench-plugins-")
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	defer os.RemoveAll(tmp)

	env := &pluginsEnv{
		runner: runner{tools: t, pin: rep.Pinning, clk: float64(clk), conns: o.Connections,
			wrkTimeout: pluginWrkTimeout, settle: pluginSettle},
		o: o, routes: routes, urls: map[string]string{},
	}
	defer env.stopAll()
	token, err := benchJWT(rep.Started)
	if err != nil {
		return nil, fmt.Errorf("bench plugins: %w", err)
	}
	env.token = token
	if err := env.start(ctx, tmp, pluginsDir); err != nil {
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
	for round := 1; round <= o.Runs; round++ {
		for _, route := range routes {
			run, err := env.measure(ctx, round, route)
			if err != nil {
				return nil, fmt.Errorf("bench plugins: round %d, %s: %w", round, route, err)
			}
			rep.Measurements = append(rep.Measurements, run)
			fmt.Fprintf(o.Progress, "bench: round %d/%d %-14s %s req/s, p50 %s, p99 %s, %s CPU-µs/req\n",
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
	for _, t := range []*Table{rep.routeTable(), rep.instantiateTable(), rep.ratioTable()} {
		if err := t.WriteText(out); err != nil {
			return rep, fmt.Errorf("bench plugins: %w", err)
		}
		fmt.Fprintln(out)
	}
	if err := rep.write(o.OutDir); err != nil {
		return rep, fmt.Errorf("bench plugins: %w", err)
	}
	fmt.Fprintf(out, "reports: %s\nreproduce: %s\n", strings.Join(rep.Files, ", "), rep.Command)
	return rep, nil
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
	if route == RouteAuthTransform {
		return []string{"Authorization: Bearer " + e.token}
	}
	return nil
}

// start launches the upstream and the gateway and waits until both answer.
func (e *pluginsEnv) start(ctx context.Context, tmp, pluginsDir string) error {
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
		pluginsDir, e.routes, e.o.Connections)
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
// plugin's response header, the auth route's 401 without a token, and its
// rewritten and transformed JSON with one.
func (e *pluginsEnv) probe(ctx context.Context) error {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	defer client.CloseIdleConnections()
	for _, route := range e.routes {
		var hdr http.Header
		if route == RouteAuthTransform {
			hdr = http.Header{"Authorization": {"Bearer " + e.token}}
		}
		resp, body, err := fetch(ctx, client, e.urls[route], hdr, 64<<10)
		if err != nil {
			return fmt.Errorf("route %s: %w", route, err)
		}
		if err := checkRouteAnswer(route, resp.StatusCode, resp.Header, body); err != nil {
			return fmt.Errorf("route %s: %w", route, err)
		}
		if route == RouteAuthTransform {
			resp, body, err := fetch(ctx, client, e.urls[route], nil, 64<<10)
			if err != nil {
				return fmt.Errorf("route %s without a token: %w", route, err)
			}
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("route %s without a token: status %d, want 401 (is jwt-auth running?): %s",
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
	switch route {
	case RouteNoopWAT, RouteWATFresh:
		if h.Get("X-Raw-Wat-Response") != "1" {
			return errors.New("no X-Raw-Wat-Response header: the WAT plugin did not run")
		}
	case RouteAuthTransform:
		if h.Get("X-Bench-Rewritten") != "1" {
			return errors.New("no X-Bench-Rewritten header: the rewrite plugin's on_response did not run")
		}
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
	if string(body) != UpstreamBody {
		return fmt.Errorf("body %q is not the upstream's", lastBytes(body, 512))
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
// entries so that every plugin's metrics are its own. Pools hold conns
// instances at most, so pooled mode never waits for one.
func pluginsGatewayConfig(listen, admin, upstream, cacheDir, pluginsDir string, routes []string, conns int) ([]byte, error) {
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
			fmt.Fprintf(&b, "  - name: %q\n    module: %q\n", d.name, filepath.Join(pluginsDir, d.module))
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
		if len(spec.chain) > 0 {
			b.WriteString("    plugins:\n")
			for _, p := range spec.chain {
				fmt.Fprintf(&b, "      - name: %q\n", p)
			}
		}
	}
	return b.Bytes(), nil
}

// summarize fills Medians and Ratios from Measurements and Instantiate.
func (r *PluginsReport) summarize() {
	r.Medians = r.Medians[:0]
	for _, route := range r.Routes {
		var rps, p50, p99, cpu, upcpu []float64
		s := PluginSummary{Route: route, Plugins: pluginRouteSpecs[route].chain}
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
	none, haveNone := r.Summary(RouteNone)
	for i := range r.Medians {
		s := &r.Medians[i]
		s.CPUVsNone, s.RequestsPerSecVsNone, s.CPUOverheadMicros = Float(math.NaN()), Float(math.NaN()), Float(math.NaN())
		if haveNone {
			s.CPUVsNone = Float(div(s.CPUMicrosPerRequest, none.CPUMicrosPerRequest))
			s.RequestsPerSecVsNone = Float(div(s.RequestsPerSec, none.RequestsPerSec))
			s.CPUOverheadMicros = Float(s.CPUMicrosPerRequest - none.CPUMicrosPerRequest)
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
		"`auth+transform` chains jwt-auth (HS256), rewrite (path and headers) and json-transform (four ops on a %d-byte JSON response).\n\n",
		len(UpstreamJSON))
	_ = r.routeTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\nInstantiate (cold start: instantiation, `_initialize`, `on_init`) from the gateway's `%s`. "+
		"Startup instances are made one after another before any traffic; load instances while wrk ran "+
		"(fresh: one per request; pooled: pool growth, if any). Times are wall time, so under load they include "+
		"waiting for the gateway's one CPU. p50 and p99 are interpolated within the histogram's buckets; the mean is exact.\n\n",
		instantiateMetric)
	_ = r.instantiateTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n")
	_ = r.ratioTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n![requests/s and gateway CPU-µs per request](plugins-latest.svg)\n\n")
	fmt.Fprintf(&b, "Raw runs and machine details: [plugins-latest.json](plugins-latest.json). %s\n\n"+
		"Reproduce (after `bash plugins/build.sh`):\n\n```sh\n%s\n```\n", rawDataNote(jsonName), r.Command)
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
