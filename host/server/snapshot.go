package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/discovery"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/ratelimit"
	"github.com/wasmgate/wasmgate/host/router"
	"github.com/wasmgate/wasmgate/host/wasm"
)

// services is what every request of every snapshot uses and no reload
// replaces: the metrics, the process log, and the pointer to the running
// snapshot (a request that finds its snapshot retired matches again on the
// one in force).
type services struct {
	metrics *metrics.Metrics
	log     *slog.Logger
	current *atomic.Pointer[snapshot]
}

// snapshot is one immutable generation of the running config: everything a
// request needs, resolved at load time. A reload builds a new one and swaps
// it in with one atomic store; requests finish on the one they started with.
type snapshot struct {
	svc       *services
	version   uint64
	loadedAt  time.Time
	cfg       *config.Config
	table     *router.Table
	routes    []*route
	upstreams map[string]*managedUpstream
	trusted   []netip.Prefix
	maxBody   int64      // listen.max_body_bytes
	paths     pathPolicy // listen.escaped_slashes and path_parameters
	// routeBodyLimits: some route has a max_body_bytes of its own, so the
	// limit of a request depends on its route.
	routeBodyLimits bool
	accessLog       *slog.Logger // nil when the access log is off
	noRoute         *metrics.Route
	modules         []*wasm.Module           // this snapshot's loads of plugin modules
	bindings        map[string]*wasm.Binding // plugin bindings by link key
	plugins         map[string]*loadedPlugin // by plugin name

	// Caches by route name. A reload keeps a route's cache (its contents
	// survive); the new policy is applied at commit, so that a rejected
	// reload changes nothing.
	caches        map[string]*cache.Cache
	cachePolicies map[string]cache.Policy // policies to apply at commit to caches carried over
	newCaches     []*cache.Cache          // made by this build: closed if it fails
	redis         *redisStore             // nil without a redis section

	// Requests on routes with plugins hold a reference, so that the plugin
	// bindings of a retired snapshot are closed only once the requests
	// that started on it are done (a closed binding refuses instances).
	refs     atomic.Int64
	retiring atomic.Bool
}

// escapedSlashes maps listen.escaped_slashes (validated by config) to the policy.
var escapedSlashes = map[string]httpsyntax.EscapedSlashes{
	"":         httpsyntax.RejectEscapedSlashes,
	"reject":   httpsyntax.RejectEscapedSlashes,
	"unescape": httpsyntax.UnescapeSlashes,
	"keep":     httpsyntax.KeepEscapedSlashes,
}

// acquire takes a reference on snap for a request with plugins; false when
// the snapshot is being retired (the caller starts over on the new one).
func (snap *snapshot) acquire() bool {
	snap.refs.Add(1)
	if snap.retiring.Load() {
		snap.refs.Add(-1)
		return false
	}
	return true
}

func (snap *snapshot) release() { snap.refs.Add(-1) }

// route is a config route compiled for the hot path.
type route struct {
	name        string
	cfg         *config.Route
	targets     []weightedUpstream // one entry without a split
	totalW      int
	timeouts    config.Timeouts
	retries     *config.Retries
	maxBody     int64 // the route's max_body_bytes; 0: none of its own
	bodyLimit   int64 // the limit its requests get: maxBody or listen's
	rewrite     bool
	rewriteHost []byte
	svc         *services
	metrics     *metrics.Route
	chain       []*link // the plugin chain
	cache       *cache.Cache
	fill        cache.Fetcher // how the cache fills itself: rt.fillUpstream
	limits      *routeLimits  // nil: no rate limits
}

type weightedUpstream struct {
	up     *managedUpstream
	cumulW int // cumulative weight, for a binary-search-free linear pick over a few entries
}

// pick chooses the upstream of a request: the only one, or by weight.
func (r *route) pick() *managedUpstream {
	if len(r.targets) == 1 {
		return r.targets[0].up
	}
	n := rand.IntN(r.totalW)
	for _, t := range r.targets {
		if n < t.cumulW {
			return t.up
		}
	}
	return r.targets[len(r.targets)-1].up
}

// managedUpstream is a proxy.Upstream with the discovery loop that feeds it.
// It outlives snapshots: a reload that leaves an upstream's config unchanged
// keeps it, and with it its connection pools, health and counters.
type managedUpstream struct {
	*proxy.Upstream
	cfg    config.Upstream
	cancel context.CancelFunc
}

func (m *managedUpstream) close() {
	m.cancel()
	m.Upstream.Close()
}

// buildSnapshot compiles cfg into a snapshot, reusing the upstreams of prev
// whose config did not change. Nothing is torn down here: the caller retires
// the upstreams prev had that the new snapshot does not use, after the swap.
func (s *Server) buildSnapshot(cfg *config.Config, table *router.Table, prev *snapshot) (*snapshot, error) {
	snap := &snapshot{
		svc:       s.svc,
		loadedAt:  time.Now(),
		cfg:       cfg,
		table:     table,
		upstreams: make(map[string]*managedUpstream, len(cfg.Upstreams)),
		maxBody:   int64(cfg.Listen.MaxBodyBytes),
		paths: pathPolicy{
			slashes:      escapedSlashes[cfg.Listen.EscapedSlashes],
			rejectParams: cfg.Listen.PathParameters != "keep",
		},
		noRoute:  s.metrics.Route(metrics.NoRoute),
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
	snap.accessLog, err = s.accessLogger(cfg.Log.AccessLog)
	if err != nil {
		return nil, err
	}

	var created []*managedUpstream
	fail := func(err error) (*snapshot, error) {
		for _, m := range created {
			m.close()
		}
		for _, c := range snap.newCaches {
			c.Close()
		}
		if snap.redis != nil && (prev == nil || snap.redis != prev.redis) {
			snap.redis.Close()
		}
		// Bindings made for this attempt go; those carried over from prev stay.
		s.retirePlugins(snap, prev)
		return nil, err
	}
	for i := range cfg.Upstreams {
		ucfg := cfg.Upstreams[i]
		if prev != nil {
			if old, ok := prev.upstreams[ucfg.Name]; ok && sameConfig(old.cfg, ucfg) {
				snap.upstreams[ucfg.Name] = old
				continue
			}
		}
		m, err := s.startUpstream(ucfg)
		if err != nil {
			return fail(fmt.Errorf("%s:%d:%d: upstream %q: %w", cfg.File, ucfg.Pos.Line, ucfg.Pos.Col, ucfg.Name, err))
		}
		created = append(created, m)
		snap.upstreams[ucfg.Name] = m
	}

	if cfg.Redis != nil {
		if prev != nil && prev.redis != nil && sameConfig(prev.redis.cfg, *cfg.Redis) {
			snap.redis = prev.redis
		} else if snap.redis, err = s.openRedis(*cfg.Redis); err != nil {
			return fail(fmt.Errorf("%s:%d:%d: %w", cfg.File, cfg.Redis.Pos.Line, cfg.Redis.Pos.Col, err))
		}
	}
	var redis ratelimit.Store
	if snap.redis != nil {
		redis = snap.redis.Redis
	}
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		r := &route{
			name:     rc.Name,
			cfg:      rc,
			timeouts: rc.Timeouts,
			retries:  rc.Retries,
			maxBody:  int64(rc.MaxBodyBytes),
			svc:      s.svc,
			metrics:  s.metrics.Route(rc.Name),
		}
		r.bodyLimit = snap.maxBody
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
		if rc.Upstream != "" {
			r.targets = []weightedUpstream{{up: snap.upstreams[rc.Upstream], cumulW: 1}}
			r.totalW = 1
		}
		for _, sp := range rc.Split {
			r.totalW += sp.Weight
			r.targets = append(r.targets, weightedUpstream{up: snap.upstreams[sp.Upstream], cumulW: r.totalW})
		}
		for _, t := range r.targets {
			if t.up == nil { // config validation rules this out; guard against a nil dereference anyway
				return fail(fmt.Errorf("route %q: unknown upstream", rc.Name))
			}
		}
		if r.limits, err = s.buildLimits(rc, redis); err != nil {
			return fail(fmt.Errorf("%s:%d:%d: %w", cfg.File, rc.Pos.Line, rc.Pos.Col, err))
		}
		if rc.Cache != nil && len(r.targets) > 0 {
			if r.cache, err = s.routeCache(snap, prev, rc); err != nil {
				return fail(err)
			}
			r.fill = r.fillUpstream
		}
		snap.routes = append(snap.routes, r)
	}
	if err := s.loadPlugins(context.Background(), cfg, snap, prev); err != nil {
		return fail(err)
	}
	return snap, nil
}

// startUpstream creates an upstream and, with DNS discovery, resolves its
// targets once before it takes traffic, then keeps them fresh.
func (s *Server) startUpstream(cfg config.Upstream) (*managedUpstream, error) {
	up, err := proxy.New(cfg, s.log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &managedUpstream{Upstream: up, cfg: cfg, cancel: cancel}
	if cfg.Discovery != nil {
		res, err := discovery.NewDNS(cfg.Discovery.DNS, s.log)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("discovery: %w", err)
		}
		first, cancelFirst := context.WithTimeout(ctx, cfg.Discovery.DNS.Timeout.D()+time.Second)
		ts, err := res.Resolve(first)
		cancelFirst()
		if err != nil {
			// Not fatal: DNS may come up later. The upstream answers 503 until then.
			s.log.Warn("initial DNS discovery failed", "upstream", cfg.Name, "err", err)
		} else {
			up.SetTargets(toProxyTargets(ts))
		}
		go res.Run(ctx, func(ts []discovery.Target) {
			up.SetTargets(toProxyTargets(ts))
			s.log.Info("upstream targets updated by DNS", "upstream", cfg.Name, "targets", len(ts))
		})
	}
	up.Start()
	return m, nil
}

func toProxyTargets(ts []discovery.Target) []proxy.Target {
	out := make([]proxy.Target, len(ts))
	for i, t := range ts {
		out[i] = proxy.Target{Address: t.Address, Weight: t.Weight}
	}
	return out
}

// retireUpstreams closes the upstreams of old that next no longer uses.
// Requests still in flight on them complete: Close only stops health checks,
// discovery and idle connections.
func retireUpstreams(old, next *snapshot) {
	if old == nil {
		return
	}
	for name, m := range old.upstreams {
		if next == nil || next.upstreams[name] != m {
			m.close()
		}
	}
}

// sameConfig reports whether two config values are equal, ignoring where
// they were written in the file (a config edit that shifts lines must not
// look like a change).
func sameConfig(a, b any) bool {
	return equalIgnoringPos(reflect.ValueOf(a), reflect.ValueOf(b))
}

var (
	posType       = reflect.TypeOf(config.Pos{})
	positionsType = reflect.TypeOf(config.Positions{})
)

func equalIgnoringPos(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalIgnoringPos(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if t := a.Type().Field(i).Type; t == posType || t == positionsType {
				continue
			}
			if !equalIgnoringPos(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equalIgnoringPos(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(a.Interface(), b.Interface())
	}
}

// accessLogger opens the access log destination named in the config.
func (s *Server) accessLogger(dest string) (*slog.Logger, error) {
	var w io.Writer
	switch dest {
	case "off":
		return nil, nil
	case "", "stdout":
		w = s.stdout
	case "stderr":
		w = s.stderr
	default:
		f, err := s.openAccessLog(dest)
		if err != nil {
			return nil, fmt.Errorf("log.access_log: %w", err)
		}
		w = f
	}
	return slog.New(slog.NewJSONHandler(w, nil)), nil
}
