//go:build !unix

package wasm

import "context"

// withLinearMemory leaves linear memories to wazero (Go slices) where
// there is no mmap (linearmem_unix.go).
func withLinearMemory(ctx context.Context, _ *wzInstance, _ *memImage, _ bool) context.Context {
	return ctx
}
