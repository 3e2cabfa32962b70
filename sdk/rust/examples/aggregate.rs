//! aggregate: a wasmgate plugin in Rust that answers a request by fanning
//! out to several services at once and merging their JSON answers into one
//! object keyed by part name. The parts go out in ONE outbound batch
//! (`http_batch`: the host runs them in parallel, the hook waits once); the
//! route's own upstream is never called. A subset of the Go plugin
//! plugins/aggregate.
//!
//! Config:
//!
//! ```yaml
//! config:
//!   parts:                        # required, 1 to 64
//!     - {name: user, url: "upstream://users/users/{query.user}", timeout: 300ms}
//!     - {name: feed, url: "upstream://feed/feed?user={query.user}"}
//!     - {name: status, url: "http://127.0.0.1:9000/status", timeout: 0.5}
//!   mode: partial                 # or strict (the default)
//! ```
//!
//! - `name` is the part's key in the answer (letters, digits, `_`, `-`;
//!   unique; not `errors`).
//! - `url` is `upstream://NAME/path?query` (balanced over the gateway's
//!   upstream NAME) or `http://host:port/path?query`; the route must allow
//!   it (`plugins[].outbound: {upstreams: [...], hosts: [...]}`).
//!   `{query.NAME}` is replaced by the request's query parameter NAME,
//!   percent-encoded; a request without it (or with it empty) is answered
//!   400.
//! - `timeout` bounds the part: `300ms`, `2s` or a number of seconds
//!   (default: the plugin's call deadline, which bounds the whole batch:
//!   give the plugin `limits.call_timeout` above the largest part timeout).
//!
//! A part fails when it times out, cannot connect, is not allowed, answers a
//! status outside 200-299, or answers something that is not JSON. The answer
//! is 200 `application/json`:
//!
//! ```text
//! {"user": {...}, "feed": null, "errors": {"feed": "timeout"}}
//! ```
//!
//! with `null` for a failed part and `errors` (only when a part failed)
//! saying why, in `partial` mode. In `strict` mode a failed part, and in
//! `partial` mode the failure of every part, makes the answer 502:
//! `{"error": "part \"feed\" failed: timeout", "failed": {"feed": "timeout"}}`.

use std::time::Duration;

use wasmgate::json::{self, Json};
use wasmgate::{Action, HookError, OutboundError, OutboundRequest, OutboundResult, Plugin, Request};

const MAX_PARTS: usize = wasmgate::abi::MAX_BATCH;
const ERRORS_KEY: &str = "errors";

/// A piece of a URL template.
enum Piece {
    Text(String),
    Query(String),
}

struct Part {
    name: String,
    url: Vec<Piece>,
    timeout: Duration,
}

struct Aggregate {
    parts: Vec<Part>,
    partial: bool,
}

/// Splits a URL at its `{query.NAME}` placeholders.
fn template(url: &str) -> Result<Vec<Piece>, String> {
    if !url.starts_with("upstream://") && !url.starts_with("http://") {
        return Err(format!("url {}: want upstream://NAME/path or http://host:port/path", json::quote(url)));
    }
    if url.bytes().any(|c| c <= b' ' || c == 0x7f) {
        return Err(format!("url {}: no spaces or control characters", json::quote(url)));
    }
    let bad = || format!("url {}: only {{query.NAME}} may be substituted", json::quote(url));
    let mut pieces = Vec::new();
    let mut rest = url;
    while let Some(open) = rest.find(|c| c == '{' || c == '}') {
        let inner = rest[open..].strip_prefix("{query.").ok_or_else(bad)?;
        let close = inner.find('}').ok_or_else(bad)?;
        let name = &inner[..close];
        if name.is_empty() || name.contains('{') {
            return Err(bad());
        }
        if open > 0 {
            pieces.push(Piece::Text(rest[..open].to_string()));
        }
        pieces.push(Piece::Query(name.to_string()));
        rest = &inner[close + 1..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest.to_string()));
    }
    Ok(pieces)
}

/// A timeout: "300ms", "2s", "1.5s", or a number of seconds, in (0, 1h];
/// whole milliseconds, rounded up.
fn timeout(v: &Json) -> Option<Duration> {
    let (number, scale) = match v {
        Json::Number(n) => (n.as_str(), 1000),
        Json::String(s) => match s.strip_suffix("ms") {
            Some(n) => (n, 1),
            None => (s.strip_suffix('s')?, 1000),
        },
        _ => return None,
    };
    // Digits with an optional fraction, read without floating point.
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(int, 7) || (number.contains('.') && !digits(frac, 9)) {
        return None;
    }
    let pow = 10u64.pow(frac.len() as u32);
    let frac_ms = (frac.parse::<u64>().unwrap_or(0) * scale + pow - 1) / pow;
    let ms = int.parse::<u64>().ok()? * scale + frac_ms;
    if ms == 0 || ms > 3_600_000 {
        return None;
    }
    Some(Duration::from_millis(ms))
}

/// Percent-encodes everything but unreserved characters, so that a value
/// cannot change the shape of the URL it goes in.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a part failed, `None` when it did not.
fn failure(r: &OutboundResult) -> Option<String> {
    let why = match r.error() {
        Some(OutboundError::Timeout) => "timeout".to_string(),
        Some(OutboundError::Network) => "connect or network error".to_string(),
        Some(OutboundError::NotAllowed) => "destination not allowed by the route's outbound config".to_string(),
        Some(OutboundError::Other(_)) => "request failed".to_string(),
        None if !(200..300).contains(&r.status) => format!("status {}", r.status),
        None => return None,
    };
    Some(why)
}

fn answer(req: &Request, status: u16, body: &Json) -> Result<Action, HookError> {
    let mut text = body.to_json();
    text.push('\n');
    let resp = req.send_response(status, text.as_bytes())?;
    resp.set_header("Content-Type", "application/json")?;
    Ok(Action::Stop)
}

impl Plugin for Aggregate {
    fn init(config: &[u8]) -> Result<Self, HookError> {
        let cfg = json::parse_config(config)?;
        let f = cfg.fields("")?;
        f.only(&["parts", "mode"])?;
        let partial = match f.str("mode")? {
            None | Some("strict") => false,
            Some("partial") => true,
            Some(m) => return Err(format!(r#""mode": {}: want strict or partial"#, json::quote(m)).into()),
        };
        let list = f.objects("parts")?;
        if list.is_empty() {
            return Err(r#"missing "parts": list {name, url} for each service to call"#.into());
        }
        if list.len() > MAX_PARTS {
            return Err(format!(r#""parts": {} parts, at most {MAX_PARTS}"#, list.len()).into());
        }
        let mut parts: Vec<Part> = Vec::new();
        for (i, p) in list.iter().enumerate() {
            p.only(&["name", "url", "timeout"])?;
            let name = p.str("name")?.filter(|n| !n.is_empty()).ok_or(format!(r#"parts.{i}: missing "name""#))?;
            if !name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') {
                return Err(
                    format!(r#"parts.{i}: name {}: use letters, digits, "_" and "-""#, json::quote(name)).into()
                );
            }
            if name == ERRORS_KEY {
                return Err(format!(r#"parts.{i}: name "{ERRORS_KEY}" is the member listing failed parts"#).into());
            }
            if parts.iter().any(|o| o.name == name) {
                return Err(format!("parts.{i}: duplicate name {}", json::quote(name)).into());
            }
            let url = p.str("url")?.filter(|u| !u.is_empty()).ok_or(format!(r#"parts.{i}: missing "url""#))?;
            let url = template(url).map_err(|e| format!("parts.{i}: {e}"))?;
            let timeout = match p.get("timeout") {
                None | Some(Json::Null) => Duration::ZERO,
                Some(v) => timeout(v).ok_or(format!(
                    r#"parts.{i}: "timeout" {}: want a duration like 300ms or 2s (at most 1h), or seconds"#,
                    v.to_json()
                ))?,
            };
            parts.push(Part { name: name.to_string(), url, timeout });
        }
        Ok(Aggregate { parts, partial })
    }

    fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
        let query = req.query();
        let mut reqs = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            let mut url = String::new();
            for piece in &p.url {
                match piece {
                    Piece::Text(s) => url.push_str(s),
                    Piece::Query(name) => match wasmgate::query_param(&query, name) {
                        Some(v) if !v.is_empty() => url.push_str(&escape(&v)),
                        _ => {
                            let why = format!("missing query parameter {}", json::quote(name));
                            return answer(req, 400, &Json::Object(vec![("error".into(), why.into())]));
                        }
                    },
                }
            }
            reqs.push(OutboundRequest::get(&url).timeout(p.timeout));
        }

        // One batch: the host runs every part at once.
        let results = wasmgate::fetch(&reqs)?;

        let mut members = Vec::with_capacity(self.parts.len() + 1);
        let mut failed = Vec::new();
        for (p, r) in self.parts.iter().zip(&results) {
            let value = match failure(r) {
                Some(why) => Err(why),
                None => json::parse(&r.body).map_err(|_| "answer is not JSON".to_string()),
            };
            match value {
                Ok(v) => members.push((p.name.clone(), v)),
                Err(why) => {
                    members.push((p.name.clone(), Json::Null));
                    failed.push((p.name.clone(), Json::String(why)));
                }
            }
        }
        if !failed.is_empty() && (!self.partial || failed.len() == self.parts.len()) {
            let (name, why) = &failed[0];
            let error = format!("part {} failed: {}", json::quote(name), why.as_str().unwrap_or(""));
            let body = Json::Object(vec![("error".into(), error.into()), ("failed".into(), Json::Object(failed))]);
            return answer(req, 502, &body);
        }
        if !failed.is_empty() {
            members.push((ERRORS_KEY.to_string(), Json::Object(failed)));
        }
        answer(req, 200, &Json::Object(members))
    }
}

wasmgate::plugin!(Aggregate);
