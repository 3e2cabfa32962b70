package config

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file gives a position to what yaml.v3 reports without one. Its
// reader errors (bad UTF-8, control characters) have no line and its syntax
// errors no column, so the text is checked here before yaml.v3 sees it and
// the column of a syntax error is found on the line yaml.v3 names.
// Positions count as yaml.v3 counts those of nodes: lines end at CR LF, CR,
// LF, NEL, LS or PS, and columns count characters, not bytes.

// checkText returns the offset of the first reason data cannot be a config
// file, and that reason; the offset is -1 when there is none.
func checkText(data []byte) (int, string) {
	for i := 0; i < len(data) && i < maxFileBytes; {
		r, w := rune(data[i]), 1
		if r >= utf8.RuneSelf {
			r, w = utf8.DecodeRune(data[i:])
		}
		switch {
		case r == utf8.RuneError && w == 1:
			return i, fmt.Sprintf("config is not UTF-8 text: invalid byte %#02x", data[i])
		case r == 0:
			return i, "character U+0000 is not allowed in YAML (is this a text file?)"
		case !yamlChar(r):
			return i, fmt.Sprintf("character %U is not allowed in YAML", r)
		}
		i += w
	}
	if len(data) > maxFileBytes {
		return maxFileBytes, fmt.Sprintf("config too large: more than %d bytes (%d MiB)", maxFileBytes, maxFileBytes>>20)
	}
	return -1, ""
}

// yamlChar reports whether YAML allows r in a file: yaml.v3 rejects the
// others without saying where they are.
func yamlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || 0x20 <= r && r <= 0x7e || r == 0x85 ||
		0xa0 <= r && r <= 0xd7ff || 0xe000 <= r && r <= 0xfffd || 0x10000 <= r && r <= 0x10ffff
}

// lineBreak returns the length of the line break at data[i], or 0.
func lineBreak(data []byte, i int) int {
	switch c := data[i]; {
	case c == '\r' && i+1 < len(data) && data[i+1] == '\n':
		return 2
	case c == '\r' || c == '\n':
		return 1
	case c == 0xc2 && i+1 < len(data) && data[i+1] == 0x85: // NEL
		return 2
	case c == 0xe2 && i+2 < len(data) && data[i+1] == 0x80 && (data[i+2] == 0xa8 || data[i+2] == 0xa9): // LS, PS
		return 3
	}
	return 0
}

// posAt returns the position of byte offset off of data.
func posAt(data []byte, off int) Pos {
	p := Pos{Line: 1, Col: 1}
	for i := 0; i < off && i < len(data); {
		if w := lineBreak(data, i); w > 0 {
			p.Line, p.Col = p.Line+1, 1
			i += w
			continue
		}
		_, w := utf8.DecodeRune(data[i:])
		p.Col++
		i += w
	}
	return p
}

// lineAt returns the offsets of the start and the end (its break excluded)
// of line n of data; past the last line, both are len(data).
func lineAt(data []byte, n int) (start, end int) {
	for line := 1; start < len(data) && line < n; {
		if w := lineBreak(data, start); w > 0 {
			start += w
			line++
		} else {
			start++ // a break never starts inside a UTF-8 sequence
		}
	}
	end = start
	for end < len(data) && lineBreak(data, end) == 0 {
		end++
	}
	return start, end
}

var (
	yamlMsg       = regexp.MustCompile(`(?s)^yaml: (?:line (\d+): )?(.*)$`)
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.+)' referenced$`)
)

// parserProblems are the problems yaml.v3's parser (parserc.go, and the
// event checks of decode.go) reports. Their line numbers count from 0, its
// scanner's from 1; both leave out a line 0.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
	"did not find expected <document start>": true,
	"did not find expected node content":     true,
	"found undefined tag handle":             true,
	"did not find expected key":              true,
	"did not find expected '-' indicator":    true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
}

// syntaxError turns an error of yaml.v3 into the problem it names and its
// position in data. yaml.v3 writes "yaml: line N: problem" or "yaml:
// problem"; the line is that of the problem or of the construct it
// interrupts (an unterminated string, a flow mapping), and the column is
// found on that line, at the character the problem is about when it can
// tell, else at the first one that is not indentation.
func syntaxError(data []byte, err error) (Pos, string) {
	problem, line := err.Error(), 0
	if m := yamlMsg.FindStringSubmatch(problem); m != nil {
		line, _ = strconv.Atoi(m[1])
		problem = m[2]
	}
	if m := unknownAnchor.FindStringSubmatch(problem); m != nil {
		if i := aliasAt(data, m[1]); i >= 0 {
			return posAt(data, i), problem
		}
	}
	if line > 0 && (parserProblems[problem] || strings.HasPrefix(problem, "expected ")) {
		line++
	}
	start, end := lineAt(data, max(line, 1))
	text := data[start:end]
	i := -1
	switch {
	case strings.Contains(problem, "tab character"):
		// Reported at the line of the scalar the tab interrupts: the tab
		// indents this line or a later one.
		if j := indentTab(data[start:]); j >= 0 {
			return posAt(data, start+j), problem
		}
	case problem == "found character that cannot start any token":
		if i = indentTab(text); i < 0 {
			i = bytes.IndexAny(text, "@`")
		}
	case strings.HasPrefix(problem, "exceeded max depth"):
		i = bytes.IndexAny(text, "[{")
	}
	if i < 0 {
		i = len(text) - len(bytes.TrimLeft(text, " \t"))
		if i == len(text) {
			i = 0
		}
	}
	return posAt(data, start+i), problem
}

// indentTab returns the offset of the first tab in the indentation of a
// line of data, or -1.
func indentTab(data []byte) int {
	bol := true
	for i := 0; i < len(data); i++ {
		switch w := lineBreak(data, i); {
		case w > 0:
			bol = true
			i += w - 1
		case bol && data[i] == '\t':
			return i
		case data[i] != ' ':
			bol = false
		}
	}
	return -1
}

// aliasAt returns the offset of the first alias *name in data, or -1.
func aliasAt(data []byte, name string) int {
	alias := []byte("*" + name)
	for i := 0; ; {
		j := bytes.Index(data[i:], alias)
		if j < 0 {
			return -1
		}
		i += j + len(alias)
		if i == len(data) || !isAnchorChar(data[i]) {
			return i - len(alias)
		}
	}
}

// isAnchorChar reports whether c may be part of an anchor name (as yaml.v3 scans them).
func isAnchorChar(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'z' || c == '_' || c == '-'
}

// clip shortens a message that quotes a huge value, keeping its start and
// its end, which says what is wrong.
func clip(msg string) string {
	const limit = 1 << 10
	if len(msg) <= limit {
		return msg
	}
	head, tail := limit*3/4, len(msg)-limit/4
	for head > 0 && !utf8.RuneStart(msg[head]) {
		head--
	}
	for tail < len(msg) && !utf8.RuneStart(msg[tail]) {
		tail++
	}
	return fmt.Sprintf("%s … (%d bytes left out) … %s", msg[:head], tail-head, msg[tail:])
}
