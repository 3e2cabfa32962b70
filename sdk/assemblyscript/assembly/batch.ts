// The encodings of http_batch and http_batch_result (sdk/ABI.md section 4,
// "Outbound HTTP"; sdk/abi/batch.go is the Go side): a count, then each
// request or result. Every integer is a little-endian u32 (a status is an
// i32 in the same four bytes); every byte string is its length, then its
// bytes.
//
//   batch:   count, count x {timeout_ms, method, url, header_count x {name value}, body}
//   results: count, count x {status, duration_us, header_count x {name value}, body}

import { Code, BatchStatus, MAX_BATCH, MAX_BATCH_BYTES, MAX_BATCH_HEADERS } from "./abi";
import { errorText } from "./errors";
import { decode, equalFold } from "./buffer";

/** One header field of an outbound request or result. */
export class HeaderField {
  constructor(public name: string, public value: string) {}
}

/** One request of a batch. */
export class OutboundRequest {
  /** Defaults to GET. */
  method: string = "GET";
  /** "upstream://NAME/path?query" (load-balanced over the named upstream)
   *  or "http://host:port/path?query". Only destinations the route allows
   *  the plugin (outbound.upstreams, outbound.hosts) are called; the
   *  others answer BatchStatus.NotAllowed. */
  url: string = "";
  headers: HeaderField[] = [];
  body: Uint8Array | null = null;
  /** Bounds this request, in milliseconds; 0: the plugin's call deadline. */
  timeoutMillis: u32 = 0;

  constructor(url: string = "", method: string = "GET") {
    this.url = url;
    this.method = method;
  }

  /** Adds a header; returns this, for chaining. */
  header(name: string, value: string): OutboundRequest {
    this.headers.push(new HeaderField(name, value));
    return this;
  }

  /** Sets the body to the UTF-8 bytes of text; returns this. */
  bodyText(text: string): OutboundRequest {
    this.body = Uint8Array.wrap(String.UTF8.encode(text));
    return this;
  }

  /** Sets the timeout in milliseconds; returns this. */
  timeout(ms: u32): OutboundRequest {
    this.timeoutMillis = ms;
    return this;
  }
}

/** The answer to one OutboundRequest. */
export class OutboundResult {
  /** The HTTP status, or a negative BatchStatus when there is no HTTP
   *  answer (err() says which). */
  status: i32 = 0;
  /** How long the request took, in microseconds. */
  durationMicros: u32 = 0;
  headers: HeaderField[] = [];
  body: Uint8Array = new Uint8Array(0);

  /** null when the request got an HTTP answer (of any status), else the
   *  Go SDK's text for it: "wasmgate: outbound request timed out",
   *  "wasmgate: outbound connect or network error", "wasmgate.http_batch:
   *  not allowed", "wasmgate: outbound request failed". */
  err(): string | null {
    const s = this.status;
    if (s >= 0) return null;
    switch (s) {
      case BatchStatus.Timeout: return "wasmgate: outbound request timed out";
      case BatchStatus.Network: return "wasmgate: outbound connect or network error";
      case BatchStatus.NotAllowed: return errorText("http_batch", Code.NotAllowed);
      case BatchStatus.Other: return "wasmgate: outbound request failed";
    }
    return "wasmgate: outbound request failed (status " + s.toString() + ")";
  }

  /** The first value of the header name (case-insensitive), or null. */
  header(name: string): string | null {
    for (let i = 0; i < this.headers.length; i++) {
      if (equalFold(this.headers[i].name, name)) return this.headers[i].value;
    }
    return null;
  }

  /** The body as UTF-8 text. */
  bodyText(): string {
    return decode(this.body.dataStart, this.body.length);
  }
}

/** A growing byte buffer, reused from one encoding to the next: u32s,
 *  byte strings and strings as the batch codec writes them. Raw bytes can
 *  be written too, to build malformed encodings. */
export class ByteWriter {
  private buf: ArrayBuffer;
  length: i32 = 0;

  constructor(capacity: i32 = 256) {
    this.buf = new ArrayBuffer(max(capacity, 16));
  }

  /** The address of what was written (valid until the next write). */
  get ptr(): usize {
    return changetype<usize>(this.buf);
  }

  /** Forgets what was written, keeping the memory. */
  reset(): void {
    this.length = 0;
  }

  private grow(extra: i32): usize {
    const need = this.length + extra;
    if (need > this.buf.byteLength) {
      const grown = new ArrayBuffer(max(need, this.buf.byteLength << 1));
      memory.copy(changetype<usize>(grown), changetype<usize>(this.buf), <usize>this.length);
      this.buf = grown;
    }
    return changetype<usize>(this.buf) + <usize>this.length;
  }

  u32(v: u32): ByteWriter {
    store<u32>(this.grow(4), v);
    this.length += 4;
    return this;
  }

  /** Raw bytes, without a length. */
  raw(ptr: usize, n: i32): ByteWriter {
    memory.copy(this.grow(n), ptr, <usize>n);
    this.length += n;
    return this;
  }

  /** A length-prefixed byte string. */
  bytes(b: Uint8Array | null): ByteWriter {
    if (b === null) return this.u32(0);
    this.u32(<u32>b.length);
    return this.raw(b.dataStart, b.length);
  }

  /** A length-prefixed UTF-8 string. */
  string(s: string): ByteWriter {
    const lenAt = this.grow(4 + s.length * 3);
    const n = <i32>String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, lenAt + 4);
    store<u32>(lenAt, <u32>n);
    this.length += 4 + n;
    return this;
  }

  /** A copy of what was written. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    if (this.length > 0) memory.copy(out.dataStart, this.ptr, <usize>this.length);
    return out;
  }
}

/** Reads an encoding, checking every length against the bytes left; after
 *  the first failure every read fails (bad is true). */
export class ByteReader {
  bad: bool = false;
  private pos: i32 = 0;

  constructor(public buf: Uint8Array) {}

  /** Bytes not read yet. */
  get left(): i32 {
    return this.buf.length - this.pos;
  }

  u32(): u32 {
    if (this.bad || this.left < 4) {
      this.bad = true;
      return 0;
    }
    const v = load<u32>(this.buf.dataStart + <usize>this.pos);
    this.pos += 4;
    return v;
  }

  /** The next byte string, a view of the input (no copy). */
  bytes(): Uint8Array {
    const n = this.u32();
    if (this.bad || <u64>n > <u64>this.left) {
      this.bad = true;
      return new Uint8Array(0);
    }
    const v = this.buf.subarray(this.pos, this.pos + <i32>n);
    this.pos += <i32>n;
    return v;
  }

  /** The next byte string as UTF-8 text. */
  string(): string {
    const b = this.bytes();
    if (this.bad) return "";
    return decode(b.dataStart, b.length);
  }

  /** A count of items of at least min bytes each, failing when the bytes
   *  left cannot hold them. */
  count(min: i32): i32 {
    const n = this.u32();
    if (this.bad || <u64>n * <u64>min > <u64>this.left) {
      this.bad = true;
      return 0;
    }
    return <i32>n;
  }
}

const MIN_RESULT: i32 = 4 * 4; // status, duration, header_count, body_len
const MIN_HEADER: i32 = 2 * 4; // name_len, value_len

/** Appends the encoding of one request. */
export function appendRequest(w: ByteWriter, r: OutboundRequest): void {
  w.u32(r.timeoutMillis);
  w.string(r.method.length == 0 ? "GET" : r.method);
  w.string(r.url);
  w.u32(<u32>r.headers.length);
  for (let i = 0; i < r.headers.length; i++) {
    w.string(r.headers[i].name);
    w.string(r.headers[i].value);
  }
  w.bytes(r.body);
}

/** Appends the encoding of a batch: the count, then each request. */
export function encodeBatch(w: ByteWriter, reqs: OutboundRequest[]): void {
  w.u32(<u32>reqs.length);
  for (let i = 0; i < reqs.length; i++) appendRequest(w, reqs[i]);
}

/** Appends the encoding of one result (what a host writes; for tests). */
export function appendResult(w: ByteWriter, r: OutboundResult): void {
  w.u32(<u32>r.status);
  w.u32(r.durationMicros);
  w.u32(<u32>r.headers.length);
  for (let i = 0; i < r.headers.length; i++) {
    w.string(r.headers[i].name);
    w.string(r.headers[i].value);
  }
  w.bytes(r.body);
}

/** Decodes the results of an http_batch, or null when they do not parse
 *  (a length past the end, a count no input could hold, bytes left over).
 *  Bodies are views of b; header strings are copies. */
export function decodeResults(b: Uint8Array): OutboundResult[] | null {
  const r = new ByteReader(b);
  const n = r.count(MIN_RESULT);
  if (r.bad) return null;
  const out = new Array<OutboundResult>(n);
  for (let i = 0; i < n; i++) {
    const q = new OutboundResult();
    q.status = <i32>r.u32();
    q.durationMicros = r.u32();
    const hn = r.count(MIN_HEADER);
    for (let j = 0; j < hn && !r.bad; j++) {
      const name = r.string();
      const value = r.string();
      q.headers.push(new HeaderField(name, value));
    }
    q.body = r.bytes();
    if (r.bad) return null;
    out[i] = q;
  }
  if (r.left != 0) return null;
  return out;
}

/** Decodes an encoded batch (what a host reads; for tests), or null when
 *  it is malformed or over MAX_BATCH requests, MAX_BATCH_BYTES bytes or
 *  MAX_BATCH_HEADERS headers per request. */
export function decodeBatch(b: Uint8Array): OutboundRequest[] | null {
  if (b.length > MAX_BATCH_BYTES) return null;
  const r = new ByteReader(b);
  const n = r.count(5 * 4);
  if (r.bad || n > MAX_BATCH) return null;
  const out = new Array<OutboundRequest>(n);
  for (let i = 0; i < n; i++) {
    const q = new OutboundRequest();
    q.timeoutMillis = r.u32();
    q.method = r.string();
    q.url = r.string();
    const hn = r.count(MIN_HEADER);
    if (hn > MAX_BATCH_HEADERS) return null;
    for (let j = 0; j < hn && !r.bad; j++) {
      const name = r.string();
      const value = r.string();
      q.headers.push(new HeaderField(name, value));
    }
    q.body = r.bytes();
    if (r.bad) return null;
    out[i] = q;
  }
  if (r.left != 0) return null;
  return out;
}
