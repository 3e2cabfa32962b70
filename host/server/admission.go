package server

import (
	"bytes"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/router"
)

// rejection is an answer the gateway gives in place of the upstream's.
type rejection struct {
	status int
	code   string // the JSON error's "error"
	msg    string
	reason string // the label of wasmgate_rejected_requests_total; "" counts none
	close  bool   // the connection is closed after the answer
}

// reject is a refusal before routing, counted under its code. It closes
// the connection: what follows a request the gateway could not read one
// way only may be read as another request (smuggling).
func reject(status int, code, msg string) *rejection {
	return &rejection{status: status, code: code, msg: msg, reason: code, close: true}
}

var (
	rejectVersion     = reject(fasthttp.StatusHTTPVersionNotSupported, "http_version_not_supported", "the gateway speaks HTTP/1.0 and HTTP/1.1")
	rejectBadVersion  = reject(fasthttp.StatusBadRequest, "bad_request", "malformed HTTP version")
	rejectFieldName   = reject(fasthttp.StatusBadRequest, "bad_header", "a header name is not a token")
	rejectFieldValue  = reject(fasthttp.StatusBadRequest, "bad_header", "a header value holds a control character")
	rejectObsFold     = reject(fasthttp.StatusBadRequest, "bad_header", "a header line is folded onto the next (obs-fold)")
	rejectFraming     = reject(fasthttp.StatusBadRequest, "bad_header", "the request has both Content-Length and Transfer-Encoding")
	rejectHost        = reject(fasthttp.StatusBadRequest, "bad_host", "the Host header is not a valid host[:port] (no userinfo, no delimiters)")
	rejectTarget      = reject(fasthttp.StatusBadRequest, "bad_target", "the request target must be a path, or an absolute http(s) URL with a valid host and no userinfo")
	rejectConnect     = reject(fasthttp.StatusMethodNotAllowed, "method_not_allowed", "the gateway does not tunnel (CONNECT)")
	rejectPath        = reject(fasthttp.StatusBadRequest, "bad_path", "the request path is malformed")
	rejectSlashes     = reject(fasthttp.StatusBadRequest, "bad_path", "the request path holds an encoded slash or backslash (%2F, %5C) or a backslash")
	rejectDotParams   = reject(fasthttp.StatusBadRequest, "bad_path", `the request path holds a dot segment with parameters ("..;")`)
	rejectParams      = reject(fasthttp.StatusBadRequest, "bad_path", `the request path holds a ';' (path parameters, which some servers strip and others keep); see listen.path_parameters`)
	rejectRewrite     = &rejection{status: fasthttp.StatusBadRequest, code: "bad_path", msg: "the route's rewrite of this path has no canonical form, or a dot segment", reason: "bad_path"}
	rejectCoding      = reject(fasthttp.StatusNotImplemented, "not_implemented", "the only Transfer-Encoding the gateway reads is chunked")
	rejectBodyTooLong = reject(fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body exceeds the route's limit")
	rejectNoRoute     = &rejection{fasthttp.StatusNotFound, "no_route", "no route matches this request", "no_route", false}
	rejectOverload    = &rejection{fasthttp.StatusServiceUnavailable, "overloaded", "the gateway is at its concurrency limit; retry later", "overload", false}
	// Not refusals before routing: counted elsewhere, or not at all.
	rejectNoUpstream  = &rejection{status: fasthttp.StatusBadGateway, code: "no_upstream", msg: "the route has no upstream and its plugins did not answer"}
	rejectRateLimited = &rejection{status: fasthttp.StatusTooManyRequests, code: "rate_limited", msg: "rate limit exceeded; retry later"}
)

// The forms of what the gateway sends upstream, whatever the client used.
var (
	strHTTP11 = []byte("HTTP/1.1")
	strHTTP   = []byte("http")
	strHTTPS  = []byte("https")
)

// pathPolicy is what a listener does with the parts of a path servers
// read differently: listen.escaped_slashes and listen.path_parameters.
type pathPolicy struct {
	slashes      httpsyntax.EscapedSlashes
	rejectParams bool // a ';' in a segment: servlet containers strip ";params", other servers keep them
}

// checkRequest refuses what fasthttp parsed leniently but two HTTP
// implementations could read differently, and puts the request into the
// one form every later step sees: the canonical path (matched and
// forwarded alike) and, for an absolute-form target, the target's
// authority as the Host. It must run before anything reads the request.
func checkRequest(req *fasthttp.Request, path *[]byte, pol pathPolicy) *rejection {
	h := &req.Header
	if proto := h.Protocol(); !bytes.Equal(proto, strHTTP11) {
		switch httpsyntax.CheckVersion(proto) {
		case httpsyntax.ErrVersionUnsupported:
			return rejectVersion
		case httpsyntax.ErrVersionMalformed:
			return rejectBadVersion
		}
	}
	switch httpsyntax.CheckFieldLines(h.RawHeaders()) {
	case httpsyntax.ErrFieldName:
		return rejectFieldName
	case httpsyntax.ErrFieldValue:
		return rejectFieldValue
	case httpsyntax.ErrObsFold:
		return rejectObsFold
	case httpsyntax.ErrFraming:
		return rejectFraming
	case httpsyntax.ErrTransferCoding:
		return rejectCoding
	}
	if h.IsConnect() {
		return rejectConnect
	}
	if host := h.Host(); len(host) > 0 && !httpsyntax.ValidHost(host) {
		return rejectHost
	}
	uri := req.URI()
	target := h.RequestURI()
	if bytes.IndexByte(target, '#') >= 0 {
		return rejectTarget // a fragment is no part of a request (RFC 9112, 3.2)
	}
	rawPath := uri.PathOriginal()
	if len(target) == 0 || target[0] != '/' {
		// Absolute form: its authority is the Host (RFC 9112, 3.2.2).
		scheme := uri.Scheme()
		if !bytes.Equal(scheme, strHTTP) && !bytes.Equal(scheme, strHTTPS) ||
			len(uri.Username()) > 0 || len(uri.Password()) > 0 || !httpsyntax.ValidHost(uri.Host()) ||
			bytes.IndexByte(target, '@') >= 0 {
			return rejectTarget
		}
		h.SetHostBytes(uri.Host())
	} else {
		// Origin form: all of it up to the query is the path and the host
		// is the Host header's, even when the target starts with "//",
		// which fasthttp reads as an authority, userinfo and all (that
		// it would send upstream as Authorization) when the request has no
		// Host or the target holds "://".
		rawPath = target
		query := []byte(nil)
		if q := bytes.IndexByte(target, '?'); q >= 0 {
			rawPath, query = target[:q], target[q+1:]
		}
		if len(uri.Username()) > 0 || len(uri.Password()) > 0 {
			uri.SetUsernameBytes(nil)
			uri.SetPasswordBytes(nil)
		}
		if !bytes.EqualFold(uri.Host(), h.Host()) {
			uri.SetHostBytes(h.Host())
		}
		if len(target) > 1 && target[1] == '/' && !bytes.Equal(uri.QueryString(), query) {
			uri.SetQueryStringBytes(query)
		}
	}
	clean, err := httpsyntax.CleanPath((*path)[:0], rawPath, pol.slashes)
	*path = clean
	switch err {
	case nil:
	case httpsyntax.ErrPathEscapedSlash:
		return rejectSlashes
	case httpsyntax.ErrPathDotParams:
		return rejectDotParams
	default:
		return rejectPath
	}
	if pol.rejectParams && bytes.IndexByte(clean, ';') >= 0 {
		return rejectParams
	}
	if !bytes.Equal(clean, uri.PathOriginal()) {
		uri.SetPathBytes(clean)
	}
	// Hop-by-hop headers go first, so that a client naming a header in
	// Connection removes only its own, never one the gateway or a plugin
	// adds later (X-Request-Id, a plugin's claim header).
	proxy.StripHopByHop(h)
	return nil
}

// setOnly sets header key to value, dropping every other occurrence the
// client sent: the upstream and the log must see the same one value.
func setOnly(h *fasthttp.RequestHeader, key, value []byte) {
	h.DelBytes(key)
	h.SetCanonical(key, value)
}

// bodyLimit is the most body bytes the request whose header is h may send:
// its route's max_body_bytes, or listen.max_body_bytes. fasthttp calls it
// once the header is read (Server.HeaderReceived), so that a body over the
// limit is refused by its Content-Length before a byte of it is read, and
// a chunked body is cut off at the limit.
func (s *Server) bodyLimit(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	snap := s.snap.Load()
	// No body (0; -2 is fasthttp's "none announced"), or one limit for all.
	if cl := h.ContentLength(); cl == 0 || cl == -2 || !snap.routeBodyLimits {
		return fasthttp.RequestConfig{MaxRequestBodySize: int(snap.maxBody)}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: int(s.routeBodyLimit(snap, h))}
}

// routeBodyLimit finds the body limit of the route a request header
// matches. The request is not parsed yet: it matches on a copy.
func (s *Server) routeBodyLimit(snap *snapshot, h *fasthttp.RequestHeader) int64 {
	sc := headerScratchPool.Get().(*headerScratch)
	defer headerScratchPool.Put(sc)
	h.CopyTo(&sc.req.Header)
	defer sc.req.Reset()
	if checkRequest(&sc.req, &sc.path, snap.paths) != nil || !snap.table.Match(&sc.req, sc.path, &sc.match) {
		return snap.maxBody // refused or unrouted: the handler answers before reading it
	}
	return snap.routes[sc.match.Route].bodyLimit
}

// expectContinue answers a request that waits for "100 Continue" before
// sending its body: 413 at once when its Content-Length is over its
// route's limit, so that the client never sends the body.
func (s *Server) expectContinue(ctx *fasthttp.RequestCtx) int {
	snap := s.snap.Load()
	if n := ctx.Request.Header.ContentLength(); n > 0 && int64(n) > s.routeBodyLimit(snap, &ctx.Request.Header) {
		s.metrics.Rejected(rejectBodyTooLong.reason)
		return fasthttp.StatusRequestEntityTooLarge
	}
	return fasthttp.StatusContinue
}

type headerScratch struct {
	req   fasthttp.Request
	path  []byte
	match router.Result
}

var headerScratchPool = sync.Pool{New: func() any { return &headerScratch{path: make([]byte, 0, 256)} }}
