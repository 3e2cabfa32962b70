//go:build !wasip1

package wasmgate

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"math/big"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// hostCryptoVerify is crypto_verify for native builds. Unlike the other
// host functions it needs no gateway (no request, no shared state), so it
// verifies in process with the rules of the host's implementation
// (host/abi/crypto.go): a plugin's native tests then check real signatures
// on the path its wasm build takes. Keep the two in step.
func hostCryptoVerify(alg int32, key, msg, sig []byte) int32 {
	if alg < int32(RS256) || alg > int32(EdDSA) || len(key) > abi.MaxVerifyKey {
		return abi.BadArgument
	}
	pub := nativePublicKey(key)
	if pub == nil {
		return abi.BadArgument
	}
	digest := sha256.Sum256(msg)
	switch SignatureAlg(alg) {
	case RS256, PS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return abi.BadArgument
		}
		if len(sig) != k.Size() {
			return 0
		}
		if SignatureAlg(alg) == RS256 {
			return verified(rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], sig) == nil)
		}
		opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}
		return verified(rsa.VerifyPSS(k, crypto.SHA256, digest[:], sig, opts) == nil)
	case ES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return abi.BadArgument
		}
		if len(sig) != 64 {
			return 0
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return verified(ecdsa.Verify(k, digest[:], r, s))
	default:
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return abi.BadArgument
		}
		if len(sig) != ed25519.SignatureSize {
			return 0
		}
		return verified(ed25519.Verify(k, msg, sig))
	}
}

func verified(ok bool) int32 {
	if ok {
		return 1
	}
	return 0
}

// nativePublicKey parses what the host accepts: a SubjectPublicKeyInfo
// (RSA, ECDSA P-256, Ed25519) or a PKCS#1 RSAPublicKey; nil otherwise.
func nativePublicKey(der []byte) any {
	if k, err := x509.ParsePKIXPublicKey(der); err == nil {
		switch k := k.(type) {
		case *rsa.PublicKey:
			if usableRSA(k) {
				return k
			}
		case *ecdsa.PublicKey:
			if k.Curve == elliptic.P256() {
				return k
			}
		case ed25519.PublicKey:
			return k
		}
		return nil
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil && usableRSA(k) {
		return k
	}
	return nil
}

// usableRSA: MinRSABits to MaxRSABits and an odd exponent from 3 to 2^31−1.
func usableRSA(k *rsa.PublicKey) bool {
	bits := k.N.BitLen()
	return bits >= abi.MinRSABits && bits <= abi.MaxRSABits && k.E >= 3 && k.E&1 == 1 && k.E <= 1<<31-1
}
