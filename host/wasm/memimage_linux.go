package wasm

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// memImage is a module's initial memory in a sealed memfd (memimage.go).
// Its size is the memory's minimum; the pages no segment writes are holes,
// which cost nothing.
type memImage struct {
	fd      int
	size    uint64
	extents [][2]uint64 // [start, end) of each segment, for copyInto
	refs    atomic.Int32
}

// newMemImage writes the segments, in order, into a new image of size
// bytes.
func newMemImage(segs []dataSegment, size uint64) (*memImage, error) {
	fd, err := unix.MemfdCreate("wasmgate-memory-image", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memory image: %w", err)
	}
	fail := func(err error) (*memImage, error) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("memory image: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		return fail(err)
	}
	img := &memImage{fd: fd, size: size}
	if size > 0 {
		// Written through a shared mapping, one copy per segment: a Go
		// plugin has tens of thousands of segments, a system call each
		// would cost more than the rest of a load from the disk cache.
		mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fail(err)
		}
		for _, s := range segs {
			copy(mem[s.offset:], s.bytes)
			start, end := uint64(s.offset), uint64(s.offset)+uint64(len(s.bytes))
			if n := len(img.extents); n > 0 && start >= img.extents[n-1][0] && start <= img.extents[n-1][1] {
				img.extents[n-1][1] = max(img.extents[n-1][1], end) // adjacent or overlapping
				continue
			}
			img.extents = append(img.extents, [2]uint64{start, end})
		}
		// Unmapped before sealing: a writable shared mapping forbids it.
		if err := unix.Munmap(mem); err != nil {
			return fail(err)
		}
	}
	// Sealed: nothing, this process included, can change an image that
	// instances map.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_SEAL); err != nil {
		return fail(err)
	}
	img.refs.Store(1)
	return img, nil
}

// retain adds a user of the image; nil once the last one released it.
func (img *memImage) retain() *memImage {
	for {
		n := img.refs.Load()
		if n <= 0 {
			return nil
		}
		if img.refs.CompareAndSwap(n, n+1) {
			return img
		}
	}
}

// release drops a user; the last closes the memfd. Memories that map the
// image keep its pages.
func (img *memImage) release() {
	if img.refs.Add(-1) == 0 {
		_ = unix.Close(img.fd)
	}
}

// mapInto maps the image copy-on-write over the start of buf, a
// reservation of at least img.size bytes.
func (img *memImage) mapInto(buf []byte) error {
	if uint64(len(buf)) < img.size {
		return fmt.Errorf("memory image of %d bytes over a memory of %d", img.size, len(buf))
	}
	if img.size == 0 {
		return nil
	}
	_, err := unix.MmapPtr(img.fd, 0, unsafe.Pointer(&buf[0]), uintptr(img.size),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	return err
}

// copyInto copies the segments' bytes into buf, a zeroed memory of at
// least img.size bytes.
func (img *memImage) copyInto(buf []byte) error {
	for _, e := range img.extents {
		for off := e[0]; off < e[1]; {
			n, err := unix.Pread(img.fd, buf[off:e[1]], int64(off))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("memory image: %w", err)
			}
			if n == 0 {
				return fmt.Errorf("memory image: short read at %d", off)
			}
			off += uint64(n)
		}
	}
	return nil
}
