//go:build !wasip1

package main

import (
	"fmt"
	"os"
)

// main exists so that native builds of ./... link; the plugin is a wasm
// module (see the package documentation).
func main() {
	fmt.Fprintln(os.Stderr, "this is a wasmgate plugin: build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared")
	os.Exit(2)
}
