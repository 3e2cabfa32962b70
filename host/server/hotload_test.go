package server

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wasmgate/wasmgate/host/wasm"
)

// rawWatVariant builds plugins/raw-wat with another header value, a second
// version of the same plugin.
func rawWatVariant(t testing.TB, value string) []byte {
	t.Helper()
	src, err := os.ReadFile("../../plugins/raw-wat/plugin.wat")
	if err != nil {
		t.Fatal(err)
	}
	const orig = `(data (i32.const 0x10) "1")`
	if !strings.Contains(string(src), orig) {
		t.Fatalf("plugin.wat no longer has %s", orig)
	}
	dir := t.TempDir()
	wat := filepath.Join(dir, "v.wat")
	if err := os.WriteFile(wat, []byte(strings.Replace(string(src), orig, `(data (i32.const 0x10) "`+value+`")`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "v.wasm")
	if b, err := exec.Command("wat2wasm", wat, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (g *gateway) adminBody(t *testing.T, method, path string, body []byte) response {
	t.Helper()
	return do(t, method, "http://"+g.AdminAddr()+path, map[string]string{"Authorization": "Bearer " + testToken}, body)
}

// TestHotLoadUnderLoad swaps a plugin's module and rolls it back while
// clients keep sending requests: no request fails, and every response is
// produced by exactly one version (the request header its on_request set and
// the response header its on_response set always agree).
func TestHotLoadUnderLoad(t *testing.T) {
	a := startUpstream(t, "a")
	// A generous call deadline: on a starved machine (a cold build cache,
	// -race) the default 100 ms can expire, which is not what this test is
	// about.
	g := startGateway(t, 1000, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: raw, module: %q, pool: {min_instances: 2}, limits: {call_timeout: 5s}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr))
	v2 := rawWatVariant(t, "2")

	// Six load workers send requests until stop. Each records the version
	// that produced its latest answer: the test moves on from a swap only
	// once every worker has been answered by the new version (its own probe
	// seeing it is not enough: the workers may not have sent a request
	// since), so each version is certain to have served the load.
	const workers = 6
	var ok, failed, mixed atomic.Int64
	var seen sync.Map
	var latest [workers]atomic.Value // string: the X-Raw-Wat-Response of the worker's latest answer
	var first atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer halt() // also when the test fails early
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := tryDo("GET", g.url("/x"), nil, nil)
				if err != nil || r.status != 200 {
					failed.Add(1)
					first.CompareAndSwap(nil, fmt.Sprintf("err=%v status=%d body=%s", err, r.status, r.body))
					continue
				}
				var e echo
				_ = json.Unmarshal(r.body, &e)
				req, resp := e.Headers["X-Raw-Wat"], r.headers["X-Raw-Wat-Response"]
				if req != resp {
					mixed.Add(1)
				}
				seen.Store(req, true)
				latest[w].Store(resp)
				ok.Add(1)
			}
		}()
	}
	waitVersion := func(want string) {
		t.Helper()
		waitFor(t, "responses from version "+want, func() bool {
			r, err := tryDo("GET", g.url("/probe"), nil, nil)
			return err == nil && r.headers["X-Raw-Wat-Response"] == want
		})
	}
	// waitLoad waits until every load worker's latest answer came from
	// version want. Once the probe has seen want, every request that starts
	// runs on it, so this holds within a round trip per worker.
	waitLoad := func(want string) {
		t.Helper()
		waitFor(t, "every load worker answered by version "+want, func() bool {
			if n := failed.Load(); n > 0 {
				t.Fatalf("%d requests failed during hot-loads; first: %v", n, first.Load())
			}
			for w := range workers {
				if v, _ := latest[w].Load().(string); v != want {
					return false
				}
			}
			return true
		})
	}
	waitVersion("1")
	waitLoad("1")
	if r := g.adminBody(t, "PUT", "/plugins/raw", v2); r.status != 200 {
		t.Fatalf("PUT v2: %d %s", r.status, r.body)
	}
	waitVersion("2")
	waitLoad("2")
	if r := g.adminBody(t, "POST", "/plugins/raw/rollback", nil); r.status != 200 {
		t.Fatalf("rollback: %d %s", r.status, r.body)
	}
	waitVersion("1")
	waitLoad("1")
	halt()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during hot-loads; first: %v", failed.Load(), ok.Load()+failed.Load(), first.Load())
	}
	if mixed.Load() > 0 {
		t.Fatalf("%d responses mixed two versions", mixed.Load())
	}
	for _, v := range []string{"1", "2"} {
		if _, ok := seen.Load(v); !ok {
			t.Errorf("no response from version %s under load", v)
		}
	}

	var list struct {
		Plugins []PluginView `json:"plugins"`
	}
	if err := json.Unmarshal(g.admin(t, "GET", "/plugins").body, &list); err != nil || len(list.Plugins) != 1 {
		t.Fatalf("GET /plugins: %v", err)
	}
	p := list.Plugins[0]
	if len(p.Versions) != 2 || !p.Versions[0].Active || p.Versions[1].Active || p.Source != "rollback" {
		t.Fatalf("versions after rollback: %+v source %q", p.Versions, p.Source)
	}
	// A named rollback to the second version.
	if r := g.adminBody(t, "POST", "/plugins/raw/rollback?sha256="+p.Versions[1].SHA256[:12], nil); r.status != 200 {
		t.Fatalf("named rollback: %d %s", r.status, r.body)
	}
	waitVersion("2")
	// A rollback to the version already running changes nothing: no new
	// config version, no swap.
	before := g.snap.Load().version
	r := g.adminBody(t, "POST", "/plugins/raw/rollback?sha256="+p.Versions[1].SHA256[:12], nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"status": "unchanged"`) || g.snap.Load().version != before {
		t.Fatalf("rollback to the running version: %d %s; config version %d -> %d", r.status, r.body, before, g.snap.Load().version)
	}
}

func TestHotLoadRejections(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: raw, module: %q}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr))
	fault, err := os.ReadFile(pluginPath(t, "fault"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		body       []byte
		status     int
		want       string
	}{
		{"not wasm", "/plugins/raw", []byte("hello"), 422, "module rejected"},
		{"wrong ABI version", "/plugins/raw", watFixture(t, "v2"), 422, "wasmgate_abi_v2"},
		{"missing export", "/plugins/raw", watFixture(t, "nomarker"), 422, `missing export \"wasmgate_abi_v1\"`},
		{"unknown import", "/plugins/raw", watFixture(t, "unknown_import"), 422, `\"env\".\"foo\"`},
		{"empty", "/plugins/raw", nil, 422, "module rejected"},
		{"config rejected by on_init", "/plugins/raw", fault, 422, "rejected its config"},
		{"unknown plugin", "/plugins/nope", rawWatVariant(t, "3"), 404, `no plugin \"nope\"`},
		{"no earlier version", "/plugins/raw/rollback", nil, 422, "no earlier version"},
		{"unknown sha", "/plugins/raw/rollback?sha256=abc", nil, 422, "no kept version"},
	} {
		method := "PUT"
		if strings.HasSuffix(strings.SplitN(tc.path, "?", 2)[0], "/rollback") {
			method = "POST"
		}
		r := g.adminBody(t, method, tc.path, tc.body)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: got %d %s, want %d with %q", tc.name, r.status, r.body, tc.status, tc.want)
		}
		if r := do(t, "GET", g.url("/x"), nil, nil); r.status != 200 || r.headers["X-Raw-Wat-Response"] != "1" {
			t.Fatalf("%s: the running version stopped serving: %d %v", tc.name, r.status, r.headers)
		}
	}
}

// TestPluginDirectoryWatch hot-loads a plugin when DIR/NAME.wasm appears or
// changes, and ignores what it cannot use.
func TestPluginDirectoryWatch(t *testing.T) {
	a := startUpstream(t, "a")
	dir := t.TempDir()
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q, watch_dir: %q}
plugins:
  - {name: raw, module: %q}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), dir, pluginPath(t, "raw-wat"), a.addr))
	version := func() string { return do(t, "GET", g.url("/x"), nil, nil).headers["X-Raw-Wat-Response"] }
	if v := version(); v != "1" {
		t.Fatalf("initial version %q", v)
	}
	write := func(name string, data []byte) {
		t.Helper()
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("raw.wasm", rawWatVariant(t, "2"))
	waitFor(t, "the new file picked up", func() bool { return version() == "2" })
	write("raw.wasm", []byte("not wasm"))
	write("unknown.wasm", rawWatVariant(t, "4"))
	waitFor(t, "the rejections logged", func() bool {
		return strings.Contains(g.logs.String(), "plugin directory: version rejected") &&
			strings.Contains(g.logs.String(), "no plugin of that name")
	})
	if v := version(); v != "2" {
		t.Fatalf("a rejected file changed the running version to %q", v)
	}
	write("raw.wasm", rawWatVariant(t, "3")) // a later good version still loads
	waitFor(t, "the changed file picked up", func() bool { return version() == "3" })
}

// TestAutoRollback hot-loads a version whose on_request traps: once it has
// failed past the threshold the gateway returns to the previous version by
// itself, logs it and counts it.
func TestAutoRollback(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 1000, fmt.Sprintf(`
plugin_runtime:
  cache_dir: %q
  auto_rollback: {window: 1m, min_calls: 10, max_failure_percent: 50}
plugins:
  - {name: raw, module: %q, failure_policy: fail_open, quarantine: {after: 1000}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr))
	trapping := trappingRawWat(t)
	// A load generator runs throughout: no request may fail.
	l := startLoad(g, "/load", 3)
	defer func() {
		if _, failed := l.stop(); failed > 0 {
			t.Errorf("%d requests failed around the automatic rollback", failed)
		}
	}()
	l.waitRequests(t, "the load running before the hot-load", 3)
	if r := g.adminBody(t, "PUT", "/plugins/raw", trapping); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	// fail_open: clients keep getting answers while the bad version runs.
	waitFor(t, "the automatic rollback", func() bool {
		r, err := tryDo("GET", g.url("/x"), nil, nil)
		if err == nil && r.status != 200 {
			t.Fatalf("fail_open route answered %d", r.status)
		}
		// The trapping version never sets the request header: it is back
		// once the upstream sees it again.
		return err == nil && r.echo(t).Headers["X-Raw-Wat"] == "1"
	})
	l.waitRequests(t, "the load served by the restored version", 3)
	if !strings.Contains(g.logs.String(), "rolling back automatically") {
		t.Error("the rollback was not logged")
	}
	if m := string(g.admin(t, "GET", "/metrics").body); !strings.Contains(m, `wasmgate_plugin_auto_rollbacks_total{plugin="raw"} 1`) {
		t.Error("the rollback was not counted")
	}
	var list struct {
		Plugins []PluginView `json:"plugins"`
	}
	if err := json.Unmarshal(g.admin(t, "GET", "/plugins").body, &list); err != nil || list.Plugins[0].Source != "auto-rollback" {
		t.Fatalf("GET /plugins after the rollback: %v %+v", err, list)
	}
}

// TestHotLoadSoak hot-loads two versions alternately many times while
// clients send requests, and checks that nothing accumulates: goroutines,
// live wazero runtimes and live instances end where they started, and no
// request fails. It logs the figures (resident memory included).
func TestHotLoadSoak(t *testing.T) {
	loads := 1000
	if testing.Short() {
		loads = 100
	}
	a := startUpstream(t, "a")
	g := startGateway(t, 1000, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q, auto_rollback: {window: 0s}}
plugins:
  - {name: raw, module: %q, pool: {min_instances: 2}, limits: {call_timeout: 5s}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr))
	versions := [][]byte{rawWatVariant(t, "2"), rawWatVariant(t, "3")}
	engine := g.b.plugins.runtime.Engine().(*wasm.WazeroEngine)
	liveInstances := func() int {
		n := 0
		for _, r := range g.snap.Load().routes {
			for _, l := range r.chain {
				n += l.binding.Stats().Live
			}
		}
		return n
	}
	var heap runtime.MemStats
	settle := func() (goroutines int, runtimes int64, instances int, heapBytes uint64, rss int64) {
		// Retired bindings close asynchronously once their requests are
		// done; client connections (and their server goroutines) go too.
		waitFor(t, "retired versions closed", func() bool { return engine.LiveRuntimes() <= 2 })
		client.CloseIdleConnections()
		debug.FreeOSMemory()
		runtime.ReadMemStats(&heap)
		return runtime.NumGoroutine(), engine.LiveRuntimes(), liveInstances(), heap.HeapAlloc, residentBytes()
	}
	// Warm up with the same load first, so that the baseline has what a
	// loaded gateway keeps anyway (worker goroutines, buffers, pools).
	warm := startLoad(g, "/x", 4)
	waitFor(t, "warm-up traffic", func() bool { return warm.ok.Load() > 200 })
	warm.stop()
	g0, r0, i0, h0, rss0 := settle()

	l := startLoad(g, "/x", 4)
	defer l.stop() // when a hot-load fails
	// The load must overlap the hot-loads: it has started before the first,
	// completes requests between them (checked every 25, so that waiting
	// costs little), and on the last version before it stops.
	l.waitRequests(t, "the load running before the first hot-load", 4)
	for i := 0; i < loads; i++ {
		if _, err := g.HotLoad("raw", versions[i%2], "admin"); err != nil {
			t.Fatalf("hot-load %d: %v", i, err)
		}
		if i%25 == 24 || i == loads-1 {
			l.waitRequests(t, fmt.Sprintf("requests after hot-load %d", i+1), 4)
		}
	}
	ok, failed := l.stop()
	g1, r1, i1, h1, rss1 := settle()
	if g1 > g0+10 { // fasthttp's idle workers retire on their own clock
		waitFor(t, "idle workers gone", func() bool { client.CloseIdleConnections(); return runtime.NumGoroutine() <= g0+10 })
		g1 = runtime.NumGoroutine()
	}
	t.Logf("%d hot-loads under load (%d requests, %d failed): goroutines %d -> %d, compiled modules %d -> %d, live instances %d -> %d, Go heap %.1f -> %.1f MiB, RSS %.1f -> %.1f MiB",
		loads, ok, failed, g0, g1, r0, r1, i0, i1,
		float64(h0)/(1<<20), float64(h1)/(1<<20), float64(rss0)/(1<<20), float64(rss1)/(1<<20))
	if failed > 0 {
		t.Errorf("%d requests failed during the hot-loads", failed)
	}
	if g1 > g0+10 || r1 > r0 || i1 > i0 {
		t.Errorf("hot-loads leaked: goroutines %d -> %d, runtimes %d -> %d, instances %d -> %d", g0, g1, r0, r1, i0, i1)
	}
}

// residentBytes is the process's resident set size (0 when unknown).
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss int64
	fmt.Sscan(string(b), &size, &rss)
	return rss * int64(os.Getpagesize())
}

func TestDeletePlugin(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: raw, module: %q}
  - {name: spare, module: %q}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), pluginPath(t, "raw-wat"), a.addr))
	if r := g.adminBody(t, "DELETE", "/plugins/raw", nil); r.status != 409 || !strings.Contains(string(r.body), "used by routes wat") {
		t.Fatalf("deleting a plugin in use: %d %s", r.status, r.body)
	}
	if r := g.adminBody(t, "DELETE", "/plugins/spare", nil); r.status != 200 {
		t.Fatalf("deleting an unused plugin: %d %s", r.status, r.body)
	}
	if r := g.adminBody(t, "DELETE", "/plugins/spare", nil); r.status != 404 {
		t.Fatalf("deleting it again: %d %s", r.status, r.body)
	}
	var list struct {
		Plugins []PluginView `json:"plugins"`
	}
	if err := json.Unmarshal(g.admin(t, "GET", "/plugins").body, &list); err != nil || len(list.Plugins) != 1 || list.Plugins[0].Name != "raw" {
		t.Fatalf("plugins after the delete: %v %+v", err, list)
	}
	if r := do(t, "GET", g.url("/x"), nil, nil); r.status != 200 || r.headers["X-Raw-Wat-Response"] != "1" {
		t.Fatalf("the route stopped serving: %d", r.status)
	}
}

// watFixture compiles one of host/wasm's WAT test modules.
func watFixture(t *testing.T, name string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name+".wasm")
	if b, err := exec.Command("wat2wasm", "../wasm/testdata/"+name+".wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// load is a load generator: n clients sending GET path until stop.
type load struct {
	ok, failed atomic.Int64
	done       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

func startLoad(g *gateway, path string, n int) *load {
	l := &load{done: make(chan struct{})}
	for range n {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				if r, err := tryDo("GET", g.url(path), nil, nil); err != nil || r.status != 200 {
					l.failed.Add(1)
				} else {
					l.ok.Add(1)
				}
			}
		}()
	}
	return l
}

// stop ends the load and returns how many requests succeeded and failed.
// It may be called again (a deferred stop after an explicit one).
func (l *load) stop() (ok, failed int64) {
	l.stopOnce.Do(func() { close(l.done) })
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

// waitRequests waits (bounded, as waitFor) until the load has completed n
// more requests than when it was called: a test that swaps something under
// load calls it so that the load, not only the test's own probe, has run
// on what it swapped in before the test moves on.
func (l *load) waitRequests(t *testing.T, what string, n int64) {
	t.Helper()
	base := l.ok.Load() + l.failed.Load()
	waitFor(t, what, func() bool { return l.ok.Load()+l.failed.Load() >= base+n })
}
