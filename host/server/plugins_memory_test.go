package server

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"
)

// TestPluginsMemoryAndIdleShrink: GET /plugins shows each binding's memory
// (live instances × linear memory) and the plugin's total, the gauge
// wasmgate_plugin_memory_bytes agrees, and a pool grown past min_instances
// shrinks back after pool.idle_timeout.
func TestPluginsMemoryAndIdleShrink(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: raw, module: %q, pool: {min_instances: 1, max_instances: 4, idle_timeout: 300ms}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: one, match: {path_prefix: /one}, upstream: a, plugins: [{name: raw}]}
  - {name: two, match: {path_prefix: /two}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr))
	for _, p := range []string{"/one", "/two"} {
		if r := do(t, "GET", g.url(p), nil, nil); r.status != 200 {
			t.Fatalf("GET %s: %d %s", p, r.status, r.body)
		}
	}

	plugins := func() PluginView {
		t.Helper()
		body := g.admin(t, "GET", "/plugins").body
		// The keys are there, whatever their values.
		var raw struct {
			Plugins []map[string]json.RawMessage `json:"plugins"`
		}
		if err := json.Unmarshal(body, &raw); err != nil || len(raw.Plugins) != 1 {
			t.Fatalf("GET /plugins: %v %s", err, body)
		}
		for _, k := range []string{"memory_bytes", "instances"} {
			if _, ok := raw.Plugins[0][k]; !ok {
				t.Fatalf("GET /plugins lacks %q: %s", k, body)
			}
		}
		var routes []map[string]json.RawMessage
		if err := json.Unmarshal(raw.Plugins[0]["routes"], &routes); err != nil || len(routes) != 2 {
			t.Fatalf("routes: %v %s", err, body)
		}
		for _, k := range []string{"memory_bytes", "reaped_instances"} {
			if _, ok := routes[0][k]; !ok {
				t.Fatalf("GET /plugins routes lack %q: %s", k, body)
			}
		}
		var list PluginsView
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatal(err)
		}
		v := list.Plugins[0]
		var live int
		var mem uint64
		for _, r := range v.Routes {
			live += r.Live
			mem += r.MemoryBytes
		}
		if v.Instances != live || v.MemoryBytes != mem {
			t.Fatalf("plugin totals %d instances %d bytes, routes sum to %d %d", v.Instances, v.MemoryBytes, live, mem)
		}
		return v
	}

	v := plugins()
	two := v.Routes[1]
	// raw-wat's memory is one page, fixed.
	if two.Route != "two" || two.Live != 1 || two.MemoryBytes != 1<<16 || two.ReapedInstances != 0 {
		t.Fatalf("route two: %+v", two)
	}
	version := `{plugin="raw",version="` + v.Version + `"}`
	if m := g.metric(t, "wasmgate_plugin_memory_bytes"+version); m != float64(v.MemoryBytes) {
		t.Errorf("gauge %v, GET /plugins %d", m, v.MemoryBytes)
	}

	// Grow route one's pool to its maximum: four instances at once.
	var b *wasm.Binding
	for _, r := range g.snap.Load().routes {
		if r.name == "one" {
			b = r.chain[0].binding
		}
	}
	held := make([]*wasm.Instance, 0, 4)
	for range 4 {
		inst, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, inst)
	}
	if one := plugins().Routes[0]; one.Live != 4 || one.InUse != 4 || one.MemoryBytes != 4<<16 {
		t.Fatalf("route one grown: %+v", one)
	}
	for _, i := range held {
		b.Release(i, false)
	}

	// Back to min_instances once idle for 300ms.
	deadline := time.Now().Add(10 * time.Second)
	for v = plugins(); v.Routes[0].Live != 1; v = plugins() {
		if time.Now().After(deadline) {
			t.Fatalf("route one did not shrink: %+v", v.Routes[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if one := v.Routes[0]; one.ReapedInstances != 3 || one.MemoryBytes != 1<<16 || v.MemoryBytes != 2<<16 {
		t.Errorf("route one shrunk: %+v, plugin memory %d", one, v.MemoryBytes)
	}
	if m := g.metric(t, "wasmgate_plugin_memory_bytes"+version); m != 2<<16 {
		t.Errorf("gauge %v after the shrink, want %d", m, 2<<16)
	}
	if m := g.metric(t, "wasmgate_plugin_instances_reaped_total"+version); m != 3 {
		t.Errorf("reaped counter %v, want 3", m)
	}
	// The shrunk pool serves.
	if r := do(t, "GET", g.url("/one"), nil, nil); r.status != 200 {
		t.Fatalf("GET /one after the shrink: %d", r.status)
	}
}
