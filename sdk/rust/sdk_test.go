// Package rust holds the Go tests of the Rust SDK (this directory is the
// Rust crate wasmgate; see README.md). They check the crate's declarations
// against sdk/abi without a Rust toolchain, then, with Debian's rustc and
// cargo for wasm32-wasi, build the example plugins and a module importing
// every host function, load them into a real gateway and check what the
// plugins do end to end, and run the crate's own unit tests natively.
// Without the toolchain those tests skip, except with CI=true.
package rust

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

// The toolchain: Debian's, never a rustup one on PATH (which has no
// wasm32-wasi standard library). WASMGATE_CARGO and WASMGATE_RUSTC point
// elsewhere.
func toolchain(t *testing.T) (cargo, rustc string) {
	t.Helper()
	cargo, rustc = "/usr/bin/cargo", "/usr/bin/rustc"
	if v := os.Getenv("WASMGATE_CARGO"); v != "" {
		cargo = v
	}
	if v := os.Getenv("WASMGATE_RUSTC"); v != "" {
		rustc = v
	}
	for _, p := range []string{cargo, rustc} {
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, p+" not installed (apt-get install rustc cargo libstd-rust-dev-wasm32 lld)")
		}
	}
	out, err := exec.Command(rustc, "--print", "target-libdir", "--target", "wasm32-wasi").Output()
	if err != nil {
		skipOrFail(t, rustc+" has no wasm32-wasi target (apt-get install libstd-rust-dev-wasm32)")
	}
	if m, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "libstd-*.rlib")); len(m) == 0 {
		skipOrFail(t, "no wasm32-wasi standard library in "+strings.TrimSpace(string(out))+" (apt-get install libstd-rust-dev-wasm32)")
	}
	return cargo, rustc
}

// cargoEnv makes cargo use rustc and find Debian's tools first.
func cargoEnv(rustc string) []string {
	return []string{"RUSTC=" + rustc, "PATH=/usr/bin:" + os.Getenv("PATH"), "CARGO_TERM_COLOR=never"}
}

// targetDir is cargo's target directory, outside the source tree and kept
// across runs like GOCACHE (a cold build takes about 15 s); cargo rebuilds
// what changed.
func targetDir() string {
	if d := os.Getenv("WASMGATE_TEST_CACHE"); d != "" {
		return filepath.Join(d, "rust-target")
	}
	return filepath.Join(os.TempDir(), "wasmgate-test-rust-target")
}

var (
	buildOnce sync.Once
	buildErr  string
	built     map[string]string // example name -> .wasm
)

// examples builds the crate's example plugins with the README's line and
// returns their modules by name.
func examples(t *testing.T) map[string]string {
	t.Helper()
	cargo, rustc := toolchain(t)
	buildOnce.Do(func() {
		cmd := exec.Command(cargo, "build", "--offline", "--release", "--target", "wasm32-wasi", "--examples", "--target-dir", targetDir())
		cmd.Env = append(os.Environ(), cargoEnv(rustc)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Sprintf("cargo build: %v\n%s", err, out)
			return
		}
		built = map[string]string{}
		for _, name := range []string{"headers", "api_key", "json_transform", "aggregate"} {
			built[name] = filepath.Join(targetDir(), "wasm32-wasi", "release", "examples", name+".wasm")
		}
	})
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return built
}

// TestDeclarations checks src/sys.rs and src/abi.rs against sdk/abi: every
// host function with its exact signature, and the codes, constants and
// limits. It needs no Rust toolchain.
func TestDeclarations(t *testing.T) {
	sys, err := os.ReadFile("src/sys.rs")
	if err != nil {
		t.Fatal(err)
	}
	// The wasm32 extern block, before the native stubs.
	block := string(sys)
	block = block[strings.Index(block, "extern \"C\" {"):strings.Index(block, "#[cfg(not(target_arch")]
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)pub fn (\w+)\(([^)]*)\)\s*->\s*(\w+);`).FindAllStringSubmatch(block, -1) {
		var params []string
		for _, p := range strings.Split(m[2], ",") {
			if p = strings.TrimSpace(p); p != "" {
				params = append(params, rustType(t, strings.TrimSpace(p[strings.Index(p, ":")+1:])))
			}
		}
		got[m[1]] = "(" + strings.Join(params, ",") + ")->" + rustType(t, m[3])
	}
	want := map[string]string{}
	for _, f := range abi.Functions() {
		want[f.Name] = signature(f)
	}
	for name, sig := range want {
		if got[name] != sig {
			t.Errorf("sys::%s: %q, want %q", name, got[name], sig)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("sys::%s is not a host function of sdk/abi", name)
		}
	}

	src, err := os.ReadFile("src/abi.rs")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, m := range regexp.MustCompile(`pub const (\w+): [^=]+= ([^;]+);`).FindAllStringSubmatch(string(src), -1) {
		consts[m[1]] = strings.Trim(m[2], `"`)
	}
	for name, v := range map[string]int64{
		"VERSION": abi.Version, "CONTINUE": abi.Continue, "STOP": abi.Stop,
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
		if got := evalConst(t, consts[name]); got != v {
			t.Errorf("abi::%s = %q (%d), want %d", name, consts[name], got, v)
		}
	}
	if consts["MODULE_NAME"] != abi.ModuleName || consts["VERSION_MARKER"] != abi.VersionMarker {
		t.Errorf("MODULE_NAME %q, VERSION_MARKER %q", consts["MODULE_NAME"], consts["VERSION_MARKER"])
	}
	var names []string
	for _, m := range regexp.MustCompile(`pub const \w+: &str = "(\w+)";`).FindAllStringSubmatch(string(src[strings.Index(string(src), "pub mod func"):]), -1) {
		names = append(names, m[1])
	}
	var wantNames []string
	for _, f := range abi.Functions() {
		wantNames = append(wantNames, f.Name)
	}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("abi::func names %v, want %v", names, wantNames)
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

// rustType is the wasm type of a Rust parameter type: pointers are i32.
func rustType(t *testing.T, ty string) string {
	switch {
	case ty == "i32" || strings.HasPrefix(ty, "*const ") || strings.HasPrefix(ty, "*mut "):
		return "i32"
	case ty == "i64" || ty == "f64":
		return ty
	}
	t.Errorf("unexpected Rust type %q in an import", ty)
	return ty
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
// reactor (_initialize, no _start), the marker, exactly the hooks plugin!
// was given, and imports of "wasmgate" and "wasi_snapshot_preview1" only.
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
		// rustc's cdylib wraps every export to run the constructors on each
		// call unless _initialize takes them over: no wrappers left.
		b, _ := os.ReadFile(mods[name])
		if strings.Contains(string(b), "command_export") {
			t.Errorf("%s has command_export wrappers: the constructors would run on every hook call", name)
		}
	}
}

// TestImportSignatures builds a plugin that refers to every function of
// wasmgate::sys, as a crate depending on the SDK by path with its exports
// written by hand (and reactor!), and has the gateway's loader check the
// signatures the compiler gave them and the module's shape.
func TestImportSignatures(t *testing.T) {
	cargo, rustc := toolchain(t)
	dir := t.TempDir()
	sdk, _ := filepath.Abs(".")
	var refs strings.Builder
	for _, f := range abi.Functions() {
		fmt.Fprintf(&refs, "        wasmgate::sys::%s as usize,\n", f.Name)
	}
	files := map[string]string{
		"Cargo.toml": fmt.Sprintf(`[package]
name = "imports"
version = "0.0.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmgate = { path = %q }
`, sdk),
		"src/lib.rs": fmt.Sprintf(`wasmgate::reactor!();

static mut SINK: [usize; %d] = [0; %[1]d];

#[no_mangle]
pub extern "C" fn on_init(_config_len: i32) -> i32 {
    let fns = [
%s    ];
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!(SINK), fns) };
    0
}
`, len(abi.Functions()), refs.String()),
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(targetDir(), "imports")
	run(t, dir, cargoEnv(rustc), cargo, "build", "--offline", "--release", "--target", "wasm32-wasi", "--target-dir", target)
	info := inspect(t, filepath.Join(target, "wasm32-wasi", "release", "imports.wasm"))
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
	b, _ := os.ReadFile(filepath.Join(target, "wasm32-wasi", "release", "imports.wasm"))
	if strings.Contains(string(b), "command_export") {
		t.Error("reactor! left command_export wrappers")
	}
}

// TestNativeUnitTests runs the crate's own tests (JSON, batch codec, query
// parsing, buffer convention, checks made before a host call) natively.
func TestNativeUnitTests(t *testing.T) {
	if testing.Short() {
		t.Skip("a native cargo build; skipped in -short mode")
	}
	cargo, rustc := toolchain(t)
	out := run(t, ".", cargoEnv(rustc), cargo, "test", "--offline", "--target-dir", filepath.Join(targetDir(), "native"))
	if !strings.Contains(out, "test result: ok.") {
		t.Fatalf("cargo test:\n%s", out)
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
  - name: rs-headers
    module: %q
    limits: {call_timeout: 5s}
    config: {request: {X-From-Rust: "yes", X-Num: 7}, response: {X-Served-By: rust}, deny_prefix: /headers/private}
  - name: rs-api-key
    module: %q
    limits: {call_timeout: 5s}
    config:
      keys:
        - {consumer: reader, key: %q, scope: "orders:read"}
        - {consumer: writer, key: %q, scope: "orders:read orders:write"}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - {name: headers, match: {path_prefix: /headers}, upstream: a, plugins: [{name: rs-headers}]}
  - {name: open, match: {path_prefix: /open}, upstream: a, plugins: [{name: rs-api-key}]}
  - name: orders
    match: {path_prefix: /orders}
    upstream: a
    plugins: [{name: rs-api-key}]
    authorize: {require_scopes: ["orders:write"]}
`, mods["headers"], mods["api_key"], readerKey, writerKey, up.Addr)))

	t.Run("headers both ways", func(t *testing.T) {
		var counts []int
		for _, method := range []string{"GET", "POST"} {
			r := tck.Do(t, method, g.url("/headers/x?q=1"), nil, []byte("b"))
			var e tck.Echo
			r.JSON(t, &e)
			if r.Status != 200 || e.Headers["X-From-Rust"][0] != "yes" || e.Headers["X-Num"][0] != "7" || e.URI != "/headers/x?q=1" {
				t.Fatalf("%s: %d, upstream saw %+v", method, r.Status, e)
			}
			n, err := strconv.Atoi(e.Headers["X-Rust-Count"][0])
			if err != nil {
				t.Fatalf("X-Rust-Count %q", e.Headers["X-Rust-Count"])
			}
			counts = append(counts, n)
			if r.Get("X-Served-By") != "rust" || r.Get("X-Rust-Method") != method || r.Get("X-Rust-Status") != "200" || r.Get("X-Upstream") != "a" {
				t.Errorf("%s: response headers %v", method, r.Headers)
			}
		}
		if counts[1] != counts[0]+1 {
			t.Errorf("X-Rust-Count %v: the KV counter must go up by one per request", counts)
		}
	})

	t.Run("local response", func(t *testing.T) {
		hits := up.Hits()
		r := tck.Do(t, "GET", g.url("/headers/private/1"), nil, nil)
		if r.Status != 403 || string(r.Body) != `{"error":"denied by the rust plugin"}`+"\n" ||
			r.Get("Content-Type") != "application/json" || r.Get("X-Served-By") != "rust" {
			t.Fatalf("%d %v %q", r.Status, r.Headers, r.Body)
		}
		if r.Get("X-Rust-Method") != "" {
			t.Error("on_response ran for the plugin that answered itself")
		}
		if up.Hits() != hits {
			t.Error("the upstream was called for a local response")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		m := g.metrics(t)
		re := regexp.MustCompile(`wasmgate_plugin_counter_total\{[^}]*\} (\d+)`)
		found := false
		for _, l := range strings.Split(m, "\n") {
			if strings.Contains(l, `plugin="rs-headers"`) && strings.Contains(l, `name="requests"`) {
				if sm := re.FindStringSubmatch(l); sm != nil && sm[1] != "0" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no requests counter of rs-headers in /metrics")
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

// probeModule builds testdata/probe, a test plugin that fails in each way a
// hook can or reports what the SDK's wrappers returned.
func probeModule(t *testing.T) string {
	t.Helper()
	cargo, rustc := toolchain(t)
	target := filepath.Join(targetDir(), "probe")
	run(t, "testdata/probe", cargoEnv(rustc), cargo, "build", "--offline", "--release", "--target", "wasm32-wasi", "--target-dir", target)
	return filepath.Join(target, "wasm32-wasi", "release", "probe.wasm")
}

// TestProbe drives the SDK's wrappers through a real gateway with
// testdata/probe: failures (an error, an error with the message the hook
// recorded itself, a panic, Stop without a local response) and how they
// reach the log, the Stop the SDK makes of a
// Continue after send_response, reads of the request (method, path, query,
// client address, repeated headers, body and body ranges), the KV store,
// randomness and time, the codes of the gateway functions, the response
// functions in on_response, and an outbound batch.
func TestProbe(t *testing.T) {
	mod := probeModule(t)
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

	testkit.WaitFor(t, 10*time.Second, "the log line of Plugin::initialize", func() bool { return logged("probe initialize: time ok") })
	for _, c := range []struct{ path, log string }{
		{"/probe/fail", "told to fail"},
		{"/probe/recorded", "plugin said: recorded by the hook itself)"}, // HookError::recorded keeps it
		{"/probe/panic", "panic: panicked at 'boom at /probe/panic'"},
		{"/probe/stop", "on_request returned Action::Stop without a successful send_response"},
	} {
		r := tck.Do(t, "GET", g.url(c.path), nil, nil)
		if r.Status != 502 || !strings.Contains(string(r.Body), "probe") {
			t.Errorf("%s: %d %s, want the 502 of a failed plugin", c.path, r.Status, r.Body)
		}
		testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%q in the log", c.log), func() bool { return logged(c.log) })
	}

	hits := up.Hits()
	if r := tck.Do(t, "GET", g.url("/probe/send-then-continue"), nil, nil); r.Status != 201 || string(r.Body) != "made" {
		t.Errorf("Continue after send_response: %d %q, want the local response", r.Status, r.Body)
	}
	if up.Hits() != hits {
		t.Error("the upstream was called after send_response")
	}

	r := tck.Do(t, "POST", g.url("/probe/report?q=a%20b&x=1"), []string{"X-Multi", "1", "X-Multi", "2"}, []byte("abcdefgh"))
	if r.Status != 200 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	tck.EqJSON(t, "report", string(r.Body), `{
		"method": "POST", "path": "/probe/report", "query": "q=a%20b&x=1", "q": "a b", "client_ip": "127.0.0.1",
		"multi": ["1", "2"], "multi_names": ["X-Multi"], "absent": true,
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
