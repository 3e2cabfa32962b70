//! A small JSON reader and writer, for the plugin's config (sdk/ABI.md
//! section 5: the route's YAML converted to JSON) and for building claims
//! and bodies. No dependencies, strict (RFC 8259), with errors an operator
//! can act on:
//!
//! ```text
//! invalid JSON at byte 12: expected ',' or '}'
//! unknown field "secrett"
//! field "keys.0.consumer": want string, got number
//! ```

use std::fmt::Write as _;

/// A JSON value. Objects keep their keys in order (the gateway writes them
/// in the order of the YAML); numbers keep their text, so that no digit of
/// a large integer is lost.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as written.
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object, its members in order.
    Object(Vec<(String, Json)>),
}

/// How deep arrays and objects may nest.
const MAX_DEPTH: usize = 128;

/// Parses one JSON value (space around it allowed). Empty input (or only
/// space) is an error: see [`parse_config`] for the config's rules.
pub fn parse(text: &[u8]) -> Result<Json, String> {
    let mut p = Parser { b: text, i: 0 };
    p.space();
    let v = p.value(0)?;
    p.space();
    if p.i != p.b.len() {
        return Err(p.err("unexpected data after the value"));
    }
    Ok(v)
}

/// Parses the plugin's config: empty config bytes (or only space) read as
/// `{}`, as the Go SDK's DecodeConfig does.
pub fn parse_config(config: &[u8]) -> Result<Json, String> {
    if config.iter().all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n')) {
        return Ok(Json::Object(Vec::new()));
    }
    parse(config)
}

impl Json {
    /// The JSON type's name, as errors say it: null, boolean, number,
    /// string, list, object.
    pub fn type_name(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "list",
            Json::Object(_) => "object",
        }
    }

    /// The member `key` of an object (the first one: the gateway rejects a
    /// key written twice), `None` for a missing key or a value that is not an
    /// object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The number as an `f64`, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The number as an `i64`, if this is an integer in range (written
    /// without fraction or exponent, as the gateway writes integers).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The members, if this is an object.
    pub fn as_object(&self) -> Option<&[(String, Json)]> {
        match self {
            Json::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    /// The object's members for typed, strict reading, with errors naming
    /// `path` (`""` for the config itself); an error if this is not an
    /// object.
    pub fn fields<'a>(&'a self, path: &str) -> Result<Fields<'a>, String> {
        match self {
            Json::Object(m) => Ok(Fields { path: path.to_string(), members: m }),
            other => Err(want(path, "object", other)),
        }
    }

    /// The value as compact JSON text.
    pub fn to_json(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::String(s) => quote_into(out, s),
            Json::Array(a) => {
                out.push('[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Json::Object(m) => {
                out.push('{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    quote_into(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Json {
        Json::String(s.to_string())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Json {
        Json::String(s)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Json {
        Json::Bool(b)
    }
}

impl From<i64> for Json {
    fn from(n: i64) -> Json {
        Json::Number(n.to_string())
    }
}

/// `s` as a JSON string, quoted and escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An object's members, read strictly: [`Fields::only`] rejects unknown
/// keys, and each getter fails on a value of the wrong type, naming the
/// field by its path (`keys.0.consumer`).
#[derive(Clone, Debug)]
pub struct Fields<'a> {
    path: String,
    members: &'a [(String, Json)],
}

impl<'a> Fields<'a> {
    /// Fails with `unknown field "x"` for a key not in `known`.
    pub fn only(&self, known: &[&str]) -> Result<(), String> {
        for (k, _) in self.members {
            if !known.contains(&k.as_str()) {
                return Err(format!("unknown field {}", quote(&self.join(k))));
            }
        }
        Ok(())
    }

    /// The members, in order.
    pub fn members(&self) -> &'a [(String, Json)] {
        self.members
    }

    /// The raw value of `key`, `None` when absent. A `null` counts as absent
    /// in the typed getters below, as in Go's encoding/json.
    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn typed<T>(&self, key: &str, what: &str, f: impl FnOnce(&'a Json) -> Option<T>) -> Result<Option<T>, String> {
        match self.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| want(&self.join(key), what, v)),
        }
    }

    /// A string field.
    pub fn str(&self, key: &str) -> Result<Option<&'a str>, String> {
        self.typed(key, "string", Json::as_str)
    }

    /// A boolean field.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        self.typed(key, "boolean", Json::as_bool)
    }

    /// A number field.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, String> {
        self.typed(key, "number", Json::as_f64)
    }

    /// An integer field.
    pub fn i64(&self, key: &str) -> Result<Option<i64>, String> {
        self.typed(key, "integer", Json::as_i64)
    }

    /// A list field.
    pub fn array(&self, key: &str) -> Result<Option<&'a [Json]>, String> {
        self.typed(key, "list", Json::as_array)
    }

    /// An object field, for strict reading in turn.
    pub fn object(&self, key: &str) -> Result<Option<Fields<'a>>, String> {
        let path = self.join(key);
        match self.get(key) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Object(m)) => Ok(Some(Fields { path, members: m })),
            Some(v) => Err(want(&path, "object", v)),
        }
    }

    /// A list field of objects, each for strict reading in turn (errors name
    /// `key.i`); empty when absent.
    pub fn objects(&self, key: &str) -> Result<Vec<Fields<'a>>, String> {
        let items = self.array(key)?.unwrap_or(&[]);
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let path = format!("{}.{i}", self.join(key));
            match v {
                Json::Object(m) => out.push(Fields { path, members: m }),
                v => return Err(want(&path, "object", v)),
            }
        }
        Ok(out)
    }

    /// The path of a member: `key`, or `path.key`.
    pub fn join(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }
}

fn want(path: &str, what: &str, got: &Json) -> String {
    if path.is_empty() {
        format!("want {what}, got {}", got.type_name())
    } else {
        format!("field {}: want {what}, got {}", quote(path), got.type_name())
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, msg: &str) -> String {
        format!("invalid JSON at byte {}: {msg}", self.i)
    }

    fn space(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deep"));
        }
        match self.peek() {
            None => Err(self.err("unexpected end of input")),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::String),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.space();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    self.space();
                    items.push(self.value(depth + 1)?);
                    self.space();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.space();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.space();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let k = self.string()?;
                    self.space();
                    if self.peek() != Some(b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.i += 1;
                    self.space();
                    let v = self.value(depth + 1)?;
                    members.push((k, v));
                    self.space();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<Json, String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        let n = self.digits();
        let mut ok = n > 0 && !(n > 1 && self.b[int_start] == b'0');
        if ok && self.peek() == Some(b'.') {
            self.i += 1;
            ok = self.digits() > 0;
        }
        if ok && matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            ok = self.digits() > 0;
        }
        if !ok {
            self.i = start;
            return Err(self.err("invalid number"));
        }
        // The bytes are ASCII digits and signs.
        Ok(Json::Number(String::from_utf8_lossy(&self.b[start..self.i]).into_owned()))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self.peek().and_then(|c| (c as char).to_digit(16)).ok_or_else(|| self.err("invalid \\u escape"))?;
            v = v << 4 | d;
            self.i += 1;
        }
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // the opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
            match c {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"));
                }
                b'\\' => {
                    self.i += 1;
                    let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) && self.b[self.i..].starts_with(b"\\u") {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    self.i = save;
                                }
                            }
                            char::from_u32(cp).unwrap_or('\u{FFFD}')
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes() {
        let v = parse(br#" {"a":[1,-2.5e+3,true,null],"b":"x\"\u00e9\ud83d\ude00\n","c":{}} "#).unwrap();
        assert_eq!(v.get("a").unwrap().as_array().unwrap()[1].as_f64(), Some(-2500.0));
        assert_eq!(v.get("b").unwrap().as_str(), Some("x\"é😀\n"));
        assert_eq!(v.to_json(), r#"{"a":[1,-2.5e+3,true,null],"b":"x\"é😀\n","c":{}}"#);
        assert_eq!(parse(b"12345678901234567890").unwrap(), Json::Number("12345678901234567890".into()));
        assert_eq!(parse_config(b" \n").unwrap(), Json::Object(vec![]));
        assert_eq!(quote("a\u{1}"), "\"a\\u0001\"");
    }

    #[test]
    fn errors() {
        for (text, want) in [
            (&b"{\"a\":1,}"[..], "invalid JSON at byte 7: expected a string key"),
            (b"[1 2]", "invalid JSON at byte 3: expected ',' or ']'"),
            (b"[01]", "invalid JSON at byte 1: invalid number"),
            (b"\"abc", "invalid JSON at byte 4: unterminated string"),
            (b"{} x", "invalid JSON at byte 3: unexpected data after the value"),
            (b"", "invalid JSON at byte 0: unexpected end of input"),
        ] {
            assert_eq!(parse(text).unwrap_err(), want, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn fields() {
        let v = parse(br#"{"keys":[{"consumer":5}],"header":"X","strict":true,"typo":1}"#).unwrap();
        let f = v.fields("").unwrap();
        assert_eq!(f.only(&["keys", "header", "strict"]).unwrap_err(), r#"unknown field "typo""#);
        assert_eq!(f.str("header").unwrap(), Some("X"));
        assert_eq!(f.str("missing").unwrap(), None);
        assert_eq!(f.bool("header").unwrap_err(), r#"field "header": want boolean, got string"#);
        let keys = f.objects("keys").unwrap();
        assert_eq!(keys[0].str("consumer").unwrap_err(), r#"field "keys.0.consumer": want string, got number"#);
        assert!(f.objects("missing").unwrap().is_empty());
        let bad = parse(br#"{"keys":[1]}"#).unwrap();
        assert_eq!(bad.fields("").unwrap().objects("keys").unwrap_err(), r#"field "keys.0": want object, got number"#);
        assert_eq!(Json::Array(vec![]).fields("").unwrap_err(), "want object, got list");
    }
}
