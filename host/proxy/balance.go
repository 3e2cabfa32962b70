package proxy

import (
	"cmp"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

type balance uint8

const (
	balRoundRobin balance = iota
	balWeighted
	balLeastInflight
	balHash
)

var balanceNames = [...]string{"round_robin", "weighted_round_robin", "least_inflight", "consistent_hash"}

type hashSource uint8

const (
	hashHeader hashSource = iota
	hashCookie
	hashClientIP
)

const (
	// maxSchedule bounds a weighted round robin cycle; larger weight sums
	// are scaled down, which keeps proportions to within about 1/maxSchedule.
	maxSchedule = 1 << 16
	// ringPointsPerWeight virtual nodes per unit of weight, up to
	// maxRingWeight units per target, give each target a share of the hash
	// ring within a few percent of its weight.
	ringPointsPerWeight = 100
	maxRingWeight       = 100
	// ringWalk bounds how far along the ring a key looks for an available
	// target before falling back to a plain scan.
	ringWalk = 64
)

// pool is an immutable snapshot of the target set with what its balancer
// precomputed. Only the round robin counter changes.
type pool struct {
	targets []*target
	weights []int
	rr      atomic.Uint64
	sched   []int32     // weighted_round_robin: one cycle of target indexes
	ring    []ringPoint // consistent_hash: sorted by hash
}

type ringPoint struct {
	hash uint64
	idx  int32
}

func newPool(algo balance, targets []*target, weights []int) *pool {
	p := &pool{targets: targets, weights: weights}
	switch algo {
	case balWeighted:
		p.sched = schedule(weights)
	case balHash:
		p.ring = ring(targets, weights)
	}
	return p
}

// schedule returns one cycle of smooth weighted round robin (as in nginx):
// every target appears as often as its weight, spread out rather than in
// bursts.
func schedule(weights []int) []int32 {
	if len(weights) == 0 {
		return nil
	}
	w := slices.Clone(weights)
	g := 0
	for _, v := range w {
		g = gcd(g, v)
	}
	sum := 0
	for i := range w {
		w[i] /= g
		sum += w[i]
	}
	if sum > maxSchedule {
		scaled := 0
		for i := range w {
			w[i] = max(1, int(int64(w[i])*maxSchedule/int64(sum)))
			scaled += w[i]
		}
		sum = scaled
	}
	cur := make([]int, len(w))
	out := make([]int32, sum)
	for s := range out {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= sum
		out[s] = int32(best)
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ring places ringPointsPerWeight virtual nodes per unit of weight for each
// target. A point's hash depends on its target's address only, so adding or
// removing a target moves only the keys on that target's points.
func ring(targets []*target, weights []int) []ringPoint {
	var r []ringPoint
	var buf []byte
	for i, t := range targets {
		n := ringPointsPerWeight * min(weights[i], maxRingWeight)
		for j := range n {
			buf = append(append(append(buf[:0], t.addr...), '#'), strconv.Itoa(j)...)
			r = append(r, ringPoint{hash: hashKey(buf), idx: int32(i)})
		}
	}
	// Ties (vanishingly rare) are broken by address so that the ring does not
	// depend on the order targets were listed in.
	slices.SortFunc(r, func(a, b ringPoint) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(targets[a.idx].addr, targets[b.idx].addr)
	})
	return r
}

// hashKey is 64-bit FNV-1a with a final avalanche (from splitmix64), since
// FNV alone spreads similar short keys poorly over the ring.
func hashKey(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// tried remembers the targets an exchange already used, so that a retry
// goes elsewhere when it can. Past its capacity the oldest are forgotten.
type tried struct {
	n int
	t [8]*target
	// refused are targets that must not be tried again at all, not even
	// when no other is left (a TLS refusal); nil: none.
	refused *tried
}

func (s *tried) add(t *target) {
	s.t[s.n%len(s.t)] = t
	s.n++
}

func (s *tried) has(t *target) bool {
	if s == nil {
		return false
	}
	for i := range min(s.n, len(s.t)) {
		if s.t[i] == t {
			return true
		}
	}
	return false
}

// pick chooses a healthy target whose circuit admits the request, avoiding
// those already tried when another one is available. With none, it says
// why: ErrCircuitOpen when some target is healthy but refused, else
// ErrNoTarget.
func (u *Upstream) pick(p *pool, req *fasthttp.Request, clientIP []byte, tr *tried) (*target, ErrorKind) {
	if len(p.targets) > 0 {
		if t := u.pickFrom(p, req, clientIP, tr); t != nil {
			return t, 0
		}
		if tr.n > 0 {
			if t := u.pickFrom(p, req, clientIP, tr.refused); t != nil {
				return t, 0
			}
		}
		for _, t := range p.targets {
			if t.healthy.Load() {
				return nil, ErrCircuitOpen
			}
		}
	}
	return nil, ErrNoTarget
}

func (u *Upstream) pickFrom(p *pool, req *fasthttp.Request, clientIP []byte, skip *tried) *target {
	n := uint64(len(p.targets))
	switch u.algo {
	case balWeighted:
		c := p.rr.Add(1) - 1
		return u.scan(p, int(p.sched[c%uint64(len(p.sched))]), skip)
	case balLeastInflight:
		return u.leastInflight(p, skip)
	case balHash:
		if key := u.hashKey(req, clientIP); len(key) > 0 {
			return u.walkRing(p, hashKey(key), skip)
		}
	}
	return u.scan(p, int((p.rr.Add(1)-1)%n), skip)
}

// usable is the cheap part of eligibility; admit comes last because it may
// take a half-open circuit's one trial.
func usable(t *target, skip *tried) bool {
	return t.healthy.Load() && !skip.has(t)
}

// scan returns the first eligible target from start on, in list order.
func (u *Upstream) scan(p *pool, start int, skip *tried) *target {
	n := len(p.targets)
	for i := range n {
		t := p.targets[(start+i)%n]
		if usable(t, skip) && u.admit(t) {
			return t
		}
	}
	return nil
}

// leastInflight returns the eligible target with the fewest requests in
// flight; the scan starts at a rotating offset so that ties go round robin.
func (u *Upstream) leastInflight(p *pool, skip *tried) *target {
	n := len(p.targets)
	for range n + 1 { // admit fails only when a racing request took a trial
		start := int(p.rr.Add(1) % uint64(n))
		var best *target
		var bestN int64
		for i := range n {
			t := p.targets[(start+i)%n]
			if !usable(t, skip) || !u.mayAdmit(t) {
				continue
			}
			if v := t.inflight.Load(); best == nil || v < bestN {
				best, bestN = t, v
			}
		}
		if best == nil {
			return nil
		}
		if u.admit(best) {
			return best
		}
	}
	return nil
}

// walkRing returns the owner of the first point at or after h, or the next
// eligible target along the ring.
func (u *Upstream) walkRing(p *pool, h uint64, skip *tried) *target {
	r := p.ring
	lo, hi := 0, len(r)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r) {
		lo = 0
	}
	first := int(r[lo].idx)
	var prev *target
	for i := range min(len(r), ringWalk) {
		t := p.targets[r[(lo+i)%len(r)].idx]
		if t == prev {
			continue
		}
		prev = t
		if usable(t, skip) && u.admit(t) {
			return t
		}
	}
	return u.scan(p, first, skip)
}

// hashKey extracts the consistent_hash key of a request; nil when absent.
func (u *Upstream) hashKey(req *fasthttp.Request, clientIP []byte) []byte {
	switch u.hashOn {
	case hashHeader:
		return peekFold(&req.Header, u.hashBy)
	case hashCookie:
		return req.Header.Cookie(u.hashBy)
	}
	return clientIP
}
