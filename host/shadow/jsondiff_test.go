package shadow

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// want is an expected Difference; empty values are not checked.
type want struct {
	path      string
	kind      Kind
	primary   string
	candidate string
}

func checkDiffs(t *testing.T, name string, got []Difference, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Errorf("%s: %d differences, want %d:\n%s", name, len(got), len(wants), dump(got))
		return
	}
	for i, w := range wants {
		g := got[i]
		if g.Path != w.path || g.Kind != w.kind ||
			(w.primary != "" && g.Primary != w.primary) || (w.candidate != "" && g.Candidate != w.candidate) {
			t.Errorf("%s: difference %d = %+v, want %+v\n%s", name, i, g, w, dump(got))
		}
	}
}

func dump(ds []Difference) string {
	b, _ := json.MarshalIndent(ds, "", "  ")
	return string(b)
}

func mustComparer(t testing.TB, spec Spec) *Comparer {
	t.Helper()
	c, err := NewComparer(spec)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDiffJSON(t *testing.T) {
	cases := []struct {
		name          string
		ignore        []string
		primary, cand string
		want          []want
	}{
		{name: "key order", primary: `{"a":1,"b":{"x":[1,2],"y":"s"},"c":null}`,
			cand: `{"c":null,"b":{"y":"s","x":[1,2]},"a":1}`},
		{name: "white space", primary: `{"a":[1,2]}`, cand: " {\n\t\"a\" : [ 1 , 2 ] }\r\n"},
		{name: "both empty", primary: ``, cand: ``},
		{name: "nested field changed",
			primary: `{"data":{"items":[{"name":"a"},{"name":"b"}]}}`,
			cand:    `{"data":{"items":[{"name":"a"},{"name":"c"}]}}`,
			want:    []want{{"body.data.items[1].name", KindChanged, `"b"`, `"c"`}}},
		{name: "ignored field changed", ignore: []string{"data.updated_at"},
			primary: `{"data":{"id":1,"updated_at":"2024-01-01"}}`,
			cand:    `{"data":{"id":1,"updated_at":"2025-06-30"}}`},
		{name: "ignored field only on one side", ignore: []string{"data.updated_at"},
			primary: `{"data":{"id":1,"updated_at":"2024-01-01"}}`,
			cand:    `{"data":{"id":1}}`},
		{name: "ignore is anchored at the root", ignore: []string{"updated_at"},
			primary: `{"updated_at":1,"data":{"updated_at":1}}`,
			cand:    `{"updated_at":2,"data":{"updated_at":2}}`,
			want:    []want{{"body.data.updated_at", KindChanged, "1", "2"}}},
		{name: "[*] ignore", ignore: []string{"items[*].id"},
			primary: `{"items":[{"id":1,"n":"a"},{"id":2,"n":"b"}]}`,
			cand:    `{"items":[{"id":7,"n":"a"},{"id":8,"n":"x"}]}`,
			want:    []want{{"body.items[1].n", KindChanged, `"b"`, `"x"`}}},
		{name: "[*] does not match a key", ignore: []string{"[*]"},
			primary: `{"a":1}`, cand: `{"a":2}`,
			want: []want{{"body.a", KindChanged, "1", "2"}}},
		{name: "* ignore matches keys and indexes", ignore: []string{"meta.*", "list.*"},
			primary: `{"meta":{"a":1,"b":2},"list":[1,2],"x":1}`,
			cand:    `{"meta":{"a":3,"c":4},"list":[5,6],"x":1}`},
		{name: "index ignore keeps the length", ignore: []string{"items[0]"},
			primary: `{"items":[1,2]}`, cand: `{"items":[9,2,3]}`,
			want: []want{{"body.items", KindLength, "length 2", "length 3"}}},
		{name: "** ignore at any depth", ignore: []string{"**.request_id"},
			primary: `{"request_id":1,"a":{"request_id":1,"b":[{"request_id":1,"v":1}]}}`,
			cand:    `{"request_id":2,"a":{"request_id":2,"b":[{"request_id":2,"v":2}]}}`,
			want:    []want{{"body.a.b[0].v", KindChanged, "1", "2"}}},
		{name: "** in the middle", ignore: []string{"a.**.t"},
			primary: `{"a":{"t":1,"x":{"y":{"t":1}}},"t":1}`,
			cand:    `{"a":{"t":2,"x":{"y":{"t":2}}},"t":2}`,
			want:    []want{{"body.t", KindChanged, "1", "2"}}},
		{name: "quoted key ignore", ignore: []string{`data["a.b"]`},
			primary: `{"data":{"a.b":1,"a":{"b":1}}}`, cand: `{"data":{"a.b":2,"a":{"b":2}}}`,
			want: []want{{"body.data.a.b", KindChanged, "1", "2"}}},
		{name: "quoted key in a path", primary: `{"a.b":1,"":1,"x y":1}`, cand: `{"a.b":2,"":2,"x y":2}`,
			want: []want{{`body[""]`, KindChanged, "1", "2"}, {`body["a.b"]`, KindChanged, "1", "2"},
				{`body["x y"]`, KindChanged, "1", "2"}}},
		{name: "root array", primary: `[1,{"a":1}]`, cand: `[1,{"a":2}]`,
			want: []want{{"body[1].a", KindChanged, "1", "2"}}},
		{name: "number forms", primary: `[1,1,1,1,100,-0,0.5,1.5e3,0.001]`,
			cand: `[1.0,1e0,10e-1,0.1E+1,1e2,0,5e-1,1500,1e-3]`},
		{name: "numbers differ", primary: `[1,1,-1]`, cand: `[1.01,-1,1]`,
			want: []want{{"body[0]", KindChanged, "1", "1.01"}, {"body[1]", KindChanged, "1", "-1"},
				{"body[2]", KindChanged, "-1", "1"}}},
		{name: "big integers are exact",
			primary: `{"a":12345678901234567890,"b":9007199254740993,"c":123456789012345678901234567890}`,
			cand:    `{"a":12345678901234567891,"b":9007199254740992,"c":1234567890123456789012345678900e-1}`,
			want: []want{{"body.a", KindChanged, "12345678901234567890", "12345678901234567891"},
				{"body.b", KindChanged, "9007199254740993", "9007199254740992"}}},
		{name: "huge exponents", primary: `[1e999999999999999999999,1e-999999999999999999999,2e99999999999999999999]`,
			cand: `[10e999999999999999999998,0.1e-999999999999999999998,2e99999999999999999998]`,
			want: []want{{"body[2]", KindChanged, "2e99999999999999999999", "2e99999999999999999998"}}},
		{name: "missing and extra keys", primary: `{"a":1,"b":{"c":[1]},"d":2}`, cand: `{"a":1,"d":2,"e":"x"}`,
			want: []want{{"body.b", KindMissing, `{"c":[1]}`, Absent}, {"body.e", KindExtra, Absent, `"x"`}}},
		{name: "type changes", primary: `{"a":1,"b":[],"c":null,"d":"1","e":{}}`,
			cand: `{"a":"1","b":{},"c":0,"d":1,"e":[]}`,
			want: []want{{"body.a", KindType, "1", `"1"`}, {"body.b", KindType, "[]", "{}"},
				{"body.c", KindType, "null", "0"}, {"body.d", KindType, `"1"`, "1"}, {"body.e", KindType, "{}", "[]"}}},
		{name: "booleans", primary: `[true,false,true]`, cand: `[true,true,false]`,
			want: []want{{"body[1]", KindChanged, "false", "true"}, {"body[2]", KindChanged, "true", "false"}}},
		{name: "array length", primary: `{"l":[1,2,3]}`, cand: `{"l":[1,2,4,5]}`,
			want: []want{{"body.l", KindLength, "length 3", "length 4"}, {"body.l[2]", KindChanged, "3", "4"}}},
		{name: "escapes", primary: `{"\u0061":"\u00e9\n","s":"\ud83d\ude00","t":"a\/b"}`,
			cand: `{"a":"é\u000a","s":"😀","t":"a/b"}`},
		{name: "bad surrogates", primary: `["\ud800","\udc00x"]`, cand: `["\ufffd","\ufffdx"]`},
		{name: "duplicate keys: the last wins", primary: `{"a":1,"a":2,"b":1}`, cand: `{"b":1,"a":2}`},
		{name: "not JSON", primary: `{"a":1}`, cand: `<html>oops</html>`,
			want: []want{{"body", KindBytes, `offset 0 of 7 bytes: "{\"a\":1}"`,
				`offset 0 of 17 bytes (not JSON): "<html>oops</html>"`}}},
		{name: "trailing garbage is not JSON", primary: `{"a":1}`, cand: `{"a":1}x`,
			want: []want{{"body", KindBytes, `offset 7 of 7 bytes: (end)`, `offset 7 of 8 bytes (not JSON): "{\"a\":1}x"`}}},
		{name: "one side empty", primary: ``, cand: `{}`,
			want: []want{{"body", KindBytes, "offset 0 of 0 bytes (not JSON): (end)", `offset 0 of 2 bytes: "{}"`}}},
		{name: "long values are cut", primary: `{"a":"` + strings.Repeat("x", 300) + `"}`, cand: `{"a":"y"}`,
			want: []want{{"body.a", KindChanged, `"` + strings.Repeat("x", MaxValueSize-1) + "…", `"y"`}}},
	}
	for _, tc := range cases {
		c := mustComparer(t, Spec{Body: BodyJSON, Ignore: tc.ignore})
		got := c.Diff(&Response{Body: []byte(tc.primary)}, &Response{Body: []byte(tc.cand)})
		checkDiffs(t, tc.name, got, tc.want)
		// Equality is symmetric.
		if back := c.Diff(&Response{Body: []byte(tc.cand)}, &Response{Body: []byte(tc.primary)}); (len(back) == 0) != (len(got) == 0) {
			t.Errorf("%s: %d differences one way, %d the other", tc.name, len(got), len(back))
		}
	}
}

func TestDiffContentType(t *testing.T) {
	c := mustComparer(t, Spec{Body: BodyJSON})
	// A JSON body is read as JSON whatever its label.
	p, q := `{"a":1,"b":2}`, `{"b":2,"a":1}`
	for _, ct := range [][2]string{{"", ""}, {"application/json", "text/plain; charset=utf-8"}, {"text/html", "application/problem+json"}} {
		if got := c.Diff(&Response{Body: []byte(p), ContentType: ct[0]}, &Response{Body: []byte(q), ContentType: ct[1]}); got != nil {
			t.Errorf("%q vs %q: %s", ct[0], ct[1], dump(got))
		}
	}
	// The label is shown beside a body that is not JSON.
	got := c.Diff(&Response{Body: []byte(p), ContentType: "application/json"}, &Response{Body: []byte("<h1>502</h1>"), ContentType: "text/html"})
	checkDiffs(t, "not JSON, labelled", got, []want{{"body", KindBytes, `offset 0 of 13 bytes: "{\"a\":1,\"b\":2}"`,
		`offset 0 of 12 bytes (not JSON, "text/html"): "<h1>502</h1>"`}})
}

func TestDiffBound(t *testing.T) {
	var a, b strings.Builder
	a.WriteString("{")
	b.WriteString("{")
	for i := range 200 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		fmt.Fprintf(&a, `"k%03d":%d`, i, i)
		fmt.Fprintf(&b, `"k%03d":%d`, i, i+1)
	}
	a.WriteString("}")
	b.WriteString("}")
	c := mustComparer(t, Spec{Status: true, Body: BodyJSON})
	got := c.Diff(&Response{Status: 200, Body: []byte(a.String())}, &Response{Status: 500, Body: []byte(b.String())})
	if len(got) != MaxDifferences+1 {
		t.Fatalf("%d differences, want %d", len(got), MaxDifferences+1)
	}
	if got[0].Path != "status" || got[1].Path != "body.k000" || got[MaxDifferences-1].Path != "body.k048" {
		t.Errorf("first differences: %s", dump(got[:3]))
	}
	if last := got[MaxDifferences]; last.Kind != KindMore || last.Path != "…and more" {
		t.Errorf("last difference %+v, want the marker", last)
	}
}

func TestDiffHugeBody(t *testing.T) {
	big := []byte(`{"a":"` + strings.Repeat("x", MaxBodySize) + `"}`)
	other := append([]byte(nil), big...)
	other[10] = 'y' // within the hashed prefix
	// A body over MaxBodySize is compared by its length and its first
	// BigPrefix bytes only: a change past them with the length kept is not
	// seen (the price of a cheap Capture on the client's path).
	late := append([]byte(nil), big...)
	late[len(late)-3] = 'y'
	for _, mode := range []string{BodyJSON, BodyBytes} {
		c := mustComparer(t, Spec{Body: mode})
		if got := c.Diff(&Response{Body: big}, &Response{Body: append([]byte(nil), big...)}); got != nil {
			t.Errorf("%s: equal huge bodies: %s", mode, dump(got))
		}
		got := c.Diff(&Response{Body: big}, &Response{Body: other})
		checkDiffs(t, mode+" huge", got, []want{{path: "body", kind: KindTooLarge}})
		if !strings.HasPrefix(got[0].Primary, fmt.Sprintf("%d bytes, sha256 of the first %d ", len(big), BigPrefix)) {
			t.Errorf("%s: %q", mode, got[0].Primary)
		}
		if got := c.Diff(&Response{Body: big}, &Response{Body: late}); got != nil {
			t.Errorf("%s: a change past the prefix: %s", mode, dump(got))
		}
		// One side over the bound: by length and digest too.
		got = c.Diff(&Response{Body: big}, &Response{Body: []byte(`{}`)})
		checkDiffs(t, mode+" one huge", got, []want{{path: "body", kind: KindTooLarge}})
		// A captured huge body keeps its digest, not its bytes.
		cp := c.Capture(&Response{Body: big})
		if cp.Body != nil {
			t.Errorf("%s: Capture kept %d bytes of a huge body", mode, len(cp.Body))
		}
		if got := c.Diff(cp, &Response{Body: big}); got != nil {
			t.Errorf("%s: captured vs same: %s", mode, dump(got))
		}
		if got := c.Diff(cp, c.Capture(&Response{Body: other})); len(got) != 1 || got[0].Kind != KindTooLarge {
			t.Errorf("%s: captured vs other: %s", mode, dump(got))
		}
	}
}

func TestDiffDeep(t *testing.T) {
	c := mustComparer(t, Spec{Body: BodyJSON})
	nest := func(n int, open, inner, close string) []byte {
		return []byte(strings.Repeat(open, n) + inner + strings.Repeat(close, n))
	}
	// 10,000 levels: the same, then one differing at the bottom.
	a, b := nest(10000, "[", "1", "]"), nest(10000, "[", "2", "]")
	if got := c.Diff(&Response{Body: a}, &Response{Body: append([]byte(" "), a...)}); got != nil {
		t.Errorf("equal deep arrays: %s", dump(got))
	}
	got := c.Diff(&Response{Body: a}, &Response{Body: b})
	checkDiffs(t, "deep arrays", got, []want{{path: "body" + strings.Repeat("[0]", MaxDepth), kind: KindTooDeep}})
	if p := got[0].Primary; len(p) > MaxValueSize+len("…") || !strings.HasPrefix(p, "[[[[") {
		t.Errorf("deep value %q", p)
	}
	o1, o2 := nest(10000, `{"a":`, "1", "}"), nest(10000, `{"a":`, "2", "}")
	checkDiffs(t, "deep objects", c.Diff(&Response{Body: o1}, &Response{Body: o2}),
		[]want{{path: "body" + strings.Repeat(".a", MaxDepth), kind: KindTooDeep}})
	// Just within the bound: compared field by field.
	checkDiffs(t, "deep but within", c.Diff(&Response{Body: nest(MaxDepth, "[", "1", "]")}, &Response{Body: nest(MaxDepth, "[", "2", "]")}),
		[]want{{path: "body" + strings.Repeat("[0]", MaxDepth), kind: KindChanged, primary: "1", candidate: "2"}})
	// Unbalanced or invalid past the bound: not JSON.
	open := []byte(strings.Repeat("[", MaxBodySize))
	checkDiffs(t, "all open", c.Diff(&Response{Body: open}, &Response{Body: a}), []want{{path: "body", kind: KindBytes}})
	bad := nest(200, "[", "1,", "]")
	checkDiffs(t, "invalid deep", c.Diff(&Response{Body: bad}, &Response{Body: a}), []want{{path: "body", kind: KindBytes}})
	badKey := nest(200, `{"a":`, `{1:2}`, "}")
	checkDiffs(t, "invalid deep key", c.Diff(&Response{Body: badKey}, &Response{Body: a}), []want{{path: "body", kind: KindBytes}})
	// A scalar where the other side goes deep: a type difference.
	checkDiffs(t, "deep vs scalar", c.Diff(&Response{Body: nest(MaxDepth, "[", "1", "]")}, &Response{Body: nest(MaxDepth, "[", "[1]", "]")}),
		[]want{{path: "body" + strings.Repeat("[0]", MaxDepth), kind: KindType}})
}
