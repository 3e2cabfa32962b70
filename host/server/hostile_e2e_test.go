package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// The tests of this file send hostile requests, as raw bytes, to a real
// gateway in front of real upstreams, and check what the client gets back
// and what each upstream received. Each case is one of a class, and the
// class's neighbours are tried with it (issue #9).

// capture is an upstream that records the head of every request it gets:
// request line, Host and the header block, as they arrived.
type capture struct {
	addr string
	mu   sync.Mutex
	seen []captured
}

type captured struct {
	method, uri, proto, host string
	headers                  []string // "Name: value", in order, as received
}

func (c captured) header(name string) []string {
	var vs []string
	for _, h := range c.headers {
		if k, v, _ := strings.Cut(h, ": "); strings.EqualFold(k, name) {
			vs = append(vs, v)
		}
	}
	return vs
}

func startCapture(t testing.TB, answer string) *capture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{addr: ln.Addr().String()}
	srv := &fasthttp.Server{DisableHeaderNamesNormalizing: true, Handler: func(ctx *fasthttp.RequestCtx) {
		r := captured{method: string(ctx.Method()), uri: string(ctx.RequestURI()),
			proto: string(ctx.Request.Header.Protocol()), host: string(ctx.Request.Header.Host())}
		for k, v := range ctx.Request.Header.All() {
			r.headers = append(r.headers, string(k)+": "+string(v))
		}
		c.mu.Lock()
		c.seen = append(c.seen, r)
		c.mu.Unlock()
		ctx.SetBodyString(answer + " " + r.uri)
	}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return c
}

func (c *capture) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

func (c *capture) last(t *testing.T) captured {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.seen) == 0 {
		t.Fatal("the upstream received nothing")
	}
	return c.seen[len(c.seen)-1]
}

// raw sends bytes on a new connection and reads one response.
func raw(t *testing.T, addr, req string) *fasthttp.Response {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp := &fasthttp.Response{}
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatalf("%q: reading the response: %v", req, err)
	}
	return resp
}

func get(target, extra string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: gw.test\r\n" + extra + "\r\n"
}

const hostileRoutes = `
upstreams:
  - {name: private, targets: [{address: %[1]s}]}
  - {name: public, targets: [{address: %[2]s}]}
  - name: cb
    targets: [{address: %[3]s}]
    circuit_breaker: {consecutive_failures: 3, open_for: 1m}
routes:
  - {name: private, match: {path_prefix: /private}, upstream: private}
  - {name: upload, match: {path_prefix: /upload}, upstream: public, max_body_bytes: 16}
  - {name: cb, match: {path_prefix: /cb}, upstream: cb}
  - {name: public, match: {path_prefix: /}, upstream: public}
`

// TestPathMatchedIsPathForwarded: whatever the encoding tricks, the route
// that matched and the upstream that answered agree on the resource: the
// private upstream gets /private paths only, the public one never does,
// read the way a Go net/http server reads them. Ambiguous encodings are 400
// under the default policy.
func TestPathMatchedIsPathForwarded(t *testing.T) {
	paths := []string{
		"/private/..%2fpublic", "/private/..%2Fpublic", "/private/%2e%2e%2fpublic", "/private/..%5cpublic",
		`/private/..\public`, "/private%2f..%2fpublic", "/public/../private", "/public/%2e%2e/private",
		"/public/%2E%2E/private", "/public/.%2e/private", "/public//../private", "/public/..;/private",
		"/public/%2e%2e;/private", "/public/%2e%2e%3b/private", "//private", "/./private", "/%70rivate", "/%2570rivate",
		"/public/%252e%252e/private", "/public/%2e%2e%2f%2e%2e/private", "/public/..%00/private",
		"/public/..%ff/private", "/PRIVATE", "/private/../../public", "/public/%u002e%u002e/private",
		"/public/x/..%2f..%2fprivate", "/public/%c0%ae%c0%ae/private", "/public/...;/private",
	}
	for _, policy := range []string{"reject", "unescape"} {
		t.Run(policy, func(t *testing.T) {
			priv, pub := startNetHTTP(t, "private"), startNetHTTP(t, "public")
			g := startGatewayListen(t, "escaped_slashes: "+policy, fmt.Sprintf(`
upstreams:
  - {name: private, targets: [{address: %s}]}
  - {name: public, targets: [{address: %s}]}
routes:
  - {name: private, match: {path_prefix: /private}, upstream: private}
  - {name: public, match: {path_prefix: /}, upstream: public}
`, priv, pub))
			for _, p := range paths {
				for _, target := range []string{p, "http://gw.test" + p} {
					resp := raw(t, g.ProxyAddr(), get(target, ""))
					body := string(resp.Body())
					switch code := resp.StatusCode(); {
					case code == 400:
						continue
					case code != 200:
						t.Errorf("%s: %d %s", target, code, body)
						continue
					}
					f := strings.SplitN(body, " ", 3)
					if len(f) != 3 {
						t.Errorf("%s: %q", target, body)
						continue
					}
					who, handler, seen := f[0], f[1], f[2]
					private := strings.HasPrefix(seen, "/private/") || seen == "/private"
					if private != (who == "private") || handler != who {
						t.Errorf("%s: the gateway sent it to %s; its ServeMux picked %s, a decoding reader reads %q", target, who, handler, seen)
					}
				}
			}
			// The neighbours a route must still serve.
			for p, want := range map[string]string{
				"/public/../private/x": "private private /private/x", "/%70rivate": "private private /private",
				"/private/a%20b": "private private /private/a b", "/pub%6cic/x": "public public /public/x",
			} {
				if r := raw(t, g.ProxyAddr(), get(p, "")); string(r.Body()) != want {
					t.Errorf("%s: %d %q, want %q", p, r.StatusCode(), r.Body(), want)
				}
			}
			enc := raw(t, g.ProxyAddr(), get("/private/..%2fpublic", ""))
			if want := map[string]int{"reject": 400, "unescape": 200}[policy]; enc.StatusCode() != want {
				t.Errorf("/private/..%%2fpublic under %s: %d, want %d", policy, enc.StatusCode(), want)
			}
		})
	}
}

// startNetHTTP starts a Go net/http upstream that answers
// "<who> <handler> <path>": handler is the one Go's ServeMux picks among
// "/private/", "/private" and "/" (it matches on the escaped path, segment
// by segment), path the one a framework that decodes then cleans reads.
// Two common ways an upstream reads a path.
func startNetHTTP(t *testing.T, who string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	answer := func(handler string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			p, err := url.PathUnescape(r.URL.EscapedPath())
			if err != nil {
				p = r.URL.Path
			}
			clean := path.Clean(strings.ReplaceAll(p, `\`, "/"))
			if strings.HasSuffix(p, "/") && clean != "/" {
				clean += "/"
			}
			fmt.Fprintf(w, "%s %s %s", who, handler, clean)
		}
	}
	mux.HandleFunc("/private/", answer("private"))
	mux.HandleFunc("/private", answer("private"))
	mux.HandleFunc("/", answer("public"))
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestHostileRequests: each class of malformed or ambiguous request is
// refused with the status RFC 9110/9112 give it, reaches no upstream, and
// leaves the gateway serving.
func TestHostileRequests(t *testing.T) {
	priv, pub, cb := startCapture(t, "private"), startCapture(t, "public"), startCapture(t, "cb")
	g := startGateway(t, 100, fmt.Sprintf(hostileRoutes, priv.addr, pub.addr, cb.addr))
	for _, tc := range []struct {
		name, req string
		status    int
		code      string
	}{
		// Versions: the gateway speaks HTTP/1.x.
		{"HTTP/2.0 request line", "GET /x HTTP/2.0\r\nHost: gw.test\r\n\r\n", 505, "http_version_not_supported"},
		{"HTTP/3.0 request line", "GET /x HTTP/3.0\r\nHost: gw.test\r\n\r\n", 505, "http_version_not_supported"},
		{"HTTP/0.9 request line", "GET /x HTTP/0.9\r\nHost: gw.test\r\n\r\n", 505, "http_version_not_supported"},
		// Header names that are not tokens, folded lines, control bytes.
		{"space in a header name", get("/x", "X A: 1\r\n"), 400, "bad_header"},
		{"space in Transfer-Encoding", "POST /x HTTP/1.1\r\nHost: gw.test\r\nTransfer Encoding: chunked\r\nContent-Length: 0\r\n\r\n", 400, "bad_header"},
		{"space before the colon", get("/x", "X-A : 1\r\n"), 400, "bad_header"},
		{"parenthesis in a name", get("/x", "X(A): 1\r\n"), 400, "bad_header"},
		{"obs-fold", get("/x", "X-A: 1\r\n  folded\r\n"), 400, "bad_header"},
		{"tab obs-fold", get("/x", "X-A: 1\r\n\tfolded\r\n"), 400, "bad_header"},
		{"escape byte in a value", get("/x", "X-A: a\x1bb\r\n"), 400, "bad_header"},
		// Framing and Host, refused by fasthttp's own parser.
		{"two Host headers", "GET /x HTTP/1.1\r\nHost: gw.test\r\nHost: evil.test\r\n\r\n", 400, "bad_request"},
		{"HTTP/1.1 without Host", "GET /x HTTP/1.1\r\n\r\n", 400, "bad_request"},
		{"two Content-Lengths", "POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, "bad_request"},
		{"Content-Length and chunked", "POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "bad_header"},
		{"chunked and Content-Length", "POST /x HTTP/1.1\r\nHost: gw.test\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n0\r\n\r\n", 400, "bad_header"},
		{"bad chunk size", "POST /x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "bad_request"},
		// Hosts and authorities.
		{"userinfo in Host", "GET /x HTTP/1.1\r\nHost: user:pass@gw.test\r\n\r\n", 400, "bad_host"},
		{"user in Host", "GET /x HTTP/1.1\r\nHost: user@gw.test\r\n\r\n", 400, "bad_host"},
		{"@ after the port", "GET /x HTTP/1.1\r\nHost: gw.test:80@evil.test\r\n\r\n", 400, "bad_host"},
		{"slash in Host", "GET /x HTTP/1.1\r\nHost: gw.test/evil\r\n\r\n", 400, "bad_host"},
		{"empty port", "GET /x HTTP/1.1\r\nHost: gw.test:\r\n\r\n", 400, "bad_host"},
		{"bad port", "GET /x HTTP/1.1\r\nHost: gw.test:99999\r\n\r\n", 400, "bad_host"},
		{"userinfo in an absolute URL", "GET http://user:pass@gw.test/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400, "bad_target"},
		{"empty userinfo", "GET http://@gw.test/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400, "bad_target"},
		{"empty host in an absolute URL", "GET http:///x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400, "bad_target"},
		{"port only in an absolute URL", "GET http://:80/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400, "bad_target"},
		{"other scheme", "GET ftp://gw.test/x HTTP/1.1\r\nHost: gw.test\r\n\r\n", 400, "bad_target"},
		{"CONNECT", "CONNECT gw.test:443 HTTP/1.1\r\nHost: gw.test:443\r\n\r\n", 0, ""},
		// Paths.
		{"encoded slash", get("/public/a%2Fb", ""), 400, "bad_path"},
		{"encoded backslash", get("/public/a%5cb", ""), 400, "bad_path"},
		{"raw backslash", get(`/public/a\b`, ""), 400, "bad_path"},
		{"encoded NUL", get("/public/a%00b", ""), 400, "bad_path"},
		{"broken escape", get("/public/a%zzb", ""), 400, "bad_path"},
		{"truncated escape", get("/public/a%2", ""), 400, "bad_path"},
		{"dot segment with params", get("/public/..;/private", ""), 400, "bad_path"},
		// Sizes.
		{"64 KB URL", get("/"+strings.Repeat("a", 64<<10), ""), 414, "uri_too_long"},
		{"8 KB URL", get("/"+strings.Repeat("a", 8<<10), ""), 414, "uri_too_long"},
		{"long URL in an absolute form", get("http://gw.test/"+strings.Repeat("a", 64<<10), ""), 414, "uri_too_long"},
		{"big header", get("/x", "X-Big: "+strings.Repeat("h", 8<<10)+"\r\n"), 431, "header_too_large"},
		{"many headers", get("/x", strings.Repeat("X-H: 1234567890\r\n", 500)), 431, "header_too_large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := priv.count() + pub.count() + cb.count()
			resp := raw(t, g.ProxyAddr(), tc.req)
			if tc.status == 0 { // any refusal
				if resp.StatusCode() < 400 || resp.StatusCode() >= 500 {
					t.Fatalf("got %d %s", resp.StatusCode(), resp.Body())
				}
			} else if body := string(resp.Body()); resp.StatusCode() != tc.status ||
				!strings.Contains(body, `"`+tc.code+`"`) && !(tc.status == 400 && strings.Contains(body, `"bad_request"`)) {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode(), resp.Body(), tc.status, tc.code)
			}
			if after := priv.count() + pub.count() + cb.count(); after != before {
				t.Fatalf("an upstream received the request")
			}
		})
	}
	if r := raw(t, g.ProxyAddr(), get("/x", "")); r.StatusCode() != 200 {
		t.Fatalf("after the hostile requests: %d", r.StatusCode())
	}
}

// TestRequestsAreForwardedInTheGatewaysForm: what the upstream receives is
// the gateway's own HTTP/1.1 request, with one value of each header the
// gateway owns, whatever the client sent.
func TestRequestsAreForwardedInTheGatewaysForm(t *testing.T) {
	priv, pub, cb := startCapture(t, "private"), startCapture(t, "public"), startCapture(t, "cb")
	g := startGateway(t, 100, fmt.Sprintf(hostileRoutes, priv.addr, pub.addr, cb.addr))

	t.Run("versions", func(t *testing.T) {
		for _, proto := range []string{"HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.9"} {
			r := raw(t, g.ProxyAddr(), "GET /v HTTP/"+proto[5:]+"\r\nHost: gw.test\r\n\r\n")
			if r.StatusCode() != 200 || pub.last(t).proto != "HTTP/1.1" {
				t.Errorf("%s: %d, upstream got %s", proto, r.StatusCode(), pub.last(t).proto)
			}
		}
	})
	t.Run("HTTP/1.0 without Host reaches the target, and spares its breaker", func(t *testing.T) {
		for range 10 {
			r := raw(t, g.ProxyAddr(), "GET /cb/x HTTP/1.0\r\n\r\n")
			if r.StatusCode() != 200 {
				t.Fatalf("got %d %s", r.StatusCode(), r.Body())
			}
			if got := cb.last(t).host; got != cb.addr {
				t.Fatalf("upstream saw Host %q, want the target's address", got)
			}
		}
		var st struct {
			Upstreams []struct {
				Name    string `json:"name"`
				Targets []struct {
					Circuit  string `json:"circuit"`
					Failures int    `json:"failures"`
				} `json:"targets"`
			} `json:"upstreams"`
		}
		if err := json.Unmarshal(g.admin(t, "GET", "/upstreams").body, &st); err != nil {
			t.Fatal(err)
		}
		for _, u := range st.Upstreams {
			if u.Name == "cb" && (u.Targets[0].Circuit != "closed" || u.Targets[0].Failures != 0) {
				t.Fatalf("cb after 10 HTTP/1.0 requests: %+v", u.Targets[0])
			}
		}
	})
	t.Run("Connection cannot strip the gateway's headers", func(t *testing.T) {
		r := raw(t, g.ProxyAddr(), get("/c", "Connection: X-Request-Id, X-Forwarded-For, Traceparent, Host, Content-Length, X-Mine\r\nX-Mine: 1\r\nX-Keep: 1\r\n"))
		seen := pub.last(t)
		id := string(r.Header.Peek("X-Request-Id"))
		if r.StatusCode() != 200 || len(seen.header("X-Request-Id")) != 1 || seen.header("X-Request-Id")[0] != id {
			t.Fatalf("X-Request-Id: upstream %q, client %q", seen.header("X-Request-Id"), id)
		}
		if len(seen.header("X-Forwarded-For")) != 1 || len(seen.header("Traceparent")) != 1 || seen.host != "gw.test" {
			t.Fatalf("upstream got %q", seen.headers)
		}
		if seen.header("X-Mine") != nil || seen.header("X-Keep") == nil || seen.header("Connection") != nil {
			t.Fatalf("the client's own hop-by-hop header must go, the others stay: %q", seen.headers)
		}
	})
	t.Run("one X-Request-Id and one traceparent", func(t *testing.T) {
		const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		r := raw(t, g.ProxyAddr(), get("/d", "X-Request-Id: first\r\nX-Request-Id: second\r\nTraceparent: "+tp+"\r\nTraceparent: 00-ffffffffffffffffffffffffffffffff-b7ad6b7169203331-01\r\n"))
		seen := pub.last(t)
		if ids := seen.header("X-Request-Id"); len(ids) != 1 || ids[0] != "first" || string(r.Header.Peek("X-Request-Id")) != "first" {
			t.Fatalf("upstream got X-Request-Id %q, client %q", ids, r.Header.Peek("X-Request-Id"))
		}
		// Two traceparents are no trace context: a new trace starts.
		if tps := seen.header("Traceparent"); len(tps) != 1 || strings.Contains(tps[0], "0af7651916cd43dd8448eb211c80319c") || strings.Contains(tps[0], "ffffffffffffffffffffffffffffffff") {
			t.Fatalf("upstream got traceparent %q", tps)
		}
		raw(t, g.ProxyAddr(), get("/d", "Traceparent: "+tp+"\r\n"))
		if tps := pub.last(t).header("Traceparent"); len(tps) != 1 || !strings.HasPrefix(tps[0], "00-0af7651916cd43dd8448eb211c80319c-") {
			t.Fatalf("one valid traceparent: upstream got %q", tps)
		}
		if !strings.Contains(g.access.String(), `"request_id":"first"`) {
			waitFor(t, "the access log line", func() bool { return strings.Contains(g.access.String(), `"request_id":"first"`) })
		}
	})
	t.Run("an absolute-form target's authority is the Host", func(t *testing.T) {
		raw(t, g.ProxyAddr(), "GET http://other.test:8080/abs HTTP/1.1\r\nHost: gw.test\r\n\r\n")
		if seen := pub.last(t); seen.host != "other.test:8080" || seen.uri != "/abs" {
			t.Fatalf("upstream got Host %q URI %q", seen.host, seen.uri)
		}
	})
	t.Run("the canonical path is what is forwarded", func(t *testing.T) {
		for in, want := range map[string]string{
			"/a/./b/../c//d": "/a/c/d", "/%7euser/%41": "/~user/A", "/caf%c3%a9": "/caf%C3%A9",
			`/a"b`: "/a%22b", "/q?x=%2F&y=a%20b": "/q?x=%2F&y=a%20b",
		} {
			raw(t, g.ProxyAddr(), get(in, ""))
			if seen := pub.last(t); seen.uri != want {
				t.Errorf("%s: upstream got %q, want %q", in, seen.uri, want)
			}
		}
	})
}

// TestBodyLimitFromHeaders: a body over its route's limit is refused from
// its Content-Length, before any byte of it is read, and a client waiting
// for 100-continue gets the 413 instead.
func TestBodyLimitFromHeaders(t *testing.T) {
	priv, pub, cb := startCapture(t, "private"), startCapture(t, "public"), startCapture(t, "cb")
	g := startGateway(t, 100, fmt.Sprintf(hostileRoutes, priv.addr, pub.addr, cb.addr))
	status := func(t *testing.T, req string) string {
		conn, err := net.Dial("tcp", g.ProxyAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, req) //nolint:errcheck
		// Short of the 1s read timeout: an answer within it came from the headers.
		_ = conn.SetReadDeadline(time.Now().Add(900 * time.Millisecond))
		line, _ := bufio.NewReader(conn).ReadString('\n')
		return line
	}
	for _, tc := range []struct{ name, req, want string }{
		{"over the route's limit, body not sent", "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 17\r\n\r\n", "HTTP/1.1 413"},
		{"100-continue over the route's limit", "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n", "HTTP/1.1 413"},
		{"100-continue within the limit", "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n", "HTTP/1.1 100 Continue"},
		{"over the listener's limit", "POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2000000\r\n\r\n", "HTTP/1.1 413"},
		{"chunked over the route's limit", "POST /upload HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + strings.Repeat("x", 32) + "\r\n0\r\n\r\n", "HTTP/1.1 413"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status(t, tc.req); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if n := pub.count(); n != 0 {
		t.Fatalf("the upstream received %d requests", n)
	}
	if r := raw(t, g.ProxyAddr(), "POST /upload HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 16\r\n\r\n"+strings.Repeat("x", 16)); r.StatusCode() != 200 {
		t.Fatalf("a body at the limit: %d", r.StatusCode())
	}
}

// TestMalformedRequestsAreLoggedWithoutTheirBytes: the log says what kind
// of request was refused, never its header values, and not once per request.
func TestMalformedRequestsAreLoggedWithoutTheirBytes(t *testing.T) {
	priv, pub, cb := startCapture(t, "private"), startCapture(t, "public"), startCapture(t, "cb")
	g := startGateway(t, 100, fmt.Sprintf(hostileRoutes, priv.addr, pub.addr, cb.addr))
	const secret = "c2VjcmV0LXBhc3N3b3Jk"
	for range 100 {
		for _, req := range []string{
			"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\nAuthorization: Basic " + secret + "\r\nCookie: session=" + secret + "\r\n\r\n",
			"GET /x HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Basic " + secret + "\r\nX-A: a\x00b\r\n\r\n",
			"GET /" + secret + " HTTP/7.7.7\r\nHost: gw.test\r\n\r\n",
		} {
			conn, err := net.Dial("tcp", g.ProxyAddr())
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(conn, req) //nolint:errcheck
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.ReadAll(conn) //nolint:errcheck
			conn.Close()
		}
	}
	logs := g.logs.String()
	if strings.Contains(logs, secret) {
		t.Fatalf("the log holds a request's bytes:\n%s", logs)
	}
	refused := strings.Count(logs, "request refused before routing")
	if refused == 0 || refused > 20 {
		t.Fatalf("%d lines for 300 malformed requests; want a few, rate-limited:\n%s", refused, logs)
	}
	if !regexp.MustCompile(`"reason":"bad_request"`).MatchString(logs) {
		t.Fatalf("the lines do not say the kind:\n%s", logs)
	}
}

// TestRetriesAreExact: attempts: N sends exactly 1+N requests to a target
// that fails them, each counted in the retries metric.
func TestRetriesAreExact(t *testing.T) {
	var got atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // read the request, then hang up without answering
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\r\n" {
						got.Add(1)
						return
					}
				}
			}()
		}
	}()
	for _, attempts := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(attempts), func(t *testing.T) {
			got.Store(0)
			g := startGateway(t, 100, fmt.Sprintf(`
upstreams:
  - name: closer
    targets: [{address: %s}]
    retries: {attempts: %d, on: [reset]}
routes: [{name: all, match: {path_prefix: /}, upstream: closer}]
`, ln.Addr(), attempts))
			for _, m := range []string{"GET", "DELETE"} {
				got.Store(0)
				r := raw(t, g.ProxyAddr(), m+" /x HTTP/1.1\r\nHost: gw.test\r\n\r\n")
				if r.StatusCode() != 502 || got.Load() != int64(1+attempts) {
					t.Fatalf("%s: %d, the target got %d requests, want %d", m, r.StatusCode(), got.Load(), 1+attempts)
				}
			}
			metrics := string(g.admin(t, "GET", "/metrics").body)
			want := fmt.Sprintf(`wasmgate_upstream_retries_total{upstream="closer"} %d`, 2*attempts)
			if attempts > 0 && !strings.Contains(metrics, want) {
				t.Fatalf("metrics lack %q", want)
			}
		})
	}
}

// TestBuildPanicRejectsTheConfig: a bug that panics while building a
// config rejects that config; the gateway keeps serving the running one.
func TestBuildPanicRejectsTheConfig(t *testing.T) {
	priv, pub, cb := startCapture(t, "private"), startCapture(t, "public"), startCapture(t, "cb")
	g := startGateway(t, 100, fmt.Sprintf(hostileRoutes, priv.addr, pub.addr, cb.addr))
	// A nil config dereferences on the first line of the build.
	if snap, err := g.b.safeBuild(nil, nil, g.snap.Load()); snap != nil || err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("safeBuild(nil) = %v, %v", snap, err)
	}
	if !strings.Contains(g.logs.String(), "config build panicked") {
		t.Fatalf("the panic is not logged:\n%s", g.logs.String())
	}
	if r := raw(t, g.ProxyAddr(), get("/x", "")); r.StatusCode() != 200 {
		t.Fatalf("after the panic: %d", r.StatusCode())
	}
}

// TestReviewFindings: the neighbours an outside review found past the first
// round of fixes, each through a real gateway.
func TestReviewFindings(t *testing.T) {
	warmPlugins(t, "rewrite")
	priv, pub, cb := startCapture(t, "private"), startCapture(t, "public"), startCapture(t, "cb")
	routes := fmt.Sprintf(hostileRoutes, priv.addr, pub.addr, cb.addr)
	routes = strings.Replace(routes, "routes:\n", fmt.Sprintf(`routes:
  - name: versioned
    match: {path_regex: '/v(?P<ver>[^/]+)/api'}
    upstream: public
    rewrite: {path: "/internal/{ver}/api"}
  - name: hop
    match: {path_prefix: /hop}
    upstream: public
    plugins:
      - name: rewrite
        config:
          request:
            headers:
              set: {Upgrade: websocket, Keep-Alive: "timeout=5", Proxy-Authorization: "Basic eA==", TE: trailers, Connection: "X-Foo, Upgrade", X-Foo: bar, Trailer: X-T, X-Kept: yes}
`), 1) + fmt.Sprintf(`
plugins:
  - {name: rewrite, module: %q}
plugin_runtime: {cache_dir: %q}
`, pluginPath(t, "rewrite"), e2eCacheDir(t))
	g := startGateway(t, 100, routes)

	t.Run("userinfo in an origin-form target never becomes Authorization", func(t *testing.T) {
		for _, req := range []string{
			"GET //user:pass@evil.test/x?u=http://y HTTP/1.1\r\nHost: gw.test\r\n\r\n",
			"GET //u:p@h/x HTTP/1.0\r\n\r\n",
			"GET //u:p@gw.test/x?a=b HTTP/1.1\r\nHost: gw.test\r\n\r\n",
		} {
			before := pub.count()
			r := raw(t, g.ProxyAddr(), req)
			if pub.count() == before {
				if r.StatusCode() < 400 {
					t.Fatalf("%q: %d, but nothing reached the upstream", req, r.StatusCode())
				}
				continue
			}
			seen := pub.last(t)
			if seen.header("Authorization") != nil || strings.Contains(seen.host, "@") {
				t.Fatalf("%q: upstream got Host %q and %q", req, seen.host, seen.headers)
			}
		}
		if seen := pub.last(t); seen.uri != "/u:p@gw.test/x?a=b" {
			t.Fatalf("path and query: upstream got %q", seen.uri)
		}
	})
	t.Run("path parameters are refused by default", func(t *testing.T) {
		for _, p := range []string{"/private;x/secret", "/public;jsessionid=1/x", "/x;"} {
			if r := raw(t, g.ProxyAddr(), get(p, "")); r.StatusCode() != 400 || !strings.Contains(string(r.Body()), "path_parameters") {
				t.Fatalf("%s: %d %s", p, r.StatusCode(), r.Body())
			}
		}
		if r := raw(t, g.ProxyAddr(), get("/public/a%3Bb", "")); r.StatusCode() != 200 || pub.last(t).uri != "/public/a%3Bb" {
			t.Fatalf("an encoded ';' is data: %d, upstream got %q", r.StatusCode(), pub.last(t).uri)
		}
	})
	t.Run("hop-by-hop headers a plugin sets go", func(t *testing.T) {
		if r := raw(t, g.ProxyAddr(), get("/hop", "")); r.StatusCode() != 200 {
			t.Fatalf("%d %s", r.StatusCode(), r.Body())
		}
		seen := pub.last(t)
		for _, h := range []string{"Upgrade", "Keep-Alive", "Proxy-Authorization", "TE", "Connection", "X-Foo", "Trailer"} {
			if seen.header(h) != nil {
				t.Errorf("the upstream got %s: %q", h, seen.headers)
			}
		}
		if seen.header("X-Kept") == nil {
			t.Errorf("an end-to-end header went: %q", seen.headers)
		}
	})
	t.Run("a rewrite param cannot climb out of the rewrite", func(t *testing.T) {
		for p, want := range map[string]int{"/v../api": 400, "/v./api": 400, "/v2/api": 200, "/v...;x/api": 400} {
			r := raw(t, g.ProxyAddr(), get(p, ""))
			if r.StatusCode() != want {
				t.Errorf("%s: %d %s, want %d", p, r.StatusCode(), r.Body(), want)
			}
		}
		if seen := pub.last(t); seen.uri != "/internal/2/api" {
			t.Fatalf("upstream got %q", seen.uri)
		}
	})
	t.Run("a refusal of a malformed request closes the connection", func(t *testing.T) {
		before := priv.count()
		for _, smuggle := range []string{
			"POST /x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
			"POST /x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: identity\r\n\r\n",
			"GET /x HTTP/1.1\r\nHost: gw.test\r\nX A: 1\r\n\r\n",
		} {
			out := exchangeRaw(t, g.ProxyAddr(), []byte(smuggle+"GET /private/smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n"))
			if !strings.HasPrefix(string(out), "HTTP/1.1 4") && !strings.HasPrefix(string(out), "HTTP/1.1 501") {
				t.Fatalf("%q: %q", smuggle, out)
			}
			if strings.Count(string(out), "HTTP/1.1 ") != 1 {
				t.Fatalf("%q: more than one answer on the connection: %q", smuggle, out)
			}
		}
		if priv.count() != before {
			t.Fatalf("a smuggled request reached the private upstream")
		}
		if r := raw(t, g.ProxyAddr(), "POST /x HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: gzip\r\n\r\n"); r.StatusCode() != 501 {
			t.Fatalf("an unknown coding: %d", r.StatusCode())
		}
	})
	t.Run("a long request line with large headers is 431", func(t *testing.T) {
		r := raw(t, g.ProxyAddr(), get("/"+strings.Repeat("a", 300), strings.Repeat("X-H: 0123456789abcdef\r\n", 300)))
		if r.StatusCode() != 431 || !strings.Contains(string(r.Body()), `"request_id":"`) || len(r.Header.Peek("X-Request-Id")) != 32 {
			t.Fatalf("%d %s", r.StatusCode(), r.Body())
		}
	})
}
