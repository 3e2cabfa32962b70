package wasmgate

import (
	"time"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// SetConsumer records who the request belongs to (an API key's owner, a JWT
// subject), for the route's rate limits keyed by consumer and for the
// access log. It works in OnRequest; ids are 1–256 printable ASCII bytes.
func SetConsumer(id string) error { return codeErr(abi.FuncSetConsumer, hostSetConsumer(id)) }

// SetClaims records the claims the plugin established, as one JSON object
// (typically a verified token's payload), for the route's authorize
// policy: required scopes (the "scope" or "scp" claim), claim values,
// groups. It works in OnRequest; at most 16 KiB. Set only what was
// verified: the gateway trusts it.
func SetClaims(claims []byte) error { return codeErr(abi.FuncSetClaims, hostSetClaims(claims)) }

// SetCacheKey replaces the cache key the route would compute for this
// request (still scoped to the route). It works in OnRequest and fails with
// ErrUnavailable when the route has no cache; keys are 1–1024 printable
// ASCII bytes.
func SetCacheKey(key string) error { return codeErr(abi.FuncCacheSetKey, hostCacheSetKey(key)) }

// FlagEnabled reports whether the gateway's feature flag name is on for
// this request's user. It fails with ErrNotFound for a flag the config does
// not declare, and works in OnRequest and OnResponse.
func FlagEnabled(name string) (bool, error) {
	rc := hostFlagEnabled(name)
	if rc < 0 {
		return false, codeErr(abi.FuncFlagEnabled, rc)
	}
	return rc == 1, nil
}

// Limit is the outcome of RateLimit.
type Limit struct {
	Allowed    bool
	Remaining  int64         // quota left after this call
	RetryAfter time.Duration // when not allowed: until the cost would fit
}

// RateLimit charges cost against the route's rate limit called name for the
// subject key (a tenant, a consumer: the plugin decides), or only consults it
// when cost is 0. It fails with ErrNotFound when the route has no limit of
// that name. The decision is atomic and, for a limit with store redis,
// shared by every gateway instance.
func RateLimit(name, key string, cost int64) (Limit, error) {
	var out [2]int64
	rc := hostRateLimit(name, key, cost, &out)
	if rc < 0 {
		return Limit{}, codeErr(abi.FuncRateLimit, rc)
	}
	return Limit{Allowed: rc == 1, Remaining: out[0], RetryAfter: time.Duration(out[1]) * time.Millisecond}, nil
}
