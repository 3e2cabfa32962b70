package wasm

// Memory images: a module's initial memory kept outside the module.
//
// wazero copies a module's active data segments into the memory of every
// new instance, and each compiled module keeps them decoded on the Go heap.
// A Go plugin's segments are about 1.5 MiB and its initial memory 3.5 MiB;
// a pool holds many instances of it. splitData takes the segments out of
// the module and the engine writes the initial memory they make into an
// image (linearmem_unix.go: a sealed memfd), which each instance's memory
// maps copy-on-write: pages are shared until an instance writes them, and
// a page no instance touches costs nothing. wasmtime does the same for its
// own modules (memory-init-cow).
//
// Only memory.init and data.drop name a segment, and a module using them
// must have a data count section. Without one, the active segments are
// removed (a Go plugin has tens of thousands, each a decoded struct in
// wazero). With one, each becomes an empty passive segment, which after
// instantiation behaves as an applied active one, dropped, does:
// memory.init from it traps unless its length is 0, data.drop is
// allowed; segment indices are unchanged.

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
	// One memory, and a memory section: it is the module's own.
	var memSec, dataSec, countSec *section
	for i := range l.secs {
		switch l.secs[i].id {
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
	mr := reader{b: wasm[:memSec.end], off: memSec.start}
	if mr.count() != 1 {
		return nil, nil, 0, false
	}
	lim := mr.limits()
	if mr.err != nil || lim.Is64 || lim.Shared {
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

// i32ConstExpr reads a constant expression; constant is true, with its
// value as an unsigned offset, only for (i32.const N) end.
func (r *reader) i32ConstExpr() (offset uint32, constant bool) {
	if r.byte() != 0x41 {
		return 0, false
	}
	var v int64
	var shift uint
	for {
		c := r.byte()
		if r.err != nil || shift >= 35 {
			return 0, false
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			break
		}
	}
	if r.byte() != 0x0b || v < -1<<31 || v > 1<<31-1 {
		return 0, false
	}
	return uint32(int32(v)), true
}
