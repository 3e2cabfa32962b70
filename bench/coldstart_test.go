package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"
)

// coldPluginsDir is the repository's plugins directory, or
// WASMGATE_BENCH_PLUGINS.
func coldPluginsDir() string {
	if d := os.Getenv("WASMGATE_BENCH_PLUGINS"); d != "" {
		return d
	}
	return filepath.Join("..", "plugins")
}

func TestColdStats(t *testing.T) {
	xs := make([]float64, 0, 200)
	for i := 200; i >= 1; i-- { // unsorted on purpose
		xs = append(xs, float64(i))
	}
	s := coldStats(xs)
	if s.N != 200 || s.Median != 100.5 || s.P99 != 198 || s.Min != 1 || s.Max != 200 || s.Mean != 100.5 {
		t.Errorf("coldStats(1..200) = %+v", s)
	}
	if xs[0] != 200 {
		t.Error("coldStats sorted its argument")
	}
	// Below 100 samples the nearest-rank p99 is the maximum.
	if s := coldStats([]float64{3, 1, 2}); s.N != 3 || s.Median != 2 || s.P99 != 3 || s.Min != 1 {
		t.Errorf("coldStats(3,1,2) = %+v", s)
	}
	e := coldStats(nil)
	for _, f := range []Float{e.Median, e.P99, e.Mean, e.Min, e.Max} {
		if !math.IsNaN(float64(f)) {
			t.Errorf("coldStats(nil) = %+v, want NaNs", e)
		}
	}
}

func TestSampler(t *testing.T) {
	ctx := context.Background()
	// The budget is spent at once: the minimum still runs.
	s := newSampler(10, 0)
	for s.more(ctx) {
		s.add(time.Microsecond)
	}
	if len(s.xs) != coldMinReps {
		t.Errorf("spent budget: %d reps, want %d", len(s.xs), coldMinReps)
	}
	// Fewer reps than the minimum asked: that many.
	s = newSampler(1, 0)
	for s.more(ctx) {
		s.add(time.Microsecond)
	}
	if len(s.xs) != 1 || s.xs[0] != 1 {
		t.Errorf("reps 1: %v", s.xs)
	}
	// A generous budget: exactly reps.
	s = newSampler(7, time.Hour)
	for s.more(ctx) {
		s.add(time.Millisecond)
	}
	if len(s.xs) != 7 {
		t.Errorf("reps 7: %d", len(s.xs))
	}
	// A cancelled context stops at once.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if newSampler(5, time.Hour).more(cctx) {
		t.Error("more after cancel")
	}
}

func TestColdstartOptions(t *testing.T) {
	o := ColdstartOptions{}.withDefaults()
	if len(o.Plugins) != 0 || !slices.Equal(o.Langs, []string{LangGo, LangRust, LangC, LangAS, LangWAT}) ||
		!slices.Equal(o.Engines, []string{EngineWazero, EngineWasmtime, EngineWasmtimePool, EngineWazeroInterp}) ||
		!slices.Equal(o.Modes, []string{ModePooled, ModeFresh, ModeSnapshot}) || o.PluginsDir != "plugins" ||
		o.Root != "." || o.OutDir != "bench/results" ||
		o.Reps != defaultColdReps || o.CompileReps != defaultColdCompileReps || o.Instances != defaultColdInstances ||
		o.Budget != defaultColdBudget || o.Progress == nil {
		t.Errorf("defaults: %+v", o)
	}
	if r := (ColdstartOptions{PluginsDir: "/x/plugins"}).withDefaults().Root; r != "/x" {
		t.Errorf("root of /x/plugins = %q", r)
	}
	q := ColdstartOptions{Reps: 5}.quick()
	if q.Reps != 5 || q.CompileReps != quickColdCompileReps || q.Budget != quickColdBudget || q.Instances != quickColdInstances {
		t.Errorf("quick keeps explicit values and fills the rest: %+v", q)
	}
	for _, tc := range []struct {
		o    ColdstartOptions
		want string
	}{
		{ColdstartOptions{Plugins: []string{"noop", "nope"}}, `"nope"`},
		{ColdstartOptions{Modes: []string{"jit"}}, `"jit"`},
		{ColdstartOptions{Modes: []string{"compiler"}}, "-engines wazero,wazero-interp"},
		{ColdstartOptions{Engines: []string{"v8"}}, `unknown engine "v8"`},
		{ColdstartOptions{Langs: []string{"cobol"}}, `unknown language "cobol"`},
	} {
		if err := tc.o.withDefaults().check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("check(%+v) = %v, want %q", tc.o, err, tc.want)
		}
	}
	want := "wasmgate bench coldstart -plugins plugins -reps 9 -compile-reps 2 -instances 3 -budget 1s -out x" +
		" -langs wat,c -engines wazero -modes fresh -only raw-wat,c-noop"
	if got := (ColdstartOptions{Plugins: []string{"raw-wat", "c-noop"}, Langs: []string{LangWAT, LangC},
		Engines: []string{EngineWazero}, Modes: []string{ModeFresh}, Reps: 9, CompileReps: 2,
		Instances: 3, Budget: time.Second, OutDir: "x"}).Command(); got != want {
		t.Errorf("Command() = %q\nwant %q", got, want)
	}
	if got, want := (ColdstartOptions{}).Command(), "wasmgate bench coldstart -plugins plugins -reps 200 -compile-reps 8 -instances 16 -budget 6s -out bench/results"; got != want {
		t.Errorf("Command() of the defaults = %q, want %q", got, want)
	}
	if got := (ColdstartOptions{PluginsDir: "p", Root: "/r", Wizer: "/w"}).Command(); !strings.Contains(got, " -root /r") || !strings.Contains(got, " -wizer /w") {
		t.Errorf("Command() lacks -root or -wizer: %q", got)
	}
}

// TestColdstartPluginTable checks that every language has a no-op whose
// candidates are known plugins of that language, and that module paths are
// where the builds put them.
func TestColdstartPluginTable(t *testing.T) {
	for _, lang := range coldLangs {
		cands := ColdstartNoops()[lang]
		if len(cands) == 0 {
			t.Errorf("%s has no no-op", lang)
		}
		for _, name := range cands {
			p, ok := coldPluginByName(name)
			if !ok || p.lang != lang || p.request == nil {
				t.Errorf("%s no-op %s: %+v", lang, name, p)
			}
		}
	}
	for name, want := range map[string]string{
		"rust-json-transform": "sdk/rust/target/wasm32-wasi/release/examples/json_transform.wasm",
		"c-api-key":           "bin/examples/c/api_key.wasm",
		"as-api-key":          "sdk/assemblyscript/build/api-key.wasm",
		"c-noop":              "bin/examples/c/noop.wasm",
	} {
		if p, _ := coldPluginByName(name); p.module != want || !p.sdk {
			t.Errorf("%s: module %q (sdk %v), want %q", name, p.module, p.sdk, want)
		}
	}
	if names := ColdstartPlugins(); len(names) != len(slices.Compact(slices.Sorted(slices.Values(names)))) {
		t.Errorf("duplicate plugin names: %v", names)
	}
}

func TestColdstartCommandRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"unknown plugin", []string{"-only", "noop,teleport"}, `unknown plugin "teleport"`},
		{"unknown mode", []string{"-modes", "jit"}, `unknown mode "jit"`},
		{"old mode", []string{"-modes", "interpreter"}, "-engines wazero,wazero-interp"},
		{"unknown engine", []string{"-engines", "wazero,v8"}, `unknown engine "v8"`},
		{"unknown language", []string{"-langs", "go,cobol"}, `unknown language "cobol"`},
		{"extra argument", []string{"noop"}, `unexpected argument "noop"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := ColdstartCommand(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, stderr.String())
			}
		})
	}
}

func TestColdstartMissingModules(t *testing.T) {
	dir := t.TempDir() // no modules and no build.sh
	_, err := RunColdstart(context.Background(), ColdstartOptions{PluginsDir: dir, Langs: []string{LangWAT},
		OutDir: filepath.Join(dir, "out")}, nil)
	if err == nil || !strings.Contains(err.Error(), "bash plugins/build.sh") || !strings.Contains(err.Error(), "plugin.wasm") {
		t.Fatalf("err = %v, want the missing module and the build command", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("reports written for a failed run: %v", err)
	}
	// A language of the SDKs whose modules are missing (no toolchain) is
	// left out; with nothing else selected, the run has nothing to do.
	_, err = RunColdstart(context.Background(), ColdstartOptions{PluginsDir: dir, Root: dir, Langs: []string{LangC},
		OutDir: filepath.Join(dir, "out")}, nil)
	if err == nil || !strings.Contains(err.Error(), "none of the selected plugins is built") {
		t.Fatalf("err = %v, want none built", err)
	}
}

// TestRunColdstartSkipsWithNotes runs a tiny benchmark asked for C (not
// built under a root without the SDK examples), WAT, wasmtime and
// snapshot mode with a wizer that does not run: it measures WAT and notes
// why C and snapshot mode are left out. It takes about a second, so it
// runs in -short mode too.
func TestRunColdstartSkipsWithNotes(t *testing.T) {
	dir := coldPluginsDir()
	p, _ := coldPluginByName("raw-wat")
	if _, err := os.Stat(filepath.Join(dir, p.module)); err != nil {
		skipUnlessCI(t, "plugins not built (bash plugins/build.sh): "+err.Error())
	}
	tmp := t.TempDir()
	out := filepath.Join(tmp, "results")
	var table, progress bytes.Buffer
	rep, err := RunColdstart(context.Background(), ColdstartOptions{PluginsDir: dir, Root: tmp,
		Langs: []string{LangC, LangWAT}, Engines: []string{EngineWazero}, Modes: []string{ModeFresh, ModeSnapshot},
		Wizer: filepath.Join(tmp, "no-wizer"), Reps: 3, CompileReps: 1, Instances: 2, Budget: time.Second,
		OutDir: out, Progress: &progress}, &table)
	if err != nil {
		t.Fatalf("RunColdstart: %v\nprogress:\n%s", err, progress.String())
	}
	if len(rep.Results) != 1 || rep.Results[0].Plugin != "raw-wat" || rep.Results[0].Mode != ModeFresh {
		t.Fatalf("results = %+v, want raw-wat fresh only", rep.Results)
	}
	if !slices.Equal(rep.Modes, []string{ModeFresh}) || !slices.Equal(rep.Plugins, []string{"raw-wat"}) {
		t.Errorf("modes %v, plugins %v", rep.Modes, rep.Plugins)
	}
	notes := strings.Join(rep.Notes, "\n")
	for _, want := range []string{"C left out", "bin/examples/c/noop.wasm", "snapshot mode left out", "no-wizer"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "coldstart-latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(md, []byte("## Notes")) || !bytes.Contains(md, []byte("C left out")) {
		t.Errorf("markdown lacks the notes:\n%s", md)
	}
	// The targets of languages not measured say so rather than fail.
	for _, x := range rep.Targets {
		if x.Language == "C" && (!math.IsNaN(float64(x.Value)) || x.Met != nil) {
			t.Errorf("target %+v of a language left out", x)
		}
	}
	if !strings.Contains(table.String(), "not measured") || !strings.Contains(table.String(), "note: C left out") {
		t.Errorf("printed output lacks the unmeasured targets or the notes:\n%s", table.String())
	}
	checkColdstartFiles(t, rep, out)
}

// sampleColdstartReport is a report over two languages, three engines and
// three modes, with one undefined figure (no raw baseline) and targets on
// both sides of their limits.
func sampleColdstartReport() *ColdstartReport {
	st := func(med float64) ColdStats {
		return ColdStats{N: 5, Median: Float(med), P99: Float(2 * med), Mean: Float(med), Min: Float(med / 2), Max: Float(2 * med)}
	}
	r := &ColdstartReport{
		Started: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Command: "wasmgate bench coldstart -quick",
		Machine: MachineInfo{NProc: 2, CPUModel: "test", GoVersion: "go1.26"}, Wazero: "v1.12.0",
		Plugins: []string{"noop", "c-noop"}, Engines: []string{EngineWazero, EngineWasmtime, EngineWasmtimePool},
		Modes: []string{ModePooled, ModeFresh, ModeSnapshot}, Reps: 5, CompileReps: 5, Instances: 2,
		Budget: "1s", Elapsed: "3s", Notes: []string{"WAT left out: a test"},
	}
	add := func(plugin, lang, engine, mode string, inst, req float64) {
		x := ColdstartResult{Plugin: plugin, Language: lang, Engine: engine, Mode: mode, Runtime: engine, Size: 40000,
			ColdCompile: st(3000), WarmCacheCompile: st(200), Instantiate: st(inst), RawInstantiate: coldStats(nil),
			FirstRequest: st(2), WarmRequest: st(1), Request: st(req), MemoryBytes: 131072, MemoryAfterRequestBytes: 131072,
			HeapPerInstanceBytes: 4096, RSSPerInstanceBytes: 16384, RestartVsCold: Float(200.0 / 3000),
			InstantiateVsRaw: Float(math.NaN()), FirstVsWarm: 2}
		if engine == EngineWazero && mode != ModePooled {
			x.RawInstantiate, x.InstantiateVsRaw = st(inst/2), 2
		}
		r.Results = append(r.Results, x)
	}
	for _, e := range []struct {
		engine  string
		goI, cI float64 // fresh instantiate
		goS, cS float64 // snapshot instantiate
	}{
		{EngineWazero, 4000, 20, 800, 18},
		{EngineWasmtime, 3000, 8, 150, 6},
		{EngineWasmtimePool, 2500, 4, 100, 3},
	} {
		add("noop", "Go", e.engine, ModePooled, e.goI, 0.5)
		add("noop", "Go", e.engine, ModeFresh, e.goI, e.goI+5)
		add("noop", "Go", e.engine, ModeSnapshot, e.goS, e.goS+5)
		add("c-noop", "C", e.engine, ModePooled, e.cI, 0.4)
		add("c-noop", "C", e.engine, ModeFresh, e.cI, e.cI+1)
		add("c-noop", "C", e.engine, ModeSnapshot, e.cS, e.cS+1)
	}
	r.analyze()
	return r
}

func TestColdstartTargetsAndRatios(t *testing.T) {
	r := sampleColdstartReport()
	type key struct{ name, lang, engine string }
	targets := map[key]ColdstartTarget{}
	for _, x := range r.Targets {
		targets[key{x.Name, x.Language, x.Engine}] = x
	}
	check := func(k key, value float64, met *bool) {
		t.Helper()
		x, ok := targets[k]
		if !ok {
			t.Fatalf("no target %v in %+v", k, r.Targets)
		}
		if !sameFloat(x.Value, Float(value)) || (met == nil) != (x.Met == nil) || met != nil && *met != *x.Met {
			t.Errorf("%v = %+v, want %v met %v", k, x, value, met)
		}
	}
	yes, no := true, false
	check(key{"wasmtime instantiate ≤ 5 µs", "C", EngineWasmtime}, 8, &no)
	check(key{"wasmtime instantiate ≤ 5 µs", "C", EngineWasmtimePool}, 4, &yes)
	check(key{"wasmtime instantiate ≤ 5 µs", "Rust", EngineWasmtime}, math.NaN(), nil) // not measured
	check(key{"wazero instantiate ≤ 15 µs", "C", EngineWazero}, 20, &no)
	check(key{"Go snapshot fresh instance ≤ 0.2 ms", "Go", EngineWazero}, 800, &no)
	check(key{"Go snapshot fresh instance ≤ 0.2 ms", "Go", EngineWasmtimePool}, 100, &yes)
	check(key{"Go fresh instance, no snapshot (reference)", "Go", EngineWasmtime}, 3000, nil)
	check(key{"instantiate ÷ wazero InstantiateModule ≤ 1.5×", "WAT", EngineWazero}, math.NaN(), nil)

	for _, tc := range []struct {
		name, lang string
		want       float64
	}{
		{"instantiate p50: wasmtime ÷ wazero (fresh)", "C", 8.0 / 20},
		{"instantiate p50: wasmtime ÷ wazero (fresh)", "Go", 3000.0 / 4000},
		{"instantiate p50: wasmtime-pool ÷ wasmtime (fresh)", "C", 4.0 / 8},
		{"instantiate p50: snapshot ÷ fresh (wasmtime)", "Go", 150.0 / 3000},
		{"instantiate p50: ÷ Go (wazero, fresh)", "C", 20.0 / 4000},
		{"request p50: fresh ÷ pooled (wazero)", "C", 21 / 0.4},
		{"memory per instance: wasmtime ÷ wazero (fresh)", "Go", 1},
		{"instantiate p50: wazero-interp ÷ wazero (fresh)", "C", math.NaN()}, // no interpreter run
		{"instantiate p50: ÷ Go (wazero, fresh)", "Go", math.NaN()},          // Go by itself
	} {
		if got := r.ratio(tc.name, tc.lang); !sameFloat(Float(got), Float(tc.want)) && math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("ratio %q of %s = %v, want %v", tc.name, tc.lang, got, tc.want)
		}
	}

	var b bytes.Buffer
	for _, tab := range []*Table{r.mainTable(), r.targetTable(), r.ratioTable(), r.compileTable()} {
		if err := tab.WriteText(&b); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"wasmtime-pool", "snapshot", "**met**", "not met", "not measured", "0.400x", "0.0500x",
		"restart ÷ cold", "0.07x (met)", "16.0 KiB"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, b.String())
		}
	}
	// The interpreter row of the ratio table is left out: no figure at all.
	if strings.Contains(r.ratioTable().Rows[len(r.ratioTable().Rows)-1][0], "wazero-interp") ||
		slices.ContainsFunc(r.ratioTable().Rows, func(row []string) bool { return strings.Contains(row[0], "wazero-interp") }) {
		t.Errorf("ratio table has a row without figures: %v", r.ratioTable().Rows)
	}
	// The compile table has a row per module and engine, not per mode.
	if n := len(r.compileTable().Rows); n != 2*2*3 {
		t.Errorf("compile table has %d rows, want 12 (2 plugins × built/snapshot × 3 engines)", n)
	}
}

func TestColdstartReportFiles(t *testing.T) {
	r := sampleColdstartReport()
	dir := filepath.Join(t.TempDir(), "results")
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	checkColdstartFiles(t, r, dir)
}

// checkColdstartFiles asserts that the reports exist and are well formed:
// the CSV parses with its header and a row per result and measure, the
// JSON round trips, the SVG parses with a bar per result and panel, and
// the markdown links the rest.
func checkColdstartFiles(t *testing.T, r *ColdstartReport, dir string) {
	t.Helper()
	if len(r.Files) != 6 || !strings.HasPrefix(filepath.Base(r.Files[0]), "coldstart-2") ||
		!strings.HasSuffix(r.Files[0], ".json") || r.Files[1] != strings.TrimSuffix(r.Files[0], ".json")+".csv" {
		t.Fatalf("files = %v", r.Files)
	}
	for _, f := range r.Files {
		if filepath.Dir(f) != dir {
			t.Errorf("%s is not in %s", f, dir)
		}
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// CSV: the header, then a fixed number of rows per result; numbers or
	// empty cells.
	c := read("coldstart-latest.csv")
	if !bytes.Equal(c, read(filepath.Base(r.Files[1]))) {
		t.Error("coldstart-latest.csv differs from the timestamped CSV")
	}
	rows, err := csv.NewReader(bytes.NewReader(c)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	if len(rows) == 0 || !slices.Equal(rows[0], coldCSVHeader) {
		t.Fatalf("CSV header = %v", rows)
	}
	if want := 1 + coldCSVRowsPerResult*len(r.Results); len(rows) != want {
		t.Errorf("CSV has %d rows, want %d", len(rows), want)
	}
	measures := map[string]bool{}
	for _, row := range rows[1:] {
		measures[row[4]] = true
		if _, err := strconv.Atoi(row[6]); err != nil {
			t.Errorf("CSV row %v: n: %v", row, err)
		}
		for _, cell := range row[7:] {
			if cell == "" {
				continue
			}
			if v, err := strconv.ParseFloat(cell, 64); err != nil || math.IsNaN(v) || v < 0 {
				t.Errorf("CSV row %v: cell %q", row, cell)
			}
		}
	}
	for _, m := range []string{"cold_compile", "warm_cache_compile", "instantiate", "raw_instantiate", "first_request",
		"warm_request", "request", "rss_per_instance", "heap_per_instance", "restart_vs_cold_compile", "instantiate_vs_raw",
		"first_vs_warm_request"} {
		if !measures[m] {
			t.Errorf("CSV lacks measure %q", m)
		}
	}

	// JSON: the timestamped and latest files agree and round trip.
	js := read("coldstart-latest.json")
	if !bytes.Equal(js, read(filepath.Base(r.Files[0]))) {
		t.Error("coldstart-latest.json differs from the timestamped report")
	}
	var back ColdstartReport
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if len(back.Results) != len(r.Results) || len(back.Ratios) != len(r.Ratios) || len(back.Targets) != len(r.Targets) ||
		!slices.Equal(back.Notes, r.Notes) || back.Command != r.Command ||
		!back.Started.Equal(r.Started) || !slices.Equal(back.Files, r.Files) || back.Machine.NProc != r.Machine.NProc {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
	for i, x := range back.Results {
		want := r.Results[i]
		if x.Plugin != want.Plugin || x.Mode != want.Mode || x.Engine != want.Engine || !sameStats(x.Instantiate, want.Instantiate) ||
			!sameStats(x.Request, want.Request) || !sameFloat(x.RSSPerInstanceBytes, want.RSSPerInstanceBytes) ||
			!sameStats(x.ColdCompile, want.ColdCompile) || !sameStats(x.RawInstantiate, want.RawInstantiate) ||
			!sameFloat(x.FirstVsWarm, want.FirstVsWarm) || x.MemoryBytes != want.MemoryBytes {
			t.Errorf("result %d after the round trip: %+v, want %+v", i, x, want)
		}
	}
	again, err := json.Marshal(&back)
	if err != nil {
		t.Fatal(err)
	}
	if first, _ := json.Marshal(r); !bytes.Equal(first, again) {
		t.Error("JSON does not round trip to the same bytes")
	}

	// SVG: well formed, a background and one bar per result in each of the
	// three panels, except for undefined values.
	var doc svgDoc
	if err := xml.Unmarshal(read("coldstart-latest.svg"), &doc); err != nil {
		t.Fatalf("SVG: %v", err)
	}
	bars := 0
	for _, s := range r.chart().Series {
		for _, v := range s.Values {
			if drawable(v) && !math.IsNaN(v) {
				bars++
			}
		}
	}
	if len(r.chart().Series) != 3 || len(doc.Rects) != 1+bars || bars == 0 {
		t.Errorf("SVG has %d rects, want a background and %d bars", len(doc.Rects), bars)
	}

	md := read("coldstart-latest.md")
	checkLinksCommitted(t, md)
	wants := []string{"| language | engine | mode |", "| target |", "| ratio (same run) |", "| language | plugin | module |",
		r.Command, filepath.Base(r.Files[0]), "(coldstart-latest.json)",
		"(coldstart-latest.csv)", "coldstart-latest.svg", "bash plugins/build.sh", "## Targets"}
	for _, x := range r.Results {
		wants = append(wants, "| "+x.Language+" | "+x.Engine+" | "+x.Mode+" | "+x.Plugin+" |")
	}
	for _, n := range r.Notes {
		wants = append(wants, "- "+n)
	}
	for _, want := range wants {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func sameFloat(a, b Float) bool {
	return a == b || math.IsNaN(float64(a)) && math.IsNaN(float64(b))
}

func sameStats(a, b ColdStats) bool {
	return a.N == b.N && sameFloat(a.Median, b.Median) && sameFloat(a.P99, b.P99) && sameFloat(a.Mean, b.Mean) &&
		sameFloat(a.Min, b.Min) && sameFloat(a.Max, b.Max)
}

// TestRunColdstartEndToEnd runs the benchmark on a tiny budget over the
// no-ops of Go, WAT and whichever SDK languages are built, on wazero and
// wasmtime (when this build has it), in every mode (snapshot when Wizer is
// installed: make tools), and checks that every measurement ran, the
// ratios across cells are computed and the reports are well formed. No
// timing is asserted.
func TestRunColdstartEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end benchmark skipped in -short mode")
	}
	dir := coldPluginsDir()
	for _, name := range []string{"noop", "raw-wat"} {
		p, _ := coldPluginByName(name)
		if _, err := os.Stat(filepath.Join(dir, p.module)); err != nil {
			skipUnlessCI(t, "plugins not built (bash plugins/build.sh): "+err.Error())
		}
	}
	root := filepath.Join(dir, "..")
	langs := []string{LangGo, LangWAT}
	for _, lang := range []string{LangRust, LangC, LangAS} {
		for _, name := range coldNoops[lang] {
			if p, _ := coldPluginByName(name); fileExists(filepath.Join(root, p.module)) {
				langs = append(langs, lang)
				break
			}
		}
	}
	engines := []string{EngineWazero}
	if wasm.WasmtimeAvailable() {
		engines = append(engines, EngineWasmtime)
	}
	out := filepath.Join(t.TempDir(), "results")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var table, progress bytes.Buffer
	rep, err := RunColdstart(ctx, ColdstartOptions{PluginsDir: dir, Langs: langs, Engines: engines, Reps: 3, CompileReps: 1,
		Instances: 2, Budget: time.Second, OutDir: out, Progress: &progress}, &table)
	if err != nil {
		t.Fatalf("RunColdstart: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("langs %v, engines %v, modes %v\n%s", langs, engines, rep.Modes, table.String())
	snapshot := slices.Contains(rep.Modes, ModeSnapshot)
	if !snapshot && !strings.Contains(strings.Join(rep.Notes, "\n"), "snapshot mode left out") {
		t.Errorf("snapshot mode left out without a note: %v", rep.Notes)
	}
	// Every language and engine has a pooled and a fresh row; every
	// language with _initialize (all but WAT) a snapshot row.
	want := 0
	for range langs {
		want += 2
		if snapshot {
			want++
		}
	}
	if snapshot {
		want-- // WAT: nothing to pre-initialize
	}
	if len(rep.Results) != want*len(engines) {
		t.Fatalf("%d results, want %d: %+v", len(rep.Results), want*len(engines), rep.Results)
	}
	for _, x := range rep.Results {
		name := x.Plugin + "/" + x.Engine + "/" + x.Mode
		if x.Runtime == "" || x.Engine == EngineWasmtime && x.Runtime != "wasmtime" {
			t.Errorf("%s ran on engine %q", name, x.Runtime)
		}
		if x.ColdCompile.N != 1 || x.WarmCacheCompile.N != 1 || x.Instantiate.N != 3 || x.FirstRequest.N != 3 ||
			x.WarmRequest.N != 3 || x.Request.N != 3 {
			t.Errorf("%s: repetitions %d %d %d %d %d %d", name, x.ColdCompile.N, x.WarmCacheCompile.N,
				x.Instantiate.N, x.FirstRequest.N, x.WarmRequest.N, x.Request.N)
		}
		figures := map[string]Float{"cold compile": x.ColdCompile.Median, "instantiate": x.Instantiate.Median,
			"first request": x.FirstRequest.Median, "warm request": x.WarmRequest.Median, "request": x.Request.Median,
			"restart ratio": x.RestartVsCold, "first ratio": x.FirstVsWarm}
		if x.Engine == EngineWazero && x.Mode != ModePooled {
			figures["instantiate ratio"] = x.InstantiateVsRaw
		}
		for what, v := range figures {
			if f := float64(v); !(f > 0) || math.IsInf(f, 0) {
				t.Errorf("%s: %s = %v (raw error %q)", name, what, f, x.RawError)
			}
		}
		if x.MemoryBytes == 0 || x.MemoryBytes%65536 != 0 || x.MemoryAfterRequestBytes < x.MemoryBytes ||
			len(x.SHA256) != 64 || x.Size == 0 || !strings.Contains(x.Module, ".wasm") {
			t.Errorf("%s: memory %d, after a request %d, sha256 %q, size %d, module %q", name, x.MemoryBytes,
				x.MemoryAfterRequestBytes, x.SHA256, x.Size, x.Module)
		}
		if x.Mode == ModeSnapshot && !strings.Contains(x.Module, "snapshot") {
			t.Errorf("%s: module %q does not say it is a snapshot", name, x.Module)
		}
	}
	// Ratios across cells of the same run.
	ratioWant := []string{"request p50: fresh ÷ pooled (wazero)"}
	if len(engines) > 1 {
		ratioWant = append(ratioWant, "instantiate p50: wasmtime ÷ wazero (fresh)")
	}
	if snapshot {
		ratioWant = append(ratioWant, "instantiate p50: snapshot ÷ fresh (wazero)")
	}
	for _, name := range ratioWant {
		if v := rep.ratio(name, "Go"); !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("ratio %q for Go = %v", name, v)
		}
	}
	if v := rep.ratio("instantiate p50: ÷ Go (wazero, fresh)", "WAT"); !(v > 0) {
		t.Errorf("WAT ÷ Go = %v", v)
	}
	for _, want := range []string{"instantiate p50", "raw-wat", "noop", "wasmtime instantiate ≤ 5 µs",
		"Go snapshot fresh instance ≤ 0.2 ms", "request p50: fresh ÷ pooled", "reproduce: wasmgate bench coldstart"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("printed output lacks %q:\n%s", want, table.String())
		}
	}
	if !strings.Contains(progress.String(), "raw-wat wazero: fresh instantiate") {
		t.Errorf("progress lacks a line per measurement:\n%s", progress.String())
	}
	checkColdstartFiles(t, rep, out)
}

func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}
