package traffic

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestNewFlagErrors(t *testing.T) {
	segs, err := NewSegments([]SegmentSpec{{Name: "beta", Percent: pct(5)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		spec FlagSpec
		want string
	}{
		{"", FlagSpec{}, "flag: empty name"},
		{"new/checkout", FlagSpec{}, `holds '/'`},
		{"f", FlagSpec{Percent: pct(101)}, `flag "f": percent 101 out of range`},
		{"f", FlagSpec{Percent: pct(-1)}, "out of range"},
		{"f", FlagSpec{Segment: "gamma"}, `flag "f": unknown segment "gamma"`},
	} {
		_, err := NewFlag(tt.name, tt.spec, segs)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewFlag(%q, %+v) = %v, want error with %q", tt.name, tt.spec, err, tt.want)
		}
	}
}

func TestFlagSpecJSON(t *testing.T) {
	var s FlagSpec
	if err := json.Unmarshal([]byte(`{"enabled": true, "segment": "beta"}`), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Enabled || s.Percent != nil || s.Segment != "beta" {
		t.Errorf("got %+v", s)
	}
	s.Percent = pct(0)
	if b, _ := json.Marshal(s); string(b) != `{"enabled":true,"percent":0,"segment":"beta"}` {
		t.Errorf("marshal: %s", b)
	}
}

func TestFlagOn(t *testing.T) {
	segs, err := NewSegments([]SegmentSpec{{Name: "beta", KeySource: userID, Keys: []string{"alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	alice := fakeRequest{values: map[Source]string{userID: "alice"}, hash: HashString("alice"), hasKey: true}
	carol := fakeRequest{values: map[Source]string{userID: "carol"}, hash: HashString("carol"), hasKey: true}
	bucket := int(Bucket(Salted(alice.hash, Salt("flag/new-checkout"))))/100 + 1 // the smallest percent alice is in
	for _, tt := range []struct {
		name string
		spec FlagSpec
		req  fakeRequest
		want bool
	}{
		{"disabled", FlagSpec{Enabled: false}, alice, false},
		{"enabled, percent unset means 100", FlagSpec{Enabled: true}, carol, true},
		{"percent 0", FlagSpec{Enabled: true, Percent: pct(0)}, alice, false},
		{"in the segment", FlagSpec{Enabled: true, Segment: "beta"}, alice, true},
		{"outside the segment", FlagSpec{Enabled: true, Segment: "beta"}, carol, false},
		{"in percent", FlagSpec{Enabled: true, Percent: pct(bucket)}, alice, true},
		{"just out of percent", FlagSpec{Enabled: true, Percent: pct(bucket - 1)}, alice, false},
		{"segment and percent", FlagSpec{Enabled: true, Segment: "beta", Percent: pct(bucket - 1)}, alice, false},
		{"disabled wins over the segment", FlagSpec{Segment: "beta"}, alice, false},
	} {
		f, err := NewFlag("new-checkout", tt.spec, segs)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.On(&tt.req); got != tt.want {
			t.Errorf("%s: On = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// Keyed requests stick; keyless ones carry a random hash, so percent is a
// share of requests. Two flags at the same percent are different cohorts.
func TestFlagPercentShare(t *testing.T) {
	f, err := NewFlag("f", FlagSpec{Enabled: true, Percent: pct(30)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyed, keyless := 0, 0
	for i := range nKeys {
		r := fakeRequest{hash: HashString(keyN(i)), hasKey: true}
		on := f.On(&r)
		if on != f.On(&r) {
			t.Fatalf("key %d flickers", i)
		}
		if on {
			keyed++
		}
		if f.On(&fakeRequest{hash: RandomHash()}) { // a keyless request's hash is random
			keyless++
		}
	}
	for name, n := range map[string]int{"keyed": keyed, "keyless": keyless} {
		if share := 100 * float64(n) / nKeys; share < 28 || share > 32 {
			t.Errorf("%s: on for %.1f%%, want 30%% ± 2", name, share)
		}
	}
}

func TestFlagCohortsIndependent(t *testing.T) {
	a, _ := NewFlag("a", FlagSpec{Enabled: true, Percent: pct(10)}, nil)
	b, _ := NewFlag("b", FlagSpec{Enabled: true, Percent: pct(10)}, nil)
	both := 0
	for i := range nKeys {
		r := fakeRequest{hash: HashString(keyN(i)), hasKey: true}
		if a.On(&r) && b.On(&r) {
			both++
		}
	}
	// Independent 10% cohorts share about 1% of the users, not 10%.
	if share := 100 * float64(both) / nKeys; share > 2 {
		t.Errorf("flags a and b at 10%% are both on for %.1f%% of users: the same cohort", share)
	}
}

func TestFlagAllocs(t *testing.T) {
	segs, err := NewSegments([]SegmentSpec{{Name: "beta", KeySource: userID, Keys: []string{"alice"}}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFlag("f", FlagSpec{Enabled: true, Percent: pct(50), Segment: "beta"}, segs)
	if err != nil {
		t.Fatal(err)
	}
	keyed := &bytesRequest{src: userID, value: []byte("alice"), hash: 1}
	if n := testing.AllocsPerRun(100, func() { f.On(keyed) }); n != 0 {
		t.Errorf("On: %v allocs", n)
	}
	g, _ := NewFlag("g", FlagSpec{Enabled: true, Percent: pct(50)}, nil)
	keyless := &bytesRequest{}
	if n := testing.AllocsPerRun(100, func() { g.On(keyless) }); n != 0 {
		t.Errorf("On without a sticky key: %v allocs", n)
	}
}
