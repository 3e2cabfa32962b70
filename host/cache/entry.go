package cache

import (
	"bytes"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// entry is one stored response (one Vary variant). It is immutable once
// built: hits serve its body with SetBodyRaw and copy its headers, so no
// request ever writes into it, and a refresh builds a new entry.
type entry struct {
	status   int
	hdr      []hkv // stored fields, canonical names, upstream order
	body     []byte
	etag     []byte // ETag value as sent, "" when none
	lastMod  []byte // Last-Modified value as sent, "" when none
	lastModT time.Time
	date     time.Time // Date, or the response time when absent or invalid
	respTime time.Time // when the response arrived (Policy.Now)
	initAge  time.Duration
	life     time.Duration // explicit freshness lifetime; unused when heuristic
	// heuristic: the upstream gave no freshness; Policy.DefaultTTL applies
	// (read at lookup, so that Update takes effect on stored entries).
	heuristic bool
	noCache   bool // unqualified no-cache: validate before every use
	mustReval bool // must-revalidate, proxy-revalidate or s-maxage: never serve stale
	swr, sie  time.Duration
	hasSWR    bool // the response carried stale-while-revalidate
	hasSIE    bool // ... stale-if-error
	sec       []byte
	tags      []string
	cost      int64
}

// hkv is one stored header field. dup: an earlier field has the same name,
// so serving must add it rather than set it.
type hkv struct {
	k, v []byte
	dup  bool
}

// Costs charged on top of the bytes an entry holds, approximating the Go
// structures around them so that the byte budget tracks real memory.
const (
	entryOverhead = 256
	fieldOverhead = 48
	nodeOverhead  = 160
)

// verdict says whether a response may be stored, and if not why.
type verdict uint8

const (
	storable     verdict = iota
	notStatus            // status not in Policy.Statuses
	notNoStore           // no-store (request or response)
	notPrivate           // unqualified private
	notAuth              // request had Authorization, response lacks public / s-maxage / must-revalidate
	notVaryStar          // Vary: *
	notSetCookie         // Set-Cookie without StoreSetCookie
	notTooBig            // body over MaxObjectBytes
	notFreshness         // no usable freshness or validator
)

var verdictNames = [...]string{"storable", "status", "no-store", "private", "authorization", "vary-star", "set-cookie", "too-big", "no-freshness"}

func (v verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// hitForPass reports whether a response refused for v marks its key
// hit-for-pass: what the upstream said about the resource will likely
// hold for the next requests too. (Server errors do not: see exchange.)
func (v verdict) hitForPass() bool { return v != storable }

// fillInfo describes the exchange a response came from.
type fillInfo struct {
	reqTime, respTime time.Time
	authed            bool // the fill carried Authorization
	date, age         []byte
	tagsFrom          *entry // a refresh: carry its tags when the 304 names none
	bodyFrom          *entry // a refresh: share its body (immutable) instead of copying it
}

// skipStore lists the fields never stored: hop-by-hop fields, fields
// fasthttp computes (Content-Length, Transfer-Encoding, Date), fields the
// cache recomputes (Age), Set-Cookie (one client's), and the surrogate
// fields meant for this cache only.
var skipStore = []string{
	"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
	"te", "trailer", "transfer-encoding", "upgrade", "content-length", "date", "age", "set-cookie",
	"surrogate-key", "surrogate-control",
}

// newEntry builds the stored form of resp, or says why it may not be
// stored. vary is the response's Vary list (canonical names, sorted); the
// caller fills e.sec from the fill request.
func newEntry(p *policy, resp *fasthttp.Response, fi *fillInfo) (e *entry, vary [][]byte, v verdict) {
	status := resp.StatusCode()
	if !p.statusOK(status) {
		return nil, nil, notStatus
	}
	var d directives
	d.reset()
	for _, cc := range resp.Header.PeekAll(fasthttp.HeaderCacheControl) {
		parseCacheControl(cc, &d)
	}
	if d.has(ccNoStore) && !d.has(ccMustUnderstand) {
		// must-understand lets a cache that understands the status code
		// (here: one listed as cacheable) ignore no-store (RFC 9111
		// section 5.2.2.3).
		return nil, nil, notNoStore
	}
	if d.has(ccPrivate) {
		return nil, nil, notPrivate
	}
	if fi.authed && !d.has(ccPublic) && !d.has(ccMustRevalidate) && d.sMaxAge < 0 {
		return nil, nil, notAuth // RFC 9111 section 3.5
	}
	vary, star := parseVary(resp.Header.PeekAll(fasthttp.HeaderVary))
	if star {
		return nil, nil, notVaryStar
	}
	strip := append(d.privateFields[:len(d.privateFields):len(d.privateFields)], ',')
	strip = append(strip, d.noCacheFld...)
	if hasSetCookie(resp) && !p.storeSetCookie &&
		!inList(strip, []byte("set-cookie")) {
		return nil, nil, notSetCookie
	}
	body := resp.Body()
	if int64(len(body)) > p.maxObject {
		return nil, nil, notTooBig
	}

	e = &entry{status: status, respTime: fi.respTime, swr: -1, sie: -1}
	// Age (RFC 9111 section 4.2.3).
	e.date = fi.respTime
	if t, ok := parseHTTPDate(fi.date); ok {
		e.date = t
	}
	ageValue, _ := parseDelta(fi.age)
	apparent := max(0, fi.respTime.Sub(e.date))
	corrected := time.Duration(ageValue)*time.Second + max(0, fi.respTime.Sub(fi.reqTime))
	e.initAge = max(apparent, corrected)

	// Freshness lifetime (RFC 9111 section 4.2.1).
	switch {
	case d.has(ccBadAge):
		e.life = 0
	case d.sMaxAge >= 0:
		e.life = time.Duration(d.sMaxAge) * time.Second
	case d.maxAge >= 0:
		e.life = time.Duration(d.maxAge) * time.Second
	default:
		if exp := resp.Header.PeekAll(fasthttp.HeaderExpires); len(exp) > 0 {
			// An invalid Expires, or more than one, means "already
			// expired" (RFC 9111 section 5.3).
			if t, ok := parseHTTPDate(exp[0]); ok && len(exp) == 1 {
				e.life = max(0, t.Sub(e.date))
			}
		} else {
			e.heuristic = true
		}
	}
	e.noCache = d.has(ccNoCache)
	e.mustReval = d.has(ccMustRevalidate) || d.has(ccProxyRevalidate) || d.sMaxAge >= 0
	if d.swr >= 0 {
		e.swr, e.hasSWR = time.Duration(d.swr)*time.Second, true
	}
	if d.sie >= 0 {
		e.sie, e.hasSIE = time.Duration(d.sie)*time.Second, true
	}
	if e.heuristic && p.defaultTTL == 0 {
		return nil, nil, notFreshness
	}

	// Fields to store. fasthttp reports a default Content-Type for a
	// response without one; switch that off while reading.
	resp.Header.SetNoDefaultContentType(true)
	defer resp.Header.SetNoDefaultContentType(false)
	connection := resp.Header.Peek(fasthttp.HeaderConnection)
	keep := func(k []byte) bool {
		for _, s := range skipStore {
			if len(k) == len(s) && bytes.EqualFold(k, []byte(s)) {
				return false
			}
		}
		if bytes.EqualFold(k, p.statusHeader) {
			return false
		}
		return !inList(connection, k) && !inList(strip, k)
	}
	size := len(body)
	if fi.bodyFrom != nil {
		size = 0
	}
	nf := 0
	for k, v := range resp.Header.All() {
		if keep(k) {
			size += len(k) + len(v)
			nf++
		}
	}
	// One allocation holds every field and the body: fewer objects for the
	// GC, and the entry is immutable anyway.
	blob := make([]byte, 0, size)
	e.hdr = make([]hkv, 0, nf)
	for k, v := range resp.Header.All() {
		if !keep(k) {
			continue
		}
		k0 := len(blob)
		blob = append(blob, k...)
		v0 := len(blob)
		blob = append(blob, v...)
		f := hkv{k: blob[k0:v0:v0], v: blob[v0:len(blob):len(blob)]}
		for _, g := range e.hdr {
			f.dup = f.dup || bytes.EqualFold(g.k, f.k)
		}
		e.hdr = append(e.hdr, f)
		switch {
		case bytes.EqualFold(f.k, []byte(fasthttp.HeaderETag)):
			e.etag = f.v
		case bytes.EqualFold(f.k, []byte(fasthttp.HeaderLastModified)):
			e.lastMod = f.v
			e.lastModT, _ = parseHTTPDate(f.v)
		}
	}
	if fi.bodyFrom != nil {
		e.body = fi.bodyFrom.body
	} else {
		b0 := len(blob)
		blob = append(blob, body...)
		e.body = blob[b0:len(blob):len(blob)]
	}

	if ttl := e.storeTTL(p); ttl <= 0 {
		return nil, nil, notFreshness
	}

	// PeekAll reuses one buffer: read each field list before the next.
	e.tags = parseTags(nil, resp.Header.PeekAll("Surrogate-Key"), ' ')
	e.tags = parseTags(e.tags, resp.Header.PeekAll("Cache-Tag"), ',')
	slices.Sort(e.tags)
	e.tags = slices.Compact(e.tags)
	if e.tags == nil && fi.tagsFrom != nil {
		e.tags = fi.tagsFrom.tags
	}
	e.cost = int64(entryOverhead + size + nf*fieldOverhead)
	if fi.bodyFrom != nil {
		e.cost += int64(len(e.body))
	}
	for _, t := range e.tags {
		e.cost += int64(len(t)) + 16
	}
	return e, vary, storable
}

// setSecondary records the secondary key and charges it.
func (e *entry) setSecondary(sec []byte) {
	e.sec = slices.Clone(sec)
	e.cost += int64(len(sec))
}

// validator reports whether the entry can be revalidated with a
// conditional request.
func (e *entry) validator() bool { return len(e.etag) > 0 || len(e.lastMod) > 0 }

// age is the entry's current_age at now (RFC 9111 section 4.2.3).
func (e *entry) age(now time.Time) time.Duration {
	return e.initAge + max(0, now.Sub(e.respTime))
}

// lifetime is the freshness lifetime under the current policy.
func (e *entry) lifetime(p *policy) time.Duration {
	l := e.life
	if e.heuristic {
		l = p.defaultTTL
	}
	if p.maxTTL > 0 && l > p.maxTTL {
		l = p.maxTTL
	}
	return l
}

func (e *entry) swrWindow(p *policy) time.Duration {
	if e.hasSWR {
		return e.swr
	}
	return p.swr
}

func (e *entry) sieWindow(p *policy) time.Duration {
	if e.hasSIE {
		return e.sie
	}
	return p.sie
}

// mayServeStale reports whether the response lets a shared cache serve it
// stale at all.
func (e *entry) mayServeStale() bool { return !e.mustReval && !e.noCache }

// storeTTL is how long the store keeps the entry: its remaining
// freshness, then its stale windows, then Policy.Keep when it can be
// revalidated. <= 0: not worth storing.
func (e *entry) storeTTL(p *policy) time.Duration {
	var fresh time.Duration
	if !e.noCache {
		fresh = max(0, e.lifetime(p)-e.initAge)
	}
	ttl := fresh
	if e.mayServeStale() && (fresh > 0 || e.validator()) {
		ttl += max(e.swrWindow(p), e.sieWindow(p))
	}
	if e.validator() {
		ttl += p.keep
	}
	return ttl
}

// parseVary returns the field names of Vary values in canonical form,
// sorted and unique, and whether one is "*".
func parseVary(vals [][]byte) (names [][]byte, star bool) {
	for _, v := range vals {
		for len(v) > 0 {
			var e []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				e, v = v[:i], v[i+1:]
			} else {
				e, v = v, nil
			}
			e = bytes.Trim(e, " \t")
			if len(e) == 0 {
				continue
			}
			if string(e) == "*" {
				return nil, true
			}
			if !httpsyntax.IsToken(string(e)) {
				continue
			}
			names = append(names, httpsyntax.CanonicalName(string(e)))
		}
	}
	slices.SortFunc(names, bytes.Compare)
	return slices.CompactFunc(names, bytes.Equal), false
}

// Tag limits keep a hostile or buggy upstream from growing the purge index
// without bound.
const (
	maxTags   = 64
	maxTagLen = 256
)

// parseTags appends to tags the surrogate keys in vals, separated by sep
// (Surrogate-Key: space; Cache-Tag: comma) and surrounding whitespace.
func parseTags(tags []string, vals [][]byte, sep byte) []string {
	for _, v := range vals {
		for len(v) > 0 {
			var t []byte
			if i := bytes.IndexByte(v, sep); i >= 0 {
				t, v = v[:i], v[i+1:]
			} else {
				t, v = v, nil
			}
			t = bytes.TrimSpace(t)
			if len(t) > 0 && len(t) <= maxTagLen && len(tags) < maxTags {
				tags = append(tags, string(t))
			}
		}
	}
	return tags
}

// hasSetCookie reports whether resp sets a cookie.
func hasSetCookie(resp *fasthttp.Response) bool {
	for k := range resp.Header.All() {
		if bytes.EqualFold(k, []byte(fasthttp.HeaderSetCookie)) {
			return true
		}
	}
	return false
}

func (e *entry) hasTag(tag string) bool {
	_, ok := slices.BinarySearch(e.tags, tag)
	return ok
}

// node is what the store holds under a primary key: the variants of one
// resource (one entry when the upstream does not Vary) and the variants
// marked hit-for-pass. Immutable: changes build a new node.
type node struct {
	key  string
	base int      // key[:base] is the target URI part (host, path, query)
	vary [][]byte // canonical Vary names of the variants; nil: none
	vs   []*entry
	// pass marks variants (by secondary key under vary) whose last
	// response was not storable: requests for them go upstream in
	// parallel until the mark ends. A variant is in vs or in pass, not
	// both. With vary nil, the one secondary key "" covers the whole key.
	pass []passMark
	cost int64
}

// passMark is one variant's hit-for-pass mark.
type passMark struct {
	sec   string
	until time.Time
}

// maxVariants bounds the variants of one key (Vary: User-Agent would
// otherwise grow a node without end); the oldest is dropped first. It
// bounds the hit-for-pass marks of a key the same way.
const maxVariants = 32

// passMarkOverhead is charged per mark on top of its secondary key.
const passMarkOverhead = 40

func (n *node) computeCost() {
	n.cost = int64(nodeOverhead + len(n.key))
	for _, v := range n.vary {
		n.cost += int64(len(v)) + 16
	}
	for _, e := range n.vs {
		n.cost += e.cost
	}
	for _, m := range n.pass {
		n.cost += int64(len(m.sec)) + passMarkOverhead
	}
}

// match returns the variant whose secondary key is sec.
func (n *node) match(sec []byte) *entry {
	for _, e := range n.vs {
		if bytes.Equal(e.sec, sec) {
			return e
		}
	}
	return nil
}

// passing reports whether the variant sec is marked hit-for-pass at now.
// It does not allocate: the conversion in the comparison is free.
func (n *node) passing(sec []byte, now time.Time) bool {
	for _, m := range n.pass {
		if m.sec == string(sec) {
			return now.Before(m.until)
		}
	}
	return false
}

// with returns a node holding e added to (or replacing its variant in) the
// variants of old, and old's hit-for-pass marks but e's. A Vary list
// different from old's replaces the whole variant set and drops the marks:
// they were selected by other headers.
func (old *node) with(key string, base int, vary [][]byte, e *entry) *node {
	n := &node{key: key, base: base, vary: vary}
	if old != nil && slices.EqualFunc(old.vary, vary, bytes.Equal) {
		for _, v := range old.vs {
			if !bytes.Equal(v.sec, e.sec) {
				n.vs = append(n.vs, v)
			}
		}
		if len(n.vs) >= maxVariants {
			n.vs = n.vs[len(n.vs)-maxVariants+1:]
		}
		for _, m := range old.pass {
			if m.sec != string(e.sec) {
				n.pass = append(n.pass, m)
			}
		}
	}
	n.vs = append(n.vs, e)
	n.computeCost()
	return n
}

// withPass returns a node holding old's variants and marks but the
// variant sec, marked hit-for-pass until until; marks over at now are
// dropped. vary must be old's (or old nil).
func (old *node) withPass(key string, base int, vary [][]byte, sec []byte, until, now time.Time) *node {
	n := &node{key: key, base: base, vary: vary}
	if old != nil {
		for _, v := range old.vs {
			if !bytes.Equal(v.sec, sec) {
				n.vs = append(n.vs, v)
			}
		}
		for _, m := range old.pass {
			if m.sec != string(sec) && now.Before(m.until) {
				n.pass = append(n.pass, m)
			}
		}
		if len(n.pass) >= maxVariants {
			n.pass = n.pass[len(n.pass)-maxVariants+1:]
		}
	}
	n.pass = append(n.pass, passMark{sec: string(sec), until: until})
	n.computeCost()
	return n
}

// without returns old minus the variants drop selects, with old's marks,
// and how many it dropped; nil when no variant remains (the marks go too:
// they only save upstream requests).
func (old *node) without(drop func(*entry) bool) (*node, int) {
	n := &node{key: old.key, base: old.base, vary: old.vary}
	for _, v := range old.vs {
		if !drop(v) {
			n.vs = append(n.vs, v)
		}
	}
	dropped := len(old.vs) - len(n.vs)
	if len(n.vs) == 0 {
		return nil, dropped
	}
	n.pass = old.pass // immutable: shared
	n.computeCost()
	return n, dropped
}

// hasSuffixKey reports whether key extends base with header or cookie
// parts (" h:..." / " c:...").
func hasSuffixKey(key string, base int) bool {
	return base < len(key) && strings.HasPrefix(key[base:], " ")
}
