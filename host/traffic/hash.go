package traffic

import (
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
)

// hashDomain is prefixed to every sticky key. It is part of the wire
// contract: changing it moves every user to a different bucket and arm, so a
// new scheme gets a new version suffix and never replaces this one silently.
const hashDomain = "wasmgate/sticky/v1\x00"

// prefixed holds the xxhash state after the domain prefix. Copying a Digest
// is a plain struct copy, so Hash starts from it instead of rehashing the
// prefix on every request.
var prefixed = func() xxhash.Digest {
	var d xxhash.Digest
	d.Reset()
	d.WriteString(hashDomain)
	return d
}()

// Hash returns the sticky hash of a user key: XXH64 (seed 0) of the bytes
// "wasmgate/sticky/v1\x00" followed by key. It is the same on every process,
// machine and version of the gateway, so a user lands on the same side of
// every split and in the same percentage bucket everywhere, with no shared
// state. It does not allocate.
func Hash(key []byte) uint64 {
	d := prefixed
	d.Write(key)
	return d.Sum64()
}

// HashString is Hash for a key held as a string.
func HashString(key string) uint64 {
	d := prefixed
	d.WriteString(key)
	return d.Sum64()
}

// RandomHash returns a random hash for a request that has no sticky key, so
// that it is split and bucketed like a random user. It is goroutine-safe and
// does not allocate.
func RandomHash() uint64 { return rand.Uint64() }

// Buckets is the number of percentage buckets: a bucket is a basis point.
const Buckets = 10000

// Bucket returns the percentage bucket of a sticky hash, in [0, Buckets).
//
// It reads only the high 32 bits of h; Split.Pick reads only the low 32. The
// two are independent, so a 10% canary split is not the same 10% of users
// as a 10% flag or segment (which would pile every early feature onto one
// cohort through the split too).
func Bucket(h uint64) uint32 {
	return uint32((h >> 32) * Buckets >> 32)
}

// Salt is the salt of a cohort named name (a flag, a segment, a plugin
// canary): Salted(h, Salt(name)) puts the users of one percentage rollout
// independently of another's, so a 10% flag and a 10% canary are not the
// same users. Compute it once, at compile time.
func Salt(name string) uint64 { return HashString("wasmgate/cohort/v1\x00" + name) }

// Salted is h moved into the cohort of salt: a bijection of h, so the
// cohort's percentages keep InPercent's rule (raising a percent only adds
// users).
func Salted(h, salt uint64) uint64 { return mix64(h ^ salt) }

// InPercent reports whether the hash falls into the first percent of the
// buckets. Raising percent only adds hashes, never removes one, so a rollout
// from 10% to 20% keeps the first 10% in. percent is clamped to 0..100.
func InPercent(h uint64, percent int) bool {
	if percent <= 0 {
		return false
	}
	if percent >= 100 {
		return true
	}
	return Bucket(h) < uint32(percent)*100
}
