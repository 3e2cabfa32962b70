package shadow

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// The ignore-path syntax, the same one Difference paths are written in (minus
// their leading "body"), so a path read in a diff can be pasted into ignore:
//
//	data.updated_at      a key, then a key
//	items[3].id          an index
//	items[*].id          [*]: any index
//	meta.*               *: any key or any index, one segment
//	**.request_id        **: any number of segments (zero included)
//	data["a.b"]          a quoted key (JSON string syntax) for keys that
//	                     hold . [ ] " \ * or white space
//	[0].id               a path may start with an index (root array)
//
// Paths are anchored at the root of the body.

type segKind uint8

const (
	segKey      segKind = iota // a literal key
	segIndex                   // a literal index
	segAny                     // *: any key or index
	segAnyIndex                // [*]: any index
	segDeep                    // **: zero or more segments
)

type segment struct {
	kind  segKind
	key   string
	index int
}

type ignorePath []segment

// maxIndexDigits bounds an index so that it fits an int everywhere.
const maxIndexDigits = 9

// PathError is an ignore path that does not parse.
type PathError struct {
	Path   string `json:"path"`
	Offset int    `json:"offset"` // byte offset in Path where the problem is
	Reason string `json:"reason"`
}

func (e *PathError) Error() string {
	return fmt.Sprintf("ignore path %q: at offset %d: %s", e.Path, e.Offset, e.Reason)
}

// bareKey reports whether c may appear in a key written without quotes.
func bareKey(c byte) bool {
	switch c {
	case '.', '[', ']', '"', '\\', '*', 0x7f:
		return false
	}
	return c > ' '
}

func parsePath(s string) (ignorePath, error) {
	fail := func(off int, format string, args ...any) (ignorePath, error) {
		return nil, &PathError{Path: s, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail(0, "empty path")
	}
	var p ignorePath
	i := 0
	for i < len(s) {
		// Where a segment starts: at the start, after '.', or a bracket.
		if len(p) > 0 {
			switch s[i] {
			case '.':
				i++
				if i == len(s) {
					return fail(i, "path ends with '.'")
				}
				if s[i] == '[' || s[i] == '.' {
					return fail(i, "want a key after '.', found %q", s[i])
				}
			case '[':
			default:
				return fail(i, "want '.' or '[' after a segment, found %q", s[i])
			}
		}
		if len(p) >= MaxDepth {
			return fail(i, "more than %d segments: bodies are compared only %d levels deep", MaxDepth, MaxDepth)
		}
		if s[i] == '[' {
			seg, n, err := parseBracket(s, i)
			if err != nil {
				return nil, err
			}
			p, i = append(p, seg), n
			continue
		}
		start := i
		for i < len(s) && (bareKey(s[i]) || s[i] == '*') {
			i++
		}
		word := s[start:i]
		switch {
		case word == "":
			return fail(start, "unexpected %q: a key is written bare or as [\"...\"]", s[start])
		case word == "*":
			p = append(p, segment{kind: segAny})
		case word == "**":
			if len(p) > 0 && p[len(p)-1].kind == segDeep {
				return fail(start, "** after **")
			}
			p = append(p, segment{kind: segDeep})
		default:
			for j := 0; j < len(word); j++ {
				if word[j] == '*' {
					return fail(start+j, "* stands alone in a segment; quote a key that holds it: [%q]", word)
				}
			}
			p = append(p, segment{kind: segKey, key: word})
		}
	}
	deep := true
	for _, seg := range p {
		deep = deep && seg.kind == segDeep
	}
	if deep {
		return fail(0, "** alone would ignore the whole body (use body: none)")
	}
	return p, nil
}

// parseBracket parses the bracket at s[i] ('['), returning the segment and
// the offset after ']'.
func parseBracket(s string, i int) (segment, int, error) {
	fail := func(off int, format string, args ...any) (segment, int, error) {
		return segment{}, 0, &PathError{Path: s, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	i++ // '['
	if i == len(s) {
		return fail(i, "unclosed '['")
	}
	var seg segment
	switch c := s[i]; {
	case c == '*':
		seg.kind = segAnyIndex
		i++
	case c >= '0' && c <= '9':
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		digits := s[start:i]
		if len(digits) > 1 && digits[0] == '0' {
			return fail(start, "index %s has a leading zero", digits)
		}
		if len(digits) > maxIndexDigits {
			return fail(start, "index %s is too large", digits)
		}
		n, _ := strconv.Atoi(digits) // digits only, at most 9: cannot fail
		seg = segment{kind: segIndex, index: n}
	case c == '"':
		end, esc, ok := scanString(s, i)
		if !ok {
			return fail(i, "bad quoted key (JSON string syntax, closed by \")")
		}
		raw := s[i+1 : end-1]
		key := raw
		if esc {
			key = string(decodeString(nil, []byte(raw)))
		}
		seg = segment{kind: segKey, key: key}
		i = end
	default:
		return fail(i, "unexpected %q in [...]: want an index, * or a quoted key", c)
	}
	if i == len(s) || s[i] != ']' {
		return fail(i, "want ']'")
	}
	return seg, i + 1, nil
}

// String writes p back in the syntax parsePath reads.
func (p ignorePath) String() string {
	var b []byte
	for i, seg := range p {
		switch seg.kind {
		case segKey:
			b = appendKey(b, []byte(seg.key), i == 0)
		case segIndex:
			b = appendIndex(b, seg.index)
		case segAny, segDeep:
			if i > 0 {
				b = append(b, '.')
			}
			b = append(b, '*')
			if seg.kind == segDeep {
				b = append(b, '*')
			}
		case segAnyIndex:
			b = append(b, "[*]"...)
		}
	}
	return string(b)
}

// appendKey appends a key segment: .key when it can be written bare (or
// key alone first in a path), else ["key"].
func appendKey(b, key []byte, first bool) []byte {
	bare := len(key) > 0 && utf8.Valid(key)
	for _, c := range key {
		if !bareKey(c) {
			bare = false
			break
		}
	}
	if bare {
		if !first {
			b = append(b, '.')
		}
		return append(b, key...)
	}
	b = append(b, '[')
	b = appendQuoted(b, key)
	return append(b, ']')
}

func appendIndex(b []byte, i int) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, ']')
}

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD:
// a path is for reading, and the result must parse back.
func appendQuoted(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < ' ' || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		b = utf8.AppendRune(b, r) // RuneError for a bad byte
		i += n
	}
	return append(b, '"')
}
