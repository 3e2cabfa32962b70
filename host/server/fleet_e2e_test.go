package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/wasmgate/wasmgate/host/etcdtest"
	"github.com/wasmgate/wasmgate/host/fleet"
	"github.com/wasmgate/wasmgate/host/testkit"
)

// fleetGateway starts a gateway on the fleet at source.
func fleetGateway(t *testing.T, source string) *gateway {
	t.Helper()
	g := &gateway{logs: &syncBuffer{}, access: &syncBuffer{}}
	g.start(t, Options{ConfigPath: source, Stdout: io.Discard, AdminToken: testToken,
		ListenAddress: "127.0.0.1:0", AdminAddress: "127.0.0.1:0"})
	return g
}

func fleetDoc(t *testing.T, cli *fleet.Client, rev int64, yaml string) int64 {
	t.Helper()
	next, err := cli.PushConfig(context.Background(), &fleet.Doc{Name: "fleet.yaml", YAML: yaml, PushedBy: "test"}, rev)
	if err != nil {
		t.Fatal(err)
	}
	return next
}

// A document this gateway refuses (one pushed around `config push`'s
// validation, or one another gateway's files make valid) leaves the running
// config serving, is not retried, and is reported with its file:line; and
// fleet.unready_without_etcd makes /readyz follow etcd.
func TestFleetRejectedConfigAndReadiness(t *testing.T) {
	etcd := etcdtest.Start(t)
	u, _ := fleet.ParseURL(etcd.URL("/gw"))
	cli, err := fleet.Dial(u)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	up := startUpstream(t, "a")
	good := fmt.Sprintf(`fleet: {unready_without_etcd: true, check_interval: 100ms}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: r, match: {path_prefix: /}, upstream: a}
`, up.addr)
	rev := fleetDoc(t, cli, 0, good)
	g := fleetGateway(t, u.String())
	view := func() FleetView {
		var v FleetView
		r := g.adminBody(t, "GET", "/fleet", nil)
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("GET /fleet: %d %s", r.status, r.body)
		}
		return v
	}
	if v := view(); v.ConfigRevision != rev || !v.Connected || v.ConfigName != "fleet.yaml" {
		t.Fatalf("GET /fleet = %+v", v)
	}
	served := func() bool {
		r, err := tryDo("GET", "http://"+g.ProxyAddr()+"/x", nil, nil)
		return err == nil && r.status == 200
	}

	for _, tc := range []struct{ name, yaml, want string }{
		{"schema", good + "  - {name: b, match: {path_prefix: /b}, upstream: nowhere}\n", `fleet.yaml:5:`},
		{"module not pushed", good + "plugins: [{name: p, module: p.wasm}]\n", `module "p.wasm" was not pushed`},
		{"not yaml", "routes: [", "fleet.yaml:1:"},
	} {
		rev = fleetDoc(t, cli, rev, tc.yaml)
		testkit.WaitFor(t, 20*time.Second, tc.name+": rejected", func() bool { return view().RejectedRevision == rev })
		if v := view(); !strings.Contains(v.LastError, tc.want) || v.ConfigRevision == rev {
			t.Errorf("%s: GET /fleet = %+v, want the error to say %q", tc.name, v, tc.want)
		}
		if !served() {
			t.Fatalf("%s: the running config stopped serving", tc.name)
		}
	}
	if m := string(g.adminBody(t, "GET", "/metrics", nil).body); !strings.Contains(m, fmt.Sprintf("wasmgate_fleet_rejected_revision %d\n", rev)) ||
		!strings.Contains(m, "wasmgate_fleet_connected 1\n") {
		t.Errorf("metrics lack the fleet's gauges:\n%s", m)
	}
	if n := strings.Count(g.logs.String(), "config reload rejected"); n != 3 {
		t.Errorf("%d rejections logged, want 3 (one per document, not one per check)", n)
	}

	// Without etcd the gateway serves, and says it is not ready because
	// the config asks for that.
	if !g.Ready() {
		t.Fatal("not ready with etcd up")
	}
	etcd.Kill()
	testkit.WaitFor(t, 20*time.Second, "not ready without etcd", func() bool { return !g.Ready() })
	if r := g.adminBody(t, "GET", "/readyz", nil); r.status != 503 {
		t.Fatalf("/readyz without etcd: %d", r.status)
	}
	if !served() {
		t.Fatal("not serving without etcd")
	}
	etcd.Restart()
	testkit.WaitFor(t, 30*time.Second, "ready with etcd back", g.Ready)
	// A valid document after the rejected ones is served.
	rev = fleetDoc(t, cli, rev, strings.Replace(good, "path_prefix: /", "path_prefix: /y", 1))
	testkit.WaitFor(t, 20*time.Second, "the valid document served", func() bool { return view().ConfigRevision == rev })
	if served() {
		t.Fatal("/x still routed after a config without it")
	}

	// The config key deleted, after a rejected document: the gateway keeps
	// serving what it has and says why.
	rev = fleetDoc(t, cli, rev, "routes: [")
	testkit.WaitFor(t, 20*time.Second, "rejected again", func() bool { return view().RejectedRevision == rev })
	raw, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint()}})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Delete(context.Background(), "/gw/config"); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "the deletion reported", func() bool { return strings.Contains(view().LastError, "no config in etcd") })
	yServed := func() bool {
		r, err := tryDo("GET", "http://"+g.ProxyAddr()+"/y", nil, nil)
		return err == nil && r.status == 200
	}
	if !yServed() || !g.Ready() {
		t.Fatal("the gateway stopped serving when its config was deleted")
	}

	// etcd rebuilt without its data (same flags, same cluster id): a new
	// first push is served, though its revision is lower than any before.
	etcd.Wipe()
	rev = fleetDoc(t, cli, 0, good)
	testkit.WaitFor(t, 30*time.Second, "the first push after the wipe served", func() bool { return view().ConfigRevision == rev })
	if !served() {
		t.Fatal("the config pushed after the wipe is not served")
	}
}
