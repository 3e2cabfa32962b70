package cache

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// etagListMatch reports whether an If-None-Match field value matches the
// entity tag etag under weak comparison (RFC 9110 section 8.8.3.2): "*"
// matches any current representation; otherwise one listed tag must have
// the same opaque-tag as etag, W/ prefixes ignored. Unquoted tags, which
// some clients echo from upstreams that send them, are compared as they
// are. Does not allocate.
func etagListMatch(list, etag []byte) bool {
	want := opaqueTag(etag)
	for {
		list = trimLeftOWSComma(list)
		if len(list) == 0 {
			return false
		}
		if list[0] == '*' {
			return true
		}
		var tag []byte
		rest := list
		if bytes.HasPrefix(rest, []byte("W/")) {
			rest = rest[2:]
		}
		if len(rest) > 0 && rest[0] == '"' {
			// A quoted opaque-tag may contain commas: it ends at the next
			// quote.
			end := bytes.IndexByte(rest[1:], '"')
			if end < 0 {
				return false // unterminated: nothing further is well formed
			}
			tag, list = rest[:end+2], rest[end+2:]
		} else {
			end := bytes.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			tag, list = bytes.TrimRight(rest[:end], " \t"), rest[end:]
		}
		if len(want) > 0 && bytes.Equal(tag, want) {
			return true
		}
		// Skip anything between the tag and the next comma.
		if i := bytes.IndexByte(list, ','); i >= 0 {
			list = list[i:]
		} else {
			list = nil
		}
	}
}

// opaqueTag strips the weakness indicator from an entity tag.
func opaqueTag(etag []byte) []byte {
	return bytes.TrimPrefix(bytes.TrimSpace(etag), []byte("W/"))
}

// notModified evaluates the client's conditional request against a stored
// 2xx response (RFC 9111 section 4.3.2): If-None-Match when present,
// otherwise If-Modified-Since against Last-Modified, or Date when the
// response has none.
func notModified(req *fasthttp.Request, e *entry) bool {
	if e.status < 200 || e.status > 299 {
		return false
	}
	if inm := req.Header.PeekCanonical(hIfNoneMatch); len(inm) > 0 {
		return etagListMatch(inm, e.etag)
	}
	ims := req.Header.PeekCanonical(hIfModSince)
	if len(ims) == 0 {
		return false
	}
	t, ok := parseHTTPDate(ims)
	if !ok {
		return false
	}
	lm := e.lastModT
	if lm.IsZero() {
		lm = e.date
	}
	return !lm.After(t)
}

// keep304 lists the fields a 304 carries (RFC 9110 section 15.4.5); Last-
// Modified only when there is no ETag.
func keep304(k []byte, hasETag bool) bool {
	switch {
	case bytes.EqualFold(k, []byte(fasthttp.HeaderETag)),
		bytes.EqualFold(k, []byte(fasthttp.HeaderVary)),
		bytes.EqualFold(k, []byte(fasthttp.HeaderCacheControl)),
		bytes.EqualFold(k, []byte(fasthttp.HeaderExpires)),
		bytes.EqualFold(k, []byte(fasthttp.HeaderContentLocation)):
		return true
	case bytes.EqualFold(k, []byte(fasthttp.HeaderLastModified)):
		return !hasETag
	}
	return false
}
