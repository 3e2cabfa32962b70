package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// pinWAT is an http-wasm guest that numbers its requests in a global and
// hands the number to handle_response as its reqCtx: handle_response traps
// when it runs on another instance than its handle_request (or on another
// request's), logs is_error, and marks the answer X-Pinned: 1.
const pinWAT = `(module
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Pinned")
  (data (i32.const 16) "01")
  (data (i32.const 32) "handle_response is_error=0")
  (global $n (mut i32) (i32.const 0))
  (func $init (drop (call $enable_features (i32.const 2))))
  (start $init)
  (func (export "handle_request") (result i64)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (i64.or (i64.shl (i64.extend_i32_u (global.get $n)) (i64.const 32)) (i64.const 1)))
  (func (export "handle_response") (param $ctx i32) (param $err i32)
    (if (i32.ne (local.get $ctx) (global.get $n)) (then unreachable))
    (i32.store8 (i32.const 57) (i32.add (i32.const 48) (local.get $err)))
    (call $log (i32.const 0) (i32.const 32) (i32.const 26))
    (if (i32.eqz (local.get $err))
      (then (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 8) (i32.const 17) (i32.const 1))))))`

// slowUpstream answers every request after d, until it is stopped.
func slowUpstream(t *testing.T, d time.Duration) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		time.Sleep(d)
		ctx.SetBodyString("upstream")
	}}
	go srv.Serve(ln) //nolint:errcheck
	var once sync.Once
	stop = func() { once.Do(func() { _ = srv.Shutdown() }) }
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

// An http-wasm guest keeps its instance from handle_request to
// handle_response, under concurrency, on both engines; a request whose
// upstream fails tells it so (is_error 1) and the client gets the
// gateway's own answer; GET /plugins shows its ABI.
func TestHTTPWasmPinning(t *testing.T) {
	guest := compileWAT(t, "pin", pinWAT)
	for _, engine := range e2eEngines() {
		t.Run(engine, func(t *testing.T) {
			addr, stop := slowUpstream(t, 20*time.Millisecond)
			g := startGateway(t, 1000, fmt.Sprintf(`plugin_runtime: {cache_dir: %q, engine: %s}
plugins:
  - {name: pin, module: %q, pool: {max_instances: 8, acquire_timeout: 10s}}
upstreams: [{name: u, targets: [{address: %s}], timeouts: {total: 2s}}]
routes:
  - {name: r, match: {path_prefix: /}, upstream: u, plugins: [{name: pin}]}
`, e2eCacheDir(t), engine, guest, addr))
			var wg sync.WaitGroup
			var mu sync.Mutex
			bad := map[string]int{}
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 4 {
						r, err := tryDo("GET", "http://"+g.ProxyAddr()+"/x", nil, nil)
						if err != nil || r.status != 200 || r.headers["X-Pinned"] != "1" || string(r.body) != "upstream" {
							mu.Lock()
							bad[fmt.Sprintf("%d %q %q %v", r.status, r.headers["X-Pinned"], r.body, err)]++
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			if len(bad) > 0 {
				t.Fatalf("answers not from one instance per request: %v", bad)
			}
			if strings.Contains(g.logs.String(), "handle_response is_error=1") {
				t.Fatal("is_error 1 before any failure")
			}

			var plugins PluginsView
			if err := json.Unmarshal(g.adminBody(t, "GET", "/plugins", nil).body, &plugins); err != nil {
				t.Fatal(err)
			}
			if p := plugins.Plugins[0]; p.ABI != "http-wasm" || strings.Join(p.Hooks, ",") != "handle_request,handle_response" {
				t.Errorf("GET /plugins: abi %q, hooks %v", p.ABI, p.Hooks)
			}

			stop()
			r := do(t, "GET", "http://"+g.ProxyAddr()+"/x", nil, nil)
			if r.status != 502 || r.headers["X-Pinned"] != "" || !bytes.Contains(r.body, []byte("upstream_")) {
				t.Fatalf("upstream down: %d %v %s, want the gateway's 502", r.status, r.headers, r.body)
			}
			waitFor(t, "handle_response told is_error=1", func() bool {
				return strings.Contains(g.logs.String(), "handle_response is_error=1")
			})
		})
	}
}

// A failing http-wasm guest answers by its failure policy like a native
// plugin, and abi: on the plugin refuses a module of the other ABI.
func TestHTTPWasmFailurePolicyAndABI(t *testing.T) {
	trap := compileWAT(t, "trap", `(module
  (import "http_handler" "get_method" (func $get_method (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64) unreachable)
  (func (export "handle_response") (param i32 i32)))`)
	up := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`plugins:
  - {name: closed, module: %q, failure_policy: fail_closed, quarantine: {after: 1000}}
  - {name: open, module: %q, failure_policy: fail_open, abi: http-wasm}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: closed, match: {path_prefix: /closed}, upstream: a, plugins: [{name: closed}]}
  - {name: open, match: {path_prefix: /open}, upstream: a, plugins: [{name: open}]}
`, trap, trap, up.addr))
	r := do(t, "GET", "http://"+g.ProxyAddr()+"/closed", nil, nil)
	if r.status != 502 || !bytes.Contains(r.body, []byte(`"closed"`)) {
		t.Errorf("fail_closed: %d %s", r.status, r.body)
	}
	if !strings.Contains(g.logs.String(), "handle_request: ") {
		t.Errorf("the failure does not name handle_request:\n%s", g.logs.String())
	}
	if r := do(t, "GET", "http://"+g.ProxyAddr()+"/open", nil, nil); r.status != 200 || r.echo(t).ID != "a" {
		t.Errorf("fail_open: %d %s", r.status, r.body)
	}

	// Hot-load and rollback: a working http-wasm version replaces the
	// trapping one; a native module is refused while abi: http-wasm; the
	// rollback brings the trapping version back.
	header := compileWAT(t, "header", `(module
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Http-Wasm")
  (func (export "handle_request") (result i64)
    (call $set (i32.const 0) (i32.const 0) (i32.const 11) (i32.const 0) (i32.const 1))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))`)
	put := func(module string) response {
		b, err := os.ReadFile(module)
		if err != nil {
			t.Fatal(err)
		}
		return g.adminBody(t, "PUT", "/plugins/open", b)
	}
	if r := put(header); r.status != 200 {
		t.Fatalf("hot-load of an http-wasm version: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", "http://"+g.ProxyAddr()+"/open", nil, nil); r.status != 200 || r.echo(t).Headers["X-Http-Wasm"] != "X" {
		t.Errorf("after the hot-load: %d %s", r.status, r.body)
	}
	if r := put(pluginPath(t, "raw-wat")); r.status != 422 || !bytes.Contains(r.body, []byte("abi: http-wasm")) {
		t.Errorf("hot-load of a native module on abi: http-wasm: %d %s", r.status, r.body)
	}
	if r := g.adminBody(t, "POST", "/plugins/open/rollback", nil); r.status != 200 {
		t.Fatalf("rollback: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", "http://"+g.ProxyAddr()+"/open", nil, nil); r.status != 200 || r.echo(t).Headers["X-Http-Wasm"] != "" {
		t.Errorf("after the rollback (fail_open, the trapping version): %d %s", r.status, r.body)
	}

	// abi: native on an http-wasm module: the config is refused at the key.
	path := filepath.Join(t.TempDir(), "wasmgate.yaml")
	body := fmt.Sprintf(baseConfig, 10) + fmt.Sprintf(`plugins:
  - name: p
    module: %q
    abi: native
`, trap)
	writeConfig(t, path, body)
	abiLine := strings.Count(body[:strings.Index(body, "abi: native")], "\n") + 1
	t.Setenv("TEST_ADMIN_TOKEN", testToken)
	_, err := New(Options{ConfigPath: path, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "is an http-wasm plugin; the config says abi: native") || !strings.Contains(err.Error(), fmt.Sprintf("wasmgate.yaml:%d:", abiLine)) {
		t.Fatalf("abi: native on an http-wasm module: %v", err)
	}
}
