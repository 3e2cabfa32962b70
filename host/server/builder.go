package server

import (
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
	"syscall"
	"time"

	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/discovery"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/ratelimit"
	"github.com/wasmgate/wasmgate/host/router"
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
	history     map[string]*pluginHistory // kept plugin versions, by plugin name
	stdout      *bufferedWriter           // the access log's "stdout" and "stderr"
	stderr      *bufferedWriter
	logFiles    map[string]*bufferedWriter // access log files by path, kept across reloads
	dryRun      bool                       // Validate: build, serve nothing, write nothing
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
	snap := &snapshot{
		svc:       b.svc,
		loadedAt:  time.Now(),
		cfg:       cfg,
		table:     table,
		upstreams: make(map[string]*managedUpstream, len(cfg.Upstreams)),
		maxBody:   int64(cfg.Listen.MaxBodyBytes),
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
	snap.accessLog, err = b.accessLogger(cfg.Log.AccessLog)
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
		b.retirePlugins(snap, prev)
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
		m, err := b.startUpstream(ucfg)
		if err != nil {
			return fail(fmt.Errorf("%s:%d:%d: upstream %q: %w", cfg.File, ucfg.Pos.Line, ucfg.Pos.Col, ucfg.Name, err))
		}
		created = append(created, m)
		snap.upstreams[ucfg.Name] = m
	}

	if cfg.Redis != nil {
		if prev != nil && prev.redis != nil && sameConfig(prev.redis.cfg, *cfg.Redis) {
			snap.redis = prev.redis
		} else if snap.redis, err = b.openRedis(*cfg.Redis); err != nil {
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
			svc:      b.svc,
			metrics:  b.metrics.Route(rc.Name),
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
		if r.limits, err = b.buildLimits(rc, redis); err != nil {
			return fail(fmt.Errorf("%s:%d:%d: %w", cfg.File, rc.Pos.Line, rc.Pos.Col, err))
		}
		if rc.Cache != nil && len(r.targets) > 0 {
			if r.cache, err = b.routeCache(snap, prev, rc); err != nil {
				return fail(err)
			}
			r.fill = r.fillUpstream
		}
		snap.routes = append(snap.routes, r)
	}
	if err := b.loadPlugins(context.Background(), cfg, snap, prev); err != nil {
		return fail(err)
	}
	return snap, nil
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
