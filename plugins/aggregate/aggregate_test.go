package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

const feedConfig = `{
	"parts": [
		{"name": "feed", "url": "upstream://feed/feed?user={user}", "timeout": "800ms"},
		{"name": "notifications", "url": "upstream://notifications/notifications?user={user}", "timeout": 0.3},
		{"name": "user", "url": "upstream://users/users/{user}", "headers": {"Accept": "application/json"}}
	],
	"forward_headers": ["Authorization"]%s
}`

func newAgg(t *testing.T, extra string) *aggregator {
	t.Helper()
	a, err := newAggregator([]byte(strings.Replace(feedConfig, "%s", extra, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type fakeRequest struct{ headers, query map[string]string }

func (r fakeRequest) Header(n string) (string, bool)     { v, ok := r.headers[n]; return v, ok }
func (r fakeRequest) QueryParam(n string) (string, bool) { v, ok := r.query[n]; return v, ok }

func TestRequests(t *testing.T) {
	a := newAgg(t, "")
	r := fakeRequest{headers: map[string]string{"X-User-Id": "7", "Authorization": "Bearer t"}}
	user, err := a.userID(r)
	if err != nil || user != "7" {
		t.Fatalf("user %q %v", user, err)
	}
	got := a.requests(user, r)
	want := []wasmgate.OutboundRequest{
		{Method: "GET", URL: "upstream://feed/feed?user=7", Timeout: 800 * time.Millisecond,
			Header: []wasmgate.HeaderField{{Name: "Authorization", Value: "Bearer t"}}},
		{Method: "GET", URL: "upstream://notifications/notifications?user=7", Timeout: 300 * time.Millisecond,
			Header: []wasmgate.HeaderField{{Name: "Authorization", Value: "Bearer t"}}},
		{Method: "GET", URL: "upstream://users/users/7",
			Header: []wasmgate.HeaderField{{Name: "Authorization", Value: "Bearer t"}, {Name: "Accept", Value: "application/json"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("requests\n got %+v\nwant %+v", got, want)
	}
}

func TestUserID(t *testing.T) {
	a := newAgg(t, "")
	for _, tc := range []struct {
		headers, query map[string]string
		want           string
		err            error
	}{
		{headers: map[string]string{"X-User-Id": "u-1.a_b~"}, want: "u-1.a_b~"},
		{query: map[string]string{"user": "9"}, want: "9"},
		{headers: map[string]string{"X-User-Id": "1"}, query: map[string]string{"user": "2"}, want: "1"},
		{err: errNoUser},
		{query: map[string]string{"user": "1&admin=1"}, err: errBadUser},
		{query: map[string]string{"user": "../x"}, err: errBadUser},
		{query: map[string]string{"user": strings.Repeat("a", 129)}, err: errBadUser},
	} {
		got, err := a.userID(fakeRequest{tc.headers, tc.query})
		if got != tc.want || err != tc.err {
			t.Errorf("%v %v: %q %v, want %q %v", tc.headers, tc.query, got, err, tc.want, tc.err)
		}
	}
	if b := string(a.missingUserBody(errNoUser)); b != `{"error":"missing user id (X-User-Id header or user query parameter)"}`+"\n" {
		t.Fatalf("400 body %s", b)
	}
	// Without {user} in any URL no id is needed.
	noUser, err := newAggregator([]byte(`{"parts":[{"name":"a","url":"http://127.0.0.1:1/x"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := noUser.userID(fakeRequest{}); u != "" || err != nil {
		t.Fatalf("no user needed: %q %v", u, err)
	}
}

func ok(body string, d time.Duration) wasmgate.OutboundResult {
	return wasmgate.OutboundResult{Status: 200, Body: []byte(body), Duration: d}
}

func TestMerge(t *testing.T) {
	feed, notif, user := ok(` {"items":[1]} `+"\n", 12*time.Millisecond), ok(`{"unread":2}`, 5*time.Millisecond), ok(`{"id":7}`, 1500*time.Microsecond)
	timeout := wasmgate.OutboundResult{Status: -1, Duration: 300 * time.Millisecond}
	for _, tc := range []struct {
		name    string
		extra   string
		results []wasmgate.OutboundResult
		status  int
		body    string
	}{
		{name: "all good", results: []wasmgate.OutboundResult{feed, notif, user}, status: 200,
			body: `{"feed":{"items":[1]},"notifications":{"unread":2},"user":{"id":7}}`},
		{name: "strict, one timeout", results: []wasmgate.OutboundResult{feed, timeout, user}, status: 502,
			body: `{"error":"part \"notifications\" failed: timeout","failed":{"notifications":"timeout"}}`},
		{name: "partial, one timeout", extra: `,"mode":"partial"`, results: []wasmgate.OutboundResult{feed, timeout, user}, status: 200,
			body: `{"feed":{"items":[1]},"notifications":null,"user":{"id":7},"_errors":{"notifications":{"error":"timeout"}}}`},
		{name: "partial, several failures", extra: `,"mode":"partial","errors_key":"errors"`,
			results: []wasmgate.OutboundResult{
				{Status: 503, Body: []byte(`{"error":"down"}`)}, ok(`not json`, 0), user}, status: 200,
			body: `{"feed":null,"notifications":null,"user":{"id":7},"errors":{"feed":{"error":"status 503"},"notifications":{"error":"answer is not JSON"}}}`},
		{name: "partial, all failed", extra: `,"mode":"partial"`,
			results: []wasmgate.OutboundResult{{Status: -2}, {Status: -3}, {Status: -4}}, status: 502,
			body: `{"error":"part \"feed\" failed: connect or network error","failed":{"feed":"connect or network error","notifications":"destination not allowed by the route's outbound config","user":"request failed"}}`},
		{name: "missing results", extra: `,"mode":"partial"`, results: []wasmgate.OutboundResult{feed}, status: 200,
			body: `{"feed":{"items":[1]},"notifications":null,"user":null,"_errors":{"notifications":{"error":"no result"},"user":{"error":"no result"}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans := newAgg(t, tc.extra).merge(tc.results)
			if ans.status != tc.status || strings.TrimSpace(string(ans.body)) != tc.body {
				t.Fatalf("%d %s\nwant %d %s", ans.status, ans.body, tc.status, tc.body)
			}
			if !json.Valid(ans.body) {
				t.Fatalf("answer is not JSON: %s", ans.body)
			}
		})
	}
	ans := newAgg(t, "").merge([]wasmgate.OutboundResult{feed, notif, user})
	if ans.timing != "feed;dur=12.0, notifications;dur=5.0, user;dur=1.5" || ans.elapsed != 12*time.Millisecond {
		t.Fatalf("timing %q elapsed %v", ans.timing, ans.elapsed)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct{ cfg, err string }{
		{`{}`, `missing "parts"`},
		{`{"parts":[{"url":"http://a/"}]}`, `parts[0]: missing "name"`},
		{`{"parts":[{"name":"a b","url":"http://a/"}]}`, `parts[0]: name "a b": use letters, digits`},
		{`{"parts":[{"name":"a","url":"https://a/"}]}`, `parts[0]: url "https://a/": want upstream://NAME/path or http://host:port/path`},
		{`{"parts":[{"name":"a","url":"http://a/{id}"}]}`, `parts[0]: url "http://a/{id}": only {user} may be substituted`},
		{`{"parts":[{"name":"a","url":"http://a/"},{"name":"a","url":"http://b/"}]}`, `parts[1]: duplicate name "a"`},
		{`{"parts":[{"name":"_errors","url":"http://a/"}]}`, `parts[0]: name "_errors" is the errors_key`},
		{`{"parts":[{"name":"a","url":"http://a/","timeout":"soon"}]}`, `duration "soon"`},
		{`{"parts":[{"name":"a","url":"http://a/","method":"G T"}]}`, `parts[0]: method "G T" is not a valid method`},
		{`{"parts":[{"name":"a","url":"http://a/","headers":{"X":"a\nb"}}]}`, `parts[0]: header "X": invalid name or value`},
		{`{"parts":[{"name":"a","url":"http://a/"}],"mode":"lenient"}`, `"mode": "lenient": want strict or partial`},
		{`{"parts":[{"name":"a","url":"http://a/"}],"user":{}}`, `"user": give "header", "query" or both`},
		{`{"parts":[{"name":"a","url":"http://a/"}],"forward_headers":["a b"]}`, `"forward_headers": "a b" is not a valid header name`},
		{`{"parts":[{"name":"a","url":"http://a/"}],"timeout":1}`, `unknown field "timeout"`},
	} {
		_, err := newAggregator([]byte(tc.cfg))
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("%s\n got %v\nwant %s", tc.cfg, err, tc.err)
		}
	}
}
