package cache

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// Status is what the cache did for one request. Serve writes it into the
// response's status header (Policy.StatusHeader).
type Status uint8

// Statuses.
const (
	// Bypass: the cache was not used; the client's request went to the
	// upstream untouched (a method other than GET and HEAD, an unkeyed
	// Authorization, a variant marked hit-for-pass, a fill whose response
	// may not be stored, a closed Cache).
	Bypass Status = iota
	// Miss: nothing usable was stored; the response comes from the
	// upstream (and was stored when it could be).
	Miss
	// Hit: a fresh stored response.
	Hit
	// Stale: a stale stored response, allowed by stale-while-revalidate
	// (while one background request refreshes it), stale-if-error (the
	// upstream failed) or the client's max-stale.
	Stale
	// Revalidated: a stored response the upstream confirmed with 304.
	Revalidated
)

var statusNames = [...]string{"BYPASS", "MISS", "HIT", "STALE", "REVALIDATED"}

// statusValues are statusNames as []byte, so that setting the header does
// not convert.
var statusValues = func() (v [len(statusNames)][]byte) {
	for i, s := range statusNames {
		v[i] = []byte(s)
	}
	return v
}()

// String returns the status as written in the status header.
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// Fetcher performs an upstream exchange for a request the cache built (a
// fill) or passes through (a bypass). The server applies its own rewrite,
// forwarding headers and load balancing to req. It must not keep req or
// resp after returning. It may be called from a background goroutine (a
// stale-while-revalidate refresh).
type Fetcher func(req *fasthttp.Request, resp *fasthttp.Response) error

// Fetchers are the two ways Serve reaches the upstream. Fill sends the
// requests the cache builds itself (fills, revalidations and the background
// refreshes of stale-while-revalidate, which may run after Serve returned):
// it must not depend on the request being served. Pass sends the client's
// own request untouched (a bypass), only while Serve runs, so it may use the
// caller's per-request state. Both may be the same function.
type Fetchers struct {
	Fill, Pass Fetcher
}

// Cache is an HTTP response cache for one route, with the semantics of a
// shared cache (RFC 9111). Safe for concurrent use.
type Cache struct {
	pol atomic.Pointer[policy]
	st  *store
	fl  flights

	// bgMu orders refresh starts with Close: once closed is set under
	// it, no refresh starts. bg counts the running refreshes; Close does
	// not wait for them (tests do).
	bgMu   sync.Mutex
	closed atomic.Bool
	bg     sync.WaitGroup

	hits, misses, stale, revalidated, bypass, coalesced atomic.Uint64
}

// New returns a Cache with policy p.
func New(p Policy) (*Cache, error) {
	cp, err := compile(p)
	if err != nil {
		return nil, err
	}
	st, err := newStore(cp.maxBytes)
	if err != nil {
		return nil, err
	}
	c := &Cache{st: st, fl: flights{m: map[string]*flight{}}}
	c.pol.Store(cp)
	return c, nil
}

// Update applies a new policy (a config reload) and keeps the stored
// responses. Freshness limits (DefaultTTL, MaxTTL), stale windows and
// Statuses apply to stored responses from the next lookup; a changed Key
// makes new requests compute other keys, so old entries are no longer
// found and age out. The byte budget changes in place; ristretto's
// admission counters keep the size New gave them.
func (c *Cache) Update(p Policy) error {
	cp, err := compile(p)
	if err != nil {
		return err
	}
	c.st.setMaxBytes(cp.maxBytes)
	c.pol.Store(cp)
	return nil
}

// Close releases the store and returns without waiting for anything
// upstream: the server calls it under its reload lock, and a background
// refresh (stale-while-revalidate) can take the upstream's timeouts times
// its retries. No refresh starts after Close; those already running end
// in the background when their Fetcher returns, and store nothing (the
// closed store refuses writes). A server that tears down the upstream
// behind the Fetcher after Close should make the Fetcher fail fast then.
// Serve still works after Close, as a plain pass-through (Bypass).
func (c *Cache) Close() {
	c.bgMu.Lock()
	if c.closed.Load() {
		c.bgMu.Unlock()
		return
	}
	c.closed.Store(true)
	c.bgMu.Unlock()
	c.st.close()
}

// Key returns the key text Serve computes for req (see the package
// documentation for its form): for logs, tests and purges. A computed key
// never starts with '@'; a key a plugin passes to Serve is stored as "@"
// followed by it.
func (c *Cache) Key(req *fasthttp.Request) []byte {
	sc := getScratch()
	defer putScratch(sc)
	c.pol.Load().key.collect(req, sc)
	return bytes.Clone(sc.key)
}

// PurgeKey removes the response stored under key, all its Vary variants,
// and returns how many responses it removed. key is as Keys lists it: a
// computed key, or "@" and the key a plugin set.
func (c *Cache) PurgeKey(key string) int { return c.st.purgeKey(key) }

// PurgePrefix removes the responses under every key starting with prefix
// (e.g. "example.com/api/"; "@tenant-a/" for keys a plugin set as
// "tenant-a/..."; "@" for every plugin key), and returns how many it
// removed.
func (c *Cache) PurgePrefix(prefix string) int { return c.st.purgePrefix(prefix) }

// PurgeSurrogate removes the responses tagged tag by their upstream
// (Surrogate-Key, space separated; Cache-Tag, comma separated), and returns
// how many it removed. Other variants of the same keys stay.
func (c *Cache) PurgeSurrogate(tag string) int { return c.st.purgeTag(tag) }

// Keys returns the stored keys starting with prefix, sorted, at most limit
// of them (limit <= 0: all). Keys a plugin set are listed with their "@".
func (c *Cache) Keys(prefix string, limit int) []string { return c.st.keys(prefix, limit, false) }

// Stats is a snapshot of a Cache's counters (as the admin API shows them).
type Stats struct {
	// Entries is the number of stored responses (Vary variants count
	// separately); Bytes what they are charged; MaxBytes the budget.
	Entries  int64 `json:"entries"`
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"max_bytes"`
	// Requests by Status.
	Hits        uint64 `json:"hits"`
	Misses      uint64 `json:"misses"`
	Stale       uint64 `json:"stale"`
	Revalidated uint64 `json:"revalidated"`
	Bypass      uint64 `json:"bypass"`
	// Evictions counts entries that left the store for space or age.
	Evictions uint64 `json:"evictions"`
	// Coalesced counts requests that waited for another request's fill
	// instead of making their own.
	Coalesced uint64 `json:"coalesced"`
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	entries, used := c.st.usage()
	return Stats{
		Entries:     entries,
		Bytes:       used,
		MaxBytes:    c.pol.Load().maxBytes,
		Hits:        c.hits.Load(),
		Misses:      c.misses.Load(),
		Stale:       c.stale.Load(),
		Revalidated: c.revalidated.Load(),
		Bypass:      c.bypass.Load(),
		Evictions:   c.st.evictions.Load(),
		Coalesced:   c.coalesced.Load(),
	}
}

func (c *Cache) count(s Status) {
	switch s {
	case Hit:
		c.hits.Add(1)
	case Miss:
		c.misses.Add(1)
	case Stale:
		c.stale.Add(1)
	case Revalidated:
		c.revalidated.Add(1)
	default:
		c.bypass.Add(1)
	}
}

// flights coalesces concurrent fills of one key.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// flight is one fill in progress; res is set before done closes.
type flight struct {
	key     string
	done    chan struct{}
	res     fillResult
	waiters int // requests waiting for res (fs.mu)
}

// join returns the flight for key and whether the caller leads it (and
// must call finish).
func (fs *flights) join(key []byte) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[string(key)]; f != nil {
		f.waiters++
		return f, false
	}
	f := &flight{key: string(key), done: make(chan struct{})}
	fs.m[f.key] = f
	return f, true
}

// seal stops requests from joining f and returns how many wait for it.
// The next request for the key starts a new flight. Calling it again is
// harmless: it never removes another flight.
func (fs *flights) seal(f *flight) int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.m[f.key] == f {
		delete(fs.m, f.key)
	}
	return f.waiters
}

// finish publishes f's result (set by the caller) to its waiters.
func (fs *flights) finish(f *flight) {
	fs.seal(f)
	close(f.done)
}
