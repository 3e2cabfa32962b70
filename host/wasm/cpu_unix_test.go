//go:build unix

package wasm

import "syscall"

// processCPU is the CPU time of the whole process (every thread: a
// compiler's worker threads included) in nanoseconds, or -1.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
