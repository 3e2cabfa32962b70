package astest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/testkit"
	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/abi"
	"github.com/wasmgate/wasmgate/sdk/tck"
	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// TestModuleShape: every module is what sdk/ABI.md section 1 asks: memory,
// the marker, the hooks with their signatures, a reactor (_initialize: the
// top level of the entry file), and imports from "wasmgate" only, with the
// ABI's signatures (nothing from AssemblyScript's "env": abort, trace and
// seed are routed to the SDK). The test guest imports every host function.
func TestModuleShape(t *testing.T) {
	for _, m := range modules {
		t.Run(m.name, func(t *testing.T) {
			hooks := []string{"on_init", "on_request", "on_response"}
			if m.name == "api-key" {
				hooks = hooks[:2]
			}
			imported := checkShape(t, m.name, hooks)
			if m.name == "sdkcheck" && len(imported) != len(abi.Functions()) {
				var missing []string
				for _, f := range abi.Functions() {
					if !imported[f.Name] {
						missing = append(missing, f.Name)
					}
				}
				t.Errorf("the test guest does not call %v", missing)
			}
		})
	}
}

// checkShape builds the module name and checks it is what sdk/ABI.md
// section 1 asks (TestModuleShape), exporting hooks, and returns the host
// functions it imports.
func checkShape(t *testing.T, name string, hooks []string) (imported map[string]bool) {
	t.Helper()
	hostFuncs := map[string]abi.Func{}
	for _, f := range abi.Functions() {
		hostFuncs[f.Name] = f
	}
	info := sdktest.Inspect(t, wasmPath(t, name))
	t.Logf("%s: %d bytes, %d imports", name, info.Size, len(info.Imports))
	if info.ABIVersion != abi.Version || !info.Reactor || info.Command {
		t.Errorf("abi v%d, reactor %v, command %v", info.ABIVersion, info.Reactor, info.Command)
	}
	imported = map[string]bool{}
	for _, im := range info.Imports {
		f, ok := hostFuncs[im.Name]
		if im.Module != abi.ModuleName || !ok {
			t.Errorf("import %q.%q: want only %q functions", im.Module, im.Name, abi.ModuleName)
			continue
		}
		imported[im.Name] = true
		if want := (wasm.Signature{Params: f.Params, Results: f.Results}); !im.Type.Equal(want) {
			t.Errorf("import %s: %v, want %v", im.Name, im.Type, want)
		}
	}
	var exports []string
	for _, e := range info.Exports {
		exports = append(exports, e.Name)
	}
	want := append([]string{"_initialize", "memory", abi.VersionMarker}, hooks...)
	slices.Sort(exports)
	slices.Sort(want)
	if !slices.Equal(exports, want) {
		t.Errorf("exports %v, want %v (--exportRuntime is not needed: the host never calls the allocator)", exports, want)
	}
	if info.Memory.HasMax {
		t.Errorf("memory declares a maximum (%d pages): the gateway's cap is the bound", info.Memory.Max)
	}
	return imported
}

const adminToken = "as-test-token"

// baseConfig is the config of the gateways of these tests, before their
// plugins, upstreams and routes.
const baseConfig = `
listen: {address: 127.0.0.1:0, max_body_bytes: 1MiB, shutdown_timeout: 5s}
admin: {address: 127.0.0.1:0, watch_config: false}
log: {level: debug, access_log: stdout}
`

// gatewayOptions keep the test guest's debug lines and set the admin token.
var gatewayOptions = sdktest.Options{LogLevel: slog.LevelDebug, AdminToken: adminToken}

// newGateway starts a gateway on baseConfig + rest, or returns the error
// of a config the gateway or a plugin refused.
func newGateway(t *testing.T, rest string) (*sdktest.Gateway, error) {
	t.Helper()
	return sdktest.NewGatewayWith(t, baseConfig+rest, gatewayOptions)
}

// startGateway is newGateway that fails the test on an error.
func startGateway(t *testing.T, rest string) *sdktest.Gateway {
	t.Helper()
	return sdktest.StartGatewayWith(t, baseConfig+rest, gatewayOptions)
}

// findLog returns the first line of g's log that match accepts, nil if
// none.
func findLog(g *sdktest.Gateway, match func(map[string]any) bool) map[string]any {
	for _, l := range g.LogLines() {
		if match(l) {
			return l
		}
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }

// report decodes a JSON answer of the test guest, failing on any status
// but want.
func report(t *testing.T, r tck.Response, want int) map[string]any {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// expect compares the keys of got with want, JSON-wise (numbers are
// float64, lists []any).
func expect(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		wj, _ := json.Marshal(w)
		gj, _ := json.Marshal(g)
		if !ok || string(gj) != string(wj) {
			t.Errorf("%s: %s = %s, want %s", what, k, gj, wj)
		}
	}
}

// TestGateway runs the examples and the test guest in the real gateway.
func TestGateway(t *testing.T) {
	headers, apiKey, sdkcheck := wasmPath(t, "headers"), wasmPath(t, "api-key"), wasmPath(t, "sdkcheck")
	a, b := tck.StartUpstream(t, "a"), tck.StartUpstream(t, "b")
	dead := tck.DeadAddr(t)

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("signed by the test")
	b64 := base64.StdEncoding.EncodeToString

	g := startGateway(t, fmt.Sprintf(`
plugins:
  - name: as-headers
    module: %[1]q
    config: {request: {X-From-AS: "yes", X-Num: 5}, response: {X-Served-By: as}, deny_prefix: /headers/private}
  - {name: as-headers-fresh, module: %[1]q, mode: fresh}
  - name: as-api-key
    module: %[2]q
    config:
      keys:
        - {consumer: alice, key: alice-key-0123456789, scope: "orders:read orders:write"}
        - {consumer: bob, key: bob-key-0123456789}
        - {consumer: carol, key: carol-key-0123456789, scope: "orders:read"}
  - {name: sdk, module: %[3]q, limits: {call_timeout: 5s}}
  - {name: sdk-pooled, module: %[3]q, limits: {call_timeout: 5s}, pool: {max_instances: 1}}
  - {name: sdk-log, module: %[3]q, limits: {call_timeout: 5s}, config: {check: log}}
  - {name: sdk-fail, module: %[3]q, limits: {call_timeout: 5s}, quarantine: {after: 100}, config: {check: log}}
traffic:
  sticky: "header:X-User-Id"
  flags:
    - {name: as-on, enabled: true}
    - {name: as-off, enabled: false}
upstreams:
  - {name: a, targets: [{address: %[4]s}]}
routes:
  - {name: headers, match: {path_prefix: /headers}, upstream: a, plugins: [{name: as-headers}]}
  - {name: fresh, match: {path_prefix: /fresh}, upstream: a, plugins: [{name: as-headers-fresh}]}
  - name: api
    match: {path_prefix: /api}
    upstream: a
    plugins: [{name: as-api-key}]
    authorize: {require_scopes: ["orders:read"], consumers: [alice, bob]}
  - name: inspect
    match: {path_prefix: /inspect}
    upstream: a
    max_body_bytes: 64KiB
    plugins: [{name: sdk, config: {check: inspect, echo: {nested: [1, two]}}}]
  - {name: gc, match: {path_prefix: /gc}, upstream: a, plugins: [{name: sdk-pooled, config: {check: inspect}}]}
  - {name: local, match: {path_prefix: /local}, upstream: a, plugins: [{name: sdk, config: {check: local}}]}
  - {name: stop, match: {path_prefix: /stop}, upstream: a, plugins: [{name: sdk, config: {check: stop-without}}]}
  - {name: kv, match: {path_prefix: /kv}, plugins: [{name: sdk, config: {check: kv}}]}
  - {name: metrics, match: {path_prefix: /metrics-check}, plugins: [{name: sdk, config: {check: metrics}}]}
  - {name: log, match: {path_prefix: /log}, plugins: [{name: sdk-log}]}
  - {name: fail, match: {path_prefix: /fail}, plugins: [{name: sdk-fail}]}
  - {name: fail-open, match: {path_prefix: /open-fail}, upstream: a, plugins: [{name: sdk-fail, failure_policy: fail_open}]}
  - name: outbound
    match: {path_prefix: /outbound}
    plugins:
      - name: sdk
        outbound: {upstreams: [a], hosts: [%[5]q, %[6]q]}
        config:
          check: outbound
          batch:
            - {url: "upstream://a/echo/one?x=1", method: POST, headers: {X-Part: p1}, body: hello}
            - {url: "http://%[5]s/echo/two"}
            - {url: "http://%[6]s/dead"}
            - {url: "http://127.0.0.1:1/not-allowed"}
            - {url: "http://%[5]s/hold", timeout_ms: 100}
            - {url: "upstream://a/status/404"}
  - name: gateway
    match: {path_prefix: /gateway}
    upstream: a
    plugins: [{name: sdk, config: {check: gateway}}]
    rate_limits: [{name: credits, rate: 1, period: 1h, burst: 5, key: plugin}]
  - name: cached
    match: {path_prefix: /cached}
    upstream: a
    cache: {max_bytes: 1MiB, default_ttl: 1m}
    plugins: [{name: sdk, config: {check: gateway}}]
  - {name: json, match: {path_prefix: /json}, plugins: [{name: sdk, config: {check: json}}]}
  - name: crypto
    match: {path_prefix: /crypto}
    plugins: [{name: sdk, config: {check: crypto, key: %[7]q, msg: %[8]q, sig: %[9]q}}]
`, headers, apiKey, sdkcheck, a.Addr, b.Addr, dead, b64(der), b64(msg), b64(ed25519.Sign(priv, msg))))

	t.Run("headers example", func(t *testing.T) {
		for i := 1; i <= 2; i++ {
			r := tck.Do(t, "GET", g.URL("/headers/x"), nil, nil)
			var e tck.Echo
			r.JSON(t, &e)
			h := func(name string) string { return strings.Join(e.Headers[name], ",") }
			if r.Status != 200 || h("X-From-As") != "yes" || h("X-Num") != "5" || h("X-As-Count") != fmt.Sprint(i) {
				t.Errorf("request %d: %d, upstream saw %v", i, r.Status, e.Headers)
			}
			if r.Get("X-Served-By") != "as" || r.Get("X-AS-Method") != "GET" || r.Get("X-AS-Status") != "200" {
				t.Errorf("response headers %v", r.Headers)
			}
		}
		r := tck.Do(t, "GET", g.URL("/headers/private/x"), nil, nil)
		if r.Status != 403 || r.Get("Content-Type") != "application/json" || r.Get("X-Served-By") != "as" ||
			!strings.Contains(string(r.Body), "denied by the assemblyscript plugin") {
			t.Errorf("deny_prefix: %d %v %s", r.Status, r.Headers, r.Body)
		}
		if m := g.Metrics(t); !strings.Contains(m, `wasmgate_plugin_counter_total{name="requests",plugin="as-headers"} 3`) {
			t.Errorf("the requests counter is not 3:\n%s", grepLines(m, "as-headers"))
		}
	})

	t.Run("api-key example", func(t *testing.T) {
		for _, tc := range []struct {
			key      string
			status   int
			consumer string
		}{
			{"", 401, ""},
			{"wrong-key-0123456789", 401, ""},
			{"alice-key-0123456789", 200, "alice"},
			{"bob-key-0123456789", 403, ""},   // no scope: the route's require_scopes refuses
			{"carol-key-0123456789", 403, ""}, // a scope, but not one of the route's consumers
		} {
			var hs []string
			if tc.key != "" {
				hs = []string{"X-Api-Key", tc.key}
			}
			r := tck.Do(t, "GET", g.URL("/api/orders"), append(hs, "X-Consumer", "forged"), nil)
			if r.Status != tc.status {
				t.Errorf("key %q: %d %s, want %d", tc.key, r.Status, r.Body, tc.status)
				continue
			}
			switch r.Status {
			case 401:
				if !strings.HasPrefix(r.Get("WWW-Authenticate"), `ApiKey realm="wasmgate"`) || !strings.Contains(string(r.Body), "API key") {
					t.Errorf("key %q: 401 %v %s", tc.key, r.Headers, r.Body)
				}
			case 200:
				var e tck.Echo
				r.JSON(t, &e)
				if strings.Join(e.Headers["X-Consumer"], ",") != tc.consumer || len(e.Headers["X-Api-Key"]) != 0 {
					t.Errorf("key %q: upstream saw %v", tc.key, e.Headers)
				}
			}
		}
		testkit.WaitFor(t, 5*time.Second, "the consumer in the access log", func() bool {
			return strings.Contains(g.Access.String(), `"consumer":"alice"`)
		})
	})

	t.Run("inspect", func(t *testing.T) {
		long := strings.Repeat("l", 5000)
		r := tck.Do(t, "POST", g.URL("/inspect/p?q=a%20b&z=1"),
			[]string{"X-Probe", "probe", "X-Multi", "1", "X-Multi", "2", "X-Remove", "x", "X-Long", long, "X-Set-Path", "/inspect/new?k=v"},
			[]byte("0123456789"))
		if r.Status != 203 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if r.Get("X-Resp-Set") != "r" || strings.Join(r.Headers["X-Resp-Multi"], ",") != "a,b" || r.Get("X-Upstream-Remove") != "" {
			t.Errorf("response headers %v", r.Headers)
		}
		var got struct {
			Upstream tck.Echo       `json:"upstream"`
			Response map[string]any `json:"response"`
		}
		r.JSON(t, &got)
		e := got.Upstream
		if e.URI != "/inspect/new?k=v" || e.Headers["X-Set"][0] != "set" || strings.Join(e.Headers["X-Multi"], ",") != "1,2,added" || len(e.Headers["X-Remove"]) != 0 {
			t.Errorf("upstream saw %s %v", e.URI, e.Headers)
		}
		var req map[string]any
		if err := json.Unmarshal([]byte(e.Body), &req); err != nil {
			t.Fatalf("the request body is not the guest's report: %v\n%s", err, e.Body)
		}
		expect(t, "on_request", req, map[string]any{
			"method": "POST", "path": "/inspect/p", "query": "q=a%20b&z=1", "q": "a b", "missing_param": nil,
			"client_ip": "127.0.0.1", "header_probe": "probe", "header_absent": nil,
			"header_absent_code": abi.NotFound, "header_absent_error": "wasmgate.header_get: not found",
			"header_values": []string{"1", "2"}, "header_values_absent": 0, "header_names_has_probe": true,
			"header_long_len": len(long), "body": "0123456789", "body_size": 10,
			"range_n": 4, "range_size": 10, "range_bytes": "2345", "range_past_end_n": 0, "range_negative_code": abi.BadArgument,
			"config": `{"check":"inspect","echo":{"nested":[1,"two"]}}`,
			"now_ok": true, "random_code": 0, "random_nonzero": true, "math_random_ok": true,
			"date_now_ok": true, "performance_now_ok": true, "date_year_ok": true,
			"bad_name": abi.BadArgument, "bad_name_error": "wasmgate.header_set: bad argument", "bad_value": abi.BadArgument,
			"content_length": abi.NotAllowed, "set_path_relative": abi.BadArgument,
			"status_before_send": 0, "status_before_send_code": abi.NotAllowed, "response_header_code": abi.NotAllowed,
			"raw_header_get_bad_kind": abi.BadArgument, "set": 0, "add": 0, "remove": 0, "remove_absent": 0,
			"set_path": 0, "path_after": "/inspect/new",
			"init_probe": map[string]any{"header_get": abi.NotAllowed, "kv_set": abi.NotAllowed, "set_consumer": abi.NotAllowed,
				"send_response": abi.NotAllowed, "metric_define_ok": true, "log": 0, "random": 0},
			"initialize_probe": map[string]any{"request_method": "", "request_method_code": abi.NotAllowed,
				"kv_get_code": abi.NotAllowed, "log": 0, "now_ok": true},
		})
		expect(t, "on_response", got.Response, map[string]any{
			"status": 200, "x_upstream": "a", "request_method": "POST", "request_header_set": abi.NotAllowed,
			"request_body_set": abi.NotAllowed, "send_response": abi.NotAllowed, "set_status": 0,
			"set_status_bad": abi.BadArgument, "status_after": 203, "set_header": 0, "add_header": 0, "remove_header": 0,
		})
		if l := findLog(g, func(m map[string]any) bool { return m["msg"] == "sdkcheck _initialize log line" }); l == nil || l["plugin"] != "sdk" {
			t.Errorf("the _initialize log line: %v", l)
		}
	})

	t.Run("memory is collected after each hook", func(t *testing.T) {
		// One pooled instance serves every request; each request copies
		// a 32 KiB body several times (read, report, echo). Without a
		// collection per hook the instance would grow by megabytes.
		body := []byte(strings.Repeat("b", 32<<10))
		for i := range 200 {
			if r := tck.Do(t, "POST", g.URL("/gc"), nil, body); r.Status != 203 {
				t.Fatalf("request %d: %d %s", i, r.Status, r.Body)
			}
		}
		var hw uint32
		for _, p := range g.Server.Plugins().Plugins {
			if p.Name == "sdk-pooled" {
				for _, rt := range p.Routes {
					hw = max(hw, rt.MemoryHighWater)
				}
			}
		}
		t.Logf("memory high water after 200 requests of 32 KiB: %d KiB", hw>>10)
		if hw == 0 || hw > 4<<20 {
			t.Errorf("memory high water %d bytes, want under 4 MiB", hw)
		}
	})

	t.Run("local response", func(t *testing.T) {
		hits := a.Hits()
		r := tck.Do(t, "GET", g.URL("/local"), nil, nil)
		if r.Status != 202 || string(r.Body) != "local answer\n" || r.Get("X-Local") != "1" || r.Get("X-Local-Status") != "202" {
			t.Errorf("%d %v %q", r.Status, r.Headers, r.Body)
		}
		if a.Hits() != hits {
			t.Error("a local response reached the upstream")
		}
		r = tck.Do(t, "GET", g.URL("/stop"), nil, nil)
		if r.Status != 502 || findLog(g, func(m map[string]any) bool {
			return strings.Contains(str(m["error"]), "onRequest returned Stop without a successful sendResponse")
		}) == nil {
			t.Errorf("Stop without a local response: %d %s", r.Status, r.Body)
		}
	})

	t.Run("kv", func(t *testing.T) {
		kv := func(q string) map[string]any {
			t.Helper()
			return report(t, tck.Do(t, "GET", g.URL("/kv?"+q), nil, nil), 200)
		}
		expect(t, "get absent", kv("op=get&key=k1"), map[string]any{"value": nil, "code": abi.NotFound, "error": "wasmgate.kv_get: not found"})
		expect(t, "set", kv("op=set&key=k1&value=h%C3%A9llo"), map[string]any{"code": 0})
		expect(t, "get", kv("op=get&key=k1"), map[string]any{"value": "héllo", "code": 0, "error": ""})
		expect(t, "incr not a number", kv("op=incr&key=k1"), map[string]any{"code": abi.BadArgument})
		expect(t, "incr", kv("op=incr&key=n&delta=5"), map[string]any{"result": 5, "code": 0})
		expect(t, "incr again", kv("op=incr&key=n&delta=-2"), map[string]any{"result": 3, "code": 0})
		expect(t, "negative ttl", kv("op=set&key=k2&value=v&ttl_ms=-1"), map[string]any{"code": abi.BadArgument})
		expect(t, "delete", kv("op=delete&key=k1"), map[string]any{"code": 0})
		expect(t, "delete absent", kv("op=delete&key=k1"), map[string]any{"code": abi.NotFound})
		expect(t, "key too long", kv("op=get&key="+strings.Repeat("k", 257)), map[string]any{"code": abi.BadArgument})
		expect(t, "big value", kv("op=big&key=big&n=100000"), map[string]any{"len": 100000, "code": 0})
	})

	t.Run("metrics", func(t *testing.T) {
		for range 2 {
			expect(t, "metrics", report(t, tck.Do(t, "GET", g.URL("/metrics-check"), nil, nil), 200), map[string]any{
				"counter": 0, "gauge": 0, "histogram": 0, "bad_name": abi.BadArgument, "negative": abi.BadArgument,
				"bad_kind": abi.BadArgument, "unknown_id": abi.NotFound, "raw_id_ok": true, "raw_record": 0, "raw_nan": abi.BadArgument,
			})
		}
		m := g.Metrics(t)
		for _, want := range []string{
			`wasmgate_plugin_counter_total{name="as_counter",plugin="sdk"} 4`,
			`wasmgate_plugin_counter_total{name="as_raw",plugin="sdk"} 6`,
			`wasmgate_plugin_gauge{name="as_gauge",plugin="sdk"} 7`,
			`wasmgate_plugin_histogram_count{name="as_histogram",plugin="sdk"} 2`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s:\n%s", want, grepLines(m, `plugin="sdk"`))
			}
		}
	})

	t.Run("log", func(t *testing.T) {
		mark := fmt.Sprintf("m%d", time.Now().UnixNano())
		expect(t, "log", report(t, tck.Do(t, "GET", g.URL("/log?m="+mark), nil, nil), 200),
			map[string]any{"debug": 0, "info": 0, "warn": 0, "error": 0, "bad_level": abi.BadArgument})
		for msg, level := range map[string]string{
			"as-log debug " + mark: "DEBUG", "as-log info " + mark: "INFO", "as-log warn " + mark: "WARN", "as-log error " + mark: "ERROR",
			"as-console " + mark: "INFO", "as-console-warn " + mark: "WARN", "trace: as-trace " + mark + " 1.5 42.0": "DEBUG",
		} {
			l := findLog(g, func(m map[string]any) bool { return m["msg"] == msg })
			if l == nil || l["level"] != level || l["plugin"] != "sdk-log" || l["route"] != "log" {
				t.Errorf("log line %q: %v, want level %s", msg, l, level)
			}
		}
		for _, tc := range []struct{ query, said string }{
			{"fail=1", "plugin said: as-fail " + mark},
			{"abort=1", "plugin said: abort: as-abort " + mark + " at astest/testdata/sdkcheck/index.ts:"},
			{"throw=1", "plugin said: abort: as-throw " + mark + " at astest/testdata/sdkcheck/index.ts:"},
			{"oob=1", "plugin said: abort: Index out of range at ~lib/array.ts:"},
			{"long=1", "plugin said: " + strings.Repeat("é", 512) + ")"},
		} {
			r := tck.Do(t, "GET", g.URL("/fail?m="+mark+"&"+tc.query), nil, nil)
			if r.Status != 502 || !strings.Contains(string(r.Body), `"plugin":"sdk-fail"`) {
				t.Errorf("%s: %d %s, want 502 naming the plugin", tc.query, r.Status, r.Body)
			}
			if l := findLog(g, func(m map[string]any) bool { return strings.Contains(str(m["error"]), tc.said) }); l == nil {
				t.Errorf("%s: no log line with %q\n%s", tc.query, tc.said, grepLines(g.Logs.String(), "plugin said"))
			}
		}
		// fail_open skips the failing plugin.
		if r := tck.Do(t, "GET", g.URL("/open-fail?abort=1&m="+mark), nil, nil); r.Status != 200 || r.Get("X-Upstream") != "a" {
			t.Errorf("fail_open: %d %s", r.Status, r.Body)
		}
	})

	t.Run("outbound", func(t *testing.T) {
		rep := report(t, tck.Do(t, "GET", g.URL("/outbound"), nil, nil), 200)
		expect(t, "batch", rep, map[string]any{
			"result_before_batch": 0, "code": 0, "error": "", "result_size_ok": true, "result_small_ret_ok": true,
			"empty_len": 0, "no_url": -100, "no_url_error": "wasmgate: outbound request 0: empty URL",
			"malformed": abi.BadArgument, "result_after_error": 0, "too_many": abi.TooLarge,
			"bad_method": abi.BadArgument, "bad_header": abi.BadArgument,
			"encoded_len": 4 + 4 + 4 + 3 + 4 + 13 + 4 + 4,
		})
		results, _ := rep["results"].([]any)
		if len(results) != 6 {
			t.Fatalf("%d results, want 6: %v", len(results), rep)
		}
		res := func(i int) map[string]any { m, _ := results[i].(map[string]any); return m }
		var one tck.Echo
		if err := json.Unmarshal([]byte(str(res(0)["body"])), &one); err != nil || one.ID != "a" || one.Method != "POST" ||
			one.URI != "/echo/one?x=1" || one.Body != "hello" || strings.Join(one.Headers["X-Part"], ",") != "p1" {
			t.Errorf("result 0: %v (%v)", res(0), err)
		}
		expect(t, "result 0", res(0), map[string]any{"status": 200, "err": nil, "x_upstream": "a"})
		expect(t, "result 1", res(1), map[string]any{"status": 200, "x_upstream": "b"})
		expect(t, "result 2 (dead)", res(2), map[string]any{"status": abi.StatusNetwork, "err": "wasmgate: outbound connect or network error"})
		expect(t, "result 3 (not allowed)", res(3), map[string]any{"status": abi.StatusNotAllowed, "err": "wasmgate.http_batch: not allowed"})
		expect(t, "result 4 (timeout)", res(4), map[string]any{"status": abi.StatusTimeout, "err": "wasmgate: outbound request timed out"})
		expect(t, "result 5", res(5), map[string]any{"status": 404, "err": nil, "body": `{"status":404}`})
	})

	t.Run("gateway", func(t *testing.T) {
		expect(t, "consumer, claims, cache key", report(t, tck.Do(t, "GET",
			g.URL("/gateway?consumer=dave&claims=%7B%22sub%22%3A%22dave%22%7D&cache_key=k"), nil, nil), 200), map[string]any{
			"set_consumer": 0, "set_claims": 0, "cache_set_key": abi.Unavailable,
		})
		expect(t, "bad values", report(t, tck.Do(t, "GET", g.URL("/gateway?consumer=&claims=%5B1%5D"), nil, nil), 200), map[string]any{
			"set_consumer": abi.BadArgument, "set_claims": abi.BadArgument,
		})
		expect(t, "cache key on a cached route", report(t, tck.Do(t, "GET", g.URL("/cached?cache_key=k"), nil, nil), 200),
			map[string]any{"cache_set_key": 0})
		expect(t, "flags", report(t, tck.Do(t, "GET", g.URL("/gateway?flags=as-on,as-off,nope"), nil, nil), 200), map[string]any{
			"flags": map[string]any{"as-on": map[string]any{"on": true, "code": 0}, "as-off": map[string]any{"on": false, "code": 0},
				"nope": map[string]any{"on": false, "code": abi.NotFound}},
		})
		limit := func(q string) any {
			return report(t, tck.Do(t, "GET", g.URL("/gateway?"+q), nil, nil), 200)["limit"]
		}
		expect(t, "rate limit", map[string]any{
			"charge":  limit("limit=credits&key=t1&cost=3"),
			"consult": limit("limit=credits&key=t1&cost=0"),
			"unknown": limit("limit=nope&key=t1&cost=1"),
		}, map[string]any{
			"charge":  map[string]any{"code": 0, "allowed": true, "remaining": 2, "retry_ms": 0},
			"consult": map[string]any{"code": 0, "allowed": true, "remaining": 2, "retry_ms": 0},
			"unknown": map[string]any{"code": abi.NotFound, "allowed": false, "remaining": 0, "retry_ms": 0},
		})
		over, _ := limit("limit=credits&key=t1&cost=3").(map[string]any)
		if over["allowed"] != false || over["remaining"] != float64(2) || over["retry_ms"].(float64) < 3_000_000 {
			t.Errorf("over the quota: %v", over)
		}
		// The consumer reaches the access log once the request goes on.
		if r := tck.Do(t, "GET", g.URL("/gateway?consumer=erin&pass=1"), nil, nil); r.Status != 200 {
			t.Fatalf("pass: %d %s", r.Status, r.Body)
		}
		testkit.WaitFor(t, 5*time.Second, "the consumer in the access log", func() bool {
			return strings.Contains(g.Access.String(), `"consumer":"erin"`)
		})
	})

	t.Run("crypto", func(t *testing.T) {
		expect(t, "crypto", report(t, tck.Do(t, "GET", g.URL("/crypto"), nil, nil), 200), map[string]any{
			"check_key": 0, "check_key_wrong_alg": abi.BadArgument, "valid": true, "valid_code": 0,
			"tampered": false, "tampered_code": 0, "unknown_alg": false, "unknown_alg_code": abi.BadArgument,
			"garbage_key": abi.BadArgument, "b64_roundtrip": true,
			"b64url": base64.RawURLEncoding.EncodeToString([]byte("\u00ff\u00fe?")), "b64_bad": true,
			"code_sdk": -100, "not_found": abi.NotFound,
		})
	})

	t.Run("json", func(t *testing.T) {
		in := ` {"a":"x\"y\u00e9\n\ud83d\ude00","b":[1,2.5,-3e2,true,null,12345678901234567890],"c":{},"d":[]} `
		expect(t, "round trip", report(t, tck.Do(t, "POST", g.URL("/json?durations=1m30s,500ms,1.5h,0,2us,-1s,5,bad"), nil, []byte(in)), 200), map[string]any{
			"value":     map[string]any{"a": "x\"yé\n😀", "b": []any{1, 2.5, -300, true, nil, 12345678901234567890.0}, "c": map[string]any{}, "d": []any{}},
			"type":      "object",
			"durations": []int64{90e9, 500e6, 5400e9, 0, 2000, -1, -1, -1},
			"quoted":    "\"a\\\"b\\\\c\\n\\u0001é\"",
		})
		for _, tc := range []struct{ in, want string }{
			{`{"a":}`, "invalid JSON at offset 5: invalid character '}' looking for beginning of value"},
			{`{"a":1,}`, "invalid JSON at offset 7: want a string key"},
			{`[1 2]`, "invalid JSON at offset 3: want ',' or ']' after an array item"},
			{`"abc`, "invalid JSON at offset 4: unexpected end of input in a string"},
			{`01`, "invalid JSON at offset 2: invalid number"},
			{`{} x`, "invalid JSON at offset 3: unexpected data after the value"},
			{``, "invalid JSON at offset 0: unexpected end of input"},
		} {
			expect(t, tc.in, report(t, tck.Do(t, "POST", g.URL("/json"), nil, []byte(tc.in)), 200), map[string]any{"error": tc.want})
		}
	})

	t.Run("cold start", func(t *testing.T) {
		// mode fresh: a new instance (instantiate, _initialize, on_init)
		// for every request. The figures are logged, not asserted.
		for i := range 50 {
			if r := tck.Do(t, "GET", g.URL("/fresh"), nil, nil); r.Status != 200 || r.Get("X-AS-Count") != "" {
				t.Fatalf("request %d: %d %v", i, r.Status, r.Headers)
			}
		}
		var sum, count float64
		for _, l := range strings.Split(g.Metrics(t), "\n") {
			if strings.Contains(l, `plugin="as-headers-fresh"`) {
				f := strings.Fields(l)
				switch {
				case strings.HasPrefix(l, "wasmgate_plugin_instantiate_seconds_sum"):
					fmt.Sscan(f[len(f)-1], &sum)
				case strings.HasPrefix(l, "wasmgate_plugin_instantiate_seconds_count"):
					fmt.Sscan(f[len(f)-1], &count)
				}
			}
		}
		for _, p := range g.Server.Plugins().Plugins {
			if p.Name == "as-headers-fresh" {
				t.Logf("headers example, mode fresh: %d bytes, cold start (instantiate, _initialize, on_init) mean %.1f µs, "+
					"p50 %.3f ms, p99 %.3f ms (from the histogram's buckets) over %d instances; compile %.1f ms",
					p.Size, sum/max(count, 1)*1e6, p.ColdStart.P50ms, p.ColdStart.P99ms, p.ColdStart.Count, p.CompileMs)
				if p.ColdStart.Count < 50 {
					t.Errorf("%d cold starts for 50 requests in mode fresh", p.ColdStart.Count)
				}
			}
		}
	})
}

// TestConfigErrors: a config the plugin refuses (the SDK's ConfigReader
// messages, through on_init's set_error) refuses the gateway's config,
// with the plugin's words.
func TestConfigErrors(t *testing.T) {
	headers, apiKey, sdkcheck := wasmPath(t, "headers"), wasmPath(t, "api-key"), wasmPath(t, "sdkcheck")
	for _, tc := range []struct{ module, config, want string }{
		{headers, `{bogus: 1}`, `unknown field "bogus"`},
		{headers, `{request: {"X A": "1"}}`, `request: "X A" is not a valid header name`},
		{headers, `{request: {X-A: [1]}}`, `request.X-A: want a string, got list`},
		{headers, `{deny_prefix: 5}`, `field "deny_prefix": want string, got number`},
		{headers, `[1]`, `want object, got list`},
		{apiKey, `{}`, `missing "keys"`},
		{apiKey, `{keys: [{consumer: a, key: short}]}`, `keys.0: "key" of 5 bytes: want at least 16`},
		{apiKey, `{keys: [{consumer: a, key: "0123456789abcdef", extra: 1}]}`, `unknown field "keys.0.extra"`},
		{apiKey, `{keys: [{key: "0123456789abcdef"}]}`, `missing "keys.0.consumer"`},
		{sdkcheck, `{check: 5}`, `field "check": want string, got number`},
		{sdkcheck, `{echo: 1}`, `missing "check"`},
	} {
		_, err := newGateway(t, fmt.Sprintf("plugins: [{name: p, module: %q}]\nroutes: [{name: r, match: {path_prefix: /}, plugins: [{name: p, config: %s}]}]\n", tc.module, tc.config))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with %s: %v, want an error with %q", filepath.Base(tc.module), tc.config, err, tc.want)
		}
	}
}

// grepLines returns the lines of s that contain sub, for failure messages.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
