// aggregate: a wasmgate plugin in AssemblyScript that answers a request by
// fanning out to several services at once and merging their JSON answers
// into one object keyed by part name (the same plugin as
// sdk/rust/examples/aggregate.rs and sdk/c/examples/aggregate.c; a subset
// of the Go plugin plugins/aggregate). The parts go out in ONE outbound
// batch (http_batch: the host runs them in parallel, the hook waits once);
// the route's own upstream is never called.
//
// Config:
//
//   config:
//     parts:                      # required, 1 to 64
//       - {name: user, url: "upstream://users/users/{query.user}", timeout: 300ms}
//       - {name: feed, url: "upstream://feed/feed?user={query.user}"}
//       - {name: status, url: "http://127.0.0.1:9000/status", timeout: 0.5}
//     mode: partial               # or strict (the default)
//
// - name is the part's key in the answer (letters, digits, "_", "-";
//   unique; not "errors").
// - url is upstream://NAME/path?query (balanced over the gateway's upstream
//   NAME) or http://host:port/path?query; the route must allow it
//   (plugins[].outbound: {upstreams: [...], hosts: [...]}). {query.NAME} is
//   replaced by the request's query parameter NAME, percent-encoded; a
//   request without it (or with it empty) is answered 400.
// - timeout bounds the part: "300ms", "2s" or a number of seconds (default:
//   the plugin's call deadline, which bounds the whole batch: give the
//   plugin limits.call_timeout above the largest part timeout).
//
// A part fails when it times out, cannot connect, is not allowed, answers a
// status outside 200-299, or answers something that is not JSON. The answer
// is 200 application/json:
//
//   {"user": {...}, "feed": null, "errors": {"feed": "timeout"}}
//
// with null for a failed part and "errors" (only when a part failed) saying
// why, in partial mode. In strict mode a failed part, and in partial mode
// the failure of every part, makes the answer 502:
// {"error": "part \"feed\" failed: timeout", "failed": {"feed": "timeout"}}.
//
// Build (from sdk/assemblyscript):
//   npx asc examples/aggregate/index.ts --config asconfig.json --target release -o build/aggregate.wasm

import {
  Action, BatchStatus, ConfigReader, JSONValue, JSONWriter, MAX_BATCH, OutboundRequest, OutboundResult, Plugin, Request,
  StringBuilder, failLast, fetch, parseJSON, queryParam, quoteJSON, register, utf8,
} from "../../assembly";
export * from "../../assembly/exports";

const ERRORS_KEY = "errors";
const MAX_TIMEOUT_MS: i64 = 3_600_000;

/** A piece of a URL template: text, or the name of a query parameter. */
class Piece {
  constructor(public text: string, public query: bool) {}
}

class Part {
  constructor(public name: string, public url: Piece[], public timeoutMs: u32) {}
}

/** Records `unknown field "PATH.KEY"` for the first key of r not in known;
 *  returns whether there was none. */
function only(r: ConfigReader, known: string[]): bool {
  const keys = r.value.keys;
  for (let i = 0; i < keys.length; i++) {
    if (!known.includes(keys[i])) {
      r.fail("unknown field \"" + r.fieldPath(keys[i]) + "\"");
      return false;
    }
  }
  return true;
}

let templateError = "";

/** Splits a URL at its {query.NAME} placeholders; null with templateError
 *  set when it is not a URL the plugin can call. */
function template(url: string): Piece[] | null {
  if (!url.startsWith("upstream://") && !url.startsWith("http://")) {
    templateError = "url " + quoteJSON(url) + ": want upstream://NAME/path or http://host:port/path";
    return null;
  }
  for (let i = 0; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c <= 0x20 || c == 0x7f) {
      templateError = "url " + quoteJSON(url) + ": no spaces or control characters";
      return null;
    }
  }
  const pieces = new Array<Piece>();
  let rest = url;
  while (true) {
    let open = -1;
    for (let i = 0; i < rest.length; i++) {
      const c = rest.charCodeAt(i);
      if (c == 0x7b || c == 0x7d) { // { }
        open = i;
        break;
      }
    }
    if (open < 0) break;
    const start = open + 7; // after "{query."
    const close = rest.startsWith("{query.", open) ? rest.indexOf("}", start) : -1;
    const name = close < 0 ? "" : rest.substring(start, close);
    if (name.length == 0 || name.includes("{")) {
      templateError = "url " + quoteJSON(url) + ": only {query.NAME} may be substituted";
      return null;
    }
    if (open > 0) pieces.push(new Piece(rest.substring(0, open), false));
    pieces.push(new Piece(name, true));
    rest = rest.substring(close + 1);
  }
  if (rest.length > 0) pieces.push(new Piece(rest, false));
  return pieces;
}

/** Whether s is 1 to max ASCII digits. */
function digits(s: string, max: i32): bool {
  if (s.length == 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** A timeout in milliseconds: "300ms", "2s", "1.5s", or a number of
 *  seconds, in (0, 1h], rounded up to whole milliseconds; 0 when it is
 *  none of these. Read without floating point. */
function timeoutMs(v: JSONValue): u32 {
  let number: string;
  let scale: i64 = 1000;
  if (v.isNumber) {
    number = v.numberText;
  } else if (v.isString) {
    const s = v.stringValue;
    if (s.endsWith("ms")) {
      number = s.substring(0, s.length - 2);
      scale = 1;
    } else if (s.endsWith("s")) {
      number = s.substring(0, s.length - 1);
    } else {
      return 0;
    }
  } else {
    return 0;
  }
  const dot = number.indexOf(".");
  const int = dot < 0 ? number : number.substring(0, dot);
  const frac = dot < 0 ? "" : number.substring(dot + 1);
  if (!digits(int, 7) || (dot >= 0 && !digits(frac, 9))) return 0;
  let pow: i64 = 1;
  let f: i64 = 0;
  for (let i = 0; i < frac.length; i++) {
    pow *= 10;
    f = f * 10 + <i64>(frac.charCodeAt(i) - 0x30);
  }
  let whole: i64 = 0;
  for (let i = 0; i < int.length; i++) whole = whole * 10 + <i64>(int.charCodeAt(i) - 0x30);
  const ms = whole * scale + (f * scale + pow - 1) / pow;
  if (ms <= 0 || ms > MAX_TIMEOUT_MS) return 0;
  return <u32>ms;
}

const HEX = "0123456789ABCDEF";

/** Appends s percent-encoded: every byte of its UTF-8 but the unreserved
 *  characters, so that a value cannot change the shape of the URL. */
function appendEscaped(sb: StringBuilder, s: string): void {
  const b = utf8(s);
  for (let i = 0; i < b.length; i++) {
    const c = <i32>b[i];
    const unreserved = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
      c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e;
    if (unreserved) {
      sb.appendCode(c);
    } else {
      sb.appendCode(0x25);
      sb.appendCode(HEX.charCodeAt(c >> 4));
      sb.appendCode(HEX.charCodeAt(c & 15));
    }
  }
}

/** Why a part failed, null when it did not. */
function failure(r: OutboundResult): string | null {
  switch (r.status) {
    case BatchStatus.Timeout: return "timeout";
    case BatchStatus.Network: return "connect or network error";
    case BatchStatus.NotAllowed: return "destination not allowed by the route's outbound config";
  }
  if (r.status < 0) return "request failed";
  if (r.status < 200 || r.status > 299) return "status " + r.status.toString();
  return null;
}

/** Sends body (and a newline) as a local application/json answer. */
function answer(req: Request, status: i32, body: string): Action {
  const resp = req.sendResponseText(status, body + "\n");
  if (resp === null) return failLast("answering " + status.toString());
  if (resp.setHeader("Content-Type", "application/json") < 0) return failLast("setting Content-Type");
  return Action.Stop;
}

class Aggregate extends Plugin {
  parts: Part[] = [];
  partial: bool = false;

  init(config: string): string | null {
    const c = ConfigReader.parse(config);
    if (c.error !== null || !only(c, ["parts", "mode"])) return c.finish();
    const mode = c.string("mode", "strict");
    if (c.error === null && mode != "strict" && mode != "partial") c.fail("\"mode\": " + quoteJSON(mode) + ": want strict or partial");
    this.partial = mode == "partial";
    const list = c.objects("parts");
    if (c.error !== null) return c.finish();
    if (list === null || list.length == 0) {
      c.fail("missing \"parts\": list {name, url} for each service to call");
      return c.finish();
    }
    if (list.length > MAX_BATCH) {
      c.fail("\"parts\": " + list.length.toString() + " parts, at most " + MAX_BATCH.toString());
      return c.finish();
    }
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      const at = "parts." + i.toString();
      if (!only(p, ["name", "url", "timeout"])) break;
      const name = p.string("name");
      if (c.error !== null) break;
      if (name.length == 0) {
        c.fail(at + ": missing \"name\"");
        break;
      }
      if (!validName(name)) {
        c.fail(at + ": name " + quoteJSON(name) + ": use letters, digits, \"_\" and \"-\"");
        break;
      }
      if (name == ERRORS_KEY) {
        c.fail(at + ": name \"" + ERRORS_KEY + "\" is the member listing failed parts");
        break;
      }
      let dup = false;
      for (let j = 0; j < this.parts.length; j++) dup = dup || this.parts[j].name == name;
      if (dup) {
        c.fail(at + ": duplicate name " + quoteJSON(name));
        break;
      }
      const url = p.string("url");
      if (c.error !== null) break;
      if (url.length == 0) {
        c.fail(at + ": missing \"url\"");
        break;
      }
      const pieces = template(url);
      if (pieces === null) {
        c.fail(at + ": " + templateError);
        break;
      }
      let timeout: u32 = 0;
      const t = p.raw("timeout");
      if (t !== null && !t.isNull) {
        timeout = timeoutMs(t);
        if (timeout == 0) {
          c.fail(at + ": \"timeout\" " + t.toJSON() + ": want a duration like 300ms or 2s (at most 1h), or seconds");
          break;
        }
      }
      this.parts.push(new Part(name, pieces, timeout));
    }
    return c.finish();
  }

  onRequest(req: Request): Action {
    const query = req.query();
    const reqs = new Array<OutboundRequest>(this.parts.length);
    const sb = new StringBuilder(128);
    for (let i = 0; i < this.parts.length; i++) {
      const p = this.parts[i];
      sb.reset();
      for (let k = 0; k < p.url.length; k++) {
        const piece = p.url[k];
        if (!piece.query) {
          sb.append(piece.text);
          continue;
        }
        const v = queryParam(query, piece.text);
        if (v === null || v.length == 0) {
          const why = "missing query parameter " + quoteJSON(piece.text);
          return answer(req, 400, new JSONWriter().beginObject().key("error").string(why).endObject().toString());
        }
        appendEscaped(sb, v);
      }
      reqs[i] = new OutboundRequest(sb.toString()).timeout(p.timeoutMs);
    }

    // One batch: the host runs every part at once.
    const results = fetch(reqs);
    if (results === null) return failLast("http_batch");

    const docs = new Array<JSONValue | null>(this.parts.length);
    const why = new Array<string | null>(this.parts.length);
    let failed = 0;
    let first = -1;
    for (let i = 0; i < results.length; i++) {
      let reason = failure(results[i]);
      if (reason === null) {
        const doc = parseJSON(results[i].bodyText());
        if (doc === null) reason = "answer is not JSON";
        else docs[i] = doc;
      }
      why[i] = reason;
      if (reason !== null) {
        if (first < 0) first = i;
        failed++;
      }
    }

    const w = new JSONWriter().beginObject();
    let status = 200;
    if (failed > 0 && (!this.partial || failed == this.parts.length)) {
      status = 502;
      w.key("error").string("part " + quoteJSON(this.parts[first].name) + " failed: " + why[first]!);
      w.key("failed");
    } else {
      for (let i = 0; i < this.parts.length; i++) {
        w.key(this.parts[i].name);
        const doc = docs[i];
        if (doc === null) w.null();
        else w.value(doc);
      }
      if (failed > 0) w.key(ERRORS_KEY);
    }
    if (failed > 0) {
      w.beginObject();
      for (let i = 0; i < this.parts.length; i++) {
        const reason = why[i];
        if (reason !== null) w.key(this.parts[i].name).string(reason);
      }
      w.endObject();
    }
    return answer(req, status, w.endObject().toString());
  }
}

/** Whether name is letters, digits, "_" and "-" only. */
function validName(name: string): bool {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d;
    if (!ok) return false;
  }
  return true;
}

register(new Aggregate());
