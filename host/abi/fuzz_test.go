package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

var sampleBatches = [][]BatchRequest{
	nil,
	{get("upstream://users/u/1")},
	{
		{TimeoutMS: 250, Method: []byte("POST"), URL: []byte("http://127.0.0.1:8080/x?y=1"),
			Headers: []Header{{[]byte("Content-Type"), []byte("application/json")}, {[]byte("X-Empty"), nil}},
			Body:    []byte(`{"a":1}`)},
		{Method: []byte("GET"), URL: nil},
	},
}

func TestBatchRoundTrip(t *testing.T) {
	for i, reqs := range sampleBatches {
		enc := EncodeBatch(nil, reqs)
		dec, err := DecodeBatch(enc)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if len(dec) != len(reqs) {
			t.Fatalf("batch %d: %d requests, want %d", i, len(dec), len(reqs))
		}
		for j := range reqs {
			a, b := reqs[j], dec[j]
			if a.TimeoutMS != b.TimeoutMS || !bytes.Equal(a.Method, b.Method) || !bytes.Equal(a.URL, b.URL) ||
				!bytes.Equal(a.Body, b.Body) || len(a.Headers) != len(b.Headers) {
				t.Fatalf("batch %d request %d: %+v, want %+v", i, j, b, a)
			}
			for k := range a.Headers {
				if !bytes.Equal(a.Headers[k].Name, b.Headers[k].Name) || !bytes.Equal(a.Headers[k].Value, b.Headers[k].Value) {
					t.Fatalf("batch %d request %d header %d differs", i, j, k)
				}
			}
		}
		if re := EncodeBatch(nil, dec); !bytes.Equal(re, enc) {
			t.Fatalf("batch %d: re-encoding differs", i)
		}
	}
	res := []BatchResult{
		{Status: 200, DurationUS: 1234, Headers: []Header{{[]byte("A"), []byte("b")}}, Body: []byte("body")},
		{Status: StatusTimeout, DurationUS: 50000},
	}
	enc := EncodeResults(nil, res)
	dec, err := DecodeResults(enc)
	if err != nil || len(dec) != 2 || dec[0].Status != 200 || dec[0].DurationUS != 1234 ||
		string(dec[0].Headers[0].Value) != "b" || string(dec[0].Body) != "body" || dec[1].Status != StatusTimeout {
		t.Fatalf("results round trip: %+v %v", dec, err)
	}
	if !bytes.Equal(EncodeResults(nil, dec), enc) {
		t.Fatal("results re-encoding differs")
	}
}

func TestDecodeBatchLimits(t *testing.T) {
	// Too many headers in one request.
	hs := make([]Header, MaxBatchHeaders+1)
	for i := range hs {
		hs[i] = Header{[]byte("a"), nil}
	}
	enc := EncodeBatch(nil, []BatchRequest{{Method: []byte("GET"), URL: []byte("http://x/"), Headers: hs}})
	if _, err := DecodeBatch(enc); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("%d headers: %v", len(hs), err)
	}
	if _, err := DecodeBatch(make([]byte, MaxBatchBytes+1)); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("over MaxBatchBytes: %v", err)
	}
	// A length past the end, however large, is malformed, never a panic
	// or an allocation of that size.
	b := binary.LittleEndian.AppendUint32(nil, 1)
	b = binary.LittleEndian.AppendUint32(b, 0)              // timeout
	b = binary.LittleEndian.AppendUint32(b, math.MaxUint32) // method_len
	b = append(b, make([]byte, 16)...)
	if _, err := DecodeBatch(b); !errors.Is(err, ErrMalformedBatch) {
		t.Fatalf("huge length: %v", err)
	}
	if _, err := DecodeResults([]byte{0xFF, 0xFF, 0xFF, 0xFF}); !errors.Is(err, ErrMalformedBatch) {
		t.Fatalf("huge result count: %v", err)
	}
}

// FuzzDecodeBatch: decoding never panics, respects the limits, and what
// decodes re-encodes to the same bytes (the encoding is canonical).
func FuzzDecodeBatch(f *testing.F) {
	for _, reqs := range sampleBatches {
		f.Add(EncodeBatch(nil, reqs))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		reqs, err := DecodeBatch(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedBatch) && !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(reqs) > MaxBatch {
			t.Fatalf("%d requests decoded", len(reqs))
		}
		for _, r := range reqs {
			if len(r.Headers) > MaxBatchHeaders {
				t.Fatalf("%d headers decoded", len(r.Headers))
			}
		}
		if re := EncodeBatch(nil, reqs); !bytes.Equal(re, b) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", b, re)
		}
	})
}

// FuzzDecodeResults: the same for results.
func FuzzDecodeResults(f *testing.F) {
	f.Add(EncodeResults(nil, []BatchResult{{Status: 200, Headers: []Header{{[]byte("a"), []byte("b")}}, Body: []byte("x")}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, err := DecodeResults(b)
		if err != nil {
			return
		}
		if re := EncodeResults(nil, res); !bytes.Equal(re, b) {
			t.Fatalf("round trip differs:\n in  %x\n out %x", b, re)
		}
	})
}

// FuzzHostFunctions calls every host function with arbitrary arguments
// against a small memory holding arbitrary bytes, in every phase: the only
// panic allowed is OutOfBounds naming the function, and every i32 result is
// a size, an id, a status or one of the ABI's codes.
func FuzzHostFunctions(f *testing.F) {
	f.Add(uint8(0), uint8(1), false, uint64(0), uint64(8), uint64(0), uint64(0), uint64(0), []byte("hello"))
	f.Add(uint8(5), uint8(2), true, uint64(0), uint64(0), uint64(4), uint64(8), uint64(16), []byte("host\x00\x00\x00"))
	f.Add(uint8(27), uint8(1), false, uint64(0), uint64(24), uint64(0), uint64(0), uint64(0),
		EncodeBatch(nil, []BatchRequest{get("http://x/")}))
	fns := Functions()
	f.Fuzz(func(t *testing.T, fi, phase uint8, local bool, a0, a1, a2, a3, a4 uint64, mem []byte) {
		fn := fns[int(fi)%len(fns)]
		h := newHarness(t, Phase(phase%3))
		small := make(testMem, 256)
		copy(small, mem)
		h.mem, h.c.Mem = small, small
		h.c.LocalResponse = local
		h.c.Env.Out = &Outbound{Hosts: map[string]bool{}, Upstreams: map[string]bool{}} // nothing reachable
		h.c.Env.MaxBody = 64
		stack := make([]uint64, max(len(fn.Params), 5)) // parameters past the fifth are 0
		copy(stack, []uint64{a0, a1, a2, a3, a4})
		func() {
			defer func() {
				if r := recover(); r != nil {
					if oob, ok := r.(OutOfBounds); !ok || oob.Func != fn.Name {
						t.Fatalf("%s%v panicked: %v", fn.Name, stack, r)
					}
				}
			}()
			fn.Fn(h.c, stack)
			var v int64
			switch fn.Results[0] {
			case I32:
				v = int64(int32(uint32(stack[0])))
			default:
				v = int64(stack[0])
			}
			if fn.Name != "time_now" && v < ErrUnavailable {
				t.Fatalf("%s returned %d, not a code", fn.Name, v)
			}
		}()
	})
}
