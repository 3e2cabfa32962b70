package server

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/cache"
)

// cacheEndpoints are the admin endpoints of the response cache: what is
// stored, and purges.
func (s *Server) cacheEndpoints() []admin.Endpoint {
	return []admin.Endpoint{
		{Method: "GET", Path: "/cache", Handler: s.cacheList},
		{Method: "POST", Path: "/cache/purge", Handler: admin.JSON(s.cachePurge)},
	}
}

// CacheView is one route's cache in GET /cache.
type CacheView struct {
	Route string      `json:"route"`
	Stats cache.Stats `json:"stats"`
}

// CacheKeysView is the answer of GET /cache?route=R: that cache and its keys.
type CacheKeysView struct {
	Route string      `json:"route"`
	Stats cache.Stats `json:"stats"`
	Keys  []string    `json:"keys"`
}

// CachesView is the answer of GET /cache.
type CachesView struct {
	Caches []CacheView `json:"caches"`
}

// cacheList serves GET /cache: every route's cache (CachesView), or with
// ?route=NAME[&prefix=P&limit=N] that one and its keys (CacheKeysView).
func (s *Server) cacheList(ctx *fasthttp.RequestCtx) {
	snap := s.snap.Load()
	args := ctx.QueryArgs()
	if name := string(args.Peek("route")); name != "" {
		c := snap.caches[name]
		if c == nil {
			admin.WriteJSON(ctx, fasthttp.StatusNotFound, &admin.Error{Code: "not_found", Message: "no cached route " + strconv.Quote(name)})
			return
		}
		limit := 1000
		if n, err := strconv.Atoi(string(args.Peek("limit"))); err == nil && n > 0 {
			limit = min(n, 100000)
		}
		keys := c.Keys(string(args.Peek("prefix")), limit)
		if keys == nil {
			keys = []string{}
		}
		admin.WriteJSON(ctx, fasthttp.StatusOK, CacheKeysView{Route: name, Stats: c.Stats(), Keys: keys})
		return
	}
	out := CachesView{Caches: make([]CacheView, 0, len(snap.caches))}
	for name, c := range snap.caches {
		out.Caches = append(out.Caches, CacheView{Route: name, Stats: c.Stats()})
	}
	sort.Slice(out.Caches, func(i, j int) bool { return out.Caches[i].Route < out.Caches[j].Route })
	admin.WriteJSON(ctx, fasthttp.StatusOK, out)
}

// purgeRequest is the body of POST /cache/purge: exactly one of key,
// prefix and surrogate_key; route narrows it to one route's cache.
type purgeRequest struct {
	Route        string `json:"route"`
	Key          string `json:"key"`
	Prefix       string `json:"prefix"`
	SurrogateKey string `json:"surrogate_key"`
}

// PurgeResult is the answer of POST /cache/purge.
type PurgeResult struct {
	Purged int `json:"purged"`
	// Gateways is how many other gateways on the shared Redis received
	// the purge; absent without a redis section.
	Gateways *int64 `json:"gateways,omitempty"`
}

// cachePurge serves POST /cache/purge.
func (s *Server) cachePurge(ctx *fasthttp.RequestCtx) (PurgeResult, error) {
	snap := s.snap.Load()
	var req purgeRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		return PurgeResult{}, &admin.Error{Status: fasthttp.StatusBadRequest, Code: "bad_request", Message: "body: " + err.Error()}
	}
	n := 0
	for _, v := range []string{req.Key, req.Prefix, req.SurrogateKey} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return PurgeResult{}, &admin.Error{Status: fasthttp.StatusBadRequest, Code: "bad_request", Message: "give exactly one of key, prefix and surrogate_key"}
	}
	if req.Route != "" && snap.caches[req.Route] == nil {
		return PurgeResult{}, &admin.Error{Status: fasthttp.StatusNotFound, Code: "not_found", Message: "no cached route " + strconv.Quote(req.Route)}
	}
	purged := purgeCaches(snap, req)
	s.log.Info("cache purged", "route", req.Route, "key", req.Key, "prefix", req.Prefix, "surrogate_key", req.SurrogateKey, "entries", purged)
	res := PurgeResult{Purged: purged}
	if snap.redis != nil {
		n, err := snap.redis.share.publish(ctx, req)
		if err != nil {
			return PurgeResult{}, &admin.Error{Status: fasthttp.StatusBadGateway, Code: "purge_not_shared",
				Message: fmt.Sprintf("purged %d entries here, but the other gateways were not told: %v", purged, err)}
		}
		res.Gateways = &n
	}
	return res, nil
}

// purgeCaches applies a purge to snap's caches (req.Route's, or all) and
// returns the entries purged. An empty prefix purges everything.
func purgeCaches(snap *snapshot, req purgeRequest) int {
	purged := 0
	for name, c := range snap.caches {
		if req.Route != "" && name != req.Route {
			continue
		}
		switch {
		case req.Key != "":
			purged += c.PurgeKey(req.Key)
		case req.SurrogateKey != "":
			purged += c.PurgeSurrogate(req.SurrogateKey)
		default:
			purged += c.PurgePrefix(req.Prefix)
		}
	}
	return purged
}
