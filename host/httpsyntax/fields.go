package httpsyntax

import (
	"bytes"
	"errors"
)

// Errors of CheckFieldLines.
var (
	ErrFieldName  = errors.New("header name is not a token")
	ErrFieldValue = errors.New("header value holds a control character")
	ErrObsFold    = errors.New("header line folded onto the next (obs-fold)")
	ErrFraming    = errors.New("both Content-Length and Transfer-Encoding")
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
	for len(block) > 0 {
		line := block
		if i := bytes.IndexByte(block, '\n'); i >= 0 {
			line, block = block[:i], block[i+1:]
		} else {
			block = nil
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			break // the empty line that ends the block
		}
		if line[0] == ' ' || line[0] == '\t' {
			return ErrObsFold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !IsToken(line[:colon]) {
			return ErrFieldName
		}
		if !IsFieldValue(line[colon+1:]) {
			return ErrFieldValue
		}
		length = length || equalFold(line[:colon], "Content-Length")
		chunked = chunked || equalFold(line[:colon], "Transfer-Encoding")
		if length && chunked {
			return ErrFraming
		}
	}
	return nil
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
