package wasmgate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// HeaderField is one header line of an outbound request or result.
type HeaderField struct {
	Name, Value string
}

// OutboundRequest is one request of a Fetch batch.
type OutboundRequest struct {
	// Method defaults to GET.
	Method string
	// URL is "upstream://NAME/path?query" (load-balanced over the named
	// upstream) or "http://host:port/path?query". Only destinations the
	// route allows for the plugin (outbound.upstreams, outbound.hosts) are
	// called; others come back with ErrNotAllowed.
	URL    string
	Header []HeaderField
	Body   []byte
	// Timeout bounds this request; 0 means the plugin's call deadline.
	// Sub-millisecond timeouts round up to 1 ms.
	Timeout time.Duration
}

// OutboundResult is the answer to one OutboundRequest.
type OutboundResult struct {
	// Status is the HTTP status, or a negative value when there is no HTTP
	// answer; Err says which.
	Status int
	// Duration is how long the request took.
	Duration time.Duration
	Header   []HeaderField
	// Body is the response body (it shares one allocation with the rest
	// of the batch's results).
	Body []byte
}

// Errors of an OutboundResult without an HTTP answer (see OutboundResult.Err).
// A destination the route does not allow reports ErrNotAllowed.
var (
	// ErrTimeout: the request's timeout or the hook's deadline expired.
	ErrTimeout = errors.New("wasmgate: outbound request timed out")
	// ErrNetwork: connecting or talking to the destination failed.
	ErrNetwork = errors.New("wasmgate: outbound connect or network error")
	// ErrOutbound: any other failure of an outbound request.
	ErrOutbound = errors.New("wasmgate: outbound request failed")
)

// Result status codes without an HTTP answer (sdk/ABI.md, results encoding).
const (
	statusTimeout    = -1
	statusNetwork    = -2
	statusNotAllowed = -3
	statusOther      = -4
)

// Err is nil when the request got an HTTP answer (of any status), else
// ErrTimeout, ErrNetwork, ErrNotAllowed or ErrOutbound.
func (r *OutboundResult) Err() error {
	switch {
	case r.Status >= 0:
		return nil
	case r.Status == statusTimeout:
		return ErrTimeout
	case r.Status == statusNetwork:
		return ErrNetwork
	case r.Status == statusNotAllowed:
		return &Error{Func: "http_batch", Code: codeNotAllowed}
	case r.Status == statusOther:
		return ErrOutbound
	}
	return fmt.Errorf("%w (status %d)", ErrOutbound, r.Status)
}

// HeaderValue returns the first value of the result's header name
// (case-insensitive) and whether it is present.
func (r *OutboundResult) HeaderValue(name string) (string, bool) {
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// batchBuf is reused for encoding batches.
var batchBuf []byte

// Fetch runs the requests in parallel on the host and returns their results
// in the same order, once all have finished or timed out. The hook waits
// meanwhile; the batch's wall time is bounded by the longest Timeout and by
// the hook's deadline. A per-request failure is in that result (see
// OutboundResult.Err); the error return is for the batch as a whole:
// ErrBadArgument (malformed), ErrTooLarge (over 64 requests or 16 MiB),
// ErrNotAllowed (outside OnRequest/OnResponse), ErrUnavailable.
func Fetch(reqs ...OutboundRequest) ([]OutboundResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	var err error
	batchBuf, err = appendBatch(batchBuf[:0], reqs)
	if err != nil {
		return nil, err
	}
	if len(batchBuf) > math.MaxInt32 {
		return nil, &Error{Func: "http_batch", Code: codeTooLarge}
	}
	size := hostHTTPBatch(batchBuf)
	if size < 0 {
		return nil, codeErr("http_batch", size)
	}
	buf := make([]byte, size)
	n := hostHTTPBatchResult(buf)
	if n < 0 {
		return nil, codeErr("http_batch_result", n)
	}
	if n > size {
		// The host changed its mind about the size; take what it has now.
		buf = make([]byte, n)
		if m := hostHTTPBatchResult(buf); m != n {
			return nil, &Error{Func: "http_batch_result", Code: codeUnavailable}
		}
	}
	return decodeResults(buf[:n], len(reqs))
}

// appendBatch appends the ABI encoding of reqs to dst (sdk/ABI.md, batch
// encoding; every integer a little-endian u32).
func appendBatch(dst []byte, reqs []OutboundRequest) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(reqs)))
	for i := range reqs {
		r := &reqs[i]
		if r.Timeout < 0 {
			return nil, fmt.Errorf("wasmgate: outbound request %d: negative timeout", i)
		}
		ms := r.Timeout / time.Millisecond
		if r.Timeout%time.Millisecond != 0 {
			ms++
		}
		if ms > math.MaxUint32 {
			return nil, fmt.Errorf("wasmgate: outbound request %d: timeout %v too long", i, r.Timeout)
		}
		if r.URL == "" {
			return nil, fmt.Errorf("wasmgate: outbound request %d: empty URL", i)
		}
		method := r.Method
		if method == "" {
			method = "GET"
		}
		dst = binary.LittleEndian.AppendUint32(dst, uint32(ms))
		dst = appendField(dst, method)
		dst = appendField(dst, r.URL)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Header)))
		for _, h := range r.Header {
			dst = appendField(dst, h.Name)
			dst = appendField(dst, h.Value)
		}
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Body)))
		dst = append(dst, r.Body...)
	}
	return dst, nil
}

func appendField(dst []byte, s string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// errBadResults reports a results encoding that does not parse.
var errBadResults = errors.New("wasmgate: http_batch_result: malformed results")

// decodeResults parses the results encoding; want is the batch's count.
// Bodies alias b; strings are copies. It never panics on malformed input.
func decodeResults(b []byte, want int) ([]OutboundResult, error) {
	r := reader{b: b}
	count := r.u32()
	// Each result takes at least 16 bytes: checking before allocating keeps
	// a corrupt count from allocating without bound.
	if r.bad || int(count) != want || uint64(count)*16 > uint64(len(r.b)) {
		if !r.bad && int(count) != want {
			return nil, fmt.Errorf("wasmgate: http_batch_result: %d results for %d requests", count, want)
		}
		return nil, errBadResults
	}
	out := make([]OutboundResult, count)
	for i := range out {
		res := &out[i]
		res.Status = int(int32(r.u32()))
		res.Duration = time.Duration(r.u32()) * time.Microsecond
		hc := r.u32()
		if r.bad || uint64(hc)*8 > uint64(len(r.b)) {
			return nil, errBadResults
		}
		if hc > 0 {
			res.Header = make([]HeaderField, hc)
			for j := range res.Header {
				res.Header[j].Name = string(r.field())
				res.Header[j].Value = string(r.field())
			}
		}
		res.Body = r.field()
		if r.bad {
			return nil, errBadResults
		}
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadResults, len(r.b))
	}
	return out, nil
}

// reader consumes little-endian fields; after the first short read bad is
// set and every further read returns zero values.
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

// field reads a u32 length and that many bytes (a subslice of the input).
func (r *reader) field() []byte {
	n := r.u32()
	if r.bad || uint64(n) > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}
