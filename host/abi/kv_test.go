package abi

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock makes a store's time a variable.
func fakeClock(kv *KV) *int64 {
	now := int64(1_000_000_000_000)
	kv.now = func() int64 { return now }
	return &now
}

func TestKVBasics(t *testing.T) {
	kv := NewKV(10, 1000)
	if _, ok := kv.Get("a"); ok {
		t.Fatal("empty store has a")
	}
	if err := kv.Set("a", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	v, ok := kv.Get("a")
	if !ok || string(v) != "1" {
		t.Fatalf("Get = %q %v", v, ok)
	}
	v[0] = 'x' // a copy: the store is unchanged
	if v, _ := kv.Get("a"); string(v) != "1" {
		t.Fatal("Get returned the store's own bytes")
	}
	if kv.Len() != 1 || kv.Bytes() != 2 {
		t.Fatalf("len %d bytes %d", kv.Len(), kv.Bytes())
	}
	if err := kv.Set("a", []byte("12345"), 0); err != nil || kv.Bytes() != 6 || kv.Len() != 1 {
		t.Fatalf("overwrite: %v, len %d bytes %d", err, kv.Len(), kv.Bytes())
	}
	if !kv.Delete("a") || kv.Delete("a") {
		t.Fatal("Delete twice")
	}
	if kv.Len() != 0 || kv.Bytes() != 0 {
		t.Fatalf("after delete: len %d bytes %d", kv.Len(), kv.Bytes())
	}
	if err := kv.Set(strings.Repeat("k", MaxKVKey+1), nil, 0); !errors.Is(err, ErrKVKeyTooLong) {
		t.Fatalf("long key: %v", err)
	}
	if err := kv.Set(strings.Repeat("k", MaxKVKey), nil, 0); err != nil {
		t.Fatalf("key of MaxKVKey: %v", err)
	}
}

func TestKVTTL(t *testing.T) {
	kv := NewKV(10, 1000)
	now := fakeClock(kv)
	kv.Set("short", []byte("v"), time.Second)
	kv.Set("forever", []byte("v"), 0)
	*now += int64(999 * time.Millisecond)
	if _, ok := kv.Get("short"); !ok {
		t.Fatal("expired early")
	}
	*now += int64(time.Millisecond)
	if _, ok := kv.Get("short"); ok {
		t.Fatal("not expired at its TTL")
	}
	if kv.Len() != 1 {
		t.Fatalf("lazy expiry left %d keys", kv.Len())
	}
	if _, ok := kv.Get("forever"); !ok {
		t.Fatal("a key without TTL expired")
	}
	kv.Set("gone", []byte("v"), time.Millisecond)
	*now += int64(time.Second)
	if kv.Delete("gone") {
		t.Fatal("Delete reports an expired key as present")
	}
	// A huge TTL saturates instead of wrapping into the past.
	kv.Set("long", []byte("v"), time.Duration(math.MaxInt64))
	if _, ok := kv.Get("long"); !ok {
		t.Fatal("huge TTL expired at once")
	}
}

func TestKVBounds(t *testing.T) {
	kv := NewKV(3, 100)
	now := fakeClock(kv)
	for i := range 3 {
		if err := kv.Set("k"+strconv.Itoa(i), []byte("v"), time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := kv.Set("k3", []byte("v"), 0); !errors.Is(err, ErrKVFull) {
		t.Fatalf("fourth key: %v", err)
	}
	if err := kv.Set("k0", []byte("replaced"), time.Second); err != nil {
		t.Fatalf("overwriting within the key budget: %v", err)
	}
	// Over budget, a write sweeps the expired keys and fits.
	*now += int64(2 * time.Second)
	if err := kv.Set("k3", []byte("v"), 0); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if kv.Len() != 1 {
		t.Fatalf("sweep left %d keys", kv.Len())
	}
	// The byte budget counts keys and values.
	if err := kv.Set("big", make([]byte, 95), 0); !errors.Is(err, ErrKVFull) {
		t.Fatalf("over bytes: %v", err) // 3+95 + 2+1 > 100
	}
	if err := kv.Set("big", make([]byte, 94), 0); err != nil {
		t.Fatalf("at bytes: %v", err)
	}
	if kv.Bytes() != 100 {
		t.Fatalf("bytes %d", kv.Bytes())
	}
	if err := kv.Set("x", make([]byte, 200), 0); !errors.Is(err, ErrKVFull) {
		t.Fatalf("value over the whole budget: %v", err)
	}
	// Growing a value past the budget fails and leaves it as it was.
	if err := kv.Set("k3", []byte("vv"), 0); !errors.Is(err, ErrKVFull) {
		t.Fatalf("growing: %v", err)
	}
	if v, _ := kv.Get("k3"); string(v) != "v" || kv.Bytes() != 100 {
		t.Fatalf("failed write changed k3 to %q (bytes %d)", v, kv.Bytes())
	}
}

func TestKVIncr(t *testing.T) {
	kv := NewKV(10, 1000)
	now := fakeClock(kv)
	if v, err := kv.Incr("n", 5, time.Second); v != 5 || err != nil {
		t.Fatalf("Incr missing = %d %v", v, err)
	}
	*now += int64(500 * time.Millisecond)
	if v, err := kv.Incr("n", -7, time.Hour); v != -2 || err != nil {
		t.Fatalf("Incr = %d %v", v, err)
	}
	// The TTL given at creation stays: the key expires at 1s, not 1h.
	*now += int64(600 * time.Millisecond)
	if v, _ := kv.Incr("n", 1, 0); v != 1 {
		t.Fatalf("Incr after expiry = %d, want a fresh 1", v)
	}
	kv.Set("s", []byte("abc"), 0)
	if _, err := kv.Incr("s", 1, 0); !errors.Is(err, ErrKVNotInteger) {
		t.Fatalf("non-integer: %v", err)
	}
	kv.Set("max", []byte(strconv.FormatInt(math.MaxInt64, 10)), 0)
	if _, err := kv.Incr("max", 1, 0); !errors.Is(err, ErrKVOverflow) {
		t.Fatalf("overflow: %v", err)
	}
	if v, _ := kv.Get("max"); string(v) != strconv.FormatInt(math.MaxInt64, 10) {
		t.Fatalf("failed Incr changed the value to %q", v)
	}
	kv.Set("min", []byte(strconv.FormatInt(math.MinInt64, 10)), 0)
	if _, err := kv.Incr("min", -1, 0); !errors.Is(err, ErrKVOverflow) {
		t.Fatalf("underflow: %v", err)
	}
	if v, err := kv.Incr("min", 1, 0); err != nil || v != math.MinInt64+1 {
		t.Fatalf("from MinInt64: %d %v", v, err)
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in string
		v  int64
		ok bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"+7", 7, true}, {"-12", -12, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"99999999999999999999", 0, false},
		{"", 0, false}, {"-", 0, false}, {" 1", 0, false}, {"1 ", 0, false}, {"1.5", 0, false}, {"0x10", 0, false},
	}
	for _, tt := range tests {
		v, ok := parseInt([]byte(tt.in))
		if v != tt.v || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d %v, want %d %v", tt.in, v, ok, tt.v, tt.ok)
		}
	}
}

// TestKVConcurrent increments from many goroutines at once (run with
// -race): every increment is counted once.
func TestKVConcurrent(t *testing.T) {
	kv := NewKV(1000, 1<<20)
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := kv.Incr("shared", 1, 0); err != nil {
					t.Error(err)
					return
				}
				k := "w" + strconv.Itoa(w) + "-" + strconv.Itoa(i%50)
				_ = kv.Set(k, []byte("v"), time.Millisecond)
				kv.Get(k)
				if i%7 == 0 {
					kv.Delete(k)
				}
			}
		})
	}
	wg.Wait()
	if v, _ := kv.Get("shared"); string(v) != strconv.Itoa(workers*each) {
		t.Fatalf("shared = %s, want %d", v, workers*each)
	}
	// The budget counters agree with the contents.
	var keys, size int64
	for i := range kv.shards {
		for k, e := range kv.shards[i].m {
			keys++
			size += int64(len(k) + len(e.val))
		}
	}
	if keys != int64(kv.Len()) || size != kv.Bytes() {
		t.Fatalf("counted %d keys %d bytes, store says %d %d", keys, size, kv.Len(), kv.Bytes())
	}
}

func TestKVHostFunctions(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	kp, kl := h.put("counter")
	vp, vl := h.put("hello")
	if r := h.call32("kv_get", kp, kl, 0, 0); r != ErrNotFound {
		t.Fatalf("kv_get absent = %d", r)
	}
	if r := h.call32("kv_set", kp, kl, vp, vl, 0); r != 0 {
		t.Fatalf("kv_set = %d", r)
	}
	if r, got := h.get("kv_get", 3, kp, kl); r != 5 || string(got) != "hel" {
		t.Fatalf("kv_get short = %d %q", r, got)
	}
	if r := h.call32("kv_get", kp, kl, 0xFFFFFFFF, 0); r != 5 {
		t.Fatalf("kv_get size = %d", r)
	}
	res := h.alloc(8)
	if r := h.call32("kv_incr", kp, kl, 1, 0, res); r != ErrBadArgument {
		t.Fatalf("kv_incr on text = %d", r)
	}
	if r := h.call32("kv_delete", kp, kl); r != 0 {
		t.Fatalf("kv_delete = %d", r)
	}
	if r := h.call32("kv_delete", kp, kl); r != ErrNotFound {
		t.Fatalf("kv_delete absent = %d", r)
	}
	if r := h.call32("kv_incr", kp, kl, i64arg(-3), 1000, res); r != 0 {
		t.Fatalf("kv_incr = %d", r)
	}
	if v := int64(binary.LittleEndian.Uint64(h.bytes(res, 8))); v != -3 {
		t.Fatalf("kv_incr wrote %d", v)
	}
	if r, got := h.get("kv_get", 8, kp, kl); r != 2 || string(got) != "-3" {
		t.Fatalf("kv_get after incr = %d %q", r, got)
	}
	long := strings.Repeat("k", MaxKVKey+1)
	lp, ll := h.put(long)
	codes := []struct {
		name string
		got  int32
		want int32
	}{
		{"long key get", h.call32("kv_get", lp, ll, 0, 0), ErrBadArgument},
		{"long key set", h.call32("kv_set", lp, ll, vp, vl, 0), ErrBadArgument},
		{"long key delete", h.call32("kv_delete", lp, ll), ErrBadArgument},
		{"long key incr", h.call32("kv_incr", lp, ll, 1, 0, res), ErrBadArgument},
		{"negative ttl set", h.call32("kv_set", kp, kl, vp, vl, i64arg(-1)), ErrBadArgument},
		{"negative ttl incr", h.call32("kv_incr", kp, kl, 1, i64arg(-1), res), ErrBadArgument},
		{"huge ttl", h.call32("kv_set", kp, kl, vp, vl, math.MaxInt64), 0},
	}
	for _, c := range codes {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	h.c.Env.KV = NewKV(1, 100)
	h.call32("kv_set", kp, kl, vp, vl, 0)
	op, ol := h.put("other")
	if r := h.call32("kv_set", op, ol, vp, vl, 0); r != ErrTooLarge {
		t.Fatalf("over key budget = %d", r)
	}
	if r := h.call32("kv_incr", op, ol, 1, 0, res); r != ErrTooLarge {
		t.Fatalf("incr over key budget = %d", r)
	}
	bp, bl := h.put(strings.Repeat("b", 200))
	if r := h.call32("kv_set", kp, kl, bp, bl, 0); r != ErrTooLarge {
		t.Fatalf("over byte budget = %d", r)
	}
	h.c.Env.KV = nil
	if r := h.call32("kv_get", kp, kl, 0, 0); r != ErrUnavailable {
		t.Fatalf("no store = %d", r)
	}
	// The store works in request and response hooks only.
	h = newHarness(t, PhaseInit)
	kp, kl = h.put("k")
	res = h.alloc(8)
	for name, r := range map[string]int32{
		"kv_get":    h.call32("kv_get", kp, kl, 0, 0),
		"kv_set":    h.call32("kv_set", kp, kl, 0, 0, 0),
		"kv_delete": h.call32("kv_delete", kp, kl),
		"kv_incr":   h.call32("kv_incr", kp, kl, 1, 0, res),
	} {
		if r != ErrNotAllowed {
			t.Errorf("%s in on_init = %d", name, r)
		}
	}
	h = newHarness(t, PhaseResponse)
	kp, kl = h.put("k")
	if r := h.call32("kv_set", kp, kl, 0, 0, 0); r != 0 {
		t.Errorf("kv_set in on_response = %d", r)
	}
}
