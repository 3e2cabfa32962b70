// sdkcheck: the test guest of the AssemblyScript SDK (astest drives it
// through a real gateway). It calls every host function of sdk/ABI.md
// section 4 through the SDK's wrappers, and a few through the raw imports
// (assembly/host.ts), and answers what it saw as JSON, so that the Go test
// asserts the SDK end to end: argument encoding, the buffer convention,
// codes, the batch codec, hooks, the runtime replacements. It is not the
// conformance guest (sdk/tck/hostcheck's specification); see README.md.
//
// Config: check (required): inspect, local, stop-without, kv, metrics, log,
// outbound, gateway, crypto, json; batch (outbound: [{url, method, headers,
// body, timeout_ms}]); key, msg, sig (crypto: base64 of an Ed25519
// SubjectPublicKeyInfo, a message, its signature); echo (any value).

import {
  Action, Alg, BodyRange, ByteWriter, CODE_SDK, Code, ConfigReader, Counter, Gauge, Histogram, JSONValue, JSONWriter,
  Level, MetricKind, OutboundRequest, Plugin, Request, Response, base64Decode, base64Encode, checkPublicKey, defineMetric,
  equalFold, encodeBatch, fail, fetch, fillRandom, flagEnabled, jsonError, kvDelete, kvGetString, kvIncr, kvSetString,
  lastCode, lastError, log, logDebug, logError, logInfo, logWarn, now, parseDuration, parseJSON, quoteJSON, rateLimit,
  recordMetric, register, request,
  response, setCacheKey, setClaims, setConsumer, setError, utf8, verifySignature,
} from "../../../assembly";
import * as host from "../../../assembly/host";
export * from "../../../assembly/exports";
export * from "../../../assembly/response";

// What the host answered during _initialize (this file's top level).
const initializeProbe = new JSONWriter()
  .beginObject()
  .key("request_method").string(request.method()).key("request_method_code").int(lastCode())
  .key("kv_get_code").int(kvGetString("k") === null ? lastCode() : 0)
  .key("log").int(logInfo("sdkcheck _initialize log line"))
  .key("now_ok").bool(now() > 0)
  .endObject()
  .toString();

class Spec {
  url: string = "";
  method: string = "";
  headers: JSONValue | null = null;
  body: string = "";
  timeoutMs: i64 = 0;
}

class SdkCheck extends Plugin {
  check: string = "";
  config: string = "";
  initProbe: string = "";
  batch: Spec[] = [];
  key: Uint8Array = new Uint8Array(0);
  msg: Uint8Array = new Uint8Array(0);
  sig: Uint8Array = new Uint8Array(0);
  sigText: string = "";
  calls: i32 = 0;

  init(config: string): string | null {
    this.config = config;
    const c = ConfigReader.parse(config);
    if (!c.require("check")) return c.finish();
    this.check = c.string("check");
    c.raw("echo");
    const specs = c.objects("batch");
    if (specs !== null) {
      for (let i = 0; i < specs.length; i++) {
        const s = new Spec();
        s.url = specs[i].string("url");
        s.method = specs[i].string("method");
        s.body = specs[i].string("body");
        s.timeoutMs = specs[i].int("timeout_ms");
        const h = specs[i].object("headers");
        if (h !== null) {
          h.keys();
          s.headers = h.value;
        }
        this.batch.push(s);
      }
    }
    for (let i = 0; i < 3; i++) {
      const name = i == 0 ? "key" : i == 1 ? "msg" : "sig";
      if (!c.has(name)) continue;
      const b = base64Decode(c.string(name));
      if (b === null) {
        c.fail("\"" + name + "\" is not base64");
        continue;
      }
      if (i == 0) this.key = b;
      else if (i == 1) this.msg = b;
      else {
        this.sig = b;
        this.sigText = c.string(name);
      }
    }
    // What on_init may call: the "any" functions work, the others answer
    // NOT_ALLOWED.
    const w = new JSONWriter().beginObject();
    w.key("header_get").int(request.header("X-A") === null ? lastCode() : 0);
    w.key("kv_set").int(kvSetString("k", "v"));
    w.key("set_consumer").int(setConsumer("c"));
    w.key("send_response").int(request.sendResponseText(200, "x") === null ? lastCode() : 0);
    w.key("metric_define_ok").bool(defineMetric(MetricKind.Counter, "as_on_init") >= 0);
    w.key("log").int(logDebug("sdkcheck on_init log line"));
    w.key("random").int(fillRandom(new Uint8Array(4)));
    this.initProbe = w.endObject().toString();
    return c.finish();
  }

  onRequest(req: Request): Action {
    this.calls++;
    if (this.check == "inspect") return inspectRequest(this, req);
    if (this.check == "local") {
      const r = req.sendResponseText(202, "local answer\n");
      if (r === null) return fail("send: " + lastError());
      r.setHeader("X-Local", "1");
      r.setHeader("X-Local-Status", r.status().toString());
      return Action.Continue; // the SDK answers Stop
    }
    if (this.check == "stop-without") return Action.Stop;
    if (this.check == "kv") return kvRequest(req);
    if (this.check == "metrics") return metricsRequest(req);
    if (this.check == "log") return logRequest(req);
    if (this.check == "outbound") return outboundRequest(this, req);
    if (this.check == "gateway") return gatewayRequest(req);
    if (this.check == "crypto") return cryptoRequest(this, req);
    if (this.check == "json") return jsonRequest(req);
    return Action.Continue;
  }

  onResponse(resp: Response): Action {
    if (this.check == "inspect") return inspectResponse(resp);
    return Action.Continue;
  }
}

/** Answers locally with JSON. */
function respond(req: Request, status: i32, json: string): Action {
  const r = req.sendResponseText(status, json + "\n");
  if (r === null) return fail("send_response: " + lastError());
  if (r.setHeader("Content-Type", "application/json") < 0) return fail("content type: " + lastError());
  return Action.Stop;
}

function param(req: Request, name: string, def: string = ""): string {
  const v = req.queryParam(name);
  return v === null ? def : v;
}

function inspectRequest(p: SdkCheck, req: Request): Action {
  const w = new JSONWriter().beginObject();
  w.key("method").string(req.method());
  w.key("path").string(req.path());
  w.key("query").string(req.query());
  w.key("q").stringOrNull(req.queryParam("q"));
  w.key("missing_param").stringOrNull(req.queryParam("nope"));
  w.key("client_ip").string(req.clientIP());
  w.key("header_probe").stringOrNull(req.header("x-probe"));
  w.key("header_absent").stringOrNull(req.header("X-Absent"));
  w.key("header_absent_code").int(lastCode());
  w.key("header_absent_error").string(lastError());
  w.key("header_values").strings(req.headerValues("X-Multi"));
  w.key("header_values_absent").int(req.headerValues("X-Absent").length);
  const names = req.headerNames();
  let hasProbe = false;
  for (let i = 0; i < names.length; i++) if (equalFold(names[i], "X-Probe")) hasProbe = true;
  w.key("header_names_has_probe").bool(hasProbe);
  // A value longer than the scratch buffer's first size: a second call.
  const long = req.header("X-Long");
  w.key("header_long_len").int(long === null ? -1 : long.length);
  req.removeHeader("X-Long"); // too long for the upstream
  w.key("body").stringOrNull(req.bodyText());
  w.key("body_size").int(req.bodySize());
  const buf = new Uint8Array(4);
  let r = req.bodyRange(2, buf);
  w.key("range_n").int(r === null ? -1 : r.n).key("range_size").int(r === null ? -1 : r.size);
  w.key("range_bytes").string(r === null ? "" : String.UTF8.decodeUnsafe(buf.dataStart, <usize>r.n));
  r = req.bodyRange(1000000, buf);
  w.key("range_past_end_n").int(r === null ? -1 : r.n);
  w.key("range_negative_code").int(req.bodyRange(-1, buf) === null ? lastCode() : 0);
  w.key("config").string(p.config);
  w.key("init_probe").raw(p.initProbe);
  w.key("initialize_probe").raw(initializeProbe);
  w.key("now_ok").bool(now() > 1_600_000_000_000_000_000);
  const rnd = new Uint8Array(16);
  let nonzero = false;
  w.key("random_code").int(fillRandom(rnd));
  for (let i = 0; i < rnd.length; i++) if (rnd[i] != 0) nonzero = true;
  w.key("random_nonzero").bool(nonzero);
  w.key("math_random_ok").bool(Math.random() < 1.0);
  w.key("date_now_ok").bool(abs(Date.now() - now() / 1_000_000) < 5000);
  w.key("performance_now_ok").bool(performance.now() > 1.6e12);
  w.key("date_year_ok").bool(new Date(Date.now()).getUTCFullYear() >= 2024);
  // Codes of what the host refuses.
  w.key("bad_name").int(req.setHeader("Bad Name", "x"));
  w.key("bad_name_error").string(lastError());
  w.key("bad_value").int(req.setHeader("X-Bad", "a\nb"));
  w.key("content_length").int(req.setHeader("Content-Length", "1"));
  w.key("set_path_relative").int(req.setPath("relative"));
  w.key("status_before_send").int(response.status()).key("status_before_send_code").int(lastCode());
  w.key("response_header_code").int(response.setHeader("X-R", "1"));
  w.key("raw_header_get_bad_kind").int(host.header_get(7, 0, 0, 0, 0));
  // Edits the upstream sees.
  w.key("set").int(req.setHeader("X-Set", "set"));
  w.key("add").int(req.addHeader("X-Multi", "added"));
  w.key("remove").int(req.removeHeader("X-Remove"));
  w.key("remove_absent").int(req.removeHeader("X-Never-There"));
  const newPath = req.header("X-Set-Path");
  if (newPath !== null) w.key("set_path").int(req.setPath(newPath));
  w.key("path_after").string(req.path());
  w.endObject();
  if (req.setBodyText(w.toString()) < 0) return fail("set body: " + lastError());
  return Action.Continue;
}

function inspectResponse(resp: Response): Action {
  const upstream = resp.bodyText();
  const w = new JSONWriter().beginObject();
  w.key("status").int(resp.status());
  w.key("x_upstream").stringOrNull(resp.header("X-Upstream"));
  w.key("request_method").string(resp.request.method());
  w.key("request_header_set").int(resp.request.setHeader("X-Late", "1"));
  w.key("request_body_set").int(resp.request.setBodyText("late"));
  w.key("send_response").int(resp.request.sendResponseText(200, "x") === null ? lastCode() : 0);
  w.key("set_status").int(resp.setStatus(203));
  w.key("set_status_bad").int(resp.setStatus(99));
  w.key("status_after").int(resp.status());
  w.key("set_header").int(resp.setHeader("X-Resp-Set", "r"));
  w.key("add_header").int(resp.addHeader("X-Resp-Multi", "b"));
  w.key("remove_header").int(resp.removeHeader("X-Upstream-Remove"));
  w.endObject();
  const body = "{\"upstream\":" + (upstream === null ? "null" : upstream) + ",\"response\":" + w.toString() + "}\n";
  if (resp.setBodyText(body) < 0) return fail("set response body: " + lastError());
  return Action.Continue;
}

function kvRequest(req: Request): Action {
  const op = param(req, "op");
  const key = param(req, "key");
  const w = new JSONWriter().beginObject();
  if (op == "get") {
    const v = kvGetString(key);
    w.key("value").stringOrNull(v);
  } else if (op == "set") {
    kvSetString(key, param(req, "value"), I64.parseInt(param(req, "ttl_ms", "0")));
  } else if (op == "delete") {
    kvDelete(key);
  } else if (op == "incr") {
    w.key("result").int(kvIncr(key, I64.parseInt(param(req, "delta", "1")), I64.parseInt(param(req, "ttl_ms", "0"))));
  } else if (op == "big") {
    // A value larger than the scratch buffer: kvGet reads it straight
    // into an array of its own.
    const n = <i32>I64.parseInt(param(req, "n", "10000"));
    kvSetString(key, "x".repeat(n));
    const v = kvGetString(key);
    w.key("len").int(v === null ? -1 : v.length);
  }
  w.key("code").int(lastCode()).key("error").string(lastError());
  return respond(req, 200, w.endObject().toString());
}

const counter = new Counter("as_counter");
const gauge = new Gauge("as_gauge");
const histogram = new Histogram("as_histogram");

function metricsRequest(req: Request): Action {
  const w = new JSONWriter().beginObject();
  w.key("counter").int(counter.add(2));
  w.key("gauge").int(gauge.set(7));
  w.key("histogram").int(histogram.observe(0.5));
  w.key("bad_name").int(new Counter("Bad-Name").inc());
  w.key("negative").int(counter.add(-1));
  w.key("bad_kind").int(defineMetric(<MetricKind>9, "as_x"));
  w.key("unknown_id").int(recordMetric(12345, 1));
  const id = defineMetric(MetricKind.Counter, "as_raw");
  w.key("raw_id_ok").bool(id >= 0);
  w.key("raw_record").int(recordMetric(id, 3));
  w.key("raw_nan").int(recordMetric(id, NaN));
  return respond(req, 200, w.endObject().toString());
}

function logRequest(req: Request): Action {
  const m = param(req, "m");
  // Failures first, without the lines below: the gateway's log budget is
  // per plugin.
  if (req.queryParam("fail") !== null) return fail("as-fail " + m);
  if (req.queryParam("long") !== null) {
    setError("é".repeat(2000));
    return Action.Fail;
  }
  if (req.queryParam("abort") !== null) assert(false, "as-abort " + m);
  if (req.queryParam("throw") !== null) throw new Error("as-throw " + m);
  if (req.queryParam("oob") !== null) {
    const a = new Array<i32>(1);
    return <Action>a[5]; // out of range: abort
  }
  const w = new JSONWriter().beginObject();
  w.key("debug").int(logDebug("as-log debug " + m));
  w.key("info").int(logInfo("as-log info " + m));
  w.key("warn").int(logWarn("as-log warn " + m));
  w.key("error").int(logError("as-log error " + m));
  w.key("bad_level").int(log(<Level>9, "x"));
  console.log("as-console " + m);
  console.warn("as-console-warn " + m);
  trace("as-trace " + m, 2, 1.5, 42);
  return respond(req, 200, w.endObject().toString());
}

function outboundRequest(p: SdkCheck, req: Request): Action {
  const reqs = new Array<OutboundRequest>();
  for (let i = 0; i < p.batch.length; i++) {
    const s = p.batch[i];
    const q = new OutboundRequest(s.url, s.method);
    const h = s.headers;
    if (h !== null) {
      for (let j = 0; j < h.keys.length; j++) q.header(h.keys[j], h.values[j].stringValue);
    }
    if (s.body.length > 0) q.bodyText(s.body);
    q.timeout(<u32>s.timeoutMs);
    reqs.push(q);
  }
  const w = new JSONWriter().beginObject();
  const before = host.http_batch_result(0, 0);
  w.key("result_before_batch").int(before);
  const res = fetch(reqs);
  w.key("code").int(lastCode()).key("error").string(lastError());
  w.key("results").beginArray();
  if (res !== null) {
    for (let i = 0; i < res.length; i++) {
      const r = res[i];
      w.beginObject();
      w.key("status").int(r.status);
      w.key("err").stringOrNull(r.err());
      w.key("x_upstream").stringOrNull(r.header("x-upstream"));
      w.key("headers").int(r.headers.length);
      w.key("body").string(r.bodyText());
      w.endObject();
    }
  }
  w.endArray();
  // The buffer convention of http_batch_result, after that batch.
  const size = host.http_batch_result(0, 0);
  const small = new Uint8Array(3);
  w.key("result_size_ok").bool(size > 0);
  w.key("result_small_ret_ok").bool(host.http_batch_result(small.dataStart, 3) == size);
  // What the whole batch is refused for.
  const empty = fetch(new Array<OutboundRequest>());
  w.key("empty_len").int(empty === null ? -1 : empty.length);
  const noURL = fetch([new OutboundRequest("")]);
  w.key("no_url").int(noURL === null ? lastCode() : 0).key("no_url_error").string(lastError());
  const bw = new ByteWriter();
  bw.u32(1); // a count, then nothing
  w.key("malformed").int(host.http_batch(bw.ptr, bw.length));
  w.key("result_after_error").int(host.http_batch_result(0, 0));
  const many = new Array<OutboundRequest>();
  for (let i = 0; i < 65; i++) many.push(new OutboundRequest("upstream://a/"));
  w.key("too_many").int(fetch(many) === null ? lastCode() : 0);
  w.key("bad_method").int(fetch([new OutboundRequest("upstream://a/", "BAD METHOD")]) === null ? lastCode() : 0);
  w.key("bad_header").int(fetch([new OutboundRequest("upstream://a/").header("X-Bad", "a\nb")]) === null ? lastCode() : 0);
  bw.reset();
  encodeBatch(bw, [new OutboundRequest("upstream://a/")]);
  w.key("encoded_len").int(bw.length);
  return respond(req, 200, w.endObject().toString());
}

function gatewayRequest(req: Request): Action {
  const w = new JSONWriter().beginObject();
  const consumer = req.queryParam("consumer");
  if (consumer !== null) w.key("set_consumer").int(setConsumer(consumer));
  const claims = req.queryParam("claims");
  if (claims !== null) w.key("set_claims").int(setClaims(claims));
  const cacheKey = req.queryParam("cache_key");
  if (cacheKey !== null) w.key("cache_set_key").int(setCacheKey(cacheKey));
  const flags = req.queryParam("flags");
  if (flags !== null) {
    w.key("flags").beginObject();
    const names = flags.split(",");
    for (let i = 0; i < names.length; i++) {
      const on = flagEnabled(names[i]);
      w.key(names[i]).beginObject().key("on").bool(on).key("code").int(lastCode()).endObject();
    }
    w.endObject();
  }
  const limit = req.queryParam("limit");
  if (limit !== null) {
    const l = rateLimit(limit, param(req, "key"), I64.parseInt(param(req, "cost", "0")));
    w.key("limit").beginObject().key("code").int(l.code).key("allowed").bool(l.allowed)
      .key("remaining").int(l.remaining).key("retry_ms").int(l.retryAfterMillis).endObject();
  }
  w.endObject();
  if (req.queryParam("pass") !== null) {
    req.setHeader("X-Gateway-Report", w.toString());
    return Action.Continue;
  }
  return respond(req, 200, w.toString());
}

function cryptoRequest(p: SdkCheck, req: Request): Action {
  const w = new JSONWriter().beginObject();
  w.key("check_key").int(checkPublicKey(Alg.EdDSA, p.key));
  w.key("check_key_wrong_alg").int(checkPublicKey(Alg.RS256, p.key));
  w.key("valid").bool(verifySignature(Alg.EdDSA, p.key, p.msg, p.sig)).key("valid_code").int(lastCode());
  const tampered = p.msg.slice();
  if (tampered.length > 0) tampered[0] ^= 1;
  w.key("tampered").bool(verifySignature(Alg.EdDSA, p.key, tampered, p.sig)).key("tampered_code").int(lastCode());
  w.key("unknown_alg").bool(verifySignature(<Alg>9, p.key, p.msg, p.sig)).key("unknown_alg_code").int(lastCode());
  w.key("garbage_key").int(checkPublicKey(Alg.EdDSA, utf8("not a key")));
  w.key("b64_roundtrip").bool(base64Encode(p.sig) == p.sigText);
  const url = base64Encode(utf8("\xff\xfe?"), true);
  w.key("b64url").string(url);
  w.key("b64_bad").bool(base64Decode("a$==") === null);
  w.key("code_sdk").int(CODE_SDK).key("not_found").int(Code.NotFound);
  return respond(req, 200, w.endObject().toString());
}

/** Parses the request body as JSON and answers it written back, or the
 *  parse error; ?durations=a,b answers parseDuration of each. */
function jsonRequest(req: Request): Action {
  const w = new JSONWriter().beginObject();
  const text = req.bodyText();
  const v = parseJSON(text === null ? "" : text);
  if (v === null) w.key("error").string(jsonError());
  else w.key("value").value(v).key("type").string(v.typeName);
  const durations = req.queryParam("durations");
  if (durations !== null) {
    w.key("durations").beginArray();
    const ds = durations.split(",");
    for (let i = 0; i < ds.length; i++) w.int(parseDuration(ds[i]));
    w.endArray();
  }
  w.key("quoted").string(quoteJSON("a\"b\\c\n\u0001é"));
  return respond(req, 200, w.endObject().toString());
}

register(new SdkCheck());
