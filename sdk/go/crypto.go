package wasmgate

import (
	"math"
	"strconv"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// SignatureAlg is a public-key signature algorithm the host verifies with
// VerifySignature. The names are those of JWS (RFC 7518, RFC 8037).
type SignatureAlg int32

// The algorithms of crypto_verify (sdk/ABI.md, "Cryptography").
const (
	// RS256 is RSASSA-PKCS1-v1_5 with SHA-256.
	RS256 SignatureAlg = abi.AlgRS256
	// PS256 is RSASSA-PSS with SHA-256 and a 32-byte salt.
	PS256 SignatureAlg = abi.AlgPS256
	// ES256 is ECDSA on P-256 with SHA-256; the signature is r||s, 64
	// bytes, as in a JWS (not ASN.1).
	ES256 SignatureAlg = abi.AlgES256
	// EdDSA is Ed25519; the signature is 64 bytes.
	EdDSA SignatureAlg = abi.AlgEdDSA
)

// String names the algorithm as JWS does.
func (a SignatureAlg) String() string {
	switch a {
	case RS256:
		return "RS256"
	case PS256:
		return "PS256"
	case ES256:
		return "ES256"
	case EdDSA:
		return "EdDSA"
	}
	return "SignatureAlg(" + strconv.Itoa(int(a)) + ")"
}

// VerifySignature reports whether sig is a valid alg signature of msg by
// the public key key, in DER: a SubjectPublicKeyInfo ("PUBLIC KEY" in PEM)
// for every algorithm, or for RSA also a PKCS#1 RSAPublicKey ("RSA PUBLIC
// KEY"). The host does the work in native code, an order of magnitude
// faster than the same verification compiled to wasm, and keeps parsed
// keys cached, so passing the same key bytes on every request costs
// nothing extra.
//
// A wrong or malformed signature is (false, nil). The error is
// ErrBadArgument when alg is unknown or key cannot be used with alg
// (unparseable, an RSA key outside 2048–8192 bits, an EC key not on P-256,
// a key of another algorithm), ErrTooLarge for a msg over 16 MiB. It works
// in every hook; check keys once in Init with CheckPublicKey.
//
// In a native (non-wasm) build the same checks run in process with the
// standard library, so a plugin's tests exercise real verification.
func VerifySignature(alg SignatureAlg, key, msg, sig []byte) (bool, error) {
	if len(msg) > abi.MaxVerifyMessage {
		return false, &Error{Func: abi.FuncCryptoVerify, Code: abi.TooLarge}
	}
	if len(key) > math.MaxInt32 || len(sig) > math.MaxInt32 {
		return false, &Error{Func: abi.FuncCryptoVerify, Code: abi.BadArgument}
	}
	r := hostCryptoVerify(int32(alg), key, msg, sig)
	if r < 0 {
		return false, codeErr(abi.FuncCryptoVerify, r)
	}
	return r == 1, nil
}

// CheckPublicKey returns nil when the host can verify alg signatures with
// key (see VerifySignature for the formats), else ErrBadArgument. Init
// should call it for every configured key, so that a key the gateway
// cannot use is a config error rather than a failure on each request.
func CheckPublicKey(alg SignatureAlg, key []byte) error {
	// An empty signature is never valid; the host answers it after looking
	// at the key alone, without hashing anything.
	_, err := VerifySignature(alg, key, nil, nil)
	return err
}
