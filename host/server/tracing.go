package server

import "math/rand/v2"

const (
	headerRequestID   = "X-Request-Id"
	headerTraceparent = "Traceparent"
)

// Canonical header names, for SetCanonical, which skips the normalization
// SetBytesV does on every call.
var (
	keyRequestID   = []byte(headerRequestID)
	keyTraceparent = []byte(headerTraceparent)
)

const hexDigits = "0123456789abcdef"

// appendHex64 appends v as 16 lowercase hex digits.
func appendHex64(dst []byte, v uint64) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		dst = append(dst, hexDigits[(v>>uint(shift))&0xf])
	}
	return dst
}

// appendRandomID appends a 128-bit random identifier as 32 hex digits. The
// runtime's per-thread ChaCha8 source makes this lock-free and allocation-free.
func appendRandomID(dst []byte) []byte {
	hi, lo := rand.Uint64(), rand.Uint64()
	if hi == 0 && lo == 0 { // all-zero trace ids are invalid
		lo = 1
	}
	return appendHex64(appendHex64(dst, hi), lo)
}

// validRequestID accepts client-sent ids that are safe to echo into logs and
// headers: 1..128 visible ASCII characters without quotes or backslashes.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c <= ' ' || c >= 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// appendTraceparent appends the W3C traceparent the gateway forwards. A valid
// incoming header keeps its trace id and flags and gets the gateway's own span
// id as parent; anything else starts a new, sampled trace.
func appendTraceparent(dst, in []byte) []byte {
	if traceID, flags, ok := parseTraceparent(in); ok {
		dst = append(dst, "00-"...)
		dst = append(dst, traceID...)
		dst = append(dst, '-')
		dst = appendSpanID(dst)
		dst = append(dst, '-')
		return append(dst, flags...)
	}
	dst = append(dst, "00-"...)
	dst = appendRandomID(dst)
	dst = append(dst, '-')
	dst = appendSpanID(dst)
	return append(dst, "-01"...)
}

func appendSpanID(dst []byte) []byte {
	v := rand.Uint64()
	if v == 0 {
		v = 1
	}
	return appendHex64(dst, v)
}

// parseTraceparent checks "version-traceid-parentid-flags" per W3C Trace
// Context: lowercase hex, version ff invalid, all-zero ids invalid. Future
// versions may append fields after the flags, which are then ignored.
func parseTraceparent(h []byte) (traceID, flags []byte, ok bool) {
	if len(h) < 55 || h[2] != '-' || h[35] != '-' || h[52] != '-' {
		return nil, nil, false
	}
	version := h[0:2]
	if !isLowerHex(version) || (version[0] == 'f' && version[1] == 'f') {
		return nil, nil, false
	}
	if version[0] == '0' && version[1] == '0' && len(h) != 55 {
		return nil, nil, false
	}
	if len(h) > 55 && h[55] != '-' {
		return nil, nil, false
	}
	traceID, parent, flags := h[3:35], h[36:52], h[53:55]
	if !isLowerHex(traceID) || !isLowerHex(parent) || !isLowerHex(flags) || allZero(traceID) || allZero(parent) {
		return nil, nil, false
	}
	return traceID, flags, true
}

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != '0' {
			return false
		}
	}
	return true
}
