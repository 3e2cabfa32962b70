package cache

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// reflector is an upstream that trusts every input the classic cache
// poisoning attacks use, reflecting them into its body and headers, and
// marks its response cacheable.
func reflector(ctx *fasthttp.RequestCtx) {
	h := &ctx.Request.Header
	pick := func(name string) string { return string(h.Peek(name)) }
	host := string(ctx.Host())
	if v := pick("X-Forwarded-Host"); v != "" {
		host = v
	}
	if v := pick("X-Host"); v != "" {
		host = v
	}
	scheme := "https"
	if v := pick("X-Forwarded-Scheme"); v != "" {
		scheme = v
	}
	if v := pick("X-Forwarded-Proto"); v != "" {
		scheme = v
	}
	path := string(ctx.Path())
	for _, n := range []string{"X-Original-URL", "X-Rewrite-URL"} {
		if v := pick(n); v != "" {
			path = v
		}
	}
	method := string(ctx.Method())
	if v := pick("X-HTTP-Method-Override"); v != "" {
		method = v
	}
	var b strings.Builder
	b.WriteString("<script src=\"" + scheme + "://" + host + "/app.js\"></script>")
	b.WriteString(" path=" + path + " method=" + method)
	b.WriteString(" args=" + ctx.QueryArgs().String())
	b.WriteString(" callback=" + string(ctx.QueryArgs().Peek("callback")))
	b.WriteString(" a=" + string(ctx.QueryArgs().Peek("a")))
	b.WriteString(" body=" + string(ctx.PostBody()))
	b.WriteString(" cookie=" + pick("Cookie"))
	b.WriteString(" server=" + pick("X-Forwarded-Server") + pick("Forwarded") + pick("X-Forwarded-For"))
	// A backend that reads every occurrence of a header (or the last).
	for _, v := range h.PeekAll("X-Tenant") {
		b.WriteString(" tenant=" + string(v))
	}
	b.WriteString(" ua=" + pick("User-Agent") + " lang=" + pick("Accept-Language"))
	ctx.Response.Header.Set("Location", scheme+"://"+host+path)
	ctx.Response.Header.Set("Link", "<"+scheme+"://"+host+"/style.css>; rel=preload")
	ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	ctx.SetBodyString(b.String())
}

// TestPoisoning plays the unkeyed-input attacks: an attacker's request
// fills the cache, then a victim's clean request for the same key is
// answered from it and must carry nothing the attacker sent. Every attack
// value contains "evil".
func TestPoisoning(t *testing.T) {
	cases := []struct {
		name   string
		spec   KeySpec
		target string // attacker's target
		victim string // victim's target (same key)
		hdr    []string
		vhdr   []string // victim's headers
		body   string
	}{
		{name: "X-Forwarded-Host", hdr: []string{"X-Forwarded-Host: evil.example"}},
		{name: "X-Host", hdr: []string{"X-Host: evil.example"}},
		{name: "X-Forwarded-Server and Forwarded", hdr: []string{"X-Forwarded-Server: evil", "Forwarded: for=evil;host=evil", "X-Forwarded-For: 6.6.6.6, evil"}},
		{name: "X-Forwarded-Scheme", hdr: []string{"X-Forwarded-Scheme: evil"}},
		{name: "X-Forwarded-Proto", hdr: []string{"X-Forwarded-Proto: evil"}},
		{name: "X-Original-URL", hdr: []string{"X-Original-URL: /evil-admin"}},
		{name: "X-Rewrite-URL", hdr: []string{"X-Rewrite-URL: /evil-admin"}},
		{name: "X-HTTP-Method-Override", hdr: []string{"X-HTTP-Method-Override: EVILPOST"}},
		{name: "fat GET", hdr: []string{"Content-Type: application/x-www-form-urlencoded"}, body: "callback=evil"},
		{name: "unkeyed cookie", hdr: []string{"Cookie: session=evil"}},
		{name: "unkeyed cookie beside a keyed one", spec: KeySpec{Cookies: []string{"lang"}},
			hdr: []string{"Cookie: lang=en; session=evil"}, vhdr: []string{"Cookie: lang=en"}},
		{name: "unkeyed header", hdr: []string{"User-Agent: evil-agent", "Accept-Language: evil"}},
		{name: "duplicate keyed header", spec: KeySpec{Headers: []string{"X-Tenant"}},
			hdr: []string{"X-Tenant: acme", "X-Tenant: evil"}, vhdr: []string{"X-Tenant: acme"}},
		{name: "ignored parameter", spec: KeySpec{IgnoreQuery: []string{"utm_*"}},
			target: "/p?a=1&utm_source=evil", victim: "/p?a=1"},
		{name: "parameter cloaking", spec: KeySpec{IgnoreQuery: []string{"utm_*"}},
			target: "/p?a=1&utm_content=x;a=evil;callback=evil", victim: "/p?a=1"},
		{name: "duplicate ignored parameter", spec: KeySpec{IgnoreQuery: []string{"utm_source"}},
			target: "/p?utm_source=x&a=1&utm_source=evil", victim: "/p?a=1"},
		{name: "unkeyed parameter", spec: KeySpec{Query: []string{"a"}},
			target: "/p?a=1&callback=evil", victim: "/p?a=1"},
		{name: "parameter order and encoding", target: "/p?b=2&a=%31", victim: "/p?a=1&b=2",
			hdr: []string{"X-Forwarded-Host: evil.example"}},
		{name: "path normalization", target: "/x/../p", victim: "/p", hdr: []string{"X-Original-URL: /evil"}},
		{name: "host case and port", target: "http://EXAMPLE.com:80/p", victim: "/p", hdr: []string{"X-Host: evil"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := setup(t, Policy{Key: tc.spec}, reflector)
			target, victim := tc.target, tc.victim
			if target == "" {
				target = "/p"
			}
			if victim == "" {
				victim = target
			}
			attack := attackRequest(t, g, target, tc.hdr, tc.body)
			if attack.cache != "MISS" {
				t.Fatalf("attack: %s", attack.cache)
			}
			fill := g.up.last()
			if strings.Contains(strings.ToLower(fill.header+fill.uri+fill.body), "evil") {
				t.Fatalf("the fill carried attacker input:\n%s %s\n%s%s", fill.method, fill.uri, fill.header, fill.body)
			}
			if fill.method != "GET" || fill.body != "" {
				t.Fatalf("fill %s with body %q", fill.method, fill.body)
			}
			r := g.get(t, victim, tc.vhdr...)
			if r.cache != "HIT" {
				t.Fatalf("victim: %s (the attack did not share the victim's key)", r.cache)
			}
			if strings.Contains(strings.ToLower(r.body+r.header), "evil") {
				t.Fatalf("victim got poisoned content:\n%s\n%s", r.header, r.body)
			}
			// Control: the upstream does reflect the input when it gets it.
			direct := new(fasthttp.Response)
			req := new(fasthttp.Request)
			req.SetRequestURI("http://example.com" + strings.TrimPrefix(target, "http://EXAMPLE.com:80"))
			for _, h := range tc.hdr {
				k, v, _ := strings.Cut(h, ":")
				req.Header.Add(k, strings.TrimSpace(v))
			}
			req.SetBodyString(tc.body)
			if err := g.up.client.Do(req, direct); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(strings.ToLower(string(direct.Body())+direct.Header.String()), "evil") {
				t.Fatalf("control: the upstream ignores this input, the case tests nothing:\n%s", direct.Body())
			}
		})
	}
}

func attackRequest(t *testing.T, g *gateway, target string, hdr []string, body string) result {
	t.Helper()
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if !strings.Contains(target, "://") {
		target = "http://example.com" + target
	}
	req.SetRequestURI(target)
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		req.Header.Add(k, strings.TrimSpace(v))
	}
	if body != "" {
		req.SetBodyString(body)
	}
	resp := new(fasthttp.Response)
	if err := g.client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	return result{status: resp.StatusCode(), cache: string(resp.Header.Peek("X-Cache-Status")), body: string(resp.Body()), resp: resp}
}

// TestBypassIsUntouched checks the other side: requests the cache does not
// handle reach the upstream exactly as the client sent them.
func TestBypassIsUntouched(t *testing.T) {
	g, _ := setup(t, Policy{}, reflector)
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("http://example.com/p?x=1")
	req.Header.SetMethod("POST")
	req.Header.Set("X-Forwarded-Host", "fwd.example")
	req.Header.Set("Cookie", "session=s1")
	req.SetBodyString("form=1")
	resp := new(fasthttp.Response)
	if err := g.client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if st := string(resp.Header.Peek("X-Cache-Status")); st != "BYPASS" {
		t.Fatalf("%s", st)
	}
	seen := g.up.last()
	for _, want := range []string{"X-Forwarded-Host: fwd.example", "Cookie: session=s1"} {
		if !strings.Contains(seen.header, want) {
			t.Errorf("bypass lost %q:\n%s", want, seen.header)
		}
	}
	if seen.method != "POST" || seen.body != "form=1" || seen.uri != "/p?x=1" {
		t.Errorf("bypass changed the request: %s %s %q", seen.method, seen.uri, seen.body)
	}
}
