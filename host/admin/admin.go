// Package admin serves the gateway's admin API: health, readiness, metrics,
// the running config, routes, upstreams and reload.
//
// Every endpoint sits behind a bearer token compared in constant time; the
// package knows nothing of how the gateway is wired and talks to it through
// the Backend interface.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Backend is what the admin API reads from and acts on.
type Backend interface {
	// Ready reports whether the gateway takes traffic (config loaded, not draining).
	Ready() bool
	// Config returns the running config as JSON with secrets redacted.
	Config() ([]byte, error)
	// Routes and Upstreams return JSON-ready views of the running snapshot.
	Routes() any
	Upstreams() any
	// Reload validates and applies the config file; on rejection the error
	// lists every problem and the running config stays.
	Reload(source string) (any, error)
}

// Endpoint is an extra admin endpoint (plugin management, for one).
type Endpoint struct {
	Method, Path string
	// Prefix makes Path match every path that starts with it.
	Prefix  bool
	Handler fasthttp.RequestHandler
}

// API is the admin request handler.
type API struct {
	backend  Backend
	metrics  fasthttp.RequestHandler
	log      *slog.Logger
	tokenSum atomic.Pointer[[sha256.Size]byte]
	extra    []Endpoint
	pprof    fasthttp.RequestHandler
}

// New returns the admin API. metrics serves GET /metrics.
func New(b Backend, metrics http.Handler, token string, log *slog.Logger, extra ...Endpoint) *API {
	a := &API{backend: b, metrics: fasthttpadaptor.NewFastHTTPHandler(metrics), log: log, extra: extra}
	// Go profiles, behind the same token: CPU-µs per request is a product
	// figure here, and operators need to see where it goes.
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	a.pprof = fasthttpadaptor.NewFastHTTPHandler(mux)
	a.SetToken(token)
	return a
}

// SetToken replaces the bearer token (a config reload may change it).
func (a *API) SetToken(token string) {
	sum := sha256.Sum256([]byte(token))
	a.tokenSum.Store(&sum)
}

// authorized compares hashes so that neither content nor length leaks through timing.
func (a *API) authorized(ctx *fasthttp.RequestCtx) bool {
	auth := ctx.Request.Header.Peek("Authorization")
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !equalFoldASCII(auth[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256(auth[len(prefix):])
	want := a.tokenSum.Load()
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		d := s[i]
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// Handle is the fasthttp handler of the admin listener.
func (a *API) Handle(ctx *fasthttp.RequestCtx) {
	if !a.authorized(ctx) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="wasmgate-admin"`)
		writeJSON(ctx, fasthttp.StatusUnauthorized, errorBody{Error: "unauthorized", Message: "a valid bearer token is required"})
		return
	}
	method, path := string(ctx.Method()), string(ctx.Path())
	for _, e := range a.extra {
		if e.Method == method && (e.Path == path || e.Prefix && strings.HasPrefix(path, e.Path)) {
			e.Handler(ctx)
			return
		}
	}
	if strings.HasPrefix(path, "/debug/pprof/") {
		a.pprof(ctx)
		return
	}
	switch path {
	case "/healthz":
		if a.only(ctx, method, "GET") {
			writeJSON(ctx, 200, map[string]string{"status": "ok"})
		}
	case "/readyz":
		if a.only(ctx, method, "GET") {
			if a.backend.Ready() {
				writeJSON(ctx, 200, map[string]string{"status": "ready"})
			} else {
				writeJSON(ctx, 503, map[string]string{"status": "not_ready"})
			}
		}
	case "/metrics":
		if a.only(ctx, method, "GET") {
			a.metrics(ctx)
		}
	case "/config":
		if a.only(ctx, method, "GET") {
			body, err := a.backend.Config()
			if err != nil {
				writeJSON(ctx, 500, errorBody{Error: "internal", Message: err.Error()})
				return
			}
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		}
	case "/routes":
		if a.only(ctx, method, "GET") {
			writeJSON(ctx, 200, a.backend.Routes())
		}
	case "/upstreams":
		if a.only(ctx, method, "GET") {
			writeJSON(ctx, 200, a.backend.Upstreams())
		}
	case "/config/reload":
		if a.only(ctx, method, "POST") {
			res, err := a.backend.Reload("admin")
			if err != nil {
				writeJSON(ctx, fasthttp.StatusUnprocessableEntity, reloadRejected(err))
				return
			}
			writeJSON(ctx, 200, res)
		}
	default:
		writeJSON(ctx, 404, errorBody{Error: "not_found", Message: "no admin endpoint " + path})
	}
}

func (a *API) only(ctx *fasthttp.RequestCtx, method, want string) bool {
	if method == want {
		return true
	}
	ctx.Response.Header.Set("Allow", want)
	writeJSON(ctx, fasthttp.StatusMethodNotAllowed, errorBody{Error: "method_not_allowed", Message: want + " only"})
	return false
}

type errorBody struct {
	Error   string   `json:"error"`
	Message string   `json:"message,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

// multiError is satisfied by config.ErrorList and errors.Join results.
type multiError interface{ Unwrap() []error }

func reloadRejected(err error) errorBody {
	body := errorBody{Error: "config_rejected", Message: "the running config stays in force"}
	if m, ok := err.(multiError); ok {
		for _, e := range m.Unwrap() {
			body.Errors = append(body.Errors, e.Error())
		}
	} else {
		body.Errors = []string{err.Error()}
	}
	return body
}

// WriteJSON answers with v as indented JSON; exported for extra endpoints.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) { writeJSON(ctx, status, v) }

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, body = 500, []byte(`{"error":"internal","message":"cannot encode answer"}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}
