package traffic

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	for _, tt := range []struct {
		text string
		want Source
		err  string
	}{
		{"header:X-User-Id", Source{SourceHeader, "X-User-Id"}, ""},
		{"cookie:uid", Source{SourceCookie, "uid"}, ""},
		{"query:u", Source{SourceQuery, "u"}, ""},
		{"consumer", Source{SourceConsumer, ""}, ""},
		{"claim:sub", Source{SourceClaim, "sub"}, ""},
		{"claim:org.plan", Source{SourceClaim, "org.plan"}, ""},
		{"header:X User", Source{}, "not a token"},
		{"header:X:Y", Source{}, "not a token"},
		{"header:", Source{}, "needs a name"},
		{"header", Source{}, "needs a name"},
		{"cookie:a;b", Source{}, "not a token"},
		{"query:a&b", Source{}, `holds '&'`},
		{"claim:org..plan", Source{}, "empty segment"},
		{"claim:.sub", Source{}, "empty segment"},
		{"consumer:x", Source{}, "takes no name"},
		{"Header:X", Source{}, `unknown kind "Header"`},
		{"", Source{}, "unknown kind"},
	} {
		got, err := ParseSource(tt.text)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSource(%q) = %v, %v; want error with %q", tt.text, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSource(%q) = %v, %v; want %v", tt.text, got, err, tt.want)
		}
		if s := got.String(); s != tt.text {
			t.Errorf("String() = %q, want %q", s, tt.text)
		}
	}
}

func TestSourceJSON(t *testing.T) {
	var v struct{ Sticky Source }
	if err := json.Unmarshal([]byte(`{"Sticky":"header:X-User-Id"}`), &v); err != nil || v.Sticky != (Source{SourceHeader, "X-User-Id"}) {
		t.Fatalf("unmarshal: %v, %v", v.Sticky, err)
	}
	b, _ := json.Marshal(v)
	if string(b) != `{"Sticky":"header:X-User-Id"}` {
		t.Errorf("marshal: %s", b)
	}
	if err := json.Unmarshal([]byte(`{"Sticky":"header:"}`), &v); err == nil {
		t.Error("an invalid source unmarshalled")
	}
}

// fakeRequest is a Request over fixed values.
type fakeRequest struct {
	values map[Source]string
	hash   uint64
	hasKey bool
}

func (r *fakeRequest) Value(src Source) []byte {
	if v, ok := r.values[src]; ok {
		return []byte(v) // tests only: a real request returns its own bytes
	}
	return nil
}

func (r *fakeRequest) StickyHash() (uint64, bool) { return r.hash, r.hasKey }

// bytesRequest is a Request that does not allocate, for the alloc tests.
type bytesRequest struct {
	src   Source
	value []byte
	hash  uint64
}

func (r *bytesRequest) Value(src Source) []byte {
	if src == r.src {
		return r.value
	}
	return nil
}

func (r *bytesRequest) StickyHash() (uint64, bool) { return r.hash, r.value != nil }

var (
	userID = Source{SourceHeader, "X-User-Id"}
	plan   = Source{SourceClaim, "plan"}
)

func pct(p int) *int { return &p }

func TestNewSegmentErrors(t *testing.T) {
	for _, tt := range []struct {
		spec SegmentSpec
		want string
	}{
		{SegmentSpec{Keys: []string{"a"}, KeySource: userID}, "empty name"},
		{SegmentSpec{Name: "beta testers", Percent: pct(5)}, `holds ' '`},
		{SegmentSpec{Name: "beta"}, `segment "beta": no criteria`},
		{SegmentSpec{Name: "beta", Keys: []string{"a"}}, "keys: no source"},
		{SegmentSpec{Name: "beta", KeySource: userID}, "keys: source header:X-User-Id given but the list is empty"},
		{SegmentSpec{Name: "beta", KeySource: userID, Keys: []string{"a", ""}}, "keys: entry 2 is empty"},
		{SegmentSpec{Name: "beta", ValueSource: Source{SourceHeader, "bad header"}, Values: []string{"1"}}, "values: source"},
		{SegmentSpec{Name: "beta", ValueSource: Source{SourceConsumer, "x"}, Values: []string{"1"}}, "consumer takes no name"},
		{SegmentSpec{Name: "beta", Percent: pct(101)}, "percent 101 out of range"},
		{SegmentSpec{Name: "beta", Percent: pct(-1)}, "percent -1 out of range"},
	} {
		_, err := NewSegment(tt.spec)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewSegment(%+v) = %v, want error with %q", tt.spec, err, tt.want)
		}
	}
	_, err := NewSegments([]SegmentSpec{{Name: "a", Percent: pct(1)}, {Name: "a", Percent: pct(2)}})
	if err == nil || !strings.Contains(err.Error(), `segment "a" is defined twice`) {
		t.Errorf("duplicate segments: %v", err)
	}
}

func TestSegmentContains(t *testing.T) {
	beta, err := NewSegment(SegmentSpec{
		Name:      "beta",
		KeySource: userID, Keys: []string{"alice", "bob"},
		ValueSource: plan, Values: []string{"pro", "enterprise"},
	})
	if err != nil {
		t.Fatal(err)
	}
	early, err := NewSegment(SegmentSpec{Name: "early", Percent: pct(10)})
	if err != nil {
		t.Fatal(err)
	}
	var in, out uint64 // hashes inside and outside the first 10%
	for i := 0; in == 0 || out == 0; i++ {
		if h := HashString(keyN(i)); InPercent(Salted(h, Salt("segment/early")), 10) {
			in = h
		} else {
			out = h
		}
	}
	for _, tt := range []struct {
		name string
		seg  *Segment
		req  fakeRequest
		want bool
	}{
		{"listed key", beta, fakeRequest{values: map[Source]string{userID: "alice"}}, true},
		{"unlisted key", beta, fakeRequest{values: map[Source]string{userID: "carol"}}, false},
		{"key is case-sensitive", beta, fakeRequest{values: map[Source]string{userID: "Alice"}}, false},
		{"listed value", beta, fakeRequest{values: map[Source]string{userID: "carol", plan: "pro"}}, true},
		{"unlisted value", beta, fakeRequest{values: map[Source]string{plan: "free"}}, false},
		{"key read from its own source only", beta, fakeRequest{values: map[Source]string{plan: "alice"}}, false},
		{"nothing", beta, fakeRequest{}, false},
		{"in percent", early, fakeRequest{hash: in, hasKey: true}, true},
		{"out of percent", early, fakeRequest{hash: out, hasKey: true}, false},
		{"no sticky key is never in a percent", early, fakeRequest{hash: in}, false},
	} {
		if got := tt.seg.Contains(&tt.req); got != tt.want {
			t.Errorf("%s: Contains = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSegmentAllocs(t *testing.T) {
	seg, err := NewSegment(SegmentSpec{Name: "beta", KeySource: userID, Keys: []string{"alice", "bob"}, Percent: pct(0)})
	if err != nil {
		t.Fatal(err)
	}
	r := &bytesRequest{src: userID, value: []byte("bob")}
	if n := testing.AllocsPerRun(100, func() {
		if !seg.Contains(r) {
			t.Fatal("bob is not in the segment")
		}
	}); n != 0 {
		t.Errorf("Contains: %v allocs", n)
	}
}

func BenchmarkContains(b *testing.B) {
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = keyN(i)
	}
	seg, err := NewSegment(SegmentSpec{Name: "beta", KeySource: userID, Keys: keys, ValueSource: plan, Values: []string{"pro"}, Percent: pct(5)})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		key  string
	}{{"member", "user-500"}, {"non-member", "someone-else"}} {
		b.Run(bc.name, func(b *testing.B) {
			r := &bytesRequest{src: userID, value: []byte(bc.key), hash: 1<<64 - 1}
			b.ReportAllocs()
			for b.Loop() {
				seg.Contains(r)
			}
		})
	}
}
