package cache

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// Keys are computed here; their text form is documented in doc.go. Every
// part is canonical (decoded, then encoded one way), so that the same
// resource always has one key, and escaped, so that different requests
// never share one.

// scratch is the per-Serve working memory, pooled so that a hit does not
// allocate.
type scratch struct {
	key   []byte   // computed key
	pkey  []byte   // "@" + a plugin's key
	sec   []byte   // secondary (Vary) key of the request
	host  []byte   // normalized host
	path  []byte   // decoded path
	query []byte   // canonical keyed query
	qbuf  []byte   // decoded query names and values
	pairs []qpair  // keyed query parameters, offsets into qbuf
	hv    [][]byte // keyed header values (aliases into the request), "" when absent
	cv    [][]byte // keyed cookie values
	ckh   []byte   // the Cookie header, normalized, when it is keyed
	tmp   []byte
	num   []byte // Age formatting
	base  int    // length of the key's base within key
}

type qpair struct{ k0, k1, v0, v1 int32 }

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	// Drop aliases into the request so that the pool does not pin it, and
	// buffers that grew unusually large.
	clear(sc.hv)
	clear(sc.cv)
	if cap(sc.key) > 64<<10 || cap(sc.pkey) > 64<<10 || cap(sc.qbuf) > 64<<10 {
		*sc = scratch{}
	}
	scratchPool.Put(sc)
}

// collect computes the keyed parts of req into sc, and the key text into
// sc.key.
func (ks *keySpec) collect(req *fasthttp.Request, sc *scratch) {
	u := req.URI()
	sc.host = normHost(sc.host[:0], req.Host(), bytes.Equal(u.Scheme(), []byte("https")))
	// The canonical path: the form the gateway matched and forwards, so
	// that two requests share an entry exactly when the upstream would
	// see the same path. A path that has none (the gateway refuses those
	// before they get here) keys on its raw form, with its controls, spaces
	// and non-ASCII bytes percent-encoded: a key is printable text.
	var err error
	if sc.path, err = httpsyntax.CleanPath(sc.path[:0], u.PathOriginal(), httpsyntax.KeepEscapedSlashes); err != nil {
		sc.path = appendPrintable(sc.path[:0], u.PathOriginal())
	}

	// Query: keyed parameters, decoded, sorted, re-encoded.
	sc.qbuf = sc.qbuf[:0]
	sc.pairs = sc.pairs[:0]
	for k, v := range u.QueryArgs().All() {
		if matchAny(ks.ignore, k) || (!ks.queryAll && !matchAny(ks.query, k)) {
			continue
		}
		p := qpair{k0: int32(len(sc.qbuf))}
		sc.qbuf = append(sc.qbuf, k...)
		p.k1 = int32(len(sc.qbuf))
		p.v0 = p.k1
		sc.qbuf = append(sc.qbuf, v...)
		p.v1 = int32(len(sc.qbuf))
		sc.pairs = append(sc.pairs, p)
	}
	sortPairs(sc.pairs, sc.qbuf)
	sc.query = sc.query[:0]
	for i, p := range sc.pairs {
		if i > 0 {
			sc.query = append(sc.query, '&')
		}
		sc.query = appendQueryEscaped(sc.query, sc.qbuf[p.k0:p.k1])
		if p.v1 > p.v0 {
			sc.query = append(sc.query, '=')
			sc.query = appendQueryEscaped(sc.query, sc.qbuf[p.v0:p.v1])
		}
	}

	sc.hv = grow(sc.hv, len(ks.headers))
	for i, h := range ks.headers {
		if h.lower == "cookie" {
			sc.ckh = appendCookies(sc.ckh[:0], &req.Header)
			sc.hv[i] = sc.ckh
			continue
		}
		// Values are trimmed as the upstream will read them off the wire.
		sc.hv[i] = bytes.Trim(req.Header.PeekCanonical(h.canonB), " \t")
	}
	sc.cv = grow(sc.cv, len(ks.cookies))
	for i, name := range ks.cookies {
		sc.cv[i] = bytes.Trim(req.Header.Cookie(name), " \t")
	}

	sc.key = appendHostEscaped(sc.key[:0], sc.host)
	sc.key = append(sc.key, sc.path...)
	if len(sc.query) > 0 {
		sc.key = append(sc.key, '?')
		sc.key = append(sc.key, sc.query...)
	}
	sc.base = len(sc.key)
	for i, h := range ks.headers {
		if len(sc.hv[i]) == 0 {
			continue
		}
		sc.key = append(sc.key, " h:"...)
		sc.key = append(sc.key, h.lower...)
		sc.key = append(sc.key, '=')
		if ks.sensitiveIdx[i] {
			sc.key = appendDigest(sc.key, sc.hv[i])
		} else {
			sc.key = appendValueEscaped(sc.key, sc.hv[i])
		}
	}
	for i, name := range ks.cookies {
		if len(sc.cv[i]) == 0 {
			continue
		}
		sc.key = append(sc.key, " c:"...)
		sc.key = append(sc.key, name...)
		sc.key = append(sc.key, '=')
		sc.key = appendValueEscaped(sc.key, sc.cv[i])
	}
}

// buildFill writes into fill the request a fill sends: GET of the keyed
// target with the keyed headers and cookies, the Vary headers of the stored
// variants, and nothing else of the client's request. collect must have run
// on req and sc.
func (ks *keySpec) buildFill(fill, req *fasthttp.Request, sc *scratch, vary [][]byte) {
	fill.Reset()
	fill.Header.SetMethod(fasthttp.MethodGet)
	sc.tmp = append(sc.tmp[:0], sc.path...)
	if len(sc.query) > 0 {
		sc.tmp = append(sc.tmp, '?')
		sc.tmp = append(sc.tmp, sc.query...)
	}
	fill.SetRequestURIBytes(sc.tmp)
	fill.Header.SetHostBytes(sc.host)
	cookieSent := false
	for i, h := range ks.headers {
		if len(sc.hv[i]) == 0 {
			continue
		}
		if h.lower == "cookie" {
			copyCookies(&fill.Header, &req.Header)
			cookieSent = true
			continue
		}
		fill.Header.SetBytesV(h.canon, sc.hv[i])
	}
	if !cookieSent {
		for i, name := range ks.cookies {
			if len(sc.cv[i]) > 0 {
				fill.Header.SetCookieBytesKV([]byte(name), sc.cv[i])
			}
		}
	}
	for _, name := range vary {
		if ks.keyed(name) {
			continue
		}
		switch string(name) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection":
			continue
		case "Cookie":
			if !cookieSent {
				copyCookies(&fill.Header, &req.Header)
				cookieSent = true
			}
			continue
		}
		if v := req.Header.PeekCanonical(name); len(v) > 0 {
			fill.Header.SetCanonical(name, v)
		}
	}
}

// keyed reports whether the canonical header name is a keyed header.
func (ks *keySpec) keyed(canon []byte) bool {
	for _, h := range ks.headers {
		if h.canon == string(canon) {
			return true
		}
	}
	return false
}

// appendSecondary appends the secondary key of h for the Vary header names
// (canonical, sorted): "name:value;" per name, "name;" when absent. Values
// are escaped like key values and list whitespace is normalized, so that
// "gzip, br" and "gzip,br" select the same variant.
func appendSecondary(dst []byte, vary [][]byte, h *fasthttp.RequestHeader, tmp *[]byte) []byte {
	for _, name := range vary {
		dst = append(dst, name...)
		var v []byte
		if string(name) == "Cookie" {
			*tmp = appendCookies((*tmp)[:0], h)
			v = *tmp
		} else {
			v = h.PeekCanonical(name)
		}
		if len(v) > 0 {
			dst = append(dst, ':')
			dst = appendListNormalized(dst, v)
		}
		dst = append(dst, ';')
	}
	return dst
}

// appendListNormalized appends v escaped, with the whitespace around commas
// and at the ends removed.
func appendListNormalized(dst, v []byte) []byte {
	v = bytes.Trim(v, " \t")
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		var e []byte
		if i < 0 {
			e, v = v, nil
		} else {
			e, v = v[:i], v[i+1:]
		}
		dst = appendValueEscaped(dst, bytes.Trim(e, " \t"))
		if i >= 0 {
			dst = append(dst, ',')
		}
	}
	return dst
}

// appendCookies appends the request's cookies as "name=value; ..." in
// their order, the one form fasthttp gives whether or not it has parsed
// them.
func appendCookies(dst []byte, h *fasthttp.RequestHeader) []byte {
	first := true
	for k, v := range h.Cookies() {
		if !first {
			dst = append(dst, "; "...)
		}
		first = false
		dst = append(dst, k...)
		dst = append(dst, '=')
		dst = append(dst, v...)
	}
	return dst
}

func copyCookies(dst, src *fasthttp.RequestHeader) {
	for k, v := range src.Cookies() {
		dst.SetCookieBytesKV(k, v)
	}
}

func grow(s [][]byte, n int) [][]byte {
	if cap(s) < n {
		return make([][]byte, n)
	}
	return s[:n]
}

// sortPairs sorts query pairs by name then value. Insertion sort: queries
// are short, and it does not allocate.
func sortPairs(ps []qpair, buf []byte) {
	less := func(a, b qpair) bool {
		if c := bytes.Compare(buf[a.k0:a.k1], buf[b.k0:b.k1]); c != 0 {
			return c < 0
		}
		return bytes.Compare(buf[a.v0:a.v1], buf[b.v0:b.v1]) < 0
	}
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && less(ps[j], ps[j-1]); j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// normHost lower-cases host, drops its trailing dots and the scheme's
// default port. All the dots, not one: the key's host is sent on as a
// fill's Host, and its key must be the same (".." would become ".", then
// "").
func normHost(dst, host []byte, tls bool) []byte {
	name, port := host, []byte(nil)
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && !bytes.HasSuffix(host, []byte("]")) {
		name, port = host[:i], host[i+1:]
	}
	name = bytes.TrimRight(name, ".")
	start := len(dst)
	dst = append(dst, name...)
	for i := start; i < len(dst); i++ {
		if c := dst[i]; c >= 'A' && c <= 'Z' {
			dst[i] = c + 'a' - 'A'
		}
	}
	if port != nil && !(tls && string(port) == "443") && !(!tls && string(port) == "80") {
		dst = append(dst, ':')
		dst = append(dst, port...)
	}
	return dst
}

const upperHex = "0123456789ABCDEF"

func appendPct(dst []byte, c byte) []byte {
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendHostEscaped keeps the characters of a host name, IP literal and
// port; anything else (a client can send any bytes in Host) is escaped.
func appendHostEscaped(dst, host []byte) []byte {
	for _, c := range host {
		if isUnreserved(c) || c == ':' || c == '[' || c == ']' {
			dst = append(dst, c)
		} else {
			dst = appendPct(dst, c)
		}
	}
	return dst
}

// appendQueryEscaped keeps unreserved characters literal and escapes the
// rest: the one canonical encoding of a query name or value.
func appendQueryEscaped(dst, s []byte) []byte {
	for _, c := range s {
		if isUnreserved(c) {
			dst = append(dst, c)
		} else {
			dst = appendPct(dst, c)
		}
	}
	return dst
}

// appendValueEscaped escapes '%', space, controls and non-ASCII bytes of a
// header or cookie value.
func appendValueEscaped(dst, v []byte) []byte {
	for _, c := range v {
		if c <= ' ' || c >= 0x7f || c == '%' {
			dst = appendPct(dst, c)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// appendDigest appends "#" and the first 16 bytes of v's SHA-256 in hex.
func appendDigest(dst, v []byte) []byte {
	sum := sha256.Sum256(v)
	dst = append(dst, '#')
	return hex.AppendEncode(dst, sum[:16])
}

// appendPrintable appends b with every byte outside '!'..'~' percent-encoded.
func appendPrintable(dst, b []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			dst = append(dst, '%', hex[c>>4], hex[c&15])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
