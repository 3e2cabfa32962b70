package proxy

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// TestHeadCheck: the head checker finds a response framed twice and a
// header name with whitespace inside wherever the reads split the head,
// hands the reader only the lines before the bad one, and lets everything
// else through: the neighbours fasthttp reads one way only.
func TestHeadCheck(t *testing.T) {
	for _, tc := range []struct {
		name, head string
		want       error
		bad        string // the line that makes the head malformed
	}{
		{"Content-Length then chunked", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", errFramedTwice, "Transfer-Encoding"},
		{"chunked then Content-Length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX: 1\r\ncontent-length: 3\r\n\r\n", errFramedTwice, "content-length"},
		{"upper case, space before the colon", "HTTP/1.1 200 OK\r\nTRANSFER-ENCODING : chunked\r\nCONTENT-LENGTH: 3\r\n\r\n", errFramedTwice, "CONTENT-LENGTH"},
		{"bare LF lines", "HTTP/1.1 200 OK\nContent-Length: 3\nTransfer-Encoding: chunked\n\n", errFramedTwice, "Transfer-Encoding"},
		{"after an interim 100", "HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", errFramedTwice, "Content-Length: 3"},
		{"after an interim 100 with two spaces", "HTTP/1.1  100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", errFramedTwice, "Transfer-Encoding"},
		{"final status after several spaces", "HTTP/1.1   200 OK\r\nBad Header: x\r\n\r\n", errHeaderName, "Bad Header"},
		{"space inside a name", "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", errHeaderName, "Bad Header"},
		{"tab inside a name", "HTTP/1.1 200 OK\r\nBad\tHeader: x\r\n\r\n", errHeaderName, "Bad\tHeader"},
		{"one Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", nil, ""},
		{"chunked only", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nil, ""},
		{"names that only start alike", "HTTP/1.1 200 OK\r\nContent-Length-X: 3\r\nTransfer-Encoding-Y: chunked\r\n\r\n", nil, ""},
		{"values that name the other", "HTTP/1.1 200 OK\r\nX-Note: Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", nil, ""},
		{"space before the colon", "HTTP/1.1 200 OK\r\nX-A : x\r\n\r\n", nil, ""},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", nil, ""},
		{"the body is not a head", "HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\nTransfer-Encoding: chunked\r\nBad Name: 1\r\n", nil, ""},
		{"HEAD or 304: a head only", "HTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n", nil, ""},
	} {
		// Every way of splitting the bytes into two reads.
		for cut := 0; cut <= len(tc.head); cut++ {
			var h headCheck
			h.arm()
			var got []byte
			var err error
			for _, part := range []string{tc.head[:cut], tc.head[cut:]} {
				n, e := h.check([]byte(part))
				got = append(got, part[:n]...)
				if e != nil {
					err = e
					break
				}
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("%s, cut at %d: %v, want %v", tc.name, cut, err, tc.want)
			}
			if err == nil && string(got) != tc.head {
				t.Fatalf("%s, cut at %d: the reader got %q", tc.name, cut, got)
			}
			// The reader has what came before the bad line, and of the
			// bad line at most what a read brought before it could be
			// known to be bad: never its colon.
			if at := strings.Index(tc.head, tc.bad); err != nil && (len(got) > at+strings.IndexByte(tc.head[at:], ':') || tc.head[:len(got)] != string(got)) {
				t.Fatalf("%s, cut at %d: the reader got %q", tc.name, cut, got)
			}
		}
	}
	// A request written arms it again; idle, it checks nothing.
	var h headCheck
	if n, err := h.check([]byte("Bad Header: x\r\n")); n != 15 || err != nil {
		t.Fatalf("idle: %d %v", n, err)
	}
}

// TestMalformedHeadsRefused: through a real upstream, plain and TLS, a
// response framed twice or with a bad header name fails the exchange as a
// malformed response (other), counted against the target, and its
// connection is not used again.
func TestMalformedHeadsRefused(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 43\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
		"HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok",
	} {
		for _, secure := range []bool{false, true} {
			answer := func(n int64) string {
				if n == 1 {
					return answer
				}
				return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nclean"
			}
			var raw *rawUpstream
			var u *Upstream
			if secure {
				p := newPKI(t)
				raw = startRawTLS(t, p.server, answer)
				u = tlsUpstream(t, config.UpstreamTLS{CA: p.caFile}, nil, raw.addr)
			} else {
				raw = startRaw(t, answer)
				u = newUpstream(t, upstreamConfig("round_robin", raw.addr))
			}
			_, x, err := send(u, "GET", nil)
			if kindOf(err) != "other" || x.Attempts != 1 || err.(*Error).Status() != 502 {
				t.Fatalf("tls %v: %v after %d attempts, want a malformed response", secure, err, x.Attempts)
			}
			if st := u.Status().Targets[0]; st.Failures != 1 {
				t.Fatalf("tls %v: the target's failures: %+v", secure, st)
			}
			body, _, err := send(u, "GET", nil)
			if err != nil || body != "clean" || raw.conns.Load() != 2 {
				t.Fatalf("tls %v: the next request: %q %v on %d connections; want clean on a new one", secure, body, err, raw.conns.Load())
			}
		}
	}
}

// startRawTLS is startRaw behind TLS with cert.
func startRawTLS(t *testing.T, cert *tlstest.Cert, answer func(n int64) string) *rawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	r := &rawUpstream{addr: ln.Addr().String()}
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert.TLS}})
	go func() {
		for {
			c, err := tlsLn.Accept()
			if err != nil {
				return
			}
			r.conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := io.WriteString(c, answer(r.requests.Add(1))); err != nil {
						return
					}
				}
			}()
		}
	}()
	return r
}
