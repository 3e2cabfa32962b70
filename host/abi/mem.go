package abi

import "math"

// The engine hands every parameter and result as a uint64 slot (wazero's
// api.GoFunction convention): an i32 sits in the low 32 bits, an f64 as its
// IEEE 754 bits.

func i32(v uint64) int32   { return int32(uint32(v)) }
func f64(v uint64) float64 { return math.Float64frombits(v) }

// ret32 stores an i32 result.
func ret32(stack []uint64, v int32) { stack[0] = uint64(uint32(v)) }

// ret64 stores an i64 result.
func ret64(stack []uint64, v int64) { stack[0] = uint64(v) }

// size returns n as an i32 result, saturating: no buffer in a 32-bit guest
// can hold more, so a guest never sees a negative (error-looking) size.
func size(n int) int32 {
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(n)
}

// guest returns the guest bytes named by an (i32 ptr, i32 len) pair. The
// pointer is a u32; the length must not be negative, and the range must lie
// inside the guest's memory with its end representable as a u32 (so that no
// Memory doing 32-bit arithmetic can wrap; only a full 4 GiB memory loses
// its last byte), else the function does not run: it panics with
// OutOfBounds, which the runtime turns into a trap. An empty range is valid
// whatever the pointer, since nothing is touched.
func (c *Call) guest(fn string, ptrSlot, lenSlot uint64) []byte {
	ptr, n := uint32(ptrSlot), i32(lenSlot)
	if n == 0 {
		return nil
	}
	if n < 0 || uint64(ptr)+uint64(n) > math.MaxUint32 || c.Mem == nil {
		panic(OutOfBounds{Func: fn, Ptr: uint64(ptr), Len: uint64(uint32(n))})
	}
	b, ok := c.Mem.Read(ptr, uint32(n))
	if !ok || len(b) != int(n) {
		panic(OutOfBounds{Func: fn, Ptr: uint64(ptr), Len: uint64(uint32(n))})
	}
	return b
}

// writeOut copies data to the guest buffer dst, as much as fits, and returns
// the full size: the buffer convention of sdk/ABI.md section 3.
func writeOut(dst, data []byte) int32 {
	copy(dst, data)
	return size(len(data))
}
