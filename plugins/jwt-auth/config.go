package main

import (
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/sdk/abi"
	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
)

// config is the plugin config as written by the operator.
type config struct {
	Keys          []keyConfig        `json:"keys"`
	JWKS          *jwksConfig        `json:"jwks"`
	Issuer        string             `json:"issuer"`
	Issuers       []string           `json:"issuers"`
	Audience      string             `json:"audience"`
	Audiences     []string           `json:"audiences"`
	Leeway        *wasmgate.Duration `json:"leeway"`
	RequireExp    *bool              `json:"require_exp"`
	Header        string             `json:"header"`
	Query         string             `json:"query"`
	Realm         string             `json:"realm"`
	ForwardClaims map[string]string  `json:"forward_claims"`
	StripToken    bool               `json:"strip_token"`
	Verify        string             `json:"verify"`
	ConsumerClaim string             `json:"consumer_claim"`
}

// keyConfig is one verification key.
type keyConfig struct {
	Kid          string `json:"kid"`
	Alg          string `json:"alg"`
	Secret       string `json:"secret"`
	SecretBase64 string `json:"secret_base64"`
	PublicKey    string `json:"public_key"`
}

// Limits and defaults.
const (
	minHMACKey    = 32 // bytes: RFC 7518 §3.2, a key at least as long as the hash
	defaultHeader = "Authorization"
	defaultRealm  = "wasmgate"
	defaultLeeway = 60 * time.Second
	maxLeeway     = 10 * time.Minute
	verifyHost    = "host"  // RSA signatures checked by the gateway (crypto_verify)
	verifyGuest   = "guest" // RSA signatures checked in the plugin's own wasm code
)

// The algorithms (JWS names, RFC 7518 and RFC 8037) and key types.
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algPS256 = "PS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"

	ktyOct = "oct" // an HMAC secret
	ktyRSA = "RSA"
	ktyEC  = "EC"  // P-256 only
	ktyOKP = "OKP" // Ed25519 only
)

// algKty is the key type each supported algorithm takes; an algorithm
// missing here is not supported.
var algKty = map[string]string{
	algHS256: ktyOct, algRS256: ktyRSA, algPS256: ktyRSA, algES256: ktyEC, algEdDSA: ktyOKP,
}

// hostAlg is crypto_verify's number for each public-key algorithm.
var hostAlg = map[string]wasmgate.SignatureAlg{
	algRS256: wasmgate.RS256, algPS256: wasmgate.PS256, algES256: wasmgate.ES256, algEdDSA: wasmgate.EdDSA,
}

// key is a compiled verification key.
type key struct {
	kid string
	// alg is the one algorithm the key verifies; "" only for a JWK of
	// type RSA without "alg", which verifies RS256 and PS256.
	alg    string
	kty    string // ktyOct, ktyRSA, ktyEC or ktyOKP
	secret []byte
	rsa    *rsa.PublicKey // RSA, for the guest path
	der    []byte         // public keys: the DER crypto_verify takes (PKCS#1 or SubjectPublicKeyInfo)
}

// accepts reports whether the key may verify a token signed with alg.
func (k *key) accepts(alg string) bool {
	if k.alg != "" {
		return k.alg == alg
	}
	return k.kty == ktyRSA && (alg == algRS256 || alg == algPS256)
}

// forward copies a claim into a request header.
type forward struct {
	claim  jsonpath.Path // e.g. "realm_access.roles"
	header string
}

// verifier is the compiled config: everything a request needs.
type verifier struct {
	keys       []key
	issuers    []string
	audiences  []string
	leeway     time.Duration
	requireExp bool
	header     string // where the token is; "" when only in the query
	bearer     bool   // header carries "Bearer <token>" (Authorization)
	query      string
	realm      string
	forwards   []forward
	consumer   jsonpath.Path // the claim naming the consumer (rate limits, access log)
	strip      bool
	// hostVerify sends RSA signatures (RS256, PS256) to the host
	// (crypto_verify) rather than verifying them in the guest, where
	// big-number arithmetic runs without assembly: an order of magnitude
	// slower. ES256 and EdDSA always go to the host.
	hostVerify bool
	// jwks is the key set fetched from a URL; nil without "jwks".
	jwks *jwks
}

// newVerifier decodes and checks the config.
func newVerifier(b []byte) (*verifier, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return nil, err
	}
	if len(c.Keys) == 0 && c.JWKS == nil {
		return nil, errors.New(`missing "keys": list HMAC secrets ("secret") or RSA public keys ("public_key") to verify tokens with`)
	}
	v := &verifier{
		leeway:     defaultLeeway,
		requireExp: c.RequireExp == nil || *c.RequireExp,
		header:     c.Header,
		query:      c.Query,
		realm:      c.Realm,
		strip:      c.StripToken,
	}
	if c.Leeway != nil {
		v.leeway = c.Leeway.D()
	}
	switch c.Verify {
	case "", verifyHost:
		v.hostVerify = true
	case verifyGuest:
	default:
		return nil, fmt.Errorf(`"verify": %q: want %q (the gateway checks RS256 signatures, the default) or %q (the plugin does)`, c.Verify, verifyHost, verifyGuest)
	}
	if v.leeway > maxLeeway {
		return nil, fmt.Errorf(`"leeway" %v is over %v: clocks are not that far apart`, v.leeway, maxLeeway)
	}
	if v.header == "" && v.query == "" {
		v.header = defaultHeader
	}
	if v.header != "" && !abi.IsToken(v.header) {
		return nil, fmt.Errorf(`"header": %q is not a valid header name`, v.header)
	}
	v.bearer = strings.EqualFold(v.header, defaultHeader)
	if v.realm == "" {
		v.realm = defaultRealm
	}
	if !validQuotedText(v.realm) {
		return nil, fmt.Errorf(`"realm": %q may not contain quotes, backslashes or control characters`, v.realm)
	}
	for i, kc := range c.Keys {
		k, err := compileKey(kc, v.hostVerify)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		for _, other := range v.keys {
			if k.kid != "" && other.kid == k.kid {
				return nil, fmt.Errorf("keys[%d]: duplicate kid %q", i, k.kid)
			}
		}
		v.keys = append(v.keys, k)
	}
	if c.JWKS != nil {
		j, err := newJWKS(*c.JWKS, v.hostVerify)
		if err != nil {
			return nil, fmt.Errorf(`"jwks": %w`, err)
		}
		v.jwks = j
	}
	v.issuers = appendNonEmpty(c.Issuers, c.Issuer)
	v.audiences = appendNonEmpty(c.Audiences, c.Audience)
	// Sorted for a deterministic header order; removal of every configured
	// header first means a client cannot smuggle its own X-User-Id.
	names := make([]string, 0, len(c.ForwardClaims))
	for claim := range c.ForwardClaims {
		names = append(names, claim)
	}
	slices.Sort(names)
	for _, claim := range names {
		h := c.ForwardClaims[claim]
		path, err := jsonpath.ParsePath(claim)
		if err != nil {
			return nil, fmt.Errorf(`"forward_claims": bad claim path %q: %w`, claim, err)
		}
		if !abi.IsToken(h) {
			return nil, fmt.Errorf(`"forward_claims": %q: %q is not a valid header name`, claim, h)
		}
		v.forwards = append(v.forwards, forward{claim: path, header: h})
	}
	if c.ConsumerClaim == "" {
		c.ConsumerClaim = "sub"
	}
	consumer, err := jsonpath.ParsePath(c.ConsumerClaim)
	if err != nil {
		return nil, fmt.Errorf(`"consumer_claim": bad claim path %q: %w`, c.ConsumerClaim, err)
	}
	v.consumer = consumer
	return v, nil
}

func appendNonEmpty(list []string, s string) []string {
	out := slices.Clone(list)
	if s != "" {
		out = append(out, s)
	}
	return out
}

// compileKey checks one key. A public key must also be one the host
// verifies with (ES256 and EdDSA always, RSA with hostVerify): its DER
// parser is stricter than parseRSAPublicKey (it wants the NULL algorithm
// parameters of RFC 3279, for one), it checks that an EC point is on the
// curve, and a key it refused would fail every request, so ask it now.
func compileKey(kc keyConfig, hostVerify bool) (key, error) {
	k := key{kid: kc.Kid}
	sources := 0
	for _, s := range []string{kc.Secret, kc.SecretBase64, kc.PublicKey} {
		if s != "" {
			sources++
		}
	}
	if sources != 1 {
		return k, errors.New(`want exactly one of "secret", "secret_base64" or "public_key"`)
	}
	if _, ok := algKty[kc.Alg]; kc.Alg != "" && !ok {
		return k, fmt.Errorf(`"alg": %q is not supported: want HS256, RS256, PS256, ES256 or EdDSA`, kc.Alg)
	}
	switch {
	case kc.Secret != "":
		k.alg, k.kty, k.secret = algHS256, ktyOct, []byte(kc.Secret)
	case kc.SecretBase64 != "":
		s, err := decodeBase64Any(kc.SecretBase64)
		if err != nil {
			return k, fmt.Errorf(`"secret_base64": %w`, err)
		}
		k.alg, k.kty, k.secret = algHS256, ktyOct, s
	default:
		pk, err := parsePublicKey(kc.PublicKey)
		if err != nil {
			return k, fmt.Errorf(`"public_key": %w`, err)
		}
		k.kty, k.rsa, k.der = pk.kty, pk.rsa, pk.der
		k.alg = map[string]string{ktyRSA: algRS256, ktyEC: algES256, ktyOKP: algEdDSA}[k.kty]
		if k.kty == ktyRSA && kc.Alg == algPS256 {
			k.alg = algPS256 // an RSA key verifies RS256 unless told PS256
		}
		if hostVerify || k.kty != ktyRSA {
			if err := wasmgate.CheckPublicKey(hostAlg[k.alg], k.der); err != nil {
				return k, fmt.Errorf(`"public_key": the gateway cannot verify with this key: %w`, err)
			}
		}
	}
	if kc.Alg != "" && kc.Alg != k.alg {
		what := map[string]string{ktyOct: "HS256 (a secret)", ktyRSA: "RS256 or PS256 (an RSA public key)",
			ktyEC: "ES256 (an EC P-256 public key)", ktyOKP: "EdDSA (an Ed25519 public key)"}[k.kty]
		return k, fmt.Errorf(`"alg" is %q but the key is for %s`, kc.Alg, what)
	}
	if k.secret != nil && len(k.secret) < minHMACKey {
		return k, fmt.Errorf("HS256 secret of %d bytes: want at least %d (RFC 7518 section 3.2)", len(k.secret), minHMACKey)
	}
	return k, nil
}

// decodeBase64Any accepts standard or URL-safe base64, padded or not.
func decodeBase64Any(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// publicKey is a parsed public key: its type, the DER crypto_verify
// takes, and for RSA the key itself (the guest path verifies with it).
type publicKey struct {
	kty string
	der []byte
	rsa *rsa.PublicKey
}

// parsePublicKey reads a PEM "PUBLIC KEY" (PKIX SubjectPublicKeyInfo) of
// RSA, EC P-256 or Ed25519, or an "RSA PUBLIC KEY" (PKCS#1). The DER is
// the PEM block's (either form is what crypto_verify takes). It decodes
// with encoding/asn1 rather than crypto/x509, which would add every
// certificate and curve algorithm to the module (about 2 MB of wasm, paid
// at every instantiation); the host's crypto_verify checks EC points and
// Ed25519 keys when the key is compiled.
func parsePublicKey(s string) (publicKey, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return publicKey{}, errors.New("no PEM block found (want -----BEGIN PUBLIC KEY-----)")
	}
	if block.Type == "PUBLIC KEY" {
		info, err := parseSPKI(block.Bytes)
		if err != nil {
			return publicKey{}, err
		}
		switch oid := info.Algorithm.OID; {
		case oid.Equal(oidEC):
			var curve asn1.ObjectIdentifier
			if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &curve); err != nil || len(rest) > 0 {
				return publicKey{}, errors.New("malformed EC PUBLIC KEY: no named curve")
			}
			if !curve.Equal(oidP256) {
				return publicKey{}, fmt.Errorf("an EC key on curve %v: only P-256 (ES256) is supported", curve)
			}
			if p := info.PublicKey.RightAlign(); len(p) != 65 || p[0] != 4 {
				return publicKey{}, errors.New("malformed EC P-256 key: want an uncompressed point of 65 bytes")
			}
			return publicKey{kty: ktyEC, der: block.Bytes}, nil
		case oid.Equal(oidEd25519):
			if len(info.Algorithm.Parameters.FullBytes) != 0 || len(info.PublicKey.RightAlign()) != 32 {
				return publicKey{}, errors.New("malformed Ed25519 key: want 32 bytes and no parameters")
			}
			return publicKey{kty: ktyOKP, der: block.Bytes}, nil
		}
	}
	pub, der, err := parseRSAPublicKey(s)
	if err != nil {
		return publicKey{}, err
	}
	return publicKey{kty: ktyRSA, der: der, rsa: pub}, nil
}

// spki is a SubjectPublicKeyInfo (RFC 5280 section 4.1).
type spki struct {
	Algorithm struct {
		OID        asn1.ObjectIdentifier
		Parameters asn1.RawValue `asn1:"optional"`
	}
	PublicKey asn1.BitString
}

func parseSPKI(der []byte) (spki, error) {
	var info spki
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return info, errors.New("malformed PUBLIC KEY")
	}
	return info, nil
}

// parseRSAPublicKey reads a PEM "PUBLIC KEY" (PKIX SubjectPublicKeyInfo)
// or "RSA PUBLIC KEY" (PKCS#1) of RSA and returns the key and the PEM
// block's DER.
func parseRSAPublicKey(s string) (*rsa.PublicKey, []byte, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, nil, errors.New("no PEM block found (want -----BEGIN PUBLIC KEY-----)")
	}
	der := block.Bytes
	switch block.Type {
	case "PUBLIC KEY":
		info, err := parseSPKI(der)
		if err != nil {
			return nil, nil, err
		}
		if !info.Algorithm.OID.Equal(oidRSA) {
			return nil, nil, fmt.Errorf("a key of algorithm %v: want RSA, EC P-256 or Ed25519", info.Algorithm.OID)
		}
		der = info.PublicKey.RightAlign()
	case "RSA PUBLIC KEY":
	default:
		return nil, nil, fmt.Errorf("PEM block %q: want PUBLIC KEY or RSA PUBLIC KEY (never a private key)", block.Type)
	}
	var pk struct {
		N *big.Int
		E int
	}
	if rest, err := asn1.Unmarshal(der, &pk); err != nil || len(rest) > 0 {
		return nil, nil, errors.New("malformed RSA public key")
	}
	k, err := checkRSA(pk.N, pk.E)
	if err != nil {
		return nil, nil, err
	}
	return k, block.Bytes, nil
}

// checkRSA applies crypto_verify's bounds to an RSA public key.
func checkRSA(n *big.Int, e int) (*rsa.PublicKey, error) {
	if n.Sign() <= 0 || e < 3 || e%2 == 0 || e > 1<<31-1 {
		return nil, errors.New("invalid RSA public key")
	}
	if bits := n.BitLen(); bits < abi.MinRSABits {
		return nil, fmt.Errorf("RSA key of %d bits: want at least %d", bits, abi.MinRSABits)
	} else if bits > abi.MaxRSABits {
		return nil, fmt.Errorf("RSA key of %d bits: want at most %d", bits, abi.MaxRSABits)
	}
	return &rsa.PublicKey{N: n, E: e}, nil
}

// Object identifiers of public-key algorithms and curves.
var (
	oidRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1} // rsaEncryption, RFC 8017 appendix C
	oidEC      = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}     // id-ecPublicKey, RFC 5480
	oidP256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}  // secp256r1, RFC 5480
	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}             // id-Ed25519, RFC 8410
)

// validQuotedText reports whether s can go inside a quoted-string without
// escaping.
func validQuotedText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
