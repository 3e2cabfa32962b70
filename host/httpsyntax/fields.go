package httpsyntax

import "errors"

// Errors of CheckFieldLines.
var (
	ErrFieldName  = errors.New("header name is not a token")
	ErrFieldValue = errors.New("header value holds a control character")
	ErrObsFold    = errors.New("header line folded onto the next (obs-fold)")
	ErrFraming    = errors.New("both Content-Length and Transfer-Encoding")
	// ErrTransferCoding is a Transfer-Encoding other than chunked: RFC
	// 9112 (6.1) has a server answer 501 to a coding it does not read.
	ErrTransferCoding = errors.New("a Transfer-Encoding other than chunked")
)

// CheckFieldLines checks a raw header block as received (field lines, each
// ended by CRLF or LF, up to an empty line or the end): every name is a
// token with no whitespace before its colon, every value holds only visible
// characters, obs-text, spaces and tabs, and no line is folded (RFC 9112,
// 5.2: a server must reject obs-fold or replace it; the gateway rejects).
// Such names and values are read differently by different servers, which is
// how requests get smuggled past a proxy. So is a message framed twice, with
// both Content-Length and Transfer-Encoding: RFC 9112 (6.3) says it "ought
// to be handled as an error", and it is.
func CheckFieldLines(block []byte) error {
	var length, chunked bool
	// One pass, one table lookup a byte: this runs on every request.
	for i := 0; i < len(block); {
		switch block[i] {
		case '\r', '\n':
			return nil // the empty line that ends the block
		case ' ', '\t':
			return ErrObsFold
		}
		start := i
		for i < len(block) && class[block[i]]&classToken != 0 {
			i++
		}
		if i == start || i == len(block) || block[i] != ':' {
			return ErrFieldName
		}
		name := block[start:i]
		valueStart := i + 1
		for i++; i < len(block) && class[block[i]]&classFieldValue != 0; i++ {
		}
		value := block[valueStart:i]
		if i < len(block) && block[i] == '\r' {
			i++
		}
		if i < len(block) {
			if block[i] != '\n' {
				return ErrFieldValue
			}
			i++
		}
		if len(name) == len("Content-Length") || len(name) == len("Transfer-Encoding") {
			length = length || equalFold(name, "Content-Length")
			if equalFold(name, "Transfer-Encoding") {
				if chunked || !equalFold(TrimOWS(value), "chunked") {
					return ErrTransferCoding // another coding, or chunked twice
				}
				chunked = true
			}
			if length && chunked {
				return ErrFraming
			}
		}
	}
	return nil
}

// TrimOWS trims the optional whitespace (spaces and tabs) around a field
// value or a list element.
func TrimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// equalFold compares a header name with a canonical one, ASCII
// case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if b[i]|0x20 != s[i]|0x20 {
			return false
		}
	}
	return true
}

// CanonicalName returns a field name in the canonical form fasthttp keeps
// header names in (Content-Type: each letter after the start or a '-'
// upper case, the others lower case), the form its Peek, PeekAll and
// SetCanonical expect without a normalizing copy.
func CanonicalName(name string) []byte {
	b := []byte(name)
	upper := true
	for i, c := range b {
		switch {
		case upper && c >= 'a' && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && c >= 'A' && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return b
}
