package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/certs"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// edge is what the gateway listens on besides the plain proxy listener
// and the admin API: the HTTPS listener, serving the same routes with
// certificates chosen by SNI, and the probe listener for load balancers.
type edge struct {
	certs    certs.Store
	tlsLn    net.Listener
	tlsSrv   *fasthttp.Server
	h2       *h2Front
	probeLn  net.Listener
	probeSrv *fasthttp.Server
}

// certPairs are the certificate files of listen.tls, relative paths taken
// from the config's directory.
func certPairs(cfg *config.Config) []certs.Pair {
	t := cfg.Listen.TLS
	if t == nil {
		return nil
	}
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) || cfg.File == "" {
			return p
		}
		return filepath.Join(filepath.Dir(cfg.File), p)
	}
	out := make([]certs.Pair, len(t.Certificates))
	for i, c := range t.Certificates {
		out[i] = certs.Pair{Cert: rel(c.Cert), Key: rel(c.Key)}
	}
	return out
}

// loadCerts loads the config's certificates when they are not the ones
// served (a reload that leaves them alone reads nothing: nil). The caller
// uses them once the config is accepted; until then those served stay.
func (e *edge) loadCerts(cfg *config.Config) (*certs.Set, error) {
	pairs := certPairs(cfg)
	if pairs == nil || e.certs.Same(pairs) {
		return nil, nil
	}
	set, err := certs.Load(pairs)
	if err != nil {
		p := cfg.Listen.TLS.At.Of("certificates", cfg.Listen.TLS.Pos)
		return nil, fmt.Errorf("%s:%d:%d: listen.tls: %w", cfg.File, p.Line, p.Col, err)
	}
	return set, nil
}

// tlsVersion maps listen.tls.min_version (validated) to its constant.
func tlsVersion(v string) uint16 {
	if v == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// startEdge binds and serves the HTTPS and probe listeners the config asks
// for. The HTTPS listener serves the proxy's handler: the same routes,
// plugins, caches, limits and logs.
func (s *Server) startEdge(ctx context.Context, cfg *config.Config) error {
	e := &s.edge
	if t := cfg.Listen.TLS; t != nil {
		ln, err := net.Listen("tcp", t.Address)
		if err != nil {
			return fmt.Errorf("https listener: %w", err)
		}
		e.tlsLn = ln
		e.tlsSrv = s.newProxyServer(cfg)
		if e.h2, err = newH2Front(s, cfg); err != nil {
			ln.Close()
			return fmt.Errorf("https listener: http/2: %w", err)
		}
		e.tlsSrv.NextProto("h2", e.h2.serveConn)
		// ALPN in the server's order of preference: HTTP/2 first.
		tlsCfg := certs.ServerConfig(&e.certs, tlsVersion(t.MinVersion), "h2", "http/1.1")
		go func() { s.serveErr <- e.tlsSrv.Serve(tls.NewListener(ln, tlsCfg)) }()
		if t.RedirectHTTP {
			s.proxySrv.Handler = s.redirectHTTPS
		}
		go s.watchCerts(ctx)
	}
	if addr := cfg.Listen.ProbeAddress; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("probe listener: %w", err)
		}
		e.probeLn = ln
		e.probeSrv = &fasthttp.Server{Handler: s.probe, Name: "wasmgate", NoDefaultServerHeader: true,
			ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: time.Minute,
			ReadBufferSize: 4096, MaxRequestBodySize: 1, CloseOnShutdown: true, Logger: fasthttpLogger{s.log, s.clientLog}}
		go func() { s.serveErr <- e.probeSrv.Serve(ln) }()
	}
	return nil
}

// watchCerts loads the certificates again when their files change, until
// ctx is done: a renewed certificate is served without a reload. A file
// that does not load (half written, wrong key) leaves the served ones and
// is tried again at the next change.
func (s *Server) watchCerts(ctx context.Context) {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.edge.certs.Changed() {
			continue
		}
		if err := s.edge.certs.Reload(); err != nil {
			s.log.Error("certificate files changed but do not load; the served certificates stay", "err", err.Error())
			continue
		}
		s.log.Info("certificates reloaded from their changed files")
	}
}

// shutdownEdge stops the HTTPS and probe listeners, letting requests in
// flight finish until ctx is done.
func (e *edge) shutdown(ctx context.Context) []error {
	var errs []error
	if e.h2 != nil {
		// GOAWAY to every HTTP/2 connection: fasthttp does not track them.
		if err := e.h2.hs.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain http/2: %w", err))
		}
	}
	if e.tlsSrv != nil {
		if err := e.tlsSrv.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain https: %w", err))
		}
	}
	if e.probeSrv != nil {
		if err := e.probeSrv.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop probe: %w", err))
		}
	}
	return errs
}

// redirectHTTPS is the plain listener's handler under listen.tls.
// redirect_http: 308 to the same URL on the HTTPS listener's port, so that
// a method and body are repeated there as sent. A Host that is not a plain
// host[:port] gets 400: it goes into the Location header.
func (s *Server) redirectHTTPS(ctx *fasthttp.RequestCtx) {
	if !httpsyntax.ValidHost(ctx.Host()) {
		ctx.Error("bad host\n", fasthttp.StatusBadRequest)
		return
	}
	host := string(ctx.Host())
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	_, port, _ := net.SplitHostPort(s.edge.tlsLn.Addr().String())
	authority := net.JoinHostPort(host, port)
	if port == "443" {
		authority = strings.TrimSuffix(authority, ":443")
	}
	ctx.Response.Header.Set("Location", "https://"+authority+string(ctx.RequestURI()))
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
}

// probe answers the probe listener: GET or HEAD /healthz (200 while the
// process runs) and /readyz (200 while it takes traffic, 503 while it
// drains), without a token and with nothing more to say.
func (s *Server) probe(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	ctx.SetContentType("application/json")
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetBodyString(`{"status":"ok"}` + "\n")
	case "/readyz":
		if s.Ready() {
			ctx.SetBodyString(`{"status":"ready"}` + "\n")
			return
		}
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString(`{"status":"draining"}` + "\n")
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetBodyString(`{"error":"not_found"}` + "\n")
	}
}
