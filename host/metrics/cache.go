package metrics

import "github.com/prometheus/client_golang/prometheus"

// CacheStatuses are the cache statuses a cached route's requests are
// counted by.
var CacheStatuses = []string{"HIT", "MISS", "STALE", "REVALIDATED", "BYPASS"}

// CacheServed counts a request of a cached route by its cache status.
func (r *Route) CacheServed(status string) {
	if c, ok := r.cache[status]; ok {
		c.Inc()
	}
}

// Idempotency counts a request of a route with idempotency keys by its
// outcome.
func (r *Route) Idempotency(outcome string) { r.idem.WithLabelValues(outcome).Inc() }

// RateLimited counts a rate limit decision of the route.
func (r *Route) RateLimited(allowed bool) {
	if allowed {
		r.allowed.Inc()
		return
	}
	r.limited.Inc()
}

// RedisFallback counts a rate limit decision made locally because Redis failed.
func (m *Metrics) RedisFallback() { m.limitFallback.Inc() }

// RedisUp records whether Redis answers rate limit decisions.
func (m *Metrics) RedisUp(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.redisUp.Set(v)
}

// CacheStats is the state of one route's cache at a scrape.
type CacheStats struct {
	Route          string
	Entries, Bytes int64
	MaxBytes       int64
	Evictions      uint64
	Hits, Lookups  uint64
}

// cacheCollector reports the caches' sizes at scrape time, from a function
// the server installs: the caches live and die with config snapshots, so
// their gauges are read, not kept.
type cacheCollector struct {
	stats                                      func() []CacheStats
	entries, bytes, maxBytes, evictions, ratio *prometheus.Desc
}

// SetCacheStats registers stats as the source of the cache gauges; call it once.
func (m *Metrics) SetCacheStats(stats func() []CacheStats) {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"route"}, nil)
	}
	m.Registry.MustRegister(&cacheCollector{
		stats:     stats,
		entries:   d("wasmgate_cache_entries", "Responses stored in the route's cache."),
		bytes:     d("wasmgate_cache_bytes", "Bytes used by the route's cache (keys, headers and bodies)."),
		maxBytes:  d("wasmgate_cache_max_bytes", "Byte budget of the route's cache."),
		evictions: d("wasmgate_cache_evictions_total", "Responses evicted from the route's cache to make room."),
		ratio:     d("wasmgate_cache_hit_ratio", "Hits over lookups of the route's cache since it was created."),
	})
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.entries, c.bytes, c.maxBytes, c.evictions, c.ratio} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(s.Entries), s.Route)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes), s.Route)
		ch <- prometheus.MustNewConstMetric(c.maxBytes, prometheus.GaugeValue, float64(s.MaxBytes), s.Route)
		ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(s.Evictions), s.Route)
		ratio := 0.0
		if s.Lookups > 0 {
			ratio = float64(s.Hits) / float64(s.Lookups)
		}
		ch <- prometheus.MustNewConstMetric(c.ratio, prometheus.GaugeValue, ratio, s.Route)
	}
}
