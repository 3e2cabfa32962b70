package router

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// rt builds a route; line gives it a position so conflict errors can be checked.
func rt(name string, line int, m config.Match) config.Route {
	return config.Route{Name: name, Match: m, Pos: config.Pos{Line: line, Col: 3}}
}

func prio(n int) func(*config.Route) { return func(r *config.Route) { r.Priority = n } }

func with(r config.Route, opts ...func(*config.Route)) config.Route {
	for _, o := range opts {
		o(&r)
	}
	return r
}

func kc(name, value, regex string, absent bool) config.KeyCond {
	return config.KeyCond{Name: name, Value: value, Regex: regex, Absent: absent}
}

// mkReq parses a real HTTP/1.1 request, so Host, cookies and query go through
// fasthttp exactly as they do in the server.
func mkReq(tb testing.TB, method, host, uri string, hdrs ...string) *fasthttp.Request {
	tb.Helper()
	raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", method, uri, host, strings.Join(append(hdrs, ""), "\r\n"))
	req := &fasthttp.Request{}
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatalf("parse %q: %v", raw, err)
	}
	return req
}

// reqPath is the canonical path of req, as the gateway computes it before
// matching (the raw path when it is not valid: the router must cope).
func reqPath(req *fasthttp.Request) []byte {
	p, err := httpsyntax.CleanPath(nil, req.URI().PathOriginal(), httpsyntax.RejectEscapedSlashes)
	if err != nil {
		return req.URI().PathOriginal()
	}
	return p
}

func compile(tb testing.TB, routes []config.Route) *Table {
	tb.Helper()
	t, err := Compile("gw.yaml", routes)
	if err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	return t
}

// got renders a match as "name k=v k=v" (or "-" for no match).
func got(t *Table, routes []config.Route, req *fasthttp.Request) string {
	var res Result
	if !t.Match(req, reqPath(req), &res) {
		return "-"
	}
	s := routes[res.Route].Name
	for i := 0; i < res.Params.Len(); i++ {
		k, v := res.Params.At(i)
		s += " " + k + "=" + string(v)
	}
	return s
}

type reqCase struct {
	method, host, uri string
	hdrs              []string
	want              string
}

func runCases(t *testing.T, routes []config.Route, cases []reqCase) {
	t.Helper()
	tbl := compile(t, routes)
	for _, c := range cases {
		m := c.method
		if m == "" {
			m = "GET"
		}
		h := c.host
		if h == "" {
			h = "other.org"
		}
		if g := got(tbl, routes, mkReq(t, m, h, c.uri, c.hdrs...)); g != c.want {
			t.Errorf("%s %s%s %v: got %q, want %q", m, h, c.uri, c.hdrs, g, c.want)
		}
	}
}

func precedenceRoutes() []config.Route {
	P := func(p string) config.Match { return config.Match{Path: p} }
	return []config.Route{
		rt("exact-users-me", 1, P("/users/me")),
		rt("tmpl-users-id", 2, P("/users/{id}")),
		rt("tmpl-users-posts", 3, P("/users/{id}/posts/{post}")),
		rt("tmpl-me-posts", 4, P("/users/me/posts/{p}")),
		rt("tmpl-users-all", 5, P("/users/{id}/{rest...}")),
		rt("regex-v", 6, config.Match{PathRegex: `/v(?P<ver>[0-9]+)/.*`}),
		rt("regex-users", 7, config.Match{PathRegex: `/users/[0-9]+`}),
		rt("prefix-api", 8, config.Match{PathPrefix: "/api"}),
		rt("prefix-api-v1", 9, config.Match{PathPrefix: "/api/v1/"}),
		rt("prefix-root", 10, config.Match{}),
		rt("exact-api-health", 11, P("/api/health")),
		rt("regex-api", 12, config.Match{PathRegex: `/api/spec.*`}),
		rt("prefix-v", 13, config.Match{PathPrefix: "/v1"}),
		rt("host-exact", 14, config.Match{Hosts: []string{"example.com"}}),
		rt("host-exact-only", 15, config.Match{Hosts: []string{"example.com"}, Path: "/only"}),
		rt("wild", 16, config.Match{Hosts: []string{"*.example.com"}, Path: "/w"}),
		rt("wild-deep", 17, config.Match{Hosts: []string{"*.b.example.com"}, Path: "/w"}),
		rt("wild-any", 18, config.Match{Hosts: []string{"*.example.com"}, PathPrefix: "/"}),
		rt("host-cond", 19, config.Match{Hosts: []string{"cond.test"}, Path: "/users/me", Methods: []string{"POST"}}),
		rt("r3-plain", 20, P("/r3")),
		with(rt("r3-prio", 21, P("/r3")), prio(5)),
		rt("r3-get", 22, config.Match{Path: "/r3", Methods: []string{"GET"}}),
		rt("r3-get-hdr", 23, config.Match{Path: "/r3", Methods: []string{"GET"}, Headers: []config.KeyCond{kc("X-A", "", "", false)}}),
		rt("r3t-b", 24, P("/r3t/{b}")),
		rt("r3t-a", 25, config.Match{Path: "/r3t/{a}", Methods: []string{"GET"}}),
		rt("pfx-admin", 26, config.Match{PathPrefix: "/api/v1/admin", Headers: []config.KeyCond{kc("X-Admin", "yes", "", false)}}),
		rt("exact-cond", 27, config.Match{Path: "/things/special", Methods: []string{"DELETE"}}),
		rt("tmpl-things", 28, P("/things/{id}")),
		rt("slash", 29, P("/things/")),
		rt("root", 30, P("/")),
	}
}

func TestPrecedence(t *testing.T) {
	runCases(t, precedenceRoutes(), []reqCase{
		// Path rules within the host-less group.
		{uri: "/users/me", want: "exact-users-me"},
		{uri: "/users/42", want: "tmpl-users-id id=42"},                   // template beats regex-users
		{uri: "/users/42/posts/7", want: "tmpl-users-posts id=42 post=7"}, // param beats catch-all
		{uri: "/users/me/posts/7", want: "tmpl-me-posts p=7"},             // literal segment beats param, left to right
		{uri: "/users/42/files/a/b", want: "tmpl-users-all id=42 rest=files/a/b"},
		{uri: "/users/42/", want: "tmpl-users-all id=42 rest="},
		{uri: "/users/", want: "prefix-root"}, // a param never matches an empty segment
		{uri: "/api/health", want: "exact-api-health"},
		{uri: "/api/special", want: "regex-api"}, // regex beats prefix
		{uri: "/api/v1/x", want: "prefix-api-v1"},
		{uri: "/api/v1", want: "prefix-api-v1"}, // trailing slash of a prefix is ignored
		{uri: "/api/v2", want: "prefix-api"},
		{uri: "/api/", want: "prefix-api"},
		{uri: "/apix", want: "prefix-root"}, // segment boundary
		{uri: "/v2/x", want: "regex-v ver=2"},
		{uri: "/v1", want: "prefix-v"}, // regexes match the whole path
		{uri: "/v1/a", want: "regex-v ver=1"},
		{uri: "/", want: "root"},
		{uri: "/things/", want: "slash"},
		{uri: "/%75sers/me?x=1", want: "exact-users-me"},         // decoded path
		{uri: "/api/../users/me", want: "exact-users-me"},        // normalized path
		{uri: "/users//me", want: "exact-users-me"},              // "//" collapsed by fasthttp
		{uri: "/things/special", want: "tmpl-things id=special"}, // exact fails its method: backtrack
		{method: "DELETE", uri: "/things/special", want: "exact-cond"},
		{uri: "/api/v1/admin/x", want: "prefix-api-v1"}, // deepest prefix fails: walk outward
		{uri: "/api/v1/admin/x", hdrs: []string{"X-Admin: yes"}, want: "pfx-admin"},
		// Rule 3 among routes with the same path key.
		{uri: "/r3", hdrs: []string{"X-A: 1"}, want: "r3-get-hdr"},
		{uri: "/r3", want: "r3-get"},
		{method: "POST", uri: "/r3", want: "r3-prio"},
		{uri: "/r3t/1", want: "r3t-a a=1"}, // same shape, own param names
		{method: "PUT", uri: "/r3t/1", want: "r3t-b b=1"},
		// Hosts.
		{host: "example.com", uri: "/users/42", want: "host-exact"}, // host beats path specificity
		{host: "example.com:8080", uri: "/only", want: "host-exact-only"},
		{host: "EXAMPLE.com", uri: "/only", want: "host-exact-only"},
		{host: "example.com.", uri: "/only", want: "host-exact-only"},
		{host: "a.example.com", uri: "/w", want: "wild"},
		{host: "x.b.example.com", uri: "/w", want: "wild-deep"}, // longest wildcard
		{host: "x.y.b.example.com:1", uri: "/w", want: "wild-deep"},
		{host: "b.example.com", uri: "/w", want: "wild"},
		{host: "a.example.com", uri: "/users/42", want: "wild-any"},
		{host: "x.b.example.com", uri: "/nope", want: "wild-any"}, // falls through wildcards
		{host: "cond.test", uri: "/users/me", want: "exact-users-me"},
		{method: "POST", host: "cond.test", uri: "/users/me", want: "host-cond"},
		{host: "cond.test", uri: "/users/7", want: "tmpl-users-id id=7"},
	})
}

func TestNoMatch(t *testing.T) {
	P := func(p string) config.Match { return config.Match{Path: p} }
	runCases(t, []config.Route{
		rt("a", 1, P("/a")),
		rt("files", 2, P("/files/{p...}")),
		rt("h", 3, config.Match{Hosts: []string{"*.example.com"}}),
	}, []reqCase{
		{uri: "/a/", want: "-"},
		{uri: "/b", want: "-"},
		{uri: "/files", want: "-"},
		{uri: "/files/", want: "files p="},
		{host: "example.com", uri: "/x", want: "-"}, // a wildcard never matches its bare domain
	})
}

func TestConditions(t *testing.T) {
	H := func(c ...config.KeyCond) config.Match { return config.Match{Path: "/h", Headers: c} }
	Q := func(c ...config.KeyCond) config.Match { return config.Match{Path: "/q", Query: c} }
	C := func(c ...config.KeyCond) config.Match { return config.Match{Path: "/c", Cookies: c} }
	runCases(t, []config.Route{
		rt("m", 1, config.Match{Path: "/m", Methods: []string{"PUT", "PATCH"}}),
		rt("h-exact", 2, H(kc("x-env", "prod", "", false))),
		rt("h-regex", 3, H(kc("X-Ver", "", `v[0-9]+`, false))),
		rt("h-absent", 4, H(kc("X-Block", "", "", true))),
		rt("q-exact", 5, Q(kc("mode", "fast", "", false), kc("debug", "", "", true))),
		rt("q-present", 6, Q(kc("mode", "", "", false))),
		rt("q-regex", 7, Q(kc("id", "", `[0-9]{3}`, false))),
		rt("c-exact", 8, C(kc("session", "abc", "", false))),
		rt("c-regex", 9, C(kc("ab", "", `b|c`, false))),
		rt("c-absent", 10, C(kc("session", "", "", true))),
	}, []reqCase{
		{method: "PUT", uri: "/m", want: "m"},
		{method: "PATCH", uri: "/m", want: "m"},
		{method: "GET", uri: "/m", want: "-"},
		{uri: "/h", hdrs: []string{"X-Env: prod"}, want: "h-exact"},
		{uri: "/h", hdrs: []string{"X-ENV: prod"}, want: "h-exact"},
		{uri: "/h", hdrs: []string{"X-Env: dev", "X-Env: prod"}, want: "h-exact"}, // any occurrence
		{uri: "/h", hdrs: []string{"X-Env: produ", "X-Block: 1"}, want: "-"},
		{uri: "/h", hdrs: []string{"X-Ver: v12"}, want: "h-regex"},
		{uri: "/h", hdrs: []string{"X-Ver: xv12", "X-Block: 1"}, want: "-"}, // regex matches whole value
		{uri: "/h", want: "h-absent"},
		{uri: "/q?mode=fast", want: "q-exact"},
		{uri: "/q?mode=fast&debug=1", want: "q-present"},
		{uri: "/q?mode=slow", want: "q-present"},
		{uri: "/q?id=123", want: "q-regex"},
		{uri: "/q?id=1234", want: "-"},
		{uri: "/q", want: "-"},
		{uri: "/c", hdrs: []string{"Cookie: a=1; session=abc"}, want: "c-exact"},
		{uri: "/c", hdrs: []string{"Cookie: session=abd; ab=c"}, want: "c-regex"},
		{uri: "/c", hdrs: []string{"Cookie: session=abd"}, want: "-"},
		{uri: "/c", hdrs: []string{"Cookie: other=1"}, want: "c-absent"},
	})
}

// headerTraits answers segment and flag conditions from the request's
// X-Segments and X-Flags headers (comma-separated names), so a table test
// can say which hold.
type headerTraits struct{ req *fasthttp.Request }

func (h headerTraits) has(header, name string) bool {
	for _, v := range strings.Split(string(h.req.Header.Peek(header)), ",") {
		if v == name {
			return true
		}
	}
	return false
}
func (h headerTraits) InSegment(name string) bool { return h.has("X-Segments", name) }
func (h headerTraits) FlagOn(name string) bool    { return h.has("X-Flags", name) }

// TestTraitConditions: segment and flag conditions hold only when Traits
// says so, count as conditions for precedence, and fall through to the
// next candidate when they fail.
func TestTraitConditions(t *testing.T) {
	routes := []config.Route{
		rt("legacy", 1, config.Match{PathPrefix: "/checkout"}),
		rt("beta", 2, config.Match{PathPrefix: "/checkout", Segments: []string{"beta"}}),
		rt("beta-new", 3, config.Match{PathPrefix: "/checkout", Segments: []string{"beta"}, Flags: []string{"new"}}),
		rt("new", 4, config.Match{Path: "/checkout/pay", Flags: []string{"new", "new"}}),
	}
	tbl := compile(t, routes)
	for _, c := range []struct {
		uri, segments, flags string
		traits               bool
		want                 string
	}{
		{"/checkout/a", "", "", true, "legacy"},
		{"/checkout/a", "beta", "", true, "beta"},
		{"/checkout/a", "beta", "new", true, "beta-new"},
		{"/checkout/a", "other", "new", true, "legacy"},
		{"/checkout/pay", "", "new", true, "new"},
		{"/checkout/pay", "beta", "", true, "beta"},
		{"/checkout/pay", "beta", "new", false, "legacy"}, // no Traits: none holds
	} {
		req := mkReq(t, "GET", "x.test", c.uri, "X-Segments: "+c.segments, "X-Flags: "+c.flags)
		res := Result{}
		if c.traits {
			res.Traits = headerTraits{req}
		}
		name := "-"
		if tbl.Match(req, reqPath(req), &res) {
			name = routes[res.Route].Name
		}
		if name != c.want {
			t.Errorf("%s segments=%q flags=%q traits=%v: got %s, want %s", c.uri, c.segments, c.flags, c.traits, name, c.want)
		}
	}
}

func TestRewrite(t *testing.T) {
	rw := func(strip, path string) func(*config.Route) {
		return func(r *config.Route) { r.Rewrite = &config.Rewrite{StripPrefix: strip, Path: path} }
	}
	routes := []config.Route{
		with(rt("strip", 1, config.Match{PathPrefix: "/api"}), rw("/api/", "")),
		with(rt("tmpl", 2, config.Match{Path: "/users/{id}/posts/{post}"}), rw("", "/v2/p/{post}/u/{id}")),
		with(rt("all", 3, config.Match{Path: "/files/{path...}"}), rw("", "/static/{path...}")),
		with(rt("re", 4, config.Match{PathRegex: `/r/(?P<a>[a-z]+)(?:/(?P<b>[0-9]+))?`}), rw("", "/{b}/{a}")),
		rt("none", 5, config.Match{PathPrefix: "/keep"}),
		with(rt("nostrip", 6, config.Match{PathPrefix: "/apix"}), rw("/api", "")),
	}
	tbl := compile(t, routes)
	for _, c := range []struct{ uri, want string }{
		{"/api/users?x=1", "/users"},
		{"/api", "/"},
		{"/users/7/posts/9", "/v2/p/9/u/7"},
		{"/files/a/b.css", "/static/a/b.css"},
		{"/r/abc/12", "/12/abc"},
		{"/r/abc", "//abc"}, // an unset optional group is empty
		{"/keep/x", "/keep/x"},
		{"/apix/y", "/apix/y"}, // strip_prefix works on segment boundaries
	} {
		req := mkReq(t, "GET", "h", c.uri)
		var res Result
		if !tbl.Match(req, reqPath(req), &res) {
			t.Fatalf("%s: no match", c.uri)
		}
		if g := string(tbl.Rewrite([]byte("X"), reqPath(req), &res)); g != "X"+c.want {
			t.Errorf("%s (route %s): rewrite = %q, want %q", c.uri, routes[res.Route].Name, g, "X"+c.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	P := func(p string) config.Match { return config.Match{Path: p} }
	H := func(hs ...string) config.Match { return config.Match{Hosts: hs, Path: "/x"} }
	many := "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}/{j}/{k}/{l}/{m}/{n}/{o}/{p}/{q}"
	for _, c := range []struct {
		name   string
		routes []config.Route
		want   string // "" means no error; else a substring of the only error, at line 2
	}{
		{"same exact", []config.Route{rt("a", 1, P("/x")), rt("b", 2, P("/x"))}, `route "b" conflicts with route "a" (line 1): same host, path, methods and conditions`},
		{"renamed params", []config.Route{rt("a", 1, P("/u/{id}")), rt("b", 2, P("/u/{x}"))}, "conflicts"},
		{"catch-all", []config.Route{rt("a", 1, P("/u/{p...}")), rt("b", 2, P("/u/{q...}"))}, "conflicts"},
		{"prefix slash", []config.Route{rt("a", 1, config.Match{PathPrefix: "/api"}), rt("b", 2, config.Match{PathPrefix: "/api/"})}, "conflicts"},
		{"no path is /", []config.Route{rt("a", 1, config.Match{}), rt("b", 2, config.Match{PathPrefix: "/"})}, "conflicts"},
		{"same regex", []config.Route{rt("a", 1, config.Match{PathRegex: "/a.*"}), rt("b", 2, config.Match{PathRegex: "/a.*"})}, "conflicts"},
		{"shared host", []config.Route{rt("a", 1, H("a.io", "b.io")), rt("b", 2, H("b.io"))}, "conflicts"},
		{"method order", []config.Route{rt("a", 1, config.Match{Path: "/x", Methods: []string{"GET", "POST"}}), rt("b", 2, config.Match{Path: "/x", Methods: []string{"POST", "GET"}})}, "conflicts"},
		{"header case and order", []config.Route{
			rt("a", 1, config.Match{Path: "/x", Headers: []config.KeyCond{kc("X-A", "1", "", false), kc("X-B", "", "", true)}}),
			rt("b", 2, config.Match{Path: "/x", Headers: []config.KeyCond{kc("x-b", "", "", true), kc("x-a", "1", "", false)}})}, "conflicts"},
		{"too many params", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{Path: many, At: config.Positions{"path": {Line: 2, Col: 9}}}}}, "more than 16 params"},
		{"catch-all not last", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{Path: "/{p...}/x", At: config.Positions{"path": {Line: 2, Col: 9}}}}}, "must be the last segment"},
		{"partial param", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{Path: "/a{p}", At: config.Positions{"path": {Line: 2, Col: 9}}}}}, "whole segment"},
		{"unknown rewrite param", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: P("/u/{id}"), Rewrite: &config.Rewrite{Path: "/{uid}", Pos: config.Pos{Line: 2}}}}, "{uid} is not a param"},
		// Paths are compared with canonical request paths: a literal must be canonical.
		{"dot segment", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{Path: "/a/../b", At: config.Positions{"path": {Line: 2, Col: 9}}}}}, `it reads as "/b"`},
		{"empty segment", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{PathPrefix: "/a//{id}", At: config.Positions{"path_prefix": {Line: 2, Col: 9}}}}}, `it reads as "/a/{id}"`},
		{"raw space", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{Path: "/my file/{id}", At: config.Positions{"path": {Line: 2, Col: 9}}}}}, `it reads as "/my%20file/{id}"`},
		{"encoded unreserved", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{Path: "/%61dmin", At: config.Positions{"path": {Line: 2, Col: 9}}}}}, `it reads as "/admin"`},
		{"encoded slash", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: config.Match{Path: "/a%2Fb", At: config.Positions{"path": {Line: 2, Col: 9}}}}}, `encoded slash`},
		{"rewrite dot segment", []config.Route{rt("a", 1, P("/x")), {Name: "b", Match: P("/u/{id}"), Rewrite: &config.Rewrite{Path: "/v1/../{id}", Pos: config.Pos{Line: 2}}}}, `rewrite.path "/v1/../{id}" is not a canonical path: it reads as "/{id}"`},
		// Routes that can be told apart.
		{"priority differs", []config.Route{rt("a", 1, P("/x")), with(rt("b", 2, P("/x")), prio(1))}, ""},
		{"methods differ", []config.Route{rt("a", 1, P("/x")), rt("b", 2, config.Match{Path: "/x", Methods: []string{"GET"}})}, ""},
		{"hosts differ", []config.Route{rt("a", 1, H("a.io")), rt("b", 2, H("*.a.io")), rt("c", 3, P("/x"))}, ""},
		{"exact vs prefix", []config.Route{rt("a", 1, P("/x")), rt("b", 2, config.Match{PathPrefix: "/x"})}, ""},
		{"literal vs param", []config.Route{rt("a", 1, P("/u/me")), rt("b", 2, P("/u/{id}")), rt("c", 3, P("/u/{id...}"))}, ""},
		{"query value differs", []config.Route{rt("a", 1, config.Match{Path: "/x", Query: []config.KeyCond{kc("a", "1", "", false)}}), rt("b", 2, config.Match{Path: "/x", Query: []config.KeyCond{kc("a", "2", "", false)}})}, ""},
		{"host listed twice", []config.Route{rt("a", 1, H("a.io", "a.io"))}, ""},
	} {
		_, err := Compile("gw.yaml", c.routes)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: unexpected error: %v", c.name, err)
			}
			continue
		}
		var el config.ErrorList
		if !errors.As(err, &el) || len(el) != 1 {
			t.Errorf("%s: want one config.ErrorList entry, got %#v", c.name, err)
			continue
		}
		if e := el[0]; !strings.Contains(e.Msg, c.want) || e.Line != 2 || e.File != "gw.yaml" {
			t.Errorf("%s: got %s:%d %q, want line 2 containing %q", c.name, e.File, e.Line, e.Msg, c.want)
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	// Without regex routes: regexp's machine pool may allocate (always under -race).
	var routes []config.Route
	for _, r := range precedenceRoutes() {
		if r.Match.PathRegex == "" {
			routes = append(routes, r)
		}
	}
	tbl := compile(t, routes)
	for _, c := range []struct{ host, uri, want string }{
		{"other.org", "/users/me", "exact-users-me"},
		{"other.org", "/users/42/posts/7", "tmpl-users-posts"},
		{"other.org", "/users/42/files/a/b", "tmpl-users-all"},
		{"other.org", "/api/v1/admin/x", "prefix-api-v1"},
		{"x.y.b.example.com:8080", "/w", "wild-deep"},
		{"x.b.example.com", "/nope", "wild-any"},
	} {
		req := mkReq(t, "GET", c.host, c.uri, "X-A: 1")
		path := reqPath(req)
		var res Result
		if allocs := testing.AllocsPerRun(100, func() {
			if !tbl.Match(req, path, &res) || routes[res.Route].Name != c.want {
				t.Fatalf("%s%s: matched %d", c.host, c.uri, res.Route)
			}
		}); allocs != 0 {
			t.Errorf("%s%s: %v allocs per Match, want 0", c.host, c.uri, allocs)
		}
	}
}

// TestMatchOverHTTP routes requests that a real client sent to a real server.
func TestMatchOverHTTP(t *testing.T) {
	routes := precedenceRoutes()
	tbl := compile(t, routes)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetBodyString(got(tbl, routes, &ctx.Request))
	}}
	go srv.Serve(ln) //nolint:errcheck // ends with Shutdown
	defer srv.Shutdown()
	client := &fasthttp.HostClient{Addr: ln.Addr().String()} // dial the server whatever the Host
	for _, c := range []struct{ host, path, want string }{
		{"a.example.com", "/w", "wild"},
		{"other.org", "/users/9/posts/3", "tmpl-users-posts id=9 post=3"},
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + c.host + c.path)
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if g := string(resp.Body()); g != c.want {
			t.Errorf("%s%s: got %q, want %q", c.host, c.path, g, c.want)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}

// FuzzMatch checks that no path or host panics and that a generated exact
// route always matches its own path.
func FuzzMatch(f *testing.F) {
	for _, s := range []string{"/", "/users/me", "/api/v1/../x", "//a//b/", "/%2F%00", "a.b", "/files/{x...}", ""} {
		f.Add("a.example.com", s)
	}
	fixed := precedenceRoutes()
	f.Fuzz(func(t *testing.T, host, path string) {
		gen := genPath(path)
		routes := append(fixed[:len(fixed):len(fixed)], rt("gen", 99, config.Match{Path: gen}))
		tbl := compile(t, routes)
		var res Result
		req := &fasthttp.Request{}
		req.Header.SetHost(host)
		req.URI().SetPath(path)
		if tbl.Match(req, reqPath(req), &res) {
			tbl.Rewrite(nil, reqPath(req), &res)
		}
		tbl.match([]byte(host), []byte(path), &subject{req: req}, &res) // raw bytes, unnormalized
		req = mkReq(t, "GET", "fuzz.test", gen)
		if !tbl.Match(req, reqPath(req), &res) || res.Route != len(routes)-1 {
			t.Fatalf("generated route %q did not match its own path (got route %d)", gen, res.Route)
		}
	})
}

// genPath derives a literal path from fuzz input with characters no fixed
// route uses, so the generated route is the only exact route for it.
func genPath(s string) string {
	const alpha = "abcdefghijklmnopqrstuvwxyz0123456789-_~"
	var b strings.Builder
	b.WriteString("/z")
	for i := 0; i < len(s) && i < 200; i++ {
		if s[i] == '/' {
			b.WriteString("/z")
		} else {
			b.WriteByte(alpha[int(s[i])%len(alpha)])
		}
	}
	return b.String()
}
