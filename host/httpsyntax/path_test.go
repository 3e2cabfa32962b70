package httpsyntax

import (
	"bytes"
	"errors"
	"testing"
)

func TestCleanPath(t *testing.T) {
	type want struct {
		out string
		err error
	}
	tests := []struct {
		in                     string
		reject, unescape, keep want
	}{
		{in: "", reject: want{out: "/"}},
		{in: "/", reject: want{out: "/"}},
		{in: "/a/b", reject: want{out: "/a/b"}},
		{in: "/a/b/", reject: want{out: "/a/b/"}},
		{in: "//a///b//", reject: want{out: "/a/b/"}},
		{in: "/a/./b/../c", reject: want{out: "/a/c"}},
		{in: "/a/b/..", reject: want{out: "/a/"}},
		{in: "/a/.", reject: want{out: "/a/"}},
		{in: "/../../a", reject: want{out: "/a"}},
		{in: "/..", reject: want{out: "/"}},
		{in: "/private/../public", reject: want{out: "/public"}},
		{in: "/private/%2e%2e/public", reject: want{out: "/public"}},
		{in: "/private/%2E./public", reject: want{out: "/public"}},
		{in: "/%61dmin", reject: want{out: "/admin"}},
		{in: "/a%7eb%2D", reject: want{out: "/a~b-"}},
		{in: "/a%3fb%23c%25", reject: want{out: "/a%3Fb%23c%25"}},
		{in: "/caf\xc3\xa9", reject: want{out: "/caf%C3%A9"}},
		{in: "/caf%c3%a9", reject: want{out: "/caf%C3%A9"}},
		{in: "/a b\"<>", reject: want{out: "/a%20b%22%3C%3E"}},
		{in: "/a;b=1/c:d@e", reject: want{out: "/a;b=1/c:d@e"}},
		{in: "/files/..%2fetc", reject: want{err: ErrPathEscapedSlash}, unescape: want{out: "/etc"}, keep: want{out: "/files/..%2Fetc"}},
		{in: "/private/..%2fpublic", reject: want{err: ErrPathEscapedSlash}, unescape: want{out: "/public"}, keep: want{out: "/private/..%2Fpublic"}},
		{in: "/a%2Fb", reject: want{err: ErrPathEscapedSlash}, unescape: want{out: "/a/b"}, keep: want{out: "/a%2Fb"}},
		{in: "/a%5cb", reject: want{err: ErrPathEscapedSlash}, unescape: want{out: "/a/b"}, keep: want{out: "/a%5Cb"}},
		{in: "/a\\..\\b", reject: want{err: ErrPathEscapedSlash}, unescape: want{out: "/b"}, keep: want{out: "/a%5C..%5Cb"}},
		{in: "\\a", reject: want{err: ErrPathEscapedSlash}, unescape: want{out: "/a"}, keep: want{err: ErrPathNotAbsolute}},
		{in: "%2Fa", reject: want{err: ErrPathEscapedSlash}, unescape: want{out: "/a"}, keep: want{err: ErrPathNotAbsolute}},
		{in: "%41/a", reject: want{err: ErrPathNotAbsolute}},
		{in: "a/b", reject: want{err: ErrPathNotAbsolute}},
		{in: "*", reject: want{err: ErrPathNotAbsolute}},
		{in: "/a%", reject: want{err: ErrPathBadEscape}},
		{in: "/a%2", reject: want{err: ErrPathBadEscape}},
		{in: "/a%zz", reject: want{err: ErrPathBadEscape}},
		{in: "/a%00b", reject: want{err: ErrPathNUL}},
		{in: "/a\x00b", reject: want{err: ErrPathControl}},
		{in: "/a\tb", reject: want{err: ErrPathControl}},
		{in: "/a\x7fb", reject: want{err: ErrPathControl}},
		{in: "/a%0d%0ab", reject: want{out: "/a%0D%0Ab"}},
		{in: "/public/..;/admin", reject: want{err: ErrPathDotParams}},
		{in: "/public/.;x/admin", reject: want{err: ErrPathDotParams}},
		{in: "/public/%2e%2e;/admin", reject: want{err: ErrPathDotParams}},
		{in: "/public/..;", reject: want{err: ErrPathDotParams}},
		{in: "/a/...;/b", reject: want{out: "/a/...;/b"}},
		{in: "/a/..b/.c", reject: want{out: "/a/..b/.c"}},
	}
	for _, tt := range tests {
		for _, mode := range []struct {
			name string
			pol  EscapedSlashes
			want want
		}{{"reject", RejectEscapedSlashes, tt.reject}, {"unescape", UnescapeSlashes, tt.unescape}, {"keep", KeepEscapedSlashes, tt.keep}} {
			w := mode.want
			if w == (want{}) {
				w = tt.reject // same in every mode
			}
			got, err := CleanPath([]byte("prefix"), []byte(tt.in), mode.pol)
			if !errors.Is(err, w.err) || (err == nil && string(got) != "prefix"+w.out) {
				t.Errorf("CleanPath(%q, %s) = %q, %v; want %q, %v", tt.in, mode.name, got, err, "prefix"+w.out, w.err)
			}
			if err != nil && string(got) != "prefix" {
				t.Errorf("CleanPath(%q, %s) failed but left %q in dst", tt.in, mode.name, got)
			}
		}
	}
}

func TestCleanPathAllocs(t *testing.T) {
	dst := make([]byte, 0, 64)
	raw := []byte("/api/v1/../users/%7Ejohn/./x")
	if n := testing.AllocsPerRun(100, func() { dst, _ = CleanPath(dst[:0], raw, RejectEscapedSlashes) }); n != 0 {
		t.Fatalf("CleanPath allocates %v times", n)
	}
}

// FuzzCleanPath checks the properties the gateway relies on: the result is
// canonical (cleaning it again changes nothing), absolute, free of dot
// segments, empty segments, encoded unreserved characters and raw bytes a
// path may not hold, and decoding it never yields a separator that was not
// one (a kept %2F stays data).
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/private/..%2fpublic", "/%2e%2e/x", "//x//", "/a\\b", "/..;/a", "/caf\xc3\xa9", "/a%zz", "%2F", "\\"} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, raw []byte, mode uint8) {
		pol := EscapedSlashes(mode % 3)
		out, err := CleanPath(nil, raw, pol)
		if err != nil {
			return
		}
		again, err := CleanPath(nil, out, pol)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not canonical: %q -> %q -> %q, %v", raw, out, again, err)
		}
		if len(out) == 0 || out[0] != '/' {
			t.Fatalf("%q -> %q: not absolute", raw, out)
		}
		for _, seg := range bytes.Split(out[1:], []byte("/")) {
			if string(seg) == "." || string(seg) == ".." {
				t.Fatalf("%q -> %q: dot segment left", raw, out)
			}
		}
		if bytes.Contains(out, []byte("//")) {
			t.Fatalf("%q -> %q: empty segment left", raw, out)
		}
		for i := 0; i < len(out); i++ {
			c := out[i]
			if c == '%' {
				v := byte(unhex(out[i+1])<<4 | unhex(out[i+2]))
				if class[v]&classUnreserved != 0 || unhex(out[i+1]) < 0 || unhex(out[i+2]) < 0 ||
					out[i+1] >= 'a' || out[i+2] >= 'a' {
					t.Fatalf("%q -> %q: escape %q not canonical", raw, out, out[i:i+3])
				}
				if (v == '/' || v == '\\') && pol != KeepEscapedSlashes {
					t.Fatalf("%q -> %q: escaped slash under policy %d", raw, out, pol)
				}
				i += 2
				continue
			}
			if c != '/' && class[c]&classPChar == 0 {
				t.Fatalf("%q -> %q: raw byte %q", raw, out, c)
			}
		}
	})
}
