// The on_response hook, for plugins that handle responses:
//
//   export * from "<sdk>/assembly/exports";
//   export * from "<sdk>/assembly/response";

import { handleResponse } from "./plugin";

export function on_response(): i32 {
  const r = handleResponse();
  __collect();
  return r;
}
