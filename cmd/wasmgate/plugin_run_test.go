package main

// Tests of `wasmgate plugin run` through the real binary (built by
// TestMain): one request through a plugin's hooks, offline.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pluginBound bounds one run of a plugin subcommand: compiling a Go plugin
// or building a project takes seconds on a busy machine.
const pluginBound = 3 * time.Minute

// runPluginCmd runs `wasmgate ARGS...` in dir (the test's directory when
// empty) with env added to the test's environment, to completion.
func runPluginCmd(t *testing.T, dir string, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pluginBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, wasmgateBin, args...)
	cmd.Dir = dir
	cmd.Env = testEnv(env...)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("wasmgate %v did not finish within %v\nstdout:\n%s\nstderr:\n%s", args, pluginBound, out.String(), errb.String())
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("wasmgate %v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// mustContain fails the test for every want that s lacks.
func mustContain(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, s)
		}
	}
}

// examplePlugin returns the path of a built example plugin, or skips.
func examplePlugin(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "plugins", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		skipOrFail(t, "example plugins not built (bash plugins/build.sh): "+err.Error())
	}
	return p
}

// chattyWat logs, sets a header each way, counts in the KV store and
// defines a metric: every section of the report has something to show.
const chattyWat = `(module
  (import "wasmgate" "log" (func $log (param i32 i32 i32) (result i32)))
  (import "wasmgate" "header_set" (func $header_set (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "kv_incr" (func $kv_incr (param i32 i32 i64 i64 i32) (result i32)))
  (import "wasmgate" "metric_define" (func $metric_define (param i32 i32 i32) (result i32)))
  (import "wasmgate" "metric_record" (func $metric_record (param i32 f64) (result i32)))
  (import "wasmgate" "header_get" (func $header_get (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0x00) "hello from wat")
  (data (i32.const 0x20) "X-Wat")
  (data (i32.const 0x28) "1")
  (data (i32.const 0x30) "n")
  (data (i32.const 0x50) "requests")
  (data (i32.const 0x60) "X-Absent")
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (drop (call $log (i32.const 1) (i32.const 0x00) (i32.const 14)))
    (drop (call $header_get (i32.const 0) (i32.const 0x60) (i32.const 8) (i32.const 0x100) (i32.const 16)))
    (drop (call $header_set (i32.const 0) (i32.const 0x20) (i32.const 5) (i32.const 0x28) (i32.const 1)))
    (drop (call $kv_incr (i32.const 0x30) (i32.const 1) (i64.const 5) (i64.const 0) (i32.const 0x40)))
    (drop (call $metric_record (call $metric_define (i32.const 0) (i32.const 0x50) (i32.const 8)) (f64.const 1)))
    (i32.const 0))
  (func (export "on_response") (result i32)
    (drop (call $header_set (i32.const 1) (i32.const 0x20) (i32.const 5) (i32.const 0x28) (i32.const 1)))
    (i32.const 0)))`

// trapWat traps in on_request.
const trapWat = `(module
  (memory (export "memory") 1 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) unreachable))`

// TestPluginRunReport: the report shows what on_request and on_response
// changed, the response, the log, the plugin's metrics and every host
// call with its arguments and result.
func TestPluginRunReport(t *testing.T) {
	dir := t.TempDir()
	wasm := assembleWat(t, dir, "chatty", chattyWat, false)
	req := filepath.Join(dir, "req.http")
	writeTestFile(t, req, "# a comment line\nPOST /a/./b%7e?q=1 HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\nX-Wat: old\r\n\r\nhello body\n")
	code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "run", wasm, "--request", req)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	mustContain(t, "the report", stdout,
		"module     "+wasm+" (",
		"config     none ({})",
		"request    POST /a/b~?q=1 (3 header(s), 10 body bytes)", // canonical path, Connection gone, one final newline less
		"on_init    not exported: the config is not checked",
		"on_request continue (",
		"    header   ~ X-Wat: old → 1",
		"upstream   no --upstream: a stub answered 200 with a JSON echo of the request it received",
		"on_response continue (",
		"  response changes:\n    header   + X-Wat: 1\n",
		"response (as the client gets it)\n  HTTP/1.1 200 OK\n",
		`"path":"/a/b~"`, `"body":"hello body"`,
		"plugin metrics\n  counter   requests = 1\n",
		"plugin log (1 line(s))\n  on_request  info   hello from wat\n",
		"host calls (7)\n",
		`  on_request  log(info, "hello from wat") → 0`,
		`  on_request  header_get(request, "X-Absent", buf 16) → NOT_FOUND (-1)`,
		`  on_request  header_set(request, "X-Wat", "1") → 0`,
		`  on_request  kv_incr("n", delta 5, ttl 0ms) → 0, value 5`,
		`  on_request  metric_define(counter, "requests") → 0`,
		`  on_request  metric_record(id 0, 1) → 0`,
		`  on_response header_set(response, "X-Wat", "1") → 0`,
	)

	// A config (YAML, converted as the gateway does) is handed to the plugin.
	code, stdout, _ = runPluginCmd(t, "", nil, "plugin", "run", "--config", "{a: 1, b: [x]}", wasm, "--request", req)
	if code != 0 {
		t.Fatalf("with --config: exit %d\n%s", code, stdout)
	}
	mustContain(t, "the report", stdout, `config     {"a":1,"b":["x"]}`)
}

// TestPluginRunExample: the rewrite example, with its real config, against
// a real upstream.
func TestPluginRunExample(t *testing.T) {
	wasm := examplePlugin(t, "rewrite/rewrite.wasm")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rewrite.yaml")
	writeTestFile(t, cfg, "request:\n  path: {prefix: /api, replace: \"\"}\n  headers: {set: {X-Gateway: wasmgate}, remove: [Cookie]}\nresponse:\n  headers: {remove: [Server], add: {Cache-Control: no-store}}\n")
	req := filepath.Join(dir, "get.http")
	writeTestFile(t, req, "GET /api/users/1 HTTP/1.1\nHost: example.com\nCookie: session=1\n\n")

	// Without --upstream: the stub echo.
	code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "run", wasm, "--config", cfg, "--request", req, "--interpreter")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	mustContain(t, "the report", stdout,
		"on_init    accepted the config",
		"    path     /api/users/1 → /users/1\n",
		"    header   - Cookie: session=1\n",
		"    header   + X-Gateway: wasmgate\n",
		"    header   + Cache-Control: no-store\n",
		`request_set_path("/users/1") → 0`,
	)

	// With --upstream: a real server gets the request as the plugin left it.
	var mu sync.Mutex
	var got *http.Request
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r
		mu.Unlock()
		w.Header().Set("Server", "test-upstream")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(201)
		io.WriteString(w, "made "+r.URL.Path)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	up := "http://" + ln.Addr().String()
	code, stdout, stderr = runPluginCmd(t, "", nil, "plugin", "run", wasm, "--config", cfg, "--request", req, "--interpreter", "--upstream", up+"/base")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	mu.Lock()
	if got == nil || got.URL.Path != "/base/users/1" || got.Header.Get("X-Gateway") != "wasmgate" || got.Header.Get("Cookie") != "" {
		t.Errorf("the upstream got %+v", got)
	}
	mu.Unlock()
	mustContain(t, "the report", stdout,
		"upstream   GET "+up+"/base/users/1 → 201 (",
		"    header   - Server: test-upstream\n",
		"  HTTP/1.1 201 Created\n",
		"  made /base/users/1\n",
	)

	// An upstream that does not answer: exit 1, and the gateway's 502.
	srv.Close()
	code, stdout, stderr = runPluginCmd(t, "", nil, "plugin", "run", wasm, "--config", cfg, "--request", req, "--interpreter", "--upstream", up)
	if code != 1 || !strings.Contains(stderr, "the upstream did not answer") {
		t.Errorf("a dead upstream: exit %d\nstderr:\n%s", code, stderr)
	}
	mustContain(t, "the report", stdout, "FAILED", "on_response not run: the upstream did not answer", "HTTP/1.1 502 Bad Gateway")
}

// TestPluginRunOutbound: outbound calls go where the plugin asks when
// --allow-host allows it, and are refused with a message saying how to
// allow them otherwise. jwt-auth fetches its JWKS through the outbound
// batch.
func TestPluginRunOutbound(t *testing.T) {
	wasm := examplePlugin(t, "jwt-auth/jwt-auth.wasm")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	pub, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	jwks := fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","kid":"e1","alg":"ES256","use":"sig","x":%q,"y":%q}]}`,
		b64(pub[1:33]), b64(pub[33:]))
	fetched := make(chan struct{}, 10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched <- struct{}{}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, jwks)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	header := b64([]byte(`{"alg":"ES256","typ":"JWT","kid":"e1"}`))
	payload := b64([]byte(`{"sub":"carol","exp":4102444800}`))
	digest := sha256.Sum256([]byte(header + "." + payload))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	token := header + "." + payload + "." + b64(sig)

	dir := t.TempDir()
	req := filepath.Join(dir, "req.http")
	writeTestFile(t, req, "GET /me HTTP/1.1\nHost: api\nAuthorization: Bearer "+token+"\n\n")
	cfg, _ := json.Marshal(map[string]any{"jwks": map[string]any{"url": "http://" + ln.Addr().String() + "/jwks"},
		"forward_claims": map[string]string{"sub": "X-User-Id"}})

	// Not allowed: the fetch is refused, the token cannot be judged (503).
	code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "run", wasm, "--config", string(cfg), "--request", req, "--interpreter")
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	mustContain(t, "the refused run", stdout,
		`http_batch(1 request(s): GET "http://`+ln.Addr().String()+`/jwks")`,
		"#0 refused: destination not allowed (allow it with --allow-host HOST:PORT or --allow-upstream NAME=URL)",
		"HTTP/1.1 503 Service Unavailable")
	select {
	case <-fetched:
		t.Errorf("a refused destination was called")
	default:
	}

	// Allowed: fetched for real, the token verified, the subject forwarded.
	code, stdout, stderr = runPluginCmd(t, "", nil, "plugin", "run", wasm, "--config", string(cfg), "--request", req, "--interpreter",
		"--allow-host", ln.Addr().String())
	if code != 0 {
		t.Fatalf("allowed: exit %d\nstderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	mustContain(t, "the allowed run", stdout,
		"→ ", ": #0 200, ",
		"    header   + X-User-Id: carol\n",
		`crypto_verify(ES256, key 91 bytes, msg 95 bytes, sig 64 bytes) → 1 (valid)`,
		`jwks: fetched 1 keys from http://`,
		"  consumer   carol\n",
		"HTTP/1.1 200 OK")
	select {
	case <-fetched:
	default:
		t.Errorf("the JWKS server was not called")
	}
}

// TestPluginRunFailures: a plugin that fails is reported, exits 1, and
// the client gets what the gateway would answer (fail_closed).
func TestPluginRunFailures(t *testing.T) {
	dir := t.TempDir()
	req := filepath.Join(dir, "req.http")
	writeTestFile(t, req, "GET / HTTP/1.1\nHost: x\n\n")

	trap := assembleWat(t, dir, "trap", trapWat, false)
	code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "run", trap, "--request", req)
	if code != 1 || !strings.Contains(stderr, "wasmgate plugin run: on_request failed: ") || !strings.Contains(stderr, "unreachable") {
		t.Errorf("a trap: exit %d\nstderr:\n%s", code, stderr)
	}
	mustContain(t, "the trap's report", stdout, "on_request FAILED: ", "HTTP/1.1 502 Bad Gateway",
		`{"error":"plugin_failed","plugin":"trap","kind":"trap"}`,
		"on_response not run: on_request failed")

	// A config the plugin rejects.
	wasm := examplePlugin(t, "api-key/api-key.wasm")
	code, stdout, stderr = runPluginCmd(t, "", nil, "plugin", "run", wasm, "--request", req, "--interpreter", "--config", "{keys: []}")
	if code != 1 || !strings.Contains(stderr, `on_init rejected the config: missing "keys"`) {
		t.Errorf("a rejected config: exit %d\nstderr:\n%s", code, stderr)
	}
	mustContain(t, "the report", stdout, `on_init    FAILED: on_init rejected the config: missing "keys"`, "host calls (")
}

// TestPluginRunBadArguments: bad request files and flags exit 2 with a
// message naming the file and line; a module the gateway refuses exits 1.
func TestPluginRunBadArguments(t *testing.T) {
	dir := t.TempDir()
	wasm := assembleWat(t, dir, "chatty", chattyWat, false)
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		writeTestFile(t, p, body)
		return p
	}
	good := file("good.http", "GET / HTTP/1.1\nHost: x\n\n")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no request", []string{wasm}, 2, "usage: wasmgate plugin run FILE.wasm --request REQ.http"},
		{"two modules", []string{wasm, wasm, "--request", good}, 2, "usage:"},
		{"missing request file", []string{wasm, "--request", filepath.Join(dir, "nope.http")}, 2, "--request: open "},
		{"empty request", []string{wasm, "--request", file("empty.http", "# only a comment\n\n")}, 2, "empty.http: no request line"},
		{"bad request line", []string{wasm, "--request", file("line.http", "GET\n\n")}, 2, `line.http:1: bad request line "GET"`},
		{"bad version", []string{wasm, "--request", file("ver.http", "GET / HTTP/2\n\n")}, 2, `ver.http:1: bad version "HTTP/2"`},
		{"bad header", []string{wasm, "--request", file("hdr.http", "GET / HTTP/1.1\nHost: x\nNo colon here\n\n")}, 2, `hdr.http:3: bad header line "No colon here"`},
		{"folded header", []string{wasm, "--request", file("fold.http", "GET / HTTP/1.1\nX-A: 1\n  2\n\n")}, 2, "fold.http:3: a header line may not start with a space"},
		{"short body", []string{wasm, "--request", file("cl.http", "POST / HTTP/1.1\nContent-Length: 10\n\nabc")}, 2, "the body has 3 bytes, Content-Length says 10"},
		{"chunked", []string{wasm, "--request", file("te.http", "POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n")}, 2, "Transfer-Encoding is not supported"},
		{"bad path", []string{wasm, "--request", file("path.http", "GET /a%zz HTTP/1.1\n\n")}, 2, "the path: malformed percent-encoding"},
		{"bad config", []string{wasm, "--request", good, "--config", "{a: [}"}, 2, "--config: "},
		{"missing config file", []string{wasm, "--request", good, "--config", filepath.Join(dir, "none.yaml")}, 2, "--config: open "},
		{"bad upstream", []string{wasm, "--request", good, "--upstream", "ftp://x"}, 2, `--upstream: "ftp://x": want http://HOST:PORT`},
		{"bad allow-upstream", []string{wasm, "--request", good, "--allow-upstream", "idp"}, 2, `-allow-upstream "idp": want NAME=http://HOST:PORT`},
		{"not a module", []string{file("x.wasm", "not wasm"), "--request", good}, 1, `x.wasm: rejected: plugin "x": not a WebAssembly module`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPluginCmd(t, "", nil, append([]string{"plugin", "run"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d (want %d)\nstderr:\n%s\nwant it to contain %q\nstdout:\n%s", code, tt.code, stderr, tt.want, stdout)
			}
		})
	}
}

func writeTestFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
