package abi

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"sync"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// KeyCacheSize is the number of parsed keys kept by the host.
const KeyCacheSize = 256

// pssOptions are JWS PS256's (RFC 7518 section 3.5): the salt is as long as
// the hash. A package value, so that a verification does not allocate it.
var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}

// cryptoVerify is crypto_verify(alg, key_ptr, key_len, msg_ptr, msg_len,
// sig_ptr, sig_len) -> i32: 1 when sig is a valid signature of msg by the
// public key, 0 when it is not. BAD_ARGUMENT for an unknown alg or a key
// that is unparseable or unusable with alg; TOO_LARGE for a message over
// MaxVerifyMessage. It works in every hook: it touches no request state, and
// on_init may check its keys with an empty signature (answered 0 for a
// usable key without any hashing).
func cryptoVerify(c *Call, stack []uint64) {
	key := c.guest(sdkabi.FuncCryptoVerify, stack[1], stack[2])
	msg := c.guest(sdkabi.FuncCryptoVerify, stack[3], stack[4])
	sig := c.guest(sdkabi.FuncCryptoVerify, stack[5], stack[6])
	ret32(stack, verifySignature(i32(stack[0]), key, msg, sig))
}

// verifySignature is crypto_verify on host bytes; see cryptoVerify. A key
// seen before is found in the key cache by the SHA-256 of its DER, so the
// steady state parses nothing and the host's own code allocates nothing;
// what remains is inside the standard library (crypto/rsa rebuilds its
// internal form of the modulus on every call, crypto/ecdsa its points;
// Ed25519 allocates nothing).
func verifySignature(alg int32, key, msg, sig []byte) int32 {
	if alg < AlgRS256 || alg > AlgEdDSA || len(key) > MaxVerifyKey {
		return ErrBadArgument
	}
	if len(msg) > MaxVerifyMessage {
		return ErrTooLarge
	}
	pub := publicKeys.get(key)
	if pub == nil {
		return ErrBadArgument
	}
	switch alg {
	case AlgRS256, AlgPS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return ErrBadArgument
		}
		if len(sig) != k.Size() {
			return 0 // checked first: a key check (empty sig) hashes nothing
		}
		s := scratchPool.Get().(*verifyScratch)
		defer scratchPool.Put(s)
		s.digest = sha256.Sum256(msg)
		var err error
		if alg == AlgRS256 {
			err = rsa.VerifyPKCS1v15(k, crypto.SHA256, s.digest[:], sig)
		} else {
			err = rsa.VerifyPSS(k, crypto.SHA256, s.digest[:], sig, pssOptions)
		}
		return boolCode(err == nil)
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return ErrBadArgument
		}
		if len(sig) != 64 {
			return 0
		}
		s := scratchPool.Get().(*verifyScratch)
		defer scratchPool.Put(s)
		s.digest = sha256.Sum256(msg)
		return boolCode(ecdsa.VerifyASN1(k, s.digest[:], appendECDSASig(s.der[:0], sig)))
	default: // AlgEdDSA
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return ErrBadArgument
		}
		if len(sig) != ed25519.SignatureSize {
			return 0
		}
		return boolCode(ed25519.Verify(k, msg, sig))
	}
}

// verifyScratch holds what a verification hands to the standard library.
// Its crypto functions take their slices through paths the compiler cannot
// prove non-escaping, so stack arrays would move to the heap on every call;
// pooled scratch keeps the host's side of a verification allocation-free.
// The library keeps no reference once it returns.
type verifyScratch struct {
	digest [sha256.Size]byte
	der    [72]byte // an ES256 signature in ASN.1 DER
}

var scratchPool = sync.Pool{New: func() any { return new(verifyScratch) }}

func boolCode(ok bool) int32 {
	if ok {
		return 1
	}
	return 0
}

// appendECDSASig appends the ASN.1 DER form (a SEQUENCE of two INTEGERs)
// of a JWS ECDSA P-256 signature r||s (64 bytes) to dst; with 72 bytes of
// room in dst nothing allocates. The range checks (0 < r, s < n) are
// ecdsa.VerifyASN1's.
func appendECDSASig(dst, rs []byte) []byte {
	dst = append(dst, 0x30, 0)
	start := len(dst)
	dst = appendDERInt(dst, rs[:32])
	dst = appendDERInt(dst, rs[32:])
	dst[start-1] = byte(len(dst) - start) // at most 70: short form
	return dst
}

// appendDERInt appends the unsigned big-endian v as a minimal DER INTEGER:
// leading zeros dropped (one kept for zero), and a zero byte put ahead of a
// set high bit, which would otherwise read as negative.
func appendDERInt(dst, v []byte) []byte {
	for len(v) > 1 && v[0] == 0 {
		v = v[1:]
	}
	if v[0]&0x80 != 0 {
		dst = append(dst, 0x02, byte(len(v)+1), 0)
	} else {
		dst = append(dst, 0x02, byte(len(v)))
	}
	return append(dst, v...)
}

// publicKeys is the host's cache of parsed public keys, shared by every
// plugin: keys are public, and a plugin that verifies with a few keys finds
// them here on every request instead of parsing DER.
var publicKeys = newKeyCache(KeyCacheSize)

// keyCache is a bounded LRU of parsed public keys by the SHA-256 of their
// DER. Only usable keys are cached, so garbage sent as a key (which is
// re-parsed on every call, in time linear in its MaxVerifyKey-bounded size)
// never evicts a good one.
type keyCache struct {
	mu   sync.Mutex
	m    map[[sha256.Size]byte]*keyEntry
	head keyEntry // sentinel of the circular recency list: head.next is the newest
	max  int
}

type keyEntry struct {
	sum        [sha256.Size]byte
	pub        any // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
	prev, next *keyEntry
}

func newKeyCache(max int) *keyCache {
	kc := &keyCache{m: make(map[[sha256.Size]byte]*keyEntry, max), max: max}
	kc.head.prev, kc.head.next = &kc.head, &kc.head
	return kc
}

// get returns the parsed key of der, parsing and caching it on a miss; nil
// when der is not a usable public key. A hit does not allocate.
func (kc *keyCache) get(der []byte) any {
	sum := sha256.Sum256(der)
	kc.mu.Lock()
	if e := kc.m[sum]; e != nil {
		kc.unlink(e)
		kc.pushFront(e)
		kc.mu.Unlock()
		return e.pub
	}
	kc.mu.Unlock()
	// Parse outside the lock: an RSA key takes microseconds, and other
	// instances' hits must not wait for it.
	pub := parsePublicKey(der)
	if pub == nil {
		return nil
	}
	kc.mu.Lock()
	defer kc.mu.Unlock()
	if e := kc.m[sum]; e != nil { // parsed by another instance meanwhile
		return e.pub
	}
	e := &keyEntry{sum: sum, pub: pub}
	if len(kc.m) >= kc.max {
		old := kc.head.prev
		kc.unlink(old)
		delete(kc.m, old.sum)
	}
	kc.m[sum] = e
	kc.pushFront(e)
	return pub
}

func (kc *keyCache) unlink(e *keyEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (kc *keyCache) pushFront(e *keyEntry) {
	e.prev, e.next = &kc.head, kc.head.next
	kc.head.next.prev = e
	kc.head.next = e
}

// len is the number of cached keys.
func (kc *keyCache) len() int {
	kc.mu.Lock()
	defer kc.mu.Unlock()
	return len(kc.m)
}

// parsePublicKey parses a DER SubjectPublicKeyInfo (RSA, ECDSA P-256,
// Ed25519) or a PKCS#1 RSAPublicKey, and returns nil for anything else or
// for a key outside the bounds the host verifies with.
func parsePublicKey(der []byte) any {
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
		return nil // other curves, X25519, DSA...
	}
	if k, err := x509.ParsePKCS1PublicKey(der); err == nil && usableRSA(k) {
		return k
	}
	return nil
}

// usableRSA: a modulus of MinRSABits..MaxRSABits and an odd exponent of at
// least 3 (an exponent of 1 would make every message its own signature).
func usableRSA(k *rsa.PublicKey) bool {
	bits := k.N.BitLen()
	return bits >= MinRSABits && bits <= MaxRSABits && k.E >= 3 && k.E&1 == 1 && k.E <= 1<<31-1
}
