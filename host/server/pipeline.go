package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/authz"
	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/ratelimit"
	"github.com/wasmgate/wasmgate/host/router"
	"github.com/wasmgate/wasmgate/host/wasm"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// This file is the request path, top to bottom, in the order of the
// README's request flow: accept (what fasthttp could not read, and the body
// limit decided from the headers: admission.go), admission checks, route
// match, rate limits, the plugins' on_request, the authorize policy, the
// cache or the upstream, the plugins' on_response, then the access log and
// metrics. Every step is a method of the pooled request, which carries the
// snapshot and the route: a step needs nothing else, and nothing here
// reaches the Server.

// request is one client request on its way through the gateway: the
// per-request state, pooled so that a proxied request allocates nothing in
// steady state.
type request struct {
	ctx   *fasthttp.RequestCtx
	snap  *snapshot
	route *route // nil until matched
	// holdsSnapshot: matchRoute took a reference on snap (a route with
	// plugins), released when the request is done.
	holdsSnapshot bool

	match       router.Result
	exchange    proxy.Exchange
	chain       chainState
	id          []byte // X-Request-Id
	traceparent []byte
	path        []byte // the canonical path the route matched
	scratch     []byte
	scope       abi.Scope // client IP, and what the plugins say of the request
	limits      limitState
	sticky      stickyState // the user's key hashes, for segments, flags and the split
	cacheStatus string      // the cache status of a cached route's request
	idem        idemState   // the request's idempotency key, on routes with keys
	// clientClose: the client asked to close its connection after this
	// request ("Connection: close", or HTTP/1.0 without keep-alive).
	clientClose bool
	// upstream and target name what answered, for the access log.
	upstream, target string

	// pass is rq.passUpstream, bound once so that handing it to the cache
	// allocates nothing.
	pass cache.Fetcher
	// abortResp takes what an http-wasm guest writes in the
	// handle_response that says the request ended without an answer for
	// it (releaseChain): the client gets the gateway's own.
	abortResp fasthttp.Response
}

var requestPool = sync.Pool{New: func() any {
	rq := &request{
		id:          make([]byte, 0, 128),
		traceparent: make([]byte, 0, 64),
		path:        make([]byte, 0, 256),
		scratch:     make([]byte, 0, 256),
		scope:       abi.Scope{Client: make([]byte, 0, 48)},
	}
	rq.pass = rq.passUpstream
	rq.match.Traits = rq
	rq.scope.Flags = rq
	return rq
}}

// handle is the proxy listener's handler: one client request, in one pass.
func (s *Server) handle(ctx *fasthttp.RequestCtx) { s.serve(ctx, "") }

// serve serves one request of a client speaking proto ("HTTP/2.0" from the
// HTTP/2 front, which hands requests on as HTTP/1.1; "" reads it from the
// request).
func (s *Server) serve(ctx *fasthttp.RequestCtx, proto string) {
	inFlight := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	gauge := s.metrics.InFlight()
	gauge.Inc()
	defer gauge.Dec()

	rq := requestPool.Get().(*request)
	rq.start(ctx, s.snap.Load(), proto)
	rq.serve(inFlight)
	rq.end()
	requestPool.Put(rq)
}

// The client protocols http-wasm guests read (get_protocol_version).
const (
	strProtoHTTP10 = "HTTP/1.0"
	strProtoHTTP11 = "HTTP/1.1"
	strProtoHTTP2  = "HTTP/2.0"
)

// start readies a pooled request for ctx on snap.
func (rq *request) start(ctx *fasthttp.RequestCtx, snap *snapshot, proto string) {
	rq.ctx, rq.snap, rq.route, rq.holdsSnapshot = ctx, snap, nil, false
	rq.scope.Reset()
	rq.scope.Client = clientIP(ctx, snap.trusted, rq.scope.Client)
	rq.scope.Peer = ctx.RemoteAddr()
	switch {
	case proto != "":
		rq.scope.Proto = proto
	case ctx.Request.Header.IsHTTP11():
		rq.scope.Proto = strProtoHTTP11
	default:
		rq.scope.Proto = strProtoHTTP10
	}
	rq.limits.reset()
	rq.sticky.reset()
	rq.cacheStatus, rq.upstream, rq.target = "", "", ""
	rq.idem = idemState{}
	// Read before the hop-by-hop headers go: the client's "Connection:
	// close" still decides what happens to its connection.
	rq.clientClose = ctx.Request.Header.ConnectionClose()
}

// end releases what the request held.
func (rq *request) end() {
	if rq.holdsSnapshot {
		rq.snap.release()
	}
	rq.ctx, rq.snap, rq.route = nil, nil, nil
}

// serve runs the steps of the request flow.
func (rq *request) serve(inFlight int64) {
	if rej := rq.admit(inFlight); rej != nil {
		rq.refuse(rej)
		return
	}
	if !rq.matchRoute() {
		rq.refuse(rejectNoRoute)
		return
	}
	rt := rq.route
	// fasthttp refused a body over the route's limit by its headers
	// (bodyLimit); this catches one read under a config since replaced.
	if int64(len(rq.ctx.Request.Body())) > rt.bodyLimit {
		rq.refuse(rejectBodyTooLong)
		return
	}
	if rt.limits != nil && rt.limits.before && !rq.decideLimits(false) {
		rq.finish()
		return
	}
	if len(rt.chain) > 0 && rq.runRequestChain() {
		// Answered by a plugin, a fail_closed plugin's failure or a rate
		// limit: the plugins the request passed see the answer (with what
		// http-wasm guests among them wrote to it, when a plugin answered).
		rq.runResponseChain(rq.chain.local)
		rq.answer()
		return
	}
	if !rt.upstream {
		rq.releaseChain()
		rq.refuse(rejectNoUpstream)
		return
	}
	if rej := rq.prepareUpstream(); rej != nil {
		rq.releaseChain()
		rq.refuse(rej)
		return
	}
	if rt.idem != nil {
		rej := rq.claimKey()
		if rej == nil && rq.leaseLost() {
			rq.idem.claimed = false
			rej = rejectIdemInFlight
		}
		if rej != nil {
			rq.releaseChain()
			rq.refuse(rej)
			return
		}
	}
	var err error
	switch {
	case rq.idem.replay != nil:
		rq.replayKey()
	case rt.cache != nil:
		err = rq.serveFromCache()
	default:
		err = rq.proxy()
	}
	if rt.idem != nil {
		rq.settleKey(err)
	}
	if err != nil {
		rq.upstreamFailed(err)
		return
	}
	if rt.shadow != nil && rq.idem.replay == nil {
		rq.mirror(rt.shadow)
	}
	if len(rt.chain) > 0 {
		rq.runResponseChain(true)
	}
	rq.answer()
}

// admit runs the admission checks (admission.go), settles the request id
// and refuses a request over the concurrency limit.
func (rq *request) admit(inFlight int64) *rejection {
	h := &rq.ctx.Request.Header
	rej := checkRequest(&rq.ctx.Request, &rq.path, rq.snap.paths)
	// Request id: keep a sane client-sent one, otherwise make one. It is
	// forwarded, echoed and logged: one value, whatever the client sent.
	rq.id = rq.id[:0]
	if id := h.Peek(headerRequestID); validRequestID(id) {
		rq.id = append(rq.id, id...)
	} else {
		rq.id = appendRandomID(rq.id)
	}
	setOnly(h, keyRequestID, rq.id)
	if rej != nil {
		return rej
	}
	listen := &rq.snap.cfg.Listen
	if max := int64(listen.MaxConcurrentRequests); max > 0 && inFlight > max {
		rq.ctx.Response.Header.Set("Retry-After", strconv.Itoa(retryAfterSeconds(listen.RetryAfter.D())))
		return rejectOverload
	}
	return nil
}

// matchRoute finds the request's route. For a route with plugins it takes
// a reference on the snapshot, so that the plugin bindings stay open until
// the request is done; if a reload retired the snapshot in the meantime,
// the request is matched again on the new one.
func (rq *request) matchRoute() bool {
	for {
		snap := rq.snap
		if !snap.table.Match(&rq.ctx.Request, rq.path, &rq.match) {
			return false
		}
		rt := snap.routes[rq.match.Route]
		// A reference keeps the snapshot's plugins, and the Redis
		// connection an idempotency key is settled on, open until the
		// request is done.
		if len(rt.chain) == 0 && rt.idem == nil {
			rq.route = rt
			return true
		}
		if snap.acquire() {
			rq.route, rq.holdsSnapshot = rt, true
			return true
		}
		rq.snap = snap.svc.current.Load()
	}
}

// decideLimits decides the route's limit groups of one phase (before the
// plugin chain, or keyed by consumer). When one refuses the request it
// writes the 429 and returns false; the caller finishes the request.
func (rq *request) decideLimits(afterChain bool) bool {
	rt, ls := rq.route, &rq.limits
	if afterChain {
		ls.afterDone = true
	}
	for _, g := range rt.limits.groups {
		if g.key == "plugin" || g.afterPlg != afterChain {
			continue
		}
		ls.subject = rq.limitSubject(ls.subject[:0], g)
		d := &ls.decision
		if err := g.store.Decide(background, string(ls.subject), g.limits, 1, d); err != nil {
			// The stores fail open onto the local limiter themselves; an
			// error here is a bug or a canceled context: let the request pass.
			rq.snap.svc.log.Error("rate limit decision failed", "route", rt.name, "err", err)
			continue
		}
		if d.Fallback {
			rq.snap.svc.metrics.RedisFallback()
		}
		rt.metrics.RateLimited(d.Allowed)
		ls.note(g, d)
		if !d.Allowed {
			rq.ctx.Response.Reset()
			rq.ctx.Response.Header.Set("Retry-After", strconv.FormatInt(ratelimit.RetryAfterSeconds(d.RetryAfter), 10))
			rq.setLimitHeaders()
			rq.writeError(rejectRateLimited)
			return false
		}
	}
	return true
}

// limitSubject appends the store key of the request for group g.
func (rq *request) limitSubject(dst []byte, g *limitGroup) []byte {
	dst = append(dst, g.id...)
	dst = append(dst, 0)
	switch {
	case g.key == "route":
	case g.key == "consumer" && len(rq.scope.Consumer) > 0:
		dst = append(dst, "c:"...)
		dst = append(dst, rq.scope.Consumer...)
	case g.header != nil:
		if v := rq.ctx.Request.Header.PeekBytes(g.header); len(v) > 0 {
			dst = append(dst, "h:"...)
			return append(dst, v...)
		}
		fallthrough
	default: // client_ip, and consumer or header:NAME when the request has none
		dst = append(dst, "ip:"...)
		dst = append(dst, rq.scope.Client...)
	}
	return dst
}

// consumerLimitDue reports whether the request's consumer-keyed limits are
// still to be decided: they are, as soon as a plugin names the consumer, or
// when the chain ends without one (then per client IP).
func (rq *request) consumerLimitDue() bool {
	rl := rq.route.limits
	return rl != nil && rl.after && !rq.limits.afterDone
}

// runRequestChain runs on_request of the route's plugins in order. It
// reports true when the request is answered: by a plugin's local response,
// by a consumer-keyed rate limit, or by the gateway because a fail_closed
// plugin failed.
func (rq *request) runRequestChain() bool {
	cs := &rq.chain
	// The authorize policy is decided once the last plugin that can
	// establish who the caller is has run (or been skipped), before any
	// later plugin acts on the request.
	decided := rq.route.authorize == nil
	for i, l := range rq.route.chain {
		cs.reached = i
		if !decided && i > rq.route.authorizeAt {
			decided = true
			if !rq.authorize() {
				return true // the 401 or 403; the plugins before this one see it
			}
		}
		v := l.version(rq)
		cs.versions[i] = v
		if !l.onRequest && !l.fresh {
			continue
		}
		inst, err := v.binding.Acquire(background)
		if err != nil {
			if rq.pluginFailed(l, v, err) {
				return true
			}
			continue
		}
		action := int32(abi.Continue)
		if l.onRequest {
			start := v.startCall(l)
			action, err = inst.OnRequest(&rq.ctx.Request, &rq.ctx.Response, &rq.scope)
			v.endCall(start)
		}
		if err == nil && (l.fresh || inst.Pending()) {
			// Fresh mode, or an http-wasm guest that said next=1: its
			// handle_response runs on this instance.
			cs.held[i] = inst
		} else {
			v.binding.Release(inst, err != nil)
		}
		if err != nil {
			if rq.pluginFailed(l, v, err) {
				return true
			}
			continue
		}
		// Consumer-keyed limits count as soon as a plugin names the
		// consumer: before later plugins (an aggregation fan-out) run.
		if rq.consumerLimitDue() && (len(rq.scope.Consumer) > 0 || action == abi.Stop) && !rq.decideLimits(true) {
			return true // the 429; the plugins before this one see it
		}
		if action == abi.Stop {
			// A local answer given before the policy was decided is served
			// when it is an error (an auth plugin's 401, say) or the policy
			// admits the request: else a plugin placed before the auth
			// plugin would answer for anyone. It is the plugin's answer
			// (cs.local) unless the policy replaced it with a refusal.
			cs.local = decided || rq.ctx.Response.StatusCode() >= 400 || rq.authorize()
			return true // a local response: the plugins before this one see it
		}
	}
	cs.reached = len(rq.route.chain)
	if !decided && !rq.authorize() {
		return true // the 401 or 403; every plugin of the chain sees it
	}
	return rq.consumerLimitDue() && !rq.decideLimits(true)
}

var (
	keyWWWAuthenticate    = []byte("WWW-Authenticate")
	rejectUnauthenticated = &rejection{status: fasthttp.StatusUnauthorized, code: "unauthorized", reason: "unauthorized"}
	rejectForbidden       = &rejection{status: fasthttp.StatusForbidden, code: "forbidden", reason: "forbidden"}
)

// authorize decides the route's policy on the consumer and claims the
// chain established. A refusal is answered like a plugin's local
// response, and reports false.
func (rq *request) authorize() bool {
	d := rq.route.authorize.Decide(rq.scope.Consumer, rq.scope.Claims)
	if d.Verdict == authz.Allow {
		return true
	}
	rej := *rejectForbidden
	if d.Verdict == authz.Unauthenticated {
		rej = *rejectUnauthenticated
	}
	rej.msg = d.Reason
	rq.snap.svc.metrics.Rejected(rej.reason)
	rq.ctx.Response.Reset()
	if d.Challenge != "" {
		rq.ctx.Response.Header.SetCanonical(keyWWWAuthenticate, []byte(d.Challenge))
	}
	rq.writeError(&rej)
	return false
}

// pluginFailed applies the plugin's failure policy: fail_open skips it
// (counted) and reports false; fail_closed answers the request with a JSON
// error naming the plugin and reports true.
func (rq *request) pluginFailed(l *link, v *linkVersion, err error) bool {
	var pe *wasm.PluginError
	kind := "other"
	if errors.As(err, &pe) {
		kind = pe.Kind.String()
	}
	backpressure := errors.Is(err, wasm.ErrPoolExhausted) || errors.Is(err, wasm.ErrQuarantined)
	if !backpressure {
		v.failures.Add(1) // the version's own fault, not backpressure
	}
	if l.failOpen {
		rq.snap.svc.metrics.PluginSkipped(l.plugin, rq.route.name, kind)
		return false
	}
	resp := &rq.ctx.Response
	status, code := fasthttp.StatusBadGateway, "plugin_failed"
	resp.Reset()
	if backpressure {
		status, code = fasthttp.StatusServiceUnavailable, "plugin_unavailable"
		resp.Header.Set("Retry-After", "1")
	}
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	body := make([]byte, 0, 160)
	body = append(body, `{"error":"`...)
	body = append(body, code...)
	body = append(body, `","plugin":`...)
	body = strconv.AppendQuote(body, l.plugin)
	body = append(body, `,"kind":`...)
	body = strconv.AppendQuote(body, kind)
	body = append(body, `,"request_id":`...)
	body = strconv.AppendQuote(body, string(rq.id))
	body = append(body, "}\n"...)
	resp.SetBodyRaw(body)
	return true
}

// prepareUpstream turns the client request into the upstream request in
// place: the route's path rewrite (unless a plugin changed the path: the
// plugin then decides it), and, unless the route is cached, the forwarding
// headers. A cached route's cache key is made from the rewritten path; its
// forwarding headers are made only when a request goes upstream
// (passUpstream), so that a hit never pays for them.
func (rq *request) prepareUpstream() *rejection {
	req := &rq.ctx.Request
	if rq.route.rewrite && bytes.Equal(rq.path, req.URI().PathOriginal()) {
		// The rewrite joins canonical pieces. A param that makes a dot
		// segment of it ("/v../api" through "/internal/{ver}/api") would
		// climb out of the rewrite's prefix: refused, like a result with
		// no canonical form. Cleaning the rest keeps what the upstream
		// receives canonical (an empty param can leave "//").
		rq.scratch = rq.snap.table.Rewrite(rq.scratch[:0], rq.path, &rq.match)
		clean, err := httpsyntax.CleanPath(rq.path[:0], rq.scratch, httpsyntax.KeepEscapedSlashes)
		if err != nil || httpsyntax.HasDotSegment(rq.scratch) {
			return rejectRewrite
		}
		rq.path = clean
		req.URI().SetPathBytes(clean)
	}
	if rq.route.cache == nil {
		rq.prepareForwarding(req)
	}
	return nil
}

// prepareForwarding adds the forwarding and tracing headers, before the
// host rewrite, and makes the request one of the gateway's own version:
// the client's version describes its connection, not the upstream's.
// (checkRequest stripped the client's hop-by-hop headers.)
func (rq *request) prepareForwarding(req *fasthttp.Request) {
	if len(rq.route.chain) > 0 {
		// Hop-by-hop headers a plugin set describe no connection of the
		// gateway's: they go too.
		proxy.StripHopByHop(&req.Header)
	}
	if !bytes.Equal(req.Header.Protocol(), strHTTP11) {
		req.Header.SetProtocolBytes(strHTTP11)
	}
	req.Header.ResetConnectionClose()
	proto := protoHTTP
	if rq.ctx.IsTLS() {
		proto = protoHTTPS
	}
	proxy.SetForwarded(req, rq.scope.Client, proto, req.URI().Host())
	// Two traceparent headers are no trace context at all (W3C Trace
	// Context, 3.2): a new trace starts.
	var in []byte
	if all := req.Header.PeekAll(headerTraceparent); len(all) == 1 {
		in = all[0]
	}
	rq.traceparent = appendTraceparent(rq.traceparent[:0], in)
	setOnly(&req.Header, keyTraceparent, rq.traceparent)
}

var protoHTTP, protoHTTPS = []byte("http"), []byte("https")

// proxy sends the request to the route's upstream.
func (rq *request) proxy() error {
	x := &rq.exchange
	*x = proxy.Exchange{Req: &rq.ctx.Request, Resp: &rq.ctx.Response, ClientIP: rq.scope.Client, NotAfter: rq.leaseEnd()}
	var err error
	rq.upstream, err = rq.route.send(x, rq.pickUpstream())
	rq.target = x.Target
	return err
}

// serveFromCache answers a cached route's request from its cache, which
// goes upstream (through the route's fill, or passUpstream) when it must.
func (rq *request) serveFromCache() error {
	var key []byte
	if len(rq.scope.CacheKey) > 0 {
		key = rq.scope.CacheKey
	}
	rt := rq.route
	status, err := rt.cache.Serve(&rq.ctx.Request, &rq.ctx.Response, key, cache.Fetchers{Fill: rt.fill, Pass: rq.pass})
	rq.cacheStatus = status.String()
	rt.metrics.CacheServed(rq.cacheStatus)
	return err
}

// fillUpstream is the route's cache's Fill fetcher. A fill request is the
// cache's own, built from the key alone: it serves every client alike, so
// it carries no client's forwarding chain, only the proto and host the key
// names, and a trace of its own.
func (rt *route) fillUpstream(req *fasthttp.Request, resp *fasthttp.Response) error {
	req.Header.SetCanonical(keyXForwardedProto, protoHTTP)
	req.Header.SetCanonical(keyXForwardedHost, req.Header.Host())
	var tp [64]byte
	req.Header.SetCanonical(keyTraceparent, appendTraceparent(tp[:0], nil))
	_, err := rt.send(&proxy.Exchange{Req: req, Resp: resp}, rt.traffic.Load().pickAny(rt.index))
	return err
}

var (
	keyXForwardedProto = []byte("X-Forwarded-Proto")
	keyXForwardedHost  = []byte("X-Forwarded-Host")
)

// passUpstream is the cache's Pass fetcher of a request: a bypassed
// request is the client's own, prepared like any proxied request only now.
func (rq *request) passUpstream(req *fasthttp.Request, resp *fasthttp.Response) error {
	rq.prepareForwarding(req)
	x := &rq.exchange
	*x = proxy.Exchange{Req: req, Resp: resp, ClientIP: rq.scope.Client, NotAfter: rq.leaseEnd()}
	_, err := rq.route.send(x, rq.pickUpstream())
	return err
}

// send sends x through up, one of the route's upstreams, with the route's
// timeouts, retries and host rewrite (last: the cache key and
// X-Forwarded-Host keep the client's host), counted in the upstream's
// metrics. It returns the upstream's name.
func (rt *route) send(x *proxy.Exchange, up *managedUpstream) (string, error) {
	if rt.rewriteHost != nil {
		x.Req.Header.SetHostBytes(rt.rewriteHost)
		x.Req.URI().SetHostBytes(rt.rewriteHost)
	}
	x.Timeouts, x.Retries, x.MaxResponseBody = rt.timeouts, rt.retries, rt.responseLimit
	err := up.Do(x)
	m := rt.svc.metrics
	m.Retries(up.Name(), x.Attempts-1)
	if err != nil {
		m.UpstreamError(up.Name(), errorKind(err))
		return up.Name(), err
	}
	proxy.StripHopByHopResponse(&x.Resp.Header)
	return up.Name(), nil
}

// errorKind is the metric label of a failed exchange.
func errorKind(err error) string {
	var perr *proxy.Error
	if errors.As(err, &perr) {
		return perr.Kind.String()
	}
	return "other"
}

// upstreamFailed answers a request its upstream did not answer, with the
// status the kind of failure calls for.
func (rq *request) upstreamFailed(err error) {
	status := fasthttp.StatusBadGateway
	var perr *proxy.Error
	if errors.As(err, &perr) {
		status = perr.Status()
	}
	kind := errorKind(err)
	rq.ctx.Response.Reset()
	rq.releaseChain()
	rq.refuse(&rejection{status: status, code: "upstream_" + kind, msg: "the upstream did not answer: " + kind})
}

// runResponseChain runs on_response in reverse order over the plugins the
// request passed, then releases what the request held. With merge, what
// http-wasm guests wrote to the response before they said next=1 goes into
// the answer first (outer plugins first, as middleware would have written
// it); not into the gateway's own refusals.
func (rq *request) runResponseChain(merge bool) {
	cs := &rq.chain
	if merge {
		for i := 0; i < cs.reached; i++ {
			if inst := cs.held[i]; inst != nil {
				inst.MergeEarly(&rq.ctx.Response, rq.ctx.IsHead())
			}
		}
	}
	for i := cs.reached - 1; i >= 0; i-- {
		l, v := rq.route.chain[i], cs.versions[i]
		if !l.onResponse {
			continue
		}
		inst := cs.held[i]
		if inst == nil {
			if v.binding.ABI() == wasm.ABIHTTPWasm {
				// handle_response runs only on the instance whose
				// handle_request said next=1: this one failed open.
				continue
			}
			var err error
			if inst, err = v.binding.Acquire(background); err != nil {
				if rq.pluginFailed(l, v, err) {
					break
				}
				continue
			}
		}
		cs.held[i] = nil
		start := v.startCall(l)
		err := inst.OnResponse(&rq.ctx.Request, &rq.ctx.Response, &rq.scope)
		v.endCall(start)
		v.binding.Release(inst, err != nil)
		if err != nil && rq.pluginFailed(l, v, err) {
			break
		}
	}
	rq.releaseChain()
}

// releaseChain returns instances still held (fresh mode, http-wasm) to
// their bindings, innermost first. An http-wasm guest whose handle_request
// said next=1 is told the request ended without an answer for it
// (handle_response with is_error 1): the upstream failed, or the gateway
// refused the request after the chain.
func (rq *request) releaseChain() {
	if rq.route == nil {
		return
	}
	cs := &rq.chain
	for i := len(rq.route.chain) - 1; i >= 0; i-- {
		inst := cs.held[i]
		if inst == nil {
			continue
		}
		failed := false
		if v := cs.versions[i]; inst.Pending() {
			// Counted as any hook call, for automatic rollback and canary
			// comparisons; its failure changes no answer.
			start := v.startCall(rq.route.chain[i])
			failed = inst.AbortResponse(&rq.ctx.Request, &rq.abortResp, &rq.scope) != nil
			v.endCall(start)
			if failed {
				v.failures.Add(1)
			}
			rq.abortResp.Reset()
		}
		cs.versions[i].binding.Release(inst, failed)
		cs.held[i] = nil
	}
	cs.reached, cs.local = 0, false
}

// answer completes the response the request got: the request id, the
// rate limit headers, then the log.
func (rq *request) answer() {
	rq.ctx.Response.Header.SetCanonical(keyRequestID, rq.id)
	rq.setLimitHeaders()
	rq.finish()
}

var (
	keyRateLimitPolicy = []byte("RateLimit-Policy")
	keyRateLimit       = []byte("RateLimit")
)

// setLimitHeaders adds the route's RateLimit-Policy and the tightest
// RateLimit of the request to its response.
func (rq *request) setLimitHeaders() {
	rl := rq.route.limits
	if rl == nil || rq.limits.tightest < 0 {
		return
	}
	if len(rl.policy) > 0 {
		rq.ctx.Response.Header.SetCanonical(keyRateLimitPolicy, rl.policy)
	}
	rq.ctx.Response.Header.SetCanonical(keyRateLimit, rq.limits.header)
}

// refuse answers with a JSON error naming the request id, then logs and
// counts it.
func (rq *request) refuse(rej *rejection) {
	if rej.reason != "" {
		rq.snap.svc.metrics.Rejected(rej.reason)
	}
	rq.writeError(rej)
	if rej.close {
		rq.clientClose = true
	}
	rq.finish()
}

// writeError sets the response to a JSON error naming the request id.
func (rq *request) writeError(rej *rejection) {
	ctx := rq.ctx
	ctx.SetStatusCode(rej.status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.SetCanonical(keyRequestID, rq.id)
	body := make([]byte, 0, 128)
	body = append(body, `{"error":"`...)
	body = append(body, rej.code...)
	body = append(body, `","message":`...)
	body = strconv.AppendQuote(body, rej.msg)
	body = append(body, `,"request_id":`...)
	body = strconv.AppendQuote(body, string(rq.id))
	body = append(body, "}\n"...)
	ctx.Response.SetBodyRaw(body)
}

// finish records metrics and the access log line of a request.
func (rq *request) finish() {
	ctx, snap := rq.ctx, rq.snap
	if rq.clientClose {
		ctx.SetConnectionClose()
	}
	elapsed := time.Since(ctx.Time())
	status := ctx.Response.StatusCode()
	bytesIn, bytesOut := len(ctx.Request.Body()), sentBodyLen(ctx)
	routeName := ""
	m := snap.noRoute
	if rq.route != nil {
		m, routeName = rq.route.metrics, rq.route.name
	}
	m.Observe(status, elapsed.Seconds(), bytesIn, bytesOut)
	if snap.accessLog == nil {
		return
	}
	snap.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", string(rq.id)),
		slog.String("route", routeName),
		slog.String("method", string(ctx.Method())),
		slog.String("path", string(ctx.Request.Header.RequestURI())),
		slog.Int("status", status),
		slog.String("upstream", rq.upstream),
		slog.String("target", rq.target),
		slog.Int("bytes_in", bytesIn),
		slog.Int("bytes_out", bytesOut),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("client_ip", string(rq.scope.Client)),
		slog.String("consumer", string(rq.scope.Consumer)),
		slog.String("cache", rq.cacheStatus),
	)
}

// sentBodyLen is the size of the body the client is sent: none on a HEAD
// request or with a status that has no body (1xx, 204, 304), whatever the
// response holds (a cached body on HEAD, the length a plugin's body_set
// stands for: sdk/ABI.md, "Bodies: HEAD and statuses without one").
func sentBodyLen(ctx *fasthttp.RequestCtx) int {
	if ctx.IsHead() || sdkabi.BodylessStatus(ctx.Response.StatusCode()) {
		return 0
	}
	return len(ctx.Response.Body())
}

// handleReadError answers requests fasthttp could not read: too large,
// too slow or malformed. Its log line names the kind and the client, never
// the request's bytes (fasthttp's error quotes them, credentials and all),
// and is rate-limited.
func (s *Server) handleReadError(ctx *fasthttp.RequestCtx, err error) {
	status, reason := fasthttp.StatusBadRequest, "bad_request"
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.As(err, &small) && requestLineIncomplete(small):
		status, reason = fasthttp.StatusRequestURITooLong, "uri_too_long"
	case errors.As(err, &small):
		status, reason = fasthttp.StatusRequestHeaderFieldsTooLarge, "header_too_large"
	case errors.Is(err, fasthttp.ErrUnsupportedTransferEncoding), strings.Contains(err.Error(), "unsupported transfer-encoding"):
		status, reason = fasthttp.StatusNotImplemented, rejectCoding.reason
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, reason = fasthttp.StatusRequestEntityTooLarge, "body_too_large"
	case errors.As(err, &netErr) && netErr.Timeout():
		status, reason = fasthttp.StatusRequestTimeout, "read_timeout"
	}
	s.metrics.Rejected(reason)
	id := appendRandomID(make([]byte, 0, 32))
	if s.clientLog.Allow() {
		var ip []byte
		if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
			ip = tcp.IP
		}
		s.log.Warn("request refused before routing", "reason", reason, "status", status,
			"client_ip", net.IP(ip).String(), "request_id", string(id))
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetConnectionClose()
	ctx.Response.Header.SetCanonical(keyRequestID, id)
	ctx.SetBodyString(`{"error":"` + reason + `","request_id":"` + string(id) + `"}` + "\n")
}

// requestLineIncomplete reports whether the read buffer filled up before
// the request line ended: the request-target alone is too long (414), as
// opposed to the headers (431). fasthttp tells it only in its message,
// which quotes the first and the last 200 bytes it read: a line end in
// either means the request line ended. With none, the line is taken as
// unended; the one misreading is a request line over 200 bytes followed by
// one header line longer than 200 bytes that overflows (414, not 431).
// (A test pins this to fasthttp's behaviour.)
func requestLineIncomplete(err *fasthttp.ErrSmallBuffer) bool {
	_, contents, ok := strings.Cut(err.Error(), "contents: ")
	return ok && !strings.Contains(contents, `\n`)
}

func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}
