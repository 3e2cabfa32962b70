package server

import (
	"fmt"

	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/metrics"
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
func (b *builder) routeCache(snap, prev *snapshot, rc *config.Route) (*cache.Cache, error) {
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
func (b *builder) commitCaches(old, next *snapshot) {
	var policies map[string]cache.Policy
	if next != nil {
		policies = next.cachePolicies
	}
	for name, p := range policies {
		if err := next.caches[name].Update(p); err != nil {
			b.log.Error("cache policy update failed; the route keeps its previous cache settings", "route", name, "err", err)
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
