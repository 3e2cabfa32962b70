package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/proxy"
)

// cachePolicy converts a route's cache config.
func cachePolicy(c *config.Cache) cache.Policy {
	return cache.Policy{
		MaxBytes:             int64(c.MaxBytes),
		MaxObjectBytes:       int64(c.MaxObjectBytes),
		DefaultTTL:           c.DefaultTTL.D(),
		MaxTTL:               c.MaxTTL.D(),
		Statuses:             c.Statuses,
		StaleWhileRevalidate: c.StaleWhileRevalidate.D(),
		StaleIfError:         c.StaleIfError.D(),
		StoreSetCookie:       c.StoreSetCookie,
		StatusHeader:         c.StatusHeader,
		Key: cache.KeySpec{
			Headers:     c.Key.Headers,
			Query:       c.Key.Query,
			IgnoreQuery: c.Key.IgnoreQuery,
			Cookies:     c.Key.Cookies,
		},
	}
}

// routeCache gives a cached route its cache: the one the previous snapshot
// had for the route, if the route still fetches from the same place
// (upstream, split, rewrite), with its contents (the new policy, checked
// here, applies at commit); otherwise a new one.
func (s *Server) routeCache(snap, prev *snapshot, rc *config.Route) (*cache.Cache, error) {
	p := cachePolicy(rc.Cache)
	at := func(err error) error {
		return fmt.Errorf("%s:%d:%d: route %q: cache: %w", snap.cfg.File, rc.Cache.Pos.Line, rc.Cache.Pos.Col, rc.Name, err)
	}
	if prev != nil {
		if c := prev.caches[rc.Name]; c != nil && sameSource(prev.routeConfig(rc.Name), rc) {
			if err := p.Validate(); err != nil {
				return nil, at(err)
			}
			snap.caches[rc.Name] = c
			snap.cachePolicies[rc.Name] = p
			return c, nil
		}
	}
	c, err := cache.New(p)
	if err != nil {
		return nil, at(err)
	}
	snap.caches[rc.Name] = c
	snap.newCaches = append(snap.newCaches, c)
	return c, nil
}

// sameSource reports whether two configs of a route fetch the same
// responses: same upstream or split, same rewrite. A cache is kept across a
// reload only then; a route pointed elsewhere starts empty.
func sameSource(old *config.Route, rc *config.Route) bool {
	return old != nil && old.Upstream == rc.Upstream && sameConfig(old.Split, rc.Split) && sameConfig(old.Rewrite, rc.Rewrite)
}

// routeConfig returns the config of the snapshot's route called name.
func (snap *snapshot) routeConfig(name string) *config.Route {
	for _, r := range snap.routes {
		if r.name == name {
			return r.cfg
		}
	}
	return nil
}

// commitCaches applies the new policies of carried-over caches and closes
// the caches of routes the new snapshot dropped.
// With next nil (shutdown) it closes them all.
func (s *Server) commitCaches(old, next *snapshot) {
	var policies map[string]cache.Policy
	if next != nil {
		policies = next.cachePolicies
	}
	for name, p := range policies {
		if err := next.caches[name].Update(p); err != nil {
			s.log.Error("cache policy update failed; the route keeps its previous cache settings", "route", name, "err", err)
		}
	}
	if old == nil {
		return
	}
	for name, c := range old.caches {
		if next == nil || next.caches[name] != c {
			c.Close()
		}
	}
}

// fetcher returns the function a route's cache fills through: the route's
// upstream, with its retries and timeouts, counted like any proxied request.
// A fill request is the cache's own, built from the key alone: it serves
// every client alike, so it carries no client's forwarding chain, only the
// proto and host the key names, and a trace of its own.
func (s *Server) fetcher(rt *route) cache.Fetcher {
	return func(req *fasthttp.Request, resp *fasthttp.Response) error {
		req.Header.SetCanonical(keyXForwardedProto, protoHTTP)
		req.Header.SetCanonical(keyXForwardedHost, req.Header.Host())
		var tp [64]byte
		req.Header.SetCanonical(keyTraceparent, appendTraceparent(tp[:0], nil))
		return s.fetchUpstream(rt, req, resp, nil)
	}
}

// passUpstream is the cache's Pass fetcher of a request (bound once per
// pooled requestState): a bypassed request is the client's own, prepared
// like any proxied request only now, so that a cache hit never pays for
// forwarding headers and a trace it does not send.
func (st *requestState) passUpstream(req *fasthttp.Request, resp *fasthttp.Response) error {
	st.srv.prepareForwarding(req, st)
	return st.srv.fetchUpstream(st.rt, req, resp, st.scope.Client)
}

// fetchUpstream sends req through the route's upstream: the host rewrite
// last (the cache key and X-Forwarded-Host keep the client's host), then
// the exchange.
func (s *Server) fetchUpstream(rt *route, req *fasthttp.Request, resp *fasthttp.Response, clientIP []byte) error {
	if rt.rewriteHst != nil {
		req.Header.SetHostBytes(rt.rewriteHst)
		req.URI().SetHostBytes(rt.rewriteHst)
	}
	up := rt.pick()
	x := proxy.Exchange{Req: req, Resp: resp, ClientIP: clientIP, Timeouts: rt.timeouts, Retries: rt.retries}
	err := up.Do(&x)
	s.metrics.Retries(up.Name(), x.Attempts-1)
	if err != nil {
		kind := "other"
		var perr *proxy.Error
		if errors.As(err, &perr) {
			kind = perr.Kind.String()
		}
		s.metrics.UpstreamError(up.Name(), kind)
		return err
	}
	proxy.StripHopByHopResponse(&resp.Header)
	return nil
}

var (
	keyXForwardedProto = []byte("X-Forwarded-Proto")
	keyXForwardedHost  = []byte("X-Forwarded-Host")
)

// serveCached answers a cached route's request from its cache, which goes
// upstream (through the route's fetcher) when it must.
func (s *Server) serveCached(ctx *fasthttp.RequestCtx, st *requestState, snap *snapshot, rt *route) {
	var key []byte
	if len(st.scope.CacheKey) > 0 {
		key = st.scope.CacheKey
	}
	st.srv, st.rt = s, rt
	status, err := rt.cache.Serve(&ctx.Request, &ctx.Response, key, cache.Fetchers{Fill: rt.fetch, Pass: st.pass})
	st.srv, st.rt = nil, nil
	st.cacheState = status.String()
	rt.metrics.CacheServed(st.cacheState)
	if err != nil {
		code, kind := fasthttp.StatusBadGateway, "other"
		var perr *proxy.Error
		if errors.As(err, &perr) {
			code, kind = perr.Status(), perr.Kind.String()
		}
		ctx.Response.Reset()
		if len(rt.chain) > 0 {
			s.releaseChain(st, rt)
		}
		s.fail(ctx, st, snap, rt, code, "upstream_"+kind, "the upstream did not answer: "+kind)
		return
	}
	if len(rt.chain) > 0 {
		s.runResponseChain(ctx, st, snap, rt)
	}
	ctx.Response.Header.SetCanonical(keyRequestID, st.requestID)
	s.setLimitHeaders(ctx, st, rt)
	s.finish(ctx, st, snap, rt, "", "")
}

// cacheStats reads every cache of the running snapshot for the metrics.
func (s *Server) cacheStats() []metrics.CacheStats {
	snap := s.snap.Load()
	if snap == nil {
		return nil
	}
	out := make([]metrics.CacheStats, 0, len(snap.caches))
	for name, c := range snap.caches {
		st := c.Stats()
		out = append(out, metrics.CacheStats{
			Route: name, Entries: st.Entries, Bytes: st.Bytes, MaxBytes: st.MaxBytes, Evictions: st.Evictions,
			Hits: st.Hits, Lookups: st.Hits + st.Misses + st.Stale + st.Revalidated,
		})
	}
	return out
}

// purgeRequest is the body of POST /cache/purge: exactly one of key,
// prefix and surrogate_key; route narrows it to one route's cache.
type purgeRequest struct {
	Route        string `json:"route"`
	Key          string `json:"key"`
	Prefix       string `json:"prefix"`
	SurrogateKey string `json:"surrogate_key"`
}

// cacheEndpoint serves the cache admin API: GET /cache lists the caches
// (and, with ?route=NAME&prefix=P, their keys); POST /cache/purge purges.
func (s *Server) cacheEndpoint(ctx *fasthttp.RequestCtx) {
	snap := s.snap.Load()
	switch string(ctx.Path()) {
	case "/cache":
		args := ctx.QueryArgs()
		if name := string(args.Peek("route")); name != "" {
			c := snap.caches[name]
			if c == nil {
				admin.WriteJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not_found", "message": "no cached route " + strconv.Quote(name)})
				return
			}
			limit := 1000
			if n, err := strconv.Atoi(string(args.Peek("limit"))); err == nil && n > 0 {
				limit = min(n, 100000)
			}
			admin.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"route": name, "stats": c.Stats(), "keys": c.Keys(string(args.Peek("prefix")), limit)})
			return
		}
		type view struct {
			Route string      `json:"route"`
			Stats cache.Stats `json:"stats"`
		}
		views := make([]view, 0, len(snap.caches))
		for name, c := range snap.caches {
			views = append(views, view{name, c.Stats()})
		}
		sort.Slice(views, func(i, j int) bool { return views[i].Route < views[j].Route })
		admin.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"caches": views})
	case "/cache/purge":
		var req purgeRequest
		if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
			admin.WriteJSON(ctx, fasthttp.StatusBadRequest, map[string]string{"error": "bad_request", "message": "body: " + err.Error()})
			return
		}
		n := 0
		for _, v := range []string{req.Key, req.Prefix, req.SurrogateKey} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			admin.WriteJSON(ctx, fasthttp.StatusBadRequest, map[string]string{"error": "bad_request", "message": "give exactly one of key, prefix and surrogate_key"})
			return
		}
		if req.Route != "" && snap.caches[req.Route] == nil {
			admin.WriteJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not_found", "message": "no cached route " + strconv.Quote(req.Route)})
			return
		}
		purged := 0
		for name, c := range snap.caches {
			if req.Route != "" && name != req.Route {
				continue
			}
			switch {
			case req.Key != "":
				purged += c.PurgeKey(req.Key)
			case req.Prefix != "":
				purged += c.PurgePrefix(req.Prefix)
			default:
				purged += c.PurgeSurrogate(req.SurrogateKey)
			}
		}
		s.log.Info("cache purged", "route", req.Route, "key", req.Key, "prefix", req.Prefix, "surrogate_key", req.SurrogateKey, "entries", purged)
		admin.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"purged": purged})
	default:
		admin.WriteJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error": "not_found"})
	}
}
