package abi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"time"
	"unicode/utf8"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// Scope is what the plugins of one request's chain tell the gateway about
// it, shared by every plugin of the chain: the consumer an auth plugin
// identified (rate limits keyed by consumer, the access log) and a cache key
// set by a plugin. The server owns one per request and reads it after the
// chain; Reset clears it for the next request, keeping its buffers.
type Scope struct {
	Client   []byte // client IP as text (request_client_ip)
	Consumer []byte // set_consumer; empty: none identified
	Claims   []byte // set_claims: a JSON object; empty: none established
	CacheKey []byte // cache_set_key; empty: none set (a set key is never empty)
	// Flags answers flag_enabled for the request's user; set once by the
	// server (Reset keeps it). Nil: no flag is known.
	Flags Flags
	// Peer is the connection's peer address, with no trusted-proxy
	// processing (http-wasm's get_source_addr); nil: unknown.
	Peer net.Addr
	// Proto is the client's protocol version: "HTTP/1.0", "HTTP/1.1" or
	// "HTTP/2.0", captured before the gateway rewrites the request to
	// HTTP/1.1 for the upstream (http-wasm's get_protocol_version); "": the
	// request's own.
	Proto string
}

// Flags are the gateway's feature flags as a request's plugins see them.
type Flags interface {
	// FlagState reports whether the flag called name is on for the
	// request's user, and whether the config declares such a flag.
	FlagState(name []byte) (on, known bool)
}

// flagEnabled answers whether a feature flag is on for the request's user:
// 1 on, 0 off, NOT_FOUND for a flag the config does not declare.
func flagEnabled(c *Call, stack []uint64) {
	name := c.guest(sdkabi.FuncFlagEnabled, stack[0], stack[1])
	var code int32
	switch {
	case !c.hooked() || c.Scope == nil:
		code = ErrNotAllowed
	case c.Scope.Flags == nil:
		code = ErrNotFound
	default:
		on, known := c.Scope.Flags.FlagState(name)
		switch {
		case !known:
			code = ErrNotFound
		case on:
			code = 1
		}
	}
	ret32(stack, code)
}

// Reset clears the scope for a new request, keeping its buffers.
func (s *Scope) Reset() {
	s.Client = s.Client[:0]
	s.Consumer = s.Consumer[:0]
	s.Claims = s.Claims[:0]
	s.CacheKey = s.CacheKey[:0]
	// Per request: a pooled scope must not report the last client's
	// connection (nor keep it reachable) if the server does not set them.
	s.Peer, s.Proto = nil, ""
}

func (s *Scope) client() []byte {
	if s == nil {
		return nil
	}
	return s.Client
}

// Limiter is a route's rate limits as plugins see them (rate_limit).
type Limiter interface {
	// Charge charges cost against the route's limit named name for the
	// subject key, or only consults it when cost is 0. It reports whether
	// the request is within the limit, the quota left and, when it is not,
	// how long until it would be. ok is false when the route has no limit
	// of that name.
	Charge(name, key []byte, cost int64) (allowed bool, remaining int64, retryAfter time.Duration, ok bool)
}

// setConsumer records the consumer (an API key's owner, a JWT subject) the
// request belongs to, for the route's consumer-keyed rate limits and the
// access log.
func setConsumer(c *Call, stack []uint64) {
	ret32(stack, c.setScoped(sdkabi.FuncSetConsumer, stack, MaxConsumer, codeOK, func(s *Scope) *[]byte { return &s.Consumer }))
}

// setClaims records the claims an auth plugin established (a verified
// token's payload), for the route's authorization policy. Only a JSON
// object is taken: the policy reads claims by name.
func setClaims(c *Call, stack []uint64) {
	v := c.guest(sdkabi.FuncSetClaims, stack[0], stack[1])
	var code int32
	switch {
	case c.Phase != PhaseRequest || c.Scope == nil:
		code = ErrNotAllowed
	case len(v) > MaxClaims:
		code = ErrTooLarge
	case !jsonObject(v):
		code = ErrBadArgument
	default:
		c.Scope.Claims = append(c.Scope.Claims[:0], v...)
	}
	ret32(stack, code)
}

// jsonObject reports whether b is one valid JSON object in UTF-8, space
// around it allowed. (json.Valid alone lets invalid UTF-8 through, which a
// decoder would silently replace.)
func jsonObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && utf8.Valid(b) && json.Valid(b)
}

// cacheSetKey replaces the cache key the route would compute for the
// request. The key stays scoped to the route, so a plugin cannot reach
// another route's entries.
func cacheSetKey(c *Call, stack []uint64) {
	unavailable := codeOK
	if c.Env == nil || !c.Env.Cache {
		unavailable = ErrUnavailable
	}
	ret32(stack, c.setScoped(sdkabi.FuncCacheSetKey, stack, MaxCacheKey, unavailable, func(s *Scope) *[]byte { return &s.CacheKey }))
}

// codeOK is the return code of success.
const codeOK int32 = 0

// setScoped copies the guest bytes at (ptr, len) into the Scope field that
// field picks. It works in on_request only, for 1 to limit printable ASCII
// bytes; unavailable, when not codeOK, is what a call in the right hook gets
// instead.
func (c *Call) setScoped(fn string, stack []uint64, limit int, unavailable int32, field func(*Scope) *[]byte) int32 {
	v := c.guest(fn, stack[0], stack[1])
	switch {
	case c.Phase != PhaseRequest || c.Scope == nil:
		return ErrNotAllowed
	case unavailable != codeOK:
		return unavailable
	case len(v) > limit:
		return ErrTooLarge
	case !printable(v):
		return ErrBadArgument
	}
	dst := field(c.Scope)
	*dst = append((*dst)[:0], v...)
	return codeOK
}

// rateLimit consults (cost 0) or charges one of the route's named limits
// for a subject the plugin chooses, and writes the quota left and the
// retry delay in milliseconds as two i64 at result_ptr.
func rateLimit(c *Call, stack []uint64) {
	name := c.guest(sdkabi.FuncRateLimit, stack[0], stack[1])
	key := c.guest(sdkabi.FuncRateLimit, stack[2], stack[3])
	cost := int64(stack[4])
	out := c.guest(sdkabi.FuncRateLimit, stack[5], 16)
	var code int32
	switch {
	case !c.hooked():
		code = ErrNotAllowed
	case cost < 0 || len(key) > MaxConsumer:
		code = ErrBadArgument
	case c.Env == nil || c.Env.Limits == nil:
		code = ErrNotFound
	default:
		allowed, remaining, retry, ok := c.Env.Limits.Charge(name, key, cost)
		if !ok {
			code = ErrNotFound
			break
		}
		if allowed {
			code = 1
		}
		binary.LittleEndian.PutUint64(out, uint64(remaining))
		binary.LittleEndian.PutUint64(out[8:], uint64(retry.Milliseconds()))
	}
	ret32(stack, code)
}

// printable reports whether b is non-empty printable ASCII: ids that go into
// log lines, keys and headers unescaped.
func printable(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		if ch < ' ' || ch >= 0x7f {
			return false
		}
	}
	return true
}
