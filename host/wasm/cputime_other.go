//go:build !linux

package wasm

// threadCPU is the CPU time of the calling thread in nanoseconds, or -1
// when the system cannot tell: here it cannot, and deadlines are
// wall-clock.
func threadCPU() int64 { return -1 }
