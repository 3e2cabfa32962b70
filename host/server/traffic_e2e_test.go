package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// servedBy is the id of the test upstream that answered a response.
func servedBy(r response) string {
	for _, id := range []string{"stable", "canary", "blue", "green", "legacy", "v2"} {
		if bytes.Contains(r.body, []byte(`"id":"`+id+`"`)) {
			return id
		}
	}
	return fmt.Sprintf("status %d: %.80s", r.status, r.body)
}

// sideOf sends one request per user key, from a few workers, and returns
// which upstream served each key.
func sideOf(t *testing.T, g *gateway, path string, keys int) []string {
	t.Helper()
	out := make([]string, keys)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= keys {
					return
				}
				r, err := tryDo("GET", g.url(path), map[string]string{"X-User-Id": fmt.Sprintf("user-%d", i)}, nil)
				if err != nil {
					failed.Store(err)
					return
				}
				out[i] = servedBy(r)
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	return out
}

// item is the traffic item of that kind and name (zero when absent).
func (v TrafficView) item(kind, name string) TrafficItem {
	for _, it := range v.Items {
		if it.Kind == kind && it.Name == name {
			return it
		}
	}
	return TrafficItem{}
}

// compact is JSON text without insignificant space.
func compact(b []byte) string {
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}

func shares(sides []string) map[string]float64 {
	m := map[string]float64{}
	for _, s := range sides {
		m[s] += 100 / float64(len(sides))
	}
	return m
}

func (g *gateway) adminJSON(t *testing.T, method, path string, body any) response {
	t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	return g.adminBody(t, method, path, b)
}

const splitConfig = `
traffic: {sticky: "header:X-User-Id"}
upstreams:
  - {name: stable, targets: [{address: %s}]}
  - {name: canary, targets: [{address: %s}]}
routes:
  - name: users
    match: {path_prefix: /users}
    split: [{upstream: stable, weight: 90}, {upstream: canary, weight: 10}]
`

// TestStickySplit: over 10,000 distinct users the observed shares are
// within 2 points of the weights; every user sticks to its side; raising
// the canary from 10% to 20% at run time moves users only into the canary;
// an unknown upstream is refused with nothing changed.
func TestStickySplit(t *testing.T) {
	stable, canary := startUpstream(t, "stable"), startUpstream(t, "canary")
	g := startGateway(t, 1000, fmt.Sprintf(splitConfig, stable.addr, canary.addr))
	const keys = 10000

	before := sideOf(t, g, "/users/1", keys)
	if got := shares(before); math.Abs(got["canary"]-10) > 2 || math.Abs(got["stable"]-90) > 2 {
		t.Fatalf("shares at 90/10: %v", got)
	}
	again := sideOf(t, g, "/users/2", 2000)
	for i := range again {
		if again[i] != before[i] {
			t.Fatalf("user-%d moved from %s to %s with no change", i, before[i], again[i])
		}
	}

	r := g.adminJSON(t, "PUT", "/routes/users/split", []map[string]any{{"upstream": "stable", "weight": 80}, {"upstream": "canary", "weight": 20}})
	if r.status != 200 {
		t.Fatalf("PUT split: %d %s", r.status, r.body)
	}
	after := sideOf(t, g, "/users/1", keys)
	if got := shares(after); math.Abs(got["canary"]-20) > 2 {
		t.Fatalf("shares at 80/20: %v", got)
	}
	moved := 0
	for i := range after {
		switch {
		case before[i] == "canary" && after[i] != "canary":
			t.Fatalf("user-%d left the canary when it grew", i)
		case before[i] != after[i]:
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no user moved into the canary")
	}

	traffic := g.admin(t, "GET", "/traffic").body
	for _, bad := range []struct {
		body   string
		status int
		want   string
	}{
		{`[{"upstream": "nope", "weight": 10}]`, 422, `unknown upstream \"nope\"`},
		{`[{"upstream": "stable", "weight": 101}]`, 422, "weight"},
		{`[{"upstream": "stable", "weight": 0}]`, 422, "weight"},
		{`[{"upstream": "stable", "weight": 10, "extra": 1}]`, 422, "unknown field"},
		{`[]`, 422, "no entries"},
		{`[{"upstream": "stable", "weight": 10}]]`, 422, "data after the JSON value"},
		{`[{"upstream": "stable", "weight": 10}] {}`, 422, "data after the JSON value"},
		{`{`, 422, "body"},
	} {
		r := g.adminBody(t, "PUT", "/routes/users/split", []byte(bad.body))
		if r.status != bad.status || !strings.Contains(string(r.body), bad.want) {
			t.Errorf("PUT split %s: %d %s, want %d with %q", bad.body, r.status, r.body, bad.status, bad.want)
		}
	}
	if r := g.adminBody(t, "PUT", "/routes/nope/split", []byte(`[]`)); r.status != 404 {
		t.Errorf("PUT split of an unknown route: %d %s", r.status, r.body)
	}
	if now := g.admin(t, "GET", "/traffic").body; !bytes.Equal(now, traffic) {
		t.Errorf("refused changes changed the state:\nbefore %s\nafter  %s", traffic, now)
	}
}

const blueGreenConfig = `
upstreams:
  - {name: blue, targets: [{address: %s}]}
  - {name: green, targets: [{address: %s}]}
routes:
  - {name: app, match: {path_prefix: /}, active: blue, standby: green}
`

// TestBlueGreenSwitchUnderLoad switches a route between its sides and back
// 50 times, then rolls all 100 switches back one by one, while clients keep
// sending: no request fails, each is served by one side, and afterwards
// the active side is the one the last call set.
func TestBlueGreenSwitchUnderLoad(t *testing.T) {
	blue, green := startUpstream(t, "blue"), startUpstream(t, "green")
	g := startGateway(t, 1000, fmt.Sprintf(blueGreenConfig, blue.addr, green.addr))
	if s := servedBy(do(t, "GET", g.url("/x"), nil, nil)); s != "blue" {
		t.Fatalf("before any switch: served by %s", s)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	var firstErr atomic.Value
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := tryDo("GET", g.url("/x"), nil, nil)
				if s := servedBy(r); err != nil || s != "blue" && s != "green" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err=%v served=%s", err, s))
					continue
				}
				served.Add(1)
			}
		})
	}
	for i := range 100 {
		want := []string{"green", "blue"}[i%2]
		r := g.adminBody(t, "POST", "/routes/app/switch", nil)
		var ch TrafficChange
		if err := json.Unmarshal(r.body, &ch); r.status != 200 || err != nil || compact(ch.After) != `{"active":"`+want+`"}` {
			t.Fatalf("switch %d: %d %s", i, r.status, r.body)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// And back through the history, one rollback at a time, under load.
	for i := range 100 {
		want := []string{"green", "blue"}[i%2]
		r := g.admin(t, "POST", "/rollback")
		var ch TrafficChange
		if err := json.Unmarshal(r.body, &ch); r.status != 200 || err != nil || compact(ch.After) != `{"active":"`+want+`"}` {
			t.Fatalf("rollback %d: %d %s", i, r.status, r.body)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if r := g.admin(t, "POST", "/rollback"); r.status != 409 {
		t.Fatalf("a rollback past the first switch: %d %s", r.status, r.body)
	}
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during switches; first: %v", failed.Load(), served.Load()+failed.Load(), firstErr.Load())
	}
	if served.Load() == 0 {
		t.Fatal("no request was served during the switches")
	}
	if r := g.adminJSON(t, "POST", "/routes/app/switch", map[string]string{"to": "green"}); r.status != 200 {
		t.Fatalf("switch to green: %d %s", r.status, r.body)
	}
	if s := servedBy(do(t, "GET", g.url("/x"), nil, nil)); s != "green" {
		t.Fatalf("after the switch to green: served by %s", s)
	}
	if r := g.adminJSON(t, "POST", "/routes/app/switch", map[string]string{"to": "green"}); r.status != 200 || !strings.Contains(compact(r.body), `"status":"unchanged"`) {
		t.Errorf("switch to the active side: %d %s", r.status, r.body)
	}
	if r := g.adminJSON(t, "POST", "/routes/app/switch", map[string]string{"to": "red"}); r.status != 422 {
		t.Errorf("switch to an unknown side: %d %s", r.status, r.body)
	}
}

const flagsConfig = `
traffic:
  sticky: "header:X-User-Id"
  segments:
    - {name: beta-testers, keys: [alice, bob]}
    - {name: pro, source: "header:X-Plan", values: [pro, enterprise]}
  flags:
    - {name: new-checkout, enabled: false}
    - {name: half, enabled: true, percent: 50}
upstreams:
  - {name: legacy, targets: [{address: %s}]}
  - {name: v2, targets: [{address: %s}]}
routes:
  - {name: checkout-legacy, match: {path_prefix: /checkout}, upstream: legacy}
  - {name: checkout-new, match: {path_prefix: /checkout, flags: [new-checkout]}, upstream: v2}
  - {name: beta, match: {path_prefix: /feed, segments: [beta-testers]}, upstream: v2}
  - {name: feed, match: {path_prefix: /feed}, upstream: legacy}
  - {name: pro, match: {path_prefix: /reports, segments: [pro]}, upstream: v2}
  - {name: reports, match: {path_prefix: /reports}, upstream: legacy}
  - {name: half-on, match: {path_prefix: /half, flags: [half]}, upstream: v2}
  - {name: half-off, match: {path_prefix: /half}, upstream: legacy}
  - name: orders
    match: {path_prefix: /orders}
    split: [{upstream: v2, segment: beta-testers}, {upstream: legacy, weight: 100}, {upstream: v2, weight: 0}]
`

// TestFlagsAndSegments: segments and flags as route conditions and in a
// split; a flag toggled at run time, audited, rolled back; an unknown flag
// is 404.
func TestFlagsAndSegments(t *testing.T) {
	legacy, v2 := startUpstream(t, "legacy"), startUpstream(t, "v2")
	g := startGateway(t, 1000, fmt.Sprintf(flagsConfig, legacy.addr, v2.addr))
	as := func(user, plan, path string) string {
		h := map[string]string{}
		if user != "" {
			h["X-User-Id"] = user
		}
		if plan != "" {
			h["X-Plan"] = plan
		}
		return servedBy(do(t, "GET", g.url(path), h, nil))
	}
	for _, c := range []struct{ user, plan, path, want string }{
		{"alice", "", "/feed", "v2"},
		{"carol", "", "/feed", "legacy"},
		{"", "", "/feed", "legacy"},
		{"carol", "pro", "/reports", "v2"},
		{"carol", "free", "/reports", "legacy"},
		{"bob", "", "/orders", "v2"},
		{"carol", "", "/orders", "legacy"},
		{"alice", "", "/checkout", "legacy"}, // flag off
	} {
		if got := as(c.user, c.plan, c.path); got != c.want {
			t.Errorf("user %q plan %q %s: served by %s, want %s", c.user, c.plan, c.path, got, c.want)
		}
	}

	if r := g.adminJSON(t, "PUT", "/flags/new-checkout", map[string]any{"enabled": true, "segment": "beta-testers"}); r.status != 200 {
		t.Fatalf("PUT flag: %d %s", r.status, r.body)
	}
	if got := as("alice", "", "/checkout"); got != "v2" {
		t.Errorf("alice with the flag on for beta-testers: %s", got)
	}
	if got := as("carol", "", "/checkout"); got != "legacy" {
		t.Errorf("carol (not a beta tester): %s", got)
	}
	if r := g.adminJSON(t, "PUT", "/flags/new-checkout", map[string]any{"enabled": true, "segment": "nope"}); r.status != 422 {
		t.Errorf("PUT flag with an unknown segment: %d %s", r.status, r.body)
	}
	if r := g.adminJSON(t, "PUT", "/flags/nope", map[string]any{"enabled": true}); r.status != 404 {
		t.Errorf("PUT an undeclared flag: %d %s", r.status, r.body)
	}

	var audit AuditView
	if err := json.Unmarshal(g.admin(t, "GET", "/audit").body, &audit); err != nil || len(audit.Entries) != 1 {
		t.Fatalf("audit after one change: %v %+v", err, audit)
	}
	if e := audit.Entries[0]; e.Kind != "flag" || e.Name != "new-checkout" || !strings.Contains(e.Actor, "admin@127.0.0.1:") ||
		!strings.Contains(compact(e.Before), `"enabled":false`) || !strings.Contains(compact(e.After), `"segment":"beta-testers"`) {
		t.Errorf("audit entry: %+v", e)
	}
	if r := g.admin(t, "POST", "/rollback"); r.status != 200 {
		t.Fatalf("rollback: %d %s", r.status, r.body)
	}
	if got := as("alice", "", "/checkout"); got != "legacy" {
		t.Errorf("after the rollback the flag is still on: %s", got)
	}
	if r := g.admin(t, "POST", "/rollback"); r.status != 409 {
		t.Errorf("a rollback with nothing left: %d %s", r.status, r.body)
	}

	// percent: 50 of the sticky hash: about half of the users, each the
	// same way every time.
	on := 0
	for i := range 400 {
		user := fmt.Sprintf("u%d", i)
		first := as(user, "", "/half")
		if as(user, "", "/half") != first {
			t.Fatalf("%s flipped between requests", user)
		}
		if first == "v2" {
			on++
		}
	}
	if on < 140 || on > 260 {
		t.Errorf("flag at 50%%: on for %d of 400 users", on)
	}
}

// TestTrafficStateSurvivesRestart: run-time changes are written to the
// state file and a new gateway on the same config restores them; editing
// the file's value of a changed item makes the file win.
func TestTrafficStateSurvivesRestart(t *testing.T) {
	blue, green := startUpstream(t, "blue"), startUpstream(t, "green")
	cfg := fmt.Sprintf(baseConfig, 100) + fmt.Sprintf(blueGreenConfig, blue.addr, green.addr)
	g := startGatewayConfig(t, cfg)
	if r := g.admin(t, "POST", "/routes/app/switch"); r.status != 200 {
		t.Fatalf("switch: %d %s", r.status, r.body)
	}
	state := strings.TrimSuffix(g.cfgPath, ".yaml") + ".state.json"
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file after a run-time change: %v", err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	g2 := startGatewayFile(t, g.cfgPath)
	if s := servedBy(do(t, "GET", g2.url("/x"), nil, nil)); s != "green" {
		t.Fatalf("after a restart: served by %s, want green (the run-time switch)", s)
	}
	var tv TrafficView
	if err := json.Unmarshal(g2.admin(t, "GET", "/traffic").body, &tv); err != nil {
		t.Fatal(err)
	}
	if it := tv.item("switch", "app"); len(tv.Items) != 1 || it.Source != "runtime" || compact(it.File) != `{"active":"blue"}` {
		t.Errorf("GET /traffic after a restart: %+v", tv.Items)
	}
	// A reload of an unrelated change keeps the run-time switch.
	unrelated := cfg + "  - {name: other, match: {path_prefix: /other}, upstream: blue}\n"
	writeConfig(t, g2.cfgPath, unrelated)
	if _, err := g2.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if s := servedBy(do(t, "GET", g2.url("/x"), nil, nil)); s != "green" {
		t.Fatalf("after a reload of an unrelated change: served by %s, want green (the run-time switch)", s)
	}
	// The operator edits the file's value of the switched route: the file wins.
	writeConfig(t, g2.cfgPath, strings.Replace(unrelated, "active: blue, standby: green", "active: green, standby: blue", 1))
	if _, err := g2.Reload("test"); err != nil {
		t.Fatal(err)
	}
	tv = TrafficView{}
	if err := json.Unmarshal(g2.admin(t, "GET", "/traffic").body, &tv); err != nil {
		t.Fatal(err)
	}
	if it := tv.item("switch", "app"); it.Source != "file" || compact(it.Value) != `{"active":"green"}` || it.File != nil {
		t.Errorf("after the file changed: %+v", tv.Items)
	}
}

// TestConsumerStickyAfterPlugin: with sticky: consumer, a match.flags
// condition asks for the user's hash before the auth plugin names the
// consumer; the consumer it names afterwards still decides the segment
// entry of the split, the same way for each consumer every time.
func TestConsumerStickyAfterPlugin(t *testing.T) {
	legacy, v2 := startUpstream(t, "legacy"), startUpstream(t, "v2")
	var keys strings.Builder
	for i := range 40 {
		fmt.Fprintf(&keys, "{consumer: c%d, key: key-%d-0123456789abcdef}, ", i, i)
	}
	g := startGateway(t, 1000, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
traffic:
  sticky: consumer
  segments: [{name: half, percent: 50}]
  flags: [{name: almost-all, enabled: true, percent: 99}]
plugins:
  - {name: api-key, module: %q, limits: {call_timeout: 5s}}
upstreams:
  - {name: legacy, targets: [{address: %s}]}
  - {name: v2, targets: [{address: %s}]}
routes:
  - name: r
    match: {path_prefix: /, flags: [almost-all]}
    split: [{upstream: v2, segment: half}, {upstream: legacy, weight: 100}]
    plugins: [{name: api-key, config: {keys: [%s]}}]
  - name: fallback
    match: {path_prefix: /}
    split: [{upstream: v2, segment: half}, {upstream: legacy, weight: 100}]
    plugins: [{name: api-key, config: {keys: [%s]}}]
`, e2eCacheDir(t), pluginPath(t, "api-key"), legacy.addr, v2.addr, keys.String(), keys.String()))
	inSegment := 0
	for i := range 40 {
		key := map[string]string{"X-Api-Key": fmt.Sprintf("key-%d-0123456789abcdef", i)}
		first := servedBy(do(t, "GET", g.url("/x"), key, nil))
		for range 3 {
			if again := servedBy(do(t, "GET", g.url("/x"), key, nil)); again != first {
				t.Fatalf("consumer c%d went to %s, then %s", i, first, again)
			}
		}
		if first == "v2" {
			inSegment++
		}
	}
	if inSegment < 10 || inSegment > 30 {
		t.Errorf("%d of 40 consumers in a 50%% segment", inSegment)
	}
}

// TestSplitOfOneUpstreamRoute: a run-time split of a route with one
// upstream ends when the file's upstream of that route is edited.
func TestSplitOfOneUpstreamRoute(t *testing.T) {
	a, b, c := startUpstream(t, "stable"), startUpstream(t, "canary"), startUpstream(t, "v2")
	cfg := fmt.Sprintf(baseConfig, 100) + fmt.Sprintf(`
upstreams:
  - {name: a, targets: [{address: %s}]}
  - {name: b, targets: [{address: %s}]}
  - {name: c, targets: [{address: %s}]}
routes:
  - {name: r, match: {path_prefix: /}, upstream: a}
`, a.addr, b.addr, c.addr)
	g := startGatewayConfig(t, cfg)
	if r := g.adminJSON(t, "PUT", "/routes/r/split", []map[string]any{{"upstream": "b", "weight": 100}, {"upstream": "a", "weight": 0}}); r.status != 200 {
		t.Fatalf("PUT split: %d %s", r.status, r.body)
	}
	if s := servedBy(do(t, "GET", g.url("/x"), nil, nil)); s != "canary" {
		t.Fatalf("after the run-time split: served by %s", s)
	}
	writeConfig(t, g.cfgPath, strings.Replace(cfg, "upstream: a}", "upstream: c}", 1))
	if _, err := g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if s := servedBy(do(t, "GET", g.url("/x"), nil, nil)); s != "v2" {
		t.Errorf("after the file's upstream changed to c: served by %s (the file must win)", s)
	}
}

// TestStartEndsUnservableOverrides: at start, a run-time change in the
// state file that the config cannot serve (a split naming an upstream the
// file no longer has, a canary whose version lived only in the stopped
// process) is ended and audited, and the gateway starts.
func TestStartEndsUnservableOverrides(t *testing.T) {
	a, b := startUpstream(t, "stable"), startUpstream(t, "canary")
	cfg := fmt.Sprintf(baseConfig, 100) + fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: raw, module: %q}
upstreams:
  - {name: a, targets: [{address: %s}]}
  - {name: b, targets: [{address: %s}]}
routes:
  - {name: r, match: {path_prefix: /}, upstream: a, plugins: [{name: raw}]}
`, e2eCacheDir(t), pluginPath(t, "raw-wat"), a.addr, b.addr)
	g := startGatewayConfig(t, cfg)
	if r := g.adminJSON(t, "PUT", "/routes/r/split", []map[string]any{{"upstream": "b", "weight": 100}}); r.status != 200 {
		t.Fatalf("PUT split: %d %s", r.status, r.body)
	}
	var up PluginChange
	if err := json.Unmarshal(g.adminBody(t, "POST", "/plugins/raw/versions", rawWatVariant(t, "2")).body, &up); err != nil {
		t.Fatal(err)
	}
	if r := g.adminJSON(t, "PUT", "/plugins/raw/canary", map[string]any{"sha256": up.SHA256, "percent": 50}); r.status != 200 {
		t.Fatalf("PUT canary: %d %s", r.status, r.body)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Upstream b leaves the file; the canary's version left with the process.
	writeConfig(t, g.cfgPath, strings.Replace(cfg, fmt.Sprintf("  - {name: b, targets: [{address: %s}]}\n", b.addr), "", 1))
	g2 := startGatewayFile(t, g.cfgPath)
	if s := servedBy(do(t, "GET", g2.url("/x"), nil, nil)); s != "stable" {
		t.Errorf("after the start: served by %s, want the file's upstream", s)
	}
	var audit AuditView
	if err := json.Unmarshal(g2.admin(t, "GET", "/audit").body, &audit); err != nil {
		t.Fatal(err)
	}
	ended := map[string]bool{}
	for _, e := range audit.Entries {
		if strings.HasPrefix(e.Actor, "gateway start: cannot serve it: ") {
			ended[e.Kind] = true
		}
	}
	if !ended["split"] || !ended[kindCanary] {
		t.Errorf("the ended overrides are not audited: %+v", audit.Entries)
	}
	if p := g2.plugin(t, "raw"); p.Canary != nil {
		t.Errorf("a canary runs after the start: %+v", p.Canary)
	}
}
