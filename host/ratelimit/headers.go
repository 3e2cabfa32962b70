package ratelimit

import (
	"math/bits"
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
// It advertises each limit's bucket, the quantity the RateLimit field counts
// down: q is the Burst, what a client may spend at once, and w the time an
// empty bucket takes to fill up again, Burst × Period / Rate, in seconds
// rounded up and at least 1. A client that spends at most q units in any w
// seconds is therefore never refused. The rounding errs on the safe side: a
// window under a second is advertised as a second, which understates the
// sustained rate (10 per second with a Burst of 1 is q=1;w=1), and 5 per
// 1500ms is q=5;w=2.
//
// Names are written as Structured Field Strings; a byte that a String cannot
// hold (outside printable ASCII) is written as '?'. A limit that
// ValidateLimits rejects still yields a well-formed member, with numbers
// clamped to what the syntax allows. It does not allocate when dst has room.
func AppendPolicy(dst []byte, limits []Limit) []byte {
	for i := range limits {
		l := &limits[i]
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendSFString(dst, l.Name)
		q, w := policyWindow(l)
		dst = append(dst, ";q="...)
		dst = strconv.AppendInt(dst, q, 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, w, 10)
	}
	return dst
}

// policyWindow returns the q and w parameters of a limit: its Burst, and
// ceil(Burst × Period / Rate / 1s), at least 1. The window is computed in 128
// bits, so that it is exact for any int64 inputs.
func policyWindow(l *Limit) (q, w int64) {
	burst := max(l.burst(), 0)
	q = clampSF(burst)
	switch {
	case l.Rate < 1:
		return q, maxSFInteger // never refills
	case l.Period <= 0 || burst == 0:
		return q, 1
	}
	// ns = ceil(burst × period / rate), a 128-bit quotient hi:lo.
	rate := uint64(l.Rate)
	hi, lo := bits.Mul64(uint64(burst), uint64(l.Period))
	qhi, rem := hi/rate, hi%rate
	qlo, rem := bits.Div64(rem, lo, rate)
	if rem > 0 {
		var c uint64
		qlo, c = bits.Add64(qlo, 1, 0)
		qhi += c
	}
	// w = ceil(ns / 1s); the ceiling of a ceiling is the ceiling of the
	// exact quotient.
	const second = uint64(time.Second)
	if qhi >= second {
		return q, maxSFInteger
	}
	s, rem := bits.Div64(qhi, qlo, second)
	if s >= maxSFInteger {
		return q, maxSFInteger
	}
	if rem > 0 {
		s++
	}
	return q, max(int64(s), 1)
}

// AppendRateLimit appends to dst the RateLimit field value for decision d
// over limits (those passed to Decide), and returns the extended slice. It
// names the limit closest to exhaustion: one that denied the request if any,
// else the one with the least remaining quota, the one that takes longer to
// reset on a tie:
//
//	"per-hour";r=0;t=30
//
// r is the remaining quota, the units that could pass at once: it counts down
// from the policy's q (the Burst) to 0. t is the time until the quota is
// fully restored (r back at q), in seconds rounded up: 0 for an untouched
// limit, the policy's w for an empty bucket (more only after a reload made a
// limit stricter than the debt a key had run up). It appends nothing when
// there is no limit, and does not allocate when dst has room.
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
