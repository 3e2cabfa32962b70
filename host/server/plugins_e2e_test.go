package server

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

// The compilation cache the plugin tests share. Compiling a Go plugin
// (3-4 MB of wasm) takes about a second, and twenty times that in a test
// binary built with -race, so every gateway of these tests uses one cache
// directory, kept across runs like GOCACHE. wazero keys compiled code by
// the module's hash, the CPU and its own version, but a test binary reports
// its version as "dev": the directory is named after the wazero version in
// go.mod and the Go version, so that an upgrade never loads stale code.
// WASMGATE_TEST_CACHE overrides the parent directory.
var (
	e2eCacheOnce sync.Once
	e2eCache     string
	warmMu       sync.Mutex
	warmed       = map[string]bool{}
)

func e2eCacheDir(t *testing.T) string {
	t.Helper()
	e2eCacheOnce.Do(func() {
		base := os.Getenv("WASMGATE_TEST_CACHE")
		if base == "" {
			base = filepath.Join(os.TempDir(), "wasmgate-test-compile-cache")
		}
		wazeroVersion := "unknown"
		if mod, err := os.ReadFile("../../go.mod"); err == nil {
			for _, l := range strings.Split(string(mod), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
					wazeroVersion = f[1]
				}
			}
		}
		e2eCache = filepath.Join(base, "wazero-"+wazeroVersion+"-"+runtime.Version())
		if err := os.MkdirAll(e2eCache, 0o700); err != nil {
			e2eCache = t.TempDir()
		}
	})
	return e2eCache
}

// compileHelperEnv names the modules TestPluginCompileHelper compiles.
const compileHelperEnv = "WASMGATE_COMPILE_HELPER"

// warmPlugins makes sure the named modules (and the kit's hostcheck) are
// compiled in the shared cache. A module compiled before is marked in the
// cache directory by its hash, which costs a stat. The others are compiled
// in parallel by this package's tests built again without -race (go test
// -c, a second or two with the build cache) running
// TestPluginCompileHelper: an order of magnitude faster than a -race
// binary. (A test binary, because wazero's cache is also keyed by wazero's
// version, which test binaries report as "dev".) If that fails, they are
// compiled here.
func warmPlugins(t *testing.T, names ...string) {
	t.Helper()
	dir := e2eCacheDir(t)
	warmMu.Lock()
	defer warmMu.Unlock()
	type module struct{ name, path, marker string }
	var todo []module
	for _, n := range append([]string{"hostcheck"}, names...) {
		if warmed[n] {
			continue
		}
		warmed[n] = true
		p := pluginPath(t, n)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		m := module{n, p, filepath.Join(dir, "warm-"+hex.EncodeToString(sum[:]))}
		if _, err := os.Stat(m.marker); err != nil {
			todo = append(todo, m)
		}
	}
	if len(todo) == 0 {
		return
	}
	spec := []string{dir}
	for _, m := range todo {
		spec = append(spec, m.name+"="+m.path)
	}
	exe := filepath.Join(t.TempDir(), "server.test")
	build := exec.Command("go", "test", "-c", "-o", exe, ".")
	build.Env = append(os.Environ(), "GOFLAGS=") // not -race, whatever the caller's flags
	out, err := build.CombinedOutput()
	if err == nil {
		run := exec.Command(exe, "-test.run", "^TestPluginCompileHelper$", "-test.count", "1")
		run.Env = append(os.Environ(), compileHelperEnv+"="+strings.Join(spec, "\n"))
		out, err = run.CombinedOutput()
	}
	if err != nil {
		t.Logf("compiling plugins without -race failed (%v: %s); compiling them here", err, out)
		for _, m := range todo {
			if err := compileInto(dir, m.name, m.path); err != nil {
				t.Fatalf("compiling %s: %v", m.name, err)
			}
		}
	}
	for _, m := range todo {
		_ = os.WriteFile(m.marker, nil, 0o600)
	}
}

// TestPluginCompileHelper is not a test of its own: warmPlugins runs it in
// a test binary built without -race, to compile modules into the cache.
func TestPluginCompileHelper(t *testing.T) {
	spec := os.Getenv(compileHelperEnv)
	if spec == "" {
		t.Skip("a helper process of warmPlugins")
	}
	lines := strings.Split(spec, "\n")
	dir := lines[0]
	errs := make([]error, len(lines))
	sem := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	var wg sync.WaitGroup
	for i, l := range lines[1:] {
		name, path, _ := strings.Cut(l, "=")
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = compileInto(dir, name, path)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// compileInto compiles a module into the cache directory.
func compileInto(dir, name, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	rt, err := wasm.NewRuntime(wasm.Options{CacheDir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer rt.Close(context.Background())
	m, err := rt.Load(context.Background(), name, b)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return m.Release(context.Background())
}

// logLines parses the gateway's JSON log.
func logLines(g *gateway) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(g.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// findLog returns the first log line for which match is true, nil if none.
func findLog(g *gateway, match func(map[string]any) bool) map[string]any {
	for _, m := range logLines(g) {
		if match(m) {
			return m
		}
	}
	return nil
}

// TestPluginHostFunctions runs the conformance kit (sdk/tck) with its Go
// guest, sdk/tck/hostcheck: every host function of sdk/ABI.md section 4,
// driven through a real gateway, with the exact values and codes the host
// gave the guest asserted.
func TestPluginHostFunctions(t *testing.T) {
	warmPlugins(t, "hostcheck")
	tck.Run(t, tck.GoGuest(pluginPath(t, "hostcheck")), func(t *testing.T, config string) tck.Gateway {
		return kitGateway{startGateway(t, 1000, fmt.Sprintf("plugin_runtime: {cache_dir: %q}\n", e2eCacheDir(t))+config)}
	})
}

// kitGateway is a test gateway as the conformance kit's runner sees it.
type kitGateway struct{ g *gateway }

var _ tck.Gateway = kitGateway{}

func (k kitGateway) URL(path string) string { return k.g.url(path) }

func (k kitGateway) Logs() []map[string]any { return logLines(k.g) }

func (k kitGateway) Metrics() (string, error) {
	r, err := tryDo("GET", "http://"+k.g.AdminAddr()+"/metrics", map[string]string{"Authorization": "Bearer " + testToken}, nil)
	if err == nil && r.status != 200 {
		err = fmt.Errorf("status %d: %s", r.status, r.body)
	}
	return string(r.body), err
}

// Tokens for jwt-auth.

const jwtSecret = "0123456789abcdef0123456789abcdef" // 32 bytes: HS256's minimum

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwtToken(t *testing.T, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64url(h) + "." + b64url(c)
	return input + "." + b64url(sign([]byte(input)))
}

func hs256(secret string) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(in)
		return m.Sum(nil)
	}
}

func rs256(t *testing.T, key *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// jwtTestKey reads the RS256 test key pair of plugins/jwt-auth/testdata.
func jwtTestKey(t *testing.T) (*rsa.PrivateKey, string) {
	t.Helper()
	priv, err := os.ReadFile("../../plugins/jwt-auth/testdata/rsa2048.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	pub, err := os.ReadFile("../../plugins/jwt-auth/testdata/rsa2048.pub.pem")
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(priv)
	if block == nil {
		t.Fatal("no PEM block in rsa2048.key.pem")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey), string(pub)
}

// examplesConfig is the gateway of TestExamplePlugins. Arguments: cache
// dir, the modules (jwt-auth, api-key, rewrite, json-transform, aggregate,
// client-shape), upstreams a, b, c and z (z is the aggregate routes' own
// upstream, which must never be called), a dead address, the RSA public
// key, the api-key partner key's SHA-256.
const examplesConfig = `
plugin_runtime: {cache_dir: %[1]q}
plugins:
  - {name: jwt, module: %[2]q, limits: {call_timeout: 5s}}
  - {name: api-key, module: %[3]q, limits: {call_timeout: 5s}}
  - {name: rewrite, module: %[4]q, limits: {call_timeout: 5s}}
  - {name: rewrite2, module: %[4]q, limits: {call_timeout: 5s}}
  - {name: json-transform, module: %[5]q, limits: {call_timeout: 5s}}
  - {name: aggregate, module: %[6]q, limits: {call_timeout: 5s}}
  - {name: client-shape, module: %[7]q, limits: {call_timeout: 5s}}
upstreams:
  - {name: a, targets: [{address: %[8]s}]}
  - {name: b, targets: [{address: %[9]s}]}
  - {name: c, targets: [{address: %[10]s}]}
  - {name: z, targets: [{address: %[11]s}]}
routes:
  - name: jwt-hs
    match: {path_prefix: /jwt/hs}
    upstream: a
    plugins:
      - name: jwt
        config:
          keys: [{kid: hs1, secret: %[14]q}]
          issuer: https://issuer.test
          audience: api
          forward_claims: {sub: X-User-Id, scope: X-Scopes, realm_access.roles: X-Roles}
  - name: jwt-rs
    match: {path_prefix: /jwt/rs}
    upstream: a
    plugins:
      - name: jwt
        config:
          keys: [{kid: rs1, public_key: %[13]q}]
          audiences: [api, other-api]
          forward_claims: {sub: X-User-Id}
          strip_token: true
  - name: api-key
    match: {path_prefix: /apikey}
    upstream: a
    plugins:
      - name: api-key
        config:
          keys:
            - {consumer: mobile-app, key: k-mobile-0123456789}
            - {consumer: partner-x, key_sha256: %[15]s}
          query: api_key
  - name: rewrite
    match: {path_prefix: /rw}
    upstream: a
    plugins:
      - name: rewrite
        config:
          request:
            path: {prefix: /rw, replace: /v1}
            headers: {remove: [Cookie], set: {X-Gateway: wasmgate}, add: {X-Order: one}}
          response:
            headers: {remove: [X-Upstream-Remove], set: {Cache-Control: no-store}, add: {X-Order: one}}
      - name: rewrite2
        config:
          request: {headers: {add: {X-Order: two}}}
          response: {headers: {add: {X-Order: two}}}
  - name: rewrite-regex
    match: {path_prefix: /rx}
    upstream: a
    plugins:
      - name: rewrite
        config:
          request: {path: {regex: "^/rx/users/([0-9]+)$", replace: "/users/$1/profile"}}
  - name: json-transform
    match: {path_prefix: /jt}
    upstream: a
    plugins:
      - name: json-transform
        config:
          request:
            - {op: rename, path: user.fullName, to: name}
            - {op: remove, path: secret}
            - {op: add, path: meta.via, value: gateway}
          response:
            - {op: remove, path: items.internal_id}
            - {op: rename, path: user.fullName, to: name}
            - {op: move, from: user.email, to: contact}
            - {op: add, path: meta.source, value: {by: gateway, n: 1}}
          statuses: [200]
  - name: agg-strict
    match: {path: /agg/strict}
    upstream: z
    plugins:
      - name: aggregate
        outbound: {upstreams: [a, b, c]}
        config:
          parts:
            - {name: one, url: "upstream://a/part/one?user={user}", timeout: 2s, headers: {X-Part: p1}}
            - {name: two, url: "upstream://b/part/two/{user}", timeout: 2s}
            - {name: three, url: "upstream://c/part/three", timeout: 2s}
  - name: agg-strict-slow
    match: {path: /agg/strict-slow}
    upstream: z
    plugins:
      - name: aggregate
        outbound: {upstreams: [a, b]}
        config:
          parts:
            - {name: one, url: "upstream://a/part/one", timeout: 2s}
            - {name: slow, url: "upstream://b/hold", timeout: 100ms}
  - name: agg-partial
    match: {path: /agg/partial}
    upstream: z
    plugins:
      - name: aggregate
        outbound: {upstreams: [a], hosts: [%[10]q, %[9]q, %[12]q]}
        config:
          mode: partial
          user: {query: uid}
          parts:
            - {name: one, url: "upstream://a/part/one?user={user}", timeout: 2s}
            - {name: slow, url: "http://%[9]s/hold", timeout: 100ms}
            - {name: dead, url: "http://%[12]s/part", timeout: 2s}
            - {name: three, url: "http://%[10]s/part/three", timeout: 2s}
  - name: client-shape
    match: {path_prefix: /shape}
    upstream: a
    plugins:
      - name: client-shape
        config:
          profiles:
            mobile: {fields: [user.id, items.id, items.text]}
            tv:
              fields: [items.author, items.caption]
              ops: [{op: rename, path: items.text, to: caption}]
            web: {}
`

// TestExamplePlugins runs each example plugin end to end in one gateway
// with real upstreams, then checks that config errors in a reload (a plugin
// rejecting its config, a missing module) leave that gateway serving.
func TestExamplePlugins(t *testing.T) {
	examples := []string{"jwt-auth", "api-key", "rewrite", "json-transform", "aggregate", "client-shape"}
	warmPlugins(t, examples...)
	a, b, c, z := tck.StartUpstream(t, "a"), tck.StartUpstream(t, "b"), tck.StartUpstream(t, "c"), tck.StartUpstream(t, "z")
	dead := tck.DeadAddr(t)
	rsaKey, rsaPub := jwtTestKey(t)
	partnerSum := sha256.Sum256([]byte("k-partner-0123456789"))
	args := []any{e2eCacheDir(t)}
	for _, n := range examples {
		args = append(args, pluginPath(t, n))
	}
	args = append(args, a.Addr, b.Addr, c.Addr, z.Addr, dead, rsaPub, jwtSecret, hex.EncodeToString(partnerSum[:]))
	rest := fmt.Sprintf(examplesConfig, args...)
	g := startGateway(t, 1000, rest)

	t.Run("jwt-auth", func(t *testing.T) {
		now := time.Now().Unix()
		hs := func(claims map[string]any) string {
			return jwtToken(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "hs1"}, claims, hs256(jwtSecret))
		}
		good := map[string]any{"sub": "user-1", "iss": "https://issuer.test", "aud": "api", "exp": now + 3600,
			"scope": "read write", "realm_access": map[string]any{"roles": []string{"admin", "dev"}}}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for kk, vv := range good {
				m[kk] = vv
			}
			m[k] = v
			return m
		}
		hits := a.Hits()
		r := tck.Do(t, "GET", g.url("/jwt/hs/x"), []string{"Authorization", "Bearer " + hs(good), "X-User-Id", "spoofed"}, nil)
		if r.Status != 200 {
			t.Fatalf("valid HS256 token: %d %s", r.Status, r.Body)
		}
		var e tck.Echo
		r.JSON(t, &e)
		for h, want := range map[string]string{"X-User-Id": "user-1", "X-Scopes": "read write", "X-Roles": "admin,dev"} {
			if got := strings.Join(e.Headers[h], "|"); got != want {
				t.Errorf("forwarded claim header %s = %q, want %q", h, got, want)
			}
		}
		if e.Headers["Authorization"] == nil {
			t.Error("the token was stripped without strip_token")
		}

		wrongKey := jwtToken(t, map[string]any{"alg": "HS256", "kid": "hs1"}, good, hs256(strings.Repeat("k", 32)))
		rsSigned := jwtToken(t, map[string]any{"alg": "RS256", "kid": "rs1"}, good, rs256(t, rsaKey))
		for _, tc := range []struct {
			name, token, desc string
		}{
			{"no token", "", ""},
			{"expired", hs(with("exp", now-3600)), "token expired"},
			{"bad signature", wrongKey, "invalid signature"},
			{"wrong audience", hs(with("aud", "other")), "invalid audience"},
			{"wrong issuer", hs(with("iss", "https://evil.test")), "invalid issuer"},
			{"not yet valid", hs(with("nbf", now+3600)), "token not yet valid"},
			{"RS256 token on an HS256-only route", rsSigned, "unknown key"},
			{"garbage", "not.a.jwt", "malformed token"},
		} {
			var h []string
			if tc.token != "" {
				h = []string{"Authorization", "Bearer " + tc.token}
			}
			r := tck.Do(t, "GET", g.url("/jwt/hs/x"), h, nil)
			wantChallenge := `Bearer realm="wasmgate"`
			if tc.desc != "" {
				wantChallenge += `, error="invalid_token", error_description="` + tc.desc + `"`
			}
			if r.Status != 401 || r.Get("WWW-Authenticate") != wantChallenge || r.Get("Content-Type") != "application/json" {
				t.Errorf("%s: %d WWW-Authenticate %q, want 401 %q (%s)", tc.name, r.Status, r.Get("WWW-Authenticate"), wantChallenge, r.Body)
				continue
			}
			var body map[string]string
			r.JSON(t, &body)
			if wantDesc := cmpOr(tc.desc, "missing bearer token"); body["error_description"] != wantDesc {
				t.Errorf("%s: body %v", tc.name, body)
			}
		}
		if a.Hits() != hits+1 {
			t.Errorf("the upstream got %d requests, want only the valid one", a.Hits()-hits)
		}

		// RS256, audience list, token stripped.
		rs := jwtToken(t, map[string]any{"alg": "RS256", "typ": "JWT", "kid": "rs1"},
			map[string]any{"sub": "rs-user", "aud": []string{"other-api"}, "exp": now + 60}, rs256(t, rsaKey))
		r = tck.Do(t, "GET", g.url("/jwt/rs/y"), []string{"Authorization", "Bearer " + rs}, nil)
		if r.Status != 200 {
			t.Fatalf("valid RS256 token: %d %s", r.Status, r.Body)
		}
		var ers tck.Echo
		r.JSON(t, &ers)
		if strings.Join(ers.Headers["X-User-Id"], "|") != "rs-user" || ers.Headers["Authorization"] != nil || ers.Headers["X-Scopes"] != nil {
			t.Errorf("RS256: upstream headers %v", ers.Headers)
		}
		parts := strings.Split(rs, ".")
		tampered := parts[0] + "." + b64url([]byte(`{"sub":"admin","aud":"api","exp":9999999999}`)) + "." + parts[2]
		r = tck.Do(t, "GET", g.url("/jwt/rs/y"), []string{"Authorization", "Bearer " + tampered}, nil)
		if r.Status != 401 || !strings.Contains(r.Get("WWW-Authenticate"), `error_description="invalid signature"`) {
			t.Errorf("tampered RS256 token: %d %q", r.Status, r.Get("WWW-Authenticate"))
		}
		hsOnRS := jwtToken(t, map[string]any{"alg": "HS256", "kid": "rs1"}, map[string]any{"sub": "x", "aud": "api", "exp": now + 60}, hs256(jwtSecret))
		if r := tck.Do(t, "GET", g.url("/jwt/rs/y"), []string{"Authorization", "Bearer " + hsOnRS}, nil); r.Status != 401 {
			t.Errorf("an HS256 token naming the RSA key: %d", r.Status)
		}
	})

	t.Run("api-key", func(t *testing.T) {
		r := tck.Do(t, "GET", g.url("/apikey/x?a=1"), []string{"X-Api-Key", "k-mobile-0123456789", "X-Consumer", "spoofed"}, nil)
		if r.Status != 200 {
			t.Fatalf("valid key: %d %s", r.Status, r.Body)
		}
		var e tck.Echo
		r.JSON(t, &e)
		if strings.Join(e.Headers["X-Consumer"], "|") != "mobile-app" || e.Headers["X-Api-Key"] != nil || e.URI != "/apikey/x?a=1" {
			t.Errorf("header key: upstream saw %s %v", e.URI, e.Headers)
		}
		r = tck.Do(t, "GET", g.url("/apikey/y?a=1&api_key=k-partner-0123456789&b=2"), nil, nil)
		if r.Status != 200 {
			t.Fatalf("valid query key: %d %s", r.Status, r.Body)
		}
		r.JSON(t, &e)
		if strings.Join(e.Headers["X-Consumer"], "|") != "partner-x" || e.URI != "/apikey/y?a=1&b=2" {
			t.Errorf("query key (by SHA-256): upstream saw %s %v", e.URI, e.Headers["X-Consumer"])
		}
		hits := a.Hits()
		for _, tc := range []struct {
			name    string
			headers []string
			err     string
		}{
			{"missing", []string{"X-Consumer", "spoofed"}, "missing API key"},
			{"unknown", []string{"X-Api-Key", "k-wrong"}, "invalid API key"},
		} {
			r := tck.Do(t, "GET", g.url("/apikey/x"), tc.headers, nil)
			var body map[string]string
			if r.Status != 401 || r.Get("WWW-Authenticate") != `ApiKey realm="wasmgate", header="X-Api-Key"` ||
				json.Unmarshal(r.Body, &body) != nil || body["error"] != tc.err {
				t.Errorf("%s key: %d %q %s", tc.name, r.Status, r.Get("WWW-Authenticate"), r.Body)
			}
		}
		if a.Hits() != hits {
			t.Error("a request without a valid key reached the upstream")
		}
	})

	t.Run("rewrite, two plugins in a chain", func(t *testing.T) {
		r := tck.Do(t, "GET", g.url("/rw/items?x=1"), []string{"Cookie", "session=s", "X-Order", "client"}, nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		var e tck.Echo
		r.JSON(t, &e)
		if e.URI != "/v1/items?x=1" || e.Headers["Cookie"] != nil || strings.Join(e.Headers["X-Gateway"], "|") != "wasmgate" {
			t.Errorf("request rewrite: upstream saw %s %v", e.URI, e.Headers)
		}
		// on_request in chain order, on_response in reverse.
		if got := strings.Join(e.Headers["X-Order"], "|"); got != "client|one|two" {
			t.Errorf("request X-Order %q, want client|one|two", got)
		}
		if got := strings.Join(r.Headers["X-Order"], "|"); got != "two|one" {
			t.Errorf("response X-Order %q, want two|one", got)
		}
		if r.Get("Cache-Control") != "no-store" || r.Get("X-Upstream-Remove") != "" || r.Get("X-Upstream") != "a" {
			t.Errorf("response rewrite: %v", r.Headers)
		}
		tck.Do(t, "GET", g.url("/rx/users/42"), nil, nil).JSON(t, &e)
		if e.URI != "/users/42/profile" {
			t.Errorf("regex rewrite: upstream saw %s", e.URI)
		}
		tck.Do(t, "GET", g.url("/rx/other"), nil, nil).JSON(t, &e)
		if e.URI != "/rx/other" {
			t.Errorf("regex without a match: upstream saw %s", e.URI)
		}
	})

	t.Run("json-transform", func(t *testing.T) {
		r := tck.Do(t, "POST", g.url("/jt/echo"), []string{"Content-Type", "application/json"},
			[]byte(`{"user":{"fullName":"Ada","id":1},"secret":"s","keep":[1,2]}`))
		var e tck.Echo
		r.JSON(t, &e)
		tck.EqJSON(t, "request body sent upstream", e.Body, `{"user":{"name":"Ada","id":1},"keep":[1,2],"meta":{"via":"gateway"}}`)
		if e.Headers["Content-Length"][0] != fmt.Sprint(len(e.Body)) {
			t.Errorf("Content-Length %v for %d bytes", e.Headers["Content-Length"], len(e.Body))
		}
		r = tck.Do(t, "GET", g.url("/jt/doc"), nil, nil)
		tck.EqJSON(t, "response body", string(r.Body), `{"user":{"id":7,"name":"Ada Lovelace"},`+
			`"items":[{"id":1,"text":"first","likes":3,"author":"ada"},{"id":2,"text":"second","likes":5,"author":"bob"}],`+
			`"debug":true,"contact":"ada@example.test","meta":{"source":{"by":"gateway","n":1}}}`)
		if r.Get("Content-Length") != fmt.Sprint(len(r.Body)) {
			t.Errorf("response Content-Length %q for %d bytes", r.Get("Content-Length"), len(r.Body))
		}
		// Untouched: a status not listed, a body that is not JSON.
		if r := tck.Do(t, "GET", g.url("/jt/status/404"), nil, nil); r.Status != 404 || string(r.Body) != `{"status":404}` {
			t.Errorf("a 404 was transformed: %d %s", r.Status, r.Body)
		}
		tck.Do(t, "POST", g.url("/jt/echo"), []string{"Content-Type", "text/plain"}, []byte(`{"secret":"s"}`)).JSON(t, &e)
		if e.Body != `{"secret":"s"}` {
			t.Errorf("a text/plain body was transformed: %q", e.Body)
		}
	})

	t.Run("aggregate", func(t *testing.T) {
		zHits := z.Hits()
		r := tck.Do(t, "GET", g.url("/agg/strict"), []string{"X-User-Id", "u42"}, nil)
		if r.Status != 200 {
			t.Fatalf("strict: %d %s", r.Status, r.Body)
		}
		tck.EqJSON(t, "strict answer", string(r.Body), `{"one":{"from":"a","uri":"/part/one?user=u42","x_part":"p1"},`+
			`"two":{"from":"b","uri":"/part/two/u42","x_part":""},"three":{"from":"c","uri":"/part/three","x_part":""}}`)
		if st := r.Get("Server-Timing"); !strings.Contains(st, "one;dur=") || !strings.Contains(st, "two;dur=") || !strings.Contains(st, "three;dur=") {
			t.Errorf("Server-Timing %q", st)
		}
		if r := tck.Do(t, "GET", g.url("/agg/strict"), nil, nil); r.Status != 400 || !strings.Contains(string(r.Body), "X-User-Id") {
			t.Errorf("no user id: %d %s", r.Status, r.Body)
		}

		// One part over its timeout fails the strict answer.
		r = tck.Do(t, "GET", g.url("/agg/strict-slow"), nil, nil)
		tck.EqJSON(t, "strict with a slow part", string(r.Body), `{"error":"part \"slow\" failed: timeout","failed":{"slow":"timeout"}}`)
		if r.Status != 502 {
			t.Errorf("strict with a slow part: status %d", r.Status)
		}

		// Partial: the slow and the dead part are null and described.
		r = tck.Do(t, "GET", g.url("/agg/partial?uid=u7"), nil, nil)
		if r.Status != 200 {
			t.Fatalf("partial: %d %s", r.Status, r.Body)
		}
		tck.EqJSON(t, "partial answer", string(r.Body), `{"one":{"from":"a","uri":"/part/one?user=u7","x_part":""},"slow":null,"dead":null,`+
			`"three":{"from":"c","uri":"/part/three","x_part":""},`+
			`"_errors":{"slow":{"error":"timeout"},"dead":{"error":"connect or network error"}}}`)
		if st := r.Get("Server-Timing"); !strings.Contains(st, "slow;dur=") || !strings.Contains(st, "dead;dur=") {
			t.Errorf("Server-Timing %q lacks the failed parts", st)
		}
		if z.Hits() != zHits {
			t.Error("an aggregate route called its own upstream")
		}
		if m := string(g.admin(t, "GET", "/metrics").body); !strings.Contains(m, `wasmgate_plugin_counter_total{name="part_failures",plugin="aggregate"} 3`) ||
			!strings.Contains(m, `wasmgate_plugin_histogram_count{name="batch_seconds",plugin="aggregate"} 3`) {
			t.Error("aggregate's metrics (part_failures 3, batch_seconds count 3) not exported")
		}
	})

	t.Run("client-shape", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			headers []string
			query   string
			status  int
			profile string
			want    string
		}{
			{"iPhone", []string{"User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}, "", 200, "mobile",
				`{"user":{"id":7},"items":[{"id":1,"text":"first"},{"id":2,"text":"second"}]}`},
			{"client hint", []string{"User-Agent", "Mozilla/5.0", "Sec-CH-UA-Mobile", "?1"}, "", 200, "mobile",
				`{"user":{"id":7},"items":[{"id":1,"text":"first"},{"id":2,"text":"second"}]}`},
			{"TV", []string{"User-Agent", "Roku/DVP-9.10 (519.10E04111A)"}, "", 200, "tv",
				`{"items":[{"author":"ada","caption":"first"},{"author":"bob","caption":"second"}]}`},
			{"browser", []string{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"}, "", 200, "web", tck.DocBody},
			{"fields=", []string{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)"}, "?fields=user.fullName,items.likes", 200, "web",
				`{"user":{"fullName":"Ada Lovelace"},"items":[{"likes":3},{"likes":5}]}`},
			{"bad fields=", nil, "?fields=" + strings.Repeat("a,", 40) + "b", 400, "", ""},
		} {
			r := tck.Do(t, "GET", g.url("/shape/doc"+tc.query), tc.headers, nil)
			if r.Status != tc.status || r.Get("X-Client-Profile") != tc.profile {
				t.Errorf("%s: %d profile %q, want %d %q (%s)", tc.name, r.Status, r.Get("X-Client-Profile"), tc.status, tc.profile, r.Body)
				continue
			}
			if !strings.Contains(r.Get("Vary"), "User-Agent") {
				t.Errorf("%s: Vary %q lacks User-Agent", tc.name, r.Get("Vary"))
			}
			if tc.want != "" {
				tck.EqJSON(t, tc.name, string(r.Body), tc.want)
			}
		}
	})

	t.Run("reload with a plugin error keeps serving", func(t *testing.T) {
		before := g.snap.Load().version
		bad := rest + `
  - name: bad
    match: {path_prefix: /bad}
    upstream: a
    plugins:
      - name: api-key
        config: {keys: [{consumer: c, key: k-0123456789abcdef}]}
      - name: jwt
        config: {audience: api}
`
		full := fmt.Sprintf(baseConfig, 1000) + bad
		writeConfig(t, g.cfgPath, full)
		_, err := g.Reload("test")
		line, col := position(t, full, "name: jwt\n        config: {audience: api}")
		want := fmt.Sprintf(`%s:%d:%d: route "bad": plugin "jwt": rejected its config: missing "keys": list HMAC secrets ("secret") or RSA public keys ("public_key") to verify tokens with`, g.cfgPath, line, col)
		if err == nil || err.Error() != want {
			t.Fatalf("reload error:\n got %v\nwant %s", err, want)
		}
		missing := strings.Replace(fmt.Sprintf(baseConfig, 1000)+rest, pluginPath(t, "rewrite"), "gone/rewrite.wasm", 1)
		writeConfig(t, g.cfgPath, missing)
		_, err = g.Reload("test")
		line, col = position(t, missing, `"gone/rewrite.wasm"`) // the quoted value
		want = fmt.Sprintf(`%s:%d:%d: plugin "rewrite": cannot read module: open %s: no such file or directory`,
			g.cfgPath, line, col, filepath.Join(filepath.Dir(g.cfgPath), "gone/rewrite.wasm"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("reload error:\n got %v\nwant %s", err, want)
		}
		if g.snap.Load().version != before {
			t.Fatal("a rejected config was swapped in")
		}
		if r := tck.Do(t, "GET", g.url("/apikey/x"), []string{"X-Api-Key", "k-mobile-0123456789"}, nil); r.Status != 200 {
			t.Errorf("the running config stopped serving: %d", r.Status)
		}
		if r := tck.Do(t, "GET", g.url("/rw/x"), nil, nil); r.Status != 200 || r.Get("Cache-Control") != "no-store" {
			t.Errorf("the running rewrite plugin stopped working: %d", r.Status)
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// position returns the 1-based line and column where needle starts in text.
func position(t *testing.T, text, needle string) (line, col int) {
	t.Helper()
	i := strings.Index(text, needle)
	if i < 0 || strings.Count(text, needle) != 1 {
		t.Fatalf("%q is not in the config exactly once", needle)
	}
	return 1 + strings.Count(text[:i], "\n"), 1 + i - (strings.LastIndexByte(text[:i], '\n') + 1)
}

// Tiny modules for the load errors: the 8-byte empty module (valid wasm,
// no ABI marker), one exporting another ABI version's marker, and one
// importing a function outside the ABI.
var (
	emptyModule = []byte("\x00asm\x01\x00\x00\x00")
	abiV2Module = []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type 0: () -> ()
		"\x03\x02\x01\x00" + // func 0: type 0
		"\x07\x13\x01\x0fwasmgate_abi_v2\x00\x00" + // export "wasmgate_abi_v2" = func 0
		"\x0a\x04\x01\x02\x00\x0b") // body: end
	envImportModule = []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" +
		"\x02\x0b\x01\x03env\x03foo\x00\x00") // import "env"."foo": type 0
)

// TestPluginConfigErrors checks that server.New refuses configs whose
// plugins cannot load or reject their config, with FILE:LINE:COL at the
// place to fix and the plugin's own message.
func TestPluginConfigErrors(t *testing.T) {
	warmPlugins(t, "jwt-auth", "api-key")
	t.Setenv("TEST_ADMIN_TOKEN", testToken)
	dir := t.TempDir()
	newServer := func(text string) (string, error) {
		path := filepath.Join(dir, "wasmgate.yaml")
		writeConfig(t, path, text)
		s, err := New(Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Stdout: io.Discard})
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
		}
		return path, err
	}

	t.Run("plugins reject their config", func(t *testing.T) {
		text := fmt.Sprintf(baseConfig, 10) + fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - name: jwt
    module: %q
  - name: api-key
    module: %q
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes:
  - name: r
    match: {path_prefix: /}
    upstream: a
    plugins:
      - name: jwt
        config: {audience: api}
      - name: api-key
        config:
          keys: [{consumer: c, key: k}]
          nope: 1
`, e2eCacheDir(t), pluginPath(t, "jwt-auth"), pluginPath(t, "api-key"))
		path, err := newServer(text)
		if err == nil {
			t.Fatal("New accepted plugins that reject their config")
		}
		l1, c1 := position(t, text, "name: jwt\n        config")
		l2, c2 := position(t, text, "name: api-key\n        config")
		want := []string{
			fmt.Sprintf(`%s:%d:%d: route "r": plugin "jwt": rejected its config: missing "keys": list HMAC secrets ("secret") or RSA public keys ("public_key") to verify tokens with`, path, l1, c1),
			fmt.Sprintf(`%s:%d:%d: route "r": plugin "api-key": rejected its config: unknown field "nope"`, path, l2, c2),
		}
		if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
			t.Fatalf("New error:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("modules that cannot load", func(t *testing.T) {
		for name, b := range map[string][]byte{
			"not.wasm": []byte("this is not WebAssembly\n"), "empty.wasm": emptyModule,
			"v2.wasm": abiV2Module, "env.wasm": envImportModule,
		} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		text := fmt.Sprintf(baseConfig, 10) + fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - name: missing
    module: nowhere/missing.wasm
  - name: notwasm
    module: not.wasm
  - name: empty
    module: empty.wasm
  - name: v2
    module: v2.wasm
  - name: env
    module: env.wasm
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes:
  - {name: r, match: {path_prefix: /}, upstream: a, plugins: [{name: missing}, {name: notwasm}, {name: empty}, {name: v2}, {name: env}]}
`, e2eCacheDir(t))
		path, err := newServer(text)
		if err == nil {
			t.Fatal("New accepted modules that cannot load")
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 5 {
			t.Fatalf("want one error per module, got %q", lines)
		}
		for i, tc := range []struct{ module, msg string }{
			{"nowhere/missing.wasm", `plugin "missing": cannot read module: open ` + filepath.Join(dir, "nowhere/missing.wasm") + ": no such file or directory"},
			{"not.wasm", `plugin "notwasm": module not.wasm rejected: `},
			{"empty.wasm", `plugin "empty": module empty.wasm rejected: missing export "wasmgate_abi_v1"`},
			{"v2.wasm", `plugin "v2": module v2.wasm rejected: module targets wasmgate ABI v2 (exports "wasmgate_abi_v2"); this gateway implements v1`},
			{"env.wasm", `plugin "env": module env.wasm rejected: `},
		} {
			l, c := position(t, text, "module: "+tc.module+"\n")
			prefix := fmt.Sprintf("%s:%d:%d: %s", path, l, c+len("module: "), tc.msg)
			if !strings.HasPrefix(lines[i], prefix) {
				t.Errorf("error %d:\n got %s\nwant %s...", i, lines[i], prefix)
			}
		}
		if !strings.Contains(lines[1], "magic") {
			t.Errorf("a non-wasm file: %s", lines[1])
		}
		if !strings.Contains(lines[4], `unknown import "env"."foo"`) {
			t.Errorf("an import outside the ABI: %s", lines[4])
		}
	})
}
