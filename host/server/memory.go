package server

import (
	"sync"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"
)

// settleDelay is how long memory waits after the last build before it is
// given back: a burst of reloads or hot-loads settles once.
const settleDelay = 2 * time.Second

// memorySettler gives the heap a build left behind back to the system.
// Compiling a Go plugin makes tens of megabytes of garbage on the Go heap
// (wazero) or hundreds on the C heap (wasmtime), and retiring a snapshot
// frees its modules; the collector would keep those pages for the next
// cycle's growth and the scavenger return them over minutes, and glibc
// keeps freed C memory for good, so a gateway that reloads once a day
// would hold its peak for nothing.
// A settle is one full collection, a few milliseconds per hundred
// megabytes of heap, after a change; requests that allocate meanwhile may
// wait on the heap lock while it returns pages.
type memorySettler struct {
	mu      sync.Mutex
	timer   *time.Timer
	stopped bool
}

// soon settles settleDelay after the last call.
func (m *memorySettler) soon() {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.stopped:
	case m.timer == nil:
		m.timer = time.AfterFunc(settleDelay, wasm.ReturnMemory)
	default:
		m.timer.Reset(settleDelay)
	}
}

// stop cancels a pending settle; later calls to soon do nothing.
func (m *memorySettler) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopped = true
	if m.timer != nil {
		m.timer.Stop()
	}
}
