package cache

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// errFillAborted is what waiters get when the fill they waited for ended
// without a result (its Fetcher panicked).
var errFillAborted = errors.New("cache: fill aborted")

// maxAttempts bounds the lookups of one Serve: a second one follows a fill
// whose response varies on a header the fill could not know to send
// (first fill of a Vary resource), a third covers a racing replacement.
// Past it the request is passed through.
const maxAttempts = 3

// Canonical header names, for PeekCanonical and SetCanonical: the
// string forms make fasthttp copy and normalize the name on every call.
var (
	hAuthorization   = []byte(fasthttp.HeaderAuthorization)
	hCacheControl    = []byte(fasthttp.HeaderCacheControl)
	hPragma          = []byte(fasthttp.HeaderPragma)
	hIfNoneMatch     = []byte(fasthttp.HeaderIfNoneMatch)
	hIfModSince      = []byte(fasthttp.HeaderIfModifiedSince)
	ageName          = []byte(fasthttp.HeaderAge)
	surrogateKey     = "Surrogate-Key"
	surrogateControl = "Surrogate-Control"
)

// use is the judgement of a stored response for one request.
type use uint8

const (
	useFresh        use = iota // serve it
	useStale                   // serve it stale (client max-stale)
	useStaleRefresh            // serve it stale and refresh in the background
	useValidate                // revalidate (or refetch) first
)

// fillResult is what a fill found, shared with the requests coalesced
// behind it.
type fillResult struct {
	e      *entry   // shareable response (storable; stored unless ristretto or a purge refused)
	vary   [][]byte // its Vary names
	status Status   // with e: Miss or Revalidated
	err    error    // the Fetcher failed
	// upstreamErr: the upstream answered 500, 502, 503 or 504 (or failed),
	// so stale-if-error may apply.
	upstreamErr bool
	// serverErr: the upstream answered a 5xx that is not stored. Everyone
	// who asked gets it (the leader in its response, the waiters a copy
	// in errResp, nil when none waited): resending N requests to an
	// upstream that just failed would multiply its load by N.
	serverErr bool
	errResp   *fasthttp.Response
}

// Serve answers resp for the client request req. GET and HEAD are looked
// up and filled; any other method, and requests the cache must not touch,
// are passed to fetch untouched (Bypass), and a successful unsafe method
// invalidates the stored responses of its target URI.
//
// key, when not nil (set by a plugin), replaces the computed key for the
// lookup and store, as "@" followed by key: a computed key never starts
// with '@', so a plugin's key cannot name (and poison) the entry of a
// computed one. Admins list and purge it as "@" + key. The fill request
// is built from the keyed request parts either way. Serve returns the status (also written into the status
// header) and, when the upstream failed and nothing stale could be served,
// the Fetcher's error, for the caller to answer 502 or 504.
//
// A response served from the store shares its body with the store
// (SetBodyRaw): callers may replace resp's body but must not modify it in
// place.
func (c *Cache) Serve(req *fasthttp.Request, resp *fasthttp.Response, key []byte, fetch Fetchers) (Status, error) {
	p := c.pol.Load()
	if c.closed.Load() {
		return c.pass(p, req, resp, fetch, Bypass)
	}
	method := req.Header.Method()
	get, head := string(method) == fasthttp.MethodGet, string(method) == fasthttp.MethodHead
	if !get && !head {
		st, err := c.pass(p, req, resp, fetch, Bypass)
		if err == nil && unsafeMethod(method) && resp.StatusCode() < 400 {
			c.invalidate(p, req)
		}
		return st, err
	}
	if !p.key.authKeyed && len(req.Header.PeekCanonical(hAuthorization)) > 0 {
		return c.pass(p, req, resp, fetch, Bypass)
	}

	var rd directives
	rd.reset()
	if cc := req.Header.PeekCanonical(hCacheControl); len(cc) > 0 {
		parseCacheControl(cc, &rd)
	} else if inList(req.Header.PeekCanonical(hPragma), []byte("no-cache")) {
		rd.flags |= ccNoCache // RFC 9111 section 5.4
	}

	sc := getScratch()
	defer putScratch(sc)
	p.key.collect(req, sc)
	lookup, base := sc.key, sc.base
	if key != nil {
		// In the scratch memory, so that a hit stays allocation-free.
		sc.pkey = append(append(sc.pkey[:0], '@'), key...)
		lookup, base = sc.pkey, len(sc.pkey)
	}

	for range maxAttempts {
		now := p.now()
		n := c.st.get(lookup)
		var e *entry
		if n != nil {
			sc.sec = appendSecondary(sc.sec[:0], n.vary, &req.Header, &sc.tmp)
			if e = n.match(sc.sec); e != nil && !p.statusOK(e.status) {
				e = nil // Statuses changed since it was stored
			}
			if e == nil && n.passing(sc.sec, now) && !rd.has(ccOnlyIfCached) {
				return c.pass(p, req, resp, fetch, Bypass)
			}
		}
		if e != nil {
			switch judge(p, e, &rd, now) {
			case useFresh:
				return c.serve(p, req, resp, e, Hit, now, sc), nil
			case useStale:
				return c.serve(p, req, resp, e, Stale, now, sc), nil
			case useStaleRefresh:
				c.refresh(p, req, sc, lookup, base, n, e, fetch.Fill)
				return c.serve(p, req, resp, e, Stale, now, sc), nil
			}
		}
		if rd.has(ccOnlyIfCached) {
			resp.Reset()
			resp.SetStatusCode(fasthttp.StatusGatewayTimeout)
			c.setStatus(p, resp, Miss)
			c.count(Miss)
			return Miss, nil
		}
		if rd.has(ccNoStore) {
			// Nothing stored is usable and the response may not be
			// stored: nothing for the cache to do.
			return c.pass(p, req, resp, fetch, Miss)
		}
		st, err, again := c.fill(p, req, resp, sc, lookup, base, n, e, fetch)
		if !again {
			return st, err
		}
	}
	return c.pass(p, req, resp, fetch, Bypass)
}

// judge decides how a stored response may answer a request (RFC 9111
// sections 4.2 and 5.2.1, RFC 5861).
func judge(p *policy, e *entry, rd *directives, now time.Time) use {
	if rd.has(ccNoCache) {
		return useValidate
	}
	age, life := e.age(now), e.lifetime(p)
	// The client's limits: max-age on the age, min-fresh on what is left.
	strict := (rd.maxAge >= 0 && age > secs(rd.maxAge)) ||
		(rd.minFresh >= 0 && life-age < secs(rd.minFresh))
	if strict || e.noCache {
		return useValidate
	}
	if life > age {
		return useFresh
	}
	if !e.mayServeStale() {
		return useValidate
	}
	staleness := age - life
	if rd.has(ccMaxStaleAny) || (rd.maxStale >= 0 && staleness <= secs(rd.maxStale)) {
		return useStale
	}
	if staleness < e.swrWindow(p) {
		return useStaleRefresh
	}
	return useValidate
}

// staleIfError reports whether e may be served because the upstream
// failed.
func staleIfError(p *policy, e *entry, now time.Time) bool {
	if e == nil || !e.mayServeStale() {
		return false
	}
	staleness := e.age(now) - e.lifetime(p)
	return staleness < e.sieWindow(p)
}

func secs(n int64) time.Duration { return time.Duration(n) * time.Second }

// fill gets a response from the upstream for a miss or a revalidation,
// coalesced with the other requests for the same key (and variant). It
// reports again when the request should be looked up once more.
func (c *Cache) fill(p *policy, req *fasthttp.Request, resp *fasthttp.Response, sc *scratch,
	lookup []byte, base int, n *node, stale *entry, fetch Fetchers) (st Status, err error, again bool) {
	// The flight key: the primary key, plus the variant when the Vary
	// names are known.
	sc.tmp = append(sc.tmp[:0], lookup...)
	if n != nil && len(n.vary) > 0 {
		sc.tmp = append(sc.tmp, 0)
		sc.tmp = append(sc.tmp, sc.sec...)
	}
	f, leader := c.fl.join(sc.tmp)
	if !leader {
		c.coalesced.Add(1)
		<-f.done
		return c.follow(p, req, resp, sc, &f.res, stale, fetch)
	}

	published := false
	defer func() {
		if !published { // the Fetcher panicked: release the waiters
			f.res = fillResult{err: errFillAborted}
			c.fl.finish(f)
		}
	}()
	fillReq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(fillReq)
	var vary [][]byte
	var sec []byte
	if n != nil && len(n.vary) > 0 {
		vary, sec = n.vary, sc.sec
	}
	p.key.buildFill(fillReq, req, sc, vary)
	res := c.exchange(p, fillReq, resp, fetch.Fill, lookup, base, vary, sec, stale)
	c.publish(f, res, resp)
	published = true

	now := p.now()
	switch {
	case res.err != nil:
		if staleIfError(p, stale, now) {
			return c.serve(p, req, resp, stale, Stale, now, sc), nil, false
		}
		c.setStatus(p, resp, Miss)
		c.count(Miss)
		return Miss, res.err, false
	case res.e != nil:
		if len(res.vary) > 0 && !bytes.Equal(appendSecondary(sc.sec[:0], res.vary, &req.Header, &sc.tmp), res.e.sec) {
			// The response varies on a header the fill did not carry
			// (unknown before this first response) and this client sent
			// it differently: look up again, now knowing the Vary names.
			return res.status, nil, true
		}
		if res.status == Revalidated || notModified(req, res.e) {
			return c.serve(p, req, resp, res.e, res.status, now, sc), nil, false
		}
		// The upstream's response as it came (the filling client keeps
		// its Set-Cookie), minus what is meant for this cache only.
		resp.Header.Del(surrogateKey)
		resp.Header.Del(surrogateControl)
		c.setAge(resp, res.e.age(now), sc)
		c.setStatus(p, resp, res.status)
		c.count(res.status)
		return res.status, nil, false
	case res.upstreamErr && staleIfError(p, stale, now):
		return c.serve(p, req, resp, stale, Stale, now, sc), nil, false
	case res.serverErr:
		// The upstream failed: the client gets its answer, as the waiters
		// do, rather than a second request to a failing upstream.
		resp.Header.Del(surrogateKey)
		resp.Header.Del(surrogateControl)
		c.setStatus(p, resp, Miss)
		c.count(Miss)
		return Miss, nil, false
	}
	// Not storable: resp answers the fill request, which lacks the
	// client's unkeyed inputs (a session cookie: the anonymous page, or a
	// 401). The client gets the answer to its own request instead, as the
	// waiters do. The variant is hit-for-pass now (but after a 304 to an
	// unconditional request), so this second upstream request is made
	// once per mark, not per request.
	resp.Reset()
	st, err = c.pass(p, req, resp, fetch, Bypass)
	return st, err, false
}

// follow answers a request coalesced behind another request's fill.
func (c *Cache) follow(p *policy, req *fasthttp.Request, resp *fasthttp.Response, sc *scratch,
	res *fillResult, stale *entry, fetch Fetchers) (Status, error, bool) {
	now := p.now()
	switch {
	case res.e != nil:
		if len(res.vary) > 0 && !bytes.Equal(appendSecondary(sc.sec[:0], res.vary, &req.Header, &sc.tmp), res.e.sec) {
			return Miss, nil, true // another variant
		}
		return c.serve(p, req, resp, res.e, res.status, now, sc), nil, false
	case staleIfError(p, stale, now) && (res.err != nil || res.upstreamErr):
		return c.serve(p, req, resp, stale, Stale, now, sc), nil, false
	case res.err != nil:
		c.setStatus(p, resp, Miss)
		c.count(Miss)
		return Miss, res.err, false
	case res.errResp != nil:
		// The fill's 5xx, copied for the waiters (see fillResult).
		res.errResp.CopyTo(resp)
		resp.Header.Del(surrogateKey)
		resp.Header.Del(surrogateControl)
		c.setStatus(p, resp, Miss)
		c.count(Miss)
		return Miss, nil, false
	}
	// The fill's response was not shareable (private, Set-Cookie, ...):
	// this request gets its own, from its own request.
	st, err := c.pass(p, req, resp, fetch, Bypass)
	return st, err, false
}

// publish hands res to the requests waiting for f. A 5xx that is not
// stored is copied for them when there are any: resp is the leader's and
// changes once it returns.
func (c *Cache) publish(f *flight, res fillResult, resp *fasthttp.Response) {
	if c.fl.seal(f) > 0 && res.serverErr {
		res.errResp = new(fasthttp.Response)
		resp.CopyTo(res.errResp)
	}
	f.res = res
	close(f.done)
}

// exchange performs a fill: the upstream request, then storing what may be
// stored. resp holds the upstream's last response afterwards. vary and sec
// are the Vary names of the stored variants and the request's secondary
// key under them (nil when none): a response that is not storable marks
// that variant hit-for-pass.
func (c *Cache) exchange(p *policy, fillReq *fasthttp.Request, resp *fasthttp.Response, fetch Fetcher,
	lookup []byte, base int, vary [][]byte, sec []byte, stale *entry) fillResult {
	conditional := stale != nil && stale.validator()
	for try := 0; ; try++ {
		fillReq.Header.Del(fasthttp.HeaderIfNoneMatch)
		fillReq.Header.Del(fasthttp.HeaderIfModifiedSince)
		if conditional {
			if len(stale.etag) > 0 {
				fillReq.Header.SetBytesV(fasthttp.HeaderIfNoneMatch, stale.etag)
			}
			if len(stale.lastMod) > 0 {
				fillReq.Header.SetBytesV(fasthttp.HeaderIfModifiedSince, stale.lastMod)
			}
		}
		gen := c.st.generation()
		fi := fillInfo{reqTime: p.now()}
		if err := fetch(fillReq, resp); err != nil {
			return fillResult{err: err, upstreamErr: true}
		}
		fi.respTime = p.now()
		fi.authed = len(fillReq.Header.Peek(fasthttp.HeaderAuthorization)) > 0
		fi.date = resp.Header.Peek(fasthttp.HeaderDate)
		fi.age = resp.Header.Peek(fasthttp.HeaderAge)
		code := resp.StatusCode()
		upstreamErr := code == 500 || code == 502 || code == 503 || code == 504
		if upstreamErr && stale != nil {
			// Keep what is stored: stale-if-error may serve it, and an
			// error must not replace a good response.
			return fillResult{upstreamErr: true, serverErr: true}
		}

		var (
			e     *entry
			rvary [][]byte // the response's Vary names
			v     verdict
			st    = Miss
		)
		if code == fasthttp.StatusNotModified {
			if !conditional {
				return fillResult{} // a 304 to an unconditional request: nothing to share
			}
			e, rvary, v = refreshed(p, stale, resp, &fi)
			if v != storable && try == 0 {
				// The 304 does not validate what is stored, or what it
				// says may not be stored: ask for the full response.
				conditional = false
				continue
			}
			st = Revalidated
		} else {
			e, rvary, v = newEntry(p, resp, &fi)
		}
		if v != storable {
			if v.hitForPass() && code < 500 {
				c.markPass(p, lookup, base, vary, sec)
			}
			return fillResult{upstreamErr: upstreamErr, serverErr: code >= 500}
		}
		e.setSecondary(appendSecondary(nil, rvary, &fillReq.Header, new([]byte)))
		c.storeVariant(p, lookup, base, rvary, e, gen)
		return fillResult{e: e, vary: rvary, status: st}
	}
}

// refreshed builds the entry a 304 makes of stale (RFC 9111 section 4.3.4):
// the stored fields updated with the 304's, except Content-Length, and the
// freshness recomputed from the result. A 304 whose strong ETag differs
// from the stored one validates another response: not storable.
func refreshed(p *policy, stale *entry, r304 *fasthttp.Response, fi *fillInfo) (*entry, [][]byte, verdict) {
	if et := r304.Header.Peek(fasthttp.HeaderETag); len(et) > 0 && len(stale.etag) > 0 &&
		!bytes.Equal(opaqueTag(et), opaqueTag(stale.etag)) {
		return nil, nil, notStatus
	}
	m := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(m)
	m.SetStatusCode(stale.status)
	r304.Header.SetNoDefaultContentType(true)
	defer r304.Header.SetNoDefaultContentType(false)
	updated := func(k []byte) bool {
		for k2 := range r304.Header.All() {
			if bytes.EqualFold(k, k2) {
				return true
			}
		}
		return false
	}
	for _, h := range stale.hdr {
		if !updated(h.k) {
			m.Header.AddBytesKV(h.k, h.v)
		}
	}
	hasTags := false
	for k, v := range r304.Header.All() {
		if bytes.EqualFold(k, []byte(fasthttp.HeaderContentLength)) {
			continue
		}
		if bytes.EqualFold(k, []byte(surrogateKey)) || bytes.EqualFold(k, []byte("Cache-Tag")) {
			hasTags = true
		}
		m.Header.AddBytesKV(k, v)
	}
	m.SetBodyRaw(stale.body)
	fi.bodyFrom = stale
	if !hasTags {
		fi.tagsFrom = stale
	}
	return newEntry(p, m, fi)
}

// storeVariant adds e to the variants stored under lookup (replacing the
// hit-for-pass mark of its variant, if any).
func (c *Cache) storeVariant(p *policy, lookup []byte, base int, vary [][]byte, e *entry, gen uint64) {
	c.st.modify(string(lookup), gen, func(cur *node) (*node, time.Duration) {
		now := p.now()
		n, _ := cur.with(string(lookup), base, vary, e).without(func(v *entry) bool { return v != e && variantTTL(p, v, now) <= 0 })
		n.pass = livePass(n.pass, now)
		n.computeCost()
		return n, nodeTTL(p, n, now)
	})
}

// markPass marks the variant sec of lookup (under the Vary names vary;
// the whole key when vary is nil) hit-for-pass: its response was not
// storable, so requests for it go to the upstream in parallel for a while
// instead of queueing behind fills whose responses they may not share.
// The key's other variants stay; a stored response of this variant goes,
// as the upstream has replaced it with one that may not be stored.
func (c *Cache) markPass(p *policy, lookup []byte, base int, vary [][]byte, sec []byte) {
	c.st.modify(string(lookup), c.st.generation(), func(cur *node) (*node, time.Duration) {
		if cur != nil && !slices.EqualFunc(cur.vary, vary, bytes.Equal) {
			if len(cur.vs) > 0 {
				// A response with other Vary names was stored meanwhile:
				// sec means nothing under them, and its variants stay.
				return nil, 0
			}
			cur = nil
		}
		now := p.now()
		n := cur.withPass(string(lookup), base, vary, sec, now.Add(hitForPassTTL), now)
		return n, nodeTTL(p, n, now)
	})
}

// variantTTL is how much longer the store keeps v.
func variantTTL(p *policy, v *entry, now time.Time) time.Duration {
	return v.respTime.Add(v.storeTTL(p)).Sub(now)
}

// nodeTTL is the store TTL of n: it lives as long as its longest-lived
// variant or mark.
func nodeTTL(p *policy, n *node, now time.Time) time.Duration {
	var ttl time.Duration
	for _, v := range n.vs {
		ttl = max(ttl, variantTTL(p, v, now))
	}
	for _, m := range n.pass {
		ttl = max(ttl, m.until.Sub(now))
	}
	return ttl
}

// livePass returns the marks of pass not over at now, in a new slice when
// some are (pass may be shared with a stored node).
func livePass(pass []passMark, now time.Time) []passMark {
	for i, m := range pass {
		if !now.Before(m.until) {
			out := slices.Clone(pass[:i])
			for _, m := range pass[i+1:] {
				if now.Before(m.until) {
					out = append(out, m)
				}
			}
			return out
		}
	}
	return pass
}

// refresh starts a background revalidation of e (stale-while-revalidate),
// unless one is already running for the key.
func (c *Cache) refresh(p *policy, req *fasthttp.Request, sc *scratch, lookup []byte, base int, n *node, e *entry, fetch Fetcher) {
	sc.tmp = append(sc.tmp[:0], lookup...)
	if len(n.vary) > 0 {
		sc.tmp = append(sc.tmp, 0)
		sc.tmp = append(sc.tmp, sc.sec...)
	}
	f, leader := c.fl.join(sc.tmp)
	if !leader {
		return
	}
	c.bgMu.Lock()
	if c.closed.Load() {
		// Close has run: it does not wait for refreshes, so none may
		// start after it.
		c.bgMu.Unlock()
		c.fl.finish(f)
		return
	}
	c.bg.Add(1)
	c.bgMu.Unlock()
	// The client's request and sc are reused once Serve returns: build the
	// fill request and copy the key now.
	fillReq := fasthttp.AcquireRequest()
	p.key.buildFill(fillReq, req, sc, n.vary)
	key := string(lookup)
	var sec []byte
	if len(n.vary) > 0 {
		sec = bytes.Clone(sc.sec)
	}
	go func() {
		defer c.bg.Done()
		resp := fasthttp.AcquireResponse()
		published := false
		defer func() {
			if !published {
				f.res = fillResult{err: errFillAborted}
				c.fl.finish(f)
			}
			fasthttp.ReleaseResponse(resp)
			fasthttp.ReleaseRequest(fillReq)
		}()
		res := c.exchange(p, fillReq, resp, fetch, []byte(key), base, n.vary, sec, e)
		c.publish(f, res, resp)
		published = true
	}()
}

// serve writes the stored response e into resp: a 304 when the client's
// conditional matches, the full response otherwise.
func (c *Cache) serve(p *policy, req *fasthttp.Request, resp *fasthttp.Response, e *entry, st Status, now time.Time, sc *scratch) Status {
	resp.Reset()
	if notModified(req, e) {
		resp.SetStatusCode(fasthttp.StatusNotModified)
		hasETag := len(e.etag) > 0
		for _, h := range e.hdr {
			if keep304(h.k, hasETag) {
				putField(resp, h)
			}
		}
	} else {
		resp.SetStatusCode(e.status)
		for _, h := range e.hdr {
			putField(resp, h)
		}
		resp.SetBodyRaw(e.body)
	}
	c.setAge(resp, e.age(now), sc)
	c.setStatus(p, resp, st)
	c.count(st)
	return st
}

// putField copies a stored field into resp. Stored names are canonical:
// SetCanonical skips the normalization AddBytesKV would redo, and resp was
// reset, so set equals add but for repeated names.
func putField(resp *fasthttp.Response, h hkv) {
	if h.dup {
		resp.Header.AddBytesKV(h.k, h.v)
	} else {
		resp.Header.SetCanonical(h.k, h.v)
	}
}

// pass sends the client's request to the upstream untouched.
func (c *Cache) pass(p *policy, req *fasthttp.Request, resp *fasthttp.Response, fetch Fetchers, st Status) (Status, error) {
	err := fetch.Pass(req, resp)
	c.setStatus(p, resp, st)
	c.count(st)
	return st, err
}

// invalidate removes the stored responses of req's target URI after an
// unsafe method succeeded (RFC 9111 section 4.4).
func (c *Cache) invalidate(p *policy, req *fasthttp.Request) {
	sc := getScratch()
	defer putScratch(sc)
	p.key.collect(req, sc)
	c.st.purgeBase(string(sc.key[:sc.base]))
}

func (c *Cache) setStatus(p *policy, resp *fasthttp.Response, st Status) {
	resp.Header.SetCanonical(p.statusHeader, statusValues[st])
}

func (c *Cache) setAge(resp *fasthttp.Response, age time.Duration, sc *scratch) {
	sc.num = strconv.AppendInt(sc.num[:0], int64(max(0, age)/time.Second), 10)
	resp.Header.SetCanonical(ageName, sc.num)
}

// unsafeMethod reports whether a method may change the resource (RFC 9110
// section 9.2.1): anything but the safe methods.
func unsafeMethod(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodOptions, fasthttp.MethodTrace:
		return false
	}
	return true
}
