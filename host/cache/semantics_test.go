package cache

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// validating answers with ETag etag and the header lines given, 304 when
// the request's If-None-Match is etag, and "body<n>" otherwise; X-Rev
// counts the requests, so a refresh shows in the stored fields.
func validating(etag string, hdr ...string) fasthttp.RequestHandler {
	var n atomic.Int64
	return func(ctx *fasthttp.RequestCtx) {
		i := n.Add(1)
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ":")
			ctx.Response.Header.Add(k, strings.TrimSpace(v))
		}
		ctx.Response.Header.Set("ETag", etag)
		ctx.Response.Header.Set("X-Rev", itoa(int(i)))
		if string(ctx.Request.Header.Peek("If-None-Match")) == etag {
			ctx.SetStatusCode(fasthttp.StatusNotModified)
			return
		}
		ctx.SetBodyString("body" + itoa(int(i)))
	}
}

// TestStorageRules sends the same request twice and checks what was
// stored: the statuses of both answers and how many requests reached the
// upstream.
func TestStorageRules(t *testing.T) {
	expires := newClock().Now().Add(time.Minute).Format(time.RFC1123)
	expires = strings.Replace(expires, "UTC", "GMT", 1)
	type tc struct {
		name    string
		pol     func(*Policy)
		status  int
		hdr     []string // response header lines
		body    string   // "" : counting "v<n>"
		req     []string // request header lines
		method  string
		want    [2]string
		fetches int
		check   func(t *testing.T, r1, r2 result)
	}
	noField := func(name string) func(t *testing.T, r1, r2 result) {
		return func(t *testing.T, r1, r2 result) {
			if r1.get(name) == "" {
				t.Errorf("fill response lacks %s:\n%s", name, r1.header)
			}
			if r2.get(name) != "" {
				t.Errorf("stored response carries %s:\n%s", name, r2.header)
			}
		}
	}
	cases := []tc{
		{name: "max-age", hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"MISS", "HIT"}, fetches: 1,
			check: func(t *testing.T, r1, r2 result) {
				if r1.body != r2.body || r2.get("Cache-Control") != "max-age=60" {
					t.Errorf("hit differs: %q vs %q\n%s", r1.body, r2.body, r2.header)
				}
			}},
		{name: "no-store", hdr: []string{"Cache-Control: max-age=60, no-store"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "private", hdr: []string{"Cache-Control: private, max-age=60"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "private qualified", hdr: []string{`Cache-Control: max-age=60, private="X-Secret"`, "X-Secret: s", "X-Other: o"},
			want: [2]string{"MISS", "HIT"}, fetches: 1, check: func(t *testing.T, r1, r2 result) {
				noField("X-Secret")(t, r1, r2)
				if r2.get("X-Other") != "o" {
					t.Errorf("X-Other lost")
				}
			}},
		{name: "no-cache qualified", hdr: []string{`Cache-Control: max-age=60, no-cache="X-Secret"`, "X-Secret: s"},
			want: [2]string{"MISS", "HIT"}, fetches: 1, check: noField("X-Secret")},
		{name: "s-maxage over max-age", hdr: []string{"Cache-Control: max-age=0, s-maxage=60"}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "Vary star", hdr: []string{"Cache-Control: max-age=60", "Vary: *"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "Set-Cookie refused", hdr: []string{"Cache-Control: max-age=60", "Set-Cookie: s=1"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3,
			check: func(t *testing.T, r1, r2 result) {
				if r1.get("Set-Cookie") == "" || r2.get("Set-Cookie") == "" {
					t.Errorf("passed responses lost their Set-Cookie")
				}
			}},
		{name: "Set-Cookie stored without it", pol: func(p *Policy) { p.StoreSetCookie = true },
			hdr: []string{"Cache-Control: max-age=60", "Set-Cookie: s=1"}, want: [2]string{"MISS", "HIT"}, fetches: 1, check: noField("Set-Cookie")},
		{name: "private=Set-Cookie", hdr: []string{`Cache-Control: max-age=60, private="set-cookie"`, "Set-Cookie: s=1"},
			want: [2]string{"MISS", "HIT"}, fetches: 1, check: noField("Set-Cookie")},
		{name: "500 not stored, no hit-for-pass", status: 500, hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"MISS", "MISS"}, fetches: 2},
		{name: "404 stored", status: 404, hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "302 not stored", status: 302, hdr: []string{"Cache-Control: max-age=60", "Location: /x"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "206 not stored", status: 206, hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "Statuses", pol: func(p *Policy) { p.Statuses = []int{302} }, status: 302,
			hdr: []string{"Cache-Control: max-age=60", "Location: /x"}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "no freshness without DefaultTTL", want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "DefaultTTL", pol: func(p *Policy) { p.DefaultTTL = 10 * time.Second }, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "DefaultTTL not over explicit zero", pol: func(p *Policy) { p.DefaultTTL = 10 * time.Second },
			hdr: []string{"Cache-Control: max-age=0"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "Expires", hdr: []string{"Expires: " + expires}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "invalid Expires is stale", pol: func(p *Policy) { p.DefaultTTL = time.Minute },
			hdr: []string{"Expires: 0"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "invalid max-age is stale", pol: func(p *Policy) { p.DefaultTTL = time.Minute },
			hdr: []string{"Cache-Control: max-age=soon"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "stale with validator is revalidated", hdr: []string{"Expires: 0", `ETag: "e"`}, want: [2]string{"MISS", "MISS"}, fetches: 2,
			check: func(t *testing.T, r1, r2 result) {
				if r1.body == r2.body {
					t.Errorf("not refetched")
				}
			}},
		{name: "request no-store", req: []string{"Cache-Control: no-store"}, hdr: []string{"Cache-Control: max-age=60"},
			want: [2]string{"MISS", "MISS"}, fetches: 2},
		{name: "too big", pol: func(p *Policy) { p.MaxObjectBytes = 10 }, body: "0123456789A",
			hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "MaxObjectBytes exactly", pol: func(p *Policy) { p.MaxObjectBytes = 10 }, body: "0123456789",
			hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "Authorization unkeyed", req: []string{"Authorization: Bearer a"}, hdr: []string{"Cache-Control: public, max-age=60"},
			want: [2]string{"BYPASS", "BYPASS"}, fetches: 2},
		{name: "Authorization keyed, public", pol: func(p *Policy) { p.Key.Headers = []string{"Authorization"} },
			req: []string{"Authorization: Bearer a"}, hdr: []string{"Cache-Control: public, max-age=60"}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "Authorization keyed, s-maxage", pol: func(p *Policy) { p.Key.Headers = []string{"Authorization"} },
			req: []string{"Authorization: Bearer a"}, hdr: []string{"Cache-Control: s-maxage=60"}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "Authorization keyed, must-revalidate", pol: func(p *Policy) { p.Key.Headers = []string{"Authorization"} },
			req: []string{"Authorization: Bearer a"}, hdr: []string{"Cache-Control: max-age=60, must-revalidate"}, want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "Authorization keyed, max-age only", pol: func(p *Policy) { p.Key.Headers = []string{"Authorization"} },
			req: []string{"Authorization: Bearer a"}, hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "must-understand overrides no-store", hdr: []string{"Cache-Control: max-age=60, no-store, must-understand"},
			want: [2]string{"MISS", "HIT"}, fetches: 1},
		{name: "must-understand, status not understood", status: 299, hdr: []string{"Cache-Control: max-age=60, no-store, must-understand"},
			want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "POST", method: "POST", hdr: []string{"Cache-Control: max-age=60"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 2},
		{name: "max-age=0 without validator", hdr: []string{"Cache-Control: max-age=0"}, want: [2]string{"BYPASS", "BYPASS"}, fetches: 3},
		{name: "Surrogate fields not served", hdr: []string{"Cache-Control: max-age=60", "Surrogate-Key: a", "Surrogate-Control: max-age=9"},
			want: [2]string{"MISS", "HIT"}, fetches: 1, check: func(t *testing.T, r1, r2 result) {
				for _, r := range []result{r1, r2} {
					if r.get("Surrogate-Key") != "" || r.get("Surrogate-Control") != "" {
						t.Errorf("surrogate fields served:\n%s", r.header)
					}
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Policy{}
			if tc.pol != nil {
				tc.pol(&p)
			}
			h := counting("v", tc.hdr...)
			status := tc.status
			if status == 0 {
				status = 200
			}
			if tc.body != "" {
				h = reply(status, tc.body, tc.hdr...)
			} else {
				inner := h
				h = func(ctx *fasthttp.RequestCtx) { inner(ctx); ctx.SetStatusCode(status) }
			}
			g, _ := setup(t, p, h)
			method := tc.method
			if method == "" {
				method = "GET"
			}
			r1 := g.do(t, method, "/r", tc.req...)
			r2 := g.do(t, method, "/r", tc.req...)
			if got := [2]string{r1.cache, r2.cache}; got != tc.want {
				t.Errorf("statuses %v, want %v", got, tc.want)
			}
			if n := g.up.count(); n != tc.fetches {
				t.Errorf("%d upstream requests, want %d", n, tc.fetches)
			}
			if r1.status != status || r2.status != status {
				t.Errorf("HTTP statuses %d, %d, want %d", r1.status, r2.status, status)
			}
			if tc.check != nil {
				tc.check(t, r1, r2)
			}
		})
	}
}

func TestAuthorizationIsPartOfTheKey(t *testing.T) {
	g, _ := setup(t, Policy{Key: KeySpec{Headers: []string{"Authorization"}}}, counting("v", "Cache-Control: public, max-age=60"))
	a1 := g.get(t, "/r", "Authorization: Bearer a")
	b1 := g.get(t, "/r", "Authorization: Bearer b")
	a2 := g.get(t, "/r", "Authorization: Bearer a")
	if a1.cache != "MISS" || b1.cache != "MISS" || a2.cache != "HIT" || a2.body != a1.body || b1.body == a1.body {
		t.Fatalf("a1 %s %q, b1 %s %q, a2 %s %q", a1.cache, a1.body, b1.cache, b1.body, a2.cache, a2.body)
	}
	if got := g.up.last().header; !strings.Contains(got, "Authorization: Bearer b") {
		t.Fatalf("keyed Authorization not sent on the fill:\n%s", got)
	}
	for _, k := range g.c.Keys("", 0) {
		if strings.Contains(k, "Bearer") {
			t.Fatalf("credential in key listing: %q", k)
		}
	}
}

func TestFreshnessAndAge(t *testing.T) {
	t.Run("max-age", func(t *testing.T) {
		g, clk := setup(t, Policy{}, counting("v", "Cache-Control: max-age=100"))
		steps := []struct {
			advance    time.Duration
			cache, age string
		}{
			{0, "MISS", "0"}, {30 * time.Second, "HIT", "30"}, {69 * time.Second, "HIT", "99"},
			{time.Second, "MISS", "0"}, {time.Second, "HIT", "1"},
		}
		for i, s := range steps {
			clk.Advance(s.advance)
			r := g.get(t, "/f")
			if r.cache != s.cache || r.age != s.age {
				t.Fatalf("step %d: %s Age %s, want %s Age %s", i, r.cache, r.age, s.cache, s.age)
			}
		}
	})
	t.Run("upstream Age counts", func(t *testing.T) {
		g, clk := setup(t, Policy{}, counting("v", "Cache-Control: max-age=100", "Age: 40"))
		if r := g.get(t, "/f"); r.cache != "MISS" || r.age != "40" {
			t.Fatalf("%s Age %s, want MISS Age 40", r.cache, r.age)
		}
		clk.Advance(59 * time.Second)
		if r := g.get(t, "/f"); r.cache != "HIT" || r.age != "99" {
			t.Fatalf("%s Age %s, want HIT Age 99", r.cache, r.age)
		}
		clk.Advance(time.Second)
		if r := g.get(t, "/f"); r.cache != "MISS" {
			t.Fatalf("%s after 100 s of age, want MISS", r.cache)
		}
	})
	t.Run("MaxTTL caps", func(t *testing.T) {
		g, clk := setup(t, Policy{MaxTTL: 10 * time.Second}, counting("v", "Cache-Control: max-age=100"))
		g.get(t, "/f")
		clk.Advance(9 * time.Second)
		if r := g.get(t, "/f"); r.cache != "HIT" {
			t.Fatalf("%s at 9 s", r.cache)
		}
		clk.Advance(time.Second)
		if r := g.get(t, "/f"); r.cache != "MISS" {
			t.Fatalf("%s at 10 s, want MISS", r.cache)
		}
	})
	t.Run("Date and Expires", func(t *testing.T) {
		// A raw upstream: fasthttp's server writes its own Date.
		clk := newClock()
		up := startRawUpstream(t, func(req *fasthttp.Request) string {
			now := clk.Now()
			body := "raw"
			return "HTTP/1.1 200 OK\r\nDate: " + httpDate(now.Add(-10*time.Second)) +
				"\r\nExpires: " + httpDate(now.Add(50*time.Second)) + "\r\nContent-Length: 3\r\n\r\n" + body
		})
		c, err := New(Policy{MaxBytes: 1 << 20, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		g := startGateway(t, c, up)
		if r := g.get(t, "/d"); r.cache != "MISS" || r.age != "10" {
			t.Fatalf("%s Age %s, want MISS Age 10 (apparent age)", r.cache, r.age)
		}
		clk.Advance(49 * time.Second)
		if r := g.get(t, "/d"); r.cache != "HIT" || r.age != "59" {
			t.Fatalf("%s Age %s, want HIT Age 59", r.cache, r.age)
		}
		clk.Advance(time.Second)
		if r := g.get(t, "/d"); r.cache != "MISS" {
			t.Fatalf("%s past Expires, want MISS", r.cache)
		}
	})
}

func httpDate(t time.Time) string { return t.UTC().Format(http1123) }

const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func TestRevalidation(t *testing.T) {
	t.Run("304 refreshes", func(t *testing.T) {
		g, clk := setup(t, Policy{}, validating(`"e1"`, "Cache-Control: max-age=10"))
		r1 := g.get(t, "/v")
		old := g.c.st.get([]byte("example.com/v")).vs[0]
		clk.Advance(11 * time.Second)
		r2 := g.get(t, "/v")
		if e := g.c.st.get([]byte("example.com/v")).vs[0]; e == old || &e.body[0] != &old.body[0] {
			t.Fatal("the refreshed entry does not share the stored body")
		}
		if r2.cache != "REVALIDATED" || r2.status != 200 || r2.body != r1.body || r2.get("X-Rev") != "2" {
			t.Fatalf("%s %d %q X-Rev %s, want REVALIDATED 200 %q X-Rev 2", r2.cache, r2.status, r2.body, r2.get("X-Rev"), r1.body)
		}
		if inm := string(g.up.last().req.Header.Peek("If-None-Match")); inm != `"e1"` {
			t.Fatalf("revalidation If-None-Match %q", inm)
		}
		clk.Advance(9 * time.Second)
		if r3 := g.get(t, "/v"); r3.cache != "HIT" || r3.get("X-Rev") != "2" || r3.age != "9" {
			t.Fatalf("%s X-Rev %s Age %s after the refresh, want HIT X-Rev 2 Age 9", r3.cache, r3.get("X-Rev"), r3.age)
		}
	})
	t.Run("Last-Modified", func(t *testing.T) {
		lm := "Sat, 01 Jan 2028 00:00:00 GMT"
		var n atomic.Int64
		g, clk := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
			n.Add(1)
			ctx.Response.Header.Set("Cache-Control", "max-age=10")
			ctx.Response.Header.Set("Last-Modified", lm)
			if string(ctx.Request.Header.Peek("If-Modified-Since")) == lm {
				ctx.SetStatusCode(304)
				return
			}
			ctx.SetBodyString("lm")
		})
		g.get(t, "/lm")
		clk.Advance(11 * time.Second)
		if r := g.get(t, "/lm"); r.cache != "REVALIDATED" || r.body != "lm" {
			t.Fatalf("%s %q", r.cache, r.body)
		}
	})
	t.Run("200 replaces", func(t *testing.T) {
		g, clk := setup(t, Policy{}, counting("v", "Cache-Control: max-age=10", `ETag: "e"`))
		g.get(t, "/v")
		clk.Advance(11 * time.Second)
		if r := g.get(t, "/v"); r.cache != "MISS" || r.body != "v2" {
			t.Fatalf("%s %q, want MISS v2", r.cache, r.body)
		}
		if r := g.get(t, "/v"); r.cache != "HIT" || r.body != "v2" {
			t.Fatalf("%s %q, want HIT v2", r.cache, r.body)
		}
	})
	t.Run("304 for another ETag refetches", func(t *testing.T) {
		var n atomic.Int64
		g, clk := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
			i := n.Add(1)
			ctx.Response.Header.Set("Cache-Control", "max-age=10")
			if len(ctx.Request.Header.Peek("If-None-Match")) > 0 {
				ctx.Response.Header.Set("ETag", `"other"`)
				ctx.SetStatusCode(304)
				return
			}
			ctx.Response.Header.Set("ETag", `"e`+itoa(int(i))+`"`)
			ctx.SetBodyString("full" + itoa(int(i)))
		})
		g.get(t, "/v")
		clk.Advance(11 * time.Second)
		if r := g.get(t, "/v"); r.cache != "MISS" || r.body != "full3" || r.status != 200 {
			t.Fatalf("%s %d %q, want MISS 200 full3", r.cache, r.status, r.body)
		}
		if n.Load() != 3 {
			t.Fatalf("%d upstream requests, want 3", n.Load())
		}
	})
	t.Run("no-cache revalidates every time", func(t *testing.T) {
		g, _ := setup(t, Policy{}, validating(`"e"`, "Cache-Control: max-age=60, no-cache"))
		g.get(t, "/nc")
		for i := range 3 {
			if r := g.get(t, "/nc"); r.cache != "REVALIDATED" || r.body != "body1" {
				t.Fatalf("request %d: %s %q", i, r.cache, r.body)
			}
		}
	})
	t.Run("304 that forbids storing", func(t *testing.T) {
		var n atomic.Int64
		g, clk := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
			i := n.Add(1)
			ctx.Response.Header.Set("ETag", `"e"`)
			if i == 1 {
				ctx.Response.Header.Set("Cache-Control", "max-age=10")
			} else {
				ctx.Response.Header.Set("Cache-Control", "no-store")
			}
			if len(ctx.Request.Header.Peek("If-None-Match")) > 0 {
				ctx.SetStatusCode(304)
				return
			}
			ctx.SetBodyString("b" + itoa(int(i)))
		})
		g.get(t, "/ns")
		clk.Advance(11 * time.Second)
		// The 304 may not be stored, nor the full response asked for
		// then: the client's own request answers.
		if r := g.get(t, "/ns"); r.status != 200 || r.body != "b4" || r.cache != "BYPASS" || n.Load() != 4 {
			t.Fatalf("%s %d %q after %d requests, want BYPASS 200 b4 after 4", r.cache, r.status, r.body, n.Load())
		}
		if r := g.get(t, "/ns"); r.cache != "BYPASS" {
			t.Fatalf("%s, want BYPASS (hit-for-pass)", r.cache)
		}
	})
}

func TestClientDirectives(t *testing.T) {
	type step struct {
		hdr  []string
		want string
	}
	cases := []struct {
		name    string
		resp    []string
		advance time.Duration
		steps   []step
	}{
		{"fresh entry", []string{"Cache-Control: max-age=100"}, 50 * time.Second, []step{
			{nil, "HIT"},
			{[]string{"Cache-Control: max-age=60"}, "HIT"},
			{[]string{"Cache-Control: max-age=10"}, "REVALIDATED"},
			{[]string{"Cache-Control: min-fresh=40"}, "HIT"},
			{[]string{"Cache-Control: min-fresh=60"}, "REVALIDATED"},
			{[]string{"Cache-Control: no-cache"}, "REVALIDATED"},
			{[]string{"Pragma: no-cache"}, "REVALIDATED"},
			{[]string{"Pragma: no-cache", "Cache-Control: max-age=1000"}, "HIT"},
		}},
		{"stale entry", []string{"Cache-Control: max-age=100"}, 150 * time.Second, []step{
			{[]string{"Cache-Control: max-stale"}, "STALE"},
			{[]string{"Cache-Control: max-stale=60"}, "STALE"},
			{[]string{"Cache-Control: max-stale=10"}, "REVALIDATED"},
		}},
		{"must-revalidate", []string{"Cache-Control: max-age=100, must-revalidate"}, 150 * time.Second, []step{
			{[]string{"Cache-Control: max-stale"}, "REVALIDATED"},
		}},
		{"proxy-revalidate", []string{"Cache-Control: max-age=100, proxy-revalidate"}, 150 * time.Second, []step{
			{[]string{"Cache-Control: max-stale"}, "REVALIDATED"},
		}},
		{"only-if-cached", []string{"Cache-Control: max-age=100"}, 0, []step{
			{[]string{"Cache-Control: only-if-cached"}, "HIT"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for i, s := range tc.steps {
				// A fresh store per step: each step judges the same entry.
				g, clk := setup(t, Policy{}, validating(`"e"`, tc.resp...))
				g.get(t, "/c")
				clk.Advance(tc.advance)
				if r := g.get(t, "/c", s.hdr...); r.cache != s.want {
					t.Errorf("step %d %q: %s, want %s", i, s.hdr, r.cache, s.want)
				}
			}
		})
	}
	t.Run("only-if-cached miss", func(t *testing.T) {
		g, _ := setup(t, Policy{}, counting("v", "Cache-Control: max-age=100"))
		r := g.get(t, "/none", "Cache-Control: only-if-cached")
		if r.status != 504 || r.cache != "MISS" || g.up.count() != 0 {
			t.Fatalf("%d %s with %d upstream requests, want 504 MISS and none", r.status, r.cache, g.up.count())
		}
	})
}

func TestConditionalRequests(t *testing.T) {
	lm := "Sat, 01 Jan 2028 00:00:00 GMT"
	g, _ := setup(t, Policy{}, reply(200, "payload", "Cache-Control: max-age=100", `ETag: W/"e1"`,
		"Last-Modified: "+lm, "X-Other: o", "Content-Type: text/html"))
	// The fill's client gets a 304 too when its condition holds.
	if r := g.get(t, "/c", `If-None-Match: W/"e1"`); r.status != 304 || r.cache != "MISS" {
		t.Fatalf("fill with matching If-None-Match: %d %s", r.status, r.cache)
	}
	cases := []struct {
		hdr  []string
		want int
	}{
		{[]string{`If-None-Match: "e1"`}, 304},
		{[]string{`If-None-Match: "x", W/"e1"`}, 304},
		{[]string{`If-None-Match: *`}, 304},
		{[]string{`If-None-Match: "x"`}, 200},
		{[]string{"If-Modified-Since: " + lm}, 304},
		{[]string{"If-Modified-Since: Sun, 02 Jan 2028 00:00:00 GMT"}, 304},
		{[]string{"If-Modified-Since: Fri, 31 Dec 2027 00:00:00 GMT"}, 200},
		{[]string{"If-Modified-Since: garbage"}, 200},
		{[]string{`If-None-Match: "x"`, "If-Modified-Since: " + lm}, 200},
	}
	for _, tc := range cases {
		r := g.get(t, "/c", tc.hdr...)
		if r.status != tc.want || r.cache != "HIT" {
			t.Errorf("%q: %d %s, want %d HIT", tc.hdr, r.status, r.cache, tc.want)
			continue
		}
		if tc.want == 304 {
			if r.body != "" || r.get("X-Other") != "" || r.get("Last-Modified") != "" ||
				r.get("ETag") != `W/"e1"` || r.get("Cache-Control") != "max-age=100" || r.age == "" {
				t.Errorf("%q: 304 fields wrong:\n%s", tc.hdr, r.header)
			}
		} else if r.body != "payload" || r.get("X-Other") != "o" {
			t.Errorf("%q: 200 wrong:\n%s", tc.hdr, r.header)
		}
	}
	if g.up.count() != 1 {
		t.Fatalf("%d upstream requests, want 1", g.up.count())
	}

	t.Run("not for errors", func(t *testing.T) {
		g, _ := setup(t, Policy{}, reply(404, "nope", "Cache-Control: max-age=100"))
		g.get(t, "/404")
		if r := g.get(t, "/404", "If-None-Match: *"); r.status != 404 || r.cache != "HIT" {
			t.Fatalf("%d %s, want 404 HIT", r.status, r.cache)
		}
	})
}

func TestVary(t *testing.T) {
	var varyOn atomic.Value
	varyOn.Store("Accept-Encoding")
	g, _ := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
		name := varyOn.Load().(string)
		ctx.Response.Header.Set("Cache-Control", "max-age=100")
		ctx.Response.Header.Set("Vary", name)
		ctx.SetBodyString(name + "=" + string(ctx.Request.Header.Peek(name)))
	})
	steps := []struct {
		path, hdr, cache, body string
		fetches                int
	}{
		{"/a", "", "MISS", "Accept-Encoding=", 1},
		{"/a", "Accept-Encoding: gzip", "MISS", "Accept-Encoding=gzip", 2},
		{"/a", "Accept-Encoding: gzip", "HIT", "Accept-Encoding=gzip", 2},
		{"/a", "", "HIT", "Accept-Encoding=", 2},
		{"/a", "Accept-Encoding: gzip, br", "MISS", "Accept-Encoding=gzip, br", 3},
		{"/a", "Accept-Encoding: gzip,br", "HIT", "Accept-Encoding=gzip, br", 3},
		// First request of a key with a Varied header: the fill cannot
		// know to send it, then the client's own variant is filled.
		{"/b", "Accept-Encoding: br", "MISS", "Accept-Encoding=br", 5},
		{"/b", "", "HIT", "Accept-Encoding=", 5},
		{"/b", "Accept-Encoding: br", "HIT", "Accept-Encoding=br", 5},
	}
	for i, s := range steps {
		var hdr []string
		if s.hdr != "" {
			hdr = []string{s.hdr}
		}
		r := g.get(t, s.path, hdr...)
		if r.cache != s.cache || r.body != s.body || g.up.count() != s.fetches {
			t.Fatalf("step %d: %s %q after %d fetches, want %s %q after %d", i, r.cache, r.body, g.up.count(), s.cache, s.body, s.fetches)
		}
		if r.get("Vary") != "Accept-Encoding" {
			t.Fatalf("step %d: Vary %q", i, r.get("Vary"))
		}
	}
	if st := g.c.Stats(); st.Entries != 5 {
		t.Fatalf("%d entries, want 5 (3 variants of /a, 2 of /b)", st.Entries)
	}
	// A response with another Vary replaces the variant set.
	varyOn.Store("Accept-Language")
	r := g.get(t, "/a", "Accept-Encoding: zstd")
	if r.cache != "MISS" {
		t.Fatalf("%s", r.cache)
	}
	if st := g.c.Stats(); st.Entries != 3 {
		t.Fatalf("%d entries after the Vary change, want 3", st.Entries)
	}
	if n := g.c.PurgeKey("example.com/a"); n != 1 {
		t.Fatalf("purged %d variants of /a, want 1", n)
	}
}

func TestHead(t *testing.T) {
	g, _ := setup(t, Policy{}, reply(200, "0123456789", "Cache-Control: max-age=100"))
	r := g.do(t, "HEAD", "/h")
	if r.status != 200 || r.cache != "MISS" || r.body != "" || r.resp.Header.ContentLength() != 10 {
		t.Fatalf("HEAD miss: %d %s %q Content-Length %d", r.status, r.cache, r.body, r.resp.Header.ContentLength())
	}
	if m := g.up.last().method; m != "GET" {
		t.Fatalf("HEAD miss filled with %s", m)
	}
	if r := g.get(t, "/h"); r.cache != "HIT" || r.body != "0123456789" {
		t.Fatalf("GET after HEAD fill: %s %q", r.cache, r.body)
	}
	if r := g.do(t, "HEAD", "/h"); r.cache != "HIT" || r.body != "" || r.resp.Header.ContentLength() != 10 {
		t.Fatalf("HEAD hit: %s %q %d", r.cache, r.body, r.resp.Header.ContentLength())
	}
	if g.up.count() != 1 {
		t.Fatalf("%d upstream requests", g.up.count())
	}
}

func TestPluginKey(t *testing.T) {
	g, _ := setup(t, Policy{}, counting("v", "Cache-Control: max-age=100"))
	k := []byte("tenant-a/catalog")
	g.key.Store(&k)
	r1 := g.get(t, "/one?x=1")
	r2 := g.get(t, "/two")
	if r1.cache != "MISS" || r2.cache != "HIT" || r2.body != r1.body {
		t.Fatalf("%s %q / %s %q", r1.cache, r1.body, r2.cache, r2.body)
	}
	if keys := g.c.Keys("", 0); len(keys) != 1 || keys[0] != "@tenant-a/catalog" {
		t.Fatalf("keys %q", keys)
	}
	// The fill is still built from the request's own keyed parts.
	if u := g.up.last().uri; u != "/one?x=1" {
		t.Fatalf("fill URI %q", u)
	}
}
