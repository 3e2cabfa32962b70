package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Target names, as they appear in reports.
const (
	TargetDirect  = "direct"
	TargetGateway = "wasmgate"
	TargetNginx   = "nginx"
	TargetBare    = "fasthttp-bare" // the floor: a bare fasthttp reverse proxy
	// TargetCacheHit is the gateway answering from its response cache: a
	// cached route of the same gateway process, every request a hit.
	TargetCacheHit = "wasmgate-cache-hit"
)

// proxyTargets is the order of targets inside a round.
var proxyTargets = []string{TargetDirect, TargetGateway, TargetNginx, TargetBare, TargetCacheHit}

const (
	defaultProxyDuration    = 5 * time.Second
	defaultProxyRuns        = 3
	defaultProxyConnections = 64
	defaultOutDir           = "bench/results"

	benchAdminToken = "bench-token"
	wrkThreads      = 2
	// warmup runs once per target before the first round: it opens the
	// proxies' upstream keep-alive pools and faults in their memory so
	// that round 1 is not an outlier.
	warmup       = time.Second
	readyTimeout = 20 * time.Second
	// maxBadShare is the share of non-2xx/3xx answers above which a
	// measurement is rejected: a proxy answering errors fast is not fast.
	maxBadShare = 0.001
)

// LoadOptions are the settings every wrk-driven benchmark (proxy,
// plugins) shares. Zero fields take the defaults noted.
type LoadOptions struct {
	// Gateway is the path of the wasmgate binary; the caller passes
	// os.Executable(). It runs the gateway (`serve`) and the upstream
	// (`bench upstream`).
	Gateway string
	// Duration of one measurement (default 5s). wrk counts whole seconds,
	// so it is rounded up to one.
	Duration time.Duration
	// Runs is the number of rounds (default 3); medians are reported.
	// Rounds interleave the targets so that slow drifts in machine noise
	// spread over all of them.
	Runs int
	// Connections is wrk's -c (default 64); wrk runs 2 threads.
	Connections int
	// OutDir receives the JSON, markdown and SVG reports (default
	// "bench/results").
	OutDir string
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
}

// registerFlags binds o's tunables to flags on fs, with the defaults as
// flag defaults, so that a command line and Command agree on names. what
// says what a round covers, conns what the connection count also sizes.
func (o *LoadOptions) registerFlags(fs *flag.FlagSet, what, conns string) {
	fs.DurationVar(&o.Duration, "duration", defaultProxyDuration, "length of one measurement (whole seconds)")
	fs.IntVar(&o.Runs, "runs", defaultProxyRuns, "rounds over all "+what+"; medians are reported")
	fs.IntVar(&o.Connections, "connections", defaultProxyConnections, "wrk connections (-c)"+conns)
	fs.StringVar(&o.OutDir, "out", defaultOutDir, "directory for the JSON, markdown and SVG reports")
}

// flags is the command-line form of o (after defaults).
func (o LoadOptions) flags() string {
	return fmt.Sprintf("-duration %s -runs %d -connections %d", o.Duration, o.Runs, o.Connections)
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Duration <= 0 {
		o.Duration = defaultProxyDuration
	}
	o.Duration = wholeSeconds(o.Duration)
	if o.Runs <= 0 {
		o.Runs = defaultProxyRuns
	}
	if o.Connections <= 0 {
		o.Connections = defaultProxyConnections
	}
	if o.OutDir == "" {
		o.OutDir = defaultOutDir
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// ProxyOptions configures RunProxy.
type ProxyOptions struct {
	LoadOptions
	// SkipTLS leaves out the TLS part (tls.go): HTTPS/1.1, HTTP/2 and TLS
	// handshakes, wasmgate vs nginx. The command line's -tls (default
	// true) is its inverse.
	SkipTLS bool
	// H2Streams is h2load's concurrent streams per connection (-m; default
	// 8); h2load opens Connections/H2Streams connections, at least one, so
	// that HTTP/2 has as many requests in flight as wrk.
	H2Streams int
}

// RegisterFlags binds o's tunables to flags on fs.
func (o *ProxyOptions) RegisterFlags(fs *flag.FlagSet) {
	o.registerFlags(fs, "targets", "")
	o.registerTLSFlags(fs)
}

// Command returns the command line that reproduces a run with o (after
// defaults), using the flags RegisterFlags defines.
func (o ProxyOptions) Command() string {
	o = o.withDefaults()
	tlsFlags := fmt.Sprintf(" -h2-streams %d", o.H2Streams)
	if o.SkipTLS {
		tlsFlags = " -tls=false"
	}
	return fmt.Sprintf("wasmgate bench proxy %s%s -out %s", o.flags(), tlsFlags, o.OutDir)
}

// wholeSeconds rounds d up to whole seconds, at least one: wrk's -d takes
// whole seconds.
func wholeSeconds(d time.Duration) time.Duration {
	return max(time.Second, (d+time.Second-1)/time.Second*time.Second)
}

func (o ProxyOptions) withDefaults() ProxyOptions {
	o.LoadOptions = o.LoadOptions.withDefaults()
	if o.H2Streams <= 0 {
		o.H2Streams = defaultH2Streams
	}
	return o
}

// LoadRun says how and where a wrk-driven benchmark ran: what every
// report of one starts with (its fields are inlined in the JSON).
type LoadRun struct {
	Started     time.Time   `json:"started"`
	Command     string      `json:"command"`
	Duration    string      `json:"duration"`
	Runs        int         `json:"runs"`
	Connections int         `json:"connections"`
	Threads     int         `json:"threads"`
	Machine     MachineInfo `json:"machine"`
	Pinning     Pinning     `json:"pinning"`
}

// newLoadRun describes a run about to start.
func newLoadRun(ctx context.Context, t tools, clk int, command string, d time.Duration, runs, conns int) LoadRun {
	return LoadRun{
		Started:     time.Now().UTC(),
		Command:     command,
		Duration:    d.String(),
		Runs:        runs,
		Connections: conns,
		Threads:     min(wrkThreads, conns),
		Machine:     machineInfo(ctx, t, clk),
		Pinning:     choosePinning(t.taskset),
	}
}

// ProxyReport is the outcome of RunProxy: every raw measurement, the medians
// and the ratios, and where and how it ran. It is also the JSON written to
// OutDir.
type ProxyReport struct {
	LoadRun
	// Measurements are the raw runs in the order they ran.
	Measurements []ProxyRun `json:"measurements"`
	// Medians has one entry per target, in the order direct, wasmgate, nginx.
	Medians []ProxySummary `json:"medians"`
	// VsDirect and VsNginx compare the gateway's medians with the direct
	// and the nginx ones (gateway divided by other).
	VsDirect ProxyRatio `json:"wasmgate_vs_direct"`
	VsNginx  ProxyRatio `json:"wasmgate_vs_nginx"`
	// VsBare compares it with a bare fasthttp proxy: the gateway's own cost.
	VsBare ProxyRatio `json:"wasmgate_vs_fasthttp_bare"`
	// CacheHitVsDirect compares the gateway answering from its cache with
	// the upstream reached directly.
	CacheHitVsDirect ProxyRatio `json:"cache_hit_vs_direct"`
	// TLS is the TLS part: HTTPS/1.1, HTTP/2 and handshakes, wasmgate vs
	// nginx; nil with SkipTLS.
	TLS *TLSReport `json:"tls,omitempty"`
	// Files are the reports written: the timestamped JSON, then
	// proxy-latest.md, .svg and .json, and with the TLS part
	// proxy-tls-latest.svg.
	Files []string `json:"files,omitempty"`
}

// ProxyRun is one wrk measurement of one target.
type ProxyRun struct {
	Round  int       `json:"round"`
	Target string    `json:"target"`
	URL    string    `json:"url"`
	Wrk    WrkResult `json:"wrk"`
	// CPUOf names the process tree CPUSeconds was measured on: "proxy"
	// (gateway or nginx master+worker), or "upstream" for the direct run.
	CPUOf               string  `json:"cpu_of"`
	CPUSeconds          float64 `json:"cpu_seconds"`
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request"`
	// UpstreamCPUMicrosPerRequest is the upstream's cost in every run, a
	// check that it did the same work behind each proxy.
	UpstreamCPUMicrosPerRequest float64 `json:"upstream_cpu_us_per_request"`
}

// ProxySummary is the per-target median over rounds.
type ProxySummary struct {
	Target                      string  `json:"target"`
	Runs                        int     `json:"runs"`
	RequestsPerSec              float64 `json:"requests_per_sec"`
	P50Micros                   float64 `json:"p50_us"`
	P99Micros                   float64 `json:"p99_us"`
	CPUOf                       string  `json:"cpu_of"`
	CPUMicrosPerRequest         float64 `json:"cpu_us_per_request"`
	UpstreamCPUMicrosPerRequest float64 `json:"upstream_cpu_us_per_request"`
}

// ProxyRatio is the gateway's median divided by another target's.
type ProxyRatio struct {
	RequestsPerSec      float64 `json:"requests_per_sec"`
	P99                 float64 `json:"p99"`
	CPUMicrosPerRequest float64 `json:"cpu_us_per_request"`
}

// MarshalJSON writes undefined ratios (NaN, ±Inf) as null, which
// encoding/json would otherwise refuse.
func (r ProxyRatio) MarshalJSON() ([]byte, error) {
	num := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	return json.Marshal(map[string]any{
		"requests_per_sec":   num(r.RequestsPerSec),
		"p99":                num(r.P99),
		"cpu_us_per_request": num(r.CPUMicrosPerRequest),
	})
}

// Summary returns the median of target, or false if it has none.
func (r *ProxyReport) Summary(target string) (ProxySummary, bool) {
	for _, s := range r.Medians {
		if s.Target == target {
			return s, true
		}
	}
	return ProxySummary{}, false
}

// proxyEnv is what RunProxy started: the children and where they listen.
type proxyEnv struct {
	runner
	o        ProxyOptions
	upstream *proc
	proxies  map[string]*proc // gateway and nginx, by target
	urls     map[string]string
	tls      *tlsEnv // nil with SkipTLS
}

// RunProxy measures, in one run on loopback, the upstream reached directly,
// the wasmgate gateway proxying to it and nginx proxying to it, prints the
// median table to out, and writes proxy-<UTC time>.json (with a copy as
// proxy-latest.json), proxy-latest.md and proxy-latest.svg to o.OutDir.
// Every child process is stopped before it returns, also when ctx is
// cancelled.
func RunProxy(ctx context.Context, o ProxyOptions, out io.Writer) (*ProxyReport, error) {
	o = o.withDefaults()
	if out == nil {
		out = io.Discard
	}
	if o.Gateway == "" {
		return nil, errors.New("bench proxy: no gateway binary given")
	}
	if _, err := os.Stat(o.Gateway); err != nil {
		return nil, fmt.Errorf("bench proxy: gateway binary: %w", err)
	}
	t, err := findTools(ctx, o.Progress, true)
	if err != nil {
		return nil, fmt.Errorf("bench proxy: %w", err)
	}
	if !o.SkipTLS {
		if t.h2load, err = findH2load(ctx, o.Progress); err != nil {
			return nil, fmt.Errorf("bench proxy: %w", err)
		}
	}
	clk := clockTicks()
	rep := &ProxyReport{LoadRun: newLoadRun(ctx, t, clk, o.Command(), o.Duration, o.Runs, o.Connections)}
	fmt.Fprintf(o.Progress, "bench: %s; %s; pinning: %s; load average %s\n",
		rep.Machine.WrkVersion, rep.Machine.NginxVersion, rep.Pinning, rep.Machine.LoadAvg)

	tmp, err := os.MkdirTemp("", "wasmgate-bench-proxy-")
	if err != nil {
		return nil, fmt.Errorf("bench proxy: %w", err)
	}
	defer os.RemoveAll(tmp)

	env := &proxyEnv{runner: runner{tools: t, pin: rep.Pinning, clk: float64(clk), conns: o.Connections},
		o: o, proxies: map[string]*proc{}, urls: map[string]string{}}
	defer env.stopAll()
	if !o.SkipTLS {
		if err := env.startTLS(tmp); err != nil {
			return nil, fmt.Errorf("bench proxy: %w", err)
		}
	}
	if err := env.start(ctx, tmp); err != nil {
		return nil, fmt.Errorf("bench proxy: %w", err)
	}

	for _, target := range proxyTargets {
		fmt.Fprintf(o.Progress, "bench: warmup %s (%s)\n", target, warmup)
		if _, err := env.wrk(ctx, env.urls[target], warmup); err != nil {
			return nil, fmt.Errorf("bench proxy: warmup %s: %w", target, err)
		}
	}
	if env.tls != nil {
		if err := env.warmupTLS(ctx); err != nil {
			return nil, fmt.Errorf("bench proxy: %w", err)
		}
	}
	for round := 1; round <= o.Runs; round++ {
		for _, target := range proxyTargets {
			run, err := env.measure(ctx, round, target)
			if err != nil {
				return nil, fmt.Errorf("bench proxy: round %d, %s: %w", round, target, err)
			}
			rep.Measurements = append(rep.Measurements, run)
			fmt.Fprintf(o.Progress, "bench: round %d/%d %-8s %s req/s, p50 %s, p99 %s, %s CPU-µs/req (%s)\n",
				round, o.Runs, target, FormatNumber(run.Wrk.RequestsPerSec), FormatMicros(run.Wrk.P50Micros),
				FormatMicros(run.Wrk.P99Micros), FormatNumber(run.CPUMicrosPerRequest), run.CPUOf)
		}
		if env.tls != nil {
			if err := env.roundTLS(ctx, round); err != nil {
				return nil, fmt.Errorf("bench proxy: %w", err)
			}
		}
	}
	env.stopAll() // free the CPUs before writing reports

	if env.tls != nil {
		rep.TLS = env.tls.report
	}
	rep.summarize()
	if err := rep.proxyTable().WriteText(out); err != nil {
		return rep, fmt.Errorf("bench proxy: %w", err)
	}
	if err := rep.ratioTable().WriteText(out); err != nil {
		return rep, fmt.Errorf("bench proxy: %w", err)
	}
	if rep.TLS != nil {
		if err := rep.TLS.writeText(out, rep); err != nil {
			return rep, fmt.Errorf("bench proxy: %w", err)
		}
	}
	if err := rep.write(o.OutDir); err != nil {
		return rep, fmt.Errorf("bench proxy: %w", err)
	}
	fmt.Fprintf(out, "reports: %s\n", strings.Join(rep.Files, ", "))
	return rep, nil
}

// start launches the upstream, the gateway and nginx, and waits until each
// answers a request correctly.
func (e *proxyEnv) start(ctx context.Context, tmp string) error {
	ports, err := freePorts(7)
	if err != nil {
		return err
	}
	upAddr := "127.0.0.1:" + strconv.Itoa(ports[0])
	gwAddr := "127.0.0.1:" + strconv.Itoa(ports[1])
	adminAddr := "127.0.0.1:" + strconv.Itoa(ports[2])
	ngxAddr := "127.0.0.1:" + strconv.Itoa(ports[3])
	e.urls[TargetDirect] = "http://" + upAddr + "/"
	e.urls[TargetGateway] = "http://" + gwAddr + "/"
	e.urls[TargetNginx] = "http://" + ngxAddr + "/"
	bareAddr := "127.0.0.1:" + strconv.Itoa(ports[4])
	e.urls[TargetBare] = "http://" + bareAddr + "/"
	e.urls[TargetCacheHit] = "http://" + gwAddr + "/cached/"
	var gwTLS gatewayTLS
	var ngxTLS nginxTLS
	if e.tls != nil {
		e.tls.addrs[TargetGateway] = "127.0.0.1:" + strconv.Itoa(ports[5])
		e.tls.addrs[TargetNginx] = "127.0.0.1:" + strconv.Itoa(ports[6])
		gwTLS = gatewayTLS{Address: e.tls.addrs[TargetGateway], Cert: e.tls.certFile, Key: e.tls.keyFile}
		ngxTLS = nginxTLS{Address: e.tls.addrs[TargetNginx], Cert: e.tls.certFile, Key: e.tls.keyFile}
	}

	// The upstream.
	up, err := e.launch("upstream", e.pin.LoadCPU,
		[]string{e.o.Gateway, "bench", "upstream", "-addr", upAddr}, nil)
	if err != nil {
		return err
	}
	e.upstream = up
	if err := waitHTTP(ctx, up, e.urls[TargetDirect], nil, true); err != nil {
		return err
	}
	fmt.Fprintf(e.o.Progress, "bench: upstream ready on %s\n", upAddr)

	// The gateway.
	gwConf := filepath.Join(tmp, "gateway.yaml")
	if err := os.WriteFile(gwConf, gatewayConfigTLS(gwAddr, adminAddr, upAddr, gwTLS), 0o600); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	gwEnv := append(os.Environ(), "WASMGATE_ADMIN_TOKEN="+benchAdminToken, "GOMAXPROCS=1")
	gw, err := e.launch("gateway", e.pin.ProxyCPU,
		[]string{e.o.Gateway, "serve", "--config", gwConf}, gwEnv)
	if err != nil {
		return err
	}
	e.proxies[TargetGateway] = gw
	auth := http.Header{"Authorization": {"Bearer " + benchAdminToken}}
	if err := waitHTTP(ctx, gw, "http://"+adminAddr+"/readyz", auth, false); err != nil {
		return err
	}
	e.proxies[TargetCacheHit] = gw
	for _, target := range []string{TargetGateway, TargetCacheHit} {
		if err := waitHTTP(ctx, gw, e.urls[target], nil, true); err != nil {
			return err
		}
	}
	if e.tls != nil {
		if err := e.waitTLS(ctx, gw, TargetGateway); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.o.Progress, "bench: gateway ready on %s\n", gwAddr)

	// nginx.
	ngxConf := filepath.Join(tmp, "nginx.conf")
	if err := os.WriteFile(ngxConf, nginxConfig(tmp, ngxAddr, upAddr, e.o.Connections, e.pin, ngxTLS), 0o600); err != nil {
		return fmt.Errorf("nginx config: %w", err)
	}
	ngx, err := e.launch("nginx", e.pin.ProxyCPU, []string{e.tools.nginx,
		"-p", tmp + "/", "-c", ngxConf, "-e", filepath.Join(tmp, "error.log"), "-g", "daemon off;"}, nil)
	if err != nil {
		return err
	}
	e.proxies[TargetNginx] = ngx
	err = waitHTTP(ctx, ngx, e.urls[TargetNginx], nil, true)
	if err == nil && e.tls != nil {
		err = e.waitTLS(ctx, ngx, TargetNginx)
	}
	if err != nil {
		if b, rerr := os.ReadFile(filepath.Join(tmp, "error.log")); rerr == nil && len(b) > 0 {
			err = fmt.Errorf("%w\nnginx error.log:\n%s", err, lastBytes(b, 4<<10))
		}
		return err
	}
	fmt.Fprintf(e.o.Progress, "bench: nginx ready on %s\n", ngxAddr)

	// The bare fasthttp proxy: same process settings as the gateway.
	bare, err := e.launch("bare proxy", e.pin.ProxyCPU,
		[]string{e.o.Gateway, "bench", "bare-proxy", "-addr", bareAddr, "-upstream", upAddr}, gwEnv)
	if err != nil {
		return err
	}
	e.proxies[TargetBare] = bare
	if err := waitHTTP(ctx, bare, e.urls[TargetBare], nil, true); err != nil {
		return err
	}
	fmt.Fprintf(e.o.Progress, "bench: bare fasthttp proxy ready on %s\n", bareAddr)
	if e.tls != nil {
		return e.probeTLS(ctx)
	}
	return nil
}

// measure runs wrk once against target and reads the CPU its proxy (or, for
// the direct run, the upstream) spent meanwhile.
func (e *proxyEnv) measure(ctx context.Context, round int, target string) (ProxyRun, error) {
	run := ProxyRun{Round: round, Target: target, URL: e.urls[target], CPUOf: "proxy"}
	cpuProc := e.proxies[target]
	if target == TargetDirect {
		cpuProc, run.CPUOf = e.upstream, "upstream"
	}
	l, err := e.load(ctx, run.URL, e.o.Duration, cpuProc, e.upstream)
	run.Wrk = l.wrk
	if err != nil {
		return run, err
	}
	run.CPUSeconds = l.cpuSeconds
	run.CPUMicrosPerRequest = l.cpuMicrosPerRequest()
	run.UpstreamCPUMicrosPerRequest = l.upstreamSeconds * 1e6 / float64(l.wrk.Requests)
	return run, nil
}

// runner is what every wrk-driven benchmark shares: the tools, the pinning,
// the clock rate of /proc's CPU times, wrk's connection count, and the
// children started so far, which stopAll ends in reverse order.
type runner struct {
	tools tools
	pin   Pinning
	clk   float64 // clock ticks per second
	conns int     // wrk -c
	procs []*proc // everything started, in start order
	// wrkTimeout is wrk's --timeout; 0 keeps wrk's default (2s).
	wrkTimeout time.Duration
	// script, when set, is a Lua script every wrk run loads (-s): the
	// traffic study's varying user ids.
	script string
	// settle, when positive, extends a measurement's CPU window past the
	// end of wrk until the measured process is idle again (for at most
	// settle), so that work a run leaves behind, such as garbage
	// collection, is charged to that run rather than to the next.
	settle time.Duration
}

// launch starts a child pinned to cpu (when pinning is on) and records it
// for stopAll.
func (r *runner) launch(name string, cpu int, argv, env []string) (*proc, error) {
	p, err := startProc(name, r.pin.wrap(r.tools.taskset, cpu, argv), env)
	if err != nil {
		return nil, err
	}
	r.procs = append(r.procs, p)
	return p, nil
}

// stopAll stops the children, last started first, and is safe to call twice.
func (r *runner) stopAll() {
	for i := len(r.procs) - 1; i >= 0; i-- {
		r.procs[i].stop()
	}
	r.procs = nil
}

// loadRun is one wrk run and the CPU time two process trees spent during it.
type loadRun struct {
	wrk             WrkResult
	cpuSeconds      float64 // of the measured process tree
	upstreamSeconds float64 // of the upstream
}

// cpuMicrosPerRequest is the measured tree's CPU time per completed request.
func (l loadRun) cpuMicrosPerRequest() float64 {
	return l.cpuSeconds * 1e6 / float64(l.wrk.Requests)
}

// load runs wrk against url for d, with the extra request headers hdr
// ("Name: value"), and reads the CPU time of of's and upstream's process
// trees before and after. A run that completed nothing, or whose share of
// non-2xx/3xx answers is above maxBadShare, is an error: a proxy answering
// errors fast is not fast.
func (r *runner) load(ctx context.Context, url string, d time.Duration, of, upstream *proc, hdr ...string) (loadRun, error) {
	var l loadRun
	cpu0, err := treeCPUTicks(of.pid())
	if err != nil {
		return l, err
	}
	up0, err := treeCPUTicks(upstream.pid())
	if err != nil {
		return l, err
	}
	res, err := r.wrk(ctx, url, d, hdr...)
	if err != nil {
		return l, err
	}
	for _, p := range []*proc{of, upstream} {
		if p.exited() {
			return l, p.exitError()
		}
	}
	cpu1, err := waitIdle(ctx, of.pid(), r.settle)
	if err != nil {
		return l, err
	}
	up1, err := treeCPUTicks(upstream.pid())
	if err != nil {
		return l, err
	}
	l.wrk = res
	if res.Requests == 0 {
		return l, errors.New("wrk completed no requests")
	}
	if bad := res.Non2xx3xx; float64(bad) > maxBadShare*float64(res.Requests) {
		return l, fmt.Errorf("%d of %d responses were not 2xx/3xx", bad, res.Requests)
	}
	l.cpuSeconds = float64(cpu1-cpu0) / r.clk
	l.upstreamSeconds = float64(up1-up0) / r.clk
	return l, nil
}

// idleTicks is the most CPU, in clock ticks per idleSample, of a process
// waitIdle takes for idle: one tick is the resolution of /proc.
const (
	idleTicks  = 1
	idleSample = 100 * time.Millisecond
)

// waitIdle returns pid's tree CPU time once it has used at most idleTicks in
// an idleSample, or when within has passed; within <= 0 reads it at once.
func waitIdle(ctx context.Context, pid int, within time.Duration) (uint64, error) {
	ticks, err := treeCPUTicks(pid)
	if err != nil || within <= 0 {
		return ticks, err
	}
	for deadline := time.Now().Add(within); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		case <-time.After(idleSample):
		}
		next, err := treeCPUTicks(pid)
		if err != nil {
			return 0, err
		}
		if next-ticks <= idleTicks {
			return next, nil
		}
		ticks = next
	}
	return ticks, nil
}

// wrk runs one `wrk --latency` against url for d (whole seconds), pinned with
// the load, sending the extra headers hdr ("Name: value"), and parses its
// output. Cancelling ctx kills wrk's process group.
func (r *runner) wrk(ctx context.Context, url string, d time.Duration, hdr ...string) (WrkResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(d / time.Second))
	args := []string{r.tools.wrk, "--latency",
		"-t" + strconv.Itoa(min(wrkThreads, r.conns)), "-c" + strconv.Itoa(r.conns),
		"-d" + secs + "s"}
	if r.wrkTimeout > 0 {
		args = append(args, "--timeout", strconv.Itoa(int(wholeSeconds(r.wrkTimeout)/time.Second))+"s")
	}
	if r.script != "" {
		args = append(args, "-s", r.script)
	}
	for _, h := range hdr {
		args = append(args, "-H", h)
	}
	argv := r.pin.wrap(r.tools.taskset, r.pin.LoadCPU, append(args, url))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	stderr := newTailBuffer(4 << 10)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return WrkResult{}, fmt.Errorf("wrk %s: %w", url, context.Cause(ctx))
		}
		return WrkResult{}, fmt.Errorf("wrk %s: %w: %s%s", url, err, stderr.String(), lastBytes(stdout.Bytes(), 2<<10))
	}
	res, err := ParseWrk(stdout.Bytes())
	if err != nil {
		return res, fmt.Errorf("wrk %s: %w\n%s", url, err, lastBytes(stdout.Bytes(), 2<<10))
	}
	return res, nil
}

// waitHTTP polls url until it answers 200 (and, with wantBody, UpstreamBody),
// giving up after readyTimeout, when p exits, or when ctx is done.
func waitHTTP(ctx context.Context, p *proc, url string, hdr http.Header, wantBody bool) error {
	return waitHTTPWithin(ctx, p, url, hdr, wantBody, readyTimeout)
}

// waitHTTPWithin is waitHTTP giving up after timeout instead: a gateway that
// compiles plugins at startup needs longer than a bare proxy.
func waitHTTPWithin(ctx context.Context, p *proc, url string, hdr http.Header, wantBody bool, timeout time.Duration) error {
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DisableKeepAlives: true}, // no proxy from the environment either
	}
	defer client.CloseIdleConnections()
	return waitHTTPClient(ctx, p, client, url, hdr, wantBody, timeout, nil)
}

// waitHTTPClient is waitHTTPWithin with the given client, and check (when
// not nil) as a further condition on the answer.
func waitHTTPClient(ctx context.Context, p *proc, client *http.Client, url string, hdr http.Header, wantBody bool,
	timeout time.Duration, check func(*http.Response) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for attempt := 0; ; attempt++ {
		if p.exited() {
			return p.exitError()
		}
		last = getOnce(ctx, client, url, hdr, wantBody, check)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %w; its output:\n%s", p.name, timeout, last, p.out.String())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", p.name, context.Cause(ctx))
		case <-time.After(min(50*time.Millisecond<<min(attempt, 3), 250*time.Millisecond)):
		}
	}
}

func getOnce(ctx context.Context, client *http.Client, url string, hdr http.Header, wantBody bool, check func(*http.Response) error) error {
	resp, body, err := fetch(ctx, client, url, hdr, 64<<10)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(resp); err != nil {
			return err
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, lastBytes(body, 512))
	}
	if wantBody && string(body) != UpstreamBody {
		return fmt.Errorf("GET %s: body %q is not the upstream's", url, lastBytes(body, 512))
	}
	return nil
}

// fetch GETs url with the headers hdr and returns the response, its body
// closed, and the body, which must not exceed limit bytes.
func fetch(ctx context.Context, client *http.Client, url string, hdr http.Header, limit int64) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	if int64(len(body)) > limit {
		return nil, nil, fmt.Errorf("GET %s: body larger than %d bytes", url, limit)
	}
	return resp, body, nil
}

// freePorts reserves n distinct loopback ports by listening on port 0, then
// releases them for the children to bind. Holding all n listeners until the
// end keeps the kernel from handing out the same port twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserving a port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// gatewayConfig is the gateway's YAML: one prefix route to the upstream and
// one cached route (the upstream says nothing about caching: default_ttl
// keeps its answer for the whole run), no access log, no config watching.
func gatewayConfig(listen, admin, upstream string) []byte {
	return gatewayConfigTLS(listen, admin, upstream, gatewayTLS{})
}

// gatewayTLS is the gateway's HTTPS listener (listen.tls); the zero value
// is none.
type gatewayTLS struct{ Address, Cert, Key string }

// gatewayConfigTLS is gatewayConfig with the HTTPS listener t, when t has
// an address: the same routes over HTTPS/1.1 and HTTP/2, the server's
// defaults otherwise.
func gatewayConfigTLS(listen, admin, upstream string, t gatewayTLS) []byte {
	tlsBlock := ""
	if t.Address != "" {
		tlsBlock = fmt.Sprintf(", tls: {address: %q, certificates: [{cert: %q, key: %q}]}", t.Address, t.Cert, t.Key)
	}
	return fmt.Appendf(nil, `# generated by wasmgate bench proxy
listen: {address: %q%s}
admin: {address: %q, watch_config: false}
log: {level: warn, access_log: "off"}
upstreams:
  - name: bench
    targets: [{address: %q}]
routes:
  - name: all
    match: {path_prefix: /}
    upstream: bench
  - name: cached
    match: {path_prefix: /cached}
    upstream: bench
    cache: {max_bytes: 1MiB, default_ttl: 1h}
`, listen, tlsBlock, admin, upstream)
}

// nginxTLS is nginx's HTTPS listener; the zero value is none.
type nginxTLS struct{ Address, Cert, Key string }

// nginxConfig is nginx's configuration as a keep-alive reverse proxy, tuned
// like the gateway: one worker (on the proxy CPU when pinned), no access log,
// a keep-alive upstream pool and no per-connection request cap on either side.
// With t, a second server terminates TLS on t.Address, HTTP/2 by ALPN
// (nginx 1.22 spells it `listen … ssl http2`; 1.25.1 moved it to `http2
// on`), the same location; nginx's TLS defaults otherwise (session tickets
// on, no session cache), TLS 1.2 and 1.3 like the gateway.
func nginxConfig(prefix, listen, upstream string, conns int, pin Pinning, t nginxTLS) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# generated by wasmgate bench proxy\nworker_processes 1;\n")
	if pin.Tool == "taskset" && pin.ProxyCPU >= 0 && pin.ProxyCPU < 64 {
		// The mask's rightmost digit is CPU 0.
		fmt.Fprintf(&b, "worker_cpu_affinity 1%s;\n", strings.Repeat("0", pin.ProxyCPU))
	}
	fmt.Fprintf(&b, `pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
    worker_connections %[4]d;
}
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    upstream bench {
        server %[3]s;
        keepalive %[5]d;
        keepalive_requests 100000000;
    }
    server {
        listen %[2]s;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
`, filepath.Clean(prefix), listen, upstream, max(1024, 4*conns), max(16, conns))
	if t.Address != "" {
		fmt.Fprintf(&b, `    server {
        listen %s ssl http2;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
`, t.Address, t.Cert, t.Key)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// summarize fills Medians and the ratios from Measurements.
func (r *ProxyReport) summarize() {
	r.Medians = r.Medians[:0]
	for _, target := range proxyTargets {
		var rps, p50, p99, cpu, upcpu []float64
		s := ProxySummary{Target: target}
		for _, m := range r.Measurements {
			if m.Target != target {
				continue
			}
			s.CPUOf = m.CPUOf
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
	gw, _ := r.Summary(TargetGateway)
	direct, _ := r.Summary(TargetDirect)
	nginx, _ := r.Summary(TargetNginx)
	r.VsDirect = ratioOf(gw, direct)
	r.VsNginx = ratioOf(gw, nginx)
	bare, _ := r.Summary(TargetBare)
	r.VsBare = ratioOf(gw, bare)
	hit, _ := r.Summary(TargetCacheHit)
	r.CacheHitVsDirect = ratioOf(hit, direct)
	if r.TLS != nil {
		r.TLS.summarize()
	}
}

func ratioOf(a, b ProxySummary) ProxyRatio {
	return ProxyRatio{
		RequestsPerSec:      div(a.RequestsPerSec, b.RequestsPerSec),
		P99:                 div(a.P99Micros, b.P99Micros),
		CPUMicrosPerRequest: div(a.CPUMicrosPerRequest, b.CPUMicrosPerRequest),
	}
}

// div is a/b, NaN when b is zero (a ratio to nothing is undefined, not infinite).
func div(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// median of xs (not modified); NaN for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// proxyTable is the median table printed and written to markdown.
func (r *ProxyReport) proxyTable() *Table {
	t := &Table{
		Columns: []string{"target", "req/s", "p50", "p99", "proxy CPU-µs/req", "req/s vs direct", "CPU vs nginx"},
		Align:   []Align{AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	direct, _ := r.Summary(TargetDirect)
	nginx, _ := r.Summary(TargetNginx)
	for _, s := range r.Medians {
		cpu := FormatNumber(s.CPUMicrosPerRequest)
		cpuVs := FormatRatio(div(s.CPUMicrosPerRequest, nginx.CPUMicrosPerRequest))
		if s.CPUOf == "upstream" {
			// No proxy in the path: the figure is the upstream's own cost.
			cpu += " (upstream)"
			cpuVs = "-"
		}
		t.Rows = append(t.Rows, []string{
			s.Target,
			FormatNumber(s.RequestsPerSec),
			FormatMicros(s.P50Micros),
			FormatMicros(s.P99Micros),
			cpu,
			FormatRatio(div(s.RequestsPerSec, direct.RequestsPerSec)),
			cpuVs,
		})
	}
	return t
}

// ratioTable states the gateway's ratios explicitly.
func (r *ProxyReport) ratioTable() *Table {
	return &Table{
		Columns: []string{"wasmgate ÷", "req/s", "p99", "CPU-µs/req"},
		Align:   []Align{AlignLeft, AlignRight, AlignRight, AlignRight},
		Rows: [][]string{
			{"direct", FormatRatio(r.VsDirect.RequestsPerSec), FormatRatio(r.VsDirect.P99), FormatRatio(r.VsDirect.CPUMicrosPerRequest)},
			{"nginx", FormatRatio(r.VsNginx.RequestsPerSec), FormatRatio(r.VsNginx.P99), FormatRatio(r.VsNginx.CPUMicrosPerRequest)},
			{"fasthttp-bare", FormatRatio(r.VsBare.RequestsPerSec), FormatRatio(r.VsBare.P99), FormatRatio(r.VsBare.CPUMicrosPerRequest)},
			{"direct, when wasmgate answers from its cache", FormatRatio(r.CacheHitVsDirect.RequestsPerSec), FormatRatio(r.CacheHitVsDirect.P99), FormatRatio(r.CacheHitVsDirect.CPUMicrosPerRequest)},
		},
	}
}

// chart is the SVG: req/s and CPU-µs/req per target.
func (r *ProxyReport) chart() *BarChart {
	return loadChart("Proxy benchmark", r.Runs, r.Threads, r.Connections, r.Duration, "CPU-µs per request (lower is better; direct: the upstream's)",
		r.Medians, func(s ProxySummary) (string, float64, float64) {
			return s.Target, float64(s.RequestsPerSec), float64(s.CPUMicrosPerRequest)
		})
}

// markdown renders proxy-latest.md.
func (r *ProxyReport) markdown(jsonName string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Proxy benchmark\n\n")
	fmt.Fprintf(&b, "%s. Medians of %d runs of `wrk --latency -t%d -c%d -d%s` per target on loopback; rounds interleave the targets.\n\n",
		r.Started.Format("2006-01-02 15:04:05 UTC"), r.Runs, r.Threads, r.Connections, r.Duration)
	writeMachineMarkdown(&b, r.Machine, r.Pinning)
	fmt.Fprintf(&b, "- CPU-µs/req: user+system CPU of the proxy's process tree (nginx: master and worker) over the run, per completed request; the direct row shows the upstream's own.\n\n")
	_ = r.proxyTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\nwasmgate divided by the other target's median:\n\n")
	_ = r.ratioTable().WriteMarkdown(&b)
	fmt.Fprintf(&b, "\n![requests/s and CPU-µs per request](proxy-latest.svg)\n")
	if r.TLS != nil {
		r.TLS.writeMarkdown(&b, r)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Raw runs and machine details: [proxy-latest.json](proxy-latest.json). %s\n\nReproduce:\n\n```sh\n%s\n```\n", rawDataNote(jsonName), r.Command)
	return b.Bytes()
}

// write stores the JSON, markdown and SVG reports in dir, and with the TLS
// part its chart, proxy-tls-latest.svg.
func (r *ProxyReport) write(dir string) error {
	r.Files = reportFiles(dir, "proxy", r.Started)
	if r.TLS == nil {
		return writeReports(r.Files, r, r.markdown(filepath.Base(r.Files[0])), r.chart())
	}
	tlsSVG := filepath.Join(dir, "proxy-tls-latest.svg")
	r.Files = append(r.Files, tlsSVG)
	if err := writeReports(r.Files[:4], r, r.markdown(filepath.Base(r.Files[0])), r.chart()); err != nil {
		return err
	}
	var svg bytes.Buffer
	if err := r.TLS.chart(r.Runs).WriteSVG(&svg); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	if err := os.WriteFile(tlsSVG, svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	return nil
}

// reportFiles names the reports of a benchmark run: the timestamped JSON
// (NAME-<UTC time>.json), then NAME-latest.md, .svg and .json.
func reportFiles(dir, name string, started time.Time) []string {
	// NAME-latest.json repeats the timestamped file so that the committed
	// markdown (the repository keeps only *-latest.*) links to data it has.
	return []string{
		filepath.Join(dir, name+"-"+started.UTC().Format("20060102T150405Z")+".json"),
		filepath.Join(dir, name+"-latest.md"),
		filepath.Join(dir, name+"-latest.svg"),
		filepath.Join(dir, name+"-latest.json"),
	}
}

// writeReports writes report as JSON, md and chart as SVG to the files
// reportFiles named, creating their directory.
func writeReports(files []string, report any, md []byte, chart *BarChart) error {
	if len(files) != 4 {
		return fmt.Errorf("reports: %d file names, want 4", len(files))
	}
	if err := os.MkdirAll(filepath.Dir(files[0]), 0o755); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	js, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	var svg bytes.Buffer
	if err := chart.WriteSVG(&svg); err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	js = append(js, '\n')
	for i, content := range [][]byte{js, md, svg.Bytes(), js} {
		if err := os.WriteFile(files[i], content, 0o644); err != nil {
			return fmt.Errorf("reports: %w", err)
		}
	}
	return nil
}

// writeMachineMarkdown writes the markdown bullets saying where and how a
// benchmark ran: machine, tool versions, pinning.
func writeMachineMarkdown(b *bytes.Buffer, m MachineInfo, pin Pinning) {
	fmt.Fprintf(b, "- Machine: %s, %d CPUs, Linux %s, %s; load average at start %s\n",
		m.CPUModel, m.NProc, m.Kernel, m.GoVersion, m.LoadAvg)
	var tools []string
	for _, v := range []string{m.NginxVersion, m.WrkVersion, m.H2loadVersion} {
		if v != "" {
			tools = append(tools, v)
		}
	}
	fmt.Fprintf(b, "- Tools: %s\n", strings.Join(tools, "; "))
	fmt.Fprintf(b, "- Pinning: %s\n", pin)
}

// lastBytes returns at most the last n bytes of b as a string.
func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
