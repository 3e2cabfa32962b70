//go:build unix

package testkit

import "syscall"

// ProcessCPU is the CPU time of the whole process (every thread: a
// compiler's worker threads, an in-process server's) in nanoseconds, or -1
// when the system cannot tell. Benchmarks report it per operation: waiting
// for a CPU on a loaded machine does not inflate it.
func ProcessCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return -1
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
