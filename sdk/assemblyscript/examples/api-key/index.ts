// api-key: a wasmgate plugin in AssemblyScript that authenticates requests
// by API key (the same plugin as sdk/rust/examples/api_key.rs). Each key
// belongs to a consumer; a request with a missing or unknown key is
// answered 401 here. A known key's consumer is told to the gateway
// (setConsumer: rate limits keyed by consumer, authorize.consumers, the
// access log), forwarded upstream in a header, and its scope becomes the
// request's claims (setClaims: {"sub": consumer, "scope": "..."}), which
// the route's authorize.require_scopes checks.
//
// Config:
//
//   config:
//     keys:                                  # required
//       - {consumer: mobile-app, key: "${MOBILE_KEY}", scope: "orders:read"}
//     header: X-Api-Key                      # where the key is (default)
//     consumer_header: X-Consumer            # forwarded upstream (default);
//                                            # always removed from the client's request
//
// Keys are at least 16 bytes; the key header is removed before proxying.
// The comparison reads every byte of every configured key, so its time says
// nothing about which key, or how much of one, matched.
//
// Build (from sdk/assemblyscript):
//   npx asc examples/api-key/index.ts --config asconfig.json --target release -o build/api-key.wasm

import {
  Action, ConfigReader, JSONWriter, Plugin, Request, failLast, isToken, quoteJSON, register, setClaims, setConsumer, utf8,
} from "../../assembly";
export * from "../../assembly/exports";

const MIN_KEY_LEN = 16;

class Key {
  constructor(public consumer: string, public key: Uint8Array, public claims: string) {}
}

class ApiKey extends Plugin {
  keys: Key[] = [];
  header: string = "X-Api-Key";
  consumerHeader: string = "X-Consumer";

  init(config: string): string | null {
    const c = ConfigReader.parse(config);
    this.header = c.string("header", "X-Api-Key");
    this.consumerHeader = c.string("consumer_header", "X-Consumer");
    if (!isToken(this.header)) c.fail("\"header\": " + quoteJSON(this.header) + " is not a valid header name");
    if (!isToken(this.consumerHeader)) c.fail("\"consumer_header\": " + quoteJSON(this.consumerHeader) + " is not a valid header name");
    const items = c.objects("keys");
    if (c.error === null && (items === null || items.length == 0)) c.fail("missing \"keys\": list {consumer, key} pairs");
    if (items !== null) {
      for (let i = 0; i < items.length; i++) {
        const k = items[i];
        if (!k.require("consumer") || !k.require("key")) continue;
        const consumer = k.string("consumer");
        const key = utf8(k.string("key"));
        const scope = k.raw("scope");
        if (key.length < MIN_KEY_LEN) {
          c.fail("keys." + i.toString() + ": \"key\" of " + key.length.toString() + " bytes: want at least " + MIN_KEY_LEN.toString());
          continue;
        }
        for (let j = 0; j < this.keys.length; j++) {
          if (sameBytes(this.keys[j].key, key)) c.fail("keys." + i.toString() + ": the same key as another");
        }
        const w = new JSONWriter().beginObject().key("sub").string(consumer);
        if (scope !== null && !scope.isNull) {
          if (!scope.isString) c.fail("field \"keys." + i.toString() + ".scope\": want string, got " + scope.typeName);
          else w.key("scope").string(scope.stringValue);
        }
        w.endObject();
        this.keys.push(new Key(consumer, key, w.toString()));
      }
    }
    return c.finish();
  }

  onRequest(req: Request): Action {
    if (req.removeHeader(this.consumerHeader) < 0) return failLast("removing " + this.consumerHeader);
    const h = req.header(this.header);
    const given = h === null ? "" : h.trim();
    if (given.length == 0) return this.reject(req, "missing API key");
    const key = this.lookup(utf8(given));
    if (key === null) return this.reject(req, "invalid API key");
    if (req.setHeader(this.consumerHeader, key.consumer) < 0) return failLast("setting " + this.consumerHeader);
    if (req.removeHeader(this.header) < 0) return failLast("removing " + this.header);
    if (setConsumer(key.consumer) < 0) return failLast("set_consumer");
    if (setClaims(key.claims) < 0) return failLast("set_claims");
    return Action.Continue;
  }

  /** The key equal to given, comparing every byte of every key. */
  lookup(given: Uint8Array): Key | null {
    let found: Key | null = null;
    for (let i = 0; i < this.keys.length; i++) {
      const k = this.keys[i].key;
      let diff: i32 = k.length != given.length ? 1 : 0;
      for (let j = 0; j < k.length; j++) {
        diff |= <i32>(k[j] ^ (j < given.length ? given[j] : 0));
      }
      if (diff == 0) found = this.keys[i];
    }
    return found;
  }

  reject(req: Request, why: string): Action {
    const resp = req.sendResponseText(401, "{\"error\":" + quoteJSON(why) + "}\n");
    if (resp === null) return failLast("answering 401");
    resp.setHeader("Content-Type", "application/json");
    resp.setHeader("WWW-Authenticate", "ApiKey realm=\"wasmgate\", header=\"" + this.header + "\"");
    return Action.Stop;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] != b[i]) return false;
  return true;
}

register(new ApiKey());
