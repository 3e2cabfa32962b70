package wasm

import (
	"fmt"
	"strings"
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
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || wasm[4] != 1 {
		return nil, false, &FormatError{Offset: -1, Msg: "not a core module"}
	}
	type section struct {
		id         byte
		start, end int // content
		name       string
	}
	var (
		secs                     []section
		importedGlobals, globals uint32
		code                     *section
	)
	r := reader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, false, r.err
		}
		if uint64(size) > uint64(len(wasm)-r.off) {
			return nil, false, &FormatError{Offset: r.off, Msg: "section runs past the end"}
		}
		s := section{id: id, start: r.off, end: r.off + int(size)}
		sr := reader{b: wasm[:s.end], off: s.start}
		switch id {
		case 0:
			s.name = sr.name()
		case 2:
			n := sr.count()
			for i := uint32(0); i < n && sr.err == nil; i++ {
				sr.name()
				sr.name()
				switch ExternKind(sr.byte()) {
				case ExternFunc:
					sr.u32()
				case ExternTable:
					sr.reftype()
					sr.limits()
				case ExternMemory:
					sr.limits()
				case ExternGlobal:
					importedGlobals++
					sr.valtype()
					sr.byte()
				case ExternTag:
					sr.byte()
					sr.u32()
				default:
					sr.fail("unknown import kind")
				}
			}
		case 6:
			globals = sr.u32()
		case 7:
			n := sr.count()
			for i := uint32(0); i < n && sr.err == nil; i++ {
				if sr.name() == growExport {
					return nil, false, fmt.Errorf("the module already exports %q", growExport)
				}
				sr.byte()
				sr.u32()
			}
		default:
			if _, ok := sectionRank[id]; !ok {
				return nil, false, fmt.Errorf("unknown section %d", id)
			}
		}
		if sr.err != nil {
			return nil, false, sr.err
		}
		secs = append(secs, s)
		if id == 10 {
			code = &secs[len(secs)-1]
		}
		r.off = s.end
	}
	if code == nil {
		return wasm, false, nil
	}
	grow := importedGlobals + globals
	afterGrow := []byte{0x24} // global.set $grow, global.get $grow
	afterGrow = appendULEB(afterGrow, uint64(grow))
	afterGrow = append(afterGrow, 0x23)
	afterGrow = appendULEB(afterGrow, uint64(grow))
	body, grows, err := growCode(wasm[:code.end], code.start, afterGrow)
	if err != nil || grows == 0 {
		return wasm, false, err
	}

	newGlobal := []byte{0x7f, 0x01, 0x41, 0x00, 0x0b} // (mut i32) (i32.const 0)
	newExport := appendName(nil, growExport)
	newExport = append(newExport, byte(ExternGlobal))
	newExport = appendULEB(newExport, uint64(grow))
	out := make([]byte, 0, len(wasm)+grows*8+64)
	out = append(out, wasm[:8]...)
	pending := map[byte][]byte{6: newGlobal, 7: newExport} // sections the module lacks
	emitPending := func(rank int) {
		for _, id := range []byte{6, 7} {
			if b := pending[id]; b != nil && rank > sectionRank[id] {
				out = appendSection(out, id, appendULEB(nil, 1), b)
				delete(pending, id)
			}
		}
	}
	vec := func(s section, extra []byte) {
		sr := reader{b: wasm[:s.end], off: s.start}
		n := uint64(sr.u32())
		out = appendSection(out, s.id, appendULEB(nil, n+1), wasm[sr.off:s.end], extra)
	}
	for _, s := range secs {
		if s.id == 0 {
			if strings.HasPrefix(s.name, ".debug_") || strings.HasPrefix(s.name, "metadata.code.") ||
				s.name == "sourceMappingURL" || s.name == "external_debug_info" {
				continue
			}
			out = appendSection(out, 0, wasm[s.start:s.end])
			continue
		}
		emitPending(sectionRank[s.id])
		switch s.id {
		case 6, 7:
			vec(s, pending[s.id])
			delete(pending, s.id)
		case 10:
			out = appendSection(out, 10, body)
		default:
			out = appendSection(out, s.id, wasm[s.start:s.end])
		}
	}
	emitPending(1 << 30)
	return out, true, nil
}

// growCode rewrites the code section's bodies with afterGrow after every
// memory.grow, and counts them.
func growCode(b []byte, start int, afterGrow []byte) ([]byte, int, error) {
	r := reader{b: b, off: start}
	n := r.count()
	out := appendULEB(make([]byte, 0, len(b)-start+64), uint64(n))
	grows := 0
	var fn []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		if r.err != nil {
			break
		}
		if uint64(size) > uint64(len(b)-r.off) {
			return nil, 0, &FormatError{Offset: r.off, Msg: "function body runs past the section"}
		}
		end := r.off + int(size)
		body := reader{b: b[:end], off: r.off}
		groups := body.count()
		for g := uint32(0); g < groups && body.err == nil; g++ {
			body.u32()
			body.valtype()
		}
		fn = fn[:0]
		last := r.off
		for !body.done() {
			if body.instr() == instrGrow {
				fn = append(fn, b[last:body.off]...)
				fn = append(fn, afterGrow...)
				last = body.off
				grows++
			}
		}
		if body.err != nil {
			return nil, 0, fmt.Errorf("function %d: %w", i, body.err)
		}
		fn = append(fn, b[last:end]...)
		out = appendULEB(out, uint64(len(fn)))
		out = append(out, fn...)
		r.off = end
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	return out, grows, nil
}
