package server

import (
	"sort"
	"time"

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

// PluginView is one plugin as GET /plugins shows it.
type PluginView struct {
	Name         string        `json:"name"`
	Module       string        `json:"module"`
	SHA256       string        `json:"sha256"`
	Version      string        `json:"version"`
	Size         int           `json:"size"`
	LoadedAt     time.Time     `json:"loaded_at"`
	Source       string        `json:"source"`
	CompileMs    float64       `json:"compile_ms"`
	Engine       string        `json:"engine"`
	Interruption string        `json:"interruption"`
	Mode         string        `json:"mode"`
	Hooks        []string      `json:"hooks"`
	ColdStart    ColdStartView `json:"cold_start"`
	Routes       []PluginRoute `json:"routes"`
	// Versions are the kept versions, oldest first, for rollback.
	Versions []VersionView `json:"versions"`
}

// VersionView is a kept module version of a plugin.
type VersionView struct {
	SHA256   string    `json:"sha256"`
	Size     int       `json:"size"`
	LoadedAt time.Time `json:"loaded_at"`
	Source   string    `json:"source"`
	Active   bool      `json:"active"`
}

// ColdStartView summarizes a plugin version's instantiate times.
type ColdStartView struct {
	Count uint64  `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
}

// PluginRoute is a plugin's binding on one route.
type PluginRoute struct {
	Route               string `json:"route"`
	FailOpen            bool   `json:"fail_open"`
	Live                int    `json:"live_instances"`
	Idle                int    `json:"idle_instances"`
	InUse               int    `json:"in_use_instances"`
	Quarantined         bool   `json:"quarantined"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	MemoryHighWater     uint32 `json:"memory_high_water_bytes"`
	// Calls and Failures count hook calls since the running config (or
	// plugin version) was swapped in.
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
}

// Plugins lists the running plugins, their module versions and how each
// route's binding is doing.
func (s *Server) Plugins() any {
	snap := s.snap.Load()
	out := struct {
		Plugins []PluginView `json:"plugins"`
	}{Plugins: []PluginView{}}
	names := make([]string, 0, len(snap.plugins))
	for name := range snap.plugins {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		lp := snap.plugins[name]
		info := lp.module.Info()
		v := PluginView{
			Name: name, Module: lp.cfg.Module, SHA256: info.SHA256, Version: lp.module.Version(),
			Size: info.Size, LoadedAt: lp.version.loadedAt, Source: lp.version.source, CompileMs: float64(info.CompileTime.Microseconds()) / 1000,
			Engine: info.Engine, Interruption: info.Interruption, Mode: lp.cfg.Mode, Hooks: info.Hooks.List(),
			Routes: []PluginRoute{},
		}
		if q, ok := s.plugins.runtime.InstantiateQuantiles(name, lp.module.Version()); ok {
			v.ColdStart = ColdStartView{Count: q.Count, P50ms: ms(q.P50), P99ms: ms(q.P99)}
		}
		for _, r := range snap.routes {
			for _, l := range r.chain {
				if l.plugin != name {
					continue
				}
				st := l.binding.Stats()
				v.Routes = append(v.Routes, PluginRoute{
					Route: r.name, FailOpen: l.failOpen, Live: st.Live, Idle: st.Idle, InUse: st.InUse,
					Quarantined: st.Quarantined, ConsecutiveFailures: st.ConsecutiveFailures, MemoryHighWater: st.MemoryHighWater,
					Calls: l.calls.Load(), Failures: l.failures.Load(),
				})
			}
		}
		s.reloadMu.Lock()
		if h := s.history[name]; h != nil {
			for _, pv := range h.versions {
				v.Versions = append(v.Versions, VersionView{SHA256: pv.sha, Size: len(pv.wasm),
					LoadedAt: pv.loadedAt, Source: pv.source, Active: pv.sha == lp.version.sha})
			}
		}
		s.reloadMu.Unlock()
		out.Plugins = append(out.Plugins, v)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
