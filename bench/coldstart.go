package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/wasm"
)

// The cold-start benchmark (RunColdstart, behind `wasmgate bench
// coldstart`) measures the plugin runtime in process, not the network: for
// every example plugin and wazero mode, what it costs to compile a module
// (with an empty and with a warm disk cache), to make an instance ready, to
// serve the first request on a new instance and a request on a warm pooled
// one, and what an instance weighs. Each figure is a median and a p99 of
// many repetitions, and the ratios bench/README.md quotes are computed from
// figures measured side by side in the same run.

// Modes of the cold-start benchmark: wazero's optimizing compiler and its
// interpreter.
const (
	ModeCompiler    = "compiler"
	ModeInterpreter = "interpreter"
)

// coldModes is every mode, in report order.
var coldModes = []string{ModeCompiler, ModeInterpreter}

// Defaults of ColdstartOptions, sized so that a full run (8 plugins, 2
// modes) stays within a few minutes on 2 cores; the quick ones for a smoke
// run of seconds.
const (
	defaultColdReps        = 200
	defaultColdCompileReps = 8
	defaultColdInstances   = 16
	defaultColdBudget      = 8 * time.Second
	quickColdReps          = 30
	quickColdCompileReps   = 3
	quickColdInstances     = 4
	quickColdBudget        = 2 * time.Second

	// coldMinReps is the fewest repetitions a measurement takes, whatever
	// its time budget: a median needs a few.
	coldMinReps = 3
	// coldWarmup requests run on the pooled instance before the warm
	// request is timed: they fault in the code paths and the guest heap.
	coldWarmup = 20
	// coldBuildTimeout bounds `bash plugins/build.sh` when modules are
	// missing.
	coldBuildTimeout = 10 * time.Minute
)

// Limits of the bindings the benchmark makes: far above anything a healthy
// run needs (a Go plugin's first request in the interpreter under the race
// detector takes tens of milliseconds), since a benchmark measures slowness
// and must not turn it into a failure.
const (
	coldCallTimeout = 10 * time.Second
	coldInitTimeout = 60 * time.Second
)

// ColdstartOptions configures RunColdstart. Zero fields take the defaults.
type ColdstartOptions struct {
	// PluginsDir holds the built example plugins (default "plugins", the
	// repository's). Missing modules are built with PluginsDir/build.sh
	// when it exists.
	PluginsDir string
	// Plugins selects the plugins (default: every example plugin, the WAT
	// one included, in the order of ColdstartPlugins).
	Plugins []string
	// Modes selects the wazero modes (default both: compiler, interpreter).
	Modes []string
	// Reps is the number of repetitions of the instantiate and request
	// measurements (default 200), the upper bound when Budget runs out
	// first.
	Reps int
	// CompileReps is the number of repetitions of the compile measurements
	// (default 8; each compiles a module from scratch, seconds for a Go
	// plugin).
	CompileReps int
	// Instances are held alive at once to measure the memory of one
	// instance (default 16).
	Instances int
	// Budget bounds the time of one measurement (default 8s): it stops
	// early, after at least 3 repetitions, once its budget is spent, so a
	// slow mode (a Go plugin in the interpreter) keeps the run short.
	Budget time.Duration
	// OutDir receives the CSV, JSON, markdown and SVG reports (default
	// "bench/results").
	OutDir string
	// Progress receives a line per measurement; nil discards them.
	Progress io.Writer
}

// quick returns the small-budget options of -quick, for fields left zero.
func (o ColdstartOptions) quick() ColdstartOptions {
	if o.Reps <= 0 {
		o.Reps = quickColdReps
	}
	if o.CompileReps <= 0 {
		o.CompileReps = quickColdCompileReps
	}
	if o.Instances <= 0 {
		o.Instances = quickColdInstances
	}
	if o.Budget <= 0 {
		o.Budget = quickColdBudget
	}
	return o
}

func (o ColdstartOptions) withDefaults() ColdstartOptions {
	if o.PluginsDir == "" {
		o.PluginsDir = defaultPluginsDir
	}
	if len(o.Plugins) == 0 {
		o.Plugins = ColdstartPlugins()
	}
	if len(o.Modes) == 0 {
		o.Modes = slices.Clone(coldModes)
	}
	if o.Reps <= 0 {
		o.Reps = defaultColdReps
	}
	if o.CompileReps <= 0 {
		o.CompileReps = defaultColdCompileReps
	}
	if o.Instances <= 0 {
		o.Instances = defaultColdInstances
	}
	if o.Budget <= 0 {
		o.Budget = defaultColdBudget
	}
	if o.OutDir == "" {
		o.OutDir = defaultOutDir
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

func (o ColdstartOptions) check() error {
	for _, p := range o.Plugins {
		if _, ok := coldPluginByName(p); !ok {
			return fmt.Errorf("unknown plugin %q (have %s)", p, strings.Join(ColdstartPlugins(), ", "))
		}
	}
	for _, m := range o.Modes {
		if !slices.Contains(coldModes, m) {
			return fmt.Errorf("unknown mode %q (have %s)", m, strings.Join(coldModes, ", "))
		}
	}
	return nil
}

// Command returns the command line that reproduces a run with o (after
// defaults), with the flags ColdstartCommand defines.
func (o ColdstartOptions) Command() string {
	o = o.withDefaults()
	cmd := fmt.Sprintf("wasmgate bench coldstart -plugins %s -modes %s -reps %d -compile-reps %d -instances %d -budget %s -out %s",
		o.PluginsDir, strings.Join(o.Modes, ","), o.Reps, o.CompileReps, o.Instances, o.Budget, o.OutDir)
	if !slices.Equal(o.Plugins, ColdstartPlugins()) {
		cmd += " -only " + strings.Join(o.Plugins, ",")
	}
	return cmd
}

// coldPlugin is one example plugin of the benchmark: its module, a config
// its on_init accepts, and a request (and upstream response) that takes
// its main path.
type coldPlugin struct {
	name     string
	module   string // relative to the plugins directory
	language string
	config   func(now time.Time) (any, error) // nil: no config
	// request fills the request (and the upstream's response, which
	// on_response sees) that every repetition starts from.
	request func(now time.Time, req *fasthttp.Request, resp *fasthttp.Response) error
	// outbound gives the binding an in-process upstream "svc" (aggregate).
	outbound bool
}

const (
	coldHost      = "http://bench.test"
	coldAPIKey    = "bench-api-key-0123456789abcdef"
	coldUserAgent = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
	coldPartJSON  = `{"ok":true,"n":1}`
)

// jsonResponse sets an upstream answer of UpstreamJSON.
func jsonResponse(resp *fasthttp.Response) {
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentType("application/json")
	resp.SetBodyString(UpstreamJSON)
}

func fixedConfig(v any) func(time.Time) (any, error) {
	return func(time.Time) (any, error) { return v, nil }
}

// coldPlugins are the example plugins, in report order.
var coldPlugins = []coldPlugin{
	{name: "noop", module: "noop/noop.wasm", language: "Go",
		request: func(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
			req.SetRequestURI(coldHost + "/")
			jsonResponse(resp)
			return nil
		}},
	{name: "raw-wat", module: "raw-wat/plugin.wasm", language: "WAT",
		request: func(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
			req.SetRequestURI(coldHost + "/raw-wat")
			jsonResponse(resp)
			return nil
		}},
	{name: "jwt-auth", module: "jwt-auth/jwt-auth.wasm", language: "Go",
		config: fixedConfig(map[string]any{
			"keys":           []any{map[string]any{"kid": "bench", "secret": benchJWTSecret}},
			"issuer":         "wasmgate-bench",
			"forward_claims": map[string]any{"sub": "X-User-Id"},
		}),
		request: func(now time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
			token, err := benchJWT(now)
			if err != nil {
				return err
			}
			req.SetRequestURI(coldHost + "/api")
			req.Header.Set("Authorization", "Bearer "+token)
			jsonResponse(resp)
			return nil
		}},
	{name: "api-key", module: "api-key/api-key.wasm", language: "Go",
		config: fixedConfig(map[string]any{"keys": []any{map[string]any{"consumer": "bench", "key": coldAPIKey}}}),
		request: func(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
			req.SetRequestURI(coldHost + "/api")
			req.Header.Set("X-Api-Key", coldAPIKey)
			jsonResponse(resp)
			return nil
		}},
	{name: "rewrite", module: "rewrite/rewrite.wasm", language: "Go",
		config: fixedConfig(map[string]any{
			"request": map[string]any{
				"path":    map[string]any{"prefix": "/api", "replace": "/v1"},
				"headers": map[string]any{"set": map[string]any{"X-Gateway": "wasmgate"}, "remove": []string{"Cookie"}},
			},
			"response": map[string]any{"headers": map[string]any{"set": map[string]any{"X-Bench-Rewritten": "1"}}},
		}),
		request: func(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
			req.SetRequestURI(coldHost + "/api/users/42")
			req.Header.Set("Cookie", "session=1")
			jsonResponse(resp)
			return nil
		}},
	{name: "json-transform", module: "json-transform/json-transform.wasm", language: "Go",
		config: fixedConfig(map[string]any{
			"response": []any{
				map[string]any{"op": "remove", "path": "items.internal_id"},
				map[string]any{"op": "remove", "path": "user.internal_id"},
				map[string]any{"op": "rename", "path": "user.fullName", "to": "name"},
				map[string]any{"op": "add", "path": "meta.via", "value": "wasmgate"},
			},
			"statuses": []int{200},
		}),
		request: func(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
			req.SetRequestURI(coldHost + UpstreamJSONPath)
			jsonResponse(resp)
			return nil
		}},
	{name: "aggregate", module: "aggregate/aggregate.wasm", language: "Go", outbound: true,
		config: fixedConfig(map[string]any{"parts": []any{
			map[string]any{"name": "feed", "url": "upstream://svc/feed"},
			map[string]any{"name": "profile", "url": "upstream://svc/profile"},
		}}),
		request: func(_ time.Time, req *fasthttp.Request, _ *fasthttp.Response) error {
			req.SetRequestURI(coldHost + "/feed")
			return nil
		}},
	{name: "client-shape", module: "client-shape/client-shape.wasm", language: "Go",
		config: fixedConfig(map[string]any{"profiles": map[string]any{
			"mobile": map[string]any{"fields": []string{"user", "items.id", "items.name"}},
			"web":    map[string]any{},
		}}),
		request: func(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
			req.SetRequestURI(coldHost + UpstreamJSONPath)
			req.Header.Set("User-Agent", coldUserAgent)
			jsonResponse(resp)
			return nil
		}},
}

// ColdstartPlugins returns the names of the example plugins the cold-start
// benchmark knows, in report order.
func ColdstartPlugins() []string {
	names := make([]string, len(coldPlugins))
	for i, p := range coldPlugins {
		names[i] = p.name
	}
	return names
}

func coldPluginByName(name string) (coldPlugin, bool) {
	for _, p := range coldPlugins {
		if p.name == name {
			return p, true
		}
	}
	return coldPlugin{}, false
}

// ColdStats summarizes the repetitions of one measurement, in microseconds
// (or bytes, for memory). P99 is the nearest-rank percentile: with fewer
// than 100 repetitions it is the maximum.
type ColdStats struct {
	N      int   `json:"n"`
	Median Float `json:"median"`
	P99    Float `json:"p99"`
	Mean   Float `json:"mean"`
	Min    Float `json:"min"`
	Max    Float `json:"max"`
}

// coldStats summarizes xs; all NaN for none.
func coldStats(xs []float64) ColdStats {
	if len(xs) == 0 {
		nan := Float(math.NaN())
		return ColdStats{Median: nan, P99: nan, Mean: nan, Min: nan, Max: nan}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	rank := int(math.Ceil(0.99*float64(len(s)))) - 1
	return ColdStats{
		N:      len(s),
		Median: Float(median(s)),
		P99:    Float(s[max(rank, 0)]),
		Mean:   Float(sum / float64(len(s))),
		Min:    Float(s[0]),
		Max:    Float(s[len(s)-1]),
	}
}

// ColdstartResult is every measurement of one plugin in one mode. Times
// are in microseconds.
type ColdstartResult struct {
	Plugin   string `json:"plugin"`
	Language string `json:"language"`
	Module   string `json:"module"`
	Size     int    `json:"size_bytes"`
	SHA256   string `json:"sha256"`
	Mode     string `json:"mode"`
	// Engine is the engine that ran: "wazero-compiler" or
	// "wazero-interpreter" (the compiler mode falls back to the
	// interpreter where wazero has no compiler).
	Engine string `json:"engine"`
	// Interruption is how deadlines stop the module (ModuleInfo).
	Interruption string `json:"interruption"`
	// ColdCompile is Runtime.Load (validation, instrumentation, compile)
	// on a new runtime with an empty disk cache: a first start.
	ColdCompile ColdStats `json:"cold_compile_us"`
	// WarmCacheCompile is the same on a new runtime whose disk cache holds
	// the module: a restart.
	WarmCacheCompile ColdStats `json:"warm_cache_compile_us"`
	// Instantiate is a fresh-mode Binding.Acquire: a new instance made
	// ready (instantiation, _initialize, on_init with the config).
	Instantiate ColdStats `json:"instantiate_us"`
	// RawInstantiate is wazero's own Runtime.InstantiateModule of the same
	// bytes compiled in a plain runtime, running _initialize for a reactor
	// as wazero's start function: no sandbox, no hook, no pool.
	RawInstantiate ColdStats `json:"raw_instantiate_us"`
	// RawError is why RawInstantiate could not be measured, if it could not.
	RawError string `json:"raw_error,omitempty"`
	// FirstRequest is on_request (and on_response when the request goes
	// on) on an instance made just before: the first request it serves.
	FirstRequest ColdStats `json:"first_request_us"`
	// WarmRequest is the same on a pooled instance that served requests
	// before.
	WarmRequest ColdStats `json:"warm_request_us"`
	// MemoryBytes is a new instance's linear memory; MemoryAfterRequestBytes
	// the same after its first request.
	MemoryBytes             uint32 `json:"memory_bytes"`
	MemoryAfterRequestBytes uint32 `json:"memory_after_request_bytes"`
	// HeapPerInstanceBytes is the growth of the Go heap (after a GC) per
	// instance while Instances instances are alive: linear memory plus the
	// engine's and the runtime's own structures.
	HeapPerInstanceBytes Float `json:"heap_per_instance_bytes"`
	// The ratios of medians: WarmCacheCompile ÷ ColdCompile (a restart),
	// Instantiate ÷ RawInstantiate (the runtime's overhead over wazero),
	// FirstRequest ÷ WarmRequest (what a new instance costs its first
	// request).
	RestartVsCold    Float `json:"restart_vs_cold_compile"`
	InstantiateVsRaw Float `json:"instantiate_vs_raw"`
	FirstVsWarm      Float `json:"first_vs_warm_request"`
}

// ColdstartRatio is one headline ratio with its target.
type ColdstartRatio struct {
	Name   string `json:"name"`
	Plugin string `json:"plugin"`
	Mode   string `json:"mode"`
	Value  Float  `json:"value"`
	// Target is the ratio the issue asks for ("<= 1.5x"); empty when none.
	Target string `json:"target,omitempty"`
	// Met says whether Value is within Target; absent without a target or
	// a value.
	Met *bool `json:"met,omitempty"`
}

// ColdstartReport is the outcome of RunColdstart; also the JSON written to
// OutDir.
type ColdstartReport struct {
	Started     time.Time   `json:"started"`
	Command     string      `json:"command"`
	Machine     MachineInfo `json:"machine"`
	Wazero      string      `json:"wazero_version"`
	PluginsDir  string      `json:"plugins_dir"`
	Plugins     []string    `json:"plugins"`
	Modes       []string    `json:"modes"`
	Reps        int         `json:"reps"`
	CompileReps int         `json:"compile_reps"`
	Instances   int         `json:"instances"`
	Budget      string      `json:"budget"`
	Elapsed     string      `json:"elapsed"`
	// Results has one entry per plugin and mode, plugins outer.
	Results []ColdstartResult `json:"results"`
	// Ratios are the headline figures: raw-wat instantiate vs wazero's
	// InstantiateModule (target ≤ 1.5×), restart with a warm disk cache vs
	// cold compile per plugin (target ≤ 0.1×), first request on a fresh
	// instance vs a warm pooled one per plugin.
	Ratios []ColdstartRatio `json:"ratios"`
	// Files are the reports written: the timestamped JSON and CSV, then
	// coldstart-latest.md, .svg, .json and .csv.
	Files []string `json:"files,omitempty"`
}

// Result returns the result of plugin in mode, or false.
func (r *ColdstartReport) Result(plugin, mode string) (ColdstartResult, bool) {
	for _, x := range r.Results {
		if x.Plugin == plugin && x.Mode == mode {
			return x, true
		}
	}
	return ColdstartResult{}, false
}

// coldQuiet discards the guests' output and the runtime's log.
var coldQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// RunColdstart measures, in process, the cold start of every selected
// plugin in every selected mode (see ColdstartResult), prints a table and
// the headline ratios to out, and writes coldstart-<UTC time>.json and
// .csv (with copies as coldstart-latest.json and .csv),
// coldstart-latest.md and coldstart-latest.svg to o.OutDir.
func RunColdstart(ctx context.Context, o ColdstartOptions, out io.Writer) (*ColdstartReport, error) {
	o = o.withDefaults()
	if out == nil {
		out = io.Discard
	}
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	dir, err := filepath.Abs(o.PluginsDir)
	if err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	var plugins []coldPlugin
	for _, name := range o.Plugins {
		p, _ := coldPluginByName(name)
		plugins = append(plugins, p)
	}
	if err := ensureColdModules(ctx, dir, plugins, o.Progress); err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	tmp, err := os.MkdirTemp("", "wasmgate-bench-coldstart-")
	if err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	defer os.RemoveAll(tmp)

	rep := &ColdstartReport{
		Started:     time.Now().UTC(),
		Command:     o.Command(),
		Machine:     machineInfo(ctx, tools{}, clockTicks()),
		Wazero:      wazeroVersion(dir),
		PluginsDir:  dir,
		Plugins:     o.Plugins,
		Modes:       o.Modes,
		Reps:        o.Reps,
		CompileReps: o.CompileReps,
		Instances:   o.Instances,
		Budget:      o.Budget.String(),
	}
	fmt.Fprintf(o.Progress, "coldstart: %d plugins × %d modes, %d reps (%d for compiles), %s budget per measurement; wazero %s; load average %s\n",
		len(plugins), len(o.Modes), o.Reps, o.CompileReps, o.Budget, rep.Wazero, rep.Machine.LoadAvg)
	total := len(plugins) * len(o.Modes)
	for i, p := range plugins {
		code, err := os.ReadFile(filepath.Join(dir, p.module))
		if err != nil {
			return nil, fmt.Errorf("bench coldstart: %w", err)
		}
		for j, mode := range o.Modes {
			step := fmt.Sprintf("[%d/%d] %s %s", i*len(o.Modes)+j+1, total, p.name, mode)
			m := &coldMeasure{o: o, p: p, mode: mode, code: code, tmp: tmp, step: step}
			res, err := m.run(ctx)
			if err != nil {
				return nil, fmt.Errorf("bench coldstart: %s (%s): %w", p.name, mode, err)
			}
			rep.Results = append(rep.Results, res)
		}
	}
	rep.Elapsed = time.Since(rep.Started).Round(time.Millisecond).String()
	rep.ratios()
	for _, t := range []*Table{rep.timeTable(), rep.memoryTable(), rep.ratioTable()} {
		if err := t.WriteText(out); err != nil {
			return rep, fmt.Errorf("bench coldstart: %w", err)
		}
		fmt.Fprintln(out)
	}
	if err := rep.write(o.OutDir); err != nil {
		return rep, fmt.Errorf("bench coldstart: %w", err)
	}
	fmt.Fprintf(out, "reports: %s\nreproduce: %s\n", strings.Join(rep.Files, ", "), rep.Command)
	return rep, nil
}

// ensureColdModules builds the plugins with dir/build.sh when a module is
// missing, and fails naming the build command when one still is.
func ensureColdModules(ctx context.Context, dir string, plugins []coldPlugin, progress io.Writer) error {
	missing := func() []string {
		var m []string
		for _, p := range plugins {
			path := filepath.Join(dir, p.module)
			if fi, err := os.Stat(path); err != nil || fi.IsDir() || fi.Size() == 0 {
				m = append(m, path)
			}
		}
		return m
	}
	m := missing()
	if len(m) == 0 {
		return nil
	}
	script := filepath.Join(dir, "build.sh")
	if _, err := os.Stat(script); err == nil {
		fmt.Fprintf(progress, "coldstart: %s missing; running bash %s\n", strings.Join(m, ", "), script)
		bctx, cancel := context.WithTimeout(ctx, coldBuildTimeout)
		defer cancel()
		cmd := exec.CommandContext(bctx, "bash", script)
		cmd.Stdout, cmd.Stderr = progress, progress
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building the plugins with bash %s: %w", script, err)
		}
		m = missing()
	}
	if len(m) > 0 {
		return fmt.Errorf("plugin modules not built: %s; build them with `bash plugins/build.sh` from the repository root, or pass -plugins DIR",
			strings.Join(m, ", "))
	}
	return nil
}

const wazeroModule = "github.com/tetratelabs/wazero"

// wazeroVersion returns the version of wazero built into this binary; a
// test binary records no dependencies, so then the one go.mod next to the
// plugins directory requires; else "unknown".
func wazeroVersion(pluginsDir string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == wazeroModule {
				return d.Version
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(pluginsDir, "..", "go.mod")); err == nil {
		for line := range strings.Lines(string(b)) {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == wazeroModule {
				return f[1]
			} else if len(f) >= 3 && f[0] == "require" && f[1] == wazeroModule {
				return f[2]
			}
		}
	}
	return "unknown"
}

// coldMeasure measures one plugin in one mode.
type coldMeasure struct {
	o    ColdstartOptions
	p    coldPlugin
	mode string
	code []byte
	tmp  string
	step string

	now      time.Time
	req      fasthttp.Request // the template of every repetition
	resp     fasthttp.Response
	workReq  fasthttp.Request
	workResp fasthttp.Response
	env      *abi.Env
}

// sampler runs a measurement's repetitions: up to reps, at least
// coldMinReps, and no more once budget has passed.
type sampler struct {
	reps   int
	budget time.Duration
	start  time.Time
	xs     []float64
}

func newSampler(reps int, budget time.Duration) *sampler {
	return &sampler{reps: reps, budget: budget, start: time.Now(), xs: make([]float64, 0, reps)}
}

func (s *sampler) more(ctx context.Context) bool {
	if ctx.Err() != nil || len(s.xs) >= s.reps {
		return false
	}
	return len(s.xs) < min(coldMinReps, s.reps) || time.Since(s.start) < s.budget
}

func (s *sampler) add(d time.Duration) { s.xs = append(s.xs, float64(d.Nanoseconds())/1e3) }

func (m *coldMeasure) options(cacheDir string) wasm.Options {
	return wasm.Options{CacheDir: cacheDir, Interpreter: m.mode == ModeInterpreter, Log: coldQuiet}
}

func (m *coldMeasure) progress(what string, s ColdStats) {
	fmt.Fprintf(m.o.Progress, "coldstart: %s: %-18s n=%-4d median %s, p99 %s\n",
		m.step, what, s.N, formatMicrosPrecise(float64(s.Median)), formatMicrosPrecise(float64(s.P99)))
}

func (m *coldMeasure) run(ctx context.Context) (ColdstartResult, error) {
	p := m.p
	res := ColdstartResult{Plugin: p.name, Language: p.language, Module: p.module, Mode: m.mode}
	m.now = time.Now()
	if err := p.request(m.now, &m.req, &m.resp); err != nil {
		return res, err
	}
	if err := m.makeEnv(); err != nil {
		return res, err
	}

	var err error
	// The last cold compile leaves its cache dir filled: the restarts load
	// from it, and so does the runtime of the instance measurements (it
	// would otherwise compile once more, seconds for a Go plugin).
	warm, err := os.MkdirTemp(m.tmp, "warm-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(warm)
	if res.ColdCompile, err = m.coldCompile(ctx, warm, &res); err != nil {
		return res, fmt.Errorf("cold compile: %w", err)
	}
	m.progress("cold compile", res.ColdCompile)
	if res.WarmCacheCompile, err = m.warmCacheCompile(ctx, warm); err != nil {
		return res, fmt.Errorf("compile with a warm cache: %w", err)
	}
	m.progress("warm-cache compile", res.WarmCacheCompile)

	r, err := wasm.NewRuntime(m.options(warm))
	if err != nil {
		return res, err
	}
	defer r.Close(context.Background())
	mod, err := r.Load(ctx, p.name, m.code)
	if err != nil {
		return res, err
	}
	defer mod.Release(context.Background())

	if err := m.instantiate(ctx, mod, &res); err != nil {
		return res, fmt.Errorf("instantiate: %w", err)
	}
	m.progress("instantiate", res.Instantiate)
	m.progress("raw instantiate", res.RawInstantiate)
	m.progress("first request", res.FirstRequest)
	if res.WarmRequest, err = m.warmRequest(ctx, mod); err != nil {
		return res, fmt.Errorf("warm request: %w", err)
	}
	m.progress("warm request", res.WarmRequest)
	if res.HeapPerInstanceBytes, err = m.heapPerInstance(ctx, mod); err != nil {
		return res, fmt.Errorf("memory: %w", err)
	}
	fmt.Fprintf(m.o.Progress, "coldstart: %s: linear memory %s new, %s after a request; Go heap %s per instance\n",
		m.step, formatBytes(float64(res.MemoryBytes)), formatBytes(float64(res.MemoryAfterRequestBytes)),
		formatBytes(float64(res.HeapPerInstanceBytes)))
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.RestartVsCold = Float(div(float64(res.WarmCacheCompile.Median), float64(res.ColdCompile.Median)))
	res.InstantiateVsRaw = Float(div(float64(res.Instantiate.Median), float64(res.RawInstantiate.Median)))
	res.FirstVsWarm = Float(div(float64(res.FirstRequest.Median), float64(res.WarmRequest.Median)))
	return res, nil
}

// makeEnv builds the binding's environment as the gateway does: config,
// KV store, metrics, log budget and, for aggregate, an in-process upstream.
func (m *coldMeasure) makeEnv() error {
	env := &abi.Env{Plugin: m.p.name, Route: "bench", Log: coldQuiet,
		KV:      abi.NewKV(0, 0),
		LogRate: abi.NewRateLimitedLogs(coldQuiet, m.p.name, 0, 0)}
	vecs, err := abi.NewMetricVecs(nil)
	if err != nil {
		return err
	}
	env.Metrics = abi.NewPluginMetrics(m.p.name, vecs)
	if m.p.config != nil {
		c, err := m.p.config(m.now)
		if err != nil {
			return err
		}
		if env.Config, err = json.Marshal(c); err != nil {
			return err
		}
	}
	if m.p.outbound {
		env.Out = &abi.Outbound{
			Upstreams: map[string]bool{"svc": true},
			Upstream: func(_ context.Context, _ string, _ *fasthttp.Request, resp *fasthttp.Response) error {
				resp.SetStatusCode(fasthttp.StatusOK)
				resp.Header.SetContentType("application/json")
				resp.SetBodyString(coldPartJSON)
				return nil
			},
		}
	}
	m.env = env
	return nil
}

// coldCompile times Runtime.Load on new runtimes with empty cache dirs,
// and leaves the cache of the last one in warm.
func (m *coldMeasure) coldCompile(ctx context.Context, warm string, res *ColdstartResult) (ColdStats, error) {
	s := newSampler(m.o.CompileReps, m.o.Budget)
	for s.more(ctx) {
		dir, err := os.MkdirTemp(m.tmp, "cold-")
		if err != nil {
			return ColdStats{}, err
		}
		info, d, err := m.load(ctx, dir)
		if err == nil {
			// The latest filled cache becomes warm.
			if err = os.RemoveAll(warm); err == nil {
				err = os.Rename(dir, warm)
			}
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return ColdStats{}, err
		}
		s.add(d)
		res.Engine, res.Interruption, res.Size, res.SHA256 = info.Engine, info.Interruption, info.Size, info.SHA256
	}
	return coldStats(s.xs), ctx.Err()
}

// warmCacheCompile times Runtime.Load on new runtimes sharing the cache
// dir a cold compile filled: a gateway restart.
func (m *coldMeasure) warmCacheCompile(ctx context.Context, dir string) (ColdStats, error) {
	s := newSampler(m.o.CompileReps, m.o.Budget)
	for s.more(ctx) {
		_, d, err := m.load(ctx, dir)
		if err != nil {
			return ColdStats{}, err
		}
		s.add(d)
	}
	return coldStats(s.xs), ctx.Err()
}

// load makes a runtime on cacheDir and times the Load of the module.
func (m *coldMeasure) load(ctx context.Context, cacheDir string) (wasm.ModuleInfo, time.Duration, error) {
	r, err := wasm.NewRuntime(m.options(cacheDir))
	if err != nil {
		return wasm.ModuleInfo{}, 0, err
	}
	start := time.Now()
	mod, err := r.Load(ctx, m.p.name, m.code)
	d := time.Since(start)
	if err != nil {
		_ = r.Close(context.Background())
		return wasm.ModuleInfo{}, 0, err
	}
	info := mod.Info()
	err = errors.Join(mod.Release(context.Background()), r.Close(context.Background()))
	return info, d, err
}

// reset copies the request template into the working request and
// response.
func (m *coldMeasure) reset() {
	m.req.CopyTo(&m.workReq)
	m.resp.CopyTo(&m.workResp)
}

var coldScope = &abi.Scope{Client: []byte("127.0.0.1")}

// serve runs the hooks of one request on inst: on_request, then
// on_response unless the plugin answered.
func (m *coldMeasure) serve(inst *wasm.Instance) error {
	rc, err := inst.OnRequest(&m.workReq, &m.workResp, coldScope)
	if err != nil {
		return err
	}
	if rc == abi.Continue {
		return inst.OnResponse(&m.workReq, &m.workResp, coldScope)
	}
	return nil
}

func (m *coldMeasure) bind(ctx context.Context, mod *wasm.Module, mode wasm.Mode, poolMax int) (*wasm.Binding, error) {
	return mod.Bind(ctx, m.env, wasm.BindingConfig{Mode: mode, PoolMax: poolMax, PoolMin: 1,
		CallTimeout: coldCallTimeout, InitTimeout: coldInitTimeout, AcquireTimeout: coldInitTimeout, QuarantineAfter: -1})
}

// instantiate times, alternating in one loop so that machine noise spreads
// over both: a fresh instance through a fresh-mode binding, then its first
// request; and wazero's raw InstantiateModule of the same bytes.
func (m *coldMeasure) instantiate(ctx context.Context, mod *wasm.Module, res *ColdstartResult) error {
	b, err := m.bind(ctx, mod, wasm.ModeFresh, 1)
	if err != nil {
		return err
	}
	defer b.Close(context.Background())
	raw, rawErr := newRawInstantiator(ctx, m.code, m.mode == ModeInterpreter, mod.Info().Reactor)
	if rawErr != nil {
		res.RawError = rawErr.Error()
	} else {
		defer raw.close()
	}
	inst, first, rawS := newSampler(m.o.Reps, m.o.Budget), newSampler(m.o.Reps, m.o.Budget), newSampler(m.o.Reps, m.o.Budget)
	for inst.more(ctx) {
		m.reset()
		start := time.Now()
		in, err := b.Acquire(ctx)
		made := time.Now()
		if err != nil {
			return err
		}
		if len(inst.xs) == 0 {
			res.MemoryBytes = in.MemorySize()
		}
		err = m.serve(in)
		done := time.Now()
		if len(inst.xs) == 0 {
			res.MemoryAfterRequestBytes = in.MemorySize()
		}
		b.Release(in, err != nil)
		if err != nil {
			return fmt.Errorf("first request: %w", err)
		}
		inst.add(made.Sub(start))
		first.add(done.Sub(made))
		if raw != nil {
			d, err := raw.instantiate(ctx)
			if err != nil {
				res.RawError = err.Error()
				raw.close()
				raw = nil
				continue
			}
			rawS.add(d)
		}
	}
	res.Instantiate, res.FirstRequest, res.RawInstantiate = coldStats(inst.xs), coldStats(first.xs), coldStats(rawS.xs)
	return ctx.Err()
}

// warmRequest times the hooks of a request on a pooled instance that
// served coldWarmup requests before.
func (m *coldMeasure) warmRequest(ctx context.Context, mod *wasm.Module) (ColdStats, error) {
	b, err := m.bind(ctx, mod, wasm.ModePooled, 1)
	if err != nil {
		return ColdStats{}, err
	}
	defer b.Close(context.Background())
	one := func() (time.Duration, error) {
		m.reset()
		in, err := b.Acquire(ctx)
		if err != nil {
			return 0, err
		}
		start := time.Now()
		err = m.serve(in)
		d := time.Since(start)
		b.Release(in, err != nil)
		return d, err
	}
	for range coldWarmup {
		if _, err := one(); err != nil {
			return ColdStats{}, err
		}
	}
	s := newSampler(m.o.Reps, m.o.Budget)
	for s.more(ctx) {
		d, err := one()
		if err != nil {
			return ColdStats{}, err
		}
		s.add(d)
	}
	return coldStats(s.xs), ctx.Err()
}

// heapPerInstance is the Go heap growth per live instance: Instances
// instances made ready and held, measured after a GC on each side.
func (m *coldMeasure) heapPerInstance(ctx context.Context, mod *wasm.Module) (Float, error) {
	n := m.o.Instances
	b, err := m.bind(ctx, mod, wasm.ModeFresh, n)
	if err != nil {
		return 0, err
	}
	defer b.Close(context.Background())
	held := make([]*wasm.Instance, 0, n)
	defer func() {
		for _, in := range held {
			b.Release(in, false)
		}
	}()
	before := heapAfterGC()
	for range n {
		in, err := b.Acquire(ctx)
		if err != nil {
			return 0, err
		}
		held = append(held, in)
	}
	after := heapAfterGC()
	if after < before {
		// The collection freed more than the instances took (garbage of
		// earlier measurements): no figure rather than a negative one.
		return Float(math.NaN()), nil
	}
	return Float((float64(after) - float64(before)) / float64(n)), nil
}

// heapAfterGC is the live Go heap after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC() // the first may leave finalizer-held objects for the second
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// rawInstantiator is the baseline of the instantiate ratio: the module in
// a plain wazero runtime of the same mode, with the host modules it
// imports (host functions that trap if called: instantiation alone must
// not call them), instantiated with wazero's defaults.
type rawInstantiator struct {
	rt  wazero.Runtime
	cm  wazero.CompiledModule
	cfg wazero.ModuleConfig
}

func newRawInstantiator(ctx context.Context, code []byte, interpreter, reactor bool) (*rawInstantiator, error) {
	cfg := wazero.NewRuntimeConfigCompiler()
	if interpreter {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	r := &rawInstantiator{rt: rt, cfg: wazero.NewModuleConfig().WithName("")}
	if reactor {
		r.cfg = r.cfg.WithStartFunctions("_initialize")
	}
	hb := rt.NewHostModuleBuilder(abi.ModuleName)
	for _, f := range abi.Functions() {
		name := f.Name
		hb.NewFunctionBuilder().
			WithGoFunction(api.GoFunc(func(context.Context, []uint64) {
				panic("wasmgate." + name + " called during a raw instantiation")
			}), rawTypes(f.Params), rawTypes(f.Results)).
			Export(name)
	}
	if _, err := hb.Instantiate(ctx); err != nil {
		r.close()
		return nil, fmt.Errorf("raw wazero: %w", err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		r.close()
		return nil, fmt.Errorf("raw wazero: %w", err)
	}
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		r.close()
		return nil, fmt.Errorf("raw wazero: %w", err)
	}
	r.cm = cm
	return r, nil
}

func rawTypes(ts []abi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		switch t {
		case abi.I64:
			out[i] = api.ValueTypeI64
		case abi.F64:
			out[i] = api.ValueTypeF64
		default:
			out[i] = api.ValueTypeI32
		}
	}
	return out
}

// instantiate times one InstantiateModule; the Close is not timed, as the
// runtime's Acquire does not include one either.
func (r *rawInstantiator) instantiate(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	mod, err := r.rt.InstantiateModule(ctx, r.cm, r.cfg)
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("raw wazero InstantiateModule: %w", err)
	}
	return d, mod.Close(ctx)
}

func (r *rawInstantiator) close() { _ = r.rt.Close(context.Background()) }

// Headline ratio names and targets.
const (
	RatioInstantiateVsRaw = "instantiate ÷ wazero InstantiateModule"
	RatioRestartVsCold    = "restart (warm disk cache) ÷ cold compile"
	RatioFirstVsWarm      = "first request on a fresh instance ÷ warm pooled request"
)

// ratios fills Ratios from Results: the instantiate ratio of the WAT
// plugin, the restart ratio of every plugin in compiler mode (the
// interpreter keeps no compiled code on disk), and the first-request ratio
// of every plugin, in every mode measured.
func (r *ColdstartReport) ratios() {
	r.Ratios = r.Ratios[:0]
	add := func(name string, x ColdstartResult, v Float, target float64) {
		cr := ColdstartRatio{Name: name, Plugin: x.Plugin, Mode: x.Mode, Value: v}
		if !math.IsNaN(target) {
			cr.Target = "<= " + FormatRatio(target)
			if f := float64(v); !math.IsNaN(f) && !math.IsInf(f, 0) {
				met := f <= target
				cr.Met = &met
			}
		}
		r.Ratios = append(r.Ratios, cr)
	}
	for _, x := range r.Results {
		if x.Language == "WAT" {
			add(RatioInstantiateVsRaw, x, x.InstantiateVsRaw, 1.5)
		}
	}
	for _, x := range r.Results {
		if x.Mode == ModeCompiler {
			add(RatioRestartVsCold, x, x.RestartVsCold, 0.1)
		}
	}
	for _, x := range r.Results {
		add(RatioFirstVsWarm, x, x.FirstVsWarm, math.NaN())
	}
}

// timeTable is the medians and p99s of every timing.
func (r *ColdstartReport) timeTable() *Table {
	t := &Table{
		Columns: []string{"plugin", "mode", "cold compile", "warm-cache compile", "instantiate p50", "p99",
			"raw wazero p50", "first req p50", "p99", "warm req p50", "p99"},
		Align: []Align{AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight,
			AlignRight, AlignRight, AlignRight, AlignRight},
	}
	us := func(f Float) string { return formatMicrosPrecise(float64(f)) }
	for _, x := range r.Results {
		t.Rows = append(t.Rows, []string{x.Plugin, x.Mode,
			us(x.ColdCompile.Median), us(x.WarmCacheCompile.Median),
			us(x.Instantiate.Median), us(x.Instantiate.P99), us(x.RawInstantiate.Median),
			us(x.FirstRequest.Median), us(x.FirstRequest.P99),
			us(x.WarmRequest.Median), us(x.WarmRequest.P99)})
	}
	return t
}

// memoryTable is the per-plugin ratios and the memory of an instance.
func (r *ColdstartReport) memoryTable() *Table {
	t := &Table{
		Columns: []string{"plugin", "mode", "size", "restart ÷ cold", "inst ÷ raw", "first ÷ warm",
			"linear memory", "after 1st req", "Go heap/instance", "n (inst, compile)"},
		Align: []Align{AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight,
			AlignRight, AlignRight, AlignRight},
	}
	for _, x := range r.Results {
		t.Rows = append(t.Rows, []string{x.Plugin, x.Mode, formatBytes(float64(x.Size)),
			FormatRatio(float64(x.RestartVsCold)), FormatRatio(float64(x.InstantiateVsRaw)), FormatRatio(float64(x.FirstVsWarm)),
			formatBytes(float64(x.MemoryBytes)), formatBytes(float64(x.MemoryAfterRequestBytes)),
			formatBytes(float64(x.HeapPerInstanceBytes)),
			strconv.Itoa(x.Instantiate.N) + ", " + strconv.Itoa(x.ColdCompile.N)})
	}
	return t
}

// ratioTable lists the headline ratios with their targets.
func (r *ColdstartReport) ratioTable() *Table {
	t := &Table{Columns: []string{"ratio", "plugin", "mode", "value", "target"},
		Align: []Align{AlignLeft, AlignLeft, AlignLeft, AlignRight, AlignLeft}}
	for _, x := range r.Ratios {
		target := "-"
		if x.Target != "" {
			target = x.Target
			if x.Met != nil && *x.Met {
				target += " (met)"
			} else if x.Met != nil {
				target += " (missed)"
			}
		}
		t.Rows = append(t.Rows, []string{x.Name, x.Plugin, x.Mode, FormatRatio(float64(x.Value)), target})
	}
	return t
}

// formatBytes renders a size with a binary unit: "571 B", "2.25 MiB".
func formatBytes(b float64) string {
	switch a := math.Abs(b); {
	case math.IsNaN(b) || math.IsInf(b, 0):
		return "n/a"
	case a < 1<<10:
		return strconv.FormatFloat(b, 'f', 0, 64) + " B"
	case a < 1<<20:
		return strconv.FormatFloat(b/(1<<10), 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(b/(1<<20), 'f', 2, 64) + " MiB"
	}
}

// chart is the SVG: one panel per measurement, one bar per plugin and mode.
func (r *ColdstartReport) chart() *BarChart {
	c := &BarChart{Title: "Plugin cold start: medians per plugin (/c: wazero compiler, /i: interpreter)"}
	series := []struct {
		name string
		of   func(ColdstartResult) float64
		unit func(float64) string
	}{
		{"cold compile (empty disk cache)", func(x ColdstartResult) float64 { return float64(x.ColdCompile.Median) }, formatMicrosPrecise},
		{"compile on restart (warm disk cache)", func(x ColdstartResult) float64 { return float64(x.WarmCacheCompile.Median) }, formatMicrosPrecise},
		{"instantiate (_initialize and on_init included)", func(x ColdstartResult) float64 { return float64(x.Instantiate.Median) }, formatMicrosPrecise},
		{"first request on a fresh instance", func(x ColdstartResult) float64 { return float64(x.FirstRequest.Median) }, formatMicrosPrecise},
		{"request on a warm pooled instance", func(x ColdstartResult) float64 { return float64(x.WarmRequest.Median) }, formatMicrosPrecise},
		{"Go heap per live instance", func(x ColdstartResult) float64 { return float64(x.HeapPerInstanceBytes) }, formatBytes},
	}
	for _, x := range r.Results {
		c.Groups = append(c.Groups, x.Plugin+"/"+x.Mode[:1])
	}
	for _, s := range series {
		sv := Series{Name: s.name, Format: s.unit}
		for _, x := range r.Results {
			sv.Values = append(sv.Values, s.of(x))
		}
		c.Series = append(c.Series, sv)
	}
	return c
}

// markdown renders coldstart-latest.md.
func (r *ColdstartReport) markdown(jsonName string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Plugin cold-start benchmark\n\n")
	fmt.Fprintf(&b, "%s, in process (the runtime, not the network), wazero %s; %d repetitions of instantiate and requests, %d of compiles, each measurement capped at %s (after at least %d). Whole run: %s.\n\n",
		r.Started.Format("2006-01-02 15:04:05 UTC"), r.Wazero, r.Reps, r.CompileReps, r.Budget, coldMinReps, r.Elapsed)
	m := r.Machine
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs, Linux %s, %s; load average at start %s\n", m.CPUModel, m.NProc, m.Kernel, m.GoVersion, m.LoadAvg)
	fmt.Fprintf(&b, "- cold compile: `Runtime.Load` (validation, instrumentation, compile) on a new runtime with an empty disk cache; warm-cache compile: the same on a new runtime whose cache dir a previous runtime filled (a restart).\n")
	fmt.Fprintf(&b, "- instantiate: a fresh-mode `Binding.Acquire`, an instance made ready: instantiation, `_initialize`, `on_init` with the plugin's config. raw wazero: `InstantiateModule` of the same bytes in a plain wazero runtime of the same mode (with `_initialize` as start function for a Go reactor, but no `on_init`: for a Go plugin the ratio includes its config parsing).\n")
	fmt.Fprintf(&b, "- first request: `on_request` and `on_response` (unless the plugin answered) with a real `fasthttp.Request` on the instance made just before; warm request: the same on a pooled instance after %d requests.\n", coldWarmup)
	fmt.Fprintf(&b, "- memory: the linear memory of a new instance and after its first request; Go heap per instance: heap growth (after GC) with %d instances alive, divided by %d.\n\n", r.Instances, r.Instances)
	_ = r.timeTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n")
	_ = r.memoryTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\nHeadline ratios (medians measured in this run):\n\n")
	_ = r.ratioTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n![cold-start medians per plugin and mode](coldstart-latest.svg)\n\n")
	fmt.Fprintf(&b, "Every figure (median, p99, mean, min, max, n) and the machine: [coldstart-latest.json](coldstart-latest.json); the same as CSV: [coldstart-latest.csv](coldstart-latest.csv). %s\n\n"+
		"Reproduce (after `bash plugins/build.sh`):\n\n```sh\n%s\n```\n", rawDataNote(jsonName), r.Command)
	return b.Bytes()
}

// coldCSVHeader is the header of the CSV report: one row per plugin, mode
// and measure; times in µs, memory in bytes, ratios as factors.
var coldCSVHeader = []string{"plugin", "language", "mode", "engine", "measure", "unit", "n", "median", "p99", "mean", "min", "max"}

// csv renders the CSV report.
func (r *ColdstartReport) csv() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	num := func(f Float) string {
		v := float64(f)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	if err := w.Write(coldCSVHeader); err != nil {
		return nil, err
	}
	for _, x := range r.Results {
		head := []string{x.Plugin, x.Language, x.Mode, x.Engine}
		for _, s := range []struct {
			name string
			st   ColdStats
		}{
			{"cold_compile", x.ColdCompile}, {"warm_cache_compile", x.WarmCacheCompile},
			{"instantiate", x.Instantiate}, {"raw_instantiate", x.RawInstantiate},
			{"first_request", x.FirstRequest}, {"warm_request", x.WarmRequest},
		} {
			st := s.st
			_ = w.Write(append(slices.Clone(head), s.name, "us", strconv.Itoa(st.N),
				num(st.Median), num(st.P99), num(st.Mean), num(st.Min), num(st.Max)))
		}
		one := func(name, unit string, n int, v Float) {
			_ = w.Write(append(slices.Clone(head), name, unit, strconv.Itoa(n), num(v), "", "", "", ""))
		}
		one("memory", "bytes", 1, Float(x.MemoryBytes))
		one("memory_after_request", "bytes", 1, Float(x.MemoryAfterRequestBytes))
		one("heap_per_instance", "bytes", r.Instances, x.HeapPerInstanceBytes)
		one("restart_vs_cold_compile", "ratio", 1, x.RestartVsCold)
		one("instantiate_vs_raw", "ratio", 1, x.InstantiateVsRaw)
		one("first_vs_warm_request", "ratio", 1, x.FirstVsWarm)
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// write stores the reports in dir: the JSON, markdown and SVG through
// writeReports, then the CSV (timestamped and latest).
func (r *ColdstartReport) write(dir string) error {
	files := reportFiles(dir, "coldstart", r.Started)
	ts := strings.TrimSuffix(files[0], ".json") + ".csv"
	latest := filepath.Join(dir, "coldstart-latest.csv")
	r.Files = []string{files[0], ts, files[1], files[2], files[3], latest}
	if err := writeReports(files, r, r.markdown(filepath.Base(files[0])), r.chart()); err != nil {
		return err
	}
	c, err := r.csv()
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	for _, f := range []string{ts, latest} {
		if err := os.WriteFile(f, c, 0o644); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
	}
	return nil
}

// ColdstartCommand runs `wasmgate bench coldstart` with args (the flags
// after "coldstart") and returns the exit code: 0, 1 when the benchmark
// failed, 2 for bad flags.
func ColdstartCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench coldstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := ColdstartOptions{Progress: stderr}
	var quick bool
	fs.StringVar(&o.PluginsDir, "plugins", defaultPluginsDir, "directory of the built plugins (bash plugins/build.sh)")
	fs.Func("only", "comma-separated plugins to measure (default all: "+strings.Join(ColdstartPlugins(), ",")+")", func(s string) error {
		o.Plugins = splitList(s)
		return nil
	})
	fs.Func("modes", "comma-separated wazero modes (default "+strings.Join(coldModes, ",")+")", func(s string) error {
		o.Modes = splitList(s)
		return nil
	})
	fs.IntVar(&o.Reps, "reps", 0, fmt.Sprintf("repetitions of instantiate and request measurements (default %d; -quick %d)", defaultColdReps, quickColdReps))
	fs.IntVar(&o.CompileReps, "compile-reps", 0, fmt.Sprintf("repetitions of compile measurements (default %d; -quick %d)", defaultColdCompileReps, quickColdCompileReps))
	fs.IntVar(&o.Instances, "instances", 0, fmt.Sprintf("instances held to measure memory per instance (default %d; -quick %d)", defaultColdInstances, quickColdInstances))
	fs.DurationVar(&o.Budget, "budget", 0, fmt.Sprintf("time cap of one measurement (default %s; -quick %s)", defaultColdBudget, quickColdBudget))
	fs.StringVar(&o.OutDir, "out", defaultOutDir, "directory for the CSV, JSON, markdown and SVG reports")
	fs.BoolVar(&quick, "quick", false, "small budget: a smoke run of seconds per plugin")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wasmgate bench coldstart: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if quick {
		o = o.quick()
	}
	if err := o.withDefaults().check(); err != nil {
		fmt.Fprintf(stderr, "wasmgate bench coldstart: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if _, err := RunColdstart(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "wasmgate bench coldstart: %v\n", err)
		return 1
	}
	return 0
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
