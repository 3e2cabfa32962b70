package jsonpath

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// MustParsePath is ParsePath for constant paths in tests.
func MustParsePath(s string) Path {
	p, err := ParsePath(s)
	if err != nil {
		panic(err)
	}
	return p
}

func mustParse(t testing.TB, s string) *Value {
	t.Helper()
	v, err := Parse([]byte(s))
	if err != nil {
		t.Fatalf("Parse(%s): %v", s, err)
	}
	return v
}

func TestParseRoundTrip(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{`{}`, `{}`},
		{` { "b" : 1 , "a" : [ true , false , null ] } `, `{"b":1,"a":[true,false,null]}`},
		{`{"z":1,"a":2,"m":3}`, `{"z":1,"a":2,"m":3}`}, // order kept
		{`[1.50,-0,2e10,1E-3]`, `[1.50,-0,2e10,1E-3]`}, // number text kept
		{`"a\u00e9\n\"b"`, `"a\u00e9\n\"b"`},           // string text kept
		{`{"k\u0041":1}`, `{"kA":1}`},                  // keys decoded
		{`{"a":{"b":{"c":[[]]}}}`, `{"a":{"b":{"c":[[]]}}}`},
	} {
		v := mustParse(t, tc.in)
		if got := string(v.AppendJSON(nil)); got != tc.out {
			t.Errorf("%s\n got %s\nwant %s", tc.in, got, tc.out)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		``, ` `, `{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `01`, `1.`, `-`, `1e`, `.5`,
		`tru`, `nul`, `"abc`, `"\x"`, `"\u12"`, "\"a\x01\"", `{} x`, `{1:2}`, `+1`,
		strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2),
	} {
		if _, err := Parse([]byte(in)); err == nil {
			t.Errorf("Parse(%q): no error", in)
		} else if json.Valid([]byte(in)) && !strings.Contains(err.Error(), "nested") {
			t.Errorf("Parse(%q) = %v but encoding/json accepts it", in, err)
		}
	}
	_, err := Parse([]byte(`{"a":}`))
	if se, ok := err.(*SyntaxError); !ok || se.Offset != 5 {
		t.Fatalf("error %v, want a SyntaxError at byte 5", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"a":[1,{"b":null}],"c":"\u00e9"}`, `[]`, `"x"`, `-1.5e+3`, `{"a":1,}`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Parse(b)
		valid := json.Valid(b)
		if (err == nil) != valid {
			if err != nil && strings.Contains(err.Error(), "nested") {
				return
			}
			t.Fatalf("Parse error %v, json.Valid %v for %q", err, valid, b)
		}
		if err != nil {
			return
		}
		out := v.AppendJSON(nil)
		if !json.Valid(out) {
			t.Fatalf("output not valid JSON: %q", out)
		}
		// Same document for encoding/json (compact forms agree on values).
		var a, c any
		if json.Unmarshal(b, &a) == nil && json.Unmarshal(out, &c) == nil {
			ja, _ := json.Marshal(a)
			jc, _ := json.Marshal(c)
			if !bytes.Equal(ja, jc) {
				t.Fatalf("value changed:\n in %s\nout %s", ja, jc)
			}
		}
	})
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		segs []string
		err  bool
	}{
		{in: "a", segs: []string{"a"}},
		{in: "a.b.0.*", segs: []string{"a", "b", "0#", "*!"}},
		{in: `x\.y.z`, segs: []string{"x.y", "z"}},
		{in: `a.\*`, segs: []string{"a", "*"}},
		{in: `a.01`, segs: []string{"a", "01"}}, // not a canonical index: a name
		{in: "", err: true},
		{in: "a..b", err: true},
		{in: ".a", err: true},
		{in: "a.", err: true},
		{in: `a\`, err: true},
		{in: strings.Repeat("a.", maxSegments) + "a", err: true},
	} {
		p, err := ParsePath(tc.in)
		if tc.err {
			if err == nil {
				t.Errorf("ParsePath(%q): no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePath(%q): %v", tc.in, err)
			continue
		}
		var got []string
		for _, s := range p.segs {
			k := s.key
			if s.wild {
				k += "!"
			}
			if s.index >= 0 {
				k += "#"
			}
			got = append(got, k)
		}
		if strings.Join(got, "|") != strings.Join(tc.segs, "|") {
			t.Errorf("ParsePath(%q) = %q, want %q", tc.in, got, tc.segs)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	f.Add(`a.b\.c.*.0`)
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err == nil && (len(p.segs) == 0 || p.String() != s) {
			t.Fatalf("%q parsed to %+v", s, p)
		}
	})
}

const doc = `{"id":7,"user":{"name":"Ann","email":"a@x","address":{"city":"Oslo"}},` +
	`"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["a","b"]}`

func TestOps(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  string
		want string
		n    int
	}{
		{"remove member", `[{"op":"remove","path":"user.email"}]`,
			`{"id":7,"user":{"name":"Ann","address":{"city":"Oslo"}},"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["a","b"]}`, 1},
		{"remove across an array", `[{"op":"remove","path":"items.secret"}]`,
			`{"id":7,"user":{"name":"Ann","email":"a@x","address":{"city":"Oslo"}},"items":[{"id":1,"title":"t1"},{"id":2,"title":"t2"}],"tags":["a","b"]}`, 2},
		{"remove element", `[{"op":"remove","path":"tags.0"}]`,
			`{"id":7,"user":{"name":"Ann","email":"a@x","address":{"city":"Oslo"}},"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["b"]}`, 1},
		{"remove star", `[{"op":"remove","path":"user.*"}]`,
			`{"id":7,"user":{},"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["a","b"]}`, 3},
		{"remove missing", `[{"op":"remove","path":"nope.x"}]`, doc, 0},
		{"rename keeps position", `[{"op":"rename","path":"user.name","to":"fullName"}]`,
			`{"id":7,"user":{"fullName":"Ann","email":"a@x","address":{"city":"Oslo"}},"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["a","b"]}`, 1},
		{"rename across an array", `[{"op":"rename","path":"items.title","to":"name"}]`,
			`{"id":7,"user":{"name":"Ann","email":"a@x","address":{"city":"Oslo"}},"items":[{"id":1,"name":"t1","secret":"s"},{"id":2,"name":"t2","secret":"s"}],"tags":["a","b"]}`, 2},
		{"rename over an existing member", `[{"op":"rename","path":"user.name","to":"email"}]`,
			`{"id":7,"user":{"email":"Ann","address":{"city":"Oslo"}},"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["a","b"]}`, 1},
		{"add creates parents", `[{"op":"add","path":"meta.source","value":"gw"}]`,
			doc[:len(doc)-1] + `,"meta":{"source":"gw"}}`, 1},
		{"add replaces", `[{"op":"add","path":"id","value":{"n":[1]}}]`,
			`{"id":{"n":[1]},` + doc[len(`{"id":7,`):], 1},
		{"add across an array", `[{"op":"add","path":"items.seen","value":false}]`,
			`{"id":7,"user":{"name":"Ann","email":"a@x","address":{"city":"Oslo"}},"items":[{"id":1,"title":"t1","secret":"s","seen":false},{"id":2,"title":"t2","secret":"s","seen":false}],"tags":["a","b"]}`, 2},
		{"add element replaces", `[{"op":"add","path":"tags.1","value":"z"}]`,
			`{"id":7,"user":{"name":"Ann","email":"a@x","address":{"city":"Oslo"}},"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["a","z"]}`, 1},
		{"move up", `[{"op":"move","from":"user.address.city","to":"city"}]`,
			`{"id":7,"user":{"name":"Ann","email":"a@x","address":{}},"items":[{"id":1,"title":"t1","secret":"s"},{"id":2,"title":"t2","secret":"s"}],"tags":["a","b"],"city":"Oslo"}`, 1},
		{"move needs one value", `[{"op":"move","from":"items.id","to":"ids"}]`, doc, 0},
		{"ops run in order", `[{"op":"rename","path":"user","to":"u"},{"op":"remove","path":"u.address"},{"op":"remove","path":"items"},{"op":"remove","path":"tags"}]`,
			`{"id":7,"u":{"name":"Ann","email":"a@x"}}`, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cfgs []OpConfig
			if err := json.Unmarshal([]byte(tc.ops), &cfgs); err != nil {
				t.Fatal(err)
			}
			ops, err := Compile("ops", cfgs)
			if err != nil {
				t.Fatal(err)
			}
			v := mustParse(t, doc)
			n := Apply(v, ops)
			if got := string(v.AppendJSON(nil)); got != tc.want || n != tc.n {
				t.Fatalf("got %s (%d changes)\nwant %s (%d)", got, n, tc.want, tc.n)
			}
		})
	}
}

func TestSetClonesValue(t *testing.T) {
	v := mustParse(t, `{"a":[{},{}]}`)
	val := mustParse(t, `{"x":1}`)
	MustParsePath("a.*").Set(v, val)
	MustParsePath("a.0.x").Set(v, NewString("changed"))
	if got := string(v.AppendJSON(nil)); got != `{"a":[{"x":"changed"},{"x":1}]}` {
		t.Fatalf("copies share state: %s", got)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ ops, err string }{
		{`[{"op":"zap","path":"a"}]`, `ops[0] (zap): unknown op "zap" (want rename, remove, add or move)`},
		{`[{"path":"a"}]`, `ops[0] (): missing "op" (one of rename, remove, add, move)`},
		{`[{"op":"remove"}]`, `ops[0] (remove): missing "path"`},
		{`[{"op":"remove","path":"a..b"}]`, `ops[0] (remove): "path": path "a..b": empty segment`},
		{`[{"op":"remove","path":"a","to":"b"}]`, `ops[0] (remove): "to" does not apply to this op`},
		{`[{"op":"rename","path":"a"}]`, `ops[0] (rename): missing "to" (the new member name)`},
		{`[{"op":"rename","path":"a","to":"b.c"}]`, `ops[0] (rename): "to" is a member name, not a path ("b.c"); use "move" to change the parent`},
		{`[{"op":"rename","path":"a.*","to":"b"}]`, `ops[0] (rename): "path" must end in a member name to rename, not "*"`},
		{`[{"op":"add","path":"a"}]`, `ops[0] (add): missing "value"`},
		{`[{"op":"move","from":"a.*","to":"b"}]`, `ops[0] (move): "move" takes one value: no "*" in "from" or "to" (rename members in place with "rename")`},
		{`[{"op":"move","from":"a"}]`, `ops[0] (move): missing "to"`},
	} {
		var cfgs []OpConfig
		if err := json.Unmarshal([]byte(tc.ops), &cfgs); err != nil {
			t.Fatal(err)
		}
		if _, err := Compile("ops", cfgs); err == nil || err.Error() != tc.err {
			t.Errorf("%s:\n got %v\nwant %s", tc.ops, err, tc.err)
		}
	}
}

func TestSelection(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		want  string
	}{
		{[]string{"id"}, `{"id":7}`},
		{[]string{"user.name", "id"}, `{"id":7,"user":{"name":"Ann"}}`}, // document order
		{[]string{"items.id"}, `{"items":[{"id":1},{"id":2}]}`},
		{[]string{"items.*.title"}, `{"items":[{"title":"t1"},{"title":"t2"}]}`},
		{[]string{"items.1"}, `{"items":[{"id":2,"title":"t2","secret":"s"}]}`},
		{[]string{"items.1.id", "items.title"}, `{"items":[{"title":"t1"},{"id":2,"title":"t2"}]}`},
		{[]string{"user", "user.name"}, `{"user":{"name":"Ann","email":"a@x","address":{"city":"Oslo"}}}`},
		{[]string{"user.*.city"}, `{"user":{"address":{"city":"Oslo"}}}`},
		{[]string{"tags"}, `{"tags":["a","b"]}`},
		{[]string{"tags.x"}, `{}`},
		{[]string{"nope"}, `{}`},
		{[]string{"user.nope", "id"}, `{"id":7}`},
	} {
		var paths []Path
		for _, s := range tc.paths {
			paths = append(paths, MustParsePath(s))
		}
		v := mustParse(t, doc)
		got := string(NewSelection(paths).Apply(v).AppendJSON(nil))
		if got != tc.want {
			t.Errorf("select %q\n got %s\nwant %s", tc.paths, got, tc.want)
		}
		if string(v.AppendJSON(nil)) != doc {
			t.Fatalf("Apply modified its input")
		}
	}
	// A top-level array: names apply to each element.
	arr := mustParse(t, `[{"a":1,"b":2},{"a":3}]`)
	if got := string(NewSelection([]Path{MustParsePath("a")}).Apply(arr).AppendJSON(nil)); got != `[{"a":1},{"a":3}]` {
		t.Fatalf("array root: %s", got)
	}
}

func TestValueHelpers(t *testing.T) {
	v := mustParse(t, `{"s":"a\"b","n":1}`)
	if s, ok := v.Get("s").Str(); !ok || s != `a"b` {
		t.Fatalf("Str = %q %v", s, ok)
	}
	if _, ok := v.Get("n").Str(); ok || v.Get("n").Text() != "1" {
		t.Fatal("number as string")
	}
	if !v.Delete("n") || v.Delete("n") || v.Get("n") != nil {
		t.Fatal("Delete")
	}
	if got := string(NewString("é\x01\"\n\xff").AppendJSON(nil)); got != `"é\u0001\"\n\ufffd"` {
		t.Fatalf("NewString encoding %s", got)
	}
	b, _ := json.Marshal(map[string]*Value{"v": v})
	if string(b) != `{"v":{"s":"a\"b"}}` {
		t.Fatalf("MarshalJSON: %s", b)
	}
}

func BenchmarkParseApply(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"items":[`)
	for i := range 200 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"id":1,"title":"some title","body":"a longer body of text","secret":"s","tags":["a","b"]}`)
	}
	sb.WriteString(`]}`)
	in := []byte(sb.String())
	var cfgs []OpConfig
	json.Unmarshal([]byte(`[{"op":"remove","path":"items.secret"},{"op":"rename","path":"items.title","to":"name"}]`), &cfgs)
	ops, _ := Compile("ops", cfgs)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	var out []byte
	for b.Loop() {
		v, _ := Parse(in)
		Apply(v, ops)
		out = v.AppendJSON(out[:0])
	}
}
