package main

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
)

const secret = "0123456789abcdef0123456789abcdef" // 32 bytes

var now = time.Unix(1_700_000_000, 0)

func readFile(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode([]byte(readFile(t, "rsa2048.key.pem")))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign makes a compact token; hdr and claims are any JSON values.
func sign(t testing.TB, hdr map[string]any, c map[string]any, priv *rsa.PrivateKey, key string) string {
	t.Helper()
	signed := b64(hdr) + "." + b64(c)
	var sig []byte
	switch hdr["alg"] {
	case "HS256":
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(signed))
		sig = m.Sum(nil)
	case "RS256":
		d := sha256.Sum256([]byte(signed))
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, d[:]); err != nil {
			t.Fatal(err)
		}
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func mustVerifier(t testing.TB, cfg string) *verifier {
	t.Helper()
	v, err := newVerifier([]byte(cfg))
	if err != nil {
		t.Fatalf("config %s: %v", cfg, err)
	}
	return v
}

func configWithRSA(t testing.TB, extra string) string {
	pub, _ := json.Marshal(readFile(t, "rsa2048.pub.pem"))
	return `{"keys":[{"kid":"hs1","secret":"` + secret + `"},{"kid":"rs1","public_key":` + string(pub) + `}]` + extra + `}`
}

func TestVerify(t *testing.T) {
	priv := rsaKey(t)
	v := mustVerifier(t, configWithRSA(t, `,"issuer":"https://auth","audiences":["api","admin"],"leeway":30`))
	exp := now.Unix() + 60
	base := func() map[string]any {
		return map[string]any{"sub": "42", "iss": "https://auth", "aud": "api", "exp": exp}
	}
	with := func(k string, val any) map[string]any {
		c := base()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	hs := map[string]any{"alg": "HS256", "kid": "hs1"}
	rs := map[string]any{"alg": "RS256", "kid": "rs1"}
	for _, tc := range []struct {
		name  string
		token string
		err   *authError
	}{
		{"HS256", sign(t, hs, base(), nil, secret), nil},
		{"RS256", sign(t, rs, base(), priv, ""), nil},
		{"HS256 without kid", sign(t, map[string]any{"alg": "HS256"}, base(), nil, secret), nil},
		{"RS256 without kid", sign(t, map[string]any{"alg": "RS256"}, base(), priv, ""), nil},
		{"aud list", sign(t, hs, with("aud", []string{"other", "admin"}), nil, secret), nil},
		{"fractional exp", sign(t, hs, with("exp", float64(exp)+0.5), nil, secret), nil},
		{"expired within leeway", sign(t, hs, with("exp", now.Unix()-29), nil, secret), nil},
		{"expired", sign(t, hs, with("exp", now.Unix()-30), nil, secret), errExpired},
		{"nbf within leeway", sign(t, hs, with("nbf", now.Unix()+29), nil, secret), nil},
		{"not yet valid", sign(t, hs, with("nbf", now.Unix()+31), nil, secret), errNotYet},
		{"no exp", sign(t, hs, with("exp", nil), nil, secret), errNoExp},
		{"exp not a number", sign(t, hs, with("exp", "tomorrow"), nil, secret), errMalformed},
		{"wrong issuer", sign(t, hs, with("iss", "https://evil"), nil, secret), errIssuer},
		{"no issuer", sign(t, hs, with("iss", nil), nil, secret), errIssuer},
		{"wrong audience", sign(t, hs, with("aud", "web"), nil, secret), errAudience},
		{"audience list without ours", sign(t, hs, with("aud", []any{"web", 1}), nil, secret), errAudience},
		{"wrong secret", sign(t, hs, base(), nil, strings.Repeat("x", 32)), errSignature},
		{"unknown kid", sign(t, map[string]any{"alg": "HS256", "kid": "zz"}, base(), nil, secret), errUnknownKey},
		{"kid of the other algorithm", sign(t, map[string]any{"alg": "HS256", "kid": "rs1"}, base(), nil, secret), errUnknownKey},
		{"alg none", b64(map[string]any{"alg": "none"}) + "." + b64(base()) + ".x", errAlg},
		{"alg ES256", b64(map[string]any{"alg": "ES256"}) + "." + b64(base()) + ".c2ln", errAlg},
		{"crit", sign(t, map[string]any{"alg": "HS256", "crit": []string{"exp"}}, base(), nil, secret), errCrit},
		{"two segments", "a.b", errMalformed},
		{"four segments", "a.b.c.d", errMalformed},
		{"empty", "", errMalformed},
		{"bad base64", "!!.!!.!!", errMalformed},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + ".e30.c2ln", errMalformed},
		{"payload not an object", sign(t, hs, nil, nil, secret), errMalformed},
		{"duplicate claim", dupExp(t, now.Unix()-100, exp), errMalformed},
		{"too long", strings.Repeat("a", maxTokenLen+1), errTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.verify(tc.token, now)
			if err != tc.err {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if sub, _ := c.Get("sub").Str(); err == nil && sub != "42" {
				t.Fatalf("claims %s", c.AppendJSON(nil))
			}
		})
	}

	// Tampering with the payload after signing breaks the signature.
	tok := sign(t, rs, base(), priv, "")
	parts := strings.Split(tok, ".")
	forged := parts[0] + "." + b64(with("sub", "1")) + "." + parts[2]
	if _, err := v.verify(forged, now); err != errSignature {
		t.Fatalf("forged payload: %v", err)
	}
	// The classic confusion attack: HS256 with the RSA public key as secret.
	confused := sign(t, map[string]any{"alg": "HS256", "kid": "rs1"}, base(), nil, readFile(t, "rsa2048.pub.pem"))
	if _, err := v.verify(confused, now); err == nil {
		t.Fatal("HS256 token signed with the RSA public key accepted")
	}
}

// dupExp signs a token whose payload has "exp" twice.
func dupExp(t testing.TB, first, second int64) string {
	h := b64(map[string]any{"alg": "HS256"})
	p := base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, `{"sub":"42","exp":%d,"exp":%d}`, first, second))
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(h + "." + p))
	return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestRequireExpFalse(t *testing.T) {
	v := mustVerifier(t, `{"keys":[{"secret":"`+secret+`"}],"require_exp":false}`)
	tok := sign(t, map[string]any{"alg": "HS256"}, map[string]any{"sub": "1"}, nil, secret)
	if _, err := v.verify(tok, now); err != nil {
		t.Fatalf("require_exp false: %v", err)
	}
}

func TestConfig(t *testing.T) {
	pub, _ := json.Marshal(readFile(t, "rsa2048.pub.pem"))
	pkcs1, _ := json.Marshal(readFile(t, "rsa2048.pkcs1.pub.pem"))
	weak, _ := json.Marshal(readFile(t, "rsa1024.pub.pem"))
	priv, _ := json.Marshal(readFile(t, "rsa2048.key.pem"))
	ec, _ := json.Marshal(readFile(t, "ec256.pub.pem"))
	for _, tc := range []struct{ name, cfg, err string }{
		{"hs", `{"keys":[{"secret":"` + secret + `"}]}`, ""},
		{"hs base64", `{"keys":[{"secret_base64":"` + base64.StdEncoding.EncodeToString([]byte(secret)) + `"}]}`, ""},
		{"hs base64url", `{"keys":[{"secret_base64":"` + base64.RawURLEncoding.EncodeToString([]byte(secret+"\xff\xfe")) + `"}]}`, ""},
		{"rs pkix", `{"keys":[{"public_key":` + string(pub) + `,"alg":"RS256"}]}`, ""},
		{"rs pkcs1", `{"keys":[{"public_key":` + string(pkcs1) + `}]}`, ""},
		{"no keys", `{}`, `missing "keys": list HMAC secrets ("secret") or RSA public keys ("public_key") to verify tokens with`},
		{"empty config", ``, `missing "keys"`},
		{"unknown field", `{"keys":[],"leway":1}`, `unknown field "leway"`},
		{"two materials", `{"keys":[{"secret":"` + secret + `","public_key":"x"}]}`, `keys[0]: want exactly one of "secret", "secret_base64" or "public_key"`},
		{"no material", `{"keys":[{"kid":"a"}]}`, `keys[0]: want exactly one of`},
		{"short secret", `{"keys":[{"secret":"short"}]}`, `keys[0]: HS256 secret of 5 bytes: want at least 32 (RFC 7518 section 3.2)`},
		{"bad base64", `{"keys":[{"secret_base64":"%%%"}]}`, `keys[0]: "secret_base64": illegal base64 data`},
		{"alg mismatch", `{"keys":[{"secret":"` + secret + `","alg":"RS256"}]}`, `keys[0]: "alg" is "RS256" but the key is for HS256 (a secret)`},
		{"duplicate kid", `{"keys":[{"kid":"a","secret":"` + secret + `"},{"kid":"a","secret":"` + secret + `"}]}`, `keys[1]: duplicate kid "a"`},
		{"not PEM", `{"keys":[{"public_key":"hello"}]}`, `keys[0]: "public_key": no PEM block found`},
		{"private key", `{"keys":[{"public_key":` + string(priv) + `}]}`, `keys[0]: "public_key": PEM block "PRIVATE KEY": want PUBLIC KEY or RSA PUBLIC KEY (never a private key)`},
		{"EC key", `{"keys":[{"public_key":` + string(ec) + `}]}`, `keys[0]: "public_key": a key of algorithm 1.2.840.10045.2.1, not RSA`},
		{"weak RSA", `{"keys":[{"public_key":` + string(weak) + `}]}`, `keys[0]: "public_key": RSA key of 1024 bits: want at least 2048`},
		{"leeway", `{"keys":[{"secret":"` + secret + `"}],"leeway":"1h"}`, `"leeway" 1h0m0s is over 10m0s`},
		{"bad header", `{"keys":[{"secret":"` + secret + `"}],"header":"X Token"}`, `"header": "X Token" is not a valid header name`},
		{"bad realm", `{"keys":[{"secret":"` + secret + `"}],"realm":"a\"b"}`, `"realm": "a\"b" may not contain quotes`},
		{"bad forward header", `{"keys":[{"secret":"` + secret + `"}],"forward_claims":{"sub":"X User"}}`, `"forward_claims": "sub": "X User" is not a valid header name`},
		{"bad claim path", `{"keys":[{"secret":"` + secret + `"}],"forward_claims":{"a..b":"X-A"}}`, `"forward_claims": bad claim path "a..b": path "a..b": empty segment`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newVerifier([]byte(tc.cfg))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Fatalf("error %v\nwant %s", err, tc.err)
			}
		})
	}
}

// fakeRequest is a request with headers and a query, case-insensitive.
type fakeRequest struct {
	headers map[string]string
	query   map[string]string
}

func newFakeRequest(h ...string) *fakeRequest {
	r := &fakeRequest{headers: map[string]string{}, query: map[string]string{}}
	for i := 0; i+1 < len(h); i += 2 {
		r.headers[strings.ToLower(h[i])] = h[i+1]
	}
	return r
}

func (r *fakeRequest) Header(n string) (string, bool) {
	v, ok := r.headers[strings.ToLower(n)]
	return v, ok
}
func (r *fakeRequest) QueryParam(n string) (string, bool) { v, ok := r.query[n]; return v, ok }
func (r *fakeRequest) SetHeader(n, v string) error        { r.headers[strings.ToLower(n)] = v; return nil }
func (r *fakeRequest) RemoveHeader(n string) error        { delete(r.headers, strings.ToLower(n)); return nil }

func TestAuthenticate(t *testing.T) {
	v := mustVerifier(t, `{"keys":[{"secret":"`+secret+`"}],"realm":"api",`+
		`"forward_claims":{"sub":"X-User-Id","roles":"X-Roles","org.id":"X-Org","admin":"X-Admin","n":"X-N","obj":"X-Obj"}}`)
	good := sign(t, map[string]any{"alg": "HS256"}, map[string]any{
		"sub": "u1", "exp": now.Unix() + 60, "roles": []any{"a", "b", 3}, "org": map[string]any{"id": 7},
		"admin": true, "n": 1.5, "obj": map[string]any{"k": "v"},
	}, nil, secret)

	// A valid token: claims forwarded, a spoofed header replaced.
	r := newFakeRequest("Authorization", "Bearer "+good, "X-User-Id", "spoofed", "X-Admin", "spoofed")
	rej, err := v.authenticate(r, now)
	if err != nil || rej != nil {
		t.Fatalf("valid token rejected: %+v %v", rej, err)
	}
	want := map[string]string{"x-user-id": "u1", "x-roles": "a,b,3", "x-org": "7", "x-admin": "true", "x-n": "1.5", "x-obj": `{"k":"v"}`}
	for h, val := range want {
		if r.headers[h] != val {
			t.Errorf("%s = %q, want %q", h, r.headers[h], val)
		}
	}
	if _, ok := r.headers["authorization"]; !ok {
		t.Error("token header removed without strip_token")
	}

	// A claim that is absent removes the spoofed header and sets nothing.
	partial := sign(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Unix() + 60}, nil, secret)
	r = newFakeRequest("Authorization", "bearer  "+partial, "X-User-Id", "spoofed")
	if rej, _ := v.authenticate(r, now); rej != nil {
		t.Fatalf("rejected: %+v", rej)
	}
	if _, ok := r.headers["x-user-id"]; ok {
		t.Fatal("spoofed X-User-Id survived a token without sub")
	}

	for _, tc := range []struct {
		name, authz, challenge, body string
	}{
		{"no header", "", `Bearer realm="api"`, `{"error":"unauthorized","error_description":"missing bearer token"}`},
		{"other scheme", "Basic dXNlcjpwYXNz", `Bearer realm="api"`, `{"error":"unauthorized","error_description":"missing bearer token"}`},
		{"empty bearer", "Bearer ", `Bearer realm="api"`, `{"error":"unauthorized","error_description":"missing bearer token"}`},
		{"expired", "Bearer " + sign(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Unix() - 1}, nil, secret),
			`Bearer realm="api", error="invalid_token", error_description="token expired"`,
			`{"error":"invalid_token","error_description":"token expired"}`},
		{"garbage", "Bearer abc", `Bearer realm="api", error="invalid_token", error_description="malformed token"`,
			`{"error":"invalid_token","error_description":"malformed token"}`},
		{"claim with a line break", "Bearer " + sign(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Unix() + 9, "sub": "a\r\nX-Admin: true"}, nil, secret),
			`Bearer realm="api", error="invalid_token", error_description="claim cannot be forwarded as a header"`,
			`{"error":"invalid_token","error_description":"claim cannot be forwarded as a header"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFakeRequest("X-User-Id", "spoofed")
			if tc.authz != "" {
				r.headers["authorization"] = tc.authz
			}
			rej, err := v.authenticate(r, now)
			if err != nil || rej == nil {
				t.Fatalf("not rejected: %v", err)
			}
			if rej.status != 401 || rej.wwwAuthenticate != tc.challenge || strings.TrimSpace(string(rej.body)) != tc.body {
				t.Fatalf("rejection %d %q %s", rej.status, rej.wwwAuthenticate, rej.body)
			}
			if _, ok := r.headers["x-user-id"]; ok {
				t.Fatal("spoofed header kept on a rejected request")
			}
		})
	}
}

func TestTokenSources(t *testing.T) {
	tok := sign(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Unix() + 60}, nil, secret)
	v := mustVerifier(t, `{"keys":[{"secret":"`+secret+`"}],"header":"X-Token","query":"access_token","strip_token":true}`)
	r := newFakeRequest("X-Token", tok)
	if rej, _ := v.authenticate(r, now); rej != nil {
		t.Fatalf("custom header: %+v", rej)
	}
	if _, ok := r.headers["x-token"]; ok {
		t.Fatal("strip_token kept the header")
	}
	r = newFakeRequest()
	r.query["access_token"] = tok
	if rej, _ := v.authenticate(r, now); rej != nil {
		t.Fatalf("query: %+v", rej)
	}
	// Query only: no header is consulted.
	q := mustVerifier(t, `{"keys":[{"secret":"`+secret+`"}],"query":"t"}`)
	if rej, _ := q.authenticate(newFakeRequest("Authorization", "Bearer "+tok), now); rej == nil {
		t.Fatal("query-only config read the Authorization header")
	}
}

func FuzzParseRSAPublicKey(f *testing.F) {
	for _, name := range []string{"rsa2048.pub.pem", "rsa2048.pkcs1.pub.pem", "ec256.pub.pem"} {
		f.Add(readFile(f, name))
	}
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := parseRSAPublicKey(s); err == nil && (k.N.BitLen() < minRSABits || k.E < 3) {
			t.Fatalf("accepted a weak key: %d bits, e=%d", k.N.BitLen(), k.E)
		}
	})
}

func FuzzVerify(f *testing.F) {
	v := mustVerifier(f, `{"keys":[{"secret":"`+secret+`"}],"leeway":5}`)
	f.Add(sign(f, map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Unix() + 60}, nil, secret))
	f.Add("a.b.c")
	f.Add(b64(map[string]any{"alg": "HS256", "crit": 1}) + "." + b64(1) + ".")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.verify(tok, now)
		if err == nil && (c == nil || c.Kind != jsonpath.Object) {
			t.Fatal("accepted without claims")
		}
	})
}

// BenchmarkVerify measures a whole verification (parse, signature, claims)
// natively; in the guest expect several times more for RS256 (no assembly
// for big-number arithmetic in wasm).
func BenchmarkVerify(b *testing.B) {
	priv := rsaKey(b)
	v := mustVerifier(b, configWithRSA(b, ""))
	c := map[string]any{"sub": "42", "exp": now.Unix() + 3600}
	for _, alg := range []string{"HS256", "RS256"} {
		tok := sign(b, map[string]any{"alg": alg}, c, priv, secret)
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.verify(tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
