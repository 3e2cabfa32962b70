//! headers: a wasmgate plugin in Rust that edits headers both ways.
//!
//! Config (every key optional):
//!
//! ```yaml
//! config:
//!   request:  {X-From-Rust: "yes"}   # set on every request sent upstream
//!   response: {X-Served-By: rust}    # set on every response
//!   deny_prefix: /private            # paths under it are answered 403 here
//! ```
//!
//! On every request it also sets `X-Rust-Count` (a counter shared by all
//! instances, in the plugin's key-value store) and counts the request in the
//! metric `requests`. On every response it adds `X-Rust-Method` (read from
//! the request) and `X-Rust-Status`.

use std::time::Duration;

use wasmgate::json::{self, Json};
use wasmgate::{Action, Counter, HookError, Plugin, Request, Response};

static REQUESTS: Counter = Counter::new("requests");

struct Headers {
    request: Vec<(String, String)>,
    response: Vec<(String, String)>,
    deny_prefix: Option<String>,
}

/// A `{name: value}` object of header values, its names checked.
fn header_map(f: &json::Fields, key: &str) -> Result<Vec<(String, String)>, HookError> {
    let mut out = Vec::new();
    if let Some(m) = f.object(key)? {
        for (name, v) in m.members() {
            if !wasmgate::abi::is_token(name) {
                return Err(format!("{key}: {} is not a valid header name", json::quote(name)).into());
            }
            let value = match v {
                Json::String(s) => s.clone(),
                Json::Number(n) => n.clone(),
                Json::Bool(b) => b.to_string(),
                other => return Err(format!("{key}.{name}: want a string, got {}", other.type_name()).into()),
            };
            out.push((name.clone(), value));
        }
    }
    Ok(out)
}

impl Plugin for Headers {
    fn init(config: &[u8]) -> Result<Self, HookError> {
        let cfg = json::parse_config(config)?;
        let f = cfg.fields("")?;
        f.only(&["request", "response", "deny_prefix"])?;
        let deny_prefix = f.str("deny_prefix")?.map(str::to_string);
        if let Some(p) = &deny_prefix {
            if !p.starts_with('/') {
                return Err(r#""deny_prefix" must start with "/""#.into());
            }
        }
        Ok(Headers { request: header_map(&f, "request")?, response: header_map(&f, "response")?, deny_prefix })
    }

    fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
        REQUESTS.inc()?;
        if let Some(prefix) = &self.deny_prefix {
            if req.path().starts_with(prefix.as_str()) {
                let resp = req.send_response(403, b"{\"error\":\"denied by the rust plugin\"}\n")?;
                resp.set_header("Content-Type", "application/json")?;
                for (name, value) in &self.response {
                    resp.set_header(name, value)?;
                }
                return Ok(Action::Stop);
            }
        }
        for (name, value) in &self.request {
            req.set_header(name, value)?;
        }
        let n = wasmgate::kv_incr("count", 1, Duration::ZERO)?;
        req.set_header("X-Rust-Count", &n.to_string())?;
        Ok(Action::Continue)
    }

    fn on_response(&mut self, resp: &Response) -> Result<(), HookError> {
        for (name, value) in &self.response {
            resp.set_header(name, value)?;
        }
        resp.set_header("X-Rust-Method", &resp.request().method())?;
        resp.set_header("X-Rust-Status", &resp.status().to_string())?;
        Ok(())
    }
}

wasmgate::plugin!(Headers => on_request, on_response);
