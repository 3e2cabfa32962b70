package abi

import (
	"reflect"
	"testing"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// TestTraced: a traced table calls the tracer after every host function
// with its arguments, results and the Call (to read guest buffers), passes
// a panic on after reporting it, and leaves Functions() untouched.
func TestTraced(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	var events []TraceEvent
	var names []string // guest buffers read inside the callback
	traced := Traced(Functions(), func(e *TraceEvent) {
		if e.Call != h.c {
			t.Errorf("%s: event Call is not the caller's", e.Func.Name)
		}
		if e.Func.Name == sdkabi.FuncHeaderSet {
			b, _ := e.Call.Mem.Read(uint32(e.Params[1]), uint32(e.Params[2]))
			names = append(names, string(b))
		}
		events = append(events, *e)
	})
	if len(traced) != len(Functions()) {
		t.Fatalf("%d traced functions, want %d", len(traced), len(Functions()))
	}
	for i, f := range Functions() {
		g := traced[i]
		if g.Name != f.Name || !reflect.DeepEqual(g.Params, f.Params) || !reflect.DeepEqual(g.Results, f.Results) {
			t.Errorf("traced[%d] = %s%v%v, want %s%v%v", i, g.Name, g.Params, g.Results, f.Name, f.Params, f.Results)
		}
	}
	for _, f := range traced {
		h.fns[f.Name] = f
	}

	name, nameLen := h.put("X-Traced")
	value, valueLen := h.put("yes")
	if rc := h.call32(sdkabi.FuncHeaderSet, i32arg(KindRequest), name, nameLen, value, valueLen); rc != 0 {
		t.Fatalf("header_set = %d", rc)
	}
	if got := string(h.c.Req.Header.Peek("X-Traced")); got != "yes" {
		t.Errorf("the traced header_set did not act: X-Traced = %q", got)
	}
	if rc := h.call32(sdkabi.FuncHeaderSet, i32arg(99), name, nameLen, value, valueLen); rc != ErrBadArgument {
		t.Errorf("header_set with a bad kind = %d, want %d", rc, ErrBadArgument)
	}
	_ = h.call(sdkabi.FuncTimeNow)
	mustPanicOOB(t, sdkabi.FuncConfigGet, func() { h.call(sdkabi.FuncConfigGet, 1<<20, 16) })

	if len(events) != 4 {
		t.Fatalf("%d events, want 4: %+v", len(events), events)
	}
	set := events[0]
	if set.Func.Name != sdkabi.FuncHeaderSet || set.RC() != 0 || set.Panic != nil ||
		!reflect.DeepEqual(set.Params, []uint64{uint64(KindRequest), name, nameLen, value, valueLen}) || len(set.Results) != 1 {
		t.Errorf("header_set event: %+v", set)
	}
	if !reflect.DeepEqual(names, []string{"X-Traced", "X-Traced"}) {
		t.Errorf("names read in the callback: %q", names)
	}
	if bad := events[1]; bad.RC() != ErrBadArgument || bad.Params[0] != 99 {
		t.Errorf("the refused header_set: rc %d, params %v", bad.RC(), bad.Params)
	}
	if now := events[2]; now.Func.Name != sdkabi.FuncTimeNow || len(now.Params) != 0 || len(now.Results) != 1 || now.Results[0] == 0 {
		t.Errorf("time_now event: %+v", now)
	}
	oob := events[3]
	if _, ok := oob.Panic.(OutOfBounds); !ok || oob.Results != nil || oob.RC() != 0 || oob.Func.Name != sdkabi.FuncConfigGet {
		t.Errorf("config_get out of bounds: %+v", oob)
	}

	// The gateway's table is not traced.
	for _, f := range Functions() {
		if f.Name == sdkabi.FuncTimeNow {
			stack := []uint64{0}
			f.Fn(h.c, stack)
		}
	}
	if len(events) != 4 {
		t.Errorf("Functions() calls the tracer")
	}
}
