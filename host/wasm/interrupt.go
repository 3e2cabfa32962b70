package wasm

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// Deadlines without wazero's context watch.
//
// wazero interrupts a guest at its deadline when the runtime is configured
// WithCloseOnContextDone: its compiler then emits, at every loop header, a
// call out of native code into Go to check whether the module was closed,
// and every call starts a goroutine that watches the context. Measured here
// (BenchmarkDeadlineOverhead), that makes a tight loop ~16 times slower and
// adds ~0.8µs to every hook call.
//
// instrument gets the same guarantees for a fraction of the cost. It adds
// to the module mutable i32 globals $fuel and $stop (exported as
// interruptExport), an i64 global $work (exported as workExport), and a
// function $yield; at every function entry and loop header it inserts
//
//	$fuel -= K; if $fuel <= 0 { call $yield }
//
// a decrement and a branch that stay in native code. K is the number of
// instructions from that point to the next check in the function's text:
// a loop iteration or a call is charged about the instructions it runs, so
// $fuel counts work. Every yieldEvery instructions, $yield adds what was
// spent to $work, refills the fuel, leaves native code for a moment
// (memory.grow 0 is served by Go, so the Go scheduler and garbage collector
// can preempt the goroutine there: native code alone would stall them) and
// traps if $stop is set. The runtime reads $work to charge a hook for the
// work it did rather than the time it took (deadline.go), and sets $stop
// from the timer goroutine when the hook is over its budget; the guest
// traps within yieldEvery instructions and the runtime reports a timeout.
//
// A bulk memory instruction (memory.fill, memory.copy, memory.init) is one
// instruction and may write gigabytes: before each, a call to $bulk, which
// takes the length on top of the stack and returns it, charges
// length / bulkBytesPerInstr more (about what a simple instruction costs
// in memset or memmove bandwidth), so a guest looping over bulk
// operations uses its budget as fast as it uses the CPU.
//
// It also records the result of every memory.grow in a global $grow
// (exported as growExport), so that a guest failing after its memory could
// not grow is reported as a memory failure, not a plain trap.
//
// Existing function, global and type indices are unchanged (everything is
// appended), so names, exports, tables and element segments stay valid.
// DWARF and other custom sections that hold code offsets are dropped, since
// the offsets move; function names still come from the name section.
//
// A module the rewriter does not fully understand (an unknown opcode, GC
// types, no memory) is left alone and runs with wazero's context watch.

// Exports added by instrument: the interruption flag, and the start
// function if the module has one (the runtime calls it under the deadline,
// since during instantiation the flag cannot be set yet).
const (
	interruptExport = "__wasmgate_interrupt"
	growExport      = "__wasmgate_grow" // the result of the last memory.grow
	workExport      = "__wasmgate_work" // instructions run, counted at each yield
	startExport     = "__wasmgate_start"
)

// bulkBytesPerInstr is how many bytes of a bulk memory operation are
// charged as one instruction: a shift, so a power of 2. A simple
// instruction is about a nanosecond of CPU, in which memset and memmove
// move some 16 bytes.
const bulkBytesPerInstr = 16

// yieldEvery is the number of instructions between two exits to Go: a
// yield costs ~25ns, a few thousandths of a ns per instruction, and bounds
// how long a guest can hold off a deadline or a garbage collection to a
// few µs.
const yieldEvery = 10000

// sectionRank orders section ids as the binary format requires.
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

// section is a section of a module: its id, where its content is, and a
// custom section's name.
type section struct {
	id         byte
	start, end int // content
	name       string
}

// layout is what the rewriters (instrument, recordGrows) read of a
// module's sections before they write it again.
type layout struct {
	secs                           []section
	types, importedFuncs, funcs    uint32 // counts: entries of the type section, imported functions, own functions
	importedGlobals, globals, mems uint32 // imported globals, own globals, memories (imported and own)
	startFunc                      uint32
	hasStart, hasFuncs             bool
	code                           int // index of the code section in secs, -1 without one
}

// readLayout reads the sections of a core module. It refuses a module
// that exports one of the reserved names (the rewriter's own), a section
// it does not know, and what it cannot read.
func readLayout(wasm []byte, reserved ...string) (*layout, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || wasm[4] != 1 {
		return nil, &FormatError{Offset: -1, Msg: "not a core module"}
	}
	l := &layout{code: -1}
	r := reader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return nil, r.err
		}
		if uint64(size) > uint64(len(wasm)-r.off) {
			return nil, &FormatError{Offset: r.off, Msg: "section runs past the end"}
		}
		s := section{id: id, start: r.off, end: r.off + int(size)}
		sr := reader{b: wasm[:s.end], off: s.start}
		switch id {
		case 0:
			s.name = sr.name()
		case 1:
			l.types = sr.u32()
		case 2:
			n := sr.count()
			for i := uint32(0); i < n && sr.err == nil; i++ {
				sr.name()
				sr.name()
				switch ExternKind(sr.byte()) {
				case ExternFunc:
					l.importedFuncs++
					sr.u32()
				case ExternTable:
					sr.reftype()
					sr.limits()
				case ExternMemory:
					l.mems++
					sr.limits()
				case ExternGlobal:
					l.importedGlobals++
					sr.valtype()
					sr.byte()
				case ExternTag:
					sr.byte()
					sr.u32()
				default:
					sr.fail("unknown import kind")
				}
			}
		case 3:
			l.funcs, l.hasFuncs = sr.u32(), true
		case 5:
			l.mems += sr.u32()
		case 6:
			l.globals = sr.u32()
		case 7:
			n := sr.count()
			for i := uint32(0); i < n && sr.err == nil; i++ {
				if name := sr.name(); slices.Contains(reserved, name) {
					return nil, fmt.Errorf("the module already exports %q", name)
				}
				kind, index := ExternKind(sr.byte()), sr.u32()
				if kind == ExternFunc && index >= l.importedFuncs+l.funcs {
					// Invalid, and would name a function a rewriter appends.
					return nil, fmt.Errorf("export of function %d, past the module's %d", index, l.importedFuncs+l.funcs)
				}
			}
		case 8:
			l.startFunc, l.hasStart = sr.u32(), true
			if l.startFunc >= l.importedFuncs+l.funcs {
				return nil, fmt.Errorf("start function %d, past the module's %d", l.startFunc, l.importedFuncs+l.funcs)
			}
		case 9:
			if err := checkElements(&sr, l.importedFuncs+l.funcs); err != nil {
				return nil, err
			}
		case 10:
			l.code = len(l.secs)
		default:
			if _, ok := sectionRank[id]; !ok {
				return nil, fmt.Errorf("unknown section %d", id)
			}
		}
		if sr.err != nil {
			return nil, sr.err
		}
		l.secs = append(l.secs, s)
		r.off = s.end
	}
	return l, nil
}

// checkElements reads an element section and refuses a function index
// past funcs (invalid, and it would name a function a rewriter appends),
// whether listed or in a ref.func of an expression.
func checkElements(r *reader, funcs uint32) error {
	n := r.count()
	for i := uint32(0); i < n && r.err == nil; i++ {
		flags := r.u32()
		if flags > 7 {
			r.fail("bad element segment flags")
			break
		}
		if flags&3 == 2 {
			r.u32() // table index
		}
		if flags&1 == 0 {
			if err := checkConstExpr(r, funcs); err != nil { // offset
				return err
			}
		}
		if flags&3 != 0 {
			r.byte() // element kind, or reference type
		}
		m := r.count()
		for j := uint32(0); j < m && r.err == nil; j++ {
			if flags&4 != 0 {
				if err := checkConstExpr(r, funcs); err != nil {
					return err
				}
			} else if f := r.u32(); r.err == nil && f >= funcs {
				return fmt.Errorf("element segment %d: function %d, past the module's %d", i, f, funcs)
			}
		}
	}
	return r.err
}

// checkConstExpr reads a constant expression to its end, refusing a
// ref.func past funcs.
func checkConstExpr(r *reader, funcs uint32) error {
	for r.err == nil {
		if r.off < len(r.b) && r.b[r.off] == 0x0b {
			r.off++
			return nil
		}
		if r.instr() == instrFunc && r.err == nil && r.imm >= funcs {
			return fmt.Errorf("ref.func %d, past the module's %d functions", r.imm, funcs)
		}
	}
	return r.err
}

// sectionEdit is what a rewriter changes in the section id: the section
// dropped (drop), its content replaced by content (replace), or else add
// more entries, encoded in entries, appended to the vector section's; a
// vector section the module lacks is then created in its place if create.
type sectionEdit struct {
	id      byte
	drop    bool
	replace bool
	content []byte
	add     uint64
	entries []byte
	create  bool
}

// write writes the module again, with capacity bytes reserved: its header,
// then its sections in their order, edited, without the custom sections
// that hold code offsets (they move).
func (l *layout) write(wasm []byte, capacity int, edits []sectionEdit) []byte {
	out := make([]byte, 0, capacity)
	out = append(out, wasm[:8]...)
	edit := map[byte]sectionEdit{}
	var pending []byte // sections the module lacks, created in their place, by rank
	for _, e := range edits {
		edit[e.id] = e
		if e.create {
			pending = append(pending, e.id)
		}
	}
	slices.SortFunc(pending, func(a, b byte) int { return sectionRank[a] - sectionRank[b] })
	emitPending := func(rank int) {
		for len(pending) > 0 && rank > sectionRank[pending[0]] {
			e := edit[pending[0]]
			out = appendSection(out, e.id, appendULEB(nil, e.add), e.entries)
			pending = pending[1:]
		}
	}
	for _, s := range l.secs {
		if s.id == 0 {
			if strings.HasPrefix(s.name, ".debug_") || strings.HasPrefix(s.name, "metadata.code.") ||
				s.name == "sourceMappingURL" || s.name == "external_debug_info" {
				continue
			}
			out = appendSection(out, 0, wasm[s.start:s.end])
			continue
		}
		emitPending(sectionRank[s.id])
		e, ok := edit[s.id]
		switch {
		case !ok:
			out = appendSection(out, s.id, wasm[s.start:s.end])
		case e.drop:
		case e.replace:
			out = appendSection(out, s.id, e.content)
		default: // more entries after the old ones
			sr := reader{b: wasm[:s.end], off: s.start}
			n := uint64(sr.u32())
			out = appendSection(out, s.id, appendULEB(nil, n+e.add), wasm[sr.off:s.end], e.entries)
			pending = slices.DeleteFunc(pending, func(id byte) bool { return id == s.id })
		}
	}
	emitPending(1 << 30)
	return out
}

// instrument returns wasm with interruption checks, or an error saying why
// the module cannot be instrumented.
func instrument(wasm []byte) ([]byte, error) { return rewrite(wasm, true) }

// rewrite is instrument; tests pass needMemory false to exercise the
// rewriter on modules without memory, whose $yield then cannot leave
// native code.
func rewrite(wasm []byte, needMemory bool) ([]byte, error) {
	l, err := readLayout(wasm, interruptExport, growExport, workExport, startExport)
	if err != nil {
		return nil, err
	}
	types, importedFuncs, funcs := l.types, l.importedFuncs, l.funcs
	importedGlobals, globals, mems := l.importedGlobals, l.globals, l.mems
	switch {
	case mems == 0 && needMemory:
		return nil, fmt.Errorf("no memory to yield with")
	case !l.hasFuncs || l.code < 0 || funcs == 0:
		return nil, fmt.Errorf("no functions")
	}

	// What is added, all at the end of its index space.
	var (
		yieldType = types
		bulkType  = types + 1
		yieldFunc = importedFuncs + funcs
		bulkFunc  = yieldFunc + 1
		fuel      = importedGlobals + globals
		stop      = fuel + 1
		grow      = fuel + 2
		work      = fuel + 3
	)
	// check charges k instructions.
	check := func(dst []byte, k uint32) []byte {
		dst = append(dst, 0x23) // global.get $fuel
		dst = appendULEB(dst, uint64(fuel))
		dst = append(dst, 0x41) // i32.const k
		dst = appendSLEB(dst, int64(k))
		dst = append(dst, 0x6b, 0x24) // i32.sub, global.set
		dst = appendULEB(dst, uint64(fuel))
		dst = append(dst, 0x23) // global.get $fuel
		dst = appendULEB(dst, uint64(fuel))
		dst = append(dst, 0x41, 0x00, 0x4c, 0x04, 0x40, 0x10) // i32.const 0, i32.le_s, if, call
		dst = appendULEB(dst, uint64(yieldFunc))
		return append(dst, 0x0b) // end
	}

	var yield []byte            // the body of $yield
	yield = append(yield, 0x00) // no locals
	yield = append(yield, 0x23) // global.get $work
	yield = appendULEB(yield, uint64(work))
	yield = append(yield, 0x41) // i32.const yieldEvery
	yield = appendSLEB(yield, yieldEvery)
	yield = append(yield, 0x23) // global.get $fuel
	yield = appendULEB(yield, uint64(fuel))
	yield = append(yield, 0x6b, 0xac, 0x7c, 0x24) // i32.sub, i64.extend_i32_s, i64.add, global.set $work
	yield = appendULEB(yield, uint64(work))
	yield = append(yield, 0x41) // i32.const yieldEvery
	yield = appendSLEB(yield, yieldEvery)
	yield = append(yield, 0x24) // global.set $fuel
	yield = appendULEB(yield, uint64(fuel))
	if mems > 0 {
		yield = append(yield, 0x41, 0x00, 0x40, 0x00, 0x1a) // memory.grow 0: a trip through Go; drop
	}
	yield = append(yield, 0x23) // global.get $stop
	yield = appendULEB(yield, uint64(stop))
	yield = append(yield, 0x04, 0x40, 0x00, 0x0b, 0x0b) // if unreachable end; end

	// $bulk(n) charges n bytes and returns n.
	var bulk []byte
	bulk = append(bulk, 0x00) // no locals
	bulk = append(bulk, 0x23) // global.get $fuel
	bulk = appendULEB(bulk, uint64(fuel))
	bulk = append(bulk, 0x20, 0x00, 0x41) // local.get 0, i32.const log2(bulkBytesPerInstr)
	bulk = appendSLEB(bulk, int64(bits.TrailingZeros(bulkBytesPerInstr)))
	bulk = append(bulk, 0x76, 0x6b, 0x24) // i32.shr_u, i32.sub, global.set $fuel
	bulk = appendULEB(bulk, uint64(fuel))
	bulk = append(bulk, 0x23) // global.get $fuel
	bulk = appendULEB(bulk, uint64(fuel))
	bulk = append(bulk, 0x41, 0x00, 0x4c, 0x04, 0x40, 0x10) // i32.const 0, i32.le_s, if, call $yield
	bulk = appendULEB(bulk, uint64(yieldFunc))
	bulk = append(bulk, 0x0b, 0x20, 0x00, 0x0b) // end, local.get 0, end
	callBulk := appendULEB([]byte{0x10}, uint64(bulkFunc))

	newType := []byte{0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f} // () -> (), (i32) -> i32
	newFunc := appendULEB(nil, uint64(yieldType))
	newFunc = appendULEB(newFunc, uint64(bulkType))
	newGlobals := []byte{0x7f, 0x01, 0x41}
	newGlobals = appendSLEB(newGlobals, yieldEvery)
	newGlobals = append(newGlobals, 0x0b, 0x7f, 0x01, 0x41, 0x00, 0x0b) // $stop = 0
	newGlobals = append(newGlobals, 0x7f, 0x01, 0x41, 0x00, 0x0b)       // $grow = 0
	newGlobals = append(newGlobals, 0x7e, 0x01, 0x42, 0x00, 0x0b)       // $work = 0 (i64)
	newExport := appendExport(nil, interruptExport, ExternGlobal, stop)
	newExport = appendExport(newExport, growExport, ExternGlobal, grow)
	newExport = appendExport(newExport, workExport, ExternGlobal, work)
	newExports := uint64(3)
	afterGrow := afterGrowCode(grow)
	if l.hasStart {
		newExport = appendExport(newExport, startExport, ExternFunc, l.startFunc)
		newExports++
	}

	code := l.secs[l.code]
	body, err := instrumentCode(wasm[:code.end], code.start, l.own(), check, afterGrow, callBulk, yield, bulk)
	if err != nil {
		return nil, err
	}
	return l.write(wasm, len(wasm)+len(wasm)/4+64, []sectionEdit{
		{id: 1, add: 2, entries: newType, create: true},
		{id: 3, add: 2, entries: newFunc},
		{id: 6, add: 4, entries: newGlobals, create: true},
		{id: 7, add: newExports, entries: newExport, create: true},
		{id: 8, drop: true}, // exported as startExport instead
		{id: 10, replace: true, content: body},
	}), nil
}

// ownIndices are a module's counts of types, globals and functions,
// imports included. An instruction naming one past them is invalid, and
// would name what a rewriter appends there (a guest refilling its fuel,
// calling $yield or $bulk): refused.
type ownIndices struct{ types, globals, funcs uint32 }

func (l *layout) own() ownIndices {
	return ownIndices{types: l.types, globals: l.importedGlobals + l.globals, funcs: l.importedFuncs + l.funcs}
}

// check refuses the index the instruction of function fn that instr just
// read (kind, r.imm) names, if it is past the module's own.
func (o ownIndices) check(fn uint32, kind int, imm uint32) error {
	what, count := "", uint32(0)
	switch kind {
	case instrGlobal:
		what, count = "global", o.globals
	case instrFunc:
		what, count = "function", o.funcs
	case instrType:
		what, count = "type", o.types
	default:
		return nil
	}
	if imm >= count {
		return fmt.Errorf("function %d: %s %d does not exist (the module has %d)", fn, what, imm, count)
	}
	return nil
}

// instrumentCode rewrites the code section's bodies and appends the
// bodies of the functions added (yield's, bulk's). check appends the check
// that charges k instructions; beforeBulk goes before every bulk memory
// instruction. Code naming an index past own is refused.
func instrumentCode(b []byte, start int, own ownIndices, check func(dst []byte, k uint32) []byte, afterGrow, beforeBulk []byte, added ...[]byte) ([]byte, error) {
	r := reader{b: b, off: start}
	n := r.count()
	out := appendULEB(make([]byte, 0, len(b)-start+int(n)*32), uint64(n)+uint64(len(added)))
	var costs []uint32 // of the current function's checks
	out, err := rewriteBodies(&r, n, out, func(i uint32, body reader, fn []byte) ([]byte, error) {
		// The locals are copied as they are; the entry check follows them.
		// First pass: the instructions from each check (entry, loop
		// headers) to the next, in the text.
		costs = costs[:0]
		scan, n := body, uint32(0)
		for !scan.done() {
			n++
			kind := scan.instr()
			if kind == instrLoop {
				costs, n = append(costs, max(n, 1)), 0
			}
			if err := own.check(i, kind, scan.imm); err != nil {
				return nil, err
			}
		}
		if scan.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, scan.err)
		}
		costs = append(costs, max(n, 1))
		fn = check(fn, costs[0])
		last, site := body.off, 1
		for !body.done() {
			at := body.off
			switch body.instr() {
			case instrLoop:
				fn = append(fn, b[last:body.off]...)
				fn = check(fn, costs[site])
				site++
			case instrGrow:
				fn = append(fn, b[last:body.off]...)
				fn = append(fn, afterGrow...)
			case instrBulk:
				fn = append(fn, b[last:at]...)
				fn = append(fn, beforeBulk...)
				last = at // the instruction itself follows
				continue
			default:
				continue
			}
			last = body.off
		}
		if body.err != nil {
			return nil, fmt.Errorf("function %d: %w", i, body.err)
		}
		return append(fn, b[last:len(body.b)]...), nil
	})
	if err != nil {
		return nil, err
	}
	for _, fn := range added {
		out = appendULEB(out, uint64(len(fn)))
		out = append(out, fn...)
	}
	return out, nil
}

// rewriteBodies appends to out the n function bodies of a code section, r
// standing at the first, each as edit rewrites it, with its new size. edit
// gets the function's index, a reader at its first instruction (its end
// is the body's) and fn holding the body's locals, to which it appends the
// rest.
func rewriteBodies(r *reader, n uint32, out []byte, edit func(i uint32, body reader, fn []byte) ([]byte, error)) ([]byte, error) {
	var fn []byte
	for i := uint32(0); i < n && r.err == nil; i++ {
		size := r.u32()
		if r.err != nil {
			break
		}
		if uint64(size) > uint64(len(r.b)-r.off) {
			return nil, &FormatError{Offset: r.off, Msg: "function body runs past the section"}
		}
		end := r.off + int(size)
		body := reader{b: r.b[:end], off: r.off}
		groups := body.count()
		for g := uint32(0); g < groups && body.err == nil; g++ {
			body.u32()
			body.valtype()
		}
		var err error
		if fn, err = edit(i, body, append(fn[:0], r.b[r.off:body.off]...)); err != nil {
			return nil, err
		}
		out = appendULEB(out, uint64(len(fn)))
		out = append(out, fn...)
		r.off = end
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// What instr saw, where instrument adds code after it.
const (
	instrOther  = iota
	instrLoop   // the reader stands at the loop's first instruction
	instrGrow   // after a memory.grow
	instrGlobal // global.get or global.set of global r.imm
	instrFunc   // call, return_call or ref.func of function r.imm
	instrBulk   // memory.init, memory.copy or memory.fill (sub-opcode r.imm): its length on top of the stack
	instrType   // call_indirect or return_call_indirect of type r.imm
)

// instr skips one instruction and its immediates and says whether it was a
// loop or a memory.grow.
func (r *reader) instr() int {
	op := r.byte()
	switch {
	case op == 0x03: // loop
		r.blocktype()
		return instrLoop
	case op == 0x40: // memory.grow
		r.u32()
		return instrGrow
	case op == 0x02 || op == 0x04 || op == 0x06: // block, if, try
		r.blocktype()
	case op == 0x23 || op == 0x24: // global.get, global.set
		r.imm = r.u32()
		return instrGlobal
	case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
		r.imm = r.u32()
		return instrFunc
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0a || op == 0x0b || op == 0x0f ||
		op == 0x19 || op == 0x1a || op == 0x1b || op == 0xd1 || op == 0xd3 || op == 0xd4:
		// unreachable nop else throw_ref end return catch_all drop select
		// ref.is_null ref.eq ref.as_non_null
	case op == 0x07 || op == 0x08 || op == 0x09 || op == 0x0c || op == 0x0d || op == 0x10 ||
		op == 0x12 || op == 0x14 || op == 0x15 || op == 0x18 || op == 0xd2 || op == 0xd5 || op == 0xd6:
		// catch throw rethrow br br_if call return_call call_ref
		// return_call_ref delegate ref.func br_on_null br_on_non_null
		r.u32()
	case op == 0x0e: // br_table
		n := r.count()
		for i := uint32(0); i <= n && r.err == nil; i++ {
			r.u32()
		}
	case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
		r.imm = r.u32()
		r.u32()
		return instrType
	case op == 0x1c: // select t*
		n := r.count()
		for i := uint32(0); i < n && r.err == nil; i++ {
			r.valtype()
		}
	case op == 0x1f: // try_table
		r.blocktype()
		n := r.count()
		for i := uint32(0); i < n && r.err == nil; i++ {
			switch r.byte() {
			case 0x00, 0x01: // catch, catch_ref: tag, label
				r.u32()
				r.u32()
			case 0x02, 0x03: // catch_all, catch_all_ref: label
				r.u32()
			default:
				r.fail("bad catch clause")
			}
		}
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x3f: // memory.size
		r.u32()
	case op == 0x41: // i32.const
		r.sleb(32)
	case op == 0x42: // i64.const
		r.sleb(64)
	case op == 0x43: // f32.const
		r.skip(4)
	case op == 0x44: // f64.const
		r.skip(8)
	case op >= 0x45 && op <= 0xc4: // numeric, sign extension
	case op == 0xd0: // ref.null
		r.sleb(33)
	case op == 0xfc:
		if r.prefixFC() {
			return instrBulk
		}
	case op == 0xfd:
		r.prefixFD()
	case op == 0xfe:
		sub := r.u32()
		if sub == 0x03 { // atomic.fence
			r.byte()
		} else if sub <= 0x4e {
			r.memarg()
		} else {
			r.fail("unknown atomic opcode")
		}
	default:
		if r.err == nil {
			r.fail(fmt.Sprintf("unsupported opcode 0x%02x", op))
		}
	}
	return instrOther
}

// prefixFC skips a 0xfc instruction and reports whether it is a bulk
// memory one, whose length is on top of the stack; r.imm is then its
// sub-opcode (8 memory.init, 10 memory.copy, 11 memory.fill).
func (r *reader) prefixFC() (bulk bool) {
	sub := r.u32()
	r.imm = sub
	switch {
	case sub <= 7: // saturating truncations
	case sub == 8 || sub == 10: // memory.init data mem, memory.copy mem mem
		r.u32()
		r.u32()
		return r.err == nil
	case sub == 11: // memory.fill mem
		r.u32()
		return r.err == nil
	case sub == 9 || sub == 13 || sub == 15 || sub == 16 || sub == 17:
		// data.drop, elem.drop, table.grow/size/fill
		r.u32()
	case sub == 12 || sub == 14: // table.init, table.copy
		r.u32()
		r.u32()
	default:
		r.fail(fmt.Sprintf("unsupported opcode 0xfc %d", sub))
	}
	return false
}

func (r *reader) prefixFD() {
	switch sub := r.u32(); {
	case sub <= 11 || sub == 92 || sub == 93: // v128 loads and store
		r.memarg()
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.byte()
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.byte()
	case sub <= 0x113: // everything else has no immediate (relaxed SIMD included)
	default:
		r.fail(fmt.Sprintf("unsupported opcode 0xfd %d", sub))
	}
}

// memarg reads an alignment (with the multi-memory flag) and an offset.
func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 {
		r.u32() // memory index
	}
	r.uleb(64)
}

// blocktype reads an empty type, a value type or a type index.
func (r *reader) blocktype() {
	if r.off < len(r.b) {
		switch c := r.b[r.off]; {
		case c == 0x40 || isShortValType(c):
			r.off++
			return
		case c == 0x63 || c == 0x64:
			r.valtype()
			return
		}
	}
	r.sleb(33)
}

// valtype reads a value type, including (ref null? heaptype).
func (r *reader) valtype() {
	switch t := r.byte(); {
	case isShortValType(t):
	case t == 0x63 || t == 0x64:
		r.sleb(33)
	default:
		if r.err == nil {
			r.fail(fmt.Sprintf("unsupported value type 0x%02x", t))
		}
	}
}

func (r *reader) reftype() { r.valtype() }

// isShortValType reports a one-byte value type: numeric, vector, or an
// abstract reference shorthand (funcref, externref, exnref, anyref...).
func isShortValType(c byte) bool {
	return c >= 0x7b && c <= 0x7f || c >= 0x69 && c <= 0x74
}

func (r *reader) skip(n int) {
	if r.err == nil && len(r.b)-r.off < n {
		r.fail("unexpected end")
		return
	}
	r.off += n
}

// sleb reads a signed LEB128 of at most bits bits, so at most
// ceil(bits/7) bytes (most callers only skip it).
func (r *reader) sleb(bits uint) int64 {
	var v int64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits {
			r.fail("integer too long")
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift+7 < 64 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			return v
		}
	}
}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 || v == -1 && c&0x40 != 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	b = appendULEB(b, uint64(len(s)))
	return append(b, s...)
}

// appendExport appends an export entry: name, kind, index.
func appendExport(b []byte, name string, kind ExternKind, index uint32) []byte {
	b = appendName(b, name)
	b = append(b, byte(kind))
	return appendULEB(b, uint64(index))
}

// afterGrowCode is the code inserted after every memory.grow of the guest:
// $grow (global grow) = the result, kept on the stack. A trap right after
// a failed grow (-1) is a memory failure.
func afterGrowCode(grow uint32) []byte {
	b := []byte{0x24} // global.set $grow
	b = appendULEB(b, uint64(grow))
	b = append(b, 0x23) // global.get $grow
	return appendULEB(b, uint64(grow))
}

// appendSection appends a section made of parts.
func appendSection(out []byte, id byte, parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out = append(out, id)
	out = appendULEB(out, uint64(n))
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
