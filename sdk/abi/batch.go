package abi

import (
	"encoding/binary"
	"errors"
	"math"
)

// The encodings of http_batch and http_batch_result (sdk/ABI.md section 4,
// "Outbound HTTP"): a count, then each request or result. Every integer is
// a little-endian u32 (a status is an i32 in the same four bytes); every
// byte string is its length, then its bytes.

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

// AppendCount appends the count that starts the encoding of n requests or
// results; AppendRequest or AppendResult then appends each of them.
func AppendCount(dst []byte, n int) []byte { return putU32(dst, uint32(n)) }

// AppendRequest appends the encoding of one request.
func AppendRequest(dst []byte, r *BatchRequest) []byte {
	dst = putU32(dst, r.TimeoutMS)
	dst = putBytes(dst, r.Method)
	dst = putBytes(dst, r.URL)
	dst = putHeaders(dst, r.Headers)
	return putBytes(dst, r.Body)
}

// AppendResult appends the encoding of one result.
func AppendResult(dst []byte, r *BatchResult) []byte {
	dst = putU32(dst, uint32(r.Status))
	dst = putU32(dst, r.DurationUS)
	dst = putHeaders(dst, r.Headers)
	return putBytes(dst, r.Body)
}

// Size returns the size of r's encoding, so that a host can bound the
// results of a batch before it encodes them.
func (r *BatchResult) Size() int {
	n := minResult + len(r.Body)
	for _, h := range r.Headers {
		n += minHeader + len(h.Name) + len(h.Value)
	}
	return n
}

// EncodeBatch appends the encoding of reqs to dst.
func EncodeBatch(dst []byte, reqs []BatchRequest) []byte {
	dst = AppendCount(dst, len(reqs))
	for i := range reqs {
		dst = AppendRequest(dst, &reqs[i])
	}
	return dst
}

// EncodeResults appends the encoding of results to dst.
func EncodeResults(dst []byte, results []BatchResult) []byte {
	dst = AppendCount(dst, len(results))
	for i := range results {
		dst = AppendResult(dst, &results[i])
	}
	return dst
}

func putU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func putBytes(b, v []byte) []byte { return append(putU32(b, uint32(len(v))), v...) }

func putHeaders(b []byte, hs []Header) []byte {
	b = putU32(b, uint32(len(hs)))
	for _, h := range hs {
		b = putBytes(putBytes(b, h.Name), h.Value)
	}
	return b
}

// DecodeBatch decodes an encoded batch of at most MaxBatch requests and
// MaxBatchBytes bytes. The byte slices of the result are views of b.
func DecodeBatch(b []byte) ([]BatchRequest, error) { return new(Decoder).Batch(b, MaxBatch) }

// DecodeResults decodes the results of an http_batch (what
// http_batch_result copies). The byte slices of the result are views of b.
func DecodeResults(b []byte) ([]BatchResult, error) { return new(Decoder).Results(b) }

// Decoder decodes into memory it keeps for the next decoding, so that a
// host decoding a batch per call allocates nothing once it has seen its
// largest batch. What it returns is valid until its next use; the byte
// slices are views of the input.
type Decoder struct {
	reqs    []BatchRequest
	results []BatchResult
	headers []Header
}

// Reset drops the views of the last decoding (of guest memory, on a host),
// keeping the memory.
func (d *Decoder) Reset() {
	clear(d.reqs)
	clear(d.results)
	clear(d.headers)
	d.reqs, d.results, d.headers = d.reqs[:0], d.results[:0], d.headers[:0]
}

// Batch decodes an encoded batch of at most min(maxCount, MaxBatch)
// requests (MaxBatch when maxCount <= 0). It fails with ErrBatchTooLarge
// past a limit, and with ErrMalformedBatch for a length past the end, a
// count no input could hold, or bytes left over.
func (d *Decoder) Batch(b []byte, maxCount int) ([]BatchRequest, error) {
	d.Reset()
	if maxCount <= 0 || maxCount > MaxBatch {
		maxCount = MaxBatch
	}
	if len(b) > MaxBatchBytes {
		return nil, ErrBatchTooLarge
	}
	r := reader{b: b}
	n := r.u32()
	switch {
	case r.bad:
		return nil, ErrMalformedBatch
	case uint64(n) > uint64(maxCount):
		return nil, ErrBatchTooLarge
	case uint64(n)*minRequest > uint64(len(r.b)):
		return nil, ErrMalformedBatch
	}
	for range n {
		q := BatchRequest{TimeoutMS: r.u32(), Method: r.bytes(), URL: r.bytes()}
		var err error
		if q.Headers, q.Body, err = d.readTail(&r, MaxBatchHeaders); err != nil {
			d.Reset()
			return nil, err
		}
		d.reqs = append(d.reqs, q)
	}
	if err := d.end(&r); err != nil {
		return nil, err
	}
	rebase(d, d.reqs, func(q *BatchRequest) *[]Header { return &q.Headers })
	return d.reqs, nil
}

// Results decodes the results of an http_batch; it fails with
// ErrMalformedBatch as Batch does.
func (d *Decoder) Results(b []byte) ([]BatchResult, error) {
	d.Reset()
	r := reader{b: b}
	n := r.count(minResult)
	if r.bad {
		return nil, ErrMalformedBatch
	}
	for range n {
		q := BatchResult{Status: int32(r.u32()), DurationUS: r.u32()}
		var err error
		if q.Headers, q.Body, err = d.readTail(&r, math.MaxInt); err != nil {
			d.Reset()
			return nil, err
		}
		d.results = append(d.results, q)
	}
	if err := d.end(&r); err != nil {
		return nil, err
	}
	rebase(d, d.results, func(q *BatchResult) *[]Header { return &q.Headers })
	return d.results, nil
}

// readTail reads what ends a request and a result alike: the header list
// (at most limit headers) and the body.
func (d *Decoder) readTail(r *reader, limit int) ([]Header, []byte, error) {
	hs, err := d.readHeaders(r, limit)
	if err != nil {
		return nil, nil, err
	}
	body := r.bytes()
	if r.bad {
		return nil, nil, ErrMalformedBatch
	}
	return hs, body, nil
}

// end fails, dropping what was decoded, when bytes are left over.
func (d *Decoder) end(r *reader) error {
	if len(r.b) != 0 {
		d.Reset()
		return ErrMalformedBatch
	}
	return nil
}

// readHeaders appends the next header list to d.headers, failing past limit
// headers, and returns it. The list may be left in an array that a later
// append outgrows: rebase points it at the final one.
func (d *Decoder) readHeaders(r *reader, limit int) ([]Header, error) {
	n := r.count(minHeader)
	if n > limit {
		return nil, ErrBatchTooLarge
	}
	start := len(d.headers)
	for range n {
		name := r.bytes()
		value := r.bytes()
		if r.bad {
			return nil, ErrMalformedBatch
		}
		d.headers = append(d.headers, Header{name, value})
	}
	if n == 0 {
		return nil, nil
	}
	return d.headers[start:], nil
}

// rebase points the header list of every item at d.headers once it has
// stopped growing: the lists are stored there one after the other, in the
// order of the items.
func rebase[T any](d *Decoder, items []T, headers func(*T) *[]Header) {
	off := 0
	for i := range items {
		hs := headers(&items[i])
		if n := len(*hs); n > 0 {
			*hs = d.headers[off : off+n : off+n]
			off += n
		}
	}
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
