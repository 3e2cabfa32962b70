package httpwasm

import (
	"github.com/http-wasm/http-wasm-host-go/api/handler"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
)

// State is what the http_handler functions of one instance keep beyond the
// abi.Call: the features enabled, where the request is (handle_request, or
// handle_response after next), the body cursors, and the response as the
// guest wrote it during handle_request.
//
// That response is staged, not written: during handle_request the
// pipeline's response is still to be filled by the upstream. With next=0 it
// becomes the answer (Answer); with next=1 it is applied to the upstream's
// answer (Merge), as the reference host does behind a reverse proxy.
//
// A State belongs to one instance, which one goroutine uses at a time. The
// runtime drives it: Begin before handle_request, Next when it returned
// next=1, AfterNext before handle_response, End when the request is done.
type State struct {
	initFeatures handler.Features // enabled outside a request: every request starts with them
	features     handler.Features // the current request's: initFeatures and what it enabled

	active    bool   // between Begin and End: a request is being handled
	afterNext bool   // handle_response is running
	pending   bool   // handle_request said next=1: handle_response is due on this instance
	reqCtx    uint32 // the high word of handle_request's result, for handle_response

	early early // the response written during handle_request

	reqRead, respRead       int  // read_body cursors
	reqWritten, respWritten bool // write_body: the first write of a request replaces the body

	buf     []byte // scratch: a cleaned path, an address, a merged body
	scratch []byte // header name spellings for case-insensitive removal
}

// early is the response as the guest wrote it during handle_request.
type early struct {
	dirty  bool    // anything staged at all: Merge has nothing to do otherwise (the common case)
	status int     // 0: not set, 200
	fields []field // headers in the order written
	arena  []byte  // the fields' names and values, back to back, in order
	body   []byte
}

// field is one staged header: its name and then its value at off in arena.
type field struct{ off, nameLen, valueLen int }

// maxKept is the largest buffer a State keeps between requests: one large
// body must not pin its memory to the instance for good.
const maxKept = 64 << 10

// NewState returns the state of a new instance: no feature enabled, no
// request.
func NewState() *State { return &State{} }

// Begin starts a request (before handle_request): the features the
// instance enabled at start, nothing read, written or staged yet.
func (s *State) Begin() {
	s.clear()
	s.active = true
}

// Next records that handle_request returned next=1 with reqCtx (the high
// word of its result): handle_response is due on this instance.
func (s *State) Next(reqCtx uint32) { s.pending, s.reqCtx = true, reqCtx }

// AfterNext switches to handle_response: the response is now the
// upstream's (the Call's), read and written from its start.
func (s *State) AfterNext() {
	s.afterNext = true
	s.respRead, s.respWritten = 0, false
}

// Pending reports whether handle_request returned next=1 and
// handle_response has not yet been called.
func (s *State) Pending() bool { return s.pending }

// ReqCtx is the reqCtx handle_request returned, for handle_response.
func (s *State) ReqCtx() uint32 { return s.reqCtx }

// End ends the request: nothing of it is kept but the buffers (and the
// features enabled outside a request, which belong to the instance).
func (s *State) End() {
	s.clear()
	trim(&s.buf)
	trim(&s.scratch)
	trim(&s.early.arena)
	trim(&s.early.body)
	if cap(s.early.fields) > maxKept/32 {
		s.early.fields = nil
	}
}

func (s *State) clear() {
	s.features = s.initFeatures
	s.active, s.afterNext, s.pending, s.reqCtx = false, false, false, 0
	s.reqRead, s.respRead, s.reqWritten, s.respWritten = 0, 0, false, false
	s.early.reset()
}

// trim drops a buffer grown past maxKept, keeping a smaller one's array.
func trim(b *[]byte) {
	if cap(*b) > maxKept {
		*b = nil
	}
	*b = (*b)[:0]
}

// Answer makes the staged response the answer (next=0): its status (200
// when unset), its headers added, its body set with its Content-Length (a
// 204 or 304 takes none). resp is the pristine response of the request:
// no plugin wrote it before (a native plugin writes it only after
// send_response, which stops the chain).
func (s *State) Answer(resp *fasthttp.Response) {
	status := s.early.status
	if status == 0 {
		status = fasthttp.StatusOK
	}
	resp.SetStatusCode(status)
	s.addHeaders(resp)
	if abi.BodylessStatus(status) {
		resp.ResetBody()
		return
	}
	abi.SetResponseBody(resp, s.early.body)
}

// Merge applies the staged response to the upstream's answer (next=1), as
// the reference host does with a reverse proxy as next: the staged headers
// are added beside the upstream's (those a response holds once, as
// Content-Type, Server and Date, replace the upstream's), a staged body
// comes before the
// upstream's (not on a HEAD request, nor on a 204 or 304: they carry none),
// and a staged status is ignored, the upstream's wins.
func (s *State) Merge(resp *fasthttp.Response, head bool) {
	if !s.early.dirty {
		return
	}
	s.addHeaders(resp)
	if len(s.early.body) == 0 || head || abi.BodylessStatus(resp.StatusCode()) {
		return
	}
	s.buf = append(append(s.buf[:0], s.early.body...), resp.Body()...)
	abi.SetResponseBody(resp, s.buf)
}

func (s *State) addHeaders(resp *fasthttp.Response) {
	for _, f := range s.early.fields {
		if name := s.early.name(f); !abi.IsFraming(name) { // the host frames the message
			resp.Header.AddBytesKV(name, s.early.value(f))
		}
	}
}

func (e *early) reset() {
	e.dirty, e.status = false, 0
	e.fields, e.arena, e.body = e.fields[:0], e.arena[:0], e.body[:0]
}

func (e *early) name(f field) []byte { return e.arena[f.off : f.off+f.nameLen] }

func (e *early) value(f field) []byte {
	return e.arena[f.off+f.nameLen : f.off+f.nameLen+f.valueLen]
}

// add stages one more header.
func (e *early) add(name, value []byte) {
	e.fields = append(e.fields, field{off: len(e.arena), nameLen: len(name), valueLen: len(value)})
	e.arena = append(append(e.arena, name...), value...)
	e.dirty = true
}

// remove unstages every header named name (ASCII case-insensitively). The
// arena is compacted, so that a guest setting one header in a loop does
// not grow it.
func (e *early) remove(name []byte) {
	kept, w := e.fields[:0], 0
	for _, f := range e.fields {
		if abi.FoldEq(e.name(f), name) {
			continue
		}
		n := f.nameLen + f.valueLen
		copy(e.arena[w:], e.arena[f.off:f.off+n]) // moves left: copy handles the overlap
		f.off = w
		w += n
		kept = append(kept, f)
	}
	e.fields, e.arena = kept, e.arena[:w]
	e.dirty = true
}
