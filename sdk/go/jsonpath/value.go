// Package jsonpath edits JSON documents by dot paths, for plugins that
// reshape bodies (json-transform, client-shape). It parses into a tree that
// keeps member order and the exact text of numbers and strings, so a
// document comes out as it went in apart from the edits (and insignificant
// whitespace, which is dropped).
//
// A path is a dot-separated list of segments, e.g. "user.address.city":
//
//   - a name selects an object member; on an array it applies to every
//     element ("items.id" is the id of each item);
//   - a number selects an array element ("items.0"), or a member of that
//     name in an object;
//   - "*" selects every member or element ("data.*.secret");
//   - a backslash escapes a dot, a star or a backslash in a name
//     ("headers.x\.y" is the member "x.y").
package jsonpath

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Kind is the type of a JSON value.
type Kind uint8

// The JSON kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// Value is a JSON value. Scalars keep their source text; objects keep
// member order.
type Value struct {
	Kind    Kind
	raw     []byte   // scalars: the JSON text (strings with quotes and escapes)
	Members []Member // Object
	Items   []*Value // Array
}

// Member is one object member.
type Member struct {
	Key   string
	Value *Value
}

// MaxDepth bounds nesting, so hostile input cannot exhaust the stack.
const MaxDepth = 1000

// Parse parses one JSON document (RFC 8259; surrounding whitespace allowed).
// The tree references b for scalar text: b must not change while the tree
// is in use.
func Parse(b []byte) (*Value, error) {
	p := parser{b: b}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, p.errorf("unexpected data after the document")
	}
	return v, nil
}

// NewString is a string value.
func NewString(s string) *Value { return &Value{Kind: String, raw: appendString(nil, s)} }

// NewObject is an empty object.
func NewObject() *Value { return &Value{Kind: Object} }

// FromJSON parses a value given as encoding/json raw text, e.g. from a
// config; the result does not reference raw.
func FromJSON(raw json.RawMessage) (*Value, error) {
	return Parse(append([]byte(nil), raw...))
}

// Str returns the string value of a String (unescaped) and true; "" and false
// for other kinds.
func (v *Value) Str() (string, bool) {
	if v == nil || v.Kind != String {
		return "", false
	}
	return unquote(v.raw), true
}

// Text is the JSON text of a scalar (e.g. `42`, `true`, `"x"`); "" for
// arrays and objects.
func (v *Value) Text() string {
	if v == nil || v.Kind == Array || v.Kind == Object {
		return ""
	}
	return string(v.raw)
}

// Get returns the member key of an object, nil when absent or not an object.
func (v *Value) Get(key string) *Value {
	if v == nil || v.Kind != Object {
		return nil
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			return v.Members[i].Value
		}
	}
	return nil
}

// Set sets member key of an object, replacing it in place if it exists and
// appending it otherwise. It does nothing on other kinds.
func (v *Value) Set(key string, val *Value) {
	if v == nil || v.Kind != Object {
		return
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			v.Members[i].Value = val
			return
		}
	}
	v.Members = append(v.Members, Member{Key: key, Value: val})
}

// Delete removes member key of an object and reports whether it was there.
func (v *Value) Delete(key string) bool {
	if v == nil || v.Kind != Object {
		return false
	}
	for i := range v.Members {
		if v.Members[i].Key == key {
			v.Members = append(v.Members[:i], v.Members[i+1:]...)
			return true
		}
	}
	return false
}

// Clone is a deep copy (scalar text is shared: it is never modified).
func (v *Value) Clone() *Value {
	if v == nil {
		return nil
	}
	c := &Value{Kind: v.Kind, raw: v.raw}
	if v.Members != nil {
		c.Members = make([]Member, len(v.Members))
		for i, m := range v.Members {
			c.Members[i] = Member{Key: m.Key, Value: m.Value.Clone()}
		}
	}
	if v.Items != nil {
		c.Items = make([]*Value, len(v.Items))
		for i, it := range v.Items {
			c.Items[i] = it.Clone()
		}
	}
	return c
}

// AppendJSON appends the compact JSON text of v to dst.
func (v *Value) AppendJSON(dst []byte) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	switch v.Kind {
	case Object:
		dst = append(dst, '{')
		for i, m := range v.Members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, m.Key)
			dst = append(dst, ':')
			dst = m.Value.AppendJSON(dst)
		}
		return append(dst, '}')
	case Array:
		dst = append(dst, '[')
		for i, it := range v.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = it.AppendJSON(dst)
		}
		return append(dst, ']')
	}
	return append(dst, v.raw...)
}

// MarshalJSON implements json.Marshaler.
func (v *Value) MarshalJSON() ([]byte, error) { return v.AppendJSON(nil), nil }

// SyntaxError is a parse error at a byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

// Error implements error: "invalid JSON at byte 5: ...".
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.Offset, e.Msg)
}

type parser struct {
	b []byte
	i int
}

func (p *parser) errorf(format string, args ...any) error {
	return &SyntaxError{Offset: p.i, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (*Value, error) {
	if depth > MaxDepth {
		return nil, p.errorf("nested deeper than %d", MaxDepth)
	}
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		start := p.i
		if err := p.str(); err != nil {
			return nil, err
		}
		return &Value{Kind: String, raw: p.b[start:p.i:p.i]}, nil
	case c == '-' || c >= '0' && c <= '9':
		start := p.i
		if err := p.number(); err != nil {
			return nil, err
		}
		return &Value{Kind: Number, raw: p.b[start:p.i:p.i]}, nil
	case c == 't':
		return p.literal("true", Bool)
	case c == 'f':
		return p.literal("false", Bool)
	case c == 'n':
		return p.literal("null", Null)
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *parser) literal(lit string, k Kind) (*Value, error) {
	if len(p.b)-p.i < len(lit) || string(p.b[p.i:p.i+len(lit)]) != lit {
		return nil, p.errorf("invalid literal")
	}
	v := &Value{Kind: k, raw: p.b[p.i : p.i+len(lit) : p.i+len(lit)]}
	p.i += len(lit)
	return v, nil
}

func (p *parser) object(depth int) (*Value, error) {
	p.i++ // {
	v := &Value{Kind: Object, Members: []Member{}}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return v, nil
	}
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("want a member name")
		}
		start := p.i
		if err := p.str(); err != nil {
			return nil, err
		}
		key := unquote(p.b[start:p.i])
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("want ':' after a member name")
		}
		p.i++
		p.space()
		val, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.Members = append(v.Members, Member{Key: key, Value: val})
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return v, nil
		default:
			return nil, p.errorf("want ',' or '}' in an object")
		}
	}
}

func (p *parser) array(depth int) (*Value, error) {
	p.i++ // [
	v := &Value{Kind: Array, Items: []*Value{}}
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return v, nil
	}
	for {
		p.space()
		it, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		v.Items = append(v.Items, it)
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return v, nil
		default:
			return nil, p.errorf("want ',' or ']' in an array")
		}
	}
}

// str scans a string starting at its opening quote.
func (p *parser) str() error {
	p.i++ // "
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return nil
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return p.errorf("unexpected end of input in a string")
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) || !isHex4(p.b[p.i+2:p.i+6]) {
					return p.errorf(`invalid \u escape`)
				}
				p.i += 6
			default:
				return p.errorf("invalid escape")
			}
		case c < 0x20:
			return p.errorf("control character in a string")
		default:
			p.i++
		}
	}
	return p.errorf("unexpected end of input in a string")
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// number scans the JSON number grammar.
func (p *parser) number() error {
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return p.errorf("invalid number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if !p.digits() {
			return p.errorf("invalid number: want digits after '.'")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if !p.digits() {
			return p.errorf("invalid number: want digits in the exponent")
		}
	}
	return nil
}

func (p *parser) digits() bool {
	start := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	return p.i > start
}

// unquote decodes a scanned JSON string (with its quotes).
func unquote(raw []byte) string {
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(inner) // scanned already; not reached
	}
	return s
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
			i++
			continue
		case '\n':
			dst = append(dst, '\\', 'n')
			i++
			continue
		case '\r':
			dst = append(dst, '\\', 'r')
			i++
			continue
		case '\t':
			dst = append(dst, '\\', 't')
			i++
			continue
		}
		if c < 0x20 {
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// errPathEmpty is returned for an empty path.
var errPathEmpty = errors.New("empty path")
