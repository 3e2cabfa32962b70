package server

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// TestUpstreamTLS runs the gateway against real HTTPS upstreams, with a CA,
// server and client certificates made by the test: mTLS works; a wrong CA,
// an expired certificate and a missing client certificate are each refused
// with 502 upstream_tls, counted as kind tls and tried once; verification
// off works and is warned about; a client certificate rotated on disk is
// used by new connections with no reload; a config naming a missing file
// is refused at the key that names it.
func TestUpstreamTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "test CA"), tlstest.NewCA(t, "other CA")
	tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	tlstest.WriteFile(t, filepath.Join(dir, "other.pem"), other.PEM)
	certF, keyF := tlstest.WriteCert(t, dir, "client", ca.Client(t, "gateway"))
	server := ca.Server(t)

	// Without keep-alive, every request is a new handshake with the files
	// of the moment.
	good := tlstest.NewServer(t, "good", tlstest.ServerConfig{Cert: server, ClientCAs: ca.Pool()})
	wrongCA := tlstest.NewServer(t, "wrongca", tlstest.ServerConfig{Cert: other.Server(t), KeepAlive: true})
	expired := tlstest.NewServer(t, "expired", tlstest.ServerConfig{Cert: ca.Issue(t, tlstest.Options{CN: "127.0.0.1",
		Names: []string{"127.0.0.1"}, NotBefore: server.TLS.Leaf.NotBefore.AddDate(0, 0, -2), NotAfter: server.TLS.Leaf.NotBefore})})
	noCert := tlstest.NewServer(t, "nocert", tlstest.ServerConfig{Cert: server, ClientCAs: ca.Pool(), KeepAlive: true})
	insecure := tlstest.NewServer(t, "insecure", tlstest.ServerConfig{Cert: other.Server(t), KeepAlive: true})

	upstreams := fmt.Sprintf(`
upstreams:
  - name: good
    targets: [{address: %s}]
    tls: {ca: ca.pem, client_cert: client.crt, client_key: client.key, min_version: "1.2"}
  - name: wrongca
    targets: [{address: %s}]
    tls: {ca: ca.pem}
    retries: {attempts: 2, on: [connect_error, reset, "502"]}
  - name: expired
    targets: [{address: %s}]
    tls: {ca: ca.pem}
  - name: nocert
    targets: [{address: %s}]
    tls: {ca: ca.pem}
  - name: insecure
    targets: [{address: %s}]
    tls: {insecure_skip_verify: true}
routes:
  - {name: good, match: {path_prefix: /good}, upstream: good}
  - {name: wrongca, match: {path_prefix: /wrongca}, upstream: wrongca}
  - {name: expired, match: {path_prefix: /expired}, upstream: expired}
  - {name: nocert, match: {path_prefix: /nocert}, upstream: nocert}
  - {name: insecure, match: {path_prefix: /insecure}, upstream: insecure}
`, good.Addr, wrongCA.Addr, expired.Addr, noCert.Addr, insecure.Addr)
	t.Setenv("TEST_ADMIN_TOKEN", testToken)
	path := filepath.Join(dir, "wasmgate.yaml")
	writeConfig(t, path, fmt.Sprintf(baseConfig, 100)+upstreams)
	g := startGatewayFile(t, path)

	if r := do(t, "GET", g.url("/good"), nil, nil); r.status != 200 || string(r.body) != "gateway" {
		t.Fatalf("mTLS: %d %s", r.status, r.body)
	}
	if r := do(t, "GET", g.url("/insecure"), nil, nil); r.status != 200 {
		t.Fatalf("insecure_skip_verify: %d %s", r.status, r.body)
	}
	if logs := g.logs.String(); !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, "insecure_skip_verify") ||
		!strings.Contains(logs, `"upstream":"insecure"`) {
		t.Errorf("no warning naming the insecure upstream:\n%s", logs)
	}

	for _, tc := range []struct {
		path       string
		handshakes func() int64
	}{
		{"/wrongca", wrongCA.Handshakes.Load},
		{"/expired", expired.Handshakes.Load},
		{"/nocert", noCert.Handshakes.Load},
	} {
		r := do(t, "GET", g.url(tc.path), nil, nil)
		if r.status != 502 || !strings.Contains(string(r.body), `"upstream_tls"`) {
			t.Errorf("%s: %d %s, want 502 upstream_tls", tc.path, r.status, r.body)
		}
		if n := tc.handshakes(); n != 1 {
			t.Errorf("%s: the target saw %d handshakes, want 1 (a TLS refusal is not retried on the same target)", tc.path, n)
		}
	}
	if wrongCA.Requests.Load()+expired.Requests.Load()+noCert.Requests.Load() != 0 {
		t.Error("a request reached a refused target")
	}
	m := string(g.admin(t, "GET", "/metrics").body)
	for _, up := range []string{"wrongca", "expired", "nocert"} {
		if want := fmt.Sprintf(`wasmgate_upstream_errors_total{kind="tls",upstream=%q} 1`, up); !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, `wasmgate_upstream_retries_total{upstream="wrongca"}`) {
		t.Error("the refused request was retried")
	}

	// The target now wants client certificates of the other CA: ours is
	// refused. Rotating the files on disk, with no reload, fixes it.
	reloads := strings.Count(g.logs.String(), "config reloaded")
	good.Set(tlstest.ServerConfig{Cert: server, ClientCAs: other.Pool()})
	if r := do(t, "GET", g.url("/good"), nil, nil); r.status != 502 || !strings.Contains(string(r.body), `"upstream_tls"`) {
		t.Fatalf("after the target's rotation: %d %s", r.status, r.body)
	}
	rotated := other.Client(t, "gateway-2")
	tlstest.WriteFile(t, certF, rotated.PEM)
	tlstest.WriteFile(t, keyF, rotated.KeyPEM)
	waitFor(t, "the rotated client certificate in use", func() bool {
		r := do(t, "GET", g.url("/good"), nil, nil)
		return r.status == 200 && string(r.body) == "gateway-2"
	})
	if !strings.Contains(g.logs.String(), "upstream TLS files reloaded") || strings.Count(g.logs.String(), "config reloaded") != reloads {
		t.Errorf("want the files reloaded by the upstream, not a config reload:\n%s", g.logs)
	}

	// A reload naming a file that is not there is refused at its key; the
	// running config stays.
	writeConfig(t, path, fmt.Sprintf(baseConfig, 100)+strings.Replace(upstreams, "tls: {ca: ca.pem}\n    retries", "tls: {ca: missing.pem}\n    retries", 1))
	_, err := g.Reload("test")
	if err == nil || !strings.Contains(err.Error(), path+":") || !strings.Contains(err.Error(), `upstream "wrongca": tls.ca: cannot read `+filepath.Join(dir, "missing.pem")) {
		t.Errorf("reload: %v", err)
	}
	if r := do(t, "GET", g.url("/good"), nil, nil); r.status != 200 {
		t.Errorf("after the refused reload: %d %s", r.status, r.body)
	}
}
