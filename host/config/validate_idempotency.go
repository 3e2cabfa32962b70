package config

import (
	"slices"
	"time"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
)

// maxIdempotencyWait bounds how long a repeat may hold a connection
// waiting for the first request.
const maxIdempotencyWait = Duration(time.Minute)

// idempotency checks a route's idempotency-key policy.
func (v *validator) idempotency(r *Route, hasRedis bool, pfx string) {
	p := r.Idempotency
	if p == nil {
		return
	}
	pfx += "idempotency: "
	at := func(key string) Pos { return p.At.Of(key, p.Pos) }
	if r.Upstream == "" && r.Active == "" && len(r.Split) == 0 {
		v.errorf(r.At.Of("idempotency", r.Pos), "%sthe route has no upstream: there is no write to protect", pfx)
	}
	if !httpsyntax.IsToken(p.Header) {
		v.errorf(at("header"), "%sheader %q is not a header name", pfx, p.Header)
	}
	if len(p.Methods) == 0 {
		v.errorf(at("methods"), "%smethods must name at least one method", pfx)
	}
	for i, m := range p.Methods {
		switch {
		case !httpsyntax.IsToken(m):
			v.errorf(v.elem(&p.Methods[i], at("methods")), "%smethod %q is not a method name", pfx, m)
		case slices.Contains(p.Methods[:i], m):
			v.errorf(v.elem(&p.Methods[i], at("methods")), "%smethod %q listed twice", pfx, m)
		}
	}
	if p.TTL <= 0 {
		v.errorf(at("ttl"), "%sttl must be > 0", pfx)
	}
	if p.Wait < 0 || p.Wait > maxIdempotencyWait {
		v.errorf(at("wait"), "%swait must be between 0 and 1m, got %s", pfx, p.Wait.D())
	}
	if p.Lease < 0 {
		v.errorf(at("lease"), "%slease must not be negative", pfx)
	}
	if p.MaxBodyBytes <= 0 {
		v.errorf(at("max_body_bytes"), "%smax_body_bytes must be > 0", pfx)
	}
	if p.Store == "redis" && !hasRedis {
		v.errorf(at("store"), "%sstore redis needs a redis section (the server the gateways share)", pfx)
	}
}
