// Logging, hook errors, time and randomness: these work in every hook,
// _initialize included.

import * as host from "./host";
import { Level, MAX_ERROR_MESSAGE } from "./abi";
import { record } from "./errors";
import { arg1, ptr0, len0, bytesPtr, bytesLen } from "./buffer";

/** Writes msg to the gateway log, tagged with the plugin and route. The
 *  gateway rate-limits each plugin's lines (and cuts them at 4 KiB), so
 *  logging is best effort; the code is returned all the same. */
export function log(level: Level, msg: string): i32 {
  arg1(msg);
  return record("log", host.log(level, ptr0, len0));
}

export function logDebug(msg: string): i32 {
  return log(Level.Debug, msg);
}

export function logInfo(msg: string): i32 {
  return log(Level.Info, msg);
}

export function logWarn(msg: string): i32 {
  return log(Level.Warn, msg);
}

export function logError(msg: string): i32 {
  return log(Level.Error, msg);
}

/** The name of a log level: "debug", "info", "warn", "error". */
export function levelName(level: i32): string {
  switch (level) {
    case Level.Debug: return "debug";
    case Level.Info: return "info";
    case Level.Warn: return "warn";
    case Level.Error: return "error";
  }
  return "Level(" + level.toString() + ")";
}

/** Records why the current hook is failing: the message reaches the
 *  gateway log and, in init, the config error the operator sees. fail()
 *  and a rejecting init call it for you. Messages are cut to 1 KiB on a
 *  character boundary, which is what the host keeps. */
export function setError(msg: string): i32 {
  arg1(msg);
  let n = len0;
  if (n > MAX_ERROR_MESSAGE) {
    n = MAX_ERROR_MESSAGE;
    // Back up to the start of a UTF-8 sequence.
    while (n > 0 && (load<u8>(ptr0 + <usize>n) & 0xc0) == 0x80) n--;
  }
  return record("set_error", host.set_error(ptr0, n));
}

/** The host's wall-clock time, in nanoseconds since the Unix epoch. */
export function now(): i64 {
  record("time_now", 0);
  return host.time_now();
}

/** The host's wall-clock time, in milliseconds since the Unix epoch. */
export function nowMillis(): i64 {
  return now() / 1_000_000;
}

/** Fills buf with cryptographically secure random bytes. */
export function fillRandom(buf: Uint8Array): i32 {
  const r = host.random_get(bytesPtr(buf), bytesLen(buf));
  return record("random_get", r < 0 ? r : 0);
}

/** A random u64, from the host's secure source. */
export function randomU64(): u64 {
  const b = new Uint8Array(8);
  fillRandom(b);
  return load<u64>(b.dataStart);
}
