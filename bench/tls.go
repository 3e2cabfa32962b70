package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/certs"
)

// This file is the TLS part of the proxy study (`wasmgate bench proxy`,
// on unless -tls=false): the same upstream, the same gateway process and
// the same nginx worker as the plain HTTP/1.1 rows, reached over HTTPS/1.1
// (wrk), over HTTP/2 on TLS (h2load), and by a client that only makes TLS
// handshakes, full and resumed; each figure of the gateway divided by
// nginx's of the same round.

// TLS cases, as they appear in reports (TLSRun.Case).
const (
	// CaseHTTPS1 is HTTP/1.1 over TLS with keep-alive connections (wrk).
	CaseHTTPS1 = "https1"
	// CaseH2 is HTTP/2 over TLS (h2load): few connections, several
	// concurrent streams on each.
	CaseH2 = "h2"
	// CaseFull is full TLS 1.3 handshakes: no session offered, the client
	// offering X25519 only, like an OpenSSL 3.0 client.
	CaseFull = "handshake-full"
	// CaseResumed is resumed TLS 1.3 handshakes: the client offers the
	// session ticket of its last connection (PSK with (EC)DHE).
	CaseResumed = "handshake-resumed"
	// CaseFullMLKEM is full handshakes by a client offering the hybrid
	// post-quantum group X25519MLKEM768 first, as current browsers and Go
	// clients do: the gateway (Go) takes it, nginx on OpenSSL 3.0 cannot
	// and falls back to X25519.
	CaseFullMLKEM = "handshake-full-mlkem"
)

// tlsKind is what drives a case.
type tlsKind uint8

const (
	kindHTTPS1    tlsKind = iota // wrk over TLS
	kindH2                       // h2load
	kindHandshake                // runHandshakes
)

// tlsCase is one TLS measurement, made against each server in turn.
type tlsCase struct {
	name, label, client string
	kind                tlsKind
	resume              bool
	curves              []tls.CurveID // the handshake client's groups, in its order
}

// tlsCases is the order of the TLS cases inside a round.
var tlsCases = []tlsCase{
	{name: CaseHTTPS1, label: "HTTPS/1.1", client: "wrk", kind: kindHTTPS1},
	{name: CaseH2, label: "HTTP/2", client: "h2load", kind: kindH2},
	{name: CaseFull, label: "full handshake", client: "Go crypto/tls, offers X25519", kind: kindHandshake,
		curves: []tls.CurveID{tls.X25519}},
	{name: CaseResumed, label: "resumed handshake", client: "Go crypto/tls, offers X25519 and its last ticket", kind: kindHandshake,
		resume: true, curves: []tls.CurveID{tls.X25519}},
	{name: CaseFullMLKEM, label: "full handshake, X25519MLKEM768 offered", client: "Go crypto/tls, offers X25519MLKEM768, X25519", kind: kindHandshake,
		curves: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}},
}

// tlsServers are the servers of every TLS case, in the order they run.
var tlsServers = []string{TargetGateway, TargetNginx}

func tlsCaseNamed(name string) (tlsCase, bool) {
	for _, c := range tlsCases {
		if c.name == name {
			return c, true
		}
	}
	return tlsCase{}, false
}

const (
	defaultH2Streams = 8
	// tlsServerName is the name the clients ask for (SNI); the certificate
	// also names 127.0.0.1, which wrk and h2load send.
	tlsServerName = "localhost"
)

// tlsFlag is -tls, the inverse of ProxyOptions.SkipTLS, so that the zero
// ProxyOptions measures TLS like the command line does by default.
type tlsFlag struct{ skip *bool }

func (f tlsFlag) String() string {
	if f.skip == nil {
		return "false"
	}
	return strconv.FormatBool(!*f.skip)
}

func (f tlsFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*f.skip = !v
	return nil
}

func (f tlsFlag) IsBoolFlag() bool { return true }

// registerTLSFlags binds the TLS part's flags.
func (o *ProxyOptions) registerTLSFlags(fs *flag.FlagSet) {
	fs.Var(tlsFlag{&o.SkipTLS}, "tls", "also measure HTTPS/1.1 (wrk), HTTP/2 (h2load) and TLS handshakes, wasmgate vs nginx (needs h2load: Debian's nghttp2-client)")
	fs.IntVar(&o.H2Streams, "h2-streams", defaultH2Streams, "concurrent HTTP/2 streams per h2load connection; h2load opens connections/h2-streams connections (at least one)")
}

// h2Connections is how many connections h2load opens.
func (o ProxyOptions) h2Connections() int { return max(1, o.Connections/o.H2Streams) }

// TLSReport is the TLS part of a ProxyReport.
type TLSReport struct {
	// Certificate describes the one certificate both servers serve.
	Certificate string `json:"certificate"`
	// H2Connections and H2Streams are h2load's -c and -m.
	H2Connections int `json:"h2_connections"`
	H2Streams     int `json:"h2_streams"`
	// HandshakeClients is the handshake client's concurrent connections.
	HandshakeClients int `json:"handshake_clients"`
	// HandshakePinning says where the handshake client (in the harness
	// process) ran.
	HandshakePinning string `json:"handshake_pinning"`
	// Measurements are the raw runs in the order they ran.
	Measurements []TLSRun `json:"measurements"`
	// Medians has one entry per case and server, in the order of the cases.
	Medians []TLSSummary `json:"medians"`
	// VsNginx is wasmgate's medians divided by nginx's, one per case.
	VsNginx []TLSRatio `json:"wasmgate_vs_nginx"`
}

// TLSRun is one measurement of one TLS case against one server.
type TLSRun struct {
	Round  int    `json:"round"`
	Case   string `json:"case"`
	Server string `json:"server"`
	URL    string `json:"url"`
	// Count is the requests (https1, h2) or handshakes completed.
	Count  int64   `json:"count"`
	PerSec float64 `json:"per_sec"`
	// P50Micros and P99Micros are request latencies (https1, h2), or
	// connect + handshake times (handshakes), as the client saw them.
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
	// Negotiated is the TLS version, cipher suite and group of the run's
	// connections (for wrk, those an OpenSSL client negotiated with the
	// server in a probe before the rounds).
	Negotiated string `json:"negotiated"`
	// Resumed is the handshakes that resumed a session.
	Resumed int64 `json:"resumed,omitempty"`
	// CPUSeconds is user+system CPU of the server's process tree over the
	// run; CPUMicrosPer is that per request or per handshake.
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUMicrosPer float64 `json:"cpu_us_per"`
	// UpstreamCPUMicrosPer is the upstream's, per request (0 for
	// handshakes, which send none).
	UpstreamCPUMicrosPer float64          `json:"upstream_cpu_us_per"`
	Wrk                  *WrkResult       `json:"wrk,omitempty"`
	H2load               *H2loadResult    `json:"h2load,omitempty"`
	Handshakes           *HandshakeResult `json:"handshakes,omitempty"`
}

// TLSSummary is the median over rounds of one case against one server.
type TLSSummary struct {
	Case         string  `json:"case"`
	Server       string  `json:"server"`
	Runs         int     `json:"runs"`
	PerSec       float64 `json:"per_sec"`
	P50Micros    float64 `json:"p50_us"`
	P99Micros    float64 `json:"p99_us"`
	CPUMicrosPer float64 `json:"cpu_us_per"`
	// ResumedShare is the share of handshakes that resumed (all rounds).
	ResumedShare float64 `json:"resumed_share"`
	Negotiated   string  `json:"negotiated"`
}

// TLSRatio is wasmgate's median of a case divided by nginx's.
type TLSRatio struct {
	Case         string  `json:"case"`
	PerSec       float64 `json:"per_sec"`
	P99          float64 `json:"p99"`
	CPUMicrosPer float64 `json:"cpu_us_per"`
	// CPURound* spread the same CPU ratio taken within each round (the
	// two servers measured one after the other): its median, lowest and
	// highest, which show how much of the ratio is this machine's noise.
	CPURoundMedian float64 `json:"cpu_us_per_round_median"`
	CPURoundMin    float64 `json:"cpu_us_per_round_min"`
	CPURoundMax    float64 `json:"cpu_us_per_round_max"`
}

// MarshalJSON writes undefined ratios as null.
func (r TLSRatio) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{
		"case":                    r.Case,
		"per_sec":                 jsonNum(r.PerSec),
		"p99":                     jsonNum(r.P99),
		"cpu_us_per":              jsonNum(r.CPUMicrosPer),
		"cpu_us_per_round_median": jsonNum(r.CPURoundMedian),
		"cpu_us_per_round_min":    jsonNum(r.CPURoundMin),
		"cpu_us_per_round_max":    jsonNum(r.CPURoundMax),
	})
}

// jsonNum is v, or nil for NaN and ±Inf, which JSON cannot carry.
func jsonNum(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

// Summary returns the median of a case against a server, or false.
func (t *TLSReport) Summary(caseName, server string) (TLSSummary, bool) {
	for _, s := range t.Medians {
		if s.Case == caseName && s.Server == server {
			return s, true
		}
	}
	return TLSSummary{}, false
}

// Ratio returns wasmgate ÷ nginx for a case, or false.
func (t *TLSReport) Ratio(caseName string) (TLSRatio, bool) {
	for _, r := range t.VsNginx {
		if r.Case == caseName {
			return r, true
		}
	}
	return TLSRatio{}, false
}

// summarize fills Medians and VsNginx from Measurements.
func (t *TLSReport) summarize() {
	t.Medians, t.VsNginx = t.Medians[:0], t.VsNginx[:0]
	for _, c := range tlsCases {
		for _, server := range tlsServers {
			s := TLSSummary{Case: c.name, Server: server}
			var rate, p50, p99, cpu []float64
			var count, resumed int64
			for _, m := range t.Measurements {
				if m.Case != c.name || m.Server != server {
					continue
				}
				rate = append(rate, m.PerSec)
				p50 = append(p50, m.P50Micros)
				p99 = append(p99, m.P99Micros)
				cpu = append(cpu, m.CPUMicrosPer)
				count += m.Count
				resumed += m.Resumed
				if s.Negotiated == "" {
					s.Negotiated = m.Negotiated
				}
			}
			if s.Runs = len(rate); s.Runs == 0 {
				continue
			}
			s.PerSec, s.P50Micros, s.P99Micros, s.CPUMicrosPer = median(rate), median(p50), median(p99), median(cpu)
			if c.kind == kindHandshake && count > 0 {
				s.ResumedShare = float64(resumed) / float64(count)
			}
			t.Medians = append(t.Medians, s)
		}
		gw, ok1 := t.Summary(c.name, TargetGateway)
		ngx, ok2 := t.Summary(c.name, TargetNginx)
		if ok1 || ok2 {
			r := TLSRatio{Case: c.name, PerSec: div(gw.PerSec, ngx.PerSec),
				P99: div(gw.P99Micros, ngx.P99Micros), CPUMicrosPer: div(gw.CPUMicrosPer, ngx.CPUMicrosPer)}
			r.CPURoundMedian, r.CPURoundMin, r.CPURoundMax = t.roundRatios(c.name)
			t.VsNginx = append(t.VsNginx, r)
		}
	}
}

// roundRatios is the median, lowest and highest of wasmgate's CPU per
// request or handshake divided by nginx's of the same round; NaN when no
// round has both.
func (t *TLSReport) roundRatios(caseName string) (med, lo, hi float64) {
	byRound := map[int]map[string]float64{}
	for _, m := range t.Measurements {
		if m.Case != caseName {
			continue
		}
		if byRound[m.Round] == nil {
			byRound[m.Round] = map[string]float64{}
		}
		byRound[m.Round][m.Server] = m.CPUMicrosPer
	}
	var ratios []float64
	for _, r := range byRound {
		gw, ok1 := r[TargetGateway]
		ngx, ok2 := r[TargetNginx]
		if ok1 && ok2 && ngx > 0 {
			ratios = append(ratios, gw/ngx)
		}
	}
	if len(ratios) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	return median(ratios), slices.Min(ratios), slices.Max(ratios)
}

// requestTable is the HTTPS/1.1 and HTTP/2 medians, with each server's
// plain HTTP/1.1 figure of the same run (plain: the proxy study's medians)
// for what TLS and HTTP/2 add.
func (t *TLSReport) requestTable(plain func(server string) (ProxySummary, bool)) *Table {
	tab := &Table{
		Columns: []string{"protocol", "server", "client", "req/s", "p50", "p99", "proxy CPU-µs/req", "CPU vs nginx", "CPU vs its plain HTTP/1.1", "negotiated"},
		Align:   []Align{AlignLeft, AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignLeft},
	}
	for _, c := range tlsCases {
		if c.kind == kindHandshake {
			continue
		}
		ngx, _ := t.Summary(c.name, TargetNginx)
		for _, server := range tlsServers {
			s, ok := t.Summary(c.name, server)
			if !ok {
				continue
			}
			vsPlain := math.NaN()
			if p, ok := plain(server); ok {
				vsPlain = div(s.CPUMicrosPer, p.CPUMicrosPerRequest)
			}
			tab.Rows = append(tab.Rows, []string{c.label, server, c.client,
				FormatNumber(s.PerSec), FormatMicros(s.P50Micros), FormatMicros(s.P99Micros),
				FormatNumber(s.CPUMicrosPer), FormatRatio(div(s.CPUMicrosPer, ngx.CPUMicrosPer)),
				FormatRatio(vsPlain), s.Negotiated})
		}
	}
	return tab
}

// handshakeTable is the handshake medians.
func (t *TLSReport) handshakeTable() *Table {
	tab := &Table{
		Columns: []string{"handshake", "server", "negotiated", "handshakes/s", "p50", "p99", "resumed", "server CPU-µs/handshake", "CPU vs nginx"},
		Align:   []Align{AlignLeft, AlignLeft, AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight, AlignRight},
	}
	for _, c := range tlsCases {
		if c.kind != kindHandshake {
			continue
		}
		ngx, _ := t.Summary(c.name, TargetNginx)
		for _, server := range tlsServers {
			s, ok := t.Summary(c.name, server)
			if !ok {
				continue
			}
			tab.Rows = append(tab.Rows, []string{c.label, server, s.Negotiated,
				FormatNumber(s.PerSec), FormatMicros(s.P50Micros), FormatMicros(s.P99Micros),
				strconv.FormatFloat(100*s.ResumedShare, 'f', 1, 64) + "%",
				FormatNumber(s.CPUMicrosPer), FormatRatio(div(s.CPUMicrosPer, ngx.CPUMicrosPer))})
		}
	}
	return tab
}

// ratioTable states wasmgate ÷ nginx per case, with the target the issue
// sets for requests (CPU-µs/req at most nginx's).
func (t *TLSReport) ratioTable() *Table {
	tab := &Table{
		Columns: []string{"wasmgate ÷ nginx", "req/s or handshakes/s", "p99", "CPU-µs per request or handshake", "same CPU ratio per round: median (min–max)", "target"},
		Align:   []Align{AlignLeft, AlignRight, AlignRight, AlignRight, AlignRight, AlignLeft},
	}
	for _, r := range t.VsNginx {
		c, _ := tlsCaseNamed(r.Case)
		target := "-"
		if c.kind != kindHandshake {
			switch {
			case math.IsNaN(r.CPUMicrosPer):
				target = "≤ 1.00x: n/a"
			case r.CPUMicrosPer <= 1:
				target = "≤ 1.00x: met"
			default:
				target = "≤ 1.00x: not met"
			}
		}
		spread := fmt.Sprintf("%s (%s–%s)", FormatRatio(r.CPURoundMedian), FormatRatio(r.CPURoundMin), FormatRatio(r.CPURoundMax))
		if math.IsNaN(r.CPURoundMedian) {
			spread = "n/a"
		}
		tab.Rows = append(tab.Rows, []string{c.label, FormatRatio(r.PerSec), FormatRatio(r.P99), FormatRatio(r.CPUMicrosPer), spread, target})
	}
	return tab
}

// chart is proxy-tls-latest.svg: one panel per figure, a bar per server.
func (t *TLSReport) chart(runs int) *BarChart {
	c := &BarChart{Title: fmt.Sprintf("HTTPS, HTTP/2 and TLS handshakes: medians of %d runs on loopback", runs),
		Groups: tlsServers}
	for _, tc := range tlsCases {
		rate, cpu := Series{}, Series{}
		any := false
		for _, server := range tlsServers {
			s, ok := t.Summary(tc.name, server)
			if !ok {
				s = TLSSummary{PerSec: math.NaN(), CPUMicrosPer: math.NaN()}
			}
			any = any || ok
			rate.Values = append(rate.Values, s.PerSec)
			cpu.Values = append(cpu.Values, s.CPUMicrosPer)
		}
		if !any {
			continue
		}
		if tc.kind == kindHandshake {
			rate.Name = tc.label + ": handshakes/s (higher is better)"
			cpu.Name = tc.label + ": server CPU-µs per handshake (lower is better)"
		} else {
			rate.Name = tc.label + ": requests/s (higher is better)"
			cpu.Name = tc.label + ": proxy CPU-µs per request (lower is better)"
		}
		c.Series = append(c.Series, rate, cpu)
	}
	return c
}

// writeMarkdown writes the TLS section of proxy-latest.md.
func (t *TLSReport) writeMarkdown(b *bytes.Buffer, r *ProxyReport) {
	fmt.Fprintf(b, "\n## HTTPS, HTTP/2 and TLS handshakes\n\n")
	fmt.Fprintf(b, "The same upstream, gateway process (its `listen.tls` listener) and nginx worker (`listen … ssl http2`) as above, one certificate for both (%s), TLS 1.2 and 1.3 enabled on both, each server's defaults otherwise (session tickets on). Rounds interleave these cases with the plain targets; medians of %d runs.\n\n",
		t.Certificate, r.Runs)
	fmt.Fprintf(b, "- HTTPS/1.1: `wrk --latency -t%d -c%d -d%s https://…/` (keep-alive connections; wrk offers no ALPN, so both serve HTTP/1.1). The negotiated parameters are those an OpenSSL 3.0 client (h2load) got from each server.\n",
		r.Threads, r.Connections, r.Duration)
	fmt.Fprintf(b, "- HTTP/2: `h2load -t%d -c%d -m%d -D%s https://…/` (%d connections of %d concurrent streams), p50/p99 from h2load's per-request log.\n",
		min(wrkThreads, t.H2Connections), t.H2Connections, t.H2Streams, strings.TrimSuffix(r.Duration, "s"), t.H2Connections, t.H2Streams)
	fmt.Fprintf(b, "- Handshakes: a Go crypto/tls client in the harness (%s), %d connections at a time, each a TCP connect, a TLS handshake, close_notify and the server's close, no request; p50/p99 are the client's connect + handshake times. Full: no session offered; resumed: the ticket of the client's previous connection to that server (TLS 1.3 PSK with ECDHE). The client offers X25519 only, like OpenSSL 3.0 clients (wrk, h2load, curl), so that both servers do the same key exchange; the last case offers X25519MLKEM768 first, as current browsers do.\n",
		t.HandshakePinning, t.HandshakeClients)
	fmt.Fprintf(b, "- CPU: user+system CPU of the server's process tree (the gateway; nginx's master and worker) over the run, per request or per handshake. \"CPU vs its plain HTTP/1.1\" divides by the same server's plain row above.\n\n")
	_ = t.requestTable(r.Summary).WriteMarkdown(b)
	b.WriteString("\n")
	_ = t.handshakeTable().WriteMarkdown(b)
	fmt.Fprintf(b, "\nwasmgate divided by nginx (medians of the same run):\n\n")
	_ = t.ratioTable().WriteMarkdown(b)
	fmt.Fprintf(b, "\n![HTTPS, HTTP/2 and handshakes: wasmgate vs nginx](proxy-tls-latest.svg)\n")
}

// tlsEnv is what the TLS part needs besides the proxy study's processes.
type tlsEnv struct {
	certFile, keyFile string
	roots             *x509.CertPool
	addrs             map[string]string // server → its HTTPS listener
	// sessions are the resumed case's client session caches, one per
	// server, kept from the warmup to the last round.
	sessions map[string]tls.ClientSessionCache
	// negotiated is what an OpenSSL client (h2load --h1) negotiated with
	// each server in a probe: what wrk gets.
	negotiated map[string]string
	logFile    string
	pinning    string
	report     *TLSReport
}

// newTLSEnv makes a CA and a server certificate for localhost and
// 127.0.0.1 (ECDSA P-256, what `wasmgate cert` makes), written to dir for
// both servers.
func newTLSEnv(dir string) (*tlsEnv, error) {
	ca, err := certs.NewCA("wasmgate bench CA", 24*time.Hour)
	if err != nil {
		return nil, fmt.Errorf("bench CA: %w", err)
	}
	leaf, err := ca.Issue(certs.Request{CN: tlsServerName, Names: []string{tlsServerName, "127.0.0.1"}})
	if err != nil {
		return nil, fmt.Errorf("bench certificate: %w", err)
	}
	t := &tlsEnv{
		certFile: filepath.Join(dir, "server.pem"), keyFile: filepath.Join(dir, "server.key"),
		roots: ca.Pool(), addrs: map[string]string{}, negotiated: map[string]string{},
		sessions: map[string]tls.ClientSessionCache{}, logFile: filepath.Join(dir, "h2load.log"),
	}
	if err := os.WriteFile(t.certFile, leaf.PEM, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(t.keyFile, leaf.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	for _, s := range tlsServers {
		t.sessions[s] = tls.NewLRUClientSessionCache(8)
	}
	return t, nil
}

func (t *tlsEnv) url(server string) string { return "https://" + t.addrs[server] + "/" }

// clientConfig is the handshake client's configuration for case c against
// server. It skips verifying the certificate: that costs the client only,
// which shares its CPU with the load; readiness checked the certificate
// once (waitTLS).
func (t *tlsEnv) clientConfig(c tlsCase, server string) *tls.Config {
	cfg := &tls.Config{ServerName: tlsServerName, InsecureSkipVerify: true, CurvePreferences: c.curves} //nolint:gosec // see above
	if c.resume {
		cfg.ClientSessionCache = t.sessions[server]
	}
	return cfg
}

// waitTLS polls server's HTTPS listener until it answers the upstream's
// body over HTTP/1.1 and over HTTP/2 with a client that verifies the
// certificate.
func (e *proxyEnv) waitTLS(ctx context.Context, p *proc, server string) error {
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.tls.roots, ServerName: tlsServerName},
			DisableKeepAlives: true, ForceAttemptHTTP2: h2}
		if !h2 {
			tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
		}
		client := &http.Client{Timeout: time.Second, Transport: tr}
		check := func(resp *http.Response) error {
			if want := map[bool]int{false: 1, true: 2}[h2]; resp.ProtoMajor != want {
				return fmt.Errorf("GET %s: answered over %s, want HTTP/%d", e.tls.url(server), resp.Proto, want)
			}
			return nil
		}
		err := waitHTTPClient(ctx, p, client, e.tls.url(server), nil, true, readyTimeout, check)
		tr.CloseIdleConnections()
		if err != nil {
			return err
		}
	}
	return nil
}

// probeTLS asks each server, with one request of an OpenSSL client
// (h2load --h1), what it negotiates: the parameters of the wrk runs.
func (e *proxyEnv) probeTLS(ctx context.Context) error {
	for _, server := range tlsServers {
		res, err := e.h2load(ctx, e.tls.url(server), time.Second, 1, 1, 1, true, e.tls.logFile)
		if err != nil {
			return fmt.Errorf("probing %s over TLS: %w", server, err)
		}
		e.tls.negotiated[server] = res.Negotiated()
	}
	return nil
}

// runTLS runs case c against server for d and reads the CPU the server
// (and the upstream) spent meanwhile.
func (e *proxyEnv) runTLS(ctx context.Context, round int, c tlsCase, server string, d time.Duration) (TLSRun, error) {
	run := TLSRun{Round: round, Case: c.name, Server: server, URL: e.tls.url(server)}
	of := e.proxies[server]
	cpu0, err := treeCPUTicks(of.pid())
	if err != nil {
		return run, err
	}
	up0, err := treeCPUTicks(e.upstream.pid())
	if err != nil {
		return run, err
	}
	switch c.kind {
	case kindHTTPS1:
		res, err := e.wrk(ctx, run.URL, d)
		if err != nil {
			return run, err
		}
		if bad := res.Non2xx3xx; float64(bad) > maxBadShare*float64(res.Requests) {
			return run, fmt.Errorf("%d of %d responses were not 2xx/3xx", bad, res.Requests)
		}
		run.Wrk = &res
		run.Count, run.PerSec, run.P50Micros, run.P99Micros = res.Requests, res.RequestsPerSec, res.P50Micros, res.P99Micros
		run.Negotiated = e.tls.negotiated[server]
	case kindH2:
		res, err := e.h2load(ctx, run.URL, d, 0, e.o.h2Connections(), e.o.H2Streams, false, e.tls.logFile)
		if err != nil {
			return run, err
		}
		if res.ALPN != "h2" {
			return run, fmt.Errorf("h2load negotiated %q with %s, not h2", res.ALPN, server)
		}
		if bad := res.Non2xx + res.Failed + res.Errored + res.Timeout; float64(bad) > maxBadShare*float64(res.Requests) {
			return run, fmt.Errorf("%d of %d requests failed or were not 2xx (%d failed, %d errored, %d timed out, %d not 2xx)",
				bad, res.Requests, res.Failed, res.Errored, res.Timeout, res.Non2xx)
		}
		run.H2load = &res
		run.Count, run.PerSec, run.P50Micros, run.P99Micros = res.Requests, res.RequestsPerSec, res.P50Micros, res.P99Micros
		run.Negotiated = res.Negotiated()
	case kindHandshake:
		restore := func() {}
		if e.pin.Tool == "taskset" && e.pin.LoadCPU >= 0 {
			if restore, err = pinHarness(e.pin.LoadCPU); err != nil {
				return run, err
			}
		}
		res, err := runHandshakes(ctx, e.tls.addrs[server], e.tls.clientConfig(c, server), e.tls.report.HandshakeClients, d)
		restore()
		if err != nil {
			return run, err
		}
		run.Handshakes = &res
		run.Count, run.PerSec, run.P50Micros, run.P99Micros = res.Handshakes, res.PerSec, res.P50Micros, res.P99Micros
		run.Negotiated, run.Resumed = res.Negotiated, res.Resumed
	}
	for _, p := range []*proc{of, e.upstream} {
		if p.exited() {
			return run, p.exitError()
		}
	}
	cpu1, err := treeCPUTicks(of.pid())
	if err != nil {
		return run, err
	}
	up1, err := treeCPUTicks(e.upstream.pid())
	if err != nil {
		return run, err
	}
	run.CPUSeconds = float64(cpu1-cpu0) / e.clk
	run.CPUMicrosPer = run.CPUSeconds * 1e6 / float64(run.Count)
	if c.kind != kindHandshake {
		run.UpstreamCPUMicrosPer = float64(up1-up0) / e.clk * 1e6 / float64(run.Count)
	}
	return run, nil
}

// startTLS makes the certificate and the TLS part's report before the
// servers start (their configs name the files).
func (e *proxyEnv) startTLS(tmp string) error {
	t, err := newTLSEnv(tmp)
	if err != nil {
		return err
	}
	t.pinning = "not pinned"
	if e.pin.Tool == "taskset" && e.pin.LoadCPU >= 0 {
		t.pinning = fmt.Sprintf("pinned to CPU %d, with the load, while it runs", e.pin.LoadCPU)
	}
	t.report = &TLSReport{
		Certificate:      "ECDSA P-256 from a CA the run makes with host/certs",
		H2Connections:    e.o.h2Connections(),
		H2Streams:        e.o.H2Streams,
		HandshakeClients: min(handshakeClients, e.o.Connections),
		HandshakePinning: t.pinning,
	}
	e.tls = t
	return nil
}

// warmupTLS runs every TLS case against every server once, unrecorded: it
// opens the servers' upstream pools for TLS requests and fills the
// resumed case's session caches.
func (e *proxyEnv) warmupTLS(ctx context.Context) error {
	for _, c := range tlsCases {
		for _, server := range tlsServers {
			fmt.Fprintf(e.o.Progress, "bench: warmup %s %s (%s)\n", c.name, server, warmup)
			if _, err := e.runTLS(ctx, 0, c, server, warmup); err != nil {
				return fmt.Errorf("warmup %s %s: %w", c.name, server, err)
			}
		}
	}
	return nil
}

// roundTLS runs every TLS case against every server once and records them.
func (e *proxyEnv) roundTLS(ctx context.Context, round int) error {
	for _, c := range tlsCases {
		for _, server := range tlsServers {
			run, err := e.runTLS(ctx, round, c, server, e.o.Duration)
			if err != nil {
				return fmt.Errorf("round %d, %s %s: %w", round, c.name, server, err)
			}
			e.tls.report.Measurements = append(e.tls.report.Measurements, run)
			extra := ""
			if c.kind == kindHandshake {
				extra = fmt.Sprintf(", %.0f%% resumed", 100*float64(run.Resumed)/float64(run.Count))
			}
			fmt.Fprintf(e.o.Progress, "bench: round %d/%d %-20s %-8s %s/s, p50 %s, p99 %s, %s CPU-µs each%s\n",
				round, e.o.Runs, c.name, server, FormatNumber(run.PerSec), FormatMicros(run.P50Micros),
				FormatMicros(run.P99Micros), FormatNumber(run.CPUMicrosPer), extra)
		}
	}
	return nil
}

// writeText prints the TLS tables.
func (t *TLSReport) writeText(w io.Writer, r *ProxyReport) error {
	fmt.Fprintf(w, "\nHTTPS/1.1 and HTTP/2 (same upstream; CPU of the proxy):\n")
	if err := t.requestTable(r.Summary).WriteText(w); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nTLS handshakes (no request; CPU of the server):\n")
	if err := t.handshakeTable().WriteText(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return t.ratioTable().WriteText(w)
}
