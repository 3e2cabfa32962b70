package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/sdk/tck"
)

// jwksServer is an identity provider's JWKS endpoint on loopback: it
// serves a key set per path and counts the fetches of each.
type jwksServer struct {
	addr    string
	srv     *fasthttp.Server
	mu      sync.Mutex
	sets    map[string][]byte
	fetches map[string]int
}

func startJWKSServer(t *testing.T) *jwksServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &jwksServer{addr: ln.Addr().String(), sets: map[string][]byte{}, fetches: map[string]int{}}
	s.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		s.mu.Lock()
		defer s.mu.Unlock()
		path := string(ctx.Path())
		s.fetches[path]++
		body, ok := s.sets[path]
		if !ok {
			ctx.SetStatusCode(404)
			return
		}
		ctx.SetContentType("application/jwk-set+json")
		ctx.SetBody(body)
	}}
	go s.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(s.stop)
	return s
}

func (s *jwksServer) set(path string, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets[path] = body
}

func (s *jwksServer) count(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[path]
}

func (s *jwksServer) stop() { _ = s.srv.Shutdown() }

// jwksKeys are an RSA, an EC P-256 and an Ed25519 key the test made.
type jwksKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newJWKSKeys(t *testing.T) jwksKeys {
	t.Helper()
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, d, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jwksKeys{rsa: r, ec: e, ed: d}
}

// set is the JWK Set of the keys, their kids prefixed by p: the RSA key
// without "alg" (RS256 and PS256), the EC key with "alg": "ES256", the
// Ed25519 key with "use": "sig".
func (k jwksKeys) set(p string) []byte {
	pt, err := k.ec.PublicKey.Bytes() // 04 || x || y
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": p + "rsa", "n": b64url(k.rsa.N.Bytes()), "e": b64url(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "crv": "P-256", "kid": p + "ec", "alg": "ES256", "x": b64url(pt[1:33]), "y": b64url(pt[33:])},
		{"kty": "OKP", "crv": "Ed25519", "kid": p + "ed", "use": "sig", "x": b64url(k.ed.Public().(ed25519.PublicKey))},
		{"kty": "RSA", "kid": p + "enc", "use": "enc", "n": b64url(k.rsa.N.Bytes()), "e": "AQAB"}, // ignored
	}})
	return b
}

// tokens are tokens of claims signed by each key, kids prefixed by p.
func (k jwksKeys) tokens(t *testing.T, p string, claims map[string]any) map[string]string {
	return map[string]string{
		"RS256": jwtToken(t, map[string]any{"alg": "RS256", "kid": p + "rsa"}, claims, rs256(t, k.rsa)),
		"PS256": jwtToken(t, map[string]any{"alg": "PS256", "kid": p + "rsa"}, claims, ps256(t, k.rsa)),
		"ES256": jwtToken(t, map[string]any{"alg": "ES256", "kid": p + "ec"}, claims, es256(t, k.ec)),
		"EdDSA": jwtToken(t, map[string]any{"alg": "EdDSA", "kid": p + "ed"}, claims, func(in []byte) []byte { return ed25519.Sign(k.ed, in) }),
	}
}

func ps256(t *testing.T, key *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// es256 signs as JWS does: r||s, 32 bytes each.
func es256(t *testing.T, key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
}

// jwksConfig is the gateway of TestJWTJWKS. Arguments: cache dir, the
// jwt-auth module, the app upstream, the JWKS server, the JWKS server that
// goes down.
const jwksGatewayConfig = `
plugin_runtime: {cache_dir: %[1]q}
plugins:
  - {name: jwt, module: %[2]q, limits: {call_timeout: 5s}}
upstreams:
  - {name: app, targets: [{address: %[3]s}]}
  - {name: idp, targets: [{address: %[4]s}]}
routes:
  - name: main
    match: {path_prefix: /main}
    upstream: app
    plugins:
      - name: jwt
        outbound: {upstreams: [idp]}
        config:
          jwks: {url: "upstream://idp/main/jwks.json", cache_ttl: 5m, min_refresh_interval: 1s}
          audience: api
          forward_claims: {sub: X-User-Id}
  - name: spray
    match: {path_prefix: /spray}
    upstream: app
    plugins:
      - name: jwt
        outbound: {hosts: [%[4]q]}
        config:
          jwks: {url: "http://%[4]s/spray/jwks.json", cache_ttl: 5m, min_refresh_interval: 30s}
  - name: time
    match: {path_prefix: /time}
    upstream: app
    plugins:
      - name: jwt
        outbound: {upstreams: [idp]}
        config:
          jwks: {url: "upstream://idp/time/jwks.json"}
          leeway: 30s
          require_exp: false
  - name: down
    match: {path_prefix: /down}
    upstream: app
    plugins:
      - name: jwt
        outbound: {hosts: [%[5]q]}
        config:
          jwks: {url: "http://%[5]s/jwks.json", cache_ttl: 1s, min_refresh_interval: 1s}
  - name: not-allowed
    match: {path_prefix: /not-allowed}
    upstream: app
    plugins:
      - name: jwt
        config:
          jwks: {url: "upstream://idp/main/jwks.json"}
`

// TestJWTJWKS runs jwt-auth with keys from a JWKS served by the test:
// RS256, PS256, ES256 and EdDSA tokens; a rotation picked up by one fetch
// for the first unknown kid; a kid spray that costs one fetch; exp, nbf
// and iat with leeway; the JWKS server down (cached keys keep serving,
// unknown kids 503); and a route whose outbound does not allow the JWKS.
func TestJWTJWKS(t *testing.T) {
	warmPlugins(t, "jwt-auth")
	app := tck.StartUpstream(t, "app")
	idp, downIdp := startJWKSServer(t), startJWKSServer(t)
	g := startGateway(t, 1000, fmt.Sprintf(jwksGatewayConfig, e2eCacheDir(t), pluginPath(t, "jwt-auth"), app.Addr, idp.addr, downIdp.addr))

	get := func(path, token string) tck.Response {
		t.Helper()
		var h []string
		if token != "" {
			h = []string{"Authorization", "Bearer " + token}
		}
		return tck.Do(t, "GET", g.url(path), h, nil)
	}
	// refused checks a 401 with the RFC 6750 challenge.
	refused := func(what string, r tck.Response, desc string) {
		t.Helper()
		want := `Bearer realm="wasmgate", error="invalid_token", error_description="` + desc + `"`
		if r.Status != 401 || r.Get("WWW-Authenticate") != want {
			t.Errorf("%s: %d WWW-Authenticate %q, want 401 %q (%s)", what, r.Status, r.Get("WWW-Authenticate"), want, r.Body)
		}
	}
	now := time.Now().Unix()
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"sub": "user-7", "aud": "api", "exp": now + 3600}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}

	t.Run("algorithms and rotation", func(t *testing.T) {
		const path = "/main/jwks.json"
		k1 := newJWKSKeys(t)
		idp.set(path, k1.set("v1-"))
		for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
			r := get("/main/x", k1.tokens(t, "v1-", claims())[alg])
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", alg, r.Status, r.Body)
			}
			var e tck.Echo
			r.JSON(t, &e)
			if strings.Join(e.Headers["X-User-Id"], "|") != "user-7" {
				t.Errorf("%s: X-User-Id %v", alg, e.Headers["X-User-Id"])
			}
		}
		if n := idp.count(path); n != 1 {
			t.Fatalf("%d fetches for four tokens, want 1", n)
		}
		// Tokens the set does not vouch for.
		other := newJWKSKeys(t)
		refused("signed by another key", get("/main/x", other.tokens(t, "v1-", claims())["ES256"]), "invalid signature")
		refused("ES256 naming the RSA key", get("/main/x", jwtToken(t, map[string]any{"alg": "ES256", "kid": "v1-rsa"}, claims(), es256(t, k1.ec))), "unknown key")
		refused("a kid of an encryption key", get("/main/x", jwtToken(t, map[string]any{"alg": "RS256", "kid": "v1-enc"}, claims(), rs256(t, k1.rsa))), "unknown key")
		refused("wrong audience", get("/main/x", k1.tokens(t, "v1-", claims("aud", "web"))["EdDSA"]), "invalid audience")
		if r := get("/main/x", ""); r.Status != 401 || r.Get("WWW-Authenticate") != `Bearer realm="wasmgate"` {
			t.Errorf("no token: %d %q", r.Status, r.Get("WWW-Authenticate"))
		}

		// The issuer rotates its keys. Past min_refresh_interval (1s) the
		// first token naming a new kid fetches the set once, and is let in.
		k2 := newJWKSKeys(t)
		idp.set(path, k2.set("v2-"))
		before := idp.count(path)
		time.Sleep(1100 * time.Millisecond)
		for _, alg := range []string{"EdDSA", "RS256", "ES256", "PS256"} {
			if r := get("/main/x", k2.tokens(t, "v2-", claims())[alg]); r.Status != 200 {
				t.Fatalf("rotated %s: %d %s", alg, r.Status, r.Body)
			}
		}
		if n := idp.count(path) - before; n != 1 {
			t.Fatalf("rotation: %d fetches, want 1", n)
		}
		refused("a retired key", get("/main/x", k1.tokens(t, "v1-", claims())["ES256"]), "unknown key")
	})

	t.Run("kid spray", func(t *testing.T) {
		const path = "/spray/jwks.json"
		k := newJWKSKeys(t)
		idp.set(path, k.set(""))
		if r := get("/spray/x", k.tokens(t, "", claims())["RS256"]); r.Status != 200 {
			t.Fatalf("valid token: %d %s", r.Status, r.Body)
		}
		// 50 tokens with unknown kids, 5 at a time (several plugin
		// instances, one shared rate limit): each a 401, and no fetch
		// inside min_refresh_interval (30s) of the first.
		var wg sync.WaitGroup
		errs := make(chan string, 50)
		for w := range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					tok := jwtToken(t, map[string]any{"alg": "ES256", "kid": fmt.Sprintf("spray-%d-%d", w, i)}, claims(), es256(t, k.ec))
					r, err := tryDo("GET", g.url("/spray/x"), map[string]string{"Authorization": "Bearer " + tok}, nil)
					switch {
					case err != nil:
						errs <- err.Error()
					case r.status != 401 || !strings.Contains(r.headers["Www-Authenticate"], `error="invalid_token", error_description="unknown key"`):
						errs <- fmt.Sprintf("%d %q %s", r.status, r.headers["Www-Authenticate"], r.body)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error("spray:", e)
		}
		if n := idp.count(path); n != 1 {
			t.Fatalf("kid spray: %d fetches in all, want 1 (the first token's)", n)
		}
		if r := get("/spray/x", k.tokens(t, "", claims())["EdDSA"]); r.Status != 200 {
			t.Fatalf("valid token after the spray: %d %s", r.Status, r.Body)
		}
	})

	t.Run("time claims and leeway", func(t *testing.T) {
		k := newJWKSKeys(t)
		idp.set("/time/jwks.json", k.set(""))
		for _, tc := range []struct {
			name   string
			claims map[string]any
			desc   string // "" accepted
		}{
			{"valid", claims(), ""},
			{"expired", claims("exp", now-60), "token expired"},
			{"expired within the leeway", claims("exp", now-20), ""},
			{"nbf in the future", claims("nbf", now+60), "token not yet valid"},
			{"nbf within the leeway", claims("nbf", now+20), ""},
			{"iat in the future", claims("iat", now+60), "token issued in the future"},
			{"iat within the leeway", claims("iat", now+20), ""},
			{"iat in the past", claims("iat", now-3600), ""},
			{"iat not a date", claims("iat", "today"), "malformed token"},
			{"no exp (require_exp: false)", claims("exp", nil), ""},
		} {
			r := get("/time/x", k.tokens(t, "", tc.claims)["ES256"])
			if tc.desc == "" {
				if r.Status != 200 {
					t.Errorf("%s: %d %s", tc.name, r.Status, r.Body)
				}
				continue
			}
			refused(tc.name, r, tc.desc)
			var body map[string]string
			r.JSON(t, &body)
			if body["error"] != "invalid_token" || body["error_description"] != tc.desc {
				t.Errorf("%s: body %v", tc.name, body)
			}
		}
	})

	t.Run("JWKS server down", func(t *testing.T) {
		k := newJWKSKeys(t)
		downIdp.set("/jwks.json", k.set(""))
		toks := k.tokens(t, "", claims())
		if r := get("/down/x", toks["ES256"]); r.Status != 200 {
			t.Fatalf("before: %d %s", r.Status, r.Body)
		}
		downIdp.stop()
		time.Sleep(1100 * time.Millisecond) // past cache_ttl and min_refresh_interval
		// Known kids keep working on the cached keys (the refresh fails).
		for _, alg := range []string{"RS256", "EdDSA", "ES256"} {
			if r := get("/down/x", toks[alg]); r.Status != 200 {
				t.Fatalf("%s with the JWKS down: %d %s", alg, r.Status, r.Body)
			}
		}
		// An unknown kid cannot be judged: 503 with Retry-After, no challenge.
		r := get("/down/x", jwtToken(t, map[string]any{"alg": "ES256", "kid": "new"}, claims(), es256(t, k.ec)))
		if r.Status != 503 || r.Get("Retry-After") != "1" || r.Get("WWW-Authenticate") != "" || r.Get("Cache-Control") != "no-store" {
			t.Fatalf("unknown kid with the JWKS down: %d Retry-After %q WWW-Authenticate %q %s", r.Status, r.Get("Retry-After"), r.Get("WWW-Authenticate"), r.Body)
		}
		var body map[string]string
		r.JSON(t, &body)
		if body["error"] != "temporarily_unavailable" || body["error_description"] != "signing keys unavailable" {
			t.Errorf("503 body %v", body)
		}
		// A forged token naming a known kid is still refused.
		refused("forged, JWKS down", get("/down/x", newJWKSKeys(t).tokens(t, "", claims())["ES256"]), "invalid signature")
		if findLog(g, func(m map[string]any) bool {
			msg, _ := m["msg"].(string)
			return strings.Contains(msg, "jwks: GET http://"+downIdp.addr+"/jwks.json failed") && strings.Contains(msg, "serving the 3 keys")
		}) == nil {
			t.Errorf("no log of the failed refresh:\n%s", g.logs.String())
		}
	})

	t.Run("destination not allowed", func(t *testing.T) {
		k := newJWKSKeys(t)
		r := get("/not-allowed/x", k.tokens(t, "", claims())["ES256"])
		if r.Status != 503 || r.Get("Retry-After") == "" {
			t.Fatalf("%d %q %s", r.Status, r.Get("Retry-After"), r.Body)
		}
		if findLog(g, func(m map[string]any) bool {
			msg, _ := m["msg"].(string)
			return strings.Contains(msg, "the route does not allow this destination")
		}) == nil {
			t.Errorf("no log naming the outbound allowance:\n%s", g.logs.String())
		}
	})
}
