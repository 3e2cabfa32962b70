// Package metrics holds the gateway's Prometheus metrics.
//
// Every name is prefixed wasmgate_ and every label is bounded: route and
// upstream names come from the config, status is a class (2xx..5xx), error
// kinds and reasons come from fixed sets. Raw paths and client values never
// become labels. Per-route children are resolved once when a config snapshot
// is built, so the request path only increments counters it already holds.
package metrics

import (
	"net/http"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// NoRoute is the route label of requests that matched no route.
const NoRoute = "_none"

// LatencyBuckets are the request duration buckets in seconds: fine-grained
// below 10ms, where a gateway's own cost shows, up to 30s.
var LatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025,
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
}

// Metrics is the gateway's metric set, registered on its own registry.
type Metrics struct {
	Registry *prometheus.Registry

	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	bytesIn        *prometheus.CounterVec
	bytesOut       *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	rejected       *prometheus.CounterVec
	retries        *prometheus.CounterVec
	pluginSkips    *prometheus.CounterVec
	autoRollbacks  *prometheus.CounterVec
	cacheResults   *prometheus.CounterVec
	idemResults    *prometheus.CounterVec
	limitResults   *prometheus.CounterVec
	limitFallback  prometheus.Counter
	redisUp        prometheus.Gauge
	inFlight       prometheus.Gauge
	reloads        *prometheus.CounterVec
	lastReloadOK   prometheus.Gauge
	lastReloadTime prometheus.Gauge

	mu     sync.Mutex
	routes map[string]*Route
}

// Route holds one route's pre-resolved metric children.
type Route struct {
	name     string
	byClass  [6]prometheus.Counter // index status/100; 0 is "other"
	duration prometheus.Observer
	hist     prometheus.Histogram
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	cache    map[string]prometheus.Counter // by cache status
	idem     *prometheus.CounterVec        // by idempotency outcome
	allowed  prometheus.Counter            // rate limit decisions
	limited  prometheus.Counter
}

// New registers the gateway metrics, plus Go runtime and process collectors.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_requests_total", Help: "Requests served, by route and status class.",
		}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wasmgate_request_duration_seconds", Help: "Time from request read to response ready, by route.",
			Buckets: LatencyBuckets,
		}, []string{"route"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_request_bytes_total", Help: "Request body bytes received, by route.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_response_bytes_total", Help: "Response body bytes sent, by route.",
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_upstream_errors_total", Help: "Failed upstream exchanges, by upstream and kind.",
		}, []string{"upstream", "kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_rejected_requests_total", Help: "Requests refused before proxying, by reason.",
		}, []string{"reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_upstream_retries_total", Help: "Upstream attempts beyond the first, by upstream.",
		}, []string{"upstream"}),
		pluginSkips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_plugin_skipped_total", Help: "Failed plugin calls skipped under fail_open, by plugin, route and failure kind.",
		}, []string{"plugin", "route", "kind"}),
		autoRollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_plugin_auto_rollbacks_total", Help: "Hot-loaded plugin versions rolled back automatically for failing, by plugin.",
		}, []string{"plugin"}),
		cacheResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_cache_requests_total", Help: "Requests on cached routes, by route and cache status (HIT, MISS, STALE, REVALIDATED, BYPASS).",
		}, []string{"route", "status"}),
		idemResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_idempotency_requests_total", Help: "Requests with an idempotency key (or refused for lacking one), by route and outcome (stored, replayed, not_stored, in_flight, mismatch, missing, invalid, store_error).",
		}, []string{"route", "outcome"}),
		limitResults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_ratelimit_decisions_total", Help: "Rate limit decisions, by route and result (allowed, limited).",
		}, []string{"route", "result"}),
		limitFallback: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wasmgate_ratelimit_redis_fallback_total", Help: "Rate limit decisions made by the local limiter because Redis failed.",
		}),
		redisUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmgate_ratelimit_redis_up", Help: "1 while Redis answers rate limit decisions, 0 while they fall back onto local limits.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmgate_in_flight_requests", Help: "Requests being served now.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wasmgate_config_reloads_total", Help: "Config reload attempts, by result (success, failure).",
		}, []string{"result"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmgate_config_last_reload_successful", Help: "1 if the last config reload succeeded.",
		}),
		lastReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wasmgate_config_last_reload_success_timestamp_seconds", Help: "When the running config was loaded.",
		}),
		routes: make(map[string]*Route),
	}
	reg.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.upstreamErrors, m.rejected,
		m.retries, m.pluginSkips, m.autoRollbacks, m.cacheResults, m.idemResults, m.limitResults, m.limitFallback, m.redisUp, m.inFlight, m.reloads, m.lastReloadOK, m.lastReloadTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Route returns the metric children of a route, creating them once.
func (m *Metrics) Route(name string) *Route {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.routes[name]; ok {
		return r
	}
	r := &Route{
		name:     name,
		hist:     m.duration.WithLabelValues(name).(prometheus.Histogram),
		bytesIn:  m.bytesIn.WithLabelValues(name),
		bytesOut: m.bytesOut.WithLabelValues(name),
	}
	r.duration = r.hist
	r.cache = make(map[string]prometheus.Counter, len(CacheStatuses))
	for _, st := range CacheStatuses {
		r.cache[st] = m.cacheResults.WithLabelValues(name, st)
	}
	r.idem = m.idemResults.MustCurryWith(prometheus.Labels{"route": name})
	r.allowed = m.limitResults.WithLabelValues(name, "allowed")
	r.limited = m.limitResults.WithLabelValues(name, "limited")
	for i, class := range []string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"} {
		r.byClass[i] = m.requests.WithLabelValues(name, class)
	}
	m.routes[name] = r
	return r
}

// RetainRoutes drops the series of routes that a reload removed, so that
// the label set stays bounded by the running config.
func (m *Metrics) RetainRoutes(keep map[string]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.routes {
		if keep[name] || name == NoRoute {
			continue
		}
		delete(m.routes, name)
		m.requests.DeletePartialMatch(prometheus.Labels{"route": name})
		m.duration.DeleteLabelValues(name)
		m.bytesIn.DeleteLabelValues(name)
		m.bytesOut.DeleteLabelValues(name)
		m.cacheResults.DeletePartialMatch(prometheus.Labels{"route": name})
		m.idemResults.DeletePartialMatch(prometheus.Labels{"route": name})
		m.limitResults.DeletePartialMatch(prometheus.Labels{"route": name})
	}
}

// Observe records one finished request.
func (r *Route) Observe(status int, seconds float64, in, out int) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	r.byClass[class].Inc()
	r.duration.Observe(seconds)
	if in > 0 {
		r.bytesIn.Add(float64(in))
	}
	if out > 0 {
		r.bytesOut.Add(float64(out))
	}
}

// Quantiles estimates latency quantiles (seconds) from the route's histogram
// the way Prometheus' histogram_quantile does: linear within a bucket.
func (r *Route) Quantiles(qs ...float64) (count uint64, values []float64) {
	var pb dto.Metric
	if err := r.hist.(prometheus.Metric).Write(&pb); err != nil || pb.Histogram == nil {
		return 0, make([]float64, len(qs))
	}
	h := pb.Histogram
	count = h.GetSampleCount()
	values = make([]float64, len(qs))
	buckets := h.GetBucket()
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].GetUpperBound() < buckets[j].GetUpperBound() })
	for i, q := range qs {
		values[i] = bucketQuantile(q, count, buckets)
	}
	return count, values
}

func bucketQuantile(q float64, count uint64, buckets []*dto.Bucket) float64 {
	if count == 0 || len(buckets) == 0 {
		return 0
	}
	rank := q * float64(count)
	lower, prev := 0.0, uint64(0)
	for _, b := range buckets {
		c := b.GetCumulativeCount()
		if float64(c) >= rank {
			if c == prev {
				return b.GetUpperBound()
			}
			return lower + (b.GetUpperBound()-lower)*(rank-float64(prev))/float64(c-prev)
		}
		lower, prev = b.GetUpperBound(), c
	}
	// Above the last finite bucket: report its bound, as histogram_quantile does.
	return buckets[len(buckets)-1].GetUpperBound()
}

// UpstreamError counts a failed upstream exchange; kind is from a fixed set.
func (m *Metrics) UpstreamError(upstream, kind string) {
	m.upstreamErrors.WithLabelValues(upstream, kind).Inc()
}

// Retries counts upstream attempts beyond the first.
func (m *Metrics) Retries(upstream string, n int) {
	if n > 0 {
		m.retries.WithLabelValues(upstream).Add(float64(n))
	}
}

// Rejected counts a request refused before proxying; reason is from a fixed set
// (overload, no_route, body_too_large, header_too_large, read_timeout, bad_request).
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

// PluginSkipped counts a failed plugin call that fail_open skipped.
func (m *Metrics) PluginSkipped(plugin, route, kind string) {
	m.pluginSkips.WithLabelValues(plugin, route, kind).Inc()
}

// AutoRollback counts a plugin version rolled back automatically.
func (m *Metrics) AutoRollback(plugin string) { m.autoRollbacks.WithLabelValues(plugin).Inc() }

// InFlight is the gauge of requests being served.
func (m *Metrics) InFlight() prometheus.Gauge { return m.inFlight }

// Reload records a config reload attempt.
func (m *Metrics) Reload(ok bool, unixSeconds float64) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadTime.Set(unixSeconds)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}
