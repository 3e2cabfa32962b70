//go:build wasip1

package wasmgate

// The module's exports (sdk/ABI.md sections 1 and 2). on_response lives in
// package response so that plugins without a response handler do not
// export it and the gateway skips them on the response path.

// abiV1 is the version marker the gateway looks for; it is never called.
//
//go:wasmexport wasmgate_abi_v1
func abiV1() {}

//go:wasmexport on_init
func onInit(configLen int32) int32 { return handleInit(configLen) }

//go:wasmexport on_request
func onRequest() int32 { return handleRequest() }
