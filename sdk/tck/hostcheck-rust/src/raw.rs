//! The raw host calls of the checks, over the SDK's `wasmgate::sys`: what
//! the host answered, unfiltered (the exact codes of getters, the buffer
//! convention, bad kinds and values the SDK would refuse before the host
//! sees them). Buffers are slices; an empty one is passed as the null
//! pointer with length 0, as the Go guest passes a nil slice. The `_at`
//! variants pass any address, for the host's "length 0 never touches
//! memory" rule.
//!
//! Natively (`cargo test`) `wasmgate::sys` answers NOT_ALLOWED everywhere.

use std::ptr::null_mut;

use wasmgate::sys;

/// A buffer's address for the host: null for an empty one.
fn ptr(buf: &mut [u8]) -> *mut u8 {
    if buf.is_empty() {
        null_mut()
    } else {
        buf.as_mut_ptr()
    }
}

fn n(b: &[u8]) -> i32 {
    b.len() as i32
}

pub fn request_method(buf: &mut [u8]) -> i32 {
    unsafe { sys::request_method(ptr(buf), n(buf)) }
}

pub fn request_path(buf: &mut [u8]) -> i32 {
    unsafe { sys::request_path(ptr(buf), n(buf)) }
}

pub fn request_set_path(path: &str) -> i32 {
    unsafe { sys::request_set_path(path.as_ptr(), n(path.as_bytes())) }
}

pub fn request_query(buf: &mut [u8]) -> i32 {
    unsafe { sys::request_query(ptr(buf), n(buf)) }
}

pub fn request_client_ip(buf: &mut [u8]) -> i32 {
    unsafe { sys::request_client_ip(ptr(buf), n(buf)) }
}

pub fn header_get(kind: i32, name: &str, buf: &mut [u8]) -> i32 {
    unsafe { sys::header_get(kind, name.as_ptr(), n(name.as_bytes()), ptr(buf), n(buf)) }
}

/// header_get into an arbitrary address: with `len` 0 the host must answer
/// the size without touching memory, whatever `addr` is.
pub fn header_get_at(kind: i32, name: &str, addr: u32, len: i32) -> i32 {
    unsafe { sys::header_get(kind, name.as_ptr(), n(name.as_bytes()), addr as usize as *mut u8, len) }
}

pub fn header_values(kind: i32, name: &str, buf: &mut [u8]) -> i32 {
    unsafe { sys::header_values(kind, name.as_ptr(), n(name.as_bytes()), ptr(buf), n(buf)) }
}

pub fn header_names(kind: i32, buf: &mut [u8]) -> i32 {
    unsafe { sys::header_names(kind, ptr(buf), n(buf)) }
}

pub fn header_set(kind: i32, name: &str, value: &str) -> i32 {
    unsafe { sys::header_set(kind, name.as_ptr(), n(name.as_bytes()), value.as_ptr(), n(value.as_bytes())) }
}

pub fn header_add(kind: i32, name: &str, value: &str) -> i32 {
    unsafe { sys::header_add(kind, name.as_ptr(), n(name.as_bytes()), value.as_ptr(), n(value.as_bytes())) }
}

pub fn header_remove(kind: i32, name: &str) -> i32 {
    unsafe { sys::header_remove(kind, name.as_ptr(), n(name.as_bytes())) }
}

pub fn body_get(kind: i32, offset: i64, buf: &mut [u8]) -> i64 {
    unsafe { sys::body_get(kind, offset, ptr(buf), n(buf)) }
}

pub fn body_set(kind: i32, body: &[u8]) -> i32 {
    unsafe { sys::body_set(kind, body.as_ptr(), n(body)) }
}

pub fn response_status() -> i32 {
    unsafe { sys::response_status() }
}

pub fn response_set_status(status: i32) -> i32 {
    unsafe { sys::response_set_status(status) }
}

pub fn send_response(status: i32, body: &[u8]) -> i32 {
    unsafe { sys::send_response(status, body.as_ptr(), n(body)) }
}

pub fn config_get(buf: &mut [u8]) -> i32 {
    unsafe { sys::config_get(ptr(buf), n(buf)) }
}

pub fn log(level: i32, msg: &str) -> i32 {
    unsafe { sys::log(level, msg.as_ptr(), n(msg.as_bytes())) }
}

pub fn set_error(msg: &str) -> i32 {
    unsafe { sys::set_error(msg.as_ptr(), n(msg.as_bytes())) }
}

pub fn time_now() -> i64 {
    unsafe { sys::time_now() }
}

pub fn random_get(buf: &mut [u8]) -> i32 {
    unsafe { sys::random_get(ptr(buf), n(buf)) }
}

/// random_get at an arbitrary address (see [`header_get_at`]).
pub fn random_get_at(addr: u32, len: i32) -> i32 {
    unsafe { sys::random_get(addr as usize as *mut u8, len) }
}

pub fn kv_get(key: &str, buf: &mut [u8]) -> i32 {
    unsafe { sys::kv_get(key.as_ptr(), n(key.as_bytes()), ptr(buf), n(buf)) }
}

pub fn kv_set(key: &str, value: &[u8], ttl_ms: i64) -> i32 {
    unsafe { sys::kv_set(key.as_ptr(), n(key.as_bytes()), value.as_ptr(), n(value), ttl_ms) }
}

pub fn metric_define(kind: i32, name: &str) -> i32 {
    unsafe { sys::metric_define(kind, name.as_ptr(), n(name.as_bytes())) }
}

pub fn metric_record(id: i32, value: f64) -> i32 {
    unsafe { sys::metric_record(id, value) }
}

pub fn http_batch(batch: &[u8]) -> i32 {
    unsafe { sys::http_batch(batch.as_ptr(), n(batch)) }
}

pub fn http_batch_result(buf: &mut [u8]) -> i32 {
    unsafe { sys::http_batch_result(ptr(buf), n(buf)) }
}
