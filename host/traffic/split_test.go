package traffic

import (
	"fmt"
	"strings"
	"testing"
)

func TestNewSplitErrors(t *testing.T) {
	for _, tt := range []struct {
		arms []Arm
		want string
	}{
		{nil, "no arms"},
		{[]Arm{{"a", 0}, {"b", 0}}, "every arm has weight 0"},
		{[]Arm{{"a", 50}, {"", 50}}, "arm 2: empty name"},
		{[]Arm{{"a", 101}}, `arm "a": weight 101 out of range 0..100`},
		{[]Arm{{"a", -1}, {"b", 10}}, `arm "a": weight -1 out of range`},
		{[]Arm{{"a", 10}, {"b", 10}, {"a", 20}}, `arm "a" appears twice (arms 1 and 3)`},
	} {
		_, err := NewSplit(tt.arms)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSplit(%v) = %v, want error with %q", tt.arms, err, tt.want)
		}
	}
	if _, err := NewSplit([]Arm{{"blue", 100}, {"green", 0}}); err != nil {
		t.Errorf("a weight of 0 is allowed: %v", err)
	}
}

// arms builds a split with arms named a0, a1, ... and the given weights.
func arms(t *testing.T, weights ...int) *Split {
	t.Helper()
	a := make([]Arm, len(weights))
	for i, w := range weights {
		a[i] = Arm{Name: fmt.Sprintf("a%d", i), Weight: w}
	}
	s, err := NewSplit(a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const nKeys = 10000

func TestSplitShares(t *testing.T) {
	for _, weights := range [][]int{
		{10, 90}, {1, 99}, {33, 33, 34}, {0, 100}, {50, 50}, {5, 15, 80}, {100}, {1, 1, 1, 1, 96},
	} {
		t.Run(fmt.Sprint(weights), func(t *testing.T) {
			s := arms(t, weights...)
			counts := make([]int, len(weights))
			for i := range nKeys {
				counts[s.Pick(HashString(keyN(i)))]++
			}
			sum := 0
			for _, w := range weights {
				sum += w
			}
			for i, w := range weights {
				want := 100 * float64(w) / float64(sum)
				got := 100 * float64(counts[i]) / nKeys
				if got < want-2 || got > want+2 {
					t.Errorf("arm %d (weight %d): %.2f%% of keys, want %.2f%% ± 2", i, w, got, want)
				}
				if w == 0 && counts[i] != 0 {
					t.Errorf("arm %d has weight 0 but got %d keys", i, counts[i])
				}
			}
		})
	}
}

// A key always picks the same arm, also from a split built anew (another
// instance, a reload): the choice depends on names and weights only.
func TestSplitSticky(t *testing.T) {
	a, b := arms(t, 30, 30, 40), arms(t, 30, 30, 40)
	for i := range nKeys {
		h := HashString(keyN(i))
		want := a.Pick(h)
		for range 3 {
			if got := a.Pick(h); got != want {
				t.Fatalf("key %d picked %d then %d", i, want, got)
			}
		}
		if got := b.Pick(h); got != want {
			t.Fatalf("key %d: %d on one split, %d on an identical one", i, want, got)
		}
	}
}

// Pinned picks: a release that changes them moves users between versions.
func TestSplitGolden(t *testing.T) {
	s, err := NewSplit([]Arm{{"users-v1", 90}, {"users-v2", 10}})
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]int{"alice": 1, "bob": 0, "carol": 0, "dave": 0} {
		if got := s.Pick(HashString(key)); got != want {
			t.Errorf("%s picks %d, want %d", key, got, want)
		}
	}
}

// moves returns, for each key that changed arm from split a to split b,
// the pair (from, to) of arm names.
func moves(a, b *Split) map[[2]string]int {
	m := map[[2]string]int{}
	an, bn := a.Arms(), b.Arms()
	for i := range nKeys {
		h := HashString(keyN(i))
		from, to := an[a.Pick(h)].Name, bn[b.Pick(h)].Name
		if from != to {
			m[[2]string{from, to}]++
		}
	}
	return m
}

func TestSplitMinimalMoves(t *testing.T) {
	split := func(arms ...Arm) *Split {
		s, err := NewSplit(arms)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tt := range []struct {
		name     string
		from, to *Split
		// allowed lists the only moves allowed, as "from>to".
		allowed []string
	}{
		{"canary 10→20", split(Arm{"canary", 10}, Arm{"stable", 90}), split(Arm{"canary", 20}, Arm{"stable", 80}), []string{"stable>canary"}},
		{"canary 1→50", split(Arm{"canary", 1}, Arm{"stable", 99}), split(Arm{"canary", 50}, Arm{"stable", 50}), []string{"stable>canary"}},
		{"canary 20→10", split(Arm{"canary", 20}, Arm{"stable", 80}), split(Arm{"canary", 10}, Arm{"stable", 90}), []string{"canary>stable"}},
		{"raise one of three", split(Arm{"a", 10}, Arm{"b", 45}, Arm{"c", 45}), split(Arm{"a", 20}, Arm{"b", 45}, Arm{"c", 45}), []string{"b>a", "c>a"}},
		{"raise one, others keep their ratio", split(Arm{"a", 10}, Arm{"b", 45}, Arm{"c", 45}), split(Arm{"a", 20}, Arm{"b", 40}, Arm{"c", 40}), []string{"b>a", "c>a"}},
		{"lower one of three", split(Arm{"a", 20}, Arm{"b", 40}, Arm{"c", 40}), split(Arm{"a", 20}, Arm{"b", 10}, Arm{"c", 40}), []string{"b>a", "b>c"}},
		{"blue-green flip", split(Arm{"blue", 100}, Arm{"green", 0}), split(Arm{"blue", 0}, Arm{"green", 100}), []string{"blue>green"}},
		{"add an arm", split(Arm{"a", 50}, Arm{"b", 50}), split(Arm{"a", 50}, Arm{"b", 50}, Arm{"c", 50}), []string{"a>c", "b>c"}},
		{"remove an arm", split(Arm{"a", 50}, Arm{"b", 50}, Arm{"c", 50}), split(Arm{"a", 50}, Arm{"c", 50}), []string{"b>a", "b>c"}},
		{"reorder arms", split(Arm{"a", 30}, Arm{"b", 70}), split(Arm{"b", 70}, Arm{"a", 30}), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for mv, n := range moves(tt.from, tt.to) {
				ok := false
				for _, a := range tt.allowed {
					ok = ok || a == mv[0]+">"+mv[1]
				}
				if !ok {
					t.Errorf("%d keys moved from %s to %s", n, mv[0], mv[1])
				}
			}
		})
	}
}

// Splits and percentages read independent bits: the users of a 10% flag or
// segment are not the users of a 10% canary.
func TestSplitIndependentOfBucket(t *testing.T) {
	s := arms(t, 10, 90)
	in, canary := 0, 0
	for i := range 10 * nKeys {
		h := HashString(keyN(i))
		if InPercent(h, 10) {
			in++
			if s.Pick(h) == 0 {
				canary++
			}
		}
	}
	if share := 100 * float64(canary) / float64(in); share < 8 || share > 12 {
		t.Errorf("%.1f%% of the 10%% bucket is on the 10%% canary, want about 10%%", share)
	}
}

func TestSplitAllocs(t *testing.T) {
	s := arms(t, 5, 15, 80)
	h := HashString("alice")
	if n := testing.AllocsPerRun(100, func() { h += uint64(s.Pick(h)) }); n != 0 {
		t.Errorf("Pick: %v allocs", n)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, weights := range [][]int{{100}, {10, 90}, {5, 15, 80}} {
		b.Run(fmt.Sprintf("arms=%d", len(weights)), func(b *testing.B) {
			a := make([]Arm, len(weights))
			for i, w := range weights {
				a[i] = Arm{fmt.Sprintf("upstream-%d", i), w}
			}
			s, err := NewSplit(a)
			if err != nil {
				b.Fatal(err)
			}
			h := HashString("alice")
			b.ReportAllocs()
			for b.Loop() {
				h += uint64(s.Pick(h)) + 0x9e3779b97f4a7c15
			}
		})
	}
}
