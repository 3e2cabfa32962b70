package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wasmgate/wasmgate/host/config"
)

// h2loadOut is verbatim output of h2load 1.52.0 (Debian 12) against the
// gateway.
const h2loadOut = `starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0s of warm-up time and 2s of main duration for measurements.
TLS Protocol: TLSv1.3
Cipher: TLS_AES_128_GCM_SHA256
Server Temp Key: X25519 253 bits
Application protocol: h2
Warm-up phase is over for thread #0.
Main benchmark duration is started for thread #0.
Main benchmark duration is over for thread #0. Stopping all clients.
Stopped all clients for thread #0

finished in 2.01s, 8368.50 req/s, 925.73KB/s
requests: 16737 total, 16769 started, 16737 done, 16737 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 16745 2xx, 0 3xx, 0 4xx, 2 5xx
traffic: 1.81MB (1895904) total, 510.87KB (523130) headers (space savings 81.51%), 1.02MB (1071168) data
                     min         max         mean         sd        +/- sd
time for request:      239us     72.09ms      3.65ms      3.49ms    95.75%
time for connect:     6.88ms     12.53ms      9.86ms      2.51ms    50.00%
time to 1st byte:    16.68ms     31.07ms     27.10ms      6.96ms    75.00%
req/s           :    2075.42     2112.61     2091.23       15.73    50.00%
`

func TestParseH2load(t *testing.T) {
	r, err := ParseH2load([]byte(h2loadOut))
	if err != nil {
		t.Fatal(err)
	}
	want := H2loadResult{Requests: 16737, Seconds: 2.01, RequestsPerSec: 8368.5, Non2xx: 2,
		TLSProtocol: "TLSv1.3", Cipher: "TLS_AES_128_GCM_SHA256", TempKey: "X25519 253 bits", ALPN: "h2"}
	if math.Abs(r.Seconds-want.Seconds) > 1e-9 {
		t.Errorf("seconds = %v", r.Seconds)
	}
	r.Seconds = want.Seconds
	if r != want {
		t.Errorf("ParseH2load =\n%+v\nwant\n%+v", r, want)
	}
	if got := r.Negotiated(); got != "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519" {
		t.Errorf("Negotiated() = %q", got)
	}

	// A run that reached nothing still parses; h2load exits 0 then, and
	// the caller rejects it by its counts.
	failed := strings.NewReplacer("16737 succeeded, 0 failed, 0 errored", "0 succeeded, 4 failed, 4 errored",
		"8368.50 req/s", "0.00 req/s", "finished in 2.01s", "finished in 1.13ms").Replace(h2loadOut)
	r, err = ParseH2load([]byte(failed))
	if err != nil || r.Requests != 0 || r.Failed != 4 || r.Errored != 4 || math.Abs(r.Seconds-0.00113) > 1e-12 {
		t.Errorf("failed run = %+v, %v", r, err)
	}
	for name, in := range map[string]string{
		"no finished line": strings.Replace(h2loadOut, "finished in", "done in", 1),
		"no requests line": strings.Replace(h2loadOut, "requests: ", "reqs: ", 1),
		"no status line":   strings.Replace(h2loadOut, "status codes: ", "codes: ", 1),
		"bad count":        strings.Replace(h2loadOut, "16737 succeeded", "x succeeded", 1),
		"no succeeded":     strings.Replace(h2loadOut, "16737 succeeded, ", "", 1),
		"no req/s":         strings.Replace(h2loadOut, "8368.50 req/s", "8368.50 rps", 1),
		"nan req/s":        strings.Replace(h2loadOut, "8368.50 req/s", "nan req/s", 1),
		"empty":            "",
	} {
		if _, err := ParseH2load([]byte(in)); err == nil {
			t.Errorf("%s: ParseH2load accepted it", name)
		}
	}
}

func FuzzParseH2load(f *testing.F) {
	f.Add([]byte(h2loadOut))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseH2load(in)
		if err != nil {
			return
		}
		if math.IsNaN(r.RequestsPerSec) || r.RequestsPerSec < 0 || r.Seconds < 0 || r.Requests < 0 {
			t.Fatalf("accepted output yields %+v", r)
		}
	})
}

func TestParseH2loadLog(t *testing.T) {
	var b strings.Builder
	for i := 1; i <= 100; i++ { // 1..100 µs, out of order
		v := (i*37)%100 + 1
		b.WriteString("1796379234189937\t200\t" + strconv.Itoa(v) + "\n")
	}
	n, p50, p99, err := parseH2loadLog([]byte(b.String()))
	if err != nil || n != 100 || p50 != 50 || p99 != 99 {
		t.Errorf("parseH2loadLog = %d, %v, %v, %v; want 100, 50, 99", n, p50, p99, err)
	}
	n, p50, _, err = parseH2loadLog(nil)
	if err != nil || n != 0 || !math.IsNaN(p50) {
		t.Errorf("empty log = %d, %v, %v", n, p50, err)
	}
	for _, bad := range []string{"1\t200\n", "1\tx\t3\n", "1\t200\t-3\n"} {
		if _, _, _, err := parseH2loadLog([]byte(bad)); err == nil {
			t.Errorf("parseH2loadLog(%q) accepted it", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4}
	for _, tt := range []struct{ p, want float64 }{{0, 1}, {25, 1}, {50, 2}, {51, 3}, {99, 4}, {100, 4}} {
		if got := percentile(s, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
}

func TestTLSFlags(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		skip    bool
		streams int
	}{
		{nil, false, 8},
		{[]string{"-tls=false"}, true, 8},
		{[]string{"-tls", "-h2-streams", "4"}, false, 4},
		{[]string{"-tls=0"}, true, 8},
	} {
		var o ProxyOptions
		fs := flag.NewFlagSet("bench proxy", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.RegisterFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if o.SkipTLS != tt.skip || o.H2Streams != tt.streams {
			t.Errorf("%v: SkipTLS %v, H2Streams %d; want %v, %d", tt.args, o.SkipTLS, o.H2Streams, tt.skip, tt.streams)
		}
	}
	fs := flag.NewFlagSet("bench proxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	new(ProxyOptions).RegisterFlags(fs)
	if err := fs.Parse([]string{"-tls=maybe"}); err == nil {
		t.Error("-tls=maybe accepted")
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	if !strings.Contains(help.String(), "(default true)") {
		t.Errorf("-tls does not say it is on by default:\n%s", help.String())
	}
	for _, tt := range []struct{ conns, streams, want int }{{64, 8, 8}, {8, 8, 1}, {4, 8, 1}, {64, 1, 64}} {
		o := ProxyOptions{LoadOptions: LoadOptions{Connections: tt.conns}, H2Streams: tt.streams}
		if got := o.h2Connections(); got != tt.want {
			t.Errorf("h2Connections(%d conns, %d streams) = %d, want %d", tt.conns, tt.streams, got, tt.want)
		}
	}
}

// TestGatewayConfigTLSParses feeds the generated HTTPS listener to the
// real config loader.
func TestGatewayConfigTLSParses(t *testing.T) {
	te, err := newTLSEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	gt := gatewayTLS{Address: "127.0.0.1:1004", Cert: te.certFile, Key: te.keyFile}
	cfg, err := config.Parse("gateway.yaml", gatewayConfigTLS("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003", gt))
	if err != nil {
		t.Fatalf("generated gateway config rejected: %v", err)
	}
	tc := cfg.Listen.TLS
	if tc == nil || tc.Address != gt.Address || len(tc.Certificates) != 1 || tc.Certificates[0].Cert != te.certFile ||
		tc.Certificates[0].Key != te.keyFile || tc.RedirectHTTP || cfg.Listen.Address != "127.0.0.1:1001" || len(cfg.Routes) != 2 {
		t.Errorf("generated config decoded to %+v, tls %+v", cfg.Listen, tc)
	}
	if !bytes.Equal(gatewayConfig("a:1", "b:2", "c:3"), gatewayConfigTLS("a:1", "b:2", "c:3", gatewayTLS{})) {
		t.Error("gatewayConfig is not gatewayConfigTLS without TLS")
	}
}

// TestNginxConfigTLS checks the generated HTTPS server with `nginx -t`,
// which loads the certificate.
func TestNginxConfigTLS(t *testing.T) {
	nginx, err := lookTool("nginx")
	if err != nil {
		skipUnlessCI(t, "nginx not installed")
	}
	dir := t.TempDir()
	te, err := newTLSEnv(dir)
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxConfig(dir, "127.0.0.1:1", "127.0.0.1:2", 64, Pinning{Tool: "none", ProxyCPU: -1, LoadCPU: -1},
		nginxTLS{Address: "127.0.0.1:3", Cert: te.certFile, Key: te.keyFile})
	for _, want := range []string{"listen 127.0.0.1:3 ssl http2;", "ssl_certificate " + te.certFile + ";", "ssl_protocols TLSv1.2 TLSv1.3;"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if bytes.Count(conf, []byte("proxy_pass http://bench;")) != 2 {
		t.Errorf("want the same location in both servers:\n%s", conf)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir+"/", "-c", path, "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t rejects the generated config: %v\n%s\n%s", err, out, conf)
	}
}

// tlsTestServer serves TLS with the bench certificate on loopback the way
// the servers under test do for the handshake client: it waits for a
// request and closes when the client ends the stream.
func tlsTestServer(t *testing.T, te *tlsEnv) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(te.certFile, te.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func TestRunHandshakes(t *testing.T) {
	te, err := newTLSEnv(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr := tlsTestServer(t, te)
	for _, c := range tlsCases {
		if c.kind != kindHandshake {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			res, err := runHandshakes(context.Background(), addr, te.clientConfig(c, TargetGateway), 4, 300*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if res.Handshakes < 2 || res.Errors != 0 || res.PerSec <= 0 || res.P99Micros < res.P50Micros || res.P50Micros <= 0 {
				t.Errorf("implausible result %+v", res)
			}
			if !strings.HasPrefix(res.Negotiated, "TLSv1.3 TLS_") {
				t.Errorf("negotiated %q", res.Negotiated)
			}
			group := "X25519"
			if c.name == CaseFullMLKEM {
				group = "X25519MLKEM768"
			}
			if !strings.HasSuffix(res.Negotiated, " "+group) {
				t.Errorf("negotiated %q, want the group %s", res.Negotiated, group)
			}
			switch {
			case c.resume && float64(res.Resumed) < 0.5*float64(res.Handshakes):
				t.Errorf("resumed %d of %d handshakes", res.Resumed, res.Handshakes)
			case !c.resume && res.Resumed != 0:
				t.Errorf("%d of the full handshakes resumed", res.Resumed)
			}
		})
	}

	// Nobody listening: every connection fails, and that is an error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	res, err := runHandshakes(context.Background(), dead, te.clientConfig(tlsCases[2], TargetNginx), 2, 100*time.Millisecond)
	if err == nil || res.Handshakes != 0 || res.Errors == 0 {
		t.Errorf("handshakes with nobody = %+v, %v", res, err)
	}

	// Cancelled: returns the cause, promptly.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	if _, err := runHandshakes(ctx, addr, te.clientConfig(tlsCases[2], TargetGateway), 2, time.Minute); err != context.Canceled {
		t.Errorf("cancelled run = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancelled run took %s", d)
	}
}

// TestPinHarness pins every thread of the test process to one CPU and
// puts them back.
func TestPinHarness(t *testing.T) {
	cpus, err := allowedCPUs()
	if err != nil || len(cpus) < 2 {
		t.Skipf("needs two CPUs (%v, %v)", cpus, err)
	}
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	restore, err := pinHarness(cpus[1])
	if err != nil {
		t.Fatal(err)
	}
	var during unix.CPUSet
	if err := unix.SchedGetaffinity(0, &during); err != nil {
		t.Fatal(err)
	}
	restore()
	var after unix.CPUSet
	if err := unix.SchedGetaffinity(0, &after); err != nil {
		t.Fatal(err)
	}
	if during.Count() != 1 || !during.IsSet(cpus[1]) {
		t.Errorf("pinned: %d CPUs, CPU %d set: %v", during.Count(), cpus[1], during.IsSet(cpus[1]))
	}
	if after != before {
		t.Errorf("affinity after restore %v, before %v", after, before)
	}
}

// sampleTLSReport is the TLS part as the harness fills it, without
// running anything: two rounds of every case against both servers.
func sampleTLSReport() *TLSReport {
	r := &TLSReport{Certificate: "ECDSA P-256", H2Connections: 8, H2Streams: 8, HandshakeClients: 16, HandshakePinning: "not pinned"}
	for round := 1; round <= 2; round++ {
		for i, c := range tlsCases {
			for j, server := range tlsServers {
				// wasmgate: 10+i+round CPU-µs, nginx: 10; rates the other way.
				cpu := 10.0
				if j == 0 {
					cpu += float64(i + round)
				}
				run := TLSRun{Round: round, Case: c.name, Server: server, Count: 1000, PerSec: 1e4 / cpu,
					P50Micros: cpu * 10, P99Micros: cpu * 100, Negotiated: "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519",
					CPUSeconds: cpu * 1e-3, CPUMicrosPer: cpu}
				if c.resume {
					run.Resumed = 999
				}
				r.Measurements = append(r.Measurements, run)
			}
		}
	}
	r.summarize()
	return r
}

func TestTLSSummarizeAndTables(t *testing.T) {
	r := sampleTLSReport()
	if want := len(tlsCases) * len(tlsServers); len(r.Medians) != want || len(r.VsNginx) != len(tlsCases) {
		t.Fatalf("%d medians, %d ratios; want %d, %d", len(r.Medians), len(r.VsNginx), want, len(tlsCases))
	}
	gw, ok := r.Summary(CaseH2, TargetGateway)
	if !ok || gw.Runs != 2 || gw.CPUMicrosPer != 12.5 || gw.ResumedShare != 0 {
		t.Errorf("h2 wasmgate median = %+v", gw)
	}
	res, _ := r.Summary(CaseResumed, TargetNginx)
	if res.ResumedShare != 0.999 {
		t.Errorf("resumed share = %v", res.ResumedShare)
	}
	ratio, ok := r.Ratio(CaseHTTPS1)
	if wantRate := (1e4/11 + 1e4/12) / 2 / 1000; !ok || math.Abs(ratio.CPUMicrosPer-1.15) > 1e-12 || math.Abs(ratio.PerSec-wantRate) > 1e-12 {
		t.Errorf("https1 ratio = %+v", ratio)
	}
	// Rounds: 11/10 and 12/10.
	if ratio.CPURoundMin != 1.1 || ratio.CPURoundMax != 1.2 || math.Abs(ratio.CPURoundMedian-1.15) > 1e-12 {
		t.Errorf("https1 per-round ratios = %+v", ratio)
	}
	plain := func(server string) (ProxySummary, bool) {
		return ProxySummary{Target: server, CPUMicrosPerRequest: 5}, true
	}
	var b bytes.Buffer
	if err := r.requestTable(plain).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if err := r.handshakeTable().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if err := r.ratioTable().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HTTPS/1.1", "HTTP/2", "h2load", "CPU vs its plain HTTP/1.1", "2.30x", // 11.5/5
		"full handshake", "resumed handshake", "99.9%", "X25519MLKEM768", "≤ 1.00x: not met", "1.15x", "1.15x (1.10x–1.20x)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("tables lack %q:\n%s", want, b.String())
		}
	}

	// Undefined ratios (nginx missing) are null in JSON, not an error.
	r.Measurements = slicesDeleteServer(r.Measurements, TargetNginx)
	r.summarize()
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatalf("JSON with undefined ratios: %v", err)
	}
	if !bytes.Contains(js, []byte(`"cpu_us_per":null`)) {
		t.Errorf("undefined ratio not null: %s", js)
	}
	var back TLSReport
	if err := json.Unmarshal(js, &back); err != nil || len(back.Measurements) != len(r.Measurements) {
		t.Errorf("JSON round trip: %v, %d runs", err, len(back.Measurements))
	}
}

func slicesDeleteServer(runs []TLSRun, server string) []TLSRun {
	var out []TLSRun
	for _, m := range runs {
		if m.Server != server {
			out = append(out, m)
		}
	}
	return out
}

// TestTLSReportFiles writes a proxy report with a TLS part and checks the
// markdown section and the TLS chart.
func TestTLSReportFiles(t *testing.T) {
	r := sampleReport()
	r.TLS = sampleTLSReport()
	r.summarize()
	dir := filepath.Join(t.TempDir(), "results")
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	checkReportFiles(t, r, dir)
	checkTLSReport(t, r, dir)
}

// checkTLSReport checks the TLS part of the files RunProxy wrote to dir.
func checkTLSReport(t *testing.T, r *ProxyReport, dir string) {
	t.Helper()
	if len(r.Files) != 5 || filepath.Base(r.Files[4]) != "proxy-tls-latest.svg" {
		t.Fatalf("files = %v", r.Files)
	}
	md, err := os.ReadFile(filepath.Join(dir, "proxy-latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## HTTPS, HTTP/2 and TLS handshakes", "| HTTPS/1.1 | wasmgate |", "| HTTP/2 | nginx |",
		"| full handshake | wasmgate |", "| resumed handshake | nginx |", "wasmgate ÷ nginx", "(proxy-tls-latest.svg)", "h2load -t"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(dir, "proxy-tls-latest.svg"))
	if err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(svg, &doc); err != nil {
		t.Fatalf("TLS SVG: %v", err)
	}
	// A background, and a bar per server in two panels per case.
	if want := 1 + 2*len(tlsServers)*len(r.TLS.VsNginx); len(doc.Rects) != want {
		t.Errorf("TLS SVG has %d rects, want %d", len(doc.Rects), want)
	}
	var back ProxyReport
	js, err := os.ReadFile(filepath.Join(dir, "proxy-latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &back); err != nil || back.TLS == nil || len(back.TLS.Measurements) != len(r.TLS.Measurements) {
		t.Errorf("TLS part lost in JSON: %v", err)
	}
}

// TestRunProxyTLSEndToEnd runs the proxy study with its TLS part against
// the real gateway and nginx, one round of one second, and checks that
// the report is well formed: every case against both servers, each with
// requests or handshakes and a CPU figure, h2 negotiated, resumed
// handshakes resumed. It asserts no speed.
func TestRunProxyTLSEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end benchmark skipped in -short mode")
	}
	skipWithoutTools(t, "apt-get install wrk nginx-light nghttp2-client", "wrk", "nginx", "h2load")
	dir := t.TempDir()
	gateway := buildGateway(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	outDir := filepath.Join(dir, "results")
	var table, progress bytes.Buffer
	rep, err := RunProxy(ctx, ProxyOptions{LoadOptions: LoadOptions{
		Gateway: gateway, Duration: time.Second, Runs: 1, Connections: 8,
		OutDir: outDir, Progress: &progress,
	}}, &table)
	if err != nil {
		t.Fatalf("RunProxy: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", table.String())
	if rep.TLS == nil {
		t.Fatal("no TLS part")
	}
	tr := rep.TLS
	if n := len(tlsCases) * len(tlsServers); len(tr.Measurements) != n || len(tr.Medians) != n || len(tr.VsNginx) != len(tlsCases) {
		t.Fatalf("TLS part has %d runs, %d medians, %d ratios; want %d, %d, %d",
			len(tr.Measurements), len(tr.Medians), len(tr.VsNginx), n, n, len(tlsCases))
	}
	if tr.H2Connections != 1 || tr.H2Streams != 8 || tr.HandshakeClients != 8 {
		t.Errorf("h2load -c%d -m%d, %d handshake clients; want 1, 8, 8", tr.H2Connections, tr.H2Streams, tr.HandshakeClients)
	}
	for _, m := range tr.Measurements {
		c, ok := tlsCaseNamed(m.Case)
		if !ok || m.Count <= 0 || m.PerSec <= 0 || m.CPUSeconds < 0 || m.P99Micros < m.P50Micros ||
			!strings.HasPrefix(m.Negotiated, "TLSv1.3") || !strings.HasPrefix(m.URL, "https://127.0.0.1:") {
			t.Errorf("implausible measurement %+v", m)
			continue
		}
		switch c.kind {
		case kindHTTPS1:
			if m.Wrk == nil || m.UpstreamCPUMicrosPer < 0 {
				t.Errorf("https1 run without wrk's result: %+v", m)
			}
		case kindH2:
			if m.H2load == nil || m.H2load.ALPN != "h2" {
				t.Errorf("h2 run did not speak h2: %+v", m.H2load)
			}
		case kindHandshake:
			if m.Handshakes == nil || m.Handshakes.Errors != 0 {
				t.Errorf("handshake run %+v", m.Handshakes)
			}
			if c.resume && float64(m.Resumed) < 0.5*float64(m.Count) {
				t.Errorf("%s resumed %d of %d handshakes", m.Server, m.Resumed, m.Count)
			}
		}
	}
	if s, _ := tr.Summary(CaseFullMLKEM, TargetGateway); !strings.HasSuffix(s.Negotiated, "X25519MLKEM768") {
		t.Errorf("the gateway negotiated %q with a client offering X25519MLKEM768", s.Negotiated)
	}
	for _, want := range []string{"HTTPS/1.1", "HTTP/2", "full handshake", "resumed handshake", "wasmgate ÷ nginx"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("printed tables lack %q:\n%s", want, table.String())
		}
	}
	if rep.Machine.H2loadVersion == "" {
		t.Error("report lacks h2load's version")
	}
	checkReportFiles(t, rep, outDir)
	checkTLSReport(t, rep, outDir)
	if !strings.Contains(rep.Command, "-h2-streams 8") {
		t.Errorf("command %q", rep.Command)
	}
}
