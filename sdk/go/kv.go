package wasmgate

import (
	"math"
	"time"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// The key-value store is shared by every instance of the plugin (by plugin
// name) in the gateway process, and bounded (10,000 keys and 16 MiB per
// plugin by default). Keys are at most 256 bytes. It works in OnRequest and
// OnResponse; elsewhere the functions fail with ErrNotAllowed.

// KVGet returns the value of key; ErrNotFound when absent or expired.
func KVGet(key string) ([]byte, error) {
	return readOwned(abi.FuncKVGet, func(buf []byte) int32 { return hostKVGet(key, buf) })
}

// KVSet stores value under key. A ttl of 0 means no expiry; a positive ttl
// under a millisecond counts as one. It fails with ErrTooLarge over the
// store's budget.
func KVSet(key string, value []byte, ttl time.Duration) error {
	ms, err := ttlMillis(abi.FuncKVSet, ttl)
	if err != nil {
		return err
	}
	if len(value) > math.MaxInt32 {
		return &Error{Func: abi.FuncKVSet, Code: abi.TooLarge}
	}
	return codeErr(abi.FuncKVSet, hostKVSet(key, value, ms))
}

// KVDelete removes key; ErrNotFound when absent.
func KVDelete(key string) error { return codeErr(abi.FuncKVDelete, hostKVDelete(key)) }

// KVIncr atomically adds delta to key's value read as a decimal integer (a
// missing key counts as 0) and returns the new value. ttl applies when the
// call creates the key. It fails with ErrBadArgument when the stored value
// is not an integer.
func KVIncr(key string, delta int64, ttl time.Duration) (int64, error) {
	ms, err := ttlMillis(abi.FuncKVIncr, ttl)
	if err != nil {
		return 0, err
	}
	var v int64
	if err := codeErr(abi.FuncKVIncr, hostKVIncr(key, delta, ms, &v)); err != nil {
		return 0, err
	}
	return v, nil
}

// ttlMillis converts a TTL for the ABI, rounding up so that a short TTL is
// never 0 (which would mean no expiry).
func ttlMillis(fn string, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, &Error{Func: fn, Code: abi.BadArgument}
	}
	ms := int64(ttl / time.Millisecond)
	if ttl%time.Millisecond != 0 {
		ms++
	}
	return ms, nil
}
