package wasmgate

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
	"unsafe"

	"github.com/wasmgate/wasmgate/sdk/abi"
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

// Err is nil when the request got an HTTP answer (of any status), else
// ErrTimeout, ErrNetwork, ErrNotAllowed or ErrOutbound.
func (r *OutboundResult) Err() error {
	switch {
	case r.Status >= 0:
		return nil
	case r.Status == abi.StatusTimeout:
		return ErrTimeout
	case r.Status == abi.StatusNetwork:
		return ErrNetwork
	case r.Status == abi.StatusNotAllowed:
		return &Error{Func: abi.FuncHTTPBatch, Code: abi.NotAllowed}
	case r.Status == abi.StatusOther:
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
		return nil, &Error{Func: abi.FuncHTTPBatch, Code: abi.TooLarge}
	}
	size := hostHTTPBatch(batchBuf)
	if size < 0 {
		return nil, codeErr(abi.FuncHTTPBatch, size)
	}
	buf := make([]byte, size)
	n := hostHTTPBatchResult(buf)
	if n < 0 {
		return nil, codeErr(abi.FuncHTTPBatchResult, n)
	}
	if n > size {
		// The host changed its mind about the size; take what it has now.
		buf = make([]byte, n)
		if m := hostHTTPBatchResult(buf); m != n {
			return nil, &Error{Func: abi.FuncHTTPBatchResult, Code: abi.Unavailable}
		}
	}
	return decodeResults(buf[:n], len(reqs))
}

// batchHeaders is reused for one request's headers while it is encoded.
var batchHeaders []abi.Header

// appendBatch appends the ABI encoding of reqs to dst (sdk/abi's, with
// the SDK's defaults and checks).
func appendBatch(dst []byte, reqs []OutboundRequest) ([]byte, error) {
	dst = abi.AppendCount(dst, len(reqs))
	for i := range reqs {
		q, err := batchRequest(i, &reqs[i])
		if err != nil {
			clear(batchHeaders)
			return nil, err
		}
		dst = abi.AppendRequest(dst, &q)
	}
	clear(batchHeaders) // keep no views of the plugin's strings
	return dst, nil
}

// batchRequest checks the i-th request r and returns it as the ABI
// encodes it, with the SDK's defaults; its byte slices are views of r's
// strings, its headers batchHeaders.
func batchRequest(i int, r *OutboundRequest) (abi.BatchRequest, error) {
	if r.Timeout < 0 {
		return abi.BatchRequest{}, fmt.Errorf("wasmgate: outbound request %d: negative timeout", i)
	}
	ms := r.Timeout / time.Millisecond
	if r.Timeout%time.Millisecond != 0 {
		ms++
	}
	if ms > math.MaxUint32 {
		return abi.BatchRequest{}, fmt.Errorf("wasmgate: outbound request %d: timeout %v too long", i, r.Timeout)
	}
	if r.URL == "" {
		return abi.BatchRequest{}, fmt.Errorf("wasmgate: outbound request %d: empty URL", i)
	}
	method := r.Method
	if method == "" {
		method = "GET"
	}
	batchHeaders = batchHeaders[:0]
	for _, h := range r.Header {
		batchHeaders = append(batchHeaders, abi.Header{Name: view(h.Name), Value: view(h.Value)})
	}
	return abi.BatchRequest{TimeoutMS: uint32(ms), Method: view(method), URL: view(r.URL),
		Headers: batchHeaders, Body: r.Body}, nil
}

// view returns the bytes of s without copying them, for the encoder, which
// only reads them.
func view(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// errBadResults reports a results encoding that does not parse.
var errBadResults = errors.New("wasmgate: http_batch_result: malformed results")

// resultsDecoder is reused: what it decodes is copied out at once.
var resultsDecoder abi.Decoder

// decodeResults parses the results encoding; want is the batch's count.
// Bodies alias b; strings are copies. It never panics on malformed input.
func decodeResults(b []byte, want int) ([]OutboundResult, error) {
	res, err := resultsDecoder.Results(b)
	if err != nil {
		return nil, errBadResults
	}
	if len(res) != want {
		resultsDecoder.Reset()
		return nil, fmt.Errorf("wasmgate: http_batch_result: %d results for %d requests", len(res), want)
	}
	out := make([]OutboundResult, len(res))
	for i := range res {
		r, o := &res[i], &out[i]
		o.Status = int(r.Status)
		o.Duration = time.Duration(r.DurationUS) * time.Microsecond
		if len(r.Headers) > 0 {
			o.Header = make([]HeaderField, len(r.Headers))
			for j, h := range r.Headers {
				o.Header[j] = HeaderField{Name: string(h.Name), Value: string(h.Value)}
			}
		}
		o.Body = r.Body
	}
	resultsDecoder.Reset()
	return out, nil
}
