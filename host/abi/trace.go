package abi

// Tracing host functions, for tools that run a plugin offline and show
// what it asked of the host (`wasmgate plugin run`). The gateway never
// traces: its table is Functions(), whose functions are the
// implementations themselves, so tracing costs it nothing, not even a nil
// check. A tool builds its engine on a traced copy of the table instead
// (wasm.WazeroOptions.Host).

// TraceEvent is one host function call, seen after it returned.
type TraceEvent struct {
	// Func is the host function called.
	Func *Func
	// Call is the state it acted on: the phase, the request and response,
	// the guest's memory (Call.Mem) to read buffers the arguments name.
	// Valid only during the callback.
	Call *Call
	// Params are the arguments as the guest passed them (one uint64 slot
	// each, as Func.Fn receives them).
	Params []uint64
	// Results are what the function returned; nil when it panicked.
	Results []uint64
	// Panic is the value the function panicked with (OutOfBounds for a
	// guest buffer outside its memory), nil when it returned. The panic
	// goes on after the callback, so the runtime fails the hook as usual.
	Panic any
}

// RC is the function's first result as an i32 (a return code or a size),
// 0 for a function without results or one that panicked.
func (e *TraceEvent) RC() int32 {
	if len(e.Results) == 0 {
		return 0
	}
	return i32(e.Results[0])
}

// Traced returns a copy of fs whose functions call trace after each call,
// whether it returned or panicked. trace runs on the goroutine of the hook
// (one hook call at a time per instance), before the guest resumes.
func Traced(fs []Func, trace func(*TraceEvent)) []Func {
	out := make([]Func, len(fs))
	for i := range fs {
		f := &out[i]
		*f = fs[i]
		fn := fs[i].Fn
		f.Fn = func(c *Call, stack []uint64) {
			params := append([]uint64(nil), stack[:len(f.Params)]...)
			ev := TraceEvent{Func: f, Call: c, Params: params}
			returned := false
			defer func() {
				if returned {
					return
				}
				ev.Panic = recover()
				trace(&ev)
				panic(ev.Panic)
			}()
			fn(c, stack)
			returned = true
			ev.Results = append([]uint64(nil), stack[:len(f.Results)]...)
			trace(&ev)
		}
	}
	return out
}
