// A small JSON reader and writer: the plugin's config is JSON (sdk/ABI.md
// section 5), and so are most things a plugin answers. No reflection in
// AssemblyScript, so values are a tree the plugin walks (config.ts adds
// strict, typed access with Go-SDK-style errors on top).

import { StringBuilder } from "./builder";

/** The type of a JSON value. */
export enum JSONKind {
  Null = 0,
  Bool = 1,
  Number = 2,
  String = 3,
  Array = 4,
  Object = 5,
}

/** A parsed JSON value. */
export class JSONValue {
  kind: JSONKind = JSONKind.Null;
  boolValue: bool = false;
  numberValue: f64 = 0;
  /** A number's literal, exactly as written (for integers past 2^53). */
  numberText: string = "";
  stringValue: string = "";
  /** An array's items. */
  items: JSONValue[] = [];
  /** An object's keys and values, in the order written. */
  keys: string[] = [];
  values: JSONValue[] = [];

  static null(): JSONValue {
    return new JSONValue();
  }

  static bool(b: bool): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.Bool;
    v.boolValue = b;
    return v;
  }

  static number(n: f64): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.Number;
    v.numberValue = n;
    v.numberText = formatNumber(n);
    return v;
  }

  static string(s: string): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.String;
    v.stringValue = s;
    return v;
  }

  static array(): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.Array;
    return v;
  }

  static object(): JSONValue {
    const v = new JSONValue();
    v.kind = JSONKind.Object;
    return v;
  }

  get isNull(): bool { return this.kind == JSONKind.Null; }
  get isBool(): bool { return this.kind == JSONKind.Bool; }
  get isNumber(): bool { return this.kind == JSONKind.Number; }
  get isString(): bool { return this.kind == JSONKind.String; }
  get isArray(): bool { return this.kind == JSONKind.Array; }
  get isObject(): bool { return this.kind == JSONKind.Object; }

  /** Whether this is a number written as an integer that fits an i64. */
  get isInteger(): bool {
    if (this.kind != JSONKind.Number) return false;
    const t = this.numberText;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c == 0x2e || c == 0x65 || c == 0x45) return false; // . e E
    }
    return parseInteger(t) !== null;
  }

  /** The number as an i64, exact for an integer literal (see isInteger),
   *  else truncated. */
  get intValue(): i64 {
    const p = parseInteger(this.numberText);
    if (p !== null) return p.value;
    return <i64>this.numberValue;
  }

  /** The value of key in an object (the first, if written twice), or null. */
  get(key: string): JSONValue | null {
    if (this.kind != JSONKind.Object) return null;
    for (let i = 0; i < this.keys.length; i++) {
      if (this.keys[i] == key) return this.values[i];
    }
    return null;
  }

  /** Adds key to an object (no check for duplicates); returns this. */
  set(key: string, v: JSONValue): JSONValue {
    this.keys.push(key);
    this.values.push(v);
    return this;
  }

  /** Appends to an array; returns this. */
  push(v: JSONValue): JSONValue {
    this.items.push(v);
    return this;
  }

  /** The item at i of an array, or null. */
  at(i: i32): JSONValue | null {
    if (this.kind != JSONKind.Array || i < 0 || i >= this.items.length) return null;
    return this.items[i];
  }

  /** The number of items or keys. */
  get size(): i32 {
    if (this.kind == JSONKind.Array) return this.items.length;
    if (this.kind == JSONKind.Object) return this.keys.length;
    return 0;
  }

  /** How a config author names the type: "null", "boolean", "number",
   *  "string", "list", "object". */
  get typeName(): string {
    switch (this.kind) {
      case JSONKind.Bool: return "boolean";
      case JSONKind.Number: return "number";
      case JSONKind.String: return "string";
      case JSONKind.Array: return "list";
      case JSONKind.Object: return "object";
    }
    return "null";
  }

  /** The value as compact JSON. */
  toJSON(): string {
    const w = new JSONWriter();
    w.value(this);
    return w.toString();
  }

  toString(): string {
    return this.toJSON();
  }
}

class ParsedInt {
  constructor(public value: i64) {}
}

/** Parses an optional "-" and decimal digits into an i64, or null on
 *  anything else or overflow. */
function parseInteger(t: string): ParsedInt | null {
  const n = t.length;
  let i = 0;
  let neg = false;
  if (n > 0 && t.charCodeAt(0) == 0x2d) {
    neg = true;
    i = 1;
  }
  if (i >= n) return null;
  let v: u64 = 0;
  for (; i < n; i++) {
    const c = t.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return null;
    if (v > (u64.MAX_VALUE - <u64>c) / 10) return null;
    v = v * 10 + <u64>c;
  }
  if (neg) {
    if (v > <u64>i64.MAX_VALUE + 1) return null;
    return new ParsedInt(<i64>(0 - v));
  }
  if (v > <u64>i64.MAX_VALUE) return null;
  return new ParsedInt(<i64>v);
}

/** A number as JSON writes it: integers without a fraction. */
export function formatNumber(n: f64): string {
  if (!isFinite(n)) return "null";
  if (n == Math.trunc(n) && Math.abs(n) < 9007199254740992.0) return (<i64>n).toString();
  return n.toString();
}

let parseError: string = "";

/** Why the last parseJSON returned null. */
export function jsonError(): string {
  return parseError;
}

/** Nesting deeper than this is refused (the parser recurses). */
const MAX_DEPTH: i32 = 256;

class Parser {
  pos: i32 = 0;
  err: string | null = null;
  sb: StringBuilder = new StringBuilder();

  constructor(public s: string) {}

  fail(msg: string): JSONValue {
    if (this.err === null) this.err = "invalid JSON at offset " + this.pos.toString() + ": " + msg;
    return JSONValue.null();
  }

  skipSpace(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.pos++;
    }
  }

  value(depth: i32): JSONValue {
    if (depth > MAX_DEPTH) return this.fail("nested too deep");
    this.skipSpace();
    const s = this.s;
    if (this.pos >= s.length) return this.fail("unexpected end of input");
    const c = s.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const str = this.string();
      return this.err !== null ? JSONValue.null() : JSONValue.string(str);
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.literal("true")) return JSONValue.bool(true);
    if (this.literal("false")) return JSONValue.bool(false);
    if (this.literal("null")) return JSONValue.null();
    return this.fail("invalid character '" + String.fromCharCode(c) + "' looking for beginning of value");
  }

  literal(word: string): bool {
    if (this.s.startsWith(word, this.pos)) {
      this.pos += word.length;
      return true;
    }
    return false;
  }

  object(depth: i32): JSONValue {
    const v = JSONValue.object();
    this.pos++; // {
    this.skipSpace();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x7d) {
      this.pos++;
      return v;
    }
    while (true) {
      this.skipSpace();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos) != 0x22) return this.fail("want a string key");
      const key = this.string();
      if (this.err !== null) return v;
      this.skipSpace();
      if (this.pos >= this.s.length || this.s.charCodeAt(this.pos) != 0x3a) return this.fail("want ':' after an object key");
      this.pos++;
      const item = this.value(depth + 1);
      if (this.err !== null) return v;
      v.set(key, item);
      this.skipSpace();
      if (this.pos >= this.s.length) return this.fail("unexpected end of input");
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x7d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("want ',' or '}' after an object value");
      }
    }
    return v;
  }

  array(depth: i32): JSONValue {
    const v = JSONValue.array();
    this.pos++; // [
    this.skipSpace();
    if (this.pos < this.s.length && this.s.charCodeAt(this.pos) == 0x5d) {
      this.pos++;
      return v;
    }
    while (true) {
      const item = this.value(depth + 1);
      if (this.err !== null) return v;
      v.push(item);
      this.skipSpace();
      if (this.pos >= this.s.length) return this.fail("unexpected end of input");
      const c = this.s.charCodeAt(this.pos++);
      if (c == 0x5d) return v;
      if (c != 0x2c) {
        this.pos--;
        return this.fail("want ',' or ']' after an array item");
      }
    }
    return v;
  }

  number(): JSONValue {
    const s = this.s;
    const start = this.pos;
    if (s.charCodeAt(this.pos) == 0x2d) this.pos++;
    if (!this.digits()) return this.fail("invalid number");
    // No leading zeros: "0" alone, or a non-zero first digit.
    const first = start + (s.charCodeAt(start) == 0x2d ? 1 : 0);
    if (s.charCodeAt(first) == 0x30 && this.pos - first > 1) return this.fail("invalid number");
    if (this.pos < s.length && s.charCodeAt(this.pos) == 0x2e) {
      this.pos++;
      if (!this.digits()) return this.fail("invalid number");
    }
    if (this.pos < s.length && (s.charCodeAt(this.pos) | 0x20) == 0x65) {
      this.pos++;
      if (this.pos < s.length && (s.charCodeAt(this.pos) == 0x2b || s.charCodeAt(this.pos) == 0x2d)) this.pos++;
      if (!this.digits()) return this.fail("invalid number");
    }
    const text = s.substring(start, this.pos);
    const v = new JSONValue();
    v.kind = JSONKind.Number;
    v.numberText = text;
    v.numberValue = parseFloat(text);
    return v;
  }

  digits(): bool {
    const start = this.pos;
    while (this.pos < this.s.length) {
      const c = this.s.charCodeAt(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
    }
    return this.pos > start;
  }

  string(): string {
    const s = this.s;
    this.pos++; // "
    const out = this.sb;
    out.reset();
    let runStart = this.pos;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) {
        const end = this.pos;
        this.pos++;
        if (out.length == 0) return s.substring(runStart, end); // no escapes (each appends)
        out.appendRange(s, runStart, end);
        return out.toString();
      }
      if (c < 0x20) {
        this.fail("control character in a string");
        return "";
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out.appendRange(s, runStart, this.pos);
      this.pos++;
      if (this.pos >= s.length) break;
      const e = s.charCodeAt(this.pos++);
      switch (e) {
        case 0x22: out.appendCode(0x22); break;
        case 0x5c: out.appendCode(0x5c); break;
        case 0x2f: out.appendCode(0x2f); break;
        case 0x62: out.appendCode(0x08); break;
        case 0x66: out.appendCode(0x0c); break;
        case 0x6e: out.appendCode(0x0a); break;
        case 0x72: out.appendCode(0x0d); break;
        case 0x74: out.appendCode(0x09); break;
        case 0x75: {
          if (this.pos + 4 > s.length) {
            this.fail("invalid \\u escape");
            return "";
          }
          let u = 0;
          for (let k = 0; k < 4; k++) {
            const h = s.charCodeAt(this.pos + k);
            let d = -1;
            if (h >= 0x30 && h <= 0x39) d = h - 0x30;
            else if (h >= 0x61 && h <= 0x66) d = h - 0x61 + 10;
            else if (h >= 0x41 && h <= 0x46) d = h - 0x41 + 10;
            if (d < 0) {
              this.fail("invalid \\u escape");
              return "";
            }
            u = u << 4 | d;
          }
          this.pos += 4;
          out.appendCode(u);
          break;
        }
        default:
          this.pos--;
          this.fail("invalid escape");
          return "";
      }
      runStart = this.pos;
    }
    this.fail("unexpected end of input in a string");
    return "";
  }
}

/** Parses text as one JSON value (space around it allowed), or returns
 *  null; jsonError() then says why and where. */
export function parseJSON(text: string): JSONValue | null {
  const p = new Parser(text);
  const v = p.value(0);
  if (p.err === null) {
    p.skipSpace();
    if (p.pos < text.length) p.fail("unexpected data after the value");
  }
  const err = p.err;
  if (err !== null) {
    parseError = err;
    return null;
  }
  parseError = "";
  return v;
}

const HEX = "0123456789abcdef";

/** s as a JSON string literal, quotes included. */
export function quoteJSON(s: string): string {
  const sb = new StringBuilder(s.length + 2);
  appendQuoted(sb, s);
  return sb.toString();
}

/** Appends s as a JSON string literal to sb. */
export function appendQuoted(sb: StringBuilder, s: string): void {
  sb.appendCode(0x22);
  let runStart = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    sb.appendRange(s, runStart, i);
    runStart = i + 1;
    sb.appendCode(0x5c);
    switch (c) {
      case 0x22: sb.appendCode(0x22); break;
      case 0x5c: sb.appendCode(0x5c); break;
      case 0x0a: sb.appendCode(0x6e); break;
      case 0x0d: sb.appendCode(0x72); break;
      case 0x09: sb.appendCode(0x74); break;
      default:
        sb.append("u00");
        sb.appendCode(HEX.charCodeAt(c >> 4));
        sb.appendCode(HEX.charCodeAt(c & 15));
    }
  }
  sb.appendRange(s, runStart, n);
  sb.appendCode(0x22);
}

/** Writes compact JSON, adding the commas itself:
 *
 *    const w = new JSONWriter();
 *    w.beginObject().key("ok").bool(true).key("n").int(3).endObject();
 *    w.toString(); // {"ok":true,"n":3}
 */
export class JSONWriter {
  private sb: StringBuilder = new StringBuilder(256);
  // Per open container: whether an element was written in it.
  private filled: bool[] = [];
  private afterKey: bool = false;

  private sep(): void {
    if (this.afterKey) {
      this.afterKey = false;
      return;
    }
    const d = this.filled.length;
    if (d > 0) {
      if (this.filled[d - 1]) this.sb.appendCode(0x2c);
      this.filled[d - 1] = true;
    }
  }

  beginObject(): JSONWriter {
    this.sep();
    this.sb.append("{");
    this.filled.push(false);
    return this;
  }

  endObject(): JSONWriter {
    this.filled.pop();
    this.sb.append("}");
    return this;
  }

  beginArray(): JSONWriter {
    this.sep();
    this.sb.append("[");
    this.filled.push(false);
    return this;
  }

  endArray(): JSONWriter {
    this.filled.pop();
    this.sb.append("]");
    return this;
  }

  /** An object key; the next value written is its value. */
  key(k: string): JSONWriter {
    this.sep();
    appendQuoted(this.sb, k);
    this.sb.appendCode(0x3a);
    this.afterKey = true;
    return this;
  }

  string(s: string): JSONWriter {
    this.sep();
    appendQuoted(this.sb, s);
    return this;
  }

  /** A string, or null. */
  stringOrNull(s: string | null): JSONWriter {
    if (s === null) return this.null();
    return this.string(s);
  }

  number(n: f64): JSONWriter {
    this.sep();
    this.sb.append(formatNumber(n));
    return this;
  }

  int(n: i64): JSONWriter {
    this.sep();
    this.sb.append(n.toString());
    return this;
  }

  bool(b: bool): JSONWriter {
    this.sep();
    this.sb.append(b ? "true" : "false");
    return this;
  }

  null(): JSONWriter {
    this.sep();
    this.sb.append("null");
    return this;
  }

  /** A string array. */
  strings(a: string[]): JSONWriter {
    this.beginArray();
    for (let i = 0; i < a.length; i++) this.string(a[i]);
    return this.endArray();
  }

  /** JSON text written as is (it must be one valid value). */
  raw(json: string): JSONWriter {
    this.sep();
    this.sb.append(json);
    return this;
  }

  /** A parsed value. */
  value(v: JSONValue): JSONWriter {
    switch (v.kind) {
      case JSONKind.Null: return this.null();
      case JSONKind.Bool: return this.bool(v.boolValue);
      case JSONKind.Number: return this.raw(v.numberText.length > 0 ? v.numberText : formatNumber(v.numberValue));
      case JSONKind.String: return this.string(v.stringValue);
      case JSONKind.Array: {
        this.beginArray();
        for (let i = 0; i < v.items.length; i++) this.value(v.items[i]);
        return this.endArray();
      }
    }
    this.beginObject();
    for (let i = 0; i < v.keys.length; i++) {
      this.key(v.keys[i]);
      this.value(v.values[i]);
    }
    return this.endObject();
  }

  toString(): string {
    return this.sb.toString();
  }
}
