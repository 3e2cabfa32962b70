package abi

import (
	"bytes"
	"testing"
)

// TestHTTPBatchResultWithoutBatch: http_batch_result answers 0 and writes
// nothing before any http_batch of the hook, after an http_batch that
// answered an error code, and in a later hook (results live for one hook);
// in on_init it is NOT_ALLOWED (sdk/ABI.md section 4, "Outbound HTTP").
func TestHTTPBatchResultWithoutBatch(t *testing.T) {
	untouched := func(h *harness, what string) {
		t.Helper()
		buf := h.alloc(16)
		if r := h.call32("http_batch_result", buf, 16); r != 0 {
			t.Errorf("%s: http_batch_result = %d, want 0", what, r)
		}
		if !bytes.Equal(h.bytes(buf, 16), bytes.Repeat([]byte{0xAA}, 16)) {
			t.Errorf("%s: http_batch_result wrote %x", what, h.bytes(buf, 16))
		}
	}
	for _, phase := range []Phase{PhaseRequest, PhaseResponse} {
		h := newHarness(t, phase)
		untouched(h, "before any batch")

		// A batch that runs (its one request is not allowed: no outbound
		// rules) leaves results; the next hook starts without them.
		code, res := h.batch([]BatchRequest{get("http://example.com/")})
		if code <= 0 || len(res) != 1 || res[0].Status != StatusNotAllowed {
			t.Fatalf("http_batch = %d, %+v", code, res)
		}
		h.c.Reset()
		h.c.Phase = phase
		untouched(h, "in the next hook")

		// A batch refused whole leaves none either, even after one that ran.
		if code, _ := h.batch([]BatchRequest{get("http://example.com/")}); code <= 0 {
			t.Fatal(code)
		}
		p, n := h.put("\x01\x00") // a truncated count
		if r := h.call32("http_batch", p, n); r != ErrBadArgument {
			t.Fatalf("malformed http_batch = %d", r)
		}
		untouched(h, "after a refused batch")
	}
	h := newHarness(t, PhaseInit)
	if r := h.call32("http_batch_result", 0, 0); r != ErrNotAllowed {
		t.Errorf("in on_init: %d", r)
	}
}
