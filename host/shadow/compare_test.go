package shadow

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// fields is a header of name/value pairs, for tests.
func fields(pairs ...string) func(string) [][]byte {
	return func(name string) [][]byte {
		var out [][]byte
		for i := 0; i+1 < len(pairs); i += 2 {
			if pairs[i] == name {
				out = append(out, []byte(pairs[i+1]))
			}
		}
		return out
	}
}

func TestNewComparerErrors(t *testing.T) {
	cases := []struct {
		spec Spec
		want string
	}{
		{Spec{Body: ""}, `body "": want "json", "bytes" or "none"`},
		{Spec{Body: "JSON"}, `body "JSON"`},
		{Spec{Body: BodyNone, Headers: []string{"X-Ok", "Bad Name"}}, `headers[1] "Bad Name": byte ' ' at offset 3`},
		{Spec{Body: BodyNone, Headers: []string{""}}, `headers[0] "": empty field name`},
		{Spec{Body: BodyNone, Headers: []string{"Content-Type:"}}, `byte ':' at offset 12`},
		{Spec{Body: BodyNone, Headers: []string{"etag", "ETag"}}, `headers[1] "ETag": listed before as headers[0]`},
		{Spec{Body: BodyBytes, Ignore: []string{"a"}}, `ignore needs body "json", not "bytes"`},
		{Spec{Body: BodyJSON, Ignore: []string{"a", "items[x]"}}, `ignore[1]: ignore path "items[x]": at offset 6: unexpected 'x'`},
	}
	for _, tc := range cases {
		c, err := NewComparer(tc.spec)
		if err == nil {
			t.Errorf("%+v: no error (%v)", tc.spec, c)
			continue
		}
		if !errors.Is(err, ErrInvalidSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %q, want ErrInvalidSpec and %q", tc.spec, err, tc.want)
		}
	}
	_, err := NewComparer(Spec{Body: BodyJSON, Ignore: []string{"a[01]"}})
	var pe *PathError
	if !errors.As(err, &pe) || pe.Offset != 2 || pe.Path != "a[01]" {
		t.Errorf("%v: want a *PathError at offset 2", err)
	}
	for _, spec := range []Spec{
		{Body: BodyNone},
		{Status: true, Headers: []string{"content-type", "X-A!#$%&'*+-.^_`|~9"}, Body: BodyBytes},
		{Body: BodyJSON, Ignore: []string{"a", "b[*].c"}},
	} {
		if _, err := NewComparer(spec); err != nil {
			t.Errorf("%+v: %v", spec, err)
		}
	}
}

func TestDiffStatusAndHeaders(t *testing.T) {
	c := mustComparer(t, Spec{Status: true, Headers: []string{"content-type", "ETAG", "x-a", "X-Multi", "X-None"}, Body: BodyNone})
	if got := c.HeaderNames(); strings.Join(got, ",") != "Content-Type,Etag,X-A,X-Multi,X-None" {
		t.Errorf("HeaderNames() = %q", got)
	}
	cases := []struct {
		name string
		p, c *Response
		want []want
	}{
		{"same", &Response{Status: 200, Header: fields("Content-Type", "a/b")},
			&Response{Status: 200, Header: fields("Content-Type", "a/b", "X-Other", "1")}, nil},
		{"status", &Response{Status: 200}, &Response{Status: 502},
			[]want{{"status", KindChanged, "200", "502"}}},
		{"value", &Response{Header: fields("Etag", `"v1"`)}, &Response{Header: fields("Etag", `"v2"`)},
			[]want{{"header:Etag", KindChanged, `"\"v1\""`, `"\"v2\""`}}},
		{"absent vs empty", &Response{Header: fields("X-A", "")}, &Response{},
			[]want{{"header:X-A", KindMissing, `""`, Absent}}},
		{"empty vs absent", &Response{}, &Response{Header: fields("X-A", "")},
			[]want{{"header:X-A", KindExtra, Absent, `""`}}},
		{"values joined", &Response{Header: fields("X-Multi", "a", "X-Multi", "b")}, &Response{Header: fields("X-Multi", "a, b")}, nil},
		{"values in order", &Response{Header: fields("X-Multi", "a", "X-Multi", "b")}, &Response{Header: fields("X-Multi", "b", "X-Multi", "a")},
			[]want{{"header:X-Multi", KindChanged, `"a, b"`, `"b, a"`}}},
		{"values are case-sensitive", &Response{Header: fields("Content-Type", "A/B")}, &Response{Header: fields("Content-Type", "a/b")},
			[]want{{"header:Content-Type", KindChanged, `"A/B"`, `"a/b"`}}},
		{"long value cut", &Response{Header: fields("X-A", strings.Repeat("v", 500))}, &Response{Header: fields("X-A", "w")},
			[]want{{"header:X-A", KindChanged, `"` + strings.Repeat("v", MaxValueSize-1) + "…", `"w"`}}},
		{"nil responses", nil, nil, nil},
	}
	for _, tc := range cases {
		checkDiffs(t, tc.name, c.Diff(tc.p, tc.c), tc.want)
	}
}

func TestDiffBytes(t *testing.T) {
	c := mustComparer(t, Spec{Body: BodyBytes})
	long := strings.Repeat("abcdefgh", 20)
	cases := []struct {
		name, p, c string
		want       []want
	}{
		{"equal", "abc", "abc", nil},
		{"both empty", "", "", nil},
		{"JSON is bytes here", `{"a":1,"b":2}`, `{"b":2,"a":1}`, []want{{path: "body", kind: KindBytes}}},
		{"prefix", "abc", "abcd", []want{{"body", KindBytes, "offset 3 of 3 bytes: (end)", `offset 3 of 4 bytes: "abcd"`}}},
		{"middle of a long body", long + "X" + long, long + "Y" + long, []want{{"body", KindBytes,
			`offset 160 of 321 bytes: …"abcdefghabcdefghXabcdefghabcdefghabcdefghabcdefghabcdefghabcdefghabcdefghabcdefg"…`,
			`offset 160 of 321 bytes: …"abcdefghabcdefghYabcdefghabcdefghabcdefghabcdefghabcdefghabcdefghabcdefghabcdefg"…`}}},
		{"binary", strings.Repeat("\x00", 300), strings.Repeat("\x00", 299) + "\x01", []want{{path: "body", kind: KindBytes}}},
	}
	for _, tc := range cases {
		got := c.Diff(&Response{Body: []byte(tc.p)}, &Response{Body: []byte(tc.c)})
		checkDiffs(t, tc.name, got, tc.want)
		for _, d := range got {
			if len(d.Primary) > MaxValueSize+8 || len(d.Candidate) > MaxValueSize+8 {
				t.Errorf("%s: values too long: %d, %d", tc.name, len(d.Primary), len(d.Candidate))
			}
		}
	}
	none := mustComparer(t, Spec{Body: BodyNone})
	if got := none.Diff(&Response{Body: []byte("a")}, &Response{Body: []byte("b")}); got != nil {
		t.Errorf("body none: %s", dump(got))
	}
}

func TestCapture(t *testing.T) {
	c := mustComparer(t, Spec{Status: true, Headers: []string{"X-A", "X-Empty", "X-Absent"}, Body: BodyJSON})
	body := []byte(`{"a":1}`)
	hdr := map[string][][]byte{"X-A": {[]byte("1"), []byte("2")}, "X-Empty": {{}}, "X-Other": {[]byte("o")}}
	var asked []string
	orig := &Response{Status: 201, Body: body, ContentType: "application/json",
		Header: func(name string) [][]byte { asked = append(asked, name); return hdr[name] }}
	cp := c.Capture(orig)
	// The original is recycled: the copy does not change.
	body[5] = '2'
	hdr["X-A"][0][0] = '9'
	hdr["X-Empty"] = nil
	if strings.Join(asked, ",") != "X-A,X-Empty,X-Absent" {
		t.Errorf("Capture asked for %q", asked)
	}
	want := &Response{Status: 201, Body: []byte(`{"a":1}`), ContentType: "application/json", Header: fields("X-A", "1", "X-A", "2", "X-Empty", "")}
	if got := c.Diff(cp, want); got != nil {
		t.Errorf("capture differs from the original: %s", dump(got))
	}
	if got := c.Diff(cp, &Response{Status: 201, Body: []byte(`{"a":1}`), Header: fields("X-A", "1, 2")}); len(got) != 1 || got[0].Path != "header:X-Empty" {
		t.Errorf("empty field lost in the capture: %s", dump(got))
	}
	noBody := mustComparer(t, Spec{Status: true, Body: BodyNone}).Capture(orig)
	if noBody.Body != nil || noBody.Header != nil || noBody.Status != 201 {
		t.Errorf("Capture with body none kept %+v", noBody)
	}
}

// TestDiffConcurrent shares one Comparer (and the pool of differ states)
// between goroutines diffing pairs of different shapes.
func TestDiffConcurrent(t *testing.T) {
	c := mustComparer(t, Spec{Status: true, Headers: []string{"X-A"}, Body: BodyJSON, Ignore: []string{"**.t"}})
	pairs := [][2]*Response{
		{{Status: 200, Body: []byte(`{"a":[1,2,{"t":1,"b":"x"}]}`)}, {Status: 200, Body: []byte(`{"a":[1,2,{"t":2,"b":"y"}]}`)}},
		{{Body: []byte(strings.Repeat("[", 300) + strings.Repeat("]", 300))}, {Body: []byte("[]")}},
		{{Header: fields("X-A", "1"), Body: []byte(`{"k":"\u00e9"}`)}, {Body: []byte(`{"k":"é","z":null}`)}},
		{{Body: []byte("not json")}, {Body: []byte("not jsoN")}},
	}
	want := make([][]Difference, len(pairs))
	for i, p := range pairs {
		want[i] = c.Diff(p[0], p[1])
		if want[i] == nil {
			t.Fatalf("pair %d: no difference", i)
		}
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				i := (w + k) % len(pairs)
				if got := c.Diff(pairs[i][0], pairs[i][1]); !reflect.DeepEqual(got, want[i]) {
					t.Errorf("pair %d: %s, want %s", i, dump(got), dump(want[i]))
					return
				}
			}
		}()
	}
	wg.Wait()
}
