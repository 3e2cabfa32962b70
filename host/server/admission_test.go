package server

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/proxy"
)

// BenchmarkCheckRequest is what the admission checks cost a request: a
// browser-like request of a dozen headers, as fasthttp parsed it. The
// "strip-only" case is the baseline: the copy each iteration makes and the
// hop-by-hop removal every proxied request had before the checks existed.
func BenchmarkCheckRequest(b *testing.B) {
	for _, c := range []struct{ name, uri string }{
		{"strip-only", ""}, {"canonical", "/api/v1/users/42?fields=name"}, {"dot-segments", "/api/v1/./x/../users/%7e42?fields=name"},
	} {
		b.Run(c.name, func(b *testing.B) {
			uri := c.uri
			if uri == "" {
				uri = "/api/v1/users/42?fields=name"
			}
			raw := "GET " + uri + " HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0\r\n" +
				"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\n" +
				"Accept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: session=0123456789abcdef; theme=dark\r\n" +
				"Upgrade-Insecure-Requests: 1\r\nSec-Fetch-Dest: document\r\nSec-Fetch-Mode: navigate\r\nX-Request-Id: abc\r\n\r\n"
			var parsed fasthttp.Request
			if err := parsed.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				b.Fatal(err)
			}
			var req fasthttp.Request
			path := make([]byte, 0, 256)
			b.ReportAllocs()
			for b.Loop() {
				parsed.CopyTo(&req)
				if c.uri == "" {
					req.URI()
					proxy.StripHopByHop(&req.Header)
				} else if rej := checkRequest(&req, &path, pathPolicy{rejectParams: true}); rej != nil {
					b.Fatal(rej.msg)
				}
			}
		})
	}
}
