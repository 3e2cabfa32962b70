// The key-value store, one per plugin name, shared by all its instances
// and versions in the gateway process and bounded (10,000 keys and 16 MiB
// per plugin by default). Keys are at most 256 bytes. It works in
// onRequest and onResponse; elsewhere the functions answer Code.NotAllowed.

import * as host from "./host";
import { Code } from "./abi";
import { record } from "./errors";
import { arg1, ptr0, len0, bytesPtr, bytesLen, readBytes, readString, readKV } from "./buffer";

/** The value of key, or null (Code.NotFound when absent or expired). */
export function kvGet(key: string): Uint8Array | null {
  arg1(key);
  return readBytes("kv_get", readKV);
}

/** The value of key as UTF-8 text, or null. */
export function kvGetString(key: string): string | null {
  arg1(key);
  return readString("kv_get", readKV);
}

/** Stores value under key. ttlMillis 0 means no expiry (negative:
 *  Code.BadArgument). Code.TooLarge over the store's budget. */
export function kvSet(key: string, value: Uint8Array | null, ttlMillis: i64 = 0): i32 {
  if (ttlMillis < 0) return record("kv_set", Code.BadArgument);
  arg1(key);
  return record("kv_set", host.kv_set(ptr0, len0, bytesPtr(value), bytesLen(value), ttlMillis));
}

/** kvSet with the UTF-8 bytes of value. */
export function kvSetString(key: string, value: string, ttlMillis: i64 = 0): i32 {
  return kvSet(key, Uint8Array.wrap(String.UTF8.encode(value)), ttlMillis);
}

/** Removes key; Code.NotFound when absent or expired. */
export function kvDelete(key: string): i32 {
  arg1(key);
  return record("kv_delete", host.kv_delete(ptr0, len0));
}

// kv_incr's result: 8 bytes the host writes.
const incrResult = memory.data(8, 8);

/** Atomically adds delta to key's value read as a decimal integer (a
 *  missing key counts as 0) and returns the new value; ttlMillis applies
 *  when the call creates the key. On failure it returns 0 and lastCode()
 *  says why (Code.BadArgument when the stored value is not an integer). */
export function kvIncr(key: string, delta: i64, ttlMillis: i64 = 0): i64 {
  if (ttlMillis < 0) {
    record("kv_incr", Code.BadArgument);
    return 0;
  }
  arg1(key);
  store<i64>(incrResult, 0);
  if (record("kv_incr", host.kv_incr(ptr0, len0, delta, ttlMillis, incrResult)) < 0) return 0;
  return load<i64>(incrResult);
}
