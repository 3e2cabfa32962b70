package proxy

import "errors"

// What fasthttp's response parser lets through that a proxy must not:
// RFC 9112 asks a message with both Content-Length and Transfer-Encoding
// to be handled as an error (6.3: a smuggling or response-splitting
// attempt; fasthttp reads it as chunked and keeps the connection, so
// bytes past one framing become the answer to the next request on it), and
// fasthttp tolerates a header name with whitespace inside ("Bad Header"),
// which the gateway would then send on to its client as it is. A head
// checker on every connection to a target reads along each response head
// and fails the read that brings such a line, before fasthttp has the
// line: the exchange fails as a malformed response (kind other, 502) and
// fasthttp closes the connection.
var (
	errFramedTwice = errors.New("malformed response: Content-Length and Transfer-Encoding both (RFC 9112, 6.3)")
	errHeaderName  = errors.New("malformed response: whitespace inside a header name")
)

var (
	nameContentLength    = []byte("content-length")
	nameTransferEncoding = []byte("transfer-encoding")
)

// headCheck reads along the response heads of one connection. A request
// written arms it; it reads the head that follows (and the next one after
// an interim 1xx) and is idle through the body. Its state carries across
// reads, which may split a head anywhere.
type headCheck struct {
	active  bool                           // inside a response head
	status  bool                           // in its status line
	line    int                            // bytes of the current line so far, CR not counted
	name    [len("transfer-encoding")]byte // the line's field name so far, lower case, no whitespace
	nameLen int
	named   bool // the line's name has ended (or the line has none)
	space   bool // whitespace seen in the name
	inner   bool // ... and a name byte after it
	code    [3]byte
	// codeAt is where the status line is: 0 in the version, 1 in the
	// spaces after it (any number, as fasthttp reads them), then 2 + the
	// code's bytes read so far.
	codeAt int
	cl, te bool // Content-Length, Transfer-Encoding seen
}

// arm starts a new exchange: the next bytes read begin a response head.
func (h *headCheck) arm() {
	*h = headCheck{active: true, status: true}
}

// check reads p, the bytes a read returned. It returns how many of them
// the reader may have: all of them, or, with an error, those before the
// line that makes the head malformed (which the reader never sees whole).
func (h *headCheck) check(p []byte) (int, error) {
	if !h.active {
		return len(p), nil
	}
	lineStart := 0
	for i, c := range p {
		switch {
		case c == '\n':
			if h.line == 0 && !h.status { // the blank line: the head ends
				if h.code[0] == '1' && string(h.code[:]) != "101" {
					h.arm() // an interim answer: the final head follows
					lineStart = i + 1
					continue
				}
				h.active = false
				return len(p), nil
			}
			h.status = h.status && h.line == 0 // blank lines before the status line are skipped
			h.line, h.nameLen, h.named, h.space, h.inner = 0, 0, false, false, false
			lineStart = i + 1
			continue
		case c == '\r':
			continue
		}
		h.line++
		switch {
		case h.status:
			// "HTTP/1.1 200": the code follows the version and its spaces.
			switch {
			case h.codeAt == 0 && c == ' ':
				h.codeAt = 1
			case h.codeAt == 1 && c != ' ':
				h.codeAt = 2
				fallthrough
			case h.codeAt >= 2 && h.codeAt < 2+len(h.code):
				h.code[h.codeAt-2] = c
				h.codeAt++
			}
		case h.named:
		case c == ' ' || c == '\t':
			if h.line == 1 {
				h.named = true // a continuation line (obs-fold), not a field
			}
			h.space = true
		case c == ':':
			h.named = true
			if h.inner {
				return lineStart, errHeaderName
			}
			name := h.name[:min(h.nameLen, len(h.name))]
			if h.nameLen == len(nameContentLength) && string(name) == string(nameContentLength) {
				h.cl = true
			} else if h.nameLen == len(nameTransferEncoding) && string(name) == string(nameTransferEncoding) {
				h.te = true
			}
			if h.cl && h.te {
				return lineStart, errFramedTwice
			}
		default:
			if h.space {
				h.inner = true
			}
			if h.nameLen < len(h.name) {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				h.name[h.nameLen] = c
			}
			h.nameLen++
		}
	}
	return len(p), nil
}
