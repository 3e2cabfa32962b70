//! The plugin config (sdk/tck/hostcheck's "Config keys"), read strictly
//! with the SDK's JSON reader: unknown keys and values of the wrong type
//! are errors, as the Go guest's wasmgate.DecodeConfig makes them.

use wasmgate::json::{self, Fields, Json};

/// The values of "check".
pub const CHECKS: &[&str] =
    &["inspect", "phase", "kv", "metrics", "log", "outbound", "chain", "instance", "buffers", "gateway", "flags"];

/// The plugin config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub check: String,
    pub tag: String,
    pub stop: bool,
    pub local: bool,
    pub big_body: i64,
    pub batch: Vec<OutboundCall>,
}

/// One request of the outbound check's batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboundCall {
    pub url: String,
    pub method: String,
    pub timeout_ms: i64,
    /// In the order the config lists them.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Decodes and checks the config. A "reject" message is returned as the
/// error, so that tests can see a plugin's own words reach the operator.
pub fn parse(b: &[u8]) -> Result<Config, String> {
    let v = json::parse_config(b)?;
    let f = v.fields("")?;
    f.only(&["check", "tag", "stop", "local", "big_body", "batch", "reject", "echo"])?;
    let c = Config {
        check: f.str("check")?.unwrap_or_default().to_string(),
        tag: f.str("tag")?.unwrap_or_default().to_string(),
        stop: f.bool("stop")?.unwrap_or_default(),
        local: f.bool("local")?.unwrap_or_default(),
        big_body: f.i64("big_body")?.unwrap_or_default(),
        batch: f.objects("batch")?.iter().map(outbound_call).collect::<Result<_, _>>()?,
    };
    let reject = f.str("reject")?.unwrap_or_default();
    if !reject.is_empty() {
        return Err(reject.to_string());
    }
    let checks = || CHECKS.iter().map(|c| json::quote(c)).collect::<Vec<_>>().join(" ");
    if c.check.is_empty() {
        return Err(format!(r#"missing "check" (one of [{}])"#, checks()));
    }
    if !CHECKS.contains(&c.check.as_str()) {
        return Err(format!(r#""check": unknown check {} (want one of [{}])"#, json::quote(&c.check), checks()));
    }
    if c.check == "chain" && c.tag.is_empty() {
        return Err(r#"check "chain" needs a "tag""#.into());
    }
    if c.check == "outbound" && c.batch.is_empty() {
        return Err(r#"check "outbound" needs a "batch""#.into());
    }
    if c.big_body < 0 {
        return Err(r#""big_body" is negative"#.into());
    }
    for (i, o) in c.batch.iter().enumerate() {
        if o.url.is_empty() {
            return Err(format!(r#"batch[{i}]: missing "url""#));
        }
        if o.timeout_ms < 0 {
            return Err(format!(r#"batch[{i}]: negative "timeout_ms""#));
        }
    }
    Ok(c)
}

fn outbound_call(f: &Fields) -> Result<OutboundCall, String> {
    f.only(&["url", "method", "timeout_ms", "headers", "body"])?;
    let mut headers = Vec::new();
    if let Some(h) = f.object("headers")? {
        for (name, v) in h.members() {
            match v {
                Json::String(s) => headers.push((name.clone(), s.clone())),
                Json::Null => {}
                other => {
                    return Err(format!("field {}: want string, got {}", json::quote(&h.join(name)), other.type_name()))
                }
            }
        }
    }
    Ok(OutboundCall {
        url: f.str("url")?.unwrap_or_default().to_string(),
        method: f.str("method")?.unwrap_or_default().to_string(),
        timeout_ms: f.i64("timeout_ms")?.unwrap_or_default(),
        headers,
        body: f.str("body")?.unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of sdk/tck/hostcheck's TestParseConfig.
    #[test]
    fn parses_and_checks() {
        for (input, want_err) in [
            (r#"{"check":"inspect"}"#, ""),
            (r#"{"check":"chain","tag":"A","stop":true}"#, ""),
            (r#"{"check":"outbound","batch":[{"url":"upstream://a/x","timeout_ms":50}]}"#, ""),
            (r#"{"check":"inspect","echo":{"nested":[1,"two"]}}"#, ""),
            (r#"{}"#, r#"missing "check""#),
            (r#"{"check":"nope"}"#, r#"unknown check "nope""#),
            (r#"{"check":"chain"}"#, r#"needs a "tag""#),
            (r#"{"check":"outbound"}"#, r#"needs a "batch""#),
            (r#"{"check":"outbound","batch":[{}]}"#, r#"batch[0]: missing "url""#),
            (r#"{"check":"outbound","batch":[{"url":"x","timeout_ms":-1}]}"#, r#"negative "timeout_ms""#),
            (r#"{"check":"inspect","big_body":-1}"#, "negative"),
            (r#"{"check":"inspect","reject":"told to"}"#, "told to"),
            (r#"{"check":"inspect","unknown":1}"#, r#"unknown field "unknown""#),
            (
                r#"{"check":"outbound","batch":[{"url":"x","headers":{"A":1}}]}"#,
                r#"field "batch.0.headers.A": want string"#,
            ),
            (r#"{"check":1}"#, r#"field "check": want string, got number"#),
        ] {
            match parse(input.as_bytes()) {
                Ok(_) if want_err.is_empty() => {}
                Ok(c) => panic!("{input}: accepted as {c:?}, want an error containing {want_err:?}"),
                Err(e) if want_err.is_empty() => panic!("{input}: {e}"),
                Err(e) => assert!(e.contains(want_err), "{input}: got {e:?}, want an error containing {want_err:?}"),
            }
        }
    }

    #[test]
    fn reads_every_key() {
        let c = parse(
            br#"{"check":"outbound","tag":"T","stop":true,"local":true,"big_body":7,
                "batch":[{"url":"u","method":"POST","timeout_ms":5,"headers":{"X-A":"1","X-B":"2"},"body":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            Config {
                check: "outbound".into(),
                tag: "T".into(),
                stop: true,
                local: true,
                big_body: 7,
                batch: vec![OutboundCall {
                    url: "u".into(),
                    method: "POST".into(),
                    timeout_ms: 5,
                    headers: vec![("X-A".into(), "1".into()), ("X-B".into(), "2".into())],
                    body: "b".into(),
                }],
            }
        );
        assert_eq!(
            parse(b"").unwrap_err(),
            r#"missing "check" (one of ["inspect" "phase" "kv" "metrics" "log" "outbound" "chain" "instance" "buffers" "gateway" "flags"])"#
        );
    }
}
