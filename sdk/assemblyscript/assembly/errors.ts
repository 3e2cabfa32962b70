// Errors. AssemblyScript has no exceptions a plugin could catch (a throw
// aborts), so the SDK reports failures the way the ABI does, by code:
//
//   - a function whose only result is success or failure returns the code:
//     0 (Code.Ok), or a negative Code such as Code.NotAllowed;
//   - a function that returns a value (a header, a KV value, a flag) returns
//     null, 0 or false on failure, and lastCode() says why.
//
// Every SDK function that calls the host sets lastCode() (to 0 on success)
// and lastError(), the Go SDK's error text: "wasmgate.header_set: bad
// argument". A failure the SDK detects itself, without a host code (an
// empty outbound URL, malformed batch results), is CODE_SDK with its own
// message.

import { Code, codeName } from "./abi";

/** The code of a failure the SDK detected itself: see lastError(). */
export const CODE_SDK: i32 = -100;

let lastCodeValue: i32 = 0;
let lastFunc: string = "";
let lastMessage: string | null = null;

/** The code of the last SDK call that reached (or would have reached) the
 *  host: 0 on success, a negative Code, or CODE_SDK. */
export function lastCode(): i32 {
  return lastCodeValue;
}

/** The text of the last SDK call's failure, "" after a success:
 *  "wasmgate.kv_get: not found". */
export function lastError(): string {
  if (lastCodeValue >= 0) return "";
  const m = lastMessage;
  if (m !== null) return m;
  return errorText(lastFunc, lastCodeValue);
}

/** The Go SDK's text for a host function's code: "wasmgate.FN: bad
 *  argument" ("wasmgate: not found" without a function name). */
export function errorText(fn: string, code: i32): string {
  const text = codeText(code);
  if (fn.length == 0) return "wasmgate: " + text;
  return "wasmgate." + fn + ": " + text;
}

/** The ABI's name of a code in words: "bad argument" for BAD_ARGUMENT. */
export function codeText(code: i32): string {
  const name = codeName(code);
  if (name.length == 0) return "error code " + code.toString();
  switch (code) {
    case Code.NotFound: return "not found";
    case Code.BadArgument: return "bad argument";
    case Code.NotAllowed: return "not allowed";
    case Code.TooLarge: return "too large";
  }
  return "unavailable";
}

/** Records the result of a call of host function fn and returns code.
 *  A non-negative code is a success. */
export function record(fn: string, code: i32): i32 {
  lastFunc = fn;
  lastMessage = null;
  lastCodeValue = code < 0 ? code : 0;
  return code;
}

/** Records a failure the SDK detected itself, with its message, and
 *  returns CODE_SDK. */
export function recordSDK(message: string): i32 {
  lastFunc = "";
  lastMessage = message;
  lastCodeValue = CODE_SDK;
  return CODE_SDK;
}
