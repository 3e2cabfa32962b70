package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"syscall"
	"time"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"

	"github.com/wasmgate/wasmgate/host/authz"
	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/discovery"
	"github.com/wasmgate/wasmgate/host/idempotency"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/ratelimit"
	"github.com/wasmgate/wasmgate/host/router"
	"github.com/wasmgate/wasmgate/host/traffic"
	"github.com/wasmgate/wasmgate/host/wasm"
)

// builder makes snapshots: everything a config asks for, resolved once, so
// that a request only reads. It owns what outlives snapshots and what they
// reuse: the plugin runtime and each plugin's state, the kept plugin
// versions, the local rate limiter, the access log files. A build carries
// over from the previous snapshot what a config left unchanged (upstream
// pools, caches, plugin bindings, the Redis connection); the Server swaps
// the result in and retires what the old one had alone (commit).
//
// Builds are serialized by the Server (reloadMu); the request path never
// touches the builder.
type builder struct {
	svc         *services
	log         *slog.Logger
	metrics     *metrics.Metrics
	plugins     *plugins
	localLimits *ratelimit.Local          // rate limit state of this process, kept across reloads
	idemLocal   *idempotency.Memory       // idempotency keys of this process (store: local), kept across reloads
	history     map[string]*pluginHistory // kept plugin versions, by plugin name
	modules     moduleSource              // where plugin modules are read: files, or a fleet's etcd
	stdout      *bufferedWriter           // the access log's "stdout" and "stderr"
	stderr      *bufferedWriter
	logFiles    map[string]*bufferedWriter // access log files by path, kept across reloads
	traffic     *traffic.Store             // run-time traffic state: splits, switches, flags, canaries
	// candidate is the traffic state a run-time change proposes, while the
	// store checks it by building a snapshot for it (a plugin canary).
	candidate *traffic.View
	dryRun    bool // Validate: build, serve nothing, write nothing
}

// safeBuild is buildSnapshot for a config from outside: a bug that panics
// on some input rejects that config instead of ending the process serving
// the running one.
func (b *builder) safeBuild(cfg *config.Config, table *router.Table, prev *snapshot) (snap *snapshot, err error) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("config build panicked: the config is rejected", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			snap, err = nil, fmt.Errorf("internal error building the config (please report it): %v", r)
		}
	}()
	return b.buildSnapshot(cfg, table, prev)
}

func (b *builder) openAccessLog(path string) (io.Writer, error) {
	if w, ok := b.logFiles[path]; ok {
		return w, nil
	}
	if b.dryRun {
		return io.Discard, writable(path)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, err
	}
	w := newBufferedWriter(f)
	b.logFiles[path] = w
	return w, nil
}

// writable reports why the access log at path could not be opened for
// appending, without creating it.
func writable(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		return f.Close()
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := syscall.Access(filepath.Dir(path), 2 /* W_OK */); err != nil {
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return nil
}

// buildSnapshot compiles cfg into a snapshot, reusing the upstreams of prev
// whose config did not change. Nothing is torn down here: the caller retires
// the upstreams prev had that the new snapshot does not use, after the swap.
func (b *builder) buildSnapshot(cfg *config.Config, table *router.Table, prev *snapshot) (*snapshot, error) {
	snap, err := b.newSnapshot(cfg, table)
	if err != nil {
		return nil, err
	}
	bs := &build{b: b, cfg: cfg, snap: snap, prev: prev}
	if err := bs.run(); err != nil {
		bs.undo()
		return nil, err
	}
	return snap, nil
}

// newSnapshot is a snapshot with what a config gives without starting
// anything: listener policies, trusted proxies, the access log.
func (b *builder) newSnapshot(cfg *config.Config, table *router.Table) (*snapshot, error) {
	snap := &snapshot{
		svc:         b.svc,
		loadedAt:    time.Now(),
		cfg:         cfg,
		table:       table,
		upstreams:   make(map[string]*managedUpstream, len(cfg.Upstreams)),
		maxBody:     int64(cfg.Listen.MaxBodyBytes),
		maxResponse: int64(cfg.Listen.MaxResponseBytes),
		paths: pathPolicy{
			slashes:      escapedSlashes[cfg.Listen.EscapedSlashes],
			rejectParams: cfg.Listen.PathParameters != "keep",
		},
		noRoute:  b.metrics.Route(metrics.NoRoute),
		bindings: map[string]*wasm.Binding{},
		plugins:  map[string]*loadedPlugin{},
		caches:   map[string]*cache.Cache{},

		cachePolicies: map[string]cache.Policy{},
	}
	for _, cidr := range cfg.Listen.TrustedProxies {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("listen.trusted_proxies: %w", err)
		}
		snap.trusted = append(snap.trusted, p)
	}
	var err error
	if snap.accessLog, err = b.accessLogger(cfg.Log.AccessLog); err != nil {
		return nil, err
	}
	return snap, nil
}

// build is one buildSnapshot in progress: what it has started so far, so
// that a failure closes exactly that and leaves prev's parts alone.
type build struct {
	b       *builder
	cfg     *config.Config
	snap    *snapshot
	prev    *snapshot
	created []*managedUpstream // upstreams started for this snapshot
	// dropped are run-time overrides from the state file this config
	// cannot serve, found at start: ended, not fatal.
	dropped []droppedOverride
}

// droppedOverride is a run-time override the gateway ended at start.
type droppedOverride struct {
	key    traffic.Key
	reason error
}

// starting reports whether this is the build of the gateway's start (not a
// reload, a run-time change or a dry run): the one build that ends a
// run-time override it cannot serve instead of failing, since there is no
// running gateway to fix it through.
func (bs *build) starting() bool {
	return bs.prev == nil && bs.b.candidate == nil && !bs.b.dryRun
}

// unservable records an override the start cannot serve.
func (bs *build) unservable(key traffic.Key, err error) bool {
	bs.dropped = append(bs.dropped, droppedOverride{key: key, reason: err})
	return true
}

// run builds the snapshot's parts in dependency order: upstreams and Redis
// first, then the routes that use them, then the plugins the routes bind.
func (bs *build) run() error {
	if err := bs.upstreams(); err != nil {
		return err
	}
	if err := bs.redis(); err != nil {
		return err
	}
	for i := range bs.cfg.Routes {
		r, err := bs.route(&bs.cfg.Routes[i])
		if err != nil {
			return err
		}
		bs.snap.routes = append(bs.snap.routes, r)
	}
	var tolerate func(traffic.Key, error) bool
	if bs.starting() {
		tolerate = bs.unservable
	}
	if err := bs.b.loadPlugins(context.Background(), bs.cfg, bs.snap, bs.prev, bs.view(), tolerate); err != nil {
		return err
	}
	if err := bs.authorizable(); err != nil {
		return err
	}
	// Last: the traffic store takes the file's values only for a snapshot
	// that will be served.
	return bs.trafficState()
}

// authorizable refuses a route whose authorize policy no plugin of its
// chain can satisfy: with no plugin importing set_consumer or set_claims,
// nothing is ever established and every request would get 401.
func (bs *build) authorizable() error {
	for i, r := range bs.snap.routes {
		if r.authorize == nil {
			continue
		}
		r.authorizeAt = -1
		for j, l := range r.chain {
			if l.establishes {
				r.authorizeAt = j
			}
		}
		if r.authorizeAt >= 0 {
			continue
		}
		rc := &bs.cfg.Routes[i]
		return fmt.Errorf("%s:%d:%d: route %q: authorize: none of the route's plugins imports %s or %s, so none can establish who the caller is",
			bs.cfg.File, rc.Authorize.Pos.Line, rc.Authorize.Pos.Col, r.name, sdkabi.FuncSetConsumer, sdkabi.FuncSetClaims)
	}
	return nil
}

// trafficState gives the store the config's splits, switches and flags and
// compiles the effective state (run-time overrides the file has not since
// changed win) for the snapshot. A state the snapshot cannot serve (an
// override naming an upstream the config no longer has) rejects the config.
func (bs *build) trafficState() error {
	items, err := trafficItems(bs.cfg)
	if err != nil {
		return err
	}
	check := func(v traffic.View) error {
		tv, err := compileTraffic(bs.snap, v)
		if err != nil {
			return fmt.Errorf("traffic state: %w", err)
		}
		bs.snap.traffic.Store(tv)
		return nil
	}
	switch {
	case bs.b.candidate != nil: // a run-time change, which the store is checking
		return check(*bs.b.candidate)
	case bs.b.dryRun:
		return check(traffic.FileView(items))
	case !bs.starting():
		_, err = bs.b.traffic.SetFile(items, "config file "+bs.cfg.File, check)
		return err
	}
	if _, err = bs.b.traffic.SetFile(items, "config file "+bs.cfg.File, func(v traffic.View) error {
		return check(bs.servable(v, true))
	}); err != nil {
		return err
	}
	// End what the state file holds that this config cannot serve, each
	// audited with its reason (the others still to end are served at the
	// file's value meanwhile).
	for _, d := range bs.dropped {
		file, _ := bs.b.traffic.View().Get(d.key)
		if _, err := bs.b.traffic.Set(d.key, file.File, "gateway start: cannot serve it: "+d.reason.Error(), func(v traffic.View) error {
			return check(bs.servable(v, false))
		}); err != nil {
			return fmt.Errorf("traffic state: ending the run-time %s of %q: %w", d.key.Kind, d.key.Name, err)
		}
		bs.b.log.Warn("a run-time traffic change in the state file cannot be served by this config; it is ended",
			"kind", d.key.Kind, "name", d.key.Name, "reason", d.reason.Error())
	}
	return nil
}

// servable is v with each run-time override the snapshot cannot serve
// (tried one at a time over the file's values) back at the file's value,
// recorded in bs.dropped when record is set.
func (bs *build) servable(v traffic.View, record bool) traffic.View {
	out := traffic.View{Version: v.Version, Entries: slices.Clone(v.Entries)}
	for i, e := range v.Entries {
		if e.Source != traffic.FromRuntime || e.Kind == kindCanary {
			continue // canaries were tried when plugins loaded
		}
		try := traffic.View{Entries: slices.Clone(v.Entries)}
		for j := range try.Entries {
			if j != i {
				try.Entries[j].Value = try.Entries[j].File
			}
		}
		if _, err := compileTraffic(bs.snap, try); err != nil {
			if record {
				bs.unservable(e.Key, err)
			}
			out.Entries[i].Value = e.File
		}
	}
	return out
}

// view is the traffic state the build serves: a run-time change's
// candidate, or the store's.
func (bs *build) view() traffic.View {
	if bs.b.candidate != nil {
		return *bs.b.candidate
	}
	return bs.b.traffic.View()
}

// undo closes what this build started: its upstreams, caches, Redis
// connection and plugin bindings; what it carried over from prev stays.
func (bs *build) undo() {
	for _, m := range bs.created {
		m.close()
	}
	bs.b.discardParts(bs.snap, bs.prev)
}

// discard throws away a snapshot that was built but will not be served,
// keeping what it shares with prev.
func (b *builder) discard(snap, prev *snapshot) {
	retireUpstreams(snap, prev)
	b.discardParts(snap, prev)
}

// discardParts closes what snap made for itself besides upstreams: caches,
// the Redis connection, plugin bindings and modules.
func (b *builder) discardParts(snap, prev *snapshot) {
	for _, c := range snap.newCaches {
		c.Close()
	}
	if snap.redis != nil && (prev == nil || snap.redis != prev.redis) {
		snap.redis.Close()
	}
	b.retirePlugins(snap, prev)
}

// upstreams carries over every upstream whose config is unchanged (its
// pools, health and breakers with it) and starts the others.
func (bs *build) upstreams() error {
	cfg, snap := bs.cfg, bs.snap
	for i := range cfg.Upstreams {
		ucfg := cfg.Upstreams[i]
		if bs.prev != nil {
			if old, ok := bs.prev.upstreams[ucfg.Name]; ok && sameConfig(old.cfg, ucfg) {
				snap.upstreams[ucfg.Name] = old
				continue
			}
		}
		m, err := bs.b.startUpstream(ucfg)
		if err != nil {
			return fmt.Errorf("%s:%d:%d: upstream %q: %w", cfg.File, ucfg.Pos.Line, ucfg.Pos.Col, ucfg.Name, err)
		}
		bs.created = append(bs.created, m)
		snap.upstreams[ucfg.Name] = m
	}
	return nil
}

// redis carries over the Redis connection when its config is unchanged.
func (bs *build) redis() error {
	rc := bs.cfg.Redis
	if rc == nil {
		return nil
	}
	if bs.prev != nil && bs.prev.redis != nil && sameConfig(bs.prev.redis.cfg, *rc) {
		bs.snap.redis = bs.prev.redis
		return nil
	}
	var err error
	if bs.snap.redis, err = bs.b.openRedis(*rc); err != nil {
		return fmt.Errorf("%s:%d:%d: %w", bs.cfg.File, rc.Pos.Line, rc.Pos.Col, err)
	}
	return nil
}

// prevShadow is the route's shadow in the previous snapshot, nil without.
func (bs *build) prevShadow(route string) *routeShadow {
	if bs.prev != nil {
		for _, r := range bs.prev.routes {
			if r.name == route {
				return r.shadow
			}
		}
	}
	return nil
}

// route compiles one config route for the request path.
func (bs *build) route(rc *config.Route) (*route, error) {
	snap := bs.snap
	r := &route{
		name:      rc.Name,
		cfg:       rc,
		timeouts:  rc.Timeouts,
		retries:   rc.Retries,
		maxBody:   int64(rc.MaxBodyBytes),
		bodyLimit: snap.maxBody,
		svc:       bs.b.svc,
		metrics:   bs.b.metrics.Route(rc.Name),
		index:     len(snap.routes),
		traffic:   &snap.traffic,
		upstream:  rc.Upstream != "" || rc.Active != "" || len(rc.Split) > 0,
	}
	r.responseLimit = int64(cmp.Or(rc.MaxResponseBytes, bs.cfg.Listen.MaxResponseBytes))
	if r.maxBody > 0 {
		r.bodyLimit = r.maxBody
		snap.routeBodyLimits = true
	}
	if rc.Rewrite != nil {
		r.rewrite = rc.Rewrite.StripPrefix != "" || rc.Rewrite.Path != ""
		if rc.Rewrite.Host != "" {
			r.rewriteHost = []byte(rc.Rewrite.Host)
		}
	}
	var redis ratelimit.Store
	if snap.redis != nil {
		redis = snap.redis.Redis
	}
	var err error
	if r.limits, err = bs.b.buildLimits(rc, redis); err != nil {
		return nil, fmt.Errorf("%s:%d:%d: %w", bs.cfg.File, rc.Pos.Line, rc.Pos.Col, err)
	}
	if rc.Shadow != nil {
		if r.shadow, err = newRouteShadow(rc.Shadow, snap.upstreams[rc.Shadow.Upstream], bs.prevShadow(rc.Name)); err != nil {
			return nil, fmt.Errorf("%s:%d:%d: route %q: shadow: %w", bs.cfg.File, rc.Shadow.Pos.Line, rc.Shadow.Pos.Col, rc.Name, err)
		}
	}
	if a := rc.Authorize; a != nil {
		spec, err := a.Spec()
		if err == nil {
			r.authorize, err = authz.Compile(spec)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d:%d: route %q: authorize: %w", bs.cfg.File, a.Pos.Line, a.Pos.Col, rc.Name, err)
		}
	}
	if rc.Idempotency != nil && r.upstream {
		if r.idem, err = bs.routeIdempotency(rc); err != nil {
			return nil, fmt.Errorf("%s:%d:%d: %w", bs.cfg.File, rc.Idempotency.Pos.Line, rc.Idempotency.Pos.Col, err)
		}
	}
	if rc.Cache != nil && r.upstream {
		if r.cache, err = bs.b.routeCache(snap, bs.prev, rc); err != nil {
			return nil, err
		}
		r.fill = r.fillUpstream
	}
	return r, nil
}

// startUpstream creates an upstream and, with DNS discovery, resolves its
// targets once before it takes traffic, then keeps them fresh.
func (b *builder) startUpstream(cfg config.Upstream) (*managedUpstream, error) {
	up, err := proxy.New(cfg, b.log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &managedUpstream{Upstream: up, cfg: cfg, cancel: cancel}
	if cfg.Discovery != nil {
		res, err := discovery.NewDNS(cfg.Discovery.DNS, b.log)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("discovery: %w", err)
		}
		first, cancelFirst := context.WithTimeout(ctx, cfg.Discovery.DNS.Timeout.D()+time.Second)
		ts, err := res.Resolve(first)
		cancelFirst()
		if err != nil {
			// Not fatal: DNS may come up later. The upstream answers 503 until then.
			b.log.Warn("initial DNS discovery failed", "upstream", cfg.Name, "err", err)
		} else {
			up.SetTargets(toProxyTargets(ts))
		}
		go res.Run(ctx, func(ts []discovery.Target) {
			up.SetTargets(toProxyTargets(ts))
			b.log.Info("upstream targets updated by DNS", "upstream", cfg.Name, "targets", len(ts))
		})
	}
	up.Start()
	return m, nil
}

// accessLogger opens the access log destination named in the config.
func (b *builder) accessLogger(dest string) (*slog.Logger, error) {
	var w io.Writer
	switch dest {
	case "off":
		return nil, nil
	case "", "stdout":
		w = b.stdout
	case "stderr":
		w = b.stderr
	default:
		f, err := b.openAccessLog(dest)
		if err != nil {
			return nil, fmt.Errorf("log.access_log: %w", err)
		}
		w = f
	}
	return slog.New(slog.NewJSONHandler(w, nil)), nil
}
