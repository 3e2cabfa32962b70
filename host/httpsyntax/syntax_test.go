package httpsyntax

import (
	"errors"
	"strings"
	"testing"
)

// TestTable recomputes every class from the RFC grammars, independently of
// gen.go, and compares it with the generated table.
func TestTable(t *testing.T) {
	const (
		alpha      = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		digit      = "0123456789"
		tchar      = alpha + digit + "!#$%&'*+-.^_`|~"
		unreserved = alpha + digit + "-._~"
		pchar      = unreserved + "!$&'()*+,;=" + ":@"
	)
	for c := 0; c < 256; c++ {
		b := byte(c)
		want := map[uint8]bool{
			classToken:      c < 128 && strings.IndexByte(tchar, b) >= 0,
			classUnreserved: c < 128 && strings.IndexByte(unreserved, b) >= 0,
			classPChar:      c < 128 && strings.IndexByte(pchar, b) >= 0,
			classFieldValue: (c > 0x20 && c < 0x7f) || c >= 0x80 || c == ' ' || c == '\t',
			classRegName:    c < 128 && strings.IndexByte(unreserved, b) >= 0,
		}
		for flag, w := range want {
			if got := class[c]&flag != 0; got != w {
				t.Errorf("byte %#x class %#x: %v, want %v", c, flag, got, w)
			}
		}
	}
}

func TestCheckVersion(t *testing.T) {
	for in, want := range map[string]error{
		"HTTP/1.1": nil, "HTTP/1.0": nil, "HTTP/1.2": nil, "HTTP/1.9": nil,
		"HTTP/2.0": ErrVersionUnsupported, "HTTP/0.9": ErrVersionUnsupported, "HTTP/3.0": ErrVersionUnsupported,
		"HTTP/1.10": ErrVersionMalformed, "HTTP/1": ErrVersionMalformed, "http/1.1": ErrVersionMalformed,
		"HTTP/a.1": ErrVersionMalformed, "": ErrVersionMalformed, "HTTPS/1.1": ErrVersionMalformed,
	} {
		if err := CheckVersion([]byte(in)); !errors.Is(err, want) {
			t.Errorf("CheckVersion(%q) = %v, want %v", in, err, want)
		}
	}
}

func TestCheckFieldLines(t *testing.T) {
	for in, want := range map[string]error{
		"":                                   nil,
		"Host: a\r\n\r\n":                    nil,
		"Host: a\r\nX-A: b c\td\r\n\r\n":     nil,
		"Host: a\nX-A: \xff\n\n":             nil,
		"Host: a\r\nX A: 1\r\n\r\n":          ErrFieldName,
		"Transfer Encoding: chunked\r\n\r\n": ErrFieldName,
		"X-A : 1\r\n\r\n":                    ErrFieldName,
		": 1\r\n\r\n":                        ErrFieldName,
		"X-A\r\n\r\n":                        ErrFieldName,
		"X(A): 1\r\n\r\n":                    ErrFieldName,
		"X-A: 1\r\n b\r\n\r\n":               ErrObsFold,
		"X-A: 1\r\n\tb\r\n\r\n":              ErrObsFold,
		"X-A: a\x00b\r\n\r\n":                ErrFieldValue,
		"X-A: a\rb\r\n\r\n":                  ErrFieldValue,
		"X-A: a\x1bb\r\n\r\n":                ErrFieldValue,
		"X-A: a\x7fb\r\n\r\n":                ErrFieldValue,
		"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n":          ErrFraming,
		"Transfer-Encoding:  Chunked \r\n\r\n":                             nil,
		"Transfer-Encoding: identity\r\n\r\n":                              ErrTransferCoding,
		"Transfer-Encoding: gzip, chunked\r\n\r\n":                         ErrTransferCoding,
		"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n": ErrTransferCoding,
		"Transfer-Encoding:\r\n\r\n":                                       ErrTransferCoding,
		"transfer-encoding: chunked\r\ncontent-LENGTH: 3\r\n\r\n":          ErrFraming,
		"Content-Length: 3\r\n\r\nTransfer-Encoding: chunked\r\n":          nil, // after the block
	} {
		if err := CheckFieldLines([]byte(in)); !errors.Is(err, want) {
			t.Errorf("CheckFieldLines(%q) = %v, want %v", in, err, want)
		}
	}
}

func TestValidHost(t *testing.T) {
	for in, want := range map[string]bool{
		"example.com": true, "example.com:8080": true, "a": true, "127.0.0.1:80": true, "[::1]": true,
		"[::1]:8080": true, "my_host.local": true, "xn--caf-dma.example": true, "a:65535": true,
		"": false, "user:pass@host": false, "user@host": false, "host:": false, ":80": false,
		"host:65536": false, "host:123456": false, "host:8a": false, "ho st": false, "host/x": false,
		"host?x": false, "host#x": false, "ho%41st": false, "[::1": false, "[::1]x": false,
		"[not-ip]": false, "[127.0.0.1]": false, "[fe80::1%eth0]": false, "host:80:80": false,
		"h\x00": false, "caf\xc3\xa9": false, strings.Repeat("a", 300): false,
	} {
		if got := ValidHost([]byte(in)); got != want {
			t.Errorf("ValidHost(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	for in, want := range map[string]bool{
		"/a/b": false, "/a/../b": true, "/a/./b": true, "/..": true, "/a/..": true, "/a/...": false,
		"/a/..b": false, "/.a/b.": false, "": false, "/": false, "//": false, "..": true,
	} {
		if got := HasDotSegment([]byte(in)); got != want {
			t.Errorf("HasDotSegment(%q) = %v, want %v", in, got, want)
		}
	}
}
