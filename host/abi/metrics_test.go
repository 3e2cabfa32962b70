package abi

import (
	"math"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// gather returns the value of a plugin metric series from reg, NaN when
// absent; for a histogram, its sample count.
func gather(t *testing.T, reg *prometheus.Registry, family, plugin, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != family {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "plugin") != plugin || label(m, "name") != name {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return math.NaN()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	vecs, err := NewMetricVecs(reg)
	if err != nil {
		t.Fatal(err)
	}
	// A second set on the same registry shares the vectors.
	vecs2, err := NewMetricVecs(reg)
	if err != nil || vecs2.Counter != vecs.Counter || vecs2.Histogram != vecs.Histogram {
		t.Fatalf("second NewMetricVecs: %v", err)
	}
	h := newHarness(t, PhaseInit)
	h.c.Env.Metrics = NewPluginMetrics("auth", vecs)
	define := func(kind int32, name string) int32 {
		p, n := h.put(name)
		return h.call32("metric_define", i32arg(kind), p, n)
	}
	hits := define(MetricCounter, "hits")
	inflight := define(MetricGauge, "inflight")
	lat := define(MetricHistogram, "latency_seconds")
	if hits != 0 || inflight != 1 || lat != 2 {
		t.Fatalf("ids %d %d %d", hits, inflight, lat)
	}
	if again := define(MetricCounter, "hits"); again != hits {
		t.Fatalf("redefinition = %d, want %d", again, hits)
	}
	if other := define(MetricGauge, "hits"); other != 3 {
		t.Fatalf("same name, other kind = %d, want a new id 3", other)
	}
	for _, bad := range []struct {
		kind int32
		name string
	}{{3, "x"}, {-1, "x"}, {MetricCounter, "Bad"}, {MetricCounter, ""}} {
		if r := define(bad.kind, bad.name); r != ErrBadArgument {
			t.Errorf("define(%d, %q) = %d", bad.kind, bad.name, r)
		}
	}
	// Recording works only in request and response hooks.
	if r := h.call32("metric_record", uint64(hits), math.Float64bits(1)); r != ErrNotAllowed {
		t.Fatalf("record in on_init = %d", r)
	}
	h.c.Phase = PhaseRequest
	record := func(id int32, v float64) int32 {
		return h.call32("metric_record", i32arg(id), math.Float64bits(v))
	}
	for _, rec := range []struct {
		id   int32
		v    float64
		code int32
	}{
		{hits, 1, 0}, {hits, 2.5, 0}, {hits, -1, ErrBadArgument}, {hits, math.Inf(1), ErrBadArgument},
		{hits, math.NaN(), ErrBadArgument},
		{inflight, 7, 0}, {inflight, -3, 0},
		{lat, 0.002, 0}, {lat, 0.5, 0},
		{99, 1, ErrNotFound}, {-1, 1, ErrNotFound}, {4, 1, ErrNotFound},
	} {
		if r := record(rec.id, rec.v); r != rec.code {
			t.Errorf("record(%d, %v) = %d, want %d", rec.id, rec.v, r, rec.code)
		}
	}
	if v := gather(t, reg, "wasmgate_plugin_counter_total", "auth", "hits"); v != 3.5 {
		t.Errorf("counter = %v", v)
	}
	if v := gather(t, reg, "wasmgate_plugin_gauge", "auth", "inflight"); v != -3 {
		t.Errorf("gauge = %v", v)
	}
	if v := gather(t, reg, "wasmgate_plugin_histogram", "auth", "latency_seconds"); v != 2 {
		t.Errorf("histogram count = %v", v)
	}
	// At most MaxMetrics per plugin.
	for i := h.c.Env.Metrics.Len(); i < MaxMetrics; i++ {
		if r := define(MetricCounter, "m"+string(rune('a'+i%26))+string(rune('a'+i/26))); r != int32(i) {
			t.Fatalf("define %d = %d", i, r)
		}
	}
	if r := define(MetricCounter, "one_too_many"); r != ErrTooLarge {
		t.Fatalf("define past the limit = %d", r)
	}
	if r := define(MetricCounter, "hits"); r != hits {
		t.Fatalf("finding an existing metric at the limit = %d", r)
	}
	// Deleting the plugin's series removes them from the output.
	h.c.Env.Metrics.Delete()
	if v := gather(t, reg, "wasmgate_plugin_counter_total", "auth", "hits"); !math.IsNaN(v) {
		t.Errorf("counter after Delete = %v", v)
	}
	h.c.Env.Metrics = nil
	if r := define(MetricCounter, "x"); r != ErrUnavailable {
		t.Errorf("define without metrics = %d", r)
	}
	if r := record(0, 1); r != ErrUnavailable {
		t.Errorf("record without metrics = %d", r)
	}
}

// TestMetricsConcurrent defines and records from many goroutines (-race).
func TestMetricsConcurrent(t *testing.T) {
	vecs, _ := NewMetricVecs(nil)
	m := NewPluginMetrics("p", vecs)
	done := make(chan int32)
	for range 8 {
		go func() {
			id := m.Define(MetricCounter, []byte("shared"))
			for range 100 {
				m.Record(id, 1)
			}
			done <- id
		}()
	}
	for range 8 {
		if id := <-done; id != 0 {
			t.Fatalf("id %d", id)
		}
	}
	var out dto.Metric
	if err := vecs.Counter.WithLabelValues("p", "shared").Write(&out); err != nil || out.Counter.GetValue() != 800 {
		t.Fatalf("counter = %v %v", out.Counter.GetValue(), err)
	}
}
