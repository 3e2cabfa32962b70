package main

import (
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

// jwksConfig is the "jwks" config: a JSON Web Key Set (RFC 7517 section 5)
// fetched from a URL through the gateway's outbound path (http_batch).
type jwksConfig struct {
	URL                string             `json:"url"`
	CacheTTL           *wasmgate.Duration `json:"cache_ttl"`
	MinRefreshInterval *wasmgate.Duration `json:"min_refresh_interval"`
	MaxStale           *wasmgate.Duration `json:"max_stale"`
	Timeout            wasmgate.Duration  `json:"timeout"`
}

// JWKS defaults and bounds.
const (
	defaultJWKSTTL        = 5 * time.Minute
	defaultJWKSMinRefresh = 30 * time.Second
	defaultJWKSMaxStale   = 24 * time.Hour
	minJWKSInterval       = time.Second
	maxJWKSBytes          = 1 << 20 // a JWKS is a few KiB; more is not a key set
	maxJWKSKeys           = 100
	// jwksLoadEvery bounds how often an instance whose keys are past
	// cache_ttl looks in the KV store for a fresher set (and asks for a
	// fetch), so that a JWKS that stays down costs a request nothing more.
	jwksLoadEvery = time.Second
	// jwksDocVersion starts the KV value; a module with another layout
	// ignores it (the store is shared by every version of the plugin).
	jwksDocVersion = "jwks1"
)

// Counters of JWKS fetches (wasmgate_plugin_counter_total{name=...}).
var (
	jwksFetches       = wasmgate.NewCounter("jwks_fetches")
	jwksFetchFailures = wasmgate.NewCounter("jwks_fetch_failures")
)

// jwksHost is what the key set needs of the gateway: outbound HTTP, the
// plugin's KV store (shared by all its instances) and the log. sdkHost is
// the gateway; tests use a fake.
type jwksHost interface {
	// Fetch GETs url; err is set when there is no HTTP answer.
	Fetch(url string, timeout time.Duration) (status int, body []byte, err error)
	KVGet(key string) ([]byte, error) // wasmgate.ErrNotFound when absent or expired
	KVSet(key string, value []byte, ttl time.Duration) error
	KVIncr(key string, delta int64, ttl time.Duration) (int64, error)
	Log(level wasmgate.Level, msg string)
}

// sdkHost is the gateway, through the SDK.
type sdkHost struct{}

func (sdkHost) Fetch(url string, timeout time.Duration) (int, []byte, error) {
	res, err := wasmgate.Fetch(wasmgate.OutboundRequest{URL: url, Timeout: timeout,
		Header: []wasmgate.HeaderField{{Name: "Accept", Value: "application/jwk-set+json, application/json"}}})
	if err != nil {
		return 0, nil, err
	}
	if err := res[0].Err(); err != nil {
		return res[0].Status, nil, err
	}
	return res[0].Status, res[0].Body, nil
}

func (sdkHost) KVGet(key string) ([]byte, error) { return wasmgate.KVGet(key) }
func (sdkHost) KVSet(key string, value []byte, ttl time.Duration) error {
	return wasmgate.KVSet(key, value, ttl)
}
func (sdkHost) KVIncr(key string, delta int64, ttl time.Duration) (int64, error) {
	return wasmgate.KVIncr(key, delta, ttl)
}
func (sdkHost) Log(level wasmgate.Level, msg string) { wasmgate.Log(level, msg) }

// jwks is a key set fetched from a URL, cached in the instance and, for
// all instances of the plugin, in its KV store:
//
//   - docKey holds the last set fetched with its fetch time, the time of the
//     last failed fetch after it and of the last attempt; it lives for
//     cache_ttl + max_stale after the fetch.
//   - lockKey is the refresh rate limit: kv_incr with a TTL of
//     min_refresh_interval; whoever makes it 1 may fetch. So once a set is
//     loaded at most one fetch per interval leaves the gateway, whatever
//     the number of instances or of tokens naming unknown kids (an
//     instance with no usable set at all may fetch once per interval on
//     its own: see acquire).
//
// Keys past cache_ttl are refreshed on the next request; while a refresh
// fails they stay in use (stale) up to max_stale past cache_ttl.
// Times are Unix milliseconds.
type jwks struct {
	url             string
	docKey, lockKey string
	ttl, minRefresh int64 // ms
	maxStale        int64 // ms
	timeout         time.Duration
	hostVerify      bool
	host            jwksHost

	keys      []key
	seen      map[string]bool // every kid of the set, usable or not
	raw       []byte          // the set keys come from
	fetchedAt int64           // 0: none
	failedAt  int64           // the last failed fetch, if after fetchedAt
	attemptAt int64           // the last fetch attempt, by any instance
	nextLoad  int64           // before it, a stale set is not looked up again
	// localAttempt is this instance's last fetch, the rate limit when the
	// KV store cannot keep one.
	localAttempt int64
}

// newJWKS checks the config.
func newJWKS(c jwksConfig, hostVerify bool) (*jwks, error) {
	if err := checkJWKSURL(c.URL); err != nil {
		return nil, err
	}
	dur := func(name string, d *wasmgate.Duration, def time.Duration) (int64, error) {
		v := def
		if d != nil {
			v = d.D()
		}
		if v < minJWKSInterval {
			return 0, fmt.Errorf("%q %v: want at least %v", name, v, minJWKSInterval)
		}
		return v.Milliseconds(), nil
	}
	ttl, err := dur("cache_ttl", c.CacheTTL, defaultJWKSTTL)
	if err != nil {
		return nil, err
	}
	minRefresh, err := dur("min_refresh_interval", c.MinRefreshInterval, defaultJWKSMinRefresh)
	if err != nil {
		return nil, err
	}
	if minRefresh > ttl {
		return nil, fmt.Errorf(`"min_refresh_interval" %v is over "cache_ttl" %v`, ms(minRefresh), ms(ttl))
	}
	maxStale := defaultJWKSMaxStale
	if c.MaxStale != nil {
		maxStale = c.MaxStale.D()
	}
	sum := sha256.Sum256([]byte(c.URL))
	id := "jwks:" + hex.EncodeToString(sum[:12])
	return &jwks{
		url: c.URL, docKey: id, lockKey: id + ":refresh",
		ttl: ttl, minRefresh: minRefresh, maxStale: maxStale.Milliseconds(), timeout: c.Timeout.D(),
		hostVerify: hostVerify, host: sdkHost{},
	}, nil
}

// checkJWKSURL accepts the destinations of http_batch (sdk/ABI.md).
func checkJWKSURL(u string) error {
	if u == "" {
		return errors.New(`missing "url": "upstream://NAME/path" or "http://host:port/path"`)
	}
	for i := 0; i < len(u); i++ {
		if c := u[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf(`"url" %q: no spaces or control characters`, u)
		}
	}
	rest, ok := strings.CutPrefix(u, "upstream://")
	if !ok {
		rest, ok = strings.CutPrefix(u, "http://")
	}
	if !ok {
		return fmt.Errorf(`"url" %q: want "upstream://NAME/path" or "http://host:port/path" (the gateway's outbound destinations)`, u)
	}
	if authority, _, _ := strings.Cut(rest, "/"); authority == "" {
		return fmt.Errorf(`"url" %q: no upstream name or host`, u)
	}
	return nil
}

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// candidates appends to dst the keys of the set that may have signed a
// token of alg with kid ("" for none) at now, refreshing the set when it is past
// cache_ttl or does not know kid (both at most once per
// min_refresh_interval). The error is set when no key matched and the set
// is unavailable: never fetched, past max_stale, or its last fetch failed,
// so that the token may be good but cannot be judged (503).
func (j *jwks) candidates(dst []*key, alg, kid string, now time.Time) ([]*key, *authError) {
	t := now.UnixMilli()
	tried := j.sync(t)
	n := len(dst)
	dst = j.match(dst, alg, kid, t)
	if len(dst) == n && kid != "" && !j.seen[kid] && !tried {
		// An unknown kid: the issuer may have rotated its keys. Another
		// instance may have fetched them already; else fetch, if the rate
		// limit allows.
		j.load()
		if dst = j.match(dst, alg, kid, t); len(dst) == n && !j.seen[kid] && j.refresh(t) {
			dst = j.match(dst, alg, kid, t)
		}
	}
	if len(dst) == n && j.unavailable(t) {
		return dst, &authError{desc: "signing keys unavailable", retryAfter: j.retryAfter(t)}
	}
	return dst, nil
}

// sync makes the set current: when it is past cache_ttl (or there is
// none), a fresher one from the KV store, else a fetch. It reports whether
// it went as far as asking for a fetch (allowed by the rate limit or not).
func (j *jwks) sync(t int64) bool {
	if j.fresh(t) || t < j.nextLoad {
		return false
	}
	j.nextLoad = t + jwksLoadEvery.Milliseconds()
	if j.load(); j.fresh(t) {
		return false
	}
	j.refresh(t)
	return true
}

func (j *jwks) fresh(t int64) bool  { return j.fetchedAt > 0 && t < j.fetchedAt+j.ttl }
func (j *jwks) usable(t int64) bool { return j.fetchedAt > 0 && t < j.fetchedAt+j.ttl+j.maxStale }

// unavailable: no set to judge by, or the last attempt to refresh it failed.
func (j *jwks) unavailable(t int64) bool { return !j.usable(t) || j.failedAt > j.fetchedAt }

// retryAfter is the time until the rate limit allows the next fetch.
func (j *jwks) retryAfter(t int64) time.Duration {
	return ms(min(max(j.attemptAt+j.minRefresh-t, 1000), j.minRefresh))
}

// match appends the usable keys of the set for alg and kid to dst.
func (j *jwks) match(dst []*key, alg, kid string, t int64) []*key {
	if !j.usable(t) {
		return dst
	}
	for i := range j.keys {
		if k := &j.keys[i]; k.accepts(alg) && (kid == "" || k.kid == kid) {
			dst = append(dst, k)
		}
	}
	return dst
}

// load takes the set in the KV store when it is newer than the instance's.
func (j *jwks) load() {
	b, err := j.host.KVGet(j.docKey)
	if err != nil {
		if !errors.Is(err, wasmgate.ErrNotFound) {
			j.host.Log(wasmgate.LevelWarn, "jwks: reading the shared key set: "+err.Error())
		}
		return
	}
	fetchedAt, failedAt, attemptAt, body, ok := parseJWKSDoc(b)
	if !ok {
		return
	}
	switch {
	case fetchedAt > j.fetchedAt:
		keys, seen, _, err := j.parse(body)
		if err != nil {
			return // written by a module that parses differently; the next fetch replaces it
		}
		j.keys, j.seen, j.raw, j.fetchedAt, j.failedAt = keys, seen, body, fetchedAt, failedAt
	case fetchedAt == j.fetchedAt:
		j.failedAt = max(j.failedAt, failedAt)
	}
	j.attemptAt = max(j.attemptAt, attemptAt)
}

// refresh fetches the set if the rate limit allows, and reports whether a
// set was fetched. A failed fetch keeps the keys the instance has.
func (j *jwks) refresh(t int64) bool {
	if !j.acquire(t) {
		return false
	}
	j.attemptAt = t
	_ = jwksFetches.Inc()
	status, body, err := j.host.Fetch(j.url, j.timeout)
	var (
		keys    []key
		seen    map[string]bool
		ignored []string
		reason  string
	)
	switch {
	case errors.Is(err, wasmgate.ErrNotAllowed):
		reason = "the route does not allow this destination: add it to the plugin entry's outbound " +
			`(upstreams: [NAME] for upstream://NAME/..., hosts: ["host:port"] for http://host:port/...)`
	case err != nil:
		reason = err.Error()
	case status != 200:
		reason = "status " + strconv.Itoa(status)
	case len(body) > maxJWKSBytes:
		reason = fmt.Sprintf("a body of %d bytes, over %d", len(body), maxJWKSBytes)
	default:
		keys, seen, ignored, err = j.parse(body)
		if err != nil {
			reason = err.Error()
		}
	}
	if reason != "" {
		_ = jwksFetchFailures.Inc()
		j.load() // a newer set another instance fetched meanwhile, if any
		j.failedAt, j.attemptAt = t, t
		j.store(t)
		then := "no keys to serve: tokens that need them are answered 503"
		if j.usable(t) {
			then = fmt.Sprintf("serving the %d keys fetched %v ago", len(j.keys), ms(t-j.fetchedAt))
		}
		j.host.Log(wasmgate.LevelWarn, fmt.Sprintf("jwks: GET %s failed: %s; %s", j.url, reason, then))
		return false
	}
	j.keys, j.seen, j.raw, j.fetchedAt, j.failedAt = keys, seen, slices.Clone(body), t, 0
	j.store(t)
	msg := fmt.Sprintf("jwks: fetched %d keys from %s", len(keys), j.url)
	if len(ignored) > 0 {
		msg += "; ignored " + strings.Join(ignored, "; ")
	}
	j.host.Log(wasmgate.LevelInfo, msg)
	return true
}

// acquire takes the refresh rate limit: at most one fetch per
// min_refresh_interval across the plugin's instances, counted in the KV
// store. An instance without a usable set (one that started while another
// fetched, or that finds no set at all) may also fetch on its own, at most
// once per interval: else it would answer 503 until it next looked in the
// store. So does every instance when the store cannot count.
func (j *jwks) acquire(t int64) bool {
	n, err := j.host.KVIncr(j.lockKey, 1, ms(j.minRefresh))
	if err == nil && (n == 1 || j.usable(t)) {
		if n == 1 {
			j.localAttempt = t
		}
		return n == 1
	}
	if j.localAttempt != 0 && t-j.localAttempt < j.minRefresh {
		return false
	}
	j.localAttempt = t
	return true
}

// store shares the instance's set and fetch state through the KV store.
func (j *jwks) store(t int64) {
	fetchedAt, body := j.fetchedAt, j.raw
	life := fetchedAt + j.ttl + j.maxStale - t
	if fetchedAt == 0 || life <= 0 {
		// No set worth sharing: only when the last attempt was, which
		// tells other instances when the next may be.
		fetchedAt, body, life = 0, nil, j.minRefresh
	}
	v := fmt.Appendf(nil, "%s %d %d %d\n", jwksDocVersion, fetchedAt, j.failedAt, j.attemptAt)
	if err := j.host.KVSet(j.docKey, append(v, body...), ms(life)); err != nil {
		j.host.Log(wasmgate.LevelWarn, "jwks: cannot share the key set through the KV store ("+err.Error()+"): each instance keeps its own")
	}
}

// parseJWKSDoc reads store's layout.
func parseJWKSDoc(b []byte) (fetchedAt, failedAt, attemptAt int64, body []byte, ok bool) {
	line, rest, found := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if !found || len(f) != 4 || f[0] != jwksDocVersion {
		return 0, 0, 0, nil, false
	}
	var n [3]int64
	for i := range n {
		v, err := strconv.ParseInt(f[i+1], 10, 64)
		if err != nil || v < 0 {
			return 0, 0, 0, nil, false
		}
		n[i] = v
	}
	return n[0], n[1], n[2], []byte(rest), true
}

// parse reads a JWK Set: its usable keys, every kid it names, and why
// the other keys were ignored. Only a document that is not a key set at
// all is an error; a key this plugin cannot use is skipped.
func (j *jwks) parse(body []byte) ([]key, map[string]bool, []string, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, nil, errors.New("not a JSON Web Key Set: " + strings.TrimPrefix(err.Error(), "json: "))
	}
	if set.Keys == nil {
		return nil, nil, nil, errors.New(`not a JSON Web Key Set: no "keys" list`)
	}
	var (
		keys    []key
		seen    = map[string]bool{}
		ignored []string
	)
	for i, raw := range set.Keys {
		if i == maxJWKSKeys {
			ignored = append(ignored, fmt.Sprintf("%d keys past the first %d", len(set.Keys)-i, maxJWKSKeys))
			break
		}
		k, err := parseJWK(raw, j.hostVerify)
		if k.kid != "" {
			seen[k.kid] = true
		}
		if err != nil {
			ignored = append(ignored, fmt.Sprintf("keys[%d] (kid %q): %v", i, k.kid, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, seen, ignored, nil
}

// jwk is the part of a JSON Web Key (RFC 7517, RFC 7518 section 6,
// RFC 8037) this plugin reads.
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Kid    string   `json:"kid"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// parseJWK compiles one JWK: RSA (n, e), EC on P-256 (x, y) or OKP
// Ed25519 (x), for signatures ("use" absent or "sig"; "key_ops", when
// present, with "verify"). Its "alg", when present, must be one this
// plugin verifies, and then is the only algorithm the key is used with; an
// RSA key without one verifies RS256 and PS256. The returned key carries
// the kid even when the key is refused.
func parseJWK(raw []byte, hostVerify bool) (key, error) {
	var w jwk
	if err := json.Unmarshal(raw, &w); err != nil {
		return key{}, errors.New("malformed JWK")
	}
	k := key{kid: w.Kid, alg: w.Alg, kty: w.Kty}
	switch {
	case w.Use != "" && w.Use != "sig":
		return k, fmt.Errorf("use %q, not sig", w.Use)
	case w.KeyOps != nil && !slices.Contains(w.KeyOps, "verify"):
		return k, errors.New(`key_ops without "verify"`)
	}
	if kty, ok := algKty[w.Alg]; w.Alg != "" && (!ok || kty == ktyOct) {
		return k, fmt.Errorf("alg %q is not supported", w.Alg)
	} else if w.Alg != "" && kty != w.Kty {
		return k, fmt.Errorf("alg %q does not suit a key of type %q", w.Alg, w.Kty)
	}
	switch w.Kty {
	case ktyRSA:
		n, err1 := decodeJWKInt(w.N, "n")
		e, err2 := decodeJWKInt(w.E, "e")
		if err := errors.Join(err1, err2); err != nil {
			return k, err
		}
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return k, errors.New("invalid RSA public key")
		}
		pub, err := checkRSA(n, int(e.Int64()))
		if err != nil {
			return k, err
		}
		der, err := asn1.Marshal(struct {
			N *big.Int
			E int
		}{pub.N, pub.E}) // PKCS#1 RSAPublicKey
		if err != nil {
			return k, err
		}
		k.rsa, k.der = pub, der
	case ktyEC:
		if w.Crv != "P-256" {
			return k, fmt.Errorf("curve %q is not supported (P-256 only)", w.Crv)
		}
		x, err1 := decodeJWKBytes(w.X, "x", 32)
		y, err2 := decodeJWKBytes(w.Y, "y", 32)
		if err := errors.Join(err1, err2); err != nil {
			return k, err
		}
		k.alg = algES256
		k.der = marshalSPKI(oidEC, oidP256, append(append([]byte{4}, x...), y...))
	case ktyOKP:
		if w.Crv != "Ed25519" {
			return k, fmt.Errorf("curve %q is not supported (Ed25519 only)", w.Crv)
		}
		x, err := decodeJWKBytes(w.X, "x", 32)
		if err != nil {
			return k, err
		}
		k.alg = algEdDSA
		k.der = marshalSPKI(oidEd25519, nil, x)
	case ktyOct:
		return k, errors.New("symmetric keys are not taken from a JWKS")
	default:
		return k, fmt.Errorf("key type %q is not supported", w.Kty)
	}
	if hostVerify || k.kty != ktyRSA {
		alg := k.alg
		if alg == "" {
			alg = algRS256
		}
		if err := wasmgate.CheckPublicKey(hostAlg[alg], k.der); err != nil {
			return k, fmt.Errorf("the gateway cannot verify with this key: %w", err)
		}
	}
	return k, nil
}

// decodeJWKBytes decodes a base64url member of exactly size bytes.
func decodeJWKBytes(s, name string, size int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) != size {
		return nil, fmt.Errorf("%q: want %d bytes in base64url", name, size)
	}
	return b, nil
}

// decodeJWKInt decodes a base64url unsigned big-endian integer.
func decodeJWKInt(s, name string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(b) == 0 {
		return nil, fmt.Errorf("%q: want a base64url integer", name)
	}
	return new(big.Int).SetBytes(b), nil
}

// marshalSPKI encodes a SubjectPublicKeyInfo with the algorithm's OID,
// its parameter OID (nil: none, as for Ed25519) and the key bytes.
func marshalSPKI(alg, param asn1.ObjectIdentifier, pub []byte) []byte {
	bits := asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}
	var der []byte
	if param == nil {
		der, _ = asn1.Marshal(struct {
			Algorithm struct{ OID asn1.ObjectIdentifier }
			PublicKey asn1.BitString
		}{struct{ OID asn1.ObjectIdentifier }{alg}, bits})
	} else {
		der, _ = asn1.Marshal(struct {
			Algorithm struct{ OID, Param asn1.ObjectIdentifier }
			PublicKey asn1.BitString
		}{struct{ OID, Param asn1.ObjectIdentifier }{alg, param}, bits})
	}
	return der
}
