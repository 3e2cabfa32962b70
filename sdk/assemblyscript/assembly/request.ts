// The request and the response being handled. They hold no data: every
// method is a host call, so a plugin pays only for what it reads, and a
// body is never copied into the plugin unless it asks for it.
//
// In onRequest every method works. In onResponse the request is the one
// sent upstream and is read-only: setters return Code.NotAllowed.

import * as host from "./host";
import { Code, Kind, MIN_STATUS, MAX_STATUS, bodylessStatus } from "./abi";
import { record } from "./errors";
import {
  arg1, arg2, ptr0, len0, ptr1, len1, bytesPtr, bytesLen, readString, readScratch,
  scratch, scratchAddr, scratchSize, splitList, copyBytes, decode, asciiLower, MAX_ATTEMPTS, MAX_READ,
  readMethod, readPath, readQuery, readClientIP, readHeader, readHeaderValues, readHeaderNames,
} from "./buffer";

/** What bodyRange copied: n bytes of a body of size bytes. */
export class BodyRange {
  constructor(public n: i32, public size: i64) {}
}

/** What a request and a response share: headers and a body. */
export class Message {
  constructor(public readonly kind: i32) {}

  /** The first value of the header (name is case-insensitive), or null
   *  when absent (lastCode() is Code.NotFound). */
  header(name: string): string | null {
    arg1(name);
    return readString("header_get", readHeader, this.kind);
  }

  /** Every value of the header; empty when absent. */
  headerValues(name: string): string[] {
    arg1(name);
    const n = readScratch("header_values", readHeaderValues, this.kind);
    if (n < 0) return new Array<string>();
    return splitList(scratchAddr(), n);
  }

  /** The names of the headers, each once (the host lists a name once per
   *  value), in the host's order, first spelling kept. */
  headerNames(): string[] {
    const n = readScratch("header_names", readHeaderNames, this.kind);
    if (n < 0) return new Array<string>();
    const names = splitList(scratchAddr(), n);
    const out = new Array<string>();
    const seen = new Set<string>();
    for (let i = 0; i < names.length; i++) {
      const lower = asciiLower(names[i]);
      if (seen.has(lower)) continue;
      seen.add(lower);
      out.push(names[i]);
    }
    return out;
  }

  /** Replaces every value of the header with value. */
  setHeader(name: string, value: string): i32 {
    arg2(name, value);
    return record("header_set", host.header_set(this.kind, ptr0, len0, ptr1, len1));
  }

  /** Adds a value to the header. */
  addHeader(name: string, value: string): i32 {
    arg2(name, value);
    return record("header_add", host.header_add(this.kind, ptr0, len0, ptr1, len1));
  }

  /** Removes every value of the header; absent is not an error. */
  removeHeader(name: string): i32 {
    arg1(name);
    return record("header_remove", host.header_remove(this.kind, ptr0, len0));
  }

  /** A copy of the whole body; null on failure. One host call when it fits
   *  the scratch buffer, else one more straight into an exact-size array. */
  body(): Uint8Array | null {
    let size = host.body_get(this.kind, 0, scratch(0), scratchSize());
    if (size < 0) {
      record("body_get", <i32>size);
      return null;
    }
    if (size <= <i64>scratchSize()) {
      record("body_get", 0);
      return copyBytes(scratchAddr(), <i32>size);
    }
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      if (size > <i64>MAX_READ) {
        record("body_get", Code.TooLarge);
        return null;
      }
      const out = new Uint8Array(<i32>size);
      const got = host.body_get(this.kind, 0, out.dataStart, out.length);
      if (got < 0) {
        record("body_get", <i32>got);
        return null;
      }
      if (got <= size) {
        record("body_get", 0);
        return got == size ? out : out.slice(0, <i32>got);
      }
      size = got;
    }
    record("body_get", Code.Unavailable);
    return null;
  }

  /** The whole body as UTF-8 text; null on failure. */
  bodyText(): string | null {
    const b = this.body();
    if (b === null) return null;
    return decode(b.dataStart, b.length);
  }

  /** Copies the body bytes from offset into buf and returns how many it
   *  copied and the body's full size; null on failure. Only those bytes
   *  cross into the plugin, so sniffing a prefix of a large body is cheap. */
  bodyRange(offset: i64, buf: Uint8Array | null): BodyRange | null {
    if (offset < 0) {
      record("body_get", Code.BadArgument);
      return null;
    }
    const len = bytesLen(buf);
    const size = host.body_get(this.kind, offset, bytesPtr(buf), len);
    if (size < 0) {
      record("body_get", <i32>size);
      return null;
    }
    record("body_get", 0);
    let n = size - offset;
    if (n < 0) n = 0;
    if (n > <i64>len) n = <i64>len;
    return new BodyRange(<i32>n, size);
  }

  /** The body's size, without copying any of it; negative: a code. */
  bodySize(): i64 {
    const size = host.body_get(this.kind, 0, 0, 0);
    record("body_get", size < 0 ? <i32>size : 0);
    return size;
  }

  /** Replaces the body (and its Content-Length). Code.TooLarge over the
   *  route's body limit; on a response, Code.NotAllowed for a non-empty
   *  body when the status has none (204, 304). */
  setBody(b: Uint8Array | null): i32 {
    return record("body_set", host.body_set(this.kind, bytesPtr(b), bytesLen(b)));
  }

  /** setBody with the UTF-8 bytes of s. */
  setBodyText(s: string): i32 {
    arg1(s);
    return record("body_set", host.body_set(this.kind, ptr0, len0));
  }
}

/** The request being handled. */
export class Request extends Message {
  constructor() {
    super(Kind.Request);
  }

  /** The method, e.g. "GET" ("" when the host refuses: outside a request
   *  or response hook). */
  method(): string {
    const s = readString("request_method", readMethod);
    return s === null ? "" : s;
  }

  /** The path without the query, in the gateway's canonical form (the one
   *  the route matched and the upstream receives). In onResponse it is the
   *  path sent upstream, after the route's rewrite. */
  path(): string {
    const s = readString("request_path", readPath);
    return s === null ? "" : s;
  }

  /** Replaces the path sent upstream; it must start with "/". If it holds
   *  "?", what follows replaces the query too ("/p?" clears it). */
  setPath(path: string): i32 {
    arg1(path);
    return record("request_set_path", host.request_set_path(ptr0, len0));
  }

  /** The raw query string without "?" ("" when none). */
  query(): string {
    const s = readString("request_query", readQuery);
    return s === null ? "" : s;
  }

  /** The first value of the query parameter, unescaped, or null when
   *  absent. */
  queryParam(name: string): string | null {
    return queryParam(this.query(), name);
  }

  /** The client's address as text, after trusted-proxy processing. */
  clientIP(): string {
    const s = readString("request_client_ip", readClientIP);
    return s === null ? "" : s;
  }

  /** Builds a local response and ends the chain: onRequest then answers
   *  Stop (the SDK returns Stop even if onRequest returns Continue). The
   *  returned Response takes headers in the same hook. status is a final
   *  one (200-599), and 204 and 304 take no body: else null with
   *  Code.BadArgument. On a HEAD request the body is not sent. */
  sendResponse(status: i32, body: Uint8Array | null = null): Response | null {
    return sendLocal(status, bytesPtr(body), bytesLen(body));
  }

  /** sendResponse with the UTF-8 bytes of text. */
  sendResponseText(status: i32, text: string): Response | null {
    arg1(text);
    return sendLocal(status, ptr0, len0);
  }
}

/** The response being handled: the upstream's in onResponse, or the local
 *  one made by sendResponse in onRequest. */
export class Response extends Message {
  constructor() {
    super(Kind.Response);
  }

  /** The request this response answers, for reading. */
  get request(): Request {
    return request;
  }

  /** The status code (0 when not available: in onRequest before
   *  sendResponse). */
  status(): i32 {
    const s = host.response_status();
    record("response_status", s);
    return s < 0 ? 0 : s;
  }

  /** Sets the status, a final one (200-599; else Code.BadArgument). To 204
   *  or 304 it drops the body; from one it leaves an empty body. */
  setStatus(status: i32): i32 {
    if (status < MIN_STATUS || status > MAX_STATUS) return record("response_set_status", Code.BadArgument);
    return record("response_set_status", host.response_set_status(status));
  }
}

/** The request of the current hook. */
export const request = new Request();
/** The response of the current hook. */
export const response = new Response();

/** True once sendResponse succeeded in the current on_request. */
let localSent = false;

/** Whether sendResponse succeeded in the current on_request. */
export function localResponseSent(): bool {
  return localSent;
}

/** Forgets the local response: a new on_request begins. */
export function resetLocalResponse(): void {
  localSent = false;
}

function sendLocal(status: i32, ptr: usize, len: i32): Response | null {
  if (status < MIN_STATUS || status > MAX_STATUS || (len > 0 && bodylessStatus(status))) {
    record("send_response", Code.BadArgument);
    return null;
  }
  if (record("send_response", host.send_response(status, ptr, len)) < 0) return null;
  localSent = true;
  return response;
}

// @ts-ignore: decorator
@inline function unhex(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Decodes "+" and %XX of a query component as UTF-8; null when a %
 *  escape is malformed. */
export function queryUnescape(s: string): string | null {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  const n = s.length;
  const out = new Uint8Array(n * 3);
  let j = 0;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x2b) {
      out[j++] = 0x20;
    } else if (c == 0x25) {
      if (i + 2 >= n) return null;
      const h = unhex(s.charCodeAt(i + 1));
      const l = unhex(s.charCodeAt(i + 2));
      if (h < 0 || l < 0) return null;
      out[j++] = <u8>(h << 4 | l);
      i += 2;
    } else if (c < 0x80) {
      out[j++] = <u8>c;
    } else {
      // Non-ASCII in a raw query: keep it, as UTF-8.
      const enc = String.UTF8.encode(s.charAt(i));
      const e = Uint8Array.wrap(enc);
      for (let k = 0; k < e.length; k++) out[j++] = e[k];
    }
  }
  return decode(out.dataStart, j);
}

/** The first value of parameter name in a raw query, unescaped (the raw
 *  value when its escapes are malformed), or null when absent. */
export function queryParam(query: string, name: string): string | null {
  const n = query.length;
  let start = 0;
  while (start < n) {
    let end = query.indexOf("&", start);
    if (end < 0) end = n;
    let eq = query.indexOf("=", start);
    if (eq < 0 || eq > end) eq = end;
    const k = query.substring(start, eq);
    if (k != name) {
      const uk = queryUnescape(k);
      if (uk === null || uk != name) {
        start = end + 1;
        continue;
      }
    }
    const v = eq < end ? query.substring(eq + 1, end) : "";
    const uv = queryUnescape(v);
    return uv === null ? v : uv;
  }
  return null;
}
