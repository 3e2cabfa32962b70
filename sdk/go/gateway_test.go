//go:build !wasip1

package wasmgate

import (
	"errors"
	"testing"
	"time"
)

func TestGatewayFunctions(t *testing.T) {
	f := newFakeHost().install(t)
	if err := SetConsumer("alice"); err != nil || f.consumer != "alice" {
		t.Fatalf("SetConsumer: %v, host has %q", err, f.consumer)
	}
	if err := SetCacheKey("tenant-7/report"); err != nil || f.cacheKey != "tenant-7/report" {
		t.Fatalf("SetCacheKey: %v, host has %q", err, f.cacheKey)
	}
	if _, err := RateLimit("per-tenant", "t7", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RateLimit without limits: %v, want ErrNotFound", err)
	}
	f.limit = func(name, key string, cost int64) (int32, int64, int64) {
		if cost > 3 {
			return 0, 3, 1500
		}
		return 1, 3 - cost, 0
	}
	for _, tc := range []struct {
		cost int64
		want Limit
	}{
		{0, Limit{Allowed: true, Remaining: 3}},
		{2, Limit{Allowed: true, Remaining: 1}},
		{5, Limit{Remaining: 3, RetryAfter: 1500 * time.Millisecond}},
	} {
		got, err := RateLimit("per-tenant", "t7", tc.cost)
		if err != nil || got != tc.want {
			t.Errorf("RateLimit(cost %d) = %+v, %v; want %+v", tc.cost, got, err, tc.want)
		}
	}
	f.flags = map[string]bool{"on": true, "off": false}
	for name, want := range map[string]bool{"on": true, "off": false} {
		if got, err := FlagEnabled(name); err != nil || got != want {
			t.Errorf("FlagEnabled(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if _, err := FlagEnabled("undeclared"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FlagEnabled of an undeclared flag: %v, want ErrNotFound", err)
	}
	f.phase = 2
	if err := SetConsumer("bob"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("SetConsumer in on_response: %v, want ErrNotAllowed", err)
	}
}
