package shadow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// Bounds on one comparison. Upstream bytes are arbitrary: whatever they hold,
// a Diff does bounded work and returns a bounded answer.
const (
	// MaxDifferences is how many differences a Diff lists; past it, one
	// more Difference of kind KindMore says the list was cut.
	MaxDifferences = 50
	// MaxBodySize is the largest body compared field by field (json) or
	// byte by byte (bytes). A larger body on either side is compared by
	// length and SHA-256 only, and a Capture keeps only those.
	MaxBodySize = 1 << 20
	// MaxDepth is how deep JSON containers are compared field by field;
	// deeper containers are compared byte for byte and reported whole, as
	// KindTooDeep. It also bounds the recursion of the differ.
	MaxDepth = 100
	// MaxValueSize bounds Difference.Primary and Difference.Candidate
	// (bytes, before the ellipsis that marks a cut).
	MaxValueSize = 200
)

// Body modes of a Spec.
const (
	BodyJSON  = "json"
	BodyBytes = "bytes"
	BodyNone  = "none"
)

// Absent is the value shown for a header, key or item that one side lacks.
const Absent = "(absent)"

// ErrInvalidSpec is wrapped by every error of NewComparer.
var ErrInvalidSpec = errors.New("invalid shadow comparison")

// Spec says what of two responses is compared.
type Spec struct {
	Status  bool     `json:"status"`
	Headers []string `json:"headers,omitempty"` // field names, case-insensitive
	Body    string   `json:"body"`              // "json", "bytes" or "none"
	// Ignore lists paths in a JSON body whose values are not compared
	// (see the syntax at the top of path.go): data.updated_at,
	// items[*].id, meta.*, **.request_id. Only with Body "json".
	Ignore []string `json:"ignore,omitempty"`
}

// Response is one side of a pair, as the gateway holds it. Nothing is
// copied by Diff; Capture makes a copy that outlives the original.
type Response struct {
	Status int
	// Header returns every value of the named field, in order, and no
	// value when the field is absent (a present empty field is one empty
	// value). Diff asks only for the names of the Spec, in canonical form
	// (Content-Type), and uses each answer before the next call, so
	// fasthttp's resp.Header.PeekAll fits as it is. Nil means no fields.
	Header func(name string) [][]byte
	// Body is the body as the client would read it (decoded from any
	// Content-Encoding: the two sides may encode differently).
	Body []byte
	// ContentType is shown beside a body that is not JSON. It does not
	// decide how a body is read: with Body "json" a body is JSON if it
	// parses, whatever its label (legacy upstreams send JSON as text/html,
	// and fasthttp reports text/plain for a response without the field).
	ContentType string

	// Set by Capture for a body over MaxBodySize: its length and digest.
	bigLen int
	bigSum *[sha256.Size]byte
}

// Kind says what a Difference is.
type Kind string

const (
	KindChanged  Kind = "changed"   // status, header or JSON value
	KindType     Kind = "type"      // JSON types differ (object vs array vs string ...)
	KindMissing  Kind = "missing"   // in the primary only: the candidate lacks it
	KindExtra    Kind = "extra"     // in the candidate only
	KindLength   Kind = "length"    // array lengths differ (items compared up to the shorter)
	KindBytes    Kind = "bytes"     // bodies compared byte for byte: the first differing offset
	KindTooLarge Kind = "too_large" // a body over MaxBodySize: length and SHA-256 differ
	KindTooDeep  Kind = "too_deep"  // containers past MaxDepth differ (compared byte for byte)
	KindMore     Kind = "more"      // MaxDifferences were listed; there are more
)

// Difference is one way the candidate's response differs from the primary's.
type Difference struct {
	// Path is "status", "header:Content-Type", "body", or a path into a
	// JSON body: "body.data.items[3].name", `body["a.b"]`.
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// The two values: compact JSON, quoted text, a byte offset and
	// snippet, or Absent; cut at MaxValueSize with an ellipsis.
	Primary   string `json:"primary"`
	Candidate string `json:"candidate"`
}

type bodyMode uint8

const (
	modeNone bodyMode = iota
	modeJSON
	modeBytes
)

// Comparer compares pairs of responses by a Spec. It is immutable and safe
// for concurrent use; build it once per route at config load.
type Comparer struct {
	status      bool
	headers     []string // canonical names
	headerPaths []string // "header:" + name
	body        bodyMode
	ignore      []ignorePath
}

// NewComparer validates spec and compiles it.
func NewComparer(spec Spec) (*Comparer, error) {
	c := &Comparer{status: spec.Status}
	switch spec.Body {
	case BodyJSON:
		c.body = modeJSON
	case BodyBytes:
		c.body = modeBytes
	case BodyNone:
		c.body = modeNone
	default:
		return nil, fmt.Errorf("%w: body %q: want %q, %q or %q", ErrInvalidSpec, spec.Body, BodyJSON, BodyBytes, BodyNone)
	}
	for i, h := range spec.Headers {
		if err := checkToken(h); err != nil {
			return nil, fmt.Errorf("%w: headers[%d] %q: %v", ErrInvalidSpec, i, h, err)
		}
		name := string(httpsyntax.CanonicalName(h))
		for j, prev := range c.headers {
			if prev == name {
				return nil, fmt.Errorf("%w: headers[%d] %q: listed before as headers[%d] (names are case-insensitive)", ErrInvalidSpec, i, h, j)
			}
		}
		c.headers = append(c.headers, name)
		c.headerPaths = append(c.headerPaths, "header:"+name)
	}
	if len(spec.Ignore) > 0 && c.body != modeJSON {
		return nil, fmt.Errorf("%w: ignore needs body %q, not %q", ErrInvalidSpec, BodyJSON, spec.Body)
	}
	for i, s := range spec.Ignore {
		p, err := parsePath(s)
		if err != nil {
			return nil, fmt.Errorf("%w: ignore[%d]: %w", ErrInvalidSpec, i, err)
		}
		c.ignore = append(c.ignore, p)
	}
	return c, nil
}

// checkToken checks a field name: an RFC 9110 token.
func checkToken(s string) error {
	if s == "" {
		return errors.New("empty field name")
	}
	if !httpsyntax.IsToken(s) {
		i := strings.IndexFunc(s, func(r rune) bool { return r >= 0x80 || !httpsyntax.IsToken(string(r)) })
		return fmt.Errorf("byte %q at offset %d is not allowed in a field name (RFC 9110 token)", s[i], i)
	}
	return nil
}

// HeaderNames returns the canonical names of the compared header fields.
func (c *Comparer) HeaderNames() []string { return append([]string(nil), c.headers...) }

// Capture copies what c compares from r (its status, the listed header
// fields, the body, its content type), so that r can be released: the
// gateway captures the primary's answer before the client's response is
// recycled. A body over MaxBodySize is kept as its length and digest only.
func (c *Comparer) Capture(r *Response) *Response {
	if r == nil {
		return &Response{}
	}
	out := &Response{Status: r.Status, ContentType: r.ContentType}
	if len(c.headers) > 0 {
		vals := make([][][]byte, len(c.headers))
		for i, name := range c.headers {
			if r.Header == nil {
				break
			}
			for _, v := range r.Header(name) {
				vals[i] = append(vals[i], append([]byte{}, v...)) // non-nil: present even if empty
			}
		}
		names := c.headers
		out.Header = func(name string) [][]byte {
			for i, n := range names {
				if n == name {
					return vals[i]
				}
			}
			return nil
		}
	}
	switch {
	case c.body == modeNone:
	case r.bigSum != nil:
		out.bigLen, out.bigSum = r.bigLen, r.bigSum
	case len(r.Body) > MaxBodySize:
		sum := prefixSum(r.Body)
		out.bigLen, out.bigSum = len(r.Body), &sum
	default:
		out.Body = append([]byte{}, r.Body...)
	}
	return out
}

var differs = sync.Pool{New: func() any { return new(differ) }}

// Diff compares the candidate's response to the primary's. It returns nil
// when they agree on everything the Spec compares, else at most
// MaxDifferences differences plus one of KindMore.
func (c *Comparer) Diff(primary, candidate *Response) []Difference {
	if primary == nil {
		primary = &Response{}
	}
	if candidate == nil {
		candidate = &Response{}
	}
	d := differs.Get().(*differ)
	d.c = c
	d.out = nil
	d.more = false

	if c.status && primary.Status != candidate.Status {
		d.add("status", KindChanged, strconv.Itoa(primary.Status), strconv.Itoa(candidate.Status))
	}
	for i, name := range c.headers {
		d.header(c.headerPaths[i], name, primary.Header, candidate.Header)
	}
	switch c.body {
	case modeJSON, modeBytes:
		d.body(primary, candidate)
	}

	out := d.out
	if d.more {
		out = append(out, Difference{Path: "…and more", Kind: KindMore, Primary: "", Candidate: ""})
	}
	d.release()
	differs.Put(d)
	return out
}

// add lists a difference, or notes that the list is full.
func (d *differ) add(path string, kind Kind, primary, candidate string) {
	if len(d.out) >= MaxDifferences {
		d.more = true
		return
	}
	d.out = append(d.out, Difference{Path: path, Kind: kind, Primary: primary, Candidate: candidate})
}

// full reports whether no more differences can be listed; the walk stops
// there, since one more found is all that the marker needs.
func (d *differ) full() bool { return d.more }

func (d *differ) header(path, name string, p, c func(string) [][]byte) {
	var pv, cv []byte
	var pok, cok bool
	pv, pok = joinField(d.scratch[0][:0], p, name)
	d.scratch[0] = pv
	cv, cok = joinField(d.scratch[1][:0], c, name)
	d.scratch[1] = cv
	switch {
	case !pok && !cok:
	case !cok:
		d.add(path, KindMissing, quoteText(pv), Absent)
	case !pok:
		d.add(path, KindExtra, Absent, quoteText(cv))
	case !bytes.Equal(pv, cv):
		d.add(path, KindChanged, quoteText(pv), quoteText(cv))
	}
}

// joinField reads a field's values as one, joined with ", " (RFC 9110
// section 5.3: the same field on several lines means the same), and
// whether it is present.
func joinField(dst []byte, h func(string) [][]byte, name string) ([]byte, bool) {
	if h == nil {
		return dst, false
	}
	vals := h(name)
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = append(dst, v...)
	}
	return dst, len(vals) > 0
}

func (d *differ) body(p, c *Response) {
	if isBig(p) || isBig(c) {
		pl, ps := digest(p)
		cl, cs := digest(c)
		if pl != cl || ps != cs {
			d.add("body", KindTooLarge, digestText(pl, ps), digestText(cl, cs))
		}
		return
	}
	if bytes.Equal(p.Body, c.Body) {
		return // the common case: no need to parse
	}
	if d.c.body == modeJSON {
		pok := d.doc[0].parse(p.Body)
		cok := d.doc[1].parse(c.Body)
		if pok && cok {
			d.jsonBody()
			return
		}
		d.add("body", KindBytes, snippet(p.Body, c.Body, !pok, p.ContentType), snippet(c.Body, p.Body, !cok, c.ContentType))
		return
	}
	d.add("body", KindBytes, snippet(p.Body, c.Body, false, ""), snippet(c.Body, p.Body, false, ""))
}

func isBig(r *Response) bool { return r.bigSum != nil || len(r.Body) > MaxBodySize }

func digest(r *Response) (int, [sha256.Size]byte) {
	if r.bigSum != nil {
		return r.bigLen, *r.bigSum
	}
	return len(r.Body), prefixSum(r.Body)
}

// BigPrefix is how much of a body over MaxBodySize is hashed: Capture runs
// before the client is answered, so a large body must cost it little.
const BigPrefix = 64 << 10

// prefixSum is the SHA-256 of the first BigPrefix bytes of b.
func prefixSum(b []byte) [sha256.Size]byte { return sha256.Sum256(b[:min(len(b), BigPrefix)]) }

func digestText(n int, sum [sha256.Size]byte) string {
	return strconv.Itoa(n) + " bytes, sha256 of the first " + strconv.Itoa(min(n, BigPrefix)) + " " + hex.EncodeToString(sum[:])
}

// snippet shows where b first differs from other (which it does: equal
// bodies are never compared), with a little before it:
// "offset 17 of 40 bytes: …"abc…"…". A body that is not JSON says so.
func snippet(b, other []byte, notJSON bool, contentType string) string {
	off := 0
	for off < len(b) && off < len(other) && b[off] == other[off] {
		off++
	}
	s := "offset " + strconv.Itoa(off) + " of " + strconv.Itoa(len(b)) + " bytes"
	if notJSON {
		s += " (not JSON"
		if contentType != "" {
			s += ", " + cutText(strconv.Quote(contentType), 40)
		}
		s += ")"
	}
	if off >= len(b) {
		return s + ": (end)"
	}
	lo := max(0, off-16)
	hi := min(len(b), off+64)
	q := strconv.Quote(string(b[lo:hi]))
	for len(q) > MaxValueSize-len(s)-8 && hi > off+1 {
		hi = off + (hi-off)/2 // binary bytes quote to 4x: shrink until it fits
		q = strconv.Quote(string(b[lo:hi]))
	}
	s += ": "
	if lo > 0 {
		s += "…"
	}
	s += q
	if hi < len(b) {
		s += "…"
	}
	return s
}

// quoteText quotes a header value, cut to MaxValueSize.
func quoteText(v []byte) string {
	if len(v) > MaxValueSize {
		return cutText(strconv.Quote(string(v[:MaxValueSize])), MaxValueSize)
	}
	return cutText(strconv.Quote(string(v)), MaxValueSize)
}

// cutText cuts s at max bytes (on a UTF-8 boundary) with an ellipsis.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return string(cutUTF8([]byte(s), n)) + "…"
}

func cutUTF8(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	for i := 0; i < 3 && n > 0 && b[n]&0xc0 == 0x80; i++ {
		n--
	}
	return b[:n]
}
