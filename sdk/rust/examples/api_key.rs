//! api_key: a wasmgate plugin in Rust that authenticates requests by API
//! key. Each key belongs to a consumer; a request with a missing or unknown
//! key is answered 401 here. A known key's consumer is told to the gateway
//! (`set_consumer`: rate limits keyed by consumer, `authorize.consumers`,
//! the access log), forwarded upstream in a header, and its scopes become the
//! request's claims (`set_claims`: `{"sub": consumer, "scope": "..."}`), which
//! the route's `authorize.require_scopes` checks.
//!
//! Config:
//!
//! ```yaml
//! config:
//!   keys:                                  # required
//!     - {consumer: mobile-app, key: "${MOBILE_KEY}", scope: "orders:read"}
//!   header: X-Api-Key                      # where the key is (default)
//!   consumer_header: X-Consumer            # forwarded upstream (default);
//!                                          # always removed from the client's request
//! ```
//!
//! Keys are at least 16 bytes; the key header is removed before proxying.
//! The comparison reads every byte of every configured key, so its time says
//! nothing about which key, or how much of one, matched.

use wasmgate::json::{self, Json};
use wasmgate::{Action, HookError, Plugin, Request};

const MIN_KEY_LEN: usize = 16;

struct Key {
    consumer: String,
    key: Vec<u8>,
    claims: String,
}

struct ApiKey {
    keys: Vec<Key>,
    header: String,
    consumer_header: String,
}

impl Plugin for ApiKey {
    fn init(config: &[u8]) -> Result<Self, HookError> {
        let cfg = json::parse_config(config)?;
        let f = cfg.fields("")?;
        f.only(&["keys", "header", "consumer_header"])?;
        let header = f.str("header")?.unwrap_or("X-Api-Key").to_string();
        let consumer_header = f.str("consumer_header")?.unwrap_or("X-Consumer").to_string();
        for (what, name) in [("header", &header), ("consumer_header", &consumer_header)] {
            if !wasmgate::abi::is_token(name) {
                return Err(format!("{}: {} is not a valid header name", json::quote(what), json::quote(name)).into());
            }
        }
        let list = f.objects("keys")?;
        if list.is_empty() {
            return Err(r#"missing "keys": list {consumer, key} pairs"#.into());
        }
        let mut keys: Vec<Key> = Vec::new();
        for (i, k) in list.iter().enumerate() {
            k.only(&["consumer", "key", "scope"])?;
            let consumer = k.str("consumer")?.ok_or_else(|| format!(r#"keys.{i}: missing "consumer""#))?;
            let key = k.str("key")?.ok_or_else(|| format!(r#"keys.{i}: missing "key""#))?;
            if key.len() < MIN_KEY_LEN {
                return Err(format!(r#"keys.{i}: "key" of {} bytes: want at least {MIN_KEY_LEN}"#, key.len()).into());
            }
            if keys.iter().any(|o| o.key == key.as_bytes()) {
                return Err(format!("keys.{i}: the same key as another").into());
            }
            let mut claims = vec![("sub".to_string(), Json::from(consumer))];
            if let Some(scope) = k.str("scope")? {
                claims.push(("scope".to_string(), Json::from(scope)));
            }
            keys.push(Key {
                consumer: consumer.to_string(),
                key: key.as_bytes().to_vec(),
                claims: Json::Object(claims).to_json(),
            });
        }
        Ok(ApiKey { keys, header, consumer_header })
    }

    fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
        req.remove_header(&self.consumer_header)?;
        let given = req.header(&self.header).unwrap_or_default();
        let given = given.trim();
        if given.is_empty() {
            return self.reject(req, "missing API key");
        }
        let key = match self.lookup(given.as_bytes()) {
            Some(k) => k,
            None => return self.reject(req, "invalid API key"),
        };
        req.set_header(&self.consumer_header, &key.consumer)?;
        req.remove_header(&self.header)?;
        wasmgate::set_consumer(&key.consumer)?;
        wasmgate::set_claims(key.claims.as_bytes())?;
        Ok(Action::Continue)
    }
}

impl ApiKey {
    /// The key equal to `given`, comparing every byte of every key.
    fn lookup(&self, given: &[u8]) -> Option<&Key> {
        let mut found = None;
        for k in &self.keys {
            let mut diff = (k.key.len() ^ given.len()) as u8 | u8::from(k.key.len() != given.len());
            for (i, b) in k.key.iter().enumerate() {
                diff |= b ^ given.get(i).copied().unwrap_or(0);
            }
            if diff == 0 {
                found = Some(k);
            }
        }
        found
    }

    fn reject(&self, req: &Request, why: &str) -> Result<Action, HookError> {
        let body = format!("{{\"error\":{}}}\n", json::quote(why));
        let resp = req.send_response(401, body.as_bytes())?;
        resp.set_header("Content-Type", "application/json")?;
        resp.set_header("WWW-Authenticate", &format!("ApiKey realm=\"wasmgate\", header=\"{}\"", self.header))?;
        Ok(Action::Stop)
    }
}

wasmgate::plugin!(ApiKey);
