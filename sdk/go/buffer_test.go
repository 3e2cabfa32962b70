//go:build !wasip1

package wasmgate

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

func TestReadScratchRetry(t *testing.T) {
	f := newFakeHost().install(t)
	small := "GET"
	large := strings.Repeat("p", 5000) // over the 2 KiB initial scratch

	f.method = small
	r := &Request{}
	if got := r.Method(); got != small || f.calls["request_method"] != 1 {
		t.Fatalf("small: %q after %d calls", got, f.calls["request_method"])
	}
	f.path = large
	if got := r.Path(); got != large || f.calls["request_path"] != 2 {
		t.Fatalf("large: %d bytes after %d calls, want %d after 2", len(got), f.calls["request_path"], len(large))
	}
	// The scratch buffer kept its growth: the same size now takes one call.
	if got := r.Path(); got != large || f.calls["request_path"] != 3 {
		t.Fatalf("regrown: %d calls", f.calls["request_path"])
	}
	if len(scratch) < len(large) {
		t.Fatalf("scratch %d bytes, want ≥ %d", len(scratch), len(large))
	}
}

func TestReadScratchGrowingData(t *testing.T) {
	f := newFakeHost().install(t)
	// A value rewritten larger between the size answer and the retry: the
	// SDK retries again with the new size.
	f.kv["k"] = []byte(strings.Repeat("v", 4000))
	f.grow["kv_get"] = 2
	got, err := KVGet("k")
	if err != nil || len(got) != 4200 || f.calls["kv_get"] != 3 {
		t.Fatalf("value that grew twice: %d bytes, %v, after %d calls (want 4200 after 3)", len(got), err, f.calls["kv_get"])
	}

	// A host that always answers a larger size than it was given: bounded.
	calls := 0
	_, err = readScratch("request_path", func(buf []byte) int32 { calls++; return int32(len(buf) + 1) })
	if !errors.Is(err, ErrUnavailable) || calls != maxAttempts {
		t.Fatalf("endless growth: err %v after %d calls, want ErrUnavailable after %d", err, calls, maxAttempts)
	}
	calls = 0
	_, err = readOwned("kv_get", func(buf []byte) int32 { calls++; return int32(len(buf) + 1) })
	if !errors.Is(err, ErrUnavailable) || calls != maxAttempts {
		t.Fatalf("owned endless growth: err %v after %d calls", err, calls)
	}
	// An absurd size is refused rather than allocated.
	if _, err := readScratch("x", func([]byte) int32 { return maxRead + 1 }); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("absurd size: %v", err)
	}
	// Error codes pass through with the function's name.
	_, err = readScratch("header_get", func([]byte) int32 { return abi.NotFound })
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "header_get") {
		t.Fatalf("code: %v", err)
	}
}

func TestReadOwnedIsACopy(t *testing.T) {
	f := newFakeHost().install(t)
	f.kv["a"] = []byte("first")
	f.kv["b"] = []byte("second")
	a, err1 := KVGet("a")
	b, err2 := KVGet("b")
	if err1 != nil || err2 != nil || string(a) != "first" || string(b) != "second" {
		t.Fatalf("%q %v %q %v", a, err1, b, err2)
	}
	// A large value does not grow the scratch buffer.
	f.kv["big"] = []byte(strings.Repeat("z", 10000))
	if v, err := KVGet("big"); err != nil || len(v) != 10000 {
		t.Fatalf("big: %d %v", len(v), err)
	}
	if len(scratch) != scratchInitial {
		t.Fatalf("scratch grew to %d", len(scratch))
	}
}

func TestSplitList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\x00", []string{""}},
		{"a\x00", []string{"a"}},
		{"a\x00b\x00", []string{"a", "b"}},
		{"a\x00\x00b\x00", []string{"a", "", "b"}},
		{"a\x00b", []string{"a", "b"}}, // tolerated: no final NUL
	} {
		if got := splitList([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
