package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

func needWasmtime(t *testing.T) {
	t.Helper()
	if !wasm.WasmtimeAvailable() {
		t.Skip("no wasmtime in this build (cgo)")
	}
}

// TestPluginHostFunctionsWasmtime is TestPluginHostFunctions with every
// plugin on wasmtime: the whole conformance kit passes on both engines.
func TestPluginHostFunctionsWasmtime(t *testing.T) {
	needWasmtime(t)
	tck.Run(t, tck.GoGuest(pluginPath(t, "hostcheck")), func(t *testing.T, config string) tck.Gateway {
		return kitGateway{startGateway(t, 1000, fmt.Sprintf("plugin_runtime: {cache_dir: %q, engine: wasmtime}\n", e2eCacheDir(t))+config)}
	})
}

// TestFaultGuestWasmtime: the sandbox holds on wasmtime, chosen per
// plugin beside wazero plugins: a looping guest stops at its deadline, an
// allocating one at its memory cap, a trap names the guest's functions,
// and GET /plugins says which engine each plugin runs on, before and after
// a reload that makes wasmtime the default. wasmtime's instances are in
// its pooling allocator here (plugin_runtime.wasmtime_pool_slots).
func TestFaultGuestWasmtime(t *testing.T) {
	needWasmtime(t)
	warmPlugins(t, "fault")
	up := startUpstream(t, "a")
	fault := pluginPath(t, "fault")
	config := func(engine string) string {
		return fmt.Sprintf(baseConfig, 100) + fmt.Sprintf(`plugin_runtime: {cache_dir: %q, engine: %s, wasmtime_pool_slots: 64}
plugins:
  - {name: loop, module: %[3]q, engine: wasmtime, limits: {call_timeout: 50ms}, config: {mode: loop}}
  - {name: alloc, module: %[3]q, engine: wasmtime, limits: {memory_pages: 512, call_timeout: 10s}, config: {mode: alloc}}
  - {name: trap, module: %[3]q, engine: wasmtime, config: {mode: trap}}
  - {name: ok, module: %[3]q, engine: wasmtime, config: {mode: ok, header: X-Ok}}
  - {name: ok-default, module: %[3]q, config: {mode: ok, header: X-Ok-Default}}
upstreams:
  - {name: a, targets: [{address: %[4]s}]}
routes:
  - {name: loop, match: {path_prefix: /loop}, upstream: a, plugins: [{name: loop}]}
  - {name: alloc, match: {path_prefix: /alloc}, upstream: a, plugins: [{name: alloc}]}
  - {name: trap, match: {path_prefix: /trap}, upstream: a, plugins: [{name: trap}]}
  - {name: ok, match: {path_prefix: /ok}, upstream: a, plugins: [{name: ok}, {name: ok-default}]}
`, e2eCacheDir(t), engine, fault, up.addr)
	}
	g := startGatewayConfig(t, config("wazero"))
	failed := func(path, kind string) {
		t.Helper()
		start := time.Now()
		r := do(t, "GET", g.url(path), nil, nil)
		if r.status != 502 || !strings.Contains(string(r.body), `"kind":"`+kind+`"`) {
			t.Fatalf("GET %s: %d %s, want 502 with kind %s", path, r.status, r.body, kind)
		}
		t.Logf("GET %s: %s after %v", path, kind, time.Since(start).Round(time.Millisecond))
	}
	failed("/loop", "timeout")
	failed("/alloc", "memory")
	failed("/trap", "trap")
	if l := findLog(g, func(m map[string]any) bool { return m["msg"] == "plugin failed" && m["plugin"] == "trap" }); l == nil ||
		!strings.Contains(fmt.Sprint(l["error"]), "wasm stack trace") || !strings.Contains(fmt.Sprint(l["error"]), "main.misbehave") {
		t.Errorf("trap log line: %v", l)
	}
	engines := func(defaultEngine string) {
		t.Helper()
		r := do(t, "GET", g.url("/ok"), nil, nil)
		var e echo
		_ = json.Unmarshal(r.body, &e)
		if r.status != 200 || e.Headers["X-Ok"] != "1" || e.Headers["X-Ok-Default"] != "1" {
			t.Errorf("both plugins in one chain: %d %s", r.status, r.body)
		}
		var list struct {
			Plugins []struct {
				Name, Engine, Interruption string
			} `json:"plugins"`
		}
		if err := json.Unmarshal(g.admin(t, "GET", "/plugins").body, &list); err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Plugins {
			want := "wasmtime"
			if p.Name == "ok-default" {
				want = defaultEngine
			}
			if p.Engine != want {
				t.Errorf("GET /plugins: %s runs on %q (%s), want %s", p.Name, p.Engine, p.Interruption, want)
			}
		}
	}
	engines("wazero-compiler")
	// A reload that changes plugin_runtime.engine moves the plugins that
	// name no engine.
	writeConfig(t, g.cfgPath, config("wasmtime"))
	if _, err := g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	engines("wasmtime")
}
