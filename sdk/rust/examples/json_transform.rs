//! json_transform: a wasmgate plugin in Rust that edits JSON bodies by dot
//! path: it renames, removes and adds fields of the response body before it
//! goes to the client, and of the request body before it goes upstream. A
//! subset of the Go plugin plugins/json-transform (no `move`, no `*`).
//!
//! Config (at least one op):
//!
//! ```yaml
//! config:
//!   response:                                      # ops on JSON response bodies, in order
//!     - {op: remove, path: items.internal_id}      # remove (every match)
//!     - {op: rename, path: user.fullName, to: name} # rename a member in place
//!     - {op: add, path: meta.via, value: wasmgate} # set, creating parents; any value
//!   request:                                       # ops on JSON request bodies, in order
//!     - {op: remove, path: debug}
//!   statuses: [200, 201]    # response statuses transformed (default: every 2xx)
//!   max_body: 1048576       # bodies over this many bytes pass untouched (default 8 MiB)
//! ```
//!
//! Paths: `a.b` is the member `b` of the member `a`; on an array, a number
//! selects an element (`items.0`) and a name applies to every object element
//! (`items.internal_id`). `rename`'s `to` is a member name (a member already
//! called so is dropped); `add` replaces a value that is there and creates
//! the objects missing on the way.
//!
//! Only bodies whose Content-Type mentions json, that are not compressed
//! (Content-Encoding) and that parse as JSON are touched; others, and
//! responses of other statuses, pass as they are. A body the ops change is
//! written back compact (members in order, numbers as written); the gateway
//! sets its Content-Length. A body the ops do not change is left alone.

use wasmgate::json::{self, Json};
use wasmgate::{Action, HookError, Plugin, Request, Response};

const DEFAULT_MAX_BODY: u64 = 8 << 20;
const MAX_SEGMENTS: usize = 64;

/// One segment of a path: a member name, and the element index when the
/// name is a decimal number.
struct Seg {
    key: String,
    index: Option<usize>,
}

enum Edit {
    Remove,
    Rename(String),
    Add(Json),
}

struct Op {
    path: Vec<Seg>,
    edit: Edit,
}

struct Transform {
    request: Vec<Op>,
    response: Vec<Op>,
    statuses: Vec<i64>,
    max_body: u64,
}

fn parse_path(s: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    for key in s.split('.') {
        if key.is_empty() {
            return Err(format!("path {}: empty segment", json::quote(s)));
        }
        if segs.len() == MAX_SEGMENTS {
            return Err(format!("path {}: more than {MAX_SEGMENTS} segments", json::quote(s)));
        }
        // "0", "12": an index; "012", "+1": a name.
        let index = key.parse::<usize>().ok().filter(|n| n.to_string() == key);
        segs.push(Seg { key: key.to_string(), index });
    }
    Ok(segs)
}

/// Reads the ops of the list `key`; errors name the op (`response.1 (rename): ...`).
fn compile(f: &json::Fields, key: &str) -> Result<Vec<Op>, HookError> {
    let mut ops = Vec::new();
    for (i, o) in f.objects(key)?.iter().enumerate() {
        o.only(&["op", "path", "to", "value"])?;
        let name = o.str("op")?.unwrap_or("");
        let at = format!("{key}.{i} ({name})");
        let path = o.str("path")?;
        let to = o.str("to")?;
        let value = o.get("value");
        let path = match (name, path) {
            ("", _) => return Err(format!(r#"{key}.{i}: missing "op" (one of rename, remove, add)"#).into()),
            ("rename" | "remove" | "add", None | Some("")) => return Err(format!(r#"{at}: missing "path""#).into()),
            ("rename" | "remove" | "add", Some(p)) => parse_path(p).map_err(|e| format!(r#"{at}: "path": {e}"#))?,
            _ => return Err(format!("{at}: unknown op {} (want rename, remove or add)", json::quote(name)).into()),
        };
        let unused = |field: &str, set: bool| -> Result<(), HookError> {
            if set {
                return Err(format!("{at}: {} does not apply to this op", json::quote(field)).into());
            }
            Ok(())
        };
        let edit = match name {
            "remove" => {
                unused("to", to.is_some())?;
                unused("value", value.is_some())?;
                Edit::Remove
            }
            "rename" => {
                unused("value", value.is_some())?;
                let to = to.filter(|t| !t.is_empty()).ok_or(format!(r#"{at}: missing "to" (the new member name)"#))?;
                if to.contains('.') {
                    return Err(format!(r#"{at}: "to" is a member name, not a path ({})"#, json::quote(to)).into());
                }
                if let Some(last) = path.last().filter(|s| s.index.is_some()) {
                    return Err(format!(
                        r#"{at}: "path" must end in a member name to rename, not {}"#,
                        json::quote(&last.key)
                    )
                    .into());
                }
                Edit::Rename(to.to_string())
            }
            _ => {
                unused("to", to.is_some())?;
                Edit::Add(value.ok_or(format!(r#"{at}: missing "value""#))?.clone())
            }
        };
        ops.push(Op { path, edit });
    }
    Ok(ops)
}

/// Applies an edit at `segs` under `v` and returns how many places it
/// changed. A name on an array applies to each object element.
fn apply(v: &mut Json, segs: &[Seg], edit: &Edit) -> usize {
    let seg = &segs[0];
    let last = segs.len() == 1;
    match v {
        Json::Array(items) => match seg.index {
            None => items.iter_mut().filter(|it| matches!(it, Json::Object(_))).map(|it| apply(it, segs, edit)).sum(),
            Some(i) if i >= items.len() => 0,
            Some(i) if !last => apply(&mut items[i], &segs[1..], edit),
            Some(i) => match edit {
                Edit::Remove => {
                    items.remove(i);
                    1
                }
                Edit::Add(val) => {
                    items[i] = val.clone();
                    1
                }
                Edit::Rename(_) => 0, // elements have no names
            },
        },
        Json::Object(members) => {
            let found = members.iter().position(|(k, _)| *k == seg.key);
            if !last {
                return match (found, edit) {
                    (Some(i), _) => apply(&mut members[i].1, &segs[1..], edit),
                    (None, Edit::Add(_)) => {
                        members.push((seg.key.clone(), Json::Object(Vec::new())));
                        let end = members.len() - 1;
                        apply(&mut members[end].1, &segs[1..], edit)
                    }
                    (None, _) => 0,
                };
            }
            match (found, edit) {
                (None, Edit::Add(val)) => {
                    members.push((seg.key.clone(), val.clone()));
                    1
                }
                (None, _) => 0,
                (Some(_), Edit::Remove) => {
                    let before = members.len();
                    members.retain(|(k, _)| *k != seg.key);
                    before - members.len()
                }
                (Some(i), Edit::Add(val)) => {
                    members[i].1 = val.clone();
                    1
                }
                (Some(i), Edit::Rename(to)) => {
                    if members[i].0 == *to {
                        return 0;
                    }
                    members[i].0 = to.clone();
                    let mut k = 0;
                    members.retain(|(key, _)| {
                        k += 1;
                        k - 1 == i || key != to
                    });
                    1
                }
            }
        }
        _ => 0,
    }
}

/// What the transform needs of a request or a response.
trait Message {
    fn get(&self, name: &str) -> Option<String>;
    fn size(&self) -> wasmgate::Result<u64>;
    fn read(&self) -> wasmgate::Result<Vec<u8>>;
    fn write(&self, body: &[u8]) -> wasmgate::Result<()>;
}

impl Message for Request {
    fn get(&self, name: &str) -> Option<String> {
        self.header(name)
    }
    fn size(&self) -> wasmgate::Result<u64> {
        self.body_range(0, &mut []).map(|(_, size)| size)
    }
    fn read(&self) -> wasmgate::Result<Vec<u8>> {
        self.body()
    }
    fn write(&self, body: &[u8]) -> wasmgate::Result<()> {
        self.set_body(body)
    }
}

impl Message for Response {
    fn get(&self, name: &str) -> Option<String> {
        self.header(name)
    }
    fn size(&self) -> wasmgate::Result<u64> {
        self.body_range(0, &mut []).map(|(_, size)| size)
    }
    fn read(&self) -> wasmgate::Result<Vec<u8>> {
        self.body()
    }
    fn write(&self, body: &[u8]) -> wasmgate::Result<()> {
        self.set_body(body)
    }
}

/// Whether the headers say the body is plain (uncompressed) JSON.
fn is_json(m: &impl Message) -> bool {
    let ct = m.get("Content-Type").unwrap_or_default().to_ascii_lowercase();
    let media = ct.split(';').next().unwrap_or("");
    let ce = m.get("Content-Encoding").unwrap_or_default();
    media.contains("json") && (ce.trim().is_empty() || ce.trim().eq_ignore_ascii_case("identity"))
}

impl Transform {
    /// Runs ops on m's body when it is JSON within the size limit.
    fn run(&self, m: &impl Message, ops: &[Op]) -> Result<(), HookError> {
        if ops.is_empty() || !is_json(m) {
            return Ok(());
        }
        // The size first: a body over the limit never crosses into the plugin.
        let size = m.size()?;
        if size == 0 || size > self.max_body {
            return Ok(());
        }
        let mut doc = match json::parse(&m.read()?) {
            Ok(doc) => doc,
            Err(_) => return Ok(()), // not JSON after all: passed as it is
        };
        let changed: usize = ops.iter().map(|op| apply(&mut doc, &op.path, &op.edit)).sum();
        if changed > 0 {
            m.write(doc.to_json().as_bytes())?;
        }
        Ok(())
    }
}

impl Plugin for Transform {
    fn init(config: &[u8]) -> Result<Self, HookError> {
        let cfg = json::parse_config(config)?;
        let f = cfg.fields("")?;
        f.only(&["request", "response", "statuses", "max_body"])?;
        let request = compile(&f, "request")?;
        let response = compile(&f, "response")?;
        if request.is_empty() && response.is_empty() {
            return Err(r#"no ops: give "request" or "response" a list of ops like {op: remove, path: a.b}"#.into());
        }
        let mut statuses = Vec::new();
        for (i, s) in f.array("statuses")?.unwrap_or(&[]).iter().enumerate() {
            let n =
                s.as_i64().ok_or_else(|| format!(r#"field "statuses.{i}": want integer, got {}"#, s.type_name()))?;
            if !(100..=599).contains(&n) {
                return Err(format!(r#""statuses": {n} is not an HTTP status"#).into());
            }
            statuses.push(n);
        }
        let max_body = match f.i64("max_body")? {
            None => DEFAULT_MAX_BODY,
            Some(n) if n > 0 => n as u64,
            Some(_) => return Err(r#""max_body" must be positive"#.into()),
        };
        Ok(Transform { request, response, statuses, max_body })
    }

    fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
        self.run(req, &self.request)?;
        Ok(Action::Continue)
    }

    fn on_response(&mut self, resp: &Response) -> Result<(), HookError> {
        let status = i64::from(resp.status());
        let wanted =
            if self.statuses.is_empty() { (200..300).contains(&status) } else { self.statuses.contains(&status) };
        if wanted {
            self.run(resp, &self.response)?;
        }
        Ok(())
    }
}

wasmgate::plugin!(Transform => on_request, on_response);
