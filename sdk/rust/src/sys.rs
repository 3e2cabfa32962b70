//! The raw host functions of the `wasmgate` import module (sdk/ABI.md
//! section 4), one `extern "C"` declaration each, with the ABI's exact
//! signatures: a `(ptr, len)` pair is a pointer into this module's memory and
//! an `i32` length; results are sizes, statuses or ids (non-negative) or the
//! negative codes of [`crate::abi`].
//!
//! The rest of the SDK wraps these; a plugin uses them directly only to see
//! exactly what the host answered (a conformance guest does). They are
//! `unsafe`: the host checks every range against the module's memory (a
//! range outside it traps, failing the hook), but the compiler cannot check
//! that a pointer and a length belong together.
//!
//! Outside WebAssembly (a native `cargo test` of a plugin's own logic) every
//! function is a stub that answers [`crate::abi::NOT_ALLOWED`] (`time_now`
//! answers 0), so code that calls the SDK compiles and runs everywhere.
//!
//! Each function's semantics are those of its row in sdk/ABI.md section 4.

#![allow(missing_docs)]

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "wasmgate")]
extern "C" {
    // Request and response.
    pub fn request_method(buf: *mut u8, len: i32) -> i32;
    pub fn request_path(buf: *mut u8, len: i32) -> i32;
    pub fn request_set_path(ptr: *const u8, len: i32) -> i32;
    pub fn request_query(buf: *mut u8, len: i32) -> i32;
    pub fn request_client_ip(buf: *mut u8, len: i32) -> i32;
    pub fn header_get(kind: i32, name_ptr: *const u8, name_len: i32, buf: *mut u8, len: i32) -> i32;
    pub fn header_values(kind: i32, name_ptr: *const u8, name_len: i32, buf: *mut u8, len: i32) -> i32;
    pub fn header_names(kind: i32, buf: *mut u8, len: i32) -> i32;
    pub fn header_set(kind: i32, name_ptr: *const u8, name_len: i32, value_ptr: *const u8, value_len: i32) -> i32;
    pub fn header_add(kind: i32, name_ptr: *const u8, name_len: i32, value_ptr: *const u8, value_len: i32) -> i32;
    pub fn header_remove(kind: i32, name_ptr: *const u8, name_len: i32) -> i32;
    pub fn body_get(kind: i32, offset: i64, buf: *mut u8, len: i32) -> i64;
    pub fn body_set(kind: i32, ptr: *const u8, len: i32) -> i32;
    pub fn response_status() -> i32;
    pub fn response_set_status(status: i32) -> i32;
    pub fn send_response(status: i32, body_ptr: *const u8, body_len: i32) -> i32;
    // Config, logging, errors, time, randomness.
    pub fn config_get(buf: *mut u8, len: i32) -> i32;
    pub fn log(level: i32, ptr: *const u8, len: i32) -> i32;
    pub fn set_error(ptr: *const u8, len: i32) -> i32;
    pub fn time_now() -> i64;
    pub fn random_get(buf: *mut u8, len: i32) -> i32;
    // Key-value store.
    pub fn kv_get(key_ptr: *const u8, key_len: i32, buf: *mut u8, len: i32) -> i32;
    pub fn kv_set(key_ptr: *const u8, key_len: i32, value_ptr: *const u8, value_len: i32, ttl_ms: i64) -> i32;
    pub fn kv_delete(key_ptr: *const u8, key_len: i32) -> i32;
    pub fn kv_incr(key_ptr: *const u8, key_len: i32, delta: i64, ttl_ms: i64, result_ptr: *mut u8) -> i32;
    // Metrics.
    pub fn metric_define(kind: i32, name_ptr: *const u8, name_len: i32) -> i32;
    pub fn metric_record(id: i32, value: f64) -> i32;
    // Outbound HTTP.
    pub fn http_batch(req_ptr: *const u8, req_len: i32) -> i32;
    pub fn http_batch_result(buf: *mut u8, len: i32) -> i32;
    // Cryptography.
    pub fn crypto_verify(
        alg: i32,
        key_ptr: *const u8,
        key_len: i32,
        msg_ptr: *const u8,
        msg_len: i32,
        sig_ptr: *const u8,
        sig_len: i32,
    ) -> i32;
    // Gateway: consumer, claims, cache key, rate limits, feature flags.
    pub fn set_consumer(ptr: *const u8, len: i32) -> i32;
    pub fn set_claims(ptr: *const u8, len: i32) -> i32;
    pub fn cache_set_key(ptr: *const u8, len: i32) -> i32;
    pub fn rate_limit(
        name_ptr: *const u8,
        name_len: i32,
        key_ptr: *const u8,
        key_len: i32,
        cost: i64,
        result_ptr: *mut u8,
    ) -> i32;
    pub fn flag_enabled(name_ptr: *const u8, name_len: i32) -> i32;
}

#[cfg(not(target_arch = "wasm32"))]
pub use self::native::*;

/// Stubs with the same signatures for native builds: every function is
/// refused as it would be outside a hook.
#[cfg(not(target_arch = "wasm32"))]
#[allow(unused_variables, clippy::missing_safety_doc, clippy::too_many_arguments)]
mod native {
    use crate::abi::NOT_ALLOWED as NO;

    pub unsafe fn request_method(buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn request_path(buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn request_set_path(ptr: *const u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn request_query(buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn request_client_ip(buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn header_get(kind: i32, name_ptr: *const u8, name_len: i32, buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn header_values(kind: i32, name_ptr: *const u8, name_len: i32, buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn header_names(kind: i32, buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn header_set(
        kind: i32,
        name_ptr: *const u8,
        name_len: i32,
        value_ptr: *const u8,
        value_len: i32,
    ) -> i32 {
        NO
    }
    pub unsafe fn header_add(
        kind: i32,
        name_ptr: *const u8,
        name_len: i32,
        value_ptr: *const u8,
        value_len: i32,
    ) -> i32 {
        NO
    }
    pub unsafe fn header_remove(kind: i32, name_ptr: *const u8, name_len: i32) -> i32 {
        NO
    }
    pub unsafe fn body_get(kind: i32, offset: i64, buf: *mut u8, len: i32) -> i64 {
        NO as i64
    }
    pub unsafe fn body_set(kind: i32, ptr: *const u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn response_status() -> i32 {
        NO
    }
    pub unsafe fn response_set_status(status: i32) -> i32 {
        NO
    }
    pub unsafe fn send_response(status: i32, body_ptr: *const u8, body_len: i32) -> i32 {
        NO
    }
    pub unsafe fn config_get(buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn log(level: i32, ptr: *const u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn set_error(ptr: *const u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn time_now() -> i64 {
        0
    }
    pub unsafe fn random_get(buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn kv_get(key_ptr: *const u8, key_len: i32, buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn kv_set(key_ptr: *const u8, key_len: i32, value_ptr: *const u8, value_len: i32, ttl_ms: i64) -> i32 {
        NO
    }
    pub unsafe fn kv_delete(key_ptr: *const u8, key_len: i32) -> i32 {
        NO
    }
    pub unsafe fn kv_incr(key_ptr: *const u8, key_len: i32, delta: i64, ttl_ms: i64, result_ptr: *mut u8) -> i32 {
        NO
    }
    pub unsafe fn metric_define(kind: i32, name_ptr: *const u8, name_len: i32) -> i32 {
        NO
    }
    pub unsafe fn metric_record(id: i32, value: f64) -> i32 {
        NO
    }
    pub unsafe fn http_batch(req_ptr: *const u8, req_len: i32) -> i32 {
        NO
    }
    pub unsafe fn http_batch_result(buf: *mut u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn crypto_verify(
        alg: i32,
        key_ptr: *const u8,
        key_len: i32,
        msg_ptr: *const u8,
        msg_len: i32,
        sig_ptr: *const u8,
        sig_len: i32,
    ) -> i32 {
        NO
    }
    pub unsafe fn set_consumer(ptr: *const u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn set_claims(ptr: *const u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn cache_set_key(ptr: *const u8, len: i32) -> i32 {
        NO
    }
    pub unsafe fn rate_limit(
        name_ptr: *const u8,
        name_len: i32,
        key_ptr: *const u8,
        key_len: i32,
        cost: i64,
        result_ptr: *mut u8,
    ) -> i32 {
        NO
    }
    pub unsafe fn flag_enabled(name_ptr: *const u8, name_len: i32) -> i32 {
        NO
    }
}
