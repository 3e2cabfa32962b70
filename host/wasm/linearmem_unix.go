//go:build unix

package wasm

import (
	"context"
	"sync"
	"unsafe"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// Linear memories outside the Go heap (wazero's experimental allocator).
//
// wazero's default linear memory is a Go slice: each memory.grow copies it
// into a larger one, and the Go heap, whose collector aims at twice the
// live heap, then holds twice the guests' memory; a closed instance's
// memory goes back to the system only when the scavenger gets to it. A
// Go plugin's instance is megabytes, and a pool holds many.
//
// An mmapMemory instead reserves the memory's maximum (the binding's cap)
// as address space, makes pages usable as the guest grows (in place: no
// copy, and the base never moves), and maps its module's memory image
// (memimage.go) copy-on-write where it has one. A released memory without
// an image becomes a spare, cleared, that the next instance takes: a
// fresh instance then costs neither a Go allocation and its collection
// nor mmap, munmap and page faults (system calls that flush the other
// CPUs' TLBs: tens of µs in a VM); spares keep at most spareBytes
// resident.
//
// wazero frees a memory when it closes the module, which may happen from
// another goroutine while the guest still runs (a context-interrupted
// call): Free only marks it (and drops an image's private pages; a late
// access reads the image), and the memory is cleared, kept or unmapped by
// the instance's owner (release) once the guest is known to have
// returned, never before. Nor may host code keep a view of a closed
// instance's memory (its abi.Call.Mem, a slice Read returned): once the
// memory is a spare, those bytes are the next instance's.
type mmapMemory struct {
	populate  bool // fault pages in as they are committed (long-lived instances)
	imaged    bool // the start maps a memory image (not kept as a spare)
	mu        sync.Mutex
	buf       []byte // the whole reservation
	committed int    // bytes readable and writable from the start
	freed     bool
	unmapped  bool
}

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14).
const madvPopulateWrite = 23

// mmapPage is the granularity of commits.
var mmapPage = unix.Getpagesize()

// spareBytes bounds the memory released reservations keep resident for
// the next instances. A fresh instance that takes a spare costs no mmap,
// munmap or page faults (system calls that flush other CPUs' TLBs, tens
// of µs in a VM), only the clearing of what the last one committed.
const spareBytes = 16 << 20

// spareCount bounds the spares of one size, each a reservation of address
// space (up to 4 GiB) and a mapping, whatever it keeps resident.
const spareCount = 64

// spare are released reservations without a memory image, zeroed, by
// size.
var spare = struct {
	mu   sync.Mutex
	bufs map[int][]spareBuf
	kept int // bytes committed in bufs
}{bufs: make(map[int][]spareBuf)}

type spareBuf struct {
	buf       []byte
	committed int // readable and writable from the start, all zero
}

// newMmapMemory reserves max bytes, or takes a spare reservation of that
// size; nil when the system refuses.
func newMmapMemory(max uint64) *mmapMemory {
	if max == 0 || max > 1<<32 {
		max = 1 << 32
	}
	spare.mu.Lock()
	if list := spare.bufs[int(max)]; len(list) > 0 {
		b := list[len(list)-1]
		spare.bufs[int(max)] = list[:len(list)-1]
		spare.kept -= b.committed
		spare.mu.Unlock()
		return &mmapMemory{buf: b.buf, committed: b.committed}
	}
	spare.mu.Unlock()
	buf, err := unix.Mmap(-1, 0, int(max), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	return &mmapMemory{buf: buf}
}

// Reallocate implements experimental.LinearMemory: the memory, size bytes
// long, at the same address as before.
func (m *mmapMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed || size > uint64(len(m.buf)) {
		return nil
	}
	if n := int((size + uint64(mmapPage) - 1) / uint64(mmapPage) * uint64(mmapPage)); n > m.committed {
		grown := m.buf[m.committed:n]
		if unix.Mprotect(grown, unix.PROT_READ|unix.PROT_WRITE) != nil {
			return nil
		}
		// Fault the pages in with one call rather than one fault each (a
		// Go plugin's first megabytes cost milliseconds of faults); where
		// the system cannot, the guest faults them in as it goes.
		if m.populate {
			_ = unix.Madvise(grown, madvPopulateWrite)
		}
		m.committed = n
	}
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory: the pages go back to the
// system; the range stays mapped until release.
func (m *mmapMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.freed || m.unmapped {
		return
	}
	m.freed = true
	// A memory that may become a spare keeps its pages: release clears
	// them, cheaper than faulting them in again.
	if m.imaged && m.committed > 0 {
		_ = unix.Madvise(m.buf[:m.committed], unix.MADV_DONTNEED)
	}
}

// release gives the memory up: its reservation is cleared and kept as a
// spare, unless it maps an image or the spares hold spareBytes already,
// and unmapped otherwise. Its instance's guest must not run any more.
func (m *mmapMemory) release() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unmapped {
		return
	}
	m.unmapped, m.freed = true, true
	buf := m.buf
	m.buf = nil
	if !m.imaged {
		spare.mu.Lock()
		if spare.kept+m.committed <= spareBytes && len(spare.bufs[len(buf)]) < spareCount {
			spare.kept += m.committed
			spare.mu.Unlock()
			clear(buf[:m.committed])
			spare.mu.Lock()
			spare.bufs[len(buf)] = append(spare.bufs[len(buf)], spareBuf{buf: buf, committed: m.committed})
			spare.mu.Unlock()
			return
		}
		spare.mu.Unlock()
	}
	_ = unix.Munmap(buf)
}

// start maps img (nil: none) at the start of the reservation, committed.
func (m *mmapMemory) start(img *memImage) bool {
	if img == nil {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if img.mapInto(m.buf) != nil {
		return false
	}
	m.committed = max(m.committed, int(img.size))
	m.imaged = true
	return true
}

// goMemory is wazero's own kind of linear memory, a Go slice, for when the
// system refuses a reservation and for memories that cannot grow; it
// starts with img's contents when the module has an image.
type goMemory struct {
	buf []byte
	img *memImage
}

func (g *goMemory) Reallocate(size uint64) []byte {
	if g.img != nil {
		img := g.img
		g.img = nil
		g.buf = make([]byte, max(size, img.size))
		if img.copyInto(g.buf) != nil {
			return nil
		}
	}
	if n := uint64(len(g.buf)); size > n {
		g.buf = append(g.buf, make([]byte, size-n)...)
	}
	return g.buf[:size]
}

func (g *goMemory) Free() { g.buf = nil }

// withLinearMemory returns ctx with the allocator of i's linear memory,
// for instantiating it; i.lin gets the memory, for Close to unmap.
//
// On 64-bit systems, where reserving an instance's cap costs no address
// space anyone misses, a memory is an mmapMemory when its module has an
// image to map (mapping it costs less than copying it), or when it can
// grow (a max over its minimum): a spare then serves a short-lived
// instance with no system call. Only a long-lived (pooled) instance's
// pages are faulted in as they are committed. Others are Go slices:
// wazero's own, or one with the image copied in.
func withLinearMemory(ctx context.Context, i *wzInstance, img *memImage, longLived bool) context.Context {
	wide := unsafe.Sizeof(uintptr(0)) >= 8
	if !wide && img == nil {
		return ctx
	}
	return experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(min, max uint64) experimental.LinearMemory {
		if wide && (img != nil || max > min) {
			// wazero reads the minimum at once, and cannot take a failure
			// there: commit it here, where a refusal (a data size limit,
			// strict overcommit) still falls back on a Go slice.
			if m := newMmapMemory(max); m != nil {
				m.populate = longLived
				if m.start(img) && m.Reallocate(min) != nil {
					i.lin = m
					return m
				}
				m.release()
			}
		}
		return &goMemory{img: img}
	}))
}
