package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits of the common endpoints: a demo must not be turned into a way to
// park goroutines for ever or to allocate without end.
const (
	maxSlow  = 10 * time.Second
	maxBytes = 10 << 20
	// maxRequestBody bounds what POST handlers accept.
	maxRequestBody = 1 << 20
)

// handler serves one route; param is the {param} path segment (nil for a
// route without one) and is valid only until the handler returns.
type handler func(s *service, ctx *fasthttp.RequestCtx, param []byte)

// route maps a method and path to a handler. With param set, path is a
// prefix ending in '/' followed by exactly one non-empty segment.
type route struct {
	method string
	path   string
	param  string // name of the trailing segment, for the index; "" when none
	handle handler
}

// match reports whether path matches r and returns the segment for param
// routes. It does not allocate: /bench must stay allocation-free.
func (r *route) match(path []byte) ([]byte, bool) {
	if r.param == "" {
		return nil, string(path) == r.path
	}
	if len(path) <= len(r.path) || string(path[:len(r.path)]) != r.path {
		return nil, false
	}
	seg := path[len(r.path):]
	return seg, bytes.IndexByte(seg, '/') < 0
}

// String is the route as listed by the index, e.g. "GET /users/{id}".
func (r *route) String() string {
	if r.param == "" {
		return r.method + " " + r.path
	}
	return r.method + " " + r.path + "{" + r.param + "}"
}

// serviceDef is one demo service: its name (also its flag), default address
// and own routes. The common routes are added to every service.
type serviceDef struct {
	name   string
	addr   string
	routes []route
}

// serviceDefs is the table of demo services, in start order.
var serviceDefs = []serviceDef{
	{name: "users", addr: "127.0.0.1:9101", routes: []route{
		{method: "GET", path: "/users", handle: listUsers},
		{method: "GET", path: "/users/", param: "id", handle: getUser},
		{method: "POST", path: "/users", handle: createUser},
	}},
	{name: "orders", addr: "127.0.0.1:9102", routes: []route{
		{method: "GET", path: "/orders", handle: listOrders},
		{method: "GET", path: "/orders/", param: "id", handle: getOrder},
		{method: "POST", path: "/orders", handle: createOrder},
	}},
	{name: "feed", addr: "127.0.0.1:9103", routes: []route{
		{method: "GET", path: "/feed", handle: getFeed},
	}},
	{name: "notifications", addr: "127.0.0.1:9104", routes: []route{
		{method: "GET", path: "/notifications", handle: getNotifications},
	}},
	// The monolith of the strangler-fig demo: users (in its own shape, see
	// legacyUser), orders and feed under one upstream.
	{name: "legacy", addr: "127.0.0.1:9105", routes: []route{
		{method: "GET", path: "/users", handle: listLegacyUsers},
		{method: "GET", path: "/users/", param: "id", handle: getLegacyUser},
		{method: "POST", path: "/users", handle: createLegacyUser},
		{method: "GET", path: "/orders", handle: listOrders},
		{method: "GET", path: "/orders/", param: "id", handle: getOrder},
		{method: "POST", path: "/orders", handle: createOrder},
		{method: "GET", path: "/feed", handle: getFeed},
	}},
}

// commonRoutes are served by every service, after its own.
var commonRoutes = []route{
	{method: "GET", path: "/bench", handle: bench},
	{method: "GET", path: "/healthz", handle: healthz},
	{method: "GET", path: "/slow", handle: slow},
	{method: "GET", path: "/status/", param: "code", handle: status},
	{method: "GET", path: "/bytes/", param: "n", handle: sendBytes},
	{method: "GET", path: "/", handle: index},
}

// service is one listening instance of a demo service.
type service struct {
	name     string
	instance string // the address actually listened on (port 0 resolved)
	routes   []route
	ln       net.Listener
	srv      *fasthttp.Server

	servedBy    []byte       // the X-Served-By value: name
	orders      orderBook    // orders and legacy services: created orders and idempotency keys
	slowWaiting atomic.Int32 // /slow handlers sleeping now (tests wait on it)
}

// newService listens on addr and returns the named service, ready to serve.
func newService(name, addr string) (*service, error) {
	var def *serviceDef
	for i := range serviceDefs {
		if serviceDefs[i].name == name {
			def = &serviceDefs[i]
		}
	}
	if def == nil {
		return nil, fmt.Errorf("unknown service %q", name)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &service{
		name:     name,
		servedBy: []byte(name),
		instance: ln.Addr().String(),
		routes:   append(append([]route(nil), def.routes...), commonRoutes...),
		ln:       ln,
	}
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		Name:               "demo-upstreams",
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        60 * time.Second,
		MaxRequestBodySize: maxRequestBody,
		CloseOnShutdown:    true,
	}
	return s, nil
}

// serve serves until shutdown; it returns nil after a clean shutdown.
func (s *service) serve() error { return s.srv.Serve(s.ln) }

// shutdown stops accepting, wakes /slow handlers (fasthttp closes the
// RequestCtx Done channel) and waits for open connections until ctx ends.
func (s *service) shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// servedByHeader names the service on every answer, JSON or not, so that
// a client of the gateway sees which upstream served it (legacy or a new
// service) without reading the body.
var servedByHeader = []byte("X-Served-By")

// handle routes one request and sets X-Served-By on whatever the route
// answered (set last: ctx.Error resets the response headers).
func (s *service) handle(ctx *fasthttp.RequestCtx) {
	s.route(ctx)
	ctx.Response.Header.SetCanonical(servedByHeader, s.servedBy)
}

// route runs the handler of the request's route, or answers 404 or 405.
func (s *service) route(ctx *fasthttp.RequestCtx) {
	path, method := ctx.Path(), ctx.Method()
	pathKnown := false
	for i := range s.routes {
		r := &s.routes[i]
		param, ok := r.match(path)
		if !ok {
			continue
		}
		pathKnown = true
		if string(method) == r.method || (r.method == "GET" && string(method) == "HEAD") {
			r.handle(s, ctx, param)
			return
		}
	}
	if !pathKnown {
		s.fail(ctx, fasthttp.StatusNotFound, "no route for %s %s", method, path)
		return
	}
	var allow []byte
	for i := range s.routes {
		if _, ok := s.routes[i].match(path); ok {
			if len(allow) > 0 {
				allow = append(allow, ", "...)
			}
			allow = append(allow, s.routes[i].method...)
		}
	}
	ctx.Response.Header.SetBytesV("Allow", allow)
	s.fail(ctx, fasthttp.StatusMethodNotAllowed, "method %s not allowed on %s", method, path)
}

// echoHeaders are the request headers echoed under "request": what a
// gateway adds or forwards on the way to an upstream.
var echoHeaders = []string{
	"X-Request-Id", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host",
	"Forwarded", "Traceparent", "X-Consumer", "X-User-Id",
}

// requestInfo is the echo of the request under "request".
type requestInfo struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   string            `json:"query"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
}

func newRequestInfo(ctx *fasthttp.RequestCtx) requestInfo {
	ri := requestInfo{
		Method:  string(ctx.Method()),
		Path:    string(ctx.Path()),
		Query:   string(ctx.URI().QueryString()),
		Host:    string(ctx.Host()),
		Headers: make(map[string]string),
	}
	for _, h := range echoHeaders {
		if v := ctx.Request.Header.Peek(h); v != nil {
			ri.Headers[h] = string(v)
		}
	}
	return ri
}

// envelope is the shape of every JSON answer.
type envelope struct {
	Service  string      `json:"service"`
	Instance string      `json:"instance"`
	Data     any         `json:"data,omitempty"`
	Error    string      `json:"error,omitempty"`
	Request  requestInfo `json:"request"`
}

// reply answers status with data in the envelope.
func (s *service) reply(ctx *fasthttp.RequestCtx, status int, data any) {
	s.write(ctx, status, envelope{Data: data})
}

// fail answers status with an error message in the envelope.
func (s *service) fail(ctx *fasthttp.RequestCtx, status int, format string, args ...any) {
	s.write(ctx, status, envelope{Error: fmt.Sprintf(format, args...)})
}

func (s *service) write(ctx *fasthttp.RequestCtx, status int, env envelope) {
	env.Service, env.Instance, env.Request = s.name, s.instance, newRequestInfo(ctx)
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.ResetBody()
	// Indented: the demo is read with curl.
	enc := json.NewEncoder(ctx)
	enc.SetIndent("", "  ")
	if err := enc.Encode(env); err != nil {
		ctx.ResetBody()
		ctx.Error(`{"error":"encoding the answer failed"}`, fasthttp.StatusInternalServerError)
	}
}

// benchBody is the fixed /bench answer, built once so that /bench does
// not allocate: exactly 64 bytes.
var benchBody = func() []byte {
	b := []byte("demo-upstreams bench: a fixed 64-byte text/plain answer")
	for len(b) < 63 {
		b = append(b, '.')
	}
	return append(b, '\n')
}()

var textPlain = []byte("text/plain; charset=utf-8")

// bench serves the load-test endpoint: no routing work beyond the table
// walk, no allocation, no copy (SetBodyRaw shares the read-only body).
func bench(_ *service, ctx *fasthttp.RequestCtx, _ []byte) {
	ctx.Response.Header.SetContentTypeBytes(textPlain)
	ctx.Response.SetBodyRaw(benchBody)
}

func healthz(_ *service, ctx *fasthttp.RequestCtx, _ []byte) {
	ctx.Response.Header.SetContentTypeBytes(textPlain)
	ctx.Response.SetBodyString("ok")
}

// slow sleeps ?ms=N milliseconds (capped at maxSlow) and then answers; a
// shutdown cuts the sleep short so that it never holds the process.
func slow(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	requested := 0
	if v := ctx.QueryArgs().Peek("ms"); v != nil {
		n, err := fasthttp.ParseUint(v)
		if err != nil {
			s.fail(ctx, fasthttp.StatusBadRequest, "ms=%q: want a non-negative integer", v)
			return
		}
		requested = n
	}
	d := maxSlow
	if requested < int(maxSlow/time.Millisecond) { // compared first: no overflow
		d = time.Duration(requested) * time.Millisecond
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	s.slowWaiting.Add(1)
	interrupted := false
	select {
	case <-t.C:
	case <-ctx.Done():
		interrupted = true
	}
	s.slowWaiting.Add(-1)
	s.reply(ctx, fasthttp.StatusOK, map[string]any{
		"requested_ms": requested,
		"sleep_ms":     d.Milliseconds(),
		"elapsed_ms":   time.Since(start).Milliseconds(),
		"interrupted":  interrupted,
	})
}

// status answers with the status code of the path, 200 to 599.
func status(s *service, ctx *fasthttp.RequestCtx, param []byte) {
	code, err := fasthttp.ParseUint(param)
	if err != nil || code < 200 || code > 599 {
		s.fail(ctx, fasthttp.StatusBadRequest, "status %q: want a code from 200 to 599", param)
		return
	}
	s.reply(ctx, code, map[string]any{"status": code, "text": fasthttp.StatusMessage(code)})
}

// bytesPayload is the shared body of /bytes, built on first use; handlers
// hand out read-only prefixes of it without copying.
var bytesPayload = sync.OnceValue(func() []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, maxBytes)
	n := copy(b, alphabet)
	for n < len(b) {
		n += copy(b[n:], b[:n]) // doubling: a few dozen copies, not 10M stores
	}
	return b
})

// sendBytes answers n bytes (capped at maxBytes) of application/octet-stream.
func sendBytes(s *service, ctx *fasthttp.RequestCtx, param []byte) {
	n, err := fasthttp.ParseUint(param)
	if err != nil {
		s.fail(ctx, fasthttp.StatusBadRequest, "bytes %q: want a non-negative integer", param)
		return
	}
	n = min(n, maxBytes)
	ctx.SetContentType("application/octet-stream")
	ctx.Response.SetBodyRaw(bytesPayload()[:n])
}

// index lists the service's endpoints.
func index(s *service, ctx *fasthttp.RequestCtx, _ []byte) {
	endpoints := make([]string, len(s.routes))
	for i := range s.routes {
		endpoints[i] = s.routes[i].String()
	}
	s.reply(ctx, fasthttp.StatusOK, map[string]any{"endpoints": endpoints})
}
