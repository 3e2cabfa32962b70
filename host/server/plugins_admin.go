package server

import (
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/admin"
)

// pluginEndpoints are the admin endpoints of plugins: what runs, hot-load,
// rollback and removal.
func (s *Server) pluginEndpoints() []admin.Endpoint {
	return []admin.Endpoint{
		{Method: "GET", Path: "/plugins", Handler: admin.JSON(func(*fasthttp.RequestCtx) (PluginsView, error) { return s.Plugins(), nil })},
		{Method: "PUT", Path: "/plugins/{name}", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (PluginChange, error) {
			return pluginAnswer(s.HotLoad(admin.Param(ctx, "name"), append([]byte(nil), ctx.PostBody()...), "admin"))
		})},
		{Method: "POST", Path: "/plugins/{name}/rollback", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (PluginChange, error) {
			return pluginAnswer(s.Rollback(admin.Param(ctx, "name"), string(ctx.QueryArgs().Peek("sha256"))))
		})},
		{Method: "DELETE", Path: "/plugins/{name}", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (PluginChange, error) {
			return pluginAnswer(s.DeletePlugin(admin.Param(ctx, "name")))
		})},
	}
}

// PluginChange is the answer of a hot-load, a rollback or a removal.
type PluginChange struct {
	Status        string `json:"status"`
	Plugin        string `json:"plugin"`
	SHA256        string `json:"sha256,omitempty"`
	Version       string `json:"version,omitempty"`
	Deleted       bool   `json:"deleted,omitempty"`
	ConfigVersion uint64 `json:"config_version"`
}

// pluginAnswer turns a refused change into its admin answer: 404 for a
// plugin the config lacks, 409 for one still in use, 503 for a change a
// fleet's etcd did not take, else 422; the running version stays in force.
func pluginAnswer(c PluginChange, err error) (PluginChange, error) {
	if err == nil {
		return c, nil
	}
	if ae := (*admin.Error)(nil); errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		return c, err // not the change's fault (fleet_unavailable)
	}
	status := fasthttp.StatusUnprocessableEntity
	var unknown errUnknownPlugin
	var inUse errPluginInUse
	var noCanary errNoCanary
	switch {
	case errors.As(err, &unknown), errors.As(err, &noCanary):
		status = http.StatusNotFound
	case errors.As(err, &inUse):
		status = http.StatusConflict
	}
	return c, &admin.Error{Status: status, Code: "plugin_rejected", Message: "the running version stays in force", Errors: admin.List(err)}
}

// PluginView is one plugin as GET /plugins shows it. Engine is the engine
// the plugin runs on: wazero-compiler, wazero-interpreter or wasmtime (the
// plugin's engine, else plugin_runtime.engine); Interruption how a guest
// is stopped at its deadline: instrumented or context (wazero), epoch
// (wasmtime).
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
	ABI          string        `json:"abi"` // native or http-wasm
	Hooks        []string      `json:"hooks"`
	ColdStart    ColdStartView `json:"cold_start"`
	// Instances and MemoryBytes sum the live instances and their linear
	// memory over the plugin's routes, canaries included.
	Instances   int           `json:"instances"`
	MemoryBytes uint64        `json:"memory_bytes"`
	Routes      []PluginRoute `json:"routes"`
	// Versions are the kept versions, oldest first, for rollback.
	Versions []VersionView `json:"versions"`
	Canary   *CanaryView   `json:"canary,omitempty"`
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
	// MemoryBytes is the linear memory of the live instances, each as of
	// its last release; ReapedInstances counts those closed idle
	// (pool.idle_timeout).
	MemoryBytes     uint64 `json:"memory_bytes"`
	ReapedInstances uint64 `json:"reaped_instances"`
	// Calls and Failures count hook calls since the running config (or
	// plugin version) was swapped in.
	Calls    int64 `json:"calls"`
	Failures int64 `json:"failures"`
	// While a canary runs: the running version's mean hook time, and the
	// canary version's calls, failures and mean hook time on this route.
	MeanCallUs float64       `json:"mean_call_us,omitempty"`
	Canary     *VersionCalls `json:"canary,omitempty"`
}

// VersionCalls are a canary version's hook calls on a route.
type VersionCalls struct {
	SHA256      string  `json:"sha256"`
	Calls       int64   `json:"calls"`
	Failures    int64   `json:"failures"`
	MeanCallUs  float64 `json:"mean_call_us"`
	Live        int     `json:"live_instances"`
	MemoryBytes uint64  `json:"memory_bytes"`
}

// CanaryView is a plugin's canary: the version and the share of users
// that runs it.
type CanaryView struct {
	SHA256  string `json:"sha256"`
	Version string `json:"version"`
	Percent *int   `json:"percent,omitempty"`
	Segment string `json:"segment,omitempty"`
}

// meanCallUs is a version's mean hook time in µs, 0 before any call.
func (v *linkVersion) meanCallUs() float64 {
	if n := v.calls.Load(); n > 0 {
		return float64(v.callNanos.Load()) / float64(n) / 1000
	}
	return 0
}

// PluginsView is the answer of GET /plugins.
type PluginsView struct {
	Plugins []PluginView `json:"plugins"`
}

// Plugins lists the running plugins, their module versions and how each
// route's binding is doing.
func (s *Server) Plugins() PluginsView {
	snap := s.snap.Load()
	out := PluginsView{Plugins: []PluginView{}}
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
			Engine: info.Engine, Interruption: info.Interruption, Mode: lp.cfg.Mode, ABI: info.ABI.String(), Hooks: info.HookNames(),
			Routes: []PluginRoute{},
		}
		if c := lp.canary; c != nil {
			v.Canary = &CanaryView{SHA256: c.version.sha, Version: c.version.sha[:12], Percent: c.spec.Percent, Segment: c.spec.Segment}
		}
		if q, ok := s.b.plugins.runtime.InstantiateQuantiles(name, lp.module.Version()); ok {
			v.ColdStart = ColdStartView{Count: q.Count, P50ms: ms(q.P50), P99ms: ms(q.P99)}
		}
		for _, r := range snap.routes {
			for _, l := range r.chain {
				if l.plugin != name {
					continue
				}
				st := l.binding.Stats()
				pr := PluginRoute{
					Route: r.name, FailOpen: l.failOpen, Live: st.Live, Idle: st.Idle, InUse: st.InUse,
					Quarantined: st.Quarantined, ConsecutiveFailures: st.ConsecutiveFailures, MemoryHighWater: st.MemoryHighWater,
					MemoryBytes: st.MemoryBytes, ReapedInstances: st.Reaped,
					Calls: l.calls.Load(), Failures: l.failures.Load(),
				}
				v.Instances += st.Live
				v.MemoryBytes += st.MemoryBytes
				if c := l.canary; c != nil {
					cs := c.binding.Stats()
					pr.MeanCallUs = l.meanCallUs()
					pr.Canary = &VersionCalls{SHA256: c.sha, Calls: c.calls.Load(), Failures: c.failures.Load(), MeanCallUs: c.meanCallUs(),
						Live: cs.Live, MemoryBytes: cs.MemoryBytes}
					v.Instances += cs.Live
					v.MemoryBytes += cs.MemoryBytes
				}
				v.Routes = append(v.Routes, pr)
			}
		}
		s.reloadMu.Lock()
		if h := s.b.history[name]; h != nil {
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
