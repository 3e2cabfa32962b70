package abi

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// PluginHistogramBuckets are the buckets of plugin histograms. A plugin
// says nothing of its unit, so they span 100µs to about 7h in seconds, or
// 1e-4 to 2.7e4 in any other unit, by factors of 4.
var PluginHistogramBuckets = prometheus.ExponentialBuckets(0.0001, 4, 15)

// MetricVecs are the Prometheus vectors of every plugin's metrics, labelled
// by plugin and metric name (both bounded: plugin names come from the
// config, at most MaxMetrics names per plugin). Create them once per
// registry.
type MetricVecs struct {
	Counter   *prometheus.CounterVec
	Gauge     *prometheus.GaugeVec
	Histogram *prometheus.HistogramVec
}

// NewMetricVecs creates the plugin metric vectors and registers them on reg
// (none if nil). Vectors already registered there are reused, so a second
// call with the same registry shares the first one's series.
func NewMetricVecs(reg prometheus.Registerer) (*MetricVecs, error) {
	labels := []string{"plugin", "name"}
	v := &MetricVecs{
		Counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_plugin_counter_total",
			Help: "Counters defined by plugins (metric_define kind 0).",
		}, labels),
		Gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wasmgate_plugin_gauge",
			Help: "Gauges defined by plugins (metric_define kind 1).",
		}, labels),
		Histogram: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wasmgate_plugin_histogram",
			Help:    "Histograms defined by plugins (metric_define kind 2).",
			Buckets: PluginHistogramBuckets,
		}, labels),
	}
	if reg == nil {
		return v, nil
	}
	var err error
	if v.Counter, err = register(reg, v.Counter); err != nil {
		return nil, err
	}
	if v.Gauge, err = register(reg, v.Gauge); err != nil {
		return nil, err
	}
	if v.Histogram, err = register(reg, v.Histogram); err != nil {
		return nil, err
	}
	return v, nil
}

// register registers c, or returns the collector of the same kind already
// registered in its place.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
	}
	return c, fmt.Errorf("register plugin metrics: %w", err)
}

// PluginMetrics are the metrics one plugin defines, shared by all its
// instances: each instance defines its metrics (usually in on_init) and
// gets the same ids, since definition is idempotent by kind and name. The
// Prometheus children are resolved at definition, so recording is an index
// and an atomic add, with no allocation and no lock.
type PluginMetrics struct {
	plugin string
	vecs   *MetricVecs // nil: defined metrics record nowhere

	mu   sync.Mutex   // serialises Define
	n    atomic.Int32 // defined metrics; defs[:n] are immutable
	defs [MaxMetrics]pluginMetric
}

type pluginMetric struct {
	kind    int32
	name    string
	counter prometheus.Counter
	gauge   prometheus.Gauge
	hist    prometheus.Observer
}

// NewPluginMetrics returns the metric set of plugin, recording into vecs.
func NewPluginMetrics(plugin string, vecs *MetricVecs) *PluginMetrics {
	return &PluginMetrics{plugin: plugin, vecs: vecs}
}

// Define defines the metric of kind (MetricCounter, MetricGauge or
// MetricHistogram) named name, or finds it, and returns its id; or
// ErrBadArgument for a bad kind or name, ErrTooLarge past MaxMetrics.
func (m *PluginMetrics) Define(kind int32, name []byte) int32 {
	if kind < MetricCounter || kind > MetricHistogram || !sdkabi.ValidMetricName(name) {
		return ErrBadArgument
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.n.Load()
	for i := range n {
		if d := &m.defs[i]; d.kind == kind && d.name == string(name) {
			return i
		}
	}
	if n == MaxMetrics {
		return ErrTooLarge
	}
	d := &m.defs[n]
	d.kind, d.name = kind, string(name)
	if v := m.vecs; v != nil {
		switch kind {
		case MetricCounter:
			d.counter = v.Counter.WithLabelValues(m.plugin, d.name)
		case MetricGauge:
			d.gauge = v.Gauge.WithLabelValues(m.plugin, d.name)
		default:
			d.hist = v.Histogram.WithLabelValues(m.plugin, d.name)
		}
	}
	m.n.Store(n + 1) // publishes defs[n] to Record
	return n
}

// Record adds value to a counter, sets a gauge or observes a histogram, by
// id. It returns 0, ErrNotFound for an unknown id, or ErrBadArgument for NaN
// or, for a counter, a negative or infinite value.
func (m *PluginMetrics) Record(id int32, value float64) int32 {
	if id < 0 || id >= m.n.Load() {
		return ErrNotFound
	}
	if math.IsNaN(value) {
		return ErrBadArgument
	}
	d := &m.defs[id]
	switch d.kind {
	case MetricCounter:
		if value < 0 || math.IsInf(value, 1) {
			return ErrBadArgument
		}
		if d.counter != nil {
			d.counter.Add(value)
		}
	case MetricGauge:
		if d.gauge != nil {
			d.gauge.Set(value)
		}
	default:
		if d.hist != nil {
			d.hist.Observe(value)
		}
	}
	return 0
}

// Len returns the number of metrics defined.
func (m *PluginMetrics) Len() int { return int(m.n.Load()) }

// Delete removes the plugin's series from the vectors, for a plugin removed
// from the config. Its ids stay valid but record into series no longer
// exported.
func (m *PluginMetrics) Delete() {
	if m.vecs == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.n.Load() {
		d := &m.defs[i]
		switch d.kind {
		case MetricCounter:
			m.vecs.Counter.DeleteLabelValues(m.plugin, d.name)
		case MetricGauge:
			m.vecs.Gauge.DeleteLabelValues(m.plugin, d.name)
		default:
			m.vecs.Histogram.DeleteLabelValues(m.plugin, d.name)
		}
	}
}

func metricDefine(c *Call, stack []uint64) {
	kind := i32(stack[0])
	name := c.guest(sdkabi.FuncMetricDefine, stack[1], stack[2])
	if c.Env == nil || c.Env.Metrics == nil {
		ret32(stack, ErrUnavailable)
		return
	}
	ret32(stack, c.Env.Metrics.Define(kind, name))
}

func metricRecord(c *Call, stack []uint64) {
	id, v := i32(stack[0]), f64(stack[1])
	switch {
	case !c.hooked():
		ret32(stack, ErrNotAllowed)
	case c.Env == nil || c.Env.Metrics == nil:
		ret32(stack, ErrUnavailable)
	default:
		ret32(stack, c.Env.Metrics.Record(id, v))
	}
}
