// Replacements for what AssemblyScript's standard library imports from the
// "env" module, which the gateway refuses (a plugin imports only
// "wasmgate" and "wasi_snapshot_preview1"). The build maps them with
// --use (asconfig.json does):
//
//   --use abort=wasmgate_abort       assertions, throw, out-of-range accesses
//   --use trace=wasmgate_trace       trace()
//   --use seed=wasmgate_seed         Math.random's seed
//   --use console=wasmgate_console   console.log, .warn, ...
//   --use Date=wasmgate_Date         Date.now()
//   --use performance=wasmgate_performance   performance.now()
//
// Anything else that imports from "env" is refused at load, naming the
// import ("unknown import "env"."..."").
//
// This file's top level must not allocate: its start code may run before
// the runtime's own globals are set up.

import * as host from "./host";
import { Level } from "./abi";

// abort's message is built here without allocating (abort may be what an
// allocation failure calls) and without globals (abort may run before they
// are initialized): in a static buffer, its length passed along.
// @ts-ignore: decorator
@inline const ABORT_CAP: i32 = 1024;

function abortPut(buf: usize, at: i32, s: string | null): i32 {
  if (s === null) return at;
  // Up to 3 bytes per UTF-16 unit: write as many units as surely fit.
  let units = (ABORT_CAP - at) / 3;
  if (units <= 0) return at;
  if (units > s.length) units = s.length;
  return at + <i32>String.UTF8.encodeUnsafe(changetype<usize>(s), units, buf + <usize>at);
}

function abortPutU32(buf: usize, at: i32, v: u32): i32 {
  if (ABORT_CAP - at < 10) return at; // at most 10 digits
  let digits = 1;
  for (let t = v; t >= 10; t /= 10) digits++;
  let p = buf + <usize>(at + digits);
  do {
    p--;
    store<u8>(p, <u8>(0x30 + v % 10));
    v /= 10;
  } while (v != 0);
  return at + digits;
}

/** abort: what a failed assertion, a throw or an out-of-range access calls.
 *  It records "abort: MESSAGE at FILE:LINE:COL" as the hook's error (the
 *  gateway logs it) and traps, which fails the hook; the route's failure
 *  policy applies and the instance is discarded. */
// @ts-ignore: decorator
@global export function wasmgate_abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const buf = memory.data(ABORT_CAP);
  let n = abortPut(buf, 0, "abort: ");
  n = abortPut(buf, n, message !== null ? message : "(no message)");
  if (fileName !== null) {
    n = abortPut(buf, n, " at ");
    n = abortPut(buf, n, fileName);
    n = abortPut(buf, n, ":");
    n = abortPutU32(buf, n, line);
    n = abortPut(buf, n, ":");
    n = abortPutU32(buf, n, column);
  }
  host.set_error(buf, n);
  unreachable();
}

/** trace: a debug line in the gateway log, "trace: MESSAGE a0 a1 ...". */
// @ts-ignore: decorator
@global export function wasmgate_trace(message: string, n: i32 = 0, a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0): void {
  let s = "trace: " + message;
  if (n > 0) s += " " + a0.toString();
  if (n > 1) s += " " + a1.toString();
  if (n > 2) s += " " + a2.toString();
  if (n > 3) s += " " + a3.toString();
  if (n > 4) s += " " + a4.toString();
  logRaw(Level.Debug, s);
}

/** seed: Math.random's seed, from the host's secure random source. */
// @ts-ignore: decorator
@global export function wasmgate_seed(): f64 {
  const b = memory.data(8, 8);
  host.random_get(b, 8);
  // A finite number with 53 random bits: seedRandom reinterprets it.
  return <f64>(load<u64>(b) >>> 11);
}

function logRaw(level: i32, s: string): void {
  const b = String.UTF8.encode(s);
  host.log(level, changetype<usize>(b), b.byteLength);
}

/** console: lines in the gateway log at the matching level (log is
 *  info). time/timeLog/timeEnd measure with the host's clock. */
// @ts-ignore: decorator
@global export namespace wasmgate_console {
  export function assert<T>(condition: T, message: string = ""): void {
    if (!condition) logRaw(Level.Error, "Assertion failed: " + message);
  }

  export function log(message: string = ""): void {
    logRaw(Level.Info, message);
  }

  export function debug(message: string = ""): void {
    logRaw(Level.Debug, message);
  }

  export function info(message: string = ""): void {
    logRaw(Level.Info, message);
  }

  export function warn(message: string = ""): void {
    logRaw(Level.Warn, message);
  }

  export function error(message: string = ""): void {
    logRaw(Level.Error, message);
  }

  // Created on first use: this file's top level must not allocate.
  let timerMap: Map<string, i64> | null = null;

  function timers(): Map<string, i64> {
    let m = timerMap;
    if (m === null) {
      m = new Map<string, i64>();
      timerMap = m;
    }
    return m;
  }

  export function time(label: string = "default"): void {
    if (timers().has(label)) {
      logRaw(Level.Warn, "Label '" + label + "' already exists for console.time()");
      return;
    }
    timers().set(label, host.time_now());
  }

  export function timeLog(label: string = "default"): void {
    if (!timers().has(label)) {
      logRaw(Level.Warn, "No such label '" + label + "' for console.timeLog()");
      return;
    }
    logTime(label);
  }

  export function timeEnd(label: string = "default"): void {
    if (!timers().has(label)) {
      logRaw(Level.Warn, "No such label '" + label + "' for console.timeEnd()");
      return;
    }
    logTime(label);
    timers().delete(label);
  }

  function logTime(label: string): void {
    const ns = host.time_now() - timers().get(label);
    logRaw(Level.Info, label + ": " + (<f64>ns / 1e6).toString() + "ms");
  }
}

/** Date with now() from the host's clock: --use Date=wasmgate_Date. The
 *  rest of Date (parsing, fields, toISOString) is the standard library's. */
// @ts-ignore: decorator
@global export class wasmgate_Date extends Date {
  // @ts-ignore: a static of the same name as Date's, for the alias
  static now(): i64 {
    return host.time_now() / 1_000_000;
  }
}

/** performance.now(): milliseconds from the host's clock (wall clock, in
 *  ms with a fraction): --use performance=wasmgate_performance. */
// @ts-ignore: decorator
@global export namespace wasmgate_performance {
  export function now(): f64 {
    return <f64>host.time_now() / 1e6;
  }
}
