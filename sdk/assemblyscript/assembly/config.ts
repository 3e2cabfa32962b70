// Strict, typed reading of the plugin's JSON config (sdk/ABI.md section 5),
// with errors in the Go SDK's words (DecodeConfig), which the operator
// sees as the config error of the route's plugin entry:
//
//   unknown field "secrett"
//   field "keys.0.kid": want string, got number
//   invalid JSON at offset 12: ...
//   missing "header"
//
//   init(config: string): string | null {
//     const c = ConfigReader.parse(config);
//     header = c.string("header", "X-Plugin");
//     limit = c.int("limit", 10);
//     return c.finish(); // null: accepted
//   }
//
// Each getter marks its key as known; finish() returns the first error,
// including any key no getter asked for.

import { JSONValue, JSONKind, parseJSON, jsonError } from "./json";

/** A config object (the config itself, or an object inside it) read by
 *  key. Readers of nested objects share their root's error. */
export class ConfigReader {
  private used: bool[] = [];
  private children: ConfigReader[] = [];
  private firstError: string | null = null;

  constructor(public readonly value: JSONValue, public readonly path: string = "", private root: ConfigReader | null = null) {
    for (let i = 0; i < value.keys.length; i++) this.used.push(false);
  }

  /** Parses config text. Empty text (or only space) and null read as {};
   *  invalid JSON, or a value that is not an object, is the error. */
  static parse(text: string): ConfigReader {
    if (text.trim().length == 0) return new ConfigReader(JSONValue.object());
    const v = parseJSON(text);
    if (v === null) {
      const r = new ConfigReader(JSONValue.object());
      r.fail(jsonError());
      return r;
    }
    if (v.isNull) return new ConfigReader(JSONValue.object());
    if (!v.isObject) {
      const r = new ConfigReader(JSONValue.object());
      r.fail("want object, got " + v.typeName);
      return r;
    }
    return new ConfigReader(v);
  }

  /** Records an error (the first one wins). */
  fail(msg: string): void {
    const root = this.root;
    if (root !== null) {
      root.fail(msg);
      return;
    }
    if (this.firstError === null) this.firstError = msg;
  }

  /** The first error so far, or null. */
  get error(): string | null {
    const root = this.root;
    if (root !== null) return root.error;
    return this.firstError;
  }

  /** The dotted path of key for messages: "keys.0.kid". */
  fieldPath(key: string): string {
    return this.path.length == 0 ? key : this.path + "." + key;
  }

  private index(key: string): i32 {
    const keys = this.value.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] == key) return i;
    }
    return -1;
  }

  /** The raw value of key, marked known, or null when absent (a JSON null
   *  is returned as a null value, not as absent). */
  raw(key: string): JSONValue | null {
    const i = this.index(key);
    if (i < 0) return null;
    this.used[i] = true;
    return this.value.values[i];
  }

  /** Whether key is present (and not null). Does not mark it known. */
  has(key: string): bool {
    const i = this.index(key);
    return i >= 0 && !this.value.values[i].isNull;
  }

  /** Records `missing "key"` when key is absent or null; returns whether
   *  it is present. */
  require(key: string): bool {
    if (this.has(key)) return true;
    this.fail("missing \"" + this.fieldPath(key) + "\"");
    return false;
  }

  private typed(key: string, kind: JSONKind, want: string): JSONValue | null {
    const v = this.raw(key);
    if (v === null || v.isNull) return null; // null leaves the default, as encoding/json does
    if (v.kind != kind) {
      this.fail("field \"" + this.fieldPath(key) + "\": want " + want + ", got " + v.typeName);
      return null;
    }
    return v;
  }

  string(key: string, def: string = ""): string {
    const v = this.typed(key, JSONKind.String, "string");
    return v === null ? def : v.stringValue;
  }

  bool(key: string, def: bool = false): bool {
    const v = this.typed(key, JSONKind.Bool, "boolean");
    return v === null ? def : v.boolValue;
  }

  number(key: string, def: f64 = 0): f64 {
    const v = this.typed(key, JSONKind.Number, "number");
    return v === null ? def : v.numberValue;
  }

  /** An integer (a number without fraction or exponent that fits i64). */
  int(key: string, def: i64 = 0): i64 {
    const v = this.typed(key, JSONKind.Number, "integer");
    if (v === null) return def;
    if (!v.isInteger) {
      this.fail("field \"" + this.fieldPath(key) + "\": want integer, got number " + v.numberText);
      return def;
    }
    return v.intValue;
  }

  /** A duration in nanoseconds: a string in Go's syntax ("500ms",
   *  "1m30s") or a number of seconds (30, 0.5). Negative ones are errors. */
  duration(key: string, defNanos: i64 = 0): i64 {
    const v = this.raw(key);
    if (v === null || v.isNull) return defNanos;
    if (v.isNumber) {
      const ns = v.numberValue * 1e9;
      if (!(v.numberValue >= 0) || ns > 9.2e18) {
        this.fail("field \"" + this.fieldPath(key) + "\": duration " + v.numberText + " seconds is out of range");
        return defNanos;
      }
      return <i64>ns;
    }
    if (v.isString) {
      const d = parseDuration(v.stringValue);
      if (d < 0) {
        this.fail("field \"" + this.fieldPath(key) + "\": duration \"" + v.stringValue + "\": want like \"500ms\", \"2s\" or a number of seconds");
        return defNanos;
      }
      return d;
    }
    this.fail("field \"" + this.fieldPath(key) + "\": want duration (like \"500ms\" or a number of seconds), got " + v.typeName);
    return defNanos;
  }

  /** A nested object's reader, or null when absent (or not an object: an
   *  error). */
  object(key: string): ConfigReader | null {
    const v = this.typed(key, JSONKind.Object, "object");
    if (v === null) return null;
    return this.child(v, this.fieldPath(key));
  }

  /** A list's items, or null when absent (or not a list: an error). */
  list(key: string): JSONValue[] | null {
    const v = this.typed(key, JSONKind.Array, "list");
    return v === null ? null : v.items;
  }

  /** A list of strings, or null when absent; an item of another type is an
   *  error. */
  strings(key: string): string[] | null {
    const items = this.list(key);
    if (items === null) return null;
    const out = new Array<string>();
    for (let i = 0; i < items.length; i++) {
      if (!items[i].isString) {
        this.fail("field \"" + this.fieldPath(key) + "." + i.toString() + "\": want string, got " + items[i].typeName);
        continue;
      }
      out.push(items[i].stringValue);
    }
    return out;
  }

  /** A list of objects, as readers (paths "key.0", "key.1", ...), or null
   *  when absent; an item that is not an object is an error. */
  objects(key: string): ConfigReader[] | null {
    const items = this.list(key);
    if (items === null) return null;
    const out = new Array<ConfigReader>();
    for (let i = 0; i < items.length; i++) {
      const p = this.fieldPath(key) + "." + i.toString();
      if (!items[i].isObject) {
        this.fail("field \"" + p + "\": want object, got " + items[i].typeName);
        continue;
      }
      out.push(this.child(items[i], p));
    }
    return out;
  }

  /** The keys of this object, e.g. for a map of name to value; marks every
   *  key known. */
  keys(): string[] {
    for (let i = 0; i < this.used.length; i++) this.used[i] = true;
    return this.value.keys;
  }

  private child(v: JSONValue, path: string): ConfigReader {
    const root = this.root;
    const c = new ConfigReader(v, path, root !== null ? root : this);
    this.children.push(c);
    return c;
  }

  /** The first unknown field of this object and the objects read inside
   *  it, or null. */
  unknownField(): string | null {
    for (let i = 0; i < this.used.length; i++) {
      if (!this.used[i]) return "unknown field \"" + this.fieldPath(this.value.keys[i]) + "\"";
    }
    for (let i = 0; i < this.children.length; i++) {
      const u = this.children[i].unknownField();
      if (u !== null) return u;
    }
    return null;
  }

  /** Call after the last getter: the first error, else the first key no
   *  getter asked for, else null (the config is accepted). */
  finish(): string | null {
    const e = this.error;
    if (e !== null) return e;
    return this.unknownField();
  }
}

/** Parses a duration in Go's syntax ("300ms", "-1.5h", "2h45m"; units ns,
 *  us, µs, ms, s, m, h) into nanoseconds; -1 when it does not parse or is
 *  negative. "0" is 0. */
export function parseDuration(s: string): i64 {
  const n = s.length;
  if (n == 0) return -1;
  if (s == "0") return 0;
  let i = 0;
  if (s.charCodeAt(0) == 0x2b) i++;
  if (i < n && s.charCodeAt(0) == 0x2d) return -1;
  if (i >= n) return -1;
  let total: f64 = 0;
  while (i < n) {
    const start = i;
    while (i < n && ((s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) || s.charCodeAt(i) == 0x2e)) i++;
    if (i == start) return -1;
    const num = parseFloat(s.substring(start, i));
    if (isNaN(num)) return -1;
    const ustart = i;
    while (i < n && !((s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) || s.charCodeAt(i) == 0x2e)) i++;
    const unit = s.substring(ustart, i);
    let mult: f64 = 0;
    if (unit == "ns") mult = 1;
    else if (unit == "us" || unit == "µs" || unit == "μs") mult = 1e3;
    else if (unit == "ms") mult = 1e6;
    else if (unit == "s") mult = 1e9;
    else if (unit == "m") mult = 60e9;
    else if (unit == "h") mult = 3600e9;
    else return -1;
    total += num * mult;
  }
  if (total > 9.2e18) return -1;
  return <i64>total;
}
