package httpwasm

import (
	"bytes"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/http-wasm/http-wasm-host-go/api"
	"github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// state returns the instance's State; an instance without one was not set
// up as an http-wasm guest.
func state(c *abi.Call, fn string) *State {
	s, ok := c.Ext.(*State)
	if !ok || s == nil {
		trap(fn, "no http-wasm state: the instance is not an http-wasm guest")
	}
	return s
}

// inRequest returns the State while a request is handled: the request
// functions trap outside one (a start function, _start, _initialize).
func inRequest(c *abi.Call, fn string) *State {
	s := state(c, fn)
	if !s.active || c.Req == nil {
		trap(fn, "called outside a request")
	}
	return s
}

// response is the response handle_response acts on: the upstream's answer
// (or a scratch one when the request failed), which the Call carries.
func response(c *abi.Call, fn string) *fasthttp.Response {
	if c.Resp == nil {
		trap(fn, "no response")
	}
	return c.Resp
}

// mustBeforeNext traps once next has run (the reference's mustBeforeNext):
// the request has gone upstream, changing it would change nothing.
func mustBeforeNext(s *State, fn, op, what string) {
	if s.afterNext {
		trap(fn, "can't "+op+" "+what+" after next handler")
	}
}

// mustBeforeNextOr traps once next has run unless the request enabled
// feature (the reference's mustBeforeNextOrFeature).
func mustBeforeNextOr(s *State, feature handler.Features, fn, op, what string) {
	if s.afterNext && !s.features.IsEnabled(feature) {
		trap(fn, "can't "+op+" "+what+" after next handler unless "+feature.String()+" is enabled")
	}
}

func unsupportedKind(fn, what string, kind uint32) {
	trap(fn, "unsupported "+what+" kind: "+strconv.FormatUint(uint64(kind), 10))
}

// enableFeatures enables features and answers every feature now enabled.
// During a request they are the request's (they start, for every request,
// from those enabled outside one); outside a request (a start function,
// _start) they are the instance's. A feature this host does not support
// is never granted.
func enableFeatures(c *abi.Call, stack []uint64) {
	s := state(c, handler.FuncEnableFeatures)
	f := handler.Features(u32(stack[0])) & Supported
	if s.active {
		s.features |= f
		ret32(stack, uint32(s.features))
		return
	}
	s.initFeatures |= f
	ret32(stack, uint32(s.initFeatures))
}

// getConfig copies the binding's config bytes; none reads as 0 bytes (no
// "{}" default as for native plugins: http-wasm config is opaque).
func getConfig(c *abi.Call, stack []uint64) {
	var cfg []byte
	if c.Env != nil {
		cfg = c.Env.Config
	}
	ret32(stack, writeIfFits(c, handler.FuncGetConfig, u32(stack[0]), u32(stack[1]), cfg))
}

// slogLevel maps an http-wasm log level to slog's; none (3) and unknown
// levels map to nothing: never enabled.
func slogLevel(v uint64) (slog.Level, bool) {
	switch api.LogLevel(int32(u32(v))) {
	case api.LogLevelDebug:
		return slog.LevelDebug, true
	case api.LogLevelInfo:
		return slog.LevelInfo, true
	case api.LogLevelWarn:
		return slog.LevelWarn, true
	case api.LogLevelError:
		return slog.LevelError, true
	}
	return 0, false
}

func logEnabled(c *abi.Call, stack []uint64) {
	var on uint32
	if lvl, ok := slogLevel(stack[0]); ok && c.LogEnabled(lvl) {
		on = 1
	}
	ret32(stack, on)
}

// logFn logs as native plugins do (Call.LogMessage: tagged with plugin and
// route, rate-limited, cut at abi.MaxLogMessage). The message is read only
// when the level is enabled, as the reference does: a guest may pass a
// dangling buffer for a line the host would drop.
func logFn(c *abi.Call, stack []uint64) {
	lvl, ok := slogLevel(stack[0])
	if !ok || !c.LogEnabled(lvl) {
		return
	}
	c.LogMessage(lvl, read(c, handler.FuncLog, u32(stack[1]), u32(stack[2])))
}

func getMethod(c *abi.Call, stack []uint64) {
	const fn = handler.FuncGetMethod
	inRequest(c, fn)
	ret32(stack, writeIfFits(c, fn, u32(stack[0]), u32(stack[1]), c.Req.Header.Method()))
}

// setMethod changes the method sent upstream. The route was matched
// already: it does not re-route, as native request_set_path does not.
func setMethod(c *abi.Call, stack []uint64) {
	const fn = handler.FuncSetMethod
	s := inRequest(c, fn)
	mustBeforeNext(s, fn, "set", "method")
	if u32(stack[1]) == 0 {
		trap(fn, "HTTP method cannot be empty")
	}
	m := read(c, fn, u32(stack[0]), u32(stack[1]))
	if !httpsyntax.IsToken(m) {
		trap(fn, "HTTP method is not a token")
	}
	// The client's connection is framed by its own method: a response to
	// HEAD has no body, any other has one. A change across that line (or
	// to CONNECT, which no route serves) would desynchronise it.
	if head := string(m) == fasthttp.MethodHead; head != c.Req.Header.IsHead() || string(m) == fasthttp.MethodConnect {
		trap(fn, "cannot change the method to or from HEAD, or to CONNECT: the client's connection is framed by its own")
	}
	c.Req.Header.SetMethodBytes(m)
}

// getURI answers the request-target as the upstream gets it: the path,
// still percent-encoded ("/" when empty), then "?" and the raw query when
// there is one, written straight into the guest's buffer.
func getURI(c *abi.Call, stack []uint64) {
	const fn = handler.FuncGetURI
	inRequest(c, fn)
	u := c.Req.URI()
	path, query := u.PathOriginal(), u.QueryString()
	n := max(len(path), 1)
	if len(query) > 0 {
		n += 1 + len(query)
	}
	size := sat32(n)
	if size <= u32(stack[1]) {
		dst := read(c, fn, u32(stack[0]), size)
		w := copy(dst, path)
		if w == 0 {
			dst[0], w = '/', 1
		}
		if len(query) > 0 {
			dst[w] = '?'
			copy(dst[w+1:], query)
		}
	}
	ret32(stack, size)
}

// setURI replaces the path and the query sent upstream: a URI without "?"
// clears the query (http-wasm replaces the whole URI), an empty one is
// "/". The rules are native request_set_path's: the path must be
// origin-form and is put in canonical form (encoded slashes kept), the
// query may hold no space or control byte. A "#" anywhere traps: a
// request-target has no fragment, so the guest's meaning is unclear.
func setURI(c *abi.Call, stack []uint64) {
	const fn = handler.FuncSetURI
	s := inRequest(c, fn)
	mustBeforeNext(s, fn, "set", "uri")
	b := read(c, fn, u32(stack[0]), u32(stack[1]))
	if len(b) == 0 {
		b = slash
	}
	if bytes.IndexByte(b, '#') >= 0 {
		trap(fn, "uri has a fragment (#)")
	}
	path, query := b, []byte(nil)
	if q := bytes.IndexByte(b, '?'); q >= 0 {
		path, query = b[:q], b[q+1:]
	}
	for _, ch := range query {
		if ch <= ' ' || ch == 0x7f {
			trap(fn, "uri query has a space or a control byte")
		}
	}
	if len(path) == 0 || path[0] != '/' {
		trap(fn, "uri must be origin-form: a path starting with /")
	}
	clean, err := httpsyntax.CleanPath(s.buf[:0], path, httpsyntax.KeepEscapedSlashes)
	if err != nil {
		trap(fn, "uri: "+err.Error())
	}
	s.buf = clean
	u := c.Req.URI()
	u.SetPathBytes(clean)
	u.SetQueryStringBytes(query)
}

var slash = []byte("/")

// getProtocolVersion answers the client's protocol version, which the
// server records before it rewrites the request to HTTP/1.1 for the
// upstream, else the request's own.
func getProtocolVersion(c *abi.Call, stack []uint64) {
	const fn = handler.FuncGetProtocolVersion
	inRequest(c, fn)
	buf, limit := u32(stack[0]), u32(stack[1])
	if c.Scope != nil && c.Scope.Proto != "" {
		ret32(stack, writeIfFits(c, fn, buf, limit, c.Scope.Proto))
		return
	}
	p := c.Req.Header.Protocol()
	if len(p) == 0 {
		trap(fn, "HTTP protocol version cannot be empty")
	}
	ret32(stack, writeIfFits(c, fn, buf, limit, p))
}

// getHeaderNames lists each header name of a kind once, lower-cased (as
// the reference does), NUL-terminated, all or nothing. No trailers: none.
func getHeaderNames(c *abi.Call, stack []uint64) {
	const fn = handler.FuncGetHeaderNames
	s := inRequest(c, fn)
	kind := u32(stack[0])
	ret64(stack, s.headerList(c, fn, kind, nil, u32(stack[1]), u32(stack[2])))
}

// getHeaderValues lists every value of a header (its name matched ASCII
// case-insensitively), in order, NUL-terminated, all or nothing.
func getHeaderValues(c *abi.Call, stack []uint64) {
	const fn = handler.FuncGetHeaderValues
	s := inRequest(c, fn)
	if u32(stack[2]) == 0 {
		trap(fn, "HTTP header name cannot be empty")
	}
	name := read(c, fn, u32(stack[1]), u32(stack[2]))
	ret64(stack, s.headerList(c, fn, u32(stack[0]), name, u32(stack[3]), u32(stack[4])))
}

// headerList answers the CountLen of the names of a header kind (name nil)
// or of the values of name, and writes the list to the guest's buffer when
// all of it fits. The list is built in the State's scratch buffer first:
// its length decides whether anything is written. The headers are ranged
// over where they are named, so that the compiler keeps the iterators on
// the stack: nothing is allocated.
func (s *State) headerList(c *abi.Call, fn string, kind uint32, name []byte, buf, limit uint32) uint64 {
	l := lister{list: s.buf[:0], name: name}
	switch handler.HeaderKind(kind) {
	case handler.HeaderKindRequest:
		for k, v := range c.Req.Header.All() {
			l.add(k, v)
		}
	case handler.HeaderKindResponse:
		if s.afterNext {
			for k, v := range response(c, fn).Header.All() {
				l.add(k, v)
			}
			break
		}
		for _, f := range s.early.fields {
			l.add(s.early.name(f), s.early.value(f))
		}
	case handler.HeaderKindRequestTrailers, handler.HeaderKindResponseTrailers:
		return 0 // no trailers
	default:
		unsupportedKind(fn, "header", kind)
	}
	s.buf = l.list
	if l.count == 0 {
		return 0
	}
	size := sat32(len(l.list))
	if size <= limit {
		copy(read(c, fn, buf, size), l.list)
	}
	return countLen(sat32(l.count), size)
}

// lister builds a NUL-terminated list: the distinct header names,
// lower-cased, when name is nil, else the values of name.
type lister struct {
	list  []byte
	count int
	name  []byte
}

func (l *lister) add(k, v []byte) {
	switch {
	case l.name == nil:
		if l.listed(k) {
			return
		}
		for _, ch := range k {
			if 'A' <= ch && ch <= 'Z' {
				ch += 'a' - 'A'
			}
			l.list = append(l.list, ch)
		}
	case abi.FoldEq(k, l.name):
		l.list = append(l.list, v...)
	default:
		return
	}
	l.list = append(l.list, 0)
	l.count++
}

// listed reports whether name is in the list already (a header has few
// fields: a scan is cheaper than a set).
func (l *lister) listed(name []byte) bool {
	for rest := l.list; len(rest) > 0; {
		end := bytes.IndexByte(rest, 0)
		if abi.FoldEq(rest[:end], name) {
			return true
		}
		rest = rest[end+1:]
	}
	return false
}

// headerOp is what a header write does.
type headerOp uint8

const (
	opSet headerOp = iota
	opAdd
	opRemove
)

var opVerb = [...]string{opSet: "set", opAdd: "add", opRemove: "remove"}

func setHeaderValue(c *abi.Call, stack []uint64) {
	headerWrite(c, stack, handler.FuncSetHeaderValue, opSet)
}

func addHeaderValue(c *abi.Call, stack []uint64) {
	headerWrite(c, stack, handler.FuncAddHeaderValue, opAdd)
}

func removeHeader(c *abi.Call, stack []uint64) {
	headerWrite(c, stack, handler.FuncRemoveHeader, opRemove)
}

// headerWrite is set_header_value, add_header_value and remove_header.
// There is no error code to answer a bad argument with, so a name that is
// not a token or a value with CR, LF or NUL traps. Content-Length and
// Transfer-Encoding are the host's (it frames messages): writes to them
// are ignored. The response, before next, is the staged one.
func headerWrite(c *abi.Call, stack []uint64, fn string, op headerOp) {
	s := inRequest(c, fn)
	kind := u32(stack[0])
	if u32(stack[2]) == 0 {
		trap(fn, "HTTP header name cannot be empty")
	}
	switch handler.HeaderKind(kind) {
	case handler.HeaderKindRequest:
		mustBeforeNext(s, fn, opVerb[op], "request header")
	case handler.HeaderKindResponse:
		mustBeforeNextOr(s, handler.FeatureBufferResponse, fn, opVerb[op], "response header")
	case handler.HeaderKindRequestTrailers, handler.HeaderKindResponseTrailers:
		trap(fn, "trailers are not supported")
	default:
		unsupportedKind(fn, "header", kind)
	}
	name := read(c, fn, u32(stack[1]), u32(stack[2]))
	var value []byte
	if op != opRemove {
		value = read(c, fn, u32(stack[3]), u32(stack[4]))
	}
	if !httpsyntax.IsToken(name) {
		trap(fn, "header name is not a token")
	}
	if !abi.ValidHeaderValue(value) {
		trap(fn, "header value has a CR, LF or NUL")
	}
	if abi.IsFraming(name) {
		return
	}
	switch {
	case handler.HeaderKind(kind) == handler.HeaderKindRequest:
		h := &c.Req.Header
		if op != opAdd {
			abi.DelRequestHeader(h, name, &s.scratch)
		}
		if op != opRemove {
			h.AddBytesKV(name, value)
			if abi.FoldEq(name, strHost) {
				// fasthttp writes the URI's host as Host when it sends the
				// request on: keep both in step, as native header_set does.
				c.Req.URI().SetHostBytes(value)
			}
		}
	case !s.afterNext:
		if op != opAdd {
			s.early.remove(name)
		}
		if op != opRemove {
			s.early.add(name, value)
		}
	default:
		h := &response(c, fn).Header
		if op != opAdd {
			abi.DelResponseHeader(h, name, &s.scratch)
		}
		if op != opRemove {
			h.AddBytesKV(name, value)
		}
	}
}

var strHost = []byte("Host")

// readBody reads a body from its cursor: up to buf_limit bytes, and the
// EOF bit with the last of them. The gateway has every body whole, so a
// read never waits and fills the buffer unless the body ends first.
func readBody(c *abi.Call, stack []uint64) {
	const fn = handler.FuncReadBody
	s := inRequest(c, fn)
	kind, buf, limit := u32(stack[0]), u32(stack[1]), u32(stack[2])
	var body []byte
	var cur *int
	switch handler.BodyKind(kind) {
	case handler.BodyKindRequest:
		mustBeforeNextOr(s, handler.FeatureBufferRequest, fn, "read", "request body")
		body, cur = c.Req.Body(), &s.reqRead
	case handler.BodyKindResponse:
		mustBeforeNextOr(s, handler.FeatureBufferResponse, fn, "read", "response body")
		body, cur = s.early.body, &s.respRead
		if s.afterNext {
			body = response(c, fn).Body()
		}
	default:
		unsupportedKind(fn, "body", kind)
	}
	if limit == 0 {
		// The reference refuses it: a reader need not report EOF on it.
		trap(fn, "buf_limit==0 reading body")
	}
	rest := body[min(*cur, len(body)):]
	n := min(limit, sat32(len(rest)))
	copy(read(c, fn, buf, n), rest)
	*cur += int(n)
	var eof uint32
	if *cur >= len(body) {
		eof = 1
	}
	ret64(stack, countLen(eof, n))
}

// writeBody writes a body: the first write of a request (or, for the
// response, of handle_response) replaces it, later ones append. Bodies
// count against the route's body limit, like native body_set; a 204 or
// 304 response takes no body: what is written to it is dropped.
func writeBody(c *abi.Call, stack []uint64) {
	const fn = handler.FuncWriteBody
	s := inRequest(c, fn)
	kind := u32(stack[0])
	switch handler.BodyKind(kind) {
	case handler.BodyKindRequest:
		mustBeforeNext(s, fn, "write", "request body")
		b := read(c, fn, u32(stack[1]), u32(stack[2]))
		n := len(b)
		if s.reqWritten {
			n += len(c.Req.Body())
		}
		overBody(c, fn, "request", n)
		if s.reqWritten {
			c.Req.AppendBody(b)
		} else {
			c.Req.SetBody(b)
		}
		c.Req.Header.SetContentLength(len(c.Req.Body()))
		s.reqWritten = true
	case handler.BodyKindResponse:
		mustBeforeNextOr(s, handler.FeatureBufferResponse, fn, "write", "response body")
		b := read(c, fn, u32(stack[1]), u32(stack[2]))
		if !s.afterNext {
			// Staged: empty at Begin, so appending is replacing at first.
			overBody(c, fn, "response", len(s.early.body)+len(b))
			s.early.body = append(s.early.body, b...)
			s.early.dirty, s.respWritten = true, true
			return
		}
		resp := response(c, fn)
		if abi.BodylessStatus(resp.StatusCode()) {
			return
		}
		n := len(b)
		if s.respWritten {
			n += len(resp.Body())
		}
		overBody(c, fn, "response", n)
		if s.respWritten {
			resp.AppendBody(b)
			resp.Header.SetContentLength(len(resp.Body()))
		} else {
			abi.SetResponseBody(resp, b)
		}
		s.respWritten = true
	default:
		unsupportedKind(fn, "body", kind)
	}
}

// overBody traps when a body of n bytes exceeds the route's body limit.
func overBody(c *abi.Call, fn, what string, n int) {
	if c.OverBody(n) {
		trap(fn, what+" body over the route's limit of "+strconv.FormatInt(c.Env.MaxBody, 10)+" bytes")
	}
}

// getStatusCode answers the response's status: before next the staged one
// (200 unless set), after next the upstream's.
func getStatusCode(c *abi.Call, stack []uint64) {
	const fn = handler.FuncGetStatusCode
	s := inRequest(c, fn)
	if s.afterNext {
		ret32(stack, uint32(response(c, fn).StatusCode()))
		return
	}
	status := s.early.status
	if status == 0 {
		status = fasthttp.StatusOK
	}
	ret32(stack, uint32(status))
}

// setStatusCode sets the response's status: a final one (200-599, as for
// native plugins: a 1xx sent as the answer would leave the client
// waiting). After next it keeps the body in step, as native
// response_set_status does (a 204 or 304 drops it).
func setStatusCode(c *abi.Call, stack []uint64) {
	const fn = handler.FuncSetStatusCode
	s := inRequest(c, fn)
	mustBeforeNextOr(s, handler.FeatureBufferResponse, fn, "set", "status code")
	status := int32(u32(stack[0]))
	if !abi.ValidStatus(status) {
		trap(fn, "status code "+strconv.FormatInt(int64(status), 10)+" is not a final status (200-599)")
	}
	if !s.afterNext {
		s.early.status, s.early.dirty = int(status), true
		return
	}
	abi.SetStatus(response(c, fn), int(status))
}

// getSourceAddr answers the connection's peer as ip:port ("[ip]:port" for
// IPv6; an IPv4-mapped address as IPv4), with no trusted-proxy processing;
// nothing when the server recorded none.
func getSourceAddr(c *abi.Call, stack []uint64) {
	const fn = handler.FuncGetSourceAddr
	s := inRequest(c, fn)
	buf, limit := u32(stack[0]), u32(stack[1])
	var peer net.Addr
	if c.Scope != nil {
		peer = c.Scope.Peer
	}
	switch a := peer.(type) {
	case nil:
		ret32(stack, 0)
	case *net.TCPAddr:
		ap := a.AddrPort() // the zero AddrPort for a nil *TCPAddr
		if !ap.Addr().IsValid() {
			ret32(stack, 0)
			return
		}
		s.buf = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).AppendTo(s.buf[:0])
		ret32(stack, writeIfFits(c, fn, buf, limit, s.buf))
	default:
		ret32(stack, writeIfFits(c, fn, buf, limit, a.String()))
	}
}
