// Package ratelimit decides requests against rate limits with the Generic
// Cell Rate Algorithm (GCRA), either in memory (Local, exact per instance) or
// on Redis (Redis, shared by every gateway instance), and formats the
// RateLimit-Policy and RateLimit headers of draft-ietf-httpapi-ratelimit-headers.
//
// # The algorithm
//
// A Limit allows Rate requests per Period with bursts up to Burst. Its
// emission interval is T = Period/Rate and its window W = Burst × T. The only
// state per key and limit is the theoretical arrival time TAT: the time at
// which the limit is fully rested again if no request comes meanwhile (in a
// steady stream of one request every T, when the next one is due). With now
// the current time and debt X = max(TAT-now, 0), a request of cost c is
// allowed when
//
//	X + c×T <= W
//
// and, when allowed, charged by setting TAT = now + X + c×T.
//
// This is exactly a token bucket of capacity Burst refilled with one token
// every T (Rate per Period): the bucket holds Burst - X/T tokens, since X is
// the time the refill still needs to fill it up; a request of cost c passes
// when at least c tokens are left, Burst - X/T >= c, which is the test above
// multiplied by T; and taking c tokens adds c×T to the time the refill needs.
// GCRA stores one timestamp instead of a count and a refill time, and needs no
// refill step. The rest of a Decision follows from the same numbers:
//
//   - LimitState.Remaining = floor((W - X')/T), X' the debt after the decision:
//     the tokens left, the cost units that could pass at once.
//   - LimitState.Reset = X': the time until the bucket is full again.
//   - Decision.RetryAfter, when denied, = max over the limits of
//     X + c×T - W: the time until each limit has refilled enough for c.
//
// The arithmetic is integer nanoseconds with no rounding at all: T is rarely
// a whole number of nanoseconds (1s/3), so every duration is kept as
// nanoseconds plus a fraction in units of 1/Rate of a nanosecond, and the
// products c×T and Burst×T are computed in 128 bits. A limit of 3 per second
// allows exactly 3 per second forever rather than drifting by the nanosecond
// lost at each request. Only the returned durations are rounded, up to the
// next nanosecond. The bounds on a Limit (MaxRate, MaxWindow) keep every value
// below 2^53, which the Redis script needs.
//
// # Cost
//
// Decide charges cost units (usually 1) to every limit, all or nothing: when
// one limit denies, none is charged, so a denied request costs nothing and a
// client retrying in a loop does not dig its debt deeper. Cost 0 consults the
// limits without charging them: it is always allowed unless a limit is
// already over its window (after a reload made it stricter); read the States.
// A cost larger than a limit's Burst can never pass, however long the client
// waits. Decide then returns no error and a Decision with Allowed false and
// RetryAfter = InfDuration, whatever the other limits would ask for; that
// limit's State has Allowed false; nothing is charged, so every State's
// Remaining and Reset are those of a consultation (cost 0). Local, Redis and
// Redis's fallback answer alike. A server turns it into a 429 (or 413)
// without a Retry-After header: no delay would be true.
//
// # Keys and state
//
// State is kept per key and limit Name: several routes may share a key with
// limits of different names, and a reload may change a limit's numbers and
// keep its state. An idle key (every TAT in the past) has the state of a key
// never seen, so the stores drop it: Local by a sweep that each decision
// advances over a couple of entries and by a janitor goroutine (stopped by
// Close) that also gives memory back after a spike of keys, Redis by a
// PEXPIRE at the last TAT. A denied or consulting decision on an unknown key
// creates nothing.
//
// # Redis
//
// A Redis decision is one EVALSHA (EVAL once after a Redis restart flushes
// its script cache) of a script that decides and charges every limit of the
// decision atomically, on Redis's own clock (TIME inside the script, allowed
// since Redis 5 replicates scripts by their effects, the only way in Redis 7),
// so gateways whose clocks disagree still agree on the limits. Redis failures
// fail open onto the fallback Local: per-instance limits, so N gateways allow
// up to N times the quota while Redis is down, instead of refusing everything
// or nothing. The store returns to Redis once a probe decision succeeds. See
// Redis for what counts as a failure, and for decisions after Close.
//
// # Headers
//
// AppendPolicy and AppendRateLimit write the Structured Field syntax of the
// current draft, e.g.
//
//	RateLimit-Policy: "per-second";q=10;w=1, "per-hour";q=1000;w=3600
//	RateLimit: "per-hour";r=0;t=30
//
// The policy advertises each limit's bucket, q = Burst units over the w
// seconds an empty bucket takes to refill, and RateLimit counts down from
// it: r = Remaining goes from q to 0, t = Reset from 0 to w. RetryAfterSeconds
// gives the delay of a Retry-After header.
package ratelimit
