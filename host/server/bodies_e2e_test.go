package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/testkit"
)

// The body rules of sdk/ABI.md section 4 ("Bodies: HEAD and statuses
// without one"), end to end: a WAT plugin written against the ABI alone,
// a real gateway and a real upstream on loopback, and the bytes a client
// reads off the socket. One subtest per sentence of the rules.

// bodiesWAT is a plugin whose behaviour the request header X-Case picks
// (one letter). It reports the return codes of the calls it makes in the
// response header X-Code, and the size body_get answers afterwards in
// X-Body-Size.
//
//	on_request:  L send_response(200, "local body")
//	             N send_response(204, "oops") then send_response(204, "")
//	             M send_response(304, "")
//	             I send_response(103, "") then send_response(200, "")
//	on_response: G body_get
//	             S body_set("plugin body!")
//	             Z body_set("abc"), then response_set_status(204)
//	             X body_set("abc"), then response_set_status(304)
//	             O response_set_status(200)
//	             F response_set_status(200), then body_set("filled")
//	             P response_set_status(103)
const bodiesWAT = `(module
  (import "wasmgate" "header_get" (func $header_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "header_set" (func $header_set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "body_get" (func $body_get (param i32 i64 i32 i32) (result i64)))
  (import "wasmgate" "body_set" (func $body_set (param i32 i32 i32) (result i32)))
  (import "wasmgate" "response_set_status" (func $set_status (param i32) (result i32)))
  (import "wasmgate" "send_response" (func $send_response (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x000) "X-Case")
  (data (i32.const 0x010) "X-Code")
  (data (i32.const 0x020) "X-Body-Size")
  (data (i32.const 0x040) "local body")
  (data (i32.const 0x050) "oops")
  (data (i32.const 0x060) "plugin body!")
  (data (i32.const 0x070) "abc")
  (data (i32.const 0x080) "filled")
  (global $n (mut i32) (i32.const 0))
  (func (export "wasmgate_abi_v1"))

  ;; case: the first byte of X-Case, 0 when absent.
  (func $case (result i32)
    (if (i32.le_s (call $header_get (i32.const 0) (i32.const 0x000) (i32.const 6) (i32.const 0x100) (i32.const 16)) (i32.const 0))
      (then (return (i32.const 0))))
    (i32.load8_u (i32.const 0x100)))

  ;; itoa writes v in decimal just below 0x220; returns where, length in $n.
  (func $itoa (param $v i64) (result i32)
    (local $p i32) (local $neg i32)
    (local.set $p (i32.const 0x220))
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then (local.set $neg (i32.const 1)) (local.set $v (i64.sub (i64.const 0) (local.get $v)))))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $v) (i64.const 10)))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (if (local.get $neg)
      (then (local.set $p (i32.sub (local.get $p) (i32.const 1))) (i32.store8 (local.get $p) (i32.const 45))))
    (global.set $n (i32.sub (i32.const 0x220) (local.get $p)))
    (local.get $p))

  ;; put sets the response header (name, len) to v in decimal.
  (func $put (param $name i32) (param $len i32) (param $v i64)
    (local $p i32)
    (local.set $p (call $itoa (local.get $v)))
    (drop (call $header_set (i32.const 1) (local.get $name) (local.get $len) (local.get $p) (global.get $n))))
  (func $code (param $v i32) (call $put (i32.const 0x010) (i32.const 6) (i64.extend_i32_s (local.get $v))))
  (func $size (call $put (i32.const 0x020) (i32.const 11) (call $body_get (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 0))))

  (func (export "on_request") (result i32)
    (local $c i32) (local $r i32)
    (local.set $c (call $case))
    (if (i32.eq (local.get $c) (i32.const 76)) ;; L
      (then (drop (call $send_response (i32.const 200) (i32.const 0x040) (i32.const 10))) (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 78)) ;; N
      (then
        (local.set $r (call $send_response (i32.const 204) (i32.const 0x050) (i32.const 4)))
        (drop (call $send_response (i32.const 204) (i32.const 0) (i32.const 0)))
        (call $code (local.get $r))
        (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 77)) ;; M
      (then (drop (call $send_response (i32.const 304) (i32.const 0) (i32.const 0))) (return (i32.const 1))))
    (if (i32.eq (local.get $c) (i32.const 73)) ;; I
      (then
        (local.set $r (call $send_response (i32.const 103) (i32.const 0) (i32.const 0)))
        (drop (call $send_response (i32.const 200) (i32.const 0) (i32.const 0)))
        (call $code (local.get $r))
        (return (i32.const 1))))
    (i32.const 0))

  (func (export "on_response") (result i32)
    (local $c i32)
    (local.set $c (call $case))
    (if (i32.eq (local.get $c) (i32.const 71)) ;; G
      (then (call $size)))
    (if (i32.eq (local.get $c) (i32.const 83)) ;; S
      (then (call $code (call $body_set (i32.const 1) (i32.const 0x060) (i32.const 12))) (call $size)))
    (if (i32.eq (local.get $c) (i32.const 90)) ;; Z
      (then
        (drop (call $body_set (i32.const 1) (i32.const 0x070) (i32.const 3)))
        (call $code (call $set_status (i32.const 204)))
        (call $size)))
    (if (i32.eq (local.get $c) (i32.const 88)) ;; X
      (then
        (drop (call $body_set (i32.const 1) (i32.const 0x070) (i32.const 3)))
        (call $code (call $set_status (i32.const 304)))
        (call $size)))
    (if (i32.eq (local.get $c) (i32.const 79)) ;; O
      (then (call $code (call $set_status (i32.const 200))) (call $size)))
    (if (i32.eq (local.get $c) (i32.const 70)) ;; F
      (then
        (drop (call $set_status (i32.const 200)))
        (call $code (call $body_set (i32.const 1) (i32.const 0x080) (i32.const 6)))
        (call $size)))
    (if (i32.eq (local.get $c) (i32.const 80)) ;; P
      (then (call $code (call $set_status (i32.const 103)))))
    (i32.const 0))
)`

// compileWAT writes src to a .wat file and compiles it with wat2wasm,
// returning the module's path.
func compileWAT(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, name+".wat"), filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("wat2wasm", in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, b)
	}
	return out
}

// statusUpstream answers /…/status/NNN with status NNN: for a status with
// a body, the 10 bytes "0123456789" (on HEAD their Content-Length alone).
func statusUpstream(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		status, err := strconv.Atoi(path[strings.LastIndexByte(path, '/')+1:])
		if err != nil {
			status = 200
		}
		ctx.SetStatusCode(status)
		ctx.Response.Header.Set("Cache-Control", "max-age=60")
		if status != 204 && status != 304 {
			ctx.SetBodyString("0123456789")
		}
	}}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// wireResponse is a response as read off the socket.
type wireResponse struct {
	status  int
	headers map[string]string // canonical names
	body    string            // every byte after the header, to the close
}

// rawExchange sends one request on a new connection that the gateway then
// closes, and reads every byte it answers: a body sent where none may be
// would show up here, where a client library would hide it.
func rawExchange(t *testing.T, addr, method, path string, headers map[string]string) wireResponse {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var req strings.Builder
	fmt.Fprintf(&req, "%s %s HTTP/1.1\r\nHost: bodies.test\r\nConnection: close\r\n", method, path)
	for k, v := range headers {
		fmt.Fprintf(&req, "%s: %s\r\n", k, v)
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("%s %s: %v (read %q)", method, path, err, raw)
	}
	head, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	var r wireResponse
	if _, err := fmt.Sscanf(lines[0], "HTTP/1.1 %d", &r.status); !ok || err != nil {
		t.Fatalf("%s %s: not a response: %q", method, path, raw)
	}
	r.headers, r.body = map[string]string{}, body
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		r.headers[string(fasthttp.AppendNormalizedHeaderKey(nil, k))] = strings.TrimSpace(v)
	}
	return r
}

func TestBodiesEndToEnd(t *testing.T) {
	up := statusUpstream(t)
	g := startGateway(t, 100, fmt.Sprintf(`
plugins:
  - {name: rules, module: %q}
upstreams: [{name: u, targets: [{address: %s}]}]
routes:
  - {name: cached, match: {path_prefix: /c/}, upstream: u, cache: {max_bytes: 1MiB}, plugins: [{name: rules}]}
  - {name: bodies, match: {path_prefix: /}, upstream: u, plugins: [{name: rules}]}
`, compileWAT(t, "bodies", bodiesWAT), up))

	n := 0
	// exchange runs one request with X-Case set and returns the response
	// and its access log line's bytes_out.
	exchange := func(t *testing.T, method, path, c string) (wireResponse, int) {
		t.Helper()
		n++
		id := "bodies-" + strconv.Itoa(n)
		r := rawExchange(t, g.ProxyAddr(), method, path, map[string]string{"X-Case": c, "X-Request-Id": id})
		var line struct {
			BytesOut *int `json:"bytes_out"`
		}
		testkit.WaitFor(t, 10*time.Second, "the access log line of "+id, func() bool {
			for _, l := range strings.Split(g.access.String(), "\n") {
				if strings.Contains(l, `"request_id":"`+id+`"`) {
					return json.Unmarshal([]byte(l), &line) == nil && line.BytesOut != nil
				}
			}
			return false
		})
		return r, *line.BytesOut
	}
	// check compares the status, the headers named in want ("" for absent)
	// and the body of r, and bytes_out with the body's length.
	check := func(t *testing.T, r wireResponse, bytesOut, status int, body string, want map[string]string) {
		t.Helper()
		if r.status != status || r.body != body {
			t.Errorf("got %d %q, want %d %q (headers %v)", r.status, r.body, status, body, r.headers)
		}
		for k, v := range want {
			if got, ok := r.headers[k]; got != v || (v == "") == ok {
				t.Errorf("%s: %q (present %v), want %q", k, got, ok, v)
			}
		}
		if bytesOut != len(r.body) {
			t.Errorf("access log bytes_out %d, the client got %d body bytes", bytesOut, len(r.body))
		}
	}

	// HEAD: the body a plugin sees is the one the gateway holds, none when
	// the upstream answered the HEAD; Content-Length is the length of the
	// body a GET would be sent; no body is ever sent.
	t.Run("HEAD upstream answer", func(t *testing.T) {
		r, out := exchange(t, "HEAD", "/status/200", "G")
		check(t, r, out, 200, "", map[string]string{"Content-Length": "10", "X-Body-Size": "0"})
		r, out = exchange(t, "GET", "/status/200", "G")
		check(t, r, out, 200, "0123456789", map[string]string{"Content-Length": "10", "X-Body-Size": "10"})
	})
	t.Run("HEAD body_set", func(t *testing.T) {
		r, out := exchange(t, "HEAD", "/status/200", "S")
		check(t, r, out, 200, "", map[string]string{"Content-Length": "12", "X-Code": "0", "X-Body-Size": "12"})
		r, out = exchange(t, "GET", "/status/200", "S")
		check(t, r, out, 200, "plugin body!", map[string]string{"Content-Length": "12", "X-Code": "0"})
	})
	t.Run("HEAD send_response", func(t *testing.T) {
		r, out := exchange(t, "HEAD", "/local", "L")
		check(t, r, out, 200, "", map[string]string{"Content-Length": "10"})
		r, out = exchange(t, "GET", "/local", "L")
		check(t, r, out, 200, "local body", map[string]string{"Content-Length": "10"})
	})
	t.Run("HEAD cache hit", func(t *testing.T) {
		exchange(t, "GET", "/c/status/200", "G") // fills the cache
		r, out := exchange(t, "HEAD", "/c/status/200", "G")
		check(t, r, out, 200, "", map[string]string{"Content-Length": "10", "X-Body-Size": "10", "X-Cache-Status": "HIT"})
	})

	// Statuses without a body (204, 304).
	t.Run("body_set on 204 and 304", func(t *testing.T) {
		for _, s := range []int{204, 304} {
			r, out := exchange(t, "GET", "/status/"+strconv.Itoa(s), "S")
			check(t, r, out, s, "", map[string]string{"X-Code": "-3", "X-Body-Size": "0", "Content-Length": ""})
		}
	})
	t.Run("set_status to 204 drops the body", func(t *testing.T) {
		r, out := exchange(t, "GET", "/status/200", "Z")
		check(t, r, out, 204, "", map[string]string{"X-Code": "0", "X-Body-Size": "0", "Content-Length": ""})
	})
	t.Run("set_status to 304 keeps Content-Length", func(t *testing.T) {
		r, out := exchange(t, "GET", "/status/200", "X")
		check(t, r, out, 304, "", map[string]string{"X-Code": "0", "X-Body-Size": "0", "Content-Length": "3"})
	})
	t.Run("set_status from 204 empties the body", func(t *testing.T) {
		r, out := exchange(t, "GET", "/status/204", "O")
		check(t, r, out, 200, "", map[string]string{"X-Code": "0", "X-Body-Size": "0", "Content-Length": "0"})
		r, out = exchange(t, "GET", "/status/204", "F")
		check(t, r, out, 200, "filled", map[string]string{"X-Code": "0", "X-Body-Size": "6", "Content-Length": "6"})
	})
	t.Run("send_response 204 with a body", func(t *testing.T) {
		r, out := exchange(t, "GET", "/local", "N")
		check(t, r, out, 204, "", map[string]string{"X-Code": "-2", "Content-Length": ""})
		r, out = exchange(t, "GET", "/local", "M")
		check(t, r, out, 304, "", map[string]string{"Content-Length": ""})
	})
	t.Run("no informational status", func(t *testing.T) {
		r, out := exchange(t, "GET", "/local", "I")
		check(t, r, out, 200, "", map[string]string{"X-Code": "-2"})
		r, out = exchange(t, "GET", "/status/200", "P")
		check(t, r, out, 200, "0123456789", map[string]string{"X-Code": "-2"})
	})
}
