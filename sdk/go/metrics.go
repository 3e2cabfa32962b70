package wasmgate

import (
	"math"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// metric is a lazily defined host metric. Package-level metric variables
// are created during package initialisation, when no hook runs, so the
// host call that defines the metric waits for the first record; the id it
// returns is kept for the life of the instance, making every later record
// one host call.
type metric struct {
	name string
	kind int32
	id   int32 // -1 until defined
}

func newMetric(kind int32, name string) metric { return metric{name: name, kind: kind, id: -1} }

func (m *metric) record(v float64) error {
	if m.id < 0 {
		if !abi.ValidMetricName(m.name) {
			return &Error{Func: abi.FuncMetricDefine, Code: abi.BadArgument}
		}
		id := hostMetricDefine(m.kind, m.name)
		if id < 0 {
			return codeErr(abi.FuncMetricDefine, id)
		}
		m.id = id
	}
	return codeErr(abi.FuncMetricRecord, hostMetricRecord(m.id, v))
}

// Counter is a monotonically increasing count, exported to Prometheus as
// wasmgate_plugin_counter_total{plugin="…", name="…"}. Declare counters as
// package-level variables; recording works in OnRequest and OnResponse.
type Counter struct{ m metric }

// NewCounter declares a counter; name must match [a-z][a-z0-9_]{0,62}
// (checked on first use). It makes no host call.
func NewCounter(name string) *Counter { return &Counter{m: newMetric(abi.MetricCounter, name)} }

// Add adds v (≥ 0) to the counter.
func (c *Counter) Add(v float64) error {
	if v < 0 || math.IsNaN(v) {
		return &Error{Func: abi.FuncMetricRecord, Code: abi.BadArgument}
	}
	return c.m.record(v)
}

// Inc adds 1.
func (c *Counter) Inc() error { return c.m.record(1) }

// Gauge is a value that goes up and down, exported as
// wasmgate_plugin_gauge{plugin, name}.
type Gauge struct{ m metric }

// NewGauge declares a gauge (see NewCounter for names).
func NewGauge(name string) *Gauge { return &Gauge{m: newMetric(abi.MetricGauge, name)} }

// Set sets the gauge.
func (g *Gauge) Set(v float64) error { return g.m.record(v) }

// Histogram observes values (e.g. durations in seconds), exported as
// wasmgate_plugin_histogram{plugin, name} with the gateway's buckets.
type Histogram struct{ m metric }

// NewHistogram declares a histogram (see NewCounter for names).
func NewHistogram(name string) *Histogram { return &Histogram{m: newMetric(abi.MetricHistogram, name)} }

// Observe records one value.
func (h *Histogram) Observe(v float64) error { return h.m.record(v) }
