// Package wasm is the wasmgate plugin runtime: it compiles plugin modules
// once per version, validates them against the ABI (sdk/ABI.md) before any
// instance exists, keeps bounded pools of sandboxed instances per route
// binding, runs hooks under a per-call deadline and a memory cap, and turns
// every guest misbehaviour into a typed *PluginError, never a gateway crash.
//
// The layers, bottom up:
//
//   - Engine / CompiledModule / ModuleInstance: the small interface a
//     WebAssembly engine implements: wazero (wazero.go, pure Go, the
//     default) and wasmtime (wasmtime.go, through cgo; a build without cgo
//     has wazero only). Host functions come from abi.Functions(); WASI is
//     wazero's own on wazero, and wasip1.go's, the same sandbox, on
//     wasmtime.
//   - Runtime: the module registry, keyed by sha256 and engine, so the
//     same bytes used by several routes or plugins compile once per engine;
//     reference counted. A plugin runs on the runtime's default engine or
//     the one its config names.
//   - Binding: one plugin on one route with its config: the instance pool,
//     recycling, quarantine and metrics.
//   - Instance: what a request checks out of a Binding to run its hooks.
//
// Deadlines: every hook runs under its binding's CallTimeout. With the
// wazero compiler, modules are instrumented at load with a cheap
// interruption check (see instrument in interrupt.go); the interpreter, or
// a module the rewriter cannot handle, uses wazero's WithCloseOnContextDone.
// On wasmtime, compiled code checks the engine's epoch and each store has
// a deadline callback, so that one instance can be stopped without the
// others (see WasmtimeEngine). Either way a guest looping forever, or
// sleeping, is stopped and its instance discarded.
package wasm

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
)

// Engine compiles modules. Implementations are safe for concurrent use.
type Engine interface {
	// Name identifies the engine and its mode, e.g. "wazero-compiler".
	Name() string
	// Compile compiles a module that Inspect accepted. The result may have
	// a memory cap (MemoryPages): an engine whose caps cost a compiled
	// copy each compiles under the cap most bindings use. The engine may
	// keep wasm: the caller must not modify it.
	Compile(ctx context.Context, wasm []byte) (CompiledModule, error)
	// Close releases the engine; every CompiledModule must be closed first.
	Close(ctx context.Context) error
}

// CompiledModule is a compiled module, ready to instantiate.
type CompiledModule interface {
	// Info describes the module's interface (see Inspect).
	Info() ModuleInfo
	// WithMemoryLimit returns the same code with every instance's memory
	// capped at pages (64 KiB each). The result shares the compiled code
	// and must be closed on its own. It fails when the module's declared
	// minimum or maximum exceeds the cap.
	WithMemoryLimit(ctx context.Context, pages uint32) (CompiledModule, error)
	// MemoryPages is the cap of every instance's memory (64 KiB pages); 0
	// is none beyond the module's own maximum.
	MemoryPages() uint32
	// Instantiate makes a new instance: memory initialized, start section
	// and _initialize run, no hook called yet.
	Instantiate(ctx context.Context, opts InstanceOptions) (ModuleInstance, error)
	// Close releases the compiled code (shared code stays alive while
	// another CompiledModule uses it). Instances must be closed first.
	Close(ctx context.Context) error
}

// InstanceOptions configure one instance.
type InstanceOptions struct {
	// Call is the state the instance's host functions act on. The engine
	// sets Call.Mem at instantiation and Call.Ctx for every call (the
	// call's deadline); the caller fills the rest around each hook.
	Call *abi.Call
	// Stdout and Stderr receive what the guest writes to fd 1 and 2.
	Stdout, Stderr io.Writer
	// InitTimeout bounds the start section and _initialize.
	InitTimeout time.Duration
	// LongLived instances serve many requests (pooled mode): the engine
	// may spend instantiation time to hold their memory more cheaply.
	LongLived bool
}

// ModuleInstance is one instance of a module. It is used by one goroutine
// at a time.
type ModuleInstance interface {
	// CallHook runs an exported hook (arg is on_init's config_len, unused
	// otherwise) and returns its i32 result. The guest is interrupted when
	// it runs past timeout: the error then matches ErrDeadline and the
	// instance is unusable. Any error leaves the instance unusable.
	CallHook(h Hook, arg uint32, timeout time.Duration) (int32, error)
	// CallHookRaw is CallHook for hooks of any of the ABIs' signatures:
	// up to two i32 arguments (a hook taking fewer ignores the rest), and
	// the first result's 64 bits (an i64 whole, an i32 in the low half, 0
	// for none).
	CallHookRaw(h Hook, a0, a1 uint32, timeout time.Duration) (uint64, error)
	// MemorySize is the current size of the linear memory in bytes.
	MemorySize() uint32
	// OutOfMemory reports whether the guest ran out of memory: its last
	// memory.grow failed, or, where the engine cannot tell, its memory is
	// within an allocator's step of the cap. Used to classify a failure.
	OutOfMemory() bool
	// Close releases the instance.
	Close(ctx context.Context) error
}

// ErrDeadline marks a hook interrupted at its deadline.
var ErrDeadline = errors.New("deadline exceeded")
