package shadow

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParsePath(t *testing.T) {
	key := func(k string) segment { return segment{kind: segKey, key: k} }
	idx := func(i int) segment { return segment{kind: segIndex, index: i} }
	anyS, anyI, deep := segment{kind: segAny}, segment{kind: segAnyIndex}, segment{kind: segDeep}
	valid := []struct {
		in   string
		want ignorePath
		back string // String(), when not the input
	}{
		{"a", ignorePath{key("a")}, ""},
		{"data.updated_at", ignorePath{key("data"), key("updated_at")}, ""},
		{"items[*].id", ignorePath{key("items"), anyI, key("id")}, ""},
		{"items[0]", ignorePath{key("items"), idx(0)}, ""},
		{"items[123456789]", ignorePath{key("items"), idx(123456789)}, ""},
		{"meta.*", ignorePath{key("meta"), anyS}, ""},
		{"*", ignorePath{anyS}, ""},
		{"*.id", ignorePath{anyS, key("id")}, ""},
		{"**.request_id", ignorePath{deep, key("request_id")}, ""},
		{"a.**.b.**", ignorePath{key("a"), deep, key("b"), deep}, ""},
		{"[0].id", ignorePath{idx(0), key("id")}, ""},
		{"[*]", ignorePath{anyI}, ""},
		{"a[0][1]", ignorePath{key("a"), idx(0), idx(1)}, ""},
		{`data["a.b"]`, ignorePath{key("data"), key("a.b")}, ""},
		{`data["x"]`, ignorePath{key("data"), key("x")}, "data.x"},
		{`["*"]`, ignorePath{key("*")}, ""},
		{`["**"].x`, ignorePath{key("**"), key("x")}, ""},
		{`[""]`, ignorePath{key("")}, ""},
		{`["\u0041\n"]`, ignorePath{key("A\n")}, `["A\u000a"]`},
		{`a["\"q\\"]`, ignorePath{key("a"), key(`"q\`)}, ""},
		{"naïve.$ref.@id.a-b.a:b", ignorePath{key("naïve"), key("$ref"), key("@id"), key("a-b"), key("a:b")}, ""},
	}
	for _, tc := range valid {
		got, err := parsePath(tc.in)
		if err != nil {
			t.Errorf("parsePath(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parsePath(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
		back := tc.back
		if back == "" {
			back = tc.in
		}
		if s := got.String(); s != back {
			t.Errorf("parsePath(%q).String() = %q, want %q", tc.in, s, back)
		}
	}

	invalid := []struct {
		in     string
		offset int
		reason string
	}{
		{"", 0, "empty path"},
		{".", 0, "unexpected '.'"},
		{".a", 0, "unexpected '.'"},
		{"a.", 2, "path ends with '.'"},
		{"a..b", 2, "want a key after '.'"},
		{"a.[0]", 2, "want a key after '.'"},
		{"a[", 2, "unclosed '['"},
		{"a[0", 3, "want ']'"},
		{"a[x]", 2, "want an index, * or a quoted key"},
		{"a[-1]", 2, "want an index, * or a quoted key"},
		{"a[01]", 2, "leading zero"},
		{"a[1234567890]", 2, "too large"},
		{"a[**]", 3, "want ']'"},
		{`a["b]`, 2, "bad quoted key"},
		{`a["\x"]`, 2, "bad quoted key"},
		{"a\"b\"", 1, "want '.' or '['"},
		{"a]", 1, "want '.' or '['"},
		{"a b", 1, "want '.' or '['"},
		{"a[0]b", 4, "want '.' or '['"},
		{"a\tb", 1, "want '.' or '['"},
		{"a*", 1, "* stands alone"},
		{"*a", 0, "* stands alone"},
		{"a.b*c", 3, "* stands alone"},
		{"***", 0, "* stands alone"},
		{"**", 0, "ignore the whole body"},
		{"**.**", 3, "** after **"},
		{"a.**.**.b", 5, "** after **"},
		{"\\a", 0, "unexpected '\\\\'"},
		{strings.Repeat("a.", MaxDepth) + "a", 2 * MaxDepth, "more than 100 segments"},
	}
	for _, tc := range invalid {
		_, err := parsePath(tc.in)
		var pe *PathError
		if !errors.As(err, &pe) {
			t.Errorf("parsePath(%q) = %v, want a *PathError", tc.in, err)
			continue
		}
		if pe.Path != tc.in || pe.Offset != tc.offset || !strings.Contains(pe.Reason, tc.reason) {
			t.Errorf("parsePath(%q) = %v (offset %d), want offset %d and %q", tc.in, err, pe.Offset, tc.offset, tc.reason)
		}
		if !strings.Contains(err.Error(), "ignore path ") {
			t.Errorf("parsePath(%q): %q does not name the path", tc.in, err)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"a", "data.updated_at", "items[*].id", "items[0]", "meta.*", "**.id",
		`a["b.c"]`, `["\ud83d\ude00"]`, "[0][1]", "a..b", "a[01]", `a["\u00e9"]`, "a.**.b", "\xff.a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePath(s)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(s) || pe.Path != s {
				t.Fatalf("parsePath(%q): %v", s, err)
			}
			return
		}
		if len(p) == 0 || len(p) > MaxDepth {
			t.Fatalf("parsePath(%q) has %d segments", s, len(p))
		}
		// What String writes parses back to the same path (keys with
		// invalid UTF-8 excepted: they are written with U+FFFD).
		back, err := parsePath(p.String())
		if err != nil {
			t.Fatalf("parsePath(%q).String() = %q does not parse: %v", s, p.String(), err)
		}
		if !reflect.DeepEqual(back, p) && validKeys(p) {
			t.Fatalf("parsePath(%q) = %#v; its String %q parses as %#v", s, p, p.String(), back)
		}
	})
}

func validKeys(p ignorePath) bool {
	for _, seg := range p {
		if seg.kind == segKey && !utf8.ValidString(seg.key) {
			return false
		}
	}
	return true
}
