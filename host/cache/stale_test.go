package cache

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// gated wraps h so that every request after the first n waits for release
// to be closed.
func gated(n int64, release <-chan struct{}, h fasthttp.RequestHandler) fasthttp.RequestHandler {
	var seen atomic.Int64
	return func(ctx *fasthttp.RequestCtx) {
		if seen.Add(1) > n {
			<-release
		}
		h(ctx)
	}
}

func TestStaleWhileRevalidate(t *testing.T) {
	release := make(chan struct{})
	g, clk := setup(t, Policy{}, gated(1, release,
		validating(`"e"`, "Cache-Control: max-age=10, stale-while-revalidate=30")))
	r1 := g.get(t, "/s")
	clk.Advance(15 * time.Second)
	// Concurrent requests in the window: all served stale at once, one
	// background refresh (blocked upstream until release).
	var wg sync.WaitGroup
	results := make([]result, 10)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = g.get(t, "/s") }()
	}
	wg.Wait()
	for i, r := range results {
		if r.cache != "STALE" || r.body != r1.body || r.age != "15" {
			t.Fatalf("request %d: %s %q Age %s, want STALE %q Age 15", i, r.cache, r.body, r.age, r1.body)
		}
	}
	waitFor(t, "the background refresh", func() bool { return g.up.count() == 2 })
	close(release)
	waitFor(t, "the refreshed entry", func() bool { return g.get(t, "/s").cache == "HIT" })
	if n := g.up.count(); n != 2 {
		t.Fatalf("%d upstream requests, want 2 (one refresh for all stale hits)", n)
	}
	if inm := string(g.up.last().req.Header.Peek("If-None-Match")); inm != `"e"` {
		t.Fatalf("refresh was not conditional: If-None-Match %q", inm)
	}
	if r := g.get(t, "/s"); r.get("X-Rev") != "2" || r.body != r1.body {
		t.Fatalf("refreshed entry: X-Rev %s %q", r.get("X-Rev"), r.body)
	}

	t.Run("past the window", func(t *testing.T) {
		g, clk := setup(t, Policy{}, validating(`"e"`, "Cache-Control: max-age=10, stale-while-revalidate=30"))
		g.get(t, "/s")
		clk.Advance(40 * time.Second) // 30 s stale: the window is [0, 30)
		if r := g.get(t, "/s"); r.cache != "REVALIDATED" {
			t.Fatalf("%s, want REVALIDATED", r.cache)
		}
	})
	t.Run("Policy default", func(t *testing.T) {
		g, clk := setup(t, Policy{StaleWhileRevalidate: time.Minute}, validating(`"e"`, "Cache-Control: max-age=10"))
		g.get(t, "/s")
		clk.Advance(30 * time.Second)
		if r := g.get(t, "/s"); r.cache != "STALE" {
			t.Fatalf("%s, want STALE", r.cache)
		}
	})
	t.Run("directive over Policy", func(t *testing.T) {
		g, clk := setup(t, Policy{StaleWhileRevalidate: time.Minute}, validating(`"e"`, "Cache-Control: max-age=10, stale-while-revalidate=5"))
		g.get(t, "/s")
		clk.Advance(30 * time.Second)
		if r := g.get(t, "/s"); r.cache != "REVALIDATED" {
			t.Fatalf("%s, want REVALIDATED", r.cache)
		}
	})
	for _, cc := range []string{"must-revalidate", "proxy-revalidate", "s-maxage=10", "no-cache"} {
		t.Run(cc+" forbids", func(t *testing.T) {
			g, clk := setup(t, Policy{StaleWhileRevalidate: time.Minute},
				validating(`"e"`, "Cache-Control: max-age=10, stale-while-revalidate=60, "+cc))
			g.get(t, "/s")
			clk.Advance(30 * time.Second)
			if r := g.get(t, "/s"); r.cache != "REVALIDATED" {
				t.Fatalf("%s, want REVALIDATED", r.cache)
			}
		})
	}
	t.Run("client no-cache", func(t *testing.T) {
		g, clk := setup(t, Policy{StaleWhileRevalidate: time.Minute}, validating(`"e"`, "Cache-Control: max-age=10"))
		g.get(t, "/s")
		clk.Advance(30 * time.Second)
		if r := g.get(t, "/s", "Cache-Control: no-cache"); r.cache != "REVALIDATED" {
			t.Fatalf("%s, want REVALIDATED", r.cache)
		}
	})
}

// direct is a Cache driven without a gateway, with a Fetcher the test
// controls.
type direct struct {
	c     *Cache
	clk   *clock
	fetch Fetcher
	n     atomic.Int64
}

func newDirect(t testing.TB, p Policy) *direct {
	t.Helper()
	d := &direct{clk: newClock()}
	p.Now = d.clk.Now
	if p.MaxBytes == 0 {
		p.MaxBytes = 1 << 20
	}
	c, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	d.c = c
	return d
}

func (d *direct) get(t testing.TB, path string, fetch func(n int64, resp *fasthttp.Response) error) (Status, error, *fasthttp.Response) {
	t.Helper()
	req := clientRequest(t, "GET "+path+" HTTP/1.1\r\nHost: example.com\r\n\r\n")
	resp := new(fasthttp.Response)
	f := func(_ *fasthttp.Request, resp *fasthttp.Response) error {
		return fetch(d.n.Add(1), resp)
	}
	st, err := d.c.Serve(req, resp, nil, Fetchers{f, f})
	return st, err, resp
}

func ok200(cc string) func(int64, *fasthttp.Response) error {
	return func(n int64, resp *fasthttp.Response) error {
		resp.Header.Set("Cache-Control", cc)
		resp.SetBodyString("v" + itoa(int(n)))
		return nil
	}
}

// flaky is an upstream whose behaviour the test switches: "ok" answers
// 200 with Cache-Control cc and body "v<n>", "down" drops the connection
// without an answer, a number answers that status.
type flaky struct {
	mode atomic.Value // string
	cc   string
	n    atomic.Int64
}

func (f *flaky) handle(ctx *fasthttp.RequestCtx) {
	switch m := f.mode.Load().(string); m {
	case "ok":
		ctx.Response.Header.Set("Cache-Control", f.cc)
		ctx.SetBodyString("v" + itoa(int(f.n.Add(1))))
	case "down":
		ctx.HijackSetNoResponse(true)
		ctx.Hijack(func(c net.Conn) { c.Close() })
	default:
		code, _ := strconv.Atoi(m)
		ctx.SetStatusCode(code)
		ctx.SetBodyString("error page")
	}
}

// serveDirect calls Serve for path with the upstream as Fetcher and
// returns what the gateway's handler would see.
func serveDirect(t *testing.T, g *gateway, path string) (Status, error, *fasthttp.Response) {
	t.Helper()
	req := clientRequest(t, "GET "+path+" HTTP/1.1\r\nHost: example.com\r\n\r\n")
	resp := new(fasthttp.Response)
	st, err := g.c.Serve(req, resp, nil, Fetchers{g.up.fetch, g.up.fetch})
	return st, err, resp
}

func TestStaleIfError(t *testing.T) {
	cases := []struct {
		name    string
		pol     Policy
		cc      string
		advance time.Duration
		fail    string
		want    Status
		wantErr bool
		code    int
	}{
		{"error in window", Policy{}, "max-age=10, stale-if-error=60", 30 * time.Second, "down", Stale, false, 200},
		{"503 in window", Policy{}, "max-age=10, stale-if-error=60", 30 * time.Second, "503", Stale, false, 200},
		{"500 in window", Policy{}, "max-age=10, stale-if-error=60", 30 * time.Second, "500", Stale, false, 200},
		{"502 via Policy", Policy{StaleIfError: time.Minute}, "max-age=10", 30 * time.Second, "502", Stale, false, 200},
		{"504 via Policy", Policy{StaleIfError: time.Minute}, "max-age=10", 30 * time.Second, "504", Stale, false, 200},
		{"error past window", Policy{}, "max-age=10, stale-if-error=60", 71 * time.Second, "down", Miss, true, 0},
		{"503 past window", Policy{}, "max-age=10, stale-if-error=60", 71 * time.Second, "503", Miss, false, 503},
		{"501 is not an error here", Policy{StaleIfError: time.Minute}, "max-age=10", 30 * time.Second, "501", Miss, false, 501},
		{"must-revalidate", Policy{StaleIfError: time.Minute}, "max-age=10, must-revalidate", 30 * time.Second, "down", Miss, true, 0},
		{"no window", Policy{}, "max-age=10", 30 * time.Second, "down", Miss, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &flaky{cc: tc.cc}
			up.mode.Store("ok")
			g, clk := setup(t, tc.pol, up.handle)
			if st, err, _ := serveDirect(t, g, "/e"); st != Miss || err != nil {
				t.Fatalf("fill: %v %v", st, err)
			}
			clk.Advance(tc.advance)
			up.mode.Store(tc.fail)
			st, err, resp := serveDirect(t, g, "/e")
			if st != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("%v, %v; want %v, error %v", st, err, tc.want, tc.wantErr)
			}
			if tc.code != 0 && resp.StatusCode() != tc.code {
				t.Fatalf("HTTP %d, want %d", resp.StatusCode(), tc.code)
			}
			if st == Stale && string(resp.Body()) != "v1" {
				t.Fatalf("stale body %q", resp.Body())
			}
			if string(resp.Header.Peek("X-Cache-Status")) != st.String() {
				t.Fatalf("status header %q, want %s", resp.Header.Peek("X-Cache-Status"), st)
			}
		})
	}
	t.Run("error keeps the stored response", func(t *testing.T) {
		up := &flaky{cc: "max-age=10"}
		up.mode.Store("ok")
		g, clk := setup(t, Policy{StaleIfError: time.Hour}, up.handle)
		serveDirect(t, g, "/e")
		clk.Advance(20 * time.Second)
		for _, m := range []string{"503", "500"} {
			up.mode.Store(m)
			serveDirect(t, g, "/e")
		}
		up.mode.Store("down")
		if st, _, resp := serveDirect(t, g, "/e"); st != Stale || string(resp.Body()) != "v1" {
			t.Fatalf("%v %q", st, resp.Body())
		}
	})
	t.Run("miss with error", func(t *testing.T) {
		up := &flaky{}
		up.mode.Store("down")
		g, _ := setup(t, Policy{StaleIfError: time.Hour}, up.handle)
		if st, err, _ := serveDirect(t, g, "/none"); st != Miss || err == nil {
			t.Fatalf("%v %v", st, err)
		}
	})
}

func TestCoalescing(t *testing.T) {
	const n = 12
	t.Run("miss", func(t *testing.T) {
		release := make(chan struct{})
		g, _ := setup(t, Policy{}, gated(0, release, counting("v", "Cache-Control: max-age=60")))
		results := concurrently(t, g, n, "/k", release, func() bool {
			return g.c.Stats().Coalesced == n-1 && g.up.count() == 1
		})
		for i, r := range results {
			if r.body != "v1" || r.cache != "MISS" {
				t.Fatalf("request %d: %s %q", i, r.cache, r.body)
			}
		}
		if g.up.count() != 1 {
			t.Fatalf("%d upstream requests", g.up.count())
		}
		if r := g.get(t, "/k"); r.cache != "HIT" {
			t.Fatal(r.cache)
		}
	})
	t.Run("revalidation", func(t *testing.T) {
		release := make(chan struct{})
		g, clk := setup(t, Policy{}, gated(1, release, validating(`"e"`, "Cache-Control: max-age=10")))
		g.get(t, "/k")
		clk.Advance(11 * time.Second)
		results := concurrently(t, g, n, "/k", release, func() bool {
			return g.c.Stats().Coalesced == n-1 && g.up.count() == 2
		})
		for i, r := range results {
			if r.body != "body1" || r.cache != "REVALIDATED" {
				t.Fatalf("request %d: %s %q", i, r.cache, r.body)
			}
		}
		if g.up.count() != 2 {
			t.Fatalf("%d upstream requests", g.up.count())
		}
	})
	t.Run("not storable", func(t *testing.T) {
		release := make(chan struct{})
		g, clk := setup(t, Policy{}, gated(0, release, counting("p", "Cache-Control: private, max-age=60")))
		results := concurrently(t, g, n, "/k", release, func() bool {
			return g.c.Stats().Coalesced == n-1 && g.up.count() == 1
		})
		bodies := map[string]bool{}
		for _, r := range results {
			bodies[r.body] = true
			if r.cache != "BYPASS" {
				t.Fatalf("status %s", r.cache)
			}
		}
		// Each request, the fill's leader included, fetched its own
		// response: none got another's, nor the fill's.
		if len(bodies) != n || bodies["p1"] || g.up.count() != n+1 {
			t.Fatalf("%d distinct bodies (p1: %v), %d upstream requests; want %d, false, %d", len(bodies), bodies["p1"], g.up.count(), n, n+1)
		}
		// Hit-for-pass for a while, then coalescing again.
		if r := g.get(t, "/k"); r.cache != "BYPASS" {
			t.Fatalf("%s, want BYPASS", r.cache)
		}
		if r := g.get(t, "/k", "Cache-Control: only-if-cached"); r.status != 504 || g.up.count() != n+2 {
			t.Fatalf("only-if-cached on a hit-for-pass key: %d, %d upstream requests", r.status, g.up.count())
		}
		// Past the mark a request fills again (still private: then its
		// own request answers it).
		clk.Advance(hitForPassTTL)
		if r := g.get(t, "/k"); r.cache != "BYPASS" || g.up.count() != n+4 {
			t.Fatalf("%s after hit-for-pass, %d upstream requests; want BYPASS after a fill, %d", r.cache, g.up.count(), n+4)
		}
	})
	t.Run("Set-Cookie stays with the filling client", func(t *testing.T) {
		release := make(chan struct{})
		g, _ := setup(t, Policy{StoreSetCookie: true}, gated(0, release, counting("v", "Cache-Control: max-age=60", "Set-Cookie: id=1")))
		results := concurrently(t, g, n, "/k", release, func() bool {
			return g.c.Stats().Coalesced == n-1 && g.up.count() == 1
		})
		cookies := 0
		for _, r := range results {
			if r.get("Set-Cookie") != "" {
				cookies++
			}
		}
		if cookies != 1 || g.up.count() != 1 {
			t.Fatalf("%d responses with Set-Cookie, %d upstream requests; want 1, 1", cookies, g.up.count())
		}
	})
}

// concurrently sends n requests for path at once, waits until ready
// holds (the requests are queued where the test wants them), releases the
// upstream and returns the results.
func concurrently(t *testing.T, g *gateway, n int, path string, release chan struct{}, ready func() bool) []result {
	t.Helper()
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = g.get(t, path) }()
	}
	waitFor(t, "the requests to queue", ready)
	close(release)
	wg.Wait()
	return results
}

func TestCoalescedWaitersSeeFetcherPanic(t *testing.T) {
	d := newDirect(t, Policy{})
	entered := make(chan struct{})
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		d.get(t, "/p", func(int64, *fasthttp.Response) error {
			close(entered)
			<-release
			panic("fetcher bug")
		})
	}()
	<-entered
	res := make(chan error, 1)
	go func() {
		_, err, _ := d.get(t, "/p", ok200("max-age=60"))
		res <- err
	}()
	waitFor(t, "the waiter", func() bool { return d.c.Stats().Coalesced == 1 })
	close(release)
	<-done
	if err := <-res; !errors.Is(err, errFillAborted) {
		t.Fatalf("waiter got %v, want errFillAborted", err)
	}
	// The key is usable afterwards.
	if st, err, _ := d.get(t, "/p", ok200("max-age=60")); st != Miss || err != nil {
		t.Fatalf("%v %v", st, err)
	}
}

func TestStatusString(t *testing.T) {
	want := []string{"BYPASS", "MISS", "HIT", "STALE", "REVALIDATED"}
	for i, w := range want {
		if s := Status(i).String(); s != w {
			t.Errorf("Status(%d) = %s", i, s)
		}
	}
	if s := Status(9).String(); !strings.Contains(s, "9") {
		t.Errorf("Status(9) = %s", s)
	}
}
