//go:build !wasip1

package wasmgate

import (
	"errors"
	"testing"
)

func TestErrorMapping(t *testing.T) {
	sentinels := map[int32]error{
		-1: ErrNotFound, -2: ErrBadArgument, -3: ErrNotAllowed, -4: ErrTooLarge, -5: ErrUnavailable,
	}
	for code, want := range sentinels {
		err := codeErr("header_set", code)
		if !errors.Is(err, want) {
			t.Errorf("code %d: %v is not %v", code, err, want)
		}
		for other, o := range sentinels {
			if other != code && errors.Is(err, o) {
				t.Errorf("code %d: %v matches %v", code, err, o)
			}
		}
		var e *Error
		if !errors.As(err, &e) || e.Func != "header_set" || e.Code != code {
			t.Errorf("code %d: As gave %+v", code, e)
		}
	}
	if err := codeErr("x", 0); err != nil {
		t.Fatalf("0 is success, got %v", err)
	}
	if err := codeErr("x", 17); err != nil {
		t.Fatalf("a size is success, got %v", err)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{codeErr("header_set", -2), "wasmgate.header_set: bad argument"},
		{codeErr("kv_get", -1), "wasmgate.kv_get: not found"},
		{codeErr("log", -42), "wasmgate.log: error code -42"},
		{ErrTooLarge, "wasmgate: too large"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("message %q, want %q", got, tc.want)
		}
	}
	// An unknown code matches no sentinel; a function's error is not a
	// sentinel for another function's errors.
	if unknown := codeErr("log", -42); errors.Is(unknown, ErrNotFound) || errors.Is(ErrNotFound, codeErr("a", -1)) {
		t.Fatal("matching is too loose")
	}
}
