package wasm

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/abi/httpwasm"
)

// Instance is a plugin instance checked out of a Binding: for one hook call
// in pooled mode, for both hooks of one request in fresh mode (sdk/ABI.md
// section 2; the gateway decides). It is never used by two requests at once.
type Instance struct {
	b        *Binding
	mi       ModuleInstance
	call     abi.Call
	stdout   guestLog
	stderr   guestLog
	requests int
	broken   bool // a hook failed: the instance is never reused
	trial    bool // the quarantine trial request
	held     bool // checked out
	// For quarantine, since Acquire: the hooks that succeeded, and the
	// hook run last (the one that failed, once broken).
	ok   Hooks
	last Hook
	// mem is the linear memory size after the instance's last hook (or
	// cold start); counted is what the binding's memory total holds for
	// it, brought up to mem at Release.
	mem, counted uint32
	idleAt       time.Time // when it went back to the pool, for the reaper
}

// OnRequest runs on_request under the call deadline. It returns
// abi.Continue, or abi.Stop when the guest built a local response in resp
// with send_response (whether it then returned 0 or 1, sdk/ABI.md section
// 2); a module without on_request continues at no cost. Returning 1
// without send_response, or any other value, is a failure. An error is a
// *PluginError and leaves the instance broken (Release closes it). scope is
// the request's state shared by the chain (nil: none).
//
// For an http-wasm guest it runs handle_request: next=0 is abi.Stop, with
// what the guest wrote as the local response; next=1 is abi.Continue, and
// the instance must then be kept for the request's OnResponse (or
// AbortResponse): Pending says so.
func (i *Instance) OnRequest(req *fasthttp.Request, resp *fasthttp.Response, scope *abi.Scope) (int32, error) {
	if i.b.abi == ABIHTTPWasm {
		return i.handleRequest(req, resp, scope)
	}
	if !i.b.hooks.Has(HookRequest) {
		return abi.Continue, nil
	}
	c := &i.call
	c.Phase, c.Env, c.Req, c.Resp, c.Scope = abi.PhaseRequest, i.b.env, req, resp, scope
	rc, err := i.run(HookRequest)
	switch {
	case err != nil:
	case c.LocalResponse && (rc == abi.Continue || rc == abi.Stop):
		rc = abi.Stop // after send_response the request ends, whatever was returned
	case rc == abi.Continue:
	case rc == abi.Stop:
		err = i.fail(HookRequest, nil, "on_request returned 1 (stop) without calling send_response")
	default:
		err = i.fail(HookRequest, nil, "on_request returned "+strconv.Itoa(int(rc)))
	}
	if err == nil {
		i.ok |= 1 << HookRequest
	}
	c.Reset()
	return rc, err
}

// OnResponse runs on_response under the call deadline; a module without it
// costs nothing. An error is a *PluginError and leaves the instance broken.
//
// For an http-wasm guest it runs handle_response(reqCtx, 0) on the instance
// whose handle_request said next=1.
func (i *Instance) OnResponse(req *fasthttp.Request, resp *fasthttp.Response, scope *abi.Scope) error {
	if i.b.abi == ABIHTTPWasm {
		return i.handleResponse(req, resp, scope, false)
	}
	if !i.b.hooks.Has(HookResponse) {
		return nil
	}
	c := &i.call
	c.Phase, c.Env, c.Req, c.Resp, c.Scope = abi.PhaseResponse, i.b.env, req, resp, scope
	rc, err := i.run(HookResponse)
	if err == nil && rc != abi.Continue {
		err = i.fail(HookResponse, nil, "on_response returned "+strconv.Itoa(int(rc)))
	}
	if err == nil {
		i.ok |= 1 << HookResponse
	}
	c.Reset()
	return err
}

// handleRequest runs an http-wasm guest's handle_request.
func (i *Instance) handleRequest(req *fasthttp.Request, resp *fasthttp.Response, scope *abi.Scope) (int32, error) {
	s := i.call.Ext.(*httpwasm.State)
	s.Begin()
	c := &i.call
	c.Phase, c.Env, c.Req, c.Resp, c.Scope = abi.PhaseRequest, i.b.env, req, resp, scope
	v, err := i.runRaw(HookRequest, 0, 0)
	c.Reset()
	if err != nil {
		s.End()
		return 0, err
	}
	i.ok |= 1 << HookRequest
	if uint32(v) == 0 { // next=0: the guest answered
		s.Answer(resp)
		s.End()
		return abi.Stop, nil
	}
	s.Next(uint32(v >> 32))
	return abi.Continue, nil
}

// handleResponse runs an http-wasm guest's handle_response(reqCtx,
// isError) on the instance whose handle_request said next=1.
func (i *Instance) handleResponse(req *fasthttp.Request, resp *fasthttp.Response, scope *abi.Scope, isError bool) error {
	s := i.call.Ext.(*httpwasm.State)
	if !s.Pending() {
		return i.fail(HookResponse, nil, "handle_response without a handle_request that returned next=1 on this instance")
	}
	c := &i.call
	c.Phase, c.Env, c.Req, c.Resp, c.Scope = abi.PhaseResponse, i.b.env, req, resp, scope
	s.AfterNext()
	var flag uint32
	if isError {
		flag = 1
	}
	_, err := i.runRaw(HookResponse, s.ReqCtx(), flag)
	c.Reset()
	s.End()
	if err == nil {
		i.ok |= 1 << HookResponse
	}
	return err
}

// Pending reports whether an http-wasm guest's handle_request said next=1
// on this instance: its handle_response is due here, on this request's
// response (OnResponse) or, when the request ends without one for it, on
// a scratch response (AbortResponse).
func (i *Instance) Pending() bool {
	s, ok := i.call.Ext.(*httpwasm.State)
	return ok && s.Pending()
}

// MergeEarly applies to resp, the answer the request got past the guest,
// what an http-wasm guest wrote to the response before it said next=1
// (headers added, a body before resp's; resp's status stays).
func (i *Instance) MergeEarly(resp *fasthttp.Response, head bool) {
	if s, ok := i.call.Ext.(*httpwasm.State); ok && s.Pending() {
		s.Merge(resp, head)
	}
}

// AbortResponse runs handle_response(reqCtx, 1) on an instance whose
// handle_request said next=1 when the request ends without a response for
// the guest (the upstream failed, or a later check refused the request);
// scratch takes what it writes, so that the client gets the gateway's own
// answer. It does nothing for any other instance.
func (i *Instance) AbortResponse(req *fasthttp.Request, scratch *fasthttp.Response, scope *abi.Scope) error {
	if !i.Pending() {
		return nil
	}
	return i.handleResponse(req, scratch, scope, true)
}

// MemorySize is the instance's current linear memory size in bytes.
func (i *Instance) MemorySize() uint32 { return i.mi.MemorySize() }

// Requests is the number of requests the instance has served.
func (i *Instance) Requests() int { return i.requests }

// run calls a hook and records its duration and memory.
func (i *Instance) run(h Hook) (int32, error) {
	v, err := i.runRaw(h, 0, 0)
	return int32(uint32(v)), err
}

// runRaw is run with the arguments and the whole result of CallHookRaw.
func (i *Instance) runRaw(h Hook, a0, a1 uint32) (uint64, error) {
	if i.broken {
		return 0, i.fail(h, nil, "instance already failed")
	}
	i.last = h
	b := i.b
	start := mono()
	v, err := i.mi.CallHookRaw(h, a0, a1, b.cfg.CallTimeout)
	b.series.call[h].Observe(float64(mono()-start) / 1e9)
	i.mem = i.mi.MemorySize()
	b.series.memory(i.mem)
	if err != nil {
		return v, i.fail(h, err, "")
	}
	return v, nil
}

// fail classifies a failed hook, marks the instance broken, counts and
// logs the failure, and returns it as a *PluginError.
func (i *Instance) fail(h Hook, err error, msg string) error {
	i.broken = true
	b := i.b
	kind := KindBadReturn
	if err != nil {
		switch {
		case errors.Is(err, ErrDeadline):
			kind = KindTimeout
			msg = h.Export(b.abi) + " ran past its deadline of " + b.cfg.CallTimeout.String() + " and was interrupted"
		case i.mi.OutOfMemory():
			// The guest failed with no room left to grow: memory.grow
			// returned -1 and the guest gave up (trap or exit).
			kind = KindMemory
			msg = h.Export(b.abi) + " failed out of memory (cap " + strconv.FormatUint(b.capSize>>16, 10) + " pages, memory " +
				strconv.FormatUint(uint64(i.mi.MemorySize())>>16, 10) + " pages): " + err.Error()
		default:
			kind = KindTrap
			msg = h.Export(b.abi) + ": " + err.Error()
		}
	}
	if len(i.call.ErrMsg) > 0 {
		msg += " (plugin said: " + string(i.call.ErrMsg) + ")"
	}
	b.series.failures[kind].Inc()
	pe := &PluginError{Plugin: b.env.Plugin, Kind: kind, Msg: msg, Err: err}
	b.sink.emit(slog.LevelError, "plugin failed", slog.String("kind", kind.String()), slog.String("error", msg))
	return pe
}
