package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// httpsGet sends GET url over TLS trusting ca's certificates, naming sni,
// and returns the response and the certificate the gateway presented.
func httpsGet(t *testing.T, ca *tlstest.CA, addr, sni, path string) (response, string) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: sni, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatalf("TLS to %s as %q: %v", addr, sni, err)
	}
	defer conn.Close()
	cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, sni)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode(), headers: map[string]string{}, body: append([]byte(nil), resp.Body()...)}
	for k, v := range resp.Header.All() {
		r.headers[string(k)] = string(v)
	}
	return r, cn
}

// TestHTTPSListener: the HTTPS listener serves the same routes with the
// certificate the client names (SNI, default), tells the upstream the
// request came over https, reloads certificates from a config reload and
// from changed files without a restart, and keeps them when new ones do
// not load; the plain listener redirects with redirect_http; the probe
// listener answers without a token.
func TestHTTPSListener(t *testing.T) {
	a := startUpstream(t, "a")
	ca := tlstest.NewCA(t, "gateway CA")
	dir := t.TempDir()
	siteCrt, siteKey := tlstest.WriteCert(t, dir, "site", ca.Issue(t, tlstest.Options{CN: "site", Names: []string{"127.0.0.1", "localhost"}}))
	apiCrt, apiKey := tlstest.WriteCert(t, dir, "api", ca.Issue(t, tlstest.Options{CN: "api", Names: []string{"api.test", "*.api.test"}}))
	cfg := func(site string) string {
		return strings.Replace(fmt.Sprintf(baseConfig, 100), "listen:\n", fmt.Sprintf(`listen:
  probe_address: 127.0.0.1:0
  tls:
    address: 127.0.0.1:0
    redirect_http: true
    certificates:
      - {cert: %q, key: %q}
      - {cert: %q, key: %q}
`, site, siteKey, apiCrt, apiKey), 1) + fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: a}]
`, a.addr)
	}
	g := startGatewayConfig(t, cfg(siteCrt))
	tlsAddr := g.edge.tlsLn.Addr().String()

	r, cn := httpsGet(t, ca, tlsAddr, "localhost", "/hello?x=1")
	if r.status != 200 || cn != "site" {
		t.Fatalf("https as localhost: %d, certificate %s: %s", r.status, cn, r.body)
	}
	if e := r.echo(t); e.URI != "/hello?x=1" || e.Headers["X-Forwarded-Proto"] != "https" {
		t.Errorf("upstream saw %s with X-Forwarded-Proto %q", e.URI, e.Headers["X-Forwarded-Proto"])
	}
	for sni, want := range map[string]string{"api.test": "api", "v1.api.test": "api", "other.test": "site"} {
		conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{InsecureSkipVerify: true, ServerName: sni})
		if err != nil {
			t.Fatal(err)
		}
		if got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; got != want {
			t.Errorf("SNI %s: certificate %s, want %s", sni, got, want)
		}
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", tlsAddr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 client was served")
	}

	// The plain listener redirects to the same URL on https.
	plain := do(t, "POST", g.url("/a/b?c=d"), map[string]string{"Host": "example.test"}, []byte("x"))
	_, port, _ := net.SplitHostPort(tlsAddr)
	if plain.status != 308 || plain.headers["Location"] != "https://example.test:"+port+"/a/b?c=d" {
		t.Errorf("plain listener: %d Location %q", plain.status, plain.headers["Location"])
	}
	if bad := do(t, "GET", g.url("/"), map[string]string{"Host": "evil.test\"/x"}, nil); bad.status != 400 {
		t.Errorf("a bad Host on the redirect: %d", bad.status)
	}

	// The probe listener: no token, nothing else said.
	probe := "http://" + g.edge.probeLn.Addr().String()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/routes": 404, "/metrics": 404} {
		if r := do(t, "GET", probe+path, nil, nil); r.status != want {
			t.Errorf("probe %s: %d, want %d", path, r.status, want)
		}
	}
	if r := do(t, "POST", probe+"/healthz", nil, nil); r.status != 405 {
		t.Errorf("probe POST: %d", r.status)
	}

	// A config reload naming a new certificate serves it at once; one
	// naming a file that does not load is refused and the old one stays.
	renewedCrt, renewedKey := tlstest.WriteCert(t, dir, "renewed", ca.Issue(t, tlstest.Options{CN: "renewed", Names: []string{"localhost"}}))
	writeConfig(t, g.cfgPath, strings.Replace(cfg(renewedCrt), siteKey, renewedKey, 1))
	if _, err := g.Reload("test"); err != nil {
		t.Fatal(err)
	}
	if _, cn := httpsGet(t, ca, tlsAddr, "localhost", "/"); cn != "renewed" {
		t.Errorf("after the reload: certificate %s", cn)
	}
	writeConfig(t, g.cfgPath, cfg(filepath.Join(dir, "missing.crt")))
	if _, err := g.Reload("test"); err == nil || !strings.Contains(err.Error(), "missing.crt") {
		t.Errorf("a reload with a missing certificate: %v", err)
	}
	if _, cn := httpsGet(t, ca, tlsAddr, "localhost", "/"); cn != "renewed" {
		t.Errorf("after a refused reload: certificate %s", cn)
	}

	// Files renewed in place are served within the watch's period.
	time.Sleep(10 * time.Millisecond)
	tlstest.WriteCert(t, dir, "renewed", ca.Issue(t, tlstest.Options{CN: "renewed again", Names: []string{"localhost"}}))
	waitFor(t, "the renewed files served", func() bool {
		_, cn := httpsGet(t, ca, tlsAddr, "localhost", "/")
		return cn == "renewed again"
	})
}
