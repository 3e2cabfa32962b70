package cache

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// Policy configures one Cache (one route). The zero value of every field but
// MaxBytes has a documented default; New and Update validate it.
type Policy struct {
	// MaxBytes is the byte budget of the store (ristretto MaxCost). Every
	// stored response is charged its key, headers, body and a fixed
	// per-entry overhead. Required.
	MaxBytes int64
	// MaxObjectBytes is the largest body stored; larger responses are
	// passed through and the key is marked hit-for-pass. 0: MaxBytes/8.
	MaxObjectBytes int64
	// DefaultTTL is the freshness lifetime of a response whose upstream
	// gave none (no s-maxage, max-age or Expires). 0: such responses are
	// not stored.
	DefaultTTL time.Duration
	// MaxTTL caps every freshness lifetime. 0: no cap.
	MaxTTL time.Duration
	// Statuses lists the cacheable status codes. nil: 200 203 204 300 301
	// 308 404 405 410 414 501.
	Statuses []int
	// StaleWhileRevalidate is the window past freshness in which a stale
	// response is served while one background request refreshes it, for
	// responses without a stale-while-revalidate directive. 0: none.
	StaleWhileRevalidate time.Duration
	// StaleIfError is the window past freshness in which a stale response
	// is served when the upstream fails (error, 500, 502, 503, 504), for
	// responses without a stale-if-error directive. 0: none.
	StaleIfError time.Duration
	// Keep is how long a response that can be revalidated (it has an ETag
	// or Last-Modified) stays stored after its freshness and stale windows
	// end, so that a later request costs a 304 instead of a full body.
	// 0: 10 minutes. Eviction under the byte budget still applies.
	Keep time.Duration
	// StoreSetCookie allows storing responses that carry Set-Cookie. The
	// stored copy never keeps Set-Cookie; only the client whose request
	// caused the fill receives it.
	StoreSetCookie bool
	// Key selects the request parts that make up the cache key.
	Key KeySpec
	// StatusHeader names the response header that carries the Status
	// (HIT, MISS, ...). "": X-Cache-Status.
	StatusHeader string
	// Now is the clock. nil: time.Now. Tests inject one.
	Now func() time.Time
}

// KeySpec selects the parts of a request that make up its cache key, and
// therefore the only parts a fill request carries to the upstream.
//
// The key is always host + path + normalized query. Names are
// case-insensitive for headers and case-sensitive for query parameters and
// cookies. A request part that is not in the key never reaches the upstream
// on a fill: this is what makes the cache immune to poisoning through
// unkeyed inputs.
type KeySpec struct {
	// Headers are request headers that are part of the key (and sent on
	// fills). Authorization must be listed for requests carrying it to be
	// cached at all.
	Headers []string
	// Query lists the query parameters in the key; a trailing * matches a
	// prefix. nil: all parameters (but those in IgnoreQuery).
	Query []string
	// IgnoreQuery lists parameters dropped from the key and from the fill
	// request (e.g. utm_*); a trailing * matches a prefix.
	IgnoreQuery []string
	// Cookies lists cookie names in the key. The fill's Cookie header is
	// rebuilt from these cookies only.
	Cookies []string
}

// defaultStatuses are RFC 9110's heuristically cacheable status codes but
// 206 (this cache does not store partial content).
var defaultStatuses = []int{200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501}

const (
	defaultStatusHeader = "X-Cache-Status"
	defaultKeep         = 10 * time.Minute
	// hitForPassTTL is how long a key whose response was not storable is
	// passed straight to the upstream instead of coalescing misses behind
	// one fill that would again not be shared.
	hitForPassTTL = 5 * time.Second
)

// policy is a validated Policy compiled for the request path: names
// canonicalized and sorted once, statuses as a bitset.
type policy struct {
	maxBytes, maxObject int64
	defaultTTL, maxTTL  time.Duration
	swr, sie, keep      time.Duration
	storeSetCookie      bool
	statuses            [10]uint64 // bit s set: status s (100..599) is cacheable
	statusHeader        []byte     // canonical form
	now                 func() time.Time
	key                 keySpec
}

// keySpec is a compiled KeySpec.
type keySpec struct {
	headers      []keyHeader // sorted by lower-case name, unique
	authKeyed    bool        // Authorization is in headers
	cookieKeyed  bool        // the whole Cookie header is in headers
	queryAll     bool        // Query == nil
	query        []namePattern
	ignore       []namePattern
	cookies      []string // sorted, unique
	hasSuffix    bool     // headers or cookies: keys may extend past the target URI
	sensitiveIdx []bool   // per header: hashed in the key text (credentials)
}

// keyHeader is one keyed request header.
type keyHeader struct {
	lower  string // key text form
	canon  string // fasthttp canonical form, for Set
	canonB []byte // the same, for PeekCanonical
}

// namePattern matches a query parameter name exactly or, with prefix, by
// prefix.
type namePattern struct {
	name   string
	prefix bool
}

func (p namePattern) match(name []byte) bool {
	if p.prefix {
		return len(name) >= len(p.name) && string(name[:len(p.name)]) == p.name
	}
	return string(name) == p.name
}

func matchAny(ps []namePattern, name []byte) bool {
	for _, p := range ps {
		if p.match(name) {
			return true
		}
	}
	return false
}

func (p *policy) statusOK(s int) bool {
	if s < 100 || s > 599 {
		return false
	}
	return p.statuses[s/64]&(1<<(s%64)) != 0
}

// compile validates p and builds its request-path form.
func compile(p Policy) (*policy, error) {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if p.MaxBytes <= 0 {
		bad("MaxBytes must be > 0, got %d", p.MaxBytes)
	}
	if p.MaxObjectBytes < 0 {
		bad("MaxObjectBytes must be >= 0, got %d", p.MaxObjectBytes)
	} else if p.MaxBytes > 0 && p.MaxObjectBytes > p.MaxBytes {
		bad("MaxObjectBytes (%d) must not exceed MaxBytes (%d)", p.MaxObjectBytes, p.MaxBytes)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DefaultTTL", p.DefaultTTL}, {"MaxTTL", p.MaxTTL}, {"StaleWhileRevalidate", p.StaleWhileRevalidate},
		{"StaleIfError", p.StaleIfError}, {"Keep", p.Keep},
	} {
		if d.v < 0 {
			bad("%s must be >= 0, got %s", d.name, d.v)
		}
	}
	c := &policy{
		maxBytes:       p.MaxBytes,
		maxObject:      p.MaxObjectBytes,
		defaultTTL:     p.DefaultTTL,
		maxTTL:         p.MaxTTL,
		swr:            p.StaleWhileRevalidate,
		sie:            p.StaleIfError,
		keep:           p.Keep,
		storeSetCookie: p.StoreSetCookie,
		now:            p.Now,
	}
	if c.maxObject == 0 {
		c.maxObject = max(p.MaxBytes/8, 1)
	}
	if c.keep == 0 {
		c.keep = defaultKeep
	}
	if c.now == nil {
		c.now = time.Now
	}
	statuses := p.Statuses
	if statuses == nil {
		statuses = defaultStatuses
	}
	for _, s := range statuses {
		if s < 100 || s > 599 {
			bad("Statuses: %d is not an HTTP status code", s)
			continue
		}
		c.statuses[s/64] |= 1 << (s % 64)
	}
	sh := p.StatusHeader
	if sh == "" {
		sh = defaultStatusHeader
	}
	if !httpsyntax.IsToken(sh) {
		bad("StatusHeader %q is not a valid header name", sh)
	}
	c.statusHeader = httpsyntax.CanonicalName(sh)

	ks := &c.key
	seen := map[string]bool{}
	for _, h := range p.Key.Headers {
		if !httpsyntax.IsToken(h) {
			bad("Key.Headers: %q is not a valid header name", h)
			continue
		}
		l := strings.ToLower(h)
		if seen[l] {
			continue
		}
		seen[l] = true
		ks.headers = append(ks.headers, keyHeader{lower: l, canon: string(httpsyntax.CanonicalName(h)), canonB: httpsyntax.CanonicalName(h)})
	}
	slices.SortFunc(ks.headers, func(a, b keyHeader) int { return strings.Compare(a.lower, b.lower) })
	for _, h := range ks.headers {
		sensitive := h.lower == "authorization" || h.lower == "proxy-authorization" || h.lower == "cookie"
		ks.sensitiveIdx = append(ks.sensitiveIdx, sensitive)
		switch h.lower {
		case "authorization":
			ks.authKeyed = true
		case "cookie":
			ks.cookieKeyed = true
		case "host":
			bad("Key.Headers: Host is always part of the key")
		}
	}
	ks.queryAll = p.Key.Query == nil
	var err error
	if ks.query, err = patterns("Key.Query", p.Key.Query); err != nil {
		errs = append(errs, err)
	}
	if ks.ignore, err = patterns("Key.IgnoreQuery", p.Key.IgnoreQuery); err != nil {
		errs = append(errs, err)
	}
	cseen := map[string]bool{}
	for _, name := range p.Key.Cookies {
		if !httpsyntax.IsToken(name) {
			bad("Key.Cookies: %q is not a valid cookie name", name)
			continue
		}
		if !cseen[name] {
			cseen[name] = true
			ks.cookies = append(ks.cookies, name)
		}
	}
	slices.Sort(ks.cookies)
	ks.hasSuffix = len(ks.headers) > 0 || len(ks.cookies) > 0
	if len(errs) > 0 {
		return nil, fmt.Errorf("cache: invalid policy: %w", errors.Join(errs...))
	}
	return c, nil
}

func patterns(field string, names []string) ([]namePattern, error) {
	var out []namePattern
	for _, n := range names {
		pat := namePattern{name: n}
		if strings.HasSuffix(n, "*") {
			pat = namePattern{name: strings.TrimSuffix(n, "*"), prefix: true}
		}
		if pat.name == "" && !pat.prefix {
			return nil, fmt.Errorf("%s: empty parameter name", field)
		}
		out = append(out, pat)
	}
	return out, nil
}

// Validate reports what New or Update would refuse in p, without building a
// cache: a config reload checks a carried-over cache's new policy with it
// before anything is swapped.
func (p Policy) Validate() error {
	_, err := compile(p)
	return err
}
