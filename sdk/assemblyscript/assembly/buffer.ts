// Buffers between the plugin and the host (sdk/ABI.md section 3).
//
// Data from the host: the guest hands a buffer, the host writes what fits
// and returns the full size, and the guest retries with a larger buffer.
// The SDK reads into one scratch buffer (unmanaged memory, outside the
// garbage collector) that grows to the largest item seen and is reused, so
// a read allocates only the string or array handed to the plugin.
//
// Data to the host: AssemblyScript strings are UTF-16, the ABI's are UTF-8,
// so string arguments are encoded into one reused argument buffer (small
// ones) or a temporary array (large ones); byte arrays are passed in place.
//
// An instance runs one hook at a time and has one thread: no locks.

import { record } from "./errors";
import { Code } from "./abi";

/** The scratch buffer's first size: most headers, paths and configs fit. */
const SCRATCH_INITIAL: i32 = 2 << 10;
/** Bounds the grow-and-retry loop: data may change between two calls. */
export const MAX_ATTEMPTS: i32 = 4;
/** The largest item read in one piece (1 GiB). */
export const MAX_READ: i32 = 1 << 30;
/** Strings whose UTF-8 form may pass this go through a temporary array
 *  rather than the argument buffer, which keeps its size for ever. */
const ARG_INLINE: i32 = 16 << 10;

let scratchPtr: usize = 0;
let scratchCap: i32 = 0;

/** The scratch buffer, at least n bytes, its content lost. */
export function scratch(n: i32): usize {
  if (n > scratchCap || scratchPtr == 0) {
    let cap = max(max(n, SCRATCH_INITIAL), scratchCap << 1);
    if (scratchPtr != 0) heap.free(scratchPtr);
    scratchPtr = heap.alloc(<usize>cap);
    scratchCap = cap;
  }
  return scratchPtr;
}

/** The scratch buffer's address (after scratch()). */
export function scratchAddr(): usize {
  return scratchPtr;
}

/** The scratch buffer's capacity. */
export function scratchSize(): i32 {
  return scratchCap;
}

// The argument buffer: arguments are encoded one after the other.
let argPtr: usize = 0;
let argCap: i32 = 0;
// Large arguments, kept reachable until the next call.
let argTemp0: ArrayBuffer | null = null;
let argTemp1: ArrayBuffer | null = null;

/** The first and second encoded arguments of the current call. */
export let ptr0: usize = 0;
export let len0: i32 = 0;
export let ptr1: usize = 0;
export let len1: i32 = 0;

function argBuffer(n: i32): usize {
  if (n > argCap || argPtr == 0) {
    const cap = max(max(n, 256), argCap << 1);
    if (argPtr != 0) heap.free(argPtr);
    argPtr = heap.alloc(<usize>cap);
    argCap = cap;
  }
  return argPtr;
}

/** Encodes s as UTF-8 into ptr0/len0. */
export function arg1(s: string): void {
  const max3 = s.length * 3;
  argTemp0 = null;
  argTemp1 = null;
  if (max3 <= ARG_INLINE) {
    const p = argBuffer(max3);
    ptr0 = p;
    len0 = <i32>String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p);
    return;
  }
  const b = String.UTF8.encode(s);
  argTemp0 = b;
  ptr0 = changetype<usize>(b);
  len0 = b.byteLength;
}

/** Encodes a and b as UTF-8 into ptr0/len0 and ptr1/len1. */
export function arg2(a: string, b: string): void {
  const maxA = a.length * 3;
  const maxB = b.length * 3;
  argTemp0 = null;
  argTemp1 = null;
  if (maxA + maxB <= ARG_INLINE) {
    const p = argBuffer(maxA + maxB);
    ptr0 = p;
    len0 = <i32>String.UTF8.encodeUnsafe(changetype<usize>(a), a.length, p);
    ptr1 = p + <usize>len0;
    len1 = <i32>String.UTF8.encodeUnsafe(changetype<usize>(b), b.length, ptr1);
    return;
  }
  const ea = String.UTF8.encode(a);
  const eb = String.UTF8.encode(b);
  argTemp0 = ea;
  argTemp1 = eb;
  ptr0 = changetype<usize>(ea);
  len0 = ea.byteLength;
  ptr1 = changetype<usize>(eb);
  len1 = eb.byteLength;
}

/** The address of b's bytes (0 for null or empty: the host accepts any
 *  pointer with length 0). */
export function bytesPtr(b: Uint8Array | null): usize {
  if (b === null) return 0;
  return b.dataStart;
}

/** b's length (0 for null). */
export function bytesLen(b: Uint8Array | null): i32 {
  if (b === null) return 0;
  return b.length;
}

/** The bytes of s as UTF-8, in a new array. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** The UTF-8 bytes at [ptr, ptr+n) as a string. */
export function decode(ptr: usize, n: i32): string {
  return String.UTF8.decodeUnsafe(ptr, <usize>n);
}

/** A copy of the bytes at [ptr, ptr+n). */
export function copyBytes(ptr: usize, n: i32): Uint8Array {
  const out = new Uint8Array(n);
  memory.copy(out.dataStart, ptr, <usize>n);
  return out;
}

/** The UTF-8 bytes of a as a string. */
export function bytesToString(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.length);
}

// Readers: the host functions that follow the buffer convention, each
// wrapped as a Reader (function references, so that a module imports only
// the host functions it uses). Their name or key argument, if any, is
// ptr0/len0 (set by arg1 first); kind is the kind of header readers.

import * as host from "./host";

/** A host function that fills (buf, len) and returns the full size. */
export type Reader = (kind: i32, buf: usize, len: i32) => i32;

export function readMethod(kind: i32, buf: usize, len: i32): i32 { return host.request_method(buf, len); }
export function readPath(kind: i32, buf: usize, len: i32): i32 { return host.request_path(buf, len); }
export function readQuery(kind: i32, buf: usize, len: i32): i32 { return host.request_query(buf, len); }
export function readClientIP(kind: i32, buf: usize, len: i32): i32 { return host.request_client_ip(buf, len); }
export function readHeader(kind: i32, buf: usize, len: i32): i32 { return host.header_get(kind, ptr0, len0, buf, len); }
export function readHeaderValues(kind: i32, buf: usize, len: i32): i32 { return host.header_values(kind, ptr0, len0, buf, len); }
export function readHeaderNames(kind: i32, buf: usize, len: i32): i32 { return host.header_names(kind, buf, len); }
export function readConfig(kind: i32, buf: usize, len: i32): i32 { return host.config_get(buf, len); }
export function readKV(kind: i32, buf: usize, len: i32): i32 { return host.kv_get(ptr0, len0, buf, len); }

/** Reads with fn (the host function named name, for errors) into the
 *  scratch buffer until the data fits and returns its size (the data is
 *  at scratchAddr(), valid until the next read), or a negative code;
 *  records the result. */
export function readScratch(name: string, fn: Reader, kind: i32 = 0): i32 {
  let buf = scratch(0);
  for (let i = 0; i < MAX_ATTEMPTS; i++) {
    const n = fn(kind, buf, scratchCap);
    if (n < 0) return record(name, n);
    if (n <= scratchCap) {
      record(name, 0);
      return n;
    }
    if (n > MAX_READ) return record(name, Code.TooLarge);
    buf = scratch(n);
  }
  return record(name, Code.Unavailable);
}

/** readScratch as a string; null on failure (see lastCode()). */
export function readString(name: string, fn: Reader, kind: i32 = 0): string | null {
  const n = readScratch(name, fn, kind);
  if (n < 0) return null;
  return decode(scratchPtr, n);
}

/** Reads with fn into an array of its own; null on failure. A small item
 *  is copied out of the scratch buffer; a large one is read straight into
 *  an exact-size array, so that the scratch buffer does not grow to the
 *  largest value ever read. */
export function readBytes(name: string, fn: Reader, kind: i32 = 0): Uint8Array | null {
  let n = fn(kind, scratch(0), scratchCap);
  if (n < 0) {
    record(name, n);
    return null;
  }
  if (n <= scratchCap) {
    record(name, 0);
    return copyBytes(scratchPtr, n);
  }
  for (let i = 1; i < MAX_ATTEMPTS; i++) {
    if (n > MAX_READ) {
      record(name, Code.TooLarge);
      return null;
    }
    const out = new Uint8Array(n);
    const m = fn(kind, out.dataStart, n);
    if (m < 0) {
      record(name, m);
      return null;
    }
    if (m <= n) {
      record(name, 0);
      return m == n ? out : out.slice(0, m);
    }
    n = m;
  }
  record(name, Code.Unavailable);
  return null;
}

/** Splits a host list (items each followed by one NUL byte) into strings.
 *  A missing final NUL is tolerated: the last item ends the list. */
export function splitList(ptr: usize, n: i32): string[] {
  const out = new Array<string>();
  let start = 0;
  for (let i = 0; i < n; i++) {
    if (load<u8>(ptr + <usize>i) == 0) {
      out.push(decode(ptr + <usize>start, i - start));
      start = i + 1;
    }
  }
  if (start < n) out.push(decode(ptr + <usize>start, n - start));
  return out;
}

/** s with ASCII letters lowered (header names are ASCII; String's
 *  toLowerCase would link the Unicode case tables into every plugin). */
export function asciiLower(s: string): string {
  const n = s.length;
  let i = 0;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) break;
    i++;
  }
  if (i == n) return s;
  const out = changetype<string>(__new(<usize>n << 1, idof<string>()));
  memory.copy(changetype<usize>(out), changetype<usize>(s), <usize>n << 1);
  for (; i < n; i++) {
    const c = load<u16>(changetype<usize>(out) + (<usize>i << 1));
    if (c >= 0x41 && c <= 0x5a) store<u16>(changetype<usize>(out) + (<usize>i << 1), c | 0x20);
  }
  return out;
}

/** Whether a and b are equal with ASCII letters folded. */
export function equalFold(a: string, b: string): bool {
  const n = a.length;
  if (b.length != n) return false;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x == y) continue;
    if (x >= 0x41 && x <= 0x5a) x |= 0x20;
    if (y >= 0x41 && y <= 0x5a) y |= 0x20;
    if (x != y) return false;
  }
  return true;
}
