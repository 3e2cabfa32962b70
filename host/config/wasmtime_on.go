//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64))

package config

// This build has the wasmtime engine: the build constraint is that of
// host/wasm's wasmtime.go (a test checks they agree).
const (
	wasmtimeBuilt   = true
	wasmtimeMissing = ""
)
