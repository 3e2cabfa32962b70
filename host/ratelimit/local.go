package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// LocalOptions configure NewLocal.
type LocalOptions struct {
	// MaxKeys bounds the number of keys kept (spread over the shards).
	// When a shard is full and none of its keys is idle, the key closest to
	// idle is dropped, which lets that key start over with a full bucket.
	// Default 1<<20 (about 200 MB with short keys at the worst).
	MaxKeys int
	// Now is the clock; nil means time.Now. Only differences between its
	// readings matter, and time.Now's are monotonic.
	Now func() time.Time
	// SweepInterval is how often a background janitor drops the idle keys
	// of every shard and gives back the memory of shards that shrank after
	// a spike of keys; default 10s, negative for no janitor. Decisions
	// drop idle keys too, so memory stays bounded without it; the janitor
	// returns it when traffic has gone quiet.
	SweepInterval time.Duration
}

// Local is an exact in-memory Store: its decisions are serialized per key,
// so under any concurrency exactly the quota passes. It is sharded by key to
// keep contention low, keeps the state of a key only while the key has debt
// (an idle key's state is the same as no state), and bounds its memory.
//
// Idle keys are dropped by the decisions themselves, each sweeping a couple
// of entries of its shard, and by a janitor goroutine that Close stops.
type Local struct {
	shards    [numShards]shard
	seed      maphash.Seed
	now       func() time.Time
	base      time.Time // the clock's origin: times are nanoseconds since it
	perShard  int
	evictions atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	janitor   sync.WaitGroup
}

const (
	numShards = 64
	// sweepPerDecision entries are examined by every decision, so every
	// entry of a shard is looked at within len/2 decisions on it: the
	// shard never holds more than about twice the keys that had debt over
	// its last sweep cycle.
	sweepPerDecision = 2
	// evictSample entries are compared when a full shard must drop one.
	evictSample = 4
	// defaultMaxKeys is the default of LocalOptions.MaxKeys.
	defaultMaxKeys = 1 << 20
	// defaultSweepInterval is the default of LocalOptions.SweepInterval.
	defaultSweepInterval = 10 * time.Second
	// janitorChunk entries are swept per lock hold, so that a decision
	// never waits long behind the janitor.
	janitorChunk = 256
	// A shard whose map held at least shrinkMin entries is rebuilt when it
	// is down to a quarter of that: Go maps never give memory back.
	shrinkMin = 1024
)

type shard struct {
	mu      sync.Mutex
	entries map[string]*entry
	list    []*entry // the same entries, for the sweep hand
	hand    int
	peak    int      // the most entries since the map was made
	_       [64]byte // keeps shards' locks on separate cache lines
}

// entry is one key's state: the theoretical arrival time of each of its
// limits, by limit name.
type entry struct {
	key   string
	until int64 // the latest tat.n of its slots: the entry is idle after it
	slots []slot
}

type slot struct {
	name string
	tat  span // since Local.base; fraction in units of the limit's Rate
}

// NewLocal returns an empty local limiter.
func NewLocal(opts LocalOptions) *Local {
	l := &Local{seed: maphash.MakeSeed(), now: opts.Now}
	if l.now == nil {
		l.now = time.Now
	}
	l.base = l.now()
	maxKeys := opts.MaxKeys
	if maxKeys <= 0 {
		maxKeys = defaultMaxKeys
	}
	l.perShard = max((maxKeys+numShards-1)/numShards, 1)
	for i := range l.shards {
		l.shards[i].entries = make(map[string]*entry)
	}
	l.done = make(chan struct{})
	every := opts.SweepInterval
	if every == 0 {
		every = defaultSweepInterval
	}
	if every > 0 {
		l.janitor.Add(1)
		go l.runJanitor(every)
	}
	return l
}

// Close stops the janitor. The Local keeps working without it.
func (l *Local) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	l.janitor.Wait()
	return nil
}

func (l *Local) runJanitor(every time.Duration) {
	defer l.janitor.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
			l.sweepAll()
		}
	}
}

// sweepAll drops the idle entries of every shard, a chunk per lock hold, and
// rebuilds the maps of shards that shrank.
func (l *Local) sweepAll() {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n := len(sh.list)
		sh.mu.Unlock()
		for seen := 0; seen < n; seen += janitorChunk {
			sh.mu.Lock()
			sh.sweep(l.nowNS(), janitorChunk)
			sh.mu.Unlock()
		}
		sh.mu.Lock()
		if sh.peak >= shrinkMin && len(sh.list) <= sh.peak/4 {
			sh.rebuild()
		}
		sh.mu.Unlock()
	}
}

// rebuild moves the entries to a map and list of their current size.
func (sh *shard) rebuild() {
	m := make(map[string]*entry, len(sh.list))
	list := make([]*entry, len(sh.list), 2*len(sh.list))
	copy(list, sh.list)
	for _, e := range list {
		m[e.key] = e
	}
	sh.entries, sh.list, sh.peak = m, list, len(list)
}

func (l *Local) nowNS() int64 { return int64(l.now().Sub(l.base)) }

// Decide implements Store. It never fails on valid input, and ignores ctx.
// For a key it has seen, it does not allocate.
func (l *Local) Decide(_ context.Context, key string, limits []Limit, cost int64, d *Decision) error {
	var buf [maxStack]params
	ps, err := prepared(&buf, limits, cost)
	if err != nil {
		return err
	}
	l.decide(key, limits, ps, cost, d)
	return nil
}

// decide is Decide on prepared limits.
func (l *Local) decide(key string, limits []Limit, ps []params, cost int64, d *Decision) {
	d.reset(len(limits))
	if len(limits) == 0 {
		d.Allowed = true
		return
	}
	var xbuf [maxStack]span
	var ibuf [maxStack]int
	xs, idx := xbuf[:0], ibuf[:0]
	if len(limits) > maxStack {
		xs, idx = make([]span, 0, len(limits)), make([]int, 0, len(limits))
	}

	now := l.nowNS()
	sh := &l.shards[maphash.String(l.seed, key)%numShards]
	sh.mu.Lock()
	e := sh.entries[key]
	allowed := true
	for i := range limits {
		j := -1
		x := span{}
		if e != nil {
			j = e.find(i, limits[i].Name)
			if j >= 0 {
				x = ps[i].debt(e.slots[j].tat, now)
			}
		}
		xs, idx = append(xs, x), append(idx, j)
		if ps[i].over || !x.add(ps[i].cost, ps[i].rate).le(ps[i].window) {
			allowed = false
		}
	}
	if allowed && cost > 0 {
		if e == nil {
			e = sh.insert(l, key, now)
		}
		for i := range limits {
			tat := span{n: now}.add(xs[i].add(ps[i].cost, ps[i].rate), ps[i].rate)
			if j := idx[i]; j >= 0 {
				e.slots[j].tat = tat
			} else {
				e.slots = append(e.slots, slot{name: limits[i].Name, tat: tat})
			}
			e.until = max(e.until, tat.n)
		}
	}
	sh.sweep(now, sweepPerDecision)
	sh.mu.Unlock()

	d.Allowed = allowed
	for i := range ps {
		if w := ps[i].outcome(xs[i], allowed, cost > 0, &d.States[i]); w > d.RetryAfter {
			d.RetryAfter = w
		}
	}
}

// find returns the index of the slot of limit name, the i-th of the
// decision's limits, or -1. A key is nearly always decided with the same
// limits in the same order, so the i-th slot is tried first.
func (e *entry) find(i int, name string) int {
	if i < len(e.slots) && e.slots[i].name == name {
		return i
	}
	for j := range e.slots {
		if e.slots[j].name == name {
			return j
		}
	}
	return -1
}

// insert adds an entry for key, dropping one first when the shard is full.
func (sh *shard) insert(l *Local, key string, now int64) *entry {
	if len(sh.list) >= l.perShard {
		sh.sweep(now, evictSample*4)
	}
	if len(sh.list) >= l.perShard {
		// Drop the sampled entry that gets idle first: it has the least
		// state to lose.
		victim := sh.hand % len(sh.list)
		for k := 1; k < evictSample && k < len(sh.list); k++ {
			if c := (sh.hand + k) % len(sh.list); sh.list[c].until < sh.list[victim].until {
				victim = c
			}
		}
		sh.remove(victim)
		l.evictions.Add(1)
	}
	e := &entry{key: key, until: now}
	sh.entries[key] = e
	sh.list = append(sh.list, e)
	sh.peak = max(sh.peak, len(sh.list))
	return e
}

// sweep advances the hand over up to n entries, dropping the idle ones.
func (sh *shard) sweep(now int64, n int) {
	for ; n > 0 && len(sh.list) > 0; n-- {
		if sh.hand >= len(sh.list) {
			sh.hand = 0
		}
		if sh.list[sh.hand].until < now {
			sh.remove(sh.hand) // the last entry moves here: look at it next
		} else {
			sh.hand++
		}
	}
}

func (sh *shard) remove(i int) {
	e := sh.list[i]
	last := len(sh.list) - 1
	sh.list[i] = sh.list[last]
	sh.list[last] = nil
	sh.list = sh.list[:last]
	delete(sh.entries, e.key)
}

// Len returns the number of keys with state.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.list)
		sh.mu.Unlock()
	}
	return n
}

// Evictions returns how many keys with debt were dropped because their shard
// was full (see LocalOptions.MaxKeys).
func (l *Local) Evictions() uint64 { return l.evictions.Load() }

// prepared checks a decision's input and derives the per-limit parameters
// for cost into buf (heap only beyond maxStack limits).
func prepared(buf *[maxStack]params, limits []Limit, cost int64) ([]params, error) {
	if cost < 0 {
		return nil, ErrNegativeCost
	}
	if err := checkLimits(limits); err != nil {
		return nil, err
	}
	ps := buf[:0]
	if len(limits) > maxStack {
		ps = make([]params, 0, len(limits))
	}
	for i := range limits {
		ps = append(ps, prepare(&limits[i], cost))
	}
	return ps, nil
}
