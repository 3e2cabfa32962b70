package main

// `wasmgate plugin run`: one request through a plugin's hooks, offline,
// with no gateway started. The sandbox and the exchange here are shared
// with `plugin test` (plugin_cases.go).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/wasm"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

const runUsage = `usage: wasmgate plugin run FILE.wasm --request REQ.http [flags]

Runs a plugin's hooks on one request, offline: no gateway is started.
REQ.http is a raw HTTP/1.1 request (request line, header lines, an empty
line, the body; LF or CRLF; lines starting with # before the request line
are comments). on_request runs on it; unless the plugin answers locally,
the request goes to --upstream (without it, a stub answers 200 with a JSON
echo of what it received), then on_response runs on the answer. Printed:
what on_request changed in the request, the local response if any, what
on_response changed in the response, the response as the client gets it,
the plugin's log lines and every host function it called (arguments and
result).

The KV store and the plugin's metrics live in memory for the run. Outbound
calls (http_batch) are made for real to the destinations allowed with
--allow-host and --allow-upstream; any other is refused, as the gateway
refuses a destination the route does not allow.

Exit status: 0 when every hook ran, 1 when the plugin failed (a rejected
config, a trap, a timeout...) or the upstream did not answer, 2 for bad
arguments.

Flags:
`

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// sandboxFlags are the flags `plugin run` and `plugin test` share.
type sandboxFlags struct {
	interpreter   bool
	cacheDir      string
	callTimeout   time.Duration
	pages         uint
	allowHosts    stringList
	allowUpstream stringList
}

func (f *sandboxFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.interpreter, "interpreter", false, "run with wazero's interpreter instead of its compiler")
	fs.StringVar(&f.cacheDir, "cache-dir", "", `compilation cache (default: the gateway's, $XDG_CACHE_HOME/wasmgate or ~/.cache/wasmgate; "off": none)`)
	fs.DurationVar(&f.callTimeout, "call-timeout", 2*time.Second, "budget of one hook call (limits.call_timeout); outbound calls end before it")
	fs.UintVar(&f.pages, "memory-pages", wasm.DefaultMemoryPages, "memory cap in 64 KiB pages (limits.memory_pages)")
	fs.Var(&f.allowHosts, "allow-host", "allow outbound calls to http://HOST:PORT (repeatable; the route's outbound.hosts)")
	fs.Var(&f.allowUpstream, "allow-upstream", "NAME=URL: allow outbound calls to upstream://NAME, sent to URL (repeatable; the route's outbound.upstreams)")
}

// options checks the flags and makes the sandbox's options.
func (f *sandboxFlags) options() (sandboxOptions, error) {
	o := sandboxOptions{interpreter: f.interpreter, callTimeout: f.callTimeout}
	switch f.cacheDir {
	case "off":
	case "":
		o.cacheDir = defaultCacheDir()
	default:
		o.cacheDir = f.cacheDir
	}
	if f.pages == 0 || f.pages > 1<<16 {
		return o, fmt.Errorf("-memory-pages %d: want 1 to 65536", f.pages)
	}
	o.pages = uint32(f.pages)
	if f.callTimeout <= 0 {
		return o, fmt.Errorf("-call-timeout %s: want a positive duration", f.callTimeout)
	}
	out, err := outboundRules(f.allowHosts, f.allowUpstream)
	o.outbound = out
	return o, err
}

// outboundRules reads --allow-host HOST:PORT and --allow-upstream NAME=URL.
func outboundRules(hosts, upstreams []string) (outboundSpec, error) {
	spec := outboundSpec{hosts: map[string]bool{}, upstreams: map[string]string{}}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimPrefix(h, "http://"))
		if h == "" || strings.ContainsAny(h, "/?# ") {
			return spec, fmt.Errorf("-allow-host %q: want HOST:PORT", h)
		}
		if i := strings.LastIndexByte(h, ':'); i < 0 || strings.Contains(h[i:], "]") {
			h += ":80"
		}
		spec.hosts[h] = true
	}
	for _, u := range upstreams {
		name, target, ok := strings.Cut(u, "=")
		pu, err := url.Parse(target)
		if !ok || name == "" || err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return spec, fmt.Errorf("-allow-upstream %q: want NAME=http://HOST:PORT", u)
		}
		spec.upstreams[name] = strings.TrimSuffix(target, "/")
	}
	return spec, nil
}

// defaultCacheDir is the gateway's default compilation cache
// (plugin_runtime.cache_dir), so that run and test share its compiled code.
func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "wasmgate")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "wasmgate")
	}
	return filepath.Join(os.TempDir(), "wasmgate-cache")
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, and returns those.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func pluginRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("plugin run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, runUsage)
		fs.PrintDefaults()
	}
	var sf sandboxFlags
	sf.register(fs)
	cfgFlag := fs.String("config", "", "the plugin's config: a YAML or JSON file, or inline YAML/JSON ({...}); converted to JSON as the gateway does (default: none, read as {})")
	reqFlag := fs.String("request", "", "the request: a file of raw HTTP/1.1 (required)")
	upstream := fs.String("upstream", "", "send the request to this upstream, http://HOST:PORT[/prefix] (default: a stub answers 200 with an echo of the request)")
	clientIP := fs.String("client-ip", "127.0.0.1", "the client address the plugin sees (request_client_ip)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	usageLine := "usage: wasmgate plugin run FILE.wasm --request REQ.http [--config CFG] [--upstream URL] (-h for more)\n"
	if len(pos) != 1 || *reqFlag == "" {
		fmt.Fprint(stderr, usageLine)
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmgate plugin run: "+format+"\n", a...)
		return code
	}
	o, err := sf.options()
	if err != nil {
		return fail(2, "%v", err)
	}
	cfg, err := readConfigArg(*cfgFlag)
	if err != nil {
		return fail(2, "--config: %v", err)
	}
	raw, err := os.ReadFile(*reqFlag)
	if err != nil {
		return fail(2, "--request: %v", err)
	}
	req, err := parseHTTPFile(*reqFlag, raw)
	if err != nil {
		return fail(2, "%v", err)
	}
	var send upstreamFunc
	if *upstream != "" {
		if send, err = realUpstream(*upstream); err != nil {
			return fail(2, "--upstream: %v", err)
		}
	}

	ctx := context.Background()
	sb, err := openSandbox(ctx, pos[0], o)
	if err != nil {
		return fail(1, "%v", err)
	}
	defer sb.close(ctx)
	x := sb.exchange(ctx, exchangeSpec{config: cfg, clientIP: *clientIP, req: req, upstream: send})
	w := &reportWriter{w: stdout}
	x.report(w, sb)
	if w.err != nil {
		return fail(1, "%v", w.err)
	}
	switch {
	case x.initErr != nil:
		return fail(1, "%s", x.initProblem())
	case x.reqErr != nil:
		return fail(1, "on_request failed: %v", x.reqErr)
	case x.respErr != nil:
		return fail(1, "on_response failed: %v", x.respErr)
	case x.upstreamErr != nil:
		return fail(1, "the upstream did not answer: %v", x.upstreamErr)
	}
	return 0
}

// readConfigArg reads --config: a file (YAML or JSON) or inline text, made
// the JSON the plugin reads.
func readConfigArg(v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	src := []byte(v)
	if t := strings.TrimSpace(v); !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		var err error
		if src, err = os.ReadFile(v); err != nil {
			return nil, err
		}
	}
	return pluginConfigJSON(src)
}

// pluginConfigJSON turns a YAML (or JSON) value into the JSON the gateway
// hands the plugin, with the gateway's own rules (sdk/ABI.md section 5:
// key order kept, ${ENV} expanded...): the value is parsed as the config
// of a plugin entry.
func pluginConfigJSON(src []byte) ([]byte, error) {
	const head = "plugins:\n  - name: p\n    module: p.wasm\n    config:\n"
	var b strings.Builder
	b.WriteString(head)
	lines := strings.Split(strings.TrimRight(string(src), "\n\r\t "), "\n")
	for _, l := range lines {
		b.WriteString("      ")
		b.WriteString(strings.TrimRight(l, "\r"))
		b.WriteByte('\n')
	}
	c, err := config.Parse("config", []byte(b.String()))
	if err != nil {
		// Positions are those of the wrapped text: report the message only.
		var list config.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			msgs := make([]string, len(list))
			for i, e := range list {
				msgs[i] = e.Msg
			}
			return nil, errors.New(strings.Join(msgs, "; "))
		}
		return nil, err
	}
	if len(c.Plugins) != 1 {
		return nil, errors.New("not a config value")
	}
	return c.Plugins[0].Config, nil
}

// ---- The request file ----

// parseHTTPFile reads a raw HTTP/1.1 request, as the gateway would
// receive it, into the request the first plugin of a chain sees: its path
// in the gateway's canonical form, hop-by-hop headers removed. Without
// Content-Length the body is the rest of the file less one final newline.
func parseHTTPFile(name string, data []byte) (*fasthttp.Request, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	lineNo := 0
	next := func() (string, bool) {
		if len(data) == 0 {
			return "", false
		}
		lineNo++
		line, rest, _ := bytes.Cut(data, []byte("\n"))
		data = rest
		return strings.TrimSuffix(string(line), "\r"), true
	}
	errf := func(format string, a ...any) error {
		return fmt.Errorf("%s:%d: %s", name, lineNo, fmt.Sprintf(format, a...))
	}
	var first string
	for {
		l, ok := next()
		if !ok {
			return nil, fmt.Errorf("%s: no request line (want METHOD /path HTTP/1.1)", name)
		}
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			first = l
			break
		}
	}
	parts := strings.Split(first, " ")
	if len(parts) == 2 {
		parts = append(parts, "HTTP/1.1")
	}
	if len(parts) != 3 || !httpsyntax.IsToken(parts[0]) || parts[1] == "" {
		return nil, errf("bad request line %q: want METHOD /path HTTP/1.1", first)
	}
	method, target, proto := parts[0], parts[1], parts[2]
	if proto != "HTTP/1.1" && proto != "HTTP/1.0" {
		return nil, errf("bad version %q: want HTTP/1.1 (or HTTP/1.0)", proto)
	}
	var hostFromTarget string
	if !strings.HasPrefix(target, "/") {
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, errf("bad request target %q: want /path?query or http://host/path", target)
		}
		hostFromTarget = u.Host
		target = u.EscapedPath()
		if target == "" {
			target = "/"
		}
		if u.RawQuery != "" {
			target += "?" + u.RawQuery
		}
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f {
			return nil, errf("bad request target %q: control character or space", target)
		}
	}

	var raw bytes.Buffer
	fmt.Fprintf(&raw, "%s %s HTTP/1.1\r\n", method, target)
	hasHost, contentLength := false, -1
	for {
		l, ok := next()
		if !ok || l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			return nil, errf("a header line may not start with a space (no obsolete line folding)")
		}
		k, v, found := strings.Cut(l, ":")
		if !found || !httpsyntax.IsToken(k) {
			return nil, errf("bad header line %q: want Name: value", l)
		}
		v = strings.Trim(v, " \t")
		if !httpsyntax.IsFieldValue([]byte(v)) {
			return nil, errf("bad value of header %s", k)
		}
		switch strings.ToLower(k) {
		case "host":
			if hasHost {
				return nil, errf("two Host headers")
			}
			hasHost = true
		case "content-length":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || contentLength >= 0 {
				return nil, errf("bad Content-Length %q", v)
			}
			contentLength = n
			continue // set below from the body
		case "transfer-encoding":
			return nil, errf("Transfer-Encoding is not supported here: write the body as it is (with Content-Length or none)")
		}
		fmt.Fprintf(&raw, "%s: %s\r\n", k, v)
	}
	if !hasHost {
		host := hostFromTarget
		if host == "" {
			host = "localhost"
		}
		fmt.Fprintf(&raw, "Host: %s\r\n", host)
	}
	body := data
	switch {
	case contentLength >= 0:
		if len(body) < contentLength {
			return nil, fmt.Errorf("%s: the body has %d bytes, Content-Length says %d", name, len(body), contentLength)
		}
		body = body[:contentLength]
	case bytes.HasSuffix(body, []byte("\r\n")):
		body = body[:len(body)-2]
	case bytes.HasSuffix(body, []byte("\n")):
		body = body[:len(body)-1]
	}
	if len(body) > 0 || contentLength >= 0 {
		fmt.Fprintf(&raw, "Content-Length: %d\r\n", len(body))
	}
	raw.WriteString("\r\n")
	raw.Write(body)

	req := &fasthttp.Request{}
	if err := req.Read(bufio.NewReader(&raw)); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	// What admission does before the chain: the canonical path, and no
	// hop-by-hop headers.
	u := req.URI()
	clean, err := httpsyntax.CleanPath(nil, u.PathOriginal(), httpsyntax.KeepEscapedSlashes)
	if err != nil {
		return nil, fmt.Errorf("%s:1: the path: %v (the gateway answers 400)", name, err)
	}
	u.SetPathBytes(clean)
	proxy.StripHopByHop(&req.Header)
	return req, nil
}

// ---- The sandbox: one module, loaded once, with a traced host ----

type sandboxOptions struct {
	interpreter bool
	cacheDir    string
	callTimeout time.Duration
	pages       uint32
	outbound    outboundSpec
}

// outboundSpec is what outbound calls may reach (--allow-host,
// --allow-upstream).
type outboundSpec struct {
	hosts     map[string]bool   // "host:port", lower case
	upstreams map[string]string // name → base URL
}

// sandbox is a plugin module loaded on an engine whose host functions are
// traced: every call goes to the record of the exchange being run.
type sandbox struct {
	path, name string
	opts       sandboxOptions
	engine     *wasm.WazeroEngine
	rt         *wasm.Runtime
	mod        *wasm.Module
	info       wasm.ModuleInfo
	rec        atomic.Pointer[record]
	prev       *wasm.Binding // the last exchange's binding
}

func openSandbox(ctx context.Context, path string, o sandboxOptions) (*sandbox, error) {
	code, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if info, _ := wasm.Inspect(code); info.ABI == wasm.ABIHTTPWasm {
		return nil, fmt.Errorf("%s: an http-wasm guest: run it in the gateway (plugin run and plugin test drive the native ABI; plugin check validates it)", path)
	}
	s := &sandbox{path: path, name: strings.TrimSuffix(filepath.Base(path), ".wasm"), opts: o}
	if s.engine, err = wasm.NewWazeroEngine(wasm.WazeroOptions{CacheDir: o.cacheDir, Interpreter: o.interpreter,
		Host: abi.Traced(abi.Functions(), s.trace)}); err != nil {
		return nil, err
	}
	if s.rt, err = wasm.NewRuntime(wasm.Options{Engine: s.engine, Log: slog.New(slog.DiscardHandler)}); err != nil {
		s.engine.Close(ctx)
		return nil, err
	}
	if s.mod, err = s.rt.Load(ctx, s.name, code); err != nil {
		s.rt.Close(ctx)
		s.engine.Close(ctx)
		return nil, fmt.Errorf("%s: rejected: %w", path, err)
	}
	s.info = s.mod.Info()
	return s, nil
}

func (s *sandbox) close(ctx context.Context) {
	if s.prev != nil {
		s.prev.Close(ctx)
	}
	s.mod.Release(ctx)
	s.rt.Close(ctx)
	s.engine.Close(ctx)
}

// describeModule is the one-line summary of the module.
func (s *sandbox) describeModule() string {
	hooks := strings.Join(s.info.Hooks.List(), ", ")
	if hooks == "" {
		hooks = "none"
	}
	return fmt.Sprintf("%s (%d bytes, sha256 %.12s, abi v%d, hooks %s)", s.path, s.info.Size, s.info.SHA256, s.info.ABIVersion, hooks)
}

// record is what one exchange saw: host calls and log lines, in order.
type record struct {
	mu    sync.Mutex
	hook  string
	calls []hostCall
	logs  []logLine
}

// hostCall is one host function call, described.
type hostCall struct {
	hook, name, args, result string
	rc                       int64
	failed                   bool // refused (a negative code) or panicked
}

// logLine is one line the plugin (or the runtime about it) logged.
type logLine struct {
	hook, level, msg string
}

func (r *record) setHook(h string) {
	r.mu.Lock()
	r.hook = h
	r.mu.Unlock()
}

// trace is the host's tracer: it describes the call while the guest's
// memory still holds its arguments.
func (s *sandbox) trace(e *abi.TraceEvent) {
	r := s.rec.Load()
	if r == nil {
		return
	}
	args, result, failed := describeCall(e)
	var rc int64
	if len(e.Results) > 0 {
		rc = int64(e.Results[0])
		if e.Func.Results[0] == abi.I32 {
			rc = int64(int32(uint32(e.Results[0])))
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, hostCall{hook: r.hook, name: e.Func.Name, args: args, result: result, rc: rc, failed: failed})
	r.mu.Unlock()
}

// recordHandler is the slog handler of the plugin's logger: it keeps each
// line in the exchange's record.
type recordHandler struct {
	rec   *record
	attrs []slog.Attr
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	attr := func(a slog.Attr) bool {
		switch a.Key {
		case "plugin", "route":
			return true
		case "line": // guest output: the line is the message
			b.Reset()
			b.WriteString(a.Value.String())
			return true
		}
		fmt.Fprintf(&b, " %s=%s", a.Key, quoteIfNeeded(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		attr(a)
	}
	level := strings.ToLower(r.Level.String())
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "stream" {
			level = a.Value.String() // stdout, stderr
			return true
		}
		return attr(a)
	})
	h.rec.mu.Lock()
	h.rec.logs = append(h.rec.logs, logLine{hook: h.rec.hook, level: level, msg: b.String()})
	h.rec.mu.Unlock()
	return nil
}

func (h *recordHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordHandler{rec: h.rec, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h *recordHandler) WithGroup(string) slog.Handler { return h }

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \"=\t\n") {
		return strconv.Quote(s)
	}
	return s
}

// ---- One exchange ----

// upstreamFunc answers a request that the chain let through; it fills
// resp, and returns a note saying what answered.
type upstreamFunc func(req *fasthttp.Request, resp *fasthttp.Response) (note string, err error)

// exchangeSpec is one request through the plugin.
type exchangeSpec struct {
	config   []byte
	clientIP string
	req      *fasthttp.Request
	upstream upstreamFunc // nil: the stub echo
}

// message is a request or response as the report shows it.
type message struct {
	method, path, query string
	status              int
	headers             []field
	body                []byte
}

type field struct{ name, value string }

func requestMessage(r *fasthttp.Request) message {
	m := message{method: string(r.Header.Method()), path: string(r.URI().PathOriginal()),
		query: string(r.URI().QueryString()), body: slices.Clone(r.Body())}
	for k, v := range r.Header.All() {
		m.headers = append(m.headers, field{string(k), string(v)})
	}
	return m
}

func responseMessage(r *fasthttp.Response) message {
	m := message{status: r.StatusCode(), body: slices.Clone(r.Body())}
	for k, v := range r.Header.All() {
		m.headers = append(m.headers, field{string(k), string(v)})
	}
	return m
}

// header returns the values of a header (case-insensitive).
func (m *message) header(name string) []string {
	var vs []string
	for _, f := range m.headers {
		if strings.EqualFold(f.name, name) {
			vs = append(vs, f.value)
		}
	}
	return vs
}

// target is the path with its query.
func (m *message) target() string {
	if m.query == "" {
		return m.path
	}
	return m.path + "?" + m.query
}

// exchange is what happened to one request.
type exchange struct {
	name    string
	config  []byte
	initErr error
	initDur time.Duration

	reqBefore, reqAfter message
	reqRan              bool
	reqRC               int32
	reqErr              error
	reqDur              time.Duration
	local               bool

	upstreamNote string
	upstreamErr  error
	upstreamReq  *message // what the upstream received; nil when none did

	respBefore, respAfter message
	respRan               bool
	respSkip              string // why on_response did not run
	respErr               error
	respDur               time.Duration

	final    message // the response the client gets
	consumer string
	claims   string
	cacheKey string
	metrics  []string
	rec      *record
}

// initProblem says why the binding failed.
func (x *exchange) initProblem() string {
	if reason, ok := wasm.ConfigRejected(x.initErr); ok {
		return "on_init rejected the config: " + reason
	}
	return x.initErr.Error()
}

// exchange binds the plugin with the config (a fresh KV store and metrics
// each time, so exchanges do not see each other) and runs the request
// through it as the gateway's pipeline would for a route with this one
// plugin, fail_closed.
func (s *sandbox) exchange(ctx context.Context, spec exchangeSpec) *exchange {
	rec := &record{hook: abi.HookInit}
	s.rec.Store(rec)
	defer s.rec.Store(nil)
	x := &exchange{name: s.name, config: spec.config, rec: rec}

	reg := prometheus.NewRegistry()
	vecs, err := abi.NewMetricVecs(reg)
	if err != nil {
		x.initErr = err
		return x
	}
	var out *abi.Outbound
	if o := s.opts.outbound; len(o.hosts) > 0 || len(o.upstreams) > 0 {
		out = &abi.Outbound{Hosts: o.hosts, Upstreams: map[string]bool{}}
		for name := range o.upstreams {
			out.Upstreams[name] = true
		}
		out.Upstream = func(ctx context.Context, name string, req *fasthttp.Request, resp *fasthttp.Response) error {
			return sendTo(ctx, o.upstreams[name], req, resp)
		}
	} else {
		out = &abi.Outbound{} // every destination refused, each with StatusNotAllowed
	}
	env := &abi.Env{Plugin: s.name, Route: "offline", Config: spec.config,
		Log:     slog.New(&recordHandler{rec: rec}),
		KV:      abi.NewKV(abi.DefaultKVKeys, abi.DefaultKVBytes),
		Metrics: abi.NewPluginMetrics(s.name, vecs), Out: out}
	start := time.Now()
	b, err := s.mod.Bind(ctx, env, wasm.BindingConfig{Mode: wasm.ModePooled, PoolMin: 1, PoolMax: 1,
		MemoryPages: s.opts.pages, CallTimeout: s.opts.callTimeout, QuarantineAfter: -1, AcquireTimeout: time.Minute})
	x.initDur = time.Since(start)
	if err != nil {
		x.initErr = err
		return x
	}
	// The binding stays open until the next one is made: the module's
	// runtime under the memory cap lives as long as a binding uses it,
	// and making it again costs a compilation.
	if s.prev != nil {
		s.prev.Close(ctx)
	}
	s.prev = b

	req := &fasthttp.Request{}
	spec.req.CopyTo(req)
	resp := &fasthttp.Response{}
	resp.Header.SetNoDefaultContentType(true) // as the gateway's server
	scope := &abi.Scope{Client: []byte(spec.clientIP)}
	x.reqBefore = requestMessage(req)

	// on_request
	hooks := b.Hooks()
	x.reqRC = abi.Continue
	if hooks.Has(wasm.HookRequest) {
		rec.setHook(abi.HookRequest)
		inst, err := b.Acquire(ctx)
		if err == nil {
			start := time.Now()
			x.reqRC, err = inst.OnRequest(req, resp, scope)
			x.reqDur = time.Since(start)
			b.Release(inst, err != nil)
			x.reqRan = true
		}
		x.reqErr = err
	}
	x.reqAfter = requestMessage(req)
	x.consumer, x.claims, x.cacheKey = string(scope.Consumer), string(scope.Claims), string(scope.CacheKey)
	defer func() { x.metrics = gatherMetrics(reg) }()
	if x.reqErr != nil {
		x.final = failedResponse(s.name, x.reqErr)
		x.respSkip = "on_request failed: the gateway answers for the plugin (fail_closed)"
		return x
	}
	x.local = x.reqRC == abi.Stop
	if x.local {
		x.respBefore = responseMessage(resp)
		x.final = x.respBefore
		x.respSkip = "the plugin answered locally: the gateway calls back only the plugins before it in the chain"
		return x
	}

	// The upstream.
	send := spec.upstream
	if send == nil {
		send = stubEcho
	}
	x.upstreamNote, x.upstreamErr = send(req, resp)
	resp.Header.SetNoDefaultContentType(true)
	if x.upstreamErr != nil {
		x.final = message{status: fasthttp.StatusBadGateway, headers: []field{{"Content-Type", "application/json"}},
			body: []byte(`{"error":"upstream_unreachable","message":"the upstream did not answer"}` + "\n")}
		x.respSkip = "the upstream did not answer: the gateway answers 502 without calling on_response"
		return x
	}
	up := requestMessage(req)
	x.upstreamReq = &up
	proxy.StripHopByHopResponse(&resp.Header)
	x.respBefore = responseMessage(resp)

	// on_response
	if !hooks.Has(wasm.HookResponse) {
		x.respSkip = "the module does not export on_response"
		x.respAfter, x.final = x.respBefore, x.respBefore
		return x
	}
	rec.setHook(abi.HookResponse)
	inst, err := b.Acquire(ctx)
	if err == nil {
		start := time.Now()
		err = inst.OnResponse(req, resp, scope)
		x.respDur = time.Since(start)
		b.Release(inst, err != nil)
		x.respRan = true
	}
	x.respAfter = responseMessage(resp)
	x.final = x.respAfter
	if err != nil {
		x.respErr = err
		x.final = failedResponse(s.name, err)
	}
	return x
}

// failedResponse is the gateway's answer for a fail_closed plugin that
// failed (host/server's pluginFailed).
func failedResponse(plugin string, err error) message {
	kind := "other"
	var pe *wasm.PluginError
	if errors.As(err, &pe) {
		kind = pe.Kind.String()
	}
	body := `{"error":"plugin_failed","plugin":` + strconv.Quote(plugin) + `,"kind":` + strconv.Quote(kind) + "}\n"
	return message{status: fasthttp.StatusBadGateway, headers: []field{{"Content-Type", "application/json"}}, body: []byte(body)}
}

// stubEcho answers 200 with a JSON echo of the request it received.
func stubEcho(req *fasthttp.Request, resp *fasthttp.Response) (string, error) {
	m := requestMessage(req)
	headers := map[string]any{}
	for _, f := range m.headers {
		switch v := headers[f.name].(type) {
		case nil:
			headers[f.name] = f.value
		case string:
			headers[f.name] = []string{v, f.value}
		case []string:
			headers[f.name] = append(v, f.value)
		}
	}
	echo := struct {
		Stub    string         `json:"stub"`
		Method  string         `json:"method"`
		Path    string         `json:"path"`
		Query   string         `json:"query,omitempty"`
		Headers map[string]any `json:"headers"`
		Body    string         `json:"body,omitempty"`
	}{"echo", m.method, m.path, m.query, headers, string(m.body)}
	body, _ := json.Marshal(echo)
	resp.Reset()
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentType("application/json")
	resp.SetBody(append(body, '\n'))
	return "no --upstream: a stub answered 200 with a JSON echo of the request it received", nil
}

// realUpstream sends the request to base (http://host:port[/prefix]).
func realUpstream(base string) (upstreamFunc, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("%q: want http://HOST:PORT[/prefix]", base)
	}
	return func(req *fasthttp.Request, resp *fasthttp.Response) (string, error) {
		start := time.Now()
		err := sendTo(context.Background(), strings.TrimSuffix(base, "/"), req, resp)
		target := strings.TrimSuffix(base, "/") + string(req.URI().PathOriginal())
		if q := req.URI().QueryString(); len(q) > 0 {
			target += "?" + string(q)
		}
		if err != nil {
			return string(req.Header.Method()) + " " + target, err
		}
		return fmt.Sprintf("%s %s → %d (%s)", req.Header.Method(), target, resp.StatusCode(), roundDuration(time.Since(start))), nil
	}, nil
}

var upstreamClient = &fasthttp.Client{
	NoDefaultUserAgentHeader:      true,
	DisablePathNormalizing:        true,
	DisableHeaderNamesNormalizing: true,
	MaxResponseBodySize:           64 << 20,
}

// sendTo sends req to base + its path (the request keeps its method,
// headers, body; its URI and Host become base's) and fills resp.
func sendTo(ctx context.Context, base string, req *fasthttp.Request, resp *fasthttp.Response) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	out := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(out)
	req.CopyTo(out)
	ou := out.URI()
	ou.DisablePathNormalizing = true
	ou.SetScheme(u.Scheme)
	ou.SetHost(u.Host)
	ou.SetPathBytes(append([]byte(strings.TrimSuffix(u.EscapedPath(), "/")), req.URI().PathOriginal()...))
	out.Header.SetHost(u.Host)
	out.UseHostHeader = false
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	return upstreamClient.DoTimeout(out, resp, timeout)
}

// gatherMetrics lists the plugin's own metrics and their values.
func gatherMetrics(reg *prometheus.Registry) []string {
	mfs, err := reg.Gather()
	if err != nil {
		return nil
	}
	var out []string
	for _, mf := range mfs {
		kind := strings.TrimPrefix(strings.TrimSuffix(mf.GetName(), "_total"), "wasmgate_plugin_")
		for _, m := range mf.GetMetric() {
			var name string
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" {
					name = l.GetValue()
				}
			}
			var v string
			switch {
			case m.Counter != nil:
				v = strconv.FormatFloat(m.Counter.GetValue(), 'g', -1, 64)
			case m.Gauge != nil:
				v = strconv.FormatFloat(m.Gauge.GetValue(), 'g', -1, 64)
			case m.Histogram != nil:
				v = fmt.Sprintf("count %d, sum %s", m.Histogram.GetSampleCount(), strconv.FormatFloat(m.Histogram.GetSampleSum(), 'g', -1, 64))
			}
			out = append(out, fmt.Sprintf("%-9s %s = %s", kind, name, v))
		}
	}
	return out
}

// ---- Describing host calls ----

// codeNames are the ABI's error codes (sdk/ABI.md section 3).
var codeNames = map[int64]string{
	int64(abi.ErrNotFound): "NOT_FOUND", int64(abi.ErrBadArgument): "BAD_ARGUMENT",
	int64(abi.ErrNotAllowed): "NOT_ALLOWED", int64(abi.ErrTooLarge): "TOO_LARGE", int64(abi.ErrUnavailable): "UNAVAILABLE",
}

// describeCall renders a host call's arguments and result, reading the
// guest buffers they name; failed is true for a negative code or a panic.
func describeCall(e *abi.TraceEvent) (args, result string, failed bool) {
	c, p := e.Call, e.Params
	mem := func(ptr, n uint64) ([]byte, bool) {
		if c.Mem == nil || int32(uint32(n)) < 0 {
			return nil, false
		}
		if n == 0 {
			return nil, true
		}
		return c.Mem.Read(uint32(ptr), uint32(n))
	}
	text := func(ptr, n uint64) string {
		b, ok := mem(ptr, n)
		if !ok {
			return fmt.Sprintf("<bad buffer ptr=%d len=%d>", uint32(ptr), int32(uint32(n)))
		}
		return quoteShort(b, 60)
	}
	blob := func(ptr, n uint64) string {
		b, ok := mem(ptr, n)
		if !ok {
			return fmt.Sprintf("<bad buffer ptr=%d len=%d>", uint32(ptr), int32(uint32(n)))
		}
		if len(b) == 0 || utf8.Valid(b) {
			return quoteShort(b, 40)
		}
		return fmt.Sprintf("%d bytes", len(b))
	}
	buf := func(n uint64) string { return fmt.Sprintf("buf %d", int32(uint32(n))) }
	kind := func(v uint64) string {
		switch int32(uint32(v)) {
		case abi.KindRequest:
			return "request"
		case abi.KindResponse:
			return "response"
		}
		return fmt.Sprintf("kind %d", int32(uint32(v)))
	}
	i32s := func(v uint64) string { return strconv.Itoa(int(int32(uint32(v)))) }
	i64s := func(v uint64) string { return strconv.FormatInt(int64(v), 10) }

	// A getter's output buffer: the result shows what it wrote there.
	var outPtr, outLen uint64
	hasOut := false
	var a []string
	switch e.Func.Name {
	case sdkabi.FuncRequestMethod, sdkabi.FuncRequestPath, sdkabi.FuncRequestQuery, sdkabi.FuncRequestClientIP,
		sdkabi.FuncConfigGet, sdkabi.FuncHTTPBatchResult:
		a = []string{buf(p[1])}
		outPtr, outLen, hasOut = p[0], p[1], e.Func.Name != sdkabi.FuncHTTPBatchResult
	case sdkabi.FuncRandomGet:
		a = []string{buf(p[1])}
	case sdkabi.FuncRequestSetPath, sdkabi.FuncSetError, sdkabi.FuncKVDelete, sdkabi.FuncSetConsumer,
		sdkabi.FuncSetClaims, sdkabi.FuncCacheSetKey, sdkabi.FuncFlagEnabled:
		a = []string{text(p[0], p[1])}
	case sdkabi.FuncHeaderGet, sdkabi.FuncHeaderValues:
		a = []string{kind(p[0]), text(p[1], p[2]), buf(p[4])}
		outPtr, outLen, hasOut = p[3], p[4], true
	case sdkabi.FuncHeaderNames:
		a = []string{kind(p[0]), buf(p[2])}
		outPtr, outLen, hasOut = p[1], p[2], true
	case sdkabi.FuncHeaderSet, sdkabi.FuncHeaderAdd:
		a = []string{kind(p[0]), text(p[1], p[2]), text(p[3], p[4])}
	case sdkabi.FuncHeaderRemove:
		a = []string{kind(p[0]), text(p[1], p[2])}
	case sdkabi.FuncBodyGet:
		a = []string{kind(p[0]), "offset " + i64s(p[1]), buf(p[3])}
	case sdkabi.FuncBodySet:
		a = []string{kind(p[0]), blob(p[1], p[2])}
	case sdkabi.FuncResponseSetStatus:
		a = []string{i32s(p[0])}
	case sdkabi.FuncSendResponse:
		a = []string{i32s(p[0]), blob(p[1], p[2])}
	case sdkabi.FuncLog:
		lvl := i32s(p[0])
		if l := int32(uint32(p[0])); l >= abi.LogDebug && l <= abi.LogError {
			lvl = [...]string{"debug", "info", "warn", "error"}[l]
		}
		a = []string{lvl, text(p[1], p[2])}
	case sdkabi.FuncKVGet:
		a = []string{text(p[0], p[1]), buf(p[3])}
		outPtr, outLen, hasOut = p[2], p[3], true
	case sdkabi.FuncKVSet:
		a = []string{text(p[0], p[1]), blob(p[2], p[3]), "ttl " + i64s(p[4]) + "ms"}
	case sdkabi.FuncKVIncr:
		a = []string{text(p[0], p[1]), "delta " + i64s(p[2]), "ttl " + i64s(p[3]) + "ms"}
	case sdkabi.FuncMetricDefine:
		k := i32s(p[0])
		if v := int32(uint32(p[0])); v >= abi.MetricCounter && v <= abi.MetricHistogram {
			k = [...]string{"counter", "gauge", "histogram"}[v]
		}
		a = []string{k, text(p[1], p[2])}
	case sdkabi.FuncMetricRecord:
		a = []string{"id " + i32s(p[0]), strconv.FormatFloat(math.Float64frombits(p[1]), 'g', -1, 64)}
	case sdkabi.FuncHTTPBatch:
		a = []string{describeBatch(mem, p[0], p[1])}
	case sdkabi.FuncCryptoVerify:
		alg := i32s(p[0])
		switch int32(uint32(p[0])) {
		case abi.AlgRS256:
			alg = "RS256"
		case abi.AlgPS256:
			alg = "PS256"
		case abi.AlgES256:
			alg = "ES256"
		case abi.AlgEdDSA:
			alg = "EdDSA"
		}
		a = []string{alg, fmt.Sprintf("key %d bytes", int32(uint32(p[2]))), fmt.Sprintf("msg %d bytes", int32(uint32(p[4]))),
			fmt.Sprintf("sig %d bytes", int32(uint32(p[6])))}
	case sdkabi.FuncRateLimit:
		a = []string{text(p[0], p[1]), text(p[2], p[3]), "cost " + i64s(p[4])}
	default:
		for _, v := range p {
			a = append(a, strconv.FormatUint(v, 10))
		}
	}
	args = strings.Join(a, ", ")

	if e.Panic != nil {
		return args, fmt.Sprintf("trap: %v", e.Panic), true
	}
	if len(e.Results) == 0 {
		return args, "", false
	}
	var rc int64
	if e.Func.Results[0] == abi.I64 {
		rc = int64(e.Results[0])
	} else {
		rc = int64(int32(uint32(e.Results[0])))
	}
	if name, ok := codeNames[rc]; ok && rc < 0 {
		return args, fmt.Sprintf("%s (%d)", name, rc), true
	}
	result = strconv.FormatInt(rc, 10)
	switch e.Func.Name {
	case sdkabi.FuncTimeNow:
		result = time.Unix(0, rc).UTC().Format(time.RFC3339Nano)
	case sdkabi.FuncFlagEnabled:
		result = map[int64]string{0: "0 (off)", 1: "1 (on)"}[rc]
	case sdkabi.FuncRateLimit:
		result = map[int64]string{0: "0 (denied)", 1: "1 (allowed)"}[rc]
	case sdkabi.FuncCryptoVerify:
		result = map[int64]string{0: "0 (invalid)", 1: "1 (valid)"}[rc]
	case sdkabi.FuncKVIncr:
		if b, ok := mem(p[4], 8); ok && rc == 0 {
			result = "0, value " + strconv.FormatInt(int64(binary.LittleEndian.Uint64(b)), 10)
		}
	case sdkabi.FuncHTTPBatch:
		result = strconv.FormatInt(rc, 10) + describeBatchResults(c.BatchResult())
	}
	if hasOut && rc >= 0 {
		n := min(uint64(rc), uint64(uint32(outLen)))
		if rc > int64(int32(uint32(outLen))) {
			result += fmt.Sprintf(" (over the buffer of %d: the guest should retry)", int32(uint32(outLen)))
		} else if b, ok := mem(outPtr, n); ok {
			if e.Func.Name == sdkabi.FuncHeaderValues || e.Func.Name == sdkabi.FuncHeaderNames {
				result += " " + quoteShort(bytes.ReplaceAll(bytes.TrimSuffix(b, []byte{0}), []byte{0}, []byte(", ")), 60)
			} else {
				result += " " + quoteShort(b, 60)
			}
		}
	}
	return args, result, false
}

// describeBatch summarizes the requests of an http_batch.
func describeBatch(mem func(ptr, n uint64) ([]byte, bool), ptr, n uint64) string {
	b, ok := mem(ptr, n)
	if !ok {
		return fmt.Sprintf("<bad buffer ptr=%d len=%d>", uint32(ptr), int32(uint32(n)))
	}
	reqs, err := abi.DecodeBatch(b)
	if err != nil {
		return fmt.Sprintf("%d bytes: %v", len(b), err)
	}
	parts := make([]string, 0, len(reqs))
	for _, r := range reqs {
		parts = append(parts, fmt.Sprintf("%s %s", r.Method, quoteShort(r.URL, 60)))
	}
	return fmt.Sprintf("%d request(s): %s", len(reqs), strings.Join(parts, "; "))
}

// describeBatchResults summarizes the results of an http_batch, saying
// how to allow a refused destination.
func describeBatchResults(enc []byte) string {
	res, err := abi.DecodeResults(enc)
	if err != nil {
		return ""
	}
	parts := make([]string, 0, len(res))
	for i, r := range res {
		switch r.Status {
		case abi.StatusNotAllowed:
			parts = append(parts, fmt.Sprintf("#%d refused: destination not allowed (allow it with --allow-host HOST:PORT or --allow-upstream NAME=URL)", i))
		case abi.StatusTimeout:
			parts = append(parts, fmt.Sprintf("#%d timed out", i))
		case abi.StatusNetwork:
			parts = append(parts, fmt.Sprintf("#%d network error", i))
		case abi.StatusOther:
			parts = append(parts, fmt.Sprintf("#%d failed", i))
		default:
			parts = append(parts, fmt.Sprintf("#%d %d, %d bytes", i, r.Status, len(r.Body)))
		}
	}
	return ": " + strings.Join(parts, "; ")
}

// quoteShort quotes b, cut after max bytes.
func quoteShort[T ~string | ~[]byte](b T, max int) string {
	if len(b) <= max {
		return strconv.Quote(string(b))
	}
	return strconv.Quote(string(b[:max])) + fmt.Sprintf("…(%d bytes)", len(b))
}

// ---- The report ----

// reportWriter writes lines, keeping the first error.
type reportWriter struct {
	w   io.Writer
	err error
}

func (r *reportWriter) printf(format string, a ...any) {
	if r.err == nil {
		_, r.err = fmt.Fprintf(r.w, format, a...)
	}
}

// report prints what happened.
func (x *exchange) report(w *reportWriter, s *sandbox) {
	w.printf("module     %s\n", s.describeModule())
	cfg := string(x.config)
	if cfg == "" {
		cfg = "none ({})"
	}
	w.printf("config     %s\n", cfg)
	if x.initErr == nil {
		r := &x.reqBefore
		w.printf("request    %s %s (%d header(s), %d body bytes)\n", r.method, r.target(), len(r.headers), len(r.body))
	}
	if x.initErr != nil {
		w.printf("on_init    FAILED: %s\n", x.initProblem())
		x.reportLog(w)
		return
	}
	if s.info.Hooks.Has(wasm.HookInit) {
		w.printf("on_init    accepted the config (instantiate and init: %s)\n", roundDuration(x.initDur))
	} else {
		w.printf("on_init    not exported: the config is not checked (instantiated in %s)\n", roundDuration(x.initDur))
	}

	w.printf("\n")
	switch {
	case !x.reqRan && x.reqErr == nil:
		w.printf("on_request not exported: the request goes on unchanged\n")
	case x.reqErr != nil:
		w.printf("on_request FAILED: %v\n", x.reqErr)
	case x.local:
		w.printf("on_request stop (%s): the plugin answered; the upstream is not called\n", roundDuration(x.reqDur))
	default:
		w.printf("on_request continue (%s)\n", roundDuration(x.reqDur))
	}
	w.printf("  request changes:\n")
	diffRequest(w, &x.reqBefore, &x.reqAfter)

	if x.local {
		w.printf("  local response: %d, %d header(s), %d body bytes\n", x.respBefore.status, len(x.respBefore.headers), len(x.respBefore.body))
	} else if x.reqErr == nil {
		if x.upstreamErr != nil {
			w.printf("\nupstream   %s FAILED: %v\n", x.upstreamNote, x.upstreamErr)
		} else {
			w.printf("\nupstream   %s\n", x.upstreamNote)
		}
	}

	w.printf("\n")
	switch {
	case x.respSkip != "":
		w.printf("on_response not run: %s\n", x.respSkip)
	case x.respErr != nil:
		w.printf("on_response FAILED (%s): %v\n", roundDuration(x.respDur), x.respErr)
	default:
		w.printf("on_response continue (%s)\n", roundDuration(x.respDur))
	}
	if x.respRan {
		w.printf("  response changes:\n")
		diffResponse(w, &x.respBefore, &x.respAfter)
	}

	w.printf("\nresponse (as the client gets it)\n")
	w.printf("  HTTP/1.1 %d %s\n", x.final.status, fasthttp.StatusMessage(x.final.status))
	for _, f := range x.final.headers {
		w.printf("  %s: %s\n", f.name, f.value)
	}
	if len(x.final.body) > 0 {
		w.printf("\n")
		writeBody(w, "  ", x.final.body)
	}

	if x.consumer != "" || x.claims != "" || x.cacheKey != "" {
		w.printf("\ngateway state set by the plugin\n")
		if x.consumer != "" {
			w.printf("  consumer   %s\n", x.consumer)
		}
		if x.claims != "" {
			w.printf("  claims     %s\n", x.claims)
		}
		if x.cacheKey != "" {
			w.printf("  cache key  %s\n", x.cacheKey)
		}
	}
	if len(x.metrics) > 0 {
		w.printf("\nplugin metrics\n")
		for _, m := range x.metrics {
			w.printf("  %s\n", m)
		}
	}
	x.reportLog(w)
}

// reportLog prints the log lines and the host calls.
func (x *exchange) reportLog(w *reportWriter) {
	x.rec.mu.Lock()
	defer x.rec.mu.Unlock()
	w.printf("\nplugin log (%d line(s))\n", len(x.rec.logs))
	for _, l := range x.rec.logs {
		w.printf("  %-11s %-6s %s\n", l.hook, l.level, l.msg)
	}
	w.printf("\nhost calls (%d)\n", len(x.rec.calls))
	for _, c := range x.rec.calls {
		mark := " "
		if c.failed && c.rc != int64(abi.ErrNotFound) {
			mark = "!"
		}
		line := fmt.Sprintf("%s(%s)", c.name, c.args)
		if c.result != "" {
			line += " → " + c.result
		}
		w.printf("%s %-11s %s\n", mark, c.hook, line)
	}
}

// writeBody prints a body: text as it is (cut at 4 KiB), binary as a size.
func writeBody(w *reportWriter, indent string, b []byte) {
	const maxShown = 4096
	if !utf8.Valid(b) {
		w.printf("%s<%d bytes of binary>\n", indent, len(b))
		return
	}
	s := string(b)
	cut := ""
	if len(s) > maxShown {
		cut = fmt.Sprintf("%s…(%d bytes in all)\n", indent, len(s))
		s = s[:maxShown]
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		w.printf("%s%s\n", indent, l)
	}
	w.printf("%s", cut)
}

// diffRequest prints what changed between two requests.
func diffRequest(w *reportWriter, a, b *message) {
	n := 0
	if a.path != b.path {
		w.printf("    path     %s → %s\n", a.path, b.path)
		n++
	}
	if a.query != b.query {
		w.printf("    query    %q → %q\n", a.query, b.query)
		n++
	}
	n += diffHeaders(w, a.headers, b.headers)
	n += diffBody(w, a.body, b.body)
	if n == 0 {
		w.printf("    none\n")
	}
}

// diffResponse prints what changed between two responses.
func diffResponse(w *reportWriter, a, b *message) {
	n := 0
	if a.status != b.status {
		w.printf("    status   %d → %d\n", a.status, b.status)
		n++
	}
	n += diffHeaders(w, a.headers, b.headers)
	n += diffBody(w, a.body, b.body)
	if n == 0 {
		w.printf("    none\n")
	}
}

// diffHeaders prints headers added (+), removed (-) and changed (~), by
// name (case-insensitive), and returns how many lines it printed.
func diffHeaders(w *reportWriter, a, b []field) int {
	values := func(fs []field) (map[string][]string, []string) {
		m := map[string][]string{}
		var order []string
		for _, f := range fs {
			k := strings.ToLower(f.name)
			if _, ok := m[k]; !ok {
				order = append(order, k)
			}
			m[k] = append(m[k], f.value)
		}
		return m, order
	}
	display := map[string]string{}
	for _, f := range slices.Concat(a, b) {
		display[strings.ToLower(f.name)] = f.name
	}
	am, aOrder := values(a)
	bm, bOrder := values(b)
	n := 0
	for _, k := range aOrder {
		bv, ok := bm[k]
		switch {
		case !ok:
			for _, v := range am[k] {
				w.printf("    header   - %s: %s\n", display[k], v)
				n++
			}
		case !slices.Equal(am[k], bv):
			w.printf("    header   ~ %s: %s → %s\n", display[k], strings.Join(am[k], ", "), strings.Join(bv, ", "))
			n++
		}
	}
	for _, k := range bOrder {
		if _, ok := am[k]; !ok {
			for _, v := range bm[k] {
				w.printf("    header   + %s: %s\n", display[k], v)
				n++
			}
		}
	}
	return n
}

// diffBody prints a changed body as a line diff (JSON indented first).
func diffBody(w *reportWriter, a, b []byte) int {
	if bytes.Equal(a, b) {
		return 0
	}
	w.printf("    body     %d → %d bytes\n", len(a), len(b))
	for _, l := range lineDiff(displayLines(a), displayLines(b)) {
		w.printf("      %s\n", l)
	}
	return 1
}

// displayLines splits a body into lines for a diff: indented when it is
// JSON, a size when it is binary.
func displayLines(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	if !utf8.Valid(b) {
		return []string{fmt.Sprintf("<%d bytes of binary>", len(b))}
	}
	if json.Valid(b) {
		var out bytes.Buffer
		if json.Indent(&out, b, "", "  ") == nil {
			b = out.Bytes()
		}
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// lineDiff is a minimal line diff of a and b ("- " removed, "+ " added,
// "  " kept), from their longest common subsequence; over 2000 lines it
// shows both whole.
func lineDiff(a, b []string) []string {
	if len(a)*len(b) > 4_000_000 {
		var out []string
		for _, l := range a {
			out = append(out, "- "+l)
		}
		for _, l := range b {
			out = append(out, "+ "+l)
		}
		return out
	}
	// lcs[i][j]: the LCS length of a[i:] and b[j:].
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			out = append(out, "  "+a[i])
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, "- "+a[i])
			i++
		default:
			out = append(out, "+ "+b[j])
			j++
		}
	}
	for ; i < len(a); i++ {
		out = append(out, "- "+a[i])
	}
	for ; j < len(b); j++ {
		out = append(out, "+ "+b[j])
	}
	return out
}
