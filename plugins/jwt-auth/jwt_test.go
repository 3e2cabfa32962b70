package main

import (
	"crypto"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/sdk/abi"
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

// verifyModes are the values of "verify": where RS256 signatures are checked.
var verifyModes = []string{verifyHost, verifyGuest}

func TestVerify(t *testing.T) {
	for _, mode := range verifyModes {
		t.Run(mode, func(t *testing.T) { testVerify(t, mode) })
	}
}

func testVerify(t *testing.T, mode string) {
	priv := rsaKey(t)
	v := mustVerifier(t, configWithRSA(t, `,"issuer":"https://auth","audiences":["api","admin"],"leeway":30,"verify":"`+mode+`"`))
	if v.hostVerify != (mode == verifyHost) {
		t.Fatalf("verify %q: hostVerify %v", mode, v.hostVerify)
	}
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
		{"alg ES384", b64(map[string]any{"alg": "ES384"}) + "." + b64(base()) + ".c2ln", errAlg},
		{"alg ES256 without an EC key", b64(map[string]any{"alg": "ES256"}) + "." + b64(base()) + ".c2ln", errUnknownKey},
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
	huge, _ := json.Marshal(hugeRSAPEM())
	p384, _ := json.Marshal(pemOf(t, mustECDSA(t, elliptic.P384()).Public()))
	x25519k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, _ := json.Marshal(pemOf(t, x25519k.PublicKey()))
	ed, _ := json.Marshal(pemOf(t, mustEd25519(t).Public()))
	offCurve, _ := json.Marshal(offCurvePEM(t))
	noNull, _ := json.Marshal(spkiWithoutNullPEM(t))
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
		{"EC P-256 key", `{"keys":[{"public_key":` + string(ec) + `}]}`, ""},
		{"EC P-256 key for ES256", `{"keys":[{"public_key":` + string(ec) + `,"alg":"ES256"}]}`, ""},
		{"EC key for RS256", `{"keys":[{"public_key":` + string(ec) + `,"alg":"RS256"}]}`, `keys[0]: "alg" is "RS256" but the key is for ES256 (an EC P-256 public key)`},
		{"RSA key for ES256", `{"keys":[{"public_key":` + string(pub) + `,"alg":"ES256"}]}`, `keys[0]: "alg" is "ES256" but the key is for RS256 or PS256 (an RSA public key)`},
		{"RSA key for PS256", `{"keys":[{"public_key":` + string(pub) + `,"alg":"PS256"}]}`, ""},
		{"unsupported alg", `{"keys":[{"public_key":` + string(pub) + `,"alg":"RS512"}]}`, `keys[0]: "alg": "RS512" is not supported: want HS256, RS256, PS256, ES256 or EdDSA`},
		{"EC P-384 key", `{"keys":[{"public_key":` + string(p384) + `}]}`, `keys[0]: "public_key": an EC key on curve 1.3.132.0.34: only P-256 (ES256) is supported`},
		{"X25519 key", `{"keys":[{"public_key":` + string(x25519) + `}]}`, `keys[0]: "public_key": a key of algorithm 1.3.101.110: want RSA, EC P-256 or Ed25519`},
		{"Ed25519 key", `{"keys":[{"public_key":` + string(ed) + `}]}`, ""},
		{"EC point off the curve", `{"keys":[{"public_key":` + string(offCurve) + `}]}`, `keys[0]: "public_key": the gateway cannot verify with this key: wasmgate.crypto_verify: bad argument`},
		{"EC point off the curve, verify guest", `{"keys":[{"public_key":` + string(offCurve) + `}],"verify":"guest"}`, `keys[0]: "public_key": the gateway cannot verify with this key`},
		{"weak RSA", `{"keys":[{"public_key":` + string(weak) + `}]}`, `keys[0]: "public_key": RSA key of 1024 bits: want at least 2048`},
		{"leeway", `{"keys":[{"secret":"` + secret + `"}],"leeway":"1h"}`, `"leeway" 1h0m0s is over 10m0s`},
		{"bad header", `{"keys":[{"secret":"` + secret + `"}],"header":"X Token"}`, `"header": "X Token" is not a valid header name`},
		{"bad realm", `{"keys":[{"secret":"` + secret + `"}],"realm":"a\"b"}`, `"realm": "a\"b" may not contain quotes`},
		{"bad forward header", `{"keys":[{"secret":"` + secret + `"}],"forward_claims":{"sub":"X User"}}`, `"forward_claims": "sub": "X User" is not a valid header name`},
		{"bad claim path", `{"keys":[{"secret":"` + secret + `"}],"forward_claims":{"a..b":"X-A"}}`, `"forward_claims": bad claim path "a..b": path "a..b": empty segment`},
		{"verify host", `{"keys":[{"public_key":` + string(pub) + `}],"verify":"host"}`, ""},
		{"verify guest", `{"keys":[{"public_key":` + string(pub) + `}],"verify":"guest"}`, ""},
		{"verify unknown", `{"keys":[{"secret":"` + secret + `"}],"verify":"wasm"}`, `"verify": "wasm": want "host" (the gateway checks RS256 signatures, the default) or "guest" (the plugin does)`},
		{"RSA over 8192 bits", `{"keys":[{"public_key":` + string(huge) + `}]}`, `keys[0]: "public_key": RSA key of 8193 bits: want at most 8192`},
		// A SubjectPublicKeyInfo without the NULL parameters RFC 3279
		// requires: the guest's lenient parser takes it, the host does not,
		// and with verify: host that is a config error, not a 401 per token.
		{"key the host refuses", `{"keys":[{"public_key":` + string(noNull) + `}]}`, `keys[0]: "public_key": the gateway cannot verify with this key: wasmgate.crypto_verify: bad argument`},
		{"key the host refuses, verify guest", `{"keys":[{"public_key":` + string(noNull) + `}],"verify":"guest"}`, ""},
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
	id, rej, err := v.authenticate(r, now)
	if err != nil || rej != nil || id.consumer != "u1" {
		t.Fatalf("valid token: consumer %q, %+v %v", id.consumer, rej, err)
	}
	if !json.Valid(id.claims) || !strings.Contains(string(id.claims), `"sub":"u1"`) {
		t.Fatalf("claims %s", id.claims)
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
	if _, rej, _ := v.authenticate(r, now); rej != nil {
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
		{"expired", "Bearer " + sign(t, map[string]any{"alg": "HS256"}, map[string]any{"exp": now.Unix() - 61}, nil, secret),
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
			_, rej, err := v.authenticate(r, now)
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
	if _, rej, _ := v.authenticate(r, now); rej != nil {
		t.Fatalf("custom header: %+v", rej)
	}
	if _, ok := r.headers["x-token"]; ok {
		t.Fatal("strip_token kept the header")
	}
	r = newFakeRequest()
	r.query["access_token"] = tok
	if _, rej, _ := v.authenticate(r, now); rej != nil {
		t.Fatalf("query: %+v", rej)
	}
	// Query only: no header is consulted.
	q := mustVerifier(t, `{"keys":[{"secret":"`+secret+`"}],"query":"t"}`)
	if _, rej, _ := q.authenticate(newFakeRequest("Authorization", "Bearer "+tok), now); rej == nil {
		t.Fatal("query-only config read the Authorization header")
	}
}

func FuzzParseRSAPublicKey(f *testing.F) {
	for _, name := range []string{"rsa2048.pub.pem", "rsa2048.pkcs1.pub.pem", "ec256.pub.pem"} {
		f.Add(readFile(f, name))
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, der, err := parseRSAPublicKey(s)
		if err != nil {
			return
		}
		if bits := k.N.BitLen(); bits < abi.MinRSABits || bits > abi.MaxRSABits || k.E < 3 {
			t.Fatalf("accepted a weak or oversized key: %d bits, e=%d", bits, k.E)
		}
		if len(der) == 0 {
			t.Fatal("accepted a key without its DER")
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
//
// Natively both "verify" modes run the same standard-library code; the
// figures that tell them apart are the wasm ones of
// host/wasm/jwt_bench_test.go (BenchmarkJWTAuth).
func BenchmarkVerify(b *testing.B) {
	priv := rsaKey(b)
	c := map[string]any{"sub": "42", "exp": now.Unix() + 3600}
	for _, alg := range []string{"HS256", "RS256"} {
		tok := sign(b, map[string]any{"alg": alg}, c, priv, secret)
		for _, mode := range verifyModes {
			if alg == "HS256" && mode == verifyHost {
				continue // HS256 is always verified in the guest
			}
			v := mustVerifier(b, configWithRSA(b, `,"verify":"`+mode+`"`))
			b.Run(alg+"/"+mode, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.verify(tok, now); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// hugeRSAPEM is an RSA PUBLIC KEY of 8193 bits: only its size matters.
func hugeRSAPEM() string {
	n := new(big.Int).Lsh(big.NewInt(1), 8192)
	n.Add(n, big.NewInt(1))
	der := x509.MarshalPKCS1PublicKey(&rsa.PublicKey{N: n, E: 65537})
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der}))
}

// spkiWithoutNullPEM is the test key as a PUBLIC KEY whose algorithm
// identifier omits the NULL parameters.
func spkiWithoutNullPEM(t testing.TB) string {
	t.Helper()
	var info struct {
		Algorithm struct{ OID asn1.ObjectIdentifier }
		PublicKey asn1.BitString
	}
	info.Algorithm.OID = oidRSA
	info.PublicKey.Bytes = x509.MarshalPKCS1PublicKey(&rsaKey(t).PublicKey)
	info.PublicKey.BitLength = 8 * len(info.PublicKey.Bytes)
	der, err := asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestVerifyPathsAgree runs RS256 tokens, good and bad, through a verifier
// of each "verify" mode: the host path (natively, the SDK's in-process
// crypto_verify) and the guest path must give the same answer, the
// expected one.
func TestVerifyPathsAgree(t *testing.T) {
	priv := rsaKey(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1, _ := json.Marshal(readFile(t, "rsa2048.pkcs1.pub.pem"))
	pub, _ := json.Marshal(readFile(t, "rsa2048.pub.pem"))
	otherPEM, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustSPKI(t, &other.PublicKey)})))
	// Three RSA keys: the test key in both encodings, and another key.
	cfg := `{"keys":[{"kid":"spki","public_key":` + string(pub) + `},{"kid":"pkcs1","public_key":` + string(pkcs1) +
		`},{"kid":"other","public_key":` + string(otherPEM) + `},{"kid":"hs","secret":"` + secret + `"},` +
		`{"kid":"pss","alg":"PS256","public_key":` + string(pub) + `}],"verify":"`
	vs := map[string]*verifier{}
	for _, mode := range verifyModes {
		vs[mode] = mustVerifier(t, cfg+mode+`"}`)
	}
	claims := map[string]any{"sub": "42", "exp": now.Unix() + 60}
	rs := func(kid string, k *rsa.PrivateKey) string {
		h := map[string]any{"alg": "RS256"}
		if kid != "" {
			h["kid"] = kid
		}
		return sign(t, h, claims, k, "")
	}
	ps := func(kid string, k *rsa.PrivateKey, salt int) string {
		h := map[string]any{"alg": "PS256"}
		if kid != "" {
			h["kid"] = kid
		}
		signed := b64(h) + "." + b64(claims)
		d := sha256.Sum256([]byte(signed))
		sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: salt})
		if err != nil {
			t.Fatal(err)
		}
		return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	good := rs("spki", priv)
	parts := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	withSig := func(b []byte) string {
		return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(b)
	}
	flipped := slices.Clone(sig)
	flipped[len(flipped)/2] ^= 0x40
	d := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	pss, _ := rsa.SignPSS(rand.Reader, priv, crypto.SHA256, d[:], nil)

	for _, tc := range []struct {
		name  string
		token string
		err   *authError
	}{
		{"valid, SPKI key", good, nil},
		{"valid, PKCS#1 key", rs("pkcs1", priv), nil},
		{"valid, no kid: every RS256 key tried", rs("", priv), nil},
		{"valid, other key", rs("other", other), nil},
		{"signed by another key", rs("spki", other), errSignature},
		{"no kid, signed by an unconfigured key", rs("", mustRSA(t)), errSignature},
		{"tampered payload", parts[0] + "." + b64(map[string]any{"sub": "1", "exp": now.Unix() + 60}) + "." + parts[2], errSignature},
		{"tampered signature", withSig(flipped), errSignature},
		{"truncated signature", withSig(sig[:len(sig)-1]), errSignature},
		{"signature with a byte more", withSig(append(slices.Clone(sig), 0)), errSignature},
		{"signature of zeros", withSig(make([]byte, len(sig))), errSignature},
		{"signature equal to the modulus", withSig(priv.N.Bytes()), errSignature},
		{"one-byte signature", withSig([]byte{1}), errSignature},
		{"PSS signature as RS256", withSig(pss), errSignature},
		{"unknown kid", rs("nope", priv), errUnknownKey},
		{"PS256", ps("pss", priv, 32), nil},
		{"PS256 without kid", ps("", priv, 32), nil},
		{"PS256 with a salt of 20 bytes", ps("pss", priv, 20), errSignature},
		{"PS256 signed by another key", ps("pss", other, 32), errSignature},
		{"PS256 naming an RS256 key", ps("spki", priv, 32), errUnknownKey},
		{"RS256 naming a PS256 key", rs("pss", priv), errUnknownKey},
		{"HS256 beside RSA keys", sign(t, map[string]any{"alg": "HS256", "kid": "hs"}, claims, nil, secret), nil},
		{"expired, valid signature", sign(t, map[string]any{"alg": "RS256"}, map[string]any{"exp": now.Unix() - 61}, priv, ""), errExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range verifyModes {
				if _, err := vs[mode].verify(tc.token, now); err != tc.err {
					t.Errorf("verify %s: %v, want %v", mode, err, tc.err)
				}
			}
		})
	}
}

// TestHostVerifyError: a host error (here a key the host cannot parse,
// which on_init's check normally rules out) fails the request rather than
// answering 401: the token is not at fault.
func TestHostVerifyError(t *testing.T) {
	v := mustVerifier(t, configWithRSA(t, ""))
	for i := range v.keys {
		v.keys[i].der = []byte("not a key")
	}
	tok := sign(t, map[string]any{"alg": "RS256"}, map[string]any{"exp": now.Unix() + 60}, rsaKey(t), "")
	_, rej, err := v.authenticate(newFakeRequest("Authorization", "Bearer "+tok), now)
	if rej != nil || err == nil || err.Error() != "wasmgate.crypto_verify: bad argument" {
		t.Fatalf("rejection %+v, error %v", rej, err)
	}
	// The guest path does not use the DER.
	v.hostVerify = false
	if _, rej, err := v.authenticate(newFakeRequest("Authorization", "Bearer "+tok), now); rej != nil || err != nil {
		t.Fatalf("guest path: %+v %v", rej, err)
	}
}

func mustRSA(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSPKI(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
