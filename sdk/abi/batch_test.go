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
	{{Method: []byte("GET"), URL: []byte("upstream://users/u/1")}},
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

// TestDecoderReuse: a Decoder gives the same answers as a fresh one, keeps
// every header list in place while its memory grows, and allocates nothing
// once it has seen its largest batch.
func TestDecoderReuse(t *testing.T) {
	var d Decoder
	for i, reqs := range append(sampleBatches, sampleBatches...) {
		enc := EncodeBatch(nil, reqs)
		got, err := d.Batch(enc, 0)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if !bytes.Equal(EncodeBatch(nil, got), enc) {
			t.Fatalf("batch %d: a reused Decoder decodes differently", i)
		}
	}
	// Many header lists, so that the shared array grows while decoding.
	many := make([]BatchResult, 40)
	for i := range many {
		many[i] = BatchResult{Status: int32(200 + i), Headers: []Header{{[]byte("A"), []byte{byte(i)}}, {[]byte("B"), nil}}}
	}
	enc := EncodeResults(nil, many)
	got, err := d.Results(enc)
	if err != nil || !bytes.Equal(EncodeResults(nil, got), enc) {
		t.Fatalf("results decode differently (%v)", err)
	}
	for i := range got {
		if got[i].Headers[0].Value[0] != byte(i) || cap(got[i].Headers) != 2 {
			t.Fatalf("result %d: headers %v (cap %d)", i, got[i].Headers, cap(got[i].Headers))
		}
	}
	batch := EncodeBatch(nil, sampleBatches[2])
	if n := testing.AllocsPerRun(100, func() {
		if _, err := d.Batch(batch, MaxBatch); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Results(enc); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per decoding", n)
	}
	// A failure leaves nothing behind, and Reset drops the views.
	if _, err := d.Batch(batch[:len(batch)-1], 0); !errors.Is(err, ErrMalformedBatch) {
		t.Fatalf("truncated batch: %v", err)
	}
	d.Reset()
	for _, h := range d.headers[:cap(d.headers)] {
		if h.Name != nil || h.Value != nil {
			t.Fatal("Reset kept a view of the input")
		}
	}
	// maxCount bounds the requests, never above MaxBatch.
	two := EncodeBatch(nil, sampleBatches[2])
	if _, err := d.Batch(two, 1); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("2 requests with maxCount 1: %v", err)
	}
}

// TestResultSize: Size is the length of the encoding.
func TestResultSize(t *testing.T) {
	for _, r := range []BatchResult{
		{},
		{Status: 200, DurationUS: 7, Headers: []Header{{[]byte("Content-Type"), []byte("text/plain")}, {[]byte("X"), nil}}, Body: []byte("hello")},
	} {
		if got, want := r.Size(), len(AppendResult(nil, &r)); got != want {
			t.Errorf("Size %d, encoding %d bytes", got, want)
		}
	}
}
