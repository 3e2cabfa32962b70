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
	if alg != "HS256" && alg != "RS256" {
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
	if e := v.checkSignature(alg, kid, signed, sig); e != nil {
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
// RS256 goes to the host (crypto_verify) unless the config says verify:
// guest; HS256 is a hash, as fast in the guest as a host call would be.
func (v *verifier) checkSignature(alg, kid, signed string, sig []byte) *authError {
	var digest [sha256.Size]byte
	var msg []byte // signed as bytes for the host, converted once
	hashed := false
	tried := false
	for i := range v.keys {
		k := &v.keys[i]
		if k.alg != alg || kid != "" && k.kid != kid {
			continue
		}
		tried = true
		switch k.alg {
		case "HS256":
			m := hmac.New(sha256.New, k.secret)
			m.Write([]byte(signed))
			if hmac.Equal(m.Sum(nil), sig) {
				return nil
			}
		case "RS256":
			if v.hostVerify {
				if msg == nil {
					msg = []byte(signed)
				}
				ok, err := wasmgate.VerifySignature(wasmgate.RS256, k.der, msg, sig)
				if err != nil {
					return &authError{desc: "signature verification failed", err: err}
				}
				if ok {
					return nil
				}
				continue
			}
			if !hashed {
				digest, hashed = sha256.Sum256([]byte(signed)), true
			}
			if rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest[:], sig) == nil {
				return nil
			}
		}
	}
	if !tried {
		return errUnknownKey
	}
	return errSignature
}

// checkClaims checks exp, nbf, iss and aud.
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
