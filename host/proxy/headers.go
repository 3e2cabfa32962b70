package proxy

import (
	"bytes"

	"github.com/wasmgate/wasmgate/host/httpsyntax"

	"github.com/valyala/fasthttp"
)

// hopByHop lists the headers that describe one connection rather than the
// message (RFC 9110, section 7.6.1), plus Proxy-Connection, which old
// clients still send.
var hopByHop = [...]string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
	"TE", "Trailer", "Transfer-Encoding", "Upgrade",
}

// nameList holds header names (copied, so that they survive changes to the
// header they came from) in fixed storage: no allocation. Names past its
// capacity are dropped; add reports it.
type nameList struct {
	buf  [512]byte
	n    int
	span [32][2]uint16
	ns   int
}

func (l *nameList) add(name []byte) bool {
	if l.ns == len(l.span) || l.n+len(name) > len(l.buf) {
		return false
	}
	l.span[l.ns] = [2]uint16{uint16(l.n), uint16(l.n + len(name))}
	l.n += copy(l.buf[l.n:], name)
	l.ns++
	return true
}

// addList adds the elements of a comma-separated list such as a Connection
// header's value.
func (l *nameList) addList(v []byte) {
	for len(v) > 0 {
		var e []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			e, v = v[:i], v[i+1:]
		} else {
			e, v = v, nil
		}
		if e = bytes.Trim(e, " \t"); len(e) > 0 {
			l.add(e)
		}
	}
}

func (l *nameList) get(i int) []byte { return l.buf[l.span[i][0]:l.span[i][1]] }

func (l *nameList) has(name []byte) bool {
	for i := range l.ns {
		if bytes.EqualFold(l.get(i), name) {
			return true
		}
	}
	return false
}

// foldEq compares a header name case-insensitively (ASCII), without allocating.
func foldEq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// hasAnyRequest reports whether a request header name satisfies match, in
// one pass over the headers, whatever their spelling.
func hasAnyRequest(h *fasthttp.RequestHeader, match func([]byte) bool) bool {
	for k := range h.All() {
		if match(k) {
			return true
		}
	}
	return false
}

// hasAnyResponse is hasAnyRequest for a response header.
func hasAnyResponse(h *fasthttp.ResponseHeader, match func([]byte) bool) bool {
	for k := range h.All() {
		if match(k) {
			return true
		}
	}
	return false
}

// Canonical names of the headers SetForwarded writes: SetCanonical skips
// the name normalization that SetBytesV does on every call.
var (
	keyXForwardedFor   = []byte("X-Forwarded-For")
	keyXForwardedProto = []byte("X-Forwarded-Proto")
	keyXForwardedHost  = []byte("X-Forwarded-Host")
	keyForwarded       = []byte(fasthttp.HeaderForwarded)
)

// isForwarding reports whether name is one of the headers SetForwarded writes.
func isForwarding(name []byte) bool {
	return foldEq(name, "X-Forwarded-For") || foldEq(name, "X-Forwarded-Proto") ||
		foldEq(name, "X-Forwarded-Host") || foldEq(name, fasthttp.HeaderForwarded)
}

func isHop(name []byte) bool {
	for _, h := range hopByHop {
		if foldEq(name, h) {
			return true
		}
	}
	return false
}

// rawNames reports whether the header keeps names as received. Then its
// lookups are exact, and other spellings of a name must be found in the
// received header block (AllInOrder). fasthttp has no getter for the mode,
// so it is read by setting it and restoring it.
func rawNames(h *fasthttp.RequestHeader) bool {
	if h.DisableNormalizing() {
		return true
	}
	h.EnableNormalizing()
	return false
}

// peekFold returns the value of a request header whatever the spelling of
// its name, nil when it is absent.
func peekFold(h *fasthttp.RequestHeader, name string) []byte {
	if v := h.Peek(name); len(v) > 0 || !rawNames(h) {
		return v
	}
	for k := range h.AllInOrder() {
		if foldEq(k, name) {
			if v := h.PeekBytes(k); len(v) > 0 { // still present, as it is now
				return v
			}
		}
	}
	return nil
}

// canonical returns name in canonical form (Content-Type), in buf. A header
// named in Connection is deleted both as spelled and in canonical form:
// fasthttp keeps Host, Content-Type, Content-Length, User-Agent and Cookie
// apart from the other headers, under canonical names only, whatever the
// spelling received.
func canonical(buf *[64]byte, name []byte) []byte {
	if len(name) > len(buf) {
		return name
	}
	up := true
	for i, c := range name {
		switch {
		case up && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case !up && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		buf[i] = c
		up = c == '-'
	}
	return buf[:len(name)]
}

// StripHopByHop removes from a request the hop-by-hop headers: Connection,
// Keep-Alive, Proxy-Authenticate, Proxy-Authorization, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade, and every header named in Connection,
// whatever their spelling. It clears the Connection: close flag, so the
// connection to the target stays reusable; the fasthttp server has read the
// client's wish before calling the handler. It does not allocate.
func StripHopByHop(h *fasthttp.RequestHeader) {
	if !hasAnyRequest(h, isHop) {
		// The common case: one pass over the headers instead of a Del per
		// hop-by-hop name, each of which would scan them all again.
		h.ResetConnectionClose()
		return
	}
	var listed nameList
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		listed.addList(v)
	}
	raw := rawNames(h)
	if raw {
		for k, v := range h.AllInOrder() {
			if foldEq(k, fasthttp.HeaderConnection) {
				listed.addList(v)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	var cbuf [64]byte
	for i := range listed.ns {
		h.DelBytes(listed.get(i))
		h.DelBytes(canonical(&cbuf, listed.get(i)))
	}
	if raw {
		// Deleting while iterating is safe here: AllInOrder reads the
		// received header block, not the stored headers.
		for k := range h.AllInOrder() {
			if isHop(k) || listed.has(k) {
				h.DelBytes(k)
			}
		}
	}
	h.ResetConnectionClose()
}

// StripHopByHopResponse is StripHopByHop for a target's response. It does
// not allocate.
func StripHopByHopResponse(h *fasthttp.ResponseHeader) {
	h.Del(fasthttp.HeaderTrailer) // first: All renders a Trailer value into a new slice
	if !hasAnyResponse(h, isHop) {
		return // the common case: one pass instead of a Del per name
	}
	var listed nameList
	for k, v := range h.All() {
		if foldEq(k, fasthttp.HeaderConnection) {
			listed.addList(v)
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	var cbuf [64]byte
	for i := range listed.ns {
		h.DelBytes(listed.get(i))
		h.DelBytes(canonical(&cbuf, listed.get(i)))
	}
	// Other spellings. All walks the stored headers, so names are collected
	// first and deleted after, a batch at a time.
	for range 8 {
		var found nameList
		full := false
		for k := range h.All() {
			if (isHop(k) || listed.has(k)) && !found.has(k) && !found.add(k) {
				full = true
				break
			}
		}
		for i := range found.ns {
			h.DelBytes(found.get(i))
		}
		if !full {
			break
		}
	}
	h.ResetConnectionClose()
}

// takeAll appends the values of every header spelled like name to b as a
// comma-separated list, and deletes those headers.
func takeAll(h *fasthttp.RequestHeader, name string, b []byte) []byte {
	for _, v := range h.PeekAll(name) {
		b = appendElem(b, v)
	}
	h.Del(name)
	if rawNames(h) {
		for k, v := range h.AllInOrder() {
			if foldEq(k, name) && string(k) != name && h.PeekBytes(k) != nil {
				b = appendElem(b, v)
			}
		}
		for k := range h.AllInOrder() {
			if foldEq(k, name) {
				h.DelBytes(k)
			}
		}
	}
	return b
}

func appendElem(b, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	if len(b) > 0 {
		b = append(b, ", "...)
	}
	return append(b, v...)
}

// SetForwarded appends the client IP to X-Forwarded-For (existing values
// kept, ", " joined), sets X-Forwarded-Proto and X-Forwarded-Host (replacing
// what the client sent), and appends an RFC 7239 Forwarded element
// (for=, proto=, host=; an IPv6 address quoted and bracketed). Empty
// arguments are left out. It does not allocate unless the values are long.
func SetForwarded(req *fasthttp.Request, clientIP, proto, host []byte) {
	h := &req.Header
	if !hasAnyRequest(h, isForwarding) {
		// Nothing to append to or replace: set the headers directly.
		if len(clientIP) > 0 {
			h.SetCanonical(keyXForwardedFor, clientIP)
		}
		if len(proto) > 0 {
			h.SetCanonical(keyXForwardedProto, proto)
		}
		if len(host) > 0 {
			h.SetCanonical(keyXForwardedHost, host)
		}
		var out [512]byte
		h.SetCanonical(keyForwarded, appendForwarded(out[:0], clientIP, proto, host))
		return
	}
	// The arguments may point into the very headers rewritten below (a
	// client IP taken from X-Forwarded-For, say): copy them out first.
	var in [256]byte
	args := append(append(append(in[:0], clientIP...), proto...), host...)
	clientIP = args[:len(clientIP):len(clientIP)]
	proto = args[len(clientIP) : len(clientIP)+len(proto) : len(clientIP)+len(proto)]
	host = args[len(clientIP)+len(proto):]

	var out [512]byte
	b := appendElem(takeAll(h, "X-Forwarded-For", out[:0]), clientIP)
	if len(b) > 0 {
		h.SetBytesV("X-Forwarded-For", b)
	}
	b = takeAll(h, "X-Forwarded-Proto", out[:0])
	if len(proto) > 0 {
		h.SetBytesV("X-Forwarded-Proto", proto)
	}
	b = takeAll(h, "X-Forwarded-Host", b[:0])
	if len(host) > 0 {
		h.SetBytesV("X-Forwarded-Host", host)
	}
	b = takeAll(h, fasthttp.HeaderForwarded, b[:0])
	if len(b) > 0 {
		b = append(b, ", "...)
	}
	h.SetBytesV(fasthttp.HeaderForwarded, appendForwarded(b, clientIP, proto, host))
}

// appendForwarded appends one RFC 7239 forwarded-element.
func appendForwarded(b, clientIP, proto, host []byte) []byte {
	b = append(b, "for="...)
	switch {
	case len(clientIP) == 0:
		b = append(b, "unknown"...)
	case bytes.IndexByte(clientIP, ':') >= 0: // IPv6: a quoted, bracketed node
		b = append(b, '"')
		if clientIP[0] != '[' {
			b = append(b, '[')
		}
		b = appendQuotedText(b, clientIP)
		if clientIP[len(clientIP)-1] != ']' {
			b = append(b, ']')
		}
		b = append(b, '"')
	default:
		b = appendValue(b, clientIP)
	}
	if len(proto) > 0 {
		b = appendValue(append(b, ";proto="...), proto)
	}
	if len(host) > 0 {
		b = appendValue(append(b, ";host="...), host)
	}
	return b
}

// appendValue appends v as a token when it is one, else as a quoted string
// (a host with a port, for one).
func appendValue(b, v []byte) []byte {
	if len(v) > 0 && !httpsyntax.IsToken(v) {
		return append(appendQuotedText(append(b, '"'), v), '"')
	}
	return append(b, v...)
}

func appendQuotedText(b, v []byte) []byte {
	for _, c := range v {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return b
}
