package traffic

import (
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// The sticky hash is a contract with every gateway instance and release:
// these values must never change (see hashDomain).
func TestHashGolden(t *testing.T) {
	for _, tt := range []struct {
		key    string
		hash   uint64
		bucket uint32
	}{
		{"", 0x3b4a5a75760d7163, 2316},
		{"alice", 0x3b3e7868754cc1ed, 2314},
		{"user-42", 0x4fb687214eb68e7b, 3113},
		{"ünïcode", 0xb0e0e74e0c0748aa, 6909},
	} {
		if h := Hash([]byte(tt.key)); h != tt.hash {
			t.Errorf("Hash(%q) = %#016x, want %#016x", tt.key, h, tt.hash)
		}
		if b := Bucket(tt.hash); b != tt.bucket {
			t.Errorf("Bucket(Hash(%q)) = %d, want %d", tt.key, b, tt.bucket)
		}
	}
}

// The definition the README states, so another implementation can match it.
func TestHashDefinition(t *testing.T) {
	long := strings.Repeat("0123456789", 10)
	for _, key := range []string{"", "a", "alice", "a key longer than thirty-two bytes, to pass a block", long} {
		want := xxhash.Sum64String("wasmgate/sticky/v1\x00" + key)
		if h := Hash([]byte(key)); h != want {
			t.Errorf("Hash(%q) = %#x, want XXH64 of prefix+key %#x", key, h, want)
		}
		if h := HashString(key); h != want {
			t.Errorf("HashString(%q) = %#x, want %#x", key, h, want)
		}
	}
}

func TestBucketRangeAndUniform(t *testing.T) {
	for _, h := range []uint64{0, 1<<32 - 1, 1 << 32, 1<<64 - 1} {
		if b := Bucket(h); b >= Buckets {
			t.Errorf("Bucket(%#x) = %d, out of range", h, b)
		}
	}
	if Bucket(1<<64-1) != Buckets-1 || Bucket(0) != 0 {
		t.Errorf("Bucket does not span [0, %d)", Buckets)
	}
	var deciles [10]int
	for i := range 10000 {
		deciles[Bucket(HashString(keyN(i)))/1000]++
	}
	for d, n := range deciles {
		if n < 880 || n > 1120 { // 4 standard deviations
			t.Errorf("decile %d holds %d of 10000 keys", d, n)
		}
	}
}

func TestInPercent(t *testing.T) {
	for _, tt := range []struct {
		h       uint64
		percent int
		want    bool
	}{
		{0, 0, false},
		{0, 1, true},
		{1<<64 - 1, 99, false},
		{1<<64 - 1, 100, true},
		{0, -5, false},
		{1<<64 - 1, 150, true},
	} {
		if got := InPercent(tt.h, tt.percent); got != tt.want {
			t.Errorf("InPercent(%#x, %d) = %v, want %v", tt.h, tt.percent, got, tt.want)
		}
	}
	// Raising a percentage only adds keys.
	for i := range 2000 {
		h := HashString(keyN(i))
		in := false
		for p := 0; p <= 100; p++ {
			now := InPercent(h, p)
			if in && !now {
				t.Fatalf("key %d in at %d%% but out at %d%%", i, p-1, p)
			}
			in = now
		}
	}
}

func TestHashAllocs(t *testing.T) {
	key := []byte("user-1234567890")
	long := strings.Repeat("k", 200)
	longb := []byte(long)
	var sink uint64
	if n := testing.AllocsPerRun(100, func() { sink += Hash(longb) + HashString(long) }); n != 0 {
		t.Errorf("Hash of a long key: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		sink += Hash(key) + RandomHash() + uint64(Bucket(sink))
	}); n != 0 {
		t.Errorf("Hash, RandomHash, Bucket: %v allocs", n)
	}
	if RandomHash() == RandomHash() && RandomHash() == RandomHash() {
		t.Error("RandomHash repeats itself")
	}
}

func BenchmarkHash(b *testing.B) {
	key := []byte("user-1234567890")
	var sink uint64
	for b.Loop() {
		sink += Hash(key)
	}
	_ = sink
}

// keyN returns the i-th of a set of distinct user keys.
func keyN(i int) string { return "user-" + itoa(i) }

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}
