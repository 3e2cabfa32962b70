package server

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// TestBusyMachineFailsNoPlugin: with every CPU busy, a Go plugin whose
// hooks need well under a ms of CPU each still answers every request under
// a 5ms call_timeout (the budget is work, not waiting; with wall-clock
// deadlines, interruption: context, some of these requests fail), and a
// looping plugin on another route is still stopped (502), on each engine:
// wazero counts the work in instrumented code, wasmtime in fuel.
func TestBusyMachineFailsNoPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("loads every CPU for seconds")
	}
	warmPlugins(t, "json-transform", "fault")
	for _, engine := range e2eEngines() {
		t.Run(engine, func(t *testing.T) { busyMachine(t, engine) })
	}
}

func busyMachine(t *testing.T, engine string) {
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q, engine: %s}
plugins:
  - {name: jt, module: %q, limits: {call_timeout: 5ms}, pool: {max_instances: 4}}
  - {name: fault, module: %q, limits: {call_timeout: 20ms}}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - name: jt
    match: {path_prefix: /jt}
    upstream: a
    plugins:
      - name: jt
        config:
          request: [{op: add, path: meta.via, value: gateway}]
          response: [{op: add, path: meta.by, value: gateway}]
  - {name: loop, match: {path_prefix: /loop}, upstream: a, plugins: [{name: fault, config: {mode: loop}}]}
`, e2eCacheDir(t), engine, pluginPath(t, "json-transform"), pluginPath(t, "fault"), a.addr))

	stop := make(chan struct{})
	var hogs sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		hogs.Go(func() {
			x := 1
			for {
				select {
				case <-stop:
					return
				default:
				}
				for i := range 1 << 16 {
					x ^= x<<13 ^ i
				}
			}
		})
	}
	defer func() { close(stop); hogs.Wait() }()

	failed := 0
	for i := range 40 {
		r := do(t, "POST", g.url("/jt/doc"), map[string]string{"Content-Type": "application/json"}, []byte(`{"user":{"id":1}}`))
		if r.status != 200 {
			failed++
			if failed == 1 {
				t.Errorf("request %d on a busy machine: %d %s", i, r.status, r.body)
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of 40 requests failed on a busy machine", failed)
	}
	if r := do(t, "GET", g.url("/loop"), nil, nil); r.status != 502 {
		t.Errorf("looping plugin: %d %s, want 502", r.status, r.body)
	}
}
