// Command noop is a wasmgate plugin that does nothing: its on_request
// returns Continue at once. It measures the fixed cost of a plugin in a
// route's chain (instance checkout, one hook call) in overhead benchmarks,
// and is the smallest complete Go plugin: copy it to start one.
//
// It exports on_init and on_request only, so the response path skips it.
//
// Config: none; anything but an empty object is rejected.
//
//	plugins:
//	  - name: noop
//	    module: plugins/noop/noop.wasm
//
// Build: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o noop.wasm ./plugins/noop
package main
