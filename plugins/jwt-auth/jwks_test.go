package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

// Keys and signers for ES256, EdDSA and PS256.

func mustECDSA(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(t testing.TB, pub any) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustSPKI(t, pub)}))
}

// offCurvePEM is a P-256 public key whose point is not on the curve: only
// the host's check (crypto_verify) can tell.
func offCurvePEM(t testing.TB) string {
	x := make([]byte, 32)
	y := make([]byte, 32)
	x[31], y[31] = 1, 1
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: marshalSPKI(oidEC, oidP256, append(append([]byte{4}, x...), y...))}))
}

// signer signs a JWS signing input.
type signer func(t testing.TB, in []byte) []byte

func es256(k *ecdsa.PrivateKey) signer {
	return func(t testing.TB, in []byte) []byte {
		d := sha256.Sum256(in)
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig := make([]byte, 64) // r||s, 32 bytes each (RFC 7518 section 3.4)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	}
}

func eddsa(k ed25519.PrivateKey) signer {
	return func(t testing.TB, in []byte) []byte { return ed25519.Sign(k, in) }
}

func rs256With(k *rsa.PrivateKey) signer {
	return func(t testing.TB, in []byte) []byte {
		d := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, d[:])
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

func ps256With(k *rsa.PrivateKey) signer {
	return func(t testing.TB, in []byte) []byte {
		d := sha256.Sum256(in)
		sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
}

// token signs claims with alg and kid ("" none).
func token(t testing.TB, alg, kid string, c map[string]any, s signer) string {
	t.Helper()
	h := map[string]any{"alg": alg, "typ": "JWT"}
	if kid != "" {
		h["kid"] = kid
	}
	in := b64(h) + "." + b64(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(s(t, []byte(in)))
}

// valid claims: the JWKS tests move their clock by hours.
func valid() map[string]any { return map[string]any{"sub": "42", "exp": now.Unix() + 3*86400} }

// TestAlgorithms: ES256, EdDSA and PS256 with keys in PEM, beside HS256
// and RS256, in both verify modes (ES256 and EdDSA always go to the host).
func TestAlgorithms(t *testing.T) {
	ec, ed, rsaK := mustECDSA(t, elliptic.P256()), mustEd25519(t), rsaKey(t)
	ec2, ed2 := mustECDSA(t, elliptic.P256()), mustEd25519(t)
	js := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	cfg := `{"keys":[` +
		`{"kid":"ec","public_key":` + js(pemOf(t, ec.Public())) + `},` +
		`{"kid":"ed","public_key":` + js(pemOf(t, ed.Public())) + `},` +
		`{"kid":"rs","public_key":` + js(readFile(t, "rsa2048.pub.pem")) + `},` +
		`{"kid":"ps","alg":"PS256","public_key":` + js(readFile(t, "rsa2048.pub.pem")) + `},` +
		`{"kid":"hs","secret":"` + secret + `"}],"verify":"`
	ecSig := es256(ec)
	for _, mode := range verifyModes {
		v := mustVerifier(t, cfg+mode+`"}`)
		for _, tc := range []struct {
			name  string
			token string
			err   *authError
		}{
			{"ES256", token(t, "ES256", "ec", valid(), ecSig), nil},
			{"ES256 without kid", token(t, "ES256", "", valid(), ecSig), nil},
			{"EdDSA", token(t, "EdDSA", "ed", valid(), eddsa(ed)), nil},
			{"EdDSA without kid", token(t, "EdDSA", "", valid(), eddsa(ed)), nil},
			{"PS256", token(t, "PS256", "ps", valid(), ps256With(rsaK)), nil},
			{"RS256", token(t, "RS256", "rs", valid(), rs256With(rsaK)), nil},
			{"ES256 by another key", token(t, "ES256", "ec", valid(), es256(ec2)), errSignature},
			{"EdDSA by another key", token(t, "EdDSA", "ed", valid(), eddsa(ed2)), errSignature},
			{"ES256 naming the Ed25519 key", token(t, "ES256", "ed", valid(), ecSig), errUnknownKey},
			{"EdDSA naming the EC key", token(t, "EdDSA", "ec", valid(), eddsa(ed)), errUnknownKey},
			{"PS256 naming the RS256 key", token(t, "PS256", "rs", valid(), ps256With(rsaK)), errUnknownKey},
			{"ES256 with an ASN.1 signature", token(t, "ES256", "ec", valid(), func(t testing.TB, in []byte) []byte {
				d := sha256.Sum256(in)
				sig, _ := ecdsa.SignASN1(rand.Reader, ec, d[:])
				return sig
			}), errSignature},
			{"ES256 with a short signature", token(t, "ES256", "ec", valid(), func(t testing.TB, in []byte) []byte { return ecSig(t, in)[:63] }), errSignature},
			{"HS256 with the EC public key as secret", token(t, "HS256", "ec", valid(), func(t testing.TB, in []byte) []byte { return []byte("x") }), errUnknownKey},
		} {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				if _, err := v.verify(tc.token, now); err != tc.err {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
			})
		}
	}
	// A tampered payload breaks an ES256 signature.
	parts := strings.Split(token(t, "ES256", "ec", valid(), ecSig), ".")
	v := mustVerifier(t, cfg+`host"}`)
	if _, err := v.verify(parts[0]+"."+b64(map[string]any{"sub": "1", "exp": now.Unix() + 600})+"."+parts[2], now); err != errSignature {
		t.Fatalf("tampered ES256: %v", err)
	}
}

// TestTimeClaims: exp, nbf and iat with the default leeway (60s), an
// explicit one and none.
func TestTimeClaims(t *testing.T) {
	at := func(k string, d int64) map[string]any { c := valid(); c[k] = now.Unix() + d; return c }
	hs := func(c map[string]any) string {
		return sign(t, map[string]any{"alg": "HS256"}, c, nil, secret)
	}
	for _, tc := range []struct {
		leeway string // "" default
		claims map[string]any
		err    *authError
	}{
		{"", at("exp", -59), nil},
		{"", at("exp", -60), errExpired},
		{"", at("nbf", 60), nil},
		{"", at("nbf", 61), errNotYet},
		{"", at("iat", 60), nil},
		{"", at("iat", 61), errIssuedLater},
		{"", at("iat", -86400), nil},
		{"", map[string]any{"exp": now.Unix() + 60, "iat": "yesterday"}, errMalformed},
		{"", map[string]any{"exp": now.Unix() + 60, "nbf": true}, errMalformed},
		{`,"leeway":0`, at("exp", -1), errExpired},
		{`,"leeway":0`, at("exp", 1), nil},
		{`,"leeway":0`, at("iat", 1), errIssuedLater},
		{`,"leeway":0`, at("iat", 0), nil},
		{`,"leeway":0`, at("nbf", 1), errNotYet},
		{`,"leeway":"5m"`, at("exp", -299), nil},
		{`,"leeway":"5m"`, at("exp", -300), errExpired},
		{`,"leeway":"5m"`, at("iat", 299), nil},
		{`,"leeway":"5m"`, at("iat", 301), errIssuedLater},
		{`,"leeway":null`, at("iat", 61), errIssuedLater},
	} {
		v := mustVerifier(t, `{"keys":[{"secret":"`+secret+`"}]`+tc.leeway+`}`)
		if _, err := v.verify(hs(tc.claims), now); err != tc.err {
			t.Errorf("leeway %q, claims %v: err %v, want %v", tc.leeway, tc.claims, err, tc.err)
		}
	}
	v := mustVerifier(t, `{"keys":[{"secret":"`+secret+`"}]}`)
	_, rej, _ := v.authenticate(newFakeRequest("Authorization", "Bearer "+hs(at("iat", 3600))), now)
	if rej == nil || rej.status != 401 ||
		rej.wwwAuthenticate != `Bearer realm="wasmgate", error="invalid_token", error_description="token issued in the future"` {
		t.Fatalf("iat in the future: %+v", rej)
	}
}

// JWKs of test keys.

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PublicKey, extra ...any) map[string]any {
	return jwkMap(map[string]any{"kty": "RSA", "kid": kid, "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}, extra)
}

func ecJWK(kid string, k *ecdsa.PublicKey, extra ...any) map[string]any {
	b, err := k.Bytes() // 04 || x || y
	if err != nil {
		panic(err)
	}
	n := len(b) / 2
	x, y := b[1:1+n], b[1+n:]
	return jwkMap(map[string]any{"kty": "EC", "crv": "P-256", "kid": kid, "x": b64u(x), "y": b64u(y)}, extra)
}

func edJWK(kid string, k ed25519.PublicKey, extra ...any) map[string]any {
	return jwkMap(map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(k)}, extra)
}

// jwkMap sets extra's name/value pairs (a nil value deletes).
func jwkMap(m map[string]any, extra []any) map[string]any {
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(m, extra[i].(string))
		} else {
			m[extra[i].(string)] = extra[i+1]
		}
	}
	return m
}

func jwksBody(keys ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"keys": keys})
	return b
}

func TestParseJWK(t *testing.T) {
	rk := &rsaKey(t).PublicKey
	ec, ed := mustECDSA(t, elliptic.P256()), mustEd25519(t)
	ecPub, edPub := &ec.PublicKey, ed.Public().(ed25519.PublicKey)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384 := mustECDSA(t, elliptic.P384())
	for _, tc := range []struct {
		name string
		jwk  map[string]any
		alg  string // the key's alg when accepted
		err  string
	}{
		{"RSA", rsaJWK("r", rk), "", ""},
		{"RSA RS256", rsaJWK("r", rk, "alg", "RS256", "use", "sig"), "RS256", ""},
		{"RSA PS256", rsaJWK("r", rk, "alg", "PS256", "key_ops", []string{"verify"}), "PS256", ""},
		{"EC", ecJWK("e", ecPub), "ES256", ""},
		{"EC ES256", ecJWK("e", ecPub, "alg", "ES256"), "ES256", ""},
		{"Ed25519", edJWK("o", edPub), "EdDSA", ""},
		{"Ed25519 EdDSA", edJWK("o", edPub, "alg", "EdDSA"), "EdDSA", ""},
		{"padded base64", rsaJWK("r", rk, "e", "AQAB=="), "", ""},
		{"encryption key", rsaJWK("r", rk, "use", "enc"), "", `use "enc", not sig`},
		{"key_ops without verify", ecJWK("e", ecPub, "key_ops", []string{"encrypt"}), "", `key_ops without "verify"`},
		{"RS512", rsaJWK("r", rk, "alg", "RS512"), "", `alg "RS512" is not supported`},
		{"HS256", map[string]any{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}, "", `alg "HS256" is not supported`},
		{"oct", map[string]any{"kty": "oct", "k": "c2VjcmV0"}, "", "symmetric keys are not taken from a JWKS"},
		{"alg of another key type", ecJWK("e", ecPub, "alg", "RS256"), "", `alg "RS256" does not suit a key of type "EC"`},
		{"unknown kty", map[string]any{"kty": "PQC", "kid": "q"}, "", `key type "PQC" is not supported`},
		{"no kty", map[string]any{"kid": "q"}, "", `key type "" is not supported`},
		{"P-384", ecJWK("e", &p384.PublicKey, "crv", "P-384"), "", `curve "P-384" is not supported (P-256 only)`},
		{"Ed448", edJWK("o", edPub, "crv", "Ed448"), "", `curve "Ed448" is not supported (Ed25519 only)`},
		{"X25519", edJWK("o", edPub, "crv", "X25519"), "", `curve "X25519" is not supported (Ed25519 only)`},
		{"EC short x", ecJWK("e", ecPub, "x", b64u(make([]byte, 31))), "", `"x": want 32 bytes in base64url`},
		{"EC no y", ecJWK("e", ecPub, "y", nil), "", `"y": want 32 bytes in base64url`},
		{"EC point off the curve", ecJWK("e", ecPub, "y", b64u(make([]byte, 32))), "", "the gateway cannot verify with this key: wasmgate.crypto_verify: bad argument"},
		{"Ed25519 long x", edJWK("o", edPub, "x", b64u(make([]byte, 33))), "", `"x": want 32 bytes in base64url`},
		{"RSA no n", rsaJWK("r", rk, "n", nil), "", `"n": want a base64url integer`},
		{"RSA bad e", rsaJWK("r", rk, "e", "!!"), "", `"e": want a base64url integer`},
		{"RSA even e", rsaJWK("r", rk, "e", b64u([]byte{1, 0, 0})), "", "invalid RSA public key"},
		{"RSA huge e", rsaJWK("r", rk, "e", b64u([]byte{1, 0, 0, 0, 0, 1})), "", "invalid RSA public key"},
		{"RSA 1024", rsaJWK("r", &weak.PublicKey), "", "RSA key of 1024 bits: want at least 2048"},
		{"kid not a string", rsaJWK("r", rk, "kid", 5), "", "malformed JWK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(tc.jwk)
			k, err := parseJWK(raw, true)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if k.alg != tc.alg || len(k.der) == 0 {
				t.Fatalf("alg %q, want %q; der %d bytes", k.alg, tc.alg, len(k.der))
			}
		})
	}
	// The DER built from a JWK is what crypto/x509 makes of the same key.
	for _, pub := range []any{rk, ecPub, edPub} {
		var m map[string]any
		switch p := pub.(type) {
		case *rsa.PublicKey:
			m = rsaJWK("", p)
		case *ecdsa.PublicKey:
			m = ecJWK("", p)
		case ed25519.PublicKey:
			m = edJWK("", p)
		}
		raw, _ := json.Marshal(m)
		k, err := parseJWK(raw, true)
		if err != nil {
			t.Fatal(err)
		}
		want := mustSPKI(t, pub)
		if k.kty == ktyRSA {
			var info spki
			if _, err := asn1.Unmarshal(want, &info); err != nil {
				t.Fatal(err)
			}
			want = info.PublicKey.RightAlign() // PKCS#1 inside the SPKI
		}
		if string(k.der) != string(want) {
			t.Errorf("%T: DER %x\nwant %x", pub, k.der, want)
		}
	}
}

// fakeHost is the gateway for the JWKS code: a JWKS server, a KV store
// with TTLs on a fake clock, and a log. Instances of a plugin share one.
type fakeHost struct {
	now     time.Time
	kv      map[string]fakeEntry
	kvErr   error // every KV call fails with it when set
	serve   func() (int, []byte, error)
	fetches int
	logs    []string
}

type fakeEntry struct {
	val []byte
	exp time.Time // zero: never
}

func newFakeJWKSHost(body []byte) *fakeHost {
	f := &fakeHost{now: now, kv: map[string]fakeEntry{}}
	f.serveBody(body)
	return f
}

func (f *fakeHost) serveBody(b []byte) {
	f.serve = func() (int, []byte, error) { return 200, b, nil }
}

func (f *fakeHost) Fetch(url string, timeout time.Duration) (int, []byte, error) {
	f.fetches++
	return f.serve()
}

func (f *fakeHost) entry(key string) (fakeEntry, bool) {
	e, ok := f.kv[key]
	if ok && !e.exp.IsZero() && !f.now.Before(e.exp) {
		delete(f.kv, key)
		return e, false
	}
	return e, ok
}

func (f *fakeHost) KVGet(key string) ([]byte, error) {
	if f.kvErr != nil {
		return nil, f.kvErr
	}
	if e, ok := f.entry(key); ok {
		return append([]byte(nil), e.val...), nil
	}
	return nil, wasmgate.ErrNotFound
}

func (f *fakeHost) KVSet(key string, value []byte, ttl time.Duration) error {
	if f.kvErr != nil {
		return f.kvErr
	}
	e := fakeEntry{val: append([]byte(nil), value...)}
	if ttl > 0 {
		e.exp = f.now.Add(ttl)
	}
	f.kv[key] = e
	return nil
}

func (f *fakeHost) KVIncr(key string, delta int64, ttl time.Duration) (int64, error) {
	if f.kvErr != nil {
		return 0, f.kvErr
	}
	e, ok := f.entry(key)
	var n int64
	if ok {
		fmt.Sscan(string(e.val), &n)
	} else if ttl > 0 {
		e.exp = f.now.Add(ttl)
	}
	n += delta
	e.val = []byte(fmt.Sprint(n))
	f.kv[key] = e
	return n, nil
}

func (f *fakeHost) Log(level wasmgate.Level, msg string) {
	f.logs = append(f.logs, level.String()+": "+msg)
}

// jwksVerifier is a verifier of the config's jwks on host f.
func jwksVerifier(t testing.TB, f *fakeHost, cfg string) *verifier {
	t.Helper()
	v := mustVerifier(t, cfg)
	v.jwks.host = f
	return v
}

const jwksCfg = `{"jwks":{"url":"upstream://idp/jwks.json","cache_ttl":"5m","min_refresh_interval":"30s","max_stale":"1h"}`

// testKeys are an RSA, an EC P-256 and an Ed25519 key with their JWKs.
type testKeys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func newTestKeys(t testing.TB) testKeys {
	return testKeys{rsa: mustRSA(t), ec: mustECDSA(t, elliptic.P256()), ed: mustEd25519(t)}
}

// set is the key set of k with kids prefixed by p.
func (k testKeys) set(p string) []byte {
	return jwksBody(rsaJWK(p+"rsa", &k.rsa.PublicKey, "use", "sig"), ecJWK(p+"ec", &k.ec.PublicKey, "alg", "ES256"),
		edJWK(p+"ed", k.ed.Public().(ed25519.PublicKey)))
}

// tokens are tokens by each key of k, kids prefixed by p.
func (k testKeys) tokens(t testing.TB, p string, c map[string]any) map[string]string {
	return map[string]string{
		"RS256": token(t, "RS256", p+"rsa", c, rs256With(k.rsa)),
		"PS256": token(t, "PS256", p+"rsa", c, ps256With(k.rsa)),
		"ES256": token(t, "ES256", p+"ec", c, es256(k.ec)),
		"EdDSA": token(t, "EdDSA", p+"ed", c, eddsa(k.ed)),
	}
}

func TestJWKS(t *testing.T) {
	k := newTestKeys(t)
	f := newFakeJWKSHost(k.set("a-"))
	v := jwksVerifier(t, f, jwksCfg+`}`)
	check := func(what, tok string, want *authError) {
		t.Helper()
		if _, err := v.verify(tok, f.now); err != want {
			t.Fatalf("%s: err %v, want %v", what, err, want)
		}
	}

	// The first token fetches the set; every key type verifies.
	for alg, tok := range k.tokens(t, "a-", valid()) {
		check(alg, tok, nil)
	}
	if f.fetches != 1 {
		t.Fatalf("%d fetches, want 1", f.fetches)
	}
	// A token without kid is tried with every key of its algorithm.
	check("no kid", token(t, "ES256", "", valid(), es256(k.ec)), nil)
	// The JWK's alg binds: the EC key says ES256, and a kid of one key
	// type does not serve another algorithm.
	check("RS256 naming the EC key", token(t, "RS256", "a-ec", valid(), rs256With(k.rsa)), errUnknownKey)
	check("wrong key", token(t, "ES256", "a-ec", valid(), es256(mustECDSA(t, elliptic.P256()))), errSignature)
	check("HS256 is never from a JWKS", sign(t, map[string]any{"alg": "HS256", "kid": "a-rsa"}, valid(), nil, secret), errUnknownKey)
	if f.fetches != 1 {
		t.Fatalf("known kids: %d fetches, want 1", f.fetches)
	}

	// A kid spray: 50 unknown kids cost one fetch (the kid is still
	// unknown after it: 401), then none until min_refresh_interval.
	f.now = f.now.Add(31 * time.Second)
	for i := range 50 {
		check("spray", token(t, "ES256", fmt.Sprintf("spray-%d", i), valid(), es256(k.ec)), errUnknownKey)
		f.now = f.now.Add(100 * time.Millisecond)
	}
	if f.fetches != 2 {
		t.Fatalf("kid spray: %d fetches, want 2", f.fetches)
	}
	f.now = f.now.Add(30 * time.Second)
	check("spray after the interval", token(t, "ES256", "spray-x", valid(), es256(k.ec)), errUnknownKey)
	if f.fetches != 3 {
		t.Fatalf("after the interval: %d fetches, want 3", f.fetches)
	}

	// Rotation: the issuer's new keys are fetched for the first token that
	// names one (once the interval allows), and the old ones are gone.
	k2 := newTestKeys(t)
	f.serveBody(k2.set("b-"))
	f.now = f.now.Add(30 * time.Second)
	for alg, tok := range k2.tokens(t, "b-", valid()) {
		check("rotated "+alg, tok, nil)
	}
	if f.fetches != 4 {
		t.Fatalf("rotation: %d fetches, want 4", f.fetches)
	}
	check("old key after rotation", k.tokens(t, "a-", valid())["EdDSA"], errUnknownKey)

	// cache_ttl: the set is fetched again on the first request after it.
	f.now = f.now.Add(5 * time.Minute)
	check("after cache_ttl", k2.tokens(t, "b-", valid())["RS256"], nil)
	if f.fetches != 5 {
		t.Fatalf("after cache_ttl: %d fetches, want 5", f.fetches)
	}

	// The JWKS server goes down: known kids keep working on the cached
	// (stale) keys; an unknown kid is 503 with Retry-After, since it may
	// be a key the server would have served.
	f.serve = func() (int, []byte, error) { return 0, nil, wasmgate.ErrNetwork }
	f.now = f.now.Add(5*time.Minute + time.Second)
	check("stale, server down", k2.tokens(t, "b-", valid())["ES256"], nil)
	if f.fetches != 6 {
		t.Fatalf("server down: %d fetches, want 6", f.fetches)
	}
	if got := f.logs[len(f.logs)-1]; !strings.Contains(got, "jwks: GET upstream://idp/jwks.json failed: wasmgate: outbound connect or network error; serving the 3 keys fetched 5m1s ago") {
		t.Fatalf("log %q", got)
	}
	f.now = f.now.Add(10 * time.Second)
	_, err := v.verify(token(t, "ES256", "new", valid(), es256(k.ec)), f.now)
	if err == nil || err.retryAfter != 20*time.Second || err.desc != "signing keys unavailable" {
		t.Fatalf("unknown kid, server down: %+v", err)
	}
	rej := unavailable(err)
	if rej.status != 503 || rej.retryAfter != "20" || rej.wwwAuthenticate != "" ||
		string(rej.body) != `{"error":"temporarily_unavailable","error_description":"signing keys unavailable"}`+"\n" {
		t.Fatalf("503: %+v %s", rej, rej.body)
	}
	if f.fetches != 6 {
		t.Fatalf("within the interval: %d fetches, want 6", f.fetches)
	}
	// Past max_stale (1h after cache_ttl) the keys are no longer used.
	f.now = f.now.Add(2 * time.Hour)
	if _, err := v.verify(k2.tokens(t, "b-", valid())["EdDSA"], f.now); err == nil || err.retryAfter == 0 {
		t.Fatalf("past max_stale: %v", err)
	}
	// The server comes back.
	f.serveBody(k2.set("b-"))
	f.now = f.now.Add(31 * time.Second)
	check("server back", k2.tokens(t, "b-", valid())["EdDSA"], nil)
}

// TestJWKSShared: instances share the set and the rate limit through the
// KV store, so that one fetch serves them all.
func TestJWKSShared(t *testing.T) {
	k := newTestKeys(t)
	f := newFakeJWKSHost(k.set(""))
	var vs []*verifier
	for range 4 {
		vs = append(vs, jwksVerifier(t, f, jwksCfg+`}`))
	}
	toks := k.tokens(t, "", valid())
	for _, v := range vs {
		if _, err := v.verify(toks["EdDSA"], f.now); err != nil {
			t.Fatal(err)
		}
	}
	if f.fetches != 1 {
		t.Fatalf("%d fetches for 4 instances, want 1", f.fetches)
	}
	// One instance fetches a rotated set; another, whose set does not know
	// the new kid, takes it from the store without fetching.
	k2 := newTestKeys(t)
	f.serveBody(jwksBody(rsaJWK("new", &k2.rsa.PublicKey)))
	f.now = f.now.Add(time.Minute)
	tok := token(t, "RS256", "new", valid(), rs256With(k2.rsa))
	if _, err := vs[0].verify(tok, f.now); err != nil {
		t.Fatal(err)
	}
	if _, err := vs[1].verify(tok, f.now); err != nil {
		t.Fatal(err)
	}
	if f.fetches != 2 {
		t.Fatalf("%d fetches, want 2", f.fetches)
	}
	// A kid spray over all instances: one fetch per interval in all.
	f.now = f.now.Add(time.Minute)
	for i := range 40 {
		vs[i%4].verify(token(t, "RS256", fmt.Sprint("spray", i), valid(), rs256With(k2.rsa)), f.now)
	}
	if f.fetches != 3 {
		t.Fatalf("kid spray over 4 instances: %d fetches, want 3", f.fetches)
	}
	// A failure seen by one instance is known to the others: an unknown
	// kid is 503 there too.
	f.serve = func() (int, []byte, error) { return 500, []byte("oops"), nil }
	f.now = f.now.Add(time.Minute)
	if _, err := vs[2].verify(token(t, "RS256", "x1", valid(), rs256With(k2.rsa)), f.now); err == nil || err.retryAfter == 0 {
		t.Fatalf("instance 2, server failing: %v", err)
	}
	if _, err := vs[3].verify(token(t, "RS256", "x2", valid(), rs256With(k2.rsa)), f.now); err == nil || err.retryAfter == 0 {
		t.Fatalf("instance 3, after instance 2's failure: %v", err)
	}
	if _, err := vs[3].verify(tok, f.now); err != nil {
		t.Fatalf("known kid on stale keys: %v", err)
	}
	if f.fetches != 4 || !strings.Contains(f.logs[len(f.logs)-1], "failed: status 500; serving the 1 keys") {
		t.Fatalf("%d fetches; log %v", f.fetches, f.logs)
	}
}

// TestJWKSFailures: the first fetch failing, each kind of failure, a KV
// store that cannot keep anything.
func TestJWKSFailures(t *testing.T) {
	k := newTestKeys(t)
	tok := k.tokens(t, "", valid())["ES256"]
	for _, tc := range []struct {
		name  string
		serve func() (int, []byte, error)
		log   string
	}{
		{"not allowed", func() (int, []byte, error) { return -3, nil, wasmgate.ErrNotAllowed },
			`failed: the route does not allow this destination: add it to the plugin entry's outbound (upstreams: [NAME] for upstream://NAME/..., hosts: ["host:port"] for http://host:port/...); no keys to serve: tokens that need them are answered 503`},
		{"timeout", func() (int, []byte, error) { return -1, nil, wasmgate.ErrTimeout }, "failed: wasmgate: outbound request timed out; no keys"},
		{"404", func() (int, []byte, error) { return 404, nil, nil }, "failed: status 404; no keys"},
		{"not JSON", func() (int, []byte, error) { return 200, []byte("<html>"), nil }, "failed: not a JSON Web Key Set: invalid character '<' looking for beginning of value; no keys"},
		{"no keys member", func() (int, []byte, error) { return 200, []byte(`{"kids":[]}`), nil }, `failed: not a JSON Web Key Set: no "keys" list; no keys`},
		{"too large", func() (int, []byte, error) { return 200, make([]byte, maxJWKSBytes+1), nil }, "failed: a body of 1048577 bytes, over 1048576; no keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeJWKSHost(nil)
			f.serve = tc.serve
			v := jwksVerifier(t, f, jwksCfg+`}`)
			_, err := v.verify(tok, f.now)
			if err == nil || err.retryAfter != 30*time.Second {
				t.Fatalf("err %+v, want 503 after 30s", err)
			}
			if len(f.logs) != 1 || !strings.Contains(f.logs[0], tc.log) {
				t.Fatalf("logs %q\nwant %s", f.logs, tc.log)
			}
			// A token without kid cannot be judged either.
			if _, err := v.verify(token(t, "ES256", "", valid(), es256(k.ec)), f.now.Add(time.Second)); err == nil || err.retryAfter != 29*time.Second {
				t.Fatalf("no kid: %+v", err)
			}
			if f.fetches != 1 {
				t.Fatalf("%d fetches", f.fetches)
			}
		})
	}

	// Keys the plugin cannot use are skipped and logged; the others serve.
	f := newFakeJWKSHost(jwksBody(rsaJWK("enc", &k.rsa.PublicKey, "use", "enc"), map[string]any{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
		ecJWK("", &k.ec.PublicKey)))
	v := jwksVerifier(t, f, jwksCfg+`}`)
	if _, err := v.verify(token(t, "ES256", "", valid(), es256(k.ec)), f.now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.logs[0], `jwks: fetched 1 keys from upstream://idp/jwks.json; ignored keys[0] (kid "enc"): use "enc", not sig; keys[1] (kid "hmac"): symmetric keys are not taken from a JWKS`) {
		t.Fatalf("log %q", f.logs)
	}
	// A kid the set names, though with a key the plugin ignores, is not
	// unknown: no refresh for it.
	f.now = f.now.Add(time.Minute)
	if _, err := v.verify(token(t, "RS256", "enc", valid(), rs256With(k.rsa)), f.now); err != errUnknownKey || f.fetches != 1 {
		t.Fatalf("ignored kid: %v, %d fetches", err, f.fetches)
	}

	// A KV store that fails: each instance keeps its own set and its own
	// rate limit.
	f = newFakeJWKSHost(k.set(""))
	f.kvErr = wasmgate.ErrTooLarge
	v = jwksVerifier(t, f, jwksCfg+`}`)
	for i := range 10 {
		if _, err := v.verify(token(t, "ES256", fmt.Sprint("u", i), valid(), es256(k.ec)), f.now); err != errUnknownKey {
			t.Fatal(err)
		}
	}
	if _, err := v.verify(tok, f.now); err != nil || f.fetches != 1 {
		t.Fatalf("KV failing: %v, %d fetches", err, f.fetches)
	}
	if !strings.Contains(strings.Join(f.logs, "\n"), "jwks: cannot share the key set through the KV store (wasmgate: too large): each instance keeps its own") {
		t.Fatalf("logs %q", f.logs)
	}

	// A set in the store written by another layout is ignored.
	f = newFakeJWKSHost(k.set(""))
	v = jwksVerifier(t, f, jwksCfg+`}`)
	f.kv[v.jwks.docKey] = fakeEntry{val: []byte("jwks9 1 2 3\n{}")}
	if _, err := v.verify(tok, f.now); err != nil || f.fetches != 1 {
		t.Fatalf("foreign doc: %v, %d fetches", err, f.fetches)
	}
}

// TestJWKSWithKeys: configured keys and a JWKS together. A kid naming a
// configured key never consults the JWKS; others do.
func TestJWKSWithKeys(t *testing.T) {
	k := newTestKeys(t)
	f := newFakeJWKSHost(k.set("j-"))
	f.serve = func() (int, []byte, error) { return 0, nil, errors.New("down") }
	pub, _ := json.Marshal(readFile(t, "rsa2048.pub.pem"))
	v := jwksVerifier(t, f, `{"keys":[{"kid":"hs","secret":"`+secret+`"},{"kid":"rs","public_key":`+string(pub)+`}],`+jwksCfg[1:]+`}`)
	if _, err := v.verify(sign(t, map[string]any{"alg": "HS256", "kid": "hs"}, valid(), nil, secret), f.now); err != nil {
		t.Fatal(err)
	}
	if _, err := v.verify(sign(t, map[string]any{"alg": "RS256", "kid": "rs"}, valid(), rsaKey(t), ""), f.now); err != nil {
		t.Fatal(err)
	}
	if f.fetches != 0 {
		t.Fatalf("%d fetches for configured kids", f.fetches)
	}
	// A token without kid that no configured key verifies may be the
	// JWKS's: with the JWKS down, 503.
	if _, err := v.verify(sign(t, map[string]any{"alg": "RS256"}, valid(), mustRSA(t), ""), f.now); err == nil || err.retryAfter == 0 {
		t.Fatalf("no kid, JWKS down: %v", err)
	}
	if f.fetches != 1 {
		t.Fatalf("%d fetches", f.fetches)
	}
	f.serveBody(k.set("j-"))
	f.now = f.now.Add(31 * time.Second)
	if _, err := v.verify(k.tokens(t, "j-", valid())["PS256"], f.now); err != nil {
		t.Fatal(err)
	}
}

func TestJWKSConfig(t *testing.T) {
	for _, tc := range []struct{ name, cfg, err string }{
		{"jwks alone", `{"jwks":{"url":"upstream://idp/.well-known/jwks.json"}}`, ""},
		{"http", `{"jwks":{"url":"http://127.0.0.1:8080/jwks"}}`, ""},
		{"all settings", `{"jwks":{"url":"http://idp:80/jwks","cache_ttl":"10m","min_refresh_interval":60,"max_stale":0,"timeout":"500ms"}}`, ""},
		{"no url", `{"jwks":{}}`, `"jwks": missing "url": "upstream://NAME/path" or "http://host:port/path"`},
		{"https", `{"jwks":{"url":"https://idp/jwks"}}`, `"jwks": "url" "https://idp/jwks": want "upstream://NAME/path" or "http://host:port/path" (the gateway's outbound destinations)`},
		{"no upstream name", `{"jwks":{"url":"upstream:///jwks"}}`, `"jwks": "url" "upstream:///jwks": no upstream name or host`},
		{"space", `{"jwks":{"url":"http://idp/a b"}}`, `"jwks": "url" "http://idp/a b": no spaces or control characters`},
		{"cache_ttl 0", `{"jwks":{"url":"http://idp/jwks","cache_ttl":0}}`, `"jwks": "cache_ttl" 0s: want at least 1s`},
		{"min_refresh_interval 0", `{"jwks":{"url":"http://idp/jwks","min_refresh_interval":0}}`, `"jwks": "min_refresh_interval" 0s: want at least 1s`},
		{"interval over ttl", `{"jwks":{"url":"http://idp/jwks","cache_ttl":"1m","min_refresh_interval":"2m"}}`, `"jwks": "min_refresh_interval" 2m0s is over "cache_ttl" 1m0s`},
		{"unknown field", `{"jwks":{"url":"http://idp/jwks","ttl":"1m"}}`, `unknown field "ttl"`},
		{"neither keys nor jwks", `{"issuer":"x"}`, `missing "keys"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := newVerifier([]byte(tc.cfg))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := v.jwks.host.(sdkHost); !ok {
					t.Fatal("the JWKS does not go through the gateway")
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
				t.Fatalf("error %v\nwant %s", err, tc.err)
			}
		})
	}
	v := mustVerifier(t, `{"jwks":{"url":"upstream://idp/jwks"}}`)
	if j := v.jwks; j.ttl != 300_000 || j.minRefresh != 30_000 || j.maxStale != 86_400_000 || j.timeout != 0 || v.leeway != time.Minute {
		t.Fatalf("defaults: %+v, leeway %v", j, v.leeway)
	}
	// Routes of one URL share the set (and its rate limit); other URLs do not.
	if mustVerifier(t, `{"jwks":{"url":"upstream://idp/jwks","cache_ttl":"1h"}}`).jwks.docKey != v.jwks.docKey ||
		mustVerifier(t, `{"jwks":{"url":"upstream://idp/jwks2"}}`).jwks.docKey == v.jwks.docKey {
		t.Fatal("KV keys not by URL")
	}
}

// TestAuthenticateUnavailable: the 503 reaches the answer, without a
// challenge (the token was not found wanting).
func TestAuthenticateUnavailable(t *testing.T) {
	f := newFakeJWKSHost(nil)
	f.serve = func() (int, []byte, error) { return 502, nil, nil }
	v := jwksVerifier(t, f, jwksCfg+`,"forward_claims":{"sub":"X-User"}}`)
	r := newFakeRequest("Authorization", "Bearer "+token(t, "EdDSA", "k", valid(), eddsa(mustEd25519(t))), "X-User", "spoofed")
	_, rej, err := v.authenticate(r, f.now)
	if err != nil || rej == nil || rej.status != 503 || rej.retryAfter != "30" || rej.wwwAuthenticate != "" {
		t.Fatalf("%+v %v", rej, err)
	}
	if _, ok := r.headers["x-user"]; ok {
		t.Fatal("spoofed header kept")
	}
}

func FuzzParseJWKS(f *testing.F) {
	k := newTestKeys(f)
	f.Add(k.set(""))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""},{"kty":"RSA","n":"AA","e":"AQAB"}]}`))
	j := &jwks{hostVerify: true}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, _, _, err := j.parse(b)
		if err != nil {
			return
		}
		for _, k := range keys {
			if len(k.der) == 0 || k.kty == ktyOct {
				t.Fatalf("accepted %+v", k)
			}
		}
	})
}

// TestJWKSColdStart: an instance with no usable set while another holds
// the rate limit (its fetch in flight) fetches on its own rather than
// answer 503, but only once per interval.
func TestJWKSColdStart(t *testing.T) {
	k := newTestKeys(t)
	tok := k.tokens(t, "", valid())["EdDSA"]
	f := newFakeJWKSHost(k.set(""))
	v := jwksVerifier(t, f, jwksCfg+`}`)
	f.KVIncr(v.jwks.lockKey, 1, 30*time.Second) // another instance is fetching
	if _, err := v.verify(tok, f.now); err != nil || f.fetches != 1 {
		t.Fatalf("cold instance: %v, %d fetches", err, f.fetches)
	}
	// With a set, the shared limit holds: unknown kids fetch nothing.
	if _, err := v.verify(token(t, "EdDSA", "other", valid(), eddsa(k.ed)), f.now.Add(time.Second)); err != errUnknownKey || f.fetches != 1 {
		t.Fatalf("unknown kid: %v, %d fetches", err, f.fetches)
	}

	f = newFakeJWKSHost(nil)
	f.serve = func() (int, []byte, error) { return 0, nil, wasmgate.ErrNetwork }
	v = jwksVerifier(t, f, jwksCfg+`}`)
	f.KVIncr(v.jwks.lockKey, 1, time.Hour)
	for i := range 20 {
		f.now = now.Add(time.Duration(i) * 2 * time.Second) // 38s in all
		if _, err := v.verify(token(t, "EdDSA", fmt.Sprint("k", i), valid(), eddsa(k.ed)), f.now); err == nil || err.retryAfter == 0 {
			t.Fatalf("server down: %v", err)
		}
	}
	if f.fetches != 2 {
		t.Fatalf("no set, server down, shared limit held: %d fetches in 38s, want 2", f.fetches)
	}
}
