package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/traffic"
	"github.com/wasmgate/wasmgate/host/wasm"
)

// maxChain bounds a route's plugin chain, so that per-request chain state
// fits in fixed storage.
const maxChain = 16

// link is one plugin of a route's chain, resolved for the hot path.
type link struct {
	plugin     string
	failOpen   bool
	fresh      bool // one instance serves the whole request
	onRequest  bool
	onResponse bool
	// establishes: the module imports set_consumer or set_claims, so it
	// can establish what an authorize policy decides on.
	establishes bool
	key         string // identity for reuse across reloads

	linkVersion             // the plugin's running version on this route
	canary      *canaryLink // nil: no canary
}

// linkVersion is one module version of a link: its binding and its hook
// calls and failures on this snapshot (automatic rollback, canary abort).
type linkVersion struct {
	binding         *wasm.Binding
	sha             string
	calls, failures atomic.Int64
	callNanos       atomic.Int64 // time in hooks, counted while a canary runs
}

// canaryLink is a canary version of a link, taking the share of the
// route's users the canary names: a percentage of the sticky hash, or a
// segment.
type canaryLink struct {
	linkVersion
	percent int
	salt    uint64 // the canary's own cohort (traffic.Salt)
	segment string // "" : by percent
}

// version is the link's version for the request: the canary for a user
// in its share, else the running one.
func (l *link) version(rq *request) *linkVersion {
	c := l.canary
	if c == nil {
		return &l.linkVersion
	}
	in := false
	if c.segment != "" {
		seg := rq.traffic().segments[c.segment]
		in = seg != nil && seg.Contains(rq)
	} else {
		h, _ := rq.StickyHash() // without a key: the request's random hash
		in = traffic.InPercent(traffic.Salted(h, c.salt), c.percent)
	}
	if in {
		return &c.linkVersion
	}
	return &l.linkVersion
}

// loadedPlugin is a plugin of a snapshot: its definition and module version.
type loadedPlugin struct {
	cfg     *config.Plugin
	module  *wasm.Module
	version *pluginVersion
	canary  *canaryModule // nil: no canary
}

// plugins is what the server keeps across snapshots for plugins: the
// runtime and the per-plugin state that outlives versions (KV store, metric
// definitions, log rate).
type plugins struct {
	runtime *wasm.Runtime
	vecs    *abi.MetricVecs
	kv      map[string]*abi.KV
	metrics map[string]*abi.PluginMetrics
	logRate map[string]*abi.RateLimitedLogs
	client  *fasthttp.Client // outbound calls to http://host:port destinations
}

// defaultCacheDir is where compiled modules are cached across restarts.
func defaultCacheDir() string {
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "wasmgate")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".cache", "wasmgate")
	}
	return filepath.Join(os.TempDir(), "wasmgate-cache")
}

// newPlugins starts the plugin runtime of the process.
func newPlugins(rc config.Runtime, log *slog.Logger, m *metrics.Metrics) (*plugins, error) {
	dir := rc.CacheDir
	switch dir {
	case "off":
		dir = ""
	case "":
		dir = defaultCacheDir()
	}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			log.Warn("plugin compilation cache unavailable; compiling in memory", "dir", dir, "err", err)
			dir = ""
		}
	}
	rt, err := wasm.NewRuntime(wasm.Options{
		DefaultEngine:       wasm.EngineKind(rc.Engine), // "" (a built config): wazero
		CacheDir:            dir,
		Interpreter:         rc.WazeroMode == "interpreter",
		ContextInterruption: rc.Interruption == "context",
		WasmtimePoolSlots:   uint32(rc.WasmtimePoolSlots),
		Log:                 log,
		Registerer:          m.Registry,
	})
	if err != nil {
		return nil, fmt.Errorf("plugin runtime: %w", err)
	}
	vecs, err := abi.NewMetricVecs(m.Registry)
	if err != nil {
		rt.Close(context.Background())
		return nil, fmt.Errorf("plugin metrics: %w", err)
	}
	return &plugins{
		runtime: rt, vecs: vecs,
		kv:      map[string]*abi.KV{},
		metrics: map[string]*abi.PluginMetrics{},
		logRate: map[string]*abi.RateLimitedLogs{},
		client: &fasthttp.Client{
			Name: "wasmgate-plugin", NoDefaultUserAgentHeader: true,
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
			MaxIdleConnDuration: time.Minute,
		},
	}, nil
}

// pluginState returns the state of a plugin that survives reloads.
func (p *plugins) pluginState(name string, log *slog.Logger) (*abi.KV, *abi.PluginMetrics, *abi.RateLimitedLogs) {
	if _, ok := p.kv[name]; !ok {
		p.kv[name] = abi.NewKV(abi.DefaultKVKeys, abi.DefaultKVBytes)
		p.metrics[name] = abi.NewPluginMetrics(name, p.vecs)
		p.logRate[name] = abi.NewRateLimitedLogs(log, name, 20, 50)
	}
	return p.kv[name], p.metrics[name], p.logRate[name]
}

// loadPlugins compiles (or finds compiled) every plugin module of cfg and
// binds every route's chain. Bindings of prev whose plugin version, route,
// config and limits are unchanged are carried over. Errors carry the
// position of what caused them.
func (b *builder) loadPlugins(ctx context.Context, cfg *config.Config, snap, prev *snapshot, view traffic.View, tolerate func(traffic.Key, error) bool) error {
	var errs config.ErrorList
	at := func(p config.Pos, format string, args ...any) {
		errs = append(errs, config.Error{File: cfg.File, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
	}
	modules := map[string]*wasm.Module{}
	canaries := map[string]*canaryModule{}
	defs := map[string]*config.Plugin{}
	for i := range cfg.Plugins {
		pc := &cfg.Plugins[i]
		defs[pc.Name] = pc
		pos := pc.At.Of("module", pc.Pos)
		v, err := b.moduleFor(cfg, pc)
		if err != nil {
			at(pos, "plugin %q: %v", pc.Name, err)
			continue
		}
		// The plugin's engine, else the config's default (a reload may
		// change either), for this load and for every later load of its
		// versions outside a build (uploads; canaries load in the build).
		kind := wasm.EngineKind(pc.Engine)
		if kind == "" {
			kind = wasm.EngineKind(cfg.Runtime.Engine)
		}
		b.plugins.runtime.SetPluginEngine(pc.Name, kind)
		m, err := b.plugins.runtime.LoadOn(ctx, kind, pc.Name, v.wasm)
		if err != nil {
			at(pos, "plugin %q: module %s rejected: %v", pc.Name, pc.Module, unwrapPluginName(err))
			continue
		}
		if got := m.Info().ABI.String(); pc.ABI != "" && got != pc.ABI {
			at(pc.At.Of("abi", pc.Pos), "plugin %q: version %.12s of module %s is %s plugin; the config says abi: %s", pc.Name, v.sha, pc.Module, article(got), pc.ABI)
			_ = m.Release(ctx)
			continue
		}
		modules[pc.Name] = m
		snap.modules = append(snap.modules, m)
		snap.plugins[pc.Name] = &loadedPlugin{cfg: pc, module: m, version: v}
		if c, err := b.loadCanary(ctx, pc.Name, v, view); err != nil {
			if tolerate == nil || !tolerate(traffic.Key{Kind: kindCanary, Name: pc.Name}, err) {
				at(pos, "plugin %q: canary: %v", pc.Name, err)
			}
		} else if c != nil && c.module.Info().ABI != m.Info().ABI {
			// The link's hooks come from the running module.
			at(pos, "plugin %q: canary: version %.12s is %s plugin, the running version %s one", pc.Name, c.version.sha, article(c.module.Info().ABI.String()), article(m.Info().ABI.String()))
			_ = c.module.Release(ctx)
		} else if c != nil {
			canaries[pc.Name] = c
			snap.modules = append(snap.modules, c.module)
			snap.plugins[pc.Name].canary = c
		}
	}
	if len(errs) > 0 {
		return errs
	}
	for ri, r := range snap.routes {
		rc := r.cfg
		if len(rc.Plugins) > maxChain {
			at(rc.At.Of("plugins", rc.Pos), "route %q: at most %d plugins in a chain, got %d", rc.Name, maxChain, len(rc.Plugins))
			continue
		}
		for i := range rc.Plugins {
			rp := &rc.Plugins[i]
			def, m := defs[rp.Name], modules[rp.Name]
			l, err := b.bind(ctx, cfg, snap, prev, r, ri, i, rp, def, m)
			if err != nil {
				at(rp.Pos, "route %q: plugin %q: %v", rc.Name, rp.Name, err)
				continue
			}
			l.sha = snap.plugins[rp.Name].version.sha
			if c := canaries[rp.Name]; c != nil {
				cl, err := b.bind(ctx, cfg, snap, prev, r, ri, i, rp, def, c.module)
				if err != nil {
					at(rp.Pos, "route %q: plugin %q: canary %s: %v", rc.Name, rp.Name, c.version.sha[:12], err)
					continue
				}
				l.canary = &canaryLink{percent: c.percent, segment: c.spec.Segment, salt: traffic.Salt("canary/" + rp.Name)}
				l.canary.binding, l.canary.sha = cl.binding, c.version.sha
			}
			r.chain = append(r.chain, l)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// unwrapPluginName drops the runtime's `plugin "x": ` prefix, which the
// config error already says.
func unwrapPluginName(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "plugin \"") {
		if i := strings.Index(msg, "\": "); i > 0 {
			return msg[i+3:]
		}
	}
	return msg
}

// bind makes (or carries over) the binding of one plugin entry of a route.
func (b *builder) bind(ctx context.Context, cfg *config.Config, snap, prev *snapshot, r *route, ri, i int,
	rp *config.RoutePlugin, def *config.Plugin, m *wasm.Module) (*link, error) {
	conf := []byte(rp.Config)
	if len(conf) == 0 {
		conf = def.Config
	}
	if m.Info().ABI == wasm.ABIHTTPWasm {
		conf = httpWasmConfig(conf)
	}
	bc := wasm.BindingConfig{
		Mode:                   wasm.ModePooled,
		MemoryPages:            uint32(def.Limits.MemoryPages),
		CallTimeout:            def.Limits.CallTimeout.D(),
		PoolMax:                def.Pool.MaxInstances,
		PoolMin:                max(def.Pool.MinInstances, 1),
		MaxRequestsPerInstance: def.Pool.MaxRequests,
		MemoryHighWaterPages:   uint32((int64(def.Pool.MemoryHighWater) + 65535) / 65536),
		AcquireTimeout:         def.Pool.AcquireTimeout.D(),
		IdleTimeout:            def.Pool.IdleTimeout.D(),
		QuarantineAfter:        def.Quarantine.After,
		QuarantineBackoff:      def.Quarantine.Backoff.D(),
		QuarantineMaxBackoff:   def.Quarantine.MaxBackoff.D(),
	}
	if bc.IdleTimeout == 0 {
		bc.IdleTimeout = -1 // idle_timeout: 0 is never; the binding's zero is its default
	}
	if def.Mode == "fresh" {
		bc.Mode = wasm.ModeFresh
	}
	if rp.Limits.MemoryPages > 0 {
		bc.MemoryPages = uint32(rp.Limits.MemoryPages)
	}
	if rp.Limits.CallTimeout > 0 {
		bc.CallTimeout = rp.Limits.CallTimeout.D()
	}
	policy := def.FailurePolicy
	if rp.FailurePolicy != "" {
		policy = rp.FailurePolicy
	}
	l := &link{
		plugin:     rp.Name,
		failOpen:   policy == "fail_open",
		fresh:      bc.Mode == wasm.ModeFresh,
		onRequest:  m.Info().Hooks.Has(wasm.HookRequest),
		onResponse: m.Info().Hooks.Has(wasm.HookResponse),
	}
	for _, im := range m.Info().Imports {
		if im.Module == abi.ModuleName && (im.Name == sdkabi.FuncSetConsumer || im.Name == sdkabi.FuncSetClaims) {
			l.establishes = true
		}
	}
	l.key = fmt.Sprintf("%s|%s|%d|%s|%s|%s|%+v|%v|%s|%v|%d", r.name, rp.Name, i, m.Version(), m.Info().Engine, conf, bc, outboundKey(rp.Outbound),
		r.limits.fingerprint(), r.cache != nil, r.maxBody)
	if prev != nil {
		if old, ok := prev.bindings[l.key]; ok {
			l.binding = old
			snap.bindings[l.key] = old
			return l, nil
		}
	}
	log := b.log.With(slog.String("plugin", rp.Name), slog.String("route", r.name))
	kv, pm, rate := b.plugins.pluginState(rp.Name, b.log)
	env := &abi.Env{
		Plugin: rp.Name, Route: r.name, Config: conf, MaxBody: r.maxBody,
		Log: log, KV: kv, Metrics: pm, LogRate: rate,
		Out: b.outbound(rp.Outbound), Cache: r.cache != nil,
	}
	if r.limits != nil {
		env.Limits = r.limits
	}
	if env.MaxBody == 0 {
		env.MaxBody = int64(cfg.Listen.MaxBodyBytes)
	}
	binding, err := m.Bind(ctx, env, bc)
	if err != nil {
		if reason, ok := wasm.ConfigRejected(err); ok {
			return nil, fmt.Errorf("rejected its config: %s", reason)
		}
		return nil, errors.New(unwrapPluginName(err))
	}
	l.binding = binding
	snap.bindings[l.key] = binding
	return l, nil
}

func outboundKey(o *config.Outbound) string {
	if o == nil {
		return ""
	}
	return strings.Join(o.Upstreams, ",") + "|" + strings.Join(o.Hosts, ",")
}

// outbound builds the destinations a plugin may call on a route. Upstreams
// are resolved at call time in the current snapshot, so a binding carried
// over a reload calls the upstreams of the config in force.
func (b *builder) outbound(o *config.Outbound) *abi.Outbound {
	if o == nil {
		return nil
	}
	out := &abi.Outbound{
		Upstreams: map[string]bool{}, Hosts: map[string]bool{},
		Client: b.plugins.client,
		Upstream: func(ctx context.Context, name string, req *fasthttp.Request, resp *fasthttp.Response) error {
			m := b.svc.current.Load().upstreams[name]
			if m == nil {
				return fmt.Errorf("upstream %q is not configured", name)
			}
			// fasthttp writes the URI's host once the URI is parsed: carry a
			// Host the plugin set over to it, else use the upstream's name
			// (the honest one: targets may be many).
			if h := req.Header.Host(); len(h) > 0 {
				req.URI().SetHostBytes(h)
			} else {
				req.Header.SetHost(name)
				req.URI().SetHost(name)
			}
			x := proxy.Exchange{Req: req, Resp: resp}
			if d, ok := ctx.Deadline(); ok {
				x.Timeouts.Total = config.Duration(time.Until(d))
			}
			return m.Do(&x)
		},
	}
	for _, u := range o.Upstreams {
		out.Upstreams[u] = true
	}
	for _, h := range o.Hosts {
		out.Hosts[strings.ToLower(h)] = true
	}
	return out
}

// retirePlugins closes the bindings of old that next does not use and drops
// old's module loads. In-flight hooks on closed bindings finish first.
func (b *builder) retirePlugins(old, next *snapshot) {
	if old == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for key, binding := range old.bindings {
		if next == nil || next.bindings[key] != binding {
			if err := binding.Close(ctx); err != nil {
				b.log.Warn("closing plugin binding", "err", err)
			}
		}
	}
	for _, m := range old.modules {
		_ = m.Release(ctx)
	}
}

// chainState is a request's progress through its route's chain.
type chainState struct {
	// held are the instances kept for on_response: fresh mode, and
	// http-wasm guests between handle_request (next=1) and handle_response.
	held     [maxChain]*wasm.Instance
	versions [maxChain]*linkVersion // the version each link runs for the request
	reached  int                    // links whose on_request phase was passed
	local    bool                   // a plugin answered the request itself
}

// startCall counts a hook call of v and, while the link has a canary (whose
// latency is compared with the running version's), starts its clock.
func (v *linkVersion) startCall(l *link) time.Time {
	v.calls.Add(1)
	if l.canary == nil {
		return time.Time{}
	}
	return time.Now()
}

func (v *linkVersion) endCall(start time.Time) {
	if !start.IsZero() {
		v.callNanos.Add(int64(time.Since(start)))
	}
}

var background = context.Background()

// httpWasmConfig is what an http-wasm guest's get_config reads: its config
// as JSON, as native plugins get it (http-wasm leaves the format to the
// guest; Traefik, its largest host, hands guests JSON too), except that a
// YAML string is handed over as its bytes, unquoted: a guest that wants a
// token, a path or a blob of its own format gets just that.
func httpWasmConfig(conf []byte) []byte {
	var str string
	if len(conf) > 0 && conf[0] == '"' && json.Unmarshal(conf, &str) == nil {
		return []byte(str)
	}
	return conf
}

// article puts "a" or "an" before an ABI's name.
func article(abiName string) string {
	if strings.HasPrefix(abiName, "http") {
		return "an " + abiName
	}
	return "a " + abiName
}
