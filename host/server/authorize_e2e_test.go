package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAuthorizeWithJWT runs a route's authorize policy on what jwt-auth
// established from a verified token: its subject as consumer, its payload
// as claims. jwt-auth answers a bad token itself (401); the policy answers
// a good token that lacks a scope, a group or the right subject (403).
func TestAuthorizeWithJWT(t *testing.T) {
	warmPlugins(t, "jwt-auth")
	const secret = "authorize-secret-0123456789abcdef"
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: jwt, module: %q, limits: {call_timeout: 5s}, config: {keys: [{secret: %q}], audience: api}}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - name: orders
    match: {path_prefix: /orders}
    upstream: a
    plugins: [{name: jwt}]
    authorize:
      require_scopes: [orders:write]
      claims: {realm_access.roles: [admin, clerk], email_verified: true}
      realm: orders
  - name: admin
    match: {path_prefix: /admin}
    upstream: a
    plugins: [{name: jwt}]
    authorize: {consumers: [root]}
`, e2eCacheDir(t), pluginPath(t, "jwt-auth"), secret, a.addr))

	token := func(claims map[string]any) map[string]string {
		c := map[string]any{"aud": "api", "exp": time.Now().Add(time.Hour).Unix()}
		for k, v := range claims {
			c[k] = v
		}
		return map[string]string{"Authorization": "Bearer " + jwtToken(t, map[string]any{"alg": "HS256"}, c, hs256(secret))}
	}
	clerk := map[string]any{"sub": "u1", "scope": "orders:read orders:write", "realm_access": map[string]any{"roles": []string{"clerk"}}, "email_verified": true}
	// with is clerk's claims with pairs of name, value changed (nil: removed).
	with := func(kv ...any) map[string]any {
		c := map[string]any{}
		for k, v := range clerk {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if k := kv[i].(string); kv[i+1] == nil {
				delete(c, k)
			} else {
				c[k] = kv[i+1]
			}
		}
		return c
	}
	insufficient := `Bearer realm="orders", error="insufficient_scope", scope="orders:write"`
	for _, c := range []struct {
		name, path string
		headers    map[string]string
		status     int
		challenge  string
	}{
		{"clerk with the scope", "/orders/1", token(clerk), 200, ""},
		{"scope missing", "/orders/1", token(with("scope", "orders:read")), 403, insufficient},
		{"scopes as scp", "/orders/1", token(with("scope", nil, "scp", []string{"orders:write"})), 200, ""},
		{"scope nowhere", "/orders/1", token(with("scope", nil)), 403, insufficient},
		{"role not admitted", "/orders/1", token(with("realm_access", map[string]any{"roles": []string{"viewer"}})), 403, ""},
		{"email not verified", "/orders/1", token(with("email_verified", false)), 403, ""},
		{"no token: jwt-auth's own 401", "/orders/1", nil, 401, `Bearer realm="wasmgate"`},
		{"root may", "/admin", token(map[string]any{"sub": "root"}), 200, ""},
		{"u1 may not", "/admin", token(map[string]any{"sub": "u1"}), 403, ""},
		{"no subject: no consumer", "/admin", token(map[string]any{"scope": "x"}), 403, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, "GET", g.url(c.path), c.headers, nil)
			if r.status != c.status || !strings.HasPrefix(r.headers["Www-Authenticate"], c.challenge) || (c.challenge == "" && r.headers["Www-Authenticate"] != "") {
				t.Fatalf("%d WWW-Authenticate %q %s, want %d %q", r.status, r.headers["Www-Authenticate"], r.body, c.status, c.challenge)
			}
		})
	}
}

// TestAuthorizeNeedsAnAuthPlugin refuses a policy that no plugin of the
// route can satisfy: nothing would ever be established, every request 401.
func TestAuthorizeNeedsAnAuthPlugin(t *testing.T) {
	warmPlugins(t, "rewrite")
	t.Setenv("TEST_ADMIN_TOKEN", testToken)
	path := filepath.Join(t.TempDir(), "wasmgate.yaml")
	text := fmt.Sprintf(baseConfig, 10) + fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins: [{name: rewrite, module: %q}]
upstreams: [{name: a, targets: [{address: 127.0.0.1:1}]}]
routes:
  - name: r
    match: {path_prefix: /}
    upstream: a
    plugins: [{name: rewrite, config: {request: {headers: {set: {X-A: b}}}}}]
    authorize: {require_scopes: [read]}
`, e2eCacheDir(t), pluginPath(t, "rewrite"))
	writeConfig(t, path, text)
	s, err := New(Options{ConfigPath: path, Log: slog.New(slog.DiscardHandler), Stdout: io.Discard})
	if err == nil {
		_ = s.Shutdown(context.Background())
		t.Fatal("New accepted an authorize policy with no auth plugin")
	}
	line, col := position(t, text, "{require_scopes")
	want := fmt.Sprintf(`%s:%d:%d: route "r": authorize: none of the route's plugins imports set_consumer or set_claims, so none can establish who the caller is`, path, line, col)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error:\n%v\nwant it to hold\n%s", err, want)
	}
}

// TestAuthorizeBeforeLaterPlugins: the policy is decided right after the
// last plugin that can establish the caller, so a later plugin that
// answers itself (an aggregation) never runs for a refused request, and a
// plugin before the auth plugin that answers locally with data is served
// only to a request the policy admits.
func TestAuthorizeBeforeLaterPlugins(t *testing.T) {
	warmPlugins(t, "jwt-auth", "aggregate", "raw-wat")
	const secret = "authorize-secret-0123456789abcdef"
	a := startUpstream(t, "a")
	g := startGateway(t, 100, fmt.Sprintf(`
plugin_runtime: {cache_dir: %q}
plugins:
  - {name: jwt, module: %q, limits: {call_timeout: 5s}, config: {keys: [{secret: %q}], audience: api}}
  - {name: aggregate, module: %q, limits: {call_timeout: 5s}}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - name: feed
    match: {path: /feed}
    plugins:
      - name: jwt
      - name: aggregate
        outbound: {upstreams: [a]}
        config:
          parts:
            - {name: one, url: "upstream://a/secret-part", timeout: 2s}
    authorize: {require_scopes: [admin]}
  - name: answered-first
    match: {path: /first}
    plugins:
      - name: aggregate
        outbound: {upstreams: [a]}
        config:
          parts:
            - {name: one, url: "upstream://a/secret-part", timeout: 2s}
      - name: jwt
    authorize: {require_scopes: [admin]}
`, e2eCacheDir(t), pluginPath(t, "jwt-auth"), secret, pluginPath(t, "aggregate"), a.addr))
	token := func(scope string) map[string]string {
		c := map[string]any{"aud": "api", "sub": "u1", "scope": scope, "exp": time.Now().Add(time.Hour).Unix()}
		return map[string]string{"Authorization": "Bearer " + jwtToken(t, map[string]any{"alg": "HS256"}, c, hs256(secret))}
	}
	before := a.hits.Load()
	if r := do(t, "GET", g.url("/feed?user=1"), token("read"), nil); r.status != 403 {
		t.Errorf("later plugin, token without scope admin: %d %s, want 403", r.status, r.body)
	}
	if n := a.hits.Load() - before; n != 0 {
		t.Errorf("the aggregation fanned out %d times for a refused request", n)
	}
	if r := do(t, "GET", g.url("/feed?user=1"), token("admin"), nil); r.status != 200 {
		t.Errorf("later plugin, token with scope admin: %d %s, want 200", r.status, r.body)
	}
	// Answered before the auth plugin ran: nothing established yet, so the
	// data is not served.
	if r := do(t, "GET", g.url("/first?user=1"), token("admin"), nil); r.status != 401 {
		t.Errorf("earlier plugin's local answer: %d %s, want 401", r.status, r.body)
	}
}
