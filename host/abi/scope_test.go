package abi

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"
)

func TestSetConsumer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase Phase
		id    string
		want  int32
		got   string
	}{
		{"ok", PhaseRequest, "alice@example.com", 0, "alice@example.com"},
		{"with space", PhaseRequest, "team a", 0, "team a"},
		{"response hook", PhaseResponse, "alice", ErrNotAllowed, ""},
		{"init hook", PhaseInit, "alice", ErrNotAllowed, ""},
		{"empty", PhaseRequest, "", ErrBadArgument, ""},
		{"control byte", PhaseRequest, "a\nb", ErrBadArgument, ""},
		{"non-ascii", PhaseRequest, "é", ErrBadArgument, ""},
		{"too long", PhaseRequest, strings.Repeat("a", MaxConsumer+1), ErrTooLarge, ""},
		{"longest", PhaseRequest, strings.Repeat("a", MaxConsumer), 0, strings.Repeat("a", MaxConsumer)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.phase)
			p, n := h.put(tc.id)
			if r := h.call32("set_consumer", p, n); r != tc.want {
				t.Fatalf("set_consumer = %d, want %d", r, tc.want)
			}
			if got := string(h.c.Scope.Consumer); got != tc.got {
				t.Fatalf("consumer = %q, want %q", got, tc.got)
			}
		})
	}
}

func TestSetClaims(t *testing.T) {
	big := `{"a":"` + strings.Repeat("x", MaxClaims-8) + `"}`
	for _, tc := range []struct {
		name   string
		phase  Phase
		claims string
		want   int32
		got    string
	}{
		{"object", PhaseRequest, `{"sub":"u1","scope":"a b","groups":["x"]}`, 0, `{"sub":"u1","scope":"a b","groups":["x"]}`},
		{"space around", PhaseRequest, " \n{}\t", 0, " \n{}\t"},
		{"longest", PhaseRequest, big, 0, big},
		{"too long", PhaseRequest, big + " ", ErrTooLarge, ""},
		{"list", PhaseRequest, `["a"]`, ErrBadArgument, ""},
		{"string", PhaseRequest, `"a"`, ErrBadArgument, ""},
		{"null", PhaseRequest, `null`, ErrBadArgument, ""},
		{"empty", PhaseRequest, ``, ErrBadArgument, ""},
		{"two objects", PhaseRequest, `{}{}`, ErrBadArgument, ""},
		{"truncated", PhaseRequest, `{"a":`, ErrBadArgument, ""},
		{"bad utf-8", PhaseRequest, "{\"a\":\"\xff\"}", ErrBadArgument, ""},
		{"response hook", PhaseResponse, `{}`, ErrNotAllowed, ""},
		{"init hook", PhaseInit, `{}`, ErrNotAllowed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.phase)
			p, n := h.put(tc.claims)
			if r := h.call32("set_claims", p, n); r != tc.want {
				t.Fatalf("set_claims = %d, want %d", r, tc.want)
			}
			if got := string(h.c.Scope.Claims); got != tc.got {
				t.Fatalf("claims = %q, want %q", got, tc.got)
			}
		})
	}
}

func TestCacheSetKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		phase Phase
		cache bool
		key   string
		want  int32
	}{
		{"ok", PhaseRequest, true, "tenant-1 /report?a=1", 0},
		{"no cache on route", PhaseRequest, false, "k", ErrUnavailable},
		{"response hook", PhaseResponse, true, "k", ErrNotAllowed},
		{"empty", PhaseRequest, true, "", ErrBadArgument},
		{"control byte", PhaseRequest, true, "a\x00b", ErrBadArgument},
		{"too long", PhaseRequest, true, strings.Repeat("k", MaxCacheKey+1), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.phase)
			h.c.Env.Cache = tc.cache
			p, n := h.put(tc.key)
			if r := h.call32("cache_set_key", p, n); r != tc.want {
				t.Fatalf("cache_set_key = %d, want %d", r, tc.want)
			}
			set := tc.want == 0
			if set != (len(h.c.Scope.CacheKey) > 0) || set && string(h.c.Scope.CacheKey) != tc.key {
				t.Fatalf("scope key = %q", h.c.Scope.CacheKey)
			}
		})
	}
}

// fixedLimiter has one limit, "burst", of 3 per subject, never refilled.
type fixedLimiter struct{ used map[string]int64 }

func (f *fixedLimiter) Charge(name, key []byte, cost int64) (bool, int64, time.Duration, bool) {
	if string(name) != "burst" {
		return false, 0, 0, false
	}
	used := f.used[string(key)]
	if used+cost > 3 {
		return false, 3 - used, 1500 * time.Millisecond, true
	}
	f.used[string(key)] = used + cost
	return true, 3 - used - cost, 0, true
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	charge := func(name, key string, cost int64) (int32, int64, int64) {
		t.Helper()
		np, nn := h.put(name)
		kp, kn := h.put(key)
		out := h.alloc(16)
		r := h.call32("rate_limit", np, nn, kp, kn, uint64(cost), out)
		b := h.bytes(out, 16)
		return r, int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint64(b[8:]))
	}
	if r, _, _ := charge("burst", "t1", 1); r != ErrNotFound {
		t.Fatalf("no limiter: %d, want NOT_FOUND", r)
	}
	h.c.Env.Limits = &fixedLimiter{used: map[string]int64{}}
	for _, tc := range []struct {
		limit, key      string
		cost            int64
		rc              int32
		remaining, wait int64
	}{
		{"burst", "t1", 0, 1, 3, 0}, // consult
		{"burst", "t1", 2, 1, 1, 0},
		{"burst", "t1", 2, 0, 1, 1500},
		{"burst", "t2", 3, 1, 0, 0}, // subjects are independent
		{"nope", "t1", 1, ErrNotFound, -1, -1},
		{"burst", "t1", -1, ErrBadArgument, -1, -1},
		{"burst", strings.Repeat("k", MaxConsumer+1), 1, ErrBadArgument, -1, -1},
	} {
		r, rem, wait := charge(tc.limit, tc.key, tc.cost)
		if r != tc.rc || tc.remaining >= 0 && (rem != tc.remaining || wait != tc.wait) {
			t.Errorf("rate_limit(%s, %s, %d) = %d rem %d wait %d; want %d rem %d wait %d",
				tc.limit, tc.key, tc.cost, r, rem, wait, tc.rc, tc.remaining, tc.wait)
		}
	}
	h.c.Phase = PhaseInit
	if r, _, _ := charge("burst", "t1", 1); r != ErrNotAllowed {
		t.Fatalf("in on_init: %d, want NOT_ALLOWED", r)
	}
}

// mapFlags is Flags from a map: declared flags and whether each is on.
type mapFlags map[string]bool

func (m mapFlags) FlagState(name []byte) (on, known bool) {
	on, known = m[string(name)]
	return on, known
}

func TestFlagEnabled(t *testing.T) {
	flags := mapFlags{"new-checkout": true, "dark-mode": false}
	for _, tc := range []struct {
		name  string
		phase Phase
		flags Flags
		flag  string
		want  int32
	}{
		{"on", PhaseRequest, flags, "new-checkout", 1},
		{"off", PhaseRequest, flags, "dark-mode", 0},
		{"on in on_response", PhaseResponse, flags, "new-checkout", 1},
		{"undeclared", PhaseRequest, flags, "nope", ErrNotFound},
		{"empty name", PhaseRequest, flags, "", ErrNotFound},
		{"no flags at all", PhaseRequest, nil, "new-checkout", ErrNotFound},
		{"init hook", PhaseInit, flags, "new-checkout", ErrNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.phase)
			if h.c.Scope != nil {
				h.c.Scope.Flags = tc.flags
			}
			p, n := h.put(tc.flag)
			if r := h.call32("flag_enabled", p, n); r != tc.want {
				t.Fatalf("flag_enabled(%q) = %d, want %d", tc.flag, r, tc.want)
			}
		})
	}
}
