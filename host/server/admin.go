package server

import (
	"sort"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/proxy"
)

// adminEndpoints is every admin endpoint: the gateway's own below, and
// those of features beside their code (plugins_admin.go, cache_admin.go).
// The README's table is checked against this list.
func (s *Server) adminEndpoints() []admin.Endpoint {
	eps := []admin.Endpoint{
		{Method: "GET", Path: "/healthz", Handler: admin.JSON(func(*fasthttp.RequestCtx) (Status, error) { return Status{"ok"}, nil })},
		{Method: "GET", Path: "/readyz", Handler: s.readyz},
		{Method: "GET", Path: "/metrics", Handler: fasthttpadaptor.NewFastHTTPHandler(s.metrics.Handler())},
		{Method: "GET", Path: "/config", Handler: s.configz},
		{Method: "GET", Path: "/routes", Handler: admin.JSON(func(*fasthttp.RequestCtx) (RoutesView, error) { return s.Routes(), nil })},
		{Method: "GET", Path: "/upstreams", Handler: admin.JSON(func(*fasthttp.RequestCtx) (UpstreamsView, error) { return s.Upstreams(), nil })},
		{Method: "POST", Path: "/config/reload", Handler: admin.JSON(func(*fasthttp.RequestCtx) (ReloadResult, error) {
			res, err := s.Reload("admin")
			if err != nil {
				return res, &admin.Error{Status: fasthttp.StatusUnprocessableEntity, Code: "config_rejected",
					Message: "the running config stays in force", Errors: admin.List(err)}
			}
			return res, nil
		})},
	}
	eps = append(eps, s.pluginEndpoints()...)
	eps = append(eps, s.cacheEndpoints()...)
	eps = append(eps, s.traffic.endpoints()...)
	eps = append(eps, s.fleetEndpoints()...)
	// go tool pprof posts to /debug/pprof/symbol.
	pprof := admin.Pprof()
	return append(eps, admin.Endpoint{Method: "GET", Path: "/debug/pprof/…", Handler: pprof},
		admin.Endpoint{Method: "POST", Path: "/debug/pprof/…", Handler: pprof})
}

// Status is the answer of /healthz and /readyz.
type Status struct {
	Status string `json:"status"`
}

// readyz answers 200 while the gateway takes traffic, 503 while it drains.
func (s *Server) readyz(ctx *fasthttp.RequestCtx) {
	if s.Ready() {
		admin.WriteJSON(ctx, fasthttp.StatusOK, Status{"ready"})
		return
	}
	admin.WriteJSON(ctx, fasthttp.StatusServiceUnavailable, Status{"not_ready"})
}

// configz answers the running config as JSON, secrets redacted.
func (s *Server) configz(ctx *fasthttp.RequestCtx) {
	body, err := s.Config()
	if err != nil {
		admin.WriteJSON(ctx, fasthttp.StatusInternalServerError, &admin.Error{Code: "internal", Message: err.Error()})
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

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

// RoutesView is the answer of GET /routes.
type RoutesView struct {
	Version uint64      `json:"config_version"`
	Routes  []RouteView `json:"routes"`
}

// Routes lists the running routes in config order with their request count
// and latency quantiles estimated from the route's histogram.
func (s *Server) Routes() RoutesView {
	snap := s.snap.Load()
	out := RoutesView{Version: snap.version, Routes: make([]RouteView, 0, len(snap.routes))}
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

// UpstreamsView is the answer of GET /upstreams.
type UpstreamsView struct {
	Upstreams []proxy.UpstreamStatus `json:"upstreams"`
}

// Upstreams lists every upstream with its targets' health and load.
func (s *Server) Upstreams() UpstreamsView {
	snap := s.snap.Load()
	names := make([]string, 0, len(snap.upstreams))
	for name := range snap.upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	out := UpstreamsView{Upstreams: make([]proxy.UpstreamStatus, 0, len(names))}
	for _, name := range names {
		out.Upstreams = append(out.Upstreams, snap.upstreams[name].Status())
	}
	return out
}
