// The checks, in the order of the Go guest's sdk/tck/hostcheck/checks.go,
// one function per check and hook, with the same report keys. Where the Go
// guest calls sdk/go, this one calls the AssemblyScript SDK; where it makes
// a raw call, this one calls raw.ts (the import itself).
//
// The SDK's functions that only succeed or fail return the ABI code (0 or
// negative), which is what the Go guest's code(err) reports; those that
// return a value return null (or 0, false) on failure, and lastCode() is
// the code.

import {
  Action, BodyRange, ByteWriter, Counter, Gauge, Histogram, JSONWriter, Level, OutboundRequest, OutboundResult,
  Request, Response, StringBuilder, bytesToString, fail, fetch, fillRandom, flagEnabled, kvGet, kvDelete, kvIncr, kvSet,
  lastCode, lastError, log, now, parseJSON, rateLimit, request, response, setCacheKey, setClaims, setConsumer, utf8,
} from "../../assemblyscript/assembly";
import {
  rawBodyGet, rawConfigGet, rawHTTPBatch, rawHTTPBatchResult, rawHeaderGet, rawHeaderGetAt, rawHeaderNames,
  rawHeaderSet, rawHeaderValues, rawKVGet, rawKVSet, rawLog, rawMetricDefine, rawMetricRecord, rawRandomGet,
  rawRandomGetAt, rawRequestClientIP, rawRequestMethod, rawRequestPath, rawRequestQuery, rawResponseSetStatus,
  rawResponseStatus, rawSendResponse, rawSetError, rawTimeNow, writeFd,
} from "./raw";
import { Config, parseConfig, configError } from "./config";

// Per-instance state. An instance runs one hook at a time: no locks.
export class State {
  cfg: Config = new Config();
  /** The config text init received. */
  cfgRaw: string = "";
  /** What the host answered during _initialize (the entry file's top
   *  level), as JSON: only the "any" functions work there. */
  initializeProbe: string = "null";
  /** What the host answered during on_init, as JSON ("null" unless the
   *  check is phase). */
  initProbe: string = "null";
  /** Tells instances apart; calls counts on_request calls of this
   *  instance and inits its on_init calls (always 1). */
  instanceID: string = "";
  calls: i32 = 0;
  inits: i32 = 0;
}

export const state = new State();

// Helpers.

const HEX = "0123456789abcdef";

/** b in lower-case hex. */
export function hex(b: Uint8Array): string {
  const sb = new StringBuilder(b.length * 2);
  for (let i = 0; i < b.length; i++) {
    sb.appendCode(HEX.charCodeAt(b[i] >> 4));
    sb.appendCode(HEX.charCodeAt(b[i] & 15));
  }
  return sb.toString();
}

/** A parsed query parameter: ok when present and well-formed. */
class Param {
  ok: bool = false;
  int: i64 = 0;
  float: f64 = 0;
}

/** s as Go's strconv.ParseInt(s, 10, 64) reads it; ok false on a syntax
 *  error or overflow. */
function parseInt64(s: string): Param {
  const r = new Param();
  const n = s.length;
  let i = 0;
  let neg = false;
  if (n > 0 && (s.charCodeAt(0) == 0x2b || s.charCodeAt(0) == 0x2d)) {
    neg = s.charCodeAt(0) == 0x2d;
    i = 1;
  }
  if (i >= n) return r;
  let v: u64 = 0;
  const limit: u64 = neg ? <u64>i64.MAX_VALUE + 1 : <u64>i64.MAX_VALUE;
  for (; i < n; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return r;
    if (v > (limit - <u64>c) / 10) return r;
    v = v * 10 + <u64>c;
  }
  r.ok = true;
  r.int = neg ? <i64>(0 - v) : <i64>v;
  return r;
}

/** Whether s is a decimal float as strconv.ParseFloat reads it (digits,
 *  a fraction, an exponent; or NaN, Inf, Infinity with a sign). */
function floatSyntax(s: string): bool {
  const n = s.length;
  let i = 0;
  if (i < n && (s.charCodeAt(i) == 0x2b || s.charCodeAt(i) == 0x2d)) i++;
  const rest = s.substring(i).toLowerCase();
  if (rest == "inf" || rest == "infinity") return true;
  if (rest == "nan") return i == 0;
  let digits = 0;
  while (i < n && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) { i++; digits++; }
  if (i < n && s.charCodeAt(i) == 0x2e) {
    i++;
    while (i < n && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) { i++; digits++; }
  }
  if (digits == 0) return false;
  if (i < n && (s.charCodeAt(i) | 0x20) == 0x65) {
    i++;
    if (i < n && (s.charCodeAt(i) == 0x2b || s.charCodeAt(i) == 0x2d)) i++;
    let exp = 0;
    while (i < n && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) { i++; exp++; }
    if (exp == 0) return false;
  }
  return i == n;
}

/** The query parameter name as a string ("" when absent). */
function param(req: Request, name: string): string {
  const v = req.queryParam(name);
  return v === null ? "" : v;
}

/** An integer query parameter (queryInt of the Go guest). */
function queryInt(req: Request, name: string): Param {
  const v = req.queryParam(name);
  if (v === null) return new Param();
  return parseInt64(v);
}

/** A float query parameter (queryFloat of the Go guest). */
function queryFloat(req: Request, name: string): Param {
  const r = new Param();
  const v = req.queryParam(name);
  if (v === null || !floatSyntax(v)) return r;
  const l = v.toLowerCase();
  if (l == "nan") r.float = NaN;
  else if (l == "inf" || l == "+inf" || l == "infinity" || l == "+infinity") r.float = Infinity;
  else if (l == "-inf" || l == "-infinity") r.float = -Infinity;
  else r.float = parseFloat(v);
  r.ok = true;
  return r;
}

/** A (buf, len) -> size host call, for probe. */
type BufCall = (buf: Uint8Array | null) => i32;

/** How a (buf, len) -> size function honours the buffer convention of
 *  sdk/ABI.md section 3. */
class Probe {
  /** With len 0: the size alone. */
  size0: i32 = 0;
  /** With a 3-byte buffer: still the full size. */
  smallRet: i32 = 0;
  /** An 8-byte buffer after that call: 3 bytes written, "#####" untouched. */
  small: Uint8Array = new Uint8Array(8);
  /** With a buffer of size0 bytes. */
  fullRet: i32 = 0;
  full: Uint8Array = new Uint8Array(0);
}

function probe(call: BufCall): Probe {
  const p = new Probe();
  p.size0 = call(null);
  p.small.fill(0x23); // '#'
  p.smallRet = call(p.small.subarray(0, 3));
  if (p.size0 >= 0) {
    p.full = new Uint8Array(p.size0);
    p.fullRet = call(p.full);
  }
  return p;
}

/** A probe as the report's object {size0, small_ret, small_bytes,
 *  full_ret, full}. */
function writeProbe(w: JSONWriter, p: Probe): void {
  w.beginObject();
  w.key("size0").int(p.size0);
  w.key("small_ret").int(p.smallRet);
  w.key("small_bytes").string(bytesToString(p.small));
  w.key("full_ret").int(p.fullRet);
  w.key("full").string(bytesToString(p.full));
  w.endObject();
}

/** Header values or names as the Go guest reports them: null when there
 *  are none (sdk/go's HeaderValues gives a nil slice for an absent header,
 *  which encoding/json writes as null). */
function writeValues(w: JSONWriter, values: string[]): void {
  if (values.length == 0) w.null();
  else w.strings(values);
}

/** Answers locally with json (and a newline), as application/json. */
function respond(req: Request, status: i32, json: string): Action {
  const resp = req.sendResponseText(status, json + "\n");
  if (resp === null) return fail(lastError());
  if (resp.setHeader("Content-Type", "application/json") < 0) return fail(lastError());
  return Action.Stop;
}

/** The code of the last SDK call that returned a value: 0 when it did. */
function codeOf(ok: bool): i32 {
  return ok ? 0 : lastCode();
}

// The _initialize and on_init probes.

/** Runs during _initialize (the entry file's top level): the request, KV
 *  and outbound functions must answer NOT_ALLOWED, the "any" functions
 *  must work. */
export function probeInitialize(): string {
  const rnd = new Uint8Array(8);
  const w = new JSONWriter().beginObject();
  w.key("request_method").int(rawRequestMethod(null));
  w.key("header_get").int(rawHeaderGet(0, "X-Anything", null));
  w.key("kv_get").int(rawKVGet("k", null));
  w.key("http_batch").int(rawHTTPBatch(null));
  w.key("config_get").int(rawConfigGet(null));
  w.key("metric_define").int(rawMetricDefine(0, "hc_initialize"));
  w.key("log").int(rawLog(1, "hostcheck _initialize log line"));
  w.key("time_now_ok").bool(rawTimeNow() > 0);
  w.key("random_get").int(rawRandomGet(rnd));
  return w.endObject().toString();
}

/** The plugin's init: parse the config, then probe what on_init may call. */
export function onInit(config: string): string | null {
  const c = parseConfig(config);
  if (c === null) return configError;
  state.cfg = c;
  state.cfgRaw = config;
  state.inits++;
  const id = new Uint8Array(8);
  if (fillRandom(id) < 0) return lastError();
  state.instanceID = hex(id);
  if (c.check == "phase") state.initProbe = probeOnInit();
  return null;
}

/** What the host answers in on_init: NOT_ALLOWED for the request,
 *  response, KV, metric recording and outbound functions; the "any"
 *  functions work. */
function probeOnInit(): string {
  const id = rawMetricDefine(0, "hc_on_init");
  const fetched = fetch([new OutboundRequest("http://127.0.0.1:1/")]);
  const fetchCode = codeOf(fetched !== null);
  kvIncr("k", 1, 0);
  const incrCode = lastCode();
  const rnd = new Uint8Array(8);
  const w = new JSONWriter().beginObject();
  w.key("request_method").int(rawRequestMethod(null));
  w.key("request_path").int(rawRequestPath(null));
  w.key("request_query").int(rawRequestQuery(null));
  w.key("request_client_ip").int(rawRequestClientIP(null));
  w.key("request_set_path").int(request.setPath("/x"));
  w.key("header_get").int(rawHeaderGet(0, "X-A", null));
  w.key("header_values").int(rawHeaderValues(0, "X-A", null));
  w.key("header_names").int(rawHeaderNames(0, null));
  w.key("header_set").int(request.setHeader("X-A", "1"));
  w.key("header_add").int(request.addHeader("X-A", "1"));
  w.key("header_remove").int(request.removeHeader("X-A"));
  w.key("body_get").int(rawBodyGet(0, 0, null));
  w.key("body_set").int(request.setBody(utf8("x")));
  w.key("response_status").int(rawResponseStatus());
  w.key("response_set_status").int(response.setStatus(200));
  w.key("send_response").int(rawSendResponse(200, null));
  w.key("kv_get").int(rawKVGet("k", null));
  w.key("kv_set").int(kvSet("k", utf8("v"), 0));
  w.key("kv_delete").int(kvDelete("k"));
  w.key("kv_incr").int(incrCode);
  w.key("metric_define_ok").bool(id >= 0);
  w.key("metric_record").int(rawMetricRecord(id, 1));
  w.key("http_batch").int(fetchCode);
  w.key("http_batch_result").int(rawHTTPBatchResult(null));
  w.key("config_get").int(rawConfigGet(null));
  w.key("log").int(rawLog(0, "hostcheck on_init log line"));
  w.key("set_error").int(rawSetError(""));
  w.key("time_now_ok").bool(rawTimeNow() > 0);
  w.key("random_get").int(rawRandomGet(rnd));
  w.key("set_consumer").int(setConsumer("c"));
  w.key("set_claims").int(setClaims("{}"));
  return w.endObject().toString();
}

// on_request and on_response.

/** on_request: dispatches to the configured check. */
export function onRequest(req: Request): Action {
  state.calls++;
  const check = state.cfg.check;
  if (check == "inspect") return inspectRequest(req);
  if (check == "phase") return phaseRequest(req);
  if (check == "kv") return kvRequest(req);
  if (check == "metrics") return metricsRequest(req);
  if (check == "log") return logRequest(req);
  if (check == "outbound") return outboundRequest(req);
  if (check == "chain") return chainRequest(req);
  if (check == "instance") {
    if (req.setHeader("X-Instance", instanceState()) < 0) return fail(lastError());
    return Action.Continue;
  }
  if (check == "buffers") return buffersRequest(req);
  if (check == "gateway") return gatewayRequest(req);
  if (check == "flags") return flagsRequest(req);
  return Action.Continue;
}

/** on_response: dispatches to the configured check. */
export function onResponse(resp: Response): Action {
  const check = state.cfg.check;
  if (check == "inspect") return inspectResponse(resp);
  if (check == "phase") return phaseResponse(resp);
  if (check == "chain") return chainResponse(resp);
  if (check == "instance") {
    if (resp.setHeader("X-Instance-Resp", instanceState()) < 0) return fail(lastError());
    return Action.Continue;
  }
  return Action.Continue;
}

/** "id/calls/inits" of this instance. */
function instanceState(): string {
  return state.instanceID + "/" + state.calls.toString() + "/" + state.inits.toString();
}

/** For each name of ?names=a,b,..., what flag_enabled said:
 *  {"NAME": {"on": bool, "code": N}}. */
function flagsRequest(req: Request): Action {
  const names = param(req, "names").split(",");
  const w = new JSONWriter().beginObject();
  for (let i = 0; i < names.length; i++) {
    const on = flagEnabled(names[i]);
    w.key(names[i]).beginObject().key("on").bool(on).key("code").int(lastCode()).endObject();
  }
  return respond(req, 200, w.endObject().toString());
}

/** set_consumer, set_claims, cache_set_key and rate_limit from the query:
 *  consumer=ID, claims=JSON (claims_size=N: an object of N bytes) and
 *  cache_key=KEY are set and the request goes on; limit=NAME&key=K&cost=N
 *  charges a limit and answers what the host said. */
function gatewayRequest(req: Request): Action {
  const id = req.queryParam("consumer");
  if (id !== null) {
    const c = setConsumer(id);
    if (c < 0) return respond(req, 500, "{\"set_consumer\":" + c.toString() + "}");
  }
  let claims = req.queryParam("claims");
  const size = queryInt(req, "claims_size");
  if (size.ok && size.int >= 8) claims = "{\"x\":\"" + "a".repeat(<i32>size.int - 8) + "\"}";
  if (claims !== null) {
    const c = setClaims(claims);
    if (c < 0) return respond(req, 500, "{\"set_claims\":" + c.toString() + "}");
  }
  const key = req.queryParam("cache_key");
  if (key !== null) {
    const c = setCacheKey(key);
    if (c < 0) return respond(req, 500, "{\"cache_set_key\":" + c.toString() + "}");
  }
  const name = req.queryParam("limit");
  if (name === null) return Action.Continue;
  const l = rateLimit(name, param(req, "key"), queryInt(req, "cost").int);
  const w = new JSONWriter().beginObject();
  w.key("rc").int(l.code).key("allowed").bool(l.allowed).key("remaining").int(l.remaining).key("retry_ms").int(l.retryAfterMillis);
  return respond(req, 200, w.endObject().toString());
}

/** Writes a BodyRange result: {n, size, bytes, code}; bytes only with
 *  withBytes, and n only with withN. */
function writeRange(w: JSONWriter, r: BodyRange | null, buf: Uint8Array | null, withN: bool, withBytes: bool): void {
  const code = r === null ? lastCode() : 0;
  const n = r === null ? 0 : r.n;
  const size = r === null ? <i64>0 : r.size;
  w.beginObject();
  if (withN) w.key("n").int(n);
  w.key("size").int(size);
  if (withBytes && buf !== null) w.key("bytes").string(bytesToString(buf.subarray(0, n)));
  w.key("code").int(code);
  w.endObject();
}

/** Reads everything of the request, edits it, and replaces its body with
 *  the report, which on_response reads back (the request as sent
 *  upstream) and hands to the client. */
function inspectRequest(req: Request): Action {
  const cfg = state.cfg;
  const w = new JSONWriter().beginObject();
  w.key("method").string(req.method());
  w.key("path").string(req.path());
  w.key("query").string(req.query());
  const q = req.queryParam("q");
  w.key("query_param_q").string(q === null ? "" : q).key("query_param_q_found").bool(q !== null);
  w.key("client_ip").string(req.clientIP());
  const probeValue = req.header("x-probe"); // names are case-insensitive
  w.key("header_probe").string(probeValue === null ? "" : probeValue).key("header_probe_found").bool(probeValue !== null);
  w.key("header_absent_found").bool(req.header("X-Absent") !== null);
  w.key("header_absent_code").int(rawHeaderGet(0, "X-Absent", null));
  w.key("header_values_multi");
  writeValues(w, req.headerValues("X-Multi"));
  w.key("header_values_absent_code").int(rawHeaderValues(0, "X-Absent", null));
  w.key("header_names");
  writeValues(w, req.headerNames());

  const body = req.body();
  const bodyCode = codeOf(body !== null);
  w.key("body").string(body === null ? "" : bytesToString(body)).key("body_code").int(bodyCode);
  const buf = new Uint8Array(4);
  const r1 = req.bodyRange(2, buf);
  w.key("body_range");
  writeRange(w, r1, buf, true, true);
  const size = r1 === null ? <i64>0 : r1.size;
  w.key("body_range_past_end");
  writeRange(w, req.bodyRange(size + 5, buf), buf, true, false);
  w.key("body_size_only");
  writeRange(w, req.bodyRange(0, null), null, false, false);
  w.key("body_negative_offset_code").int(rawBodyGet(0, -1, null));

  w.key("bad_kind_header_get_code").int(rawHeaderGet(2, "X-Probe", null));
  w.key("bad_kind_header_set_code").int(rawHeaderSet(-1, "X-Probe", "v"));
  w.key("bad_kind_body_get_code").int(rawBodyGet(7, 0, null));
  w.key("bad_name_get_code").int(rawHeaderGet(0, "bad name", null));
  w.key("bad_name_set_code").int(req.setHeader("bad name", "v"));
  w.key("bad_value_crlf_code").int(req.setHeader("X-Bad", "a\r\nb"));
  w.key("bad_value_nul_code").int(req.addHeader("X-Bad", "a" + String.fromCharCode(0) + "b"));
  w.key("content_length_set_code").int(req.setHeader("Content-Length", "5"));
  w.key("transfer_encoding_add_code").int(req.addHeader("Transfer-Encoding", "chunked"));
  w.key("content_length_remove_code").int(req.removeHeader("content-length"));

  w.key("set_code").int(req.setHeader("X-Set", "set-value"));
  w.key("add_code").int(req.addHeader("X-Multi", "added"));
  w.key("remove_code").int(req.removeHeader("X-Remove"));
  w.key("remove_absent_code").int(req.removeHeader("X-Never-Sent"));
  w.key("header_values_after_add");
  writeValues(w, req.headerValues("X-Multi"));
  w.key("removed_found").bool(req.header("X-Remove") !== null);
  w.key("host_set_code").int(req.setHeader("Host", "hostcheck.test"));

  const newPath = req.header("X-Set-Path");
  if (newPath !== null) {
    w.key("set_path_code").int(req.setPath(newPath));
    w.key("path_after").string(req.path());
    w.key("query_after").string(req.query());
  }
  w.key("set_path_no_slash_code").int(req.setPath("no-slash"));
  w.key("set_path_bad_escape_code").int(req.setPath("/a%zz"));
  w.key("set_path_dot_params_code").int(req.setPath("/..;/b"));
  w.key("set_path_query_space_code").int(req.setPath("/a?b c"));
  w.key("set_path_empty_code").int(req.setPath(""));

  w.key("config").string(state.cfgRaw);
  const cfgBuf = new Uint8Array(max(rawConfigGet(null), 0));
  rawConfigGet(cfgBuf);
  w.key("config_get").string(bytesToString(cfgBuf));
  w.key("time_now").int(now());
  w.key("time_now_raw").int(rawTimeNow());
  const rnd = new Uint8Array(16);
  w.key("random_code").int(fillRandom(rnd));
  w.key("random").string(hex(rnd));
  w.key("random_raw_ret").int(rawRandomGet(new Uint8Array(5)));
  w.key("random_zero_len_ret").int(rawRandomGetAt(0xfffffff0, 0));
  if (cfg.bigBody > 0) {
    w.key("body_set_too_large_code").int(req.setBody(new Uint8Array(<i32>cfg.bigBody)));
    w.key("send_response_too_large_code").int(rawSendResponse(200, new Uint8Array(<i32>cfg.bigBody)));
  }
  w.key("send_response_bad_status_code").int(rawSendResponse(600, null));
  w.key("response_status_before_send").int(rawResponseStatus());
  w.endObject();

  if (req.setBodyText(w.toString()) < 0) return fail(lastError());
  if (req.setHeader("Content-Type", "application/json") < 0) return fail(lastError());
  return Action.Continue;
}

/** Reads the upstream's response and the request as sent, checks that the
 *  request is read-only now, edits the response and answers with both
 *  reports. */
function inspectResponse(resp: Response): Action {
  const cfg = state.cfg;
  const w = new JSONWriter().beginObject();
  w.key("status").int(resp.status());
  w.key("status_raw").int(rawResponseStatus());
  const upstream = resp.header("x-upstream");
  w.key("header_upstream").string(upstream === null ? "" : upstream).key("header_upstream_found").bool(upstream !== null);
  w.key("header_values_multi");
  writeValues(w, resp.headerValues("X-Resp-Multi"));
  w.key("header_names");
  writeValues(w, resp.headerNames());
  const up = resp.body();
  const upCode = codeOf(up !== null);
  w.key("upstream_body").string(up === null ? "" : bytesToString(up)).key("upstream_body_code").int(upCode);
  const buf = new Uint8Array(5);
  w.key("body_range");
  writeRange(w, resp.bodyRange(1, buf), buf, true, true);

  const req = resp.request;
  w.key("req_method").string(req.method());
  w.key("req_path").string(req.path());
  w.key("req_query").string(req.query());
  w.key("req_client_ip").string(req.clientIP());
  const set = req.header("X-Set");
  w.key("req_header_set").string(set === null ? "" : set);
  const host = req.header("Host");
  w.key("req_host").string(host === null ? "" : host);
  const reqReport = req.bodyText();
  if (reqReport === null) return fail(lastError());
  w.key("req_set_header_code").int(req.setHeader("X-Late", "1"));
  w.key("req_add_header_code").int(req.addHeader("X-Late", "1"));
  w.key("req_remove_header_code").int(req.removeHeader("X-Set"));
  w.key("req_set_body_code").int(req.setBodyText("late"));
  w.key("req_set_path_code").int(req.setPath("/late"));
  w.key("send_response_code").int(rawSendResponse(200, null));

  w.key("set_status_600_code").int(rawResponseSetStatus(600));
  w.key("set_status_99_code").int(rawResponseSetStatus(99));
  w.key("set_status_code").int(resp.setStatus(203));
  w.key("status_after").int(resp.status());
  w.key("resp_set_code").int(resp.setHeader("X-Resp-Set", "1"));
  w.key("resp_add_code").int(resp.addHeader("X-Resp-Multi", "b"));
  w.key("resp_remove_code").int(resp.removeHeader("X-Upstream-Remove"));
  w.key("resp_content_length_code").int(resp.setHeader("Content-Length", "1"));
  w.key("resp_bad_value_code").int(resp.setHeader("X-Resp-Bad", "a\nb"));
  w.key("resp_header_values_after_add");
  writeValues(w, resp.headerValues("X-Resp-Multi"));
  if (cfg.bigBody > 0) {
    w.key("resp_body_set_too_large_code").int(resp.setBody(new Uint8Array(<i32>cfg.bigBody)));
  }
  w.endObject();

  const out = new JSONWriter().beginObject().key("request");
  if (parseJSON(reqReport) !== null) out.raw(reqReport);
  else out.string(reqReport);
  out.key("response").raw(w.toString()).endObject();
  if (resp.setHeader("Content-Type", "application/json") < 0) return fail(lastError());
  if (resp.setBodyText(out.toString() + "\n") < 0) return fail(lastError());
  return Action.Continue;
}

/** What on_request may not do before send_response, and (local) what it
 *  may do after. */
function phaseRequest(req: Request): Action {
  const before = new JSONWriter().beginObject();
  before.key("response_status").int(rawResponseStatus());
  before.key("response_set_status").int(rawResponseSetStatus(200));
  before.key("header_get_resp").int(rawHeaderGet(1, "X-A", null));
  before.key("header_values_resp").int(rawHeaderValues(1, "X-A", null));
  before.key("header_names_resp").int(rawHeaderNames(1, null));
  before.key("header_set_resp").int(response.setHeader("X-A", "1"));
  before.key("header_add_resp").int(response.addHeader("X-A", "1"));
  before.key("header_remove_resp").int(response.removeHeader("X-A"));
  before.key("body_get_resp").int(rawBodyGet(1, 0, null));
  before.key("body_set_resp").int(response.setBody(utf8("x")));
  before.key("request_method").int(rawRequestMethod(null));
  before.key("header_set_req").int(req.setHeader("X-Phase-Req", "1"));
  before.key("kv_get").int(rawKVGet("phase-absent", null));
  before.key("metric_record").int(rawMetricRecord(rawMetricDefine(0, "hc_phase"), 1));
  before.key("http_batch_result").int(rawHTTPBatchResult(null));
  before.key("http_batch_empty_ret").int(rawHTTPBatch(emptyBatch()));
  before.endObject();

  const out = new JSONWriter().beginObject();
  out.key("initialize").raw(state.initializeProbe);
  out.key("init").raw(state.initProbe);
  out.key("request").raw(before.toString());
  if (!state.cfg.local) {
    if (req.setBodyText(out.endObject().toString()) < 0) return fail(lastError());
    return Action.Continue;
  }
  if (req.sendResponseText(418, "pending") === null) return fail(lastError());
  const after = new JSONWriter().beginObject();
  after.key("response_status").int(rawResponseStatus());
  after.key("header_set_resp").int(response.setHeader("X-Local", "yes"));
  after.key("header_get_resp").int(rawHeaderGet(1, "X-Local", null));
  after.key("header_names_resp_ok").bool(rawHeaderNames(1, null) > 0);
  after.key("body_get_resp").int(rawBodyGet(1, 0, null));
  after.key("response_set_status").int(rawResponseSetStatus(202));
  after.key("request_method").int(rawRequestMethod(null));
  after.key("header_set_req").int(req.setHeader("X-Phase-Req", "2"));
  after.key("status_after").int(rawResponseStatus());
  after.endObject();
  out.key("request_after_send").raw(after.toString());
  if (response.setBodyText(out.endObject().toString()) < 0) return fail(lastError());
  return Action.Stop;
}

/** An empty batch: a count of 0. */
function emptyBatch(): Uint8Array {
  return new Uint8Array(4);
}

/** What on_response may not do (write the request, answer locally) and
 *  what it may. */
function phaseResponse(resp: Response): Action {
  const req = resp.request;
  const r = new JSONWriter().beginObject();
  r.key("request_set_path").int(req.setPath("/x"));
  r.key("header_set_req").int(req.setHeader("X-A", "1"));
  r.key("header_add_req").int(req.addHeader("X-A", "1"));
  r.key("header_remove_req").int(req.removeHeader("X-A"));
  r.key("body_set_req").int(req.setBody(utf8("x")));
  r.key("header_set_req_raw").int(rawHeaderSet(0, "X-A", "1"));
  r.key("send_response").int(rawSendResponse(200, null));
  r.key("request_method").int(rawRequestMethod(null));
  r.key("header_get_req").int(rawHeaderGet(0, "X-Phase-Req", null));
  r.key("response_status").int(rawResponseStatus());
  r.key("response_set_status").int(rawResponseSetStatus(201));
  r.key("header_set_resp").int(resp.setHeader("X-Phase-Resp", "1"));
  r.key("kv_get").int(rawKVGet("phase-absent", null));
  r.key("metric_record").int(rawMetricRecord(rawMetricDefine(0, "hc_phase"), 1));
  r.key("http_batch_empty").int(rawHTTPBatch(emptyBatch()));
  r.key("set_consumer").int(setConsumer("c"));
  r.key("set_claims").int(setClaims("{}"));
  r.endObject();

  const reqReport = req.bodyText();
  if (reqReport === null) return fail(lastError());
  const v = parseJSON(reqReport);
  if (v === null || !v.isObject) return fail("phase: the request body is not the on_request report: " + (v === null ? "invalid JSON" : "not an object"));
  const out = new JSONWriter().beginObject();
  for (let i = 0; i < v.keys.length; i++) {
    if (v.keys[i] == "response") continue;
    out.key(v.keys[i]).value(v.values[i]);
  }
  out.key("response").raw(r.toString()).endObject();
  if (resp.setBodyText(out.toString()) < 0) return fail(lastError());
  return Action.Continue;
}

// Used by the kv check's get_raw probe.
let kvProbeKey: string = "";

function kvGetProbe(b: Uint8Array | null): i32 {
  return rawKVGet(kvProbeKey, b);
}

/** One KV operation named by the query:
 *  ?op=get|set|delete|incr|set_raw|get_raw&key=K&value=V&ttl_ms=N&delta=N;
 *  key_len=N uses a key of N bytes instead. */
function kvRequest(req: Request): Action {
  const op = param(req, "op");
  let key = param(req, "key");
  const keyLen = queryInt(req, "key_len");
  if (keyLen.ok) key = "k".repeat(<i32>keyLen.int);
  const value = param(req, "value");
  const ttlMs = queryInt(req, "ttl_ms").int;
  const delta = queryInt(req, "delta").int;
  const w = new JSONWriter().beginObject();
  w.key("op").string(op);
  if (op == "get") {
    const v = kvGet(key);
    const c = codeOf(v !== null);
    w.key("code").int(c).key("value").string(v === null ? "" : bytesToString(v));
  } else if (op == "get_raw") {
    kvProbeKey = key;
    w.key("probe");
    writeProbe(w, probe(kvGetProbe));
  } else if (op == "set") {
    w.key("code").int(kvSet(key, utf8(value), ttlMs));
  } else if (op == "set_raw") {
    w.key("code").int(rawKVSet(key, utf8(value), ttlMs));
  } else if (op == "delete") {
    w.key("code").int(kvDelete(key));
  } else if (op == "incr") {
    const v = kvIncr(key, delta, ttlMs);
    w.key("code").int(lastCode()).key("result").int(v);
  } else {
    return respond(req, 400, new JSONWriter().beginObject().key("error").string("unknown op \"" + op + "\"").endObject().toString());
  }
  return respond(req, 200, w.endObject().toString());
}

// SDK-declared metrics, recorded by the metrics check next to the raw ones
// (defined on their first record).
const sdkCounter = new Counter("hc_sdk_counter");
const sdkGauge = new Gauge("hc_sdk_gauge");
const sdkHistogram = new Histogram("hc_sdk_histogram");

/** Defines hc_counter, hc_gauge and hc_hist and records the query's
 *  counter=, gauge= and hist= values; fill=1 defines metrics until the
 *  host refuses. Answers with every id and code. */
function metricsRequest(req: Request): Action {
  const w = new JSONWriter().beginObject();
  if (req.queryParam("fill") !== null) {
    let last = -1;
    let failCode = 0;
    let failAt = -1;
    for (let i = 0; i < 64; i++) {
      const id = rawMetricDefine(0, "fill_" + i.toString());
      if (id < 0) {
        failCode = id;
        failAt = i;
        break;
      }
      last = id;
    }
    w.key("last_id").int(last).key("fail_code").int(failCode).key("fail_at").int(failAt);
    return respond(req, 200, w.endObject().toString());
  }
  const counter = rawMetricDefine(0, "hc_counter");
  const gauge = rawMetricDefine(1, "hc_gauge");
  const hist = rawMetricDefine(2, "hc_hist");
  w.key("ids").beginObject().key("counter").int(counter).key("gauge").int(gauge).key("hist").int(hist).endObject();
  w.key("counter_again").int(rawMetricDefine(0, "hc_counter"));
  w.key("counter_name_as_gauge").int(rawMetricDefine(1, "hc_counter"));
  w.key("bad_name_code").int(rawMetricDefine(0, "Bad-Name"));
  w.key("empty_name_code").int(rawMetricDefine(0, ""));
  w.key("long_name_code").int(rawMetricDefine(0, "a" + "b".repeat(63)));
  w.key("max_name_ok").bool(rawMetricDefine(0, "a" + "b".repeat(62)) >= 0);
  w.key("bad_kind_code").int(rawMetricDefine(3, "hc_kind"));
  w.key("unknown_id_code").int(rawMetricRecord(31, 1));
  w.key("negative_id_code").int(rawMetricRecord(-1, 1));
  w.key("nan_code").int(rawMetricRecord(gauge, NaN));
  w.key("counter_negative_code").int(rawMetricRecord(counter, -1));
  w.key("counter_inf_code").int(rawMetricRecord(counter, Infinity));
  w.key("gauge_negative_code").int(rawMetricRecord(gauge, -2.5));
  const c = queryFloat(req, "counter");
  if (c.ok) w.key("counter_code").int(rawMetricRecord(counter, c.float));
  const g = queryFloat(req, "gauge");
  if (g.ok) w.key("gauge_code").int(rawMetricRecord(gauge, g.float));
  const h = queryFloat(req, "hist");
  if (h.ok) w.key("hist_code").int(rawMetricRecord(hist, h.float));
  w.key("sdk_counter_code").int(sdkCounter.add(2));
  w.key("sdk_gauge_code").int(sdkGauge.set(7));
  w.key("sdk_histogram_code").int(sdkHistogram.observe(0.5));
  return respond(req, 200, w.endObject().toString());
}

/** Logs at every level with the query's marker m, plus the edge cases;
 *  fail=MSG fails the hook with MSG, fail_long=1 with a 2000-byte
 *  set_error, flood=N logs N lines. */
function logRequest(req: Request): Action {
  const m = param(req, "m");
  const msg = req.queryParam("fail");
  if (msg !== null) return fail(msg);
  if (req.queryParam("fail_long") !== null) {
    rawSetError("e".repeat(2000));
    return Action.Fail;
  }
  const flood = queryInt(req, "flood");
  if (flood.ok) {
    const n = min(flood.int, 1000);
    for (let i: i64 = 0; i < n; i++) rawLog(1, "hc-flood " + m + " " + i.toString());
    return respond(req, 200, new JSONWriter().beginObject().key("flooded").int(flood.int).endObject().toString());
  }
  const w = new JSONWriter().beginObject();
  w.key("debug").int(rawLog(0, "hc-log debug " + m));
  w.key("info").int(rawLog(1, "hc-log info " + m));
  w.key("warn").int(rawLog(2, "hc-log warn " + m));
  w.key("error").int(rawLog(3, "hc-log error " + m));
  w.key("bad_level_4").int(rawLog(4, "hc-log bad " + m));
  w.key("bad_level_minus").int(rawLog(-1, "hc-log bad " + m));
  w.key("long").int(rawLog(1, "hc-long " + m + " " + "L".repeat(5000)));
  w.key("empty").int(rawLog(1, ""));
  log(Level.Warn, "hc-sdk " + m);
  writeFd(1, "hc-stdout " + m + "\n");
  writeFd(2, "hc-stderr " + m + "\n");
  return respond(req, 200, w.endObject().toString());
}

/** Runs the configured batch and answers with every result, then checks
 *  the batch functions' conventions and errors. */
function outboundRequest(req: Request): Action {
  const batch = state.cfg.batch;
  const reqs = new Array<OutboundRequest>();
  for (let i = 0; i < batch.length; i++) {
    const c = batch[i];
    const o = new OutboundRequest(c.url, c.method);
    if (c.body.length > 0) o.bodyText(c.body);
    o.timeout(<u32>c.timeoutMs);
    for (let j = 0; j < c.headerNames.length; j++) o.header(c.headerNames[j], c.headerValues[j]);
    reqs.push(o);
  }
  const w = new JSONWriter().beginObject();
  const results = fetch(reqs);
  w.key("code").int(codeOf(results !== null));
  w.key("results").beginArray();
  if (results !== null) {
    for (let i = 0; i < results.length; i++) writeResult(w, results[i]);
  }
  w.endArray();
  // The results of the last batch stay readable, with the buffer
  // convention, until the next http_batch.
  const p = probe(rawHTTPBatchResult);
  w.key("result_probe").beginObject()
    .key("size0").int(p.size0).key("small_ret").int(p.smallRet)
    .key("small_hex").string(hex(p.small)).key("full_ret").int(p.fullRet)
    .endObject();
  const malformed = new Uint8Array(5);
  malformed[0] = 1;
  malformed[4] = 5;
  w.key("malformed_code").int(rawHTTPBatch(malformed));
  w.key("result_after_malformed").int(rawHTTPBatchResult(null));
  w.key("too_many_code").int(rawHTTPBatch(encodeGets(65, batch[0].url)));
  w.key("empty_batch_ret").int(rawHTTPBatch(emptyBatch()));
  const badMethod = fetch([new OutboundRequest(batch[0].url, "BAD METHOD")]);
  w.key("bad_method_code").int(codeOf(badMethod !== null));
  const badHeader = fetch([new OutboundRequest(batch[0].url).header("X-Bad", "a\r\nb")]);
  w.key("bad_header_code").int(codeOf(badHeader !== null));
  return respond(req, 200, w.endObject().toString());
}

/** One result of the outbound batch: {status, err (when the request got
 *  no HTTP answer), duration_ms, headers (first value per name, when
 *  any), body}. */
function writeResult(w: JSONWriter, r: OutboundResult): void {
  w.beginObject();
  w.key("status").int(r.status);
  const err = r.err();
  if (err !== null) w.key("err").string(err);
  w.key("duration_ms").number(<f64>r.durationMicros / 1000);
  if (r.headers.length > 0) {
    w.key("headers").beginObject();
    const seen = new Set<string>();
    for (let i = 0; i < r.headers.length; i++) {
      const h = r.headers[i];
      if (seen.has(h.name)) continue;
      seen.add(h.name);
      w.key(h.name).string(h.value);
    }
    w.endObject();
  }
  w.key("body").string(r.bodyText());
  w.endObject();
}

/** A batch of n GET requests of url (sdk/ABI.md, batch encoding), written
 *  by hand: bypassing the SDK's own checks. */
function encodeGets(n: i32, url: string): Uint8Array {
  const b = new ByteWriter();
  b.u32(<u32>n);
  for (let i = 0; i < n; i++) {
    b.u32(0); // timeout_ms
    b.string("GET");
    b.string(url);
    b.u32(0); // header_count
    b.u32(0); // body_len
  }
  return b.toBytes();
}

/** Appends the tag to X-Chain and counts the call in the KV store; with
 *  stop it answers locally. */
function chainRequest(req: Request): Action {
  const tag = state.cfg.tag;
  let v = tag;
  const prev = req.header("X-Chain");
  if (prev !== null) v = prev + "," + tag;
  if (req.setHeader("X-Chain", v) < 0) return fail(lastError());
  kvIncr("chain_requests", 1, 0);
  if (lastCode() < 0) return fail(lastError());
  if (!state.cfg.stop) return Action.Continue;
  const resp = req.sendResponseText(200, "stopped by " + tag + "; X-Chain=" + v + "\n");
  if (resp === null) return fail(lastError());
  if (resp.setHeader("X-Chain-Resp", "local:" + tag) < 0) return fail(lastError());
  return Action.Stop;
}

/** Appends the tag to the response's X-Chain-Resp. */
function chainResponse(resp: Response): Action {
  let v = state.cfg.tag;
  const prev = resp.header("X-Chain-Resp");
  if (prev !== null) v = prev + "," + v;
  if (resp.setHeader("X-Chain-Resp", v) < 0) return fail(lastError());
  return Action.Continue;
}

// The getters the buffers check probes, each a (buf) -> size call.
function headerGetLong(b: Uint8Array | null): i32 { return rawHeaderGet(0, "X-Long", b); }
function headerValuesMulti(b: Uint8Array | null): i32 { return rawHeaderValues(0, "X-Multi", b); }
function headerNamesReq(b: Uint8Array | null): i32 { return rawHeaderNames(0, b); }
function bodyGetReq(b: Uint8Array | null): i32 { return <i32>rawBodyGet(0, 0, b); }
function bodyGetReqAt4(b: Uint8Array | null): i32 { return <i32>rawBodyGet(0, 4, b); }
function kvGetBuffers(b: Uint8Array | null): i32 { return rawKVGet("buffers", b); }

/** Probes the buffer convention of every getter and answers with what it
 *  saw. */
function buffersRequest(req: Request): Action {
  if (kvSet("buffers", utf8("kv-value-0123456789"), 0) < 0) return fail(lastError());
  const long = req.header("X-Long"); // over the SDK's first 2 KiB buffer: it retries
  const w = new JSONWriter().beginObject();
  w.key("request_method");
  writeProbe(w, probe(rawRequestMethod));
  w.key("request_path");
  writeProbe(w, probe(rawRequestPath));
  w.key("request_query");
  writeProbe(w, probe(rawRequestQuery));
  w.key("request_client_ip");
  writeProbe(w, probe(rawRequestClientIP));
  w.key("header_get");
  writeProbe(w, probe(headerGetLong));
  w.key("header_values");
  writeProbe(w, probe(headerValuesMulti));
  w.key("header_names");
  writeProbe(w, probe(headerNamesReq));
  w.key("body_get");
  writeProbe(w, probe(bodyGetReq));
  w.key("body_get_offset");
  writeProbe(w, probe(bodyGetReqAt4));
  w.key("config_get");
  writeProbe(w, probe(rawConfigGet));
  w.key("kv_get");
  writeProbe(w, probe(kvGetBuffers));
  w.key("zero_len_bogus_ptr").int(rawHeaderGetAt(0, "X-Long", 0xfffffff0, 0));
  w.key("sdk_long_header_len").int(long === null ? 0 : long.length);
  return respond(req, 200, w.endObject().toString());
}
