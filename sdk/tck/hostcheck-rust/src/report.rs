//! Reports: what a check observed, as a JSON object (the SDK's
//! `wasmgate::json::Json`), keyed as the specification (sdk/tck/hostcheck)
//! says. The runner decodes them, so key order does not matter; a key set
//! twice keeps the last value, as in the Go guest's maps.

use wasmgate::json::Json;

/// A JSON object being built.
#[derive(Clone, Debug, Default)]
pub struct Report(Vec<(String, Json)>);

impl Report {
    pub fn new() -> Report {
        Report(Vec::new())
    }

    /// Sets `key` to `v`.
    pub fn set(&mut self, key: &str, v: impl ToJson) {
        let v = v.into_json();
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.0.push((key.to_string(), v)),
        }
    }

    /// `set`, for building a report in one expression: the values are
    /// computed in the order written, which is the order of the host calls.
    pub fn with(mut self, key: &str, v: impl ToJson) -> Report {
        self.set(key, v);
        self
    }

    /// The compact JSON text.
    pub fn text(&self) -> String {
        self.clone().into_json().to_json()
    }
}

/// A value of a report.
pub trait ToJson {
    fn into_json(self) -> Json;
}

impl ToJson for Json {
    fn into_json(self) -> Json {
        self
    }
}

impl ToJson for Report {
    fn into_json(self) -> Json {
        Json::Object(self.0)
    }
}

impl ToJson for bool {
    fn into_json(self) -> Json {
        Json::Bool(self)
    }
}

impl ToJson for &str {
    fn into_json(self) -> Json {
        Json::String(self.to_string())
    }
}

impl ToJson for String {
    fn into_json(self) -> Json {
        Json::String(self)
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn into_json(self) -> Json {
                Json::Number(self.to_string())
            }
        }
    )*};
}

integers!(i32, i64, u16, u32, u64, usize);

impl ToJson for f64 {
    /// Rust writes finite floats without an exponent ("0.000123",
    /// "100000000000000000000"), which is valid JSON; NaN and infinities,
    /// which JSON has not, are null.
    fn into_json(self) -> Json {
        if self.is_finite() {
            Json::Number(self.to_string())
        } else {
            Json::Null
        }
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn into_json(self) -> Json {
        Json::Array(self.into_iter().map(ToJson::into_json).collect())
    }
}

impl<T: ToJson> ToJson for Option<T> {
    fn into_json(self) -> Json {
        self.map_or(Json::Null, ToJson::into_json)
    }
}

/// Bytes as a string, as Go's string(b) marshals them: bytes that are not
/// UTF-8 become U+FFFD.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for c in b {
        s.push_str(&format!("{c:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_objects() {
        let mut r = Report::new().with("a", 1i32).with("b", "x\u{0}").with("c", vec!["m1".to_string()]);
        r.set("a", 2.5f64);
        r.set("d", Report::new().with("ok", true));
        r.set("e", f64::NAN);
        r.set("f", None::<i32>);
        assert_eq!(r.text(), r#"{"a":2.5,"b":"x\u0000","c":["m1"],"d":{"ok":true},"e":null,"f":null}"#);
        assert_eq!(hex(&[0, 9, 0xab]), "0009ab");
        assert_eq!(text(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(0.000123f64.into_json(), Json::Number("0.000123".into()));
    }
}
