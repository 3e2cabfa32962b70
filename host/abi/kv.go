package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// Errors of the KV store.
var (
	ErrKVFull       = errors.New("kv: over the store's key or byte budget")
	ErrKVKeyTooLong = errors.New("kv: key over 256 bytes")
	ErrKVNotInteger = errors.New("kv: value is not a decimal int64")
	ErrKVOverflow   = errors.New("kv: increment overflows int64")
)

const kvShards = 16

// KV is the key-value store of one plugin (sdk/ABI.md section 4), shared by
// all its instances and versions: a map with per-key TTL, bounded by a
// number of keys and a number of bytes (keys plus values). It is sharded by
// key hash so that instances serving requests at once rarely contend.
//
// Expired keys are dropped lazily when read or written, and by a sweep of
// every shard when a write finds the store over budget and some key is known
// to have expired; a key that never expires is kept until deleted.
type KV struct {
	maxKeys, maxBytes int64
	keys, bytes       atomic.Int64 // reserved budget
	// minExp is a lower bound of the expiry times (Unix ns) of the entries
	// with a TTL, MaxInt64 when none: a sweep before it would free nothing.
	minExp  atomic.Int64
	sweepMu sync.Mutex
	seed    maphash.Seed
	now     func() int64 // Unix ns; replaced by tests
	shards  [kvShards]kvShard
}

type kvShard struct {
	mu sync.Mutex
	m  map[string]*kvEntry
	_  [48]byte // keep shard locks on separate cache lines
}

type kvEntry struct {
	val []byte // owned by the store, never handed out
	exp int64  // Unix ns; 0: never
}

// NewKV returns an empty store bounded by maxKeys keys and maxBytes bytes;
// non-positive bounds take DefaultKVKeys and DefaultKVBytes.
func NewKV(maxKeys int, maxBytes int64) *KV {
	if maxKeys <= 0 {
		maxKeys = DefaultKVKeys
	}
	if maxBytes <= 0 {
		maxBytes = DefaultKVBytes
	}
	kv := &KV{maxKeys: int64(maxKeys), maxBytes: maxBytes, seed: maphash.MakeSeed(),
		now: func() int64 { return time.Now().UnixNano() }}
	kv.minExp.Store(math.MaxInt64)
	for i := range kv.shards {
		kv.shards[i].m = make(map[string]*kvEntry)
	}
	return kv
}

// Get returns a copy of the value of key, false when absent or expired.
func (kv *KV) Get(key string) ([]byte, bool) {
	var v []byte
	_, ok := kv.read(s2b(key), func(b []byte) { v = bytes.Clone(b) })
	return v, ok
}

// Set stores value under key; ttl <= 0 means no expiry. It fails with
// ErrKVKeyTooLong or, over the store's budget, ErrKVFull.
func (kv *KV) Set(key string, value []byte, ttl time.Duration) error {
	return kv.set(s2b(key), value, max(ttl, 0).Nanoseconds())
}

// Delete removes key and reports whether it was present.
func (kv *KV) Delete(key string) bool { return kv.del(s2b(key)) }

// Incr atomically adds delta to the value of key read as a decimal int64 (a
// missing key is 0), stores the sum and returns it. ttl (<= 0: none)
// applies when the key is created. It fails with ErrKVNotInteger,
// ErrKVOverflow, ErrKVKeyTooLong or ErrKVFull, leaving the value as it was.
func (kv *KV) Incr(key string, delta int64, ttl time.Duration) (int64, error) {
	return kv.incr(s2b(key), delta, max(ttl, 0).Nanoseconds())
}

// Len returns the number of keys held, expired ones not yet dropped included.
func (kv *KV) Len() int { return int(kv.keys.Load()) }

// Bytes returns the bytes held (keys plus values).
func (kv *KV) Bytes() int64 { return kv.bytes.Load() }

// s2b views a string as bytes without copying; the store only reads keys
// and copies them when it keeps them.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (kv *KV) shard(key []byte) *kvShard {
	return &kv.shards[maphash.Bytes(kv.seed, key)%kvShards]
}

// expiry returns the expiry time of an entry written at now with a TTL of
// ttl ns (0: none), saturating far in the future.
func expiry(now, ttl int64) int64 {
	if ttl <= 0 {
		return 0
	}
	if now > math.MaxInt64-ttl {
		return math.MaxInt64
	}
	return now + ttl
}

func (e *kvEntry) expired(now int64) bool { return e.exp != 0 && e.exp <= now }

func cost(key, val []byte) int64 { return int64(len(key) + len(val)) }

// read calls f with the value of key under the shard lock (f must not keep
// it) and returns its size.
func (kv *KV) read(key []byte, f func([]byte)) (int, bool) {
	s := kv.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(key)]
	if e == nil {
		return 0, false
	}
	if e.expired(kv.now()) {
		kv.drop(s, key, e)
		return 0, false
	}
	f(e.val)
	return len(e.val), true
}

// readInto copies as much of the value of key as fits in dst and returns its
// size: the allocation-free read of kv_get.
func (kv *KV) readInto(key, dst []byte) (int, bool) {
	s := kv.shard(key)
	s.mu.Lock()
	e := s.m[string(key)]
	if e == nil {
		s.mu.Unlock()
		return 0, false
	}
	if e.expired(kv.now()) {
		kv.drop(s, key, e)
		s.mu.Unlock()
		return 0, false
	}
	copy(dst, e.val)
	n := len(e.val)
	s.mu.Unlock()
	return n, true
}

// drop removes an entry and returns its budget; the shard is locked.
func (kv *KV) drop(s *kvShard, key []byte, e *kvEntry) {
	delete(s.m, string(key))
	kv.keys.Add(-1)
	kv.bytes.Add(-cost(key, e.val))
}

// reserve takes dKeys keys and dBytes bytes (either may be negative) from
// the budget, false and nothing taken when over it. Writers reserve at
// once, so near the bound one may be refused while another's reservation is
// briefly counted: the bound itself is never exceeded.
func (kv *KV) reserve(dKeys, dBytes int64) bool {
	if dKeys > 0 && kv.keys.Add(dKeys) > kv.maxKeys {
		kv.keys.Add(-dKeys)
		return false
	}
	if dBytes > 0 && kv.bytes.Add(dBytes) > kv.maxBytes {
		kv.bytes.Add(-dBytes)
		if dKeys > 0 {
			kv.keys.Add(-dKeys)
		}
		return false
	}
	if dBytes < 0 {
		kv.bytes.Add(dBytes)
	}
	if dKeys < 0 {
		kv.keys.Add(dKeys)
	}
	return true
}

// noteExp lowers minExp to exp.
func (kv *KV) noteExp(exp int64) {
	if exp == 0 {
		return
	}
	for {
		cur := kv.minExp.Load()
		if exp >= cur || kv.minExp.CompareAndSwap(cur, exp) {
			return
		}
	}
}

// sweep drops every expired entry when some entry is known to have expired,
// and reports whether a retry may now fit. One sweep runs at a time; the
// others wait for it and retry.
func (kv *KV) sweep() bool {
	now := kv.now()
	if kv.minExp.Load() > now {
		return false
	}
	kv.sweepMu.Lock()
	defer kv.sweepMu.Unlock()
	if kv.minExp.Load() > now {
		return true // swept while we waited
	}
	kv.minExp.Store(math.MaxInt64)
	freed := false
	for i := range kv.shards {
		s := &kv.shards[i]
		s.mu.Lock()
		for k, e := range s.m {
			switch {
			case e.exp == 0:
			case e.exp <= now:
				delete(s.m, k)
				kv.keys.Add(-1)
				kv.bytes.Add(-int64(len(k) + len(e.val)))
				freed = true
			default:
				kv.noteExp(e.exp)
			}
		}
		s.mu.Unlock()
	}
	return freed
}

// put writes val as the value of key, creating the entry with expiry exp
// (or replacing an expired one) when fresh; it keeps the expiry of a live
// entry when keepExp. It returns false when over budget. The shard is
// locked.
func (kv *KV) put(s *kvShard, key, val []byte, exp int64, keepExp bool, now int64) bool {
	e := s.m[string(key)]
	dKeys, dBytes := int64(1), cost(key, val)
	if e != nil {
		dKeys, dBytes = 0, dBytes-cost(key, e.val)
	}
	if !kv.reserve(dKeys, dBytes) {
		return false
	}
	if e == nil {
		e = &kvEntry{}
		s.m[string(key)] = e
	} else if keepExp && !e.expired(now) {
		exp = e.exp
	}
	e.val = append(e.val[:0], val...)
	e.exp = exp
	kv.noteExp(exp)
	return true
}

func (kv *KV) set(key, val []byte, ttl int64) error {
	if len(key) > MaxKVKey {
		return ErrKVKeyTooLong
	}
	if cost(key, val) > kv.maxBytes {
		return ErrKVFull
	}
	s := kv.shard(key)
	for range 2 {
		now := kv.now()
		s.mu.Lock()
		ok := kv.put(s, key, val, expiry(now, ttl), false, now)
		s.mu.Unlock()
		if ok {
			return nil
		}
		if !kv.sweep() {
			break
		}
	}
	return ErrKVFull
}

func (kv *KV) del(key []byte) bool {
	s := kv.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(key)]
	if e == nil {
		return false
	}
	live := !e.expired(kv.now())
	kv.drop(s, key, e)
	return live
}

func (kv *KV) incr(key []byte, delta, ttl int64) (int64, error) {
	if len(key) > MaxKVKey {
		return 0, ErrKVKeyTooLong
	}
	s := kv.shard(key)
	for range 2 {
		now := kv.now()
		s.mu.Lock()
		var cur int64
		if e := s.m[string(key)]; e != nil && !e.expired(now) {
			v, ok := parseInt(e.val)
			if !ok {
				s.mu.Unlock()
				return 0, ErrKVNotInteger
			}
			cur = v
		}
		next := cur + delta
		if (delta > 0 && next < cur) || (delta < 0 && next > cur) {
			s.mu.Unlock()
			return 0, ErrKVOverflow
		}
		var buf [20]byte
		ok := kv.put(s, key, strconv.AppendInt(buf[:0], next, 10), expiry(now, ttl), true, now)
		s.mu.Unlock()
		if ok {
			return next, nil
		}
		if !kv.sweep() {
			break
		}
	}
	return 0, ErrKVFull
}

// parseInt parses a decimal int64 with an optional sign and nothing else.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return int64(-u), true // -2^63 wraps to itself, as intended
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// Host functions of the KV store. Keys over MaxKVKey bytes are a bad
// argument; a value or store over budget is TOO_LARGE.

// kvCall checks what every KV function needs and returns the store, or 0
// and an error code.
func kvCall(c *Call, key []byte) (*KV, int32) {
	switch {
	case !c.hooked():
		return nil, ErrNotAllowed
	case c.Env == nil || c.Env.KV == nil:
		return nil, ErrUnavailable
	case len(key) > MaxKVKey:
		return nil, ErrBadArgument
	}
	return c.Env.KV, 0
}

func kvCode(err error) int32 {
	switch err {
	case nil:
		return 0
	case ErrKVFull:
		return ErrTooLarge
	}
	return ErrBadArgument
}

func kvGet(c *Call, stack []uint64) {
	key := c.guest(sdkabi.FuncKVGet, stack[0], stack[1])
	dst := c.guest(sdkabi.FuncKVGet, stack[2], stack[3])
	kv, code := kvCall(c, key)
	if code != 0 {
		ret32(stack, code)
		return
	}
	n, ok := kv.readInto(key, dst)
	if !ok {
		ret32(stack, ErrNotFound)
		return
	}
	ret32(stack, size(n))
}

// msToNs converts a TTL in ms to ns, saturating.
func msToNs(ms int64) int64 {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return ms * int64(time.Millisecond)
}

func kvSet(c *Call, stack []uint64) {
	key := c.guest(sdkabi.FuncKVSet, stack[0], stack[1])
	val := c.guest(sdkabi.FuncKVSet, stack[2], stack[3])
	ttl := int64(stack[4])
	kv, code := kvCall(c, key)
	if code == 0 && ttl < 0 {
		code = ErrBadArgument
	}
	if code == 0 {
		code = kvCode(kv.set(key, val, msToNs(ttl)))
	}
	ret32(stack, code)
}

func kvDelete(c *Call, stack []uint64) {
	key := c.guest(sdkabi.FuncKVDelete, stack[0], stack[1])
	kv, code := kvCall(c, key)
	if code == 0 && !kv.del(key) {
		code = ErrNotFound
	}
	ret32(stack, code)
}

func kvIncr(c *Call, stack []uint64) {
	key := c.guest(sdkabi.FuncKVIncr, stack[0], stack[1])
	delta, ttl := int64(stack[2]), int64(stack[3])
	out := c.guest(sdkabi.FuncKVIncr, stack[4], 8)
	kv, code := kvCall(c, key)
	if code == 0 && ttl < 0 {
		code = ErrBadArgument
	}
	if code == 0 {
		v, err := kv.incr(key, delta, msToNs(ttl))
		if code = kvCode(err); code == 0 {
			binary.LittleEndian.PutUint64(out, uint64(v))
		}
	}
	ret32(stack, code)
}
