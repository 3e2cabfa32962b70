package idempotency

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/redistest"
)

// stores are the stores every contract test runs on: Memory, and Redis on
// a real redis-server (skipped, saying why, without one).
func stores(t *testing.T) map[string]func(t *testing.T) Store {
	return map[string]func(t *testing.T) Store{
		"memory": func(t *testing.T) Store { return NewMemory(MemoryOptions{}) },
		"redis": func(t *testing.T) Store {
			srv := redistest.Start(t)
			s, err := NewRedis(RedisOptions{Addr: srv.Addr(), Prefix: fmt.Sprintf("test-%d:", time.Now().UnixNano()), PollInterval: 5 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

func onStores(t *testing.T, f func(t *testing.T, s Store)) {
	for name, newStore := range stores(t) {
		t.Run(name, func(t *testing.T) { f(t, newStore(t)) })
	}
}

var (
	fpA = NewFingerprint([]byte("POST"), []byte("/orders"), []byte(`{"item":1}`))
	fpB = NewFingerprint([]byte("POST"), []byte("/orders"), []byte(`{"item":2}`))
)

func created() *Response {
	return &Response{Status: 201, Header: []Header{{"Content-Type", "application/json"}, {"Set-Cookie", "a=1"}, {"Set-Cookie", "b=2"}}, Body: []byte(`{"id":"ord_1"}`)}
}

func claim(t *testing.T, s Store, key string, fp Fingerprint, lease time.Duration, want State) Claim {
	t.Helper()
	c, err := s.Claim(context.Background(), key, fp, lease)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != want {
		t.Fatalf("claim %q: %s, want %s", key, c.State, want)
	}
	return c
}

func TestClaimCompleteReplay(t *testing.T) {
	onStores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		first := claim(t, s, "k", fpA, time.Minute, Claimed)
		claim(t, s, "k", fpA, time.Minute, InFlight)
		claim(t, s, "k", fpB, time.Minute, Mismatch)
		if err := s.Complete(ctx, "k", first.Token, created(), time.Minute); err != nil {
			t.Fatal(err)
		}
		c := claim(t, s, "k", fpA, time.Minute, Replay)
		if !reflect.DeepEqual(c.Response, created()) {
			t.Fatalf("replayed %+v, want %+v", c.Response, created())
		}
		claim(t, s, "k", fpB, time.Minute, Mismatch)
		if err := s.Complete(ctx, "k", first.Token, created(), time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("second Complete: %v, want ErrLeaseLost", err)
		}
		claim(t, s, "other", fpB, time.Minute, Claimed) // keys are independent
	})
}

func TestReleaseFreesTheKey(t *testing.T) {
	onStores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		first := claim(t, s, "k", fpA, time.Minute, Claimed)
		if err := s.Release(ctx, "k", first.Token+1); err != nil { // not the holder: no effect
			t.Fatal(err)
		}
		claim(t, s, "k", fpA, time.Minute, InFlight)
		if err := s.Release(ctx, "k", first.Token); err != nil {
			t.Fatal(err)
		}
		// Free again, for any request: a failed attempt binds no body.
		second := claim(t, s, "k", fpB, time.Minute, Claimed)
		if second.Token <= first.Token {
			t.Fatalf("token %d after %d: fencing tokens must grow", second.Token, first.Token)
		}
		if err := s.Complete(ctx, "k", first.Token, created(), time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("Complete by the released holder: %v, want ErrLeaseLost", err)
		}
	})
}

// TestLeaseExpiryFences: a holder that outlived its lease loses the key
// to the next claim, and its late Complete stores nothing.
func TestLeaseExpiryFences(t *testing.T) {
	onStores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		const lease = 50 * time.Millisecond
		stalled := claim(t, s, "k", fpA, lease, Claimed)
		time.Sleep(3 * lease) // waits out the lease; measures nothing
		next := claim(t, s, "k", fpA, time.Minute, Claimed)
		if err := s.Complete(ctx, "k", stalled.Token, &Response{Status: 500}, time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stalled holder's Complete: %v, want ErrLeaseLost", err)
		}
		if err := s.Complete(ctx, "k", next.Token, created(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if c := claim(t, s, "k", fpA, time.Minute, Replay); c.Response.Status != 201 {
			t.Fatalf("replayed %d, want the successor's 201", c.Response.Status)
		}
	})
}

func TestTTLExpiry(t *testing.T) {
	onStores(t, func(t *testing.T, s Store) {
		c := claim(t, s, "k", fpA, time.Minute, Claimed)
		if err := s.Complete(context.Background(), "k", c.Token, created(), 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(150 * time.Millisecond) // waits out the TTL
		claim(t, s, "k", fpB, time.Minute, Claimed)
	})
}

// TestWaitEndsWithTheClaim: a repeat waiting for the first request is
// woken when it completes, and then replays it.
func TestWaitEndsWithTheClaim(t *testing.T) {
	onStores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		first := claim(t, s, "k", fpA, time.Minute, Claimed)
		woke := make(chan error, 1)
		go func() { woke <- s.Wait(ctx, "k") }()
		select {
		case err := <-woke:
			t.Fatalf("Wait returned while the key is claimed: %v", err)
		case <-time.After(30 * time.Millisecond):
		}
		if err := s.Complete(ctx, "k", first.Token, created(), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := <-woke; err != nil {
			t.Fatal(err)
		}
		claim(t, s, "k", fpA, time.Minute, Replay)

		// A wait is bounded by its context.
		claim(t, s, "w", fpA, time.Minute, Claimed)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if err := s.Wait(wctx, "w"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait on a held key: %v, want the context's deadline", err)
		}
	})
}

// TestConcurrentClaimsOneWinner: of many claims of one key at once,
// exactly one is Claimed.
func TestConcurrentClaimsOneWinner(t *testing.T) {
	onStores(t, func(t *testing.T, s Store) {
		var won, inFlight atomic.Int32
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				c, err := s.Claim(context.Background(), "k", fpA, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				switch c.State {
				case Claimed:
					won.Add(1)
				case InFlight:
					inFlight.Add(1)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || inFlight.Load() != 31 {
			t.Fatalf("%d claimed, %d in flight, want 1 and 31", won.Load(), inFlight.Load())
		}
	})
}

// TestMemoryBounds: a full Memory store evicts completed keys, oldest
// first, and never a claimed one; with every key claimed, a new claim
// fails with ErrFull; an answer larger than the store is not stored and
// its key is released.
func TestMemoryBounds(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryOptions{MaxKeys: 3, MaxBytes: 1 << 10})
	for _, k := range []string{"a", "b"} {
		c := claim(t, m, k, fpA, time.Minute, Claimed)
		if err := m.Complete(ctx, k, c.Token, created(), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	held := claim(t, m, "c", fpA, time.Minute, Claimed)
	claim(t, m, "d", fpA, time.Minute, Claimed) // evicts a, the oldest completed
	claim(t, m, "a", fpA, time.Minute, Claimed) // a is gone: claimable again (evicts b)
	if _, err := m.Claim(ctx, "b", fpA, time.Minute); !errors.Is(err, ErrFull) {
		t.Fatalf("claim with every key claimed: %v, want ErrFull", err)
	}
	claim(t, m, "c", fpA, time.Minute, InFlight) // claimed keys survive eviction
	if m.Len() != 3 {
		t.Fatalf("%d keys, want 3", m.Len())
	}
	if err := m.Complete(ctx, "c", held.Token, &Response{Status: 200, Body: make([]byte, 2<<10)}, time.Minute); !errors.Is(err, ErrFull) {
		t.Fatalf("an answer larger than the store: %v, want ErrFull", err)
	}
	claim(t, m, "c", fpB, time.Minute, Claimed) // released
}

func TestResponseEncoding(t *testing.T) {
	for _, r := range []*Response{
		created(),
		{Status: 204},
		{Status: 200, Header: []Header{{"X-Empty", ""}}, Body: []byte{0, 1, 2}},
	} {
		b, err := r.appendEncoded(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeResponse(b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Header == nil {
			r.Header = []Header{}
		}
		if r.Body == nil {
			r.Body = []byte(nil)
		}
		if got.Status != r.Status || !reflect.DeepEqual(got.Header, r.Header) || string(got.Body) != string(r.Body) {
			t.Fatalf("round trip: %+v, want %+v", got, r)
		}
		for n := range len(b) { // every truncation is refused
			if _, err := decodeResponse(b[:n]); err == nil {
				t.Fatalf("decoded %d of %d bytes", n, len(b))
			}
		}
	}
	for _, bad := range []*Response{{Status: 42}, {Status: 200, Header: []Header{{string(make([]byte, 1<<17)), ""}}}} {
		if _, err := bad.appendEncoded(nil); err == nil {
			t.Errorf("encoded %+v", bad.Status)
		}
	}
}

func FuzzDecodeResponse(f *testing.F) {
	b, _ := created().appendEncoded(nil)
	f.Add(b)
	f.Add([]byte{1, 0, 200, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err != nil {
			return
		}
		again, err := r.appendEncoded(nil)
		if err != nil {
			t.Fatalf("a decoded response does not encode: %v", err)
		}
		if string(again) != string(b) {
			t.Fatal("decode then encode changed the bytes")
		}
	})
}

// TestMemoryDropsAbandonedClaims: a claim whose holder vanished (its
// lease ran out, no Complete nor Release) does not hold a place in a full
// store for ever.
func TestMemoryDropsAbandonedClaims(t *testing.T) {
	now := time.Unix(1e9, 0)
	m := NewMemory(MemoryOptions{MaxKeys: 2, Now: func() time.Time { return now }})
	claim(t, m, "a", fpA, time.Second, Claimed)
	claim(t, m, "b", fpA, time.Minute, Claimed)
	if _, err := m.Claim(context.Background(), "c", fpA, time.Minute); !errors.Is(err, ErrFull) {
		t.Fatalf("full of live claims: %v, want ErrFull", err)
	}
	now = now.Add(2 * time.Second) // a's lease is over
	claim(t, m, "c", fpA, time.Minute, Claimed)
	claim(t, m, "b", fpA, time.Minute, InFlight) // b's lease is not
}
