package main

// A fleet of real gateway processes on one real etcd: a config pushed with
// `wasmgate config push`, plugin hot-loads, rollbacks and traffic changes
// made through any gateway's admin API reach all of them, under load,
// through a gateway killed and restarted and through etcd killed and
// restarted.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/etcdtest"
	"github.com/wasmgate/wasmgate/host/fleet"
)

// rawWat builds plugins/raw-wat with its header value replaced: a version
// of the plugin that says which it is in X-Raw-Wat-Response.
func rawWat(t *testing.T, dir, value string) string {
	t.Helper()
	src, err := os.ReadFile("../../plugins/raw-wat/plugin.wat")
	if err != nil {
		t.Fatal(err)
	}
	const orig = `(data (i32.const 0x10) "1")`
	if !strings.Contains(string(src), orig) {
		t.Fatalf("plugin.wat no longer has %s", orig)
	}
	wat := filepath.Join(dir, "raw-"+value+".wat")
	if err := os.WriteFile(wat, []byte(strings.Replace(string(src), orig, `(data (i32.const 0x10) "`+value+`")`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "raw-"+value+".wasm")
	if b, err := exec.Command("wat2wasm", wat, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

// fleetMember is one `wasmgate serve --config etcd://...` process.
type fleetMember struct {
	*proc
	name, proxy, admin string
	up                 atomic.Bool  // in the load's rotation
	inFlight           atomic.Int64 // load requests being answered
	// client is this process's: a restarted member gets a new one, as a
	// load balancer opens new connections to a new pod, rather than
	// requests on connections its killed predecessor left.
	client atomic.Pointer[fasthttp.Client]
}

func (m *fleetMember) start(t *testing.T, source string) {
	t.Helper()
	m.client.Store(&fasthttp.Client{})
	m.proc = startProc(t, testEnv("WASMGATE_ADMIN_TOKEN="+testToken), wasmgateBin,
		"serve", "--config", source, "--listen", m.proxy, "--admin", m.admin)
	waitForWithin(t, m.name+" ready", 30*time.Second, func() bool {
		if m.exited() {
			t.Fatalf("%s exited:\n%s", m.name, m.stderr.String())
		}
		r, err := request("GET", "http://"+m.admin+"/readyz", bearer(testToken), "")
		return err == nil && r.status == 200
	})
	m.up.Store(true)
}

// startFleet starts n members on the fleet at source, each on ports of
// its own.
func startFleet(t *testing.T, source string, n int) []*fleetMember {
	t.Helper()
	members := make([]*fleetMember, n)
	for i := range members {
		members[i] = &fleetMember{name: fmt.Sprintf("gateway-%d", i+1),
			proxy: fmt.Sprintf("127.0.0.1:%d", freePort(t)), admin: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		members[i].start(t, source)
	}
	return members
}

// fleetView is what a member's GET /fleet says.
func (m *fleetMember) fleetView(t *testing.T) (v struct {
	Connected       bool   `json:"connected"`
	ConfigRevision  int64  `json:"config_revision"`
	ConfigName      string `json:"config_name"`
	TrafficRevision int64  `json:"traffic_revision"`
	LastError       string `json:"last_error"`
}) {
	t.Helper()
	r := get(t, "http://"+m.admin+"/fleet", bearer(testToken))
	if r.status != 200 {
		t.Fatalf("%s GET /fleet: %d %s", m.name, r.status, r.body)
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// probe sends GET path through a member and returns the status, the
// body and the plugin version that answered (X-Raw-Wat-Response).
func (m *fleetMember) probe(path string) (status int, body, version string, err error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + m.proxy + path)
	if err := m.client.Load().DoTimeout(req, resp, 20*time.Second); err != nil {
		return 0, "", "", err
	}
	return resp.StatusCode(), string(resp.Body()), string(resp.Header.Peek("X-Raw-Wat-Response")), nil
}

func (m *fleetMember) adminCall(t *testing.T, method, path, body string) reply {
	t.Helper()
	r, err := request(method, "http://"+m.admin+path, bearer(testToken), body)
	if err != nil {
		t.Fatalf("%s %s %s: %v", m.name, method, path, err)
	}
	return r
}

func fleetConfig(a, b *backend, module string, extraRoute bool) string {
	s := fmt.Sprintf(`# a fleet's config: every gateway serves it
log: {access_log: "off"}
listen: {shutdown_timeout: 10s}
fleet: {check_interval: 200ms}
traffic: {sticky: "header:X-User"}
plugins:
  - {name: raw, module: %s, pool: {min_instances: 1}, limits: {call_timeout: 5s}}
upstreams:
  - {name: alpha, targets: [{address: %s}]}
  - {name: beta, targets: [{address: %s}]}
routes:
  - {name: plugged, match: {path_prefix: /a}, upstream: alpha, plugins: [{name: raw}]}
  - {name: moving, match: {path_prefix: /s}, split: [{upstream: alpha, weight: 100}, {upstream: beta, weight: 0}]}
`, module, a.addr, b.addr)
	if extraRoute {
		s += "  - {name: added, match: {path_prefix: /d}, upstream: beta}\n"
	}
	return s
}

// newFleetFixture starts what the fleet tests share: an etcd, the fleet's
// source on it, two backends, and a directory holding raw.wasm (version 1
// of plugins/raw-wat) and gateway.yaml, a config naming them.
func newFleetFixture(t *testing.T) (etcd *etcdtest.Server, source string, a, b *backend, dir string) {
	t.Helper()
	etcd = etcdtest.Start(t)
	source = etcd.URL("/wasmgate")
	a, b = startBackend(t, "alpha"), startBackend(t, "beta")
	dir = t.TempDir()
	if err := os.Rename(rawWat(t, dir, "1"), filepath.Join(dir, "raw.wasm")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "gateway.yaml"), fleetConfig(a, b, "raw.wasm", false))
	return etcd, source, a, b, dir
}

func TestFleet(t *testing.T) {
	etcd, source, a, b, dir := newFleetFixture(t)
	v2 := rawWat(t, dir, "2")
	cfgPath := filepath.Join(dir, "gateway.yaml")

	// Nothing pushed yet: a gateway has nothing to serve and says so.
	if code, _, stderr := runBin(t, testEnv("WASMGATE_ADMIN_TOKEN="+testToken), "serve", "--config", source); code == 0 || !strings.Contains(stderr, "no config has been pushed") {
		t.Fatalf("serve on an empty fleet: exit %d, stderr %s", code, stderr)
	}
	// An invalid config is not pushed: file:line, as config validate says.
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "routes:\n  - {name: x, match: {path_prefix: /x}, upstream: nowhere}\n")
	if code, _, stderr := runBin(t, testEnv(), "config", "push", bad, "--to", source); code != 1 || !strings.Contains(stderr, "bad.yaml:2:") {
		t.Fatalf("push of an invalid config: exit %d, stderr %s", code, stderr)
	}
	code, stdout, stderr := runBin(t, testEnv(), "config", "push", cfgPath, "--to", source, "--revision", "0")
	if code != 0 || !strings.Contains(stdout, "as revision") {
		t.Fatalf("first push: exit %d\n%s%s", code, stdout, stderr)
	}

	members := startFleet(t, source, 3)

	// Load on every member in rotation for the whole test; a member taken
	// out of rotation (as a load balancer would before it stops) gets none.
	var sent, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := members[i%len(members)]
				// In flight before the check: a member taken out of
				// rotation and then idle has no request coming either.
				m.inFlight.Add(1)
				if !m.up.Load() {
					m.inFlight.Add(-1)
					time.Sleep(time.Millisecond)
					continue
				}
				path := []string{"/a/x", "/s/y"}[i/len(members)%2]
				status, body, _, err := m.probe(path)
				m.inFlight.Add(-1)
				sent.Add(1)
				if err != nil || status != 200 {
					failed.Add(1)
					failMu.Lock()
					if len(failures) < 10 {
						failures = append(failures, fmt.Sprintf("%s %s: %d %q %v", m.name, path, status, body, err))
					}
					failMu.Unlock()
				}
			}
		}(w)
	}
	defer func() {
		close(stop)
		wg.Wait()
		t.Logf("load: %d requests, %d failed", sent.Load(), failed.Load())
		if failed.Load() > 0 {
			t.Errorf("%d of %d requests under load failed: %q", failed.Load(), sent.Load(), failures)
		}
	}()

	// everyMember waits until each member in rotation answers path as want.
	everyMember := func(what, path string, want func(status int, body, version string) bool) {
		t.Helper()
		for _, m := range members {
			if !m.up.Load() {
				continue
			}
			waitForWithin(t, m.name+": "+what, 20*time.Second, func() bool {
				status, body, version, err := m.probe(path)
				return err == nil && want(status, body, version)
			})
		}
	}
	version := func(v string) func(int, string, string) bool {
		return func(status int, _, got string) bool { return status == 200 && got == v }
	}
	servedBy := func(id string) func(int, string, string) bool {
		return func(status int, body, _ string) bool { return status == 200 && strings.HasPrefix(body, id+" ") }
	}
	everyMember("plugin v1", "/a/1", version("1"))

	// A config push reaches every member.
	writeFile(t, cfgPath, fleetConfig(a, b, "raw.wasm", true))
	if code, stdout, stderr := runBin(t, testEnv(), "config", "push", cfgPath, "--to", source); code != 0 {
		t.Fatalf("second push: exit %d\n%s%s", code, stdout, stderr)
	}
	everyMember("pushed route /d", "/d/1", servedBy("beta"))
	// A push made against an old revision loses, and says so.
	if code, _, stderr := runBin(t, testEnv(), "config", "push", cfgPath, "--to", source, "--revision", "1"); code != 1 || !strings.Contains(stderr, "someone pushed since") {
		t.Fatalf("stale push: exit %d, stderr %s", code, stderr)
	}
	if code, stdout, _ := runBin(t, testEnv(), "config", "pull", source); code != 0 || !strings.Contains(stdout, "name: added") {
		t.Fatalf("pull: exit %d, %s", code, stdout)
	}

	// A hot-load through one member reaches all.
	mod2, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	if r := members[0].adminCall(t, "PUT", "/plugins/raw", string(mod2)); r.status != 200 {
		t.Fatalf("hot-load: %d %s", r.status, r.body)
	}
	everyMember("hot-loaded v2", "/a/2", version("2"))

	// A plugin canary: a version uploaded through one member, the canary
	// started through another, reach all; ended through the third.
	mod3, err := os.ReadFile(rawWat(t, dir, "3"))
	if err != nil {
		t.Fatal(err)
	}
	r := members[0].adminCall(t, "POST", "/plugins/raw/versions", string(mod3))
	var kept struct {
		SHA256 string `json:"sha256"`
	}
	if r.status != 200 || json.Unmarshal([]byte(r.body), &kept) != nil {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	if r := members[1].adminCall(t, "PUT", "/plugins/raw/canary", fmt.Sprintf(`{"sha256":%q,"percent":100}`, kept.SHA256)); r.status != 200 {
		t.Fatalf("canary: %d %s", r.status, r.body)
	}
	everyMember("canary v3", "/a/c", version("3"))
	if r := members[2].adminCall(t, "DELETE", "/plugins/raw/canary", ""); r.status != 200 {
		t.Fatalf("end canary: %d %s", r.status, r.body)
	}
	everyMember("canary ended", "/a/c2", version("2"))

	// A traffic change through another member reaches all, and so does
	// its audit entry.
	if r := members[1].adminCall(t, "PUT", "/routes/moving/split", `[{"upstream":"alpha","weight":0},{"upstream":"beta","weight":100}]`); r.status != 200 {
		t.Fatalf("split: %d %s", r.status, r.body)
	}
	everyMember("split to beta", "/s/1", servedBy("beta"))
	waitFor(t, "the split's audit entry on gateway-3", func() bool {
		body := strings.ReplaceAll(members[2].adminCall(t, "GET", "/audit", "").body, " ", "")
		return strings.Contains(body, `"kind":"split"`) && strings.Contains(body, `"name":"moving"`)
	})

	// A rollback through the third reaches all.
	if r := members[2].adminCall(t, "POST", "/plugins/raw/rollback", ""); r.status != 200 {
		t.Fatalf("rollback: %d %s", r.status, r.body)
	}
	everyMember("rolled back to v1", "/a/3", version("1"))

	// A member killed and restarted catches up with what changed while it
	// was down.
	dead := members[2]
	dead.up.Store(false)
	waitFor(t, "gateway-3 idle", func() bool { return dead.inFlight.Load() == 0 })
	_ = syscall.Kill(-dead.cmd.Process.Pid, syscall.SIGKILL)
	dead.wait(t, waitBound)
	if r := members[0].adminCall(t, "PUT", "/plugins/raw", string(mod2)); r.status != 200 {
		t.Fatalf("hot-load while a member is down: %d %s", r.status, r.body)
	}
	if r := members[0].adminCall(t, "POST", "/rollback", ""); r.status != 200 { // the split back to alpha
		t.Fatalf("traffic rollback: %d %s", r.status, r.body)
	}
	dead.start(t, source)
	everyMember("v2 after the restart", "/a/4", version("2"))
	everyMember("split rolled back", "/s/2", servedBy("alpha"))

	// etcd goes away: every member keeps serving what it has, stays ready
	// (fleet.unready_without_etcd is off), reports the loss, and refuses
	// changes it cannot share.
	etcd.Kill()
	for _, m := range members {
		waitForWithin(t, m.name+" noticing etcd is gone", 20*time.Second, func() bool { return !m.fleetView(t).Connected })
		if r := m.adminCall(t, "GET", "/readyz", ""); r.status != 200 {
			t.Fatalf("%s not ready without etcd: %d", m.name, r.status)
		}
	}
	mod4, err := os.ReadFile(rawWat(t, dir, "4"))
	if err != nil {
		t.Fatal(err)
	}
	if r := members[1].adminCall(t, "PUT", "/plugins/raw", string(mod4)); r.status != 503 || !strings.Contains(r.body, "fleet_unavailable") {
		t.Fatalf("hot-load without etcd: %d %s, want 503 fleet_unavailable", r.status, r.body)
	}
	if r := members[1].adminCall(t, "PUT", "/routes/moving/split", `[{"upstream":"alpha","weight":50},{"upstream":"beta","weight":50}]`); r.status != 503 || !strings.Contains(r.body, "fleet_unavailable") {
		t.Fatalf("traffic change without etcd: %d %s, want 503 fleet_unavailable", r.status, r.body)
	}
	everyMember("still v2 without etcd", "/a/5", version("2"))
	everyMember("still alpha without etcd", "/s/3", servedBy("alpha"))

	// etcd comes back: the members reconnect, and a push reaches all.
	etcd.Restart()
	for _, m := range members {
		waitForWithin(t, m.name+" reconnecting", 30*time.Second, func() bool { return m.fleetView(t).Connected })
	}
	writeFile(t, cfgPath, fleetConfig(a, b, "raw.wasm", false))
	if code, stdout, stderr := runBin(t, testEnv(), "config", "push", cfgPath, "--to", source); code != 0 {
		t.Fatalf("push after etcd's restart: exit %d\n%s%s", code, stdout, stderr)
	}
	everyMember("route /d removed", "/d/2", func(status int, _, _ string) bool { return status == 404 })
	// GET /fleet says so a moment after the swap, at the latest.
	var revs []int64
	waitFor(t, "every member reporting one config revision", func() bool {
		revs = revs[:0]
		for _, m := range members {
			v := m.fleetView(t)
			revs = append(revs, v.ConfigRevision)
			if v.ConfigName != "gateway.yaml" {
				t.Fatalf("%s serves %q", m.name, v.ConfigName)
			}
		}
		return slices.Min(revs) == slices.Max(revs)
	})
}

// TestFleetPropagation measures how long a config push and a hot-load take
// to reach every gateway of a fleet of three: from the write (the push's
// etcd transaction; the admin PUT on one gateway) until every gateway
// serves the change (its GET /fleet revision; its proxied answers), over
// 20 changes each. It fails when a change does not reach every gateway;
// the figures are printed (go test -v -run TestFleetPropagation
// ./cmd/wasmgate), not checked.
func TestFleetPropagation(t *testing.T) {
	_, source, a, b, dir := newFleetFixture(t)
	cfgPath := filepath.Join(dir, "gateway.yaml")
	if code, stdout, stderr := runBin(t, testEnv(), "config", "push", cfgPath, "--to", source); code != 0 {
		t.Fatalf("push: exit %d\n%s%s", code, stdout, stderr)
	}
	members := startFleet(t, source, 3)
	u, err := fleet.ParseURL(source)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := fleet.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	modules := map[string][]byte{}
	for _, v := range []string{"1", "2"} {
		if modules[v], err = os.ReadFile(rawWat(t, dir, v)); err != nil {
			t.Fatal(err)
		}
	}
	sha, err := cli.PutModule(ctx, modules["1"])
	if err != nil {
		t.Fatal(err)
	}

	// reachAll waits until seen(m) holds on every member, each polled by
	// its own goroutine, and returns when the last one did.
	reachAll := func(seen func(m *fleetMember) bool) time.Time {
		var wg sync.WaitGroup
		at := make([]time.Time, len(members))
		for i, m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					if seen(m) {
						at[i] = time.Now()
						return
					}
				}
			}()
		}
		wg.Wait()
		for i, when := range at {
			if when.IsZero() {
				t.Fatalf("%s never saw the change", members[i].name)
			}
		}
		return slices.MaxFunc(at, func(x, y time.Time) int { return x.Compare(y) })
	}
	revision := func(m *fleetMember) int64 {
		r, err := request("GET", "http://"+m.admin+"/fleet", bearer(testToken), "")
		var v struct {
			ConfigRevision int64 `json:"config_revision"`
		}
		if err != nil || json.Unmarshal([]byte(r.body), &v) != nil {
			return 0
		}
		return v.ConfigRevision
	}

	const changes = 20
	var push, hotLoad, hotLoadLocal []time.Duration
	st, err := cli.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rev := st.DocRev
	for i := 0; i < changes; i++ {
		yaml := fleetConfig(a, b, "raw.wasm", i%2 == 0) + fmt.Sprintf("# change %d\n", i)
		start := time.Now()
		next, err := cli.PushConfig(ctx, &fleet.Doc{Name: "gateway.yaml", YAML: yaml, Modules: map[string]string{"raw.wasm": sha}, PushedAt: start}, rev)
		if err != nil {
			t.Fatal(err)
		}
		rev = next
		push = append(push, reachAll(func(m *fleetMember) bool { return revision(m) >= next }).Sub(start))
	}
	for i := 0; i < changes; i++ {
		v := []string{"2", "1"}[i%2]
		start := time.Now()
		if r := members[i%len(members)].adminCall(t, "PUT", "/plugins/raw", string(modules[v])); r.status != 200 {
			t.Fatalf("hot-load: %d %s", r.status, r.body)
		}
		hotLoadLocal = append(hotLoadLocal, time.Since(start))
		hotLoad = append(hotLoad, reachAll(func(m *fleetMember) bool {
			status, _, got, err := m.probe("/a/p")
			return err == nil && status == 200 && got == v
		}).Sub(start))
	}
	pct := func(d []time.Duration, p int) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, (len(s)*p+99)/100-1)]
	}
	t.Logf("time for a change to reach all %d gateways, over %d changes each:", len(members), changes)
	t.Logf("| change | p50 | p99 |")
	t.Logf("|---|---:|---:|")
	t.Logf("| config push (etcd write → every gateway serves the revision) | %v | %v |", pct(push, 50).Round(time.Millisecond), pct(push, 99).Round(time.Millisecond))
	t.Logf("| hot-load (PUT on one gateway → every gateway answers with the version) | %v | %v |", pct(hotLoad, 50).Round(time.Millisecond), pct(hotLoad, 99).Round(time.Millisecond))
	t.Logf("| of which the PUT itself (build, bind, etcd write) | %v | %v |", pct(hotLoadLocal, 50).Round(time.Millisecond), pct(hotLoadLocal, 99).Round(time.Millisecond))
}
