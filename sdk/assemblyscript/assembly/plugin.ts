// The plugin: its handlers, their registration and the hooks that call
// them (exported by exports.ts and response.ts).

import { Action } from "./abi";
import { Request, Response, request, response, localResponseSent, resetLocalResponse } from "./request";
import { setError } from "./log";
import { readString, readConfig as readConfigFn, scratch, MAX_READ } from "./buffer";
import { lastError } from "./errors";

/** A plugin's handlers. Extend it, override what the plugin does, and
 *  register one instance at the top level of the entry file:
 *
 *    class AddHeader extends Plugin {
 *      onRequest(req: Request): Action {
 *        req.setHeader("X-Hello", "world");
 *        return Action.Continue;
 *      }
 *    }
 *    register(new AddHeader());
 */
export class Plugin {
  /** Receives the plugin's config for the route (JSON, "{}" when none;
   *  sdk/ABI.md section 5) once per instance, before any request. It
   *  validates it and keeps what the hooks need in fields or globals, and
   *  returns null to accept it or the error the operator sees, e.g.
   *  `missing "keys"` (ConfigReader does the strict JSON part). The
   *  default takes no config: anything but an empty object is refused. */
  init(config: string): string | null {
    if (emptyObject(config)) return null;
    return "this plugin takes no config, got " + (config.length > 200 ? config.substring(0, 200) : config);
  }

  /** Runs for every request of a route that lists the plugin, in chain
   *  order: Action.Continue, Action.Stop after sendResponse, or fail(msg). */
  onRequest(req: Request): Action {
    return Action.Continue;
  }

  /** Runs for every response, in reverse chain order: Action.Continue or
   *  fail(msg). Called only if the entry file exports on_response (export
   *  { on_response } from ".../assembly/response"): a plugin without it
   *  costs nothing on the response path. */
  onResponse(resp: Response): Action {
    return Action.Continue;
  }
}

let registered: Plugin | null = null;
let registrations: i32 = 0;

/** Installs the plugin's handlers. Call it exactly once, at the top level
 *  of the entry file (which runs in _initialize, before on_init). */
export function register(p: Plugin): void {
  registered = p;
  registrations++;
}

/** Records msg as the reason this hook fails (setError) and returns the
 *  Action that makes the gateway apply the route's failure policy
 *  (fail_closed: 502; fail_open: skip the plugin). */
export function fail(msg: string): Action {
  setError(msg.length == 0 ? "plugin failed" : msg);
  return Action.Fail;
}

/** fail with the text of the last SDK call's error (lastError()), prefixed
 *  with what the plugin was doing: failLast("setting X-Id"). */
export function failLast(doing: string): Action {
  const e = lastError();
  return fail(e.length == 0 ? doing : doing + ": " + e);
}

/** Whether s is "{}", "null" or nothing, with any surrounding space. */
export function emptyObject(s: string): bool {
  const t = s.trim();
  if (t.length == 0 || t == "null") return true;
  if (t.length < 2 || t.charCodeAt(0) != 0x7b || t.charCodeAt(t.length - 1) != 0x7d) return false;
  return t.substring(1, t.length - 1).trim().length == 0;
}

/** The on_init hook: read the config, hand it to init. */
export function handleInit(configLen: i32): i32 {
  const p = registered;
  if (p === null) {
    setError("no plugin registered: call register(new MyPlugin()) at the top level of the entry file");
    return 1;
  }
  if (registrations > 1) {
    setError("register called " + registrations.toString() + " times; call it once");
    return 1;
  }
  const cfg = readConfig(configLen);
  if (cfg === null) {
    setError("reading the config: " + lastError());
    return 1;
  }
  const err = p.init(cfg);
  if (err !== null) {
    setError(err.length == 0 ? "config rejected" : err);
    return 1;
  }
  return 0;
}

/** Reads the config; size is on_init's hint: the scratch buffer is grown
 *  to it first, so one host call is the common case. */
function readConfig(size: i32): string | null {
  if (size > 0 && size <= MAX_READ) scratch(size);
  return readString("config_get", readConfigFn);
}

/** The on_request hook. It holds the SDK's guarantee that Stop and a
 *  local response go together: Continue after a successful sendResponse
 *  is Stop, and Stop without one is a failure with a clear message. */
export function handleRequest(): i32 {
  resetLocalResponse();
  const p = registered;
  if (p === null) return Action.Continue;
  const a = p.onRequest(request);
  if (a == Action.Continue) {
    return localResponseSent() ? Action.Stop : Action.Continue;
  }
  if (a == Action.Stop && !localResponseSent()) {
    setError("onRequest returned Stop without a successful sendResponse");
    return Action.Fail;
  }
  return a;
}

/** The on_response hook. */
export function handleResponse(): i32 {
  const p = registered;
  if (p === null) return Action.Continue;
  const a = p.onResponse(response);
  if (a == Action.Stop) {
    setError("onResponse returned Stop: only onRequest stops the chain");
    return Action.Fail;
  }
  return a;
}
