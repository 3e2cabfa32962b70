package wasm

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMemoryAccounting(t *testing.T) { onEngines(t, testMemoryAccounting) }

// testMemoryAccounting follows a binding's memory total and the plugin
// version's gauge through growth, recycling, reaping and Close. grower
// grows its memory by a page per request, from one.
func testMemoryAccounting(t *testing.T, opts Options) {
	const page = 1 << 16
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	reg := prometheus.NewRegistry()
	opts.Registerer, opts.Now = reg, clock.now
	r := newTestRuntime(t, opts)
	ctx := context.Background()
	m, err := r.Load(ctx, "test", fixture(t, "grower"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Release(ctx) })
	cfg := BindingConfig{PoolMin: 1, PoolMax: 4, IdleTimeout: time.Hour, MemoryHighWaterPages: 3}
	b, err := m.Bind(ctx, testEnv(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	gauge := `wasmgate_plugin_memory_bytes{plugin="test",version="` + m.Version() + `"}`
	reaped := `wasmgate_plugin_instances_reaped_total{plugin="test",version="` + m.Version() + `"}`

	// run checks out n instances at once, runs on_request (a page more)
	// on each, and gives them back.
	run := func(n int) {
		t.Helper()
		held := make([]*Instance, 0, n)
		for range n {
			inst, err := b.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, inst)
		}
		for _, i := range held {
			req, resp := request("/")
			if _, err := i.OnRequest(req, resp, nil); err != nil {
				t.Fatal(err)
			}
			b.Release(i, false)
		}
	}
	steps := []struct {
		name   string
		do     func()
		live   int
		pages  uint64 // the binding's total
		gauge  float64
		reaped float64
	}{
		{"bound", func() {}, 1, 1, 1 * page, 0},
		// Two new instances of one page; all three grow by one.
		{"grown", func() { run(3) }, 3, 6, 6 * page, 0},
		// Checked out, not yet given back: as of the last release.
		{"in use", func() {
			inst, err := b.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req, resp := request("/")
			_, _ = inst.OnRequest(req, resp, nil)
			if s := b.Stats(); s.MemoryBytes != 6*page {
				t.Errorf("in use: memory %d, want %d", s.MemoryBytes, 6*page)
			}
			b.Release(inst, false) // the warmest: 2 pages, now 3
		}, 3, 7, 7 * page, 0},
		// Past memory_high_water (3 pages) the warmest is recycled, its
		// memory gone; the next warmest grows to 3.
		{"recycled", func() { run(1); run(1) }, 2, 5, 5 * page, 0},
		// An hour idle: down to PoolMin, the warmest (3 pages) kept.
		{"reaped", func() { clock.advance(time.Hour); b.reap() }, 1, 3, 3 * page, 1},
	}
	for _, st := range steps {
		st.do()
		s := b.Stats()
		if s.Live != st.live || s.MemoryBytes != st.pages*page {
			t.Errorf("%s: live %d memory %d, want %d %d", st.name, s.Live, s.MemoryBytes, st.live, st.pages*page)
		}
		got := gather(t, reg)
		if got[gauge] != st.gauge || got[reaped] != st.reaped {
			t.Errorf("%s: gauge %v reaped %v, want %v %v", st.name, got[gauge], got[reaped], st.gauge, st.reaped)
		}
	}

	// A second binding of the same version adds to the same gauge.
	b2, err := m.Bind(ctx, testEnv(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := gather(t, reg)[gauge]; got != 4*page {
		t.Errorf("two bindings: gauge %v, want %v", got, 4*page)
	}
	if err := b2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := gather(t, reg)[gauge]; got != 3*page {
		t.Errorf("after closing the second: gauge %v, want %v", got, 3*page)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := b.Stats(); s.Live != 0 || s.MemoryBytes != 0 {
		t.Errorf("closed: live %d memory %d", s.Live, s.MemoryBytes)
	}
	if _, ok := gather(t, reg)[gauge]; ok {
		t.Error("gauge left after the last binding closed")
	}
}
