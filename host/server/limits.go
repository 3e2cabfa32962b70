package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/idempotency"
	"github.com/wasmgate/wasmgate/host/ratelimit"
)

// limitGroup is the limits of a route that share a key and a store: they are
// decided together, atomically (a request one of them refuses is charged to
// none).
type limitGroup struct {
	id       string // route-scoped prefix of the store keys: "ROUTE\x00KEY\x00STORE"
	key      string // config key: client_ip, route, consumer, header:NAME, plugin
	header   []byte // for header:NAME
	store    ratelimit.Store
	limits   []ratelimit.Limit
	afterPlg bool // keyed by consumer: decided after the plugin chain
}

// Interface guard: the rate_limit host function charges a route's limits.
var _ abi.Limiter = (*routeLimits)(nil)

// routeLimits is a route's rate limits, compiled at snapshot build.
type routeLimits struct {
	route  string
	groups []*limitGroup
	byName map[string]*limitGroup // for the rate_limit host function
	policy []byte                 // the RateLimit-Policy header value, precomputed
	before bool                   // some group is decided before the plugin chain
	after  bool                   // some group is decided after it
	svc    *services
}

// buildLimits compiles a route's rate_limits.
func (b *builder) buildLimits(rc *config.Route, redis ratelimit.Store) (*routeLimits, error) {
	if len(rc.RateLimits) == 0 {
		return nil, nil
	}
	rl := &routeLimits{route: rc.Name, byName: map[string]*limitGroup{}, svc: b.svc}
	var all, applied []ratelimit.Limit
	for _, l := range rc.RateLimits {
		lim := ratelimit.Limit{Name: l.Name, Rate: l.Rate, Period: l.Period.D(), Burst: l.Burst}
		all = append(all, lim)
		if l.Key != "plugin" { // the gateway applies it to every request
			applied = append(applied, lim)
		}
		id := rc.Name + "\x00" + l.Key + "\x00" + l.Store
		if l.Key == "plugin" {
			id += "\x00" + l.Name // charged one by one, by name
		}
		var g *limitGroup
		for _, have := range rl.groups {
			if have.id == id {
				g = have
			}
		}
		if g == nil {
			// Without plugins nobody names a consumer: the limit counts
			// per client IP, before anything else.
			g = &limitGroup{id: id, key: l.Key, store: b.localLimits, afterPlg: l.Key == "consumer" && len(rc.Plugins) > 0}
			if name, ok := strings.CutPrefix(l.Key, "header:"); ok {
				g.header = []byte(name)
			}
			if l.Store == "redis" && redis != nil {
				g.store = redis
			}
			rl.groups = append(rl.groups, g)
			switch {
			case l.Key == "plugin":
			case g.afterPlg:
				rl.after = true
			default:
				rl.before = true
			}
		}
		g.limits = append(g.limits, lim)
		rl.byName[l.Name] = g
	}
	if err := ratelimit.ValidateLimits(all); err != nil {
		return nil, fmt.Errorf("route %q: rate_limits: %w", rc.Name, err)
	}
	if len(applied) > 0 {
		rl.policy = ratelimit.AppendPolicy(nil, applied)
	}
	return rl, nil
}

// fingerprint identifies the limits a plugin binding sees: a binding is
// rebuilt when they change.
func (rl *routeLimits) fingerprint() string {
	if rl == nil {
		return ""
	}
	var b strings.Builder
	for _, g := range rl.groups {
		fmt.Fprintf(&b, "%q:%p:%+v;", g.id, g.store, g.limits)
	}
	return b.String()
}

// limitState is a request's rate limit scratch space, pooled with it.
type limitState struct {
	decision ratelimit.Decision
	subject  []byte
	header   []byte // the RateLimit header of the tightest decision so far
	tightest int64  // its smallest remaining quota; -1: none yet
	// afterDone: the consumer-keyed limits were decided.
	afterDone bool
}

func (ls *limitState) reset() {
	ls.header = ls.header[:0]
	ls.tightest = -1
	ls.afterDone = false
}

// note keeps the RateLimit header of the decision closest to exhaustion.
func (ls *limitState) note(g *limitGroup, d *ratelimit.Decision) {
	low := int64(-1)
	for _, st := range d.States {
		if low < 0 || st.Remaining < low {
			low = st.Remaining
		}
	}
	if !d.Allowed || ls.tightest < 0 || low < ls.tightest {
		ls.tightest = low
		ls.header = ratelimit.AppendRateLimit(ls.header[:0], g.limits, d)
	}
}

// Charge implements abi.Limiter for the route's plugins. The plugin names
// the subject the way the gateway keys the limit (a consumer id, a header
// value, a client IP; nothing for key: route), so it consults and charges
// the very quota the gateway applies. A limit is decided with the others
// of its group (same key and store), all charged or none.
func (rl *routeLimits) Charge(name, key []byte, cost int64) (allowed bool, remaining int64, retryAfter time.Duration, ok bool) {
	g := rl.byName[string(name)]
	if g == nil {
		return false, 0, 0, false
	}
	subject := g.id + "\x00"
	switch {
	case g.key == "route":
	case g.key == "consumer":
		subject += "c:" + string(key)
	case g.header != nil:
		subject += "h:" + string(key)
	case g.key == "client_ip":
		subject += "ip:" + string(key)
	default: // plugin
		subject += "p:" + string(key)
	}
	var d ratelimit.Decision
	if err := g.store.Decide(context.Background(), subject, g.limits, cost, &d); err != nil {
		rl.svc.log.Error("rate limit decision failed", "route", rl.route, "err", err)
		return true, 0, 0, true
	}
	if d.Fallback {
		rl.svc.metrics.RedisFallback()
	}
	remaining = -1
	for i, st := range d.States {
		if g.limits[i].Name == string(name) {
			remaining = st.Remaining
		}
	}
	if d.RetryAfter%time.Millisecond != 0 && d.RetryAfter < ratelimit.InfDuration {
		d.RetryAfter = d.RetryAfter.Truncate(time.Millisecond) + time.Millisecond // never early
	}
	return d.Allowed, max(remaining, 0), d.RetryAfter, true
}

// redisStore is the Redis connection of a config, kept across reloads that
// leave the redis section unchanged.
type redisStore struct {
	*ratelimit.Redis
	idem  *idempotency.Redis // the idempotency keys' store on the same server
	share *cacheShare        // cache purges shared with the other gateways
	cfg   config.Redis
}

// Close closes the limiter's, the idempotency store's and the purge
// channel's connections.
func (r *redisStore) Close() {
	_ = r.Redis.Close()
	_ = r.idem.Close()
	r.share.Close()
}

// openRedis connects the limiter to the configured Redis; decisions fall
// back onto the local limiter while it fails.
func (b *builder) openRedis(cfg config.Redis) (*redisStore, error) {
	r, err := ratelimit.NewRedis(ratelimit.RedisOptions{
		Addr:          cfg.Address,
		Username:      cfg.Username,
		Password:      cfg.Password,
		DB:            cfg.DB,
		Prefix:        cfg.KeyPrefix + "rl:",
		Timeout:       cfg.Timeout.D(),
		ProbeInterval: cfg.ProbeInterval.D(),
		Fallback:      b.localLimits,
		OnFallback: func(err error) {
			b.metrics.RedisUp(false)
			b.log.Warn("redis failing: rate limits fall back onto this instance's local limiter", "redis", cfg.Address, "err", err)
		},
		OnRecover: func() {
			b.metrics.RedisUp(true)
			b.log.Info("redis is back: rate limits are shared again", "redis", cfg.Address)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", cfg.Address, err)
	}
	idem, err := idempotency.NewRedis(idempotency.RedisOptions{
		Addr:     cfg.Address,
		Username: cfg.Username,
		Password: cfg.Password,
		DB:       cfg.DB,
		Prefix:   cfg.KeyPrefix + "idem:",
		// A claim waits longer than a rate limit decision: the request
		// it guards waits for it either way.
		Timeout: max(cfg.Timeout.D(), 200*time.Millisecond),
	})
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("redis %s: %w", cfg.Address, err)
	}
	b.metrics.RedisUp(true)
	share := newCacheShare(cfg, b.svc.current, b.log)
	return &redisStore{Redis: r, idem: idem, share: share, cfg: cfg}, nil
}
