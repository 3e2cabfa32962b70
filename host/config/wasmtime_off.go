//go:build !(cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64)))

package config

import "runtime"

// This build has no wasmtime engine: the build constraint is that of
// host/wasm's wasmtime_stub.go (a test checks they agree).
const wasmtimeBuilt = false

// wasmtimeMissing says why, as host/wasm does.
var wasmtimeMissing = func() string {
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64":
		return "wasmtime needs a build with cgo (CGO_ENABLED=1)"
	}
	return "wasmtime is not available on " + runtime.GOOS + "/" + runtime.GOARCH
}()
