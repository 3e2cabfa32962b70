// Exported forms of helpers of the native host functions, for another ABI's
// host functions (host/abi/httpwasm), so that both ABIs apply the same rules
// to headers, statuses, bodies and logs. None of them changes behaviour.

package abi

import (
	"context"
	"log/slog"

	"github.com/valyala/fasthttp"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// DelRequestHeader removes every value of name, in every spelling, from h;
// buf is scratch space for the spelling found (kept for reuse).
func DelRequestHeader(h *fasthttp.RequestHeader, name []byte, buf *[]byte) {
	delRequestHeader(h, name, buf)
}

// DelResponseHeader is DelRequestHeader for a response.
func DelResponseHeader(h *fasthttp.ResponseHeader, name []byte, buf *[]byte) {
	delResponseHeader(h, name, buf)
}

// SetStatus sets a response's status and keeps its body in step with it, as
// response_set_status does (a 204 or 304 drops the body).
func SetStatus(r *fasthttp.Response, status int) { setStatus(r, status) }

// SetResponseBody replaces a response body and its Content-Length.
func SetResponseBody(r *fasthttp.Response, b []byte) { setResponseBody(r, b) }

// BodylessStatus reports whether a response with status s carries no body
// (1xx, 204, 304).
func BodylessStatus(s int) bool { return sdkabi.BodylessStatus(s) }

// ValidStatus reports whether s is a status a plugin may give a response:
// a final one, 200 to 599.
func ValidStatus(s int32) bool { return validStatus(s) }

// ValidHeaderValue reports whether b may be a header value a plugin sets:
// no CR, LF or NUL.
func ValidHeaderValue(b []byte) bool { return validValue(b) }

// IsFraming reports whether name is Content-Length, Transfer-Encoding or Trailer,
// which the host owns.
func IsFraming(name []byte) bool { return isResponseFraming(name) }

// FoldEq compares two header names ASCII case-insensitively.
func FoldEq(a, b []byte) bool { return foldEq(a, b) }

// OverBody reports whether a body of n bytes exceeds the binding's limit.
func (c *Call) OverBody(n int) bool { return c.overBody(n) }

// LogEnabled reports whether the plugin's logger logs lvl: a guest may skip
// building a message that would be dropped.
func (c *Call) LogEnabled(lvl slog.Level) bool {
	lg := slog.Default()
	if c.Env != nil && c.Env.Log != nil {
		lg = c.Env.Log
	}
	return lg.Enabled(c.logContext(), lvl)
}

// LogMessage writes a guest message to the gateway log, tagged with plugin
// and route. A level the logger drops costs no rate budget; over the budget
// the line is counted and dropped (RateLimitedLogs). A message is cut at
// MaxLogMessage bytes so that one call cannot flood the log either.
func (c *Call) LogMessage(lvl slog.Level, msg []byte) {
	var plugin, route string
	var lg *slog.Logger
	var rl *RateLimitedLogs
	if e := c.Env; e != nil {
		plugin, route, lg, rl = e.Plugin, e.Route, e.Log, e.LogRate
	}
	ctx := c.logContext()
	if lg == nil {
		if !slog.Default().Enabled(ctx, lvl) {
			return
		}
		lg = slog.Default().With(slog.String("plugin", plugin), slog.String("route", route))
	}
	if !lg.Enabled(ctx, lvl) || !rl.Allow() {
		return
	}
	if len(msg) > MaxLogMessage {
		msg = msg[:MaxLogMessage]
	}
	lg.LogAttrs(ctx, lvl, string(msg))
}

// logContext is the context log lines carry: the hook's, when there is one.
func (c *Call) logContext() context.Context {
	if c.Ctx == nil {
		return context.Background()
	}
	return c.Ctx
}
