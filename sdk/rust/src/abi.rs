//! The names, codes and limits of the wasmgate plugin ABI v1 (sdk/ABI.md),
//! as the Go declarations in sdk/abi have them. The Go tests of this crate
//! (sdk/rust/sdk_test.go) check these values against sdk/abi.

/// The ABI version this crate implements.
pub const VERSION: u32 = 1;

/// The import module of the host functions.
pub const MODULE_NAME: &str = "wasmgate";
/// The version marker this crate exports (never called).
pub const VERSION_MARKER: &str = "wasmgate_abi_v1";

/// Hook results: `on_request` and `on_response` go on (`on_init`: the
/// config is accepted).
pub const CONTINUE: i32 = 0;
/// `on_request`: a local response was set with `send_response`.
pub const STOP: i32 = 1;

/// Return codes of host functions (sdk/ABI.md section 3).
pub const NOT_FOUND: i32 = -1;
/// An argument is invalid.
pub const BAD_ARGUMENT: i32 = -2;
/// Not allowed in this hook, or to this destination.
pub const NOT_ALLOWED: i32 = -3;
/// Over a limit.
pub const TOO_LARGE: i32 = -4;
/// Unavailable (temporarily, or a route without a cache for `cache_set_key`).
pub const UNAVAILABLE: i32 = -5;

/// The name sdk/ABI.md gives a return code ("NOT_FOUND"), or "" for a value
/// that is not one.
pub fn code_name(code: i32) -> &'static str {
    match code {
        NOT_FOUND => "NOT_FOUND",
        BAD_ARGUMENT => "BAD_ARGUMENT",
        NOT_ALLOWED => "NOT_ALLOWED",
        TOO_LARGE => "TOO_LARGE",
        UNAVAILABLE => "UNAVAILABLE",
        _ => "",
    }
}

/// Statuses a plugin may give a response: final ones only.
pub const MIN_STATUS: i32 = 200;
/// The largest status a plugin may give a response.
pub const MAX_STATUS: i32 = 599;

/// Whether a response with this status has no body (1xx, 204, 304).
pub fn bodyless_status(status: i32) -> bool {
    status < 200 || status == 204 || status == 304
}

/// Kinds of the header and body functions: the request.
pub const KIND_REQUEST: i32 = 0;
/// Kinds of the header and body functions: the response.
pub const KIND_RESPONSE: i32 = 1;

/// Levels of `log`.
pub const LOG_DEBUG: i32 = 0;
/// Info level.
pub const LOG_INFO: i32 = 1;
/// Warn level.
pub const LOG_WARN: i32 = 2;
/// Error level.
pub const LOG_ERROR: i32 = 3;

/// Kinds of `metric_define`: a counter.
pub const METRIC_COUNTER: i32 = 0;
/// A gauge.
pub const METRIC_GAUGE: i32 = 1;
/// A histogram.
pub const METRIC_HISTOGRAM: i32 = 2;

/// Statuses of an `http_batch` result that are not HTTP statuses: the
/// request's timeout or the hook's deadline passed.
pub const STATUS_TIMEOUT: i32 = -1;
/// Connect or network error.
pub const STATUS_NETWORK: i32 = -2;
/// The destination is not allowed for the route.
pub const STATUS_NOT_ALLOWED: i32 = -3;
/// Any other failure, e.g. a response over its size limit.
pub const STATUS_OTHER: i32 = -4;

/// Signature algorithms of `crypto_verify`: RSASSA-PKCS1-v1_5 with SHA-256.
pub const ALG_RS256: i32 = 1;
/// RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt.
pub const ALG_PS256: i32 = 2;
/// ECDSA on P-256 with SHA-256; signature r||s, 64 bytes.
pub const ALG_ES256: i32 = 3;
/// Ed25519 (pure); signature 64 bytes.
pub const ALG_EDDSA: i32 = 4;

/// Bytes of a `set_error` message the host keeps.
pub const MAX_ERROR_MESSAGE: usize = 1 << 10;
/// Bytes of a log line the host keeps.
pub const MAX_LOG_MESSAGE: usize = 4 << 10;
/// Bytes in a KV key.
pub const MAX_KV_KEY: usize = 256;
/// Metrics one plugin defines.
pub const MAX_METRICS: usize = 32;
/// Bytes in a metric name.
pub const MAX_METRIC_NAME: usize = 63;
/// Requests in one `http_batch`.
pub const MAX_BATCH: usize = 64;
/// Bytes of one encoded batch.
pub const MAX_BATCH_BYTES: usize = 16 << 20;
/// Headers of one outbound request.
pub const MAX_BATCH_HEADERS: usize = 256;
/// Bytes of a `set_consumer` id and of a `rate_limit` key.
pub const MAX_CONSUMER: usize = 256;
/// Bytes of a `cache_set_key` key.
pub const MAX_CACHE_KEY: usize = 1024;
/// Bytes of a `set_claims` JSON object.
pub const MAX_CLAIMS: usize = 16 << 10;
/// Bytes of a `crypto_verify` key.
pub const MAX_VERIFY_KEY: usize = 16 << 10;
/// Bytes of a `crypto_verify` message.
pub const MAX_VERIFY_MESSAGE: usize = 16 << 20;

/// Names of the host functions, as errors name them.
pub mod func {
    #![allow(missing_docs)]
    pub const REQUEST_METHOD: &str = "request_method";
    pub const REQUEST_PATH: &str = "request_path";
    pub const REQUEST_SET_PATH: &str = "request_set_path";
    pub const REQUEST_QUERY: &str = "request_query";
    pub const REQUEST_CLIENT_IP: &str = "request_client_ip";
    pub const HEADER_GET: &str = "header_get";
    pub const HEADER_VALUES: &str = "header_values";
    pub const HEADER_NAMES: &str = "header_names";
    pub const HEADER_SET: &str = "header_set";
    pub const HEADER_ADD: &str = "header_add";
    pub const HEADER_REMOVE: &str = "header_remove";
    pub const BODY_GET: &str = "body_get";
    pub const BODY_SET: &str = "body_set";
    pub const RESPONSE_STATUS: &str = "response_status";
    pub const RESPONSE_SET_STATUS: &str = "response_set_status";
    pub const SEND_RESPONSE: &str = "send_response";
    pub const CONFIG_GET: &str = "config_get";
    pub const LOG: &str = "log";
    pub const SET_ERROR: &str = "set_error";
    pub const TIME_NOW: &str = "time_now";
    pub const RANDOM_GET: &str = "random_get";
    pub const KV_GET: &str = "kv_get";
    pub const KV_SET: &str = "kv_set";
    pub const KV_DELETE: &str = "kv_delete";
    pub const KV_INCR: &str = "kv_incr";
    pub const METRIC_DEFINE: &str = "metric_define";
    pub const METRIC_RECORD: &str = "metric_record";
    pub const HTTP_BATCH: &str = "http_batch";
    pub const HTTP_BATCH_RESULT: &str = "http_batch_result";
    pub const CRYPTO_VERIFY: &str = "crypto_verify";
    pub const SET_CONSUMER: &str = "set_consumer";
    pub const SET_CLAIMS: &str = "set_claims";
    pub const CACHE_SET_KEY: &str = "cache_set_key";
    pub const RATE_LIMIT: &str = "rate_limit";
    pub const FLAG_ENABLED: &str = "flag_enabled";
}

/// The bytes of an HTTP token (RFC 9110 section 5.6.2).
fn tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Whether `s` is a non-empty HTTP token: what the host accepts as a header
/// name or a method. Check names taken from the config in `init`, so that a
/// bad one is a config error rather than `BAD_ARGUMENT` on every request.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(tchar)
}

/// Whether `s` is a metric name `metric_define` accepts:
/// `[a-z][a-z0-9_]{0,62}`.
pub fn valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_METRIC_NAME
        && b[0].is_ascii_lowercase()
        && b[1..].iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_metric_names() {
        assert!(is_token("X-Api-Key"));
        assert!(!is_token(""));
        assert!(!is_token("bad name"));
        assert!(valid_metric_name("requests_total"));
        assert!(!valid_metric_name("Requests"));
        assert!(!valid_metric_name(&"a".repeat(64)));
        assert_eq!(code_name(TOO_LARGE), "TOO_LARGE");
        assert_eq!(code_name(7), "");
    }
}
