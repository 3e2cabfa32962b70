package server

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	httpwasmtck "github.com/http-wasm/http-wasm-host-go/tck"
	"golang.org/x/net/http2"

	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// failSpy is a RoundTripper that records every answer carrying the TCK
// guest's failure header: with a proxy behind it, a case that fails and
// still says next=1 answers with the upstream's status, which the kit's
// runner does not look past.
type failSpy struct {
	rt       http.RoundTripper
	mu       sync.Mutex
	failures []string
	seen     int
}

func (s *failSpy) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.rt.RoundTrip(req)
	if err == nil {
		s.mu.Lock()
		s.seen++
		if msg := resp.Header.Get("x-httpwasm-tck-failed"); msg != "" {
			s.failures = append(s.failures, req.Header.Get("x-httpwasm-tck-testid")+": "+msg)
		}
		s.mu.Unlock()
	}
	return resp, err
}

func (s *failSpy) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == 0 {
		t.Fatal("the kit sent no request")
	}
	for _, f := range s.failures {
		t.Errorf("the TCK guest reported a failure: %s", f)
	}
}

// TestHTTPWasmTCK runs http-wasm-host-go v0.7.0's conformance kit through a
// real gateway: its guest, tck.wasm, unmodified on a route whose upstream
// is the kit's own backend, on every engine of this build, over HTTP/1.1
// and HTTP/2.
func TestHTTPWasmTCK(t *testing.T) {
	guest := filepath.Join(t.TempDir(), "tck.wasm")
	if err := os.WriteFile(guest, httpwasmtck.GuestWASM, 0o600); err != nil {
		t.Fatal(err)
	}
	backend := httpwasmtck.StartBackend("127.0.0.1:0")
	t.Cleanup(backend.Close)
	for _, engine := range e2eEngines() {
		t.Run(engine, func(t *testing.T) {
			ca := tlstest.NewCA(t, "gateway CA")
			crt, key := tlstest.WriteCert(t, t.TempDir(), "site", ca.Server(t))
			g := startGatewayConfig(t, strings.Replace(fmt.Sprintf(baseConfig, 1000), "listen:\n", fmt.Sprintf(
				"listen:\n  tls: {address: 127.0.0.1:0, certificates: [{cert: %q, key: %q}]}\n", crt, key), 1)+
				fmt.Sprintf(`plugin_runtime: {cache_dir: %q, engine: %s}
plugins:
  - {name: tck, module: %q, abi: http-wasm, limits: {call_timeout: 5s}}
upstreams: [{name: kit, targets: [{address: %s}]}]
routes:
  - {name: tck, match: {path_prefix: /}, upstream: kit, plugins: [{name: tck}]}
`, e2eCacheDir(t), engine, guest, backend.Listener.Addr()))
			h1 := &failSpy{rt: &http.Transport{}}
			h2tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}}
			h2 := &failSpy{rt: h2tr}
			t.Cleanup(h2tr.CloseIdleConnections)
			// The kit's Run calls t.Parallel: it gets a test of its own,
			// under the one that started the gateway (with t.Setenv).
			t.Run("HTTP/1.1", func(t *testing.T) {
				httpwasmtck.Run(t, &http.Client{Transport: h1, Timeout: 15 * time.Second}, "http://"+g.ProxyAddr())
				t.Cleanup(func() { h1.check(t) })
			})
			t.Run("HTTP/2.0", func(t *testing.T) {
				httpwasmtck.Run(t, &http.Client{Transport: h2, Timeout: 15 * time.Second}, "https://127.0.0.1:"+portOf(g.edge.tlsLn.Addr().String()))
				t.Cleanup(func() { h2.check(t) })
			})
		})
	}
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
