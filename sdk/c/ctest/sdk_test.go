// Package ctest holds the Go tests of the C SDK (wasmgate.h and wasmgate.c
// in sdk/c; see its README.md), in a directory of their own because Go
// refuses a package directory holding .c files without cgo. They check the
// header's declarations against sdk/abi without a C toolchain, then, with
// Debian's clang, lld and wasi-libc, build the example plugins and a module
// importing every host function, load them into a real gateway and check
// what the plugins do end to end, and build and run the helpers' unit tests
// (tests/unit.c) natively. Without the toolchain those tests skip, except
// with CI=true.
package ctest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/testkit"
	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/abi"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

// packages is what to install for the toolchain (Debian 12).
const packages = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"

// cflags are the README's flags for a plugin, with every warning an error.
var cflags = []string{"--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wl,--strip-debug", "-Wall", "-Wextra", "-Werror", "-I", "."}

var (
	probeOnce sync.Once
	probeErr  string
)

// clang returns the compiler (WASMGATE_CLANG, else clang on PATH) once it
// has built a WASI reactor that uses libc, or skips the test.
func clang(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("WASMGATE_CLANG")
	if cc == "" {
		p, err := exec.LookPath("clang")
		if err != nil {
			skipOrFail(t, "clang not installed ("+packages+")")
		}
		cc = p
	}
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmgate-c-probe")
		if err != nil {
			probeErr = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "probe.c")
		_ = os.WriteFile(src, []byte("#include <stdio.h>\n#include <stdlib.h>\n"+
			"__attribute__((export_name(\"probe\"))) int probe(int n) { char b[16]; char *p = malloc(n); "+
			"int r = snprintf(b, sizeof b, \"%d\", n) + (p != 0); free(p); return r; }\n"), 0o644)
		cmd := exec.Command(cc, "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-o", filepath.Join(dir, "probe.wasm"), src)
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Sprintf("%s cannot build a WASI reactor (%s): %v\n%s", cc, packages, err, out)
		}
	})
	if probeErr != "" {
		skipOrFail(t, probeErr)
	}
	return cc
}

// workDir holds the modules the tests build; TestMain removes it.
var workDir string

func TestMain(m *testing.M) {
	// Every path below is relative to sdk/c, where the SDK is.
	if err := os.Chdir(".."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d, err := os.MkdirTemp("", "wasmgate-test-c")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// build compiles sources (relative to sdk/c, the working directory) with wasmgate.c, with the
// README's flags, into the plugin name.wasm and returns its path.
func build(t *testing.T, name string, sources ...string) string {
	t.Helper()
	cc := clang(t)
	out := filepath.Join(workDir, name+".wasm")
	args := append(append(append([]string{}, cflags...), "-o", out), sources...)
	run(t, ".", nil, cc, append(args, "wasmgate.c")...)
	return out
}

var (
	examplesOnce sync.Once
	exampleMods  map[string]string
)

// examples builds the example plugins once per test binary.
func examples(t *testing.T) map[string]string {
	t.Helper()
	clang(t)
	examplesOnce.Do(func() {
		m := map[string]string{}
		for _, name := range []string{"headers", "api_key", "json_transform", "aggregate"} {
			m[name] = build(t, name, "examples/"+name+".c")
		}
		exampleMods = m
	})
	if exampleMods == nil {
		t.Fatal("the examples did not build (see the first test that built them)")
	}
	return exampleMods
}

// TestDeclarations checks wasmgate.h against sdk/abi: every host function
// with its exact signature and import name, and the codes, constants and
// limits. It needs no C toolchain.
func TestDeclarations(t *testing.T) {
	h, err := os.ReadFile("wasmgate.h")
	if err != nil {
		t.Fatal(err)
	}
	src := string(h)
	got := map[string]string{}
	re := regexp.MustCompile(`(?s)WASMGATE_IMPORT\((\w+)\)\s*(\w+)\s+wasmgate_(\w+)\(([^)]*)\);`)
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		if m[1] != m[3] {
			t.Errorf("wasmgate_%s imports %q", m[3], m[1])
		}
		var params []string
		for _, p := range strings.Split(m[4], ",") {
			if p = strings.TrimSpace(p); p != "" && p != "void" {
				params = append(params, cType(t, p))
			}
		}
		got[m[1]] = "(" + strings.Join(params, ",") + ")->" + cType(t, m[2])
	}
	want := map[string]string{}
	for _, f := range abi.Functions() {
		want[f.Name] = signature(f)
	}
	for name, sig := range want {
		if got[name] != sig {
			t.Errorf("wasmgate_%s: %q, want %q", name, got[name], sig)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("wasmgate_%s is not a host function of sdk/abi", name)
		}
	}

	defs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#define WASMGATE_(\w+) \(?(-?\d+(?: << \d+)?)\)?`).FindAllStringSubmatch(src, -1) {
		defs[m[1]] = m[2]
	}
	for name, v := range map[string]int64{
		"ABI_VERSION": abi.Version, "CONTINUE": abi.Continue, "STOP": abi.Stop,
		"NOT_FOUND": abi.NotFound, "BAD_ARGUMENT": abi.BadArgument, "NOT_ALLOWED": abi.NotAllowed,
		"TOO_LARGE": abi.TooLarge, "UNAVAILABLE": abi.Unavailable,
		"MIN_STATUS": abi.MinStatus, "MAX_STATUS": abi.MaxStatus,
		"KIND_REQUEST": abi.KindRequest, "KIND_RESPONSE": abi.KindResponse,
		"LOG_DEBUG": abi.LogDebug, "LOG_INFO": abi.LogInfo, "LOG_WARN": abi.LogWarn, "LOG_ERROR": abi.LogError,
		"METRIC_COUNTER": abi.MetricCounter, "METRIC_GAUGE": abi.MetricGauge, "METRIC_HISTOGRAM": abi.MetricHistogram,
		"STATUS_TIMEOUT": abi.StatusTimeout, "STATUS_NETWORK": abi.StatusNetwork,
		"STATUS_NOT_ALLOWED": abi.StatusNotAllowed, "STATUS_OTHER": abi.StatusOther,
		"ALG_RS256": abi.AlgRS256, "ALG_PS256": abi.AlgPS256, "ALG_ES256": abi.AlgES256, "ALG_EDDSA": abi.AlgEdDSA,
		"MAX_ERROR_MESSAGE": abi.MaxErrorMessage, "MAX_LOG_MESSAGE": abi.MaxLogMessage, "MAX_KV_KEY": abi.MaxKVKey,
		"MAX_METRICS": abi.MaxMetrics, "MAX_METRIC_NAME": abi.MaxMetricName, "MAX_BATCH": abi.MaxBatch,
		"MAX_BATCH_BYTES": abi.MaxBatchBytes, "MAX_BATCH_HEADERS": abi.MaxBatchHeaders,
		"MAX_CONSUMER": abi.MaxConsumer, "MAX_CACHE_KEY": abi.MaxCacheKey, "MAX_CLAIMS": abi.MaxClaims,
		"MAX_VERIFY_KEY": abi.MaxVerifyKey, "MAX_VERIFY_MESSAGE": abi.MaxVerifyMessage,
	} {
		if got := evalConst(t, defs[name]); got != v {
			t.Errorf("WASMGATE_%s = %q (%d), want %d", name, defs[name], got, v)
		}
	}
}

// signature writes a function's signature as "(i32,i64)->i32".
func signature(f abi.Func) string {
	var p, r []string
	for _, v := range f.Params {
		p = append(p, v.String())
	}
	for _, v := range f.Results {
		r = append(r, v.String())
	}
	return "(" + strings.Join(p, ",") + ")->" + strings.Join(r, ",")
}

// cType is the wasm type of a C parameter or result: pointers (and the
// array parameter of rate_limit) are i32.
func cType(t *testing.T, decl string) string {
	switch {
	case strings.Contains(decl, "*") || strings.Contains(decl, "["):
		return "i32"
	case strings.HasPrefix(decl, "int32_t"):
		return "i32"
	case strings.HasPrefix(decl, "int64_t"):
		return "i64"
	case strings.HasPrefix(decl, "double"):
		return "f64"
	}
	t.Errorf("unexpected C type in %q", decl)
	return decl
}

// evalConst evaluates an integer constant: N, -N or A << B.
func evalConst(t *testing.T, s string) int64 {
	if a, b, ok := strings.Cut(s, "<<"); ok {
		return evalConst(t, strings.TrimSpace(a)) << evalConst(t, strings.TrimSpace(b))
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Errorf("constant %q: %v", s, err)
	}
	return v
}

// inspect reads a module as the gateway does at load, failing the test on
// any ABI violation.
func inspect(t *testing.T, path string) wasm.ModuleInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := wasm.Inspect(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return info
}

// TestModuleShape checks what the examples export and import: a WASI
// reactor (_initialize, no _start), the marker, exactly the hooks they
// define, and imports of "wasmgate" and "wasi_snapshot_preview1" only.
func TestModuleShape(t *testing.T) {
	mods := examples(t)
	for name, hooks := range map[string]string{"headers": "on_init,on_request,on_response", "api_key": "on_init,on_request"} {
		info := inspect(t, mods[name])
		if !info.Reactor || info.Command || info.ABIVersion != 1 || info.Hooks.String() != hooks {
			t.Errorf("%s: reactor %v, command %v, ABI v%d, hooks %s; want a reactor of ABI v1 with %s",
				name, info.Reactor, info.Command, info.ABIVersion, info.Hooks, hooks)
		}
		for _, im := range info.Imports {
			if im.Module != abi.ModuleName && im.Module != "wasi_snapshot_preview1" {
				t.Errorf("%s imports %s.%s", name, im.Module, im.Name)
			}
		}
	}
}

// TestImportSignatures builds a plugin that refers to every host function
// of wasmgate.h and has the gateway's loader check the signatures the
// compiler gave them.
func TestImportSignatures(t *testing.T) {
	clang(t)
	var refs strings.Builder
	for _, f := range abi.Functions() {
		fmt.Fprintf(&refs, "    (void (*)(void))wasmgate_%s,\n", f.Name)
	}
	src := filepath.Join(t.TempDir(), "imports.c")
	text := fmt.Sprintf(`#include "wasmgate.h"

static void (*volatile sink[])(void) = {
%s};

/* Never called: its volatile read keeps every import. */
WASMGATE_EXPORT(on_init) int32_t on_init(int32_t config_len) {
    return sink[(uint32_t)config_len %% %d] == 0;
}
`, refs.String(), len(abi.Functions()))
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	info := inspect(t, build(t, "imports", src))
	var got []string
	for _, im := range info.Imports {
		if im.Module == abi.ModuleName {
			got = append(got, im.Name)
		}
	}
	if len(got) != len(abi.Functions()) {
		t.Errorf("the module imports %d host functions, want all %d: %v", len(got), len(abi.Functions()), got)
	}
	if !info.Reactor || info.ABIVersion != 1 || info.Hooks.String() != "on_init" {
		t.Errorf("reactor %v, ABI v%d, hooks %s", info.Reactor, info.ABIVersion, info.Hooks)
	}
}

// TestNativeUnitTests builds tests/unit.c with wasmgate.c natively (with
// AddressSanitizer and UBSan when they link) and runs it.
func TestNativeUnitTests(t *testing.T) {
	cc := clang(t)
	exe := filepath.Join(t.TempDir(), "unit")
	args := []string{"-g", "-O1", "-Wall", "-Wextra", "-Werror", "-I", ".", "-o", exe, "tests/unit.c", "wasmgate.c"}
	san := append([]string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all"}, args...)
	if out, err := exec.Command(cc, san...).CombinedOutput(); err != nil {
		t.Logf("without sanitizers (%v: %s)", err, strings.TrimSpace(string(out)))
		run(t, ".", nil, cc, args...)
	}
	out := run(t, ".", nil, exe)
	if !strings.Contains(out, " passed, 0 failed") {
		t.Fatalf("tests/unit.c:\n%s", out)
	}
}

// Keys of the api_key example in the tests' config.
const (
	readerKey = "reader-key-0123456789"
	writerKey = "writer-key-0123456789"
)

// TestExamplesEndToEnd loads both example plugins into a gateway and
// checks what a client and the upstream see.
func TestExamplesEndToEnd(t *testing.T) {
	mods := examples(t)
	up := tck.StartUpstream(t, "a")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`
plugins:
  - name: c-headers
    module: %q
    limits: {call_timeout: 5s}
    config: {request: {X-From-C: "yes"}, response: {X-Served-By: c}, deny_prefix: /headers/private}
  - name: c-api-key
    module: %q
    limits: {call_timeout: 5s}
    config:
      keys:
        - {consumer: reader, key: %q, scope: "orders:read"}
        - {consumer: writer, key: %q, scope: "orders:read orders:write"}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - {name: headers, match: {path_prefix: /headers}, upstream: a, plugins: [{name: c-headers}]}
  - {name: open, match: {path_prefix: /open}, upstream: a, plugins: [{name: c-api-key}]}
  - name: orders
    match: {path_prefix: /orders}
    upstream: a
    plugins: [{name: c-api-key}]
    authorize: {require_scopes: ["orders:write"]}
  - {name: chain, match: {path_prefix: /chain}, upstream: a, plugins: [{name: c-api-key}, {name: c-headers}]}
`, mods["headers"], mods["api_key"], readerKey, writerKey, up.Addr)))

	t.Run("headers both ways", func(t *testing.T) {
		var counts []int
		for _, method := range []string{"GET", "POST"} {
			r := tck.Do(t, method, g.url("/headers/x?q=1"), nil, []byte("b"))
			var e tck.Echo
			r.JSON(t, &e)
			if r.Status != 200 || strings.Join(e.Headers["X-From-C"], ",") != "yes" || e.URI != "/headers/x?q=1" {
				t.Fatalf("%s: %d, upstream saw %+v", method, r.Status, e)
			}
			n, err := strconv.Atoi(strings.Join(e.Headers["X-C-Count"], ","))
			if err != nil {
				t.Fatalf("X-C-Count %q", e.Headers["X-C-Count"])
			}
			counts = append(counts, n)
			if r.Get("X-Served-By") != "c" || r.Get("X-C-Method") != method || r.Get("X-C-Status") != "200" || r.Get("X-Upstream") != "a" {
				t.Errorf("%s: response headers %v", method, r.Headers)
			}
		}
		if counts[1] != counts[0]+1 {
			t.Errorf("X-C-Count %v: the KV counter must go up by one per request", counts)
		}
	})

	t.Run("local response", func(t *testing.T) {
		hits := up.Hits()
		r := tck.Do(t, "GET", g.url("/headers/private/1"), nil, nil)
		if r.Status != 403 || string(r.Body) != `{"error":"denied by the c plugin"}`+"\n" ||
			r.Get("Content-Type") != "application/json" || r.Get("X-Served-By") != "c" {
			t.Fatalf("%d %v %q", r.Status, r.Headers, r.Body)
		}
		if r.Get("X-C-Method") != "" {
			t.Error("on_response ran for the plugin that answered itself")
		}
		if up.Hits() != hits {
			t.Error("the upstream was called for a local response")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		re := regexp.MustCompile(`wasmgate_plugin_counter_total\{[^}]*\} (\d+)`)
		found := false
		for _, l := range strings.Split(g.metrics(t), "\n") {
			if strings.Contains(l, `plugin="c-headers"`) && strings.Contains(l, `name="requests"`) {
				if sm := re.FindStringSubmatch(l); sm != nil && sm[1] != "0" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no requests counter of c-headers in /metrics")
		}
	})

	t.Run("api key", func(t *testing.T) {
		for _, c := range []struct {
			name, key string
			status    int
			body      string
		}{
			{"missing", "", 401, `{"error":"missing API key"}`},
			{"blank", "  ", 401, `{"error":"missing API key"}`},
			{"unknown", "not-a-key-0123456789", 401, `{"error":"invalid API key"}`},
			{"a prefix of a key", readerKey[:16], 401, `{"error":"invalid API key"}`},
		} {
			var h []string
			if c.key != "" {
				h = []string{"X-Api-Key", c.key}
			}
			r := tck.Do(t, "GET", g.url("/open/x"), h, nil)
			if r.Status != c.status || strings.TrimSpace(string(r.Body)) != c.body ||
				r.Get("WWW-Authenticate") != `ApiKey realm="wasmgate", header="X-Api-Key"` {
				t.Errorf("%s: %d %q %v", c.name, r.Status, r.Body, r.Headers)
			}
		}
		r := tck.Do(t, "GET", g.url("/open/x"), []string{"X-Api-Key", " " + readerKey, "X-Consumer", "forged"}, nil)
		var e tck.Echo
		r.JSON(t, &e)
		if r.Status != 200 || strings.Join(e.Headers["X-Consumer"], ",") != "reader" || e.Headers["X-Api-Key"] != nil {
			t.Errorf("a good key: %d, upstream saw %v", r.Status, e.Headers)
		}
	})

	t.Run("a chain of both", func(t *testing.T) {
		// api_key answers first: c-headers then never runs, either way.
		r := tck.Do(t, "GET", g.url("/chain/x"), nil, nil)
		if r.Status != 401 || r.Get("X-Served-By") != "" {
			t.Errorf("no key: %d %v", r.Status, r.Headers)
		}
		r = tck.Do(t, "GET", g.url("/chain/x"), []string{"X-Api-Key", writerKey}, nil)
		var e tck.Echo
		r.JSON(t, &e)
		if r.Status != 200 || strings.Join(e.Headers["X-Consumer"], ",") != "writer" ||
			strings.Join(e.Headers["X-From-C"], ",") != "yes" || r.Get("X-Served-By") != "c" {
			t.Errorf("a good key: %d %v, upstream saw %v", r.Status, r.Headers, e.Headers)
		}
	})

	t.Run("claims and consumer reach authorize", func(t *testing.T) {
		r := tck.Do(t, "GET", g.url("/orders/1"), []string{"X-Api-Key", readerKey}, nil)
		if r.Status != 403 || !strings.Contains(r.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("reader on /orders: %d %v %s", r.Status, r.Headers, r.Body)
		}
		r = tck.Do(t, "GET", g.url("/orders/1"), []string{"X-Api-Key", writerKey}, nil)
		if r.Status != 200 {
			t.Errorf("writer on /orders: %d %s", r.Status, r.Body)
		}
		testkit.WaitFor(t, 10*time.Second, "the access log line of the writer's request", func() bool {
			for _, l := range g.accessLines() {
				if l["consumer"] == "writer" && l["route"] == "orders" {
					return true
				}
			}
			return false
		})
	})
}

// TestConfigErrors checks that on_init's errors reach the operator: the
// gateway refuses the config with the plugin's message.
func TestConfigErrors(t *testing.T) {
	mods := examples(t)
	for _, c := range []struct{ plugin, config, want string }{
		{"api_key", `{keys: []}`, `missing "keys": list {consumer, key} pairs`},
		{"api_key", `{keys: [{consumer: a, key: short}]}`, `keys.0: "key" of 5 bytes: want at least 16`},
		{"api_key", `{keys: [{consumer: a, key: 0123456789abcdef, typo: 1}]}`, `unknown field "keys.0.typo"`},
		{"api_key", `{keys: [{consumer: 5, key: 0123456789abcdef}]}`, `field "keys.0.consumer": want string, got number`},
		{"headers", `{deny_prefix: private}`, `"deny_prefix" must start with "/"`},
		{"headers", `{request: {"bad name": x}}`, `request: "bad name" is not a valid header name`},
		{"headers", `{typo: 1}`, `unknown field "typo"`},
	} {
		_, err := newGateway(t, gatewayConfig(fmt.Sprintf(`
plugins:
  - {name: p, module: %q, config: %s}
routes:
  - {name: r, match: {path_prefix: /}, plugins: [{name: p}]}
`, mods[c.plugin], c.config)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %s: %v; want an error holding %q", c.plugin, c.config, err, c.want)
		}
	}
}

// TestProbe drives the SDK's helpers through a real gateway with
// testdata/probe.c: constructors running in _initialize, failures (wasmgate_fail, a trap) and how they reach the
// log, reads of the request (method, path, query and query parameters,
// client address, repeated headers, header names, body and body ranges),
// the KV store, randomness and time, the codes of the gateway functions,
// the response functions in on_response, and an outbound batch.
func TestProbe(t *testing.T) {
	mod := build(t, "probe", "ctest/testdata/probe.c")
	up := tck.StartUpstream(t, "a")
	dead := tck.DeadAddr(t)
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`
plugins:
  - {name: probe, module: %q, limits: {call_timeout: 5s}}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - name: probe
    match: {path_prefix: /probe}
    upstream: a
    plugins: [{name: probe, outbound: {upstreams: [a], hosts: [%q]}}]
`, mod, up.Addr, dead)))
	logged := func(text string) bool {
		for _, l := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(l, text) && strings.Contains(l, `"plugin":"probe"`) {
				return true
			}
		}
		return false
	}
	testkit.WaitFor(t, 10*time.Second, "the log line of a constructor", func() bool { return logged("probe constructor: time ok") })
	testkit.WaitFor(t, 10*time.Second, "the stdout line of a constructor", func() bool { return logged("probe stdout") })
	for _, c := range []struct{ path, log string }{
		{"/probe/fail", "told to fail"},
		{"/probe/trap", "unreachable"},
	} {
		r := tck.Do(t, "GET", g.url(c.path), nil, nil)
		if r.Status != 502 || !strings.Contains(string(r.Body), "probe") {
			t.Errorf("%s: %d %s, want the 502 of a failed plugin", c.path, r.Status, r.Body)
		}
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%q in the log", c.log), func() bool { return logged(c.log) })
	}

	r := tck.Do(t, "POST", g.url("/probe/report?q=a%20b&x=1"), []string{"X-Multi", "1", "X-Multi", "2"}, []byte("abcdefgh"))
	if r.Status != 200 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	tck.EqJSON(t, "report", string(r.Body), `{
		"method": "POST", "path": "/probe/report", "query": "q=a%20b&x=1", "q": "a b", "client_ip": "127.0.0.1",
		"multi": ["1", "2"], "multi_names": 2, "absent": true,
		"body": "abcdefgh", "range": "cde", "size": 8,
		"kv": "v1", "kv_delete": "ok", "kv_gone": "NOT_FOUND", "kv_incr": 5, "random": true, "now": true,
		"flag": "NOT_FOUND", "limit": "NOT_FOUND", "cache_key": "UNAVAILABLE",
		"claims_not_object": "BAD_ARGUMENT", "claims": "ok", "consumer": "ok", "bad_key": "BAD_ARGUMENT",
		"bad_path": "BAD_ARGUMENT", "bad_header": "BAD_ARGUMENT", "response_status": 299}`)

	r = tck.Do(t, "GET", g.url("/probe/x/rewrite-body"), nil, nil)
	var got struct {
		Status   int    `json:"status"`
		Upstream string `json:"upstream"`
	}
	r.JSON(t, &got)
	var e tck.Echo
	if err := json.Unmarshal([]byte(got.Upstream), &e); err != nil || r.Status != 203 || got.Status != 200 ||
		e.URI != "/probe/x/rewrite-body" || r.Get("X-Upstream") != "" {
		t.Errorf("on_response: %d %v %s (%v)", r.Status, r.Headers, r.Body, err)
	}

	r = tck.Do(t, "GET", g.url("/probe/fetch"), []string{"X-Fetch", "upstream://a/echo/one http://" + dead + "/x http://127.0.0.1:1/no"}, nil)
	var results []struct {
		Status   int    `json:"status"`
		Error    string `json:"error"`
		Upstream string `json:"upstream"`
		Body     string `json:"body"`
	}
	r.JSON(t, &results)
	if len(results) != 3 {
		t.Fatalf("fetch: %d %s", r.Status, r.Body)
	}
	if err := json.Unmarshal([]byte(results[0].Body), &e); err != nil || results[0].Status != 200 || results[0].Upstream != "a" ||
		e.Method != "POST" || e.Body != "hi" || strings.Join(e.Headers["X-Part"], ",") != "p" {
		t.Errorf("fetch upstream://a: %+v (%v)", results[0], err)
	}
	if results[1].Status != -2 || results[1].Error != "wasmgate: outbound connect or network error" {
		t.Errorf("fetch of a dead address: %+v", results[1])
	}
	if results[2].Status != -3 || results[2].Error != "wasmgate.http_batch: not allowed" {
		t.Errorf("fetch of a destination not allowed: %+v", results[2])
	}
}
