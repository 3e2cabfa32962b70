package server

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
)

const canaryConfig = `
traffic:
  sticky: "header:X-User-Id"
  segments: [{name: beta-testers, keys: [alice]}]
plugin_runtime:
  cache_dir: %q
  canary: {min_calls: 10, abort_margin_percent: 10}
plugins:
  - {name: raw, module: %q, failure_policy: fail_open, quarantine: {after: 1000}}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: c, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`

// rawVersion is the X-Raw-Wat value the upstream saw: which version of the
// raw-wat plugin ran for the request ("" when none set it).
func rawVersion(t *testing.T, g *gateway, user string) string {
	t.Helper()
	r := do(t, "GET", g.url("/x"), map[string]string{"X-User-Id": user}, nil)
	if r.status != 200 {
		t.Fatalf("GET as %s: %d %s", user, r.status, r.body)
	}
	return r.echo(t).Headers["X-Raw-Wat"]
}

func (g *gateway) plugin(t *testing.T, name string) PluginView {
	t.Helper()
	var list PluginsView
	if err := json.Unmarshal(g.admin(t, "GET", "/plugins").body, &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Plugins {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no plugin %s in GET /plugins", name)
	return PluginView{}
}

// TestPluginCanary: an uploaded version runs for a share of users, each
// user always on the same version; by segment; promoted it runs for all;
// a failing canary is aborted by itself.
func TestPluginCanary(t *testing.T) {
	a := startUpstream(t, "a")
	g := startGateway(t, 1000, fmt.Sprintf(canaryConfig, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr))
	upload := func(module []byte) string {
		t.Helper()
		r := g.adminBody(t, "POST", "/plugins/raw/versions", module)
		var ch PluginChange
		if err := json.Unmarshal(r.body, &ch); r.status != 200 || err != nil {
			t.Fatalf("upload: %d %s", r.status, r.body)
		}
		return ch.SHA256
	}
	v2 := upload(rawWatVariant(t, "2"))
	if got := rawVersion(t, g, "u1"); got != "1" {
		t.Fatalf("an uploaded version serves before any canary: %q", got)
	}

	if r := g.adminJSON(t, "PUT", "/plugins/raw/canary", map[string]any{"sha256": v2[:12], "percent": 30}); r.status != 200 {
		t.Fatalf("PUT canary: %d %s", r.status, r.body)
	}
	const users = 400
	on := 0
	for i := range users {
		u := fmt.Sprintf("user-%d", i)
		first := rawVersion(t, g, u)
		if again := rawVersion(t, g, u); again != first {
			t.Fatalf("%s ran version %s, then %s", u, first, again)
		}
		if first == "2" {
			on++
		}
	}
	if share := 100 * float64(on) / users; math.Abs(share-30) > 8 {
		t.Errorf("canary at 30%%: %.1f%% of %d users ran it", share, users)
	}
	p := g.plugin(t, "raw")
	if p.Canary == nil || p.Canary.SHA256 != v2 || len(p.Routes) != 1 || p.Routes[0].Canary == nil ||
		p.Routes[0].Canary.Calls == 0 || p.Routes[0].Calls == 0 || p.Routes[0].Canary.MeanCallUs <= 0 {
		t.Errorf("GET /plugins with a canary: %+v %+v", p.Canary, p.Routes)
	}

	// By segment: alice, and only alice.
	if r := g.adminJSON(t, "PUT", "/plugins/raw/canary", map[string]any{"sha256": v2, "segment": "beta-testers"}); r.status != 200 {
		t.Fatalf("PUT canary by segment: %d %s", r.status, r.body)
	}
	for user, want := range map[string]string{"alice": "2", "bob": "1", "user-1": "1"} {
		if got := rawVersion(t, g, user); got != want {
			t.Errorf("%s with a beta-testers canary ran version %q, want %q", user, got, want)
		}
	}
	for _, bad := range []map[string]any{
		{"sha256": "ffff", "percent": 10},
		{"sha256": v2, "percent": 10, "segment": "beta-testers"},
		{"sha256": v2, "percent": 101},
		{"sha256": v2, "segment": "nope"},
	} {
		if r := g.adminJSON(t, "PUT", "/plugins/raw/canary", bad); r.status != 422 {
			t.Errorf("PUT canary %v: %d %s", bad, r.status, r.body)
		}
	}

	// Promote: every user on version 2, no canary left.
	if r := g.admin(t, "POST", "/plugins/raw/promote"); r.status != 200 {
		t.Fatalf("promote: %d %s", r.status, r.body)
	}
	for _, user := range []string{"alice", "bob", "user-7"} {
		if got := rawVersion(t, g, user); got != "2" {
			t.Errorf("%s after the promotion ran version %q", user, got)
		}
	}
	if p := g.plugin(t, "raw"); p.Canary != nil || p.SHA256 != v2 {
		t.Errorf("after the promotion: canary %+v, running %s", p.Canary, p.SHA256)
	}
	if r := g.admin(t, "DELETE", "/plugins/raw/canary"); r.status != 404 {
		t.Errorf("DELETE with no canary: %d %s", r.status, r.body)
	}
	// Rolling back over the promotion: the canary steps cannot come back
	// (their version now runs for everyone), so each is discarded, said
	// so, and the history moves on instead of sticking.
	for i := range 2 {
		if r := g.admin(t, "POST", "/rollback"); r.status != 409 || !strings.Contains(string(r.body), "discarded") {
			t.Fatalf("rollback %d over the promotion: %d %s", i+1, r.status, r.body)
		}
	}
	if r := g.admin(t, "POST", "/rollback"); r.status != 200 {
		t.Fatalf("the rollback past the discarded steps: %d %s", r.status, r.body)
	}

	// A trapping canary for everyone: aborted by itself once it has
	// failed past the margin; requests keep being served (fail_open).
	trap := upload(trappingRawWat(t))
	if r := g.adminJSON(t, "PUT", "/plugins/raw/canary", map[string]any{"sha256": trap, "percent": 100}); r.status != 200 {
		t.Fatalf("PUT a trapping canary: %d %s", r.status, r.body)
	}
	waitFor(t, "the failing canary's automatic abort", func() bool {
		rawVersion(t, g, "u")
		return g.plugin(t, "raw").Canary == nil
	})
	if got := rawVersion(t, g, "u"); got != "2" {
		t.Errorf("after the abort: version %q", got)
	}
	var audit AuditView
	if err := json.Unmarshal(g.admin(t, "GET", "/audit").body, &audit); err != nil || len(audit.Entries) == 0 ||
		!strings.HasPrefix(audit.Entries[0].Actor, "auto-abort (") || audit.Entries[0].Kind != kindCanary {
		t.Errorf("the abort is not audited: %v %+v", err, audit.Entries)
	}
}
