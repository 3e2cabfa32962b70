use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::abi::{self, func};
use crate::buffer::{len32, read};
use crate::error::{check, Error, Result};
use crate::sys;

/// A log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    /// Debug.
    Debug = abi::LOG_DEBUG,
    /// Info.
    Info = abi::LOG_INFO,
    /// Warn.
    Warn = abi::LOG_WARN,
    /// Error.
    Error = abi::LOG_ERROR,
}

/// Writes `msg` to the gateway log, tagged with the plugin and route (cut at
/// 4 KiB). The gateway rate-limits each plugin's lines and counts what it
/// drops; logging is best effort and reports no error. Works in every hook.
pub fn log(level: Level, msg: &str) {
    let msg = truncate(msg, abi::MAX_LOG_MESSAGE);
    unsafe { sys::log(level as i32, msg.as_ptr(), msg.len() as i32) };
}

/// Records why the current hook is failing. The message reaches the gateway
/// log and, from `init`, the config error shown to the operator. Returning
/// an error from a hook calls it for you. Messages are cut to 1 KiB (on a
/// character boundary), which is what the host keeps.
pub fn set_error(msg: &str) {
    let msg = truncate(msg, abi::MAX_ERROR_MESSAGE);
    unsafe { sys::set_error(msg.as_ptr(), msg.len() as i32) };
}

/// `s` cut to at most `n` bytes without splitting a character.
pub(crate) fn truncate(s: &str, mut n: usize) -> &str {
    if s.len() <= n {
        return s;
    }
    while n > 0 && !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// The host's wall-clock time, in nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    unsafe { sys::time_now() }
}

/// The host's wall-clock time.
pub fn now() -> SystemTime {
    let ns = now_nanos();
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Fills `buf` with cryptographically secure random bytes.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    for chunk in buf.chunks_mut(i32::MAX as usize) {
        check(func::RANDOM_GET, unsafe { sys::random_get(chunk.as_mut_ptr(), chunk.len() as i32) })?;
    }
    Ok(())
}

/// Reads the plugin's config bytes; `size` is `on_init`'s hint.
pub fn config(size: i32) -> Result<Vec<u8>> {
    if size < 0 {
        return Err(Error::new(func::CONFIG_GET, abi::BAD_ARGUMENT));
    }
    crate::buffer::read_sized(func::CONFIG_GET, size as usize, |p, n| unsafe { sys::config_get(p, n) })
}

// The key-value store is shared by every instance of the plugin (by plugin
// name) in the gateway process, and bounded (10,000 keys and 16 MiB per
// plugin by default). Keys are at most 256 bytes. It works in on_request and
// on_response; elsewhere the functions fail with NOT_ALLOWED.

/// The value of `key`; `NOT_FOUND` when absent or expired.
pub fn kv_get(key: &str) -> Result<Vec<u8>> {
    let k = len32(func::KV_GET, key.as_bytes())?;
    read(func::KV_GET, |p, n| unsafe { sys::kv_get(key.as_ptr(), k, p, n) })
}

/// Stores `value` under `key`. A `ttl` of zero means no expiry; a positive
/// one under a millisecond counts as one. `TOO_LARGE` over the store's
/// budget.
pub fn kv_set(key: &str, value: &[u8], ttl: Duration) -> Result<()> {
    let k = len32(func::KV_SET, key.as_bytes())?;
    let v = len32(func::KV_SET, value)?;
    check(func::KV_SET, unsafe { sys::kv_set(key.as_ptr(), k, value.as_ptr(), v, ttl_ms(ttl)) }).map(drop)
}

/// Removes `key`; `NOT_FOUND` when absent.
pub fn kv_delete(key: &str) -> Result<()> {
    let k = len32(func::KV_DELETE, key.as_bytes())?;
    check(func::KV_DELETE, unsafe { sys::kv_delete(key.as_ptr(), k) }).map(drop)
}

/// Atomically adds `delta` to the key's value read as a decimal integer (a
/// missing key counts as 0) and returns the new value. `ttl` applies when
/// the call creates the key. `BAD_ARGUMENT` when the stored value is not an
/// integer.
pub fn kv_incr(key: &str, delta: i64, ttl: Duration) -> Result<i64> {
    let k = len32(func::KV_INCR, key.as_bytes())?;
    let mut out = [0u8; 8];
    check(func::KV_INCR, unsafe { sys::kv_incr(key.as_ptr(), k, delta, ttl_ms(ttl), out.as_mut_ptr()) })?;
    Ok(i64::from_le_bytes(out))
}

/// A TTL in milliseconds, rounded up so that a short TTL is never 0 (no
/// expiry), saturating.
fn ttl_ms(ttl: Duration) -> i64 {
    let ms = ttl.as_millis() + u128::from(ttl.subsec_nanos() % 1_000_000 != 0);
    ms.min(i64::MAX as u128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }

    #[test]
    fn ttls() {
        assert_eq!(ttl_ms(Duration::ZERO), 0);
        assert_eq!(ttl_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_ms(Duration::from_secs(2)), 2000);
        assert!(kv_get("k").unwrap_err().is_not_allowed());
    }
}
