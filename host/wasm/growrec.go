package wasm

import (
	"fmt"
)

// recordGrows returns wasm with the result of every memory.grow kept in a
// mutable i32 global exported as growExport, the part of instrument an
// engine with its own interruption (wasmtime) still needs: a guest that
// fails right after its memory could not grow is then reported as a
// memory failure for certain, not guessed from its size. It reports false,
// with the module unchanged, when the module never grows its memory; an
// error when the module cannot be rewritten (it then runs unchanged).
//
// As with instrument, every index stays valid (the global is appended),
// and custom sections holding code offsets (DWARF) are dropped.
func recordGrows(wasm []byte) ([]byte, bool, error) {
	l, err := readLayout(wasm, growExport)
	if err != nil {
		return nil, false, err
	}
	if l.code < 0 {
		return wasm, false, nil
	}
	code := l.secs[l.code]
	grow := l.importedGlobals + l.globals
	body, grows, err := growCode(wasm[:code.end], code.start, afterGrowCode(grow))
	if err != nil || grows == 0 {
		return wasm, false, err
	}

	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b} // (mut i32) (i32.const 0)
	newExport := appendExport(nil, growExport, ExternGlobal, grow)
	return l.write(wasm, len(wasm)+grows*8+64, []sectionEdit{
		{id: 6, add: 1, entries: newGlobal, create: true},
		{id: 7, add: 1, entries: newExport, create: true},
		{id: 10, replace: true, content: body},
	}), true, nil
}

// growCode rewrites the code section's bodies with afterGrow after every
// memory.grow, and counts them.
func growCode(b []byte, start int, afterGrow []byte) ([]byte, int, error) {
	r := reader{b: b, off: start}
	n := r.count()
	out := appendULEB(make([]byte, 0, len(b)-start+64), uint64(n))
	grows := 0
	out, err := rewriteBodies(&r, n, out, func(i uint32, body reader, fn []byte) ([]byte, error) {
		last := body.off
		for !body.done() {
			if body.instr() == instrGrow {
				fn = append(fn, b[last:body.off]...)
				fn = append(fn, afterGrow...)
				last = body.off
				grows++
			}
		}
		if body.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, body.err)
		}
		return append(fn, b[last:len(body.b)]...), nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, grows, nil
}
