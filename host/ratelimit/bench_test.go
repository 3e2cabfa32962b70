package ratelimit

import (
	"strconv"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/redistest"
)

// The limits never deny within a benchmark and keep every key's debt
// positive, so each decision measures the charge of a known key: no
// insertion (a key's first decision allocates its entry: 2 allocations,
// about 80 bytes) and no sweep removal.
var (
	benchOne = []Limit{{Name: "per-day", Rate: 1 << 40, Period: 24 * time.Hour}}
	benchTwo = []Limit{
		{Name: "per-day", Rate: 1 << 40, Period: 24 * time.Hour},
		{Name: "per-week", Rate: 1 << 41, Period: 7 * 24 * time.Hour},
	}
	// benchMany: T = 86.4ms, so a key revisited every few ms stays in
	// debt, and a burst of a million that no benchmark exhausts.
	benchMany = []Limit{{Name: "per-day", Rate: 1_000_000, Period: 24 * time.Hour}}
)

func benchKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "client-" + strconv.Itoa(i)
	}
	return keys
}

// BenchmarkLocalDecide measures one decision on the local limiter, clock
// reading included (time.Now).
func BenchmarkLocalDecide(b *testing.B) {
	run := func(b *testing.B, keys []string, limits []Limit) {
		l := newLocal(b)
		d := Decision{States: make([]LimitState, 0, len(limits))}
		for _, k := range keys {
			_ = l.Decide(bg, k, limits, 1, &d)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			if err := l.Decide(bg, keys[i%len(keys)], limits, 1, &d); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("one-key", func(b *testing.B) { run(b, []string{"client"}, benchOne) })
	b.Run("many-keys", func(b *testing.B) { run(b, benchKeys(100_000), benchMany) })
	b.Run("two-limits", func(b *testing.B) { run(b, []string{"client"}, benchTwo) })
	b.Run("many-keys-parallel", func(b *testing.B) {
		l := newLocal(b)
		keys := benchKeys(100_000)
		var d Decision
		for _, k := range keys {
			_ = l.Decide(bg, k, benchMany, 1, &d)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			d := Decision{States: make([]LimitState, 0, 1)}
			for i := 0; pb.Next(); i++ {
				if err := l.Decide(bg, keys[i%len(keys)], benchMany, 1, &d); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkRedisDecide measures one decision on a real redis-server on
// loopback: a round trip and the script.
func BenchmarkRedisDecide(b *testing.B) {
	srv := redistest.Start(b)
	r := newRedis(b, RedisOptions{Addr: srv.Addr()})
	b.Run("one-key", func(b *testing.B) {
		var d Decision
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Decide(bg, "client", benchOne, 1, &d); err != nil || d.Fallback {
				b.Fatal(err, d.Fallback)
			}
		}
	})
	b.Run("two-limits", func(b *testing.B) {
		var d Decision
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Decide(bg, "client", benchTwo, 1, &d); err != nil || d.Fallback {
				b.Fatal(err, d.Fallback)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		keys := benchKeys(1000)
		b.ReportAllocs()
		b.SetParallelism(8) // decisions wait on the network, not the CPU
		b.RunParallel(func(pb *testing.PB) {
			var d Decision
			for i := 0; pb.Next(); i++ {
				if err := r.Decide(bg, keys[i%len(keys)], benchOne, 1, &d); err != nil || d.Fallback {
					b.Error(err, d.Fallback)
					return
				}
			}
		})
	})
}
