package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ColdstartResult is every measurement of one plugin on one engine in one
// mode. Times are in microseconds.
type ColdstartResult struct {
	Plugin   string `json:"plugin"`
	Language string `json:"language"`
	// Module is the module's path; a snapshot's says so.
	Module string `json:"module"`
	Size   int    `json:"size_bytes"`
	SHA256 string `json:"sha256"`
	// Engine is the benchmark's engine (EngineWazero, ...); Runtime the
	// name the plugin runtime gives it ("wazero-compiler", "wasmtime").
	Engine  string `json:"engine"`
	Runtime string `json:"runtime_engine"`
	// Mode is ModePooled, ModeFresh or ModeSnapshot.
	Mode string `json:"mode"`
	// Interruption is how deadlines stop the module (ModuleInfo).
	Interruption string `json:"interruption"`
	// ColdCompile is Runtime.Load (validation, instrumentation, compile)
	// on a new runtime with an empty disk cache: a first start.
	ColdCompile ColdStats `json:"cold_compile_us"`
	// WarmCacheCompile is the same on a new runtime whose disk cache holds
	// the module: a restart.
	WarmCacheCompile ColdStats `json:"warm_cache_compile_us"`
	// Instantiate is a new instance made ready (instantiation,
	// _initialize, on_init with the config) by Binding.Acquire: of a
	// fresh-mode binding (fresh, snapshot), or of a pooled one that has no
	// idle instance (pooled: what the pool pays when it grows).
	Instantiate ColdStats `json:"instantiate_us"`
	// RawInstantiate is wazero's own Runtime.InstantiateModule of the same
	// bytes compiled in a plain runtime, running _initialize for a reactor
	// as wazero's start function: no sandbox, no hook, no pool. Fresh and
	// snapshot modes on wazero only.
	RawInstantiate ColdStats `json:"raw_instantiate_us"`
	// RawError is why RawInstantiate could not be measured, if it could not.
	RawError string `json:"raw_error,omitempty"`
	// FirstRequest is on_request (and on_response when the request goes
	// on) on an instance made just before: the first request it serves.
	FirstRequest ColdStats `json:"first_request_us"`
	// WarmRequest is the same on a pooled instance of the module that
	// served requests before.
	WarmRequest ColdStats `json:"warm_request_us"`
	// Request is a whole request in the mode, as the gateway serves it:
	// Acquire, the hooks, Release. Pooled: a warm instance checked out and
	// given back; fresh and snapshot: an instance made, used and closed.
	Request ColdStats `json:"request_us"`
	// MemoryBytes is a new instance's linear memory; MemoryAfterRequestBytes
	// the same after its first request.
	MemoryBytes             uint32 `json:"memory_bytes"`
	MemoryAfterRequestBytes uint32 `json:"memory_after_request_bytes"`
	// RSSPerInstanceBytes is the growth of the process's resident memory
	// per live instance while Instances instances are alive: the touched
	// linear memory plus the engine's and the runtime's structures, on
	// either engine. HeapPerInstanceBytes is the Go heap's share of it.
	RSSPerInstanceBytes  Float `json:"rss_per_instance_bytes"`
	HeapPerInstanceBytes Float `json:"heap_per_instance_bytes"`
	// The ratios of medians: WarmCacheCompile ÷ ColdCompile (a restart),
	// Instantiate ÷ RawInstantiate (the runtime's overhead over wazero),
	// FirstRequest ÷ WarmRequest (what a new instance costs its first
	// request).
	RestartVsCold    Float `json:"restart_vs_cold_compile"`
	InstantiateVsRaw Float `json:"instantiate_vs_raw"`
	FirstVsWarm      Float `json:"first_vs_warm_request"`
}

// ColdstartRatio is one ratio of two medians of the same run: the figure
// Of ÷ the figure To.
type ColdstartRatio struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	Of       string `json:"of"` // e.g. "wasmtime fresh 4.2µs"
	To       string `json:"to"`
	Value    Float  `json:"value"`
}

// ColdstartTarget is a target of issue 13 (or an older one) and the figure
// it is checked against, from this run.
type ColdstartTarget struct {
	Name     string `json:"name"`
	Language string `json:"language"`
	Plugin   string `json:"plugin,omitempty"`
	Engine   string `json:"engine"`
	Mode     string `json:"mode"`
	// Value and P99 are the measured figure (µs, or a ratio), NaN when
	// not measured; Limit is the target (NaN: a reference without one).
	Value Float  `json:"value"`
	P99   Float  `json:"p99,omitempty"`
	Limit Float  `json:"limit"`
	Unit  string `json:"unit"` // "us" or "ratio"
	// Met says whether Value is within Limit; absent without both.
	Met  *bool  `json:"met,omitempty"`
	Note string `json:"note,omitempty"`
}

// ColdstartReport is the outcome of RunColdstart; also the JSON written to
// OutDir.
type ColdstartReport struct {
	Started     time.Time   `json:"started"`
	Command     string      `json:"command"`
	Machine     MachineInfo `json:"machine"`
	Wazero      string      `json:"wazero_version"`
	Wizer       string      `json:"wizer_version,omitempty"`
	PluginsDir  string      `json:"plugins_dir"`
	Root        string      `json:"root"`
	Langs       []string    `json:"langs"`
	Plugins     []string    `json:"plugins"`
	Engines     []string    `json:"engines"`
	Modes       []string    `json:"modes"`
	Reps        int         `json:"reps"`
	CompileReps int         `json:"compile_reps"`
	Instances   int         `json:"instances"`
	Budget      string      `json:"budget"`
	Elapsed     string      `json:"elapsed"`
	// Results has one entry per plugin, engine and mode, in that order.
	Results []ColdstartResult `json:"results"`
	// Targets are issue 13's instantiate targets, and the WAT plugin's
	// instantiate vs wazero's (≤ 1.5×), against this run's figures.
	Targets []ColdstartTarget `json:"targets"`
	// Ratios divide figures of this run: engine by engine, snapshot by
	// fresh, fresh by pooled, language by Go.
	Ratios []ColdstartRatio `json:"ratios"`
	// Notes say what was asked for and left out, and why: a language
	// whose toolchain is missing, an engine this build lacks, snapshot
	// mode without Wizer.
	Notes []string `json:"notes"`
	// Files are the reports written: the timestamped JSON and CSV, then
	// coldstart-latest.md, .svg, .json and .csv.
	Files []string `json:"files,omitempty"`
}

// Result returns the result of plugin on engine in mode, or false.
func (r *ColdstartReport) Result(plugin, engine, mode string) (ColdstartResult, bool) {
	for _, x := range r.Results {
		if x.Plugin == plugin && x.Engine == engine && x.Mode == mode {
			return x, true
		}
	}
	return ColdstartResult{}, false
}

// first returns the first result of a language (report name) on engine in
// mode: the language's no-op in a default run.
func (r *ColdstartReport) first(lang, engine, mode string) (ColdstartResult, bool) {
	for _, x := range r.Results {
		if x.Language == lang && x.Engine == engine && x.Mode == mode {
			return x, true
		}
	}
	return ColdstartResult{}, false
}

// languages returns the report names of the languages with results, in
// report order.
func (r *ColdstartReport) languages() []string {
	var out []string
	for _, x := range r.Results {
		if !slices.Contains(out, x.Language) {
			out = append(out, x.Language)
		}
	}
	return out
}

// Target limits of issue 13, in µs.
const (
	targetWasmtimeInstantiate = 5
	targetWazeroInstantiate   = 15
	targetGoSnapshotFresh     = 200
	// targetInstantiateVsRaw is the older target of the WAT plugin's
	// instantiate over wazero's raw InstantiateModule.
	targetInstantiateVsRaw = 1.5
	// targetRestartVsCold is the older target of a restart with a warm
	// disk cache over a cold compile.
	targetRestartVsCold = 0.1
)

// analyze fills Targets and Ratios from Results.
func (r *ColdstartReport) analyze() {
	r.targets()
	r.ratios()
}

func (r *ColdstartReport) targets() {
	r.Targets = r.Targets[:0]
	nan := Float(math.NaN())
	inst := func(name, lang, engine, mode string, limit float64, note string) {
		t := ColdstartTarget{Name: name, Language: lang, Engine: engine, Mode: mode, Value: nan, P99: nan,
			Limit: Float(limit), Unit: "us", Note: note}
		if x, ok := r.first(lang, engine, mode); ok {
			t.Plugin, t.Value, t.P99 = x.Plugin, x.Instantiate.Median, x.Instantiate.P99
		}
		t.Met = metWithin(t.Value, t.Limit)
		r.Targets = append(r.Targets, t)
	}
	for _, lang := range []string{"C", "Rust"} {
		for _, e := range []string{EngineWasmtime, EngineWasmtimePool} {
			inst("wasmtime instantiate ≤ 5 µs", lang, e, ModeFresh, targetWasmtimeInstantiate, "")
		}
	}
	for _, lang := range []string{"C", "Rust"} {
		inst("wazero instantiate ≤ 15 µs", lang, EngineWazero, ModeFresh, targetWazeroInstantiate, "")
	}
	for _, e := range []string{EngineWazero, EngineWasmtime, EngineWasmtimePool} {
		inst("Go snapshot fresh instance ≤ 0.2 ms", "Go", e, ModeSnapshot, targetGoSnapshotFresh, "")
	}
	for _, e := range []string{EngineWazero, EngineWasmtime, EngineWasmtimePool} {
		inst("Go fresh instance, no snapshot (reference)", "Go", e, ModeFresh, math.NaN(), "the issue's \"today about 4 ms\"")
	}
	for _, e := range []string{EngineWazero, EngineWazeroInterp} {
		t := ColdstartTarget{Name: "instantiate ÷ wazero InstantiateModule ≤ 1.5×", Language: "WAT", Engine: e, Mode: ModeFresh,
			Value: nan, P99: nan, Limit: targetInstantiateVsRaw, Unit: "ratio"}
		if x, ok := r.first("WAT", e, ModeFresh); ok {
			t.Plugin, t.Value = x.Plugin, x.InstantiateVsRaw
			t.Note = formatMicrosPrecise(float64(x.Instantiate.Median)) + " vs " + formatMicrosPrecise(float64(x.RawInstantiate.Median))
		}
		t.Met = metWithin(t.Value, t.Limit)
		r.Targets = append(r.Targets, t)
	}
}

// metWithin says whether v ≤ limit; nil when either is undefined.
func metWithin(v, limit Float) *bool {
	a, b := float64(v), float64(limit)
	if math.IsNaN(a) || math.IsInf(a, 0) || math.IsNaN(b) {
		return nil
	}
	met := a <= b
	return &met
}

// coldRatioKind is one row of the ratio table: a figure of one cell
// divided by the same figure of another, per language.
type coldRatioKind struct {
	name   string
	of, to coldCell
	toGo   bool // to is Go's cell, not the language's own
	statOf func(ColdstartResult) Float
	bytes  bool // the figure is a size, not a time
}

// coldCell is an engine and a mode.
type coldCell struct{ engine, mode string }

func (c coldCell) String() string { return c.engine + " " + c.mode }

var (
	instP50 = func(x ColdstartResult) Float { return x.Instantiate.Median }
	reqP50  = func(x ColdstartResult) Float { return x.Request.Median }
	warmP50 = func(x ColdstartResult) Float { return x.WarmRequest.Median }
	rssPer  = func(x ColdstartResult) Float { return x.RSSPerInstanceBytes }
)

var coldRatioKinds = []coldRatioKind{
	{name: "instantiate p50: wasmtime ÷ wazero (fresh)", of: coldCell{EngineWasmtime, ModeFresh}, to: coldCell{EngineWazero, ModeFresh}, statOf: instP50},
	{name: "instantiate p50: wasmtime-pool ÷ wasmtime (fresh)", of: coldCell{EngineWasmtimePool, ModeFresh}, to: coldCell{EngineWasmtime, ModeFresh}, statOf: instP50},
	{name: "instantiate p50: wazero-interp ÷ wazero (fresh)", of: coldCell{EngineWazeroInterp, ModeFresh}, to: coldCell{EngineWazero, ModeFresh}, statOf: instP50},
	{name: "instantiate p50: snapshot ÷ fresh (wazero)", of: coldCell{EngineWazero, ModeSnapshot}, to: coldCell{EngineWazero, ModeFresh}, statOf: instP50},
	{name: "instantiate p50: snapshot ÷ fresh (wasmtime)", of: coldCell{EngineWasmtime, ModeSnapshot}, to: coldCell{EngineWasmtime, ModeFresh}, statOf: instP50},
	{name: "instantiate p50: snapshot ÷ fresh (wasmtime-pool)", of: coldCell{EngineWasmtimePool, ModeSnapshot}, to: coldCell{EngineWasmtimePool, ModeFresh}, statOf: instP50},
	{name: "instantiate p50: ÷ Go (wazero, fresh)", of: coldCell{EngineWazero, ModeFresh}, to: coldCell{EngineWazero, ModeFresh}, toGo: true, statOf: instP50},
	{name: "instantiate p50: ÷ Go (wasmtime, fresh)", of: coldCell{EngineWasmtime, ModeFresh}, to: coldCell{EngineWasmtime, ModeFresh}, toGo: true, statOf: instP50},
	{name: "request p50: fresh ÷ pooled (wazero)", of: coldCell{EngineWazero, ModeFresh}, to: coldCell{EngineWazero, ModePooled}, statOf: reqP50},
	{name: "request p50: fresh ÷ pooled (wasmtime)", of: coldCell{EngineWasmtime, ModeFresh}, to: coldCell{EngineWasmtime, ModePooled}, statOf: reqP50},
	{name: "request p50: snapshot ÷ pooled (wasmtime)", of: coldCell{EngineWasmtime, ModeSnapshot}, to: coldCell{EngineWasmtime, ModePooled}, statOf: reqP50},
	{name: "warm request p50: wasmtime ÷ wazero (pooled)", of: coldCell{EngineWasmtime, ModePooled}, to: coldCell{EngineWazero, ModePooled}, statOf: warmP50},
	{name: "memory per instance: wasmtime ÷ wazero (fresh)", of: coldCell{EngineWasmtime, ModeFresh}, to: coldCell{EngineWazero, ModeFresh}, statOf: rssPer, bytes: true},
}

// ratios fills Ratios: every kind, for every language with both figures.
func (r *ColdstartReport) ratios() {
	r.Ratios = r.Ratios[:0]
	for _, k := range coldRatioKinds {
		for _, lang := range r.languages() {
			if k.toGo && lang == "Go" {
				continue
			}
			a, okA := r.first(lang, k.of.engine, k.of.mode)
			toLang := lang
			if k.toGo {
				toLang = "Go"
			}
			b, okB := r.first(toLang, k.to.engine, k.to.mode)
			if !okA || !okB {
				continue
			}
			va, vb := float64(k.statOf(a)), float64(k.statOf(b))
			f := formatMicrosPrecise
			if k.bytes {
				f = formatBytes
			}
			r.Ratios = append(r.Ratios, ColdstartRatio{Name: k.name, Language: lang,
				Of: k.of.String() + " " + f(va), To: toLang + " " + k.to.String() + " " + f(vb), Value: Float(div(va, vb))})
		}
	}
}

// ratio returns a ratio of Ratios, or NaN.
func (r *ColdstartReport) ratio(name, lang string) float64 {
	for _, x := range r.Ratios {
		if x.Name == name && x.Language == lang {
			return float64(x.Value)
		}
	}
	return math.NaN()
}

// mainTable is the language × engine × mode table.
func (r *ColdstartReport) mainTable() *Table {
	t := &Table{
		Columns: []string{"language", "engine", "mode", "plugin", "module size", "cold compile", "instantiate p50", "p99",
			"memory/instance", "linear memory", "first req p50", "warm req p50", "request p50", "p99"},
		Align: []Align{AlignLeft, AlignLeft, AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight,
			AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	us := func(f Float) string { return formatMicrosPrecise(float64(f)) }
	for _, x := range r.Results {
		t.Rows = append(t.Rows, []string{x.Language, x.Engine, x.Mode, x.Plugin, formatBytes(float64(x.Size)),
			us(x.ColdCompile.Median), us(x.Instantiate.Median), us(x.Instantiate.P99),
			formatBytes(float64(x.RSSPerInstanceBytes)), formatBytes(float64(x.MemoryBytes)),
			us(x.FirstRequest.Median), us(x.WarmRequest.Median), us(x.Request.Median), us(x.Request.P99)})
	}
	return t
}

// compileTable is the compile and restart figures, once per module and
// engine (they do not depend on the mode).
func (r *ColdstartReport) compileTable() *Table {
	t := &Table{
		Columns: []string{"language", "plugin", "module", "engine", "size", "cold compile p50", "restart p50", "restart ÷ cold", "n (compiles)"},
		Align:   []Align{AlignLeft, AlignLeft, AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	seen := map[string]bool{}
	us := func(f Float) string { return formatMicrosPrecise(float64(f)) }
	for _, x := range r.Results {
		module := "as built"
		if x.Mode == ModeSnapshot {
			module = "snapshot"
		}
		key := x.Plugin + "\x00" + module + "\x00" + x.Engine
		if seen[key] {
			continue
		}
		seen[key] = true
		ratio := FormatRatio(float64(x.RestartVsCold))
		if x.Engine != EngineWazeroInterp {
			// The interpreter keeps no compiled code on disk: no target.
			if met := metWithin(x.RestartVsCold, targetRestartVsCold); met != nil && *met {
				ratio += " (met)"
			} else if met != nil {
				ratio += " (missed)"
			}
		}
		t.Rows = append(t.Rows, []string{x.Language, x.Plugin, module, x.Engine, formatBytes(float64(x.Size)),
			us(x.ColdCompile.Median), us(x.WarmCacheCompile.Median), ratio,
			strconv.Itoa(x.ColdCompile.N) + ", " + strconv.Itoa(x.WarmCacheCompile.N)})
	}
	return t
}

// targetTable lists the targets with the measured figures.
func (r *ColdstartReport) targetTable() *Table {
	t := &Table{Columns: []string{"target", "language", "engine", "mode", "measured p50", "p99", "met"},
		Align: []Align{AlignLeft, AlignLeft, AlignLeft, AlignLeft, AlignRight, AlignRight, AlignLeft}}
	for _, x := range r.Targets {
		val, p99 := "not measured", ""
		if !math.IsNaN(float64(x.Value)) {
			if x.Unit == "ratio" {
				val = FormatRatio(float64(x.Value))
			} else {
				val = formatMicrosPrecise(float64(x.Value))
				p99 = formatMicrosPrecise(float64(x.P99))
			}
		}
		met := "-"
		if x.Met != nil && *x.Met {
			met = "**met**"
		} else if x.Met != nil {
			met = "not met"
		}
		if x.Note != "" {
			met += " (" + x.Note + ")"
		}
		t.Rows = append(t.Rows, []string{x.Name, x.Language, x.Engine, x.Mode, val, p99, met})
	}
	return t
}

// ratioTable is the ratios, one row per kind and a column per language.
func (r *ColdstartReport) ratioTable() *Table {
	langs := r.languages()
	t := &Table{Columns: append([]string{"ratio (same run)"}, langs...), Align: []Align{AlignLeft}}
	for range langs {
		t.Align = append(t.Align, AlignRight)
	}
	for _, k := range coldRatioKinds {
		row := []string{k.name}
		some := false
		for _, lang := range langs {
			v := r.ratio(k.name, lang)
			if !math.IsNaN(v) {
				some = true
			}
			if k.toGo && lang == "Go" {
				row = append(row, "1x")
				continue
			}
			row = append(row, formatRatioSig(v))
		}
		if some {
			t.Rows = append(t.Rows, row)
		}
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

// coldShortEngine abbreviates an engine for chart labels.
var coldShortEngine = map[string]string{EngineWazero: "wz", EngineWasmtime: "wt", EngineWasmtimePool: "wt-pool", EngineWazeroInterp: "wz-int"}

// coldShortLang abbreviates a language for chart labels.
func coldShortLang(lang string) string {
	if lang == "AssemblyScript" {
		return "AS"
	}
	return lang
}

// chart is the SVG: one panel per figure, one bar per result.
func (r *ColdstartReport) chart() *BarChart {
	c := &BarChart{Title: "Plugin cold start, medians (wz: wazero, wt: wasmtime, wz-int: wazero's interpreter)"}
	series := []struct {
		name string
		of   func(ColdstartResult) float64
		unit func(float64) string
	}{
		{"new instance ready (instantiate, _initialize, on_init)", func(x ColdstartResult) float64 { return float64(x.Instantiate.Median) }, formatMicrosPrecise},
		{"a whole request in the mode (acquire, hooks, release)", func(x ColdstartResult) float64 { return float64(x.Request.Median) }, formatMicrosPrecise},
		{"memory per live instance (resident)", func(x ColdstartResult) float64 { return float64(x.RSSPerInstanceBytes) }, formatBytes},
	}
	for _, x := range r.Results {
		c.Groups = append(c.Groups, coldShortLang(x.Language)+" "+coldShortEngine[x.Engine]+" "+x.Mode)
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
	fmt.Fprintf(&b, "%s, in process (the runtime, not the network), wazero %s", r.Started.Format("2006-01-02 15:04:05 UTC"), r.Wazero)
	if r.Wizer != "" {
		fmt.Fprintf(&b, ", %s", r.Wizer)
	}
	fmt.Fprintf(&b, "; %d repetitions of instantiate and requests, %d of compiles, each measurement capped at %s (after at least %d). Whole run: %s.\n\n",
		r.Reps, r.CompileReps, r.Budget, coldMinReps, r.Elapsed)
	m := r.Machine
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs, Linux %s, %s; load average at start %s. The machine is small and shared: compare the ratios, measured side by side.\n",
		m.CPUModel, m.NProc, m.Kernel, m.GoVersion, m.LoadAvg)
	fmt.Fprintf(&b, "- Plugins: each language's no-op (Go plugins/noop, C and AssemblyScript examples/noop: `on_init` and `on_request` only; WAT plugins/raw-wat: both hooks, three host calls), unless the command names others.\n")
	fmt.Fprintf(&b, "- Engines: `wazero` (its compiler), `wasmtime` (Cranelift, each instance's memory mapped on its own), `wasmtime-pool` (wasmtime's pooling allocator, %d slots), `wazero-interp` (wazero's interpreter).\n", r.Instances+coldPoolSpare)
	fmt.Fprintf(&b, "- Modes: `pooled` (instances reused), `fresh` (an instance per request), `snapshot` (fresh mode on the module Wizer pre-initialized: `wasmgate plugin snapshot`).\n")
	fmt.Fprintf(&b, "- instantiate: a new instance ready to serve, timed around `Binding.Acquire`: instantiation, `_initialize` (none in a snapshot), `on_init` with the plugin's config; in pooled mode what the pool pays when it grows. Issue 13's targets are checked against its p50.\n")
	fmt.Fprintf(&b, "- first request: `on_request` and `on_response` (when exported) with a real `fasthttp.Request` on that new instance; warm request: the same on a pooled instance after %d requests; request: a whole request in the mode (`Acquire`, hooks, `Release`): a pooled checkout and return, or an instance made, used and closed.\n", coldWarmup)
	fmt.Fprintf(&b, "- memory/instance: the process's resident memory with %d instances alive, minus before, divided by %d (after a collection each side); linear memory: a new instance's.\n", r.Instances, r.Instances)
	fmt.Fprintf(&b, "- cold compile: `Runtime.Load` (validation, instrumentation, compile) on a new runtime with an empty disk cache; restart: the same with the cache a previous runtime filled.\n\n")
	fmt.Fprintf(&b, "## Language × engine × mode\n\n")
	_ = r.mainTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n## Targets\n\n")
	_ = r.targetTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n## Ratios\n\nEach a ratio of two medians of this run, for the language of its column.\n\n")
	_ = r.ratioTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n## Compile and restart\n\nA restart with a warm disk cache ÷ a cold compile: target ≤ %s (the interpreter keeps nothing on disk).\n\n", FormatRatio(targetRestartVsCold))
	_ = r.compileTable().WriteMarkdown(&b)
	if len(r.Notes) > 0 {
		fmt.Fprintf(&b, "\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	fmt.Fprintf(&b, "\n![cold-start medians per language, engine and mode](coldstart-latest.svg)\n\n")
	fmt.Fprintf(&b, "Every figure (median, p99, mean, min, max, n) and the machine: [coldstart-latest.json](coldstart-latest.json); the same as CSV: [coldstart-latest.csv](coldstart-latest.csv). %s\n\n"+
		"Reproduce (after `bash plugins/build.sh`, `make examples` and `make tools`):\n\n```sh\n%s\n```\n", rawDataNote(jsonName), r.Command)
	return b.Bytes()
}

// coldCSVHeader is the header of the CSV report: one row per plugin,
// engine, mode and measure; times in µs, memory in bytes, ratios as
// factors.
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
			{"first_request", x.FirstRequest}, {"warm_request", x.WarmRequest}, {"request", x.Request},
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
		one("rss_per_instance", "bytes", r.Instances, x.RSSPerInstanceBytes)
		one("heap_per_instance", "bytes", r.Instances, x.HeapPerInstanceBytes)
		one("restart_vs_cold_compile", "ratio", 1, x.RestartVsCold)
		one("instantiate_vs_raw", "ratio", 1, x.InstantiateVsRaw)
		one("first_vs_warm_request", "ratio", 1, x.FirstVsWarm)
	}
	w.Flush()
	return b.Bytes(), w.Error()
}

// coldCSVRowsPerResult is how many CSV rows a result has.
const coldCSVRowsPerResult = 14

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
	list := func(dst *[]string) func(string) error {
		return func(s string) error {
			*dst = splitList(s)
			return nil
		}
	}
	fs.StringVar(&o.PluginsDir, "plugins", defaultPluginsDir, "directory of the built Go and WAT plugins (bash plugins/build.sh)")
	fs.StringVar(&o.Root, "root", "", "repository root holding the built Rust, C and AssemblyScript examples (make examples) and bin/tools (default: the parent of -plugins)")
	fs.Func("langs", "comma-separated languages (default all: "+strings.Join(coldLangs, ",")+")", list(&o.Langs))
	fs.Func("engines", "comma-separated engines (default all: "+strings.Join(coldEngines, ",")+")", list(&o.Engines))
	fs.Func("modes", "comma-separated instance modes (default all: "+strings.Join(coldModes, ",")+"); snapshot needs Wizer (make tools)", list(&o.Modes))
	fs.Func("only", "comma-separated plugins to measure instead of each language's no-op (have "+strings.Join(ColdstartPlugins(), ",")+")", list(&o.Plugins))
	fs.StringVar(&o.Wizer, "wizer", "", "the wizer binary for snapshot mode (default $WIZER, PATH, or ROOT/bin/tools/node_modules/.bin/wizer)")
	fs.IntVar(&o.Reps, "reps", 0, fmt.Sprintf("repetitions of instantiate and request measurements (default %d; -quick %d)", defaultColdReps, quickColdReps))
	fs.IntVar(&o.CompileReps, "compile-reps", 0, fmt.Sprintf("repetitions of compile measurements (default %d; -quick %d)", defaultColdCompileReps, quickColdCompileReps))
	fs.IntVar(&o.Instances, "instances", 0, fmt.Sprintf("instances held to measure memory per instance (default %d; -quick %d)", defaultColdInstances, quickColdInstances))
	fs.DurationVar(&o.Budget, "budget", 0, fmt.Sprintf("time cap of one measurement (default %s; -quick %s)", defaultColdBudget, quickColdBudget))
	fs.StringVar(&o.OutDir, "out", defaultOutDir, "directory for the CSV, JSON, markdown and SVG reports")
	fs.BoolVar(&quick, "quick", false, "small budget: a smoke run of seconds per plugin and engine")
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
