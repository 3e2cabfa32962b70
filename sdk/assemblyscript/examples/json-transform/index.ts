// json-transform: a wasmgate plugin in AssemblyScript that edits JSON
// bodies by dot path: it renames, removes and adds fields of the response
// body before it goes to the client, and of the request body before it
// goes upstream (the same plugin as sdk/rust/examples/json_transform.rs and
// sdk/c/examples/json_transform.c; a subset of the Go plugin
// plugins/json-transform: no "move", no "*").
//
// Config (at least one op):
//
//   config:
//     response:                                       # ops on JSON response bodies, in order
//       - {op: remove, path: items.internal_id}       # remove (every match)
//       - {op: rename, path: user.fullName, to: name} # rename a member in place
//       - {op: add, path: meta.via, value: wasmgate}  # set, creating parents; any value
//     request:                                        # ops on JSON request bodies, in order
//       - {op: remove, path: debug}
//     statuses: [200, 201]   # response statuses transformed (default: every 2xx)
//     max_body: 1048576      # bodies over this many bytes pass untouched (default 8 MiB)
//
// Paths: "a.b" is the member b of the member a; on an array, a number
// selects an element ("items.0") and a name applies to every object element
// ("items.internal_id"). rename's "to" is a member name (a member already
// called so is dropped); add replaces a value that is there and creates the
// objects missing on the way.
//
// Only bodies whose Content-Type mentions json, that are not compressed
// (Content-Encoding) and that parse as JSON are touched; others, and
// responses of other statuses, pass as they are. A body the ops change is
// written back compact (members in order, numbers as written); the gateway
// sets its Content-Length. A body the ops do not change is left alone.
//
// Config errors name the field, in the words of the Rust and C examples:
// `response.1 (rename): missing "to" (the new member name)`,
// `unknown field "response.0.typo"`, `"statuses": 42 is not an HTTP status`.
//
// Build (from sdk/assemblyscript):
//   npx asc examples/json-transform/index.ts --config asconfig.json --target release -o build/json-transform.wasm

import {
  Action, ConfigReader, JSONValue, JSONWriter, Message, Plugin, Request, Response, failLast, parseJSON, quoteJSON, register,
} from "../../assembly";
export * from "../../assembly/exports";
export * from "../../assembly/response";

const DEFAULT_MAX_BODY: i64 = 8 << 20;
const MAX_SEGMENTS = 64;

const OP_REMOVE = 0;
const OP_RENAME = 1;
const OP_ADD = 2;

/** One segment of a path: a member name, and the element index when the
 *  name is a decimal number ("0", "12"; not "012" or "+1"), else -1. */
class Seg {
  constructor(public key: string, public index: i32) {}
}

class Op {
  constructor(public kind: i32, public path: Seg[], public to: string, public value: JSONValue | null) {}
}

/** The segments of a dot path, or null after c.fail (at names the op). */
function parsePath(c: ConfigReader, at: string, s: string): Seg[] | null {
  const segs = new Array<Seg>();
  const keys = s.split(".");
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (key.length == 0) {
      c.fail(at + ": \"path\": path " + quoteJSON(s) + ": empty segment");
      return null;
    }
    if (segs.length == MAX_SEGMENTS) {
      c.fail(at + ": \"path\": path " + quoteJSON(s) + ": more than " + MAX_SEGMENTS.toString() + " segments");
      return null;
    }
    segs.push(new Seg(key, indexOf(key)));
  }
  return segs;
}

/** key as an element index, or -1 when it is a name. */
function indexOf(key: string): i32 {
  const n = key.length;
  if (n == 0 || n > 9 || (n > 1 && key.charCodeAt(0) == 0x30)) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = key.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Records `unknown field "PATH.KEY"` for the first key of r not in known;
 *  returns whether there was none. */
function only(r: ConfigReader, known: string[]): bool {
  const keys = r.value.keys;
  for (let i = 0; i < keys.length; i++) {
    if (!known.includes(keys[i])) {
      r.fail("unknown field \"" + r.fieldPath(keys[i]) + "\"");
      return false;
    }
  }
  return true;
}

const OP_FIELDS = ["op", "path", "to", "value"];

/** The ops of the list key; errors (recorded in c) name the op:
 *  "response.1 (rename): ...". */
function compile(c: ConfigReader, key: string): Op[] {
  const ops = new Array<Op>();
  const list = c.objects(key);
  if (list === null || c.error !== null) return ops;
  for (let i = 0; i < list.length; i++) {
    const o = list[i];
    if (!only(o, OP_FIELDS)) return ops;
    const name = o.string("op");
    const path = o.string("path");
    const toValue = o.raw("to");
    const to = o.string("to");
    const value = o.raw("value");
    if (c.error !== null) return ops;
    const hasTo = toValue !== null && !toValue.isNull;
    const where = key + "." + i.toString();
    if (name.length == 0) {
      c.fail(where + ": missing \"op\" (one of rename, remove, add)");
      return ops;
    }
    const at = where + " (" + name + ")";
    let kind: i32;
    if (name == "remove") kind = OP_REMOVE;
    else if (name == "rename") kind = OP_RENAME;
    else if (name == "add") kind = OP_ADD;
    else {
      c.fail(at + ": unknown op " + quoteJSON(name) + " (want rename, remove or add)");
      return ops;
    }
    if (path.length == 0) {
      c.fail(at + ": missing \"path\"");
      return ops;
    }
    const segs = parsePath(c, at, path);
    if (segs === null) return ops;
    if (kind == OP_REMOVE) {
      if (hasTo) c.fail(at + ": \"to\" does not apply to this op");
      else if (value !== null) c.fail(at + ": \"value\" does not apply to this op");
    } else if (kind == OP_RENAME) {
      const last = segs[segs.length - 1];
      if (value !== null) c.fail(at + ": \"value\" does not apply to this op");
      else if (to.length == 0) c.fail(at + ": missing \"to\" (the new member name)");
      else if (to.includes(".")) c.fail(at + ": \"to\" is a member name, not a path (" + quoteJSON(to) + ")");
      else if (last.index >= 0) c.fail(at + ": \"path\" must end in a member name to rename, not " + quoteJSON(last.key));
    } else {
      if (hasTo) c.fail(at + ": \"to\" does not apply to this op");
      else if (value === null) c.fail(at + ": missing \"value\"");
    }
    if (c.error !== null) return ops;
    ops.push(new Op(kind, segs, to, value));
  }
  return ops;
}

/** A deep copy of v: what add inserts is the op's value, which the plugin
 *  keeps for every request, so the document gets a copy a later op may
 *  edit. */
function copyJSON(v: JSONValue): JSONValue {
  if (v.isArray) {
    const a = JSONValue.array();
    for (let i = 0; i < v.items.length; i++) a.push(copyJSON(v.items[i]));
    return a;
  }
  if (v.isObject) {
    const o = JSONValue.object();
    for (let i = 0; i < v.keys.length; i++) o.set(v.keys[i], copyJSON(v.values[i]));
    return o;
  }
  return v; // scalars are never edited in place
}

/** The index of the first member named key, or -1. */
function member(v: JSONValue, key: string): i32 {
  const keys = v.keys;
  for (let i = 0; i < keys.length; i++) if (keys[i] == key) return i;
  return -1;
}

/** Removes the member at i. */
function removeMember(v: JSONValue, i: i32): void {
  v.keys.splice(i, 1);
  v.values.splice(i, 1);
}

/** Applies op at segs[at..] under v and returns how many places it
 *  changed. A name on an array applies to each object element. */
function apply(v: JSONValue, segs: Seg[], at: i32, op: Op): i32 {
  const seg = segs[at];
  const last = at == segs.length - 1;
  if (v.isArray) {
    const items = v.items;
    if (seg.index < 0) {
      let n = 0;
      for (let i = 0; i < items.length; i++) if (items[i].isObject) n += apply(items[i], segs, at, op);
      return n;
    }
    const i = seg.index;
    if (i >= items.length) return 0;
    if (!last) return apply(items[i], segs, at + 1, op);
    if (op.kind == OP_REMOVE) {
      items.splice(i, 1);
      return 1;
    }
    if (op.kind == OP_ADD) {
      items[i] = copyJSON(op.value!);
      return 1;
    }
    return 0; // elements have no names to rename
  }
  if (!v.isObject) return 0;
  const found = member(v, seg.key);
  if (!last) {
    if (found >= 0) return apply(v.values[found], segs, at + 1, op);
    if (op.kind != OP_ADD) return 0;
    const parent = JSONValue.object();
    v.set(seg.key, parent);
    return apply(parent, segs, at + 1, op);
  }
  if (found < 0) {
    if (op.kind != OP_ADD) return 0;
    v.set(seg.key, copyJSON(op.value!));
    return 1;
  }
  if (op.kind == OP_REMOVE) {
    let removed = 0;
    for (let i = v.keys.length - 1; i >= 0; i--) {
      if (v.keys[i] == seg.key) {
        removeMember(v, i);
        removed++;
      }
    }
    return removed;
  }
  if (op.kind == OP_ADD) {
    v.values[found] = copyJSON(op.value!);
    return 1;
  }
  // rename
  if (seg.key == op.to) return 0;
  v.keys[found] = op.to;
  for (let i = v.keys.length - 1; i >= 0; i--) {
    if (i != found && v.keys[i] == op.to) removeMember(v, i); // a member already named so is dropped
  }
  return 1;
}

/** Whether the headers say m's body is plain (uncompressed) JSON. */
function isJSON(m: Message): bool {
  const ct = m.header("Content-Type");
  if (ct === null) return false;
  let media = ct;
  const semi = media.indexOf(";");
  if (semi >= 0) media = media.substring(0, semi);
  if (!lowerContains(media, "json")) return false;
  const ce = m.header("Content-Encoding");
  if (ce === null) return true;
  const enc = ce.trim();
  return enc.length == 0 || lowerEquals(enc, "identity");
}

/** Whether s holds word (lower-case ASCII), ASCII letters folded. */
function lowerContains(s: string, word: string): bool {
  for (let i = 0; i + word.length <= s.length; i++) {
    let j = 0;
    while (j < word.length && (s.charCodeAt(i + j) | 0x20) == word.charCodeAt(j)) j++;
    if (j == word.length) return true;
  }
  return false;
}

function lowerEquals(s: string, word: string): bool {
  return s.length == word.length && lowerContains(s, word);
}

class JSONTransform extends Plugin {
  request: Op[] = [];
  response: Op[] = [];
  statuses: i32[] = [];
  maxBody: i64 = DEFAULT_MAX_BODY;

  init(config: string): string | null {
    const c = ConfigReader.parse(config);
    if (c.error !== null || !only(c, ["request", "response", "statuses", "max_body"])) return c.finish();
    this.request = compile(c, "request");
    this.response = compile(c, "response");
    if (c.error === null && this.request.length == 0 && this.response.length == 0) {
      c.fail("no ops: give \"request\" or \"response\" a list of ops like {op: remove, path: a.b}");
    }
    const statuses = c.list("statuses");
    if (statuses !== null && c.error === null) {
      for (let i = 0; i < statuses.length; i++) {
        const s = statuses[i];
        if (!s.isInteger) {
          c.fail("field \"statuses." + i.toString() + "\": want integer, got " + s.typeName);
          break;
        }
        const n = s.intValue;
        if (n < 100 || n > 599) {
          c.fail("\"statuses\": " + n.toString() + " is not an HTTP status");
          break;
        }
        this.statuses.push(<i32>n);
      }
    }
    const max = c.int("max_body", DEFAULT_MAX_BODY);
    if (c.error === null && max <= 0) c.fail("\"max_body\" must be positive");
    this.maxBody = max;
    return c.finish();
  }

  /** Runs ops on m's body when it is JSON within the size limit. */
  run(m: Message, ops: Op[]): Action {
    if (ops.length == 0 || !isJSON(m)) return Action.Continue;
    // The size first: a body over the limit never crosses into the plugin.
    const size = m.bodySize();
    if (size < 0) return failLast("reading the body's size");
    if (size == 0 || size > this.maxBody) return Action.Continue;
    const text = m.bodyText();
    if (text === null) return failLast("reading the body");
    const doc = parseJSON(text);
    if (doc === null) return Action.Continue; // not JSON after all: passed as it is
    let changed = 0;
    for (let i = 0; i < ops.length; i++) changed += apply(doc, ops[i].path, 0, ops[i]);
    if (changed > 0 && m.setBodyText(new JSONWriter().value(doc).toString()) < 0) return failLast("writing the body");
    return Action.Continue;
  }

  onRequest(req: Request): Action {
    return this.run(req, this.request);
  }

  onResponse(resp: Response): Action {
    if (this.response.length == 0) return Action.Continue;
    const status = resp.status();
    const wanted = this.statuses.length == 0 ? status >= 200 && status <= 299 : this.statuses.includes(status);
    if (!wanted) return Action.Continue;
    return this.run(resp, this.response);
  }
}

register(new JSONTransform());
