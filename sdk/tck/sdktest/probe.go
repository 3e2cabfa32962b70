package sdktest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/testkit"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

// The probe plugins of sdk/rust (testdata/probe) and sdk/c
// (ctest/testdata/probe.c) are test plugins written to one protocol on
// /probe/…: each fails in the ways its language lets a hook fail, and
// answers /probe/report with what the SDK's wrappers returned,
// /probe/x/rewrite-body with what on_response saw, and /probe/fetch with
// the results of an outbound batch of the URLs in X-Fetch. StartProbe and
// the checks below are what both tests share.

// Probe is a gateway serving a probe plugin, named "probe", on /probe in
// front of Upstream, allowed to call Upstream (as upstream "a") and Dead.
type Probe struct {
	*Gateway
	Upstream *tck.Upstream
	Dead     string // a loopback address nothing listens on
}

// StartProbe starts a gateway with the probe plugin module.
func StartProbe(t *testing.T, module string) *Probe {
	t.Helper()
	p := &Probe{Upstream: tck.StartUpstream(t, "a"), Dead: tck.DeadAddr(t)}
	p.Gateway = StartGateway(t, Config(fmt.Sprintf(`
plugins:
  - {name: probe, module: %q, limits: {call_timeout: 5s}}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - name: probe
    match: {path_prefix: /probe}
    upstream: a
    plugins: [{name: probe, outbound: {upstreams: [a], hosts: [%q]}}]
`, module, p.Upstream.Addr, p.Dead)))
	return p
}

// WaitLogged waits for a line of the process log about the probe that
// holds text; what names it in the failure.
func (p *Probe) WaitLogged(t *testing.T, what, text string) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, what, func() bool { return p.Logged("probe", text) })
}

// Failure is a path of the probe on which the hook fails, and a part of
// the log line the gateway writes about it.
type Failure struct{ Path, Log string }

// CheckFailures checks that each failure answers the 502 of a failed
// plugin and reaches the log.
func (p *Probe) CheckFailures(t *testing.T, failures []Failure) {
	t.Helper()
	for _, c := range failures {
		r := tck.Do(t, "GET", p.URL(c.Path), nil, nil)
		if r.Status != 502 || !strings.Contains(string(r.Body), "probe") {
			t.Errorf("%s: %d %s, want the 502 of a failed plugin", c.Path, r.Status, r.Body)
		}
		p.WaitLogged(t, fmt.Sprintf("%q in the log", c.Log), c.Log)
	}
}

// CheckReport checks /probe/report: the reads of the request (method,
// path, query and a parameter, client address, repeated headers, body and
// body ranges), the KV store, randomness and time, and the codes of the
// gateway functions. multiNames is the JSON of what the probe reports of
// the header names (each SDK reads them its own way).
func (p *Probe) CheckReport(t *testing.T, multiNames string) {
	t.Helper()
	r := tck.Do(t, "POST", p.URL("/probe/report?q=a%20b&x=1"), []string{"X-Multi", "1", "X-Multi", "2"}, []byte("abcdefgh"))
	if r.Status != 200 {
		t.Fatalf("report: %d %s", r.Status, r.Body)
	}
	tck.EqJSON(t, "report", string(r.Body), `{
		"method": "POST", "path": "/probe/report", "query": "q=a%20b&x=1", "q": "a b", "client_ip": "127.0.0.1",
		"multi": ["1", "2"], "multi_names": `+multiNames+`, "absent": true,
		"body": "abcdefgh", "range": "cde", "size": 8,
		"kv": "v1", "kv_delete": "ok", "kv_gone": "NOT_FOUND", "kv_incr": 5, "random": true, "now": true,
		"flag": "NOT_FOUND", "limit": "NOT_FOUND", "cache_key": "UNAVAILABLE",
		"claims_not_object": "BAD_ARGUMENT", "claims": "ok", "consumer": "ok", "bad_key": "BAD_ARGUMENT",
		"bad_path": "BAD_ARGUMENT", "bad_header": "BAD_ARGUMENT", "response_status": 299}`)
}

// CheckOnResponse checks the response functions in on_response
// (/probe/x/rewrite-body): the status and body the upstream answered, a
// new status, a header removed.
func (p *Probe) CheckOnResponse(t *testing.T) {
	t.Helper()
	r := tck.Do(t, "GET", p.URL("/probe/x/rewrite-body"), nil, nil)
	var got struct {
		Status   int    `json:"status"`
		Upstream string `json:"upstream"`
	}
	r.JSON(t, &got)
	var e tck.Echo
	if err := json.Unmarshal([]byte(got.Upstream), &e); err != nil || r.Status != 203 || got.Status != 200 ||
		e.URI != "/probe/x/rewrite-body" || r.Get("X-Upstream") != "" {
		t.Errorf("on_response: %d %v %s (%v)", r.Status, r.Headers, r.Body, err)
	}
}

// CheckFetch checks an outbound batch (/probe/fetch) of a part that
// answers, a dead address and a destination the route does not allow.
func (p *Probe) CheckFetch(t *testing.T) {
	t.Helper()
	r := tck.Do(t, "GET", p.URL("/probe/fetch"), []string{"X-Fetch", "upstream://a/echo/one http://" + p.Dead + "/x http://127.0.0.1:1/no"}, nil)
	var results []struct {
		Status   int    `json:"status"`
		Error    string `json:"error"`
		Upstream string `json:"upstream"`
		Body     string `json:"body"`
	}
	r.JSON(t, &results)
	if len(results) != 3 {
		t.Fatalf("fetch: %d %s", r.Status, r.Body)
	}
	var e tck.Echo
	if err := json.Unmarshal([]byte(results[0].Body), &e); err != nil || results[0].Status != 200 || results[0].Upstream != "a" ||
		e.Method != "POST" || e.Body != "hi" || strings.Join(e.Headers["X-Part"], ",") != "p" {
		t.Errorf("fetch upstream://a: %+v (%v)", results[0], err)
	}
	if results[1].Status != -2 || results[1].Error != "wasmgate: outbound connect or network error" {
		t.Errorf("fetch of a dead address: %+v", results[1])
	}
	if results[2].Status != -3 || results[2].Error != "wasmgate.http_batch: not allowed" {
		t.Errorf("fetch of a destination not allowed: %+v", results[2])
	}
}
