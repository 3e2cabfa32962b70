package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/cache"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/router"
)

const (
	headerRequestID   = "X-Request-Id"
	headerTraceparent = "Traceparent"
)

// Canonical header names, for SetCanonical, which skips the normalization
// SetBytesV does on every call.
var (
	keyRequestID   = []byte(headerRequestID)
	keyTraceparent = []byte(headerTraceparent)
)

// requestState is the per-request scratch space, pooled so that a proxied
// request allocates nothing in steady state.
type requestState struct {
	match      router.Result
	exchange   proxy.Exchange
	chain      chainState
	requestID  []byte
	traceparnt []byte
	path       []byte
	scratch    []byte
	scope      abi.Scope // client IP, and what the plugins say of the request
	limits     limitState
	cacheState string // the cache status of a cached route's request
	// clientClose: the client asked to close its connection after this
	// request ("Connection: close", or HTTP/1.0 without keep-alive).
	clientClose bool

	// For a cached route's bypassed request: pass is st.passUpstream,
	// bound once so that handing it to the cache allocates nothing; srv
	// and rt are set while the cache serves the request.
	pass cache.Fetcher
	srv  *Server
	rt   *route
}

var statePool = sync.Pool{New: func() any {
	st := &requestState{
		requestID:  make([]byte, 0, 128),
		traceparnt: make([]byte, 0, 64),
		path:       make([]byte, 0, 256),
		scratch:    make([]byte, 0, 256),
		scope:      abi.Scope{Client: make([]byte, 0, 48)},
	}
	st.pass = st.passUpstream
	return st
}}

// handle serves one client request: admission, route match, upstream
// exchange, access log and metrics, in one pass.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	snap := s.snap.Load()
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	gauge := s.metrics.InFlight()
	gauge.Inc()
	defer gauge.Dec()

	st := statePool.Get().(*requestState)
	defer statePool.Put(st)
	st.scope.Reset()
	st.scope.Client = s.clientIP(ctx, snap, st.scope.Client)
	st.limits.reset()
	st.cacheState = ""
	// Read before the hop-by-hop headers go: the client's "Connection: close"
	// still decides what happens to its connection.
	st.clientClose = ctx.Request.Header.ConnectionClose()

	rej := checkRequest(&ctx.Request, &st.path, snap.slashes)

	// Request id: keep a sane client-sent one, otherwise make one. It is
	// forwarded, echoed and logged: one value, whatever the client sent.
	st.requestID = st.requestID[:0]
	if id := ctx.Request.Header.Peek(headerRequestID); validRequestID(id) {
		st.requestID = append(st.requestID, id...)
	} else {
		st.requestID = appendRandomID(st.requestID)
	}
	setOnly(&ctx.Request.Header, keyRequestID, st.requestID)

	if rej != nil {
		s.metrics.Rejected(rej.code)
		s.fail(ctx, st, snap, nil, rej.status, rej.code, rej.msg)
		return
	}
	if max := int64(snap.cfg.Listen.MaxConcurrentRequests); max > 0 && n > max {
		s.metrics.Rejected("overload")
		ctx.Response.Header.Set("Retry-After", strconv.Itoa(retryAfterSeconds(snap.cfg.Listen.RetryAfter.D())))
		s.fail(ctx, st, snap, nil, fasthttp.StatusServiceUnavailable, "overloaded", "the gateway is at its concurrency limit; retry later")
		return
	}

	snap, rt := s.matchRoute(ctx, st, snap)
	if rt == nil {
		s.metrics.Rejected("no_route")
		s.fail(ctx, st, snap, nil, fasthttp.StatusNotFound, "no_route", "no route matches this request")
		return
	}
	if len(rt.chain) > 0 {
		defer snap.release() // taken by matchRoute
	}
	// fasthttp refused a body over the route's limit by its headers
	// (bodyLimit); this catches one read under a config since replaced.
	if int64(len(ctx.Request.Body())) > rt.bodyLimit {
		s.metrics.Rejected(rejectBodyTooLong.code)
		s.fail(ctx, st, snap, rt, rejectBodyTooLong.status, rejectBodyTooLong.code, rejectBodyTooLong.msg)
		return
	}
	if rt.limits != nil && rt.limits.before && !s.admit(ctx, st, snap, rt) {
		return
	}
	if len(rt.chain) > 0 {
		s.handleWithPlugins(ctx, st, snap, rt)
		return
	}
	s.proxyToUpstream(ctx, st, snap, rt, rt.rewrite)
}

// matchRoute finds the request's route in snap. For a route with plugins it
// takes a reference on the snapshot (released by the caller), so that its
// plugin bindings stay open until the request is done; if a reload retired
// snap in the meantime, the request is matched again on the new snapshot.
func (s *Server) matchRoute(ctx *fasthttp.RequestCtx, st *requestState, snap *snapshot) (*snapshot, *route) {
	for {
		if !snap.table.Match(&ctx.Request, st.path, &st.match) {
			return snap, nil
		}
		rt := snap.routes[st.match.Route]
		if len(rt.chain) == 0 || snap.acquire() {
			return snap, rt
		}
		snap = s.snap.Load()
	}
}

// handleWithPlugins runs the route's chain around the upstream exchange:
// on_request in order (a plugin may answer), the upstream, on_response in
// reverse over the plugins the request passed.
func (s *Server) handleWithPlugins(ctx *fasthttp.RequestCtx, st *requestState, snap *snapshot, rt *route) {
	if s.runRequestChain(ctx, st, snap, rt) {
		s.runResponseChain(ctx, st, snap, rt)
		ctx.Response.Header.SetCanonical(keyRequestID, st.requestID)
		s.setLimitHeaders(ctx, st, rt)
		s.finish(ctx, st, snap, rt, "", "")
		return
	}
	// A route rewrite applies to the path the client sent, unless a plugin
	// changed it (st.path still holds the client's): the plugin then
	// decides the upstream path.
	rewrite := rt.rewrite && bytes.Equal(st.path, ctx.Request.URI().PathOriginal())
	if len(rt.targets) == 0 {
		s.releaseChain(st, rt)
		s.fail(ctx, st, snap, rt, fasthttp.StatusBadGateway, "no_upstream", "the route has no upstream and its plugins did not answer")
		return
	}
	s.proxyToUpstream(ctx, st, snap, rt, rewrite)
}

// proxyToUpstream sends the request upstream and answers with the result,
// after the response chain when the route has one.
func (s *Server) proxyToUpstream(ctx *fasthttp.RequestCtx, st *requestState, snap *snapshot, rt *route, rewrite bool) {
	s.prepareUpstreamRequest(ctx, st, snap, rt, rewrite)
	if rt.cache != nil {
		s.serveCached(ctx, st, snap, rt)
		return
	}
	up := rt.pick()

	x := &st.exchange
	*x = proxy.Exchange{
		Req:      &ctx.Request,
		Resp:     &ctx.Response,
		ClientIP: st.scope.Client,
		Timeouts: rt.timeouts,
		Retries:  rt.retries,
	}
	err := up.Do(x)
	s.metrics.Retries(up.Name(), x.Attempts-1)
	if err != nil {
		kind, status := "other", fasthttp.StatusBadGateway
		var perr *proxy.Error
		if errors.As(err, &perr) {
			kind, status = perr.Kind.String(), perr.Status()
		}
		s.metrics.UpstreamError(up.Name(), kind)
		ctx.Response.Reset()
		if len(rt.chain) > 0 {
			s.releaseChain(st, rt)
		}
		s.fail(ctx, st, snap, rt, status, "upstream_"+kind, "the upstream did not answer: "+kind)
		return
	}
	proxy.StripHopByHopResponse(&ctx.Response.Header)
	if len(rt.chain) > 0 {
		s.runResponseChain(ctx, st, snap, rt)
	}
	ctx.Response.Header.SetCanonical(keyRequestID, st.requestID)
	s.setLimitHeaders(ctx, st, rt)
	s.finish(ctx, st, snap, rt, up.Name(), x.Target)
}

// prepareUpstreamRequest turns the client request into the upstream request
// in place: path rewrite, host rewrite, hop-by-hop headers out, forwarding
// and tracing headers in. On a cached route only the path is rewritten
// here (the cache key is made from it); the rest is done if and when the
// request goes upstream (fetcher, passUpstream).
func (s *Server) prepareUpstreamRequest(ctx *fasthttp.RequestCtx, st *requestState, snap *snapshot, rt *route, rewrite bool) {
	req := &ctx.Request
	if rewrite {
		// The rewrite joins canonical pieces; cleaning the result keeps
		// what the upstream receives canonical too (an empty param can
		// leave "//").
		st.scratch = snap.table.Rewrite(st.scratch[:0], st.path, &st.match)
		if clean, err := httpsyntax.CleanPath(st.path[:0], st.scratch, httpsyntax.KeepEscapedSlashes); err == nil {
			st.path = clean
			req.URI().SetPathBytes(clean)
		}
	}
	if rt.cache != nil {
		return
	}
	s.prepareForwarding(req, st)
	if rt.rewriteHst != nil {
		req.Header.SetHostBytes(rt.rewriteHst)
		req.URI().SetHostBytes(rt.rewriteHst)
	}
}

// prepareForwarding adds the forwarding and tracing headers, before the
// host rewrite, and makes the request one of the gateway's own version:
// the client's version describes its connection, not the upstream's.
// (checkRequest stripped the client's hop-by-hop headers.)
func (s *Server) prepareForwarding(req *fasthttp.Request, st *requestState) {
	if !bytes.Equal(req.Header.Protocol(), strHTTP11) {
		req.Header.SetProtocolBytes(strHTTP11)
	}
	req.Header.ResetConnectionClose()
	proxy.SetForwarded(req, st.scope.Client, protoHTTP, req.URI().Host())
	// Two traceparent headers are no trace context at all (W3C Trace
	// Context, 3.2): a new trace starts.
	var in []byte
	if all := req.Header.PeekAll(headerTraceparent); len(all) == 1 {
		in = all[0]
	}
	st.traceparnt = appendTraceparent(st.traceparnt[:0], in)
	setOnly(&req.Header, keyTraceparent, st.traceparnt)
}

var protoHTTP = []byte("http")

// clientIP appends the client's address as text.
func (s *Server) clientIP(ctx *fasthttp.RequestCtx, snap *snapshot, dst []byte) []byte {
	var peer netip.Addr
	if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		peer, _ = netip.AddrFromSlice(tcp.IP)
		peer = peer.Unmap()
	}
	if len(snap.trusted) > 0 {
		peer = clientAddr(peer, ctx.Request.Header.Peek("X-Forwarded-For"), snap.trusted)
	}
	if !peer.IsValid() {
		return dst
	}
	return peer.AppendTo(dst)
}

// fail answers with a JSON error naming the request id, then logs and counts it.
func (s *Server) fail(ctx *fasthttp.RequestCtx, st *requestState, snap *snapshot, rt *route, status int, code, msg string) {
	writeError(ctx, st, status, code, msg)
	s.finish(ctx, st, snap, rt, "", "")
}

// writeError sets the response to a JSON error naming the request id.
func writeError(ctx *fasthttp.RequestCtx, st *requestState, status int, code, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.Header.SetCanonical(keyRequestID, st.requestID)
	body := make([]byte, 0, 128)
	body = append(body, `{"error":"`...)
	body = append(body, code...)
	body = append(body, `","message":`...)
	body = strconv.AppendQuote(body, msg)
	body = append(body, `,"request_id":`...)
	body = strconv.AppendQuote(body, string(st.requestID))
	body = append(body, "}\n"...)
	ctx.Response.SetBodyRaw(body)
}

// finish records metrics and the access log line of a request.
func (s *Server) finish(ctx *fasthttp.RequestCtx, st *requestState, snap *snapshot, rt *route, upstream, target string) {
	if st.clientClose {
		ctx.SetConnectionClose()
	}
	elapsed := time.Since(ctx.Time())
	status := ctx.Response.StatusCode()
	bytesIn, bytesOut := len(ctx.Request.Body()), len(ctx.Response.Body())
	routeName := ""
	m := snap.noRoute
	if rt != nil {
		m, routeName = rt.metrics, rt.name
	}
	m.Observe(status, elapsed.Seconds(), bytesIn, bytesOut)
	if snap.accessLog == nil {
		return
	}
	snap.accessLog.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("request_id", string(st.requestID)),
		slog.String("route", routeName),
		slog.String("method", string(ctx.Method())),
		slog.String("path", string(ctx.Request.Header.RequestURI())),
		slog.Int("status", status),
		slog.String("upstream", upstream),
		slog.String("target", target),
		slog.Int("bytes_in", bytesIn),
		slog.Int("bytes_out", bytesOut),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("client_ip", string(st.scope.Client)),
		slog.String("consumer", string(st.scope.Consumer)),
		slog.String("cache", st.cacheState),
	)
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
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, reason = fasthttp.StatusRequestEntityTooLarge, "body_too_large"
	case errors.As(err, &netErr) && netErr.Timeout():
		status, reason = fasthttp.StatusRequestTimeout, "read_timeout"
	}
	s.metrics.Rejected(reason)
	if s.clientLog.Allow() {
		var ip []byte
		if tcp, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
			ip = tcp.IP
		}
		s.log.Warn("request refused before routing", "reason", reason, "status", status, "client_ip", net.IP(ip).String())
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetConnectionClose()
	ctx.SetBodyString(`{"error":"` + reason + `"}` + "\n")
}

// requestLineIncomplete reports whether the read buffer filled up before
// the request line ended: the request-target alone is too long (414), as
// opposed to the headers (431). fasthttp tells it only in its message,
// which quotes the first 200 bytes it read: no line end among them means
// a request line longer than any the gateway reads. (A test pins this to
// fasthttp's behaviour.)
func requestLineIncomplete(err *fasthttp.ErrSmallBuffer) bool {
	msg := err.Error()
	_, contents, ok := strings.Cut(msg, "contents: ")
	if !ok {
		return false
	}
	head, _, _ := strings.Cut(contents, `"..."`) // the first of the two quoted snippets
	return !strings.Contains(head, `\n`)
}

func retryAfterSeconds(d time.Duration) int {
	secs := int((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}
