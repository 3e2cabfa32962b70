package wasm

import (
	"errors"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics are the runtime's Prometheus collectors. Labels are bounded:
// plugin (a config name), version (12 hex digits of the module's sha256),
// and hook or kind (fixed sets). A label set lives while a binding or a
// loaded module uses it and is deleted with the last one, so reloads do
// not pile up series of retired versions.
type metrics struct {
	compile     *prometheus.GaugeVec
	instantiate *prometheus.HistogramVec
	call        *prometheus.HistogramVec
	failures    *prometheus.CounterVec
	instances   *prometheus.GaugeVec
	highWater   *prometheus.GaugeVec
	memBytes    *prometheus.GaugeVec
	reaped      *prometheus.CounterVec

	mu     sync.Mutex
	series map[seriesKey]*series
}

type seriesKey struct{ plugin, version string }

// series holds the resolved collectors of one (plugin, version), so the
// hot path observes without a label lookup.
type series struct {
	key         seriesKey
	refs        int
	instantiate prometheus.Observer
	call        [numHooks]prometheus.Observer
	failures    [numKinds]prometheus.Counter
	instances   prometheus.Gauge
	highWater   prometheus.Gauge
	memBytes    prometheus.Gauge // moved by deltas: bindings share it
	reaped      prometheus.Counter
	maxMem      atomic.Uint32
}

// InstantiateBuckets are the buckets of wasmgate_plugin_instantiate_seconds,
// 10µs to 1s: a WAT module starts in ~15µs, a Go reactor in ~2ms.
var InstantiateBuckets = prometheus.ExponentialBucketsRange(10e-6, 1, 21)

// CallBuckets are the buckets of wasmgate_plugin_call_seconds, 1µs to 1s.
var CallBuckets = prometheus.ExponentialBucketsRange(1e-6, 1, 19)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"plugin", "version"}
	m := &metrics{
		compile: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmgate_plugin_compile_seconds",
			Help: "Time to compile the plugin module version (a disk cache hit is fast).",
		}, labels),
		instantiate: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmgate_plugin_instantiate_seconds",
			Help:    "Cold start of a plugin instance: instantiation, _initialize and on_init.",
			Buckets: InstantiateBuckets,
		}, labels),
		call: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmgate_plugin_call_seconds",
			Help:    "Duration of one hook call.",
			Buckets: CallBuckets,
		}, append(labels[:2:2], "hook")),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_plugin_failures_total",
			Help: "Plugin failures by kind: trap, timeout, memory, bad_return, init, exhausted, quarantined.",
		}, append(labels[:2:2], "kind")),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmgate_plugin_instances",
			Help: "Live plugin instances.",
		}, labels),
		highWater: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmgate_plugin_memory_high_water_bytes",
			Help: "Largest linear memory seen in an instance of the plugin version.",
		}, labels),
		memBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmgate_plugin_memory_bytes",
			Help: "Linear memory of the live instances of the plugin version, idle and in use, each as of its last release.",
		}, labels),
		reaped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_plugin_instances_reaped_total",
			Help: "Instances closed after pool.idle_timeout unused, down to pool.min_instances.",
		}, labels),
		series: make(map[seriesKey]*series),
	}
	if reg == nil {
		return m, nil
	}
	// A second Runtime on the same registry shares the collectors.
	var err error
	if m.compile, err = register(reg, m.compile); err != nil {
		return nil, err
	}
	if m.instantiate, err = register(reg, m.instantiate); err != nil {
		return nil, err
	}
	if m.call, err = register(reg, m.call); err != nil {
		return nil, err
	}
	if m.failures, err = register(reg, m.failures); err != nil {
		return nil, err
	}
	if m.instances, err = register(reg, m.instances); err != nil {
		return nil, err
	}
	if m.highWater, err = register(reg, m.highWater); err != nil {
		return nil, err
	}
	if m.memBytes, err = register(reg, m.memBytes); err != nil {
		return nil, err
	}
	if m.reaped, err = register(reg, m.reaped); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the equal collector already there.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if t, ok := are.ExistingCollector.(T); ok {
			return t, nil
		}
	}
	return c, err
}

// acquire returns the series of (plugin, version), creating it.
func (m *metrics) acquire(plugin, version string) *series {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := seriesKey{plugin, version}
	if s := m.series[k]; s != nil {
		s.refs++
		return s
	}
	s := &series{key: k, refs: 1}
	s.instantiate = m.instantiate.WithLabelValues(plugin, version)
	for h := Hook(0); h < numHooks; h++ {
		s.call[h] = m.call.WithLabelValues(plugin, version, h.String())
	}
	for k := Kind(0); k < numKinds; k++ {
		s.failures[k] = m.failures.WithLabelValues(plugin, version, k.String())
	}
	s.instances = m.instances.WithLabelValues(plugin, version)
	s.highWater = m.highWater.WithLabelValues(plugin, version)
	s.memBytes = m.memBytes.WithLabelValues(plugin, version)
	s.reaped = m.reaped.WithLabelValues(plugin, version)
	m.series[k] = s
	return s
}

// release drops a use of s and deletes its label sets with the last one.
func (m *metrics) release(s *series) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.refs--; s.refs > 0 {
		return
	}
	delete(m.series, s.key)
	l := prometheus.Labels{"plugin": s.key.plugin, "version": s.key.version}
	m.instantiate.DeletePartialMatch(l)
	m.call.DeletePartialMatch(l)
	m.failures.DeletePartialMatch(l)
	m.instances.DeletePartialMatch(l)
	m.highWater.DeletePartialMatch(l)
	m.memBytes.DeletePartialMatch(l)
	m.reaped.DeletePartialMatch(l)
}

// memory records a memory size, raising the high-water mark.
func (s *series) memory(size uint32) {
	for {
		old := s.maxMem.Load()
		if size <= old {
			return
		}
		if s.maxMem.CompareAndSwap(old, size) {
			s.highWater.Set(float64(size))
			return
		}
	}
}

// Quantiles summarize the cold starts of a plugin version, estimated from
// the histogram's buckets as Prometheus' histogram_quantile does.
type Quantiles struct {
	P50, P99 time.Duration
	Count    uint64
}

func (s *series) quantiles() Quantiles {
	mt, ok := s.instantiate.(prometheus.Metric)
	if !ok {
		return Quantiles{}
	}
	var d dto.Metric
	if mt.Write(&d) != nil || d.Histogram == nil {
		return Quantiles{}
	}
	h := d.Histogram
	q := Quantiles{Count: h.GetSampleCount()}
	q.P50 = bucketQuantile(0.5, h)
	q.P99 = bucketQuantile(0.99, h)
	return q
}

// bucketQuantile interpolates linearly inside the bucket holding the
// quantile; past the last bucket it answers the last bound.
func bucketQuantile(q float64, h *dto.Histogram) time.Duration {
	n := h.GetSampleCount()
	if n == 0 {
		return 0
	}
	bs := h.GetBucket()
	rank := q * float64(n)
	i := sort.Search(len(bs), func(i int) bool { return float64(bs[i].GetCumulativeCount()) >= rank })
	if i == len(bs) {
		return seconds(bs[len(bs)-1].GetUpperBound())
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = bs[i-1].GetUpperBound(), float64(bs[i-1].GetCumulativeCount())
	}
	upper, count := bs[i].GetUpperBound(), float64(bs[i].GetCumulativeCount())-below
	if count <= 0 || math.IsInf(upper, 0) {
		return seconds(upper)
	}
	return seconds(lower + (upper-lower)*(rank-below)/count)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
