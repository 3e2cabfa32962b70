package cache

import (
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

func TestPolicyValidation(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		want string // "" : valid
	}{
		{"minimal", Policy{MaxBytes: 1}, ""},
		{"everything", Policy{MaxBytes: 1 << 20, MaxObjectBytes: 1 << 10, DefaultTTL: time.Second, MaxTTL: time.Hour,
			Statuses: []int{200}, StaleWhileRevalidate: time.Second, StaleIfError: time.Second, Keep: time.Second,
			StatusHeader: "X-Cache", Key: KeySpec{Headers: []string{"Accept-Language"}, Query: []string{"a", "b*"},
				IgnoreQuery: []string{"utm_*", "*"}, Cookies: []string{"lang"}}}, ""},
		{"no budget", Policy{}, "MaxBytes must be > 0"},
		{"negative object", Policy{MaxBytes: 1, MaxObjectBytes: -1}, "MaxObjectBytes must be >= 0"},
		{"object over budget", Policy{MaxBytes: 1, MaxObjectBytes: 2}, "must not exceed MaxBytes"},
		{"negative TTL", Policy{MaxBytes: 1, DefaultTTL: -1}, "DefaultTTL must be >= 0"},
		{"negative stale", Policy{MaxBytes: 1, StaleIfError: -1}, "StaleIfError must be >= 0"},
		{"bad status", Policy{MaxBytes: 1, Statuses: []int{99}}, "99 is not an HTTP status code"},
		{"bad status header", Policy{MaxBytes: 1, StatusHeader: "X Cache"}, "StatusHeader"},
		{"bad key header", Policy{MaxBytes: 1, Key: KeySpec{Headers: []string{"a:b"}}}, "Key.Headers"},
		{"Host keyed", Policy{MaxBytes: 1, Key: KeySpec{Headers: []string{"host"}}}, "Host is always part of the key"},
		{"empty param", Policy{MaxBytes: 1, Key: KeySpec{Query: []string{""}}}, "Key.Query: empty parameter name"},
		{"bad cookie", Policy{MaxBytes: 1, Key: KeySpec{Cookies: []string{"a=b"}}}, "Key.Cookies"},
		{"several errors", Policy{MaxBytes: 0, Statuses: []int{1000}}, "1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cache: invalid policy") {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCanonicalMatchesFasthttp(t *testing.T) {
	for _, name := range []string{"x-cache-status", "ACCEPT-ENCODING", "x-b", "Etag", "a--b"} {
		var h fasthttp.ResponseHeader
		h.Set(name, "v")
		var got string
		for k := range h.All() {
			if string(k) != "Content-Type" {
				got = string(k)
			}
		}
		if c := string(httpsyntax.CanonicalName(name)); c != got {
			t.Errorf("httpsyntax.CanonicalName(%q) = %q, fasthttp %q", name, c, got)
		}
	}
}

func TestUpdate(t *testing.T) {
	base := Policy{DefaultTTL: 10 * time.Second}
	g, clk := setup(t, base, func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/404" {
			ctx.SetStatusCode(404)
		}
		ctx.SetBodyString("x")
	})
	g.get(t, "/h")
	g.get(t, "/404")
	clk.Advance(20 * time.Second)

	p := base
	p.MaxBytes, p.Now = 32<<20, clk.Now
	p.DefaultTTL = 100 * time.Second // stored heuristic entries follow
	if err := g.c.Update(p); err != nil {
		t.Fatal(err)
	}
	if r := g.get(t, "/h"); r.cache != "HIT" || r.age != "20" {
		t.Fatalf("after raising DefaultTTL: %s Age %s", r.cache, r.age)
	}
	if st := g.c.Stats(); st.MaxBytes != 32<<20 || g.c.st.maxBytes() != 32<<20 {
		t.Fatalf("MaxBytes %d / %d", st.MaxBytes, g.c.st.maxBytes())
	}
	p.MaxTTL = 15 * time.Second
	p.Statuses = []int{200}
	if err := g.c.Update(p); err != nil {
		t.Fatal(err)
	}
	if r := g.get(t, "/404"); r.cache != "BYPASS" || r.status != 404 {
		t.Fatalf("404 after removing it from Statuses: %s %d, want BYPASS 404 (not storable)", r.cache, r.status)
	}
	if r := g.get(t, "/h"); r.cache != "MISS" {
		t.Fatalf("after lowering MaxTTL: %s", r.cache)
	}
	if err := g.c.Update(Policy{}); err == nil {
		t.Fatal("invalid policy accepted")
	}
	if st := g.c.Stats(); st.MaxBytes != 32<<20 {
		t.Fatalf("invalid Update changed the policy: %d", st.MaxBytes)
	}
	p.StatusHeader = "X-Edge"
	if err := g.c.Update(p); err != nil {
		t.Fatal(err)
	}
	if r := g.get(t, "/h"); r.get("X-Edge") != "HIT" {
		t.Fatalf("status header not renamed:\n%s", r.header)
	}
}

func TestStatsCount(t *testing.T) {
	g, clk := setup(t, Policy{}, validating(`"e"`, "Cache-Control: max-age=10"))
	g.get(t, "/s")                            // miss
	g.get(t, "/s")                            // hit
	g.do(t, "POST", "/t")                     // bypass
	g.get(t, "/s", "Cache-Control: no-cache") // revalidated
	clk.Advance(11 * time.Second)
	g.get(t, "/s", "Cache-Control: max-stale") // stale
	st := g.c.Stats()
	if st.Misses != 1 || st.Hits != 1 || st.Bypass != 1 || st.Revalidated != 1 || st.Stale != 1 || st.Entries != 1 || st.Bytes <= 0 {
		t.Fatalf("%+v", st)
	}
}
