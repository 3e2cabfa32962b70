// The module's exports (sdk/ABI.md sections 1 and 2): the version marker
// and the on_init and on_request hooks. A plugin's entry file re-exports
// them:
//
//   export * from "<sdk>/assembly/exports";
//
// on_response is in response.ts, exported only by plugins that handle
// responses: the gateway calls only the hooks a module exports.
//
// After each hook the SDK runs a full collection of the minimal runtime
// (__collect): what the hook allocated is freed, what globals hold stays.
// It is safe there because nothing of the hook is left on the stack.

import { handleInit, handleRequest } from "./plugin";

/** The version marker the gateway looks for; never called. */
export function wasmgate_abi_v1(): void {}

export function on_init(configLen: i32): i32 {
  const r = handleInit(configLen);
  __collect();
  return r;
}

export function on_request(): i32 {
  const r = handleRequest();
  __collect();
  return r;
}
