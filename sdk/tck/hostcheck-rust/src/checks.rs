//! The checks (sdk/tck/hostcheck/doc.go, "Config keys": check), each as
//! the Go guest's checks.go does it, in the same order of host calls.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use wasmgate::json::{self, Json};
use wasmgate::{Action, Counter, Gauge, Histogram, HookError, Level, OutboundRequest, Request, Response};

use crate::raw;
use crate::report::{hex, text, Report, ToJson};
use crate::Hostcheck;

type Hook = Result<Action, HookError>;

/// The ABI code of an SDK result: 0 for `Ok`, the host's (or the SDK's own
/// check's) negative code for `Err`.
pub fn code<T>(r: &wasmgate::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code,
    }
}

/// How a (buf, len) -> size function honours the buffer convention of
/// sdk/ABI.md section 3.
struct Probe {
    /// With len 0: the size alone.
    size0: i32,
    /// With a 3-byte buffer: still the full size.
    small_ret: i32,
    /// An 8-byte buffer after that call: 3 bytes written, "#####" untouched.
    small: [u8; 8],
    /// With a buffer of size0 bytes, and what it holds then.
    full_ret: i32,
    full: Vec<u8>,
}

fn probe(mut call: impl FnMut(&mut [u8]) -> i32) -> Probe {
    let size0 = call(&mut []);
    let mut small = *b"########";
    let small_ret = call(&mut small[..3]);
    let (mut full_ret, mut full) = (0, Vec::new());
    if size0 >= 0 {
        full = vec![0u8; size0 as usize];
        full_ret = call(&mut full);
    }
    Probe { size0, small_ret, small, full_ret, full }
}

impl ToJson for Probe {
    /// {"size0", "small_ret", "small_bytes", "full_ret", "full"}.
    fn into_json(self) -> Json {
        Report::new()
            .with("size0", self.size0)
            .with("small_ret", self.small_ret)
            .with("small_bytes", text(&self.small))
            .with("full_ret", self.full_ret)
            .with("full", text(&self.full))
            .into_json()
    }
}

/// Answers locally with `v` as JSON.
fn respond(req: &Request, status: u16, v: Report) -> Hook {
    let mut body = v.text();
    body.push('\n');
    let resp = req.send_response(status, body.as_bytes())?;
    resp.set_header("Content-Type", "application/json")?;
    Ok(Action::Stop)
}

/// An integer query parameter (`None` when absent or not an integer).
fn query_int(req: &Request, name: &str) -> Option<i64> {
    req.query_param(name)?.parse().ok()
}

/// A float query parameter (NaN and inf spelled as Rust parses them).
fn query_float(req: &Request, name: &str) -> Option<f64> {
    req.query_param(name)?.parse().ok()
}

/// What a body range read gave: {"n", "size", "bytes", "code"}.
fn body_range(r: wasmgate::Result<(usize, u64)>, buf: &[u8]) -> Report {
    let (n, size) = *r.as_ref().unwrap_or(&(0, 0));
    Report::new().with("n", n).with("size", size).with("bytes", text(&buf[..n])).with("code", code(&r))
}

impl Hostcheck {
    /// Reads everything of the request, edits it, and replaces its body with
    /// the report, which on_response reads back (the request as sent
    /// upstream) and hands to the client.
    pub(crate) fn inspect_request(&self, req: &Request) -> Hook {
        let mut r = Report::new();
        r.set("method", req.method());
        r.set("path", req.path());
        r.set("query", req.query());
        let q = req.query_param("q");
        r.set("query_param_q_found", q.is_some());
        r.set("query_param_q", q.unwrap_or_default());
        r.set("client_ip", req.client_ip());
        let v = req.header("x-probe"); // names are case-insensitive
        r.set("header_probe_found", v.is_some());
        r.set("header_probe", v.unwrap_or_default());
        r.set("header_absent_found", req.header("X-Absent").is_some());
        r.set("header_absent_code", raw::header_get(0, "X-Absent", &mut []));
        r.set("header_values_multi", req.header_values("X-Multi"));
        r.set("header_values_absent_code", raw::header_values(0, "X-Absent", &mut []));
        r.set("header_names", req.header_names());

        let body = req.body();
        r.set("body_code", code(&body));
        r.set("body", text(&body.unwrap_or_default()));
        let mut buf = [0u8; 4];
        let got = req.body_range(2, &mut buf);
        let size = got.as_ref().map_or(0, |&(_, size)| size);
        r.set("body_range", body_range(got, &buf));
        let got = req.body_range(size + 5, &mut buf);
        let (n, size) = *got.as_ref().unwrap_or(&(0, 0));
        r.set("body_range_past_end", Report::new().with("n", n).with("size", size).with("code", code(&got)));
        let got = req.body_range(0, &mut []);
        let size = got.as_ref().map_or(0, |&(_, size)| size);
        r.set("body_size_only", Report::new().with("size", size).with("code", code(&got)));
        r.set("body_negative_offset_code", raw::body_get(0, -1, &mut []));

        r.set("bad_kind_header_get_code", raw::header_get(2, "X-Probe", &mut []));
        r.set("bad_kind_header_set_code", raw::header_set(-1, "X-Probe", "v"));
        r.set("bad_kind_body_get_code", raw::body_get(7, 0, &mut []));
        r.set("bad_name_get_code", raw::header_get(0, "bad name", &mut []));
        r.set("bad_name_set_code", code(&req.set_header("bad name", "v")));
        r.set("bad_value_crlf_code", code(&req.set_header("X-Bad", "a\r\nb")));
        r.set("bad_value_nul_code", code(&req.add_header("X-Bad", "a\0b")));
        r.set("content_length_set_code", code(&req.set_header("Content-Length", "5")));
        r.set("transfer_encoding_add_code", code(&req.add_header("Transfer-Encoding", "chunked")));
        r.set("content_length_remove_code", code(&req.remove_header("content-length")));

        r.set("set_code", code(&req.set_header("X-Set", "set-value")));
        r.set("add_code", code(&req.add_header("X-Multi", "added")));
        r.set("remove_code", code(&req.remove_header("X-Remove")));
        r.set("remove_absent_code", code(&req.remove_header("X-Never-Sent")));
        r.set("header_values_after_add", req.header_values("X-Multi"));
        r.set("removed_found", req.header("X-Remove").is_some());
        r.set("host_set_code", code(&req.set_header("Host", "hostcheck.test")));

        if let Some(p) = req.header("X-Set-Path") {
            r.set("set_path_code", code(&req.set_path(&p)));
            r.set("path_after", req.path());
            r.set("query_after", req.query());
        }
        r.set("set_path_no_slash_code", code(&req.set_path("no-slash")));
        r.set("set_path_bad_escape_code", code(&req.set_path("/a%zz")));
        r.set("set_path_dot_params_code", code(&req.set_path("/..;/b")));
        r.set("set_path_query_space_code", code(&req.set_path("/a?b c")));
        r.set("set_path_empty_code", code(&req.set_path("")));

        r.set("config", text(&self.cfg_raw));
        let mut cfg = vec![0u8; raw::config_get(&mut []).max(0) as usize];
        raw::config_get(&mut cfg);
        r.set("config_get", text(&cfg));
        let now = wasmgate::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        r.set("time_now", now);
        r.set("time_now_raw", raw::time_now());
        let mut rnd = [0u8; 16];
        r.set("random_code", code(&wasmgate::fill_random(&mut rnd)));
        r.set("random", hex(&rnd));
        r.set("random_raw_ret", raw::random_get(&mut [0u8; 5]));
        r.set("random_zero_len_ret", raw::random_get_at(0xffff_fff0, 0));
        if self.cfg.big_body > 0 {
            let big = vec![0u8; self.cfg.big_body as usize];
            r.set("body_set_too_large_code", code(&req.set_body(&big)));
            r.set("send_response_too_large_code", raw::send_response(200, &big));
        }
        r.set("send_response_bad_status_code", raw::send_response(600, &[]));
        r.set("response_status_before_send", raw::response_status());

        req.set_body(r.text().as_bytes())?;
        req.set_header("Content-Type", "application/json")?;
        Ok(Action::Continue)
    }

    /// Reads the upstream's response and the request as sent, checks that
    /// the request is read-only now, edits the response and answers with both
    /// reports.
    pub(crate) fn inspect_response(&self, resp: &Response) -> Result<(), HookError> {
        let mut r = Report::new();
        r.set("status", resp.status());
        r.set("status_raw", raw::response_status());
        let v = resp.header("x-upstream");
        r.set("header_upstream_found", v.is_some());
        r.set("header_upstream", v.unwrap_or_default());
        r.set("header_values_multi", resp.header_values("X-Resp-Multi"));
        r.set("header_names", resp.header_names());
        let up = resp.body();
        r.set("upstream_body_code", code(&up));
        r.set("upstream_body", text(&up.unwrap_or_default()));
        let mut buf = [0u8; 5];
        let got = resp.body_range(1, &mut buf);
        r.set("body_range", body_range(got, &buf));

        let req = resp.request();
        r.set("req_method", req.method());
        r.set("req_path", req.path());
        r.set("req_query", req.query());
        r.set("req_client_ip", req.client_ip());
        r.set("req_header_set", req.header("X-Set").unwrap_or_default());
        r.set("req_host", req.header("Host").unwrap_or_default());
        let req_report = req.body()?;
        r.set("req_set_header_code", code(&req.set_header("X-Late", "1")));
        r.set("req_add_header_code", code(&req.add_header("X-Late", "1")));
        r.set("req_remove_header_code", code(&req.remove_header("X-Set")));
        r.set("req_set_body_code", code(&req.set_body(b"late")));
        r.set("req_set_path_code", code(&req.set_path("/late")));
        r.set("send_response_code", raw::send_response(200, &[]));

        r.set("set_status_600_code", raw::response_set_status(600));
        r.set("set_status_99_code", raw::response_set_status(99));
        r.set("set_status_code", code(&resp.set_status(203)));
        r.set("status_after", resp.status());
        r.set("resp_set_code", code(&resp.set_header("X-Resp-Set", "1")));
        r.set("resp_add_code", code(&resp.add_header("X-Resp-Multi", "b")));
        r.set("resp_remove_code", code(&resp.remove_header("X-Upstream-Remove")));
        r.set("resp_content_length_code", code(&resp.set_header("Content-Length", "1")));
        r.set("resp_bad_value_code", code(&resp.set_header("X-Resp-Bad", "a\nb")));
        r.set("resp_header_values_after_add", resp.header_values("X-Resp-Multi"));
        if self.cfg.big_body > 0 {
            r.set("resp_body_set_too_large_code", code(&resp.set_body(&vec![0u8; self.cfg.big_body as usize])));
        }
        // The request report as JSON, or as a string if it is not JSON.
        let request = json::parse(&req_report).unwrap_or_else(|_| Json::String(text(&req_report)));
        let mut out = Report::new().with("request", request).with("response", r).text();
        out.push('\n');
        resp.set_header("Content-Type", "application/json")?;
        resp.set_body(out.as_bytes())?;
        Ok(())
    }

    /// Records what on_request may not do before send_response, and (local)
    /// what it may do after. The response calls before send_response are raw:
    /// the SDK has no `Response` before it.
    pub(crate) fn phase_request(&self, req: &Request) -> Hook {
        let before = Report::new()
            .with("response_status", raw::response_status())
            .with("response_set_status", raw::response_set_status(200))
            .with("header_get_resp", raw::header_get(1, "X-A", &mut []))
            .with("header_values_resp", raw::header_values(1, "X-A", &mut []))
            .with("header_names_resp", raw::header_names(1, &mut []))
            .with("header_set_resp", raw::header_set(1, "X-A", "1"))
            .with("header_add_resp", raw::header_add(1, "X-A", "1"))
            .with("header_remove_resp", raw::header_remove(1, "X-A"))
            .with("body_get_resp", raw::body_get(1, 0, &mut []))
            .with("body_set_resp", raw::body_set(1, b"x"))
            .with("request_method", raw::request_method(&mut []))
            .with("header_set_req", code(&req.set_header("X-Phase-Req", "1")))
            .with("kv_get", raw::kv_get("phase-absent", &mut []))
            .with("metric_record", raw::metric_record(raw::metric_define(0, "hc_phase"), 1.0))
            .with("http_batch_result", raw::http_batch_result(&mut []))
            .with("http_batch_empty_ret", raw::http_batch(&[0, 0, 0, 0]));
        let mut out = Report::new()
            .with("initialize", self.initialize_probe.clone())
            .with("init", self.init_probe.clone())
            .with("request", before);
        if !self.cfg.local {
            req.set_body(out.text().as_bytes())?;
            return Ok(Action::Continue);
        }
        let resp = req.send_response(418, b"pending")?;
        let after = Report::new()
            .with("response_status", raw::response_status())
            .with("header_set_resp", code(&resp.set_header("X-Local", "yes")))
            .with("header_get_resp", raw::header_get(1, "X-Local", &mut []))
            .with("header_names_resp_ok", raw::header_names(1, &mut []) > 0)
            .with("body_get_resp", raw::body_get(1, 0, &mut []))
            .with("response_set_status", raw::response_set_status(202))
            .with("request_method", raw::request_method(&mut []))
            .with("header_set_req", code(&req.set_header("X-Phase-Req", "2")))
            .with("status_after", raw::response_status());
        out.set("request_after_send", after);
        resp.set_body(out.text().as_bytes())?;
        Ok(Action::Stop)
    }

    /// Runs the configured batch and answers with every result, then checks
    /// the batch functions' conventions and errors.
    pub(crate) fn outbound_request(&self, req: &Request) -> Hook {
        let reqs: Vec<OutboundRequest> = self
            .cfg
            .batch
            .iter()
            .map(|c| OutboundRequest {
                method: c.method.clone(),
                url: c.url.clone(),
                headers: c.headers.clone(),
                body: c.body.clone().into_bytes(),
                timeout: Duration::from_millis(c.timeout_ms.max(0) as u64),
            })
            .collect();
        let mut r = Report::new();
        let results = wasmgate::fetch(&reqs);
        r.set("code", code(&results));
        let mut out = Vec::new();
        for res in results.unwrap_or_default() {
            let mut o = Report::new()
                .with("status", res.status)
                .with("duration_ms", res.duration.as_secs_f64() * 1000.0)
                .with("body", text(&res.body));
            if let Some(e) = res.error() {
                o.set("err", e.to_string());
            }
            // The first value of each name, as the Go guest's map keeps it.
            let mut headers = Report::new();
            let mut seen: Vec<&str> = Vec::new();
            for (name, value) in &res.headers {
                if !seen.contains(&name.as_str()) {
                    seen.push(name);
                    headers.set(name, value.as_str());
                }
            }
            if !seen.is_empty() {
                o.set("headers", headers);
            }
            out.push(o);
        }
        r.set("results", out);
        // The results of the last batch stay readable, with the buffer
        // convention, until the next http_batch.
        let p = probe(raw::http_batch_result);
        r.set(
            "result_probe",
            Report::new()
                .with("size0", p.size0)
                .with("small_ret", p.small_ret)
                .with("small_hex", hex(&p.small))
                .with("full_ret", p.full_ret),
        );
        r.set("malformed_code", raw::http_batch(&[1, 0, 0, 0, 5]));
        r.set("result_after_malformed", raw::http_batch_result(&mut []));
        r.set("too_many_code", raw::http_batch(&encode_gets(65, &self.cfg.batch[0].url)));
        r.set("empty_batch_ret", raw::http_batch(&[0, 0, 0, 0]));
        let bad_method = wasmgate::fetch(&[OutboundRequest::new("BAD METHOD", &self.cfg.batch[0].url)]);
        r.set("bad_method_code", code(&bad_method));
        let bad_header = wasmgate::fetch(&[OutboundRequest::get(&self.cfg.batch[0].url).header("X-Bad", "a\r\nb")]);
        r.set("bad_header_code", code(&bad_header));
        respond(req, 200, r)
    }

    /// Appends the tag to X-Chain and counts the call in the KV store; with
    /// stop it answers locally.
    pub(crate) fn chain_request(&self, req: &Request) -> Hook {
        let tag = &self.cfg.tag;
        let v = match req.header("X-Chain") {
            Some(prev) => format!("{prev},{tag}"),
            None => tag.clone(),
        };
        req.set_header("X-Chain", &v)?;
        wasmgate::kv_incr("chain_requests", 1, Duration::ZERO)?;
        if !self.cfg.stop {
            return Ok(Action::Continue);
        }
        let resp = req.send_response(200, format!("stopped by {tag}; X-Chain={v}\n").as_bytes())?;
        resp.set_header("X-Chain-Resp", &format!("local:{tag}"))?;
        Ok(Action::Stop)
    }

    /// Appends the tag to the response's X-Chain-Resp.
    pub(crate) fn chain_response(&self, resp: &Response) -> Result<(), HookError> {
        let tag = &self.cfg.tag;
        let v = match resp.header("X-Chain-Resp") {
            Some(prev) => format!("{prev},{tag}"),
            None => tag.clone(),
        };
        Ok(resp.set_header("X-Chain-Resp", &v)?)
    }
}

/// Records what on_response may not do (write the request, answer locally)
/// and what it may, and adds it to the on_request report the request
/// carried upstream.
pub fn phase_response(resp: &Response) -> Result<(), HookError> {
    let req = resp.request();
    let r = Report::new()
        .with("request_set_path", code(&req.set_path("/x")))
        .with("header_set_req", code(&req.set_header("X-A", "1")))
        .with("header_add_req", code(&req.add_header("X-A", "1")))
        .with("header_remove_req", code(&req.remove_header("X-A")))
        .with("body_set_req", code(&req.set_body(b"x")))
        .with("header_set_req_raw", raw::header_set(0, "X-A", "1"))
        .with("send_response", raw::send_response(200, &[]))
        .with("request_method", raw::request_method(&mut []))
        .with("header_get_req", raw::header_get(0, "X-Phase-Req", &mut []))
        .with("response_status", raw::response_status())
        .with("response_set_status", raw::response_set_status(201))
        .with("header_set_resp", code(&resp.set_header("X-Phase-Resp", "1")))
        .with("kv_get", raw::kv_get("phase-absent", &mut []))
        .with("metric_record", raw::metric_record(raw::metric_define(0, "hc_phase"), 1.0))
        .with("http_batch_empty", raw::http_batch(&[0, 0, 0, 0]))
        .with("set_consumer", code(&wasmgate::set_consumer("c")))
        .with("set_claims", code(&wasmgate::set_claims(b"{}")));
    let body = req.body()?;
    let mut members = match json::parse(&body) {
        Ok(Json::Object(m)) => m,
        Ok(other) => {
            return Err(
                format!("phase: the request body is not the on_request report: a JSON {}", other.type_name()).into()
            )
        }
        Err(e) => return Err(format!("phase: the request body is not the on_request report: {e}").into()),
    };
    members.retain(|(k, _)| k != "response");
    members.push(("response".into(), r.into_json()));
    resp.set_body(Json::Object(members).to_json().as_bytes())?;
    Ok(())
}

/// One KV operation named by the query, answered with the outcome:
/// ?op=get|set|delete|incr|set_raw|get_raw&key=K&value=V&ttl_ms=N&delta=N;
/// key_len=N uses a key of N bytes instead.
pub fn kv_request(req: &Request) -> Hook {
    let op = req.query_param("op").unwrap_or_default();
    let mut key = req.query_param("key").unwrap_or_default();
    if let Some(n) = query_int(req, "key_len") {
        key = "k".repeat(n.max(0) as usize);
    }
    let value = req.query_param("value").unwrap_or_default();
    let ttl_ms = query_int(req, "ttl_ms").unwrap_or(0);
    let delta = query_int(req, "delta").unwrap_or(0);
    let ttl = Duration::from_millis(ttl_ms.max(0) as u64);
    let mut r = Report::new().with("op", op.as_str());
    match op.as_str() {
        "get" => {
            let v = wasmgate::kv_get(&key);
            r.set("code", code(&v));
            r.set("value", text(&v.unwrap_or_default()));
        }
        "get_raw" => r.set("probe", probe(|b| raw::kv_get(&key, b))),
        "set" => r.set("code", code(&wasmgate::kv_set(&key, value.as_bytes(), ttl))),
        "set_raw" => r.set("code", raw::kv_set(&key, value.as_bytes(), ttl_ms)),
        "delete" => r.set("code", code(&wasmgate::kv_delete(&key))),
        "incr" => {
            let v = wasmgate::kv_incr(&key, delta, ttl);
            r.set("code", code(&v));
            r.set("result", v.unwrap_or(0));
        }
        _ => return respond(req, 400, Report::new().with("error", format!("unknown op {}", json::quote(&op)))),
    }
    respond(req, 200, r)
}

// SDK-declared metrics, recorded by the metrics check next to the raw ones.
static SDK_COUNTER: Counter = Counter::new("hc_sdk_counter");
static SDK_GAUGE: Gauge = Gauge::new("hc_sdk_gauge");
static SDK_HISTOGRAM: Histogram = Histogram::new("hc_sdk_histogram");

/// Defines hc_counter, hc_gauge and hc_hist and records the query's
/// counter=, gauge= and hist= values; fill=1 defines metrics until the host
/// refuses. It answers with every id and code.
pub fn metrics_request(req: &Request) -> Hook {
    let mut r = Report::new();
    if req.query_param("fill").is_some() {
        let (mut last, mut fail_code, mut fail_at) = (-1, 0, -1);
        for i in 0..64 {
            let id = raw::metric_define(0, &format!("fill_{i}"));
            if id < 0 {
                fail_code = id;
                fail_at = i;
                break;
            }
            last = id;
        }
        r.set("last_id", last);
        r.set("fail_code", fail_code);
        r.set("fail_at", fail_at);
        return respond(req, 200, r);
    }
    let counter = raw::metric_define(0, "hc_counter");
    let gauge = raw::metric_define(1, "hc_gauge");
    let hist = raw::metric_define(2, "hc_hist");
    r.set("ids", Report::new().with("counter", counter).with("gauge", gauge).with("hist", hist));
    r.set("counter_again", raw::metric_define(0, "hc_counter"));
    r.set("counter_name_as_gauge", raw::metric_define(1, "hc_counter"));
    r.set("bad_name_code", raw::metric_define(0, "Bad-Name"));
    r.set("empty_name_code", raw::metric_define(0, ""));
    r.set("long_name_code", raw::metric_define(0, &format!("a{}", "b".repeat(63))));
    r.set("max_name_ok", raw::metric_define(0, &format!("a{}", "b".repeat(62))) >= 0);
    r.set("bad_kind_code", raw::metric_define(3, "hc_kind"));
    r.set("unknown_id_code", raw::metric_record(31, 1.0));
    r.set("negative_id_code", raw::metric_record(-1, 1.0));
    r.set("nan_code", raw::metric_record(gauge, f64::NAN));
    r.set("counter_negative_code", raw::metric_record(counter, -1.0));
    r.set("counter_inf_code", raw::metric_record(counter, f64::INFINITY));
    r.set("gauge_negative_code", raw::metric_record(gauge, -2.5));
    if let Some(v) = query_float(req, "counter") {
        r.set("counter_code", raw::metric_record(counter, v));
    }
    if let Some(v) = query_float(req, "gauge") {
        r.set("gauge_code", raw::metric_record(gauge, v));
    }
    if let Some(v) = query_float(req, "hist") {
        r.set("hist_code", raw::metric_record(hist, v));
    }
    r.set("sdk_counter_code", code(&SDK_COUNTER.add(2.0)));
    r.set("sdk_gauge_code", code(&SDK_GAUGE.set(7.0)));
    r.set("sdk_histogram_code", code(&SDK_HISTOGRAM.observe(0.5)));
    respond(req, 200, r)
}

/// Logs at every level with the query's marker m, plus the edge cases;
/// fail=MSG fails the hook with MSG, fail_long=1 with a 2000-byte set_error,
/// flood=N logs N lines.
pub fn log_request(req: &Request) -> Hook {
    let m = req.query_param("m").unwrap_or_default();
    if let Some(msg) = req.query_param("fail") {
        return Err(HookError(msg));
    }
    if req.query_param("fail_long").is_some() {
        // The host keeps 1 KiB of it; the SDK must not record its own.
        raw::set_error(&"e".repeat(2000));
        return Err(HookError::recorded());
    }
    if let Some(n) = query_int(req, "flood") {
        for i in 0..n.min(1000) {
            raw::log(1, &format!("hc-flood {m} {i}"));
        }
        return respond(req, 200, Report::new().with("flooded", n));
    }
    let r = Report::new()
        .with("debug", raw::log(0, &format!("hc-log debug {m}")))
        .with("info", raw::log(1, &format!("hc-log info {m}")))
        .with("warn", raw::log(2, &format!("hc-log warn {m}")))
        .with("error", raw::log(3, &format!("hc-log error {m}")))
        .with("bad_level_4", raw::log(4, &format!("hc-log bad {m}")))
        .with("bad_level_minus", raw::log(-1, &format!("hc-log bad {m}")))
        .with("long", raw::log(1, &format!("hc-long {m} {}", "L".repeat(5000))))
        .with("empty", raw::log(1, ""));
    wasmgate::log(Level::Warn, &format!("hc-sdk {m}"));
    // WASI fd_write; Rust's stdout is line-buffered, flushed here anyway.
    let mut stdout = std::io::stdout();
    stdout.write_all(format!("hc-stdout {m}\n").as_bytes())?;
    stdout.flush()?;
    std::io::stderr().write_all(format!("hc-stderr {m}\n").as_bytes())?;
    respond(req, 200, r)
}

/// A batch of n GET requests of url (sdk/ABI.md, batch encoding), past the
/// SDK's own checks.
fn encode_gets(n: usize, url: &str) -> Vec<u8> {
    let mut b = Vec::new();
    wasmgate::batch::append_count(&mut b, n);
    for _ in 0..n {
        wasmgate::batch::append_request::<&str, &str>(&mut b, 0, b"GET", url.as_bytes(), &[], b"");
    }
    b
}

/// Probes the buffer convention of every getter and answers with what it
/// saw.
pub fn buffers_request(req: &Request) -> Hook {
    wasmgate::kv_set("buffers", b"kv-value-0123456789", Duration::ZERO)?;
    let long = req.header("X-Long").unwrap_or_default(); // over the SDK's first 512-byte buffer: it retries
    let r = Report::new()
        .with("request_method", probe(raw::request_method))
        .with("request_path", probe(raw::request_path))
        .with("request_query", probe(raw::request_query))
        .with("request_client_ip", probe(raw::request_client_ip))
        .with("header_get", probe(|b| raw::header_get(0, "X-Long", b)))
        .with("header_values", probe(|b| raw::header_values(0, "X-Multi", b)))
        .with("header_names", probe(|b| raw::header_names(0, b)))
        .with("body_get", probe(|b| raw::body_get(0, 0, b) as i32))
        .with("body_get_offset", probe(|b| raw::body_get(0, 4, b) as i32))
        .with("config_get", probe(raw::config_get))
        .with("kv_get", probe(|b| raw::kv_get("buffers", b)))
        .with("zero_len_bogus_ptr", raw::header_get_at(0, "X-Long", 0xffff_fff0, 0))
        .with("sdk_long_header_len", long.len());
    respond(req, 200, r)
}

/// Drives set_consumer, set_claims, cache_set_key and rate_limit from the
/// query: consumer=ID, claims=JSON (claims_size=N: an object of N bytes) and
/// cache_key=KEY are set and the request goes on; limit=NAME&key=K&cost=N
/// charges a limit and answers what the host said.
pub fn gateway_request(req: &Request) -> Hook {
    if let Some(id) = req.query_param("consumer") {
        if let Err(e) = wasmgate::set_consumer(&id) {
            return respond(req, 500, Report::new().with("set_consumer", e.code));
        }
    }
    let mut claims = req.query_param("claims");
    if let Some(n) = query_int(req, "claims_size") {
        if n >= 8 {
            claims = Some(format!(r#"{{"x":"{}"}}"#, "a".repeat(n as usize - 8)));
        }
    }
    if let Some(c) = claims {
        if let Err(e) = wasmgate::set_claims(c.as_bytes()) {
            return respond(req, 500, Report::new().with("set_claims", e.code));
        }
    }
    if let Some(key) = req.query_param("cache_key") {
        if let Err(e) = wasmgate::set_cache_key(&key) {
            return respond(req, 500, Report::new().with("cache_set_key", e.code));
        }
    }
    let name = match req.query_param("limit") {
        Some(name) => name,
        None => return Ok(Action::Continue),
    };
    let key = req.query_param("key").unwrap_or_default();
    let cost = query_int(req, "cost").unwrap_or(0);
    let l = wasmgate::rate_limit(&name, &key, cost);
    let (allowed, remaining, retry_ms) =
        l.as_ref().map_or((false, 0, 0), |l| (l.allowed, l.remaining, l.retry_after.as_millis() as i64));
    respond(
        req,
        200,
        Report::new()
            .with("rc", code(&l))
            .with("allowed", allowed)
            .with("remaining", remaining)
            .with("retry_ms", retry_ms),
    )
}

/// Answers, for each name of ?names=a,b,..., what flag_enabled said:
/// {"NAME": {"on": bool, "code": N}}.
pub fn flags_request(req: &Request) -> Hook {
    let names = req.query_param("names").unwrap_or_default();
    let mut r = Report::new();
    for name in names.split(',') {
        let on = wasmgate::flag_enabled(name);
        r.set(name, Report::new().with("on", *on.as_ref().unwrap_or(&false)).with("code", code(&on)));
    }
    respond(req, 200, r)
}
