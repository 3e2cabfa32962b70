//go:build !wasip1

package wasmgate

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"slices"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// TestVerifySignature checks the SDK's wrapper and the native build's
// verification (which mirrors the host's) for every algorithm.
func TestVerifySignature(t *testing.T) {
	msg := []byte("header.payload")
	d := sha256.Sum256(msg)
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der := func(pub any) []byte {
		b, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rs, _ := rsa.SignPKCS1v15(rand.Reader, rsaPriv, crypto.SHA256, d[:])
	ps, _ := rsa.SignPSS(rand.Reader, rsaPriv, crypto.SHA256, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	r, s, _ := ecdsa.Sign(rand.Reader, ecPriv, d[:])
	es := make([]byte, 64)
	r.FillBytes(es[:32])
	s.FillBytes(es[32:])
	ed := ed25519.Sign(edPriv, msg)
	rsaKey, ecKey, edKey := der(&rsaPriv.PublicKey), der(&ecPriv.PublicKey), der(edPub)
	tampered := func(b []byte) []byte { c := slices.Clone(b); c[len(c)/2] ^= 1; return c }

	for _, tc := range []struct {
		name          string
		alg           SignatureAlg
		key, msg, sig []byte
		ok            bool
		err           error
	}{
		{"RS256", RS256, rsaKey, msg, rs, true, nil},
		{"RS256 PKCS#1 key", RS256, x509.MarshalPKCS1PublicKey(&rsaPriv.PublicKey), msg, rs, true, nil},
		{"PS256", PS256, rsaKey, msg, ps, true, nil},
		{"ES256", ES256, ecKey, msg, es, true, nil},
		{"EdDSA", EdDSA, edKey, msg, ed, true, nil},
		{"RS256 tampered message", RS256, rsaKey, tampered(msg), rs, false, nil},
		{"PS256 tampered signature", PS256, rsaKey, msg, tampered(ps), false, nil},
		{"ES256 tampered signature", ES256, ecKey, msg, tampered(es), false, nil},
		{"EdDSA tampered message", EdDSA, edKey, tampered(msg), ed, false, nil},
		{"RS256 as PS256", PS256, rsaKey, msg, rs, false, nil},
		{"ES256 short signature", ES256, ecKey, msg, es[:63], false, nil},
		{"RS256 1024-bit key", RS256, der(&weak.PublicKey), msg, rs, false, ErrBadArgument},
		{"ES256 P-384 key", ES256, der(&p384.PublicKey), msg, es, false, ErrBadArgument},
		{"EdDSA with an RSA key", EdDSA, rsaKey, msg, ed, false, ErrBadArgument},
		{"garbage key", RS256, []byte("key"), msg, rs, false, ErrBadArgument},
		{"unknown alg", SignatureAlg(9), rsaKey, msg, rs, false, ErrBadArgument},
		{"message too large", EdDSA, edKey, make([]byte, abi.MaxVerifyMessage+1), ed, false, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := VerifySignature(tc.alg, tc.key, tc.msg, tc.sig)
			if ok != tc.ok || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("VerifySignature = %v, %v; want %v, %v", ok, err, tc.ok, tc.err)
			}
			if err != nil && err.Error() != "wasmgate.crypto_verify: "+codeText(err.(*Error).Code) {
				t.Fatalf("error text %q", err)
			}
		})
	}

	for _, k := range []struct {
		alg SignatureAlg
		key []byte
		err error
	}{{RS256, rsaKey, nil}, {PS256, rsaKey, nil}, {ES256, ecKey, nil}, {EdDSA, edKey, nil},
		{ES256, rsaKey, ErrBadArgument}, {RS256, der(&weak.PublicKey), ErrBadArgument}, {RS256, nil, ErrBadArgument}} {
		if err := CheckPublicKey(k.alg, k.key); !errors.Is(err, k.err) || (err == nil) != (k.err == nil) {
			t.Errorf("CheckPublicKey(%v, %d bytes) = %v, want %v", k.alg, len(k.key), err, k.err)
		}
	}
}

func TestSignatureAlgString(t *testing.T) {
	for a, want := range map[SignatureAlg]string{RS256: "RS256", PS256: "PS256", ES256: "ES256", EdDSA: "EdDSA", 0: "SignatureAlg(0)"} {
		if a.String() != want {
			t.Errorf("%d: %q, want %q", int32(a), a, want)
		}
	}
}
