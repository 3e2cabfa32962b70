package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// h2Gateway is a gateway with an HTTPS listener and a client that speaks
// only HTTP/2 to it.
func h2Gateway(t *testing.T) (*gateway, *upstream, *http.Client, *tlstest.CA) {
	t.Helper()
	a := startUpstream(t, "a")
	ca := tlstest.NewCA(t, "gateway CA")
	crt, key := tlstest.WriteCert(t, t.TempDir(), "site", ca.Server(t))
	g := startGatewayConfig(t, strings.Replace(fmt.Sprintf(baseConfig, 1000), "listen:\n", fmt.Sprintf(`listen:
  tls: {address: 127.0.0.1:0, certificates: [{cert: %q, key: %q}]}
`, crt, key), 1)+fmt.Sprintf(`
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - {name: small, match: {path_prefix: /small}, upstream: a, max_body_bytes: 16}
  - {name: r, match: {path_prefix: /}, upstream: a}
`, a.addr))
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
	t.Cleanup(tr.CloseIdleConnections)
	return g, a, &http.Client{Transport: tr, Timeout: 15 * time.Second}, ca
}

// TestHTTP2: HTTP/2 requests take the same pipeline as HTTP/1.1 ones:
// routed, forwarded as https, bodies passed and bounded by the route's
// limit with the gateway's own 413, HEAD without a body.
func TestHTTP2(t *testing.T) {
	g, _, client, _ := h2Gateway(t)
	base := "https://" + g.edge.tlsLn.Addr().String()
	resp, err := client.Post(base+"/echo?x=1", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("%s %d: %s", resp.Proto, resp.StatusCode, body)
	}
	e := response{status: resp.StatusCode, body: body}.echo(t)
	if e.URI != "/echo?x=1" || e.Method != "POST" || e.BodyLen != 5 || e.Headers["X-Forwarded-Proto"] != "https" || e.Headers["X-Request-Id"] == "" {
		t.Errorf("upstream saw %+v", e)
	}
	if resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("Connection") != "" || resp.Header.Get("X-Secret-Hop") != "" {
		t.Errorf("answer headers %v", resp.Header)
	}

	resp, err = client.Post(base+"/small", "text/plain", strings.NewReader(strings.Repeat("x", 17)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !bytes.Contains(body, []byte(`"error":"body_too_large"`)) {
		t.Errorf("a body over the route's limit: %d %s", resp.StatusCode, body)
	}

	req, _ := http.NewRequest("HEAD", base+"/echo", nil)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD: %d with %d body bytes", resp.StatusCode, len(body))
	}
	g.b.stdout.Flush()
	if !strings.Contains(g.access.String(), `"status":413`) {
		t.Error("the HTTP/2 requests are not in the access log")
	}
}

// TestHTTP2RapidReset: a client that opens streams and cancels them at
// once (CVE-2023-44487) while their requests wait on the upstream gets
// the connection closed with ENHANCE_YOUR_CALM, and the gateway keeps
// serving others.
func TestHTTP2RapidReset(t *testing.T) {
	g, a, client, ca := h2Gateway(t)
	defer close(a.release)
	conn, err := tls.Dial("tcp", g.edge.tlsLn.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN %q", p)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "localhost"}, {":path", "/slow"}} {
		_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	go func() {
		for id := uint32(1); id < 2*5000; id += 2 {
			if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true}) != nil ||
				fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := http2.NewFramer(io.Discard, conn)
	var goaway *http2.GoAwayFrame
	for goaway == nil {
		f, err := rd.ReadFrame()
		if err != nil {
			t.Fatalf("the connection ended without a GOAWAY: %v", err)
		}
		if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
			continue // the writer goroutine owns writes; no ACK needed to be cut off
		}
		goaway, _ = f.(*http2.GoAwayFrame)
	}
	if goaway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY %v, want ENHANCE_YOUR_CALM", goaway.ErrCode)
	}
	resp, err := client.Get("https://" + g.edge.tlsLn.Addr().String() + "/after")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after the attack: %d", resp.StatusCode)
	}
}
