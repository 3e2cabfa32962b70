//go:build cgo && linux

package wasm

// #include <malloc.h>
import "C"

// trimNative gives the C heap's free memory back to the system: wasmtime
// (Rust, on the C allocator) compiles a Go plugin in hundreds of megabytes
// that glibc keeps after they are freed.
func trimNative() { C.malloc_trim(0) }
