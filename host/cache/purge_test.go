package cache

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// tagged answers max-age=300 responses tagged per path: ?tags= becomes
// Surrogate-Key, ?ctags= Cache-Tag.
func tagged(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "max-age=300")
	if v := ctx.QueryArgs().Peek("tags"); len(v) > 0 {
		ctx.Response.Header.SetBytesV("Surrogate-Key", v)
	}
	if v := ctx.QueryArgs().Peek("ctags"); len(v) > 0 {
		ctx.Response.Header.SetBytesV("Cache-Tag", v)
	}
	ctx.SetBodyString("body of " + string(ctx.RequestURI()))
}

func TestPurgeSurrogate(t *testing.T) {
	g, _ := setup(t, Policy{}, tagged)
	paths := []string{"/a?tags=t1+t2", "/b?tags=t2", "/c?ctags=t3,+t1", "/d"}
	for _, p := range paths {
		g.get(t, p)
	}
	if n := g.c.PurgeSurrogate("t1"); n != 2 {
		t.Fatalf("purged %d, want 2", n)
	}
	want := map[string]string{paths[0]: "MISS", paths[1]: "HIT", paths[2]: "MISS", paths[3]: "HIT"}
	for _, p := range paths {
		if r := g.get(t, p); r.cache != want[p] {
			t.Errorf("%s: %s, want %s", p, r.cache, want[p])
		}
	}
	if n := g.c.PurgeSurrogate("none"); n != 0 {
		t.Fatalf("purged %d for an unknown tag", n)
	}
	if n := g.c.PurgeSurrogate("t2"); n != 2 {
		t.Fatalf("purged %d for t2, want 2", n)
	}

	t.Run("one variant", func(t *testing.T) {
		g, _ := setup(t, Policy{}, func(ctx *fasthttp.RequestCtx) {
			ae := string(ctx.Request.Header.Peek("Accept-Encoding"))
			ctx.Response.Header.Set("Cache-Control", "max-age=300")
			ctx.Response.Header.Set("Vary", "Accept-Encoding")
			ctx.Response.Header.Set("Surrogate-Key", "all enc-"+ae)
			ctx.SetBodyString(ae)
		})
		g.get(t, "/v")
		g.get(t, "/v", "Accept-Encoding: gzip")
		if n := g.c.PurgeSurrogate("enc-gzip"); n != 1 {
			t.Fatalf("purged %d, want 1", n)
		}
		if r := g.get(t, "/v"); r.cache != "HIT" {
			t.Fatalf("other variant: %s", r.cache)
		}
		if r := g.get(t, "/v", "Accept-Encoding: gzip"); r.cache != "MISS" {
			t.Fatalf("purged variant: %s", r.cache)
		}
		if n := g.c.PurgeSurrogate("all"); n != 2 {
			t.Fatalf("purged %d, want 2", n)
		}
	})
	t.Run("tags survive a 304", func(t *testing.T) {
		g, clk := setup(t, Policy{}, validating(`"e"`, "Cache-Control: max-age=10", "Surrogate-Key: keep"))
		g.get(t, "/v")
		clk.Advance(11 * time.Second)
		g.get(t, "/v")
		if n := g.c.PurgeSurrogate("keep"); n != 1 {
			t.Fatalf("purged %d, want 1", n)
		}
	})
}

func TestPurgeKeyPrefixAndKeys(t *testing.T) {
	g, _ := setup(t, Policy{}, counting("v", "Cache-Control: max-age=300"))
	for _, p := range []string{"/api/a", "/api/b", "/api/b?x=1", "/static/s", "http://other.example/api/a"} {
		g.get(t, p)
	}
	keys := g.c.Keys("", 0)
	want := []string{"example.com/api/a", "example.com/api/b", "example.com/api/b?x=1", "example.com/static/s", "other.example/api/a"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %q", keys)
	}
	if k := g.c.Keys("example.com/api/", 2); !slices.Equal(k, want[:2]) {
		t.Fatalf("limited keys %q", k)
	}
	if n := g.c.PurgeKey("example.com/api/b"); n != 1 {
		t.Fatalf("PurgeKey: %d", n)
	}
	if n := g.c.PurgeKey("example.com/api/b"); n != 0 {
		t.Fatalf("PurgeKey again: %d", n)
	}
	if n := g.c.PurgePrefix("example.com/api/"); n != 2 {
		t.Fatalf("PurgePrefix: %d", n)
	}
	if k := g.c.Keys("", 0); !slices.Equal(k, []string{"example.com/static/s", "other.example/api/a"}) {
		t.Fatalf("keys after purges %q", k)
	}
	if r := g.get(t, "/api/a"); r.cache != "MISS" {
		t.Fatalf("purged key served %s", r.cache)
	}
	if r := g.get(t, "/static/s"); r.cache != "HIT" {
		t.Fatalf("unpurged key %s", r.cache)
	}
	if n := g.c.PurgePrefix(""); n != 3 {
		t.Fatalf("purge all: %d", n)
	}
	if st := g.c.Stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after purging all: %+v", st)
	}
}

func TestUnsafeMethodInvalidates(t *testing.T) {
	var code atomicInt
	code.set(200)
	g, _ := setup(t, Policy{Key: KeySpec{Cookies: []string{"lang"}}}, func(ctx *fasthttp.RequestCtx) {
		if ctx.IsGet() {
			ctx.Response.Header.Set("Cache-Control", "max-age=300")
			ctx.SetBodyString("get")
			return
		}
		ctx.SetStatusCode(code.get())
	})
	g.get(t, "/x")
	g.get(t, "/x", "Cookie: lang=de")
	g.get(t, "/x?y=1")
	g.get(t, "/z")
	if r := g.do(t, "POST", "/x"); r.cache != "BYPASS" {
		t.Fatal(r.cache)
	}
	for _, c := range []struct {
		path, hdr, want string
	}{{"/x", "", "MISS"}, {"/x", "Cookie: lang=de", "MISS"}, {"/x?y=1", "", "HIT"}, {"/z", "", "HIT"}} {
		var hdr []string
		if c.hdr != "" {
			hdr = []string{c.hdr}
		}
		if r := g.get(t, c.path, hdr...); r.cache != c.want {
			t.Errorf("%s %s: %s, want %s", c.path, c.hdr, r.cache, c.want)
		}
	}
	code.set(500)
	g.do(t, "DELETE", "/z")
	if r := g.get(t, "/z"); r.cache != "HIT" {
		t.Fatalf("failed DELETE invalidated: %s", r.cache)
	}
	code.set(204)
	g.do(t, "DELETE", "/z")
	if r := g.get(t, "/z"); r.cache != "MISS" {
		t.Fatalf("DELETE did not invalidate: %s", r.cache)
	}
}

type atomicInt struct {
	mu sync.Mutex
	v  int
}

func (a *atomicInt) set(v int) { a.mu.Lock(); a.v = v; a.mu.Unlock() }
func (a *atomicInt) get() int  { a.mu.Lock(); defer a.mu.Unlock(); return a.v }

// TestPurgeDuringFill checks that a fill in flight when a purge covering
// its key runs does not store what the purge meant to remove, and that an
// unrelated purge does not stop it.
func TestPurgeDuringFill(t *testing.T) {
	for _, tc := range []struct {
		name  string
		purge func(c *Cache)
		want  string
	}{
		{"key", func(c *Cache) { c.PurgeKey("example.com/r") }, "MISS"},
		{"prefix", func(c *Cache) { c.PurgePrefix("example.com/") }, "MISS"},
		{"tag", func(c *Cache) { c.PurgeSurrogate("t") }, "MISS"},
		{"unsafe method", func(c *Cache) {
			c.invalidate(c.pol.Load(), clientRequest(t, "POST /r HTTP/1.1\r\nHost: example.com\r\n\r\n"))
		}, "MISS"},
		{"unrelated", func(c *Cache) { c.PurgePrefix("other.example/"); c.PurgeSurrogate("u") }, "HIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			g, _ := setup(t, Policy{}, gated(0, release, counting("v", "Cache-Control: max-age=300", "Surrogate-Key: t")))
			done := make(chan result)
			go func() { done <- g.get(t, "/r") }()
			waitFor(t, "the fill", func() bool { return g.up.count() == 1 })
			tc.purge(g.c)
			close(release)
			if r := <-done; r.cache != "MISS" || r.body != "v1" {
				t.Fatalf("fill: %s %q", r.cache, r.body)
			}
			if r := g.get(t, "/r"); r.cache != tc.want {
				t.Fatalf("after the fill: %s, want %s", r.cache, tc.want)
			}
		})
	}
}

// TestIndexFollowsEvictions fills a small store far past its budget and
// checks that the index (keys, tags, usage) matches what ristretto holds.
func TestIndexFollowsEvictions(t *testing.T) {
	const budget = 64 << 10
	d := newDirect(t, Policy{MaxBytes: budget, MaxObjectBytes: 8 << 10})
	body := strings.Repeat("x", 4<<10)
	for i := range 300 {
		path := fmt.Sprintf("/obj/%d", i)
		for range 1 + i%3 { // uneven popularity, so admission has a choice
			d.get(t, path, func(_ int64, resp *fasthttp.Response) error {
				resp.Header.Set("Cache-Control", "max-age=300")
				resp.Header.Set("Surrogate-Key", fmt.Sprintf("all k%d", i))
				resp.SetBodyString(body)
				return nil
			})
		}
	}
	st := d.c.Stats()
	keys := d.c.Keys("", 0)
	if st.Evictions == 0 && int(st.Entries) >= 300 {
		t.Fatalf("nothing left the store: %+v", st)
	}
	if int64(len(keys)) != st.Entries || st.Entries == 0 {
		t.Fatalf("%d keys listed, %d entries", len(keys), st.Entries)
	}
	if st.Bytes > budget {
		t.Fatalf("%d bytes indexed over a budget of %d", st.Bytes, budget)
	}
	var sum int64
	for _, k := range keys {
		n := d.c.st.get([]byte(k))
		if n == nil {
			t.Fatalf("indexed key %q is not in ristretto", k)
		}
		sum += n.cost
	}
	if sum != st.Bytes {
		t.Fatalf("index charges %d bytes, nodes cost %d", st.Bytes, sum)
	}
	d.c.st.imu.Lock()
	tags := len(d.c.st.tags)
	d.c.st.imu.Unlock()
	if tags != len(keys)+1 { // k<i> per key, plus "all"
		t.Fatalf("%d tags indexed for %d keys", tags, len(keys))
	}
	if n := d.c.PurgeSurrogate("all"); n != len(keys) {
		t.Fatalf("purged %d of %d", n, len(keys))
	}
	d.c.st.imu.Lock()
	left := len(d.c.st.tags) + len(d.c.st.nodes) + len(d.c.st.bases)
	d.c.st.imu.Unlock()
	if left != 0 {
		t.Fatalf("index not empty after purging everything: %d", left)
	}
}

func TestStoreTTLExpiresEntries(t *testing.T) {
	// ristretto's TTL (wall clock) removes entries once freshness and the
	// stale windows are over; the index follows. ristretto sweeps expired
	// entries in 5 s buckets, so this takes seconds: run it beside the
	// others.
	t.Parallel()
	s, err := newStore(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	n := (*node)(nil).with("k", 1, nil, &entry{cost: 100})
	if !s.put(n, 50*time.Millisecond, s.generation()) {
		t.Fatal("not admitted")
	}
	waitForWithin(t, 30*time.Second, "the TTL", func() bool {
		e, _ := s.usage()
		return s.get([]byte("k")) == nil && e == 0
	})
}
