package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/testkit"
)

const testToken = "test-admin-token"

// upstream is a real fasthttp server on loopback that answers with its id
// and echoes what it received as JSON.
type upstream struct {
	id   string
	addr string
	srv  *fasthttp.Server
	hits atomic.Int64
	// delay holds requests to /slow until released.
	release chan struct{}
}

type echo struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URI     string            `json:"uri"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
	BodyLen int               `json:"body_len"`
}

func startUpstream(t testing.TB, id string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{id: id, addr: ln.Addr().String(), release: make(chan struct{})}
	u.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		u.hits.Add(1)
		if bytes.HasPrefix(ctx.Path(), []byte("/slow")) {
			select {
			case <-u.release:
			case <-time.After(10 * time.Second):
			}
		}
		e := echo{ID: u.id, Method: string(ctx.Method()), URI: string(ctx.RequestURI()),
			Host: string(ctx.Host()), Headers: map[string]string{}, BodyLen: len(ctx.PostBody())}
		for k, v := range ctx.Request.Header.All() {
			e.Headers[string(k)] = string(v)
		}
		body, _ := json.Marshal(e)
		ctx.Response.Header.Set("Connection", "keep-alive, X-Secret-Hop")
		ctx.Response.Header.Set("X-Secret-Hop", "must-not-leak")
		ctx.Response.Header.Set("Keep-Alive", "timeout=5")
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}}
	go u.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = u.srv.Shutdown() })
	return u
}

// gateway is a Server under test with its config file.
type gateway struct {
	*Server
	cfgPath string
	logs    *syncBuffer
	access  *syncBuffer
}

type syncBuffer = testkit.SyncBuffer

const baseConfig = `
listen:
  address: 127.0.0.1:0
  max_header_bytes: 4KiB
  read_timeout: 1s
  max_body_bytes: 1MiB
  max_concurrent_requests: %d
  shutdown_timeout: 5s
admin:
  address: 127.0.0.1:0
  token: ${TEST_ADMIN_TOKEN}
  watch_config: false
log:
  access_log: stdout
`

func writeConfig(t testing.TB, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func startGateway(t testing.TB, maxConcurrent int, rest string) *gateway {
	t.Helper()
	return startGatewayConfig(t, fmt.Sprintf(baseConfig, maxConcurrent)+rest)
}

// startGatewayListen is startGateway (100 concurrent requests) with one
// more listen setting, "key: value".
func startGatewayListen(t testing.TB, listen, rest string) *gateway {
	t.Helper()
	return startGatewayConfig(t, strings.Replace(fmt.Sprintf(baseConfig, 100), "listen:\n", "listen:\n  "+listen+"\n", 1)+rest)
}

func startGatewayConfig(t testing.TB, body string) *gateway {
	t.Helper()
	t.Setenv("TEST_ADMIN_TOKEN", testToken)
	path := filepath.Join(t.TempDir(), "wasmgate.yaml")
	writeConfig(t, path, body)
	return startGatewayFile(t, path)
}

// startGatewayFile starts a gateway on the config file at path.
func startGatewayFile(t testing.TB, path string) *gateway {
	t.Helper()
	t.Setenv("TEST_ADMIN_TOKEN", testToken)
	g := &gateway{cfgPath: path, logs: &syncBuffer{}, access: &syncBuffer{}}
	g.start(t, Options{ConfigPath: path, Stdout: g.access})
	return g
}

// start makes and starts the gateway's Server with opts, its process log
// going to g.logs, and shuts it down when the test ends.
func (g *gateway) start(t testing.TB, opts Options) {
	t.Helper()
	opts.Log = slog.New(slog.NewJSONHandler(g.logs, nil))
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	g.Server = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
}

type response struct {
	status  int
	headers map[string]string
	body    []byte
}

func (r response) echo(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("status %d, body %q is not an upstream echo: %v", r.status, r.body, err)
	}
	return e
}

var client = &fasthttp.Client{ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second}

func do(t *testing.T, method, url string, headers map[string]string, body []byte) response {
	t.Helper()
	r, err := tryDo(method, url, headers, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func tryDo(method, url string, headers map[string]string, body []byte) (response, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	for k, v := range headers {
		if strings.EqualFold(k, "Host") {
			req.Header.SetHost(v)
			req.UseHostHeader = true
			continue
		}
		req.Header.Set(k, v)
	}
	if body != nil {
		req.SetBody(body)
	}
	if err := client.Do(req, resp); err != nil {
		return response{}, err
	}
	r := response{status: resp.StatusCode(), headers: map[string]string{}, body: append([]byte(nil), resp.Body()...)}
	for k, v := range resp.Header.All() {
		r.headers[string(k)] = string(v)
	}
	return r, nil
}

func (g *gateway) url(path string) string { return "http://" + g.ProxyAddr() + path }

func (g *gateway) admin(t *testing.T, method, path string) response {
	t.Helper()
	return do(t, method, "http://"+g.AdminAddr()+path, map[string]string{"Authorization": "Bearer " + testToken}, nil)
}
