//go:build !(cgo && linux)

package wasm

func trimNative() {}
