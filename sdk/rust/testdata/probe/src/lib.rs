//! probe: a test plugin of sdk/rust/sdk_test.go (TestProbe). By the last
//! path segment it fails in each way a hook can, or answers a JSON report
//! of what the SDK's wrappers returned, which the Go test compares with
//! what it sent and what the gateway knows.

use std::time::Duration;

use wasmgate::json::{quote, Json};
use wasmgate::{Action, HookError, OutboundRequest, Plugin, Request, Response, SignatureAlg};

struct Probe;

/// An error's text, or "ok".
fn code<T>(r: wasmgate::Result<T>) -> Json {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => wasmgate::abi::code_name(e.code).into(),
    }
}

fn strings(v: Vec<String>) -> Json {
    Json::Array(v.into_iter().map(Json::from).collect())
}

impl Plugin for Probe {
    fn initialize() {
        let ok = if wasmgate::now_nanos() > 0 { "ok" } else { "zero" };
        wasmgate::log(wasmgate::Level::Info, &format!("probe initialize: time {ok}"));
    }

    fn init(config: &[u8]) -> Result<Self, HookError> {
        wasmgate::no_config(config)?;
        Ok(Probe)
    }

    fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
        let path = req.path();
        match path.rsplit('/').next().unwrap_or("") {
            "fail" => return Err("told to fail".into()),
            "recorded" => {
                wasmgate::set_error("recorded by the hook itself");
                return Err(HookError::recorded());
            }
            "panic" => panic!("boom at {}", path),
            "stop" => return Ok(Action::Stop),
            "send-then-continue" => {
                req.send_response(201, b"made")?;
                return Ok(Action::Continue);
            }
            "fetch" => return fetch(req),
            "report" => {}
            _ => return Ok(Action::Continue),
        }
        let mut buf = [0u8; 3];
        let (n, size) = req.body_range(2, &mut buf)?;
        let body = req.body()?;
        let mut names = req.header_names();
        names.retain(|n| n.eq_ignore_ascii_case("x-multi"));
        wasmgate::kv_set("k", b"v1", Duration::from_secs(60))?;
        let kv = wasmgate::kv_get("k")?;
        let mut random = [0u8; 16];
        wasmgate::fill_random(&mut random)?;
        let report = Json::Object(vec![
            ("method".into(), req.method().into()),
            ("path".into(), path.clone().into()),
            ("query".into(), req.query().into()),
            ("q".into(), req.query_param("q").unwrap_or_default().into()),
            ("client_ip".into(), req.client_ip().into()),
            ("multi".into(), strings(req.header_values("X-Multi"))),
            ("multi_names".into(), strings(names)),
            ("absent".into(), Json::Bool(req.header("X-Absent").is_none())),
            ("body".into(), String::from_utf8_lossy(&body).into_owned().into()),
            ("range".into(), String::from_utf8_lossy(&buf[..n]).into_owned().into()),
            ("size".into(), (size as i64).into()),
            ("kv".into(), String::from_utf8_lossy(&kv).into_owned().into()),
            ("kv_delete".into(), code(wasmgate::kv_delete("k"))),
            ("kv_gone".into(), code(wasmgate::kv_get("k"))),
            ("kv_incr".into(), wasmgate::kv_incr("n", 5, Duration::ZERO)?.into()),
            ("random".into(), Json::Bool(random != [0u8; 16])),
            ("now".into(), Json::Bool(wasmgate::now_nanos() > 1_600_000_000_000_000_000)),
            ("flag".into(), code(wasmgate::flag_enabled("no-such-flag"))),
            ("limit".into(), code(wasmgate::rate_limit("no-such-limit", "k", 1))),
            ("cache_key".into(), code(wasmgate::set_cache_key("k"))),
            ("claims_not_object".into(), code(wasmgate::set_claims(b"[1]"))),
            ("claims".into(), code(wasmgate::set_claims(br#"{"sub":"probe"}"#))),
            ("consumer".into(), code(wasmgate::set_consumer("probe"))),
            ("bad_key".into(), code(wasmgate::check_public_key(SignatureAlg::EdDSA, b"not a key"))),
            ("bad_path".into(), code(req.set_path("no-slash"))),
            ("bad_header".into(), code(req.set_header("bad name", "v"))),
            ("response_status".into(), (req.send_response(299, b"").map(|r| r.status() as i64).unwrap_or(-1)).into()),
        ]);
        let resp = req.send_response(200, report.to_json().as_bytes())?;
        resp.set_header("Content-Type", "application/json")?;
        Ok(Action::Stop)
    }

    fn on_response(&mut self, resp: &Response) -> Result<(), HookError> {
        if resp.request().path().ends_with("/rewrite-body") {
            let body = resp.body()?;
            let text =
                format!("{{\"status\":{},\"upstream\":{}}}", resp.status(), quote(&String::from_utf8_lossy(&body)));
            resp.set_body(text.as_bytes())?;
            resp.set_status(203)?;
            resp.remove_header("X-Upstream")?;
        }
        Ok(())
    }
}

/// Fetches the URLs of the X-Fetch header (space-separated) and answers
/// their statuses, errors, and the first body.
fn fetch(req: &Request) -> Result<Action, HookError> {
    let urls = req.header("X-Fetch").unwrap_or_default();
    let reqs: Vec<OutboundRequest> = urls
        .split(' ')
        .map(|u| {
            OutboundRequest::new("POST", u).header("X-Part", "p").body(b"hi".to_vec()).timeout(Duration::from_secs(2))
        })
        .collect();
    let results = wasmgate::fetch(&reqs)?;
    let items = results
        .iter()
        .map(|r| {
            Json::Object(vec![
                ("status".into(), (r.status as i64).into()),
                ("error".into(), r.error().map(|e| e.to_string()).unwrap_or_default().into()),
                ("upstream".into(), r.header("x-upstream").unwrap_or("").into()),
                ("body".into(), String::from_utf8_lossy(&r.body).into_owned().into()),
            ])
        })
        .collect();
    req.send_response(200, Json::Array(items).to_json().as_bytes())?;
    Ok(Action::Stop)
}

wasmgate::plugin!(Probe => on_request, on_response);
