// Package config loads the wasmgate configuration: one YAML file decoded
// strictly (unknown keys are errors) into the types of types.go, completed
// from the default struct tags, and validated with every problem reported
// at FILE:LINE:COL.
//
// The YAML text is parsed into a yaml.Node tree and a reflective walker of
// our own decodes the tree. yaml.v3's struct decoding reports type errors by
// line only and records no positions; the walker knows where every value is,
// which the validator and the router's compiler need to point an operator at
// the exact place to fix.
//
// Top-level keys starting with "x-" are ignored: they give YAML anchors a
// home ("x-timeouts: &t {...}", then "timeouts: *t"). "<<" merge keys work.
//
// Scalar values may use ${VAR} and ${VAR:-default}; "$${" writes a literal
// "${". Expansion happens per scalar after parsing, so substituted text can
// never change the YAML structure and positions stay those of the file.
//
// Any input, however large, deep or far from YAML, is rejected with errors
// that all have a line and a column, or accepted whole: the limits below
// stop aliases, nesting and sheer size, and text.go positions what yaml.v3
// reports without a column.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the config file at path.
// The error, when not nil, is an ErrorList.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	defer f.Close()
	// One byte past the limit is enough for Parse to report the file as too
	// large, without reading all of a huge one.
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	return Parse(path, data)
}

// Parse decodes, completes with defaults and validates a config; file names
// it in errors and in Config.File. The error, when not nil, is an ErrorList
// with every problem found (at most maxErrors of them), each at a line and a
// column, and the config is nil.
func Parse(file string, data []byte) (c *Config, err error) {
	defer func() {
		// No panic may cross the package boundary: a reload must reject a
		// config, never take down the gateway serving the old one. A panic
		// is still a bug, which the message asks to report.
		if r := recover(); r != nil {
			c, err = nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: fmt.Sprintf("internal error decoding config (a bug, please report it): %v", r)}}
		}
	}()
	d := newDecoder(file)
	if root := d.parse(data); root != nil {
		c = &Config{File: file}
		d.decode(root, reflect.ValueOf(c).Elem(), "config", "config")
		applyDefaults(reflect.ValueOf(c).Elem())
		if !d.over { // a truncated decode would only validate into noise
			v := &validator{add: d.add, bad: d.bad, elems: d.elems, regex: map[string]compiled{}}
			v.config(c)
		}
	}
	if err := d.err(); err != nil || c == nil {
		return nil, err
	}
	return c, nil
}

// Limits on one config file. Past each of them Parse reports an error at the
// place it was crossed, and returns no config: nothing is dropped silently.
const (
	// maxFileBytes bounds the file: yaml.v3 builds its node tree in memory,
	// up to a hundred times the size of dense input.
	maxFileBytes = 4 << 20
	// maxNodes bounds the YAML nodes (keys and values) decoded, every alias
	// expanded, so that aliases of aliases cannot make a small file expand
	// into a huge config (a "billion laughs").
	maxNodes = 1 << 20
	// maxTextBytes bounds the text of the scalars decoded, aliases and
	// ${VAR}s expanded: aliases of one long string add up to what maxNodes
	// does not count.
	maxTextBytes = 64 << 20
	// maxDepth bounds nesting, aliases followed. Configs need a few levels;
	// a plugin's JSON parser may need a stack as deep as its config.
	maxDepth = 100
	// maxErrors bounds the problems reported: an operator fixes the first
	// ones, and a generated file could otherwise yield a report as large as
	// itself.
	maxErrors = 100
)

type decoder struct {
	file  string
	errs  ErrorList
	seen  map[Error]bool  // errs, so that a value reached twice through aliases counts once
	more  bool            // problems past maxErrors were left out
	bad   map[Pos]bool    // positions of decoding errors: validation stays quiet there
	elems map[*string]Pos // position of each decoded string list element

	budget int          // nodes left to decode (maxNodes)
	text   int          // bytes of scalar text left to decode (maxTextBytes)
	over   bool         // a budget ran out: decoding has stopped
	open   []*yaml.Node // the nodes being decoded, outermost first (maxDepth)
	alias  *yaml.Node   // the outermost alias being expanded, what a budget overrun blames
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, seen: map[Error]bool{}, bad: map[Pos]bool{}, elems: map[*string]Pos{}, budget: maxNodes, text: maxTextBytes}
}

// errorf reports a bad value at n; validation stays quiet at n, where it
// would only see the zero value left behind.
func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.bad[posOf(n)] = true
	d.keyErrorf(n, format, args...)
}

// keyErrorf reports a bad key: validation may still speak at that position
// (a block mapping starts where its first key does).
func (d *decoder) keyErrorf(n *yaml.Node, format string, args ...any) {
	d.add(posOf(n), format, args...)
}

// add records a problem at p, once, and at most maxErrors of them.
func (d *decoder) add(p Pos, format string, args ...any) {
	e := Error{File: d.file, Line: p.Line, Col: p.Col, Msg: clip(fmt.Sprintf(format, args...))}
	switch {
	case d.seen[e]:
	case len(d.errs) == maxErrors:
		d.more = true
	default:
		d.seen[e] = true
		d.errs = append(d.errs, e)
	}
}

// err returns the problems recorded, sorted, or nil.
func (d *decoder) err() error {
	if len(d.errs) == 0 {
		return nil
	}
	d.errs.Sort()
	if d.more {
		last := d.errs[len(d.errs)-1]
		d.errs = append(d.errs, Error{File: d.file, Line: last.Line, Col: last.Col,
			Msg: fmt.Sprintf("too many problems: only the first %d found are reported", maxErrors)})
	}
	return d.errs
}

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// parse returns the root node of the single YAML document in data, or nil
// after recording why there is none.
func (d *decoder) parse(data []byte) *yaml.Node {
	// yaml.v3 skips a byte order mark without counting it in columns.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	if i, msg := checkText(data); i >= 0 {
		d.add(posAt(data, i), "%s", msg)
		return nil
	}
	syntax := func(err error) *yaml.Node {
		p, problem := syntaxError(data, err)
		d.add(p, "YAML syntax error: %s", problem)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc, extra yaml.Node
	err := decodeNode(dec, &doc)
	if err != nil && !errors.Is(err, io.EOF) {
		return syntax(err)
	}
	if err == nil {
		switch err := decodeNode(dec, &extra); {
		case err == nil:
			d.add(posOf(&extra), "a config file holds one YAML document; found a second one")
			return nil
		case !errors.Is(err, io.EOF):
			return syntax(err)
		}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		// An empty file is most likely a half-written one picked up by the
		// watcher: accepting it would drop every route.
		d.add(Pos{Line: 1, Col: 1}, "config is empty (want a mapping with keys %s)", knownKeys(reflect.TypeOf(Config{})))
		return nil
	}
	return doc.Content[0]
}

// decodeNode decodes the next document of dec into n. yaml.v3 panics on some
// inputs it cannot handle ("internal error", "please report"): the input is
// still what is wrong, at a place syntaxError finds.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: the YAML library failed on this input: %v", r)
		}
	}()
	return dec.Decode(n)
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// resolve follows an alias to its value. yaml.v3 makes no alias of an
// alias; enter reports one that is still an alias after a few steps.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

// enter starts decoding node n: it follows n if it is an alias, charges the
// budgets, and opens one level of nesting. It returns the node to decode, to
// be closed with leave(n), or nil after reporting why there is none.
func (d *decoder) enter(n *yaml.Node) *yaml.Node {
	r := resolve(n)
	if n.Kind == yaml.AliasNode && d.alias == nil {
		d.alias = n
	}
	switch {
	case !d.spend(n) || !d.spendText(n, len(r.Value)):
	case r.Kind == yaml.AliasNode:
		d.errorf(n, "alias *%s leads to no value", n.Value)
	case n.Kind == yaml.AliasNode && slices.Contains(d.open, r):
		d.errorf(n, "alias *%s is used inside its own anchor (at %d:%d), which would make it endless", n.Value, r.Line, r.Column)
	case len(d.open) == maxDepth:
		d.errorf(n, "config nested too deeply: more than %d levels", maxDepth)
	default:
		d.open = append(d.open, r)
		return r
	}
	if d.alias == n {
		d.alias = nil
	}
	return nil
}

// leave ends decoding node n, after enter(n) returned a node.
func (d *decoder) leave(n *yaml.Node) {
	d.open = d.open[:len(d.open)-1]
	if d.alias == n {
		d.alias = nil
	}
}

// spend charges node n to the node budget. It reports false once a budget
// has run out, when decoding stops.
func (d *decoder) spend(n *yaml.Node) bool {
	if d.budget--; d.budget >= 0 && !d.over {
		return true
	}
	d.overrun(n, fmt.Sprintf("more than %d keys and values", maxNodes))
	return false
}

// spendText charges size bytes of text at node n, like spend: the text of
// every scalar visited (messages quote it) and what ${VAR}s add to it.
func (d *decoder) spendText(n *yaml.Node, size int) bool {
	if d.text -= size; d.text >= 0 && !d.over {
		return true
	}
	d.overrun(n, fmt.Sprintf("more than %d bytes of text", maxTextBytes))
	return false
}

// overrun reports, once, that the config is too large. It blames the
// outermost alias being expanded, when there is one: the place to fix.
func (d *decoder) overrun(n *yaml.Node, what string) {
	if d.over {
		return
	}
	d.over = true
	msg := "config too large: " + what
	if d.alias != nil {
		n, msg = d.alias, fmt.Sprintf("%s once alias *%s is expanded", msg, d.alias.Value)
	}
	// Past maxErrors too: this one says why decoding stopped.
	d.errs = append(d.errs, Error{File: d.file, Line: n.Line, Col: n.Column, Msg: msg})
}

// describe names what n is in a message, quoting the start of a scalar.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if s := n.Value; len(s) > 64 {
		i := 60
		for !utf8.RuneStart(s[i]) {
			i--
		}
		return strconv.Quote(s[:i]) + "…"
	}
	return strconv.Quote(n.Value)
}

var (
	durationType = reflect.TypeOf(Duration(0))
	byteSizeType = reflect.TypeOf(ByteSize(0))
	posType      = reflect.TypeOf(Pos{})
	configType   = reflect.TypeOf(Config{})
	positionsTyp = reflect.TypeOf(Positions(nil))
	jsonType     = reflect.TypeOf(JSON(nil))
)

// decode stores node n into v. key names the value in messages; noun names
// the struct v is (or the elements of the list v is) in messages.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, key, noun string) {
	r := d.enter(n)
	if r == nil {
		if v.Kind() == reflect.Struct {
			setBook(v, posOf(n), Positions{}) // validation stays quiet where decoding failed
		}
		return
	}
	d.value(r, v, key, noun)
	d.leave(n)
}

// value stores node n, entered and not an alias, into v.
func (d *decoder) value(n *yaml.Node, v reflect.Value, key, noun string) {
	if isNull(n) {
		// null is the same as leaving the key out; a struct still learns where it is.
		if v.Kind() == reflect.Struct {
			setBook(v, posOf(n), nil)
		}
		return
	}
	switch t := v.Type(); {
	case t == durationType:
		if s, ok := d.scalar(n, "a duration", key); ok {
			dur, err := time.ParseDuration(s)
			if err != nil {
				d.errorf(n, "bad duration %q for %s: want a number with a unit (ns, us, ms, s, m, h), e.g. \"250ms\" or \"1m30s\"", s, key)
				return
			}
			v.SetInt(int64(dur))
		}
		return
	case t == jsonType:
		if b := d.appendJSON(nil, n, key); b != nil {
			v.SetBytes(b)
		}
		return
	case t == byteSizeType:
		if s, ok := d.scalar(n, "a byte size", key); ok {
			b, err := parseByteSize(s)
			if err != nil {
				d.errorf(n, "bad byte size %q for %s: %v", s, key, err)
				return
			}
			v.SetInt(b)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.value(n, p.Elem(), key, noun)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, noun)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "expected a list for %s, got %s", key, describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if d.over {
				break
			}
			e := s.Index(i)
			d.decode(c, e, key, strings.TrimSuffix(key, "s"))
			if e.Kind() == reflect.String {
				d.elems[e.Addr().Interface().(*string)] = posOf(resolve(c))
			}
		}
		v.Set(s)
	case reflect.String:
		if s, ok := d.scalar(n, "a string", key); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int64:
		if s, ok := d.scalar(n, "an integer", key); ok {
			i, err := strconv.ParseInt(s, 0, 64)
			if err != nil || n.Tag == "!!float" || v.OverflowInt(i) {
				d.errorf(n, "expected an integer for %s, got %q", key, s)
				return
			}
			v.SetInt(i)
		}
	case reflect.Bool:
		if s, ok := d.scalar(n, "true or false", key); ok {
			switch s {
			case "true", "True", "TRUE":
				v.SetBool(true)
			case "false", "False", "FALSE":
			default:
				d.errorf(n, "expected true or false for %s, got %q", key, s)
			}
		}
	default:
		d.errorf(n, "cannot decode %s into %s", key, v.Type()) // unreachable with types.go
	}
}

// scalar returns the env-expanded text of a scalar node.
func (d *decoder) scalar(n *yaml.Node, want, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, "expected %s for %s, got %s", want, key, describe(n))
		return "", false
	}
	s, err := expand(n.Value)
	if err != nil {
		d.errorf(n, "%s: %v", key, err)
		return "", false
	}
	return s, d.spendText(n, len(s)-len(n.Value)) // enter charged n.Value

}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, noun string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "expected a mapping for %s, got %s", noun, describe(n))
		setBook(v, posOf(n), Positions{}) // validation stays quiet where decoding failed
		return
	}
	at := Positions{}
	setBook(v, posOf(n), at)
	fields := fieldsOf(v.Type())
	for _, kv := range d.pairs(n, noun, 0) {
		if d.over {
			return
		}
		k, val := kv[0], kv[1]
		f, ok := fieldByKey(fields, k.Value)
		if !ok && v.Type() == configType && strings.HasPrefix(k.Value, "x-") {
			continue // extension keys: a place to define anchors, as in Compose files
		}
		if !ok {
			d.keyErrorf(k, "unknown key %q in %s (known: %s)", k.Value, noun, knownKeys(v.Type()))
			continue
		}
		if !isNull(resolve(val)) {
			at[k.Value] = posOf(val)
		}
		d.decode(val, v.Field(f.index), k.Value, k.Value)
	}
}

// pairs returns the key/value pairs of mapping n with "<<" merge keys applied
// (keys written in n win over merged ones) and duplicate keys reported.
func (d *decoder) pairs(n *yaml.Node, noun string, depth int) [][2]*yaml.Node {
	var out, merged [][2]*yaml.Node
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.spend(k) || !d.spendText(k, len(k.Value)) { // keys cost too: an alias of a mapping may be expanded many times
			return nil
		}
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, d.merge(val, noun, depth)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.keyErrorf(k, "keys in %s must be plain strings, got %s", noun, describe(k))
			continue
		}
		if f, dup := first[k.Value]; dup {
			d.keyErrorf(k, "duplicate key %q in %s (first at %d:%d)", k.Value, noun, f.Line, f.Column)
			continue
		}
		first[k.Value] = k
		out = append(out, [2]*yaml.Node{k, val})
	}
	for _, kv := range merged {
		if _, ok := first[kv[0].Value]; !ok {
			first[kv[0].Value] = kv[0]
			out = append(out, kv)
		}
	}
	return out
}

// merge returns the pairs a "<<" value contributes: one mapping, or a list of
// mappings where earlier ones win.
func (d *decoder) merge(val *yaml.Node, noun string, depth int) [][2]*yaml.Node {
	if val.Kind == yaml.AliasNode && d.alias == nil {
		d.alias = val // what a budget overrun blames
		defer func() { d.alias = nil }()
	}
	r := resolve(val)
	if depth > 8 {
		d.errorf(val, "merge keys (<<) nested too deeply in %s", noun)
		return nil
	}
	switch r.Kind {
	case yaml.MappingNode:
		return d.pairs(r, noun, depth+1)
	case yaml.SequenceNode:
		var out [][2]*yaml.Node
		seen := map[string]bool{}
		for _, c := range r.Content {
			if !d.spend(c) {
				return nil
			}
			if resolve(c).Kind != yaml.MappingNode {
				d.errorf(c, "merge key (<<) in %s needs mappings, got %s", noun, describe(resolve(c)))
				continue
			}
			for _, kv := range d.merge(c, noun, depth+1) {
				if !seen[kv[0].Value] {
					seen[kv[0].Value] = true
					out = append(out, kv)
				}
			}
		}
		return out
	}
	d.errorf(val, "merge key (<<) in %s needs a mapping or a list of mappings, got %s", noun, describe(r))
	return nil
}

type field struct {
	index int
	key   string
	sf    reflect.StructField
}

// fieldsOf lists the YAML fields of struct type t (those with a yaml tag
// other than "-"). The lists are kept: a large config has many structs of
// few types.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if key := sf.Tag.Get("yaml"); key != "" && key != "-" {
			fs = append(fs, field{index: i, key: key, sf: sf})
		}
	}
	fieldCache.Store(t, fs)
	return fs
}

var fieldCache sync.Map // reflect.Type → []field

func fieldByKey(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

func knownKeys(t reflect.Type) string {
	var keys []string
	for _, f := range fieldsOf(t) {
		keys = append(keys, f.key)
	}
	return strings.Join(keys, ", ")
}

// setBook fills the Pos and At bookkeeping fields of struct v, when it has them.
func setBook(v reflect.Value, p Pos, at Positions) {
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		f.Set(reflect.ValueOf(p))
	}
	if f := v.FieldByName("At"); f.IsValid() && f.Type() == positionsTyp && at != nil {
		f.Set(reflect.ValueOf(at))
	}
}

// book returns the bookkeeping fields of struct v (zero when it has none).
func book(v reflect.Value) (p Pos, at Positions) {
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		p = f.Interface().(Pos)
	}
	if f := v.FieldByName("At"); f.IsValid() && f.Type() == positionsTyp {
		at = f.Interface().(Positions)
	}
	return p, at
}

// expand substitutes ${VAR} and ${VAR:-default} (default also when VAR is
// empty, as in the shell); "$${" is a literal "${" and any other "$" is kept.
func expand(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q", s)
			}
			name, def, hasDef := strings.Cut(s[i+2:i+end], ":-")
			if !isIdent(name) {
				return "", fmt.Errorf("bad variable name %q in %q (want ${NAME} or ${NAME:-default})", name, s)
			}
			val, ok := os.LookupEnv(name)
			switch {
			case hasDef && val == "":
				val = def
			case !ok:
				return "", fmt.Errorf("environment variable %s is not set (write ${%s:-default} to give a default)", name, name)
			}
			b.WriteString(val)
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || i > 0 && '0' <= r && r <= '9') {
			return false
		}
	}
	return s != ""
}

var byteUnits = map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

// parseByteSize reads an integer with an optional unit: "1024", "16KiB", "10 MB".
func parseByteSize(s string) (int64, error) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	unit := strings.TrimSpace(s[i:])
	mult, ok := byteUnits[unit]
	if i == 0 || !ok {
		return 0, errors.New(`want a non-negative integer with an optional unit B, KB, MB, GB, KiB, MiB or GiB, e.g. "16KiB"`)
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil || n > (1<<63-1)/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

// appendJSON converts a free-form YAML value to JSON: mappings (string keys
// only) to objects, lists to arrays, scalars by their resolved YAML tag, with
// ${ENV} expansion in strings. n is entered and not an alias. It returns nil
// after reporting an error.
func (d *decoder) appendJSON(dst []byte, n *yaml.Node, key string) []byte {
	switch n.Kind {
	case yaml.MappingNode:
		dst = append(dst, '{')
		for i, kv := range d.pairs(n, key, 0) {
			k := resolve(kv[0])
			if k.Kind != yaml.ScalarNode {
				d.errorf(kv[0], "%s: mapping keys must be strings", key)
				return nil
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			b, _ := json.Marshal(k.Value)
			dst = append(dst, b...)
			dst = append(dst, ':')
			if dst = d.appendChild(dst, kv[1], key); dst == nil {
				return nil
			}
		}
		if d.over {
			return nil
		}
		return append(dst, '}')
	case yaml.SequenceNode:
		dst = append(dst, '[')
		for i, c := range n.Content {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst = d.appendChild(dst, c, key); dst == nil {
				return nil
			}
		}
		return append(dst, ']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return append(dst, "null"...)
		case "!!bool":
			if v, err := strconv.ParseBool(strings.ToLower(n.Value)); err == nil {
				return strconv.AppendBool(dst, v)
			}
		case "!!int":
			if v, err := strconv.ParseInt(n.Value, 0, 64); err == nil {
				return strconv.AppendInt(dst, v, 10)
			}
		case "!!float":
			// yaml.v3 types an integer past uint64 as a float: like one
			// past int64, it stays exact, as a string.
			if v, err := strconv.ParseFloat(n.Value, 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) && !bigInteger(n.Value) {
				return strconv.AppendFloat(dst, v, 'g', -1, 64)
			}
		}
		s, ok := d.scalar(n, "a value", key)
		if !ok {
			return nil
		}
		b, _ := json.Marshal(s) // a string always encodes; unlike AppendQuote it escapes for JSON
		return append(dst, b...)
	}
	d.errorf(n, "%s: unsupported YAML value", key)
	return nil
}

// bigInteger reports whether s is written as an integer (decimal, or 0x,
// 0o, 0b) past int64.
func bigInteger(s string) bool {
	if _, err := strconv.ParseInt(s, 0, 64); err == nil {
		return false
	}
	s = strings.TrimLeft(s, "+-")
	digits := "0123456789_"
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x', 'X':
			s, digits = s[2:], "0123456789abcdefABCDEF_"
		case 'o', 'O':
			s, digits = s[2:], "01234567_"
		case 'b', 'B':
			s, digits = s[2:], "01_"
		}
	}
	return s != "" && strings.Trim(s, digits) == ""
}

// appendChild appends the JSON of node c, an element or a mapping value.
func (d *decoder) appendChild(dst []byte, c *yaml.Node, key string) []byte {
	r := d.enter(c)
	if r == nil {
		return nil
	}
	defer d.leave(c)
	return d.appendJSON(dst, r, key)
}
