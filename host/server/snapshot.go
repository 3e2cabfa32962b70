package server

import (
	"context"
	"log/slog"
	"net/netip"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/wasmgate/wasmgate/host/authz"

	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/discovery"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/proxy"
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
	maxBody   int64 // listen.max_body_bytes
	// maxResponse is listen.max_response_bytes.
	maxResponse int64
	paths       pathPolicy // listen.escaped_slashes and path_parameters
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
	// traffic is where routes send requests, segments and flags: replaced
	// by a run-time change (admin API) without a new snapshot.
	traffic atomic.Pointer[trafficView]

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
	name      string
	cfg       *config.Route
	index     int                          // in snapshot.routes and trafficView.routes
	traffic   *atomic.Pointer[trafficView] // the snapshot's
	upstream  bool                         // has an upstream (else its plugins answer)
	shadow    *routeShadow                 // nil: no shadow traffic
	timeouts  config.Timeouts
	retries   *config.Retries
	maxBody   int64 // the route's max_body_bytes; 0: none of its own
	bodyLimit int64 // the limit its requests get: maxBody or listen's
	// responseLimit bounds the upstream response bodies it reads: its
	// max_response_bytes or listen's.
	responseLimit int64
	rewrite       bool
	rewriteHost   []byte
	svc           *services
	metrics       *metrics.Route
	chain         []*link // the plugin chain
	cache         *cache.Cache
	fill          cache.Fetcher     // how the cache fills itself: rt.fillUpstream
	limits        *routeLimits      // nil: no rate limits
	idem          *routeIdempotency // nil: no idempotency keys
	authorize     *authz.Policy     // nil: anyone the plugins let through
	// authorizeAt is the index in chain of the last plugin that can
	// establish the caller: the policy is decided right after it.
	authorizeAt int
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
