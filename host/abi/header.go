package abi

import (
	"iter"

	"github.com/valyala/fasthttp"
)

// validValue reports whether b may be a header value: no CR, LF or NUL,
// which would let a plugin split a header or smuggle a request.
func validValue(b []byte) bool {
	for _, c := range b {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// foldEq compares two header names ASCII case-insensitively.
func foldEq(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isFraming reports whether name is Content-Length or Transfer-Encoding.
// The host owns message framing (body_set keeps Content-Length right); a
// plugin changing it could desynchronise the gateway and the upstream.
func isFraming(name []byte) bool {
	return foldEq(name, strContentLength) || foldEq(name, strTransferEncoding)
}

// isResponseFraming is isFraming for a response's headers, which also
// counts Trailer: fasthttp sends a response announcing trailers chunked,
// with trailers the gateway does not carry. (On a request, Trailer is a
// hop-by-hop header the gateway removes before proxying.)
func isResponseFraming(name []byte) bool { return isFraming(name) || foldEq(name, strTrailer) }

var (
	strContentLength    = []byte("Content-Length")
	strTransferEncoding = []byte("Transfer-Encoding")
	strTrailer          = []byte("Trailer")
	strHost             = []byte("Host")
)

// The lookups below iterate the header's All sequence instead of using Peek:
// a header that keeps names as received (DisableNormalizing, as the proxy's
// upstream client does) only finds exact spellings with Peek, and Peek cannot
// tell an empty value from an absent header. The sequences come from the
// concrete header types at the call sites, so the compiler keeps their
// closures on the stack: no allocation.

// firstValue returns the first value of name in seq.
func firstValue(seq iter.Seq2[[]byte, []byte], name []byte) ([]byte, bool) {
	for k, v := range seq {
		if foldEq(k, name) {
			return v, true
		}
	}
	return nil, false
}

// listValues writes every value of name in seq to dst, each followed by
// NUL, as far as dst holds, and returns the full size and whether any was
// found.
func listValues(seq iter.Seq2[[]byte, []byte], name, dst []byte) (int, bool) {
	n, found := 0, false
	for k, v := range seq {
		if foldEq(k, name) {
			found = true
			n = appendItem(dst, n, v)
		}
	}
	return n, found
}

// listNames writes every header name in seq to dst, each followed by NUL,
// once per value, and returns the full size.
func listNames(seq iter.Seq2[[]byte, []byte], dst []byte) int {
	n := 0
	for k := range seq {
		n = appendItem(dst, n, k)
	}
	return n
}

// appendItem writes item and a NUL at offset n of dst, as far as dst holds,
// and returns the offset after them.
func appendItem(dst []byte, n int, item []byte) int {
	if n < len(dst) {
		copy(dst[n:], item)
	}
	n += len(item)
	if n < len(dst) {
		dst[n] = 0
	}
	return n + 1
}

// findName copies into buf the spelling of the first header in seq named
// name (case-insensitively), false when there is none. The copy lets the
// caller delete it after the iteration ends.
func findName(seq iter.Seq2[[]byte, []byte], name []byte, buf *[]byte) bool {
	for k := range seq {
		if foldEq(k, name) {
			*buf = append((*buf)[:0], k...)
			return true
		}
	}
	return false
}

// delRequestHeader removes every value of name, in every spelling, from h.
// Each pass deletes the spelling found exactly as stored (normalizing off
// for the call); the bound covers a header fasthttp would not delete.
func delRequestHeader(h *fasthttp.RequestHeader, name []byte, buf *[]byte) {
	for range h.Len() + 2 {
		if !findName(h.All(), name, buf) {
			return
		}
		raw := h.DisableNormalizing()
		h.DelBytes(*buf)
		if !raw {
			h.EnableNormalizing()
		}
	}
}

// delResponseHeader is delRequestHeader for a response.
func delResponseHeader(h *fasthttp.ResponseHeader, name []byte, buf *[]byte) {
	for range h.Len() + 2 {
		if !findName(h.All(), name, buf) {
			return
		}
		raw := h.DisableNormalizing()
		h.DelBytes(*buf)
		if !raw {
			h.EnableNormalizing()
		}
	}
}
