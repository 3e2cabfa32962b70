package cache

// Regression tests for review findings (hit-for-pass, plugin keys, shared
// server errors, tag purges of expired keys, Close).

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// personal is an upstream that personalizes on an unkeyed session cookie:
// "for <session>" (or "for anonymous"), with the header lines given, which
// make the response not storable. noSession, when not nil, answers the
// requests without a session instead.
func personal(noSession fasthttp.RequestHandler, hdr ...string) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		sess := string(ctx.Request.Header.Cookie("session"))
		if sess == "" && noSession != nil {
			noSession(ctx)
			return
		}
		if sess == "" {
			sess = "anonymous"
		}
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ":")
			ctx.Response.Header.Add(k, strings.TrimSpace(v))
		}
		ctx.SetBodyString("for " + sess + string(ctx.QueryArgs().Peek("pad")))
	}
}

// TestFillerGetsItsOwnAnswer: when the response to a fill request may not
// be stored, the client whose request started the fill gets the answer to
// its own request, not to the fill request (which lacks its unkeyed
// inputs).
func TestFillerGetsItsOwnAnswer(t *testing.T) {
	pad := "?pad=" + strings.Repeat("x", 64)
	cases := []struct {
		name   string
		pol    Policy
		target string
		h      fasthttp.RequestHandler
	}{
		{name: "401 to the anonymous fill", h: personal(reply(401, "login"), "Cache-Control: private")},
		{name: "private", h: personal(nil, "Cache-Control: private, max-age=60")},
		{name: "no-store", h: personal(nil, "Cache-Control: no-store, max-age=60")},
		{name: "Set-Cookie", h: personal(nil, "Cache-Control: max-age=60", "Set-Cookie: id=1")},
		{name: "Vary star", h: personal(nil, "Cache-Control: max-age=60", "Vary: *")},
		{name: "too large", pol: Policy{MaxObjectBytes: 32}, target: pad, h: personal(nil, "Cache-Control: max-age=60")},
		{name: "no freshness", h: personal(nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, _ := setup(t, tc.pol, tc.h)
			r := g.get(t, "/me"+tc.target, "Cookie: session=s1", "X-Unkeyed: 1")
			if r.status != 200 || !strings.HasPrefix(r.body, "for s1") || r.cache != "BYPASS" {
				t.Fatalf("%d %s %q, want 200 BYPASS \"for s1\"", r.status, r.cache, r.body)
			}
			reqs := g.up.all()
			if len(reqs) != 2 {
				t.Fatalf("%d upstream requests, want 2 (the fill, then the client's own)", len(reqs))
			}
			if strings.Contains(reqs[0].header, "session") {
				t.Fatalf("the fill carried the unkeyed cookie:\n%s", reqs[0].header)
			}
			if !strings.Contains(reqs[1].header, "session=s1") || !strings.Contains(reqs[1].header, "X-Unkeyed: 1") {
				t.Fatalf("the client's request was not sent untouched:\n%s", reqs[1].header)
			}
			// Hit-for-pass now: straight to the upstream, once.
			if r := g.get(t, "/me"+tc.target, "Cookie: session=s2"); r.cache != "BYPASS" || !strings.HasPrefix(r.body, "for s2") || g.up.count() != 3 {
				t.Fatalf("next request: %s %q after %d upstream requests", r.cache, r.body, g.up.count())
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		g, _ := setup(t, Policy{}, personal(nil, "Cache-Control: private"))
		r := g.do(t, "HEAD", "/me", "Cookie: session=s1")
		if r.cache != "BYPASS" || r.resp.Header.ContentLength() != len("for s1") {
			t.Fatalf("%s, Content-Length %d", r.cache, r.resp.Header.ContentLength())
		}
		if reqs := g.up.all(); len(reqs) != 2 || reqs[0].method != "GET" || reqs[1].method != "HEAD" {
			t.Fatalf("upstream saw %d requests", len(reqs))
		}
	})
}

// TestPluginKeyNamespace: a plugin's key cannot name a computed key.
func TestPluginKeyNamespace(t *testing.T) {
	g, _ := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Cache-Control", "max-age=100")
		ctx.SetBodyString("page " + string(ctx.Path()))
	})
	k := []byte("example.com/home")
	g.key.Store(&k)
	if r := g.get(t, "/evil"); r.cache != "MISS" || r.body != "page /evil" {
		t.Fatalf("plugin-keyed fill: %s %q", r.cache, r.body)
	}
	g.key.Store(nil)
	if r := g.get(t, "/home"); r.cache != "MISS" || r.body != "page /home" {
		t.Fatalf("computed key answered from the plugin's key: %s %q", r.cache, r.body)
	}
	if keys := g.c.Keys("", 0); !slices.Equal(keys, []string{"@example.com/home", "example.com/home"}) {
		t.Fatalf("keys %q", keys)
	}
	if n := g.c.PurgeKey("example.com/home"); n != 1 {
		t.Fatalf("PurgeKey of the computed key: %d", n)
	}
	g.key.Store(&k)
	if r := g.get(t, "/evil"); r.cache != "HIT" || r.body != "page /evil" {
		t.Fatalf("plugin key after purging the computed one: %s %q", r.cache, r.body)
	}
	g.key.Store(nil)
	g.get(t, "/home")
	if n := g.c.PurgePrefix("@"); n != 1 {
		t.Fatalf("PurgePrefix(@): %d", n)
	}
	if keys := g.c.Keys("", 0); !slices.Equal(keys, []string{"example.com/home"}) {
		t.Fatalf("keys after purging plugin keys %q", keys)
	}
	// A Host starting with '@' is escaped: no computed key starts with it.
	if key := g.c.Key(clientRequest(t, "GET /home HTTP/1.1\r\nHost: @example.com\r\n\r\n")); key[0] == '@' {
		t.Fatalf("computed key %q", key)
	}
}

// TestServerErrorIsShared: requests coalesced behind a fill that got a 5xx
// get a copy of it (or the fill's error) instead of making one upstream
// request each.
func TestServerErrorIsShared(t *testing.T) {
	const n = 20
	t.Run("miss", func(t *testing.T) {
		release := make(chan struct{})
		g, _ := setup(t, Policy{}, gated(0, release, reply(503, "error page", "Retry-After: 5", "Surrogate-Key: x")))
		results := concurrently(t, g, n, "/k", release, func() bool {
			return g.c.Stats().Coalesced == n-1 && g.up.count() == 1
		})
		for i, r := range results {
			if r.status != 503 || r.body != "error page" || r.cache != "MISS" || r.get("Retry-After") != "5" || r.get("Surrogate-Key") != "" {
				t.Fatalf("request %d: %d %s %q\n%s", i, r.status, r.cache, r.body, r.header)
			}
		}
		if c := g.up.count(); c != 1 {
			t.Fatalf("%d upstream requests, want 1", c)
		}
		// Errors do not mark hit-for-pass: the next miss fills again.
		if r := g.get(t, "/k"); r.cache != "MISS" || g.up.count() != 2 {
			t.Fatalf("after the error: %s, %d upstream requests", r.cache, g.up.count())
		}
	})
	t.Run("revalidation", func(t *testing.T) {
		release := make(chan struct{})
		g, clk := setup(t, Policy{}, validating(`"e"`, "Cache-Control: max-age=10"))
		g.get(t, "/k")
		clk.Advance(20 * time.Second)
		g.up.set(gated(0, release, reply(502, "bad gateway")))
		results := concurrently(t, g, n, "/k", release, func() bool {
			return g.c.Stats().Coalesced == n-1 && g.up.count() == 2
		})
		for i, r := range results {
			if r.status != 502 || r.body != "bad gateway" || r.cache != "MISS" {
				t.Fatalf("request %d: %d %s %q", i, r.status, r.cache, r.body)
			}
		}
		if c := g.up.count(); c != 2 {
			t.Fatalf("%d upstream requests, want 2", c)
		}
	})
	t.Run("fetch error", func(t *testing.T) {
		d := newDirect(t, Policy{})
		boom := errors.New("connection refused")
		release := make(chan struct{})
		var calls atomic.Int64
		fetch := func(int64, *fasthttp.Response) error {
			calls.Add(1)
			<-release
			return boom
		}
		var wg sync.WaitGroup
		type out struct {
			st  Status
			err error
		}
		outs := make([]out, n)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st, err, _ := d.get(t, "/k", fetch)
				outs[i] = out{st, err}
			}()
		}
		waitFor(t, "the requests to queue", func() bool { return d.c.Stats().Coalesced == n-1 && calls.Load() == 1 })
		close(release)
		wg.Wait()
		for i, o := range outs {
			if o.st != Miss || !errors.Is(o.err, boom) {
				t.Fatalf("request %d: %v %v", i, o.st, o.err)
			}
		}
		if c := calls.Load(); c != 1 {
			t.Fatalf("%d Fetcher calls, want 1", c)
		}
	})
}

// TestPurgeTagExpiredNode: purging a tag from a node that expired but
// that ristretto has not swept yet must not store the rest without expiry.
func TestPurgeTagExpiredNode(t *testing.T) {
	t.Parallel()
	// ristretto sweeps expired items in 5 s wall-clock buckets, never
	// before the bucket after the expiry's begins: start early in a bucket
	// so that the node stays unswept for seconds after it expires.
	waitForWithin(t, 10*time.Second, "the start of a TTL bucket", func() bool {
		return time.Now().UnixMilli()%5000 < 2500
	})
	s, err := newStore(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	tagged := &entry{cost: 100, sec: []byte("a"), tags: []string{"t"}}
	other := &entry{cost: 100, sec: []byte("b")}
	n := (*node)(nil).with("k", 1, nil, tagged).with("k", 1, nil, other)
	if !s.put(n, 20*time.Millisecond, s.generation()) {
		t.Fatal("not admitted")
	}
	waitFor(t, "the TTL", func() bool { return s.get([]byte("k")) == nil })
	s.imu.Lock()
	unswept := s.nodes["k"] == n
	s.imu.Unlock()
	if !unswept {
		t.Skip("ristretto swept the node before the purge: nothing to test on this run")
	}
	if got := s.purgeTag("t"); got != 1 {
		t.Fatalf("purged %d, want 1", got)
	}
	if s.get([]byte("k")) != nil {
		t.Fatal("the expired node came back (stored without expiry)")
	}
	if e, _ := s.usage(); e != 0 {
		t.Fatalf("%d entries indexed after purging an expired node", e)
	}
}

// TestHitForPassKeepsVariants: a variant whose response is not storable
// is passed through for a while; the key's other variants stay.
func TestHitForPassKeepsVariants(t *testing.T) {
	g, clk := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
		ae := string(ctx.Request.Header.Peek("Accept-Encoding"))
		ctx.Response.Header.Set("Vary", "Accept-Encoding")
		if ae == "br" {
			ctx.Response.Header.Set("Cache-Control", "private")
		} else {
			ctx.Response.Header.Set("Cache-Control", "max-age=100")
		}
		ctx.SetBodyString("enc=" + ae)
	})
	steps := []struct {
		advance time.Duration
		hdr     string
		cache   string
		fetches int
	}{
		{0, "", "MISS", 1},
		{0, "Accept-Encoding: gzip", "MISS", 2},
		{0, "Accept-Encoding: br", "BYPASS", 4}, // not storable: the fill, then the client's own request
		{0, "", "HIT", 4},
		{0, "Accept-Encoding: gzip", "HIT", 4},
		{0, "Accept-Encoding: br", "BYPASS", 5}, // hit-for-pass: no fill
		{hitForPassTTL, "Accept-Encoding: br", "BYPASS", 7},
		{0, "", "HIT", 7},
		{0, "Accept-Encoding: gzip", "HIT", 7},
	}
	for i, s := range steps {
		clk.Advance(s.advance)
		var hdr []string
		if s.hdr != "" {
			hdr = []string{s.hdr}
		}
		r := g.get(t, "/a", hdr...)
		want := "enc=" + strings.TrimPrefix(s.hdr, "Accept-Encoding: ")
		if r.cache != s.cache || r.body != want || g.up.count() != s.fetches {
			t.Fatalf("step %d (%s): %s %q after %d fetches, want %s %q after %d",
				i, s.hdr, r.cache, r.body, g.up.count(), s.cache, want, s.fetches)
		}
	}
	if st := g.c.Stats(); st.Entries != 2 {
		t.Fatalf("%d entries, want 2", st.Entries)
	}

	t.Run("revalidation drops only its variant", func(t *testing.T) {
		var private atomic.Bool
		g, clk := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
			ae := string(ctx.Request.Header.Peek("Accept-Encoding"))
			ctx.Response.Header.Set("Vary", "Accept-Encoding")
			ctx.Response.Header.Set("ETag", `"`+ae+`"`)
			if ae == "gzip" && private.Load() {
				ctx.Response.Header.Set("Cache-Control", "private")
			} else if ae == "gzip" {
				ctx.Response.Header.Set("Cache-Control", "max-age=10")
			} else {
				ctx.Response.Header.Set("Cache-Control", "max-age=100")
			}
			ctx.SetBodyString("enc=" + ae)
		})
		g.get(t, "/a")
		g.get(t, "/a", "Accept-Encoding: gzip")
		clk.Advance(20 * time.Second)
		private.Store(true)
		if r := g.get(t, "/a", "Accept-Encoding: gzip"); r.cache != "BYPASS" || r.body != "enc=gzip" {
			t.Fatalf("revalidation to private: %s %q", r.cache, r.body)
		}
		if r := g.get(t, "/a"); r.cache != "HIT" {
			t.Fatalf("other variant: %s", r.cache)
		}
		if st := g.c.Stats(); st.Entries != 1 {
			t.Fatalf("%d entries, want 1 (the private variant dropped)", st.Entries)
		}
	})
}

// TestCloseDoesNotWait: Close returns while a background refresh is
// blocked upstream; the refresh then ends without storing into the closed
// cache.
func TestCloseDoesNotWait(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	g, clk := setup(t, Policy{StaleWhileRevalidate: time.Minute}, gated(1, release, validating(`"e"`, "Cache-Control: max-age=10")))
	g.get(t, "/c")
	clk.Advance(20 * time.Second)
	if r := g.get(t, "/c"); r.cache != "STALE" {
		t.Fatal(r.cache)
	}
	waitFor(t, "the refresh", func() bool { return g.up.count() == 2 })
	closed := make(chan struct{})
	go func() { g.c.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a background refresh")
	}
	unblock()
	bgDone := make(chan struct{})
	go func() { g.c.bg.Wait(); close(bgDone) }()
	waitFor(t, "the refresh to end", func() bool {
		select {
		case <-bgDone:
			return true
		default:
			return false
		}
	})
	if st := g.c.Stats(); st.Entries != 0 || g.c.st.get([]byte("example.com/c")) != nil {
		t.Fatalf("the refresh stored into a closed cache: %+v", st)
	}
	g.c.Close() // idempotent
	r := g.get(t, "/c")
	if r.cache != "BYPASS" || r.status != 200 || g.up.count() != 3 {
		t.Fatalf("after Close: %s %d, %d upstream requests", r.cache, r.status, g.up.count())
	}
	if g.c.PurgePrefix("") != 0 || len(g.c.Keys("", 0)) != 0 {
		t.Fatal("a closed cache lists or purges")
	}

	t.Run("no refresh starts after Close", func(t *testing.T) {
		d := newDirect(t, Policy{StaleWhileRevalidate: time.Minute})
		d.get(t, "/r", ok200("max-age=10"))
		d.clk.Advance(20 * time.Second)
		d.c.Close()
		// A Serve that began before Close reaches refresh after it.
		p := d.c.pol.Load()
		req := clientRequest(t, "GET /r HTTP/1.1\r\nHost: example.com\r\n\r\n")
		sc := getScratch()
		defer putScratch(sc)
		p.key.collect(req, sc)
		n := &node{key: string(sc.key), base: sc.base}
		called := false
		d.c.refresh(p, req, sc, sc.key, sc.base, n, &entry{}, func(*fasthttp.Request, *fasthttp.Response) error {
			called = true
			return nil
		})
		d.c.bg.Wait()
		d.c.fl.mu.Lock()
		flying := len(d.c.fl.m)
		d.c.fl.mu.Unlock()
		if called || flying != 0 {
			t.Fatalf("refresh after Close: Fetcher called %v, %d flights left", called, flying)
		}
	})
}

// TestPassMarks follows one key's variants and hit-for-pass marks through
// stores and marks.
func TestPassMarks(t *testing.T) {
	d := newDirect(t, Policy{})
	p := d.c.pol.Load()
	ae := [][]byte{[]byte("Accept-Encoding")}
	variant := func(sec string) *entry {
		return &entry{status: 200, respTime: d.clk.Now(), life: time.Minute, sec: []byte(sec), cost: 100}
	}
	const id, gz, br = "Accept-Encoding;", "Accept-Encoding:gzip;", "Accept-Encoding:br;"
	key := []byte("example.com/k")
	store := func(vary [][]byte, sec string) {
		d.c.storeVariant(p, key, len(key), vary, variant(sec), d.c.st.generation())
	}
	check := func(step string, vs, marks []string) {
		t.Helper()
		n := d.c.st.get(key)
		if n == nil {
			t.Fatalf("%s: nothing stored", step)
		}
		var gotVs, gotMarks []string
		for _, e := range n.vs {
			gotVs = append(gotVs, string(e.sec))
		}
		for _, m := range n.pass {
			if n.passing([]byte(m.sec), d.clk.Now()) {
				gotMarks = append(gotMarks, m.sec)
			}
		}
		slices.Sort(gotVs)
		slices.Sort(gotMarks)
		if !slices.Equal(gotVs, vs) || !slices.Equal(gotMarks, marks) {
			t.Fatalf("%s: variants %q marks %q, want %q %q", step, gotVs, gotMarks, vs, marks)
		}
		recomputed := *n
		recomputed.computeCost()
		if recomputed.cost != n.cost {
			t.Fatalf("%s: cost %d, want %d", step, n.cost, recomputed.cost)
		}
	}
	store(ae, id)
	store(ae, gz)
	check("two variants", []string{gz, id}, nil)
	d.c.markPass(p, key, len(key), nil, nil)
	check("mark under other Vary names", []string{gz, id}, nil)
	d.c.markPass(p, key, len(key), ae, []byte(br))
	check("mark a new variant", []string{gz, id}, []string{br})
	d.c.markPass(p, key, len(key), ae, []byte(gz))
	check("mark a stored variant", []string{id}, []string{br, gz})
	store(ae, gz)
	check("store over a mark", []string{gz, id}, []string{br})
	d.clk.Advance(hitForPassTTL)
	store(ae, id)
	if n := d.c.st.get(key); len(n.pass) != 0 {
		t.Fatalf("marks past their time kept: %v", n.pass)
	}
	d.c.markPass(p, key, len(key), ae, []byte(br))
	store([][]byte{[]byte("Accept-Language")}, "Accept-Language:fr;")
	check("Vary change", []string{"Accept-Language:fr;"}, nil)
}

// TestFetchersSplit checks which fetcher each path uses: the client's own
// request goes through Pass, requests the cache builds through Fill.
func TestFetchersSplit(t *testing.T) {
	c, err := New(Policy{MaxBytes: 1 << 20, DefaultTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var fills, passes []string
	answer := func(log *[]string) Fetcher {
		return func(req *fasthttp.Request, resp *fasthttp.Response) error {
			*log = append(*log, string(req.Header.Method())+" "+string(req.URI().PathOriginal()))
			resp.SetStatusCode(200)
			resp.SetBodyString("x")
			return nil
		}
	}
	f := Fetchers{Fill: answer(&fills), Pass: answer(&passes)}
	for _, raw := range []string{
		"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n",                              // miss: a fill
		"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n",                              // hit: neither
		"POST /a HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n",        // bypass: pass
		"GET /b HTTP/1.1\r\nHost: example.com\r\nAuthorization: Basic eA==\r\n\r\n", // bypass: pass
	} {
		if _, err := c.Serve(clientRequest(t, raw), new(fasthttp.Response), nil, f); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"GET /a"}; !slices.Equal(fills, want) {
		t.Errorf("fills %q, want %q", fills, want)
	}
	if want := []string{"POST /a", "GET /b"}; !slices.Equal(passes, want) {
		t.Errorf("passes %q, want %q", passes, want)
	}
}
