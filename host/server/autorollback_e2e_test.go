package server

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// trappingRawWat is plugins/raw-wat with an on_request that traps.
func trappingRawWat(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile("../../plugins/raw-wat/plugin.wat")
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "    (local $n i32)\n"
	if !strings.Contains(string(src), anchor) {
		t.Fatalf("plugin.wat no longer has %q", anchor)
	}
	wat := filepath.Join(t.TempDir(), "trap.wat")
	if err := os.WriteFile(wat, []byte(strings.Replace(string(src), anchor, anchor+"    unreachable\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("wat2wasm", wat, "-o", wat+".wasm").CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	trapping, err := os.ReadFile(wat + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	return trapping
}

// TestAutoRollbackOnQuarantine: a bad version hot-loaded onto a single
// low-traffic route is quarantined after a few failures, long before the
// route has seen min_calls; the quarantine inside the watch window rolls
// it back, and the route answers again without anyone acting.
func TestAutoRollbackOnQuarantine(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 1000, fmt.Sprintf(`
plugin_runtime:
  cache_dir: %q
  auto_rollback: {window: 1m, min_calls: 20, max_failure_percent: 50}
plugins:
  - {name: raw, module: %q, quarantine: {after: 3, backoff: 1m}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: quiet, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr))
	if r := g.adminBody(t, "PUT", "/plugins/raw", trappingRawWat(t)); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	for range 3 {
		if r := do(t, "GET", g.url("/x"), nil, nil); r.status < 500 {
			t.Fatalf("the trapping version answered %d", r.status)
		}
	}
	waitFor(t, "the rollback of the quarantined version", func() bool {
		r, err := tryDo("GET", g.url("/x"), nil, nil)
		return err == nil && r.status == 200 && r.echo(t).Headers["X-Raw-Wat"] == "1"
	})
	if !strings.Contains(g.logs.String(), `"why":"quarantined on route quiet"`) {
		t.Errorf("the rollback's log line does not say why: %s", g.logs.String())
	}
}
