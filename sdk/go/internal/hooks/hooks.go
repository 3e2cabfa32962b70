// Package hooks links the optional hook packages (sdk/go/response) to the
// handlers of package wasmgate without an import cycle: wasmgate fills the
// handler in, the hook package's wasm export calls it and records that the
// export exists.
package hooks

// Response runs the registered OnResponse handler; set by package wasmgate.
var Response func() int32

// ResponseExported is set by package response in wasm builds: the module
// exports on_response, so an OnResponse handler will be called.
var ResponseExported bool
