package wasm

import (
	"fmt"
	"math/bits"
)

// bulkFuelRound is the fuel one round of $bulk's loop burns on wasmtime.
const bulkFuelRound = 1024

// chargeBulk returns wasm with a call to an appended function $bulk before
// every bulk memory instruction (memory.fill, memory.copy, memory.init),
// for wasmtime, which charges each of them one unit of fuel whatever its
// length. $bulk takes the length on top of the stack, returns it, and
// burns length / bulkBytesPerInstr fuel on the way (the rate wazero's
// instrumentation charges, interrupt.go): a loop of rounds of
// bulkFuelRound (i32.const 0; drop) pairs, which wasmtime charges one unit
// each when it compiles them and Cranelift then compiles to nothing, so
// the fuel costs almost no CPU. A guest out of fuel traps in the loop's
// check like anywhere else. Lengths under one round's worth (16 KiB) are
// not charged: such an operation costs about what its call does.
//
// It reports false, with the module unchanged, when the module has no
// bulk memory instruction; an error when it cannot be rewritten (it then
// runs unchanged). Existing indices stay valid: the type and the function
// are appended, and code naming a function past the module's own, which
// would become $bulk, is refused.
func chargeBulk(wasm []byte) ([]byte, bool, error) {
	l, err := readLayout(wasm)
	if err != nil {
		return nil, false, err
	}
	if l.code < 0 || !l.hasFuncs {
		return wasm, false, nil
	}
	funcs := l.importedFuncs + l.funcs
	bulkFunc := funcs
	callBulk := appendULEB([]byte{0x10}, uint64(bulkFunc))

	code := l.secs[l.code]
	r := reader{b: wasm[:code.end], off: code.start}
	n := r.count()
	out := appendULEB(make([]byte, 0, code.end-code.start+64), uint64(n)+1)
	bulks := 0
	out, err = rewriteBodies(&r, n, out, func(i uint32, body reader, fn []byte) ([]byte, error) {
		last := body.off
		for !body.done() {
			at := body.off
			switch body.instr() {
			case instrFunc:
				if body.imm >= funcs {
					return nil, fmt.Errorf("function %d: function %d does not exist (the module has %d)", i, body.imm, funcs)
				}
			case instrBulk:
				fn = append(fn, wasm[last:at]...)
				fn = append(fn, callBulk...)
				last = at
				bulks++
			}
		}
		if body.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, body.err)
		}
		return append(fn, wasm[last:len(body.b)]...), nil
	})
	if err != nil || bulks == 0 {
		return wasm, false, err
	}
	bulk := bulkBody()
	out = appendULEB(out, uint64(len(bulk)))
	out = append(out, bulk...)
	return l.write(wasm, len(wasm)+bulks*4+len(bulk)+64, []sectionEdit{
		{id: 1, add: 1, entries: []byte{0x60, 0x01, 0x7f, 0x01, 0x7f}, create: true}, // (i32) -> i32
		{id: 3, add: 1, entries: appendULEB(nil, uint64(l.types))},
		{id: 10, replace: true, content: out},
	}), true, nil
}

// bulkBody is $bulk(n): rounds = n >> log2(bulkBytesPerInstr ×
// bulkFuelRound); each round burns bulkFuelRound fuel; returns n.
func bulkBody() []byte {
	b := []byte{0x01, 0x01, 0x7f}   // one local: $rounds i32
	b = append(b, 0x20, 0x00, 0x41) // local.get $n, i32.const shift
	b = appendSLEB(b, int64(bits.TrailingZeros(bulkBytesPerInstr*bulkFuelRound)))
	b = append(b, 0x76, 0x21, 0x01)             // i32.shr_u, local.set $rounds
	b = append(b, 0x02, 0x40, 0x03, 0x40)       // block, loop
	b = append(b, 0x20, 0x01, 0x45, 0x0d, 0x01) // local.get $rounds, i32.eqz, br_if 1
	for range bulkFuelRound {
		b = append(b, 0x41, 0x00, 0x1a) // i32.const 0, drop
	}
	b = append(b, 0x20, 0x01, 0x41, 0x01, 0x6b, 0x21, 0x01) // $rounds -= 1
	b = append(b, 0x0c, 0x00, 0x0b, 0x0b)                   // br 0, end, end
	return append(b, 0x20, 0x00, 0x0b)                      // local.get $n, end
}
