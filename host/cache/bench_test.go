package cache

import (
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// hitCase is a request shape for the hit-path tests and benchmarks.
type hitCase struct {
	name string
	pol  Policy
	raw  string // request head
	vary string // Vary of the stored response
	key  []byte // a plugin's key; nil: computed
}

var hitCases = []hitCase{
	{name: "plain", raw: "GET /api/items/42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"},
	{name: "keyed", pol: Policy{Key: KeySpec{Headers: []string{"X-Tenant"}, Cookies: []string{"lang"}, IgnoreQuery: []string{"utm_*"}}},
		raw: "GET /api/items?page=2&sort=name&utm_source=mail HTTP/1.1\r\nHost: example.com\r\nX-Tenant: acme\r\n" +
			"Cookie: session=abc; lang=en\r\nAccept: */*\r\n\r\n"},
	{name: "vary", raw: "GET /api/items/42 HTTP/1.1\r\nHost: example.com\r\nAccept-Encoding: gzip, br\r\n\r\n", vary: "Accept-Encoding"},
	{name: "plugin key", raw: "GET /api/items/42 HTTP/1.1\r\nHost: example.com\r\n\r\n", key: []byte("tenant-a/items/42")},
}

var benchBody = []byte(strings.Repeat("0123456789abcdef", 64)) // 1 KiB

// hitFixture stores the response for hc and returns what a hit needs.
func hitFixture(tb testing.TB, hc hitCase) (*Cache, *fasthttp.Request, []byte, Fetcher) {
	tb.Helper()
	p := hc.pol
	p.MaxBytes = 64 << 20
	c, err := New(p)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	fetch := func(req *fasthttp.Request, resp *fasthttp.Response) error {
		resp.Header.Set("Cache-Control", "public, max-age=3600")
		resp.Header.Set("Content-Type", "application/json")
		resp.Header.Set("ETag", `"v1"`)
		resp.Header.Set("Last-Modified", "Sat, 01 Jan 2028 00:00:00 GMT")
		if hc.vary != "" {
			resp.Header.Set("Vary", hc.vary)
		}
		resp.SetBody(benchBody)
		return nil
	}
	req := clientRequest(tb, hc.raw)
	uri := append([]byte(nil), req.RequestURI()...)
	resp := new(fasthttp.Response)
	for range 3 { // fill (twice with Vary: the first fill lacks the header), then hit
		c.Serve(req, resp, hc.key, Fetchers{fetch, fetch})
	}
	if st, err := c.Serve(req, resp, hc.key, Fetchers{fetch, fetch}); st != Hit || err != nil {
		tb.Fatalf("fixture: %v %v", st, err)
	}
	return c, req, uri, fetch
}

// TestServeHitAllocs holds the hit path to zero allocations.
func TestServeHitAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	for _, hc := range hitCases {
		t.Run(hc.name, func(t *testing.T) {
			c, req, uri, fetch := hitFixture(t, hc)
			resp := new(fasthttp.Response)
			allocs := testing.AllocsPerRun(200, func() {
				// A fresh URI each time, as for a new request: the key
				// build parses path and query again.
				req.SetRequestURIBytes(uri)
				if st, _ := c.Serve(req, resp, hc.key, Fetchers{fetch, fetch}); st != Hit {
					t.Fatalf("status %v", st)
				}
			})
			if allocs != 0 {
				t.Fatalf("%v allocations per hit, want 0", allocs)
			}
			if string(resp.Body()) != string(benchBody) {
				t.Fatalf("hit body %d bytes", len(resp.Body()))
			}
		})
	}
}

// BenchmarkServeHit measures Serve on a hit: key build, lookup, copying
// the stored fields and handing over the body.
func BenchmarkServeHit(b *testing.B) {
	for _, hc := range hitCases {
		b.Run(hc.name, func(b *testing.B) {
			c, req, uri, fetch := hitFixture(b, hc)
			resp := new(fasthttp.Response)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req.SetRequestURIBytes(uri)
				c.Serve(req, resp, hc.key, Fetchers{fetch, fetch})
			}
		})
	}
}

// BenchmarkServeHitParallel is the plain hit from all Ps at once.
func BenchmarkServeHitParallel(b *testing.B) {
	c, req, uri, fetch := hitFixture(b, hitCases[0])
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := new(fasthttp.Request)
		req.CopyTo(r)
		resp := new(fasthttp.Response)
		for pb.Next() {
			r.SetRequestURIBytes(uri)
			c.Serve(r, resp, nil, Fetchers{fetch, fetch})
		}
	})
}

// BenchmarkServeFill measures a miss that fills the store, with an
// in-memory Fetcher: the cache's own cost of a miss (fill request, entry,
// store write and index), without the upstream's.
func BenchmarkServeFill(b *testing.B) {
	c, err := New(Policy{MaxBytes: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	fetch := func(req *fasthttp.Request, resp *fasthttp.Response) error {
		resp.Header.Set("Cache-Control", "max-age=3600")
		resp.Header.Set("Content-Type", "application/json")
		resp.SetBody(benchBody)
		return nil
	}
	req := clientRequest(b, "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n")
	resp := new(fasthttp.Response)
	var uri []byte
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		uri = strconv.AppendInt(append(uri[:0], "/items/"...), int64(i), 10)
		req.SetRequestURIBytes(uri)
		if st, _ := c.Serve(req, resp, nil, Fetchers{fetch, fetch}); st != Miss {
			b.Fatalf("status %v", st)
		}
	}
}
