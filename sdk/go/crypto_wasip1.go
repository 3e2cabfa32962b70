//go:build wasip1

package wasmgate

import "unsafe"

// crypto_verify(alg, key_ptr, key_len, msg_ptr, msg_len, sig_ptr, sig_len)
// -> i32 (sdk/ABI.md, "Cryptography"): 1 valid, 0 invalid, or a negative
// code. Declared here rather than in host_wasip1.go so that the function
// and its native counterpart (crypto_other.go) sit side by side.

//go:wasmimport wasmgate crypto_verify
//go:noescape
func wgCryptoVerify(alg int32, key unsafe.Pointer, keyLen int32, msg unsafe.Pointer, msgLen int32, sig unsafe.Pointer, sigLen int32) int32

func hostCryptoVerify(alg int32, key, msg, sig []byte) int32 {
	return wgCryptoVerify(alg, ptr(key), int32(len(key)), ptr(msg), int32(len(msg)), ptr(sig), int32(len(sig)))
}
