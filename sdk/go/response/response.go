// Package response exports the on_response hook of a wasmgate plugin.
//
// A plugin whose wasmgate.Plugin has an OnResponse handler imports it for
// its side effect:
//
//	import _ "github.com/wasmgate/wasmgate/sdk/go/response"
//
// Why a separate package: the gateway calls on_response only for modules
// that export it, and a Go package's //go:wasmexport functions are exported
// whenever the package is linked. Keeping the export here means a plugin
// that only acts on requests exports no on_response and costs nothing on
// the response path (no instance call, no hook dispatch per response).
// wasmgate's on_init fails with a message naming this import when
// OnResponse is set and the import is missing.
package response

import _ "github.com/wasmgate/wasmgate/sdk/go" // sets the handler on_response calls
