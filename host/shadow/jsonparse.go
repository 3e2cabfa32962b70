package shadow

import (
	"bytes"
	"math/big"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// The JSON differ reads each body into a flat tree of nodes that point back
// into the body (no maps, no interface values, numbers kept as their text).
// Its own parser rather than encoding/json because it must keep numbers
// exact (json.Number would, at one allocation each), stop expanding at
// MaxDepth yet still validate what lies deeper without recursion, and cost
// little enough to run on a share of live traffic: 2 KB in ~4 µs with no
// allocation, against ~25 µs and 227 allocations for encoding/json
// (BenchmarkParse). It accepts exactly what json.Valid accepts (checked by
// FuzzDiff), nesting depth aside.

type vkind uint8

const (
	vNull vkind = iota
	vFalse
	vTrue
	vNumber
	vString
	vArray
	vObject
	vDeep // a container at MaxDepth: kept as its text, not expanded
)

const (
	fKeyArena uint8 = 1 << iota // the member key had escapes: decoded into the arena
	fStrArena                   // the string had escapes: decoded into the arena
)

// node is one JSON value. Children of a container are contiguous in
// parser.nodes, object members sorted by key (key order is not compared).
type node struct {
	kind       vkind
	flags      uint8
	start, end int32 // the value's text in the body
	kOff, kLen int32 // member key, in the body or the arena
	a, b       int32 // container: first child and count; string: text in the body or arena
}

// parser holds one parsed body; it is reused across Diffs (via the differ pool).
type parser struct {
	b        []byte
	i        int
	nodes    []node // finished nodes; the root is the last
	stack    []node // values whose container is not closed yet
	arena    []byte // decoded keys and strings that held escapes
	brackets []byte // skip's stack of open containers
}

// parse reads b as one JSON value; false if b is not JSON.
func (p *parser) parse(b []byte) bool {
	p.b, p.i = b, 0
	p.nodes, p.stack, p.arena = p.nodes[:0], p.stack[:0], p.arena[:0]
	if len(b) > MaxBodySize {
		return false // offsets are int32; callers never get here
	}
	if !p.value(0) {
		return false
	}
	p.ws()
	if p.i != len(b) {
		return false
	}
	p.nodes = append(p.nodes, p.stack[0])
	return true
}

func (p *parser) root() *node { return &p.nodes[len(p.nodes)-1] }

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses one value at depth and pushes its node on the stack.
func (p *parser) value(depth int) bool {
	p.ws()
	if p.i >= len(p.b) {
		return false
	}
	start := p.i
	n := node{start: int32(start)}
	switch c := p.b[p.i]; c {
	case '{', '[':
		if depth >= MaxDepth {
			if !p.skip() {
				return false
			}
			n.kind = vDeep
			break
		}
		return p.container(depth, c)
	case '"':
		end, esc, ok := scanString(p.b, p.i)
		if !ok {
			return false
		}
		p.i = end
		n.kind = vString
		n.a, n.b = int32(start+1), int32(end-start-2)
		if esc {
			off := len(p.arena)
			p.arena = decodeString(p.arena, p.b[start+1:end-1])
			n.a, n.b, n.flags = int32(off), int32(len(p.arena)-off), fStrArena
		}
	case 't', 'f', 'n':
		k, ok := p.literal()
		if !ok {
			return false
		}
		n.kind = k
	default:
		if !p.number() {
			return false
		}
		n.kind = vNumber
	}
	n.end = int32(p.i)
	p.stack = append(p.stack, n)
	return true
}

func (p *parser) literal() (vkind, bool) {
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return vTrue, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return vFalse, true
	case len(rest) >= 4 && string(rest[:4]) == "null":
		p.i += 4
		return vNull, true
	}
	return 0, false
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() bool {
	b, i := p.b, p.i
	digits := func() bool {
		s := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > s
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	p.i = i
	return true
}

// container parses an object or array at p.i; its children move from the
// stack to nodes when it closes, so they end up contiguous.
func (p *parser) container(depth int, open byte) bool {
	start := p.i
	p.i++
	base := len(p.stack)
	kind, closer := vArray, byte(']')
	if open == '{' {
		kind, closer = vObject, '}'
	}
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == closer {
		p.i++
	} else {
		for {
			var kOff, kLen int32
			var kFlag uint8
			if kind == vObject {
				p.ws()
				if p.i >= len(p.b) || p.b[p.i] != '"' {
					return false
				}
				ks := p.i
				end, esc, ok := scanString(p.b, ks)
				if !ok {
					return false
				}
				p.i = end
				kOff, kLen = int32(ks+1), int32(end-ks-2)
				if esc {
					off := len(p.arena)
					p.arena = decodeString(p.arena, p.b[ks+1:end-1])
					kOff, kLen, kFlag = int32(off), int32(len(p.arena)-off), fKeyArena
				}
				p.ws()
				if p.i >= len(p.b) || p.b[p.i] != ':' {
					return false
				}
				p.i++
			}
			if !p.value(depth + 1) {
				return false
			}
			if kind == vObject {
				top := &p.stack[len(p.stack)-1]
				top.kOff, top.kLen, top.flags = kOff, kLen, top.flags|kFlag
			}
			p.ws()
			if p.i >= len(p.b) {
				return false
			}
			if p.b[p.i] == ',' {
				p.i++
				continue
			}
			if p.b[p.i] != closer {
				return false
			}
			p.i++
			break
		}
	}
	first := len(p.nodes)
	p.nodes = append(p.nodes, p.stack[base:]...)
	p.stack = p.stack[:base]
	n := len(p.nodes) - first
	if kind == vObject && n > 1 {
		n = p.sortMembers(first, n)
	}
	p.stack = append(p.stack, node{kind: kind, start: int32(start), end: int32(p.i), a: int32(first), b: int32(n)})
	return true
}

// sortMembers sorts an object's members by key and keeps the last of equal
// keys (as encoding/json does); it returns the count left.
func (p *parser) sortMembers(first, n int) int {
	kids := p.nodes[first : first+n]
	slices.SortStableFunc(kids, func(x, y node) int { return bytes.Compare(p.key(&x), p.key(&y)) })
	w := 0
	for r := range kids {
		if r+1 < len(kids) && bytes.Equal(p.key(&kids[r]), p.key(&kids[r+1])) {
			continue
		}
		kids[w] = kids[r]
		w++
	}
	return w
}

func (p *parser) key(n *node) []byte {
	if n.flags&fKeyArena != 0 {
		return p.arena[n.kOff : n.kOff+n.kLen]
	}
	return p.b[n.kOff : n.kOff+n.kLen]
}

func (p *parser) str(n *node) []byte {
	if n.flags&fStrArena != 0 {
		return p.arena[n.a : n.a+n.b]
	}
	return p.b[n.a : n.a+n.b]
}

func (p *parser) raw(n *node) []byte { return p.b[n.start:n.end] }

// skip validates one container at p.i without building nodes: it is past
// MaxDepth. It keeps its own stack of open brackets, so no nesting depth
// grows the Go stack.
func (p *parser) skip() bool {
	st := p.brackets[:0]
	defer func() { p.brackets = st[:0] }()
	member := func() bool { // a key and its colon
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return false
		}
		end, _, ok := scanString(p.b, p.i)
		if !ok {
			return false
		}
		p.i = end
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		return true
	}
	for {
		// A value is due.
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch c := p.b[p.i]; c {
		case '{', '[':
			p.i++
			p.ws()
			if p.i < len(p.b) && p.b[p.i] == c+2 { // '{'+2 == '}', '['+2 == ']'
				p.i++
				break
			}
			st = append(st, c)
			if c == '{' && !member() {
				return false
			}
			continue
		case '"':
			end, _, ok := scanString(p.b, p.i)
			if !ok {
				return false
			}
			p.i = end
		case 't', 'f', 'n':
			if _, ok := p.literal(); !ok {
				return false
			}
		default:
			if !p.number() {
				return false
			}
		}
		// A value ended: close containers, or go on to the next item.
		for {
			if len(st) == 0 {
				return true
			}
			p.ws()
			if p.i >= len(p.b) {
				return false
			}
			top := st[len(st)-1]
			if p.b[p.i] == top+2 {
				p.i++
				st = st[:len(st)-1]
				continue
			}
			if p.b[p.i] != ',' {
				return false
			}
			p.i++
			if top == '{' && !member() {
				return false
			}
			break
		}
	}
}

// scanString scans the JSON string that opens at s[i]; it returns the offset
// after the closing quote and whether the string holds escapes.
func scanString[S ~string | ~[]byte](s S, i int) (end int, esc, ok bool) {
	i++
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return i + 1, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(s) {
				return 0, false, false
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) {
					return 0, false, false
				}
				for k := i + 2; k < i+6; k++ {
					if unhex(s[k]) < 0 {
						return 0, false, false
					}
				}
				i += 6
			default:
				return 0, false, false
			}
		case c < ' ':
			return 0, false, false
		default:
			i++
		}
	}
	return 0, false, false
}

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// decodeString appends the text of a scanned string (its content between
// the quotes) with escapes resolved; bad surrogates become U+FFFD, as in
// encoding/json.
func decodeString(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		e := raw[i+1]
		i += 2
		switch e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i : i+4])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					r2 = utf16.DecodeRune(r, hex4(raw[i+2:i+6]))
				}
				if r2 != utf8.RuneError {
					i += 6
				}
				r = r2
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, e)
		}
	}
	return dst
}

// numEqual compares two JSON numbers by value, exactly: 1, 1.0, 10e-1 and
// 0.1e1 are equal, 9007199254740993 and 9007199254740992 are not.
func numEqual(x, y []byte) bool {
	if bytes.Equal(x, y) {
		return true
	}
	a, b := readNum(x), readNum(y)
	if a.zero || b.zero {
		return a.zero && b.zero // -0 == 0
	}
	if a.neg != b.neg || a.sigLen() != b.sigLen() {
		return false
	}
	for k := range a.sigLen() {
		if a.digit(k) != b.digit(k) {
			return false
		}
	}
	if a.bigExp == nil && b.bigExp == nil {
		return a.exp == b.exp
	}
	if len(a.bigExp) > maxExpDigits || len(b.bigExp) > maxExpDigits {
		// Converting such exponents costs quadratic time: compared as
		// written (no upstream sends these numbers to mean anything).
		return a.expNeg == b.expNeg && bytes.Equal(a.bigExp, b.bigExp) && a.exp == b.exp
	}
	return a.exponent().Cmp(b.exponent()) == 0
}

// maxExpDigits bounds the exponents numEqual converts to compare by value.
const maxExpDigits = 400

// num is a number as 0.D × 10^exp: D its significant digits (no leading or
// trailing zeros), read in place from the integer and fraction parts.
type num struct {
	neg, zero   bool
	intp, frac  []byte
	first, last int // D = (intp ++ frac)[first:last]
	exp         int64
	bigExp      []byte // the exponent's digits, when too long for int64
	expNeg      bool
}

func readNum(s []byte) num {
	var n num
	if s[0] == '-' {
		n.neg = true
		s = s[1:]
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n.intp, s = s[:i], s[i:]
	if len(s) > 0 && s[0] == '.' {
		i = 1
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		n.frac, s = s[1:i], s[i:]
	}
	var e []byte
	if len(s) > 0 { // e or E
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			n.expNeg = s[0] == '-'
			s = s[1:]
		}
		for len(s) > 1 && s[0] == '0' {
			s = s[1:]
		}
		e = s
	}
	total := len(n.intp) + len(n.frac)
	for n.first < total && n.at(n.first) == '0' {
		n.first++
	}
	if n.first == total {
		n.zero = true
		return n
	}
	n.last = total
	for n.at(n.last-1) == '0' {
		n.last--
	}
	// The point sits after intp; D starts first digits in.
	shift := int64(len(n.intp) - n.first)
	if len(e) > 18 {
		n.bigExp = e
		n.exp = shift
		return n
	}
	var v int64
	for _, c := range e {
		v = v*10 + int64(c-'0')
	}
	if n.expNeg {
		v = -v
	}
	n.exp = v + shift
	return n
}

func (n *num) at(k int) byte {
	if k < len(n.intp) {
		return n.intp[k]
	}
	return n.frac[k-len(n.intp)]
}

func (n *num) sigLen() int      { return n.last - n.first }
func (n *num) digit(k int) byte { return n.at(n.first + k) }

// exponent is exp as a big.Int, for exponents of more than 18 digits.
func (n *num) exponent() *big.Int {
	v := big.NewInt(n.exp)
	if n.bigExp != nil {
		e, _ := new(big.Int).SetString(string(n.bigExp), 10)
		if n.expNeg {
			e.Neg(e)
		}
		v.Add(v, e) // exp holds only the shift here
	}
	return v
}
