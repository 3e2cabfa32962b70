package abi

import (
	"slices"
	"strconv"
)

// ValueType is a WebAssembly value type. Its values are the bytes that
// stand for the types in the binary format (as in wazero's api.ValueType),
// so the zero value is no type. The ABI's signatures use I32, I64 and F64
// only; the other types are here so that a host reading a module can name
// every type a signature may hold (in an error about an import or export
// whose signature is not the ABI's).
type ValueType byte

// The value types of WebAssembly 2.0.
const (
	I32       ValueType = 0x7f
	I64       ValueType = 0x7e
	F32       ValueType = 0x7d
	F64       ValueType = 0x7c
	V128      ValueType = 0x7b
	FuncRef   ValueType = 0x70
	ExternRef ValueType = 0x6f
)

// String returns the type as the WebAssembly text format writes it, or
// its byte in hex ("0x40") for a byte that is no value type.
func (t ValueType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32:
		return "f32"
	case F64:
		return "f64"
	case V128:
		return "v128"
	case FuncRef:
		return "funcref"
	case ExternRef:
		return "externref"
	}
	return "0x" + strconv.FormatUint(uint64(t), 16)
}

// Func is a function of the ABI with its exact signature: a host function
// of ModuleName or a hook the guest exports.
type Func struct {
	Name    string
	Params  []ValueType
	Results []ValueType
}

// Names of the host functions of ModuleName (sdk/ABI.md section 4).
const (
	// Request and response.
	FuncRequestMethod     = "request_method"
	FuncRequestPath       = "request_path"
	FuncRequestSetPath    = "request_set_path"
	FuncRequestQuery      = "request_query"
	FuncRequestClientIP   = "request_client_ip"
	FuncHeaderGet         = "header_get"
	FuncHeaderValues      = "header_values"
	FuncHeaderNames       = "header_names"
	FuncHeaderSet         = "header_set"
	FuncHeaderAdd         = "header_add"
	FuncHeaderRemove      = "header_remove"
	FuncBodyGet           = "body_get"
	FuncBodySet           = "body_set"
	FuncResponseStatus    = "response_status"
	FuncResponseSetStatus = "response_set_status"
	FuncSendResponse      = "send_response"
	// Config, logging, errors, time, randomness.
	FuncConfigGet = "config_get"
	FuncLog       = "log"
	FuncSetError  = "set_error"
	FuncTimeNow   = "time_now"
	FuncRandomGet = "random_get"
	// Key-value store.
	FuncKVGet    = "kv_get"
	FuncKVSet    = "kv_set"
	FuncKVDelete = "kv_delete"
	FuncKVIncr   = "kv_incr"
	// Metrics.
	FuncMetricDefine = "metric_define"
	FuncMetricRecord = "metric_record"
	// Outbound HTTP.
	FuncHTTPBatch       = "http_batch"
	FuncHTTPBatchResult = "http_batch_result"
	// Cryptography.
	FuncCryptoVerify = "crypto_verify"
	// Gateway: consumer, claims, cache key, rate limits.
	FuncSetConsumer = "set_consumer"
	FuncSetClaims   = "set_claims"
	FuncCacheSetKey = "cache_set_key"
	FuncRateLimit   = "rate_limit"
	// Traffic: feature flags.
	FuncFlagEnabled = "flag_enabled"
)

// Signatures shared by several functions. A (ptr, len) pair is two i32.
var (
	none  = []ValueType{}
	i32   = []ValueType{I32}
	i64   = []ValueType{I64}
	i32x2 = []ValueType{I32, I32}
	i32x3 = []ValueType{I32, I32, I32}
	i32x4 = []ValueType{I32, I32, I32, I32}
	i32x5 = []ValueType{I32, I32, I32, I32, I32}
)

// functions is every host function, in sdk/ABI.md order.
var functions = [...]Func{
	{FuncRequestMethod, i32x2, i32},
	{FuncRequestPath, i32x2, i32},
	{FuncRequestSetPath, i32x2, i32},
	{FuncRequestQuery, i32x2, i32},
	{FuncRequestClientIP, i32x2, i32},
	{FuncHeaderGet, i32x5, i32},
	{FuncHeaderValues, i32x5, i32},
	{FuncHeaderNames, i32x3, i32},
	{FuncHeaderSet, i32x5, i32},
	{FuncHeaderAdd, i32x5, i32},
	{FuncHeaderRemove, i32x3, i32},
	{FuncBodyGet, []ValueType{I32, I64, I32, I32}, i64},
	{FuncBodySet, i32x3, i32},
	{FuncResponseStatus, none, i32},
	{FuncResponseSetStatus, i32, i32},
	{FuncSendResponse, i32x3, i32},
	{FuncConfigGet, i32x2, i32},
	{FuncLog, i32x3, i32},
	{FuncSetError, i32x2, i32},
	{FuncTimeNow, none, i64},
	{FuncRandomGet, i32x2, i32},
	{FuncKVGet, i32x4, i32},
	{FuncKVSet, []ValueType{I32, I32, I32, I32, I64}, i32},
	{FuncKVDelete, i32x2, i32},
	{FuncKVIncr, []ValueType{I32, I32, I64, I64, I32}, i32},
	{FuncMetricDefine, i32x3, i32},
	{FuncMetricRecord, []ValueType{I32, F64}, i32},
	{FuncHTTPBatch, i32x2, i32},
	{FuncHTTPBatchResult, i32x2, i32},
	{FuncCryptoVerify, []ValueType{I32, I32, I32, I32, I32, I32, I32}, i32},
	{FuncSetConsumer, i32x2, i32},
	{FuncCacheSetKey, i32x2, i32},
	{FuncRateLimit, []ValueType{I32, I32, I32, I32, I64, I32}, i32},
	{FuncFlagEnabled, i32x2, i32},
	{FuncSetClaims, i32x2, i32},
}

// hooks is every hook, in call order.
var hooks = [...]Func{
	{HookInit, i32, i32},
	{HookRequest, none, i32},
	{HookResponse, none, i32},
}

// Functions returns every host function of ModuleName with its signature,
// in sdk/ABI.md order. The slice is the caller's; the Params and Results
// slices are shared and must not be modified.
func Functions() []Func { return slices.Clone(functions[:]) }

// Hooks returns every hook with its signature, in call order, shared as
// Functions' are.
func Hooks() []Func { return slices.Clone(hooks[:]) }
