// Package httpsyntax decides what of a client's request is well formed
// before anything routes on it: the HTTP version, the field lines, the
// host, and the path, in the one canonical form that the router matches
// and the upstream receives.
//
// fasthttp parses leniently and forwards what it parsed; a gateway may not.
// Every check here answers the question "could two HTTP implementations
// read these bytes differently?", and refuses the input when they could:
// that difference is where path-based auth bypasses, header smuggling and
// cache poisoning live.
//
// The byte classes come from one generated table (gen.go, table.go): each
// check is one indexed load per byte and nothing allocates.
package httpsyntax

//go:generate go run gen.go

// IsToken reports whether b is a non-empty token: a valid header name or method.
func IsToken[T ~string | ~[]byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := range len(b) {
		if class[b[i]]&classToken == 0 {
			return false
		}
	}
	return true
}

// IsFieldValue reports whether b may be a header field value: visible
// characters, obs-text, spaces and tabs; no CR, LF, NUL or other control.
func IsFieldValue(b []byte) bool {
	for _, c := range b {
		if class[c]&classFieldValue == 0 {
			return false
		}
	}
	return true
}
