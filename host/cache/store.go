package cache

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	"github.com/dgraph-io/ristretto/v2/z"
)

// store is the byte-budgeted storage under a Cache: ristretto holding one
// node per primary key, plus an index of what ristretto holds, kept exact
// through ristretto's exit callback, so that prefix and surrogate purges
// and key listings work without scanning ristretto.
//
// Consistency: ristretto applies Set asynchronously and may reject a new
// key at admission. Writes are serialized (wmu) and each waits for
// ristretto to apply it, so that when a write returns the index matches
// ristretto: admitted nodes are indexed, rejected ones removed by the exit
// callback. The callback matches nodes by identity, so that an old node
// leaving after its replacement arrived does not unindex the replacement.
// The cost is one round trip to ristretto's goroutine per fill, noise next
// to the upstream request the fill made.
type store struct {
	mu     sync.RWMutex // readers: ristretto calls; writer: Close
	closed bool
	rc     *ristretto.Cache[[]byte, *node]

	wmu  sync.Mutex // serializes writes and purges
	gen  uint64     // purges so far (wmu)
	plog [64]purge  // the last purges (wmu), ring indexed by gen

	imu     sync.Mutex // index
	nodes   map[string]*node
	tags    map[string]map[string]struct{}
	bases   map[string]map[string]struct{} // base -> keys with header/cookie suffixes
	bytes   int64
	entries int64

	evictions atomic.Uint64
}

// purge records one purge, so that a fill that started before it and
// stores after it does not resurrect what it removed.
type purge struct {
	kind byte // 'k' exact key, 'p' prefix, 'b' base, 't' tag
	arg  string
}

// typicalObject sizes ristretto's admission counters: about ten per entry
// the budget holds, as ristretto recommends, at this average size.
const typicalObject = 4 << 10

func newStore(maxBytes int64) (*store, error) {
	s := &store{
		nodes: map[string]*node{},
		tags:  map[string]map[string]struct{}{},
		bases: map[string]map[string]struct{}{},
	}
	counters := min(max(maxBytes/typicalObject, 1000)*10, 1<<24)
	rc, err := ristretto.NewCache(&ristretto.Config[[]byte, *node]{
		NumCounters:        counters,
		MaxCost:            maxBytes,
		BufferItems:        64,
		IgnoreInternalCost: true,
		// The default hash of a []byte key goes through an interface
		// conversion; hashing directly keeps a hit allocation-free.
		KeyToHash: func(k []byte) (uint64, uint64) { return xxhash.Sum64(k), z.MemHash(k) },
		OnEvict:   func(*ristretto.Item[*node]) { s.evictions.Add(1) },
		OnExit:    s.exit,
	})
	if err != nil {
		return nil, fmt.Errorf("cache: store: %w", err)
	}
	s.rc = rc
	return s, nil
}

// get returns the node stored under key, or nil.
func (s *store) get(key []byte) *node {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	n, _ := s.rc.Get(key)
	return n
}

// generation returns the purge generation; pass it to put.
func (s *store) generation() uint64 {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.gen
}

// put stores n for ttl unless a purge since generation since covers it.
// It reports whether ristretto admitted n.
func (s *store) put(n *node, ttl time.Duration, since uint64) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.purgedSince(n, since) {
		return false
	}
	return s.putLocked(n, ttl)
}

// modify replaces the node under key with what fn makes of the current
// one (nil when none), stored for the TTL fn returns, unless a purge since
// generation since covers the result. Writes are serialized, so that two
// fills adding variants to one key do not lose one.
func (s *store) modify(key string, since uint64, fn func(cur *node) (*node, time.Duration)) bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.imu.Lock()
	cur := s.nodes[key] // exact: every write settled
	s.imu.Unlock()
	n, ttl := fn(cur)
	if n == nil || ttl <= 0 || s.purgedSince(n, since) {
		return false
	}
	return s.putLocked(n, ttl)
}

func (s *store) putLocked(n *node, ttl time.Duration) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	s.index(n)
	if !s.rc.SetWithTTL([]byte(n.key), n, n.cost, ttl) {
		// Dropped (ristretto's buffer was full): nothing is pending.
		s.exit(n)
		return false
	}
	s.rc.Wait()
	s.imu.Lock()
	defer s.imu.Unlock()
	return s.nodes[n.key] == n
}

// del removes key; the exit callback unindexes it.
func (s *store) del(key string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		s.rc.Del([]byte(key))
	}
}

// purgedSince reports whether a purge recorded after generation since
// covers n (wmu held). When more purges happened than the log holds, it
// says yes: dropping one fill is cheaper than serving a purged response.
func (s *store) purgedSince(n *node, since uint64) bool {
	if s.gen == since {
		return false
	}
	if s.gen-since > uint64(len(s.plog)) {
		return true
	}
	for g := since; g < s.gen; g++ {
		p := s.plog[g%uint64(len(s.plog))]
		switch p.kind {
		case 'k':
			if n.key == p.arg {
				return true
			}
		case 'p':
			if strings.HasPrefix(n.key, p.arg) {
				return true
			}
		case 'b':
			if n.key[:n.base] == p.arg {
				return true
			}
		case 't':
			for _, e := range n.vs {
				if e.hasTag(p.arg) {
					return true
				}
			}
		}
	}
	return false
}

// logPurge records a purge (wmu held).
func (s *store) logPurge(kind byte, arg string) {
	s.plog[s.gen%uint64(len(s.plog))] = purge{kind: kind, arg: arg}
	s.gen++
}

// settle applies ristretto's pending writes so that the index is exact
// (wmu held).
func (s *store) settle() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		s.rc.Wait()
	}
}

// purgeKeys removes the keys sel picks from the index and returns how many
// stored responses they held (wmu held).
func (s *store) purgeKeys(keys []string) int {
	count := 0
	for _, k := range keys {
		s.imu.Lock()
		n := s.nodes[k]
		s.imu.Unlock()
		if n == nil {
			continue
		}
		count += len(n.vs)
		s.del(k)
	}
	return count
}

// purgeKey removes key with all its variants.
func (s *store) purgeKey(key string) int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.settle()
	s.logPurge('k', key)
	return s.purgeKeys([]string{key})
}

// purgePrefix removes every key starting with prefix.
func (s *store) purgePrefix(prefix string) int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.settle()
	s.logPurge('p', prefix)
	return s.purgeKeys(s.keys(prefix, 0, false))
}

// purgeBase removes every key whose target URI part is base: the key
// base itself and base with header or cookie suffixes.
func (s *store) purgeBase(base string) int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.settle()
	s.logPurge('b', base)
	s.imu.Lock()
	keys := []string{base}
	for k := range s.bases[base] {
		keys = append(keys, k)
	}
	s.imu.Unlock()
	return s.purgeKeys(keys)
}

// purgeTag removes the variants tagged tag; a key keeps its other
// variants.
func (s *store) purgeTag(tag string) int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.settle()
	s.logPurge('t', tag)
	s.imu.Lock()
	var nodes []*node
	for k := range s.tags[tag] {
		nodes = append(nodes, s.nodes[k])
	}
	s.imu.Unlock()
	count := 0
	for _, n := range nodes {
		rest, dropped := n.without(func(e *entry) bool { return e.hasTag(tag) })
		count += dropped
		// Keep the rest for the key's remaining lifetime. A key that
		// expired but is not swept yet has none left: re-storing it with
		// TTL 0 would mean "no expiry" to ristretto and bring it back for
		// good, so it goes. (ttl < 0: it expired since GetTTL looked.)
		ttl, live := s.ttlOf(n.key)
		if rest == nil || !live || ttl < 0 {
			s.del(n.key)
			continue
		}
		// The key is stored (settled above), so this Set replaces it
		// synchronously.
		s.putLocked(rest, ttl)
	}
	return count
}

// ttlOf returns the remaining ristretto TTL of key (0: none, as ristretto
// reads it), and live false when the key is gone or expired.
func (s *store) ttlOf(key string) (ttl time.Duration, live bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, false
	}
	return s.rc.GetTTL([]byte(key))
}

// keys returns the indexed keys starting with prefix, sorted, at most
// limit (<= 0: all); withMarkers includes hit-for-pass markers.
func (s *store) keys(prefix string, limit int, withMarkers bool) []string {
	s.imu.Lock()
	var out []string
	for k, n := range s.nodes {
		if strings.HasPrefix(k, prefix) && (withMarkers || len(n.vs) > 0) {
			out = append(out, k)
		}
	}
	s.imu.Unlock()
	slices.Sort(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit:limit]
	}
	return out
}

// index records n as the node stored under its key, replacing the previous
// one in every index.
func (s *store) index(n *node) {
	s.imu.Lock()
	defer s.imu.Unlock()
	if old := s.nodes[n.key]; old != nil {
		s.unindexLocked(old)
	}
	s.nodes[n.key] = n
	s.bytes += n.cost
	s.entries += int64(len(n.vs))
	for _, e := range n.vs {
		for _, t := range e.tags {
			m := s.tags[t]
			if m == nil {
				m = map[string]struct{}{}
				s.tags[t] = m
			}
			m[n.key] = struct{}{}
		}
	}
	if hasSuffixKey(n.key, n.base) {
		b := n.key[:n.base]
		m := s.bases[b]
		if m == nil {
			m = map[string]struct{}{}
			s.bases[b] = m
		}
		m[n.key] = struct{}{}
	}
}

// exit is ristretto's OnExit: a node left the store (evicted, expired,
// rejected, replaced or deleted). It may run on ristretto's goroutine or
// inside a Set or Del; it takes only imu.
func (s *store) exit(n *node) {
	if n == nil {
		return
	}
	s.imu.Lock()
	defer s.imu.Unlock()
	if s.nodes[n.key] == n {
		s.unindexLocked(n)
	}
}

func (s *store) unindexLocked(n *node) {
	delete(s.nodes, n.key)
	s.bytes -= n.cost
	s.entries -= int64(len(n.vs))
	for _, e := range n.vs {
		for _, t := range e.tags {
			if m := s.tags[t]; m != nil {
				delete(m, n.key)
				if len(m) == 0 {
					delete(s.tags, t)
				}
			}
		}
	}
	if hasSuffixKey(n.key, n.base) {
		b := n.key[:n.base]
		if m := s.bases[b]; m != nil {
			delete(m, n.key)
			if len(m) == 0 {
				delete(s.bases, b)
			}
		}
	}
}

func (s *store) usage() (entries, bytes int64) {
	s.imu.Lock()
	defer s.imu.Unlock()
	return s.entries, s.bytes
}

func (s *store) setMaxBytes(n int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.closed {
		s.rc.UpdateMaxCost(n)
	}
}

func (s *store) maxBytes() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rc.MaxCost()
}

// close stops ristretto. Calls after it find nothing and store nothing.
func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.rc.Close()
}

// Store is the storage layer of a Cache on its own: the same ristretto
// configuration, cost model, admission and index, with opaque keys and
// objects that are only a size. It exists so that trace studies (see
// bench.CacheHitRatio) replay requests through exactly the admission and
// eviction path a Cache uses, without building HTTP messages. Safe for
// concurrent use.
type Store struct{ s *store }

// NewStore returns a Store with a byte budget of maxBytes.
func NewStore(maxBytes int64) (*Store, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("cache: store: maxBytes must be > 0, got %d", maxBytes)
	}
	s, err := newStore(maxBytes)
	if err != nil {
		return nil, err
	}
	return &Store{s: s}, nil
}

// Get reports whether key is stored, counting the access in ristretto's
// admission statistics as a Cache lookup does.
func (st *Store) Get(key []byte) bool { return st.s.get(key) != nil }

// Add stores an object with a body of size bytes under key, as a Cache
// fill stores a response, and returns the cost charged to the budget (the
// body, the key and the fixed per-entry overheads) and whether ristretto
// admitted it.
func (st *Store) Add(key []byte, size int) (cost int64, admitted bool) {
	n := (*node)(nil).with(string(key), len(key), nil, &entry{cost: int64(entryOverhead + size)})
	return n.cost, st.s.put(n, 0, st.s.generation())
}

// Len returns the number of objects stored and the bytes charged for them.
func (st *Store) Len() (objects, bytes int64) { return st.s.usage() }

// Close releases the Store.
func (st *Store) Close() { st.s.close() }
