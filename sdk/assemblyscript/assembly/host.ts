// The host functions of the "wasmgate" import module (sdk/ABI.md section 4),
// declared exactly as the ABI types them: a pointer or length is an i32, a
// body offset, TTL, delta or cost an i64, a metric value an f64.
//
// The SDK's own functions (request.ts, kv.ts, ...) wrap these; they are
// exported for code that must see what the host answered where the SDK
// would hide it (the conformance guest, a plugin measuring a raw call).
// Every (ptr, len) range must lie inside this module's memory, or the call
// traps (sdk/ABI.md section 3); a length of 0 never traps.
//
// Import them under a prefix: `import * as host from ".../assembly/host"`.

// Request and response.

// @ts-ignore: decorator
@external("wasmgate", "request_method")
export declare function request_method(buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "request_path")
export declare function request_path(buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "request_set_path")
export declare function request_set_path(ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "request_query")
export declare function request_query(buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "request_client_ip")
export declare function request_client_ip(buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "header_get")
export declare function header_get(kind: i32, namePtr: usize, nameLen: i32, buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "header_values")
export declare function header_values(kind: i32, namePtr: usize, nameLen: i32, buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "header_names")
export declare function header_names(kind: i32, buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "header_set")
export declare function header_set(kind: i32, namePtr: usize, nameLen: i32, valuePtr: usize, valueLen: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "header_add")
export declare function header_add(kind: i32, namePtr: usize, nameLen: i32, valuePtr: usize, valueLen: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "header_remove")
export declare function header_remove(kind: i32, namePtr: usize, nameLen: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "body_get")
export declare function body_get(kind: i32, offset: i64, buf: usize, len: i32): i64;

// @ts-ignore: decorator
@external("wasmgate", "body_set")
export declare function body_set(kind: i32, ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "response_status")
export declare function response_status(): i32;

// @ts-ignore: decorator
@external("wasmgate", "response_set_status")
export declare function response_set_status(status: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "send_response")
export declare function send_response(status: i32, bodyPtr: usize, bodyLen: i32): i32;

// Plugin config, logging, errors, time, randomness (any hook).

// @ts-ignore: decorator
@external("wasmgate", "config_get")
export declare function config_get(buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "log")
export declare function log(level: i32, ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "set_error")
export declare function set_error(ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "time_now")
export declare function time_now(): i64;

// @ts-ignore: decorator
@external("wasmgate", "random_get")
export declare function random_get(buf: usize, len: i32): i32;

// Key-value store.

// @ts-ignore: decorator
@external("wasmgate", "kv_get")
export declare function kv_get(keyPtr: usize, keyLen: i32, buf: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "kv_set")
export declare function kv_set(keyPtr: usize, keyLen: i32, valuePtr: usize, valueLen: i32, ttlMs: i64): i32;

// @ts-ignore: decorator
@external("wasmgate", "kv_delete")
export declare function kv_delete(keyPtr: usize, keyLen: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "kv_incr")
export declare function kv_incr(keyPtr: usize, keyLen: i32, delta: i64, ttlMs: i64, resultPtr: usize): i32;

// Metrics.

// @ts-ignore: decorator
@external("wasmgate", "metric_define")
export declare function metric_define(kind: i32, namePtr: usize, nameLen: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "metric_record")
export declare function metric_record(id: i32, value: f64): i32;

// Outbound HTTP.

// @ts-ignore: decorator
@external("wasmgate", "http_batch")
export declare function http_batch(reqPtr: usize, reqLen: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "http_batch_result")
export declare function http_batch_result(buf: usize, len: i32): i32;

// Cryptography.

// @ts-ignore: decorator
@external("wasmgate", "crypto_verify")
export declare function crypto_verify(alg: i32, keyPtr: usize, keyLen: i32, msgPtr: usize, msgLen: i32, sigPtr: usize, sigLen: i32): i32;

// Gateway: consumer, claims, cache key, feature flags, rate limits.

// @ts-ignore: decorator
@external("wasmgate", "set_consumer")
export declare function set_consumer(ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "set_claims")
export declare function set_claims(ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "cache_set_key")
export declare function cache_set_key(ptr: usize, len: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "flag_enabled")
export declare function flag_enabled(namePtr: usize, nameLen: i32): i32;

// @ts-ignore: decorator
@external("wasmgate", "rate_limit")
export declare function rate_limit(namePtr: usize, nameLen: i32, keyPtr: usize, keyLen: i32, cost: i64, resultPtr: usize): i32;
