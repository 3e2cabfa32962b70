//go:build unix

package wasm

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/wasmgate/wasmgate/host/abi"
)

// TestMmapMemory: a linear memory outside the Go heap grows in place
// (wazero's compiled code keeps its base), keeps its contents, refuses to
// grow past its reservation and to grow once freed (wazero frees it when
// it closes a module, maybe under a guest still running), and when
// released becomes a spare that the next memory of its size starts from,
// all zeros.
func TestMmapMemory(t *testing.T) {
	const page = 64 << 10
	m := newMmapMemory(16 * page)
	if m == nil {
		t.Skip("the system refused a reservation")
	}
	defer m.release()
	b := m.Reallocate(page)
	if len(b) != page {
		t.Fatalf("len %d, want %d", len(b), page)
	}
	copy(b[page-5:], "hello")
	grown := m.Reallocate(4 * page)
	if unsafe.SliceData(grown) != unsafe.SliceData(b) {
		t.Fatal("the memory moved as it grew")
	}
	if !bytes.Equal(grown[page-5:page], []byte("hello")) || grown[4*page-1] != 0 {
		t.Fatal("growing lost the contents or did not zero the new pages")
	}
	grown[4*page-1] = 1 // the new pages are writable
	if m.Reallocate(17*page) != nil {
		t.Fatal("grew past the reservation")
	}
	m.Free()
	if m.Reallocate(2*page) != nil {
		t.Fatal("a freed memory grew")
	}
	m.release()
	m.release() // idempotent
	if m.buf != nil {
		t.Fatal("released memory still held")
	}
	next := newMmapMemory(16 * page)
	defer next.release()
	if unsafe.SliceData(next.buf) != unsafe.SliceData(grown) {
		t.Skip("the spare went to another memory of this size (tests in parallel)")
	}
	b = next.Reallocate(4 * page)
	if !bytes.Equal(b, make([]byte, 4*page)) {
		t.Fatal("a spare memory starts with the last one's contents")
	}
}

// TestPooledInstancesMemoryOutsideHeap: instances, pooled and fresh, get
// their linear memory from mmap (grown in place), and a closed instance's
// range is given up.
func TestPooledInstancesMemoryOutsideHeap(t *testing.T) {
	r := newTestRuntime(t, Options{})
	for _, c := range []struct {
		mode Mode
		want bool
	}{{ModePooled, true}, {ModeFresh, true}} {
		b := bind(t, r, fixture(t, "grower"), BindingConfig{Mode: c.mode, MemoryPages: 64})
		inst, err := b.Acquire(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wi := inst.mi.(*wzInstance)
		lin, _ := wi.lin.(*mmapMemory)
		if (lin != nil) != c.want {
			t.Fatalf("%s: linear memory from mmap: %v, want %v", c.mode, lin != nil, c.want)
		}
		req, resp := request("/")
		if _, err := inst.OnRequest(req, resp, &abi.Scope{}); err != nil || resp.StatusCode() != 202 {
			t.Fatalf("%s: %v, status %d, want 202 (grown to 2 pages)", c.mode, err, resp.StatusCode())
		}
		b.Release(inst, true) // closed, not pooled
		if lin != nil && lin.buf != nil {
			t.Fatalf("%s: a closed instance's memory is still held", c.mode)
		}
	}
}
