// Package server wires the gateway together: it loads the config, builds
// immutable snapshots (routes, upstreams, limits), serves client traffic on
// fasthttp, serves the admin API, reloads on request, signal or file change,
// and shuts down gracefully.
//
// It is the only package that knows every other one; nothing imports it but
// cmd/wasmgate and tests.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/certs"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/fleet"
	"github.com/wasmgate/wasmgate/host/idempotency"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/ratelimit"
	"github.com/wasmgate/wasmgate/host/router"
	"github.com/wasmgate/wasmgate/host/traffic"
)

// Options configure a Server.
type Options struct {
	// ConfigPath is the YAML config file; reloads read it again. An
	// etcd://HOST:PORT[,HOST:PORT]/PREFIX serves a fleet's config instead
	// (see fleet.go), which wasmgate config push writes.
	ConfigPath string
	// Log is the process log (JSON to stderr by default).
	Log *slog.Logger
	// Stdout and Stderr are the access log's "stdout" and "stderr"
	// destinations (tests capture them). Default: the process's own.
	Stdout, Stderr io.Writer
	// AdminToken, when set (from WASMGATE_ADMIN_TOKEN), wins over the config's token.
	AdminToken string
	// ListenAddress and AdminAddress, when set, win over the config's
	// listen.address and admin.address: what one gateway of several
	// sharing a config (a fleet's) sets for itself.
	ListenAddress, AdminAddress string

	// dryRun builds everything a config asks for without serving or
	// writing anything: Validate.
	dryRun bool
}

// Server is a running gateway.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	svc     *services // what the request path uses of the above
	admin   *admin.API

	snap     atomic.Pointer[snapshot]
	version  atomic.Uint64
	inFlight atomic.Int64
	draining atomic.Bool

	settle   memorySettler // gives back what builds leave on the heap
	reloadMu sync.Mutex    // serializes reloads, hot-loads, traffic changes and their builds
	b        *builder
	fleet    *fleetSync      // the fleet's etcd, when ConfigPath is etcd://...
	traffic  *trafficControl // run-time traffic changes
	edge     edge            // the HTTPS and probe listeners

	proxySrv, adminSrv *fasthttp.Server
	proxyLn, adminLn   net.Listener
	serveErr           chan error
	stopWatch          context.CancelFunc
	tokenGenerated     bool
	token              string
	closeLogsOnce      sync.Once
	clientLog          *abi.RateLimitedLogs // budget of the lines about malformed requests
	loadedSum          []byte               // sha256 of the config file content last loaded
}

// New loads and validates the config and builds the first snapshot. It binds
// nothing; Start does.
func New(opts Options) (*Server, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	s := &Server{
		opts:     opts,
		log:      opts.Log,
		metrics:  metrics.New(),
		serveErr: make(chan error, 4),
	}
	// A client can send malformed requests as fast as it likes: their
	// log lines get a budget (the metrics count every one).
	s.clientLog = abi.NewLogBudget(s.log, "malformed-request log lines", 1, 10)
	s.svc = &services{metrics: s.metrics, log: s.log, current: &s.snap}
	s.b = &builder{
		svc: s.svc, log: s.log, metrics: s.metrics,
		history:  make(map[string]*pluginHistory),
		stdout:   newBufferedWriter(opts.Stdout),
		stderr:   newBufferedWriter(opts.Stderr),
		logFiles: make(map[string]*bufferedWriter),
		dryRun:   opts.dryRun,
	}
	var (
		cfg        *config.Config
		table      *router.Table
		fleetState *fleet.State
		err        error
	)
	if fleet.IsURL(opts.ConfigPath) {
		if s.fleet, err = newFleetSync(s, opts.ConfigPath); err == nil {
			s.b.modules = s.fleet
			if cfg, table, fleetState, err = s.fleet.start(); err != nil {
				s.fleet.cli.Close()
			}
		}
	} else {
		s.b.modules = fileModules{}
		s.loadedSum = fileSum(opts.ConfigPath)
		cfg, table, err = s.opts.load(opts.ConfigPath)
	}
	if err != nil {
		s.closeLogs()
		return nil, err
	}
	// The plugin runtime (engine, compilation cache) is fixed for the life
	// of the process; plugins themselves reload.
	if s.b.plugins, err = newPlugins(cfg.Runtime, s.log, s.metrics); err != nil {
		s.closeFleet()
		s.closeLogs()
		return nil, err
	}
	// Local rate limit state lives as long as the process: a reload keeps
	// every client's quota where it was.
	s.b.localLimits = ratelimit.NewLocal(ratelimit.LocalOptions{})
	// So do idempotency keys kept locally: a reload must not forget an
	// answer and let a repeat through.
	s.b.idemLocal = idempotency.NewMemory(idempotency.MemoryOptions{})
	// Run-time traffic changes survive a restart in the state file; one
	// that cannot be read stops the start rather than be overwritten, and
	// its directory is made now, so that a change is not refused later.
	statePath := trafficStatePath(cfg)
	if s.fleet != nil {
		statePath = "" // the fleet's etcd keeps it
	}
	if statePath != "" && !opts.dryRun {
		if err = os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
			err = fmt.Errorf("%s: traffic.state_file: %w", cfg.File, err)
		}
	}
	if err == nil {
		topts := traffic.Options{StatePath: statePath}
		if s.fleet != nil {
			topts.Share, topts.Shared = s.fleet.shareTraffic, fleetState.Traffic
		}
		s.b.traffic, err = traffic.NewStore(topts)
		if err != nil && topts.Shared != nil {
			// The fleet's state is the fleet's to fix: start from the
			// config's values, say so, and take the next good one.
			s.fleet.problem(fmt.Errorf("traffic state of revision %d: %w", fleetState.TraffRev, err))
			s.log.Error("fleet: the shared traffic state cannot be read; starting from the config's values", "err", err.Error())
			s.fleet.trafficRefused = fleetState.TraffRev
			topts.Shared = nil
			s.b.traffic, err = traffic.NewStore(topts)
		}
	}
	if err != nil {
		s.closeFleet()
		s.b.localLimits.Close()
		s.b.plugins.runtime.Close(context.Background())
		s.closeLogs()
		return nil, err
	}
	certSet, err := s.edge.loadCerts(cfg)
	if err != nil {
		s.closeFleet()
		s.b.localLimits.Close()
		s.b.plugins.runtime.Close(context.Background())
		s.closeLogs()
		return nil, err
	}
	if certSet != nil {
		s.edge.certs.Use(certSet)
	}
	snap, err := s.b.safeBuild(cfg, table, nil)
	if err != nil {
		s.closeFleet()
		s.b.localLimits.Close()
		s.b.plugins.runtime.Close(context.Background())
		s.closeLogs()
		return nil, err
	}
	snap.version = s.version.Add(1)
	limitResponses(snap)
	s.snap.Store(snap)
	s.rememberVersions(snap)
	s.settle.soon()
	if s.fleet != nil {
		s.fleet.started(fleetState)
	}
	s.metrics.Reload(true, float64(snap.loadedAt.Unix()))

	s.token = opts.AdminToken
	if s.token == "" {
		s.token = cfg.Admin.Token
	}
	if s.token == "" {
		// Loopback admin without a configured token: generate one rather than
		// leave the admin API open. Check refuses non-loopback addresses.
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("generate admin token: %w", err)
		}
		s.token = hex.EncodeToString(b[:])
		s.tokenGenerated = true
	}
	s.traffic = &trafficControl{mu: &s.reloadMu, current: &s.snap, b: s.b, log: s.log, metrics: s.metrics, commit: s.commit, fleet: s.fleet}
	if !opts.dryRun {
		s.traffic.watchCanaries(snap) // a canary restored from the state file
	}
	if s.admin, err = admin.New(s.token, s.adminEndpoints()...); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		return nil, err
	}
	s.metrics.SetCacheStats(s.cacheStats)
	s.metrics.SetShadowStats(s.traffic.shadowStats)
	if s.fleet != nil {
		s.metrics.SetFleetStats(func() metrics.FleetStats {
			v := s.fleet.view()
			return metrics.FleetStats{Connected: v.Connected, ConfigRevision: v.ConfigRevision, RejectedRevision: v.RejectedRevision}
		})
	}
	return s, nil
}

// Validate runs on the config file at path every check that serving it or
// reloading it would run, and serves nothing: schema, references and
// routes (Check), then the whole build: plugin modules read, compiled and
// started with their config (on_init), upstreams and their discovery,
// Redis, the access log's file. Everything it built is released before it
// returns. envToken is WASMGATE_ADMIN_TOKEN.
func Validate(path, envToken string) (*config.Config, error) {
	s, err := New(Options{ConfigPath: path, AdminToken: envToken, Log: slog.New(slog.DiscardHandler),
		Stdout: io.Discard, Stderr: io.Discard, dryRun: true})
	if err != nil {
		return nil, err
	}
	cfg := s.snap.Load().cfg
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.Shutdown(ctx)
	return cfg, nil
}

// Check loads a config file and runs every validation the gateway would run
// before serving it: schema and references (config), route conflicts
// (router), and the admin-token rule. envToken is WASMGATE_ADMIN_TOKEN.
func Check(path, envToken string) (*config.Config, *router.Table, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	table, err := checkParsed(cfg, envToken)
	if err != nil {
		return nil, nil, err
	}
	return cfg, table, nil
}

// load is Check with this gateway's own settings over the file's.
func (o *Options) load(path string) (*config.Config, *router.Table, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	table, err := o.check(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, table, nil
}

// check is checkParsed with this gateway's own settings over the config's.
func (o *Options) check(cfg *config.Config) (*router.Table, error) {
	if o.ListenAddress != "" {
		cfg.Listen.Address = o.ListenAddress
	}
	if o.AdminAddress != "" {
		cfg.Admin.Address = o.AdminAddress
	}
	return checkParsed(cfg, o.AdminToken)
}

// checkParsed is Check's part after the schema: route conflicts and the
// admin-token rule.
func checkParsed(cfg *config.Config, envToken string) (*router.Table, error) {
	var errs config.ErrorList
	table, err := router.Compile(cfg.File, cfg.Routes)
	if err != nil {
		var list config.ErrorList
		if !errors.As(err, &list) {
			return nil, err
		}
		errs = append(errs, list...)
	}
	if envToken == "" && cfg.Admin.Token == "" && !isLoopback(cfg.Admin.Address) {
		p := cfg.Admin.At.Of("address", cfg.Admin.Pos)
		errs = append(errs, config.Error{File: cfg.File, Line: p.Line, Col: p.Col,
			Msg: fmt.Sprintf("admin.address %q is not loopback: set admin.token or WASMGATE_ADMIN_TOKEN", cfg.Admin.Address)})
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool {
			if errs[i].Line != errs[j].Line {
				return errs[i].Line < errs[j].Line
			}
			return errs[i].Col < errs[j].Col
		})
		return nil, errs
	}
	return table, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AdminToken returns the token the admin API expects, and whether the server
// generated it because none was configured.
func (s *Server) AdminToken() (token string, generated bool) { return s.token, s.tokenGenerated }

// Start binds the proxy and admin listeners and serves them in the background.
func (s *Server) Start() error {
	cfg := s.snap.Load().cfg
	var err error
	if s.proxyLn, err = net.Listen("tcp", cfg.Listen.Address); err != nil {
		return fmt.Errorf("proxy listener: %w", err)
	}
	if s.adminLn, err = net.Listen("tcp", cfg.Admin.Address); err != nil {
		s.proxyLn.Close()
		return fmt.Errorf("admin listener: %w", err)
	}
	s.proxySrv = s.newProxyServer(cfg)
	s.adminSrv = &fasthttp.Server{
		Handler:               s.admin.Handle,
		Name:                  "wasmgate-admin",
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           time.Minute,
		MaxRequestBodySize:    64 << 20, // plugin uploads come here later
		NoDefaultServerHeader: true,
		CloseOnShutdown:       true,
		Logger:                fasthttpLogger{s.log, s.clientLog},
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stopWatch = cancel
	if err := s.startEdge(ctx, cfg); err != nil {
		cancel()
		s.proxyLn.Close()
		s.adminLn.Close()
		for _, ln := range []net.Listener{s.edge.tlsLn, s.edge.probeLn} {
			if ln != nil {
				ln.Close()
			}
		}
		return err
	}
	go func() { s.serveErr <- s.proxySrv.Serve(s.proxyLn) }()
	go func() { s.serveErr <- s.adminSrv.Serve(s.adminLn) }()
	if s.fleet != nil {
		go s.fleet.run(ctx, s.fleet.appliedRev+1) // nothing written since New's read is missed
	} else if cfg.Admin.WatchConfig == nil || *cfg.Admin.WatchConfig {
		if err := s.watchConfig(ctx); err != nil {
			s.log.Warn("config file watch unavailable; reload with SIGHUP or the admin API", "err", err)
		}
	}
	if dir := cfg.Runtime.WatchDir; dir != "" {
		if !filepath.IsAbs(dir) && cfg.File != "" {
			dir = filepath.Join(filepath.Dir(cfg.File), dir)
		}
		if err := s.watchPlugins(ctx, dir); err != nil {
			s.log.Warn("plugin directory watch unavailable; hot-load with PUT /plugins/NAME", "err", err)
		}
	}
	attrs := []any{"proxy", s.ProxyAddr(), "admin", s.AdminAddr(), "routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams)}
	if s.edge.tlsLn != nil {
		attrs = append(attrs, "https", s.edge.tlsLn.Addr().String())
	}
	if s.edge.probeLn != nil {
		attrs = append(attrs, "probe", s.edge.probeLn.Addr().String())
	}
	s.log.Info("wasmgate serving", attrs...)
	return nil
}

func (s *Server) newProxyServer(cfg *config.Config) *fasthttp.Server {
	maxBody := int64(cfg.Listen.MaxBodyBytes)
	for _, r := range cfg.Routes {
		maxBody = max(maxBody, int64(r.MaxBodyBytes))
	}
	return &fasthttp.Server{
		Handler:               s.handle,
		ErrorHandler:          s.handleReadError,
		Name:                  "wasmgate",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadTimeout:           cfg.Listen.ReadTimeout.D(),
		WriteTimeout:          cfg.Listen.WriteTimeout.D(),
		IdleTimeout:           cfg.Listen.IdleTimeout.D(),
		// fasthttp bounds the request line plus headers by its read buffer.
		ReadBufferSize:     int(cfg.Listen.MaxHeaderBytes),
		MaxRequestBodySize: int(maxBody),
		// Each request's body limit is its route's, decided from its
		// headers before the body is read; 100-continue is answered 413
		// when the body would be over it.
		HeaderReceived:  s.bodyLimit,
		ExpectHandler:   s.expectContinue,
		Concurrency:     cfg.Listen.MaxConnections,
		CloseOnShutdown: true,
		// Bodies are proxied byte for byte; no transparent decompression.
		DisablePreParseMultipartForm: true,
		Logger:                       fasthttpLogger{s.log, s.clientLog},
	}
}

// ProxyAddr is the bound proxy address (useful with port 0).
func (s *Server) ProxyAddr() string { return s.proxyLn.Addr().String() }

// AdminAddr is the bound admin address.
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// Reload reads and validates the config file again. An invalid config is
// rejected with all its errors and the running one keeps serving; a valid one
// becomes a new snapshot, swapped in atomically.
//
// A fleet's gateway reads the fleet's state from etcd instead and applies
// what changed there (fleetSync.sync).
func (s *Server) Reload(source string) (ReloadResult, error) {
	if s.fleet != nil {
		return s.fleet.sync(source)
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, table, err := s.opts.load(s.opts.ConfigPath)
	return s.reloadLocked(source, cfg, table, err)
}

// reloadLocked serves cfg, unless err (from reading it) or its build says
// otherwise. Called with reloadMu held.
func (s *Server) reloadLocked(source string, cfg *config.Config, table *router.Table, err error) (ReloadResult, error) {
	old := s.snap.Load()
	// A build records module files and pins in the plugins' history as it
	// goes: a rejected config must leave it as the running one has it.
	defer s.b.keepHistory()(&err)
	var next *snapshot
	var certSet *certs.Set
	if err == nil && old.cfg.Listen.TLS != nil && cfg.Listen.TLS != nil {
		certSet, err = s.edge.loadCerts(cfg) // certificates of a listener that stays
	}
	if err == nil {
		next, err = s.b.safeBuild(cfg, table, old)
	}
	if err != nil {
		s.settle.soon() // a rejected build leaves its garbage too
		s.metrics.Reload(false, 0)
		s.log.Error("config reload rejected; the running config stays", "source", source, "err", err.Error())
		return ReloadResult{}, err
	}
	s.warnRestartOnly(old.cfg, cfg)
	if certSet != nil {
		s.edge.certs.Use(certSet)
	}
	s.commit(old, next)
	s.metrics.RetainRoutes(routeNames(cfg))
	if s.opts.AdminToken == "" && cfg.Admin.Token != "" && cfg.Admin.Token != s.token {
		s.token, s.tokenGenerated = cfg.Admin.Token, false
		s.admin.SetToken(s.token)
	}
	s.metrics.Reload(true, float64(next.loadedAt.Unix()))
	s.log.Info("config reloaded", "source", source, "version", next.version,
		"routes", len(cfg.Routes), "upstreams", len(cfg.Upstreams))
	return ReloadResult{Status: "ok", Version: next.version, Routes: len(cfg.Routes), Upstreams: len(cfg.Upstreams)}, nil
}

// ReloadResult is what a successful reload swapped in.
type ReloadResult struct {
	Status    string `json:"status"`
	Version   uint64 `json:"version"`
	Routes    int    `json:"routes"`
	Upstreams int    `json:"upstreams"`
}

// commit swaps next in with one atomic store, then retires what old had
// that next does not use. Called with reloadMu held.
func (s *Server) commit(old, next *snapshot) {
	next.version = s.version.Add(1)
	limitResponses(next)
	s.snap.Store(next)
	s.rememberVersions(next)
	retireUpstreams(old, next)
	s.b.commitCaches(old, next)
	old.retiring.Store(true)
	go func() {
		// Bounded: a request holds its reference for at most its deadlines.
		for deadline := time.Now().Add(time.Minute); old.refs.Load() > 0 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		s.b.retirePlugins(old, next)
		s.settle.soon()
		// Closed once the requests on old are done: an idempotency key
		// claimed on it is settled on it.
		if old.redis != nil && old.redis != next.redis {
			old.redis.Close()
		}
	}()
}

// limitResponses bounds the response bodies the upstreams of snap read, in
// the exchanges that carry no limit of their own (a route's carries its
// max_response_bytes: route.send), by the largest response limit of its
// routes: the gateway holds a response body in memory, and without a bound
// an upstream that sends without end would make it allocate without end.
// A body over it is answered 502 upstream_body_too_large as soon as it is
// known to be over: from its Content-Length, or once the bytes read pass it.
func limitResponses(snap *snapshot) {
	limit := snap.maxResponse
	for _, rt := range snap.routes {
		limit = max(limit, rt.responseLimit)
	}
	for _, up := range snap.upstreams {
		up.SetMaxResponseBody(limit)
	}
}

// rememberVersions records the plugin versions a snapshot serves.
func (s *Server) rememberVersions(snap *snapshot) {
	for name, lp := range snap.plugins {
		if h := s.b.history[name]; h != nil {
			h.remember(lp.version)
		}
	}
}

func routeNames(cfg *config.Config) map[string]bool {
	names := make(map[string]bool, len(cfg.Routes))
	for _, r := range cfg.Routes {
		names[r.Name] = true
	}
	return names
}

// warnRestartOnly logs settings a reload cannot apply to bound listeners.
func (s *Server) warnRestartOnly(old, next *config.Config) {
	o, n := old.Listen, next.Listen
	if o.Address != n.Address || o.ReadTimeout != n.ReadTimeout || o.WriteTimeout != n.WriteTimeout ||
		o.IdleTimeout != n.IdleTimeout || o.MaxHeaderBytes != n.MaxHeaderBytes || o.MaxConnections != n.MaxConnections ||
		old.Admin.Address != next.Admin.Address {
		s.log.Warn("listener settings changed; they take effect on restart (address, timeouts, max_header_bytes, max_connections, admin.address)")
	}
	if ot, nt := o.TLS, n.TLS; (ot == nil) != (nt == nil) || ot != nil && (ot.Address != nt.Address || ot.MinVersion != nt.MinVersion || ot.RedirectHTTP != nt.RedirectHTTP) ||
		o.ProbeAddress != n.ProbeAddress {
		s.log.Warn("listen.tls or listen.probe_address changed; listeners change on restart (certificates reload now)")
	}
	if s.fleet == nil && trafficStatePath(old) != trafficStatePath(next) {
		s.log.Warn("traffic.state_file changed; it takes effect on restart", "in_use", trafficStatePath(old))
	}
}

// trafficStatePath is the file run-time traffic changes are kept in: the
// config's traffic.state_file (relative to the config's directory), by
// default the config's name with ".state.json"; "" with state_file: off
// or a config that is no file.
func trafficStatePath(cfg *config.Config) string {
	p := cfg.Traffic.StateFile
	switch {
	case p == "off", cfg.File == "" && !filepath.IsAbs(p):
		return ""
	case p == "":
		return strings.TrimSuffix(cfg.File, filepath.Ext(cfg.File)) + ".state.json"
	case !filepath.IsAbs(p):
		return filepath.Join(filepath.Dir(cfg.File), p)
	}
	return p
}

// Shutdown stops accepting connections, lets in-flight requests finish until
// ctx is done, then releases everything.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.settle.stop()
	if s.stopWatch != nil {
		s.stopWatch()
	}
	var errs []error
	if s.proxySrv != nil {
		if err := s.proxySrv.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("drain proxy: %w", err))
		}
	}
	errs = append(errs, s.edge.shutdown(ctx)...)
	if s.adminSrv != nil {
		if err := s.adminSrv.ShutdownWithContext(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop admin: %w", err))
		}
	}
	last := s.snap.Load()
	retireUpstreams(last, nil)
	s.b.retirePlugins(last, nil)
	s.b.commitCaches(last, nil)
	if last.redis != nil {
		last.redis.Close()
	}
	s.b.localLimits.Close()
	s.closeFleet()
	if err := s.b.plugins.runtime.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close plugin runtime: %w", err))
	}
	s.closeLogs()
	return errors.Join(errs...)
}

func (s *Server) closeFleet() {
	if s.fleet != nil {
		s.fleet.cli.Close()
	}
}

func (s *Server) closeLogs() {
	s.closeLogsOnce.Do(func() {
		s.b.stdout.Close()
		s.b.stderr.Close()
		for _, f := range s.b.logFiles {
			f.Close()
		}
	})
}

// Ready reports whether the gateway takes traffic: a config is loaded and it
// is not draining.
//
// A fleet's gateway with fleet.unready_without_etcd is not ready either
// while etcd does not answer.
func (s *Server) Ready() bool {
	return s.snap.Load() != nil && !s.draining.Load() && (s.fleet == nil || s.fleet.ready())
}

// Config returns the running config as JSON, secrets redacted.
func (s *Server) Config() ([]byte, error) { return config.Redacted(s.snap.Load().cfg) }

var _ fasthttp.Logger = fasthttpLogger{}

// fasthttpLogger routes fasthttp's own messages into the process log,
// within a budget. Its per-connection errors quote the client's raw request,
// credentials included: they are dropped here, and handleReadError logs
// their kind instead.
type fasthttpLogger struct {
	log    *slog.Logger
	budget *abi.RateLimitedLogs
}

func (l fasthttpLogger) Printf(format string, args ...any) {
	if strings.HasPrefix(format, "error when serving connection") || !l.budget.Allow() {
		return
	}
	l.log.Warn(fmt.Sprintf(format, args...), "component", "fasthttp")
}

// LogLevel is the process log level the running config asks for.
func (s *Server) LogLevel() string { return s.snap.Load().cfg.Log.Level }
