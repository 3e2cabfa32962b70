package metrics

import "github.com/prometheus/client_golang/prometheus"

// ShadowStats are one route's shadow traffic counts.
type ShadowStats struct {
	Route                                               string
	Sent, Matches, Mismatches, Dropped, Errors, Skipped uint64
}

type shadowCollector struct {
	stats func() []ShadowStats
	desc  *prometheus.Desc
}

// SetShadowStats registers stats as the source of the shadow counters;
// call it once. One metric, wasmgate_shadow_requests_total{route,outcome}:
// sent, match, mismatch, dropped (in-flight bound reached), error (the
// candidate did not answer) and skipped (method or body not mirrored).
func (m *Metrics) SetShadowStats(stats func() []ShadowStats) {
	m.Registry.MustRegister(&shadowCollector{stats: stats, desc: prometheus.NewDesc("wasmgate_shadow_requests_total",
		"Shadow copies of the route's requests, by outcome: sent, match, mismatch, dropped, error, skipped.",
		[]string{"route", "outcome"}, nil)})
}

func (c *shadowCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *shadowCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		for _, o := range []struct {
			name string
			n    uint64
		}{{"sent", s.Sent}, {"match", s.Matches}, {"mismatch", s.Mismatches}, {"dropped", s.Dropped}, {"error", s.Errors}, {"skipped", s.Skipped}} {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(o.n), s.Route, o.name)
		}
	}
}
