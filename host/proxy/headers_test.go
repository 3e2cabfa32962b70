package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func parseRequest(t testing.TB, raw string, rawNames bool) *fasthttp.Request {
	t.Helper()
	req := new(fasthttp.Request)
	if rawNames {
		req.Header.DisableNormalizing()
	}
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse %q: %v", raw, err)
	}
	return req
}

// names returns the lower-cased header names of a serialized message.
func names(block string) map[string]bool {
	m := map[string]bool{}
	for i, line := range strings.Split(block, "\r\n") {
		if line == "" {
			break
		}
		if k, _, ok := strings.Cut(line, ":"); ok && i > 0 {
			m[strings.ToLower(k)] = true
		}
	}
	return m
}

func TestStripHopByHop(t *testing.T) {
	for _, tc := range []struct {
		name       string
		raw        string
		gone, kept []string
	}{
		{
			"standard",
			"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n" +
				"Upgrade: h2c\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nX-Keep: 1\r\n\r\n",
			[]string{"connection", "x-foo", "keep-alive", "te", "upgrade", "proxy-authorization", "proxy-connection"},
			[]string{"host", "x-keep"},
		},
		{
			"odd spellings and close",
			"GET / HTTP/1.1\r\nHost: h\r\nconnection: x-Foo, close\r\nX-FOO: 1\r\nkeep-alive: 1\r\ntE: trailers\r\nx-keep: 1\r\n\r\n",
			[]string{"connection", "x-foo", "keep-alive", "te"},
			[]string{"host", "x-keep"},
		},
		{
			"several Connection lines, special headers listed",
			"GET / HTTP/1.1\r\nHost: h\r\nConnection: a\r\nconnection: b, user-agent\r\nA: 1\r\nb: 2\r\nuser-agent: x\r\nX-Keep: 1\r\n\r\n",
			[]string{"connection", "a", "b", "user-agent"},
			[]string{"host", "x-keep"},
		},
		{
			"chunked body",
			"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n",
			[]string{"transfer-encoding", "trailer"},
			[]string{"host", "content-length"},
		},
	} {
		for _, raw := range []bool{false, true} {
			t.Run(tc.name, func(t *testing.T) {
				req := parseRequest(t, tc.raw, raw)
				body := string(req.Body())
				StripHopByHop(&req.Header)
				got := names(req.String()) // as it would be sent
				for _, n := range tc.gone {
					if got[n] {
						t.Errorf("raw=%v: %s kept in\n%s", raw, n, req.Header.String())
					}
				}
				for _, n := range tc.kept {
					if !got[n] {
						t.Errorf("raw=%v: %s removed from\n%s", raw, n, req.Header.String())
					}
				}
				if req.Header.ConnectionClose() {
					t.Error("Connection: close kept")
				}
				if string(req.Body()) != body {
					t.Errorf("body %q, was %q", req.Body(), body)
				}
			})
		}
	}
}

func TestStripHopByHopResponse(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nconnection: X-Drop, close\r\nx-drop: 1\r\nKeep-Alive: timeout=5\r\nUPGRADE: h2c\r\n" +
		"Proxy-Authenticate: Basic\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\nok"
	resp := new(fasthttp.Response)
	resp.Header.DisableNormalizing() // as the upstream client reads them
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	StripHopByHopResponse(&resp.Header)
	got := names(resp.Header.String())
	for _, n := range []string{"connection", "x-drop", "keep-alive", "upgrade", "proxy-authenticate"} {
		if got[n] {
			t.Errorf("%s kept in\n%s", n, resp.Header.String())
		}
	}
	if !got["x-keep"] || resp.Header.ConnectionClose() || string(resp.Body()) != "ok" {
		t.Errorf("over-stripped:\n%s", resp.Header.String())
	}
}

func TestSetForwarded(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		raw                   string
		ip, proto, host       string
		xff, xfp, xfh, fwd    string
		rawNames, noLowercase bool
	}{
		{
			name: "ipv4", raw: "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
			ip: "192.0.2.1", proto: "https", host: "example.com",
			xff: "192.0.2.1", xfp: "https", xfh: "example.com", fwd: "for=192.0.2.1;proto=https;host=example.com",
		},
		{
			name: "ipv6 and host with port", raw: "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
			ip: "2001:db8::1", proto: "http", host: "example.com:8080",
			xff: "2001:db8::1", xfp: "http", xfh: "example.com:8080",
			fwd: `for="[2001:db8::1]";proto=http;host="example.com:8080"`,
		},
		{
			name: "existing values",
			raw: "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n" +
				"X-Forwarded-Proto: gopher\r\nForwarded: for=10.0.0.1\r\n\r\n",
			ip: "192.0.2.1", proto: "http", host: "h",
			xff: "10.0.0.1, 10.0.0.2, 192.0.2.1", xfp: "http", xfh: "h", fwd: "for=10.0.0.1, for=192.0.2.1;proto=http;host=h",
		},
		{
			name: "existing values spelled otherwise, raw names",
			raw:  "GET / HTTP/1.1\r\nHost: h\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: gopher\r\nX-FORWARDED-HOST: evil\r\n\r\n",
			ip:   "192.0.2.1", proto: "http",
			xff: "10.0.0.1, 192.0.2.1", xfp: "http", fwd: "for=192.0.2.1;proto=http", rawNames: true, noLowercase: true,
		},
		{
			name: "no client IP", raw: "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
			fwd: "for=unknown",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := parseRequest(t, tc.raw, tc.rawNames)
			SetForwarded(req, []byte(tc.ip), []byte(tc.proto), []byte(tc.host))
			for name, want := range map[string]string{
				"X-Forwarded-For": tc.xff, "X-Forwarded-Proto": tc.xfp, "X-Forwarded-Host": tc.xfh, "Forwarded": tc.fwd,
			} {
				if got := string(req.Header.Peek(name)); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
				if n := len(req.Header.PeekAll(name)); want != "" && n != 1 {
					t.Errorf("%d %s headers", n, name)
				}
			}
			if s := req.Header.String(); tc.noLowercase && (strings.Contains(s, "x-forwarded") || strings.Contains(s, "FORWARDED")) {
				t.Errorf("a client's spelling survived:\n%s", s)
			}
		})
	}
}

// The arguments may point into the headers SetForwarded rewrites.
func TestSetForwardedAliasing(t *testing.T) {
	req := parseRequest(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 10.0.0.9\r\nX-Forwarded-Host: real.example\r\n\r\n", false)
	SetForwarded(req, req.Header.Peek("X-Forwarded-For"), []byte("http"), req.Header.Peek("X-Forwarded-Host"))
	if got := string(req.Header.Peek("Forwarded")); got != "for=10.0.0.9;proto=http;host=real.example" {
		t.Fatalf("Forwarded = %q", got)
	}
}

func TestHeaderAllocs(t *testing.T) {
	for _, raw := range []bool{false, true} {
		tmpl := parseRequest(t, "POST / HTTP/1.1\r\nHost: h\r\nconnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nTE: trailers\r\n"+
			"X-Forwarded-For: 10.0.0.1\r\nContent-Length: 2\r\n\r\nhi", raw)
		var req fasthttp.Request
		ip, proto, host := []byte("2001:db8::1"), []byte("https"), []byte("example.com:8443")
		if n := testing.AllocsPerRun(200, func() {
			tmpl.Header.CopyTo(&req.Header)
			StripHopByHop(&req.Header)
			SetForwarded(&req, ip, proto, host)
		}); n != 0 {
			t.Errorf("raw=%v: %v allocations per request", raw, n)
		}
	}
	var tmpl, resp fasthttp.Response
	tmpl.Header.DisableNormalizing()
	if err := tmpl.Read(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nConnection: x-a\r\nx-a: 1\r\nKeep-Alive: 1\r\nContent-Length: 0\r\n\r\n"))); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() {
		tmpl.Header.CopyTo(&resp.Header)
		StripHopByHopResponse(&resp.Header)
	}); n != 0 {
		t.Errorf("response: %v allocations", n)
	}
}

func FuzzStripHopByHop(f *testing.F) {
	f.Add("keep-alive, X-Foo", "x-foo", false)
	f.Add("close, te , ,host", "TE", true)
	f.Add("Content-Type", "content-type", true)
	f.Fuzz(func(t *testing.T, conn, name string, raw bool) {
		if len(conn) > 200 || strings.Count(conn, ",") > 20 {
			t.Skip("past the documented capacity for names listed in Connection")
		}
		req := new(fasthttp.Request)
		if raw {
			req.Header.DisableNormalizing()
		}
		msg := "GET / HTTP/1.1\r\nHost: h\r\nConnection: " + conn + "\r\n" + name + ": v\r\nContent-Type: text/plain\r\nX-Keep: 1\r\n\r\n"
		if req.Read(bufio.NewReader(strings.NewReader(msg))) != nil || len(req.Header.Peek("X-Keep")) == 0 {
			t.Skip("not a header block this test can reason about")
		}
		listed := map[string]bool{}
		for _, tok := range strings.Split(conn, ",") {
			listed[strings.ToLower(strings.Trim(tok, " \t"))] = true
		}
		StripHopByHop(&req.Header)
		for k := range req.Header.All() {
			if isHop(k) || listed[strings.ToLower(string(k))] {
				t.Fatalf("%q kept (Connection: %q)\n%s", k, conn, req.Header.String())
			}
		}
		if !listed["x-keep"] && len(req.Header.Peek("X-Keep")) == 0 {
			t.Fatalf("X-Keep removed (Connection: %q)", conn)
		}
	})
}
