package traffic

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// SourceKind says where in a request a value is read.
type SourceKind uint8

// The kinds of Source. SourceNone is the zero value: no source.
const (
	SourceNone     SourceKind = iota
	SourceHeader              // a request header, by name
	SourceCookie              // a cookie, by name
	SourceQuery               // a query parameter, by name
	SourceConsumer            // the consumer an auth plugin named; no name
	SourceClaim               // a claim of the verified token, by dotted path
)

var kindNames = [...]string{
	SourceNone:     "",
	SourceHeader:   "header",
	SourceCookie:   "cookie",
	SourceQuery:    "query",
	SourceConsumer: "consumer",
	SourceClaim:    "claim",
}

func (k SourceKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("SourceKind(%d)", k)
}

// Source names a value of a request: a sticky key, a segment's keys or values.
type Source struct {
	Kind SourceKind
	// Name is the header, cookie or query parameter name, or the claim's
	// dotted path ("org.plan"); empty for SourceConsumer. Header names are
	// kept as written; the request side compares them case-insensitively.
	Name string
}

// ParseSource parses the text form of a Source: "header:X-User-Id",
// "cookie:uid", "query:u", "consumer" or "claim:sub".
func ParseSource(text string) (Source, error) {
	kind, name, hasName := strings.Cut(text, ":")
	var s Source
	for k, n := range kindNames { // the names String gives, read back
		if n == kind && n != "" {
			s.Kind = SourceKind(k)
		}
	}
	if s.Kind == SourceNone {
		return Source{}, fmt.Errorf("source %q: unknown kind %q (want header:NAME, cookie:NAME, query:NAME, consumer or claim:PATH)", text, kind)
	}
	if s.Kind == SourceConsumer {
		if hasName {
			return Source{}, fmt.Errorf("source %q: consumer takes no name", text)
		}
		return s, nil
	}
	if name == "" {
		return Source{}, fmt.Errorf("source %q: %s needs a name (%s:NAME)", text, kind, kind)
	}
	s.Name = name
	if err := s.check(); err != nil {
		return Source{}, fmt.Errorf("source %q: %w", text, err)
	}
	return s, nil
}

// check validates the name for the kind.
func (s Source) check() error {
	switch s.Kind {
	case SourceHeader, SourceCookie:
		// RFC 9110 field names and RFC 6265 cookie names are both tokens.
		if !httpsyntax.IsToken(s.Name) {
			return fmt.Errorf("%s name %q is not a token (letters, digits and !#$%%&'*+-.^_`|~)", s.Kind, s.Name)
		}
	case SourceQuery:
		for i := 0; i < len(s.Name); i++ {
			if c := s.Name[i]; c <= ' ' || c == 0x7f || c == '&' || c == '=' || c == '#' {
				return fmt.Errorf("query parameter name %q holds %q", s.Name, c)
			}
		}
	case SourceClaim:
		for seg := range strings.SplitSeq(s.Name, ".") {
			if seg == "" {
				return fmt.Errorf("claim path %q has an empty segment", s.Name)
			}
			for i := 0; i < len(seg); i++ {
				if c := seg[i]; c <= ' ' || c == 0x7f {
					return fmt.Errorf("claim path %q holds %q", s.Name, c)
				}
			}
		}
	case SourceConsumer:
		if s.Name != "" {
			return errors.New("consumer takes no name")
		}
	default:
		return errors.New("no source kind")
	}
	if s.Kind != SourceConsumer && s.Name == "" {
		return fmt.Errorf("%s needs a name", s.Kind)
	}
	return nil
}

// String returns the text form ParseSource reads.
func (s Source) String() string {
	if s.Kind == SourceConsumer || s.Kind == SourceNone {
		return s.Kind.String()
	}
	return s.Kind.String() + ":" + s.Name
}

// MarshalText implements encoding.TextMarshaler.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseSource.
func (s *Source) UnmarshalText(b []byte) error {
	p, err := ParseSource(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// Request is what segments and flags read from a request. The gateway
// implements it over its own request type, so this package needs no HTTP
// types; implementations should not allocate.
type Request interface {
	// Value returns the value src names, or nil when the request has none.
	// An empty value should be reported as absent (nil): it identifies no
	// one. For a claim, the string value, or the JSON text of another type.
	// The slice is only read, and only during the call that got it.
	Value(src Source) []byte
	// StickyHash returns Hash of the request's sticky key (the route's
	// sticky source), and false when it has none; then the hash is random,
	// drawn once per request, so that every question about one request
	// gets one answer.
	StickyHash() (uint64, bool)
}

// SegmentSpec defines a segment: the users matched by ANY of its criteria.
type SegmentSpec struct {
	Name string
	// KeySource is where the user key compared with Keys is read (usually
	// the routes' sticky source, e.g. header:X-User-Id).
	KeySource Source
	// Keys lists user keys, e.g. the beta testers' user ids.
	Keys []string
	// ValueSource is where the value compared with Values is read, e.g.
	// claim:plan or header:X-Beta.
	ValueSource Source
	// Values lists the values of ValueSource that make a member.
	Values []string
	// Percent, when set, makes members of the requests whose sticky hash
	// is InPercent: a stable cohort. A request without a sticky key is
	// never in it (a random hash would make membership flicker).
	Percent *int
}

// Segment is a compiled SegmentSpec. It is immutable and safe for
// concurrent use.
type Segment struct {
	name     string
	keySrc   Source
	keys     map[string]struct{}
	valueSrc Source
	values   map[string]struct{}
	percent  int    // -1 when unset
	salt     uint64 // of the segment's percentage cohort
}

// NewSegment validates and compiles a segment definition.
func NewSegment(spec SegmentSpec) (*Segment, error) {
	if err := checkName(spec.Name); err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	fail := func(format string, args ...any) (*Segment, error) {
		return nil, fmt.Errorf("segment %q: "+format, append([]any{spec.Name}, args...)...)
	}
	s := &Segment{name: spec.Name, keySrc: spec.KeySource, valueSrc: spec.ValueSource, percent: -1, salt: Salt("segment/" + spec.Name)}
	var err error
	if s.keys, err = compileSet(spec.KeySource, spec.Keys); err != nil {
		return fail("keys: %w", err)
	}
	if s.values, err = compileSet(spec.ValueSource, spec.Values); err != nil {
		return fail("values: %w", err)
	}
	if p := spec.Percent; p != nil {
		if *p < 0 || *p > 100 {
			return fail("percent %d out of range 0..100", *p)
		}
		s.percent = *p
	}
	if s.keys == nil && s.values == nil && s.percent < 0 {
		return fail("no criteria: give keys, values or percent")
	}
	return s, nil
}

// compileSet checks a source and its list, which go together: both or
// neither.
func compileSet(src Source, list []string) (map[string]struct{}, error) {
	if src.Kind == SourceNone && len(list) == 0 {
		return nil, nil
	}
	if src.Kind == SourceNone {
		return nil, errors.New("no source to read them from")
	}
	if err := src.check(); err != nil {
		return nil, fmt.Errorf("source %q: %w", src.String(), err)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("source %s given but the list is empty", src)
	}
	m := make(map[string]struct{}, len(list))
	for i, v := range list {
		if v == "" {
			// An empty value identifies no one; matching it would put
			// every request with an empty header in the segment.
			return nil, fmt.Errorf("entry %d is empty", i+1)
		}
		m[v] = struct{}{}
	}
	return m, nil
}

// Name returns the segment's name.
func (s *Segment) Name() string { return s.name }

// Contains reports whether the request is a member. It does not allocate.
func (s *Segment) Contains(r Request) bool {
	if s.percent >= 0 {
		if h, ok := r.StickyHash(); ok && InPercent(Salted(h, s.salt), s.percent) {
			return true
		}
	}
	if s.keys != nil {
		// m[string(b)] does not allocate: the compiler looks up b in place.
		if v := r.Value(s.keySrc); v != nil {
			if _, ok := s.keys[string(v)]; ok {
				return true
			}
		}
	}
	if s.values != nil {
		if v := r.Value(s.valueSrc); v != nil {
			if _, ok := s.values[string(v)]; ok {
				return true
			}
		}
	}
	return false
}

// Segments is a set of compiled segments by name.
type Segments map[string]*Segment

// NewSegments compiles segment definitions; names must be unique.
func NewSegments(specs []SegmentSpec) (Segments, error) {
	set := make(Segments, len(specs))
	for _, spec := range specs {
		if _, dup := set[spec.Name]; dup {
			return nil, fmt.Errorf("segment %q is defined twice", spec.Name)
		}
		s, err := NewSegment(spec)
		if err != nil {
			return nil, err
		}
		set[spec.Name] = s
	}
	return set, nil
}

// checkName accepts the names of segments and flags: letters, digits and
// - _ . only, so they read the same in URLs, logs and metric labels.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > 128 {
		return fmt.Errorf("name %.20q... is longer than 128 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("name %q holds %q (use letters, digits, - _ .)", name, c)
		}
	}
	return nil
}
