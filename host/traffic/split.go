package traffic

import (
	"errors"
	"fmt"
	"math"
)

// MaxWeight is the largest weight of an arm.
const MaxWeight = 100

// Arm is one side of a split: a name (an upstream, a plugin version) and a
// weight in 0..MaxWeight. A weight of 0 keeps the arm defined but sends it
// nothing, the standby side of a blue-green pair.
type Arm struct {
	Name   string
	Weight int
}

// Split chooses an arm for a sticky hash by weighted rendezvous hashing.
// It is immutable and safe for concurrent use.
type Split struct {
	arms   []Arm
	seeds  []uint64  // per arm, from its name
	weight []float64 // per arm
	only   int       // the index of the single arm with weight > 0, or -1
}

// armDomain separates the arm seeds from the sticky hashes.
const armDomain = "wasmgate/arm/v1\x00"

// NewSplit validates arms and precomputes what Pick needs. Names must be
// non-empty and unique, weights in 0..MaxWeight with at least one above 0.
func NewSplit(arms []Arm) (*Split, error) {
	if len(arms) == 0 {
		return nil, errors.New("split: no arms")
	}
	s := &Split{
		arms:   append([]Arm(nil), arms...),
		seeds:  make([]uint64, len(arms)),
		weight: make([]float64, len(arms)),
		only:   -1,
	}
	seen := make(map[string]int, len(arms))
	positive := 0
	for i, a := range arms {
		switch {
		case a.Name == "":
			return nil, fmt.Errorf("split: arm %d: empty name", i+1)
		case a.Weight < 0 || a.Weight > MaxWeight:
			return nil, fmt.Errorf("split: arm %q: weight %d out of range 0..%d", a.Name, a.Weight, MaxWeight)
		}
		if j, dup := seen[a.Name]; dup {
			return nil, fmt.Errorf("split: arm %q appears twice (arms %d and %d)", a.Name, j+1, i+1)
		}
		seen[a.Name] = i
		s.seeds[i] = HashString(armDomain + a.Name)
		s.weight[i] = float64(a.Weight)
		if a.Weight > 0 {
			positive++
			s.only = i
		}
	}
	if positive == 0 {
		return nil, errors.New("split: every arm has weight 0; at least one must be above 0")
	}
	if positive > 1 {
		s.only = -1
	}
	return s, nil
}

// Arms returns a copy of the arms, in the order given to NewSplit.
func (s *Split) Arms() []Arm { return append([]Arm(nil), s.arms...) }

// Pick returns the index of the arm for sticky hash h. It does not allocate.
//
// Each arm scores w / -ln(u), u uniform in (0,1) from h mixed with the arm's
// seed, and the highest score wins: arm i wins with probability w_i / Σw. An
// arm's score depends only on h, its own name and its own weight, so:
//   - raising one arm's weight moves keys only into it, from any other arm;
//   - the choice depends only on the ratios of the weights, so raising one
//     arm while the others keep their ratios among themselves (10/90 →
//     20/80, 10/45/45 → 20/40/40) moves keys only into the raised arm;
//   - adding an arm takes keys only into the new arm, removing one moves
//     only its own keys;
//   - the same arm name wins for the same user on every route, so a user on
//     users-v2 for /users is on users-v2 for /users/{id} too.
//
// Pick reads the low 32 bits of h only (see Bucket).
func (s *Split) Pick(h uint64) int {
	if s.only >= 0 {
		return s.only
	}
	lo := h & 0xffffffff
	best, bestScore := 0, -1.0
	for i, w := range s.weight {
		if w == 0 {
			continue
		}
		m := mix64(lo ^ s.seeds[i])
		// 53 random bits, offset by half a step: u is never 0 nor 1, so
		// -ln(u) is finite and above 0.
		u := (float64(m>>11) + 0.5) * 0x1p-53
		if score := w / -math.Log(u); score > bestScore {
			best, bestScore = i, score
		}
	}
	return best
}

// mix64 is the finalizer of SplitMix64 (Stafford's variant 13): a bijection
// with full avalanche, so inputs that differ in one bit give unrelated u.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
