//go:build !wasip1

package wasmgate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// goldenBatch is the ABI.md batch encoding of goldenRequests, written out
// field by field from the document (every integer a little-endian u32).
var goldenBatch = "" +
	"\x02\x00\x00\x00" + // count
	// request 0
	"\xfa\x00\x00\x00" + // timeout_ms 250
	"\x03\x00\x00\x00GET" + // method
	"\x1b\x00\x00\x00upstream://feed/feed?user=7" + // url (27 bytes)
	"\x01\x00\x00\x00" + // header_count
	"\x09\x00\x00\x00X-User-Id" + "\x01\x00\x00\x007" +
	"\x00\x00\x00\x00" + // body_len
	// request 1
	"\x00\x00\x00\x00" + // timeout_ms 0: the call deadline
	"\x04\x00\x00\x00POST" +
	"\x14\x00\x00\x00http://127.0.0.1:9/x" + // 20 bytes
	"\x00\x00\x00\x00" + // header_count
	"\x02\x00\x00\x00hi" // body

var goldenRequests = []OutboundRequest{
	{URL: "upstream://feed/feed?user=7", Header: []HeaderField{{"X-User-Id", "7"}}, Timeout: 250 * time.Millisecond},
	{Method: "POST", URL: "http://127.0.0.1:9/x", Body: []byte("hi")},
}

// goldenResults is the ABI.md results encoding of a 200 with one header and
// a body, then a timeout.
var goldenResults = "" +
	"\x02\x00\x00\x00" + // count
	"\xc8\x00\x00\x00" + // status 200
	"\xe8\x03\x00\x00" + // duration_us 1000
	"\x01\x00\x00\x00" + // header_count
	"\x0c\x00\x00\x00Content-Type" + "\x10\x00\x00\x00application/json" +
	"\x02\x00\x00\x00{}" +
	"\xff\xff\xff\xff" + // status -1: timeout
	"\x10\x27\x00\x00" + // duration_us 10000
	"\x00\x00\x00\x00" + // header_count
	"\x00\x00\x00\x00" // body_len

func TestAppendBatchGolden(t *testing.T) {
	got, err := appendBatch(nil, goldenRequests)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenBatch {
		t.Fatalf("batch encoding\n got % x\nwant % x", got, goldenBatch)
	}
}

func TestAppendBatchErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  OutboundRequest
	}{
		{"negative timeout", OutboundRequest{URL: "http://a/", Timeout: -time.Second}},
		{"timeout beyond u32 ms", OutboundRequest{URL: "http://a/", Timeout: 1 << 62}},
		{"empty url", OutboundRequest{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := appendBatch(nil, []OutboundRequest{tc.req}); err == nil {
				t.Fatal("no error")
			}
		})
	}
	// Sub-millisecond timeouts round up: 0 would mean "the call deadline".
	b, err := appendBatch(nil, []OutboundRequest{{URL: "http://a/", Timeout: time.Microsecond}})
	if err != nil || binary.LittleEndian.Uint32(b[4:]) != 1 {
		t.Fatalf("1µs timeout encoded as %d ms (err %v), want 1", binary.LittleEndian.Uint32(b[4:]), err)
	}
}

func TestDecodeResultsGolden(t *testing.T) {
	res, err := decodeResults([]byte(goldenResults), 2)
	if err != nil {
		t.Fatal(err)
	}
	r0, r1 := res[0], res[1]
	if r0.Status != 200 || r0.Duration != time.Millisecond || string(r0.Body) != "{}" || r0.Err() != nil {
		t.Fatalf("result 0: %+v", r0)
	}
	if v, ok := r0.HeaderValue("content-type"); !ok || v != "application/json" {
		t.Fatalf("content-type %q %v", v, ok)
	}
	if r1.Status != -1 || r1.Duration != 10*time.Millisecond || len(r1.Body) != 0 || !errors.Is(r1.Err(), ErrTimeout) {
		t.Fatalf("result 1: %+v err %v", r1, r1.Err())
	}
}

func TestDecodeResultsMalformed(t *testing.T) {
	g := goldenResults
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"short count", "\x01\x00"},
		{"count mismatch", "\x01\x00\x00\x00" + g[4:]},
		{"truncated", g[:len(g)-1]},
		{"trailing", g + "\x00"},
		{"huge count", "\xff\xff\xff\x7f"},
		{"huge header count", "\x01\x00\x00\x00\xc8\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\x00\x00\x00\x00"},
		{"body past end", "\x01\x00\x00\x00\xc8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x00\x00\x00{}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := 2
			if tc.name == "huge header count" || tc.name == "body past end" {
				want = 1
			}
			if _, err := decodeResults([]byte(tc.in), want); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestResultErr(t *testing.T) {
	for status, want := range map[int]error{
		200: nil, 503: nil, -1: ErrTimeout, -2: ErrNetwork, -3: ErrNotAllowed, -4: ErrOutbound, -9: ErrOutbound,
	} {
		err := (&OutboundResult{Status: status}).Err()
		if want == nil && err != nil || want != nil && !errors.Is(err, want) {
			t.Errorf("status %d: err %v, want %v", status, err, want)
		}
	}
}

func TestFetch(t *testing.T) {
	f := newFakeHost().install(t)
	f.batch = func(req []byte) ([]byte, int32) { return []byte(goldenResults), 0 }
	res, err := Fetch(goldenRequests...)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.lastBatch) != goldenBatch {
		t.Fatalf("host got % x", f.lastBatch)
	}
	if len(res) != 2 || res[0].Status != 200 || string(res[0].Body) != "{}" {
		t.Fatalf("results %+v", res)
	}
	// The encoding buffer is reused; earlier results stay intact.
	f.batch = func([]byte) ([]byte, int32) {
		return []byte("\x01\x00\x00\x00\xf4\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00no"), 0
	}
	res2, err := Fetch(OutboundRequest{URL: "upstream://u/"})
	if err != nil || res2[0].Status != 500 || string(res2[0].Body) != "no" || string(res[0].Body) != "{}" {
		t.Fatalf("second fetch %+v %v; first body now %q", res2, err, res[0].Body)
	}

	f.batch = func([]byte) ([]byte, int32) { return nil, abi.TooLarge }
	if _, err := Fetch(goldenRequests...); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("batch error %v, want ErrTooLarge", err)
	}
	if res, err := Fetch(); res != nil || err != nil {
		t.Fatalf("empty fetch: %v %v", res, err)
	}
}

// encodeResults is an independent encoder of the results format, for the
// fuzz round trip.
func encodeResults(res []OutboundResult) []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, uint32(len(res)))
	for _, r := range res {
		b = le.AppendUint32(b, uint32(int32(r.Status)))
		b = le.AppendUint32(b, uint32(r.Duration/time.Microsecond))
		b = le.AppendUint32(b, uint32(len(r.Header)))
		for _, h := range r.Header {
			b = append(le.AppendUint32(b, uint32(len(h.Name))), h.Name...)
			b = append(le.AppendUint32(b, uint32(len(h.Value))), h.Value...)
		}
		b = append(le.AppendUint32(b, uint32(len(r.Body))), r.Body...)
	}
	return b
}

func FuzzDecodeResults(f *testing.F) {
	f.Add([]byte(goldenResults), 2)
	f.Add([]byte("\x00\x00\x00\x00"), 0)
	f.Add([]byte("\x01\x00\x00\x00\xc8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 1)
	f.Fuzz(func(t *testing.T, in []byte, want int) {
		res, err := decodeResults(in, want)
		if err != nil {
			return
		}
		if again := encodeResults(res); !bytes.Equal(again, in) {
			t.Fatalf("round trip\n in % x\nout % x", in, again)
		}
	})
}
