package main

import (
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
)

// maxTokenLen bounds the work a client can ask for.
const maxTokenLen = 16 << 10

// authError is why a token was refused; desc goes into the
// WWW-Authenticate error_description and must be a plain phrase.
type authError struct {
	desc string
	err  error // set when verification itself failed (a host error), not the token
	// retryAfter is set when the keys to judge the token are unavailable
	// (the JWKS cannot be fetched): the answer is 503, not 401, with
	// Retry-After.
	retryAfter time.Duration
}

func (e *authError) Error() string { return e.desc }

var (
	errMalformed   = &authError{desc: "malformed token"}
	errTooLong     = &authError{desc: "token too long"}
	errAlg         = &authError{desc: "unsupported algorithm"}
	errCrit        = &authError{desc: "unsupported critical header"}
	errUnknownKey  = &authError{desc: "unknown key"}
	errSignature   = &authError{desc: "invalid signature"}
	errExpired     = &authError{desc: "token expired"}
	errNotYet      = &authError{desc: "token not yet valid"}
	errIssuedLater = &authError{desc: "token issued in the future"}
	errNoExp       = &authError{desc: "token has no expiry"}
	errIssuer      = &authError{desc: "invalid issuer"}
	errAudience    = &authError{desc: "invalid audience"}
	errClaimHeader = &authError{desc: "claim cannot be forwarded as a header"}
)

// claims is the token's claims set, a JSON object.
type claims = *jsonpath.Value

// verify checks a compact JWS token's signature and registered claims at
// time now and returns its claims. Header and claims are parsed with
// package jsonpath rather than encoding/json: several times faster in wasm,
// where reflection is slow, and this runs on every request.
func (v *verifier) verify(token string, now time.Time) (claims, *authError) {
	if len(token) > maxTokenLen {
		return nil, errTooLong
	}
	h64, rest, ok1 := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") || h64 == "" || p64 == "" || s64 == "" {
		return nil, errMalformed
	}
	hdr, err := decodeSegment(h64)
	if err != nil {
		return nil, errMalformed
	}
	alg, _ := hdr.Get("alg").Str()
	if _, ok := algKty[alg]; !ok {
		return nil, errAlg // "none" and every algorithm without a key type here
	}
	if hdr.Get("crit") != nil {
		return nil, errCrit // RFC 7515 section 4.1.11: must reject unknown extensions
	}
	kid, _ := hdr.Get("kid").Str()
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil {
		return nil, errMalformed
	}
	signed := token[:len(h64)+1+len(p64)]
	if e := v.checkSignature(alg, kid, signed, sig, now); e != nil {
		return nil, e
	}
	c, err := decodeSegment(p64)
	if err != nil {
		return nil, errMalformed
	}
	if e := v.checkClaims(c, now); e != nil {
		return nil, e
	}
	return c, nil
}

// checkSignature tries the keys that may have signed the token: those of
// its kid, or with no kid every key of its algorithm. A key's algorithm must
// match the token's (no HS256 forgeries with an RSA public key as secret).
// Configured keys come first; the JWKS (public-key algorithms only) is
// consulted for a token without a kid or whose kid names no configured
// key, and may be refreshed for an unknown kid (jwks.candidates).
// RSA goes to the host (crypto_verify) unless the config says verify:
// guest; ES256 and EdDSA always do; HS256 is a hash, as fast in the guest
// as a host call would be.
func (v *verifier) checkSignature(alg, kid, signed string, sig []byte, now time.Time) *authError {
	var (
		buf     [8]*key // no allocation for the usual few keys
		cands   = buf[:0]
		byKid   bool // the kid names a configured key
		jwksErr *authError
	)
	for i := range v.keys {
		k := &v.keys[i]
		if k.accepts(alg) && (kid == "" || k.kid == kid) {
			cands = append(cands, k)
			byKid = byKid || kid != ""
		}
	}
	if v.jwks != nil && alg != algHS256 && !byKid {
		cands, jwksErr = v.jwks.candidates(cands, alg, kid, now)
	}
	var (
		digest [sha256.Size]byte
		msg    []byte // signed as bytes for the host, converted once
		hashed bool
	)
	for _, k := range cands {
		switch {
		case k.kty == ktyOct:
			m := hmac.New(sha256.New, k.secret)
			m.Write([]byte(signed))
			if hmac.Equal(m.Sum(nil), sig) {
				return nil
			}
		case k.kty == ktyRSA && !v.hostVerify:
			if !hashed {
				digest, hashed = sha256.Sum256([]byte(signed)), true
			}
			var err error
			if alg == algPS256 {
				err = rsa.VerifyPSS(k.rsa, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			} else {
				err = rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest[:], sig)
			}
			if err == nil {
				return nil
			}
		default:
			if msg == nil {
				msg = []byte(signed)
			}
			ok, err := wasmgate.VerifySignature(hostAlg[alg], k.der, msg, sig)
			if err != nil {
				return &authError{desc: "signature verification failed", err: err}
			}
			if ok {
				return nil
			}
		}
	}
	// No key verified the token. When the JWKS could not be consulted the
	// token may well be good: say so (503) rather than refuse it.
	if jwksErr != nil {
		return jwksErr
	}
	if len(cands) == 0 {
		return errUnknownKey
	}
	return errSignature
}

// checkClaims checks exp, nbf, iat, iss and aud. The leeway allows for
// clocks that disagree: a token expired less than leeway ago still passes,
// and so does one valid from, or issued at, less than leeway from now.
func (v *verifier) checkClaims(c claims, now time.Time) *authError {
	t := float64(now.UnixNano()) / 1e9
	leeway := v.leeway.Seconds()
	if exp := c.Get("exp"); exp != nil {
		e, ok := numericDate(exp)
		if !ok {
			return errMalformed
		}
		if t >= e+leeway {
			return errExpired
		}
	} else if v.requireExp {
		return errNoExp
	}
	if nbf := c.Get("nbf"); nbf != nil {
		n, ok := numericDate(nbf)
		if !ok {
			return errMalformed
		}
		if t+leeway < n {
			return errNotYet
		}
	}
	if iat := c.Get("iat"); iat != nil {
		i, ok := numericDate(iat)
		if !ok {
			return errMalformed
		}
		if t+leeway < i {
			return errIssuedLater
		}
	}
	if len(v.issuers) > 0 {
		iss, _ := c.Get("iss").Str()
		if !slices.Contains(v.issuers, iss) {
			return errIssuer
		}
	}
	if len(v.audiences) > 0 && !v.audienceOK(c.Get("aud")) {
		return errAudience
	}
	return nil
}

// audienceOK: aud is a string or a list of strings (RFC 7519 section
// 4.1.3); one of them must be configured.
func (v *verifier) audienceOK(aud *jsonpath.Value) bool {
	if s, ok := aud.Str(); ok {
		return slices.Contains(v.audiences, s)
	}
	if aud == nil || aud.Kind != jsonpath.Array {
		return false
	}
	for _, x := range aud.Items {
		if s, ok := x.Str(); ok && slices.Contains(v.audiences, s) {
			return true
		}
	}
	return false
}

// numericDate reads a NumericDate (seconds since the epoch, possibly
// fractional).
func numericDate(v *jsonpath.Value) (float64, bool) {
	if v.Kind != jsonpath.Number {
		return 0, false
	}
	f, err := strconv.ParseFloat(v.Text(), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// decodeSegment decodes one base64url segment holding a JSON object whose
// member names are unique (RFC 7519 section 4: a parser must reject
// duplicates or keep the last; rejecting leaves no doubt which exp counts).
func decodeSegment(seg string) (*jsonpath.Value, error) {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return nil, err
	}
	v, err := jsonpath.Parse(b)
	if err != nil {
		return nil, err
	}
	if v.Kind != jsonpath.Object {
		return nil, errMalformed
	}
	for i := range v.Members {
		for j := range i {
			if v.Members[j].Key == v.Members[i].Key {
				return nil, errMalformed
			}
		}
	}
	return v, nil
}
