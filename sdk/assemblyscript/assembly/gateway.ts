// What a plugin tells the gateway about the request (consumer, claims,
// cache key), feature flags and the route's rate limits.

import * as host from "./host";
import { Code } from "./abi";
import { record } from "./errors";
import { arg1, arg2, ptr0, len0, ptr1, len1, bytesPtr, bytesLen } from "./buffer";

/** Records who the request belongs to (an API key's owner, a JWT subject),
 *  for rate limits keyed by consumer and for the access log. onRequest
 *  only; 1-256 printable ASCII bytes. */
export function setConsumer(id: string): i32 {
  arg1(id);
  return record("set_consumer", host.set_consumer(ptr0, len0));
}

/** Records the claims the plugin established, one JSON object of at most
 *  16 KiB (typically a verified token's payload), for the route's
 *  authorize policy. onRequest only. Set only what was verified: the
 *  gateway trusts it. */
export function setClaims(json: string): i32 {
  arg1(json);
  return record("set_claims", host.set_claims(ptr0, len0));
}

/** setClaims with the JSON's bytes. */
export function setClaimsBytes(json: Uint8Array | null): i32 {
  return record("set_claims", host.set_claims(bytesPtr(json), bytesLen(json)));
}

/** Replaces the cache key the route computes for this request (still
 *  scoped to the route). onRequest only; Code.Unavailable when the route
 *  has no cache; 1-1024 printable ASCII bytes. */
export function setCacheKey(key: string): i32 {
  arg1(key);
  return record("cache_set_key", host.cache_set_key(ptr0, len0));
}

/** Whether the gateway's feature flag name is on for this request's user;
 *  false with lastCode() Code.NotFound for a flag the config does not
 *  declare. onRequest and onResponse. */
export function flagEnabled(name: string): bool {
  arg1(name);
  const r = host.flag_enabled(ptr0, len0);
  record("flag_enabled", r);
  return r == 1;
}

/** The outcome of rateLimit. */
export class Limit {
  /** 0, or the negative code of the call (then allowed is false). */
  code: i32 = 0;
  allowed: bool = false;
  /** The quota left of that limit. */
  remaining: i64 = 0;
  /** When not allowed: milliseconds until the cost would fit. */
  retryAfterMillis: i64 = 0;
}

// rate_limit's result: two i64 the host writes.
const limitResult = memory.data(16, 8);

/** Charges cost against the route's rate limit called name for the subject
 *  key (cost 0: only consult). Code.NotFound when the route has no limit of
 *  that name; Code.BadArgument for a negative cost or a key over 256 bytes. */
export function rateLimit(name: string, key: string, cost: i64): Limit {
  arg2(name, key);
  store<i64>(limitResult, 0);
  store<i64>(limitResult, 0, 8);
  const r = host.rate_limit(ptr0, len0, ptr1, len1, cost, limitResult);
  record("rate_limit", r);
  const l = new Limit();
  if (r < 0) {
    l.code = r;
    return l;
  }
  l.allowed = r == 1;
  l.remaining = load<i64>(limitResult);
  l.retryAfterMillis = load<i64>(limitResult, 8);
  return l;
}
