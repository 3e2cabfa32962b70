package shadow

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestGateBound(t *testing.T) {
	const max, workers, rounds = 4, 32, 2000
	g := NewGate(max)
	var inside, peak, admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if !g.TryAcquire() {
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				n := inside.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if f := g.InFlight(); f > max || f < 1 {
					t.Errorf("InFlight() = %d inside the gate", f)
				}
				runtime.Gosched()
				inside.Add(-1)
				g.Release()
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > max {
		t.Errorf("%d requests in flight at once, bound %d", p, max)
	}
	if admitted.Load() == 0 || refused.Load() == 0 || admitted.Load()+refused.Load() != workers*rounds {
		t.Errorf("admitted %d, refused %d", admitted.Load(), refused.Load())
	}
	if g.InFlight() != 0 {
		t.Errorf("InFlight() = %d after all released", g.InFlight())
	}
}

func TestGateEdges(t *testing.T) {
	if g := NewGate(0); g.TryAcquire() {
		t.Error("NewGate(0) admitted")
	}
	if g := NewGate(-3); g.TryAcquire() {
		t.Error("NewGate(-3) admitted")
	}
	g := NewGate(2)
	g.Release() // without a place: ignored
	if g.InFlight() != 0 {
		t.Fatalf("InFlight() = %d", g.InFlight())
	}
	if !g.TryAcquire() || !g.TryAcquire() || g.TryAcquire() {
		t.Fatal("want exactly 2 places")
	}
	g.Release()
	if !g.TryAcquire() {
		t.Fatal("a released place is free again")
	}
	if n := testing.AllocsPerRun(100, func() {
		if g.TryAcquire() {
			g.Release()
		}
		g.Release()
		_ = g.TryAcquire()
		_ = g.InFlight()
		_ = Safe([]byte("GET"))
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestSafe(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true,
		"POST": false, "PUT": false, "PATCH": false, "DELETE": false, "CONNECT": false,
		"get": false, "": false, "GETX": false, "PROPFIND": false,
	} {
		if got := Safe([]byte(m)); got != want {
			t.Errorf("Safe(%q) = %v", m, got)
		}
	}
}
