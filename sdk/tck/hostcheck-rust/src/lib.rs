//! hostcheck in Rust: the conformance kit's guest (sdk/tck) written with the
//! Rust SDK (sdk/rust). It implements the specification of the Go guest's
//! package documentation (sdk/tck/hostcheck/doc.go): the same config keys,
//! checks, report keys and log lines, so that the runner, tck.Run with
//! tck.RustGuest, asserts the same values for both. It is a test guest, not
//! a plugin to deploy.
//!
//! It calls every host function of sdk/ABI.md section 4 through the SDK
//! where the Go guest uses sdk/go, and through raw imports (the SDK's
//! `wasmgate::sys`, wrapped in [`raw`]) where the Go guest uses raw ones.
//! Where the Rust SDK's types rule a call out, the raw import asks the host
//! instead: the SDK hands a plugin its `Request` only in the request and
//! response hooks and its `Response` only from `send_response` or in
//! `on_response`, so the phase check's request calls in `on_init` and its
//! response calls in `on_request` before `send_response` (the Go guest's
//! zero `wasmgate.Request` and `wasmgate.Response`) are raw.
//!
//! What is Rust's own:
//!
//! - `_initialize` is the SDK's (`wasmgate::plugin!`): it runs the C
//!   constructors, then `Plugin::initialize`, where the phase check's
//!   "initialize" probe runs and "hostcheck _initialize log line" is logged.
//! - The log check writes its stdout and stderr lines with `std::io` (WASI
//!   fd_write), stdout flushed before the hook returns.
//! - The log check's `fail_long` records 2000 bytes with the raw
//!   `set_error` and fails with `HookError::recorded()`, so that the host's
//!   1 KiB cut (not the SDK's) is what the runner sees.
//! - Outbound errors are the SDK's `OutboundError` texts:
//!   "wasmgate: outbound request timed out" and
//!   "wasmgate.http_batch: not allowed".
//!
//! Build: see Cargo.toml (`target/wasm32-wasi/release/hostcheck.wasm`).

mod checks;
mod config;
mod raw;
mod report;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use wasmgate::json::Json;
use wasmgate::{Action, HookError, OutboundRequest, Plugin, Request, Response};

use crate::config::Config;
use crate::report::{hex, Report};

thread_local! {
    /// What the host answered during `_initialize` (before `on_init`):
    /// `init` moves it into the plugin value.
    static INITIALIZE_PROBE: RefCell<Option<Json>> = const { RefCell::new(None) };
}

/// The instance's `on_init` calls (always 1: a second would show in the
/// instance check's "ID/CALLS/INITS").
static INITS: AtomicU32 = AtomicU32::new(0);

/// The plugin value of an instance. An instance runs one hook at a time.
pub struct Hostcheck {
    cfg: Config,
    /// The config bytes `on_init` received.
    cfg_raw: Vec<u8>,
    /// What the host answered during `_initialize` and `on_init` (the phase
    /// check; `on_init` is probed only for it).
    initialize_probe: Json,
    init_probe: Option<Json>,
    /// Tells instances apart; `calls` counts this instance's `on_request`
    /// calls.
    id: String,
    calls: u64,
}

impl Plugin for Hostcheck {
    fn initialize() {
        let p = probe_initialize();
        INITIALIZE_PROBE.with(|s| *s.borrow_mut() = Some(p));
    }

    fn init(config: &[u8]) -> Result<Self, HookError> {
        let cfg = config::parse(config)?;
        INITS.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 8];
        wasmgate::fill_random(&mut id)?;
        let init_probe = if cfg.check == "phase" { Some(probe_on_init()) } else { None };
        Ok(Hostcheck {
            cfg,
            cfg_raw: config.to_vec(),
            initialize_probe: INITIALIZE_PROBE.with(|s| s.borrow_mut().take()).unwrap_or(Json::Null),
            init_probe,
            id: hex(&id),
            calls: 0,
        })
    }

    fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
        self.calls += 1;
        match self.cfg.check.as_str() {
            "inspect" => self.inspect_request(req),
            "phase" => self.phase_request(req),
            "kv" => checks::kv_request(req),
            "metrics" => checks::metrics_request(req),
            "log" => checks::log_request(req),
            "outbound" => self.outbound_request(req),
            "chain" => self.chain_request(req),
            "instance" => {
                req.set_header("X-Instance", &self.instance_state())?;
                Ok(Action::Continue)
            }
            "buffers" => checks::buffers_request(req),
            "gateway" => checks::gateway_request(req),
            "flags" => checks::flags_request(req),
            _ => Ok(Action::Continue),
        }
    }

    fn on_response(&mut self, resp: &Response) -> Result<(), HookError> {
        match self.cfg.check.as_str() {
            "inspect" => self.inspect_response(resp),
            "phase" => checks::phase_response(resp),
            "chain" => self.chain_response(resp),
            "instance" => Ok(resp.set_header("X-Instance-Resp", &self.instance_state())?),
            _ => Ok(()),
        }
    }
}

wasmgate::plugin!(Hostcheck => on_request, on_response);

impl Hostcheck {
    /// "ID/CALLS/INITS" of this instance.
    fn instance_state(&self) -> String {
        format!("{}/{}/{}", self.id, self.calls, INITS.load(Ordering::Relaxed))
    }
}

/// Runs during `_initialize`: the request, KV and outbound functions must
/// answer NOT_ALLOWED, the "any" functions work.
fn probe_initialize() -> Json {
    let mut rnd = [0u8; 8];
    Report::new()
        .with("request_method", raw::request_method(&mut []))
        .with("header_get", raw::header_get(0, "X-Anything", &mut []))
        .with("kv_get", raw::kv_get("k", &mut []))
        .with("http_batch", raw::http_batch(&[]))
        .with("config_get", raw::config_get(&mut []))
        .with("metric_define", raw::metric_define(0, "hc_initialize"))
        .with("log", raw::log(1, "hostcheck _initialize log line"))
        .with("time_now_ok", raw::time_now() > 0)
        .with("random_get", raw::random_get(&mut rnd))
        .into()
}

/// What the host answers in `on_init`: NOT_ALLOWED for the request,
/// response, KV, metric recording and outbound functions; the "any"
/// functions work. The SDK's functions where it has them (no `Request` or
/// `Response` exists here: those are raw).
fn probe_on_init() -> Json {
    let id = raw::metric_define(0, "hc_on_init");
    let fetch = wasmgate::fetch(&[OutboundRequest::get("http://127.0.0.1:1/")]);
    let incr = wasmgate::kv_incr("k", 1, Duration::ZERO);
    let mut rnd = [0u8; 8];
    Report::new()
        .with("request_method", raw::request_method(&mut []))
        .with("request_path", raw::request_path(&mut []))
        .with("request_query", raw::request_query(&mut []))
        .with("request_client_ip", raw::request_client_ip(&mut []))
        .with("request_set_path", raw::request_set_path("/x"))
        .with("header_get", raw::header_get(0, "X-A", &mut []))
        .with("header_values", raw::header_values(0, "X-A", &mut []))
        .with("header_names", raw::header_names(0, &mut []))
        .with("header_set", raw::header_set(0, "X-A", "1"))
        .with("header_add", raw::header_add(0, "X-A", "1"))
        .with("header_remove", raw::header_remove(0, "X-A"))
        .with("body_get", raw::body_get(0, 0, &mut []))
        .with("body_set", raw::body_set(0, b"x"))
        .with("response_status", raw::response_status())
        .with("response_set_status", raw::response_set_status(200))
        .with("send_response", raw::send_response(200, &[]))
        .with("kv_get", raw::kv_get("k", &mut []))
        .with("kv_set", checks::code(&wasmgate::kv_set("k", b"v", Duration::ZERO)))
        .with("kv_delete", checks::code(&wasmgate::kv_delete("k")))
        .with("kv_incr", checks::code(&incr))
        .with("metric_define_ok", id >= 0)
        .with("metric_record", raw::metric_record(id, 1.0))
        .with("http_batch", checks::code(&fetch))
        .with("http_batch_result", raw::http_batch_result(&mut []))
        .with("config_get", raw::config_get(&mut []))
        .with("log", raw::log(0, "hostcheck on_init log line"))
        .with("set_error", raw::set_error(""))
        .with("time_now_ok", raw::time_now() > 0)
        .with("random_get", raw::random_get(&mut rnd))
        .with("set_consumer", checks::code(&wasmgate::set_consumer("c")))
        .with("set_claims", checks::code(&wasmgate::set_claims(b"{}")))
        .into()
}

impl From<Report> for Json {
    fn from(r: Report) -> Json {
        report::ToJson::into_json(r)
    }
}
