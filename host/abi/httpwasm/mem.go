package httpwasm

import (
	"math"
	"strconv"

	"github.com/wasmgate/wasmgate/host/abi"
)

// Trap is the panic of an http_handler function the guest misused: a
// buffer outside its memory, a call the ABI forbids at this point of the
// request, a value the gateway cannot send. The ABI has no error codes, so
// a misuse can only fail the hook. Trap is an error: both engines recover a
// host function's panic as a trap of the guest, and an error keeps its
// message (wazero wraps it, so errors.As finds it).
type Trap struct {
	Func string // the http_handler function, e.g. "set_uri"
	Msg  string
}

func (t Trap) Error() string { return ModuleName + "." + t.Func + ": " + t.Msg }

// trap fails the calling hook.
func trap(fn, msg string) { panic(Trap{Func: fn, Msg: msg}) }

// read returns the guest bytes [ptr, ptr+n), a view of the guest's memory.
// Out of bounds, or with an end that is not a u32 (so that no Memory doing
// 32-bit arithmetic can wrap), it traps. n == 0 never traps: nothing is
// touched.
func read(c *abi.Call, fn string, ptr, n uint32) []byte {
	if n == 0 {
		return nil
	}
	if uint64(ptr)+uint64(n) > math.MaxUint32 || c.Mem == nil {
		outOfBounds(fn, ptr, n)
	}
	b, ok := c.Mem.Read(ptr, n)
	if !ok || len(b) != int(n) {
		outOfBounds(fn, ptr, n)
	}
	return b
}

func outOfBounds(fn string, ptr, n uint32) {
	trap(fn, "out of bounds (ptr="+strconv.FormatUint(uint64(ptr), 10)+", len="+strconv.FormatUint(uint64(n), 10)+")")
}

// writeIfFits implements http-wasm's BufLimit: v is copied to buf only when
// all of it fits in limit bytes, and the result is its full length either
// way, for the guest to retry with a larger buffer. Only the bytes written
// are bounds-checked, as the reference host does; an empty v writes nothing.
func writeIfFits[T ~string | ~[]byte](c *abi.Call, fn string, buf, limit uint32, v T) uint32 {
	n := sat32(len(v))
	if n == 0 || n > limit {
		return n
	}
	copy(read(c, fn, buf, n), v)
	return n
}

// sat32 is n as a u32 length, saturating: no guest buffer is larger, so a
// saturated length is always "does not fit".
func sat32[N int | uint64](n N) uint32 {
	if uint64(n) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n)
}

// The engine hands every parameter and result as a uint64 slot (wazero's
// api.GoFunction convention): an i32 sits in the low 32 bits.

func u32(v uint64) uint32 { return uint32(v) }

func ret32(stack []uint64, v uint32) { stack[0] = uint64(v) }

func ret64(stack []uint64, v uint64) { stack[0] = v }

// countLen packs a CountLen or an EOFLen: hi in the high word, lo in the low.
func countLen(hi, lo uint32) uint64 { return uint64(hi)<<32 | uint64(lo) }
