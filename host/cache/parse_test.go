package cache

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

func TestParseCacheControl(t *testing.T) {
	type want struct {
		flags                                         uint16
		maxAge, sMaxAge, maxStale, minFresh, swr, sie int64
		private, noCache                              string
	}
	base := want{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, swr: -1, sie: -1}
	with := func(f func(*want)) want { w := base; f(&w); return w }
	cases := []struct {
		in   []string
		want want
	}{
		{nil, base},
		{[]string{""}, base},
		{[]string{"max-age=60"}, with(func(w *want) { w.maxAge = 60 })},
		{[]string{"MAX-AGE=60, Public"}, with(func(w *want) { w.maxAge = 60; w.flags = ccPublic })},
		{[]string{`max-age="60"`}, with(func(w *want) { w.maxAge = 60 })},
		{[]string{"max-age = 60"}, with(func(w *want) { w.maxAge = 60 })},
		{[]string{"max-age=60, max-age=60"}, with(func(w *want) { w.maxAge = 60 })},
		{[]string{"max-age=60, max-age=10"}, with(func(w *want) { w.maxAge = 60; w.flags = ccBadAge })},
		{[]string{"max-age=60", "max-age=10"}, with(func(w *want) { w.maxAge = 60; w.flags = ccBadAge })},
		{[]string{"max-age=abc"}, with(func(w *want) { w.flags = ccBadAge })},
		{[]string{"max-age=-1"}, with(func(w *want) { w.flags = ccBadAge })},
		{[]string{"max-age"}, with(func(w *want) { w.flags = ccBadAge })},
		{[]string{"max-age=99999999999999999999"}, with(func(w *want) { w.maxAge = maxDelta })},
		{[]string{"s-maxage=5,max-age=0"}, with(func(w *want) { w.sMaxAge = 5; w.maxAge = 0 })},
		{[]string{"no-store, no-cache, private, must-revalidate, proxy-revalidate, must-understand"},
			with(func(w *want) {
				w.flags = ccNoStore | ccNoCache | ccPrivate | ccMustRevalidate | ccProxyRevalidate | ccMustUnderstand
			})},
		{[]string{`private="Set-Cookie, X-Foo", max-age=5`}, with(func(w *want) { w.private = "Set-Cookie, X-Foo"; w.maxAge = 5 })},
		{[]string{`no-cache="X-A", no-cache="X-B"`}, with(func(w *want) { w.noCache = "X-A,X-B" })},
		{[]string{`no-cache=""`}, with(func(w *want) { w.flags = ccNoCache })},
		{[]string{`no-cache=X-Token`}, with(func(w *want) { w.noCache = "X-Token" })},
		{[]string{"max-stale"}, with(func(w *want) { w.flags = ccMaxStaleAny })},
		{[]string{"max-stale=30, min-fresh=10, only-if-cached"},
			with(func(w *want) { w.maxStale = 30; w.minFresh = 10; w.flags = ccOnlyIfCached })},
		{[]string{"stale-while-revalidate=30, stale-if-error=600"}, with(func(w *want) { w.swr = 30; w.sie = 600 })},
		{[]string{"stale-if-error=x"}, base},
		{[]string{`ext="a,b,max-age=1", max-age=7`}, with(func(w *want) { w.maxAge = 7 })},
		{[]string{`ext="unterminated, max-age=7`}, base},
		{[]string{"max-age=60 junk, public"}, with(func(w *want) { w.maxAge = 60; w.flags = ccPublic })},
		{[]string{",,, ,public,,"}, with(func(w *want) { w.flags = ccPublic })},
		{[]string{"=60, public"}, with(func(w *want) { w.flags = ccPublic })},
	}
	for _, tc := range cases {
		var d directives
		d.reset()
		for _, v := range tc.in {
			parseCacheControl([]byte(v), &d)
		}
		got := want{d.flags, d.maxAge, d.sMaxAge, d.maxStale, d.minFresh, d.swr, d.sie, string(d.privateFields), string(d.noCacheFld)}
		if got != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseCacheControlAllocs(t *testing.T) {
	v := []byte("max-age=60, s-maxage=30, public, must-revalidate, stale-while-revalidate=5, x-ext=\"a,b\"")
	var d directives
	if n := testing.AllocsPerRun(100, func() { d.reset(); parseCacheControl(v, &d) }); n != 0 {
		t.Fatalf("%v allocs per parse, want 0", n)
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=60", `private="a,b", no-cache="c"`, `x="\"`, "max-stale", "s-maxage=1,max-age=2", "=,=\"", "\t,max-age=\"9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d directives
		d.reset()
		parseCacheControl([]byte(s), &d)
		for _, v := range []int64{d.maxAge, d.sMaxAge, d.maxStale, d.minFresh, d.swr, d.sie} {
			if v < -1 || v > maxDelta {
				t.Fatalf("%q: value %d out of range", s, v)
			}
		}
		if len(d.privateFields) > len(s)+1 || len(d.noCacheFld) > len(s)+1 {
			t.Fatalf("%q: field lists longer than the input", s)
		}
		// Parsing is deterministic and order-independent of a reset.
		var d2 directives
		d2.reset()
		parseCacheControl([]byte(s), &d2)
		if d.flags != d2.flags || d.maxAge != d2.maxAge {
			t.Fatalf("%q: not deterministic", s)
		}
	})
}

func TestParseDelta(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "007": 7, "2147483648": maxDelta, "2147483649": maxDelta, "123456789012345678901234567890": maxDelta} {
		if got, ok := parseDelta([]byte(in)); !ok || got != want {
			t.Errorf("parseDelta(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5", " 1", "1 ", "0x10"} {
		if _, ok := parseDelta([]byte(in)); ok {
			t.Errorf("parseDelta(%q) accepted", in)
		}
	}
}

func TestParseHTTPDate(t *testing.T) {
	want := time.Date(1994, 11, 6, 8, 49, 37, 0, time.UTC)
	for _, in := range []string{"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"} {
		got, ok := parseHTTPDate([]byte(in))
		if !ok || !got.Equal(want) {
			t.Errorf("parseHTTPDate(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "0", "yesterday", "Sun, 06 Nov 1994"} {
		if _, ok := parseHTTPDate([]byte(in)); ok {
			t.Errorf("parseHTTPDate(%q) accepted", in)
		}
	}
}

func TestETagListMatch(t *testing.T) {
	cases := []struct {
		list, etag string
		want       bool
	}{
		{`"a"`, `"a"`, true},
		{`"a"`, `W/"a"`, true},
		{`W/"a"`, `"a"`, true},
		{`W/"a"`, `W/"a"`, true},
		{`"b"`, `"a"`, false},
		{`"b", "a"`, `"a"`, true},
		{`"b",W/"a"`, `"a"`, true},
		{`  "b" ,  "c"  `, `"c"`, true},
		{`"a,b"`, `"a,b"`, true},
		{`"a,b"`, `"a"`, false},
		{`*`, `"a"`, true},
		{`*`, ``, true},
		{`"a"`, ``, false},
		{`""`, `""`, true},
		{`"a`, `"a"`, false},
		{`abc`, `abc`, true},
		{`abc, "d"`, `"d"`, true},
		{`x"a"`, `"a"`, false},
		{``, `"a"`, false},
		{`,,,`, `"a"`, false},
	}
	for _, tc := range cases {
		if got := etagListMatch([]byte(tc.list), []byte(tc.etag)); got != tc.want {
			t.Errorf("etagListMatch(%q, %q) = %v, want %v", tc.list, tc.etag, got, tc.want)
		}
	}
}

func FuzzETagListMatch(f *testing.F) {
	f.Add(`"a", W/"b"`, `"b"`)
	f.Add(`*`, ``)
	f.Add(`"a,`, `"a"`)
	f.Fuzz(func(t *testing.T, list, etag string) {
		got := etagListMatch([]byte(list), []byte(etag))
		// A list made of the tag alone always matches it (when it is a
		// well-formed quoted tag).
		if strings.HasPrefix(etag, `"`) && strings.HasSuffix(etag, `"`) && len(etag) >= 2 &&
			!strings.Contains(etag[1:len(etag)-1], `"`) {
			if !etagListMatch([]byte(etag), []byte(etag)) {
				t.Fatalf("%q does not match itself", etag)
			}
		}
		_ = got
	})
}

func TestParseVary(t *testing.T) {
	strs := func(b [][]byte) []string {
		var s []string
		for _, x := range b {
			s = append(s, string(x))
		}
		return s
	}
	names, star := parseVary([][]byte{[]byte("accept-encoding, Accept-Language"), []byte("ACCEPT-ENCODING,, x-b")})
	if star || !slices.Equal(strs(names), []string{"Accept-Encoding", "Accept-Language", "X-B"}) {
		t.Fatalf("parseVary = %q, %v", names, star)
	}
	if _, star := parseVary([][]byte{[]byte("accept, *")}); !star {
		t.Fatal("Vary: * not detected")
	}
	if names, _ := parseVary([][]byte{[]byte("bad header, ok")}); !slices.Equal(strs(names), []string{"Ok"}) {
		t.Fatalf("invalid names kept: %q", names)
	}
}

func TestParseTags(t *testing.T) {
	tags := parseTags(nil, [][]byte{[]byte(" a  b "), []byte("c")}, ' ')
	tags = parseTags(tags, [][]byte{[]byte("d, e ,,a")}, ',')
	slices.Sort(tags)
	tags = slices.Compact(tags)
	if !slices.Equal(tags, []string{"a", "b", "c", "d", "e"}) {
		t.Fatalf("tags = %q", tags)
	}
	long := strings.Repeat("x", maxTagLen+1)
	many := strings.Repeat("t ", 2*maxTags)
	if got := parseTags(nil, [][]byte{[]byte(long + " " + many)}, ' '); len(got) != maxTags || got[0] != "t" {
		t.Fatalf("limits not applied: %d tags", len(got))
	}
}

func FuzzParseLists(f *testing.F) {
	f.Add("a b,c", "Accept, *, x")
	f.Fuzz(func(t *testing.T, tags, vary string) {
		for _, sep := range []byte{' ', ','} {
			got := parseTags(nil, [][]byte{[]byte(tags)}, sep)
			if len(got) > maxTags {
				t.Fatalf("%d tags", len(got))
			}
			for _, tg := range got {
				if tg == "" || len(tg) > maxTagLen || strings.IndexByte(tg, sep) >= 0 {
					t.Fatalf("bad tag %q", tg)
				}
			}
		}
		names, star := parseVary([][]byte{[]byte(vary)})
		if star && names != nil {
			t.Fatal("names with star")
		}
		for _, n := range names {
			if !httpsyntax.IsToken(n) {
				t.Fatalf("invalid name %q", n)
			}
		}
		if !slices.IsSortedFunc(names, bytes.Compare) {
			t.Fatal("names not sorted")
		}
	})
}

// FuzzNewEntry feeds arbitrary upstream response fields through the code
// that decides what is stored (Cache-Control, Expires, Date, Age, Vary,
// Set-Cookie, surrogate keys) and through a 304 refresh of the result.
func FuzzNewEntry(f *testing.F) {
	f.Add("Cache-Control: max-age=60\r\nETag: \"a\"\r\nSurrogate-Key: x y", "Cache-Control: max-age=5\r\nETag: W/\"a\"")
	f.Add("Expires: Sun, 06 Nov 1994 08:49:37 GMT\r\nDate: Sun, 06 Nov 1994 08:48:37 GMT\r\nAge: 20", "Age: x")
	f.Add("Cache-Control: private=\"Set-Cookie\", s-maxage=9\r\nSet-Cookie: a=b\r\nVary: Accept, X-Y", "Vary: *")
	f.Add("Cache-Control: no-store, must-understand, max-age=1\r\nConnection: X-Hop\r\nX-Hop: 1", "Cache-Control: no-cache=\"X-A\"")
	clk := newClock()
	p, err := compile(Policy{MaxBytes: 1 << 20, DefaultTTL: time.Minute, Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, fields, fields304 string) {
		var resp fasthttp.Response
		if err := resp.Read(bufioReader("HTTP/1.1 200 OK\r\n" + fields + "\r\nContent-Length: 4\r\n\r\nbody")); err != nil {
			return
		}
		now := clk.Now()
		fi := fillInfo{reqTime: now, respTime: now, date: resp.Header.Peek("Date"), age: resp.Header.Peek("Age")}
		e, vary, v := newEntry(p, &resp, &fi)
		if v != storable {
			if e != nil {
				t.Fatal("entry for a refused response")
			}
			return
		}
		if e.storeTTL(p) <= 0 || e.cost <= 0 || string(e.body) != string(resp.Body()) || e.initAge < 0 {
			t.Fatalf("entry %+v", e)
		}
		for _, h := range e.hdr {
			for _, s := range skipStore {
				if strings.EqualFold(string(h.k), s) {
					t.Fatalf("stored %s", h.k)
				}
			}
		}
		for _, n := range vary {
			if !httpsyntax.IsToken(n) {
				t.Fatalf("vary name %q", n)
			}
		}
		var r304 fasthttp.Response
		if err := r304.Read(bufioReader("HTTP/1.1 304 Not Modified\r\n" + fields304 + "\r\n\r\n")); err != nil {
			return
		}
		fi2 := fillInfo{reqTime: now, respTime: now, date: r304.Header.Peek("Date"), age: r304.Header.Peek("Age")}
		if e2, _, v2 := refreshed(p, e, &r304, &fi2); v2 == storable && (string(e2.body) != string(e.body) || e2.status != 200) {
			t.Fatalf("refresh changed the representation: %d %q", e2.status, e2.body)
		}
	})
}
