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
	if !slices.Equal(o.Plugins, []string{"noop", "raw-wat", "jwt-auth", "api-key", "rewrite", "json-transform", "aggregate", "client-shape"}) ||
		!slices.Equal(o.Modes, []string{ModeCompiler, ModeInterpreter}) || o.PluginsDir != "plugins" || o.OutDir != "bench/results" ||
		o.Reps != defaultColdReps || o.CompileReps != defaultColdCompileReps || o.Instances != defaultColdInstances ||
		o.Budget != defaultColdBudget || o.Progress == nil {
		t.Errorf("defaults: %+v", o)
	}
	q := ColdstartOptions{Reps: 5}.quick()
	if q.Reps != 5 || q.CompileReps != quickColdCompileReps || q.Budget != quickColdBudget || q.Instances != quickColdInstances {
		t.Errorf("quick keeps explicit values and fills the rest: %+v", q)
	}
	if err := (ColdstartOptions{Plugins: []string{"noop", "nope"}}).withDefaults().check(); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown plugin: %v", err)
	}
	if err := (ColdstartOptions{Modes: []string{"jit"}}).withDefaults().check(); err == nil || !strings.Contains(err.Error(), `"jit"`) {
		t.Errorf("unknown mode: %v", err)
	}
	want := "wasmgate bench coldstart -plugins plugins -modes compiler -reps 9 -compile-reps 2 -instances 3 -budget 1s -out x -only raw-wat"
	if got := (ColdstartOptions{Plugins: []string{"raw-wat"}, Modes: []string{"compiler"}, Reps: 9, CompileReps: 2,
		Instances: 3, Budget: time.Second, OutDir: "x"}).Command(); got != want {
		t.Errorf("Command() = %q\nwant %q", got, want)
	}
	if got := (ColdstartOptions{}).Command(); strings.Contains(got, "-only") {
		t.Errorf("Command() for every plugin names them: %q", got)
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
	_, err := RunColdstart(context.Background(), ColdstartOptions{PluginsDir: dir, Plugins: []string{"raw-wat"},
		OutDir: filepath.Join(dir, "out")}, nil)
	if err == nil || !strings.Contains(err.Error(), "bash plugins/build.sh") || !strings.Contains(err.Error(), "plugin.wasm") {
		t.Fatalf("err = %v, want the missing module and the build command", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("reports written for a failed run: %v", err)
	}
}

// sampleColdstartReport is a report with one undefined figure (no raw
// baseline) and ratios on both sides of their targets.
func sampleColdstartReport() *ColdstartReport {
	st := func(med float64) ColdStats {
		return ColdStats{N: 5, Median: Float(med), P99: Float(2 * med), Mean: Float(med), Min: Float(med / 2), Max: Float(2 * med)}
	}
	r := &ColdstartReport{
		Started: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Command: "wasmgate bench coldstart -quick",
		Machine: MachineInfo{NProc: 2, CPUModel: "test", GoVersion: "go1.26"}, Wazero: "v1.12.0",
		Plugins: []string{"raw-wat", "noop"}, Modes: []string{ModeCompiler}, Reps: 5, CompileReps: 5, Instances: 2,
		Budget: "1s", Elapsed: "3s",
		Results: []ColdstartResult{
			{Plugin: "raw-wat", Language: "WAT", Mode: ModeCompiler, Engine: "wazero-compiler", Size: 571,
				ColdCompile: st(3000), WarmCacheCompile: st(600), Instantiate: st(20), RawInstantiate: st(16),
				FirstRequest: st(2), WarmRequest: st(1), MemoryBytes: 65536, MemoryAfterRequestBytes: 65536,
				HeapPerInstanceBytes: 100000, RestartVsCold: 0.2, InstantiateVsRaw: 1.25, FirstVsWarm: 2},
			{Plugin: "noop", Language: "Go", Mode: ModeCompiler, Engine: "wazero-compiler", Size: 2 << 20,
				ColdCompile: st(800000), WarmCacheCompile: st(60000), Instantiate: st(5000), RawInstantiate: coldStats(nil),
				RawError: "raw wazero: boom", FirstRequest: st(4), WarmRequest: st(0.2), MemoryBytes: 3 << 20,
				MemoryAfterRequestBytes: 3 << 20, HeapPerInstanceBytes: 4 << 20,
				RestartVsCold: 0.075, InstantiateVsRaw: Float(math.NaN()), FirstVsWarm: 20},
		},
	}
	r.ratios()
	return r
}

func TestColdstartRatios(t *testing.T) {
	r := sampleColdstartReport()
	type key struct{ name, plugin string }
	got := map[key]ColdstartRatio{}
	for _, x := range r.Ratios {
		got[key{x.Name, x.Plugin}] = x
	}
	if len(r.Ratios) != 5 || len(got) != 5 {
		t.Fatalf("ratios = %+v, want 1 instantiate (WAT only), 2 restart, 2 first-request", r.Ratios)
	}
	check := func(k key, value float64, met *bool) {
		t.Helper()
		x, ok := got[k]
		if !ok {
			t.Fatalf("no ratio %v", k)
		}
		if float64(x.Value) != value || (met == nil) != (x.Met == nil) || met != nil && *met != *x.Met {
			t.Errorf("%v = %+v, want %v met %v", k, x, value, met)
		}
	}
	yes, no := true, false
	check(key{RatioInstantiateVsRaw, "raw-wat"}, 1.25, &yes)
	check(key{RatioRestartVsCold, "raw-wat"}, 0.2, &no)
	check(key{RatioRestartVsCold, "noop"}, 0.075, &yes)
	check(key{RatioFirstVsWarm, "noop"}, 20, nil)
	if x := got[key{RatioFirstVsWarm, "noop"}]; x.Target != "" {
		t.Errorf("first-request ratio has a target: %+v", x)
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

	// CSV: the header, then 12 rows per result; numbers or empty cells.
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
	if want := 1 + 12*len(r.Results); len(rows) != want {
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
		"warm_request", "heap_per_instance", "restart_vs_cold_compile", "instantiate_vs_raw", "first_vs_warm_request"} {
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
	if len(back.Results) != len(r.Results) || len(back.Ratios) != len(r.Ratios) || back.Command != r.Command ||
		!back.Started.Equal(r.Started) || !slices.Equal(back.Files, r.Files) || back.Machine.NProc != r.Machine.NProc {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
	for i, x := range back.Results {
		want := r.Results[i]
		if x.Plugin != want.Plugin || x.Mode != want.Mode || !sameStats(x.Instantiate, want.Instantiate) ||
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
	// six panels, except for undefined values.
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
	if len(r.chart().Series) != 6 || len(doc.Rects) != 1+bars || bars == 0 {
		t.Errorf("SVG has %d rects, want a background and %d bars", len(doc.Rects), bars)
	}

	md := read("coldstart-latest.md")
	checkLinksCommitted(t, md)
	wants := []string{"| plugin | mode |", "| ratio |", r.Command, filepath.Base(r.Files[0]), "(coldstart-latest.json)",
		"(coldstart-latest.csv)", "coldstart-latest.svg", "bash plugins/build.sh", RatioInstantiateVsRaw}
	for _, x := range r.Results {
		wants = append(wants, "| "+x.Plugin+" | "+x.Mode+" |")
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
// noop (Go) and raw-wat (WAT) plugins in both modes and checks that every
// measurement ran and the reports are well formed. No timing is asserted.
func TestRunColdstartEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end benchmark skipped in -short mode")
	}
	plugins := []string{"noop", "raw-wat"}
	dir := coldPluginsDir()
	for _, name := range plugins {
		p, _ := coldPluginByName(name)
		if _, err := os.Stat(filepath.Join(dir, p.module)); err != nil {
			skipUnlessCI(t, "plugins not built (bash plugins/build.sh): "+err.Error())
		}
	}
	out := filepath.Join(t.TempDir(), "results")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var table, progress bytes.Buffer
	rep, err := RunColdstart(ctx, ColdstartOptions{PluginsDir: dir, Plugins: plugins, Reps: 3, CompileReps: 1,
		Instances: 2, Budget: time.Second, OutDir: out, Progress: &progress}, &table)
	if err != nil {
		t.Fatalf("RunColdstart: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", table.String())
	if len(rep.Results) != 4 {
		t.Fatalf("%d results, want 4: %+v", len(rep.Results), rep.Results)
	}
	for _, x := range rep.Results {
		name := x.Plugin + "/" + x.Mode
		if x.Mode == ModeInterpreter && x.Engine != "wazero-interpreter" || x.Engine == "" {
			t.Errorf("%s ran on engine %q", name, x.Engine)
		}
		if x.ColdCompile.N != 1 || x.WarmCacheCompile.N != 1 || x.Instantiate.N != 3 || x.FirstRequest.N != 3 ||
			x.WarmRequest.N != 3 || x.RawInstantiate.N != 3 {
			t.Errorf("%s: repetitions %d %d %d %d %d %d (raw error %q)", name, x.ColdCompile.N, x.WarmCacheCompile.N,
				x.Instantiate.N, x.FirstRequest.N, x.WarmRequest.N, x.RawInstantiate.N, x.RawError)
		}
		for what, v := range map[string]Float{"cold compile": x.ColdCompile.Median, "instantiate": x.Instantiate.Median,
			"first request": x.FirstRequest.Median, "warm request": x.WarmRequest.Median,
			"restart ratio": x.RestartVsCold, "instantiate ratio": x.InstantiateVsRaw, "first ratio": x.FirstVsWarm} {
			if f := float64(v); !(f > 0) || math.IsInf(f, 0) {
				t.Errorf("%s: %s = %v", name, what, f)
			}
		}
		if x.MemoryBytes == 0 || x.MemoryBytes%65536 != 0 || x.MemoryAfterRequestBytes < x.MemoryBytes ||
			len(x.SHA256) != 64 || x.Size == 0 {
			t.Errorf("%s: memory %d, after a request %d, sha256 %q, size %d", name, x.MemoryBytes,
				x.MemoryAfterRequestBytes, x.SHA256, x.Size)
		}
	}
	if len(rep.Ratios) != 2+2+4 {
		t.Errorf("%d ratios, want 8: %+v", len(rep.Ratios), rep.Ratios)
	}
	for _, want := range []string{"cold compile", "instantiate p50", "raw-wat", "noop", RatioInstantiateVsRaw,
		RatioRestartVsCold, RatioFirstVsWarm, "reproduce: wasmgate bench coldstart"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("printed output lacks %q:\n%s", want, table.String())
		}
	}
	if !strings.Contains(progress.String(), "[4/4] raw-wat interpreter: warm request") {
		t.Errorf("progress lacks a line per measurement:\n%s", progress.String())
	}
	checkColdstartFiles(t, rep, out)
}
