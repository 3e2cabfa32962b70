package server

import (
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"

	"github.com/wasmgate/wasmgate/host/config"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// h2Front serves HTTP/2 on the HTTPS listener. fasthttp has no HTTP/2
// server: golang.org/x/net/http2 runs the protocol (streams, flow control,
// HPACK) with its defences (rapid reset: handlers queued past 4x
// MaxConcurrentStreams end the connection with ENHANCE_YOUR_CALM;
// CONTINUATION floods and header lists past MaxHeaderBytes; control-frame
// floods), and hands each request to the same Server.handle an HTTP/1.1
// request reaches, in a fasthttp.RequestCtx of its own: the same routes,
// admission checks, plugins, caches, limits and logs. README,
// "Architecture", says why this and not a fasthttp HTTP/2 library.
type h2Front struct {
	s    *Server
	hs   *http.Server
	h2s  *http2.Server
	ctxs sync.Pool // *fasthttp.RequestCtx
	// copies are what request bodies are copied with (*bodyCopy):
	// io.Copy would allocate 32 KiB for every request, a GET's empty
	// body too.
	copies sync.Pool
	// logger is every request's fasthttp logger, made once: converting
	// it to the interface per request allocated.
	logger fasthttp.Logger
}

// bodyCopy is a buffer of io.Copy's size and the limit a request body is
// read with, reused from request to request.
type bodyCopy struct {
	buf [32 << 10]byte
	lr  io.LimitedReader
}

// newH2Front is the HTTP/2 side of the HTTPS listener of cfg.
func newH2Front(s *Server, cfg *config.Config) (*h2Front, error) {
	l := &cfg.Listen
	f := &h2Front{s: s}
	f.hs = &http.Server{
		ReadTimeout:    l.ReadTimeout.D(),
		WriteTimeout:   l.WriteTimeout.D(),
		IdleTimeout:    l.IdleTimeout.D(),
		MaxHeaderBytes: int(l.MaxHeaderBytes), // SETTINGS_MAX_HEADER_LIST_SIZE
		ErrorLog:       log.New(io.Discard, "", 0),
	}
	f.h2s = &http2.Server{
		MaxConcurrentStreams:         100,
		MaxUploadBufferPerStream:     1 << 20,
		MaxUploadBufferPerConnection: 4 << 20,
		IdleTimeout:                  l.IdleTimeout.D(),
	}
	// Registers the GOAWAY of a graceful shutdown (hs.Shutdown).
	if err := http2.ConfigureServer(f.hs, f.h2s); err != nil {
		return nil, err
	}
	f.ctxs.New = func() any { return new(fasthttp.RequestCtx) }
	f.copies.New = func() any { return new(bodyCopy) }
	f.logger = fasthttpLogger{s.log, s.clientLog}
	return f, nil
}

// serveConn serves one connection that negotiated "h2" (fasthttp's
// NextProto handler), until the client or a shutdown ends it.
func (f *h2Front) serveConn(c net.Conn) error {
	f.h2s.ServeConn(c, &http2.ServeConnOpts{
		BaseConfig: f.hs,
		Handler:    http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(c, w, r) }),
	})
	return nil
}

// serve runs one HTTP/2 request through Server.handle: the request becomes
// the HTTP/1.1 request the pipeline knows (x/net has already refused what
// HTTP/2 forbids: connection-specific headers, bad pseudo-headers, bad
// field names and values), its body read up to the largest limit that can
// apply (the pipeline answers 413 past its route's), and the answer goes
// back without the hop-by-hop headers HTTP/2 has no place for.
func (f *h2Front) serve(c net.Conn, w http.ResponseWriter, r *http.Request) {
	ctx := f.ctxs.Get().(*fasthttp.RequestCtx)
	defer func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		f.ctxs.Put(ctx)
	}()
	ctx.Init2(c, f.logger, false)
	req := &ctx.Request
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.RequestURI)
	req.Header.SetProtocolBytes(strHTTP11)
	req.Header.SetHost(r.Host) // :authority
	for name, values := range r.Header {
		if name == "Host" {
			continue
		}
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	if r.ContentLength > 0 {
		req.Header.SetContentLength(int(r.ContentLength))
	}
	// At most one byte past the request's limit is read: the pipeline
	// answers a body over its route's limit with its 413.
	limit := int64(f.s.bodyLimit(&req.Header).MaxRequestBodySize)
	if r.Body != nil && r.Body != http.NoBody {
		bc := f.copies.Get().(*bodyCopy)
		bc.lr = io.LimitedReader{R: r.Body, N: limit + 1}
		_, err := io.CopyBuffer(req.BodyWriter(), &bc.lr, bc.buf[:])
		bc.lr.R = nil
		f.copies.Put(bc)
		if err != nil {
			return // the client reset the stream
		}
		req.Header.SetContentLength(len(req.Body()))
	}
	f.s.serve(ctx, strProtoHTTP2)

	resp := &ctx.Response
	h := w.Header()
	for k, v := range resp.Header.All() {
		switch string(k) {
		case "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Proxy-Connection", "Content-Length":
			continue
		}
		h.Add(string(k), string(v))
	}
	status, body := resp.StatusCode(), resp.Body()
	head := r.Method == http.MethodHead
	switch {
	case sdkabi.BodylessStatus(status):
	case head:
		if cl := resp.Header.ContentLength(); cl >= 0 {
			h.Set("Content-Length", strconv.Itoa(cl)) // what a GET would get
		}
	default:
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	if !head && !sdkabi.BodylessStatus(status) {
		_, _ = w.Write(body)
	}
}
