package cache

import (
	"bytes"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"
)

// Cache-Control directive flags (RFC 9111 section 5.2).
const (
	ccPublic  uint16 = 1 << iota
	ccPrivate        // unqualified: never stored by a shared cache
	ccNoCache        // unqualified: stored, but validated before every use
	ccNoStore
	ccMustRevalidate
	ccProxyRevalidate
	ccOnlyIfCached
	ccMustUnderstand
	ccMaxStaleAny // max-stale without a value: any staleness
	ccBadAge      // an invalid or conflicting max-age / s-maxage
)

// maxDelta is the value RFC 9111 section 1.2.2 prescribes for a
// delta-seconds too large to represent: 2^31.
const maxDelta = 1 << 31

// directives is a parsed Cache-Control field. Durations are in seconds; -1
// means absent. The field lists of qualified private / no-cache are
// comma-separated header names (lists from several directives are joined).
type directives struct {
	flags                     uint16
	maxAge, sMaxAge           int64
	maxStale, minFresh        int64
	swr, sie                  int64
	privateFields, noCacheFld []byte
}

func (d *directives) reset() {
	*d = directives{
		maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, swr: -1, sie: -1,
		privateFields: d.privateFields[:0], noCacheFld: d.noCacheFld[:0],
	}
}

func (d *directives) has(f uint16) bool { return d.flags&f != 0 }

// parseCacheControl adds the directives of one Cache-Control field value to
// d (call reset first; call again for every field line). Unknown directives
// and malformed parts are skipped: a cache must keep working whatever an
// upstream or client sends. It does not allocate unless a qualified
// private or no-cache list is present.
func parseCacheControl(v []byte, d *directives) {
	for len(v) > 0 {
		v = trimLeftOWSComma(v)
		if len(v) == 0 {
			return
		}
		// The directive name runs to '=', ',' or whitespace.
		i := 0
		for i < len(v) && v[i] != '=' && v[i] != ',' && v[i] != ' ' && v[i] != '\t' {
			i++
		}
		name := v[:i]
		v = trimLeftOWS(v[i:])
		var val []byte
		hasVal := false
		if len(v) > 0 && v[0] == '=' {
			hasVal = true
			v = trimLeftOWS(v[1:])
			if len(v) > 0 && v[0] == '"' {
				// Quoted string: runs to the first unescaped quote. The
				// escapes are left in place; no directive we act on needs
				// them removed.
				j := 1
				for j < len(v) && v[j] != '"' {
					if v[j] == '\\' {
						j++
					}
					j++
				}
				val = v[1:min(j, len(v))]
				v = v[min(j+1, len(v)):]
			} else {
				j := 0
				for j < len(v) && v[j] != ',' && v[j] != ' ' && v[j] != '\t' {
					j++
				}
				val, v = v[:j], v[j:]
			}
		}
		// Skip whatever follows up to the next comma (garbage after a value).
		if k := bytes.IndexByte(v, ','); k >= 0 {
			v = v[k:]
		} else {
			v = nil
		}
		d.apply(name, val, hasVal)
	}
}

func (d *directives) apply(name, val []byte, hasVal bool) {
	switch len(name) {
	case 6:
		if bytes.EqualFold(name, []byte("public")) {
			d.flags |= ccPublic
		}
	case 7:
		switch {
		case bytes.EqualFold(name, []byte("max-age")):
			d.delta(&d.maxAge, val, hasVal, true)
		case bytes.EqualFold(name, []byte("private")):
			d.fields(&d.privateFields, ccPrivate, val, hasVal)
		}
	case 8:
		switch {
		case bytes.EqualFold(name, []byte("no-cache")):
			d.fields(&d.noCacheFld, ccNoCache, val, hasVal)
		case bytes.EqualFold(name, []byte("s-maxage")):
			d.delta(&d.sMaxAge, val, hasVal, true)
		case bytes.EqualFold(name, []byte("no-store")):
			d.flags |= ccNoStore
		}
	case 9:
		switch {
		case bytes.EqualFold(name, []byte("max-stale")):
			if !hasVal {
				d.flags |= ccMaxStaleAny
			} else {
				d.delta(&d.maxStale, val, hasVal, false)
			}
		case bytes.EqualFold(name, []byte("min-fresh")):
			d.delta(&d.minFresh, val, hasVal, false)
		}
	case 14:
		switch {
		case bytes.EqualFold(name, []byte("only-if-cached")):
			d.flags |= ccOnlyIfCached
		case bytes.EqualFold(name, []byte("stale-if-error")):
			d.delta(&d.sie, val, hasVal, false)
		}
	case 15:
		switch {
		case bytes.EqualFold(name, []byte("must-revalidate")):
			d.flags |= ccMustRevalidate
		case bytes.EqualFold(name, []byte("must-understand")):
			d.flags |= ccMustUnderstand
		}
	case 16:
		if bytes.EqualFold(name, []byte("proxy-revalidate")) {
			d.flags |= ccProxyRevalidate
		}
	case 22:
		if bytes.EqualFold(name, []byte("stale-while-revalidate")) {
			d.delta(&d.swr, val, hasVal, false)
		}
	}
}

// delta stores a delta-seconds directive value. For max-age and s-maxage
// (strict), a missing, invalid or conflicting value sets ccBadAge: RFC 9111
// section 4.2.1 lets a cache consider such a response stale, the only safe
// reading. For other directives a bad value is ignored.
func (d *directives) delta(dst *int64, val []byte, hasVal, strict bool) {
	n, ok := parseDelta(val)
	if !hasVal || !ok {
		if strict {
			d.flags |= ccBadAge
		}
		return
	}
	if *dst >= 0 && *dst != n && strict {
		d.flags |= ccBadAge
	}
	if *dst < 0 {
		*dst = n
	}
}

// fields records a private / no-cache directive: unqualified sets flag, a
// field-name list is appended to dst. An empty list reads as unqualified,
// the stricter meaning.
func (d *directives) fields(dst *[]byte, flag uint16, val []byte, hasVal bool) {
	if !hasVal || len(bytes.Trim(val, " \t,")) == 0 {
		d.flags |= flag
		return
	}
	if len(*dst) > 0 {
		*dst = append(*dst, ',')
	}
	*dst = append(*dst, val...)
}

// parseDelta parses delta-seconds: one or more digits, clamped to 2^31.
func parseDelta(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < maxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, maxDelta), true
}

// inList reports whether the comma-separated list contains name
// (case-insensitive).
func inList(list, name []byte) bool {
	for len(list) > 0 {
		var e []byte
		if i := bytes.IndexByte(list, ','); i >= 0 {
			e, list = list[:i], list[i+1:]
		} else {
			e, list = list, nil
		}
		if bytes.EqualFold(bytes.Trim(e, " \t"), name) {
			return true
		}
	}
	return false
}

func trimLeftOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	return v
}

func trimLeftOWSComma(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == ',') {
		v = v[1:]
	}
	return v
}

// parseHTTPDate parses an HTTP-date in any of the three formats RFC 9110
// section 5.6.7 requires recipients to accept. IMF-fixdate, the common
// one, is parsed without allocating.
func parseHTTPDate(b []byte) (time.Time, bool) {
	if len(b) == 0 {
		return time.Time{}, false
	}
	if t, err := fasthttp.ParseHTTPDate(b); err == nil {
		return t, true
	}
	t, err := http.ParseTime(string(b))
	return t, err == nil
}
