// Package httpwasm is the host side of the http-wasm handler ABI, as
// http-wasm-host-go v0.7.0 defines and its TCK checks it: the 19 functions
// of the "http_handler" import module, so that guests written for http-wasm
// (TinyGo, Rust, WAT; hosted by Traefik, Dapr) run in the gateway unchanged.
//
// The functions act on the same abi.Call as wasmgate's own ABI (host/abi):
// the request, the response and the plugin binding. What http-wasm keeps
// per request on top of that — the features enabled, before or after next,
// the body cursors and what the guest wrote to the response before next —
// is a State, one per instance, hung on Call.Ext by the runtime.
//
// The ABI has no error codes: a guest that misuses a function (a buffer
// outside its memory, a write the ABI forbids after next, a header the
// gateway could not send) makes it panic with Trap, which the engines turn
// into a trap of the hook. The phase rules are the reference's
// (handler/middleware.go: mustBeforeNext, mustBeforeNextOrFeature); the
// value rules are the gateway's, the same as for native plugins.
package httpwasm

import (
	"slices"

	"github.com/http-wasm/http-wasm-host-go/api/handler"

	"github.com/wasmgate/wasmgate/host/abi"
)

// ModuleName is the import module of the http-wasm host functions.
const ModuleName = handler.HostModule

// Supported are the features this host grants. Bodies are always buffered
// whole by the gateway, so buffer_request and buffer_response cost nothing;
// trailers are never carried (the gateway strips them), so that bit is
// never granted, trailer names and values read as none and writing one
// traps: what the Features documentation asks of such a host.
const Supported = handler.FeatureBufferRequest | handler.FeatureBufferResponse

// The value types of the signatures, shared by the table's entries.
var (
	none  = []abi.ValueType{}
	i32   = []abi.ValueType{abi.I32}
	i64   = []abi.ValueType{abi.I64}
	i32x2 = []abi.ValueType{abi.I32, abi.I32}
	i32x3 = []abi.ValueType{abi.I32, abi.I32, abi.I32}
	i32x5 = []abi.ValueType{abi.I32, abi.I32, abi.I32, abi.I32, abi.I32}
)

// table is every function of the http_handler module, in the reference
// host's order, with the signatures of http-wasm-host-go v0.7.0
// (TestTableMatchesReference checks them against its host module).
var table = []abi.Func{
	{Module: ModuleName, Name: handler.FuncEnableFeatures, Params: i32, Results: i32, Fn: enableFeatures},
	{Module: ModuleName, Name: handler.FuncGetConfig, Params: i32x2, Results: i32, Fn: getConfig},
	{Module: ModuleName, Name: handler.FuncLogEnabled, Params: i32, Results: i32, Fn: logEnabled},
	{Module: ModuleName, Name: handler.FuncLog, Params: i32x3, Results: none, Fn: logFn},
	{Module: ModuleName, Name: handler.FuncGetMethod, Params: i32x2, Results: i32, Fn: getMethod},
	{Module: ModuleName, Name: handler.FuncSetMethod, Params: i32x2, Results: none, Fn: setMethod},
	{Module: ModuleName, Name: handler.FuncGetURI, Params: i32x2, Results: i32, Fn: getURI},
	{Module: ModuleName, Name: handler.FuncSetURI, Params: i32x2, Results: none, Fn: setURI},
	{Module: ModuleName, Name: handler.FuncGetProtocolVersion, Params: i32x2, Results: i32, Fn: getProtocolVersion},
	{Module: ModuleName, Name: handler.FuncGetHeaderNames, Params: i32x3, Results: i64, Fn: getHeaderNames},
	{Module: ModuleName, Name: handler.FuncGetHeaderValues, Params: i32x5, Results: i64, Fn: getHeaderValues},
	{Module: ModuleName, Name: handler.FuncSetHeaderValue, Params: i32x5, Results: none, Fn: setHeaderValue},
	{Module: ModuleName, Name: handler.FuncAddHeaderValue, Params: i32x5, Results: none, Fn: addHeaderValue},
	{Module: ModuleName, Name: handler.FuncRemoveHeader, Params: i32x3, Results: none, Fn: removeHeader},
	{Module: ModuleName, Name: handler.FuncReadBody, Params: i32x3, Results: i64, Fn: readBody},
	{Module: ModuleName, Name: handler.FuncWriteBody, Params: i32x3, Results: none, Fn: writeBody},
	{Module: ModuleName, Name: handler.FuncGetSourceAddr, Params: i32x2, Results: i32, Fn: getSourceAddr},
	{Module: ModuleName, Name: handler.FuncGetStatusCode, Params: none, Results: i32, Fn: getStatusCode},
	{Module: ModuleName, Name: handler.FuncSetStatusCode, Params: i32, Results: none, Fn: setStatusCode},
}

// Functions returns every host function of the "http_handler" import
// module with its exact signature, each with Module set to ModuleName. The
// slice is a copy the caller may keep; the Params and Results slices are
// shared and must not be modified.
func Functions() []abi.Func { return slices.Clone(table) }
