package abi

import (
	"bytes"
	"slices"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// impls implements every host function sdk/abi declares.
var impls = map[string]func(*Call, []uint64){
	// Request and response.
	sdkabi.FuncRequestMethod:     requestMethod,
	sdkabi.FuncRequestPath:       requestPath,
	sdkabi.FuncRequestSetPath:    requestSetPath,
	sdkabi.FuncRequestQuery:      requestQuery,
	sdkabi.FuncRequestClientIP:   requestClientIP,
	sdkabi.FuncHeaderGet:         headerGet,
	sdkabi.FuncHeaderValues:      headerValues,
	sdkabi.FuncHeaderNames:       headerNames,
	sdkabi.FuncHeaderSet:         headerSet,
	sdkabi.FuncHeaderAdd:         headerAdd,
	sdkabi.FuncHeaderRemove:      headerRemove,
	sdkabi.FuncBodyGet:           bodyGet,
	sdkabi.FuncBodySet:           bodySet,
	sdkabi.FuncResponseStatus:    responseStatus,
	sdkabi.FuncResponseSetStatus: responseSetStatus,
	sdkabi.FuncSendResponse:      sendResponse,
	// Config, logging, errors, time, randomness.
	sdkabi.FuncConfigGet: configGet,
	sdkabi.FuncLog:       logFn,
	sdkabi.FuncSetError:  setError,
	sdkabi.FuncTimeNow:   timeNow,
	sdkabi.FuncRandomGet: randomGet,
	// Key-value store.
	sdkabi.FuncKVGet:    kvGet,
	sdkabi.FuncKVSet:    kvSet,
	sdkabi.FuncKVDelete: kvDelete,
	sdkabi.FuncKVIncr:   kvIncr,
	// Metrics.
	sdkabi.FuncMetricDefine: metricDefine,
	sdkabi.FuncMetricRecord: metricRecord,
	// Outbound HTTP.
	sdkabi.FuncHTTPBatch:       httpBatch,
	sdkabi.FuncHTTPBatchResult: httpBatchResult,
	// Cryptography.
	sdkabi.FuncCryptoVerify: cryptoVerify,
	// Gateway: consumer, claims, cache key, rate limits.
	sdkabi.FuncSetConsumer: setConsumer,
	sdkabi.FuncSetClaims:   setClaims,
	sdkabi.FuncFlagEnabled: flagEnabled,
	sdkabi.FuncCacheSetKey: cacheSetKey,
	sdkabi.FuncRateLimit:   rateLimit,
}

// table is every host function of the wasmgate module: sdk/abi's list,
// names and signatures, each with its implementation. A function declared
// there and not implemented here, or the reverse, stops the package from
// initialising, so the host cannot start with a table that drifted.
var table = func() []Func {
	fs := sdkabi.Functions()
	t := make([]Func, len(fs))
	for i, f := range fs {
		fn := impls[f.Name]
		if fn == nil {
			panic("host/abi: no implementation of " + ModuleName + "." + f.Name)
		}
		t[i] = Func{Name: f.Name, Params: f.Params, Results: f.Results, Fn: fn}
	}
	if len(impls) != len(t) {
		panic("host/abi: an implemented host function is not declared in sdk/abi")
	}
	return t
}()

// Functions returns every host function of the "wasmgate" import module
// with its exact signature (sdk/ABI.md section 4), in sdk/abi's order. The
// slice is a copy the caller may keep; the Params and Results slices are
// shared and must not be modified.
func Functions() []Func { return slices.Clone(table) }

// hooked reports whether c runs on_request or on_response: where the KV,
// metric recording and outbound functions work.
func (c *Call) hooked() bool { return c.Phase == PhaseRequest || c.Phase == PhaseResponse }

// inHook reports whether c runs on_request or on_response with a request:
// where the request getters work.
func (c *Call) inHook() bool { return c.hooked() && c.Req != nil }

// access checks that a kind may be read (write false) or written in the
// current hook (sdk/ABI.md section 4, "Where header and body functions
// work"). It returns 0 or an error code.
func (c *Call) access(kind int32, write bool) int32 {
	switch kind {
	case KindRequest:
		if c.Req == nil {
			return ErrNotAllowed
		}
		switch c.Phase {
		case PhaseRequest:
			return 0
		case PhaseResponse:
			if !write {
				return 0
			}
		}
		return ErrNotAllowed
	case KindResponse:
		if c.Resp == nil {
			return ErrNotAllowed
		}
		switch c.Phase {
		case PhaseResponse:
			return 0
		case PhaseRequest:
			if c.LocalResponse {
				return 0
			}
		}
		return ErrNotAllowed
	}
	return ErrBadArgument
}

// getter is the shape of the (buf, len) -> size functions over request data.
func getter(c *Call, stack []uint64, fn string, data func(*Call) []byte) {
	dst := c.guest(fn, stack[0], stack[1])
	if !c.inHook() {
		ret32(stack, ErrNotAllowed)
		return
	}
	ret32(stack, writeOut(dst, data(c)))
}

func requestMethod(c *Call, stack []uint64) {
	getter(c, stack, sdkabi.FuncRequestMethod, func(c *Call) []byte { return c.Req.Header.Method() })
}

// requestPath answers the request's path without the query, in the
// canonical form the route matched and the upstream receives.
func requestPath(c *Call, stack []uint64) {
	getter(c, stack, sdkabi.FuncRequestPath, func(c *Call) []byte { return c.Req.URI().PathOriginal() })
}

func requestQuery(c *Call, stack []uint64) {
	getter(c, stack, sdkabi.FuncRequestQuery, func(c *Call) []byte { return c.Req.URI().QueryString() })
}

func requestClientIP(c *Call, stack []uint64) {
	getter(c, stack, sdkabi.FuncRequestClientIP, func(c *Call) []byte { return c.Scope.client() })
}

// requestSetPath replaces the path sent upstream and, after a '?', the
// query. The path is put in canonical form like a client's (encoded
// slashes kept: a plugin that encodes one means it); one that has none
// (broken percent-encoding, an encoded NUL, a control byte, "..;") is
// refused, and so are spaces, control bytes and '#' in the query: the
// upstream client writes both as they are into the request line.
func requestSetPath(c *Call, stack []uint64) {
	b := c.guest(sdkabi.FuncRequestSetPath, stack[0], stack[1])
	if c.Phase != PhaseRequest || c.Req == nil {
		ret32(stack, ErrNotAllowed)
		return
	}
	path, query := b, []byte(nil)
	if q := bytes.IndexByte(b, '?'); q >= 0 {
		path, query = b[:q], b[q+1:]
	}
	for _, ch := range query {
		if ch <= ' ' || ch == 0x7f || ch == '#' {
			ret32(stack, ErrBadArgument)
			return
		}
	}
	var buf [256]byte
	clean, err := httpsyntax.CleanPath(buf[:0], path, httpsyntax.KeepEscapedSlashes)
	if len(path) == 0 || path[0] != '/' || err != nil {
		ret32(stack, ErrBadArgument)
		return
	}
	u := c.Req.URI()
	u.SetPathBytes(clean)
	if query != nil {
		u.SetQueryStringBytes(query)
	}
	ret32(stack, 0)
}

// headerArgs reads (kind, name_ptr, name_len) and checks the name and the
// access; code is 0 or the error to return.
func headerArgs(c *Call, stack []uint64, fn string, write bool) (kind int32, name []byte, code int32) {
	kind = i32(stack[0])
	name = c.guest(fn, stack[1], stack[2])
	if code = c.access(kind, write); code != 0 {
		return kind, name, code
	}
	if !httpsyntax.IsToken(name) {
		return kind, name, ErrBadArgument
	}
	return kind, name, 0
}

func headerGet(c *Call, stack []uint64) {
	kind, name, code := headerArgs(c, stack, sdkabi.FuncHeaderGet, false)
	dst := c.guest(sdkabi.FuncHeaderGet, stack[3], stack[4])
	if code != 0 {
		ret32(stack, code)
		return
	}
	var v []byte
	var ok bool
	if kind == KindRequest {
		v, ok = firstValue(c.Req.Header.All(), name)
	} else {
		v, ok = firstValue(c.Resp.Header.All(), name)
	}
	if !ok {
		ret32(stack, ErrNotFound)
		return
	}
	ret32(stack, writeOut(dst, v))
}

func headerValues(c *Call, stack []uint64) {
	kind, name, code := headerArgs(c, stack, sdkabi.FuncHeaderValues, false)
	dst := c.guest(sdkabi.FuncHeaderValues, stack[3], stack[4])
	if code != 0 {
		ret32(stack, code)
		return
	}
	var n int
	var ok bool
	if kind == KindRequest {
		n, ok = listValues(c.Req.Header.All(), name, dst)
	} else {
		n, ok = listValues(c.Resp.Header.All(), name, dst)
	}
	if !ok {
		ret32(stack, ErrNotFound)
		return
	}
	ret32(stack, size(n))
}

func headerNames(c *Call, stack []uint64) {
	kind := i32(stack[0])
	dst := c.guest(sdkabi.FuncHeaderNames, stack[1], stack[2])
	if code := c.access(kind, false); code != 0 {
		ret32(stack, code)
		return
	}
	var n int
	if kind == KindRequest {
		n = listNames(c.Req.Header.All(), dst)
	} else {
		n = listNames(c.Resp.Header.All(), dst)
	}
	ret32(stack, size(n))
}

// headerWrite is header_set (replace) and header_add.
func headerWrite(c *Call, stack []uint64, fn string, replace bool) {
	kind, name, code := headerArgs(c, stack, fn, true)
	value := c.guest(fn, stack[3], stack[4])
	switch {
	case code != 0:
	case !validValue(value):
		code = ErrBadArgument
	case isFraming(name), kind != KindRequest && isResponseFraming(name):
		code = ErrNotAllowed
	case kind == KindRequest:
		if replace {
			delRequestHeader(&c.Req.Header, name, &c.scratch)
		}
		c.Req.Header.AddBytesKV(name, value)
		if foldEq(name, strHost) {
			// fasthttp writes the URI's host as Host when it sends the
			// request on: keep both in step, as the route's host rewrite does.
			c.Req.URI().SetHostBytes(value)
		}
	default:
		if replace {
			delResponseHeader(&c.Resp.Header, name, &c.scratch)
		}
		c.Resp.Header.AddBytesKV(name, value)
	}
	ret32(stack, code)
}

func headerSet(c *Call, stack []uint64) { headerWrite(c, stack, sdkabi.FuncHeaderSet, true) }
func headerAdd(c *Call, stack []uint64) { headerWrite(c, stack, sdkabi.FuncHeaderAdd, false) }

func headerRemove(c *Call, stack []uint64) {
	kind, name, code := headerArgs(c, stack, sdkabi.FuncHeaderRemove, true)
	switch {
	case code != 0:
	case isFraming(name), kind != KindRequest && isResponseFraming(name):
		code = ErrNotAllowed
	case kind == KindRequest:
		delRequestHeader(&c.Req.Header, name, &c.scratch)
	default:
		delResponseHeader(&c.Resp.Header, name, &c.scratch)
	}
	ret32(stack, code)
}

// body returns the body of kind; the caller has checked access.
func (c *Call) body(kind int32) []byte {
	if kind == KindRequest {
		return c.Req.Body()
	}
	return c.Resp.Body()
}

// bodyGet copies only the bytes asked for: [offset, offset+min(len,
// size-offset)). An offset at or past the end copies nothing; both answer
// the full size, so a guest can stream a large body through a small buffer.
func bodyGet(c *Call, stack []uint64) {
	kind, off := i32(stack[0]), int64(stack[1])
	dst := c.guest(sdkabi.FuncBodyGet, stack[2], stack[3])
	if code := c.access(kind, false); code != 0 {
		ret64(stack, int64(code))
		return
	}
	if off < 0 {
		ret64(stack, ErrBadArgument)
		return
	}
	b := c.body(kind)
	if off < int64(len(b)) {
		copy(dst, b[off:])
	}
	ret64(stack, int64(len(b)))
}

// overBody reports whether n bytes exceed the binding's body limit.
func (c *Call) overBody(n int) bool {
	return c.Env != nil && c.Env.MaxBody > 0 && int64(n) > c.Env.MaxBody
}

// bodySet replaces a body and its Content-Length. A response whose status
// has no body (1xx, 204, 304) takes none: a body is refused (NOT_ALLOWED)
// and an empty one changes nothing. On a HEAD request the server sends no
// body: a response body set there stands for the one a GET would be sent,
// and only its length goes out, as Content-Length.
func bodySet(c *Call, stack []uint64) {
	kind := i32(stack[0])
	b := c.guest(sdkabi.FuncBodySet, stack[1], stack[2])
	if code := c.access(kind, true); code != 0 {
		ret32(stack, code)
		return
	}
	if c.overBody(len(b)) {
		ret32(stack, ErrTooLarge)
		return
	}
	switch {
	case kind == KindRequest:
		c.Req.SetBody(b)
		c.Req.Header.SetContentLength(len(b))
	case sdkabi.BodylessStatus(c.Resp.StatusCode()):
		if len(b) > 0 {
			ret32(stack, ErrNotAllowed)
			return
		}
	default:
		setResponseBody(c.Resp, b)
	}
	ret32(stack, 0)
}

// setResponseBody replaces a response body and its Content-Length.
func setResponseBody(r *fasthttp.Response, b []byte) {
	r.SetBody(b)
	r.Header.SetContentLength(len(b))
}

// validStatus reports whether s is a status a plugin may give a response:
// a final one (a 1xx sent as the answer would leave the client waiting).
func validStatus(s int32) bool { return s >= sdkabi.MinStatus && s <= sdkabi.MaxStatus }

func responseStatus(c *Call, stack []uint64) {
	if code := c.access(KindResponse, false); code != 0 {
		ret32(stack, code)
		return
	}
	ret32(stack, int32(c.Resp.StatusCode()))
}

func responseSetStatus(c *Call, stack []uint64) {
	s := i32(stack[0])
	if code := c.access(KindResponse, true); code != 0 {
		ret32(stack, code)
		return
	}
	if !validStatus(s) {
		ret32(stack, ErrBadArgument)
		return
	}
	setStatus(c.Resp, int(s))
	ret32(stack, 0)
}

// setStatus sets a response's status and keeps its body in step: a status
// without a body (204, 304) drops the body, leaving the headers as they
// were (Content-Length is not sent with a 204, and with a 304 it is the
// length of the representation, RFC 9110 section 8.6); leaving such a
// status for one with a body makes the body empty, with Content-Length 0,
// for a body_set to fill.
func setStatus(r *fasthttp.Response, s int) {
	was := sdkabi.BodylessStatus(r.StatusCode())
	now := sdkabi.BodylessStatus(s)
	if now && !was {
		r.ResetBody()
	}
	r.SetStatusCode(s)
	if was && !now {
		setResponseBody(r, nil)
	}
}

// sendResponse builds a local response in on_request. The body counts
// against the binding's body limit like body_set; a status without a body
// (204, 304) with a body is a bad argument. Headers the guest sets on the
// response afterwards (allowed from now on) go out with it.
func sendResponse(c *Call, stack []uint64) {
	s := i32(stack[0])
	b := c.guest(sdkabi.FuncSendResponse, stack[1], stack[2])
	switch {
	case c.Phase != PhaseRequest || c.Req == nil || c.Resp == nil:
		ret32(stack, ErrNotAllowed)
	case !validStatus(s), len(b) > 0 && sdkabi.BodylessStatus(int(s)):
		ret32(stack, ErrBadArgument)
	case c.overBody(len(b)):
		ret32(stack, ErrTooLarge)
	default:
		if sdkabi.BodylessStatus(int(s)) {
			// No body, and no Content-Length: a local 304 describes no
			// representation, whatever an earlier send_response set.
			c.Resp.ResetBody()
			c.Resp.Header.Del(fasthttp.HeaderContentLength)
			c.Resp.SetStatusCode(int(s))
		} else {
			c.Resp.SetStatusCode(int(s))
			setResponseBody(c.Resp, b)
		}
		c.LocalResponse = true
		ret32(stack, 0)
	}
}
