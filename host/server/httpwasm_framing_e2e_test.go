package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// rawRoundTrip sends one raw HTTP/1.1 request and reads until the gateway
// closes the connection.
func rawRoundTrip(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

// What an http-wasm guest writes before next goes into answers that pass
// the chain, not into the gateway's own refusals; and the framing of the
// client's connection stays the gateway's: a Trailer header is not
// written, a method is not changed to or from HEAD.
func TestHTTPWasmRefusalsAndFramingAreTheGateways(t *testing.T) {
	early := compileWAT(t, "early", `(module
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (import "http_handler" "add_header_value" (func $add (param i32 i32 i32 i32 i32)))
  (import "http_handler" "write_body" (func $wb (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Early")
  (data (i32.const 16) "pre-")
  (data (i32.const 32) "Trailer")
  (data (i32.const 48) "X-T")
  (func (export "handle_request") (result i64)
    (call $set (i32.const 1) (i32.const 0) (i32.const 7) (i32.const 16) (i32.const 4))
    (call $add (i32.const 1) (i32.const 32) (i32.const 7) (i32.const 48) (i32.const 3))
    (call $wb (i32.const 1) (i32.const 16) (i32.const 4))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))`)
	local := compileWAT(t, "local", `(module
  (import "http_handler" "write_body" (func $wb (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "local")
  (func (export "handle_request") (result i64)
    (call $wb (i32.const 1) (i32.const 0) (i32.const 5))
    (i64.const 0))
  (func (export "handle_response") (param i32 i32)))`)
	// A native plugin that could name the consumer, so that the route's
	// policy is decided after it, on the local answer before it.
	est := compileWAT(t, "est", `(module
  (import "wasmgate" "set_consumer" (func $sc (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))`)
	head := compileWAT(t, "head", `(module
  (import "http_handler" "set_method" (func $sm (param i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "HEAD")
  (func (export "handle_request") (result i64)
    (call $sm (i32.const 0) (i32.const 4))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)))`)
	up := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`plugins:
  - {name: early, module: %q}
  - {name: local, module: %q}
  - {name: est, module: %q}
  - {name: head, module: %q}
upstreams: [{name: a, targets: [{address: %s}]}]
routes:
  - name: refused
    match: {path_prefix: /refused}
    upstream: a
    plugins: [{name: early}, {name: local}, {name: est}]
    authorize: {consumers: [root]}
  - {name: early, match: {path_prefix: /early}, upstream: a, plugins: [{name: early}]}
  - {name: head, match: {path_prefix: /head}, upstream: a, plugins: [{name: head}]}
`, early, local, est, head, up.addr))

	r := do(t, "GET", g.url("/refused"), nil, nil)
	if r.status != 401 || r.headers["X-Early"] != "" || strings.HasPrefix(string(r.body), "pre-") {
		t.Errorf("the gateway's refusal: %d X-Early %q body %q, want a clean 401", r.status, r.headers["X-Early"], r.body)
	}

	out := rawRoundTrip(t, g.ProxyAddr(), "GET /early HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	hdr, body, _ := strings.Cut(out, "\r\n\r\n")
	if !strings.Contains(hdr, "X-Early: pre-") || !strings.HasPrefix(body, "pre-{") {
		t.Errorf("early writes not merged into the upstream's answer:\n%s", out)
	}
	if l := strings.ToLower(hdr); strings.Contains(l, "trailer") || strings.Contains(l, "transfer-encoding") || !strings.Contains(l, "content-length") {
		t.Errorf("a guest's Trailer header framed the answer:\n%s", hdr)
	}

	// GET rewritten to HEAD would announce a body and send none: the
	// guest's call traps, and the client gets a whole answer.
	out = rawRoundTrip(t, g.ProxyAddr(), "GET /head HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	hdr, body, _ = strings.Cut(out, "\r\n\r\n")
	if !strings.HasPrefix(hdr, "HTTP/1.1 502") || !strings.Contains(body, "plugin_failed") {
		t.Errorf("set_method to HEAD:\n%s", out)
	}
}
