//go:build !unix

package testkit

// ProcessCPU is the process's CPU time, or -1: not measured here.
func ProcessCPU() int64 { return -1 }
