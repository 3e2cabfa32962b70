package httpsyntax

import (
	"bytes"
	"errors"
)

// EscapedSlashes says what CleanPath does with an encoded slash or
// backslash (%2F, %5C) and with a raw backslash: the bytes that one server
// reads as a segment separator and the next as data.
type EscapedSlashes uint8

const (
	// RejectEscapedSlashes refuses the path (the gateway answers 400).
	RejectEscapedSlashes EscapedSlashes = iota
	// UnescapeSlashes makes each of them a "/": the path is matched and
	// forwarded with real separators.
	UnescapeSlashes
	// KeepEscapedSlashes keeps them as %2F and %5C: data inside a segment,
	// matched and forwarded encoded. An upstream that decodes them into
	// separators then sees another path than the route matched.
	KeepEscapedSlashes
)

// Errors of CleanPath.
var (
	ErrPathNotAbsolute  = errors.New("path does not start with /")
	ErrPathBadEscape    = errors.New("malformed percent-encoding in path")
	ErrPathEscapedSlash = errors.New("encoded slash or backslash in path")
	ErrPathNUL          = errors.New("encoded NUL in path")
	ErrPathControl      = errors.New("control character in path")
	ErrPathDotParams    = errors.New(`dot segment with parameters ("..;") in path`)
)

const upperHex = "0123456789ABCDEF"

// CleanPath appends to dst the canonical form of the request path raw
// (the request-target's path, still percent-encoded): the one form the
// router matches and the upstream receives, so that the two can never
// mean different resources.
//
// The canonical form is RFC 3986's normalization (6.2.2): percent-encoded
// unreserved characters are decoded, every other encoding is kept with
// upper-case hex, bytes not allowed raw in a path (space, quotes, non-ASCII
// text) are encoded, "." and ".." segments are resolved (".." never climbs
// above the root) and empty segments are merged. Encoded and raw
// backslashes and encoded slashes follow the slashes policy. A path that
// cannot be read one way only is an error: broken percent-encoding, an
// encoded NUL, a control character, or a dot segment carrying parameters
// ("/..;/admin", which servlet containers resolve as "..").
//
// The result is canonical: CleanPath of it is itself.
func CleanPath(dst, raw []byte, slashes EscapedSlashes) ([]byte, error) {
	base := len(dst)
	if len(raw) == 0 {
		return append(dst, '/'), nil
	}
	dst = append(dst, '/')
	seg := len(dst) // where the current segment starts in dst
	i := 0
	switch {
	case raw[0] == '/':
		i = 1
	case raw[0] == '\\' || raw[0] == '%':
		// A leading separator in disguise: the loop applies the policy
		// to it; it cannot be data in the first segment of an absolute path.
		if slashes == KeepEscapedSlashes || !leadingSlash(raw) {
			return dst[:base], ErrPathNotAbsolute
		}
	default:
		return dst[:base], ErrPathNotAbsolute
	}
	var err error
	for i < len(raw) {
		c := raw[i]
		i++
		sep := false
		switch {
		case c == '/':
			sep = true
		case class[c]&classPChar != 0:
			dst = append(dst, c)
		case c == '%':
			if i+2 > len(raw) {
				return dst[:base], ErrPathBadEscape
			}
			hi, lo := unhex(raw[i]), unhex(raw[i+1])
			if hi < 0 || lo < 0 {
				return dst[:base], ErrPathBadEscape
			}
			i += 2
			v := byte(hi<<4 | lo)
			switch {
			case class[v]&classUnreserved != 0:
				dst = append(dst, v)
			case v == '/' || v == '\\':
				if sep, dst, err = escapedSlash(dst, v, slashes); err != nil {
					return dst[:base], err
				}
			case v == 0:
				return dst[:base], ErrPathNUL
			default:
				dst = append(dst, '%', upperHex[v>>4], upperHex[v&15])
			}
		case c == '\\':
			if sep, dst, err = escapedSlash(dst, c, slashes); err != nil {
				return dst[:base], err
			}
		case c < 0x20 || c == 0x7f:
			return dst[:base], ErrPathControl
		default: // space, quotes, brackets, non-ASCII text: encoded
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
		if sep {
			if dst, seg, err = endSegment(dst, base, seg, true); err != nil {
				return dst[:base], err
			}
		}
	}
	if dst, _, err = endSegment(dst, base, seg, false); err != nil {
		return dst[:base], err
	}
	return dst, nil
}

// leadingSlash reports whether raw starts with a backslash or an encoded
// slash or backslash.
func leadingSlash(raw []byte) bool {
	if raw[0] == '\\' {
		return true
	}
	if len(raw) < 3 || raw[0] != '%' {
		return false
	}
	hi, lo := unhex(raw[1]), unhex(raw[2])
	return hi >= 0 && lo >= 0 && (hi<<4|lo == '/' || hi<<4|lo == '\\')
}

// escapedSlash applies the policy to an encoded slash or backslash, or a
// raw backslash: it reports whether it separates segments.
func escapedSlash(dst []byte, v byte, slashes EscapedSlashes) (bool, []byte, error) {
	switch slashes {
	case UnescapeSlashes:
		return true, dst, nil
	case KeepEscapedSlashes:
		return false, append(dst, '%', upperHex[v>>4], upperHex[v&15]), nil
	}
	return false, dst, ErrPathEscapedSlash
}

// endSegment resolves the segment dst[seg:] that a separator (more true) or
// the end of the path ends: "" is merged with the next, "." dropped, ".."
// drops the one before as well; any other segment is kept, followed by a
// "/" when more follows. It returns where the next segment starts.
func endSegment(dst []byte, base, seg int, more bool) ([]byte, int, error) {
	s := dst[seg:]
	name := s
	if i := bytes.IndexByte(s, ';'); i >= 0 {
		name = s[:i]
	}
	dot := len(name) == 1 && name[0] == '.'
	dotdot := len(name) == 2 && name[0] == '.' && name[1] == '.'
	switch {
	case (dot || dotdot) && len(name) != len(s):
		return dst, seg, ErrPathDotParams
	case len(s) == 0:
		return dst, seg, nil
	case dot:
		return dst[:seg], seg, nil
	case dotdot:
		dst = dst[:seg]
		if prev := bytes.LastIndexByte(dst[base:seg-1], '/'); prev >= 0 {
			dst = dst[:base+prev+1]
		}
		return dst, len(dst), nil
	}
	if more {
		dst = append(dst, '/')
	}
	return dst, len(dst), nil
}

// HasDotSegment reports whether a path has a "." or ".." segment: one that
// CleanPath would resolve, climbing a level up for "..".
func HasDotSegment(path []byte) bool {
	for len(path) > 0 {
		seg := path
		if i := bytes.IndexByte(path, '/'); i >= 0 {
			seg, path = path[:i], path[i+1:]
		} else {
			path = nil
		}
		if len(seg) == 1 && seg[0] == '.' || len(seg) == 2 && seg[0] == '.' && seg[1] == '.' {
			return true
		}
	}
	return false
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
