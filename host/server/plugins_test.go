package server

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildPluginsOnce sync.Once
	buildPluginsErr  error
)

// pluginPath returns the .wasm of an example plugin (plugins/NAME) or of a
// guest of the conformance kit (sdk/tck/NAME: hostcheck, fault), building
// them all from source (plugins/build.sh) when they are missing or out of
// date.
func pluginPath(t testing.TB, name string) string {
	t.Helper()
	buildPluginsOnce.Do(func() {
		cmd := exec.Command("bash", "plugins/build.sh")
		cmd.Dir = "../.."
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildPluginsErr = fmt.Errorf("plugins/build.sh: %v\n%s", err, out)
		}
	})
	if buildPluginsErr != nil {
		t.Fatal(buildPluginsErr)
	}
	dir, file := filepath.Join("../../plugins", name), name+".wasm"
	switch name {
	case "raw-wat":
		file = "plugin.wasm"
	case "hostcheck", "fault":
		dir = filepath.Join("../../sdk/tck", name)
	}
	p, err := filepath.Abs(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("plugin %s not built: %v", name, err)
	}
	return p
}

func TestRawWatPluginChain(t *testing.T) {
	warmPlugins(t, "noop")
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: raw, module: %q}
  - {name: noop, module: %q, limits: {call_timeout: 5s}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - name: wat
    match: {path_prefix: /raw-wat}
    upstream: a
    plugins: [{name: raw}, {name: noop}]
  - name: plain
    match: {path_prefix: /}
    upstream: a
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), pluginPath(t, "noop"), a.addr))

	r := do(t, "GET", g.url("/raw-wat/hello"), nil, nil)
	if r.status != 200 || r.echo(t).Headers["X-Raw-Wat"] != "1" || r.headers["X-Raw-Wat-Response"] != "1" {
		t.Fatalf("chain did not run both hooks: %d %v %s", r.status, r.headers, r.body)
	}
	hits := a.hits.Load()
	r = do(t, "GET", g.url("/raw-wat/deny"), nil, nil)
	if r.status != 403 || strings.TrimSpace(string(r.body)) != "denied by raw-wat" {
		t.Fatalf("local response: %d %q", r.status, r.body)
	}
	if a.hits.Load() != hits {
		t.Fatal("a local response still reached the upstream")
	}
	if r.headers["X-Request-Id"] == "" {
		t.Fatal("local response lacks X-Request-Id")
	}
	if r := do(t, "GET", g.url("/other"), nil, nil); r.status != 200 || r.echo(t).Headers["X-Raw-Wat"] != "" {
		t.Fatalf("plugin ran on a route without it: %v", r.echo(t).Headers)
	}

	var list struct {
		Plugins []PluginView `json:"plugins"`
	}
	if err := json.Unmarshal(g.admin(t, "GET", "/plugins").body, &list); err != nil || len(list.Plugins) != 2 {
		t.Fatalf("GET /plugins: %v %+v", err, list)
	}
	raw := list.Plugins[1]
	if raw.Name != "raw" || len(raw.SHA256) != 64 || raw.Version != raw.SHA256[:12] || raw.Size == 0 ||
		len(raw.Routes) != 1 || raw.Routes[0].Route != "wat" || raw.Routes[0].Live < 1 || raw.ColdStart.Count == 0 {
		t.Fatalf("GET /plugins raw entry: %+v", raw)
	}
}

// TestFaultyPluginsAnswerPerPolicy runs every fault mode under both
// failure policies while other routes take concurrent traffic that must all
// succeed: one bad plugin never affects another route.
func TestFaultyPluginsAnswerPerPolicy(t *testing.T) {
	a := startUpstream(t, "a")
	modes := []string{"loop", "alloc", "trap", "panic", "exit", "garbage", "bad_pointer"}
	var cfg strings.Builder
	warmPlugins(t, "noop", "fault")
	fmt.Fprintf(&cfg, "plugin_runtime: {cache_dir: %q}\nplugins:\n", e2eCacheDir(t))
	// Generous deadlines where a test must not depend on the machine's speed.
	fmt.Fprintf(&cfg, "  - {name: noop, module: %q, limits: {call_timeout: 5s}}\n", pluginPath(t, "noop"))
	for _, m := range modes {
		fmt.Fprintf(&cfg, "  - {name: fault-%s, module: %q, limits: {call_timeout: %s, memory_pages: 512}, config: {mode: %s}}\n",
			m, pluginPath(t, "fault"), map[bool]string{true: "30s", false: "200ms"}[m == "alloc"], m)
	}
	fmt.Fprintf(&cfg, "upstreams: [{name: a, targets: [{address: %s}]}]\nroutes:\n", a.addr)
	fmt.Fprintf(&cfg, "  - {name: healthy, match: {path_prefix: /healthy}, upstream: a, plugins: [{name: noop}]}\n")
	fmt.Fprintf(&cfg, "  - {name: plain, match: {path_prefix: /plain}, upstream: a}\n")
	for _, m := range modes {
		for _, p := range []string{"fail_closed", "fail_open"} {
			fmt.Fprintf(&cfg, "  - {name: %s-%s, match: {path: /fault/%s/%s}, upstream: a, plugins: [{name: fault-%s, failure_policy: %s}]}\n", m, p, m, p, m, p)
		}
	}
	g := startGateway(t, 1000, cfg.String())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad atomicCounter
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			path := []string{"/healthy/x", "/plain/x"}[w%2]
			for i := 0; i < 100000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r, err := tryDo("GET", g.url(path), nil, nil); err != nil || r.status != 200 {
					bad.add(fmt.Sprintf("%s: err=%v status=%d body=%s", path, err, r.status, r.body))
				}
			}
		}(w)
	}
	for _, m := range modes {
		for _, p := range []string{"fail_closed", "fail_open"} {
			for i := 0; i < 2; i++ {
				r := do(t, "GET", g.url("/fault/"+m+"/"+p), nil, nil)
				switch p {
				case "fail_closed":
					if r.status != 502 || !strings.Contains(string(r.body), `"plugin":"fault-`+m+`"`) {
						t.Errorf("%s %s: got %d %s, want 502 naming the plugin", m, p, r.status, r.body)
					}
				case "fail_open":
					if r.status != 200 || r.echo(t).ID != "a" {
						t.Errorf("%s %s: got %d %s, want the upstream's answer", m, p, r.status, r.body)
					}
				}
			}
		}
	}
	close(stop)
	wg.Wait()
	if n, first := bad.get(); n > 0 {
		t.Fatalf("%d requests on healthy routes failed while plugins misbehaved; first: %s", n, first)
	}
	metrics := string(g.admin(t, "GET", "/metrics").body)
	for _, want := range []string{
		`wasmgate_plugin_failures_total{kind="timeout",plugin="fault-loop"`,
		`wasmgate_plugin_failures_total{kind="trap",plugin="fault-trap"`,
		`wasmgate_plugin_skipped_total{kind="timeout",plugin="fault-loop",route="loop-fail_open"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

type atomicCounter struct {
	mu    sync.Mutex
	n     int
	first string
}

func (c *atomicCounter) add(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.first = msg
	}
	c.n++
}

func (c *atomicCounter) get() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n, c.first
}

func TestContextInterruptionConfig(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q, interruption: context}
plugins:
  - {name: raw, module: %q}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: wat, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, t.TempDir(), pluginPath(t, "raw-wat"), a.addr))
	if r := do(t, "GET", g.url("/x"), nil, nil); r.status != 200 || r.headers["X-Raw-Wat-Response"] != "1" {
		t.Fatalf("%d %v", r.status, r.headers)
	}
	var list struct {
		Plugins []PluginView `json:"plugins"`
	}
	if err := json.Unmarshal(g.admin(t, "GET", "/plugins").body, &list); err != nil || len(list.Plugins) != 1 ||
		!strings.HasPrefix(list.Plugins[0].Interruption, "context") {
		t.Fatalf("interruption: %v %+v", err, list)
	}
}
