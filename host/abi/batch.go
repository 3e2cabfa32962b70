package abi

import (
	"encoding/binary"
	"errors"
	"math"
)

// The outbound batch encodings of sdk/ABI.md section 4 ("Outbound HTTP").
// Every integer is a little-endian u32; every byte string is its length
// then its bytes. The encoder and decoder here are the reference for guest
// SDKs: they depend on nothing but encoding/binary.

// Header is one header field of an outbound request or result.
type Header struct {
	Name, Value []byte
}

// BatchRequest is one request of an http_batch.
type BatchRequest struct {
	TimeoutMS uint32 // 0: the plugin's call deadline
	Method    []byte
	URL       []byte // upstream://NAME/path?query or http://host:port/path?query
	Headers   []Header
	Body      []byte
}

// BatchResult is one result of an http_batch, in the order of the batch.
type BatchResult struct {
	Status     int32  // HTTP status, or StatusTimeout, StatusNetwork, StatusNotAllowed, StatusOther
	DurationUS uint32 // time the request took, in µs
	Headers    []Header
	Body       []byte
}

// Decoding errors.
var (
	ErrMalformedBatch = errors.New("abi: malformed batch")
	ErrBatchTooLarge  = errors.New("abi: batch over its limits")
)

// Smallest encodings, to reject a count no input could hold before
// allocating for it.
const (
	minRequest = 5 * 4 // timeout, method_len, url_len, header_count, body_len
	minResult  = 4 * 4 // status, duration, header_count, body_len
	minHeader  = 2 * 4 // name_len, value_len
)

func putU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func putBytes(b, v []byte) []byte { return append(putU32(b, uint32(len(v))), v...) }

func putHeaders(b []byte, hs []Header) []byte {
	b = putU32(b, uint32(len(hs)))
	for _, h := range hs {
		b = putBytes(putBytes(b, h.Name), h.Value)
	}
	return b
}

// EncodeBatch appends the encoding of reqs to dst.
func EncodeBatch(dst []byte, reqs []BatchRequest) []byte {
	dst = putU32(dst, uint32(len(reqs)))
	for i := range reqs {
		r := &reqs[i]
		dst = putU32(dst, r.TimeoutMS)
		dst = putBytes(dst, r.Method)
		dst = putBytes(dst, r.URL)
		dst = putHeaders(dst, r.Headers)
		dst = putBytes(dst, r.Body)
	}
	return dst
}

// EncodeResults appends the encoding of results to dst.
func EncodeResults(dst []byte, results []BatchResult) []byte {
	dst = putU32(dst, uint32(len(results)))
	for i := range results {
		r := &results[i]
		dst = putU32(dst, uint32(r.Status))
		dst = putU32(dst, r.DurationUS)
		dst = putHeaders(dst, r.Headers)
		dst = putBytes(dst, r.Body)
	}
	return dst
}

// reader consumes an encoding, checking every length against the bytes
// left; after the first failure every read fails.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) u32() uint32 {
	if r.bad || len(r.b) < 4 {
		r.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

// bytes returns the next length-prefixed byte string, a view of the input
// capped so that appending to it cannot overwrite what follows.
func (r *reader) bytes() []byte {
	n := r.u32()
	if r.bad || uint64(n) > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// count reads a count of items of at least min bytes each, failing when
// the bytes left cannot hold them.
func (r *reader) count(min int) int {
	n := r.u32()
	if r.bad || uint64(n)*uint64(min) > uint64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

// headers appends the next header list to hs, failing past max headers.
func (r *reader) headers(hs []Header, max int) ([]Header, error) {
	n := r.count(minHeader)
	if n > max {
		return hs, ErrBatchTooLarge
	}
	for range n {
		name := r.bytes()
		value := r.bytes()
		if r.bad {
			return hs, ErrMalformedBatch
		}
		hs = append(hs, Header{name, value})
	}
	return hs, nil
}

// DecodeBatch decodes an encoded batch of at most MaxBatch requests and
// MaxBatchBytes bytes. The byte slices of the result are views of b.
func DecodeBatch(b []byte) ([]BatchRequest, error) {
	reqs, _, err := decodeBatch(nil, nil, b, MaxBatch)
	return reqs, err
}

// decodeBatch decodes b into reqs and hdrs (reused, truncated first) with
// at most maxCount requests (and never more than MaxBatch). It fails with
// ErrBatchTooLarge over the limits and ErrMalformedBatch for any length past
// the end, a count no input could hold, or bytes left over.
func decodeBatch(reqs []BatchRequest, hdrs []Header, b []byte, maxCount int) ([]BatchRequest, []Header, error) {
	reqs, hdrs = reqs[:0], hdrs[:0]
	maxCount = min(maxCount, MaxBatch)
	if len(b) > MaxBatchBytes {
		return reqs, hdrs, ErrBatchTooLarge
	}
	r := reader{b: b}
	n := r.u32()
	if r.bad {
		return reqs, hdrs, ErrMalformedBatch
	}
	if uint64(n) > uint64(maxCount) {
		return reqs, hdrs, ErrBatchTooLarge
	}
	if uint64(n)*minRequest > uint64(len(r.b)) {
		return reqs, hdrs, ErrMalformedBatch
	}
	// Header lists are sub-slices of one array, set once it stops growing.
	var spans [MaxBatch + 1]int
	for i := range int(n) {
		var q BatchRequest
		q.TimeoutMS = r.u32()
		q.Method = r.bytes()
		q.URL = r.bytes()
		spans[i] = len(hdrs)
		var err error
		if hdrs, err = r.headers(hdrs, MaxBatchHeaders); err != nil {
			return reqs[:0], hdrs[:0], err
		}
		q.Body = r.bytes()
		if r.bad {
			return reqs[:0], hdrs[:0], ErrMalformedBatch
		}
		reqs = append(reqs, q)
	}
	if len(r.b) != 0 {
		return reqs[:0], hdrs[:0], ErrMalformedBatch
	}
	spans[n] = len(hdrs)
	for i := range reqs {
		reqs[i].Headers = hdrs[spans[i]:spans[i+1]:spans[i+1]]
	}
	return reqs, hdrs, nil
}

// DecodeResults decodes the results of an http_batch (what
// http_batch_result copies). The byte slices of the result are views of b.
func DecodeResults(b []byte) ([]BatchResult, error) {
	r := reader{b: b}
	n := r.count(minResult)
	if r.bad {
		return nil, ErrMalformedBatch
	}
	res := make([]BatchResult, n)
	for i := range res {
		q := &res[i]
		q.Status = int32(r.u32())
		q.DurationUS = r.u32()
		var err error
		if q.Headers, err = r.headers(nil, math.MaxInt); err != nil {
			return nil, err
		}
		q.Body = r.bytes()
		if r.bad {
			return nil, ErrMalformedBatch
		}
	}
	if len(r.b) != 0 {
		return nil, ErrMalformedBatch
	}
	return res, nil
}
