// Raw calls of the wasmgate host functions (the SDK's assembly/host.ts
// declarations, which are the imports themselves), beside the SDK's own
// wrappers, exactly where the Go guest makes raw calls
// (sdk/tck/hostcheck/raw_wasip1.go): the SDK hides what hostcheck must
// observe (the exact return codes of getters, the buffer-size convention,
// bad kinds and values). A buffer argument is a Uint8Array or null (address
// 0, length 0, like Go's nil slice); strings pass as their UTF-8 bytes.
//
// And WASI's fd_write, which the SDK does not import (its console goes
// through the log host function): the log check writes its hc-stdout and
// hc-stderr lines with it (sdk/ABI.md section 7: fd 1 and 2 reach the
// gateway log).

import * as host from "../../assemblyscript/assembly/host";

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: i32, iovs: usize, iovsLen: i32, nwritten: usize): i32;

/** The address of b's bytes, 0 for null. */
export function bp(b: Uint8Array | null): usize {
  return b === null ? 0 : b.dataStart;
}

/** b's length, 0 for null. */
export function bl(b: Uint8Array | null): i32 {
  return b === null ? 0 : b.length;
}

/** The UTF-8 bytes of s (a fresh buffer, alive until the hook returns:
 *  the minimal runtime collects only then). */
function enc(s: string): ArrayBuffer {
  return String.UTF8.encode(s);
}

function p(b: ArrayBuffer): usize {
  return changetype<usize>(b);
}

export function rawRequestMethod(buf: Uint8Array | null): i32 {
  return host.request_method(bp(buf), bl(buf));
}

export function rawRequestPath(buf: Uint8Array | null): i32 {
  return host.request_path(bp(buf), bl(buf));
}

export function rawRequestQuery(buf: Uint8Array | null): i32 {
  return host.request_query(bp(buf), bl(buf));
}

export function rawRequestClientIP(buf: Uint8Array | null): i32 {
  return host.request_client_ip(bp(buf), bl(buf));
}

export function rawHeaderGet(kind: i32, name: string, buf: Uint8Array | null): i32 {
  const n = enc(name);
  return host.header_get(kind, p(n), n.byteLength, bp(buf), bl(buf));
}

/** header_get at an arbitrary buffer address: with len 0 the host must
 *  answer the size without touching memory, whatever ptr is. */
export function rawHeaderGetAt(kind: i32, name: string, ptr: usize, len: i32): i32 {
  const n = enc(name);
  return host.header_get(kind, p(n), n.byteLength, ptr, len);
}

export function rawHeaderValues(kind: i32, name: string, buf: Uint8Array | null): i32 {
  const n = enc(name);
  return host.header_values(kind, p(n), n.byteLength, bp(buf), bl(buf));
}

export function rawHeaderNames(kind: i32, buf: Uint8Array | null): i32 {
  return host.header_names(kind, bp(buf), bl(buf));
}

export function rawHeaderSet(kind: i32, name: string, value: string): i32 {
  const n = enc(name);
  const v = enc(value);
  return host.header_set(kind, p(n), n.byteLength, p(v), v.byteLength);
}

export function rawBodyGet(kind: i32, offset: i64, buf: Uint8Array | null): i64 {
  return host.body_get(kind, offset, bp(buf), bl(buf));
}

export function rawResponseStatus(): i32 {
  return host.response_status();
}

export function rawResponseSetStatus(status: i32): i32 {
  return host.response_set_status(status);
}

export function rawSendResponse(status: i32, body: Uint8Array | null): i32 {
  return host.send_response(status, bp(body), bl(body));
}

export function rawConfigGet(buf: Uint8Array | null): i32 {
  return host.config_get(bp(buf), bl(buf));
}

export function rawLog(level: i32, msg: string): i32 {
  const m = enc(msg);
  return host.log(level, p(m), m.byteLength);
}

export function rawSetError(msg: string): i32 {
  const m = enc(msg);
  return host.set_error(p(m), m.byteLength);
}

export function rawTimeNow(): i64 {
  return host.time_now();
}

export function rawRandomGet(buf: Uint8Array | null): i32 {
  return host.random_get(bp(buf), bl(buf));
}

/** random_get at an arbitrary address (see rawHeaderGetAt). */
export function rawRandomGetAt(ptr: usize, len: i32): i32 {
  return host.random_get(ptr, len);
}

export function rawKVGet(key: string, buf: Uint8Array | null): i32 {
  const k = enc(key);
  return host.kv_get(p(k), k.byteLength, bp(buf), bl(buf));
}

export function rawKVSet(key: string, value: Uint8Array | null, ttlMillis: i64): i32 {
  const k = enc(key);
  return host.kv_set(p(k), k.byteLength, bp(value), bl(value), ttlMillis);
}

export function rawMetricDefine(kind: i32, name: string): i32 {
  const n = enc(name);
  return host.metric_define(kind, p(n), n.byteLength);
}

export function rawMetricRecord(id: i32, value: f64): i32 {
  return host.metric_record(id, value);
}

export function rawHTTPBatch(batch: Uint8Array | null): i32 {
  return host.http_batch(bp(batch), bl(batch));
}

export function rawHTTPBatchResult(buf: Uint8Array | null): i32 {
  return host.http_batch_result(bp(buf), bl(buf));
}

/** Writes s to the WASI file descriptor fd (1 stdout, 2 stderr), all of
 *  it: the host's fd_write may write less than asked. Returns the WASI
 *  errno (0 on success). */
export function writeFd(fd: i32, s: string): i32 {
  const b = enc(s);
  const iov = memory.data(12, 4); // {buf u32, buf_len u32}, then nwritten u32
  let at: usize = p(b);
  let left = b.byteLength;
  while (left > 0) {
    store<u32>(iov, <u32>at);
    store<u32>(iov, <u32>left, 4);
    store<u32>(iov, 0, 8);
    const errno = fd_write(fd, iov, 1, iov + 8);
    if (errno != 0) return errno;
    const n = <i32>load<u32>(iov, 8);
    if (n <= 0) return -1;
    at += <usize>n;
    left -= n;
  }
  return 0;
}
