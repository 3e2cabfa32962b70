package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// UpstreamBody is the fixed 64-byte text body the benchmark upstream answers
// every request with. It is small so that the benchmark measures per-request
// proxy overhead, not copying.
const UpstreamBody = "wasmgate bench upstream: fixed 64-byte body for proxy benchmark\n"

// UpstreamJSONPath is the request URI the benchmark upstream answers with
// UpstreamJSON instead of UpstreamBody.
const UpstreamJSONPath = "/json"

// UpstreamJSON is the fixed JSON object (about 200 bytes) the benchmark
// upstream answers UpstreamJSONPath with: a small API response with a nested
// object, a list and internal fields, for plugins that transform JSON.
const UpstreamJSON = `{"id":4711,"status":"active","user":{"fullName":"Ada Lovelace",` +
	`"email":"ada@example.com","internal_id":"u-0091"},"items":[{"id":1,"name":"alpha",` +
	`"internal_id":"i-1"},{"id":2,"name":"beta","internal_id":"i-2"}],"total":2}`

var (
	upstreamBody      = []byte(UpstreamBody)
	upstreamTextPlain = []byte("text/plain; charset=utf-8")
	upstreamJSON      = []byte(UpstreamJSON)
	upstreamJSONType  = []byte("application/json")
)

// upstreamHandler answers 200 with UpstreamBody, or with UpstreamJSON for
// UpstreamJSONPath. It compares the raw request URI, which needs no parsing,
// so the common path costs what it did before the JSON one existed.
// SetBodyRaw hands fasthttp the shared immutable slice, so a request costs
// no allocation and no copy.
func upstreamHandler(ctx *fasthttp.RequestCtx) {
	if string(ctx.Request.Header.RequestURI()) == UpstreamJSONPath {
		ctx.Response.Header.SetContentTypeBytes(upstreamJSONType)
		ctx.Response.SetBodyRaw(upstreamJSON)
		return
	}
	ctx.Response.Header.SetContentTypeBytes(upstreamTextPlain)
	ctx.Response.SetBodyRaw(upstreamBody)
}

// ServeBareProxy runs the floor of the benchmark: a reverse proxy of a few
// lines on plain fasthttp (a HostClient with default settings), with no
// routing, headers, limits, metrics or logs. What wasmgate costs above it is
// the gateway's own work; what it costs below nginx is fasthttp and Go.
func ServeBareProxy(ctx context.Context, addr, upstream string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench bare proxy: %w", err)
	}
	hc := &fasthttp.HostClient{Addr: upstream, MaxConns: 4096}
	return serve(ctx, ln, func(ctx *fasthttp.RequestCtx) {
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	})
}

// ServeUpstream runs the benchmark upstream on addr until ctx is done: a
// minimal fasthttp server answering every request 200 with UpstreamBody
// (UpstreamJSON on UpstreamJSONPath). It returns nil after a clean shutdown
// on ctx, and an error if it cannot listen or stops serving for another
// reason.
func ServeUpstream(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("bench upstream: %w", err)
	}
	return serve(ctx, ln, upstreamHandler)
}

// serveUpstream serves the benchmark upstream on ln and closes it when done.
func serveUpstream(ctx context.Context, ln net.Listener) error {
	return serve(ctx, ln, upstreamHandler)
}

// serve runs h on ln until ctx is done.
func serve(ctx context.Context, ln net.Listener, h fasthttp.RequestHandler) error {
	s := &fasthttp.Server{
		Handler:               h,
		Name:                  "wasmgate-bench-upstream",
		NoDefaultServerHeader: true,
		// Clients of a benchmark keep their connections for the whole run:
		// no per-connection request cap, no idle churn.
		MaxRequestsPerConn: 0,
		CloseOnShutdown:    true,
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ln) }()
	select {
	case err := <-errc:
		if err == nil {
			err = errors.New("stopped serving")
		}
		return fmt.Errorf("bench upstream on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	serr := s.ShutdownWithContext(sctx)
	<-errc
	if serr != nil {
		return fmt.Errorf("bench upstream on %s: shutdown: %w", ln.Addr(), serr)
	}
	return nil
}
