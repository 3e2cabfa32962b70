package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestRewritePath(t *testing.T) {
	for _, tc := range []struct {
		cfg, in, want string
	}{
		{`{"prefix":"/api","replace":""}`, "/api/users/1", "/users/1"},
		{`{"prefix":"/api","replace":""}`, "/api", "/"},
		{`{"prefix":"/api/","replace":"/v1"}`, "/api/x", "/v1/x"},
		{`{"prefix":"/api","replace":"/v1"}`, "/apix", "/apix"}, // not on a segment boundary
		{`{"prefix":"/api","replace":"/v1"}`, "/other", "/other"},
		{`{"prefix":"/","replace":"/base"}`, "/x", "/base/x"},
		{`{"regex":"^/users/(\\d+)$","replace":"/v2/users/$1"}`, "/users/42", "/v2/users/42"},
		{`{"regex":"^/users/(?P<id>\\d+)$","replace":"/u?id=${id}"}`, "/users/7", "/u?id=7"},
		{`{"regex":"^/users/(\\d+)$","replace":"/v2/users/$1"}`, "/users/x", "/users/x"},
		{`{"regex":"old","replace":"new"}`, "/old/old", "/new/new"},
		{`{"regex":"^/a(.*)","replace":"$1"}`, "/ab", "/b"}, // leading slash added
	} {
		rw, err := newRewriter([]byte(`{"request":{"path":` + tc.cfg + `}}`))
		if err != nil {
			t.Fatalf("%s: %v", tc.cfg, err)
		}
		got, changed := rw.path.rewritePath(tc.in)
		if got != tc.want || changed != (tc.in != tc.want) {
			t.Errorf("%s on %s = %q %v, want %q", tc.cfg, tc.in, got, changed, tc.want)
		}
	}
}

type fakeHeaders struct{ ops []string }

func (f *fakeHeaders) SetHeader(n, v string) error { f.ops = append(f.ops, "set "+n+"="+v); return nil }
func (f *fakeHeaders) AddHeader(n, v string) error { f.ops = append(f.ops, "add "+n+"="+v); return nil }
func (f *fakeHeaders) RemoveHeader(n string) error { f.ops = append(f.ops, "remove "+n); return nil }

func TestHeaders(t *testing.T) {
	rw, err := newRewriter([]byte(`{
		"request":{"headers":{"set":{"X-B":"2","X-A":"1"},"add":{"X-L":["a","b"],"X-S":"s"},"remove":["Cookie","X-Internal"]}},
		"response":{"headers":{"remove":["Server"]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var req, resp fakeHeaders
	if err := rw.request.apply(&req); err != nil {
		t.Fatal(err)
	}
	want := []string{"remove Cookie", "remove X-Internal", "set X-A=1", "set X-B=2", "add X-L=a", "add X-L=b", "add X-S=s"}
	if !reflect.DeepEqual(req.ops, want) {
		t.Fatalf("request ops %q\nwant %q", req.ops, want)
	}
	rw.response.apply(&resp)
	if !reflect.DeepEqual(resp.ops, []string{"remove Server"}) {
		t.Fatalf("response ops %q", resp.ops)
	}
	var none *headerOps
	if err := none.apply(&req); err != nil {
		t.Fatal("nil ops")
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, err string }{
		{`{}`, `nothing to rewrite`},
		{`{"request":{}}`, `nothing to rewrite`},
		{`{"request":{"path":{"prefix":"/a"}}}`, `request.path: missing "replace"`},
		{`{"request":{"path":{"replace":"/a"}}}`, `request.path: want "prefix" or "regex"`},
		{`{"request":{"path":{"prefix":"/a","regex":"a","replace":""}}}`, `request.path: want "prefix" or "regex", not both`},
		{`{"request":{"path":{"prefix":"a","replace":""}}}`, `request.path: "prefix" "a" must start with "/"`},
		{`{"request":{"path":{"prefix":"/a","replace":"b"}}}`, `request.path: "replace" "b" must be empty or start with "/"`},
		{`{"request":{"path":{"regex":"(","replace":""}}}`, `request.path: "regex": error parsing regexp`},
		{`{"request":{"headers":{"set":{"X A":"1"}}}}`, `request.headers: set: "X A" is not a valid header name`},
		{`{"request":{"headers":{"add":{"X-A":"1\r\nX-B: 2"}}}}`, `request.headers: add: X-A: the value may not contain CR, LF or NUL`},
		{`{"request":{"headers":{"add":{"X-A":1}}}}`, `want a string or a list of strings`},
		{`{"response":{"headers":{"remove":[""]}}}`, `response.headers: remove: "" is not a valid header name`},
		{`{"response":{"path":{"prefix":"/","replace":""}}}`, `response.path: a response has no path`},
		{`{"request":{"paths":{}}}`, `unknown field "paths"`},
	} {
		_, err := newRewriter([]byte(tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s\n got %v\nwant %s", tc.cfg, err, tc.err)
		}
	}
}
