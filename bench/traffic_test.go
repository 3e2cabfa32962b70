package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
)

// TestTrafficGatewayConfigParses feeds the generated config to the real
// config loader, so a schema change that breaks it fails here, not mid-run.
func TestTrafficGatewayConfigParses(t *testing.T) {
	conf := trafficGatewayConfig("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", "127.0.0.1:1004", 64)
	cfg, err := config.Parse("gateway.yaml", conf)
	if err != nil {
		t.Fatalf("generated config rejected: %v\n%s", err, conf)
	}
	if cfg.Traffic.Sticky != "header:"+TrafficStickyHeader || cfg.Traffic.StateFile != "off" || cfg.Log.AccessLog != "off" {
		t.Errorf("traffic = %+v, log = %+v", cfg.Traffic, cfg.Log)
	}
	if len(cfg.Upstreams) != 2 || cfg.Upstreams[0].Name != "primary" || cfg.Upstreams[1].Name != "candidate" {
		t.Fatalf("upstreams = %+v", cfg.Upstreams)
	}
	var names []string
	for _, r := range cfg.Routes {
		names = append(names, r.Name)
		if r.Match.PathPrefix != "/"+r.Name {
			t.Errorf("route %s matches %q", r.Name, r.Match.PathPrefix)
		}
	}
	if !slices.Equal(names, trafficRoutes) {
		t.Fatalf("routes %v, want %v", names, trafficRoutes)
	}
	plain, split, sh10, sh100 := cfg.Routes[0], cfg.Routes[1], cfg.Routes[2], cfg.Routes[3]
	if plain.Upstream != "primary" || plain.Shadow != nil || len(plain.Split) != 0 {
		t.Errorf("plain = %+v", plain)
	}
	if len(split.Split) != 2 || split.Split[0].Upstream != "primary" || split.Split[0].Weight != 90 ||
		split.Split[1].Upstream != "candidate" || split.Split[1].Weight != 10 {
		t.Errorf("split = %+v", split.Split)
	}
	for _, c := range []struct {
		r                 config.Route
		percent, inFlight int
	}{{sh10, 10, 32}, {sh100, 100, 256}} {
		if c.r.Upstream != "primary" || c.r.Shadow == nil || c.r.Shadow.Upstream != "candidate" || c.r.Shadow.Percent != c.percent ||
			c.r.Shadow.MaxInFlight != c.inFlight || c.r.Shadow.Compare.Body != "json" {
			t.Errorf("route %s = %+v, shadow %+v", c.r.Name, c.r, c.r.Shadow)
		}
	}
}

func TestCountingUpstreamHandler(t *testing.T) {
	var hits atomic.Uint64
	h := countingUpstreamHandler(&hits)
	get := func(uri string) string {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI(uri)
		h(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Errorf("GET %s: status %d", uri, ctx.Response.StatusCode())
		}
		return string(ctx.Response.Body())
	}
	if got := get(UpstreamHitsPath); got != "0" {
		t.Errorf("hits before any request = %q", got)
	}
	for _, c := range []struct{ uri, want string }{
		{"/split/json", UpstreamJSON},
		{"/json", UpstreamJSON},
		{"/", UpstreamBody},
		{"/plain", UpstreamBody},
	} {
		if got := get(c.uri); got != c.want {
			t.Errorf("GET %s = %q, want %q", c.uri, got, c.want)
		}
	}
	if got := get(UpstreamHitsPath); got != "4" {
		t.Errorf("hits after 4 requests = %q (the hits path must not count itself)", got)
	}
}

// TestServeCountingUpstream checks the counting upstream over the network:
// a few requests, then its count.
func TestServeCountingUpstream(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeCountingUpstream(ctx, addr) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeCountingUpstream: %v", err)
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	defer client.CloseIdleConnections()
	var err error
	for i := 0; i < 100; i++ { // wait until it listens
		if _, _, err = fetch(ctx, client, "http://"+addr+UpstreamHitsPath, nil, 64); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, body, err := fetch(ctx, client, "http://"+addr+"/shadow10/json", nil, 1<<10); err != nil || string(body) != UpstreamJSON {
			t.Fatalf("GET: %v %q", err, body)
		}
	}
	_, body, err := fetch(ctx, client, "http://"+addr+UpstreamHitsPath, nil, 64)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := parseHits(body); err != nil || n != 3 {
		t.Errorf("hits = %d, %v; want 3", n, err)
	}
}

func TestParseHits(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "42\n": 42, " 18446744073709551615 ": math.MaxUint64} {
		if got, err := parseHits([]byte(in)); err != nil || got != want {
			t.Errorf("parseHits(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5", "nan", "12 hits", "18446744073709551616"} {
		if _, err := parseHits([]byte(in)); err == nil {
			t.Errorf("parseHits(%q) accepted", in)
		}
	}
}

// shadowSample is wasmgate_shadow_requests_total as the gateway's /metrics
// serves it, among other metrics.
const shadowSample = `# HELP wasmgate_in_flight_requests Requests being served now.
# TYPE wasmgate_in_flight_requests gauge
wasmgate_in_flight_requests 1
# HELP wasmgate_shadow_requests_total Shadow copies of the route's requests, by outcome: sent, match, mismatch, dropped, error, skipped.
# TYPE wasmgate_shadow_requests_total counter
wasmgate_shadow_requests_total{outcome="dropped",route="shadow10"} 0
wasmgate_shadow_requests_total{outcome="error",route="shadow10"} 1
wasmgate_shadow_requests_total{outcome="match",route="shadow10"} 98
wasmgate_shadow_requests_total{outcome="mismatch",route="shadow10"} 1
wasmgate_shadow_requests_total{outcome="sent",route="shadow10"} 100
wasmgate_shadow_requests_total{outcome="skipped",route="shadow10"} 2
wasmgate_shadow_requests_total{outcome="sent",route="shadow100"} 1000
wasmgate_shadow_requests_total{outcome="dropped",route="shadow100"} 7
wasmgate_shadow_requests_total{outcome="match",route="shadow100"} 993
wasmgate_shadow_requests_total{outcome="retried",route="shadow100"} 3
`

func TestParseShadowCounts(t *testing.T) {
	got, err := parseShadowCounts([]byte(shadowSample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ShadowCounts{
		"shadow10":  {Sent: 100, Match: 98, Mismatch: 1, Error: 1, Skipped: 2},
		"shadow100": {Sent: 1000, Match: 993, Dropped: 7},
	}
	if len(got) != len(want) || got["shadow10"] != want["shadow10"] || got["shadow100"] != want["shadow100"] {
		t.Errorf("parseShadowCounts = %+v, want %+v", got, want)
	}
	if got, err := parseShadowCounts([]byte("# TYPE up gauge\nup 1\n")); err != nil || len(got) != 0 {
		t.Errorf("without the metric: %+v, %v", got, err)
	}
	for name, text := range map[string]string{
		"a gauge":      "# TYPE wasmgate_shadow_requests_total gauge\nwasmgate_shadow_requests_total{route=\"a\",outcome=\"sent\"} 1\n",
		"no route":     "# TYPE wasmgate_shadow_requests_total counter\nwasmgate_shadow_requests_total{outcome=\"sent\"} 1\n",
		"a fraction":   "# TYPE wasmgate_shadow_requests_total counter\nwasmgate_shadow_requests_total{route=\"a\",outcome=\"sent\"} 1.5\n",
		"malformed":    "wasmgate_shadow_requests_total{route=\"a\" 1\n",
		"not a number": "# TYPE wasmgate_shadow_requests_total counter\nwasmgate_shadow_requests_total{route=\"a\",outcome=\"sent\"} NaN\n",
	} {
		if _, err := parseShadowCounts([]byte(text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	a := ShadowCounts{Sent: 10, Match: 8, Mismatch: 1, Dropped: 3, Error: 1, Skipped: 4}
	b := ShadowCounts{Sent: 4, Match: 3, Dropped: 1, Skipped: 5}
	if d := a.sub(b); d != (ShadowCounts{Sent: 6, Match: 5, Mismatch: 1, Dropped: 2, Error: 1, Skipped: 0}) {
		t.Errorf("sub = %+v", d)
	}
	if s := a.add(b); s != (ShadowCounts{Sent: 14, Match: 11, Mismatch: 1, Dropped: 4, Error: 1, Skipped: 9}) {
		t.Errorf("add = %+v", s)
	}
}

func TestTrafficScript(t *testing.T) {
	s := string(trafficScript(1234))
	for _, want := range []string{
		`thread:set("tid", threads)`,
		`wrk.headers["X-User-Id"] = string.format("user-%d-%d", tid, i)`,
		"for i = 1, 1234 do",
		"n = n % 1234 + 1",
		"return reqs[n]",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "%!") {
		t.Errorf("script has a formatting error:\n%s", s)
	}
}

func TestTrafficOptions(t *testing.T) {
	o := TrafficOptions{LoadOptions: LoadOptions{Duration: 1500 * time.Millisecond}}.withDefaults()
	if o.Duration != 2*time.Second || o.Runs != 3 || o.Connections != 64 || o.Users != 20000 || o.OutDir != "bench/results" || o.Progress == nil {
		t.Errorf("withDefaults = %+v", o)
	}
	if got := (TrafficOptions{}).Command(); got != "wasmgate bench traffic -duration 5s -runs 3 -connections 64 -users 20000 -out bench/results" {
		t.Errorf("Command() = %q", got)
	}
	if got := (TrafficOptions{}).usersPerThread(); got != 10000 {
		t.Errorf("users per thread = %d, want 10000 (2 wrk threads)", got)
	}
	if got := (TrafficOptions{LoadOptions: LoadOptions{Connections: 1}, Users: 7}).usersPerThread(); got != 7 {
		t.Errorf("users per thread with one connection = %d, want 7", got)
	}
	if got := (TrafficOptions{Users: 1}).usersPerThread(); got != 1 {
		t.Errorf("users per thread of 1 user = %d, want 1", got)
	}

	var o2 TrafficOptions
	fs := newFlagSet()
	o2.RegisterFlags(fs)
	if err := fs.Parse([]string{"-duration", "3s", "-runs", "1", "-connections", "8", "-users", "500", "-out", "o"}); err != nil {
		t.Fatal(err)
	}
	if got := o2.Command(); got != "wasmgate bench traffic -duration 3s -runs 1 -connections 8 -users 500 -out o" {
		t.Errorf("Command() after flags = %q", got)
	}
}

func sampleTrafficReport() *TrafficReport {
	r := &TrafficReport{
		LoadRun: LoadRun{Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Command: "wasmgate bench traffic -runs 2",
			Duration: "1s", Runs: 2, Connections: 64, Threads: 2,
			Machine: MachineInfo{NProc: 2, CPUModel: "Test CPU", GoVersion: "go1.26", WrkVersion: "wrk 4.1.0"},
			Pinning: Pinning{Tool: "taskset", ProxyCPU: 0, LoadCPU: 1}},
		Users: 20000, StickyHeader: TrafficStickyHeader, Routes: trafficRoutes,
	}
	add := func(round int, route string, rps, cpu float64, primary, candidate uint64, sh ShadowCounts) {
		r.Measurements = append(r.Measurements, TrafficRun{Round: round, Route: route,
			Wrk:                 WrkResult{Requests: int64(rps), Seconds: 1, RequestsPerSec: rps, P50Micros: 500, P99Micros: 1000 * cpu / 10},
			CPUMicrosPerRequest: cpu, PrimaryHits: primary, CandidateHits: candidate, Shadow: sh})
	}
	// Round 1, then round 2 with everything 10% slower but split, whose
	// ratio within the round moves from 1.02 to 1.08.
	add(1, TrafficPlain, 80000, 10, 80000, 0, ShadowCounts{})
	add(1, TrafficSplit, 79000, 10.2, 71100, 7900, ShadowCounts{})
	add(1, TrafficShadow10, 76000, 11, 76000, 7600, ShadowCounts{Sent: 7600, Match: 7600})
	add(1, TrafficShadow100, 60000, 15, 60000, 59000, ShadowCounts{Sent: 59000, Match: 59000, Dropped: 1000})
	add(2, TrafficPlain, 72000, 11, 72000, 0, ShadowCounts{})
	add(2, TrafficSplit, 71000, 11*1.08, 63900, 7100, ShadowCounts{})
	add(2, TrafficShadow10, 68400, 12.1, 68400, 6840, ShadowCounts{Sent: 6840, Match: 6839, Mismatch: 1})
	add(2, TrafficShadow100, 54000, 16.5, 54000, 53000, ShadowCounts{Sent: 53000, Match: 53000, Dropped: 1000})
	r.summarize()
	return r
}

func ratioOfRoute(r *TrafficReport, route string) TrafficRatio {
	for _, x := range r.Ratios {
		if x.Of == route {
			return x
		}
	}
	return TrafficRatio{CPU: Float(math.Inf(-1))}
}

func TestTrafficSummarize(t *testing.T) {
	r := sampleTrafficReport()
	if len(r.Medians) != 4 || r.Medians[0].Route != TrafficPlain || len(r.Ratios) != 3 {
		t.Fatalf("medians = %+v, ratios = %+v", r.Medians, r.Ratios)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	plain, _ := r.Summary(TrafficPlain)
	if plain.RequestsPerSec != 76000 || !near(plain.CPUMicrosPerRequest, 10.5) || plain.Runs != 2 || plain.Requests != 152000 {
		t.Errorf("plain = %+v", plain)
	}
	sh10, _ := r.Summary(TrafficShadow10)
	if sh10.CandidateHits != 14440 || sh10.PrimaryHits != 144400 || sh10.Shadow != (ShadowCounts{Sent: 14440, Match: 14439, Mismatch: 1}) ||
		!near(sh10.CandidateShare(), 0.1) {
		t.Errorf("shadow10 = %+v, share %v", sh10, sh10.CandidateShare())
	}
	split := ratioOfRoute(r, TrafficSplit)
	if want := (10.2 + 11.88) / 2 / 10.5; !near(float64(split.CPU), want) {
		t.Errorf("split CPU ratio = %v, want %v", split.CPU, want)
	}
	if !near(float64(split.RoundMin), 1.02) || !near(float64(split.RoundMax), 1.08) || !near(float64(split.RoundMedian), 1.05) ||
		!math.IsNaN(float64(split.OverheadPerCopyMicros)) {
		t.Errorf("split rounds = %v (%v-%v), want 1.05 (1.02-1.08)", split.RoundMedian, split.RoundMin, split.RoundMax)
	}
	if float64(split.Target) != 1.05 || split.Met == nil || *split.Met {
		t.Errorf("split target %v, met %v: want 1.05, not met", split.Target, split.Met)
	}
	x10 := ratioOfRoute(r, TrafficShadow10)
	if !near(float64(x10.CPU), 1.1) || float64(x10.Target) != 1.15 || x10.Met == nil || !*x10.Met ||
		!near(float64(x10.OverheadMicros), 1.05) || !near(float64(x10.OverheadPerCopyMicros), 10.5) || !near(float64(x10.RequestsPerSec), 0.95) {
		t.Errorf("shadow10 ratio = %+v", x10)
	}
	x100 := ratioOfRoute(r, TrafficShadow100)
	if !near(float64(x100.CPU), 1.5) || !math.IsNaN(float64(x100.Target)) || x100.Met != nil ||
		!near(float64(x100.OverheadPerCopyMicros), 5.25*114000/112000) {
		t.Errorf("shadow100 ratio = %+v (no target)", x100)
	}
	if err := r.check(); err != nil {
		t.Errorf("check: %v", err)
	}

	var b bytes.Buffer
	for _, tab := range []*Table{r.routeTable(), r.hitsTable(), r.ratioTable()} {
		if err := tab.WriteText(&b); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"gateway CPU-µs/req", "CPU vs plain", "sticky split: primary 90, candidate 10",
		"76,000", "10.50", "1.05x", "10.0%", "14,440", "split ÷ plain", "1.05x (1.02x-1.08x)", "≤ 1.05x", "not met", "≤ 1.15x", " met ", "+1.05", "+10.50", "shadow100 ÷ plain"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, b.String())
		}
	}

	// Without the baseline, ratios are undefined, not zero or infinite.
	r.Measurements = slices.DeleteFunc(r.Measurements, func(m TrafficRun) bool { return m.Route == TrafficPlain })
	r.summarize()
	if x := ratioOfRoute(r, TrafficSplit); !math.IsNaN(float64(x.CPU)) || !math.IsNaN(float64(x.RoundMin)) || !math.IsNaN(float64(x.RoundMedian)) || x.Met != nil {
		t.Errorf("ratio to a missing plain = %+v", x)
	}
	if _, err := json.Marshal(r); err != nil {
		t.Errorf("a report with undefined ratios does not encode: %v", err)
	}
}

func TestTrafficCheck(t *testing.T) {
	for name, edit := range map[string]func(*TrafficRun){
		"split to one side": func(m *TrafficRun) {
			if m.Route == TrafficSplit {
				m.CandidateHits = 0
			}
		},
		"no shadow copies": func(m *TrafficRun) {
			if m.Route == TrafficShadow10 {
				m.Shadow, m.CandidateHits = ShadowCounts{}, 0
			}
		},
		"no requests": func(m *TrafficRun) {
			if m.Route == TrafficPlain {
				m.Wrk.Requests = 0
			}
		},
	} {
		r := sampleTrafficReport()
		for i := range r.Measurements {
			edit(&r.Measurements[i])
		}
		r.summarize()
		if err := r.check(); err == nil {
			t.Errorf("%s: check passed", name)
		}
	}
}

func TestTrafficReportFiles(t *testing.T) {
	r := sampleTrafficReport()
	dir := filepath.Join(t.TempDir(), "results")
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	if len(r.Files) != 4 || filepath.Dir(r.Files[0]) != dir || !strings.HasPrefix(filepath.Base(r.Files[0]), "traffic-2") {
		t.Fatalf("files = %v", r.Files)
	}
	js, err := os.ReadFile(r.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	latest, err := os.ReadFile(filepath.Join(dir, "traffic-latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, latest) {
		t.Error("traffic-latest.json differs from the timestamped report")
	}
	var back TrafficReport
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if len(back.Measurements) != len(r.Measurements) || len(back.Medians) != len(r.Medians) || len(back.Ratios) != len(r.Ratios) ||
		back.Users != r.Users || back.Machine.NProc == 0 || back.Medians[2].Shadow != r.Medians[2].Shadow {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
	if x := back.Ratios[2]; !math.IsNaN(float64(x.Target)) || x.Met != nil {
		t.Errorf("shadow100's missing target read back as %v, %v", x.Target, x.Met)
	}
	md, err := os.ReadFile(filepath.Join(dir, "traffic-latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	checkLinksCommitted(t, md)
	wants := []string{"| route | setup |", "| route | client requests |", "| ratio | CPU-µs/req |", r.Command, filepath.Base(r.Files[0]),
		"(traffic-latest.json)", "traffic-latest.svg", "20,000 user ids", "X-User-Id"}
	for _, m := range r.Medians {
		wants = append(wants, "| "+m.Route+" |", "| "+m.Route+" ÷ plain |")
	}
	for _, want := range wants {
		if want == "| plain ÷ plain |" {
			continue
		}
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	checkLoadChart(t, filepath.Join(dir, "traffic-latest.svg"), len(r.Medians))
}

// TestRunTrafficRejectsMissingGateway checks argument errors come before
// any process is started.
func TestRunTrafficRejectsMissingGateway(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	if _, err := RunTraffic(context.Background(), TrafficOptions{LoadOptions: LoadOptions{OutDir: out}}, nil); err == nil {
		t.Error("RunTraffic without a gateway succeeded")
	}
	if _, err := RunTraffic(context.Background(), TrafficOptions{LoadOptions: LoadOptions{Gateway: "/nonexistent/wasmgate", OutDir: out}}, nil); err == nil {
		t.Error("RunTraffic with a missing gateway succeeded")
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("reports written")
	}
}

// TestRunTrafficCancelLeavesNothing cancels the study while it waits for
// its first upstream (a shell script) and checks that none of its children
// survive. No load is put on anything.
func TestRunTrafficCancelLeavesNothing(t *testing.T) {
	if _, err := lookTool("wrk"); err != nil {
		skipUnlessCI(t, "wrk not installed")
	}
	checkCancelLeavesNothing(t, "RunTraffic", t.TempDir(), func(ctx context.Context, gateway, outDir string) error {
		_, err := RunTraffic(ctx, TrafficOptions{LoadOptions: LoadOptions{Gateway: gateway, OutDir: outDir}}, io.Discard)
		return err
	})
}
