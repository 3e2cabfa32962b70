//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)))

package wasm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// wtSlotReservation is what one slot of wasmtime's pooling allocator
// reserves, over-estimated: a 4 GiB memory and its guard pages.
const wtSlotReservation = 6 << 30

// wtCheckReservation tries the address space a pool of slots reserves, and
// gives it back: wasmtime aborts the process when it cannot make the pool
// (its C API unwraps the error), so a pool too large for this system
// (RLIMIT_AS, a 39-bit address space) must be refused before.
func wtCheckReservation(slots uint32) error {
	n := uint64(1) << 62 // past any address space: refused below
	if slots < 1<<62/wtSlotReservation {
		n = uint64(slots) * wtSlotReservation
	}
	b, err := unix.Mmap(-1, 0, int(n), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("a pool of %d instance slots needs %d GiB of address space, which this system refuses (%v): lower plugin_runtime.wasmtime_pool_slots, or 0 for no pool", slots, n>>30, err)
	}
	return unix.Munmap(b)
}
