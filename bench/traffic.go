package bench

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"
)

// Route names of the traffic benchmark, as they appear in reports.
const (
	TrafficPlain     = "plain"     // one upstream: the baseline
	TrafficSplit     = "split"     // sticky 90/10 split over two upstreams
	TrafficShadow10  = "shadow10"  // plain, plus a copy of 10% of the requests to a second upstream
	TrafficShadow100 = "shadow100" // plain, plus a copy of every request
)

// trafficRoutes is the order of routes inside a round.
var trafficRoutes = []string{TrafficPlain, TrafficSplit, TrafficShadow10, TrafficShadow100}

// trafficSetups describe each route in reports.
var trafficSetups = map[string]string{
	TrafficPlain:     "primary",
	TrafficSplit:     "sticky split: primary 90, candidate 10",
	TrafficShadow10:  "primary; shadow 10% to candidate",
	TrafficShadow100: "primary; shadow 100% to candidate",
}

// trafficTargets are issue 11's targets for the gateway's CPU-µs per client
// request, as a ratio to the plain route; routes without one have none.
var trafficTargets = map[string]float64{
	TrafficSplit:    1.05,
	TrafficShadow10: 1.15,
}

const (
	// TrafficStickyHeader carries the user key the split hashes
	// (traffic.sticky: header:X-User-Id); every request of every route
	// carries one, so that the routes differ only in what they do with it.
	TrafficStickyHeader = "X-User-Id"
	// trafficCandidateWeight is the split's candidate weight (of 100).
	trafficCandidateWeight = 10

	defaultTrafficUsers = 20000
	// trafficSettle extends each measurement's CPU window until the
	// gateway is idle, so that shadow copies still out when wrk stops are
	// charged to their route, not the next.
	trafficSettle = 2 * time.Second

	// UpstreamHitsPath is the request URI a counting upstream (`wasmgate
	// bench upstream -count`) answers with the number of other requests it
	// has served, in decimal.
	UpstreamHitsPath = "/__bench/hits"
	// upstreamJSONSuffix: a counting upstream answers UpstreamJSON to every
	// request URI ending in it, so that every route of the traffic study
	// gets the JSON body without a rewrite in the gateway.
	upstreamJSONSuffix = "/json"

	shadowMetric = "wasmgate_shadow_requests_total"
)

// ServeCountingUpstream is ServeUpstream counting the requests it serves: GET
// UpstreamHitsPath answers the count (not counting itself), and every request
// URI ending in /json gets UpstreamJSON. The traffic study reads it to show
// where the split and the shadow copies went.
func ServeCountingUpstream(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench upstream: %w", err)
	}
	return serve(ctx, ln, countingUpstreamHandler(new(atomic.Uint64)))
}

// countingUpstreamHandler is upstreamHandler counting into hits.
func countingUpstreamHandler(hits *atomic.Uint64) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		uri := ctx.Request.Header.RequestURI()
		if string(uri) == UpstreamHitsPath {
			ctx.Response.Header.SetContentTypeBytes(upstreamTextPlain)
			ctx.Response.SetBodyString(strconv.FormatUint(hits.Load(), 10))
			return
		}
		hits.Add(1)
		if bytes.HasSuffix(uri, []byte(upstreamJSONSuffix)) {
			ctx.Response.Header.SetContentTypeBytes(upstreamJSONType)
			ctx.Response.SetBodyRaw(upstreamJSON)
			return
		}
		upstreamHandler(ctx)
	}
}

// parseHits reads a counting upstream's answer to UpstreamHitsPath.
func parseHits(body []byte) (uint64, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(string(body)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("upstream hit count %q: not a count", lastBytes(body, 64))
	}
	return n, nil
}

// TrafficOptions configures RunTraffic.
type TrafficOptions struct {
	LoadOptions
	// Users is how many distinct user ids (TrafficStickyHeader) wrk's
	// requests carry, split evenly over its threads (default 20,000).
	Users int
}

// RegisterFlags binds o's tunables to flags on fs.
func (o *TrafficOptions) RegisterFlags(fs *flag.FlagSet) {
	o.registerFlags(fs, "routes", "")
	fs.IntVar(&o.Users, "users", defaultTrafficUsers, "distinct "+TrafficStickyHeader+" values the requests carry (the split's user keys)")
}

func (o TrafficOptions) withDefaults() TrafficOptions {
	o.LoadOptions = o.LoadOptions.withDefaults()
	if o.Users <= 0 {
		o.Users = defaultTrafficUsers
	}
	return o
}

// Command returns the command line that reproduces a run with o (after
// defaults), using the flags RegisterFlags defines.
func (o TrafficOptions) Command() string {
	o = o.withDefaults()
	return fmt.Sprintf("wasmgate bench traffic %s -users %d -out %s", o.flags(), o.Users, o.OutDir)
}

// usersPerThread is how many user ids each wrk thread cycles through.
func (o TrafficOptions) usersPerThread() int {
	o = o.withDefaults()
	return max(1, o.Users/min(wrkThreads, o.Connections))
}

// ShadowCounts are a route's shadow copies by outcome, from the gateway's
// wasmgate_shadow_requests_total.
type ShadowCounts struct {
	Sent     uint64 `json:"sent"`
	Match    uint64 `json:"match"`
	Mismatch uint64 `json:"mismatch"`
	Dropped  uint64 `json:"dropped"`
	Error    uint64 `json:"error"`
	Skipped  uint64 `json:"skipped"`
}

// sub is c minus an earlier reading (a counter that went down reads 0).
func (c ShadowCounts) sub(prev ShadowCounts) ShadowCounts {
	d := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	return ShadowCounts{Sent: d(c.Sent, prev.Sent), Match: d(c.Match, prev.Match), Mismatch: d(c.Mismatch, prev.Mismatch),
		Dropped: d(c.Dropped, prev.Dropped), Error: d(c.Error, prev.Error), Skipped: d(c.Skipped, prev.Skipped)}
}

func (c ShadowCounts) add(o ShadowCounts) ShadowCounts {
	return ShadowCounts{Sent: c.Sent + o.Sent, Match: c.Match + o.Match, Mismatch: c.Mismatch + o.Mismatch,
		Dropped: c.Dropped + o.Dropped, Error: c.Error + o.Error, Skipped: c.Skipped + o.Skipped}
}

// parseShadowCounts reads wasmgate_shadow_requests_total{route,outcome} from
// a Prometheus text exposition, by route. An exposition without the metric
// (no route has a shadow) yields none.
func parseShadowCounts(text []byte) (map[string]ShadowCounts, error) {
	families, err := parseExposition(text)
	if err != nil {
		return nil, err
	}
	out := map[string]ShadowCounts{}
	mf := families[shadowMetric]
	if mf == nil {
		return out, nil
	}
	if t := mf.GetType(); t != dto.MetricType_COUNTER {
		return nil, fmt.Errorf("metrics: %s is a %s, not a counter", shadowMetric, strings.ToLower(t.String()))
	}
	for _, m := range mf.GetMetric() {
		var route, outcome string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "route":
				route = l.GetValue()
			case "outcome":
				outcome = l.GetValue()
			}
		}
		v := m.GetCounter().GetValue()
		if route == "" || !(v >= 0) || math.IsInf(v, 0) || v != math.Trunc(v) {
			return nil, fmt.Errorf("metrics: %s{route=%q,outcome=%q} %v: not a route's count", shadowMetric, route, outcome, v)
		}
		c := out[route]
		n := uint64(v)
		switch outcome {
		case "sent":
			c.Sent = n
		case "match":
			c.Match = n
		case "mismatch":
			c.Mismatch = n
		case "dropped":
			c.Dropped = n
		case "error":
			c.Error = n
		case "skipped":
			c.Skipped = n
		default:
			continue // an outcome added later: not reported here
		}
		out[route] = c
	}
	return out, nil
}

// TrafficReport is the outcome of RunTraffic: every raw measurement, the
// medians per route, the ratios to the plain route, and where and how it
// ran. It is also the JSON written to OutDir.
type TrafficReport struct {
	LoadRun
	// LoadAvgEnd is /proc/loadavg when the measurements ended.
	LoadAvgEnd string `json:"load_avg_end,omitempty"`
	// Users is the number of distinct user ids the requests carried.
	Users        int    `json:"users"`
	StickyHeader string `json:"sticky_header"`
	// Routes are the routes measured, in round order.
	Routes []string `json:"routes"`
	// Measurements are the raw runs in the order they ran.
	Measurements []TrafficRun `json:"measurements"`
	// Medians has one entry per route, in Routes order.
	Medians []TrafficSummary `json:"medians"`
	// Ratios compare each route with the plain one.
	Ratios []TrafficRatio `json:"ratios"`
	// Files are the reports written: the timestamped JSON, then
	// traffic-latest.md, .svg and .json.
	Files []string `json:"files,omitempty"`
}

// TrafficRun is one wrk measurement of one route.
type TrafficRun struct {
	Round int       `json:"round"`
	Route string    `json:"route"`
	URL   string    `json:"url"`
	Wrk   WrkResult `json:"wrk"`
	// CPUSeconds is the gateway's CPU time during the run (and until it
	// was idle again); CPUMicrosPerRequest divides it by the client
	// requests wrk completed, so the shadow copies' cost is in it.
	CPUSeconds          float64 `json:"cpu_seconds"`
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request"`
	// PrimaryHits and CandidateHits are the requests each upstream
	// counted during the run.
	PrimaryHits   uint64 `json:"primary_hits"`
	CandidateHits uint64 `json:"candidate_hits"`
	// Shadow are the route's shadow copies during the run, by outcome.
	Shadow ShadowCounts `json:"shadow"`
}

// TrafficSummary is one route's medians over rounds, and its totals.
type TrafficSummary struct {
	Route               string  `json:"route"`
	Setup               string  `json:"setup"`
	Runs                int     `json:"runs"`
	RequestsPerSec      float64 `json:"requests_per_sec"`
	P50Micros           float64 `json:"p50_us"`
	P99Micros           float64 `json:"p99_us"`
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request"`
	// CPUVsPlain divides CPUMicrosPerRequest by the plain route's.
	CPUVsPlain Float `json:"cpu_us_per_request_vs_plain"`
	// Requests, PrimaryHits, CandidateHits and Shadow are sums over the
	// route's measured runs (not the warmup).
	Requests      int64        `json:"requests"`
	PrimaryHits   uint64       `json:"primary_hits"`
	CandidateHits uint64       `json:"candidate_hits"`
	Shadow        ShadowCounts `json:"shadow"`
}

// CandidateShare is the candidate upstream's hits per client request: the
// split's share, or the share of requests copied.
func (s TrafficSummary) CandidateShare() float64 {
	return div(float64(s.CandidateHits), float64(s.Requests))
}

// TrafficRatio compares a route's medians with the plain route's.
type TrafficRatio struct {
	Of string `json:"of"`
	To string `json:"to"`
	// CPU is the ratio of the medians of the gateway's CPU-µs per client
	// request. RoundMedian, RoundMin and RoundMax are the median, lowest
	// and highest of the same ratio taken within each round: the paired
	// figure, which a machine slowing down between rounds moves less, and
	// the noise.
	CPU         Float `json:"cpu_us_per_request"`
	RoundMedian Float `json:"cpu_round_median"`
	RoundMin    Float `json:"cpu_round_min"`
	RoundMax    Float `json:"cpu_round_max"`
	// OverheadMicros is the difference of the medians, in CPU-µs per
	// client request.
	OverheadMicros Float `json:"cpu_us_per_request_over"`
	// OverheadPerCopyMicros is OverheadMicros per shadow copy sent (a
	// shadow route's extra CPU-µs divided by its copies per client
	// request); null for a route without copies.
	OverheadPerCopyMicros Float `json:"cpu_us_per_shadow_copy"`
	RequestsPerSec        Float `json:"requests_per_sec"`
	P99                   Float `json:"p99"`
	// Target is issue 11's bound on CPU (null when it sets none); Met says
	// whether the median ratio is within it.
	Target Float `json:"target"`
	Met    *bool `json:"met,omitempty"`
}

// Summary returns the median of route, or false if it has none.
func (r *TrafficReport) Summary(route string) (TrafficSummary, bool) {
	for _, s := range r.Medians {
		if s.Route == route {
			return s, true
		}
	}
	return TrafficSummary{}, false
}

// trafficEnv is what RunTraffic started: the children and where they listen.
type trafficEnv struct {
	runner
	o                  TrafficOptions
	primary, candidate *proc
	gateway            *proc
	hitsURLs           [2]string         // primary's, candidate's UpstreamHitsPath
	urls               map[string]string // by route
	metrics            string            // the gateway's admin /metrics
	client             *http.Client      // for hits and metrics, outside the measured windows
}

// RunTraffic measures, in one run on loopback, one gateway (GOMAXPROCS=1,
// pinned to its own CPU when possible) serving a plain route, a sticky
// 90/10 split over two upstreams, and the plain route with 10% and 100% of
// its requests shadowed to the second upstream, with wrk sending varying
// user ids from a Lua script. It prints the median and ratio tables to out
// and writes traffic-<UTC time>.json (with a copy as traffic-latest.json),
// traffic-latest.md and traffic-latest.svg to o.OutDir. Every child process
// is stopped before it returns, also when ctx is cancelled.
func RunTraffic(ctx context.Context, o TrafficOptions, out io.Writer) (*TrafficReport, error) {
	o = o.withDefaults()
	if out == nil {
		out = io.Discard
	}
	if o.Gateway == "" {
		return nil, errors.New("bench traffic: no gateway binary given")
	}
	if _, err := os.Stat(o.Gateway); err != nil {
		return nil, fmt.Errorf("bench traffic: gateway binary: %w", err)
	}
	t, err := findTools(ctx, o.Progress, false)
	if err != nil {
		return nil, fmt.Errorf("bench traffic: %w", err)
	}
	clk := clockTicks()
	rep := &TrafficReport{
		LoadRun:      newLoadRun(ctx, t, clk, o.Command(), o.Duration, o.Runs, o.Connections),
		StickyHeader: TrafficStickyHeader,
		Routes:       trafficRoutes,
	}
	rep.Users = o.usersPerThread() * rep.Threads
	fmt.Fprintf(o.Progress, "bench: %s; pinning: %s; load average %s\n",
		rep.Machine.WrkVersion, rep.Pinning, rep.Machine.LoadAvg)

	tmp, err := os.MkdirTemp("", "wasmgate-bench-traffic-")
	if err != nil {
		return nil, fmt.Errorf("bench traffic: %w", err)
	}
	defer os.RemoveAll(tmp)
	script := filepath.Join(tmp, "users.lua")
	if err := os.WriteFile(script, trafficScript(o.usersPerThread()), 0o600); err != nil {
		return nil, fmt.Errorf("bench traffic: %w", err)
	}

	env := &trafficEnv{
		runner: runner{tools: t, pin: rep.Pinning, clk: float64(clk), conns: o.Connections,
			settle: trafficSettle, script: script},
		o: o, urls: map[string]string{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	defer env.client.CloseIdleConnections()
	defer env.stopAll()
	if err := env.start(ctx, tmp); err != nil {
		return nil, fmt.Errorf("bench traffic: %w", err)
	}
	if err := env.probe(ctx); err != nil {
		return nil, fmt.Errorf("bench traffic: %w", err)
	}

	for _, route := range trafficRoutes {
		fmt.Fprintf(o.Progress, "bench: warmup %s (%s)\n", route, warmup)
		if _, err := env.wrk(ctx, env.urls[route], warmup); err != nil {
			return nil, fmt.Errorf("bench traffic: warmup %s: %w", route, err)
		}
	}
	// The last warmup's shadow copies finish before the first measurement.
	if _, err := waitIdle(ctx, env.gateway.pid(), trafficSettle); err != nil {
		return nil, fmt.Errorf("bench traffic: %w", err)
	}
	for round := 1; round <= o.Runs; round++ {
		for _, route := range trafficRoutes {
			run, err := env.measure(ctx, round, route)
			if err != nil {
				return nil, fmt.Errorf("bench traffic: round %d, %s: %w", round, route, err)
			}
			rep.Measurements = append(rep.Measurements, run)
			fmt.Fprintf(o.Progress, "bench: round %d/%d %-9s %s req/s, p50 %s, p99 %s, %s CPU-µs/req, hits %d + %d, shadow sent %d dropped %d\n",
				round, o.Runs, route, FormatNumber(run.Wrk.RequestsPerSec), FormatMicros(run.Wrk.P50Micros),
				FormatMicros(run.Wrk.P99Micros), FormatNumber(run.CPUMicrosPerRequest),
				run.PrimaryHits, run.CandidateHits, run.Shadow.Sent, run.Shadow.Dropped)
		}
	}
	rep.LoadAvgEnd = loadAvg()
	env.stopAll() // free the CPUs before writing reports

	rep.summarize()
	if err := rep.check(); err != nil {
		return rep, fmt.Errorf("bench traffic: %w", err)
	}
	for _, tab := range []*Table{rep.routeTable(), rep.hitsTable(), rep.ratioTable()} {
		if err := tab.WriteText(out); err != nil {
			return rep, fmt.Errorf("bench traffic: %w", err)
		}
		fmt.Fprintln(out)
	}
	if err := rep.write(o.OutDir); err != nil {
		return rep, fmt.Errorf("bench traffic: %w", err)
	}
	fmt.Fprintf(out, "reports: %s\nreproduce: %s\n", strings.Join(rep.Files, ", "), rep.Command)
	return rep, nil
}

// trafficScript is wrk's Lua script: each thread cycles through perThread
// requests prepared in init, each with its own user id (ids differ between
// threads too), so that the split hashes many users while wrk formats no
// request under load.
func trafficScript(perThread int) []byte {
	return fmt.Appendf(nil, `-- generated by wasmgate bench traffic: every request carries one of %[1]d user ids per thread
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

local reqs = {}
local n = 0
function init(args)
  for i = 1, %[1]d do
    wrk.headers["%[2]s"] = string.format("user-%%d-%%d", tid, i)
    reqs[i] = wrk.format()
  end
end

function request()
  n = n %% %[1]d + 1
  return reqs[n]
end
`, perThread, TrafficStickyHeader)
}

// shadow100InFlight is shadow100's max_in_flight for conns client
// connections: room for a copy of every request (the default, 32, drops
// about a third of them at 64 connections on the project's machine), so
// that the route measures mirroring all of its traffic.
func shadow100InFlight(conns int) int { return max(32, 4*conns) }

// trafficGatewayConfig is the gateway's YAML: the two upstreams and one
// route per benchmark route, at /NAME. conns is wrk's connection count.
func trafficGatewayConfig(listen, admin, primary, candidate string, conns int) []byte {
	return fmt.Appendf(nil, `# generated by wasmgate bench traffic
listen: {address: %[1]q}
admin: {address: %[2]q, watch_config: false}
log: {level: warn, access_log: "off"}
traffic:
  sticky: "header:%[5]s"
  state_file: "off"
upstreams:
  - name: primary
    targets: [{address: %[3]q}]
  - name: candidate
    targets: [{address: %[4]q}]
routes:
  - name: %[6]s
    match: {path_prefix: /%[6]s}
    upstream: primary
  - name: %[7]s
    match: {path_prefix: /%[7]s}
    split:
      - {upstream: primary, weight: %[10]d}
      - {upstream: candidate, weight: %[11]d}
  - name: %[8]s
    match: {path_prefix: /%[8]s}
    upstream: primary
    shadow: {upstream: candidate, percent: 10}
  - name: %[9]s
    match: {path_prefix: /%[9]s}
    upstream: primary
    shadow: {upstream: candidate, percent: 100, max_in_flight: %[12]d}
`, listen, admin, primary, candidate, TrafficStickyHeader,
		TrafficPlain, TrafficSplit, TrafficShadow10, TrafficShadow100,
		100-trafficCandidateWeight, trafficCandidateWeight, shadow100InFlight(conns))
}

// start launches the two counting upstreams and the gateway, and waits
// until each answers.
func (e *trafficEnv) start(ctx context.Context, tmp string) error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	primaryAddr, candidateAddr, gwAddr, adminAddr := addr(0), addr(1), addr(2), addr(3)
	for _, r := range trafficRoutes {
		e.urls[r] = "http://" + gwAddr + "/" + r + upstreamJSONSuffix
	}
	e.metrics = "http://" + adminAddr + "/metrics"

	for i, up := range []struct {
		name, addr string
		p          **proc
	}{{"primary upstream", primaryAddr, &e.primary}, {"candidate upstream", candidateAddr, &e.candidate}} {
		p, err := e.launch(up.name, e.pin.LoadCPU,
			[]string{e.o.Gateway, "bench", "upstream", "-count", "-addr", up.addr}, nil)
		if err != nil {
			return err
		}
		*up.p = p
		e.hitsURLs[i] = "http://" + up.addr + UpstreamHitsPath
		if err := waitHTTP(ctx, p, e.hitsURLs[i], nil, false); err != nil {
			return err
		}
		fmt.Fprintf(e.o.Progress, "bench: %s ready on %s\n", up.name, up.addr)
	}

	gwConf := filepath.Join(tmp, "gateway.yaml")
	if err := os.WriteFile(gwConf, trafficGatewayConfig(gwAddr, adminAddr, primaryAddr, candidateAddr, e.o.Connections), 0o600); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	gwEnv := append(os.Environ(), "WASMGATE_ADMIN_TOKEN="+benchAdminToken, "GOMAXPROCS=1")
	gw, err := e.launch("gateway", e.pin.ProxyCPU, []string{e.o.Gateway, "serve", "--config", gwConf}, gwEnv)
	if err != nil {
		return err
	}
	e.gateway = gw
	if err := waitHTTP(ctx, gw, "http://"+adminAddr+"/readyz", adminAuth(), false); err != nil {
		return err
	}
	fmt.Fprintf(e.o.Progress, "bench: gateway ready on %s\n", gwAddr)
	return nil
}

// probe sends one request to every route and checks the answer is the
// upstream's JSON, and that the metrics and hit counts read.
func (e *trafficEnv) probe(ctx context.Context) error {
	hdr := http.Header{TrafficStickyHeader: {"probe"}}
	for _, route := range trafficRoutes {
		resp, body, err := fetch(ctx, e.client, e.urls[route], hdr, 64<<10)
		if err != nil {
			return fmt.Errorf("route %s: %w", route, err)
		}
		if resp.StatusCode != http.StatusOK || string(body) != UpstreamJSON {
			return fmt.Errorf("route %s: status %d, body %q: not the upstream's JSON", route, resp.StatusCode, lastBytes(body, 512))
		}
	}
	if _, err := e.hits(ctx); err != nil {
		return err
	}
	_, err := e.shadowCounts(ctx)
	return err
}

// hits reads both upstreams' hit counts.
func (e *trafficEnv) hits(ctx context.Context) ([2]uint64, error) {
	var n [2]uint64
	for i, u := range e.hitsURLs {
		resp, body, err := fetch(ctx, e.client, u, nil, 1<<10)
		if err != nil {
			return n, err
		}
		if resp.StatusCode != http.StatusOK {
			return n, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
		}
		if n[i], err = parseHits(body); err != nil {
			return n, fmt.Errorf("GET %s: %w", u, err)
		}
	}
	return n, nil
}

// shadowCounts reads the gateway's shadow counters, by route.
func (e *trafficEnv) shadowCounts(ctx context.Context) (map[string]ShadowCounts, error) {
	resp, body, err := fetch(ctx, e.client, e.metrics, adminAuth(), maxMetricsBytes)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", e.metrics, resp.StatusCode, lastBytes(body, 512))
	}
	return parseShadowCounts(body)
}

// measure runs wrk once against route and reads the gateway's CPU time, and
// the upstreams' hits and the route's shadow counts before and after (all
// outside the CPU window).
func (e *trafficEnv) measure(ctx context.Context, round int, route string) (TrafficRun, error) {
	run := TrafficRun{Round: round, Route: route, URL: e.urls[route]}
	hits0, err := e.hits(ctx)
	if err != nil {
		return run, err
	}
	sh0, err := e.shadowCounts(ctx)
	if err != nil {
		return run, err
	}
	l, err := e.load(ctx, run.URL, e.o.Duration, e.gateway, e.primary)
	run.Wrk = l.wrk
	if err != nil {
		return run, err
	}
	hits1, err := e.hits(ctx)
	if err != nil {
		return run, err
	}
	sh1, err := e.shadowCounts(ctx)
	if err != nil {
		return run, err
	}
	run.CPUSeconds = l.cpuSeconds
	run.CPUMicrosPerRequest = l.cpuMicrosPerRequest()
	run.PrimaryHits, run.CandidateHits = hits1[0]-hits0[0], hits1[1]-hits0[1]
	run.Shadow = sh1[route].sub(sh0[route])
	return run, nil
}

// summarize fills Medians and Ratios from Measurements.
func (r *TrafficReport) summarize() {
	r.Medians = r.Medians[:0]
	for _, route := range r.Routes {
		var rps, p50, p99, cpu []float64
		s := TrafficSummary{Route: route, Setup: trafficSetups[route]}
		for _, m := range r.Measurements {
			if m.Route != route {
				continue
			}
			rps = append(rps, m.Wrk.RequestsPerSec)
			p50 = append(p50, m.Wrk.P50Micros)
			p99 = append(p99, m.Wrk.P99Micros)
			cpu = append(cpu, m.CPUMicrosPerRequest)
			s.Requests += m.Wrk.Requests
			s.PrimaryHits += m.PrimaryHits
			s.CandidateHits += m.CandidateHits
			s.Shadow = s.Shadow.add(m.Shadow)
		}
		s.Runs = len(rps)
		if s.Runs == 0 {
			continue
		}
		s.RequestsPerSec, s.P50Micros, s.P99Micros, s.CPUMicrosPerRequest = median(rps), median(p50), median(p99), median(cpu)
		r.Medians = append(r.Medians, s)
	}
	plain, havePlain := r.Summary(TrafficPlain)
	r.Ratios = r.Ratios[:0]
	for i := range r.Medians {
		s := &r.Medians[i]
		s.CPUVsPlain = Float(math.NaN())
		if havePlain {
			s.CPUVsPlain = Float(div(s.CPUMicrosPerRequest, plain.CPUMicrosPerRequest))
		}
		if s.Route == TrafficPlain {
			continue
		}
		x := TrafficRatio{Of: s.Route, To: TrafficPlain, CPU: s.CPUVsPlain, Target: Float(math.NaN()),
			OverheadMicros: Float(math.NaN()), OverheadPerCopyMicros: Float(math.NaN()),
			RequestsPerSec: Float(math.NaN()), P99: Float(math.NaN())}
		if havePlain {
			x.OverheadMicros = Float(s.CPUMicrosPerRequest - plain.CPUMicrosPerRequest)
			if s.Shadow.Sent > 0 {
				x.OverheadPerCopyMicros = Float(float64(x.OverheadMicros) * div(float64(s.Requests), float64(s.Shadow.Sent)))
			}
			x.RequestsPerSec = Float(div(s.RequestsPerSec, plain.RequestsPerSec))
			x.P99 = Float(div(s.P99Micros, plain.P99Micros))
		}
		x.RoundMedian, x.RoundMin, x.RoundMax = r.roundRatios(s.Route)
		if t, ok := trafficTargets[s.Route]; ok {
			x.Target = Float(t)
			if v := float64(x.CPU); !math.IsNaN(v) {
				met := v <= t
				x.Met = &met
			}
		}
		r.Ratios = append(r.Ratios, x)
	}
}

// roundRatios are the median, lowest and highest CPU-µs/req ratio of route
// to the plain route measured in the same round; NaN when no round has both.
func (r *TrafficReport) roundRatios(route string) (med, lo, hi Float) {
	plain := map[int]float64{}
	for _, m := range r.Measurements {
		if m.Route == TrafficPlain {
			plain[m.Round] = m.CPUMicrosPerRequest
		}
	}
	var ratios []float64
	for _, m := range r.Measurements {
		p, ok := plain[m.Round]
		if m.Route != route || !ok {
			continue
		}
		if v := div(m.CPUMicrosPerRequest, p); !math.IsNaN(v) {
			ratios = append(ratios, v)
		}
	}
	if len(ratios) == 0 {
		nan := Float(math.NaN())
		return nan, nan, nan
	}
	return Float(median(ratios)), Float(slices.Min(ratios)), Float(slices.Max(ratios))
}

// check fails when the run did not do what it claims: a route without
// requests, a shadow route that sent no copy, or a split that sent nothing
// to one side.
func (r *TrafficReport) check() error {
	var errs []error
	for _, s := range r.Medians {
		switch {
		case s.Requests == 0:
			errs = append(errs, fmt.Errorf("route %s: no requests", s.Route))
		case s.Route == TrafficSplit && (s.PrimaryHits == 0 || s.CandidateHits == 0):
			errs = append(errs, fmt.Errorf("route %s: upstream hits %d and %d: the split did not split", s.Route, s.PrimaryHits, s.CandidateHits))
		case (s.Route == TrafficShadow10 || s.Route == TrafficShadow100) && (s.Shadow.Sent == 0 || s.CandidateHits == 0):
			errs = append(errs, fmt.Errorf("route %s: %d shadow copies sent, %d candidate hits: no shadow traffic", s.Route, s.Shadow.Sent, s.CandidateHits))
		}
	}
	return errors.Join(errs...)
}

// routeTable is the per-route median table.
func (r *TrafficReport) routeTable() *Table {
	t := &Table{
		Columns: []string{"route", "setup", "req/s", "p50", "p99", "gateway CPU-µs/req", "CPU vs plain"},
		Align:   []Align{AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	for _, s := range r.Medians {
		t.Rows = append(t.Rows, []string{
			s.Route, s.Setup,
			FormatNumber(s.RequestsPerSec),
			FormatMicros(s.P50Micros),
			FormatMicros(s.P99Micros),
			FormatNumber(s.CPUMicrosPerRequest),
			FormatRatio(float64(s.CPUVsPlain)),
		})
	}
	return t
}

// hitsTable shows where the requests went: each upstream's hits and the
// shadow outcomes, summed over the measured runs.
func (r *TrafficReport) hitsTable() *Table {
	t := &Table{
		Columns: []string{"route", "client requests", "primary hits", "candidate hits", "candidate ÷ requests",
			"shadow sent", "match", "mismatch", "dropped", "error"},
		Align: []Align{AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	count := func(n uint64) string { return formatCount(n) }
	for _, s := range r.Medians {
		shadow := []string{"-", "-", "-", "-", "-"}
		if s.Route == TrafficShadow10 || s.Route == TrafficShadow100 {
			shadow = []string{count(s.Shadow.Sent), count(s.Shadow.Match), count(s.Shadow.Mismatch), count(s.Shadow.Dropped), count(s.Shadow.Error)}
		}
		t.Rows = append(t.Rows, append([]string{
			s.Route, formatCount(uint64(max(0, s.Requests))), count(s.PrimaryHits), count(s.CandidateHits),
			formatPercent(s.CandidateShare()),
		}, shadow...))
	}
	return t
}

// formatCount renders a count with thousands separators: "0", "12,345".
func formatCount(n uint64) string {
	if n < 100 {
		return strconv.FormatUint(n, 10)
	}
	return FormatNumber(float64(n))
}

// formatSigned renders a difference with its sign: "+1.25", "-0.40".
func formatSigned(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	if v >= 0 {
		s = "+" + s
	}
	return s
}

// ratioTable states each route's ratios to the plain route and the targets.
func (r *TrafficReport) ratioTable() *Table {
	t := &Table{
		Columns: []string{"ratio", "CPU-µs/req", "per round: median (min-max)", "target", "verdict", "+CPU-µs/req", "+CPU-µs per copy", "req/s", "p99"},
		Align:   []Align{AlignLeft, AlignRight, AlignRight, AlignRight, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	for _, x := range r.Ratios {
		target, verdict := "-", "-"
		if !math.IsNaN(float64(x.Target)) {
			target = "≤ " + FormatRatio(float64(x.Target))
		}
		if x.Met != nil {
			verdict = map[bool]string{true: "met", false: "not met"}[*x.Met]
		}
		perCopy := "-"
		if v := float64(x.OverheadPerCopyMicros); !math.IsNaN(v) {
			perCopy = formatSigned(v)
		}
		t.Rows = append(t.Rows, []string{
			x.Of + " ÷ " + x.To,
			FormatRatio(float64(x.CPU)),
			FormatRatio(float64(x.RoundMedian)) + " (" + FormatRatio(float64(x.RoundMin)) + "-" + FormatRatio(float64(x.RoundMax)) + ")",
			target, verdict,
			formatSigned(float64(x.OverheadMicros)), perCopy,
			FormatRatio(float64(x.RequestsPerSec)),
			FormatRatio(float64(x.P99)),
		})
	}
	return t
}

// chart is the SVG: req/s and gateway CPU-µs/req per route.
func (r *TrafficReport) chart() *BarChart {
	return loadChart("Traffic management", r.Runs, r.Threads, r.Connections, r.Duration, "gateway CPU-µs per client request (lower is better)",
		r.Medians, func(s TrafficSummary) (string, float64, float64) {
			return s.Route, float64(s.RequestsPerSec), float64(s.CPUMicrosPerRequest)
		})
}

// markdown renders traffic-latest.md.
func (r *TrafficReport) markdown(jsonName string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Traffic management benchmark\n\n")
	fmt.Fprintf(&b, "%s. Medians of %d runs of `wrk --latency -t%d -c%d -d%s` per route on loopback; rounds interleave the routes. "+
		"One gateway (GOMAXPROCS=1) serves every route; two upstreams (`primary`, `candidate`) answer the same %d-byte JSON body and count their requests.\n\n",
		r.Started.Format("2006-01-02 15:04:05 UTC"), r.Runs, r.Threads, r.Connections, r.Duration, len(UpstreamJSON))
	writeMachineMarkdown(&b, r.Machine, r.Pinning)
	if r.LoadAvgEnd != "" {
		fmt.Fprintf(&b, "- Load average at the end: %s. The machine is small and shared: absolute figures move between runs; "+
			"compare the ratios, measured side by side (the ratio table gives their range over the rounds).\n", r.LoadAvgEnd)
	}
	fmt.Fprintf(&b, "- Requests: every request of every route carries `%s`, one of %s user ids (a wrk Lua script cycles through requests it prepared per thread), "+
		"and the split hashes it (`traffic.sticky: header:%s`).\n", r.StickyHeader, FormatNumber(float64(r.Users)), r.StickyHeader)
	fmt.Fprintf(&b, "- Gateway CPU-µs/req: user+system CPU of the gateway over the run, until it is idle again, divided by the client requests wrk completed: "+
		"a shadow copy's cost (copying the request, the exchange with the candidate, the JSON comparison) is in its route's figure.\n")
	fmt.Fprintf(&b, "- Routes: `plain` proxies to `primary`; `split` splits users 90/10 over `primary` and `candidate` by the hash of their key; "+
		"`shadow10` is `plain` plus `shadow: {upstream: candidate, percent: 10}` (defaults otherwise: the body compared as JSON, at most 32 copies in flight); "+
		"`shadow100` copies every request, with `max_in_flight: %d` so that the bound drops (nearly) none of them.\n\n", shadow100InFlight(r.Connections))
	_ = r.routeTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\nWhere the requests went, summed over the measured runs (warmup excluded); the upstreams count what they serve, the shadow outcomes are the gateway's `%s`:\n\n", shadowMetric)
	_ = r.hitsTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\nEach route divided by `plain`, against issue 11's targets for the gateway's CPU-µs per client request. "+
		"The ratio and the verdict are of the medians, as in the other studies; \"per round\" takes the same ratio within each round (the two routes measured seconds apart) "+
		"and gives its median and range: how much the machine's noise moves it. \"+CPU-µs per copy\" divides a shadow route's extra CPU by its copies per client request.\n\n")
	_ = r.ratioTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n![requests/s and gateway CPU-µs per client request](traffic-latest.svg)\n\n")
	fmt.Fprintf(&b, "Raw runs and machine details: [traffic-latest.json](traffic-latest.json). %s\n\n"+
		"Reproduce:\n\n```sh\n%s\n```\n", rawDataNote(jsonName), r.Command)
	return b.Bytes()
}

// write stores the JSON, markdown and SVG reports in dir.
func (r *TrafficReport) write(dir string) error {
	r.Files = reportFiles(dir, "traffic", r.Started)
	return writeReports(r.Files, r, r.markdown(filepath.Base(r.Files[0])), r.chart())
}
