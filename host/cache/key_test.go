package cache

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// clientRequest builds a request as a server would have parsed it from
// raw text, so that the tests see what fasthttp gives the gateway.
func clientRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	req := new(fasthttp.Request)
	if err := req.Read(bufioReader(raw)); err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return req
}

func TestKeyText(t *testing.T) {
	cases := []struct {
		name string
		spec KeySpec
		raw  string // request line and headers, "\n" separated
		want string
	}{
		{"plain", KeySpec{}, "GET /a/b HTTP/1.1\nHost: example.com", "example.com/a/b"},
		{"host case, default port", KeySpec{}, "GET / HTTP/1.1\nHost: EXAMPLE.Com:80", "example.com/"},
		{"other port kept", KeySpec{}, "GET / HTTP/1.1\nHost: example.com:8080", "example.com:8080/"},
		{"trailing dot", KeySpec{}, "GET / HTTP/1.1\nHost: example.com.", "example.com/"},
		{"ipv6", KeySpec{}, "GET / HTTP/1.1\nHost: [::1]:80", "[::1]/"},
		{"path normalized", KeySpec{}, "GET /a/./b/../c//d HTTP/1.1\nHost: h", "h/a/c/d"},
		{"path encoding canonical", KeySpec{}, "GET /%61%62%2fc%20d%25 HTTP/1.1\nHost: h", "h/ab%2Fc%20d%25"}, // an encoded slash is data, not "/"
		{"query sorted", KeySpec{}, "GET /p?b=2&a=1&a=0 HTTP/1.1\nHost: h", "h/p?a=0&a=1&b=2"},
		{"query encoding canonical", KeySpec{}, "GET /p?q=a+b&r=%7e%2A&s HTTP/1.1\nHost: h", "h/p?q=a%20b&r=~%2A&s"},
		{"empty query dropped", KeySpec{}, "GET /p? HTTP/1.1\nHost: h", "h/p"},
		{"ignore query", KeySpec{IgnoreQuery: []string{"utm_*", "fbclid"}},
			"GET /p?utm_source=x&a=1&fbclid=y&utm_medium=z HTTP/1.1\nHost: h", "h/p?a=1"},
		{"ignore wins over cloaking", KeySpec{IgnoreQuery: []string{"utm_*"}},
			"GET /p?a=1&utm_content=x;a=evil HTTP/1.1\nHost: h", "h/p?a=1"},
		{"query list", KeySpec{Query: []string{"page", "sort*"}},
			"GET /p?page=2&x=1&sort_by=n&sorted=1 HTTP/1.1\nHost: h", "h/p?page=2&sort_by=n&sorted=1"},
		{"empty query list keys none", KeySpec{Query: []string{}}, "GET /p?a=1 HTTP/1.1\nHost: h", "h/p"},
		{"headers", KeySpec{Headers: []string{"X-Tenant", "accept-language"}},
			"GET / HTTP/1.1\nHost: h\nX-Tenant: a b%\nAccept-Language: fr", "h/ h:accept-language=fr h:x-tenant=a%20b%25"},
		{"absent header omitted", KeySpec{Headers: []string{"X-Tenant"}}, "GET / HTTP/1.1\nHost: h", "h/"},
		{"cookies", KeySpec{Cookies: []string{"lang", "ab"}},
			"GET / HTTP/1.1\nHost: h\nCookie: session=s; lang=de; ab=b", "h/ c:ab=b c:lang=de"},
		{"credentials hashed", KeySpec{Headers: []string{"Authorization"}},
			"GET / HTTP/1.1\nHost: h\nAuthorization: Bearer secret", "h/ h:authorization=#"},
		{"injection through a value is escaped", KeySpec{Headers: []string{"X-A", "X-B"}},
			"GET / HTTP/1.1\nHost: h\nX-A: 1 h:x-b=2", "h/ h:x-a=1%20h:x-b=2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(Policy{MaxBytes: 1 << 20, Key: tc.spec})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := clientRequest(t, strings.ReplaceAll(tc.raw, "\n", "\r\n")+"\r\n\r\n")
			got := string(c.Key(req))
			if strings.HasSuffix(tc.want, "#") {
				if !strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+32 || strings.Contains(got, "secret") {
					t.Fatalf("key %q, want %q + 32 hex digits", got, tc.want)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("key %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFillRequest checks what a fill sends: only keyed parts, in
// canonical form, and that it computes the same key as the client request
// it came from.
func TestFillRequest(t *testing.T) {
	p, err := compile(Policy{MaxBytes: 1 << 20, Key: KeySpec{
		Headers: []string{"X-Tenant"}, Cookies: []string{"lang"}, IgnoreQuery: []string{"utm_*"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	raw := "GET /a/../p?z=1&utm_x=2&a=%41 HTTP/1.1\r\nHost: Example.com\r\nX-Tenant: t1\r\nX-Forwarded-Host: evil\r\n" +
		"Accept-Encoding: gzip\r\nAccept-Language: fr\r\nCookie: lang=de; session=s\r\nContent-Length: 4\r\n\r\nbody"
	req := clientRequest(t, raw)
	sc := getScratch()
	defer putScratch(sc)
	p.key.collect(req, sc)
	key := string(sc.key)
	fill := new(fasthttp.Request)
	p.key.buildFill(fill, req, sc, [][]byte{[]byte("Accept-Language")})
	if string(fill.Header.Method()) != "GET" || len(fill.Body()) != 0 {
		t.Fatalf("fill %s with body %q", fill.Header.Method(), fill.Body())
	}
	if got := string(fill.RequestURI()); got != "/p?a=A&z=1" {
		t.Fatalf("fill URI %q", got)
	}
	var names []string
	for k := range fill.Header.All() {
		names = append(names, string(k))
	}
	got := strings.Join(names, ",")
	for _, want := range []string{"Host", "X-Tenant", "Accept-Language", "Cookie"} {
		if !strings.Contains(got, want) {
			t.Errorf("fill lacks %s: %s", want, got)
		}
	}
	for _, bad := range []string{"X-Forwarded-Host", "Accept-Encoding", "Content-Length"} {
		if strings.Contains(got, bad) {
			t.Errorf("fill carries %s: %s", bad, got)
		}
	}
	if ck := string(fill.Header.Peek("Cookie")); ck != "lang=de" {
		t.Errorf("fill Cookie %q, want lang=de", ck)
	}
	// Round trip: the fill, as the upstream parses it, has the same key.
	again := clientRequest(t, fill.String())
	sc2 := getScratch()
	defer putScratch(sc2)
	p.key.collect(again, sc2)
	if string(sc2.key) != key {
		t.Fatalf("fill key %q != client key %q", sc2.key, key)
	}
}

// FuzzKey checks, for arbitrary request targets, headers and cookies, that
// the key text has no space or control byte outside its separators, and
// that the fill request built from a request has the same key: what a fill
// stores is fetched for exactly its key.
func FuzzKey(f *testing.F) {
	f.Add("/p?b=2&a=1", "Example.COM:80", "fr", "de")
	f.Add("/a%2F..%2fb?x=%zz&y=+&&=", "h", "a b", "")
	f.Add("/%00?%00=%00", "[::1]:443", "\x7f", "v;x")
	f.Add("/p", "@example.com", "", "")
	f.Fuzz(func(t *testing.T, target, host, hdr, cookie string) {
		p, err := compile(Policy{MaxBytes: 1 << 20, Key: KeySpec{
			Headers: []string{"X-K", "Authorization"}, Cookies: []string{"c"}, IgnoreQuery: []string{"i*"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		built := new(fasthttp.Request)
		built.SetRequestURI(target)
		built.Header.SetHost(host)
		built.Header.Set("X-K", hdr)
		built.Header.Set("Authorization", hdr)
		built.Header.SetCookie("c", cookie)
		// The gateway sees requests parsed off the wire, with a Host it
		// accepts (admission answers 400 bad_host before any cache).
		req := new(fasthttp.Request)
		if err := req.Read(bufioReader(built.String())); err != nil || !httpsyntax.ValidHost(req.Host()) {
			return
		}
		sc := getScratch()
		defer putScratch(sc)
		p.key.collect(req, sc)
		key := string(sc.key)
		// '@' starts the keys plugins set, never a computed one.
		if strings.HasPrefix(key, "@") {
			t.Fatalf("computed key %q starts with '@'", key)
		}
		// Spaces only before " h:" / " c:" suffixes.
		for i := 0; i < len(key); i++ {
			c := key[i]
			if c < ' ' || c >= 0x7f {
				t.Fatalf("key %q has byte %#x", key, c)
			}
			if c == ' ' && !strings.HasPrefix(key[i:], " h:") && !strings.HasPrefix(key[i:], " c:") {
				t.Fatalf("key %q has a stray space at %d", key, i)
			}
		}
		fill := new(fasthttp.Request)
		p.key.buildFill(fill, req, sc, nil)
		// Send the fill over the wire format and parse it back, as the
		// upstream would.
		var back fasthttp.Request
		if err := back.Read(bufioReader(fill.String())); err != nil {
			// fasthttp refuses to write some inputs (e.g. a Host it
			// cannot send); nothing reaches an upstream then.
			return
		}
		sc2 := getScratch()
		defer putScratch(sc2)
		p.key.collect(&back, sc2)
		if string(sc2.key) != key {
			t.Fatalf("target %q host %q: fill key %q != key %q", target, host, sc2.key, key)
		}
	})
}
