package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
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
// every plugin language, engine and instance mode, what it costs to compile
// a module (with an empty and with a warm disk cache), to make an instance
// ready, to serve the first request on a new instance and a request on a
// warm pooled one, a whole request in the mode, and what an instance
// weighs. Each figure is a median and a p99 of many repetitions, and every
// ratio the report quotes divides figures measured side by side in the same
// run.

// Plugin languages, as the -langs flag names them.
const (
	LangGo   = "go"
	LangRust = "rust"
	LangC    = "c"
	LangAS   = "as" // AssemblyScript
	LangWAT  = "wat"
)

// coldLangs is every language, in report order.
var coldLangs = []string{LangGo, LangRust, LangC, LangAS, LangWAT}

// LanguageName is the report name of a language: "AssemblyScript" for
// "as".
func LanguageName(lang string) string {
	switch lang {
	case LangGo:
		return "Go"
	case LangRust:
		return "Rust"
	case LangC:
		return "C"
	case LangAS:
		return "AssemblyScript"
	case LangWAT:
		return "WAT"
	}
	return lang
}

// Engines of the cold-start benchmark.
const (
	// EngineWazero is wazero's optimizing compiler (wazero falls back to
	// its interpreter where it has no compiler).
	EngineWazero = "wazero"
	// EngineWasmtime is wasmtime (Cranelift), each instance's memory
	// mapped on its own.
	EngineWasmtime = "wasmtime"
	// EngineWasmtimePool is wasmtime with its pooling allocator
	// (wasm.Options.WasmtimePoolSlots): instances take a reserved slot.
	EngineWasmtimePool = "wasmtime-pool"
	// EngineWazeroInterp is wazero's interpreter.
	EngineWazeroInterp = "wazero-interp"
)

// coldEngines is every engine, in report order.
var coldEngines = []string{EngineWazero, EngineWasmtime, EngineWasmtimePool, EngineWazeroInterp}

func isWasmtime(engine string) bool { return engine == EngineWasmtime || engine == EngineWasmtimePool }

// Instance modes of the cold-start benchmark.
const (
	// ModePooled: instances made ready ahead and reused (wasm.ModePooled).
	ModePooled = "pooled"
	// ModeFresh: a new instance per request (wasm.ModeFresh).
	ModeFresh = "fresh"
	// ModeSnapshot: fresh mode on the module pre-initialized by Wizer
	// (wasm.Snapshot): each instance starts where _initialize left off.
	ModeSnapshot = "snapshot"
)

// coldModes is every mode, in report order.
var coldModes = []string{ModePooled, ModeFresh, ModeSnapshot}

// Defaults of ColdstartOptions, sized so that a full run (5 languages, 4
// engines, 3 modes) stays within a few minutes on 2 cores; the quick ones
// for a smoke run of seconds.
const (
	defaultColdReps        = 200
	defaultColdCompileReps = 8
	defaultColdInstances   = 16
	defaultColdBudget      = 6 * time.Second
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
	// coldBuildTimeout bounds `bash plugins/build.sh` and `bash
	// sdk/build-examples.sh` when modules are missing.
	coldBuildTimeout = 10 * time.Minute
	// coldPoolSpare is the wasmtime pool's slots beyond Instances: the
	// instances the other bindings of a measurement hold.
	coldPoolSpare = 8
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
	// PluginsDir holds the built Go and WAT plugins (default "plugins",
	// the repository's). Missing modules are built with PluginsDir/build.sh
	// when it exists.
	PluginsDir string
	// Root is the repository root, where the Rust, C and AssemblyScript
	// examples are built (sdk/build-examples.sh: `make examples`); default
	// the parent of PluginsDir. A language whose modules are missing, and
	// still missing after that script, is left out with a note.
	Root string
	// Langs selects the languages (default all, in the order of
	// coldLangs).
	Langs []string
	// Plugins selects plugins by name (ColdstartPlugins); default the
	// no-op of each selected language (ColdstartNoops).
	Plugins []string
	// Engines selects the engines (default all, in the order of
	// coldEngines). An engine this build lacks (wasmtime without cgo) is
	// left out with a note.
	Engines []string
	// Modes selects the instance modes (default all: pooled, fresh,
	// snapshot). Snapshot needs Wizer; without it the mode is left out
	// with a note.
	Modes []string
	// Wizer is the wizer binary for snapshot mode; default $WIZER, wizer
	// on PATH, or Root/bin/tools/node_modules/.bin/wizer (`make tools`).
	Wizer string
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
	// Budget bounds the time of one measurement (default 6s): it stops
	// early, after at least 3 repetitions, once its budget is spent, so a
	// slow cell (a Go plugin in the interpreter) keeps the run short.
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
	if o.Root == "" {
		o.Root = filepath.Join(o.PluginsDir, "..")
	}
	if len(o.Langs) == 0 {
		o.Langs = slices.Clone(coldLangs)
	}
	if len(o.Engines) == 0 {
		o.Engines = slices.Clone(coldEngines)
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
	for _, l := range o.Langs {
		if !slices.Contains(coldLangs, l) {
			return fmt.Errorf("unknown language %q (have %s)", l, strings.Join(coldLangs, ", "))
		}
	}
	for _, e := range o.Engines {
		if !slices.Contains(coldEngines, e) {
			return fmt.Errorf("unknown engine %q (have %s)", e, strings.Join(coldEngines, ", "))
		}
	}
	for _, m := range o.Modes {
		if !slices.Contains(coldModes, m) {
			hint := ""
			if m == "compiler" || m == "interpreter" {
				hint = "; wazero's compiler and interpreter are engines now: -engines wazero,wazero-interp"
			}
			return fmt.Errorf("unknown mode %q (have %s%s)", m, strings.Join(coldModes, ", "), hint)
		}
	}
	return nil
}

// Command returns the command line that reproduces a run with o (after
// defaults), with the flags ColdstartCommand defines.
func (o ColdstartOptions) Command() string {
	o = o.withDefaults()
	cmd := fmt.Sprintf("wasmgate bench coldstart -plugins %s -reps %d -compile-reps %d -instances %d -budget %s -out %s",
		o.PluginsDir, o.Reps, o.CompileReps, o.Instances, o.Budget, o.OutDir)
	if o.Root != filepath.Join(o.PluginsDir, "..") {
		cmd += " -root " + o.Root
	}
	for _, f := range []struct {
		flag      string
		got, all  []string
		omitEqual bool
	}{
		{"-langs", o.Langs, coldLangs, true},
		{"-engines", o.Engines, coldEngines, true},
		{"-modes", o.Modes, coldModes, true},
		{"-only", o.Plugins, nil, false},
	} {
		if len(f.got) > 0 && !(f.omitEqual && slices.Equal(f.got, f.all)) {
			cmd += " " + f.flag + " " + strings.Join(f.got, ",")
		}
	}
	if o.Wizer != "" {
		cmd += " -wizer " + o.Wizer
	}
	return cmd
}

// coldPlugin is one example plugin of the benchmark: its module, a config
// its on_init accepts, and a request (and upstream response) that takes
// its main path.
type coldPlugin struct {
	name string
	lang string
	// module is relative to the plugins directory, or to the repository
	// root when sdk is set (the Rust, C and AssemblyScript examples).
	module string
	sdk    bool
	config func(now time.Time) (any, error) // nil: no config
	// request fills the request (and the upstream's response, which
	// on_response sees) that every repetition starts from.
	request func(now time.Time, req *fasthttp.Request, resp *fasthttp.Response) error
	// outbound gives the binding an in-process upstream "svc" (aggregate).
	outbound bool
	// note says what a stand-in no-op does beyond nothing.
	note string
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

// pathRequest is a request for path with the JSON upstream answer.
func pathRequest(path string) func(time.Time, *fasthttp.Request, *fasthttp.Response) error {
	return func(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
		req.SetRequestURI(coldHost + path)
		jsonResponse(resp)
		return nil
	}
}

func apiKeyRequest(_ time.Time, req *fasthttp.Request, resp *fasthttp.Response) error {
	req.SetRequestURI(coldHost + "/api")
	req.Header.Set("X-Api-Key", coldAPIKey)
	jsonResponse(resp)
	return nil
}

// apiKeyConfig is a config every language's api-key example accepts.
var apiKeyConfig = map[string]any{"keys": []any{map[string]any{"consumer": "bench", "key": coldAPIKey}}}

// jsonTransformConfig is a config every language's json-transform example
// accepts: four ops on UpstreamJSON.
var jsonTransformConfig = map[string]any{
	"response": []any{
		map[string]any{"op": "remove", "path": "items.internal_id"},
		map[string]any{"op": "remove", "path": "user.internal_id"},
		map[string]any{"op": "rename", "path": "user.fullName", "to": "name"},
		map[string]any{"op": "add", "path": "meta.via", "value": "wasmgate"},
	},
	"statuses": []int{200},
}

// headersNote is what the SDK headers example does on every request,
// where it stands in for a missing no-op.
const headersNote = "it also counts each request in the key-value store and a metric, and sets 4 headers"

// sdkModule is where sdk/build-examples.sh puts the example name of lang.
func sdkModule(lang, name string) string {
	switch lang {
	case LangRust:
		return "sdk/rust/target/wasm32-wasi/release/examples/" + strings.ReplaceAll(name, "-", "_") + ".wasm"
	case LangC:
		return "bin/examples/c/" + strings.ReplaceAll(name, "-", "_") + ".wasm"
	default:
		return "sdk/assemblyscript/build/" + name + ".wasm"
	}
}

// sdkPlugins are the Rust, C and AssemblyScript examples the benchmark
// knows, named LANG-EXAMPLE.
func sdkPlugins() []coldPlugin {
	var ps []coldPlugin
	for _, lang := range []string{LangRust, LangC, LangAS} {
		p := func(name string, config any, req func(time.Time, *fasthttp.Request, *fasthttp.Response) error) coldPlugin {
			cp := coldPlugin{name: lang + "-" + name, lang: lang, module: sdkModule(lang, name), sdk: true, request: req}
			if config != nil {
				cp.config = fixedConfig(config)
			}
			return cp
		}
		headers := p("headers", nil, pathRequest("/"))
		headers.note = headersNote
		ps = append(ps,
			p("noop", nil, pathRequest("/")),
			headers,
			p("api-key", apiKeyConfig, apiKeyRequest),
			p("json-transform", jsonTransformConfig, pathRequest(UpstreamJSONPath)),
		)
	}
	return ps
}

// coldPlugins are the example plugins, in report order within a language.
var coldPlugins = append([]coldPlugin{
	{name: "noop", module: "noop/noop.wasm", lang: LangGo, request: pathRequest("/")},
	{name: "raw-wat", module: "raw-wat/plugin.wasm", lang: LangWAT, request: pathRequest("/raw-wat")},
	{name: "jwt-auth", module: "jwt-auth/jwt-auth.wasm", lang: LangGo,
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
	{name: "api-key", module: "api-key/api-key.wasm", lang: LangGo, config: fixedConfig(apiKeyConfig), request: apiKeyRequest},
	{name: "rewrite", module: "rewrite/rewrite.wasm", lang: LangGo,
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
	{name: "json-transform", module: "json-transform/json-transform.wasm", lang: LangGo,
		config: fixedConfig(jsonTransformConfig), request: pathRequest(UpstreamJSONPath)},
	{name: "aggregate", module: "aggregate/aggregate.wasm", lang: LangGo, outbound: true,
		config: fixedConfig(map[string]any{"parts": []any{
			map[string]any{"name": "feed", "url": "upstream://svc/feed"},
			map[string]any{"name": "profile", "url": "upstream://svc/profile"},
		}}),
		request: func(_ time.Time, req *fasthttp.Request, _ *fasthttp.Response) error {
			req.SetRequestURI(coldHost + "/feed")
			return nil
		}},
	{name: "client-shape", module: "client-shape/client-shape.wasm", lang: LangGo,
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
}, sdkPlugins()...)

// coldNoops are, per language, the plugins that stand for its no-op, in
// order of preference: the first one built is measured. The Rust SDK has
// no no-op example yet (a cdylib example needs an entry in
// sdk/rust/Cargo.toml), so its headers example stands in, with a note.
var coldNoops = map[string][]string{
	LangGo:   {"noop"},
	LangRust: {"rust-noop", "rust-headers"},
	LangC:    {"c-noop", "c-headers"},
	LangAS:   {"as-noop", "as-headers"},
	LangWAT:  {"raw-wat"},
}

// ColdstartPlugins returns the names of the plugins the cold-start
// benchmark knows, in report order.
func ColdstartPlugins() []string {
	names := make([]string, len(coldPlugins))
	for i, p := range coldPlugins {
		names[i] = p.name
	}
	return names
}

// ColdstartNoops returns the no-op plugin of each language, in language
// order, with the stand-ins used when the first choice is not built.
func ColdstartNoops() map[string][]string {
	m := make(map[string][]string, len(coldNoops))
	for k, v := range coldNoops {
		m[k] = slices.Clone(v)
	}
	return m
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

// coldQuiet discards the guests' output and the runtime's log.
var coldQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// coldRun is the state of one RunColdstart.
type coldRun struct {
	o       ColdstartOptions
	dir     string // the plugins directory, absolute
	root    string // the repository root, absolute
	tmp     string
	rep     *ColdstartReport
	wizer   string            // "": no snapshot mode
	snaps   map[string][]byte // snapshot modules by plugin, nil for a failed one
	engines []string          // the engines that run
	modes   []string          // the modes that run
}

// note records why something the run was asked for was left out.
func (c *coldRun) note(format string, args ...any) {
	n := fmt.Sprintf(format, args...)
	c.rep.Notes = append(c.rep.Notes, n)
	fmt.Fprintf(c.o.Progress, "coldstart: note: %s\n", n)
}

// RunColdstart measures, in process, the cold start of every selected
// plugin on every selected engine in every selected mode (see
// ColdstartResult), prints the tables to out, and writes
// coldstart-<UTC time>.json and .csv (with copies as coldstart-latest.json
// and .csv), coldstart-latest.md and coldstart-latest.svg to o.OutDir.
func RunColdstart(ctx context.Context, o ColdstartOptions, out io.Writer) (*ColdstartReport, error) {
	o = o.withDefaults()
	if out == nil {
		out = io.Discard
	}
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	c := &coldRun{o: o, snaps: map[string][]byte{}}
	var err error
	if c.dir, err = filepath.Abs(o.PluginsDir); err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	if c.root, err = filepath.Abs(o.Root); err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	c.rep = &ColdstartReport{
		Started:     time.Now().UTC(),
		Command:     o.Command(),
		Wazero:      wazeroVersion(c.dir),
		PluginsDir:  c.dir,
		Root:        c.root,
		Langs:       o.Langs,
		Reps:        o.Reps,
		CompileReps: o.CompileReps,
		Instances:   o.Instances,
		Budget:      o.Budget.String(),
		Notes:       []string{},
	}
	plugins, err := c.selectPlugins(ctx)
	if err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	c.selectEngines()
	c.selectModes(ctx)
	c.rep.Plugins, c.rep.Engines, c.rep.Modes = []string{}, c.engines, c.modes
	for _, p := range plugins {
		c.rep.Plugins = append(c.rep.Plugins, p.name)
	}
	if c.tmp, err = os.MkdirTemp("", "wasmgate-bench-coldstart-"); err != nil {
		return nil, fmt.Errorf("bench coldstart: %w", err)
	}
	defer os.RemoveAll(c.tmp)
	// The machine's load after the builds and snapshots above.
	c.rep.Machine = machineInfo(ctx, tools{}, clockTicks())

	fmt.Fprintf(o.Progress, "coldstart: %d plugins × %d engines × %d modes, %d reps (%d for compiles), %s budget per measurement; wazero %s; load average %s\n",
		len(plugins), len(c.engines), len(c.modes), o.Reps, o.CompileReps, o.Budget, c.rep.Wazero, c.rep.Machine.LoadAvg)
	total := len(plugins) * len(c.engines)
	for i, p := range plugins {
		code, err := os.ReadFile(c.modulePath(p))
		if err != nil {
			return nil, fmt.Errorf("bench coldstart: %w", err)
		}
		for j, engine := range c.engines {
			step := fmt.Sprintf("[%d/%d] %s %s", i*len(c.engines)+j+1, total, p.name, engine)
			res, err := c.measure(ctx, p, engine, code, step)
			if err != nil {
				return nil, fmt.Errorf("bench coldstart: %s (%s): %w", p.name, engine, err)
			}
			c.rep.Results = append(c.rep.Results, res...)
		}
	}
	c.rep.Elapsed = time.Since(c.rep.Started).Round(time.Millisecond).String()
	c.rep.analyze()
	for _, t := range []*Table{c.rep.mainTable(), c.rep.targetTable(), c.rep.ratioTable()} {
		if err := t.WriteText(out); err != nil {
			return c.rep, fmt.Errorf("bench coldstart: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, n := range c.rep.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	if err := c.rep.write(o.OutDir); err != nil {
		return c.rep, fmt.Errorf("bench coldstart: %w", err)
	}
	fmt.Fprintf(out, "reports: %s\nreproduce: %s\n", strings.Join(c.rep.Files, ", "), c.rep.Command)
	return c.rep, nil
}

func (c *coldRun) modulePath(p coldPlugin) string {
	if p.sdk {
		return filepath.Join(c.root, p.module)
	}
	return filepath.Join(c.dir, p.module)
}

func (c *coldRun) built(p coldPlugin) bool {
	fi, err := os.Stat(c.modulePath(p))
	return err == nil && !fi.IsDir() && fi.Size() > 0
}

// selectPlugins returns the plugins to measure: those asked for (of the
// selected languages), else each language's no-op. Missing Go and WAT
// modules are built with plugins/build.sh and are an error when still
// missing; missing SDK examples are built with sdk/build-examples.sh and
// leave their language out, with a note, when still missing (a toolchain
// this machine lacks).
func (c *coldRun) selectPlugins(ctx context.Context) ([]coldPlugin, error) {
	var want [][]coldPlugin // alternatives, first built wins
	if len(c.o.Plugins) > 0 {
		for _, name := range c.o.Plugins {
			p, _ := coldPluginByName(name)
			if slices.Contains(c.o.Langs, p.lang) {
				want = append(want, []coldPlugin{p})
			}
		}
	} else {
		for _, lang := range c.o.Langs {
			var alts []coldPlugin
			for _, name := range coldNoops[lang] {
				p, _ := coldPluginByName(name)
				alts = append(alts, p)
			}
			want = append(want, alts)
		}
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("no plugin of the languages %s among %s", strings.Join(c.o.Langs, ", "), strings.Join(c.o.Plugins, ", "))
	}
	var gowat []coldPlugin
	sdkMissing := false
	for _, alts := range want {
		if !alts[0].sdk {
			gowat = append(gowat, alts[0])
		} else if !slices.ContainsFunc(alts, c.built) {
			sdkMissing = true
		}
	}
	if err := ensureColdModules(ctx, c.dir, gowat, c.o.Progress); err != nil {
		return nil, err
	}
	if sdkMissing {
		c.buildExamples(ctx)
	}
	var plugins []coldPlugin
	for _, alts := range want {
		i := slices.IndexFunc(alts, c.built)
		switch {
		case i < 0:
			c.note("%s left out: %s not built (`make examples` builds it; it needs the language's toolchain)",
				LanguageName(alts[0].lang), c.modulePath(alts[0]))
			continue
		case i > 0:
			c.note("%s: %s is not built, so %s stands in for the no-op (%s)", LanguageName(alts[0].lang),
				alts[0].name, alts[i].name, alts[i].note)
		}
		plugins = append(plugins, alts[i])
	}
	if len(plugins) == 0 {
		return nil, errors.New("none of the selected plugins is built")
	}
	return plugins, nil
}

// buildExamples runs Root/sdk/build-examples.sh, the `make examples` step,
// when it exists; a failure (a missing toolchain) is a note, not an error.
func (c *coldRun) buildExamples(ctx context.Context) {
	script := filepath.Join(c.root, "sdk", "build-examples.sh")
	if _, err := os.Stat(script); err != nil {
		return
	}
	fmt.Fprintf(c.o.Progress, "coldstart: SDK examples missing; running bash %s\n", script)
	bctx, cancel := context.WithTimeout(ctx, coldBuildTimeout)
	defer cancel()
	cmd := exec.CommandContext(bctx, "bash", script)
	cmd.Dir = c.root
	cmd.Stdout, cmd.Stderr = c.o.Progress, c.o.Progress
	if err := cmd.Run(); err != nil {
		c.note("bash %s failed (%v): the examples it did not build are left out", script, err)
	}
}

// selectEngines drops the engines this build lacks.
func (c *coldRun) selectEngines() {
	for _, e := range c.o.Engines {
		if isWasmtime(e) && !wasm.WasmtimeAvailable() {
			c.note("%s left out: this binary has no wasmtime engine (built without cgo)", e)
			continue
		}
		c.engines = append(c.engines, e)
	}
}

// selectModes drops snapshot mode when there is no Wizer.
func (c *coldRun) selectModes(ctx context.Context) {
	for _, m := range c.o.Modes {
		if m == ModeSnapshot {
			w, err := c.findWizer(ctx)
			if err != nil {
				c.note("snapshot mode left out: %v", err)
				continue
			}
			c.wizer = w
			c.rep.Wizer = firstLine(ctx, w, "--version")
		}
		c.modes = append(c.modes, m)
	}
}

// findWizer returns the wizer binary: -wizer, $WIZER, on PATH, or the one
// `make tools` installs under the repository root.
func (c *coldRun) findWizer(ctx context.Context) (string, error) {
	cands := []string{c.o.Wizer, os.Getenv("WIZER")}
	if p, err := exec.LookPath("wizer"); err == nil {
		cands = append(cands, p)
	}
	local := filepath.Join(c.root, "bin", "tools", "node_modules", ".bin", "wizer")
	cands = append(cands, local)
	for _, p := range cands {
		if p == "" {
			continue
		}
		if err := exec.CommandContext(ctx, p, "--version").Run(); err == nil {
			return p, nil
		}
		if p == c.o.Wizer {
			return "", fmt.Errorf("wizer %s does not run", p)
		}
	}
	return "", fmt.Errorf("wizer not found (-wizer, $WIZER, PATH, %s): `make tools` installs it (npm install -g %s)", local, wasm.WizerPackage)
}

// snapshot returns the Wizer snapshot of p, made once per run; nil (and a
// note) when p cannot be pre-initialized.
func (c *coldRun) snapshot(p coldPlugin, code []byte) []byte {
	if s, ok := c.snaps[p.name]; ok {
		return s
	}
	c.snaps[p.name] = nil
	info, err := wasm.Inspect(code)
	if err != nil {
		c.note("snapshot of %s: %v", p.name, err)
		return nil
	}
	if !info.Reactor {
		c.note("no snapshot of %s (%s): it exports no _initialize, so its fresh instance already starts initialized", p.name, LanguageName(p.lang))
		return nil
	}
	out := filepath.Join(c.tmp, p.name+".snapshot.wasm")
	start := time.Now()
	if err := wasm.Snapshot(c.wizer, c.modulePath(p), out); err != nil {
		c.note("no snapshot of %s: %v", p.name, firstLineOf(err.Error()))
		return nil
	}
	s, err := os.ReadFile(out)
	if err != nil {
		c.note("no snapshot of %s: %v", p.name, err)
		return nil
	}
	fmt.Fprintf(c.o.Progress, "coldstart: snapshot of %s: %s → %s in %s\n", p.name,
		formatBytes(float64(len(code))), formatBytes(float64(len(s))), time.Since(start).Round(time.Millisecond))
	c.snaps[p.name] = s
	return s
}

func firstLineOf(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// measure measures p on engine in the run's modes: the module as built for
// pooled and fresh, its snapshot for snapshot mode.
func (c *coldRun) measure(ctx context.Context, p coldPlugin, engine string, code []byte, step string) ([]ColdstartResult, error) {
	var plain []string
	for _, m := range c.modes {
		if m != ModeSnapshot {
			plain = append(plain, m)
		}
	}
	var out []ColdstartResult
	if len(plain) > 0 {
		u := &coldUnit{o: c.o, p: p, engine: engine, tmp: c.tmp, step: step, module: c.modulePath(p)}
		res, err := u.run(ctx, code, plain)
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
	}
	if slices.Contains(c.modes, ModeSnapshot) {
		if snap := c.snapshot(p, code); snap != nil {
			u := &coldUnit{o: c.o, p: p, engine: engine, tmp: c.tmp, step: step + " snapshot", module: c.modulePath(p) + " (Wizer snapshot)"}
			res, err := u.run(ctx, snap, []string{ModeSnapshot})
			if err != nil {
				return nil, fmt.Errorf("snapshot: %w", err)
			}
			out = append(out, res...)
		}
	}
	return out, nil
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

// coldUnit measures one module (a plugin as built, or its snapshot) on one
// engine, in one or more modes.
type coldUnit struct {
	o      ColdstartOptions
	p      coldPlugin
	engine string
	tmp    string
	step   string
	module string // for the report

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

func (s *sampler) add(d time.Duration) { s.xs = append(s.xs, micros(d)) }

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// options are the runtime options of the unit's engine. The engine is the
// runtime's default one, made by NewRuntime: its setup (wasmtime's fuel
// calibration, the pool's reservation) is not part of a timed Load.
func (u *coldUnit) options(cacheDir string) wasm.Options {
	o := wasm.Options{CacheDir: cacheDir, Log: coldQuiet}
	switch u.engine {
	case EngineWazeroInterp:
		o.Interpreter = true
	case EngineWasmtime:
		o.DefaultEngine = wasm.EngineWasmtime
	case EngineWasmtimePool:
		o.DefaultEngine = wasm.EngineWasmtime
		o.WasmtimePoolSlots = uint32(u.o.Instances + coldPoolSpare)
	}
	return o
}

func (u *coldUnit) progress(what string, s ColdStats) {
	fmt.Fprintf(u.o.Progress, "coldstart: %s: %-22s n=%-4d median %s, p99 %s\n",
		u.step, what, s.N, formatMicrosPrecise(float64(s.Median)), formatMicrosPrecise(float64(s.P99)))
}

// run measures the module code in modes (pooled and fresh, or snapshot):
// compiles, instances side by side in every mode, a warm pooled request,
// and memory; one result per mode.
func (u *coldUnit) run(ctx context.Context, code []byte, modes []string) ([]ColdstartResult, error) {
	p := u.p
	base := ColdstartResult{Plugin: p.name, Language: LanguageName(p.lang), Module: u.module, Engine: u.engine}
	u.now = time.Now()
	if err := p.request(u.now, &u.req, &u.resp); err != nil {
		return nil, err
	}
	if err := u.makeEnv(); err != nil {
		return nil, err
	}

	// The last cold compile leaves its cache dir filled: the restarts load
	// from it, and so does the runtime of the instance measurements (it
	// would otherwise compile once more, seconds for a Go plugin).
	warm, err := os.MkdirTemp(u.tmp, "warm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(warm)
	if base.ColdCompile, err = u.coldCompile(ctx, code, warm, &base); err != nil {
		return nil, fmt.Errorf("cold compile: %w", err)
	}
	u.progress("cold compile", base.ColdCompile)
	if base.WarmCacheCompile, err = u.warmCacheCompile(ctx, code, warm); err != nil {
		return nil, fmt.Errorf("compile with a warm cache: %w", err)
	}
	u.progress("warm-cache compile", base.WarmCacheCompile)
	base.RestartVsCold = Float(div(float64(base.WarmCacheCompile.Median), float64(base.ColdCompile.Median)))

	r, err := wasm.NewRuntime(u.options(warm))
	if err != nil {
		return nil, err
	}
	defer r.Close(context.Background())
	mod, err := r.Load(ctx, p.name, code)
	if err != nil {
		return nil, err
	}
	defer mod.Release(context.Background())

	parts, raw, err := u.instances(ctx, mod, code, modes)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	warmReq, pooledReq, err := u.warmRequest(ctx, mod)
	if err != nil {
		return nil, fmt.Errorf("warm request: %w", err)
	}
	u.progress("warm request", warmReq)
	heap, rss, err := u.memory(ctx, mod)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	fmt.Fprintf(u.o.Progress, "coldstart: %s: memory per instance %s (Go heap %s), linear memory %s new\n",
		u.step, formatBytes(float64(rss)), formatBytes(float64(heap)), formatBytes(float64(parts[0].mem)))
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var out []ColdstartResult
	for _, pt := range parts {
		res := base
		res.Mode = pt.mode
		res.Instantiate, res.FirstRequest = coldStats(pt.inst), coldStats(pt.first)
		res.WarmRequest = warmReq
		res.Request = coldStats(pt.total)
		if pt.mode == ModePooled {
			// A pooled request checks out a warm instance; the pool makes
			// new ones only at startup and when it grows.
			res.Request = pooledReq
		}
		if pt.mode != ModePooled && raw != nil {
			res.RawInstantiate, res.RawError = coldStats(raw.xs), raw.err
			res.InstantiateVsRaw = Float(div(float64(res.Instantiate.Median), float64(res.RawInstantiate.Median)))
		} else {
			res.RawInstantiate, res.InstantiateVsRaw = coldStats(nil), Float(math.NaN())
		}
		res.MemoryBytes, res.MemoryAfterRequestBytes = pt.mem, pt.memAfter
		res.HeapPerInstanceBytes, res.RSSPerInstanceBytes = heap, rss
		res.FirstVsWarm = Float(div(float64(res.FirstRequest.Median), float64(res.WarmRequest.Median)))
		res.Size, res.SHA256 = len(code), mod.Info().SHA256
		out = append(out, res)
	}
	return out, nil
}

// makeEnv builds the binding's environment as the gateway does: config,
// KV store, metrics, log budget and, for aggregate, an in-process upstream.
func (u *coldUnit) makeEnv() error {
	env := &abi.Env{Plugin: u.p.name, Route: "bench", Log: coldQuiet,
		KV:      abi.NewKV(0, 0),
		LogRate: abi.NewRateLimitedLogs(coldQuiet, u.p.name, 0, 0)}
	vecs, err := abi.NewMetricVecs(nil)
	if err != nil {
		return err
	}
	env.Metrics = abi.NewPluginMetrics(u.p.name, vecs)
	if u.p.config != nil {
		c, err := u.p.config(u.now)
		if err != nil {
			return err
		}
		if env.Config, err = json.Marshal(c); err != nil {
			return err
		}
	}
	if u.p.outbound {
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
	u.env = env
	return nil
}

// coldCompile times Runtime.Load on new runtimes with empty cache dirs,
// and leaves the cache of the last one in warm.
func (u *coldUnit) coldCompile(ctx context.Context, code []byte, warm string, res *ColdstartResult) (ColdStats, error) {
	s := newSampler(u.o.CompileReps, u.o.Budget)
	for s.more(ctx) {
		dir, err := os.MkdirTemp(u.tmp, "cold-")
		if err != nil {
			return ColdStats{}, err
		}
		info, d, err := u.load(ctx, code, dir)
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
		res.Runtime, res.Interruption = info.Engine, info.Interruption
	}
	return coldStats(s.xs), ctx.Err()
}

// warmCacheCompile times Runtime.Load on new runtimes sharing the cache
// dir a cold compile filled: a gateway restart.
func (u *coldUnit) warmCacheCompile(ctx context.Context, code []byte, dir string) (ColdStats, error) {
	s := newSampler(u.o.CompileReps, u.o.Budget)
	for s.more(ctx) {
		_, d, err := u.load(ctx, code, dir)
		if err != nil {
			return ColdStats{}, err
		}
		s.add(d)
	}
	return coldStats(s.xs), ctx.Err()
}

// load makes a runtime on cacheDir and times the Load of the module.
func (u *coldUnit) load(ctx context.Context, code []byte, cacheDir string) (wasm.ModuleInfo, time.Duration, error) {
	r, err := wasm.NewRuntime(u.options(cacheDir))
	if err != nil {
		return wasm.ModuleInfo{}, 0, err
	}
	start := time.Now()
	mod, err := r.Load(ctx, u.p.name, code)
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
func (u *coldUnit) reset() {
	u.req.CopyTo(&u.workReq)
	u.resp.CopyTo(&u.workResp)
}

var coldScope = &abi.Scope{Client: []byte("127.0.0.1")}

// serve runs the hooks of one request on inst: on_request, then
// on_response unless the plugin answered.
func (u *coldUnit) serve(inst *wasm.Instance) error {
	rc, err := inst.OnRequest(&u.workReq, &u.workResp, coldScope)
	if err != nil {
		return err
	}
	if rc == abi.Continue {
		return inst.OnResponse(&u.workReq, &u.workResp, coldScope)
	}
	return nil
}

func (u *coldUnit) bind(ctx context.Context, mod *wasm.Module, cfg wasm.BindingConfig) (*wasm.Binding, error) {
	cfg.PoolMin, cfg.QuarantineAfter = 1, -1
	cfg.CallTimeout, cfg.InitTimeout, cfg.AcquireTimeout = coldCallTimeout, coldInitTimeout, coldInitTimeout
	return mod.Bind(ctx, u.env, cfg)
}

// coldPart is one mode of the instance measurement: its binding and
// samples.
type coldPart struct {
	mode               string
	b                  *wasm.Binding
	inst, first, total []float64
	mem, memAfter      uint32
}

// rawSamples are wazero's raw InstantiateModule times.
type rawSamples struct {
	xs  []float64
	err string
}

// instances times, in one loop so that machine noise spreads over all of
// them, a new instance ready in each mode and its first request: fresh
// (and snapshot) through a fresh-mode binding, pooled through a
// pooled-mode binding that recycles every instance after one request, so
// that each Acquire makes the instance a pool makes when it grows; and, on
// wazero, wazero's raw InstantiateModule of the same bytes.
func (u *coldUnit) instances(ctx context.Context, mod *wasm.Module, code []byte, modes []string) ([]*coldPart, *rawSamples, error) {
	var parts []*coldPart
	defer func() {
		for _, pt := range parts {
			_ = pt.b.Close(context.Background())
		}
	}()
	for _, m := range modes {
		cfg := wasm.BindingConfig{Mode: wasm.ModeFresh, PoolMax: 1}
		if m == ModePooled {
			cfg = wasm.BindingConfig{Mode: wasm.ModePooled, PoolMax: 1, MaxRequestsPerInstance: 1}
		}
		b, err := u.bind(ctx, mod, cfg)
		if err != nil {
			return nil, nil, err
		}
		parts = append(parts, &coldPart{mode: m, b: b})
	}
	var raw *rawInstantiator
	var rawS *rawSamples
	if !isWasmtime(u.engine) && slices.ContainsFunc(modes, func(m string) bool { return m != ModePooled }) {
		rawS = &rawSamples{}
		var err error
		if raw, err = newRawInstantiator(ctx, code, u.engine == EngineWazeroInterp, mod.Info().Reactor); err != nil {
			rawS.err = err.Error()
		} else {
			defer raw.close()
		}
	}
	// One untimed round first: it hands out the instance a pooled Bind
	// makes ahead, and faults in the code paths.
	for _, pt := range parts {
		if err := u.cycle(ctx, pt, false); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", pt.mode, err)
		}
	}
	// Each round starts with the next step: the collection of what one
	// step leaves behind falls on each of the others in turn, not always
	// on the same one.
	steps := make([]func() error, 0, len(parts)+1)
	for _, pt := range parts {
		steps = append(steps, func() error {
			if err := u.cycle(ctx, pt, true); err != nil {
				return fmt.Errorf("%s: %w", pt.mode, err)
			}
			return nil
		})
	}
	if raw != nil {
		steps = append(steps, func() error {
			if raw == nil {
				return nil
			}
			d, err := raw.instantiate(ctx)
			if err != nil {
				rawS.err = err.Error()
				raw.close()
				raw = nil
				return nil
			}
			rawS.xs = append(rawS.xs, micros(d))
			return nil
		})
	}
	s := newSampler(u.o.Reps, u.o.Budget)
	for round := 0; s.more(ctx); round++ {
		start := time.Now()
		for i := range steps {
			if err := steps[(i+round)%len(steps)](); err != nil {
				return nil, nil, err
			}
		}
		s.add(time.Since(start))
	}
	for _, pt := range parts {
		u.progress(pt.mode+" instantiate", coldStats(pt.inst))
		u.progress(pt.mode+" first request", coldStats(pt.first))
	}
	if rawS != nil && len(rawS.xs) > 0 {
		u.progress("raw instantiate", coldStats(rawS.xs))
	}
	return parts, rawS, ctx.Err()
}

// cycle is one request on a new instance of pt's binding: Acquire (a new
// instance), the hooks, Release (which closes it).
func (u *coldUnit) cycle(ctx context.Context, pt *coldPart, timed bool) error {
	u.reset()
	t0 := time.Now()
	in, err := pt.b.Acquire(ctx)
	t1 := time.Now()
	if err != nil {
		return err
	}
	mem := in.MemorySize()
	err = u.serve(in)
	t2 := time.Now()
	memAfter := in.MemorySize()
	pt.b.Release(in, err != nil)
	t3 := time.Now()
	if err != nil {
		return fmt.Errorf("first request: %w", err)
	}
	if timed {
		if len(pt.inst) == 0 {
			pt.mem, pt.memAfter = mem, memAfter
		}
		pt.inst = append(pt.inst, micros(t1.Sub(t0)))
		pt.first = append(pt.first, micros(t2.Sub(t1)))
		pt.total = append(pt.total, micros(t3.Sub(t0)))
	}
	return nil
}

// warmRequest times, on a pooled instance that served coldWarmup requests
// before, the hooks of a request (warm) and the whole request: checkout,
// hooks and return (pooled).
func (u *coldUnit) warmRequest(ctx context.Context, mod *wasm.Module) (warm, pooled ColdStats, err error) {
	b, err := u.bind(ctx, mod, wasm.BindingConfig{Mode: wasm.ModePooled, PoolMax: 1})
	if err != nil {
		return warm, pooled, err
	}
	defer b.Close(context.Background())
	one := func() (hooks, whole time.Duration, err error) {
		u.reset()
		t0 := time.Now()
		in, err := b.Acquire(ctx)
		if err != nil {
			return 0, 0, err
		}
		t1 := time.Now()
		err = u.serve(in)
		t2 := time.Now()
		b.Release(in, err != nil)
		return t2.Sub(t1), time.Since(t0), err
	}
	for range coldWarmup {
		if _, _, err := one(); err != nil {
			return warm, pooled, err
		}
	}
	s := newSampler(u.o.Reps, u.o.Budget)
	var whole []float64
	for s.more(ctx) {
		h, w, err := one()
		if err != nil {
			return warm, pooled, err
		}
		s.add(h)
		whole = append(whole, micros(w))
	}
	return coldStats(s.xs), coldStats(whole), ctx.Err()
}

// memory is what one live instance weighs: Instances instances made ready
// and held, the growth of the process's resident memory (linear memory,
// engine and runtime structures, on either engine) and of the Go heap, each
// divided by Instances. Both are read after a collection that returns free
// memory to the system.
func (u *coldUnit) memory(ctx context.Context, mod *wasm.Module) (heap, rss Float, err error) {
	n := u.o.Instances
	b, err := u.bind(ctx, mod, wasm.BindingConfig{Mode: wasm.ModeFresh, PoolMax: n})
	if err != nil {
		return 0, 0, err
	}
	defer b.Close(context.Background())
	held := make([]*wasm.Instance, 0, n)
	defer func() {
		for _, in := range held {
			b.Release(in, false)
		}
	}()
	heap0, rss0 := memNow()
	for range n {
		in, err := b.Acquire(ctx)
		if err != nil {
			return 0, 0, err
		}
		held = append(held, in)
	}
	heap1, rss1 := memNow()
	per := func(before, after uint64) Float {
		if after < before || before == 0 {
			// The collection freed more than the instances took (garbage
			// of earlier measurements), or no figure: none rather than a
			// negative one.
			return Float(math.NaN())
		}
		return Float((float64(after) - float64(before)) / float64(n))
	}
	return per(heap0, heap1), per(rss0, rss1), nil
}

// memNow is the live Go heap and the resident memory of the process (0
// where /proc/self/statm is missing), after a full collection that returns
// free memory to the system.
func memNow() (heap, rss uint64) {
	runtime.GC() // the first may leave finalizer-held objects for the second
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, rssBytes()
}

// rssBytes is the resident set size of this process, 0 when unknown.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
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
