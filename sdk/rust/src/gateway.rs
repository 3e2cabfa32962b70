use std::time::Duration;

use crate::abi::{self, func};
use crate::buffer::len32;
use crate::error::{check, Error, Result};
use crate::sys;

/// Records who the request belongs to (an API key's owner, a JWT subject),
/// for the route's rate limits keyed by consumer, its `authorize.consumers`
/// and the access log. Works in `on_request`; ids are 1–256 printable ASCII
/// bytes.
pub fn set_consumer(id: &str) -> Result<()> {
    let n = len32(func::SET_CONSUMER, id.as_bytes())?;
    check(func::SET_CONSUMER, unsafe { sys::set_consumer(id.as_ptr(), n) }).map(drop)
}

/// Records the claims the plugin established, one JSON object (typically a
/// verified token's payload: `sub`, `scope`, `groups`, …), for the route's
/// `authorize` policy. Works in `on_request`; at most 16 KiB (`TOO_LARGE`),
/// and anything but a JSON object is `BAD_ARGUMENT`. Set only what was
/// verified: the gateway trusts it. [`crate::json::Json::to_json`] builds
/// the text.
pub fn set_claims(claims: &[u8]) -> Result<()> {
    if claims.len() > abi::MAX_CLAIMS {
        return Err(Error::new(func::SET_CLAIMS, abi::TOO_LARGE));
    }
    check(func::SET_CLAIMS, unsafe { sys::set_claims(claims.as_ptr(), claims.len() as i32) }).map(drop)
}

/// Replaces the cache key the route computes for this request (still scoped
/// to the route). Works in `on_request`; `UNAVAILABLE` when the route has no
/// cache; keys are 1–1024 printable ASCII bytes.
pub fn set_cache_key(key: &str) -> Result<()> {
    let n = len32(func::CACHE_SET_KEY, key.as_bytes())?;
    check(func::CACHE_SET_KEY, unsafe { sys::cache_set_key(key.as_ptr(), n) }).map(drop)
}

/// Whether the gateway's feature flag `name` is on for this request's user;
/// `NOT_FOUND` for a flag the config does not declare. Works in
/// `on_request` and `on_response`.
pub fn flag_enabled(name: &str) -> Result<bool> {
    let n = len32(func::FLAG_ENABLED, name.as_bytes())?;
    check(func::FLAG_ENABLED, unsafe { sys::flag_enabled(name.as_ptr(), n) }).map(|r| r == 1)
}

/// The outcome of [`rate_limit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Whether the cost was charged.
    pub allowed: bool,
    /// The quota left after this call.
    pub remaining: i64,
    /// When denied: until the cost would fit.
    pub retry_after: Duration,
}

/// Charges `cost` against the route's rate limit called `name` for the
/// subject `key` (a tenant, a consumer: named the way the limit is keyed),
/// or only consults it when `cost` is 0. `NOT_FOUND` when the route has no
/// limit of that name. Works in `on_request` and `on_response`.
pub fn rate_limit(name: &str, key: &str, cost: i64) -> Result<Limit> {
    let n = len32(func::RATE_LIMIT, name.as_bytes())?;
    let k = len32(func::RATE_LIMIT, key.as_bytes())?;
    let mut out = [0u8; 16];
    let rc =
        check(func::RATE_LIMIT, unsafe { sys::rate_limit(name.as_ptr(), n, key.as_ptr(), k, cost, out.as_mut_ptr()) })?;
    let mut left = [0u8; 8];
    let mut wait = [0u8; 8];
    left.copy_from_slice(&out[..8]);
    wait.copy_from_slice(&out[8..]);
    let wait = i64::from_le_bytes(wait);
    Ok(Limit {
        allowed: rc == 1,
        remaining: i64::from_le_bytes(left),
        retry_after: Duration::from_millis(if wait > 0 { wait as u64 } else { 0 }),
    })
}

/// A public-key signature algorithm the host verifies (the JWS names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum SignatureAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256 = abi::ALG_RS256,
    /// RSASSA-PSS with SHA-256 and a 32-byte salt.
    PS256 = abi::ALG_PS256,
    /// ECDSA on P-256 with SHA-256; the signature is r||s, 64 bytes.
    ES256 = abi::ALG_ES256,
    /// Ed25519; the signature is 64 bytes.
    EdDSA = abi::ALG_EDDSA,
}

/// Whether `sig` is a valid `alg` signature of `msg` by the public key `key`
/// (DER: a SubjectPublicKeyInfo, or for RSA also a PKCS#1 RSAPublicKey),
/// verified by the host in native code, which caches parsed keys. A wrong or
/// malformed signature is `Ok(false)`; `BAD_ARGUMENT` for a key that cannot
/// be used with `alg`, `TOO_LARGE` for a message over 16 MiB. Works in every
/// hook.
pub fn verify_signature(alg: SignatureAlg, key: &[u8], msg: &[u8], sig: &[u8]) -> Result<bool> {
    if msg.len() > abi::MAX_VERIFY_MESSAGE {
        return Err(Error::new(func::CRYPTO_VERIFY, abi::TOO_LARGE));
    }
    let k = len32(func::CRYPTO_VERIFY, key)?;
    let s = len32(func::CRYPTO_VERIFY, sig)?;
    let rc =
        unsafe { sys::crypto_verify(alg as i32, key.as_ptr(), k, msg.as_ptr(), msg.len() as i32, sig.as_ptr(), s) };
    check(func::CRYPTO_VERIFY, rc).map(|r| r == 1)
}

/// `Ok(())` when the host can verify `alg` signatures with `key`, else
/// `BAD_ARGUMENT`. Call it from `init` for every configured key, so that a
/// key the gateway cannot use is a config error.
pub fn check_public_key(alg: SignatureAlg, key: &[u8]) -> Result<()> {
    verify_signature(alg, key, &[], &[]).map(drop)
}
