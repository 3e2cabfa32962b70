package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

type fakeRequest struct {
	headers   map[string]string
	query     map[string]string
	path, raw string // path and raw query
}

func newFakeRequest(h ...string) *fakeRequest {
	r := &fakeRequest{headers: map[string]string{}, query: map[string]string{}}
	for i := 0; i+1 < len(h); i += 2 {
		r.headers[strings.ToLower(h[i])] = h[i+1]
	}
	return r
}

func (r *fakeRequest) Header(n string) (string, bool) {
	v, ok := r.headers[strings.ToLower(n)]
	return v, ok
}
func (r *fakeRequest) QueryParam(n string) (string, bool) { v, ok := r.query[n]; return v, ok }
func (r *fakeRequest) SetHeader(n, v string) error        { r.headers[strings.ToLower(n)] = v; return nil }
func (r *fakeRequest) RemoveHeader(n string) error        { delete(r.headers, strings.ToLower(n)); return nil }
func (r *fakeRequest) Path() string                       { return r.path }
func (r *fakeRequest) Query() string                      { return r.raw }
func (r *fakeRequest) SetPath(p string) error             { r.path, r.raw, _ = strings.Cut(p, "?"); return nil }

const (
	mobileKey  = "mobile-key-0123456789"
	partnerKey = "partner-key-0123456789"
)

func hexDigest(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }

func testChecker(t *testing.T, extra string) *checker {
	t.Helper()
	ch, err := newChecker([]byte(`{"keys":[{"consumer":"mobile","key":"` + mobileKey + `"},` +
		`{"consumer":"partner","key_sha256":"` + hexDigest(partnerKey) + `"}]` + extra + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestCheck(t *testing.T) {
	ch := testChecker(t, `,"query":"api_key"`)
	for _, tc := range []struct {
		name     string
		req      *fakeRequest
		query    string
		consumer string
		body     string
		wantRaw  string
	}{
		{name: "header key", req: newFakeRequest("X-Api-Key", mobileKey), consumer: "mobile"},
		{name: "hashed key", req: newFakeRequest("x-api-key", partnerKey), consumer: "partner"},
		{name: "query key", req: &fakeRequest{headers: map[string]string{}, query: map[string]string{}, path: "/a%2Fb", raw: "x=1&api_key=" + partnerKey + "&y=%20"},
			query: partnerKey, consumer: "partner", wantRaw: "x=1&y=%20"},
		{name: "spoofed consumer", req: newFakeRequest("X-Api-Key", mobileKey, "X-Consumer", "admin"), consumer: "mobile"},
		{name: "missing", req: newFakeRequest(), body: `{"error":"missing API key"}`},
		{name: "unknown", req: newFakeRequest("X-Api-Key", "nope-nope-nope-nope"), body: `{"error":"invalid API key"}`},
		{name: "prefix of a key", req: newFakeRequest("X-Api-Key", mobileKey[:10]), body: `{"error":"invalid API key"}`},
		{name: "unknown with spoofed consumer", req: newFakeRequest("X-Api-Key", "x", "X-Consumer", "admin"), body: `{"error":"invalid API key"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.query != "" {
				tc.req.query["api_key"] = tc.query
			}
			_, rej, err := ch.check(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			got := tc.req.headers["x-consumer"]
			if tc.body != "" {
				if rej == nil || strings.TrimSpace(string(rej.body)) != tc.body || rej.challenge != `ApiKey realm="wasmgate", header="X-Api-Key"` {
					t.Fatalf("rejection %+v", rej)
				}
				if got != "" {
					t.Fatalf("rejected request keeps X-Consumer %q", got)
				}
				return
			}
			if rej != nil || got != tc.consumer {
				t.Fatalf("rejection %+v, consumer %q, want %q", rej, got, tc.consumer)
			}
			if _, ok := tc.req.headers["x-api-key"]; ok {
				t.Fatal("key header not stripped")
			}
			if tc.wantRaw != "" && (tc.req.raw != tc.wantRaw || tc.req.path != "/a%2Fb") {
				t.Fatalf("query key not stripped cleanly: %q ? %q", tc.req.path, tc.req.raw)
			}
		})
	}
}

func TestNoStripAndCustomHeaders(t *testing.T) {
	ch := testChecker(t, `,"header":"Api-Token","consumer_header":"X-Client","strip":false,"realm":"partners"`)
	r := newFakeRequest("Api-Token", mobileKey)
	if consumer, rej, err := ch.check(r); rej != nil || err != nil || consumer != "mobile" {
		t.Fatalf("consumer %q, %+v %v", consumer, rej, err)
	}
	if r.headers["x-client"] != "mobile" || r.headers["api-token"] != mobileKey {
		t.Fatalf("headers %v", r.headers)
	}
	_, rej, _ := ch.check(newFakeRequest())
	if rej == nil || rej.challenge != `ApiKey realm="partners", header="Api-Token"` {
		t.Fatalf("challenge %+v", rej)
	}
	q := testChecker(t, `,"header":"-","query":"k"`)
	if _, rej, _ := q.check(newFakeRequest("X-Api-Key", mobileKey)); rej == nil {
		t.Fatal(`header "-" still read X-Api-Key`)
	}
}

func TestRemoveQueryParam(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		removed  bool
	}{
		{"k=1", "", true},
		{"a=1&k=2&b=3", "a=1&b=3", true},
		{"k=1&k=2&a", "a", true},
		{"%6B=1&a=%2B", "a=%2B", true},
		{"kk=1&a=1", "kk=1&a=1", false},
		{"", "", false},
		{"a=1&&b=2", "a=1&&b=2", false},
	} {
		got, removed := removeQueryParam(tc.in, "k")
		if removed != tc.removed || removed && got != tc.want {
			t.Errorf("removeQueryParam(%q) = %q %v, want %q %v", tc.in, got, removed, tc.want, tc.removed)
		}
	}
}

func FuzzRemoveQueryParam(f *testing.F) {
	f.Add("a=1&k=2", "k")
	f.Fuzz(func(t *testing.T, q, name string) {
		out, removed := removeQueryParam(q, name)
		if !removed {
			return
		}
		if again, r2 := removeQueryParam(out, name); r2 || again != out {
			t.Fatalf("%q: removing twice changed %q to %q", q, out, again)
		}
	})
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, err string }{
		{`{}`, `missing "keys": list {consumer, key} pairs`},
		{`{"keys":[{"key":"` + mobileKey + `"}]}`, `keys[0]: missing "consumer"`},
		{`{"keys":[{"consumer":"a"}]}`, `keys[0]: missing "key" or "key_sha256"`},
		{`{"keys":[{"consumer":"a","key":"short"}]}`, `keys[0]: "key" of 5 bytes: want at least 16`},
		{`{"keys":[{"consumer":"a","key_sha256":"abc"}]}`, `keys[0]: "key_sha256": want 64 hex digits`},
		{`{"keys":[{"consumer":"a","key":"` + mobileKey + `","key_sha256":"` + hexDigest("x") + `"}]}`, `keys[0]: want "key" or "key_sha256", not both`},
		{`{"keys":[{"consumer":"a","key":"` + mobileKey + `"},{"consumer":"b","key_sha256":"` + hexDigest(mobileKey) + `"}]}`, `keys[1]: the same key as keys[0]`},
		{`{"keys":[{"consumer":"a\nb","key":"` + mobileKey + `"}]}`, `keys[0]: "consumer" may not contain line breaks or NUL`},
		{`{"keys":[{"consumer":"a","key":"` + mobileKey + `"}],"header":"-"}`, `"header" is "-" and there is no "query"`},
		{`{"keys":[{"consumer":"a","key":"` + mobileKey + `"}],"header":"a b"}`, `"header": "a b" is not a valid header name`},
		{`{"keys":[{"consumer":"a","key":"` + mobileKey + `"}],"consumer_header":"a:b"}`, `"consumer_header": "a:b" is not a valid header name`},
		{`{"keys":[{"consumer":"a","key":"` + mobileKey + `"}],"realm":"\""}`, `"realm": "\"" may not contain quotes`},
		{`{"keys":[],"keyz":1}`, `unknown field "keyz"`},
	} {
		_, err := newChecker([]byte(tc.cfg))
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("%s\n got %v\nwant %s", tc.cfg, err, tc.err)
		}
	}
}

func FuzzLookup(f *testing.F) {
	ch, _ := newChecker([]byte(`{"keys":[{"consumer":"mobile","key":"` + mobileKey + `"}]}`))
	f.Add(mobileKey)
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		c, ok := ch.lookup(key)
		if ok != (key == mobileKey) || ok && c != "mobile" {
			t.Fatalf("lookup(%q) = %q %v", key, c, ok)
		}
	})
}
