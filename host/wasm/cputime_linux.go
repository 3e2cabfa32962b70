package wasm

import "golang.org/x/sys/unix"

// threadCPU is the CPU time of the calling thread in nanoseconds, or -1
// when the system cannot tell.
func threadCPU() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return -1
	}
	return ts.Nano()
}
