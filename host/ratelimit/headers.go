package ratelimit

import (
	"math"
	"strconv"
	"time"
)

// Header names of draft-ietf-httpapi-ratelimit-headers.
const (
	HeaderPolicy    = "RateLimit-Policy"
	HeaderRateLimit = "RateLimit"
)

// maxSFInteger is the largest Integer of Structured Field Values (RFC 9651):
// 15 digits. Larger numbers are written as this one.
const maxSFInteger = 999_999_999_999_999

// AppendPolicy appends to dst the RateLimit-Policy field value describing
// limits, one list member per limit, and returns the extended slice:
//
//	"per-second";q=10;w=1, "per-hour";q=1000;w=3600
//
// q is the Rate and w the Period in seconds. A Period that is not a whole
// number of seconds is rounded up to one that is, and q is the quota refilled
// over that window (rounded down): 5 per 1500ms is q=6;w=2. Burst has no
// parameter in the draft and is not shown. Names are written as Structured
// Field Strings; a byte that a String cannot hold (outside printable ASCII)
// is written as '?'. It does not allocate when dst has room.
func AppendPolicy(dst []byte, limits []Limit) []byte {
	for i := range limits {
		l := &limits[i]
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendSFString(dst, l.Name)
		q, w := policyWindow(l.Rate, l.Period)
		dst = append(dst, ";q="...)
		dst = strconv.AppendInt(dst, q, 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, w, 10)
	}
	return dst
}

// policyWindow returns the q and w parameters of a limit.
func policyWindow(rate int64, period time.Duration) (q, w int64) {
	if rate < 0 {
		rate = 0
	}
	if period <= 0 {
		return clampSF(rate), 0
	}
	w = int64(period / time.Second)
	if period%time.Second == 0 {
		return clampSF(rate), clampSF(w)
	}
	w++
	if w > math.MaxInt64/int64(time.Second) {
		return clampSF(rate), clampSF(w) // too long for the rounding to matter
	}
	s, ok := mulDiv(rate, w*int64(time.Second), int64(period))
	if !ok {
		return maxSFInteger, clampSF(w)
	}
	return clampSF(s.n), clampSF(w)
}

// AppendRateLimit appends to dst the RateLimit field value for decision d
// over limits (those passed to Decide), and returns the extended slice. It
// names the limit closest to exhaustion: one that denied the request if any,
// else the one with the least remaining quota, the one that takes longer to
// reset on a tie:
//
//	"per-hour";r=0;t=30
//
// r is the remaining quota and t the time until the limit is fully reset, in
// seconds rounded up. It appends nothing when there is no limit, and does not
// allocate when dst has room.
func AppendRateLimit(dst []byte, limits []Limit, d *Decision) []byte {
	n := min(len(limits), len(d.States))
	if n == 0 {
		return dst
	}
	best := 0
	for i := 1; i < n; i++ {
		if tighter(&d.States[i], &d.States[best]) {
			best = i
		}
	}
	st := &d.States[best]
	dst = appendSFString(dst, limits[best].Name)
	dst = append(dst, ";r="...)
	dst = strconv.AppendInt(dst, clampSF(st.Remaining), 10)
	dst = append(dst, ";t="...)
	return strconv.AppendInt(dst, clampSF(ceilSeconds(st.Reset)), 10)
}

// tighter reports whether limit state a is closer to exhaustion than b.
func tighter(a, b *LimitState) bool {
	if a.Allowed != b.Allowed {
		return !a.Allowed
	}
	if a.Remaining != b.Remaining {
		return a.Remaining < b.Remaining
	}
	return a.Reset > b.Reset
}

// RetryAfterSeconds converts a Decision.RetryAfter to the delay-seconds of a
// Retry-After header: rounded up, at least 1 (a client told 0 would retry at
// once, before the quota it waits for is back). For InfDuration, which no
// wait satisfies, leave Retry-After out rather than use its value.
func RetryAfterSeconds(d time.Duration) int64 {
	return max(ceilSeconds(d), 1)
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

func clampSF(v int64) int64 {
	return min(max(v, 0), maxSFInteger)
}

// appendSFString appends s as a Structured Field String (RFC 9651 §3.3.3):
// quoted, with '"' and '\' escaped.
func appendSFString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
