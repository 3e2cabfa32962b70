package wasm

// Memory images: a module's initial memory kept outside the module.
//
// wazero copies a module's active data segments into the memory of every
// new instance, and each compiled module keeps them decoded on the Go heap.
// A Go plugin's segments are 0.7–1.5 MiB in tens of thousands of pieces,
// its initial memory 2.3–3.5 MiB, and a pool holds many instances of it.
// splitData takes the segments out of the module and the engine writes
// the initial memory they make into an image (memimage_linux.go: a sealed
// memfd), which each instance's memory maps copy-on-write: pages are
// shared until an instance writes them, and a page no instance touches
// costs nothing. wasmtime does the same for its own modules
// (memory-init-cow).
//
// Only memory.init and data.drop name a segment, and a module using them
// must have a data count section. Without one, the active segments are
// removed. With one, each becomes an empty passive segment, keeping
// every index; data.drop of it is allowed as before. memory.init from an
// active segment would differ (the spec drops an applied active segment,
// wazero keeps its bytes), so a module with a data count section and any
// memory.init is not split.

// minImageBytes is the least data worth an image: below it, copying the
// segments costs an instance less than mapping an image.
const minImageBytes = 64 << 10

// dataSegment is where an active segment's bytes go in the memory.
type dataSegment struct {
	offset uint32
	bytes  []byte
}

// splitData returns wasm with its active data segments emptied, the
// segments, and the size in bytes of the memory they initialise (the
// memory's minimum). ok is false, and nothing is changed, unless the
// module has exactly one memory of its own (32-bit, not shared) and every
// active segment has a constant offset and lies within the minimum: a
// segment past it must still fail instantiation as it does in wazero.
func splitData(wasm []byte) (code []byte, segs []dataSegment, size uint64, ok bool) {
	l, err := readLayout(wasm)
	if err != nil || l.mems != 1 {
		return nil, nil, 0, false
	}
	// One memory, and a memory section: it is the module's own. The
	// sections must be in order, each once: splitting an invalid module
	// (a second data section, one before the code) could make it valid.
	var memSec, dataSec, countSec *section
	rank := 0
	for i := range l.secs {
		id := l.secs[i].id
		if id == 0 {
			continue
		}
		if sectionRank[id] <= rank {
			return nil, nil, 0, false
		}
		rank = sectionRank[id]
		switch id {
		case 5:
			memSec = &l.secs[i]
		case 11:
			dataSec = &l.secs[i]
		case 12:
			countSec = &l.secs[i]
		}
	}
	if memSec == nil || dataSec == nil {
		return nil, nil, 0, false
	}
	if countSec != nil && (l.code < 0 || usesMemoryInit(wasm, l.secs[l.code])) {
		return nil, nil, 0, false
	}
	mr := reader{b: wasm[:memSec.end], off: memSec.start}
	if mr.count() != 1 {
		return nil, nil, 0, false
	}
	lim := mr.limits()
	if mr.err != nil || lim.Is64 || lim.Shared || lim.Min > 1<<16 {
		return nil, nil, 0, false
	}
	size = uint64(lim.Min) << 16

	r := reader{b: wasm[:dataSec.end], off: dataSec.start}
	n := r.count()
	var kept []byte // the segments left, after their count
	var left uint64
	total := 0
	for i := uint32(0); i < n && r.err == nil; i++ {
		start := r.off
		switch flags := r.u32(); flags {
		case 1: // passive: kept as it is
			r.skip(int(r.count()))
			kept = append(kept, wasm[start:r.off]...)
			left++
			continue
		case 0:
		case 2:
			if r.u32() != 0 {
				return nil, nil, 0, false
			}
		default:
			return nil, nil, 0, false
		}
		offset, constant := r.i32ConstExpr()
		length := r.count()
		if r.err != nil || !constant || uint64(offset)+uint64(length) > size {
			return nil, nil, 0, false
		}
		segs = append(segs, dataSegment{offset: offset, bytes: wasm[r.off : r.off+int(length)]})
		r.off += int(length)
		total += int(length)
		if countSec != nil {
			kept = append(kept, 0x01, 0x00) // passive, no bytes
			left++
		}
	}
	if r.err != nil || r.off != dataSec.end || total < minImageBytes {
		return nil, nil, 0, false
	}
	// The sections again, the data section's emptied; custom sections
	// stay (the code section does not move, so DWARF stays true).
	out := make([]byte, 0, len(wasm)-total+len(kept)+16)
	out = append(out, wasm[:8]...)
	for _, s := range l.secs {
		switch {
		case s.id != 11:
			out = appendSection(out, s.id, wasm[s.start:s.end])
		case left > 0:
			out = appendSection(out, 11, appendULEB(nil, left), kept)
		}
	}
	return out, segs, size, true
}

// usesMemoryInit reports whether the code section s has a memory.init, or
// cannot be read.
func usesMemoryInit(wasm []byte, s section) bool {
	r := reader{b: wasm[:s.end], off: s.start}
	found := false
	_, err := rewriteBodies(&r, r.count(), nil, func(_ uint32, body reader, _ []byte) ([]byte, error) {
		for !body.done() && !found {
			found = body.instr() == instrBulk && body.imm == 8
		}
		return nil, body.err
	})
	return found || err != nil
}

// i32ConstExpr reads a constant expression; constant is true, with its
// value as an unsigned offset, only for (i32.const N) end.
func (r *reader) i32ConstExpr() (offset uint32, constant bool) {
	if r.byte() != 0x41 {
		return 0, false
	}
	v := r.sleb(32)
	if r.err != nil || r.byte() != 0x0b || v < -1<<31 || v > 1<<31-1 {
		return 0, false
	}
	return uint32(int32(v)), true
}
