package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a config file, at the place an operator must edit.
type Error struct {
	File string
	// Line and Col are 1-based. Parse always sets both; only Load's "cannot
	// read config" has neither, and other packages may leave them zero.
	Line, Col int
	Msg       string
}

// Error formats the problem as FILE:LINE:COL: message, the form editors and
// CI annotators jump to. Unknown parts (no file, no line, no column) are left out.
func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		if e.Col > 0 {
			b.WriteString(strconv.Itoa(e.Col))
			b.WriteByte(':')
		}
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one config, sorted by position, so that an
// operator fixes them all in one round instead of one per reload.
type ErrorList []Error

// Error joins the problems one per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as separate errors (for errors.As and for
// callers that report them one by one).
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// Add appends a problem at position p of file. Other packages (the router's
// compiler) use it to report errors in the same form as the loader.
func (l *ErrorList) Add(p Pos, file, format string, args ...any) {
	*l = append(*l, Error{File: file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}

// Sort orders the problems by line and column and drops exact repeats (a value
// reached twice through a YAML alias reports its problem once).
func (l *ErrorList) Sort() {
	slices.SortStableFunc(*l, func(a, b Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	*l = slices.Compact(*l)
}

// Err returns the sorted list as an error, or nil when it is empty (never a
// non-nil interface holding an empty list).
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// Of returns the position of key's value, or fallback when the key was not
// written (or the config was not decoded from YAML).
func (p Positions) Of(key string, fallback Pos) Pos {
	if pos, ok := p[key]; ok {
		return pos
	}
	return fallback
}
