//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64))

package wasm

// The Go side of wasmtime host functions. A file with //export may only
// declare C in its preamble (cgo copies it into two C files), so the C
// shim that calls wgHostCall is in wasmtime_capi.go.

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"unsafe"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// wgHostCall runs host function env for the instance whose store context
// is ctx. vals are the call's raw value slots (16 bytes each, the value in
// the low bytes, little-endian): the parameters in, the results out. It
// returns a trap (wasm_trap_t*) to fail the call, or nil.
//
//export wgHostCall
func wgHostCall(env C.uintptr_t, caller, ctx, vals unsafe.Pointer, n C.size_t) (trap unsafe.Pointer) {
	h := wtHostFunc(uintptr(env))
	i := wtInstanceOf(uintptr(ctx))
	if i == nil || h == nil || int(n) > len(i.stack) {
		return wtNewTrap(errNoCall.Error())
	}
	slots := unsafe.Slice((*[2]uint64)(vals), int(n))
	stack := i.stack[:len(slots)]
	for k, t := range h.params {
		v := slots[k][0]
		if t == sdkabi.I32 || t == sdkabi.F32 { // only their low bytes are defined
			v &= 0xffffffff
		}
		stack[k] = v
	}
	i.enterHost(caller)
	defer func() {
		i.leaveHost()
		if r := recover(); r != nil {
			trap = wtNewTrap(i.hostFailed(h, r))
		}
	}()
	if h.fn != nil {
		h.fn(i.call, stack)
	} else {
		h.wasi(&i.wasi, i.call.Mem, stack)
	}
	for k := range h.results {
		slots[k][0] = stack[k]
	}
	return nil
}
