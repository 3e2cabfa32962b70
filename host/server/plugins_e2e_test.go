package server

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/wasm"
)

// echoUpstream is a real fasthttp server on loopback for the plugin tests.
// By default it echoes the whole request (every header value and the body)
// as JSON, with a few response headers the tests edit through plugins.
// A path containing /hold is held until the test ends; one containing
// /status/NNN is answered NNN; /part/... is answered a small JSON object
// naming the upstream; a path ending in /doc is answered docBody.
type echoUpstream struct {
	id      string
	addr    string
	hits    atomic.Int64
	release chan struct{}
}

// quietLogger drops fasthttp's server log (requests the tests send broken
// on purpose).
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// echoed is what an echoUpstream saw.
type echoed struct {
	ID      string              `json:"id"`
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

func startEchoUpstream(t *testing.T, id string) *echoUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &echoUpstream{id: id, addr: ln.Addr().String(), release: make(chan struct{})}
	srv := &fasthttp.Server{Handler: u.handle, Logger: quietLogger{}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	t.Cleanup(func() { close(u.release) }) // runs first: held requests end before Shutdown waits for them
	return u
}

func (u *echoUpstream) handle(ctx *fasthttp.RequestCtx) {
	u.hits.Add(1)
	path := string(ctx.Path())
	switch {
	case strings.Contains(path, "/hold"):
		select {
		case <-u.release:
		case <-time.After(10 * time.Second):
		}
	case strings.Contains(path, "/status/"):
		var status int
		fmt.Sscanf(path[strings.Index(path, "/status/"):], "/status/%d", &status)
		ctx.SetStatusCode(status)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(fmt.Sprintf(`{"status":%d}`, status))
		return
	case strings.HasPrefix(path, "/part"):
		ctx.SetContentType("application/json")
		b, _ := json.Marshal(map[string]string{"from": u.id, "uri": string(ctx.RequestURI()), "x_part": string(ctx.Request.Header.Peek("X-Part"))})
		ctx.SetBody(b)
		return
	case strings.HasSuffix(path, "/doc"):
		ctx.SetContentType("application/json")
		ctx.SetBodyString(docBody)
		return
	}
	e := echoed{ID: u.id, Method: string(ctx.Method()), URI: string(ctx.RequestURI()), Host: string(ctx.Host()),
		Headers: map[string][]string{}, Body: string(ctx.PostBody())}
	for k, v := range ctx.Request.Header.All() {
		e.Headers[string(k)] = append(e.Headers[string(k)], string(v))
	}
	b, _ := json.Marshal(e)
	ctx.Response.Header.Set("X-Upstream", u.id)
	ctx.Response.Header.Add("X-Resp-Multi", "a")
	ctx.Response.Header.Set("X-Upstream-Remove", "gone")
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// docBody is the JSON document /doc answers, for the reshaping plugins.
const docBody = `{"user":{"id":7,"fullName":"Ada Lovelace","email":"ada@example.test"},` +
	`"items":[{"id":1,"text":"first","internal_id":"x1","likes":3,"author":"ada"},` +
	`{"id":2,"text":"second","internal_id":"x2","likes":5,"author":"bob"}],"debug":true}`

// hresp is a response with every header value kept.
type hresp struct {
	status  int
	headers map[string][]string // canonical names
	body    []byte
}

func (r hresp) get(name string) string {
	if v := r.headers[textproto.CanonicalMIMEHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// json decodes the body into v (a pointer), zeroed first: decoding into a
// used map would merge, not replace.
func (r hresp) json(t *testing.T, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("status %d: body %q is not the expected JSON: %v", r.status, r.body, err)
	}
}

// rawClient sends paths as written (percent-encoding intact).
var rawClient = &fasthttp.Client{ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second, DisablePathNormalizing: true}

// hdo sends one request with repeatable headers (name, value pairs).
func hdo(t *testing.T, method, url string, headers []string, body []byte) hresp {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Header.SetHost(headers[i+1])
			req.UseHostHeader = true
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	if err := rawClient.Do(req, resp); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	r := hresp{status: resp.StatusCode(), headers: map[string][]string{}, body: append([]byte(nil), resp.Body()...)}
	for k, v := range resp.Header.All() {
		name := textproto.CanonicalMIMEHeaderKey(string(k))
		r.headers[name] = append(r.headers[name], string(v))
	}
	return r
}

// The compilation cache the plugin tests share. Compiling a Go plugin
// (3-4 MB of wasm) takes about a second, and twenty times that in a test
// binary built with -race, so every gateway of these tests uses one cache
// directory, kept across runs like GOCACHE. wazero keys compiled code by
// the module's hash, the CPU and its own version, but a test binary reports
// its version as "dev": the directory is named after the wazero version in
// go.mod and the Go version, so that an upgrade never loads stale code.
// WASMGATE_TEST_CACHE overrides the parent directory.
var (
	e2eCacheOnce sync.Once
	e2eCache     string
	warmMu       sync.Mutex
	warmed       = map[string]bool{}
)

func e2eCacheDir(t *testing.T) string {
	t.Helper()
	e2eCacheOnce.Do(func() {
		base := os.Getenv("WASMGATE_TEST_CACHE")
		if base == "" {
			base = filepath.Join(os.TempDir(), "wasmgate-test-compile-cache")
		}
		wazeroVersion := "unknown"
		if mod, err := os.ReadFile("../../go.mod"); err == nil {
			for _, l := range strings.Split(string(mod), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
					wazeroVersion = f[1]
				}
			}
		}
		e2eCache = filepath.Join(base, "wazero-"+wazeroVersion+"-"+runtime.Version())
		if err := os.MkdirAll(e2eCache, 0o700); err != nil {
			e2eCache = t.TempDir()
		}
	})
	return e2eCache
}

// compileHelperEnv names the modules TestPluginCompileHelper compiles.
const compileHelperEnv = "WASMGATE_COMPILE_HELPER"

// warmPlugins makes sure the named example plugins (and hostcheck) are
// compiled in the shared cache. A module compiled before is marked in the
// cache directory by its hash, which costs a stat. The others are compiled
// in parallel by this package's tests built again without -race (go test
// -c, a second or two with the build cache) running
// TestPluginCompileHelper: an order of magnitude faster than a -race
// binary. (A test binary, because wazero's cache is also keyed by wazero's
// version, which test binaries report as "dev".) If that fails, they are
// compiled here.
func warmPlugins(t *testing.T, names ...string) {
	t.Helper()
	dir := e2eCacheDir(t)
	warmMu.Lock()
	defer warmMu.Unlock()
	type module struct{ name, path, marker string }
	var todo []module
	for _, n := range append([]string{"hostcheck"}, names...) {
		if warmed[n] {
			continue
		}
		warmed[n] = true
		p := pluginPath(t, n)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		m := module{n, p, filepath.Join(dir, "warm-"+hex.EncodeToString(sum[:]))}
		if _, err := os.Stat(m.marker); err != nil {
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return
	}
	spec := []string{dir}
	for _, m := range todo {
		spec = append(spec, m.name+"="+m.path)
	}
	exe := filepath.Join(t.TempDir(), "server.test")
	build := exec.Command("go", "test", "-c", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOFLAGS=") // not -race, whatever the caller's flags
	out, err := build.CombinedOutput()
	if err == nil {
		run := exec.Command(exe, "-test.run", "^TestPluginCompileHelper$", "-test.count", "1")
		run.Env = append(os.Environ(), compileHelperEnv+"="+strings.Join(spec, "\n"))
		out, err = run.CombinedOutput()
	}
	if err != nil {
		t.Logf("compiling plugins without -race failed (%v: %s); compiling them here", err, out)
		for _, m := range todo {
			if err := compileInto(dir, m.name, m.path); err != nil {
				t.Fatalf("compiling %s: %v", m.name, err)
			}
		}
	}
	for _, m := range todo {
		_ = os.WriteFile(m.marker, nil, 0o600)
	}
}

// TestPluginCompileHelper is not a test of its own: warmPlugins runs it in
// a test binary built without -race, to compile modules into the cache.
func TestPluginCompileHelper(t *testing.T) {
	spec := os.Getenv(compileHelperEnv)
	if spec == "" {
		t.Skip("a helper process of warmPlugins")
	}
	lines := strings.Split(spec, "\n")
	dir := lines[0]
	errs := make([]error, len(lines))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, l := range lines[1:] {
		name, path, _ := strings.Cut(l, "=")
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = compileInto(dir, name, path)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// compileInto compiles a module into the cache directory.
func compileInto(dir, name, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rt, err := wasm.NewRuntime(wasm.Options{CacheDir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	m, err := rt.Load(context.Background(), name, b)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return m.Release(context.Background())
}

// logLines parses the gateway's JSON log.
func logLines(g *gateway) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(g.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// findLog returns the first log line for which match is true, nil if none.
func findLog(g *gateway, match func(map[string]any) bool) map[string]any {
	for _, m := range logLines(g) {
		if match(m) {
			return m
		}
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }

// eqJSON compares a decoded JSON value (or JSON text) with want.
func eqJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %s: %v", what, want, err)
	}
	if s, ok := got.(string); ok {
		if err := json.Unmarshal([]byte(s), &got); err != nil {
			t.Fatalf("%s: %q is not JSON: %v", what, s, err)
		}
	}
	if !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, want)
	}
}

// expectCodes checks numeric fields of a decoded report.
func expectCodes(t *testing.T, what string, r map[string]any, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		got, ok := r[k].(float64)
		if !ok || got != v {
			t.Errorf("%s: %s = %v, want %v", what, k, r[k], v)
		}
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hostcheckConfig is the gateway of TestPluginHostFunctions: one hostcheck
// module under many plugin names and routes. Arguments: cache dir, module,
// upstream a, upstream b, a dead address.
const hostcheckConfig = `
plugin_runtime: {cache_dir: %[1]q}
plugins:
  - {name: hostcheck, module: %[2]q, limits: {call_timeout: 5s}}
  - {name: hc-phase, module: %[2]q, limits: {call_timeout: 5s}, config: {check: phase}}
  - {name: hc-kv, module: %[2]q, limits: {call_timeout: 5s}, mode: fresh, config: {check: kv}}
  - {name: hc-kv-other, module: %[2]q, limits: {call_timeout: 5s}, config: {check: kv}}
  - {name: hc-metrics, module: %[2]q, limits: {call_timeout: 5s}, config: {check: metrics}}
  - {name: hc-metrics-fill, module: %[2]q, limits: {call_timeout: 5s}, config: {check: metrics}}
  - {name: hc-log, module: %[2]q, limits: {call_timeout: 5s}, config: {check: log}}
  - {name: hc-flood, module: %[2]q, limits: {call_timeout: 5s}, config: {check: log}}
  - {name: hc-outbound, module: %[2]q, limits: {call_timeout: 5s}}
  - {name: hc-a, module: %[2]q, limits: {call_timeout: 5s}, config: {check: chain, tag: A}}
  - {name: hc-b, module: %[2]q, limits: {call_timeout: 5s}, config: {check: chain, tag: B}}
  - {name: hc-c, module: %[2]q, limits: {call_timeout: 5s}, config: {check: chain, tag: C}}
  - {name: hc-pooled, module: %[2]q, limits: {call_timeout: 5s}, pool: {max_instances: 1}, config: {check: instance}}
  - {name: hc-fresh, module: %[2]q, limits: {call_timeout: 5s}, mode: fresh, config: {check: instance}}
  - {name: hc-buffers, module: %[2]q, limits: {call_timeout: 5s}, config: {check: buffers}}
upstreams:
  - {name: a, targets: [{address: %[3]s}]}
  - {name: b, targets: [{address: %[4]s}]}
routes:
  - name: inspect
    match: {path_prefix: /inspect}
    upstream: a
    max_body_bytes: 64KiB
    plugins: [{name: hostcheck, config: {check: inspect, big_body: 70000, echo: {nested: [1, two]}}}]
  - {name: phase, match: {path_prefix: /phase/upstream}, upstream: a, plugins: [{name: hc-phase}]}
  - {name: phase-local, match: {path_prefix: /phase/local}, upstream: a, plugins: [{name: hc-phase, config: {check: phase, local: true}}]}
  - {name: kv, match: {path_prefix: /kv}, plugins: [{name: hc-kv}]}
  - {name: kv2, match: {path_prefix: /kv2}, plugins: [{name: hc-kv}]}
  - {name: kv-other, match: {path_prefix: /kv-other}, plugins: [{name: hc-kv-other}]}
  - {name: kv-c, match: {path_prefix: /kv-c}, plugins: [{name: hc-c, config: {check: kv}}]}
  - {name: metrics, match: {path_prefix: /metrics-check}, plugins: [{name: hc-metrics}]}
  - {name: metrics-fill, match: {path_prefix: /metrics-fill}, plugins: [{name: hc-metrics-fill}]}
  - {name: log, match: {path_prefix: /log}, plugins: [{name: hc-log}]}
  - {name: log-open, match: {path_prefix: /open-log}, upstream: a, plugins: [{name: hc-log, failure_policy: fail_open}]}
  - {name: flood, match: {path_prefix: /flood}, plugins: [{name: hc-flood}]}
  - name: outbound
    match: {path_prefix: /outbound}
    upstream: a
    plugins:
      - name: hc-outbound
        outbound: {upstreams: [a], hosts: [%[4]q, %[5]q]}
        config:
          check: outbound
          batch:
            - {url: "http://%[4]s/echo/one?x=1", method: POST, headers: {X-Part: p1}, body: hello}
            - {url: "upstream://a/echo/two"}
            - {url: "upstream://b/echo/three"}
            - {url: "http://%[3]s/echo/four"}
            - {url: "ftp://example.test/five"}
            - {url: "http://%[4]s/hold", timeout_ms: 100}
            - {url: "http://%[5]s/dead"}
            - {url: "upstream://a/status/404"}
            - {url: "upstream://a/echo/host", headers: {Host: custom.test}}
  - {name: chain, match: {path_prefix: /chain/all}, upstream: a, plugins: [{name: hc-a}, {name: hc-b}, {name: hc-c}]}
  - name: chain-stop
    match: {path_prefix: /chain/stop}
    upstream: a
    plugins: [{name: hc-a}, {name: hc-b, config: {check: chain, tag: B, stop: true}}, {name: hc-c}]
  - {name: pooled, match: {path_prefix: /instance/pooled}, upstream: a, plugins: [{name: hc-pooled}]}
  - {name: fresh, match: {path_prefix: /instance/fresh}, upstream: a, plugins: [{name: hc-fresh}]}
  - {name: buffers, match: {path_prefix: /buffers}, plugins: [{name: hc-buffers, config: {check: buffers, echo: "e"}}]}
`

// TestPluginHostFunctions drives every host function of sdk/ABI.md section
// 4 through the hostcheck plugin in a real gateway, and asserts the exact
// values and codes the host gave it.
func TestPluginHostFunctions(t *testing.T) {
	warmPlugins(t, "hostcheck")
	a, b := startEchoUpstream(t, "a"), startEchoUpstream(t, "b")
	dead := deadAddr(t)
	g := startGateway(t, 1000, fmt.Sprintf(hostcheckConfig, e2eCacheDir(t), pluginPath(t, "hostcheck"), a.addr, b.addr, dead))

	t.Run("inspect", func(t *testing.T) {
		before := time.Now().UnixNano()
		r := hdo(t, "POST", g.url("/inspect/a%20b/./c%2a?q=v+w&x=1"), []string{
			"X-Probe", "p", "X-Multi", "m1", "X-Multi", "m2", "X-Set", "s1", "X-Set", "s2",
			"X-Remove", "r", "X-Set-Path", "/new/p%20ath?n=1",
		}, []byte("0123456789"))
		after := time.Now().UnixNano()
		if r.status != 203 {
			t.Fatalf("status %d (want the 203 on_response set): %s", r.status, r.body)
		}
		var rep struct {
			Request  map[string]any `json:"request"`
			Response map[string]any `json:"response"`
		}
		r.json(t, &rep)
		q, p := rep.Request, rep.Response

		// Reads of the request in on_request.
		for k, want := range map[string]any{
			"method": "POST", "path": "/inspect/a%20b/c%2A", "query": "q=v+w&x=1", "query_param_q": "v w",
			"client_ip": "127.0.0.1", "header_probe": "p", "header_probe_found": true, "header_absent_found": false,
			"body": "0123456789", "path_after": "/new/p%20ath", "query_after": "n=1", "removed_found": false,
			"config":     `{"check":"inspect","big_body":70000,"echo":{"nested":[1,"two"]}}`,
			"config_get": `{"check":"inspect","big_body":70000,"echo":{"nested":[1,"two"]}}`,
		} {
			if q[k] != want {
				t.Errorf("on_request %s = %#v, want %#v", k, q[k], want)
			}
		}
		eqJSON(t, "header_values X-Multi", q["header_values_multi"], `["m1","m2"]`)
		eqJSON(t, "header_values after add", q["header_values_after_add"], `["m1","m2","added"]`)
		eqJSON(t, "header_names", q["header_names"], `["Host","Content-Length","Content-Type","User-Agent","X-Probe","X-Multi","X-Set","X-Remove","X-Set-Path","X-Request-Id"]`)
		eqJSON(t, "body_get [2,6)", q["body_range"], `{"n":4,"size":10,"bytes":"2345","code":0}`)
		eqJSON(t, "body_get past the end", q["body_range_past_end"], `{"n":0,"size":10,"code":0}`)
		eqJSON(t, "body_get size only", q["body_size_only"], `{"size":10,"code":0}`)
		expectCodes(t, "on_request", q, map[string]float64{
			"body_code": 0, "header_absent_code": -1, "header_values_absent_code": -1, "body_negative_offset_code": -2,
			"bad_kind_header_get_code": -2, "bad_kind_header_set_code": -2, "bad_kind_body_get_code": -2,
			"bad_name_get_code": -2, "bad_name_set_code": -2, "bad_value_crlf_code": -2, "bad_value_nul_code": -2,
			"content_length_set_code": -3, "transfer_encoding_add_code": -3, "content_length_remove_code": -3,
			"set_code": 0, "add_code": 0, "remove_code": 0, "remove_absent_code": 0, "host_set_code": 0,
			"set_path_code": 0, "set_path_no_slash_code": -2, "set_path_bad_escape_code": -2, "set_path_dot_params_code": -2, "set_path_query_space_code": -2,
			"set_path_empty_code": -2, "random_code": 0, "random_raw_ret": 5, "random_zero_len_ret": 0,
			"body_set_too_large_code": -4, "send_response_too_large_code": -4, "send_response_bad_status_code": -2,
			"response_status_before_send": -3,
		})
		for _, k := range []string{"time_now", "time_now_raw"} {
			if ts, _ := q[k].(float64); ts < float64(before) || ts > float64(after) {
				t.Errorf("%s = %.0f, not within the request [%d, %d]", k, ts, before, after)
			}
		}
		rnd, _ := q["random"].(string)
		if len(rnd) != 32 || rnd == strings.Repeat("0", 32) {
			t.Errorf("random_get gave %q", rnd)
		}

		// The upstream got the edited request, with the report as its body.
		var e echoed
		if err := json.Unmarshal([]byte(str(p["upstream_body"])), &e); err != nil {
			t.Fatalf("upstream body %q: %v", p["upstream_body"], err)
		}
		if e.URI != "/new/p%20ath?n=1" || e.Host != "hostcheck.test" || e.Method != "POST" {
			t.Errorf("upstream saw %s %s Host %s", e.Method, e.URI, e.Host)
		}
		for name, want := range map[string]string{"X-Set": `["set-value"]`, "X-Multi": `["m1","m2","added"]`, "X-Probe": `["p"]`} {
			wb, _ := json.Marshal(e.Headers[name])
			if string(wb) != want {
				t.Errorf("upstream header %s = %s, want %s", name, wb, want)
			}
		}
		if _, ok := e.Headers["X-Remove"]; ok {
			t.Error("X-Remove reached the upstream")
		}
		var fromBody map[string]any
		if err := json.Unmarshal([]byte(e.Body), &fromBody); err != nil || fromBody["method"] != "POST" {
			t.Errorf("upstream body is not the on_request report (body_set): %q", e.Body)
		}
		if cl := e.Headers["Content-Length"]; len(cl) != 1 || cl[0] != fmt.Sprint(len(e.Body)) {
			t.Errorf("Content-Length %v for a body of %d bytes", cl, len(e.Body))
		}

		// on_response: the response, and the request as sent upstream.
		for k, want := range map[string]any{
			"header_upstream": "a", "header_upstream_found": true,
			"req_method": "POST", "req_path": "/new/p%20ath", "req_query": "n=1", "req_client_ip": "127.0.0.1",
			"req_header_set": "set-value", "req_host": "hostcheck.test",
		} {
			if p[k] != want {
				t.Errorf("on_response %s = %#v, want %#v", k, p[k], want)
			}
		}
		eqJSON(t, "response header_values", p["header_values_multi"], `["a"]`)
		eqJSON(t, "response header_values after add", p["resp_header_values_after_add"], `["a","b"]`)
		eqJSON(t, "response header_names", p["header_names"], `["Content-Length","Content-Type","Server","Date","X-Upstream","X-Resp-Multi","X-Upstream-Remove"]`)
		size := float64(len(str(p["upstream_body"])))
		eqJSON(t, "response body_get [1,6)", p["body_range"], fmt.Sprintf(`{"n":5,"size":%.0f,"bytes":"\"id\":","code":0}`, size))
		expectCodes(t, "on_response", p, map[string]float64{
			"status": 200, "status_raw": 200, "status_after": 203, "upstream_body_code": 0,
			"req_set_header_code": -3, "req_add_header_code": -3, "req_remove_header_code": -3,
			"req_set_body_code": -3, "req_set_path_code": -3, "send_response_code": -3,
			"set_status_600_code": -2, "set_status_99_code": -2, "set_status_code": 0,
			"resp_set_code": 0, "resp_add_code": 0, "resp_remove_code": 0, "resp_content_length_code": -3,
			"resp_bad_value_code": -2, "resp_body_set_too_large_code": -4,
		})
		// The client got the edited response.
		if r.get("X-Resp-Set") != "1" || strings.Join(r.headers["X-Resp-Multi"], ",") != "a,b" || r.get("X-Upstream-Remove") != "" {
			t.Errorf("response headers not edited: %v", r.headers)
		}
		if r.get("Content-Length") != fmt.Sprint(len(r.body)) || r.get("Content-Type") != "application/json" {
			t.Errorf("Content-Length %q Content-Type %q for a body of %d bytes", r.get("Content-Length"), r.get("Content-Type"), len(r.body))
		}

		// Randomness differs between calls.
		var rep2 struct{ Request map[string]any }
		hdo(t, "GET", g.url("/inspect/again"), nil, nil).json(t, &rep2)
		if rep2.Request["random"] == rnd || rep2.Request["body"] != "" {
			t.Errorf("second request: random %v (first %v), body %q", rep2.Request["random"], rnd, rep2.Request["body"])
		}
	})

	t.Run("buffer convention", func(t *testing.T) {
		long := strings.Repeat("x", 3000) // over the SDK's 2 KiB first buffer
		r := hdo(t, "POST", g.url("/buffers/p?q=1"), []string{"X-Long", long, "X-Multi", "m1", "X-Multi", "m2"}, []byte("0123456789"))
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var rep map[string]any
		r.json(t, &rep)
		probe := func(name, full string) {
			t.Helper()
			small := full
			if len(small) > 3 {
				small = small[:3]
			}
			want, _ := json.Marshal(map[string]any{"size0": len(full), "small_ret": len(full),
				"small_bytes": small + strings.Repeat("#", 8-len(small)), "full_ret": len(full), "full": full})
			eqJSON(t, name, rep[name], string(want))
		}
		probe("request_method", "POST")
		probe("request_path", "/buffers/p")
		probe("request_query", "q=1")
		probe("request_client_ip", "127.0.0.1")
		probe("header_get", long)
		probe("header_values", "m1\x00m2\x00")
		probe("body_get", "0123456789")
		probe("config_get", `{"check":"buffers","echo":"e"}`)
		probe("kv_get", "kv-value-0123456789")
		// With an offset: the size is the whole body's, the bytes from the offset.
		eqJSON(t, "body_get offset 4", rep["body_get_offset"],
			`{"size0":10,"small_ret":10,"small_bytes":"456#####","full_ret":10,"full":"456789\u0000\u0000\u0000\u0000"}`)
		names, _ := rep["header_names"].(map[string]any)
		if full := str(names["full"]); !strings.Contains(full, "\x00X-Long\x00") || !strings.HasSuffix(full, "\x00") ||
			strings.Count(full, "X-Multi\x00") != 2 ||
			names["size0"] != float64(len(full)) || names["small_ret"] != names["size0"] {
			t.Errorf("header_names probe (a name once per value) %q", names)
		}
		if rep["zero_len_bogus_ptr"] != 3000.0 || rep["sdk_long_header_len"] != 3000.0 {
			t.Errorf("zero-length read at a bogus pointer %v, SDK long header %v", rep["zero_len_bogus_ptr"], rep["sdk_long_header_len"])
		}
	})

	t.Run("phase rules", func(t *testing.T) {
		hits := a.hits.Load()
		r := hdo(t, "GET", g.url("/phase/upstream"), nil, nil)
		if r.status != 201 || r.get("X-Phase-Resp") != "1" {
			t.Fatalf("status %d X-Phase-Resp %q: %s", r.status, r.get("X-Phase-Resp"), r.body)
		}
		if a.hits.Load() != hits+1 {
			t.Error("the upstream was not called")
		}
		var rep map[string]map[string]any
		r.json(t, &rep)
		checkInitialize(t, g, rep["initialize"])
		expectCodes(t, "on_init", rep["init"], map[string]float64{
			"request_method": -3, "request_path": -3, "request_query": -3, "request_client_ip": -3,
			"request_set_path": -3, "header_get": -3, "header_values": -3, "header_names": -3,
			"header_set": -3, "header_add": -3, "header_remove": -3, "body_get": -3, "body_set": -3,
			"response_status": -3, "response_set_status": -3, "send_response": -3,
			"kv_get": -3, "kv_set": -3, "kv_delete": -3, "kv_incr": -3, "metric_record": -3,
			"http_batch": -3, "http_batch_result": -3,
			"config_get": float64(len(`{"check":"phase"}`)), "log": 0, "set_error": 0, "random_get": 8,
		})
		if rep["init"]["metric_define_ok"] != true || rep["init"]["time_now_ok"] != true {
			t.Errorf("on_init: metric_define %v time_now %v, want both to work", rep["init"]["metric_define_ok"], rep["init"]["time_now_ok"])
		}
		expectCodes(t, "on_request before send_response", rep["request"], map[string]float64{
			"response_status": -3, "response_set_status": -3, "header_get_resp": -3, "header_values_resp": -3,
			"header_names_resp": -3, "header_set_resp": -3, "header_add_resp": -3, "header_remove_resp": -3,
			"body_get_resp": -3, "body_set_resp": -3,
			"request_method": 3, "header_set_req": 0, "kv_get": -1, "metric_record": 0,
			"http_batch_result": 0, "http_batch_empty_ret": 4,
		})
		expectCodes(t, "on_response", rep["response"], map[string]float64{
			"request_set_path": -3, "header_set_req": -3, "header_add_req": -3, "header_remove_req": -3,
			"body_set_req": -3, "header_set_req_raw": -3, "send_response": -3,
			"request_method": 3, "header_get_req": 1, "response_status": 200, "response_set_status": 0,
			"header_set_resp": 0, "kv_get": -1, "metric_record": 0, "http_batch_empty": 4,
		})

		// After send_response, the response is readable and writable.
		hits = a.hits.Load()
		r = hdo(t, "GET", g.url("/phase/local"), nil, nil)
		if r.status != 202 || r.get("X-Local") != "yes" {
			t.Fatalf("local answer %d X-Local %q: %s", r.status, r.get("X-Local"), r.body)
		}
		if a.hits.Load() != hits {
			t.Error("a local response still reached the upstream")
		}
		var local map[string]map[string]any
		r.json(t, &local)
		expectCodes(t, "on_request after send_response", local["request_after_send"], map[string]float64{
			"response_status": 418, "header_set_resp": 0, "header_get_resp": 3, "body_get_resp": 7,
			"response_set_status": 0, "status_after": 202, "request_method": 3, "header_set_req": 0,
		})
		if local["request_after_send"]["header_names_resp_ok"] != true {
			t.Error("header_names of the local response failed")
		}
	})

	t.Run("kv", func(t *testing.T) {
		kv := func(route, query string) map[string]any {
			t.Helper()
			r := hdo(t, "GET", g.url("/"+route+"?"+query), nil, nil)
			if r.status != 200 {
				t.Fatalf("%s?%s: %d %s", route, query, r.status, r.body)
			}
			var m map[string]any
			r.json(t, &m)
			return m
		}
		want := func(route, query string, fields map[string]any) {
			t.Helper()
			got := kv(route, query)
			for k, v := range fields {
				if got[k] != v {
					t.Errorf("%s?%s: %s = %#v, want %#v (all: %v)", route, query, k, got[k], v, got)
				}
			}
		}
		// hc-kv runs fresh: every request is a new instance, and the store
		// outlives them all; kv2 is another route (binding) of the same plugin.
		want("kv", "op=set&key=k1&value=v1", map[string]any{"code": 0.0})
		want("kv2", "op=get&key=k1", map[string]any{"code": 0.0, "value": "v1"})
		want("kv-other", "op=get&key=k1", map[string]any{"code": -1.0}) // another plugin, another store
		eqJSON(t, "kv_get buffer convention", kv("kv", "op=get_raw&key=k1")["probe"],
			`{"size0":2,"small_ret":2,"small_bytes":"v1######","full_ret":2,"full":"v1"}`)
		want("kv2", "op=delete&key=k1", map[string]any{"code": 0.0})
		want("kv", "op=delete&key=k1", map[string]any{"code": -1.0})
		want("kv", "op=get&key=k1", map[string]any{"code": -1.0})

		// Errors.
		want("kv", "op=set&key_len=256&value=x", map[string]any{"code": 0.0})
		want("kv", "op=set&key_len=257&value=x", map[string]any{"code": -2.0})
		want("kv", "op=get&key_len=257", map[string]any{"code": -2.0})
		want("kv", "op=set_raw&key=neg&value=x&ttl_ms=-1", map[string]any{"code": -2.0})
		want("kv", "op=set&key=s&value=abc", map[string]any{"code": 0.0})
		want("kv", "op=incr&key=s&delta=1", map[string]any{"code": -2.0})
		want("kv", "op=set&key=big&value=9223372036854775807", map[string]any{"code": 0.0})
		want("kv", "op=incr&key=big&delta=1", map[string]any{"code": -2.0})
		want("kv", "op=get&key=big", map[string]any{"value": "9223372036854775807"})
		want("kv", "op=incr&key=fresh&delta=-5", map[string]any{"code": 0.0, "result": -5.0})

		// kv_incr is atomic across instances and routes.
		var wg sync.WaitGroup
		var bad atomic.Int64
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					route := []string{"kv", "kv2"}[w%2]
					r, err := tryDo("GET", g.url("/"+route+"?op=incr&key=n&delta=2"), nil, nil)
					if err != nil || r.status != 200 {
						bad.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if bad.Load() != 0 {
			t.Fatalf("%d concurrent incr requests failed", bad.Load())
		}
		want("kv", "op=get&key=n", map[string]any{"value": "36"})

		// TTL: a key set with one expires; kv_incr's TTL applies only when it
		// creates the key; a key without one stays.
		want("kv", "op=set&key=long&value=x&ttl_ms=3600000", map[string]any{"code": 0.0})
		want("kv", "op=incr&key=noexp&delta=1", map[string]any{"result": 1.0})
		want("kv", "op=incr&key=noexp&delta=1&ttl_ms=1", map[string]any{"result": 2.0})
		want("kv", "op=incr&key=short-incr&delta=1&ttl_ms=50", map[string]any{"code": 0.0})
		want("kv", "op=set&key=short&value=x&ttl_ms=50", map[string]any{"code": 0.0})
		waitFor(t, "the TTL'd keys to expire", func() bool {
			return kv("kv2", "op=get&key=short")["code"] == -1.0 && kv("kv2", "op=get&key=short-incr")["code"] == -1.0
		})
		want("kv", "op=get&key=noexp", map[string]any{"code": 0.0, "value": "2"})
		want("kv", "op=get&key=long", map[string]any{"code": 0.0, "value": "x"})
	})

	t.Run("metrics", func(t *testing.T) {
		var rep map[string]any
		for range 2 {
			r := hdo(t, "GET", g.url("/metrics-check?counter=2.5&gauge=-4&hist=0.3"), nil, nil)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			r.json(t, &rep)
		}
		ids, _ := rep["ids"].(map[string]any)
		c, gg, h := ids["counter"], ids["gauge"], ids["hist"]
		if c.(float64) < 0 || gg.(float64) < 0 || h.(float64) < 0 || c == gg || gg == h || c == h {
			t.Fatalf("metric ids %v", ids)
		}
		if rep["counter_again"] != c || rep["counter_name_as_gauge"] == c || rep["counter_name_as_gauge"].(float64) < 0 {
			t.Errorf("redefinition: same kind %v (want %v), other kind %v (want a new id)", rep["counter_again"], c, rep["counter_name_as_gauge"])
		}
		if rep["max_name_ok"] != true {
			t.Error("a 63-character name was refused")
		}
		expectCodes(t, "metrics", rep, map[string]float64{
			"bad_name_code": -2, "empty_name_code": -2, "long_name_code": -2, "bad_kind_code": -2,
			"unknown_id_code": -1, "negative_id_code": -1, "nan_code": -2, "counter_negative_code": -2,
			"counter_inf_code": -2, "gauge_negative_code": 0, "counter_code": 0, "gauge_code": 0, "hist_code": 0,
			"sdk_counter_code": 0, "sdk_gauge_code": 0, "sdk_histogram_code": 0,
		})
		m := string(g.admin(t, "GET", "/metrics").body)
		for _, want := range []string{
			`wasmgate_plugin_counter_total{name="hc_counter",plugin="hc-metrics"} 5`,
			`wasmgate_plugin_gauge{name="hc_gauge",plugin="hc-metrics"} -4`,
			`wasmgate_plugin_histogram_count{name="hc_hist",plugin="hc-metrics"} 2`,
			`wasmgate_plugin_histogram_sum{name="hc_hist",plugin="hc-metrics"} 0.6`,
			`wasmgate_plugin_histogram_bucket{name="hc_hist",plugin="hc-metrics",le="0.4096"} 2`,
			`wasmgate_plugin_counter_total{name="hc_sdk_counter",plugin="hc-metrics"} 4`,
			`wasmgate_plugin_gauge{name="hc_sdk_gauge",plugin="hc-metrics"} 7`,
			`wasmgate_plugin_histogram_count{name="hc_sdk_histogram",plugin="hc-metrics"} 2`,
		} {
			if !strings.Contains(m, want+"\n") {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		var fill map[string]any
		hdo(t, "GET", g.url("/metrics-fill?fill=1"), nil, nil).json(t, &fill)
		if fill["last_id"] != 31.0 || fill["fail_code"] != -4.0 {
			t.Errorf("defining past 32 metrics: %v (want last id 31, then -4)", fill)
		}
	})

	t.Run("log", func(t *testing.T) {
		mark := fmt.Sprintf("m%d", time.Now().UnixNano())
		r := hdo(t, "GET", g.url("/log?m="+mark), nil, nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var rep map[string]any
		r.json(t, &rep)
		expectCodes(t, "log", rep, map[string]float64{"debug": 0, "info": 0, "warn": 0, "error": 0,
			"bad_level_4": -2, "bad_level_minus": -2, "long": 0, "empty": 0})
		tagged := func(m map[string]any) bool { return m["plugin"] == "hc-log" && m["route"] == "log" }
		for level, want := range map[string]string{"info": "INFO", "warn": "WARN", "error": "ERROR"} {
			l := findLog(g, func(m map[string]any) bool { return m["msg"] == "hc-log "+level+" "+mark })
			if l == nil || l["level"] != want || !tagged(l) {
				t.Errorf("log level %s: line %v, want level %s tagged plugin=hc-log route=log", level, l, want)
			}
		}
		if l := findLog(g, func(m map[string]any) bool { return m["msg"] == "hc-log debug "+mark }); l != nil {
			t.Errorf("a debug line passed an info-level log: %v", l)
		}
		if l := findLog(g, func(m map[string]any) bool { return m["msg"] == "hc-sdk "+mark }); l == nil || l["level"] != "WARN" || !tagged(l) {
			t.Errorf("SDK log line: %v", l)
		}
		l := findLog(g, func(m map[string]any) bool { return strings.HasPrefix(str(m["msg"]), "hc-long "+mark) })
		if l == nil || len(str(l["msg"])) != 4096 {
			t.Errorf("a 5000-byte message must be cut at 4 KiB: %d bytes", len(str(l["msg"])))
		}
		for stream, level := range map[string]string{"stdout": "INFO", "stderr": "WARN"} {
			waitFor(t, "the guest's "+stream+" line in the log", func() bool {
				l := findLog(g, func(m map[string]any) bool { return m["line"] == "hc-"+stream+" "+mark })
				return l != nil && l["stream"] == stream && l["level"] == level && tagged(l)
			})
		}

		// set_error reaches the log; the route's failure policy answers.
		r = hdo(t, "GET", g.url("/log?fail=boom-"+mark), nil, nil)
		if r.status != 502 || !strings.Contains(string(r.body), `"plugin":"hc-log"`) {
			t.Fatalf("failing hook, fail_closed: %d %s", r.status, r.body)
		}
		if l := findLog(g, func(m map[string]any) bool { return strings.Contains(str(m["error"]), "plugin said: boom-"+mark) }); l == nil || !tagged(l) {
			t.Errorf("set_error message not in a tagged log line: %v", l)
		}
		r = hdo(t, "GET", g.url("/open-log?fail=open-"+mark), nil, nil)
		if r.status != 200 || r.get("X-Upstream") != "a" {
			t.Fatalf("failing hook, fail_open: %d %s", r.status, r.body)
		}
		if m := string(g.admin(t, "GET", "/metrics").body); !strings.Contains(m, `wasmgate_plugin_skipped_total{kind="bad_return",plugin="hc-log",route="log-open"} 1`) {
			t.Error("fail_open skip not counted")
		}
		if r := hdo(t, "GET", g.url("/log?fail_long=1"), nil, nil); r.status != 502 {
			t.Fatalf("fail_long: %d", r.status)
		}
		if l := findLog(g, func(m map[string]any) bool { return strings.Contains(str(m["error"]), "plugin said: eee") }); l == nil ||
			!strings.Contains(str(l["error"]), "plugin said: "+strings.Repeat("e", 1024)+")") {
			t.Errorf("set_error must keep exactly 1 KiB: %v", l)
		}

		// Rate limit: a burst of 50 lines, then lines are dropped.
		if r := hdo(t, "GET", g.url("/flood?flood=200&m="+mark), nil, nil); r.status != 200 {
			t.Fatalf("flood: %d", r.status)
		}
		n := 0
		for _, l := range logLines(g) {
			if strings.HasPrefix(str(l["msg"]), "hc-flood "+mark+" ") {
				n++
			}
		}
		if n < 50 || n >= 200 {
			t.Errorf("%d of 200 flood lines logged, want the burst of 50 (plus a refill) and the rest dropped", n)
		}
	})

	t.Run("outbound", func(t *testing.T) {
		hits := a.hits.Load()
		r := hdo(t, "GET", g.url("/outbound"), nil, nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var rep struct {
			Code    int
			Results []struct {
				Status     int
				Err        string
				DurationMS float64 `json:"duration_ms"`
				Headers    map[string]string
				Body       string
			}
			ResultProbe map[string]any `json:"result_probe"`
			Malformed   int            `json:"malformed_code"`
			AfterBad    int            `json:"result_after_malformed"`
			TooMany     int            `json:"too_many_code"`
			Empty       int            `json:"empty_batch_ret"`
			BadMethod   int            `json:"bad_method_code"`
			BadHeader   int            `json:"bad_header_code"`
		}
		r.json(t, &rep)
		if rep.Code != 0 || len(rep.Results) != 9 {
			t.Fatalf("batch: code %d, %d results: %s", rep.Code, len(rep.Results), r.body)
		}
		res := rep.Results
		var one echoed
		if x := res[0]; x.Status != 200 || json.Unmarshal([]byte(x.Body), &one) != nil || one.ID != "b" || one.Method != "POST" ||
			one.URI != "/echo/one?x=1" || one.Body != "hello" || strings.Join(one.Headers["X-Part"], ",") != "p1" || one.Host != b.addr {
			t.Errorf("http://b: %+v (upstream saw %+v)", x, one)
		}
		if res[0].Headers["X-Upstream"] != "b" || res[0].Headers["Content-Type"] != "application/json" {
			t.Errorf("result headers %v", res[0].Headers)
		}
		for i, why := range map[int]string{2: "an upstream the route does not allow", 3: "a host the route does not allow", 4: "a scheme other than http"} {
			if x := res[i]; x.Status != -3 || !strings.Contains(x.Err, "not allowed") {
				t.Errorf("%s: %+v, want status -3", why, x)
			}
		}
		// Held until the test ends: only its 100ms timeout ends it.
		if x := res[5]; x.Status != -1 || x.Err != "wasmgate: outbound request timed out" {
			t.Errorf("a request over its timeout: %+v, want status -1", x)
		}
		if x := res[6]; x.Status != -2 {
			t.Errorf("a dead destination: %+v, want status -2", x)
		}
		// upstream:// destinations, load-balanced over the named upstream;
		// without a Host header, the upstream's name is sent.
		var two echoed
		upstreamCalls := int64(0)
		if x := res[1]; x.Status != 200 || json.Unmarshal([]byte(x.Body), &two) != nil || two.ID != "a" || two.URI != "/echo/two" || two.Host != "a" {
			t.Errorf("upstream://a: %+v (upstream saw %+v)", x, two)
		} else {
			upstreamCalls++
			if x := res[7]; x.Status != 404 {
				t.Errorf("an HTTP error status through upstream://: %+v", x)
			}
			upstreamCalls++
			// A Host the plugin set is sent.
			var custom echoed
			switch x := res[8]; {
			case x.Status != 200 || json.Unmarshal([]byte(x.Body), &custom) != nil || custom.Host != "custom.test":
				t.Errorf("upstream:// with Host custom.test: %+v (upstream saw %+v)", x, custom)
			default:
				upstreamCalls++
			}
		}
		size := rep.ResultProbe["size0"].(float64)
		if size <= 0 || rep.ResultProbe["small_ret"] != size || rep.ResultProbe["full_ret"] != size ||
			rep.ResultProbe["small_hex"] != "0900002323232323" {
			t.Errorf("http_batch_result buffer convention: %v", rep.ResultProbe)
		}
		if rep.Malformed != -2 || rep.AfterBad != 0 || rep.TooMany != -4 || rep.Empty != 4 || rep.BadMethod != -2 || rep.BadHeader != -2 {
			t.Errorf("batch errors: malformed %d, results after it %d, 65 requests %d, empty %d, bad method %d, bad header %d",
				rep.Malformed, rep.AfterBad, rep.TooMany, rep.Empty, rep.BadMethod, rep.BadHeader)
		}
		// The plugin answered itself: the route's upstream a was called
		// only by the batch.
		if got := a.hits.Load() - hits; got != upstreamCalls {
			t.Errorf("upstream a got %d requests, want the %d of the batch", got, upstreamCalls)
		}
	})

	t.Run("chain order", func(t *testing.T) {
		r := hdo(t, "GET", g.url("/chain/all"), []string{"X-Chain", "client"}, nil)
		var e echoed
		r.json(t, &e)
		if got := strings.Join(e.Headers["X-Chain"], "|"); got != "client,A,B,C" {
			t.Errorf("on_request order: upstream saw X-Chain %q, want client,A,B,C", got)
		}
		if got := strings.Join(r.headers["X-Chain-Resp"], "|"); got != "C,B,A" {
			t.Errorf("on_response order: X-Chain-Resp %q, want C,B,A", got)
		}
	})

	t.Run("chain short-circuit", func(t *testing.T) {
		hits := a.hits.Load()
		before := hdo(t, "GET", g.url("/kv-c?op=get&key=chain_requests"), nil, nil)
		r := hdo(t, "GET", g.url("/chain/stop"), nil, nil)
		if r.status != 200 || string(r.body) != "stopped by B; X-Chain=A,B\n" {
			t.Fatalf("local answer %d %q", r.status, r.body)
		}
		if got := strings.Join(r.headers["X-Chain-Resp"], "|"); got != "local:B,A" {
			t.Errorf("X-Chain-Resp %q: want B's local mark, then A's on_response only", got)
		}
		if a.hits.Load() != hits {
			t.Error("the upstream was called after a local response")
		}
		after := hdo(t, "GET", g.url("/kv-c?op=get&key=chain_requests"), nil, nil)
		if string(before.body) != string(after.body) {
			t.Errorf("plugin C ran after B answered: its call count went from %s to %s", before.body, after.body)
		}
	})

	t.Run("pooled and fresh instances", func(t *testing.T) {
		state := func(path string) (req, resp string) {
			t.Helper()
			r := hdo(t, "GET", g.url(path), nil, nil)
			var e echoed
			r.json(t, &e)
			return strings.Join(e.Headers["X-Instance"], ","), r.get("X-Instance-Resp")
		}
		// Pooled with one instance: the same instance, counting requests.
		var id string
		for i := 1; i <= 3; i++ {
			req, resp := state("/instance/pooled")
			parts := strings.Split(req, "/")
			if len(parts) != 3 || parts[1] != fmt.Sprint(i) || parts[2] != "1" || (id != "" && parts[0] != id) || resp != req {
				t.Errorf("pooled request %d: on_request %q on_response %q (first id %q)", i, req, resp, id)
			}
			id = parts[0]
		}
		// Fresh: a new instance per request, serving both its hooks.
		seen := map[string]bool{}
		for i := 1; i <= 3; i++ {
			req, resp := state("/instance/fresh")
			parts := strings.Split(req, "/")
			if len(parts) != 3 || parts[1] != "1" || parts[2] != "1" || seen[parts[0]] || resp != req {
				t.Errorf("fresh request %d: on_request %q on_response %q", i, req, resp)
			}
			seen[parts[0]] = true
		}
	})
}

// checkInitialize checks what the host answered during _initialize (the
// reactor's package initialisation, before on_init): request, KV and
// outbound functions refuse, the "any" functions work.
func checkInitialize(t *testing.T, g *gateway, r map[string]any) {
	t.Helper()
	expectCodes(t, "_initialize", r, map[string]float64{
		"request_method": -3, "header_get": -3, "kv_get": -3, "http_batch": -3, "log": 0, "random_get": 8,
	})
	if r["time_now_ok"] != true {
		t.Error("_initialize: time_now failed")
	}
	if c := r["config_get"]; c != float64(len(`{"check":"phase"}`)) {
		t.Errorf("_initialize: config_get = %v, want the size of the binding's config", c)
	}
	if id, _ := r["metric_define"].(float64); r["metric_define"] == nil || id < 0 {
		t.Errorf("_initialize: metric_define = %v, want an id", r["metric_define"])
	}
	// The line is tagged like any other: the instance's environment is set
	// before _initialize runs.
	if l := findLog(g, func(m map[string]any) bool { return m["msg"] == "hostcheck _initialize log line" }); l == nil || l["plugin"] == "" || l["plugin"] == nil {
		t.Errorf("a log line written during _initialize is not in the gateway log, tagged: %v", l)
	}
}

// Tokens for jwt-auth.

const jwtSecret = "0123456789abcdef0123456789abcdef" // 32 bytes: HS256's minimum

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwtToken(t *testing.T, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64url(h) + "." + b64url(c)
	return input + "." + b64url(sign([]byte(input)))
}

func hs256(secret string) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(in)
		return m.Sum(nil)
	}
}

func rs256(t *testing.T, key *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// jwtTestKey reads the RS256 test key pair of plugins/jwt-auth/testdata.
func jwtTestKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	priv, err := os.ReadFile("../../plugins/jwt-auth/testdata/rsa2048.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile("../../plugins/jwt-auth/testdata/rsa2048.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(priv)
	if block == nil {
		t.Fatal("no PEM block in rsa2048.key.pem")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey), string(pub)
}

// examplesConfig is the gateway of TestExamplePlugins. Arguments: cache
// dir, the modules (jwt-auth, api-key, rewrite, json-transform, aggregate,
// client-shape), upstreams a, b, c and z (z is the aggregate routes' own
// upstream, which must never be called), a dead address, the RSA public
// key, the api-key partner key's SHA-256.
const examplesConfig = `
plugin_runtime: {cache_dir: %[1]q}
plugins:
  - {name: jwt, module: %[2]q, limits: {call_timeout: 5s}}
  - {name: api-key, module: %[3]q, limits: {call_timeout: 5s}}
  - {name: rewrite, module: %[4]q, limits: {call_timeout: 5s}}
  - {name: rewrite2, module: %[4]q, limits: {call_timeout: 5s}}
  - {name: json-transform, module: %[5]q, limits: {call_timeout: 5s}}
  - {name: aggregate, module: %[6]q, limits: {call_timeout: 5s}}
  - {name: client-shape, module: %[7]q, limits: {call_timeout: 5s}}
upstreams:
  - {name: a, targets: [{address: %[8]s}]}
  - {name: b, targets: [{address: %[9]s}]}
  - {name: c, targets: [{address: %[10]s}]}
  - {name: z, targets: [{address: %[11]s}]}
routes:
  - name: jwt-hs
    match: {path_prefix: /jwt/hs}
    upstream: a
    plugins:
      - name: jwt
        config:
          keys: [{kid: hs1, secret: %[14]q}]
          issuer: https://issuer.test
          audience: api
          forward_claims: {sub: X-User-Id, scope: X-Scopes, realm_access.roles: X-Roles}
  - name: jwt-rs
    match: {path_prefix: /jwt/rs}
    upstream: a
    plugins:
      - name: jwt
        config:
          keys: [{kid: rs1, public_key: %[13]q}]
          audiences: [api, other-api]
          forward_claims: {sub: X-User-Id}
          strip_token: true
  - name: api-key
    match: {path_prefix: /apikey}
    upstream: a
    plugins:
      - name: api-key
        config:
          keys:
            - {consumer: mobile-app, key: k-mobile-0123456789}
            - {consumer: partner-x, key_sha256: %[15]s}
          query: api_key
  - name: rewrite
    match: {path_prefix: /rw}
    upstream: a
    plugins:
      - name: rewrite
        config:
          request:
            path: {prefix: /rw, replace: /v1}
            headers: {remove: [Cookie], set: {X-Gateway: wasmgate}, add: {X-Order: one}}
          response:
            headers: {remove: [X-Upstream-Remove], set: {Cache-Control: no-store}, add: {X-Order: one}}
      - name: rewrite2
        config:
          request: {headers: {add: {X-Order: two}}}
          response: {headers: {add: {X-Order: two}}}
  - name: rewrite-regex
    match: {path_prefix: /rx}
    upstream: a
    plugins:
      - name: rewrite
        config:
          request: {path: {regex: "^/rx/users/([0-9]+)$", replace: "/users/$1/profile"}}
  - name: json-transform
    match: {path_prefix: /jt}
    upstream: a
    plugins:
      - name: json-transform
        config:
          request:
            - {op: rename, path: user.fullName, to: name}
            - {op: remove, path: secret}
            - {op: add, path: meta.via, value: gateway}
          response:
            - {op: remove, path: items.internal_id}
            - {op: rename, path: user.fullName, to: name}
            - {op: move, from: user.email, to: contact}
            - {op: add, path: meta.source, value: {by: gateway, n: 1}}
          statuses: [200]
  - name: agg-strict
    match: {path: /agg/strict}
    upstream: z
    plugins:
      - name: aggregate
        outbound: {upstreams: [a, b, c]}
        config:
          parts:
            - {name: one, url: "upstream://a/part/one?user={user}", timeout: 2s, headers: {X-Part: p1}}
            - {name: two, url: "upstream://b/part/two/{user}", timeout: 2s}
            - {name: three, url: "upstream://c/part/three", timeout: 2s}
  - name: agg-strict-slow
    match: {path: /agg/strict-slow}
    upstream: z
    plugins:
      - name: aggregate
        outbound: {upstreams: [a, b]}
        config:
          parts:
            - {name: one, url: "upstream://a/part/one", timeout: 2s}
            - {name: slow, url: "upstream://b/hold", timeout: 100ms}
  - name: agg-partial
    match: {path: /agg/partial}
    upstream: z
    plugins:
      - name: aggregate
        outbound: {upstreams: [a], hosts: [%[10]q, %[9]q, %[12]q]}
        config:
          mode: partial
          user: {query: uid}
          parts:
            - {name: one, url: "upstream://a/part/one?user={user}", timeout: 2s}
            - {name: slow, url: "http://%[9]s/hold", timeout: 100ms}
            - {name: dead, url: "http://%[12]s/part", timeout: 2s}
            - {name: three, url: "http://%[10]s/part/three", timeout: 2s}
  - name: client-shape
    match: {path_prefix: /shape}
    upstream: a
    plugins:
      - name: client-shape
        config:
          profiles:
            mobile: {fields: [user.id, items.id, items.text]}
            tv:
              fields: [items.author, items.caption]
              ops: [{op: rename, path: items.text, to: caption}]
            web: {}
`

// TestExamplePlugins runs each example plugin end to end in one gateway
// with real upstreams, then checks that config errors in a reload (a plugin
// rejecting its config, a missing module) leave that gateway serving.
func TestExamplePlugins(t *testing.T) {
	examples := []string{"jwt-auth", "api-key", "rewrite", "json-transform", "aggregate", "client-shape"}
	warmPlugins(t, examples...)
	a, b, c, z := startEchoUpstream(t, "a"), startEchoUpstream(t, "b"), startEchoUpstream(t, "c"), startEchoUpstream(t, "z")
	dead := deadAddr(t)
	rsaKey, rsaPub := jwtTestKey(t)
	partnerSum := sha256.Sum256([]byte("k-partner-0123456789"))
	args := []any{e2eCacheDir(t)}
	for _, n := range examples {
		args = append(args, pluginPath(t, n))
	}
	args = append(args, a.addr, b.addr, c.addr, z.addr, dead, rsaPub, jwtSecret, hex.EncodeToString(partnerSum[:]))
	rest := fmt.Sprintf(examplesConfig, args...)
	g := startGateway(t, 1000, rest)

	t.Run("jwt-auth", func(t *testing.T) {
		now := time.Now().Unix()
		hs := func(claims map[string]any) string {
			return jwtToken(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "hs1"}, claims, hs256(jwtSecret))
		}
		good := map[string]any{"sub": "user-1", "iss": "https://issuer.test", "aud": "api", "exp": now + 3600,
			"scope": "read write", "realm_access": map[string]any{"roles": []string{"admin", "dev"}}}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for kk, vv := range good {
				m[kk] = vv
			}
			m[k] = v
			return m
		}
		hits := a.hits.Load()
		r := hdo(t, "GET", g.url("/jwt/hs/x"), []string{"Authorization", "Bearer " + hs(good), "X-User-Id", "spoofed"}, nil)
		if r.status != 200 {
			t.Fatalf("valid HS256 token: %d %s", r.status, r.body)
		}
		var e echoed
		r.json(t, &e)
		for h, want := range map[string]string{"X-User-Id": "user-1", "X-Scopes": "read write", "X-Roles": "admin,dev"} {
			if got := strings.Join(e.Headers[h], "|"); got != want {
				t.Errorf("forwarded claim header %s = %q, want %q", h, got, want)
			}
		}
		if e.Headers["Authorization"] == nil {
			t.Error("the token was stripped without strip_token")
		}

		wrongKey := jwtToken(t, map[string]any{"alg": "HS256", "kid": "hs1"}, good, hs256(strings.Repeat("k", 32)))
		rsSigned := jwtToken(t, map[string]any{"alg": "RS256", "kid": "rs1"}, good, rs256(t, rsaKey))
		for _, tc := range []struct {
			name, token, desc string
		}{
			{"no token", "", ""},
			{"expired", hs(with("exp", now-3600)), "token expired"},
			{"bad signature", wrongKey, "invalid signature"},
			{"wrong audience", hs(with("aud", "other")), "invalid audience"},
			{"wrong issuer", hs(with("iss", "https://evil.test")), "invalid issuer"},
			{"not yet valid", hs(with("nbf", now+3600)), "token not yet valid"},
			{"RS256 token on an HS256-only route", rsSigned, "unknown key"},
			{"garbage", "not.a.jwt", "malformed token"},
		} {
			var h []string
			if tc.token != "" {
				h = []string{"Authorization", "Bearer " + tc.token}
			}
			r := hdo(t, "GET", g.url("/jwt/hs/x"), h, nil)
			wantChallenge := `Bearer realm="wasmgate"`
			if tc.desc != "" {
				wantChallenge += `, error="invalid_token", error_description="` + tc.desc + `"`
			}
			if r.status != 401 || r.get("WWW-Authenticate") != wantChallenge || r.get("Content-Type") != "application/json" {
				t.Errorf("%s: %d WWW-Authenticate %q, want 401 %q (%s)", tc.name, r.status, r.get("WWW-Authenticate"), wantChallenge, r.body)
				continue
			}
			var body map[string]string
			r.json(t, &body)
			if wantDesc := cmpOr(tc.desc, "missing bearer token"); body["error_description"] != wantDesc {
				t.Errorf("%s: body %v", tc.name, body)
			}
		}
		if a.hits.Load() != hits+1 {
			t.Errorf("the upstream got %d requests, want only the valid one", a.hits.Load()-hits)
		}

		// RS256, audience list, token stripped.
		rs := jwtToken(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rs1"},
			map[string]any{"sub": "rs-user", "aud": []string{"other-api"}, "exp": now + 60}, rs256(t, rsaKey))
		r = hdo(t, "GET", g.url("/jwt/rs/y"), []string{"Authorization", "Bearer " + rs}, nil)
		if r.status != 200 {
			t.Fatalf("valid RS256 token: %d %s", r.status, r.body)
		}
		var ers echoed
		r.json(t, &ers)
		if strings.Join(ers.Headers["X-User-Id"], "|") != "rs-user" || ers.Headers["Authorization"] != nil || ers.Headers["X-Scopes"] != nil {
			t.Errorf("RS256: upstream headers %v", ers.Headers)
		}
		parts := strings.Split(rs, ".")
		tampered := parts[0] + "." + b64url([]byte(`{"sub":"admin","aud":"api","exp":9999999999}`)) + "." + parts[2]
		r = hdo(t, "GET", g.url("/jwt/rs/y"), []string{"Authorization", "Bearer " + tampered}, nil)
		if r.status != 401 || !strings.Contains(r.get("WWW-Authenticate"), `error_description="invalid signature"`) {
			t.Errorf("tampered RS256 token: %d %q", r.status, r.get("WWW-Authenticate"))
		}
		hsOnRS := jwtToken(t, map[string]any{"alg": "HS256", "kid": "rs1"}, map[string]any{"sub": "x", "aud": "api", "exp": now + 60}, hs256(jwtSecret))
		if r := hdo(t, "GET", g.url("/jwt/rs/y"), []string{"Authorization", "Bearer " + hsOnRS}, nil); r.status != 401 {
			t.Errorf("an HS256 token naming the RSA key: %d", r.status)
		}
	})

	t.Run("api-key", func(t *testing.T) {
		r := hdo(t, "GET", g.url("/apikey/x?a=1"), []string{"X-Api-Key", "k-mobile-0123456789", "X-Consumer", "spoofed"}, nil)
		if r.status != 200 {
			t.Fatalf("valid key: %d %s", r.status, r.body)
		}
		var e echoed
		r.json(t, &e)
		if strings.Join(e.Headers["X-Consumer"], "|") != "mobile-app" || e.Headers["X-Api-Key"] != nil || e.URI != "/apikey/x?a=1" {
			t.Errorf("header key: upstream saw %s %v", e.URI, e.Headers)
		}
		r = hdo(t, "GET", g.url("/apikey/y?a=1&api_key=k-partner-0123456789&b=2"), nil, nil)
		if r.status != 200 {
			t.Fatalf("valid query key: %d %s", r.status, r.body)
		}
		r.json(t, &e)
		if strings.Join(e.Headers["X-Consumer"], "|") != "partner-x" || e.URI != "/apikey/y?a=1&b=2" {
			t.Errorf("query key (by SHA-256): upstream saw %s %v", e.URI, e.Headers["X-Consumer"])
		}
		hits := a.hits.Load()
		for _, tc := range []struct {
			name    string
			headers []string
			err     string
		}{
			{"missing", []string{"X-Consumer", "spoofed"}, "missing API key"},
			{"unknown", []string{"X-Api-Key", "k-wrong"}, "invalid API key"},
		} {
			r := hdo(t, "GET", g.url("/apikey/x"), tc.headers, nil)
			var body map[string]string
			if r.status != 401 || r.get("WWW-Authenticate") != `ApiKey realm="wasmgate", header="X-Api-Key"` ||
				json.Unmarshal(r.body, &body) != nil || body["error"] != tc.err {
				t.Errorf("%s key: %d %q %s", tc.name, r.status, r.get("WWW-Authenticate"), r.body)
			}
		}
		if a.hits.Load() != hits {
			t.Error("a request without a valid key reached the upstream")
		}
	})

	t.Run("rewrite, two plugins in a chain", func(t *testing.T) {
		r := hdo(t, "GET", g.url("/rw/items?x=1"), []string{"Cookie", "session=s", "X-Order", "client"}, nil)
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		var e echoed
		r.json(t, &e)
		if e.URI != "/v1/items?x=1" || e.Headers["Cookie"] != nil || strings.Join(e.Headers["X-Gateway"], "|") != "wasmgate" {
			t.Errorf("request rewrite: upstream saw %s %v", e.URI, e.Headers)
		}
		// on_request in chain order, on_response in reverse.
		if got := strings.Join(e.Headers["X-Order"], "|"); got != "client|one|two" {
			t.Errorf("request X-Order %q, want client|one|two", got)
		}
		if got := strings.Join(r.headers["X-Order"], "|"); got != "two|one" {
			t.Errorf("response X-Order %q, want two|one", got)
		}
		if r.get("Cache-Control") != "no-store" || r.get("X-Upstream-Remove") != "" || r.get("X-Upstream") != "a" {
			t.Errorf("response rewrite: %v", r.headers)
		}
		hdo(t, "GET", g.url("/rx/users/42"), nil, nil).json(t, &e)
		if e.URI != "/users/42/profile" {
			t.Errorf("regex rewrite: upstream saw %s", e.URI)
		}
		hdo(t, "GET", g.url("/rx/other"), nil, nil).json(t, &e)
		if e.URI != "/rx/other" {
			t.Errorf("regex without a match: upstream saw %s", e.URI)
		}
	})

	t.Run("json-transform", func(t *testing.T) {
		r := hdo(t, "POST", g.url("/jt/echo"), []string{"Content-Type", "application/json"},
			[]byte(`{"user":{"fullName":"Ada","id":1},"secret":"s","keep":[1,2]}`))
		var e echoed
		r.json(t, &e)
		eqJSON(t, "request body sent upstream", e.Body, `{"user":{"name":"Ada","id":1},"keep":[1,2],"meta":{"via":"gateway"}}`)
		if e.Headers["Content-Length"][0] != fmt.Sprint(len(e.Body)) {
			t.Errorf("Content-Length %v for %d bytes", e.Headers["Content-Length"], len(e.Body))
		}
		r = hdo(t, "GET", g.url("/jt/doc"), nil, nil)
		eqJSON(t, "response body", string(r.body), `{"user":{"id":7,"name":"Ada Lovelace"},`+
			`"items":[{"id":1,"text":"first","likes":3,"author":"ada"},{"id":2,"text":"second","likes":5,"author":"bob"}],`+
			`"debug":true,"contact":"ada@example.test","meta":{"source":{"by":"gateway","n":1}}}`)
		if r.get("Content-Length") != fmt.Sprint(len(r.body)) {
			t.Errorf("response Content-Length %q for %d bytes", r.get("Content-Length"), len(r.body))
		}
		// Untouched: a status not listed, a body that is not JSON.
		if r := hdo(t, "GET", g.url("/jt/status/404"), nil, nil); r.status != 404 || string(r.body) != `{"status":404}` {
			t.Errorf("a 404 was transformed: %d %s", r.status, r.body)
		}
		hdo(t, "POST", g.url("/jt/echo"), []string{"Content-Type", "text/plain"}, []byte(`{"secret":"s"}`)).json(t, &e)
		if e.Body != `{"secret":"s"}` {
			t.Errorf("a text/plain body was transformed: %q", e.Body)
		}
	})

	t.Run("aggregate", func(t *testing.T) {
		zHits := z.hits.Load()
		r := hdo(t, "GET", g.url("/agg/strict"), []string{"X-User-Id", "u42"}, nil)
		if r.status != 200 {
			t.Fatalf("strict: %d %s", r.status, r.body)
		}
		eqJSON(t, "strict answer", string(r.body), `{"one":{"from":"a","uri":"/part/one?user=u42","x_part":"p1"},`+
			`"two":{"from":"b","uri":"/part/two/u42","x_part":""},"three":{"from":"c","uri":"/part/three","x_part":""}}`)
		if st := r.get("Server-Timing"); !strings.Contains(st, "one;dur=") || !strings.Contains(st, "two;dur=") || !strings.Contains(st, "three;dur=") {
			t.Errorf("Server-Timing %q", st)
		}
		if r := hdo(t, "GET", g.url("/agg/strict"), nil, nil); r.status != 400 || !strings.Contains(string(r.body), "X-User-Id") {
			t.Errorf("no user id: %d %s", r.status, r.body)
		}

		// One part over its timeout fails the strict answer.
		r = hdo(t, "GET", g.url("/agg/strict-slow"), nil, nil)
		eqJSON(t, "strict with a slow part", string(r.body), `{"error":"part \"slow\" failed: timeout","failed":{"slow":"timeout"}}`)
		if r.status != 502 {
			t.Errorf("strict with a slow part: status %d", r.status)
		}

		// Partial: the slow and the dead part are null and described.
		r = hdo(t, "GET", g.url("/agg/partial?uid=u7"), nil, nil)
		if r.status != 200 {
			t.Fatalf("partial: %d %s", r.status, r.body)
		}
		eqJSON(t, "partial answer", string(r.body), `{"one":{"from":"a","uri":"/part/one?user=u7","x_part":""},"slow":null,"dead":null,`+
			`"three":{"from":"c","uri":"/part/three","x_part":""},`+
			`"_errors":{"slow":{"error":"timeout"},"dead":{"error":"connect or network error"}}}`)
		if st := r.get("Server-Timing"); !strings.Contains(st, "slow;dur=") || !strings.Contains(st, "dead;dur=") {
			t.Errorf("Server-Timing %q lacks the failed parts", st)
		}
		if z.hits.Load() != zHits {
			t.Error("an aggregate route called its own upstream")
		}
		if m := string(g.admin(t, "GET", "/metrics").body); !strings.Contains(m, `wasmgate_plugin_counter_total{name="part_failures",plugin="aggregate"} 3`) ||
			!strings.Contains(m, `wasmgate_plugin_histogram_count{name="batch_seconds",plugin="aggregate"} 3`) {
			t.Error("aggregate's metrics (part_failures 3, batch_seconds count 3) not exported")
		}
	})

	t.Run("client-shape", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			headers []string
			query   string
			status  int
			profile string
			want    string
		}{
			{"iPhone", []string{"User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}, "", 200, "mobile",
				`{"user":{"id":7},"items":[{"id":1,"text":"first"},{"id":2,"text":"second"}]}`},
			{"client hint", []string{"User-Agent", "Mozilla/5.0", "Sec-CH-UA-Mobile", "?1"}, "", 200, "mobile",
				`{"user":{"id":7},"items":[{"id":1,"text":"first"},{"id":2,"text":"second"}]}`},
			{"TV", []string{"User-Agent", "Roku/DVP-9.10 (519.10E04111A)"}, "", 200, "tv",
				`{"items":[{"author":"ada","caption":"first"},{"author":"bob","caption":"second"}]}`},
			{"browser", []string{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}, "", 200, "web", docBody},
			{"fields=", []string{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"}, "?fields=user.fullName,items.likes", 200, "web",
				`{"user":{"fullName":"Ada Lovelace"},"items":[{"likes":3},{"likes":5}]}`},
			{"bad fields=", nil, "?fields=" + strings.Repeat("a,", 40) + "b", 400, "", ""},
		} {
			r := hdo(t, "GET", g.url("/shape/doc"+tc.query), tc.headers, nil)
			if r.status != tc.status || r.get("X-Client-Profile") != tc.profile {
				t.Errorf("%s: %d profile %q, want %d %q (%s)", tc.name, r.status, r.get("X-Client-Profile"), tc.status, tc.profile, r.body)
				continue
			}
			if !strings.Contains(r.get("Vary"), "User-Agent") {
				t.Errorf("%s: Vary %q lacks User-Agent", tc.name, r.get("Vary"))
			}
			if tc.want != "" {
				eqJSON(t, tc.name, string(r.body), tc.want)
			}
		}
	})

	t.Run("reload with a plugin error keeps serving", func(t *testing.T) {
		before := g.snap.Load().version
		bad := rest + `
  - name: bad
    match: {path_prefix: /bad}
    upstream: a
    plugins:
      - name: api-key
        config: {keys: [{consumer: c, key: k-0123456789abcdef}]}
      - name: jwt
        config: {audience: api}
`
		full := fmt.Sprintf(baseConfig, 1000) + bad
		writeConfig(t, g.cfgPath, full)
		_, err := g.Reload("test")
		line, col := position(t, full, "name: jwt\n        config: {audience: api}")
		want := fmt.Sprintf(`%s:%d:%d: route "bad": plugin "jwt": rejected its config: missing "keys": list HMAC secrets ("secret") or RSA public keys ("public_key") to verify tokens with`, g.cfgPath, line, col)
		if err == nil || err.Error() != want {
			t.Fatalf("reload error:\n got %v\nwant %s", err, want)
		}
		missing := strings.Replace(fmt.Sprintf(baseConfig, 1000)+rest, pluginPath(t, "rewrite"), "gone/rewrite.wasm", 1)
		writeConfig(t, g.cfgPath, missing)
		_, err = g.Reload("test")
		line, col = position(t, missing, `"gone/rewrite.wasm"`) // the quoted value
		want = fmt.Sprintf(`%s:%d:%d: plugin "rewrite": cannot read module: open %s: no such file or directory`,
			g.cfgPath, line, col, filepath.Join(filepath.Dir(g.cfgPath), "gone/rewrite.wasm"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("reload error:\n got %v\nwant %s", err, want)
		}
		if g.snap.Load().version != before {
			t.Fatal("a rejected config was swapped in")
		}
		if r := hdo(t, "GET", g.url("/apikey/x"), []string{"X-Api-Key", "k-mobile-0123456789"}, nil); r.status != 200 {
			t.Errorf("the running config stopped serving: %d", r.status)
		}
		if r := hdo(t, "GET", g.url("/rw/x"), nil, nil); r.status != 200 || r.get("Cache-Control") != "no-store" {
			t.Errorf("the running rewrite plugin stopped working: %d", r.status)
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// position returns the 1-based line and column where needle starts in text.
func position(t *testing.T, text, needle string) (line, col int) {
	t.Helper()
	i := strings.Index(text, needle)
	if i < 0 || strings.Count(text, needle) != 1 {
		t.Fatalf("%q is not in the config exactly once", needle)
	}
	return 1 + strings.Count(text[:i], "\n"), 1 + i - (strings.LastIndexByte(text[:i], '\n') + 1)
}

// Tiny modules for the load errors: the 8-byte empty module (valid wasm,
// no ABI marker), one exporting another ABI version's marker, and one
// importing a function outside the ABI.
var (
	emptyModule = []byte("\x00asm\x01\x00\x00\x00")
	abiV2Module = []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type 0: () -> ()
		"\x03\x02\x01\x00" + // func 0: type 0
		"\x07\x13\x01\x0fwasmgate_abi_v2\x00\x00" + // export "wasmgate_abi_v2" = func 0
		"\x0a\x04\x01\x02\x00\x0b") // body: end
	envImportModule = []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" +
		"\x02\x0b\x01\x03env\x03foo\x00\x00") // import "env"."foo": type 0
)

// TestPluginConfigErrors checks that server.New refuses configs whose
// plugins cannot load or reject their config, with FILE:LINE:COL at the
// place to fix and the plugin's own message.
func TestPluginConfigErrors(t *testing.T) {
	warmPlugins(t, "jwt-auth", "api-key")
	t.Setenv("TEST_ADMIN_TOKEN", testToken)
	dir := t.TempDir()
	newServer := func(text string) (string, error) {
		path := filepath.Join(dir, "wasmgate.yaml")
		writeConfig(t, path, text)
		s, err := New(Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Stdout: io.Discard})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
		}
		return path, err
	}

	t.Run("plugins reject their config", func(t *testing.T) {
		text := fmt.Sprintf(baseConfig, 10) + fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - name: jwt
    module: %q
  - name: api-key
    module: %q
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes:
  - name: r
    match: {path_prefix: /}
    upstream: a
    plugins:
      - name: jwt
        config: {audience: api}
      - name: api-key
        config:
          keys: [{consumer: c, key: k}]
          nope: 1
`, e2eCacheDir(t), pluginPath(t, "jwt-auth"), pluginPath(t, "api-key"))
		path, err := newServer(text)
		if err == nil {
			t.Fatal("New accepted plugins that reject their config")
		}
		l1, c1 := position(t, text, "name: jwt\n        config")
		l2, c2 := position(t, text, "name: api-key\n        config")
		want := []string{
			fmt.Sprintf(`%s:%d:%d: route "r": plugin "jwt": rejected its config: missing "keys": list HMAC secrets ("secret") or RSA public keys ("public_key") to verify tokens with`, path, l1, c1),
			fmt.Sprintf(`%s:%d:%d: route "r": plugin "api-key": rejected its config: unknown field "nope"`, path, l2, c2),
		}
		if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
			t.Fatalf("New error:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("modules that cannot load", func(t *testing.T) {
		for name, b := range map[string][]byte{
			"not.wasm": []byte("this is not WebAssembly\n"), "empty.wasm": emptyModule,
			"v2.wasm": abiV2Module, "env.wasm": envImportModule,
		} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		text := fmt.Sprintf(baseConfig, 10) + fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - name: missing
    module: nowhere/missing.wasm
  - name: notwasm
    module: not.wasm
  - name: empty
    module: empty.wasm
  - name: v2
    module: v2.wasm
  - name: env
    module: env.wasm
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes:
  - {name: r, match: {path_prefix: /}, upstream: a, plugins: [{name: missing}, {name: notwasm}, {name: empty}, {name: v2}, {name: env}]}
`, e2eCacheDir(t))
		path, err := newServer(text)
		if err == nil {
			t.Fatal("New accepted modules that cannot load")
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 5 {
			t.Fatalf("want one error per module, got %q", lines)
		}
		for i, tc := range []struct{ module, msg string }{
			{"nowhere/missing.wasm", `plugin "missing": cannot read module: open ` + filepath.Join(dir, "nowhere/missing.wasm") + ": no such file or directory"},
			{"not.wasm", `plugin "notwasm": module not.wasm rejected: `},
			{"empty.wasm", `plugin "empty": module empty.wasm rejected: missing export "wasmgate_abi_v1"`},
			{"v2.wasm", `plugin "v2": module v2.wasm rejected: module targets wasmgate ABI v2 (exports "wasmgate_abi_v2"); this gateway implements v1`},
			{"env.wasm", `plugin "env": module env.wasm rejected: `},
		} {
			l, c := position(t, text, "module: "+tc.module+"\n")
			prefix := fmt.Sprintf("%s:%d:%d: %s", path, l, c+len("module: "), tc.msg)
			if !strings.HasPrefix(lines[i], prefix) {
				t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], prefix)
			}
		}
		if !strings.Contains(lines[1], "magic") {
			t.Errorf("a non-wasm file: %s", lines[1])
		}
		if !strings.Contains(lines[4], `unknown import "env"."foo"`) {
			t.Errorf("an import outside the ABI: %s", lines[4])
		}
	})
}
