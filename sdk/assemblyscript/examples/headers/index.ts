// headers: a wasmgate plugin in AssemblyScript that edits headers both ways
// (the same plugin as sdk/rust/examples/headers.rs).
//
// Config (every key optional):
//
//   config:
//     request:  {X-From-AS: "yes"}   # set on every request sent upstream
//     response: {X-Served-By: as}    # set on every response
//     deny_prefix: /private          # paths under it are answered 403 here
//
// On every request it also sets X-AS-Count (a counter shared by all
// instances, in the plugin's key-value store) and counts the request in the
// metric "requests". On every response it adds X-AS-Method (read from the
// request) and X-AS-Status.
//
// Build (from sdk/assemblyscript):
//   npx asc examples/headers/index.ts --config asconfig.json --target release -o build/headers.wasm

import {
  Action, ConfigReader, Counter, Plugin, Request, Response, fail, failLast, isToken, kvIncr, lastCode, quoteJSON, register,
} from "../../assembly";
export * from "../../assembly/exports";
export * from "../../assembly/response";

const requests = new Counter("requests");

class Header {
  constructor(public name: string, public value: string) {}
}

/** A {name: value} object of header values, its names checked; null on an
 *  error (recorded in c). */
function headerMap(c: ConfigReader, key: string): Header[] {
  const out = new Array<Header>();
  const m = c.object(key);
  if (m === null) return out;
  const names = m.keys();
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    if (!isToken(name)) {
      c.fail(key + ": " + quoteJSON(name) + " is not a valid header name");
      continue;
    }
    const v = m.value.values[i];
    let value: string;
    if (v.isString) value = v.stringValue;
    else if (v.isNumber) value = v.numberText;
    else if (v.isBool) value = v.boolValue ? "true" : "false";
    else {
      c.fail(key + "." + name + ": want a string, got " + v.typeName);
      continue;
    }
    out.push(new Header(name, value));
  }
  return out;
}

class Headers extends Plugin {
  request: Header[] = [];
  response: Header[] = [];
  denyPrefix: string = "";

  init(config: string): string | null {
    const c = ConfigReader.parse(config);
    this.request = headerMap(c, "request");
    this.response = headerMap(c, "response");
    this.denyPrefix = c.string("deny_prefix");
    if (this.denyPrefix.length > 0 && !this.denyPrefix.startsWith("/")) c.fail("\"deny_prefix\" must start with \"/\"");
    return c.finish();
  }

  onRequest(req: Request): Action {
    if (requests.inc() < 0) return failLast("counting the request");
    if (this.denyPrefix.length > 0 && req.path().startsWith(this.denyPrefix)) {
      const resp = req.sendResponseText(403, "{\"error\":\"denied by the assemblyscript plugin\"}\n");
      if (resp === null) return failLast("answering 403");
      resp.setHeader("Content-Type", "application/json");
      for (let i = 0; i < this.response.length; i++) resp.setHeader(this.response[i].name, this.response[i].value);
      return Action.Stop;
    }
    for (let i = 0; i < this.request.length; i++) {
      if (req.setHeader(this.request[i].name, this.request[i].value) < 0) return failLast("setting " + this.request[i].name);
    }
    const n = kvIncr("count", 1);
    if (lastCode() < 0) return failLast("counting");
    if (req.setHeader("X-AS-Count", n.toString()) < 0) return fail("setting X-AS-Count");
    return Action.Continue;
  }

  onResponse(resp: Response): Action {
    for (let i = 0; i < this.response.length; i++) {
      if (resp.setHeader(this.response[i].name, this.response[i].value) < 0) return failLast("setting " + this.response[i].name);
    }
    resp.setHeader("X-AS-Method", resp.request.method());
    resp.setHeader("X-AS-Status", resp.status().toString());
    return Action.Continue;
  }
}

register(new Headers());
