package server

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// quarantineRoute is the state GET /plugins reports for a plugin's binding
// on one route.
type quarantineRoute struct {
	Quarantined         bool  `json:"quarantined"`
	ConsecutiveFailures int   `json:"consecutive_failures"`
	Calls               int64 `json:"calls"`
}

// pluginRoute returns what GET /plugins says about plugin on route.
func (g *gateway) pluginRoute(t *testing.T, plugin, route string) quarantineRoute {
	t.Helper()
	var list struct {
		Plugins []struct {
			Name   string `json:"name"`
			Routes []struct {
				Route string `json:"route"`
				quarantineRoute
			} `json:"routes"`
		} `json:"plugins"`
	}
	r := g.admin(t, "GET", "/plugins")
	if err := json.Unmarshal(r.body, &list); err != nil {
		t.Fatalf("GET /plugins: %d %q: %v", r.status, r.body, err)
	}
	for _, p := range list.Plugins {
		for _, rt := range p.Routes {
			if p.Name == plugin && rt.Route == route {
				return rt.quarantineRoute
			}
		}
	}
	t.Fatalf("GET /plugins lists no plugin %q on route %q: %s", plugin, route, r.body)
	return quarantineRoute{}
}

// hookCalls sums wasmgate_plugin_call_seconds_count over the hooks of a
// plugin: the calls the runtime made into it.
func (g *gateway) hookCalls(t *testing.T, plugin string) int64 {
	t.Helper()
	var n int64
	for _, l := range strings.Split(string(g.admin(t, "GET", "/metrics").body), "\n") {
		if !strings.HasPrefix(l, "wasmgate_plugin_call_seconds_count{") || !strings.Contains(l, `plugin="`+plugin+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", l, err)
		}
		n += int64(v)
	}
	return n
}

// TestOnResponseFailuresQuarantine: a plugin whose on_response traps on
// every request while its on_request succeeds (issue #9 item 8) is
// quarantined after quarantine.after requests, under either failure
// policy: fail_closed answers 503 without reaching the upstream, fail_open
// forwards the request with the plugin skipped, never calling it. A trial
// that passes on_request but fails on_response again doubles the backoff.
func TestOnResponseFailuresQuarantine(t *testing.T) {
	warmPlugins(t, "fault")
	closedUp, openUp, trialUp := startUpstream(t, "closed"), startUpstream(t, "open"), startUpstream(t, "trial")
	const after = 3
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "plugin_runtime: {cache_dir: %q}\nplugins:\n", e2eCacheDir(t))
	// One plugin name per route, so that metrics and logs are its own.
	for _, p := range []struct{ name, quarantine string }{
		{"resp-closed", "{after: 3, backoff: 1m, max_backoff: 1m}"},
		{"resp-open", "{after: 3, backoff: 1m, max_backoff: 1m}"},
		{"resp-trial", "{after: 3, backoff: 300ms, max_backoff: 1m}"},
	} {
		fmt.Fprintf(&cfg, "  - {name: %s, module: %q, limits: {call_timeout: 5s}, quarantine: %s, config: {mode: trap, on: response}}\n",
			p.name, pluginPath(t, "fault"), p.quarantine)
	}
	fmt.Fprintf(&cfg, `upstreams:
  - {name: closed, targets: [{address: %s}]}
  - {name: open, targets: [{address: %s}]}
  - {name: trial, targets: [{address: %s}]}
routes:
  - {name: closed, match: {path_prefix: /closed}, upstream: closed, plugins: [{name: resp-closed, failure_policy: fail_closed}]}
  - {name: open, match: {path_prefix: /open}, upstream: open, plugins: [{name: resp-open, failure_policy: fail_open}]}
  - {name: trial, match: {path_prefix: /trial}, upstream: trial, plugins: [{name: resp-trial, failure_policy: fail_closed}]}
`, closedUp.addr, openUp.addr, trialUp.addr)
	g := startGateway(t, 100, cfg.String())
	post := func(path string) response {
		t.Helper()
		return do(t, "POST", g.url(path), map[string]string{"Content-Type": "application/json"}, []byte(`{"n":1}`))
	}
	failedInResponse := func(r response, plugin string) {
		t.Helper()
		if r.status != 502 || !strings.Contains(string(r.body), `"error":"plugin_failed"`) ||
			!strings.Contains(string(r.body), `"plugin":"`+plugin+`"`) || !strings.Contains(string(r.body), `"kind":"trap"`) {
			t.Fatalf("want 502 plugin_failed (trap) from %s, got %d %s", plugin, r.status, r.body)
		}
	}
	unavailable := func(r response, plugin string) {
		t.Helper()
		if r.status != 503 || !strings.Contains(string(r.body), `"error":"plugin_unavailable"`) ||
			!strings.Contains(string(r.body), `"plugin":"`+plugin+`"`) || !strings.Contains(string(r.body), `"kind":"quarantined"`) {
			t.Fatalf("want 503 plugin_unavailable (quarantined) from %s, got %d %s", plugin, r.status, r.body)
		}
	}

	t.Run("fail_closed", func(t *testing.T) {
		for i := 1; i <= after; i++ {
			if st := g.pluginRoute(t, "resp-closed", "closed"); st.Quarantined {
				t.Fatalf("quarantined after %d requests, before the threshold: %+v", i-1, st)
			}
			// on_request passes, the upstream answers, on_response traps.
			failedInResponse(post("/closed/x"), "resp-closed")
			if n := closedUp.hits.Load(); n != int64(i) {
				t.Fatalf("upstream saw %d requests after %d, want %d", n, i, i)
			}
		}
		st := g.pluginRoute(t, "resp-closed", "closed")
		if !st.Quarantined || st.ConsecutiveFailures != after || st.Calls != 2*after {
			t.Fatalf("after %d failing requests: %+v, want quarantined, %d consecutive failures, %d calls", after, st, after, 2*after)
		}
		if l := findLog(g, func(m map[string]any) bool {
			return m["msg"] == "plugin quarantined" && m["plugin"] == "resp-closed"
		}); l == nil || l["stage"] != "on_response" || l["route"] != "closed" {
			t.Errorf("quarantine log line: %v", l)
		}
		calls := g.hookCalls(t, "resp-closed")
		for range 5 {
			unavailable(post("/closed/x"), "resp-closed")
		}
		if n := closedUp.hits.Load(); n != after {
			t.Fatalf("the upstream saw %d requests, want %d: requests went on while the plugin was quarantined", n, after)
		}
		if st := g.pluginRoute(t, "resp-closed", "closed"); !st.Quarantined || st.Calls != 2*after {
			t.Fatalf("while quarantined: %+v, want still quarantined and %d calls", st, 2*after)
		}
		if n := g.hookCalls(t, "resp-closed"); n != calls {
			t.Fatalf("the runtime made %d hook calls while the plugin was quarantined", n-calls)
		}
	})

	t.Run("fail_open", func(t *testing.T) {
		for i := 1; i <= after; i++ {
			// The failure is skipped: the upstream's answer goes out.
			if r := post("/open/x"); r.status != 200 || r.echo(t).ID != "open" {
				t.Fatalf("request %d: %d %s, want the upstream's answer", i, r.status, r.body)
			}
		}
		st := g.pluginRoute(t, "resp-open", "open")
		if !st.Quarantined || st.ConsecutiveFailures != after || st.Calls != 2*after {
			t.Fatalf("after %d failing requests: %+v, want quarantined, %d consecutive failures, %d calls", after, st, after, 2*after)
		}
		calls := g.hookCalls(t, "resp-open")
		if calls != 2*after {
			t.Fatalf("the runtime made %d hook calls, want %d", calls, 2*after)
		}
		for i := 1; i <= 5; i++ {
			// The policy: the request goes on without the plugin.
			if r := post("/open/x"); r.status != 200 || r.echo(t).ID != "open" {
				t.Fatalf("quarantined request %d: %d %s, want the upstream's answer", i, r.status, r.body)
			}
			if n := openUp.hits.Load(); n != int64(after+i) {
				t.Fatalf("upstream saw %d requests, want %d", n, after+i)
			}
		}
		if st := g.pluginRoute(t, "resp-open", "open"); !st.Quarantined || st.Calls != 2*after {
			t.Fatalf("while quarantined: %+v, want still quarantined and %d calls: the plugin is still called", st, 2*after)
		}
		if n := g.hookCalls(t, "resp-open"); n != calls {
			t.Fatalf("the runtime made %d hook calls while the plugin was quarantined", n-calls)
		}
		if m := string(g.admin(t, "GET", "/metrics").body); !strings.Contains(m, `wasmgate_plugin_skipped_total{kind="quarantined",plugin="resp-open",route="open"}`) {
			t.Error("no skip counted as quarantined")
		}
	})

	t.Run("trial", func(t *testing.T) {
		var lastSent time.Time
		for range after {
			lastSent = time.Now()
			failedInResponse(post("/trial/x"), "resp-trial")
		}
		if st := g.pluginRoute(t, "resp-trial", "trial"); !st.Quarantined {
			t.Fatalf("not quarantined: %+v", st)
		}
		// waitTrial polls until a request is let through; it returns its
		// answer, when it was sent and when the answer arrived. Requests
		// refused meanwhile never reach the upstream.
		waitTrial := func() (r response, sent, answered time.Time) {
			t.Helper()
			hits := trialUp.hits.Load()
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				sent = time.Now()
				if r = post("/trial/x"); r.status != 503 {
					return r, sent, time.Now()
				}
				unavailable(r, "resp-trial")
				if n := trialUp.hits.Load(); n != hits {
					t.Fatalf("a refused request reached the upstream (%d hits, want %d)", n, hits)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Fatal("the quarantine never ended")
			return
		}
		// Each trial passes on_request (the quarantine is lifted), reaches
		// the upstream and fails in on_response: the plugin is quarantined
		// again at once, for twice as long. The quarantine began after
		// lastSent, so the next trial cannot be answered before
		// lastSent+backoff.
		backoff := 300 * time.Millisecond
		for range 3 {
			r, sent, answered := waitTrial()
			if wait := answered.Sub(lastSent); wait < backoff {
				t.Fatalf("a trial went through %v after the quarantine began, before the backoff of %v", wait, backoff)
			}
			failedInResponse(r, "resp-trial")
			unavailable(post("/trial/x"), "resp-trial")
			lastSent, backoff = sent, 2*backoff
		}
		if n := trialUp.hits.Load(); n != after+3 {
			t.Fatalf("the upstream saw %d requests, want %d (%d failures and 3 trials)", n, after+3, after)
		}
	})
}
