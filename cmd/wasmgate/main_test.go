package main

// End-to-end tests of the real binary: TestMain builds wasmgate (and the demo
// upstreams) once, and every test runs them as child processes in their own
// process group, talking to them over loopback only.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/testkit"
)

const (
	// waitBound bounds every wait for something asynchronous; tests never
	// sleep a fixed time to synchronize.
	waitBound = 10 * time.Second
	// exitBound bounds how long a process may take to exit after SIGTERM:
	// above the shutdown_timeout of the configs below.
	exitBound = 20 * time.Second
	testToken = "e2e-admin-token"
)

var (
	wasmgateBin string // the binary under test
	demoBin     string // cmd/demo-upstreams
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wasmgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	wasmgateBin = filepath.Join(dir, "wasmgate")
	demoBin = filepath.Join(dir, "demo-upstreams")
	for _, b := range []struct{ out, pkg string }{{wasmgateBin, "."}, {demoBin, "../demo-upstreams"}} {
		cmd := exec.Command(goTool(), "build", "-o", b.out, b.pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n", b.pkg, err)
			return 1
		}
	}
	return m.Run()
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); runtime.GOROOT() != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer = testkit.SyncBuffer

// proc is a child process in a process group of its own, killed with its
// whole group at the end of the test if it is still running.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed once the process was reaped
	err            error         // Wait's result, set before done closes
}

// testEnv is the test process's environment without the admin token (tests
// that want one pass it explicitly) plus extra.
func testEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WASMGATE_ADMIN_TOKEN=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func startProc(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			// Only while the leader is unreaped is its group id surely ours.
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-p.done:
			case <-time.After(waitBound):
				t.Errorf("%s (pid %d) did not die on SIGKILL", bin, p.cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("%s %v stderr:\n%s", filepath.Base(bin), args, p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits up to bound for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(bound):
		t.Fatalf("%s did not exit within %v; stderr:\n%s", p.cmd.Path, bound, p.stderr.String())
	}
	var exit *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("wait %s: %v", p.cmd.Path, p.err)
	return -1
}

// runBin runs the binary to completion and returns its exit code and output.
func runBin(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, env, wasmgateBin, args...)
	code = p.wait(t, waitBound)
	return code, p.stdout.String(), p.stderr.String()
}

// waitFor polls cond every few milliseconds up to waitBound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitForWithin(t, what, waitBound, cond)
}

// waitForWithin is waitFor with its own bound.
func waitForWithin(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, bound, what, cond)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	// Write and rename, as config managers do: the watcher never sees a
	// half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// ---- HTTP ----

var httpClient = &http.Client{Timeout: 20 * time.Second}

type reply struct {
	status int
	body   string
}

func request(method, url string, headers map[string]string, body string) (reply, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: string(b)}, err
}

func get(t *testing.T, url string, headers map[string]string) reply {
	t.Helper()
	r, err := request("GET", url, headers, "")
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// backend is a real fasthttp upstream answering "ID PATH". Requests to
// /slow are held until release is closed.
type backend struct {
	id, addr    string
	slowEntered chan struct{}
	release     chan struct{}
}

func startBackend(t *testing.T, id string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{id: id, addr: ln.Addr().String(), slowEntered: make(chan struct{}, 16), release: make(chan struct{})}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/slow" {
			b.slowEntered <- struct{}{}
			select {
			case <-b.release:
			case <-time.After(exitBound): // never outlive the test
			}
		}
		ctx.SetBodyString(b.id + " " + string(ctx.Path()))
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return b
}

// ---- the gateway process ----

// gatewayProc is a `wasmgate serve` child with its config file.
type gatewayProc struct {
	*proc
	cfgPath     string
	proxy       string // host:port
	admin       string // host:port
	header      string // listen/admin/log part of the config
	watchConfig string // "" (default) or "false"
}

func (g *gatewayProc) url(path string) string { return "http://" + g.proxy + path }

// setRoutes rewrites the config file with body (upstreams and routes)
// under the gateway's fixed header.
func (g *gatewayProc) setRoutes(t *testing.T, body string) {
	t.Helper()
	writeFile(t, g.cfgPath, g.header+body)
}

// startServe runs `wasmgate serve` on free loopback ports with body
// (upstreams and routes) and returns once it serves: ready on the admin API
// and past the point where it watches its config file. A port taken between
// picking and binding is retried with new ports.
func startServe(t *testing.T, watchConfig, body string) *gatewayProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wasmgate.yaml")
	for attempt := 1; ; attempt++ {
		g := &gatewayProc{cfgPath: path, watchConfig: watchConfig,
			proxy: fmt.Sprintf("127.0.0.1:%d", freePort(t)), admin: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
		g.header = fmt.Sprintf("listen:\n  address: %s\n  shutdown_timeout: 10s\nadmin:\n  address: %s\n", g.proxy, g.admin)
		if watchConfig != "" {
			g.header += "  watch_config: " + watchConfig + "\n"
		}
		g.header += "log:\n  access_log: \"off\"\n"
		g.setRoutes(t, body)
		g.proc = startProc(t, testEnv("WASMGATE_ADMIN_TOKEN="+testToken), wasmgateBin, "serve", "--config", path)
		deadline := time.Now().Add(waitBound)
		for !g.exited() && time.Now().Before(deadline) {
			if strings.Contains(g.stderr.String(), `"msg":"wasmgate serving"`) {
				if r, err := request("GET", "http://"+g.admin+"/readyz", bearer(testToken), ""); err == nil && r.status == 200 {
					return g
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if g.exited() && strings.Contains(g.stderr.String(), "address already in use") && attempt < 3 {
			continue
		}
		t.Fatalf("gateway did not become ready (exited: %v); stderr:\n%s", g.exited(), g.stderr.String())
	}
}

func routesTo(a, b *backend, withB bool) string {
	s := fmt.Sprintf(`
upstreams:
  - {name: alpha, targets: [{address: %s}]}
  - {name: beta, targets: [{address: %s}]}
routes:
  - {name: one, match: {path_prefix: /a}, upstream: alpha}
`, a.addr, b.addr)
	if withB {
		s += "  - {name: two, match: {path_prefix: /b}, upstream: beta}\n"
	}
	return s
}

// ---- tests ----

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.yaml")
	writeFile(t, valid, `
upstreams:
  - name: a
    targets: [{address: 127.0.0.1:1}]
routes:
  - {name: r1, match: {path_prefix: /a}, upstream: a}
  - {name: r2, match: {path: "/users/{id}"}, upstream: a}
`)
	code, stdout, stderr := runBin(t, testEnv(), "config", "validate", valid)
	if code != 0 || !strings.Contains(stdout, "ok") || !strings.Contains(stdout, "2 routes, 1 upstreams") {
		t.Fatalf("valid config: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	type wantErr struct {
		line, col int
		contains  string
	}
	for _, tc := range []struct {
		name, body string
		want       []wantErr
	}{
		{
			// Every decoding and validation problem of one file, in one run.
			name: "schema.yaml",
			body: `listen:
  address: 127.0.0.1:0
  read_timeout: 10 seconds
  max_concurrent_requests: lots
  adress: 127.0.0.1:1
upstreams:
  - name: a
    targets: [{address: 127.0.0.1:1}]
routes:
  - name: r1
    match: {path_prefix: /a}
    upstream: a
  - name: r1
    match: {path_prefix: /b}
    upstream: missing
  - name: r3
    match: {path_regex: "([a-z"}
    upstream: a
`,
			want: []wantErr{
				{3, 17, `bad duration "10 seconds" for read_timeout`},
				{4, 28, `expected an integer for max_concurrent_requests, got "lots"`},
				{5, 3, `unknown key "adress" in listen`},
				{13, 11, `duplicate route name "r1" (first at 10:11)`},
				{15, 15, `unknown upstream "missing"`},
				{17, 25, `bad path_regex`},
			},
		},
		{
			// Route conflicts come from the router's compiler, which needs a
			// decoded config; the admin rule is checked beside them.
			name: "conflict.yaml",
			body: `admin:
  address: 192.0.2.1:9901
upstreams:
  - name: a
    targets: [{address: 127.0.0.1:1}]
routes:
  - name: first
    match: {path_prefix: /api, methods: [GET]}
    upstream: a
  - name: second
    match: {path_prefix: /api, methods: [GET]}
    upstream: a
`,
			want: []wantErr{
				{2, 12, `admin.address "192.0.2.1:9901" is not loopback: set admin.token or WASMGATE_ADMIN_TOKEN`},
				{10, 5, `route "second" conflicts with route "first" (line 7)`},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			writeFile(t, path, tc.body)
			code, stdout, stderr := runBin(t, testEnv(), "config", "validate", path)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if strings.Contains(stdout, "ok") {
				t.Errorf("stdout says ok: %q", stdout)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if len(lines) != len(tc.want)+1 {
				t.Fatalf("got %d lines, want %d errors and a count:\n%s", len(lines), len(tc.want), stderr)
			}
			for i, w := range tc.want {
				prefix := fmt.Sprintf("%s:%d:%d: ", path, w.line, w.col)
				if !strings.HasPrefix(lines[i], prefix) || !strings.Contains(lines[i], w.contains) {
					t.Errorf("error %d:\n got %s\nwant %s...%s", i+1, lines[i], prefix, w.contains)
				}
			}
			if want := fmt.Sprintf("%d error(s)", len(tc.want)); lines[len(lines)-1] != want {
				t.Errorf("last line %q, want %q", lines[len(lines)-1], want)
			}
		})
	}
}

func TestConfigSchema(t *testing.T) {
	code, stdout, stderr := runBin(t, testEnv(), "config", "schema")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(stdout), &schema); err != nil {
		t.Fatalf("schema is not JSON: %v\n%s", err, stdout)
	}
	if s, _ := schema["$schema"].(string); !strings.Contains(s, "json-schema.org") {
		t.Errorf(`"$schema" = %v`, schema["$schema"])
	}
	if ap, ok := schema["additionalProperties"].(bool); !ok || ap {
		t.Errorf("top-level additionalProperties = %v, want false", schema["additionalProperties"])
	}
	props, _ := schema["properties"].(map[string]any)
	for _, key := range []string{"listen", "admin", "log", "upstreams", "routes"} {
		if _, ok := props[key]; !ok {
			t.Errorf("top-level property %q missing", key)
		}
	}
}

func TestCommandLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: "wasmgate "},
		{name: "help", args: []string{"help"}, code: 0, stdout: "Usage:"},
		{name: "no command", args: nil, code: 2, stderr: "Usage:"},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{name: "config alone", args: []string{"config"}, code: 2, stderr: "usage: wasmgate config"},
		{name: "unknown config subcommand", args: []string{"config", "frobnicate"}, code: 2, stderr: `unknown subcommand "frobnicate"`},
		{name: "validate without file", args: []string{"config", "validate"}, code: 2, stderr: "usage: wasmgate config validate FILE"},
		{name: "validate missing file", args: []string{"config", "validate", missing}, code: 1, stderr: missing + ": cannot read config"},
		{name: "serve unknown flag", args: []string{"serve", "--frobnicate"}, code: 2, stderr: "flag provided but not defined"},
		{name: "serve missing file", args: []string{"serve", "--config", missing}, code: 1, stderr: "cannot read config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runBin(t, testEnv(), tc.args...)
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tc.code, stdout, tc.stdout, stderr, tc.stderr)
			}
		})
	}
}

func TestServeRefusesOpenAdminWithoutToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmgate.yaml")
	// 192.0.2.1 (TEST-NET-1) is not an address of this machine: should the
	// check ever be skipped, binding fails instead of exposing a port.
	writeFile(t, path, fmt.Sprintf(`listen:
  address: 127.0.0.1:%d
admin:
  address: 192.0.2.1:9901
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes: [{name: all, match: {path_prefix: /}, upstream: a}]
`, freePort(t)))
	p := startProc(t, testEnv(), wasmgateBin, "serve", "--config", path)
	if code := p.wait(t, waitBound); code == 0 {
		t.Fatal("serve exited 0 with a non-loopback admin address and no token")
	}
	want := path + `:4:12: admin.address "192.0.2.1:9901" is not loopback: set admin.token or WASMGATE_ADMIN_TOKEN`
	if !strings.Contains(p.stderr.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, p.stderr.String())
	}
}

// TestServeReloadsOnSIGHUP runs the gateway with watch_config false, so
// that only the signal can have applied a change.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	g := startServe(t, "false", routesTo(a, b, false))

	if r := get(t, g.url("/a/x"), nil); r.status != 200 || r.body != "a /a/x" {
		t.Fatalf("proxied request: %d %q", r.status, r.body)
	}
	for name, h := range map[string]map[string]string{"none": nil, "wrong": bearer("wrong"), "not bearer": {"Authorization": testToken}} {
		if r := get(t, "http://"+g.admin+"/routes", h); r.status != 401 {
			t.Errorf("admin API with token %s: %d, want 401", name, r.status)
		}
	}

	g.setRoutes(t, routesTo(a, b, true))
	if r := get(t, g.url("/b/x"), nil); r.status != 404 {
		t.Fatalf("a new route served before any reload: %d %q", r.status, r.body)
	}
	g.signal(t, syscall.SIGHUP)
	waitFor(t, "route two served after SIGHUP", func() bool {
		r, err := request("GET", g.url("/b/x"), nil, "")
		return err == nil && r.status == 200 && r.body == "b /b/x"
	})
	if !strings.Contains(g.stderr.String(), `"msg":"config reloaded","source":"SIGHUP"`) {
		t.Errorf("reload not logged:\n%s", g.stderr.String())
	}

	// An invalid config is rejected with its position; the running one stays.
	g.setRoutes(t, routesTo(a, b, true)+"  - {name: three, match: {path_prefix: /c}, upstream: gamma}\n")
	g.signal(t, syscall.SIGHUP)
	waitFor(t, "the rejection logged", func() bool { return strings.Contains(g.stderr.String(), "config reload rejected") })
	rejected := regexp.MustCompile(`"msg":"config reload rejected; the running config stays","source":"SIGHUP","err":"` +
		regexp.QuoteMeta(g.cfgPath) + `:\d+:\d+: route \\"three\\": unknown upstream \\"gamma\\"`)
	if !rejected.MatchString(g.stderr.String()) {
		t.Errorf("rejection log lacks FILE:LINE:COL and the problem:\n%s", g.stderr.String())
	}
	for path, want := range map[string]string{"/a/1": "a /a/1", "/b/1": "b /b/1"} {
		if r := get(t, g.url(path), nil); r.status != 200 || r.body != want {
			t.Errorf("after a rejected reload, GET %s: %d %q, want 200 %q", path, r.status, r.body, want)
		}
	}
	if r := get(t, g.url("/c/1"), nil); r.status != 404 {
		t.Errorf("a route of the rejected config answers: %d", r.status)
	}
	if g.exited() {
		t.Fatal("the gateway exited")
	}
}

// TestServeReloadsOnFileChange relies on admin.watch_config defaulting to true.
func TestServeReloadsOnFileChange(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	g := startServe(t, "", routesTo(a, b, false))
	if r := get(t, g.url("/a/x"), nil); r.status != 200 {
		t.Fatalf("proxied request: %d %q", r.status, r.body)
	}
	g.setRoutes(t, routesTo(a, b, true))
	waitFor(t, "route two served after the file changed", func() bool {
		r, err := request("GET", g.url("/b/x"), nil, "")
		return err == nil && r.status == 200 && r.body == "b /b/x"
	})
	if !strings.Contains(g.stderr.String(), `"msg":"config reloaded","source":"file change"`) {
		t.Errorf("file-change reload not logged:\n%s", g.stderr.String())
	}

	// A bad edit is rejected and the last good config keeps serving.
	writeFile(t, g.cfgPath, g.header+"routes: [oops\n")
	waitFor(t, "the bad edit rejected", func() bool {
		return strings.Contains(g.stderr.String(), `"msg":"config reload rejected; the running config stays","source":"file change"`)
	})
	if r := get(t, g.url("/b/x"), nil); r.status != 200 {
		t.Errorf("after a rejected edit: %d %q", r.status, r.body)
	}
}

func TestServeDrainsOnSIGTERM(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	g := startServe(t, "false", routesTo(a, b, false)+"  - {name: slow, match: {path: /slow}, upstream: alpha}\n")

	done := make(chan reply, 1)
	go func() {
		r, err := request("GET", g.url("/slow"), nil, "")
		if err != nil {
			r.body = err.Error()
		}
		done <- r
	}()
	select {
	case <-a.slowEntered:
	case <-time.After(waitBound):
		t.Fatal("the slow request never reached the upstream")
	}
	g.signal(t, syscall.SIGTERM)
	waitFor(t, "the proxy listener closed", func() bool {
		c, err := net.DialTimeout("tcp", g.proxy, time.Second)
		if c != nil {
			c.Close()
		}
		return err != nil
	})
	// The request is still held upstream, so the gateway must still be draining.
	if g.exited() {
		t.Fatalf("the gateway exited with a request in flight; stderr:\n%s", g.stderr.String())
	}
	close(a.release)
	select {
	case r := <-done:
		if r.status != 200 || r.body != "a /slow" {
			t.Fatalf("in-flight request during drain: %d %q", r.status, r.body)
		}
	case <-time.After(waitBound):
		t.Fatal("the in-flight request did not complete")
	}
	if code := g.wait(t, exitBound); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0; stderr:\n%s", code, g.stderr.String())
	}
	if !strings.Contains(g.stderr.String(), `"msg":"shutdown complete"`) {
		t.Errorf("clean shutdown not logged:\n%s", g.stderr.String())
	}
}

// demoJWT is the demo token cmd/demo/run.sh prints (scope "read").
func demoJWT(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../demo/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\nDEMO_JWT='")
	tok, _, ok2 := strings.Cut(rest, "'")
	if !ok || !ok2 {
		t.Fatal("cmd/demo/run.sh sets no DEMO_JWT='...'")
	}
	return tok
}

// demoConfig is the config `make run` serves.
var demoConfig = "../demo/wasmgate.yaml"

// TestDemo smoke-tests `make run`: the demo upstreams and the gateway on
// their fixed ports, and the requests cmd/demo/run.sh suggests. It skips
// when any of those ports is taken (a demo already running, say).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("binds the demo's fixed ports")
	}
	ports := []int{8080, 8443, 8081, 9901}
	for _, base := range []int{9101, 9102, 9103, 9104, 9105} {
		ports = append(ports, base, base+1000) // -instances 2
	}
	for _, p := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Skipf("demo port %d is busy: %v", p, err)
		}
		ln.Close()
	}
	const token = "demo-e2e-token"
	skipIfTaken := func(p *proc) {
		if p.exited() && strings.Contains(p.stderr.String(), "address already in use") {
			t.Skipf("a demo port was taken meanwhile: %s", p.stderr.String())
		}
	}

	// The HTTPS listener's certificate, as cmd/demo/run.sh makes it.
	if out, err := exec.Command(wasmgateBin, "cert", "-out", "../../bin/demo-tls").CombinedOutput(); err != nil {
		t.Fatalf("wasmgate cert: %v\n%s", err, out)
	}
	ups := startProc(t, testEnv(), demoBin, "-instances", "2")
	waitFor(t, "10 demo upstream instances listening", func() bool {
		skipIfTaken(ups)
		if ups.exited() {
			t.Fatalf("demo-upstreams exited: %s", ups.stderr.String())
		}
		return strings.Count(ups.stderr.String(), " listening on ") == 10
	})
	// The demo's run-time traffic state, as cmd/demo/run.sh does: every
	// demo starts from the config file's.
	state := "../../bin/demo-traffic.state.json"
	_ = os.Remove(state)
	t.Cleanup(func() { _ = os.Remove(state) })
	gw := startProc(t, testEnv("WASMGATE_ADMIN_TOKEN="+token), wasmgateBin, "serve", "--config", demoConfig)
	// The first start on a machine compiles seven Go plugins to native code
	// (about a second each, more under load); later ones hit the cache.
	waitForWithin(t, "the demo gateway ready", 5*time.Minute, func() bool {
		skipIfTaken(gw)
		if gw.exited() {
			t.Fatalf("wasmgate exited: %s", gw.stderr.String())
		}
		r, err := request("GET", "http://127.0.0.1:9901/readyz", bearer(token), "")
		return err == nil && r.status == 200
	})

	const proxy, admin = "http://127.0.0.1:8080", "http://127.0.0.1:9901"
	auth := "Bearer " + token
	for _, tc := range []struct {
		method, url string
		headers     map[string]string
		body        string
		status      int
		contains    string
		times       int // the feed route splits by weight: every pick must work
	}{
		{"GET", proxy + "/api/users/1", nil, "", 200, `"service": "users"`, 1},
		{"GET", proxy + "/api/users", map[string]string{"X-Api-Version": "2"}, "", 200, `"path": "/users"`, 1},
		{"GET", proxy + "/api/feed?user=7", map[string]string{"X-User-Id": "7"}, "", 200, `"user": 7`, 50},
		{"POST", proxy + "/api/orders", map[string]string{"Idempotency-Key": "k1", "Content-Type": "application/json"},
			`{"user_id":7,"items":[{"sku":"book-gopl","qty":1}]}`, 201, `"service": "orders"`, 1},
		{"GET", proxy + "/api/feed?user=7", map[string]string{"Cookie": "beta=1"}, "", 200, `"service": "notifications"`, 1},
		{"GET", proxy + "/api/notifications?user=7", nil, "", 200, `"service": "notifications"`, 1},
		{"GET", proxy + "/secure/me", map[string]string{"Authorization": "Bearer " + demoJWT(t)}, "", 200, `"service": "users"`, 1},
		{"GET", proxy + "/secure/admin/users", map[string]string{"Authorization": "Bearer " + demoJWT(t)}, "", 403, `"forbidden"`, 1},
		{"GET", proxy + "/rust/orders", map[string]string{"X-Api-Key": "demo-partner-key-0123456789"}, "", 200, `"service": "orders"`, 1},
		{"GET", proxy + "/rust/orders", nil, "", 401, "", 1},
		{"GET", proxy + "/rust/users/1", nil, "", 200, `"full_name":"Ada Lovelace"`, 1},
		{"GET", proxy + "/rust/home?user=1", nil, "", 200, `"notifications":{`, 1},
		{"GET", proxy + "/c/orders", map[string]string{"X-Api-Key": "demo-partner-key-0123456789"}, "", 200, `"service": "orders"`, 1},
		{"GET", proxy + "/c/orders", nil, "", 401, "", 1},
		{"GET", proxy + "/c/users/1", nil, "", 200, `"full_name":"Ada Lovelace"`, 1},
		{"GET", proxy + "/c/home?user=1", nil, "", 200, `"notifications":{`, 1},
		{"GET", proxy + "/as/orders", map[string]string{"X-Api-Key": "demo-partner-key-0123456789"}, "", 200, `"service": "orders"`, 1},
		{"GET", proxy + "/as/orders", nil, "", 401, "", 1},
		{"GET", proxy + "/as/users/1", nil, "", 200, `"full_name":"Ada Lovelace"`, 1},
		{"GET", proxy + "/as/home?user=1", nil, "", 200, `"notifications":{`, 1},
		// An unmodified http-wasm guest: it routes, and answers.
		{"GET", proxy + "/host/users/1", nil, "", 200, `"service": "users"`, 1},
		{"GET", proxy + "/http-wasm", nil, "", 200, "hello world", 1},
		{"GET", admin + "/upstreams", map[string]string{"Authorization": auth}, "", 200, `"127.0.0.1:10101"`, 1},
		{"GET", admin + "/routes", map[string]string{"Authorization": auth}, "", 200, `"feed-beta"`, 1},
		{"GET", admin + "/metrics", map[string]string{"Authorization": auth}, "", 200, `wasmgate_requests_total{route="user-by-id",status="2xx"}`, 1},
		{"POST", admin + "/config/reload", map[string]string{"Authorization": auth}, "", 200, `"ok"`, 1},
		{"GET", admin + "/routes", nil, "", 401, "unauthorized", 1},
	} {
		for i := range tc.times {
			r, err := request(tc.method, tc.url, tc.headers, tc.body)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.method, tc.url, err)
			}
			if r.status != tc.status || !strings.Contains(r.body, tc.contains) {
				t.Errorf("%s %s %v (try %d): %d, want %d with %q:\n%s", tc.method, tc.url, tc.headers, i+1, r.status, tc.status, tc.contains, r.body)
				break
			}
		}
	}

	// The orders route keeps the first answer to an idempotency key: a
	// repeat gets the same order back (ids are numbered across the demo's
	// instances), not a second order.
	var orders [2]reply
	for i := range orders {
		var err error
		orders[i], err = request("POST", proxy+"/api/orders", map[string]string{"Idempotency-Key": "demo-twice", "Content-Type": "application/json"},
			`{"user_id":8,"items":[{"sku":"book-gopl","qty":2}]}`)
		if err != nil || orders[i].status != 201 {
			t.Fatalf("POST /api/orders with a key (%d): %v %d %s", i+1, err, orders[i].status, orders[i].body)
		}
	}
	if orders[0].body != orders[1].body {
		t.Errorf("a POST and its repeat created two orders:\n%s\n%s", orders[0].body, orders[1].body)
	}

	t.Run("README quickstart", func(t *testing.T) { runQuickstart(t, token) })
	t.Run("README strangler-fig walkthrough", func(t *testing.T) { runWalkthrough(t, token) })

	gw.signal(t, syscall.SIGTERM)
	ups.signal(t, syscall.SIGTERM)
	if code := gw.wait(t, exitBound); code != 0 {
		t.Errorf("wasmgate exit code %d after SIGTERM", code)
	}
	if code := ups.wait(t, exitBound); code != 0 {
		t.Errorf("demo-upstreams exit code %d after SIGTERM", code)
	}
}

// runQuickstart runs every curl line of the README's Quickstart, as written,
// against the running demo, from a directory laid out as the repository's
// root is while `make run` runs (bin/demo-admin-token holds the admin token,
// as cmd/demo/run.sh writes it). Each must exit 0 and get no error answer:
// a command that needs something the demo does not provide (an undefined
// variable, a wrong token) fails here.
func runQuickstart(t *testing.T, token string) {
	for _, tool := range []string{"bash", "curl", "grep"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not installed")
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := quickstartCommands(string(readme))
	if len(lines) < 5 {
		t.Fatalf("found %d curl lines in the README's Quickstart, want the examples:\n%q", len(lines), lines)
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "bin", "demo-admin-token"), token+"\n")
	ca, err := os.ReadFile("../../bin/demo-tls/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "bin", "demo-tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "bin", "demo-tls", "ca.pem"), string(ca))
	for _, line := range lines {
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", line)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "TOKEN=", "WASMGATE_ADMIN_TOKEN=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("README quickstart: %s\n%v\n%s", line, err, out)
			continue
		}
		for _, bad := range []string{"unauthorized", `"error"`, "HTTP/1.1 4", "HTTP/1.1 5"} {
			if strings.Contains(string(out), bad) {
				t.Errorf("README quickstart: %s\nanswered %s:\n%s", line, bad, out)
				break
			}
		}
	}
}

// runWalkthrough runs the README's strangler-fig walkthrough against the
// running demo, line by line and as written (its variable assignments
// prefixed to every later line), from a directory laid out as the
// repository's root is while `make run` runs. Each command must exit 0 and
// print what its "# →" comment says.
func runWalkthrough(t *testing.T, token string) {
	for _, tool := range []string{"bash", "curl", "grep", "sleep"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not installed")
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := walkthroughSteps(string(readme))
	if len(steps) < 15 {
		t.Fatalf("found %d commands in the README's walkthrough, want its steps", len(steps))
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "bin", "demo-admin-token"), token+"\n")
	var prefix strings.Builder
	for _, st := range steps {
		if st.assign {
			prefix.WriteString(st.cmd + "\n")
			continue
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", prefix.String()+st.cmd)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("walkthrough: %s\n%v\n%s", st.cmd, err, out)
		}
		if !strings.Contains(string(out), st.want) {
			t.Fatalf("walkthrough: %s\nprinted no %q:\n%s", st.cmd, st.want, out)
		}
	}
}

// walkStep is one line of the walkthrough: a variable assignment, or a
// command and what its output must contain.
type walkStep struct {
	cmd, want string
	assign    bool
}

// walkthroughSteps returns the commands of the sh block of the README's
// "Strangler-fig walkthrough" section.
func walkthroughSteps(readme string) []walkStep {
	_, section, ok := strings.Cut(readme, "\n### Strangler-fig walkthrough\n")
	if !ok {
		return nil
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		return nil
	}
	block, _, _ = strings.Cut(block, "```")
	var steps []walkStep
	for _, l := range strings.Split(block, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		cmd, want, _ := strings.Cut(l, "# → ")
		cmd = strings.TrimSpace(cmd)
		steps = append(steps, walkStep{cmd: cmd, want: strings.TrimSpace(want), assign: strings.HasPrefix(cmd, "A=")})
	}
	return steps
}

// quickstartCommands returns the lines starting with "curl " of the
// README's Quickstart section.
func quickstartCommands(readme string) []string {
	_, section, ok := strings.Cut(readme, "\n## Quickstart\n")
	if !ok {
		return nil
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var lines []string
	for _, l := range strings.Split(section, "\n") {
		if strings.HasPrefix(l, "curl ") {
			lines = append(lines, l)
		}
	}
	return lines
}
