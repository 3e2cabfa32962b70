package server

import (
	"sort"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/proxy"
)

// RouteView is one route as GET /routes shows it.
type RouteView struct {
	Name     string          `json:"name"`
	Match    config.Match    `json:"match"`
	Upstream string          `json:"upstream,omitempty"`
	Split    []config.Split  `json:"split,omitempty"`
	Rewrite  *config.Rewrite `json:"rewrite,omitempty"`
	Priority int             `json:"priority,omitempty"`
	Requests uint64          `json:"requests"`
	P50ms    float64         `json:"p50_ms"`
	P99ms    float64         `json:"p99_ms"`
}

// Routes lists the running routes in config order with their request count
// and latency quantiles estimated from the route's histogram.
func (s *Server) Routes() any {
	snap := s.snap.Load()
	out := struct {
		Version uint64      `json:"config_version"`
		Routes  []RouteView `json:"routes"`
	}{Version: snap.version, Routes: make([]RouteView, 0, len(snap.routes))}
	for _, r := range snap.routes {
		count, q := r.metrics.Quantiles(0.5, 0.99)
		out.Routes = append(out.Routes, RouteView{
			Name: r.name, Match: r.cfg.Match, Upstream: r.cfg.Upstream, Split: r.cfg.Split,
			Rewrite: r.cfg.Rewrite, Priority: r.cfg.Priority,
			Requests: count, P50ms: q[0] * 1000, P99ms: q[1] * 1000,
		})
	}
	return out
}

// Upstreams lists every upstream with its targets' health and load.
func (s *Server) Upstreams() any {
	snap := s.snap.Load()
	names := make([]string, 0, len(snap.upstreams))
	for name := range snap.upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	out := struct {
		Upstreams []proxy.UpstreamStatus `json:"upstreams"`
	}{Upstreams: make([]proxy.UpstreamStatus, 0, len(names))}
	for _, name := range names {
		out.Upstreams = append(out.Upstreams, snap.upstreams[name].Status())
	}
	return out
}
