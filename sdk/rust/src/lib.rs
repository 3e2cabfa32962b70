//! The guest SDK for writing wasmgate gateway plugins in Rust. It wraps the
//! plugin ABI v1 (sdk/ABI.md) with the surface of the Go SDK (sdk/go):
//! typed access to the request and response (headers, path, query, body,
//! local responses), the config (JSON, with a strict reader), logging, time
//! and randomness, the shared key-value store, metrics, batched outbound
//! HTTP, signature verification, rate limits, the cache key, the consumer,
//! claims and feature flags. It has no dependencies.
//!
//! # A plugin
//!
//! A plugin is a `cdylib` crate built for `wasm32-wasi` (Debian's rustc
//! 1.63 and cargo, see the README for the exact build line). It implements
//! [`Plugin`] and exports it with [`plugin!`]:
//!
//! ```ignore
//! use wasmgate::{json, Action, HookError, Plugin, Request};
//!
//! struct RequireHeader { header: String }
//!
//! impl Plugin for RequireHeader {
//!     fn init(config: &[u8]) -> Result<Self, HookError> {
//!         let cfg = json::parse_config(config)?;
//!         let f = cfg.fields("")?;
//!         f.only(&["header"])?;
//!         let header = f.str("header")?.ok_or(r#"missing "header""#)?.to_string();
//!         Ok(RequireHeader { header })
//!     }
//!
//!     fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
//!         if req.header(&self.header).is_some() {
//!             return Ok(Action::Continue);
//!         }
//!         let resp = req.send_response(400, b"{\"error\":\"missing header\"}")?;
//!         resp.set_header("Content-Type", "application/json")?;
//!         Ok(Action::Stop)
//!     }
//! }
//!
//! wasmgate::plugin!(RequireHeader);
//! ```
//!
//! # The module it makes
//!
//! Linking this crate exports the version marker `wasmgate_abi_v1`.
//! [`plugin!`] exports `_initialize`, which makes the module a WASI reactor
//! (sdk/ABI.md section 1), `on_init` and the hooks it is given (`on_request`
//! by default); the gateway calls only the hooks a module exports, so a
//! plugin without `on_response` costs nothing on the response path. Without
//! `_initialize`, rustc's `wasm32-wasi` cdylib is neither a command nor a
//! reactor: wasm-ld wraps every export so that it runs the C constructors
//! (wasi-libc's environment setup) before each call; `_initialize` runs
//! them once, after instantiation, and the hooks are exported as they are.
//! A plugin writing its exports by hand uses [`reactor!`] for
//! `_initialize`.
//!
//! # Lifecycle
//!
//! The gateway instantiates the module, runs `_initialize` (and in it
//! [`Plugin::initialize`]), then calls [`Plugin::init`] once per instance with the route's config; the value it
//! returns serves that instance's hooks. An instance runs one hook at a
//! time. In the default pooled mode `on_request` and `on_response` of one
//! request may run on different instances (sdk/ABI.md section 2): keep no
//! per-request state in the plugin value; read what `on_response` needs
//! from the request ([`Response::request`]) or pass it in a request header.
//!
//! # Failures
//!
//! A hook fails by returning `Err` ([`HookError`]: any displayable error
//! converts into it, so `?` works on host calls and parsers); the message
//! goes to the gateway log, and from `init` to the operator as the config
//! error. A hook that recorded its reason itself with [`set_error`] returns
//! [`HookError::recorded`], which keeps that message. A panic is reported
//! the same way (`_initialize` installs a panic hook that records the
//! message with `set_error`), then traps. The route's
//! failure policy applies: fail_closed answers 502, fail_open skips the
//! plugin; the instance is discarded either way.
//!
//! # Native builds
//!
//! The imports exist only on `wasm32`. Elsewhere the crate compiles (so
//! `cargo test` runs a plugin's own logic natively) and every host function
//! fails with `NOT_ALLOWED`.

#![warn(missing_docs)]

pub mod abi;
mod buffer;
mod error;
mod fetch;
mod gateway;
mod host;
mod http;
pub mod json;
mod metrics;
pub mod sys;

pub use error::{Error, HookError, Result};
pub use fetch::{batch, fetch, OutboundError, OutboundRequest, OutboundResult};
pub use gateway::{
    check_public_key, flag_enabled, rate_limit, set_cache_key, set_claims, set_consumer, verify_signature, Limit,
    SignatureAlg,
};
pub use host::{fill_random, kv_delete, kv_get, kv_incr, kv_set, log, now, now_nanos, set_error, Level};
pub use http::{query_param, unescape, Request, Response};
pub use metrics::{Counter, Gauge, Histogram};

/// What `on_request` tells the gateway to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Pass the request to the next plugin, then the upstream.
    Continue,
    /// End the chain with the local response built by
    /// [`Request::send_response`]; the plugins after this one and the
    /// upstream are skipped. Stop without a successful `send_response` fails
    /// the hook.
    Stop,
}

/// A plugin: the value [`Plugin::init`] makes from the route's config serves
/// the instance's hooks. Export it with [`plugin!`].
pub trait Plugin: Sized + 'static {
    /// Runs once per instance during `_initialize`, right after
    /// instantiation and before [`Plugin::init`], like a Go plugin's package
    /// initialisation. Only the host functions sdk/ABI.md marks *any* work
    /// here (logging, time, randomness, config, crypto); keep it for work
    /// that does not depend on the config.
    fn initialize() {}

    /// Receives the plugin's config for the route (JSON, `{}` when none;
    /// sdk/ABI.md section 5) once per instance, before any request.
    /// Validate it here; an error rejects the config and its text is what the
    /// operator sees, e.g. `missing "keys"`. [`json::parse_config`] and
    /// [`json::Json::fields`] do the strict JSON part; [`no_config`] accepts
    /// only an empty config.
    fn init(config: &[u8]) -> std::result::Result<Self, HookError>;

    /// Runs for every request of a route that lists the plugin, in chain
    /// order (exported only when [`plugin!`] names `on_request`, as it does by
    /// default).
    fn on_request(&mut self, _req: &Request) -> std::result::Result<Action, HookError> {
        Ok(Action::Continue)
    }

    /// Runs for every response, in reverse chain order (exported only when
    /// [`plugin!`] names `on_response`).
    fn on_response(&mut self, _resp: &Response) -> std::result::Result<(), HookError> {
        Ok(())
    }
}

/// For a plugin that takes no config: accepts an empty object, `null` or
/// nothing, and fails for anything else.
pub fn no_config(config: &[u8]) -> std::result::Result<(), HookError> {
    match json::parse_config(config)? {
        json::Json::Null => Ok(()),
        json::Json::Object(m) if m.is_empty() => Ok(()),
        _ => {
            let text = String::from_utf8_lossy(config);
            Err(HookError(format!("this plugin takes no config, got {}", host::truncate(&text, 200))))
        }
    }
}

/// Exports a [`Plugin`]: `_initialize` (see [`reactor!`]), `on_init` and
/// the hooks named after `=>` (`on_request` when none are named).
///
/// ```ignore
/// wasmgate::plugin!(Auth);                             // on_init, on_request
/// wasmgate::plugin!(Headers => on_request, on_response);
/// wasmgate::plugin!(Stamp => on_response);             // no on_request at all
/// ```
///
/// Use it once per plugin crate (the exports are `#[no_mangle]`).
#[macro_export]
macro_rules! plugin {
    ($t:ty) => {
        $crate::plugin!($t => on_request);
    };
    ($t:ty => $($hook:ident),+ $(,)?) => {
        const _: () = {
            static WASMGATE_PLUGIN: $crate::__private::Slot<$t> = $crate::__private::Slot::new();

            #[no_mangle]
            pub extern "C" fn _initialize() {
                $crate::__private::initialize::<$t>()
            }

            #[no_mangle]
            pub extern "C" fn on_init(config_len: i32) -> i32 {
                $crate::__private::init(&WASMGATE_PLUGIN, config_len)
            }

            $( $crate::__plugin_hook!($hook, WASMGATE_PLUGIN); )+
        };
    };
}

/// Exports `_initialize` alone, for a plugin that writes its hooks by hand
/// (`#[no_mangle] pub extern "C" fn on_request() -> i32`) instead of using
/// [`plugin!`], which exports it too. It makes the module a WASI reactor:
/// the gateway calls `_initialize` once after instantiation, and it runs the
/// C constructors (wasi-libc's environment setup), as clang's
/// crt1-reactor.o does. Without it, rustc's `wasm32-wasi` cdylib exports
/// neither `_start` nor `_initialize`, and wasm-ld wraps every export so
/// that it runs the constructors before, and the destructors after, each
/// call.
#[macro_export]
macro_rules! reactor {
    () => {
        #[no_mangle]
        pub extern "C" fn _initialize() {
            $crate::__private::call_ctors()
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __plugin_hook {
    (on_request, $slot:ident) => {
        #[no_mangle]
        pub extern "C" fn on_request() -> i32 {
            $crate::__private::request(&$slot)
        }
    };
    (on_response, $slot:ident) => {
        #[no_mangle]
        pub extern "C" fn on_response() -> i32 {
            $crate::__private::response(&$slot)
        }
    };
    ($other:ident, $slot:ident) => {
        compile_error!(concat!(
            "wasmgate::plugin!: unknown hook `",
            stringify!($other),
            "`: want on_request or on_response"
        ));
    };
}

/// What [`plugin!`] expands to uses; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::cell::UnsafeCell;
    use std::sync::atomic::Ordering;

    use crate::http::LOCAL_SENT;
    use crate::{abi, host, Action, HookError, Plugin, Request, Response};

    /// The plugin value of the instance. An instance runs one hook at a
    /// time, on one thread (wasm32-wasi has no threads), so the cell is
    /// never shared.
    pub struct Slot<T>(UnsafeCell<Option<T>>);

    unsafe impl<T> Sync for Slot<T> {}

    impl<T> Slot<T> {
        #[allow(clippy::new_without_default)]
        pub const fn new() -> Slot<T> {
            Slot(UnsafeCell::new(None))
        }

        #[allow(clippy::mut_from_ref)]
        fn get(&self) -> Option<&mut T> {
            unsafe { (*self.0.get()).as_mut() }
        }

        fn set(&self, v: T) {
            unsafe { *self.0.get() = Some(v) }
        }
    }

    /// The value a failing hook returns: any value the ABI does not list
    /// fails the hook, and -1 is the one no version will assign.
    const FAILED: i32 = -1;

    /// Records why a hook failed, unless the error is
    /// [`HookError::recorded`](crate::HookError::recorded) (an empty
    /// message): the hook then said why itself with `set_error`, and the
    /// host keeps the last message it was given.
    fn record(e: &HookError) {
        if !e.message().is_empty() {
            host::set_error(e.message());
        }
    }

    fn install_panic_hook() {
        std::panic::set_hook(Box::new(|info| host::set_error(&format!("panic: {info}"))));
    }

    /// Runs the C constructors. Referring to `__wasm_call_ctors` also tells
    /// wasm-ld that constructors are taken care of, so it does not wrap the
    /// exports to run them on every call.
    pub fn call_ctors() {
        #[cfg(target_arch = "wasm32")]
        {
            extern "C" {
                fn __wasm_call_ctors();
            }
            unsafe { __wasm_call_ctors() }
        }
    }

    pub fn initialize<T: Plugin>() {
        call_ctors();
        install_panic_hook();
        T::initialize();
    }

    pub fn init<T: Plugin>(slot: &Slot<T>, config_len: i32) -> i32 {
        let config = match host::config(config_len) {
            Ok(c) => c,
            Err(e) => {
                host::set_error(&format!("reading the config: {e}"));
                return 1;
            }
        };
        match T::init(&config) {
            Ok(p) => {
                slot.set(p);
                abi::CONTINUE
            }
            Err(e) => {
                record(&e);
                1
            }
        }
    }

    fn plugin<T>(slot: &Slot<T>) -> Option<&mut T> {
        let p = slot.get();
        if p.is_none() {
            host::set_error("hook called before on_init accepted a config");
        }
        p
    }

    pub fn request<T: Plugin>(slot: &Slot<T>) -> i32 {
        LOCAL_SENT.store(false, Ordering::Relaxed);
        let p = match plugin(slot) {
            Some(p) => p,
            None => return FAILED,
        };
        let r = p.on_request(&Request::new());
        let sent = LOCAL_SENT.load(Ordering::Relaxed);
        match r {
            // A local response is built: the request must go no further.
            Ok(Action::Continue) if sent => abi::STOP,
            Ok(Action::Continue) => abi::CONTINUE,
            Ok(Action::Stop) if sent => abi::STOP,
            Ok(Action::Stop) => {
                host::set_error("on_request returned Action::Stop without a successful send_response");
                FAILED
            }
            Err(e) => {
                record(&e);
                FAILED
            }
        }
    }

    pub fn response<T: Plugin>(slot: &Slot<T>) -> i32 {
        let p = match plugin(slot) {
            Some(p) => p,
            None => return FAILED,
        };
        match p.on_response(&Response::new()) {
            Ok(()) => abi::CONTINUE,
            Err(e) => {
                record(&e);
                FAILED
            }
        }
    }
}

/// The version marker the gateway looks for (never called).
#[cfg(target_arch = "wasm32")]
#[no_mangle]
pub extern "C" fn wasmgate_abi_v1() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_config_accepts_only_empty() {
        assert!(no_config(b"").is_ok());
        assert!(no_config(b" {} ").is_ok());
        assert!(no_config(b"null").is_ok());
        assert_eq!(no_config(b"{\"a\":1}").unwrap_err().message(), "this plugin takes no config, got {\"a\":1}");
        assert!(no_config(b"{").is_err());
    }
}
