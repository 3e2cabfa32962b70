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
	Keys          []keyConfig       `json:"keys"`
	Issuer        string            `json:"issuer"`
	Issuers       []string          `json:"issuers"`
	Audience      string            `json:"audience"`
	Audiences     []string          `json:"audiences"`
	Leeway        wasmgate.Duration `json:"leeway"`
	RequireExp    *bool             `json:"require_exp"`
	Header        string            `json:"header"`
	Query         string            `json:"query"`
	Realm         string            `json:"realm"`
	ForwardClaims map[string]string `json:"forward_claims"`
	StripToken    bool              `json:"strip_token"`
	Verify        string            `json:"verify"`
	ConsumerClaim string            `json:"consumer_claim"`
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
	maxLeeway     = 10 * time.Minute
	verifyHost    = "host"  // RS256 signatures checked by the gateway (crypto_verify)
	verifyGuest   = "guest" // RS256 signatures checked in the plugin's own wasm code
)

// key is a compiled verification key.
type key struct {
	kid    string
	alg    string // "HS256" or "RS256"
	secret []byte
	rsa    *rsa.PublicKey // RS256, for the guest path
	der    []byte         // RS256, the key's DER as configured, for the host path
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
	// hostVerify sends RS256 signatures to the host (crypto_verify) rather
	// than verifying them in the guest, where big-number arithmetic runs
	// without assembly: an order of magnitude slower.
	hostVerify bool
}

// newVerifier decodes and checks the config.
func newVerifier(b []byte) (*verifier, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return nil, err
	}
	if len(c.Keys) == 0 {
		return nil, errors.New(`missing "keys": list HMAC secrets ("secret") or RSA public keys ("public_key") to verify tokens with`)
	}
	v := &verifier{
		leeway:     c.Leeway.D(),
		requireExp: c.RequireExp == nil || *c.RequireExp,
		header:     c.Header,
		query:      c.Query,
		realm:      c.Realm,
		strip:      c.StripToken,
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

// compileKey checks one key. With hostVerify an RSA key must also be one
// the host verifies with: its DER parser is stricter than
// parseRSAPublicKey (it wants the NULL algorithm parameters of RFC 3279,
// for one), and a key it refused would fail every request, so ask it now.
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
	switch {
	case kc.Secret != "":
		k.alg, k.secret = "HS256", []byte(kc.Secret)
	case kc.SecretBase64 != "":
		s, err := decodeBase64Any(kc.SecretBase64)
		if err != nil {
			return k, fmt.Errorf(`"secret_base64": %w`, err)
		}
		k.alg, k.secret = "HS256", s
	default:
		pub, der, err := parseRSAPublicKey(kc.PublicKey)
		if err != nil {
			return k, fmt.Errorf(`"public_key": %w`, err)
		}
		if hostVerify {
			if err := wasmgate.CheckPublicKey(wasmgate.RS256, der); err != nil {
				return k, fmt.Errorf(`"public_key": the gateway cannot verify with this key: %w`, err)
			}
		}
		k.alg, k.rsa, k.der = "RS256", pub, der
	}
	if kc.Alg != "" && kc.Alg != k.alg {
		return k, fmt.Errorf(`"alg" is %q but the key is for %s (%s)`, kc.Alg, k.alg, map[string]string{"HS256": "a secret", "RS256": "an RSA public key"}[k.alg])
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

// parseRSAPublicKey reads a PEM "PUBLIC KEY" (PKIX SubjectPublicKeyInfo)
// or "RSA PUBLIC KEY" (PKCS#1) and returns the key and the PEM block's DER
// (either form is what crypto_verify takes). It decodes the DER with encoding/asn1
// rather than crypto/x509, which would add every certificate and curve
// algorithm to the module (about 2 MB of wasm, paid at every instantiation).
func parseRSAPublicKey(s string) (*rsa.PublicKey, []byte, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(s)))
	if block == nil {
		return nil, nil, errors.New("no PEM block found (want -----BEGIN PUBLIC KEY-----)")
	}
	der := block.Bytes
	switch block.Type {
	case "PUBLIC KEY":
		var info struct {
			Algorithm struct {
				OID        asn1.ObjectIdentifier
				Parameters asn1.RawValue `asn1:"optional"`
			}
			PublicKey asn1.BitString
		}
		if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
			return nil, nil, errors.New("malformed PUBLIC KEY")
		}
		if !info.Algorithm.OID.Equal(oidRSA) {
			return nil, nil, fmt.Errorf("a key of algorithm %v, not RSA", info.Algorithm.OID)
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
	if pk.N.Sign() <= 0 || pk.E < 3 || pk.E%2 == 0 || pk.E > 1<<31-1 {
		return nil, nil, errors.New("invalid RSA public key")
	}
	if bits := pk.N.BitLen(); bits < abi.MinRSABits {
		return nil, nil, fmt.Errorf("RSA key of %d bits: want at least %d", bits, abi.MinRSABits)
	} else if bits > abi.MaxRSABits {
		return nil, nil, fmt.Errorf("RSA key of %d bits: want at most %d", bits, abi.MaxRSABits)
	}
	return &rsa.PublicKey{N: pk.N, E: pk.E}, block.Bytes, nil
}

// oidRSA is rsaEncryption (RFC 8017 appendix C).
var oidRSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}

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
