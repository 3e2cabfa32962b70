package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
)

// wrk41 is verbatim output of wrk 4.1.0 (Debian) with --latency, with the
// optional error lines present.
const wrk41 = `Running 5s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.34us  200.12us   5.00ms   80.00%
    Req/Sec    60.12k     2.34k   65.00k    70.00%
  Latency Distribution
     50%  480.00us
     75%  600.00us
     90%  750.00us
     99%    1.20ms
  598765 requests in 5.00s, 80.12MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 12
Requests/sec: 119753.00
Transfer/sec:     16.02MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    WrkResult
		wantErr string
	}{
		{
			name: "wrk 4.1 with errors",
			in:   wrk41,
			want: WrkResult{
				Requests: 598765, Seconds: 5, RequestsPerSec: 119753,
				LatencyAvgMicros: 512.34, LatencyMaxMicros: 5000,
				P50Micros: 480, P75Micros: 600, P90Micros: 750, P99Micros: 1200,
				ConnectErrors: 1, ReadErrors: 2, WriteErrors: 3, TimeoutErrors: 4, Non2xx3xx: 12,
			},
		},
		{
			name: "slow: ms, s and m units, no error lines",
			in: `Running 1m test @ http://127.0.0.1:1/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.50ms    3.00ms    1.50m    99.00%
    Req/Sec   100.00      5.00   120.00     90.00%
  Latency Distribution
     50%   12.00ms
     75%   14.00ms
     90%   20.00ms
     99%    2.50s
  12000 requests in 1.00m, 1.00MB read
Requests/sec:    200.00
Transfer/sec:     17.07KB
`,
			want: WrkResult{
				Requests: 12000, Seconds: 60, RequestsPerSec: 200,
				LatencyAvgMicros: 15500, LatencyMaxMicros: 90e6,
				P50Micros: 12000, P75Micros: 14000, P90Micros: 20000, P99Micros: 2.5e6,
			},
		},
		{
			name: "wrk2 percentile lines and a Lua hook's extra output",
			in: `Running 2s test @ http://127.0.0.1:1/
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.00ms  100.00us   2.00ms   90.00%
  Latency Distribution (HdrHistogram - Recorded Latency)
 50.000%    0.98ms
 75.000%    1.05ms
 90.000%    1.10ms
 99.000%    1.50ms
 99.900%    1.90ms
  1000 requests in 2.00s, 100.00KB read
Requests/sec:    500.00
custom: hello from done()
`,
			want: WrkResult{
				Requests: 1000, Seconds: 2, RequestsPerSec: 500,
				LatencyAvgMicros: 1000, LatencyMaxMicros: 2000,
				P50Micros: 980, P75Micros: 1050, P90Micros: 1100, P99Micros: 1500,
			},
		},
		{
			name: "no requests at all still parses (the caller rejects it)",
			in: `  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.00us    0.00us   0.00us    -nan%
  Latency Distribution
     50%    0.00us
     75%    0.00us
     90%    0.00us
     99%    0.00us
  0 requests in 1.00s, 0.00B read
  Socket errors: connect 64, read 0, write 0, timeout 0
Requests/sec:      0.00
`,
			want: WrkResult{Seconds: 1, ConnectErrors: 64},
		},
		{
			name:    "without --latency",
			in:      strings.Replace(wrk41, "Latency Distribution", "Something else", 1),
			wantErr: "Latency Distribution",
		},
		{
			name:    "no Requests/sec",
			in:      strings.Replace(wrk41, "Requests/sec:", "Reqs:", 1),
			wantErr: `"Requests/sec:"`,
		},
		{
			name:    "no request count",
			in:      strings.Replace(wrk41, "598765 requests in", "598765 reqs in", 1),
			wantErr: "requests in",
		},
		{
			name:    "unknown time unit",
			in:      strings.Replace(wrk41, "1.20ms", "1.20xs", 1),
			wantErr: "99% latency",
		},
		{
			name:    "nan rate",
			in:      strings.Replace(wrk41, "119753.00", "nan", 1),
			wantErr: "Requests/sec",
		},
		{
			name:    "negative count",
			in:      strings.Replace(wrk41, "598765 requests", "-5 requests", 1),
			wantErr: "not a count",
		},
		{
			name:    "malformed socket errors",
			in:      strings.Replace(wrk41, "read 2,", "read two,", 1),
			wantErr: "socket errors",
		},
		{name: "empty", in: "", wantErr: "lacks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWrk([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseWrk error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWrk: %v", err)
			}
			if !wrkEqual(got, tt.want) {
				t.Errorf("ParseWrk =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// wrkEqual compares with a relative tolerance: unit scaling is floating point.
func wrkEqual(a, b WrkResult) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	return a.Requests == b.Requests && near(a.Seconds, b.Seconds) && near(a.RequestsPerSec, b.RequestsPerSec) &&
		near(a.LatencyAvgMicros, b.LatencyAvgMicros) && near(a.LatencyMaxMicros, b.LatencyMaxMicros) &&
		near(a.P50Micros, b.P50Micros) && near(a.P75Micros, b.P75Micros) &&
		near(a.P90Micros, b.P90Micros) && near(a.P99Micros, b.P99Micros) &&
		a.ConnectErrors == b.ConnectErrors && a.ReadErrors == b.ReadErrors && a.WriteErrors == b.WriteErrors &&
		a.TimeoutErrors == b.TimeoutErrors && a.Non2xx3xx == b.Non2xx3xx
}

func TestParseWrkTime(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"0.00us", 0, true},
		{"512.34us", 512.34, true},
		{"1.20ms", 1200, true},
		{"2.00s", 2e6, true},
		{"1.50m", 90e6, true},
		{"1.00h", 3600e6, true},
		{"17", 17, true},
		{"", 0, false},
		{"ms", 0, false},
		{"1.2xs", 0, false},
		{"-1.00ms", 0, false},
		{"infms", 0, false},
		{"nanus", 0, false},
	}
	for _, tt := range tests {
		got, err := parseWrkTime(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("parseWrkTime(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			continue
		}
		if tt.ok && math.Abs(got-tt.want) > 1e-6*math.Max(1, tt.want) {
			t.Errorf("parseWrkTime(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseWrk(f *testing.F) {
	f.Add([]byte(wrk41))
	f.Add([]byte("  Latency Distribution\n 50% 1us\n 99% 2s\n 1 requests in 1s\nRequests/sec: 1\n"))
	f.Add([]byte("  Socket errors: connect 1,\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ParseWrk(in)
		if err != nil {
			return
		}
		for _, v := range []float64{r.Seconds, r.RequestsPerSec, r.LatencyAvgMicros, r.LatencyMaxMicros,
			r.P50Micros, r.P75Micros, r.P90Micros, r.P99Micros} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Fatalf("accepted output yields %v in %+v", v, r)
			}
		}
		if r.Requests < 0 || r.ConnectErrors < 0 || r.ReadErrors < 0 || r.WriteErrors < 0 ||
			r.TimeoutErrors < 0 || r.Non2xx3xx < 0 {
			t.Fatalf("accepted output yields a negative count: %+v", r)
		}
	})
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			in:   "1234 (nginx) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 10",
			want: procStat{ppid: 1, utime: 250, stime: 75},
		},
		{
			name: "command with spaces and parens",
			in:   "99 (a (b) c) R 42 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0",
			want: procStat{ppid: 42, utime: 7, stime: 3},
		},
		{name: "no parens", in: "99 nginx R 42", wantErr: true},
		{name: "truncated", in: "99 (x) R 42 99 99 0 -1 0 0 0 0 0 7", wantErr: true},
		{name: "bad utime", in: "99 (x) R 42 99 99 0 -1 0 0 0 0 0 x 3", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseProcStat([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: error = %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// The real thing: this process's entry parses and names its parent.
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != os.Getppid() {
		t.Errorf("ppid from /proc = %d, want %d", st.ppid, os.Getppid())
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1234 (nginx) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 100"))
	f.Add([]byte("1 ()) ) S"))
	f.Fuzz(func(t *testing.T, in []byte) {
		_, _ = parseProcStat(in) // must not panic
	})
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
	}{
		{"0", []int{0}},
		{"0-1\n", []int{0, 1}},
		{"0-2,5,7-8", []int{0, 1, 2, 5, 7, 8}},
		{"", nil},
		{"1-0", nil},
		{"a", nil},
		{"2,1", nil},
		{"0-", nil},
		{"-1", nil},
		{"0-99999999", nil},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.in)
		if tt.want == nil {
			if err == nil {
				t.Errorf("parseCPUList(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !equalInts(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseCPUList(f *testing.F) {
	f.Add("0-3,8,10-11")
	f.Fuzz(func(t *testing.T, in string) {
		cpus, err := parseCPUList(in)
		if err != nil {
			return
		}
		for i := 1; i < len(cpus); i++ {
			if cpus[i] <= cpus[i-1] {
				t.Fatalf("parseCPUList(%q) = %v: not strictly ascending", in, cpus)
			}
		}
	})
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// TestProcTreeAndStop starts a shell with two children, finds all three, and
// checks that stop leaves none of them behind.
func TestProcTreeAndStop(t *testing.T) {
	p, err := startProc("tree", []string{"sh", "-c", "sleep 30 & sleep 30 & wait"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	var tree []int
	for i := 0; i < 200; i++ {
		if tree, err = procTree(p.pid()); err != nil {
			t.Fatal(err)
		}
		if len(tree) == 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(tree) != 3 || tree[0] != p.pid() {
		t.Fatalf("procTree(%d) = %v, want the shell and its two sleeps", p.pid(), tree)
	}
	scan, err := procTreeScan(p.pid())
	if err != nil {
		t.Fatal(err)
	}
	if len(scan) != 3 {
		t.Errorf("procTreeScan(%d) = %v, want 3 processes like %v", p.pid(), scan, tree)
	}
	if _, err := treeCPUTicks(p.pid()); err != nil {
		t.Errorf("treeCPUTicks: %v", err)
	}

	p.stop()
	if !p.exited() {
		t.Fatal("shell still running after stop")
	}
	for _, pid := range tree {
		for i := 0; i < 100 && alive(pid); i++ { // an orphan is reaped by init asynchronously
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("pid %d outlived stop", pid)
		}
	}
	if _, err := treeCPUTicks(p.pid()); err == nil {
		t.Error("treeCPUTicks of an exited process succeeded")
	}
}

// TestTreeCPUTicksGrows burns CPU in this process until its tick count moves.
func TestTreeCPUTicksGrows(t *testing.T) {
	before, err := treeCPUTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		for i := range 1_000_000 {
			x += i
		}
		after, err := treeCPUTicks(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			return
		}
	}
	t.Errorf("CPU ticks did not grow after 5s of spinning (%d)", x)
}

func TestClockTicks(t *testing.T) {
	if n := clockTicks(); n <= 0 {
		t.Fatalf("clockTicks() = %d", n)
	}
}

func TestStartProcExitError(t *testing.T) {
	p, err := startProc("failing", []string{"sh", "-c", "echo boom-output >&2; exit 3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.stop()
	err = p.exitError()
	if !strings.Contains(err.Error(), "boom-output") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("exitError() = %v, want the status and the output", err)
	}
	if _, err := startProc("missing", []string{"/nonexistent/binary"}, nil); err == nil {
		t.Error("starting a missing binary succeeded")
	}
}

func TestTailBuffer(t *testing.T) {
	b := newTailBuffer(8)
	for _, s := range []string{"abc", "defgh", "ijklmnop-"} {
		_, _ = b.Write([]byte(s))
	}
	if got := b.String(); got != "jklmnop-" {
		t.Errorf("tail = %q, want %q", got, "jklmnop-")
	}
}

func TestUpstreamBodyIs64Bytes(t *testing.T) {
	if len(UpstreamBody) != 64 {
		t.Fatalf("len(UpstreamBody) = %d, want 64", len(UpstreamBody))
	}
}

func TestUpstreamHandlerDoesNotAllocate(t *testing.T) {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/x")
	upstreamHandler(&ctx) // size the buffers once
	if n := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		upstreamHandler(&ctx)
	}); n != 0 {
		t.Errorf("upstream handler allocates %v times per request", n)
	}
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return "127.0.0.1:" + strconv.Itoa(ports[0])
}

func TestServeUpstream(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ServeUpstream(ctx, addr) }()

	client := &http.Client{Timeout: 2 * time.Second}
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = client.Get("http://" + addr + "/any/path?q=1"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("upstream never answered: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(body) != UpstreamBody {
		t.Errorf("GET = %d %q, want 200 %q", resp.StatusCode, body, UpstreamBody)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", ct)
	}
	// POST with a body is answered too: the upstream ignores requests.
	resp, err = client.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("POST status = %d", resp.StatusCode)
	}
	client.CloseIdleConnections()

	// The address is taken now: a second upstream must fail, not hang.
	if err := ServeUpstream(ctx, addr); err == nil {
		t.Error("second ServeUpstream on a busy address returned nil")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeUpstream after cancel = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeUpstream did not return after cancel")
	}
}

func TestTableText(t *testing.T) {
	tab := &Table{
		Columns: []string{"target", "req/s", "CPU-µs"},
		Align:   []Align{AlignLeft, AlignRight, AlignRight},
		Rows:    [][]string{{"direct", "123,456", "4.20"}, {"wasmgate", "9", "12.00"}, {"short"}},
	}
	var b bytes.Buffer
	if err := tab.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"target       req/s   CPU-µs\n" +
		"direct     123,456     4.20\n" +
		"wasmgate         9    12.00\n" +
		"short\n"
	if b.String() != want {
		t.Errorf("WriteText =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestTableMarkdown(t *testing.T) {
	tab := &Table{
		Columns: []string{"name", "value"},
		Align:   []Align{AlignLeft, AlignRight},
		Rows:    [][]string{{"a|b", "1"}, {"multi\nline", "2", "dropped"}, {"short"}},
	}
	var b bytes.Buffer
	if err := tab.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2+len(tab.Rows) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), 2+len(tab.Rows), b.String())
	}
	if lines[1] != "|---|---:|" {
		t.Errorf("separator = %q", lines[1])
	}
	for _, l := range lines {
		// Every row has exactly len(Columns)+1 unescaped pipes.
		if n := strings.Count(l, "|") - strings.Count(l, `\|`); n != len(tab.Columns)+1 {
			t.Errorf("line %q has %d cell separators, want %d", l, n, len(tab.Columns)+1)
		}
	}
	if !strings.Contains(b.String(), `| a\|b | 1 |`) || !strings.Contains(b.String(), "| multi line | 2 |") {
		t.Errorf("cells not escaped:\n%s", b.String())
	}
	if strings.Contains(b.String(), "dropped") {
		t.Errorf("extra cell written:\n%s", b.String())
	}
}

// checkLoadChart checks a load study's SVG (loadChart): well formed, a
// background and two bars (req/s, CPU) for each of its rows.
func checkLoadChart(t *testing.T, path string, rows int) {
	t.Helper()
	svg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(svg, &doc); err != nil {
		t.Fatalf("SVG: %v", err)
	}
	if want := 1 + 2*rows; len(doc.Rects) != want {
		t.Errorf("SVG has %d rects, want a background and %d bars", len(doc.Rects), want-1)
	}
}

// svgDoc is the subset of SVG the chart writes.
type svgDoc struct {
	XMLName xml.Name `xml:"svg"`
	Width   int      `xml:"width,attr"`
	Height  int      `xml:"height,attr"`
	Rects   []struct {
		Width  int    `xml:"width,attr"`
		Height int    `xml:"height,attr"`
		Fill   string `xml:"fill,attr"`
	} `xml:"rect"`
	Texts []string `xml:"text"`
}

func TestBarChartSVG(t *testing.T) {
	c := &BarChart{
		Title:  `a <title> & "quotes"`,
		Groups: []string{"direct", "wasmgate", "nginx"},
		Series: []Series{
			{Name: "req/s", Values: []float64{100000, 50000, 75000}},
			{Name: "CPU", Values: []float64{2, math.NaN()}, Format: func(v float64) string { return FormatNumber(v) + "µs" }},
		},
	}
	var b bytes.Buffer
	if err := c.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	var doc svgDoc
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("SVG is not well-formed XML: %v\n%s", err, b.String())
	}
	// Whole-document check with the token reader too: every element closed.
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("token: %v", err)
		}
	}
	// One background rect, three bars in panel 1, one in panel 2 (NaN and
	// missing draw none).
	if len(doc.Rects) != 1+3+1 {
		t.Fatalf("got %d rects, want 5", len(doc.Rects))
	}
	if doc.Rects[1].Width != svgBarMaxW || doc.Rects[2].Width != svgBarMaxW/2 {
		t.Errorf("bar widths %d, %d: want the largest at full width and half for half", doc.Rects[1].Width, doc.Rects[2].Width)
	}
	all := strings.Join(doc.Texts, "\n")
	for _, want := range []string{c.Title, "100,000", "2.00µs", "n/a", "wasmgate"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q:\n%s", want, all)
		}
	}
	if doc.Height <= 0 || doc.Width <= 0 {
		t.Errorf("size %dx%d", doc.Width, doc.Height)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{FormatNumber(0), "0.00"},
		{FormatNumber(12.345), "12.35"},
		{FormatNumber(999), "999"},
		{FormatNumber(1234567.4), "1,234,567"},
		{FormatNumber(-123456), "-123,456"},
		{FormatNumber(math.NaN()), "n/a"},
		{FormatMicros(87.4), "87µs"},
		{FormatMicros(1234), "1.23ms"},
		{FormatMicros(2.5e6), "2.50s"},
		{FormatRatio(0.8712), "0.87x"},
		{FormatRatio(math.Inf(1)), "n/a"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	xs := []float64{5, 1, 3}
	if m := median(xs); m != 3 {
		t.Errorf("median odd = %v", m)
	}
	if xs[0] != 5 {
		t.Error("median reordered its input")
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	if m := median(nil); !math.IsNaN(m) {
		t.Errorf("median of none = %v", m)
	}
}

func TestOptionsDefaults(t *testing.T) {
	o := ProxyOptions{LoadOptions: LoadOptions{Duration: 1500 * time.Millisecond}}.withDefaults()
	if o.Duration != 2*time.Second || o.Runs != 3 || o.Connections != 64 || o.OutDir != "bench/results" || o.Progress == nil ||
		o.SkipTLS || o.H2Streams != 8 || o.h2Connections() != 8 {
		t.Errorf("withDefaults = %+v", o)
	}
	if got := (ProxyOptions{}).Command(); got != "wasmgate bench proxy -duration 5s -runs 3 -connections 64 -h2-streams 8 -out bench/results" {
		t.Errorf("Command() = %q", got)
	}
	if got := (ProxyOptions{SkipTLS: true}).Command(); got != "wasmgate bench proxy -duration 5s -runs 3 -connections 64 -tls=false -out bench/results" {
		t.Errorf("Command() without TLS = %q", got)
	}
}

// TestGatewayConfigParses feeds the generated gateway config to the real
// config loader, so a schema change that breaks it fails here, not mid-run.
func TestGatewayConfigParses(t *testing.T) {
	cfg, err := config.Parse("gateway.yaml", gatewayConfig("127.0.0.1:1001", "127.0.0.1:1002", "127.0.0.1:1003"))
	if err != nil {
		t.Fatalf("generated gateway config rejected: %v", err)
	}
	if cfg.Listen.Address != "127.0.0.1:1001" || cfg.Admin.Address != "127.0.0.1:1002" ||
		cfg.Log.AccessLog != "off" || cfg.Admin.WatchConfig == nil || *cfg.Admin.WatchConfig ||
		len(cfg.Upstreams) != 1 || len(cfg.Upstreams[0].Targets) != 1 ||
		cfg.Upstreams[0].Targets[0].Address != "127.0.0.1:1003" ||
		len(cfg.Routes) != 2 || cfg.Routes[0].Match.PathPrefix != "/" || cfg.Routes[0].Upstream != "bench" ||
		cfg.Routes[1].Match.PathPrefix != "/cached" || cfg.Routes[1].Cache == nil || cfg.Routes[1].Cache.DefaultTTL.D() != time.Hour {
		t.Errorf("generated config decoded to %+v", cfg)
	}
}

// TestNginxConfig checks the generated nginx config with `nginx -t`.
func TestNginxConfig(t *testing.T) {
	nginx, err := lookTool("nginx")
	if err != nil {
		skipUnlessCI(t, "nginx not installed")
	}
	dir := t.TempDir()
	for _, pin := range []Pinning{{Tool: "none", ProxyCPU: -1, LoadCPU: -1}, {Tool: "taskset", ProxyCPU: 1, LoadCPU: 0}} {
		conf := nginxConfig(dir, "127.0.0.1:1", "127.0.0.1:2", 64, pin, nginxTLS{})
		if pin.Tool == "taskset" && !bytes.Contains(conf, []byte("worker_cpu_affinity 10;")) {
			t.Errorf("pinned to CPU 1 but config has no matching affinity:\n%s", conf)
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
}

// sampleReport is a report as RunProxy fills it, without running anything.
func sampleReport() *ProxyReport {
	r := &ProxyReport{
		LoadRun: LoadRun{Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Command: "wasmgate bench proxy -runs 2",
			Duration: "1s", Runs: 2, Connections: 64, Threads: 2,
			Machine: MachineInfo{NProc: 2, CPUModel: "Test CPU", GoVersion: "go1.26"},
			Pinning: Pinning{Tool: "taskset", ProxyCPU: 0, LoadCPU: 1}},
	}
	add := func(round int, target, of string, rps, p99, cpu float64) {
		r.Measurements = append(r.Measurements, ProxyRun{Round: round, Target: target, CPUOf: of,
			Wrk:                 WrkResult{Requests: int64(rps), Seconds: 1, RequestsPerSec: rps, P50Micros: p99 / 2, P99Micros: p99},
			CPUMicrosPerRequest: cpu})
	}
	add(1, TargetDirect, "upstream", 100000, 1000, 3)
	add(1, TargetGateway, "proxy", 50000, 3000, 10)
	add(1, TargetNginx, "proxy", 60000, 2000, 8)
	add(2, TargetDirect, "upstream", 110000, 900, 3)
	add(2, TargetGateway, "proxy", 54000, 2600, 12)
	add(2, TargetNginx, "proxy", 64000, 2200, 8)
	r.summarize()
	return r
}

func TestSummarizeAndRatios(t *testing.T) {
	r := sampleReport()
	if len(r.Medians) != 3 || r.Medians[0].Target != TargetDirect || r.Medians[1].Target != TargetGateway {
		t.Fatalf("medians = %+v", r.Medians)
	}
	gw, _ := r.Summary(TargetGateway)
	if gw.RequestsPerSec != 52000 || gw.P99Micros != 2800 || gw.CPUMicrosPerRequest != 11 || gw.Runs != 2 {
		t.Errorf("gateway median = %+v", gw)
	}
	if got := r.VsDirect.RequestsPerSec; math.Abs(got-52000.0/105000) > 1e-12 {
		t.Errorf("req/s vs direct = %v", got)
	}
	if got := r.VsNginx.CPUMicrosPerRequest; got != 11.0/8 {
		t.Errorf("CPU vs nginx = %v", got)
	}
	var b bytes.Buffer
	if err := r.proxyTable().WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"target", "req/s vs direct", "CPU vs nginx", "3.00 (upstream)", "52,000", "1.38x"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

func TestReportFiles(t *testing.T) {
	r := sampleReport()
	dir := filepath.Join(t.TempDir(), "results")
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	checkReportFiles(t, r, dir)

	// A report without nginx has undefined ratios; JSON must still encode.
	r2 := sampleReport()
	r2.Measurements = r2.Measurements[:2]
	r2.summarize()
	if !math.IsNaN(r2.VsNginx.RequestsPerSec) {
		t.Errorf("ratio to a missing target = %v, want NaN", r2.VsNginx.RequestsPerSec)
	}
	if err := r2.write(t.TempDir()); err != nil {
		t.Fatalf("writing a report with undefined ratios: %v", err)
	}
}

// checkReportFiles asserts that RunProxy's files exist and are well formed.
func checkReportFiles(t *testing.T, r *ProxyReport, dir string) {
	t.Helper()
	if want := map[bool]int{false: 4, true: 5}[r.TLS != nil]; len(r.Files) != want {
		t.Fatalf("files = %v, want %d", r.Files, want)
	}
	latest, err := os.ReadFile(filepath.Join(dir, "proxy-latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile(r.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(r.Files[0]), "proxy-") || filepath.Dir(r.Files[0]) != dir {
		t.Errorf("JSON file %s", r.Files[0])
	}
	if !bytes.Equal(js, latest) {
		t.Error("proxy-latest.json differs from the timestamped report")
	}
	var back ProxyReport
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	if len(back.Measurements) != len(r.Measurements) || len(back.Medians) != len(r.Medians) || back.Machine.NProc == 0 {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
	md, err := os.ReadFile(filepath.Join(dir, "proxy-latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	checkLinksCommitted(t, md)
	for _, want := range []string{"| target |", "| wasmgate |", "| nginx |", "| direct |", r.Command, filepath.Base(r.Files[0]), "(proxy-latest.json)", "proxy-latest.svg"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	checkLoadChart(t, filepath.Join(dir, "proxy-latest.svg"), len(r.Medians))
}

// reportLink is a markdown link or image target.
var reportLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// committedResult is a file of bench/results/ that .gitignore lets into the
// repository.
var committedResult = regexp.MustCompile(`^[a-z][a-z-]*-latest\.(json|md|svg|csv)$`)

// checkLinksCommitted fails when a report's markdown links a file that
// .gitignore keeps out of the repository (a timestamped copy): the committed
// report would point to nothing. It also checks the rule against .gitignore.
func checkLinksCommitted(t *testing.T, md []byte) {
	t.Helper()
	links := reportLink.FindAllSubmatch(md, -1)
	if len(links) == 0 {
		t.Errorf("report links nothing:\n%s", md)
	}
	for _, m := range links {
		if target := string(m[1]); !committedResult.MatchString(target) {
			t.Errorf("report links %s, which bench/results/ does not commit", target)
		}
	}
	gi, err := os.ReadFile("../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range []string{"/bench/results/*", "!/bench/results/*-latest.*"} {
		if !slices.Contains(strings.Split(string(gi), "\n"), rule) {
			t.Errorf(".gitignore lacks %q: which report files are committed changed; update committedResult", rule)
		}
	}
}

// TestCommittedReportsLinkCommittedFiles: the reports in bench/results/
// link only files that are there and committed.
func TestCommittedReportsLinkCommittedFiles(t *testing.T) {
	reports, err := filepath.Glob(filepath.Join("results", "*-latest.md"))
	if err != nil || len(reports) == 0 {
		t.Fatalf("no reports in results/: %v", err)
	}
	for _, r := range reports {
		md, err := os.ReadFile(r)
		if err != nil {
			t.Fatal(err)
		}
		checkLinksCommitted(t, md)
		for _, m := range reportLink.FindAllSubmatch(md, -1) {
			if _, err := os.Stat(filepath.Join("results", string(m[1]))); err != nil {
				t.Errorf("%s links %s: %v", r, m[1], err)
			}
		}
	}
}

// skipUnlessCI skips the test, except in CI (CI=true), where the Makefile
// installs the tools and their absence is a failure.
func skipUnlessCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: tools must be installed)", why)
	}
	t.Skip(why)
}

// skipWithoutTools skips the test, outside CI, when one of tools is not
// installed: a test never installs packages. In CI the benchmark installs
// them itself.
func skipWithoutTools(t *testing.T, install string, tools ...string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		return
	}
	for _, tool := range tools {
		if _, err := lookTool(tool); err != nil {
			t.Skipf("%s not installed (%s); skipping the end-to-end benchmark", tool, install)
		}
	}
}

// buildGateway builds ./cmd/wasmgate into dir for an end-to-end benchmark,
// or skips the test when it cannot be built.
func buildGateway(t *testing.T, dir string) string {
	t.Helper()
	gateway := filepath.Join(dir, "wasmgate")
	build := exec.Command("go", "build", "-o", gateway, "./cmd/wasmgate")
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build the gateway (./cmd/wasmgate), so no end-to-end benchmark: %v\n%s", err, out)
	}
	return gateway
}

// TestRunProxyEndToEnd builds the real gateway and runs a short benchmark
// against it. It asserts only that the report is well formed: timing depends
// on the machine.
func TestRunProxyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end benchmark skipped in -short mode")
	}
	skipWithoutTools(t, "apt-get install wrk nginx-light", "wrk", "nginx")
	dir := t.TempDir()
	gateway := buildGateway(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	outDir := filepath.Join(dir, "results")
	var table, progress bytes.Buffer
	rep, err := RunProxy(ctx, ProxyOptions{LoadOptions: LoadOptions{
		Gateway: gateway, Duration: time.Second, Runs: 1, Connections: 8,
		OutDir: outDir, Progress: &progress,
	}, SkipTLS: true}, &table) // TestRunProxyTLSEndToEnd runs the TLS part
	if err != nil {
		t.Fatalf("RunProxy: %v\nprogress:\n%s", err, progress.String())
	}
	t.Logf("\n%s", table.String())
	if n := len(proxyTargets); len(rep.Measurements) != n || len(rep.Medians) != n {
		t.Fatalf("report has %d runs and %d medians, want %d and %d", len(rep.Measurements), len(rep.Medians), n, n)
	}
	for _, m := range rep.Measurements {
		if m.Wrk.Requests <= 0 || m.Wrk.RequestsPerSec <= 0 || m.Wrk.P99Micros < m.Wrk.P50Micros || m.CPUSeconds < 0 {
			t.Errorf("implausible measurement %+v", m)
		}
	}
	for _, want := range []string{"direct", "wasmgate", "nginx", "CPU vs nginx"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("printed table lacks %q:\n%s", want, table.String())
		}
	}
	checkReportFiles(t, rep, outDir)
	if rep.Pinning.Tool == "" || rep.Machine.WrkVersion == "" || rep.Machine.NginxVersion == "" {
		t.Errorf("report lacks pinning or tool versions: %+v %+v", rep.Pinning, rep.Machine)
	}
}

// TestRunProxyCancelLeavesNothing cancels a benchmark mid-way and checks
// that none of its children survive. It needs only a shell-script "gateway"
// whose upstream never becomes ready, so it runs everywhere.
func TestRunProxyCancelLeavesNothing(t *testing.T) {
	if _, err := lookTool("wrk"); err != nil {
		skipUnlessCI(t, "wrk not installed")
	}
	if _, err := lookTool("nginx"); err != nil {
		skipUnlessCI(t, "nginx not installed")
	}
	checkCancelLeavesNothing(t, "RunProxy", t.TempDir(), func(ctx context.Context, gateway, outDir string) error {
		// The TLS part makes its certificate before the upstream starts;
		// without h2load it would install it, which a test never does.
		_, h2err := lookTool("h2load")
		_, err := RunProxy(ctx, ProxyOptions{LoadOptions: LoadOptions{Gateway: gateway, OutDir: outDir}, SkipTLS: h2err != nil}, io.Discard)
		return err
	})
}

// checkCancelLeavesNothing runs a benchmark (run) against a shell-script
// "gateway" whose upstream never becomes ready, cancels it once the script
// and its child are up, and checks that run returns context.Canceled, that
// none of its children survive and that no report is written.
func checkCancelLeavesNothing(t *testing.T, name, dir string, run func(ctx context.Context, gateway, outDir string) error) {
	t.Helper()
	pidFile := filepath.Join(dir, "pids")
	script := filepath.Join(dir, "fake-gateway")
	// Records its pid and a child's, then sleeps: the upstream never answers.
	body := "#!/bin/sh\necho $$ >> " + pidFile + "\nsleep 60 &\necho $! >> " + pidFile + "\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, script, filepath.Join(dir, "out")) }()
	var pids []int
	for i := 0; i < 250 && len(pids) < 2; i++ {
		time.Sleep(20 * time.Millisecond)
		b, _ := os.ReadFile(pidFile)
		pids = pids[:0]
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
	}
	cancel()
	if len(pids) < 2 {
		t.Fatalf("fake upstream never started (pids %v): %v", pids, <-errc)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s after cancel = %v, want context.Canceled", name, err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not return after cancel", name)
	}
	for _, pid := range pids {
		for i := 0; i < 100 && alive(pid); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("pid %d survived the cancelled benchmark", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a cancelled benchmark wrote reports")
	}
}

// TestRunProxyRejectsMissingGateway checks argument errors come before any
// process is started.
func TestRunProxyRejectsMissingGateway(t *testing.T) {
	if _, err := RunProxy(context.Background(), ProxyOptions{}, nil); err == nil {
		t.Error("RunProxy without a gateway succeeded")
	}
	if _, err := RunProxy(context.Background(), ProxyOptions{LoadOptions: LoadOptions{Gateway: "/nonexistent/wasmgate"}}, nil); err == nil {
		t.Error("RunProxy with a missing gateway succeeded")
	}
}
