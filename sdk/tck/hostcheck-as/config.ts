// The plugin config (sdk/tck/hostcheck's package documentation): read
// with the SDK's ConfigReader, strict like the Go guest's DecodeConfig
// (unknown keys and wrong types are errors), then checked with the Go
// guest's rules (sdk/tck/hostcheck/config.go) and messages.

import { ConfigReader } from "../../assemblyscript/assembly";

/** The values of "check". */
export const CHECKS: string[] = ["inspect", "phase", "kv", "metrics", "log", "outbound", "chain", "instance", "buffers", "gateway", "flags"];

/** One request of the outbound check's batch. */
export class OutboundCall {
  url: string = "";
  method: string = "";
  timeoutMs: i64 = 0;
  headerNames: string[] = [];
  headerValues: string[] = [];
  body: string = "";
}

/** The plugin config. */
export class Config {
  check: string = "";
  tag: string = "";
  stop: bool = false;
  local: bool = false;
  bigBody: i64 = 0;
  batch: OutboundCall[] = [];
  reject: string = "";
}

/** Why the last parseConfig returned null. */
export let configError: string = "";

/** CHECKS as Go's %q prints a []string: ["inspect" "phase" ...]. */
function quotedChecks(): string {
  let s = "[";
  for (let i = 0; i < CHECKS.length; i++) {
    if (i > 0) s += " ";
    s += "\"" + CHECKS[i] + "\"";
  }
  return s + "]";
}

/** Decodes and checks the config; null with configError set when it is
 *  refused. A "reject" message is the error itself, so that tests can see
 *  a plugin's own words reach the operator. */
export function parseConfig(text: string): Config | null {
  const c = ConfigReader.parse(text);
  const cfg = new Config();
  cfg.check = c.string("check");
  cfg.tag = c.string("tag");
  cfg.stop = c.bool("stop");
  cfg.local = c.bool("local");
  cfg.bigBody = c.int("big_body");
  cfg.reject = c.string("reject");
  c.raw("echo"); // any value; ignored
  const batch = c.objects("batch");
  if (batch !== null) {
    for (let i = 0; i < batch.length; i++) {
      const b = batch[i];
      const o = new OutboundCall();
      o.url = b.string("url");
      o.method = b.string("method");
      o.timeoutMs = b.int("timeout_ms");
      o.body = b.string("body");
      const h = b.object("headers");
      if (h !== null) {
        const keys = h.value.keys;
        for (let j = 0; j < keys.length; j++) {
          o.headerNames.push(keys[j]);
          o.headerValues.push(h.string(keys[j]));
        }
      }
      cfg.batch.push(o);
    }
  }
  const err = c.finish();
  if (err !== null) {
    configError = err;
    return null;
  }
  if (cfg.reject.length > 0) {
    configError = cfg.reject;
    return null;
  }
  if (cfg.check.length == 0) {
    configError = "missing \"check\" (one of " + quotedChecks() + ")";
    return null;
  }
  if (!CHECKS.includes(cfg.check)) {
    configError = "\"check\": unknown check \"" + cfg.check + "\" (want one of " + quotedChecks() + ")";
    return null;
  }
  if (cfg.check == "chain" && cfg.tag.length == 0) {
    configError = "check \"chain\" needs a \"tag\"";
    return null;
  }
  if (cfg.check == "outbound" && cfg.batch.length == 0) {
    configError = "check \"outbound\" needs a \"batch\"";
    return null;
  }
  if (cfg.bigBody < 0) {
    configError = "\"big_body\" is negative";
    return null;
  }
  for (let i = 0; i < cfg.batch.length; i++) {
    if (cfg.batch[i].url.length == 0) {
      configError = "batch[" + i.toString() + "]: missing \"url\"";
      return null;
    }
    if (cfg.batch[i].timeoutMs < 0) {
      configError = "batch[" + i.toString() + "]: negative \"timeout_ms\"";
      return null;
    }
  }
  return cfg;
}
