package wasm

import (
	"fmt"
	"math/bits"
)

// The fuel one round of each of $bulk's loops burns on wasmtime: coarse
// rounds for most of a length, fine ones for the rest.
const (
	bulkFuelRound = 1024
	bulkFuelFine  = 16
)

// chargeBulk returns wasm with a call to an appended function $bulk before
// every bulk memory instruction (memory.fill, memory.copy, memory.init),
// for wasmtime, which charges each of them one unit of fuel whatever its
// length. $bulk takes the length on top of the stack, returns it, and
// burns length / bulkBytesPerInstr fuel on the way (the rate wazero's
// instrumentation charges, interrupt.go): a loop of rounds of
// bulkFuelRound (i32.const 0; drop) pairs, which wasmtime charges one unit
// each when it compiles them and Cranelift then compiles to nothing, so
// the fuel costs almost no CPU; the rest of the length in rounds of
// bulkFuelFine pairs. A guest out of fuel traps in a loop's check like
// anywhere else. What is left under one fine round (256 bytes) costs about
// what the call does.
//
// It reports false, with the module unchanged, when the module has no
// bulk memory instruction; an error when it cannot be rewritten, and the
// engine then refuses the module, which it could not meter. Existing
// indices stay valid: the type and the function are appended, and a module
// naming an index past its own (ownIndices; exports, start and elements in
// readLayout), which could become $bulk's, is refused.
func chargeBulk(wasm []byte) ([]byte, bool, error) {
	l, err := readLayout(wasm)
	if err != nil {
		return nil, false, err
	}
	if l.code < 0 || !l.hasFuncs {
		return wasm, false, nil
	}
	own := l.own()
	callBulk := appendULEB([]byte{0x10}, uint64(own.funcs)) // $bulk, appended

	code := l.secs[l.code]
	r := reader{b: wasm[:code.end], off: code.start}
	n := r.count()
	out := appendULEB(make([]byte, 0, code.end-code.start+64), uint64(n)+1)
	bulks := 0
	out, err = rewriteBodies(&r, n, out, func(i uint32, body reader, fn []byte) ([]byte, error) {
		last := body.off
		for !body.done() {
			at := body.off
			kind := body.instr()
			if err := own.check(i, kind, body.imm); err != nil {
				return nil, err
			}
			if kind == instrBulk {
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

// bulkBody is $bulk(n): n / (bulkBytesPerInstr × bulkFuelRound) coarse
// rounds, then what is left of n / bulkBytesPerInstr in fine rounds, each
// round burning its fuel; returns n.
func bulkBody() []byte {
	units := bits.TrailingZeros(bulkBytesPerInstr)
	coarse := bits.TrailingZeros(bulkFuelRound)
	fine := bits.TrailingZeros(bulkFuelFine)
	b := []byte{0x01, 0x01, 0x7f} // one local: $rounds i32
	// $rounds = n >> (units + coarse)
	b = append(b, 0x20, 0x00, 0x41)
	b = appendSLEB(b, int64(units+coarse))
	b = append(b, 0x76, 0x21, 0x01)
	b = burnLoop(b, bulkFuelRound)
	// $rounds = ((n >> units) & (bulkFuelRound-1)) >> fine
	b = append(b, 0x20, 0x00, 0x41)
	b = appendSLEB(b, int64(units))
	b = append(b, 0x76, 0x41)
	b = appendSLEB(b, bulkFuelRound-1)
	b = append(b, 0x71, 0x41) // i32.and
	b = appendSLEB(b, int64(fine))
	b = append(b, 0x76, 0x21, 0x01)
	b = burnLoop(b, bulkFuelFine)
	return append(b, 0x20, 0x00, 0x0b) // local.get $n, end
}

// burnLoop appends a loop of $rounds rounds, each of pairs (i32.const 0;
// drop) pairs: pairs units of fuel.
func burnLoop(b []byte, pairs int) []byte {
	b = append(b, 0x02, 0x40, 0x03, 0x40)       // block, loop
	b = append(b, 0x20, 0x01, 0x45, 0x0d, 0x01) // local.get $rounds, i32.eqz, br_if 1
	for range pairs {
		b = append(b, 0x41, 0x00, 0x1a) // i32.const 0, drop
	}
	b = append(b, 0x20, 0x01, 0x41, 0x01, 0x6b, 0x21, 0x01) // $rounds -= 1
	return append(b, 0x0c, 0x00, 0x0b, 0x0b)                // br 0, end, end
}
