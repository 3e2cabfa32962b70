package shadow

import (
	"bytes"
	"encoding/json"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzComparers = []*Comparer{
	mustComparerNoT(Spec{Body: BodyJSON}),
	mustComparerNoT(Spec{Body: BodyJSON, Ignore: []string{"a", "items[*].id", "**.t", "m.*", `["x.y"][0]`}}),
	mustComparerNoT(Spec{Body: BodyBytes}),
}

func mustComparerNoT(s Spec) *Comparer {
	c, err := NewComparer(s)
	if err != nil {
		panic(err)
	}
	return c
}

// FuzzDiff: any two bodies; the differ never panics, stays within its
// bounds, finds a body equal to itself, agrees with itself both ways, and,
// for JSON encoding/json reads alike, agrees with encoding/json.
func FuzzDiff(f *testing.F) {
	for _, s := range [][2]string{
		{`{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1.0}`},
		{`{"items":[{"id":1,"n":"x"}]}`, `{"items":[{"id":2,"n":"y"},3]}`},
		{`[1e999999999999999999999,-0,"\ud83d\ude00"]`, `[10e999999999999999999998,0,"😀"]`},
		{`{"a":{"a":{"a":[[[[[[[[[[]]]]]]]]]]}}}`, `{"a":{"a":{"a":[[[[[[[[[[1]]]]]]]]]]}}}`},
		{`{"m":{"k":1},"t":{"t":2}}`, `{"m":{"j":1},"t":{"t":3}}`},
		{`{"x.y":[1,2]}`, `{"x.y":[3,2]}`},
		{"", "<html>"},
		{`{"a":1,"a":2}`, `{"a":2}`},
		{"[" + strings.Repeat("[", 120) + strings.Repeat("]", 120) + "]", "[" + strings.Repeat("[", 120) + "1" + strings.Repeat("]", 120) + "]"},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, p, c []byte) {
		for i, cmp := range fuzzComparers {
			got := cmp.Diff(&Response{Body: p}, &Response{Body: c})
			if len(got) > MaxDifferences+1 {
				t.Fatalf("comparer %d: %d differences", i, len(got))
			}
			for _, d := range got {
				if len(d.Primary) > MaxValueSize+6 || len(d.Candidate) > MaxValueSize+6 || len(d.Path) > 4*MaxValueSize+3 {
					t.Fatalf("comparer %d: unbounded difference %q (%d, %d bytes)", i, d.Path, len(d.Primary), len(d.Candidate))
				}
				if d.Kind == "" || (d.Kind == KindMore) != (d.Path == "…and more") {
					t.Fatalf("comparer %d: %+v", i, d)
				}
			}
			if self := cmp.Diff(&Response{Body: p}, &Response{Body: bytes.Clone(p)}); self != nil {
				t.Fatalf("comparer %d: a body differs from itself: %s", i, dump(self))
			}
			if back := cmp.Diff(&Response{Body: c}, &Response{Body: p}); (len(back) == 0) != (len(got) == 0) {
				t.Fatalf("comparer %d: %d differences one way, %d the other", i, len(got), len(back))
			}
		}
		// The parser reads JSON as encoding/json does (depth aside: a body
		// under 10,000 bytes cannot nest past json's limit).
		for _, b := range [][]byte{p, c} {
			var ps parser
			if len(b) < 10000 && ps.parse(b) != json.Valid(b) {
				t.Fatalf("parse(%q) = %v, json.Valid says otherwise", b, !json.Valid(b))
			}
		}
		// Equality as encoding/json sees it, for what both read alike.
		pv, pok := oracle(p)
		cv, cok := oracle(c)
		if pok && cok {
			equal := reflect.DeepEqual(pv, cv)
			if got := fuzzComparers[0].Diff(&Response{Body: p}, &Response{Body: c}); equal != (len(got) == 0) {
				t.Fatalf("encoding/json says equal=%v; Diff:\n%s", equal, dump(got))
			}
		}
	})
}

// oracle decodes b with encoding/json, numbers made exact; false when b is
// outside what both read alike (invalid UTF-8, which encoding/json
// replaces; nesting compared byte for byte past MaxDepth; exponents too
// large for big.Rat to hold cheaply).
func oracle(b []byte) (any, bool) {
	if !json.Valid(b) || !utf8.Valid(b) || bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) >= MaxDepth {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return exact(v)
}

// exactNum is a number, a type apart from strings.
type exactNum string

func exact(v any) (any, bool) {
	switch v := v.(type) {
	case json.Number:
		s := string(v)
		if i := strings.IndexAny(s, "eE"); i >= 0 {
			e, err := strconv.Atoi(s[i+1:])
			if err != nil || e > 1000 || e < -1000 {
				return nil, false
			}
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			return nil, false
		}
		return exactNum(r.RatString()), true
	case []any:
		for i := range v {
			var ok bool
			if v[i], ok = exact(v[i]); !ok {
				return nil, false
			}
		}
	case map[string]any:
		for k := range v {
			x, ok := exact(v[k])
			if !ok {
				return nil, false
			}
			v[k] = x
		}
	}
	return v, true
}
