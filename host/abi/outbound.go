package abi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// Defaults of outbound calls.
const (
	// DefaultOutboundTimeout bounds a request with timeout 0 when the hook
	// has no deadline either (the runtime normally gives it one).
	DefaultOutboundTimeout = 10 * time.Second
	// DefaultMaxResponseBody bounds one outbound response body.
	DefaultMaxResponseBody = 16 << 20
	// MaxResultsBytes bounds the encoded results of one batch; results that
	// would pass it are answered StatusOther with no headers or body.
	MaxResultsBytes = 64 << 20
)

// ErrUnreachable is what an Upstream function returns (wrapped or not) when
// no target of the upstream could be reached; the result is StatusNetwork.
var ErrUnreachable = errors.New("abi: upstream unreachable")

// Outbound is what one plugin binding may call through http_batch: the
// route's outbound.upstreams and outbound.hosts for the plugin, and how to
// reach them. It is used by pointer and shared by the binding's instances.
type Outbound struct {
	// Upstreams are the upstream names reachable as upstream://NAME/...
	Upstreams map[string]bool
	// Hosts are the authorities reachable as http://host:port/..., as
	// "host:port" in lower case; a URL without a port means port 80.
	Hosts map[string]bool
	// Upstream sends req to a target of the named upstream (load-balanced)
	// and fills resp. req carries the method, path, query, headers and body;
	// the function sets the target address. It must return by ctx's
	// deadline; a timeout error (context.DeadlineExceeded,
	// fasthttp.ErrTimeout, a net.Error timing out) is StatusTimeout, a
	// network error or ErrUnreachable is StatusNetwork, any other
	// StatusOther. Nil: upstream:// destinations are not allowed.
	Upstream func(ctx context.Context, name string, req *fasthttp.Request, resp *fasthttp.Response) error
	// Client sends the http:// requests; nil: a shared client with
	// DefaultMaxResponseBody and no path normalisation.
	Client *fasthttp.Client
	// MaxBatch bounds the requests of one batch below MaxBatch (0: MaxBatch).
	MaxBatch int
	// MaxResponseBody bounds one response body (0: DefaultMaxResponseBody);
	// a larger one is StatusOther.
	MaxResponseBody int
	// MaxInflight bounds the binding's outbound requests in flight at once;
	// a batch that would pass it is refused whole with UNAVAILABLE. 0: none.
	MaxInflight int64
	// DefaultTimeout replaces DefaultOutboundTimeout (see there).
	DefaultTimeout time.Duration

	inflight atomic.Int64
}

var defaultClient = &fasthttp.Client{
	NoDefaultUserAgentHeader:      true,
	DisablePathNormalizing:        true,
	DisableHeaderNamesNormalizing: true,
	MaxResponseBodySize:           DefaultMaxResponseBody,
}

// batchState is a Call's reusable memory for http_batch.
type batchState struct {
	dec   sdkabi.Decoder
	reqs  []BatchRequest // decoded by dec: views of guest memory
	slots []batchSlot
	hdrs  []Header // one result's headers while it is encoded
}

// batchSlot is the destination and then the outcome of one request.
type batchSlot struct {
	dest     dest
	name     []byte // upstream name, or lower-cased authority
	path     []byte // path, "/" when the URL has none
	query    []byte // query without '?', nil when none
	deadline time.Time
	status   int32
	dur      time.Duration
	resp     *fasthttp.Response // nil unless status is an HTTP status
}

type dest uint8

const (
	destNone dest = iota // not allowed
	destUpstream
	destHost
)

var (
	prefixUpstream = []byte("upstream://")
	prefixHTTP     = []byte("http://")
)

// parseURL splits an outbound URL into its destination, name (upstream
// name or authority), path and query. It is strict where the upstream
// client would be lenient, because what is checked against the allow lists
// must be exactly where the request goes: the authority holds only host
// characters (no userinfo), and no part holds a control byte, a space or
// '#'.
func parseURL(url []byte) (d dest, name, path, query []byte) {
	switch {
	case bytes.HasPrefix(url, prefixUpstream):
		d, url = destUpstream, url[len(prefixUpstream):]
	case bytes.HasPrefix(url, prefixHTTP):
		d, url = destHost, url[len(prefixHTTP):]
	default:
		return destNone, nil, nil, nil
	}
	end := bytes.IndexAny(url, "/?")
	if end < 0 {
		end = len(url)
	}
	name, rest := url[:end], url[end:]
	if len(name) == 0 {
		return destNone, nil, nil, nil
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '-' || c == '_' || (d == destHost && (c == ':' || c == '[' || c == ']'))
		if !ok {
			return destNone, nil, nil, nil
		}
	}
	for _, c := range rest {
		if c <= ' ' || c == 0x7f || c == '#' {
			return destNone, nil, nil, nil
		}
	}
	path = rest
	if q := bytes.IndexByte(rest, '?'); q >= 0 {
		path, query = rest[:q], rest[q+1:]
	}
	if len(path) == 0 {
		path = []byte{'/'}
	}
	return d, name, path, query
}

// hostKey returns the authority in lower case with port 80 made explicit,
// in buf: the form of the keys of Hosts.
func hostKey(buf, authority []byte) []byte {
	buf = append(buf[:0], authority...)
	for i, c := range buf {
		if 'A' <= c && c <= 'Z' {
			buf[i] = c + 'a' - 'A'
		}
	}
	// A port follows the last ':' unless it closes an IPv6 literal.
	if i := bytes.LastIndexByte(buf, ':'); i < 0 || bytes.IndexByte(buf[i:], ']') >= 0 {
		buf = append(buf, ":80"...)
	}
	return buf
}

// allow resolves slot's destination against o, false when not allowed.
func (o *Outbound) allow(s *batchSlot, url []byte, buf *[]byte) bool {
	d, name, path, query := parseURL(url)
	if o == nil || d == destNone {
		return false
	}
	s.dest, s.path, s.query = d, path, query
	if d == destUpstream {
		s.name = name
		return o.Upstream != nil && o.Upstreams[string(name)]
	}
	*buf = hostKey(*buf, name)
	s.name = name
	return o.Hosts[string(*buf)]
}

// validBatch checks what the decoder does not: methods and header names are
// tokens, header values hold no CR, LF or NUL.
func validBatch(reqs []BatchRequest) bool {
	for i := range reqs {
		if !httpsyntax.IsToken(reqs[i].Method) {
			return false
		}
		for _, h := range reqs[i].Headers {
			if !httpsyntax.IsToken(h.Name) || !validValue(h.Value) {
				return false
			}
		}
	}
	return true
}

// httpBatch runs a batch: every allowed request in parallel, each bounded
// by its timeout and the hook's deadline; then encodes every result, in
// order, for http_batch_result.
func httpBatch(c *Call, stack []uint64) {
	in := c.guest(sdkabi.FuncHTTPBatch, stack[0], stack[1])
	c.batchResult = c.batchResult[:0]
	if !c.hooked() {
		ret32(stack, ErrNotAllowed)
		return
	}
	if len(in) > MaxBatchBytes {
		ret32(stack, ErrTooLarge)
		return
	}
	var o *Outbound
	if c.Env != nil {
		o = c.Env.Out
	}
	maxN := MaxBatch
	if o != nil && o.MaxBatch > 0 {
		maxN = min(maxN, o.MaxBatch)
	}
	b := &c.batch
	var err error
	b.reqs, err = b.dec.Batch(in, maxN)
	defer b.clear()
	switch {
	case errors.Is(err, ErrBatchTooLarge):
		ret32(stack, ErrTooLarge)
		return
	case err != nil || !validBatch(b.reqs):
		ret32(stack, ErrBadArgument)
		return
	}
	if code := o.run(c, b); code != 0 {
		ret32(stack, code)
		return
	}
	c.batchResult = b.encode(c.batchResult[:0])
	ret32(stack, size(len(c.batchResult)))
}

// clear drops the views of guest memory and the responses of the last
// batch, keeping the slices for reuse.
func (b *batchState) clear() {
	b.dec.Reset()
	clear(b.hdrs[:cap(b.hdrs)]) // every result's headers, not just the last's
	for i := range b.slots {
		if r := b.slots[i].resp; r != nil {
			fasthttp.ReleaseResponse(r)
		}
	}
	clear(b.slots)
	b.reqs, b.hdrs, b.slots = nil, b.hdrs[:0], b.slots[:0]
}

// run resolves and sends the requests of b, and waits for all of them. It
// returns 0 or an error code for the whole batch. o may be nil: then every
// request is not allowed.
func (o *Outbound) run(c *Call, b *batchState) int32 {
	n := len(b.reqs)
	if cap(b.slots) < n {
		b.slots = make([]batchSlot, n)
	}
	b.slots = b.slots[:n]
	allowed := int64(0)
	for i := range b.slots {
		s := &b.slots[i]
		*s = batchSlot{status: StatusNotAllowed}
		if o.allow(s, b.reqs[i].URL, &c.scratch) {
			s.status = 0
			allowed++
		}
	}
	if allowed == 0 {
		return 0
	}
	if o.MaxInflight > 0 {
		if o.inflight.Add(allowed) > o.MaxInflight {
			o.inflight.Add(-allowed)
			return ErrUnavailable
		}
		defer o.inflight.Add(-allowed)
	}
	ctx := c.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	now := time.Now()
	hookDL, hasDL := ctx.Deadline()
	if hasDL {
		// Leave the guest time to use what came back (a partial answer):
		// the batch ends a tenth of the time left before the hook's
		// deadline, at least 1ms and at most 50ms before it.
		hookDL = hookDL.Add(-min(max(hookDL.Sub(now)/10, time.Millisecond), 50*time.Millisecond))
	}
	def := o.DefaultTimeout
	if def <= 0 {
		def = DefaultOutboundTimeout
	}
	// The requests read their method, URL, headers and body straight from
	// guest memory: the guest is paused until every one has returned.
	var wg sync.WaitGroup
	for i := range b.slots {
		s := &b.slots[i]
		if s.dest == destNone || s.status != 0 {
			continue
		}
		t := b.reqs[i].TimeoutMS
		switch {
		case t > 0:
			s.deadline = now.Add(time.Duration(t) * time.Millisecond)
			if hasDL && hookDL.Before(s.deadline) {
				s.deadline = hookDL
			}
		case hasDL:
			s.deadline = hookDL
		default:
			s.deadline = now.Add(def)
		}
		if allowed == 1 { // nothing to overlap with: no goroutine
			o.send(ctx, s, &b.reqs[i])
			continue
		}
		wg.Go(func() { o.send(ctx, s, &b.reqs[i]) })
	}
	wg.Wait()
	return 0
}

// send sends one request and records its outcome in s. The request object
// comes from fasthttp's pool; the response is kept in s for encoding.
func (o *Outbound) send(ctx context.Context, s *batchSlot, q *BatchRequest) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	req.Header.DisableNormalizing() // send header names as the plugin spelt them
	req.Header.SetMethodBytes(q.Method)
	u := req.URI()
	u.DisablePathNormalizing = true
	u.SetPathBytes(s.path)
	u.SetQueryStringBytes(s.query)
	for _, h := range q.Headers {
		if !isFraming(h.Name) { // the body decides the framing
			req.Header.AddBytesKV(h.Name, h.Value)
		}
	}
	if len(q.Body) > 0 {
		req.SetBody(q.Body)
	}
	start := time.Now()
	var err error
	if s.dest == destUpstream {
		dctx, cancel := context.WithDeadline(ctx, s.deadline)
		err = o.Upstream(dctx, string(s.name), req, resp)
		cancel()
	} else {
		u.SetScheme("http")
		u.SetHostBytes(s.name)
		cl := o.Client
		if cl == nil {
			cl = defaultClient
		}
		err = cl.DoDeadline(req, resp, s.deadline)
	}
	s.dur = time.Since(start)
	limit := o.MaxResponseBody
	if limit <= 0 {
		limit = DefaultMaxResponseBody
	}
	s.status = outcome(err)
	if s.status == 0 && len(resp.Body()) > limit {
		s.status = StatusOther
	}
	if s.status != 0 {
		fasthttp.ReleaseResponse(resp)
		return
	}
	s.status, s.resp = int32(resp.StatusCode()), resp
}

// outcome maps a send error to a result status, 0 for none.
func outcome(err error) int32 {
	if err == nil {
		return 0
	}
	var ne net.Error
	isNet := errors.As(err, &ne)
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, context.DeadlineExceeded), isNet && ne.Timeout():
		return StatusTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return StatusOther
	case isNet, errors.Is(err, ErrUnreachable), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return StatusNetwork
	}
	return StatusOther
}

// encode appends the results of b, in batch order. A result that would
// take the results past MaxResultsBytes is answered StatusOther instead,
// with no headers or body.
func (b *batchState) encode(dst []byte) []byte {
	dst = sdkabi.AppendCount(dst, len(b.slots))
	for i := range b.slots {
		s := &b.slots[i]
		us := s.dur.Microseconds()
		if us > int64(^uint32(0)) {
			us = int64(^uint32(0))
		}
		r := BatchResult{Status: s.status, DurationUS: uint32(us)}
		if s.status >= 0 && s.resp != nil {
			// Views of the response, which lives until the batch is cleared.
			b.hdrs = b.hdrs[:0]
			for k, v := range s.resp.Header.All() {
				b.hdrs = append(b.hdrs, Header{Name: k, Value: v})
			}
			r.Headers, r.Body = b.hdrs, s.resp.Body()
			if len(dst)+r.Size() > MaxResultsBytes {
				r = BatchResult{Status: StatusOther, DurationUS: r.DurationUS}
			}
		}
		dst = sdkabi.AppendResult(dst, &r)
	}
	return dst
}

func httpBatchResult(c *Call, stack []uint64) {
	dst := c.guest(sdkabi.FuncHTTPBatchResult, stack[0], stack[1])
	if !c.hooked() {
		ret32(stack, ErrNotAllowed)
		return
	}
	ret32(stack, writeOut(dst, c.batchResult))
}
