// Package admin is the gateway's admin API: one router, one bearer-token
// check, JSON answers. It knows no feature of the gateway: each feature
// registers its endpoints beside its own code (in host/server, as Caddy's
// reverseproxy/admin.go sits beside its proxy), with typed results, and
// the router lists them all, so that the README's table is checked against
// it.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

// Endpoint is one admin endpoint.
type Endpoint struct {
	Method string
	// Path is exact ("/routes"), or a pattern whose {name} segments match
	// one segment each ("/plugins/{name}/rollback"; Param reads them), or
	// ends in "/…" to match any rest ("/debug/pprof/…").
	Path    string
	Handler fasthttp.RequestHandler
}

// Error is an admin answer other than success: its status, and a JSON body
// {"error": Code, "message": Message, "errors": [...]}.
type Error struct {
	Status  int      `json:"-"`
	Code    string   `json:"error"`
	Message string   `json:"message,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// JSON adapts f, which answers with a value of its own type, into a
// handler: 200 with the value as JSON, an *Error's status and body, or 500
// for any other error.
func JSON[T any](f func(ctx *fasthttp.RequestCtx) (T, error)) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		v, err := f(ctx)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				ae = &Error{Status: fasthttp.StatusInternalServerError, Code: "internal", Message: err.Error()}
			}
			WriteJSON(ctx, ae.Status, ae)
			return
		}
		WriteJSON(ctx, fasthttp.StatusOK, v)
	}
}

// List is the errors of a multi-error (config.ErrorList, errors.Join) one
// per entry, or the one error. Only err itself is split: a list wrapped in
// an error with context (a FILE:LINE:COL, a route) stays one message.
func List(err error) []string {
	m, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range m.Unwrap() {
		out = append(out, e.Error())
	}
	return out
}

// Param is the value of a {name} segment of the matched endpoint's path.
func Param(ctx *fasthttp.RequestCtx, name string) string {
	v, _ := ctx.UserValue(name).(string)
	return v
}

// Pprof serves Go's profiles under /debug/pprof/: CPU-µs per request is a
// product figure here, and operators need to see where it goes.
func Pprof() fasthttp.RequestHandler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return fasthttpadaptor.NewFastHTTPHandler(mux)
}

// API is the admin request handler.
type API struct {
	endpoints []Endpoint
	tokenSum  atomic.Pointer[[sha256.Size]byte]
}

// New returns the admin API serving endpoints behind token. Two endpoints
// with the same method and path are an error.
func New(token string, endpoints ...Endpoint) (*API, error) {
	a := &API{endpoints: endpoints}
	seen := map[string]bool{}
	for _, e := range endpoints {
		if e.Path == "" || e.Path[0] != '/' || e.Handler == nil {
			return nil, fmt.Errorf("admin endpoint %s %q: a path starting with / and a handler", e.Method, e.Path)
		}
		if k := e.Method + " " + e.Path; seen[k] {
			return nil, fmt.Errorf("admin endpoint %s registered twice", k)
		} else {
			seen[k] = true
		}
	}
	a.SetToken(token)
	return a, nil
}

// Endpoints lists the endpoints, in registration order.
func (a *API) Endpoints() []Endpoint { return slices.Clone(a.endpoints) }

// SetToken replaces the bearer token (a config reload may change it).
func (a *API) SetToken(token string) {
	sum := sha256.Sum256([]byte(token))
	a.tokenSum.Store(&sum)
}

// authorized compares hashes so that neither content nor length leaks through timing.
func (a *API) authorized(ctx *fasthttp.RequestCtx) bool {
	auth := ctx.Request.Header.Peek("Authorization")
	const prefix = "bearer "
	if len(auth) <= len(prefix) || !strings.EqualFold(string(auth[:len(prefix)]), prefix) {
		return false
	}
	got := sha256.Sum256(auth[len(prefix):])
	want := a.tokenSum.Load()
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// Handle is the fasthttp handler of the admin listener: the token, then
// the endpoint of the path and method (404 for no path, 405 with Allow for
// another method). A trailing slash is forgiven: "/plugins/x/" is
// "/plugins/x".
func (a *API) Handle(ctx *fasthttp.RequestCtx) {
	if !a.authorized(ctx) {
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="wasmgate-admin"`)
		WriteJSON(ctx, fasthttp.StatusUnauthorized, &Error{Code: "unauthorized", Message: "a valid bearer token is required"})
		return
	}
	method, path := string(ctx.Method()), string(ctx.Path())
	served, allow := a.dispatch(ctx, method, path)
	if !served && allow == nil && len(path) > 1 && strings.HasSuffix(path, "/") {
		served, allow = a.dispatch(ctx, method, path[:len(path)-1])
	}
	if served {
		return
	}
	if len(allow) > 0 {
		ctx.Response.Header.Set("Allow", strings.Join(allow, ", "))
		WriteJSON(ctx, fasthttp.StatusMethodNotAllowed, &Error{Code: "method_not_allowed", Message: strings.Join(allow, ", ") + " only"})
		return
	}
	WriteJSON(ctx, fasthttp.StatusNotFound, &Error{Code: "not_found", Message: "no admin endpoint " + path})
}

// dispatch serves ctx with the endpoint of method and path; when none has
// that method, it returns the methods of the path.
func (a *API) dispatch(ctx *fasthttp.RequestCtx, method, path string) (served bool, allow []string) {
	for _, e := range a.endpoints {
		if !match(ctx, e.Path, path) {
			continue
		}
		if e.Method == method {
			e.Handler(ctx)
			return true, nil
		}
		allow = append(allow, e.Method)
	}
	return false, allow
}

// match reports whether path fits pattern, and sets the {name} values on ctx.
func match(ctx *fasthttp.RequestCtx, pattern, path string) bool {
	if rest, ok := strings.CutSuffix(pattern, "/…"); ok {
		return strings.HasPrefix(path, rest+"/")
	}
	if !strings.Contains(pattern, "{") {
		return pattern == path
	}
	ps, segs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(segs) {
		return false
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" {
				return false
			}
			continue
		}
		if p != segs[i] {
			return false
		}
	}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") {
			ctx.SetUserValue(p[1:len(p)-1], segs[i])
		}
	}
	return true
}

// WriteJSON answers with v as indented JSON.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status, body = fasthttp.StatusInternalServerError, []byte(`{"error":"internal","message":"cannot encode answer"}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}
