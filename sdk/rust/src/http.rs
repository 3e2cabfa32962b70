use std::sync::atomic::{AtomicBool, Ordering};

use crate::abi::{self, func};
use crate::buffer::{len32, read, split_list, string};
use crate::error::{check, Error, Result};
use crate::sys;

/// Set once `send_response` succeeded in the current `on_request`: the hook
/// then returns `Stop` (see [`crate::Action`]).
pub(crate) static LOCAL_SENT: AtomicBool = AtomicBool::new(false);

/// The request being handled. It holds no data: every method is a host
/// call, so a plugin pays only for what it reads, and a body is never copied
/// into the plugin unless it asks for it.
///
/// In `on_request` every method works. In `on_response` the request is the
/// one sent upstream, read-only: setters fail with `NOT_ALLOWED`.
///
/// Getters that return a plain value (`method`, `path`, ...) return an
/// empty string when the host refuses the call, which happens only outside a
/// request or response hook.
#[derive(Debug)]
pub struct Request {
    _private: (),
}

/// The response being handled: the upstream's in `on_response`, or the local
/// response made by [`Request::send_response`] in `on_request`.
#[derive(Debug)]
pub struct Response {
    _private: (),
}

impl Request {
    pub(crate) const fn new() -> Request {
        Request { _private: () }
    }

    /// The request method, e.g. `GET`.
    pub fn method(&self) -> String {
        read_string(func::REQUEST_METHOD, |p, n| unsafe { sys::request_method(p, n) })
    }

    /// The path without the query, in the gateway's canonical form (the one
    /// the route matched and the upstream receives). In `on_response` it is
    /// the path sent upstream, after the route's rewrite.
    pub fn path(&self) -> String {
        read_string(func::REQUEST_PATH, |p, n| unsafe { sys::request_path(p, n) })
    }

    /// Replaces the path sent upstream; it must start with `/`. If it
    /// contains `?`, what follows replaces the query too (`/p?` clears it).
    pub fn set_path(&self, path: &str) -> Result<()> {
        let n = len32(func::REQUEST_SET_PATH, path.as_bytes())?;
        check(func::REQUEST_SET_PATH, unsafe { sys::request_set_path(path.as_ptr(), n) }).map(drop)
    }

    /// The raw query string, without `?` (empty when none).
    pub fn query(&self) -> String {
        read_string(func::REQUEST_QUERY, |p, n| unsafe { sys::request_query(p, n) })
    }

    /// The first value of the query parameter `name`, unescaped (`+` and
    /// `%XX`), or `None` when absent.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(&self.query(), name)
    }

    /// The client's address as text, after trusted-proxy processing.
    pub fn client_ip(&self) -> String {
        read_string(func::REQUEST_CLIENT_IP, |p, n| unsafe { sys::request_client_ip(p, n) })
    }

    /// The first value of the header (name case-insensitive), `None` when
    /// absent.
    pub fn header(&self, name: &str) -> Option<String> {
        header_get(abi::KIND_REQUEST, name)
    }

    /// Every value of the header, empty when absent.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        header_values(abi::KIND_REQUEST, name)
    }

    /// The names of the request's headers, each once.
    pub fn header_names(&self) -> Vec<String> {
        header_names(abi::KIND_REQUEST)
    }

    /// Replaces every value of the header with `value`.
    pub fn set_header(&self, name: &str, value: &str) -> Result<()> {
        header_write(func::HEADER_SET, abi::KIND_REQUEST, name, value)
    }

    /// Adds a value to the header.
    pub fn add_header(&self, name: &str, value: &str) -> Result<()> {
        header_write(func::HEADER_ADD, abi::KIND_REQUEST, name, value)
    }

    /// Removes every value of the header; absent is not an error.
    pub fn remove_header(&self, name: &str) -> Result<()> {
        header_remove(abi::KIND_REQUEST, name)
    }

    /// A copy of the whole request body.
    pub fn body(&self) -> Result<Vec<u8>> {
        body(abi::KIND_REQUEST)
    }

    /// Copies the body bytes from `offset` into `buf` and returns how many it
    /// copied and the body's full size. Only those bytes cross into the
    /// plugin, so a plugin can sniff a prefix of a large body cheaply.
    pub fn body_range(&self, offset: u64, buf: &mut [u8]) -> Result<(usize, u64)> {
        body_range(abi::KIND_REQUEST, offset, buf)
    }

    /// Replaces the request body (and its Content-Length); `TOO_LARGE` over
    /// the route's body limit.
    pub fn set_body(&self, body: &[u8]) -> Result<()> {
        body_set(abi::KIND_REQUEST, body)
    }

    /// Builds a local response and ends the chain: `on_request` then returns
    /// `Stop` (the SDK returns `Stop` for it even if it returns `Continue`).
    /// Headers of the local response can be set on the returned [`Response`]
    /// in the same hook. `status` is a final one (200–599), and one without a
    /// body (204, 304) takes none: anything else is `BAD_ARGUMENT`. On a HEAD
    /// request the body is not sent; its length is the Content-Length.
    pub fn send_response(&self, status: u16, body: &[u8]) -> Result<Response> {
        let status = status as i32;
        if !(abi::MIN_STATUS..=abi::MAX_STATUS).contains(&status) || !body.is_empty() && abi::bodyless_status(status) {
            return Err(Error::new(func::SEND_RESPONSE, abi::BAD_ARGUMENT));
        }
        let n = len32(func::SEND_RESPONSE, body)?;
        check(func::SEND_RESPONSE, unsafe { sys::send_response(status, body.as_ptr(), n) })?;
        LOCAL_SENT.store(true, Ordering::Relaxed);
        Ok(Response::new())
    }
}

impl Response {
    pub(crate) const fn new() -> Response {
        Response { _private: () }
    }

    /// The request this response answers, for reading.
    pub fn request(&self) -> Request {
        Request::new()
    }

    /// The status code; 0 when there is none yet (in `on_request` before
    /// `send_response`).
    pub fn status(&self) -> u16 {
        let s = unsafe { sys::response_status() };
        if s < 0 {
            0
        } else {
            s as u16
        }
    }

    /// Sets the status, a final one (200–599, else `BAD_ARGUMENT`). To 204 or
    /// 304 it drops the body; from them it leaves an empty body to
    /// [`Response::set_body`].
    pub fn set_status(&self, status: u16) -> Result<()> {
        let status = status as i32;
        if !(abi::MIN_STATUS..=abi::MAX_STATUS).contains(&status) {
            return Err(Error::new(func::RESPONSE_SET_STATUS, abi::BAD_ARGUMENT));
        }
        check(func::RESPONSE_SET_STATUS, unsafe { sys::response_set_status(status) }).map(drop)
    }

    /// The first value of the header, `None` when absent.
    pub fn header(&self, name: &str) -> Option<String> {
        header_get(abi::KIND_RESPONSE, name)
    }

    /// Every value of the header, empty when absent.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        header_values(abi::KIND_RESPONSE, name)
    }

    /// The names of the response's headers, each once.
    pub fn header_names(&self) -> Vec<String> {
        header_names(abi::KIND_RESPONSE)
    }

    /// Replaces every value of the header with `value`.
    pub fn set_header(&self, name: &str, value: &str) -> Result<()> {
        header_write(func::HEADER_SET, abi::KIND_RESPONSE, name, value)
    }

    /// Adds a value to the header.
    pub fn add_header(&self, name: &str, value: &str) -> Result<()> {
        header_write(func::HEADER_ADD, abi::KIND_RESPONSE, name, value)
    }

    /// Removes every value of the header; absent is not an error.
    pub fn remove_header(&self, name: &str) -> Result<()> {
        header_remove(abi::KIND_RESPONSE, name)
    }

    /// A copy of the whole response body.
    pub fn body(&self) -> Result<Vec<u8>> {
        body(abi::KIND_RESPONSE)
    }

    /// Copies body bytes from `offset`; see [`Request::body_range`].
    pub fn body_range(&self, offset: u64, buf: &mut [u8]) -> Result<(usize, u64)> {
        body_range(abi::KIND_RESPONSE, offset, buf)
    }

    /// Replaces the response body (and its Content-Length): `TOO_LARGE` over
    /// the route's body limit, `NOT_ALLOWED` for a non-empty body when the
    /// status has none (204, 304). On a HEAD request it is the body a GET
    /// would get: it sets Content-Length and is not sent.
    pub fn set_body(&self, body: &[u8]) -> Result<()> {
        body_set(abi::KIND_RESPONSE, body)
    }
}

fn read_string(func: &'static str, call: impl FnMut(*mut u8, i32) -> i32) -> String {
    read(func, call).map(string).unwrap_or_default()
}

fn header_get(kind: i32, name: &str) -> Option<String> {
    let n = len32(func::HEADER_GET, name.as_bytes()).ok()?;
    read(func::HEADER_GET, |p, l| unsafe { sys::header_get(kind, name.as_ptr(), n, p, l) }).ok().map(string)
}

fn header_values(kind: i32, name: &str) -> Vec<String> {
    let n = match len32(func::HEADER_VALUES, name.as_bytes()) {
        Ok(n) => n,
        Err(_) => return Vec::new(),
    };
    match read(func::HEADER_VALUES, |p, l| unsafe { sys::header_values(kind, name.as_ptr(), n, p, l) }) {
        Ok(b) => split_list(&b),
        Err(_) => Vec::new(),
    }
}

fn header_names(kind: i32) -> Vec<String> {
    let b = match read(func::HEADER_NAMES, |p, l| unsafe { sys::header_names(kind, p, l) }) {
        Ok(b) => b,
        Err(_) => return Vec::new(),
    };
    // The host lists a name once per value: keep the first spelling.
    let mut out: Vec<String> = Vec::new();
    for name in split_list(&b) {
        if !out.iter().any(|seen| seen.eq_ignore_ascii_case(&name)) {
            out.push(name);
        }
    }
    out
}

fn header_write(func: &'static str, kind: i32, name: &str, value: &str) -> Result<()> {
    let n = len32(func, name.as_bytes())?;
    let v = len32(func, value.as_bytes())?;
    let rc = unsafe {
        if func == func::HEADER_ADD {
            sys::header_add(kind, name.as_ptr(), n, value.as_ptr(), v)
        } else {
            sys::header_set(kind, name.as_ptr(), n, value.as_ptr(), v)
        }
    };
    check(func, rc).map(drop)
}

fn header_remove(kind: i32, name: &str) -> Result<()> {
    let n = len32(func::HEADER_REMOVE, name.as_bytes())?;
    check(func::HEADER_REMOVE, unsafe { sys::header_remove(kind, name.as_ptr(), n) }).map(drop)
}

fn body(kind: i32) -> Result<Vec<u8>> {
    let mut first = [0u8; 512];
    let size = unsafe { sys::body_get(kind, 0, first.as_mut_ptr(), first.len() as i32) };
    if size < 0 {
        return Err(Error::new(func::BODY_GET, size as i32));
    }
    if size as usize <= first.len() {
        return Ok(first[..size as usize].to_vec());
    }
    if size > 1 << 30 {
        return Err(Error::new(func::BODY_GET, abi::TOO_LARGE));
    }
    crate::buffer::read_sized(func::BODY_GET, size as usize, |p, n| {
        let got = unsafe { sys::body_get(kind, 0, p, n) };
        if got > i32::MAX as i64 {
            i32::MAX
        } else {
            got as i32
        }
    })
}

fn body_range(kind: i32, offset: u64, buf: &mut [u8]) -> Result<(usize, u64)> {
    if offset > i64::MAX as u64 {
        return Err(Error::new(func::BODY_GET, abi::BAD_ARGUMENT));
    }
    let len = buf.len().min(i32::MAX as usize);
    let size = unsafe { sys::body_get(kind, offset as i64, buf.as_mut_ptr(), len as i32) };
    if size < 0 {
        return Err(Error::new(func::BODY_GET, size as i32));
    }
    let size = size as u64;
    let n = size.saturating_sub(offset).min(len as u64) as usize;
    Ok((n, size))
}

fn body_set(kind: i32, body: &[u8]) -> Result<()> {
    let n = len32(func::BODY_SET, body)?;
    check(func::BODY_SET, unsafe { sys::body_set(kind, body.as_ptr(), n) }).map(drop)
}

/// Finds `name` in a raw query (`a=1&b=2`) and returns its first value,
/// unescaped (`+` is a space, `%XX` a byte). A name written escaped matches
/// too. A value whose escapes are broken is returned as written.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    for pair in query.split('&') {
        let (k, v) = match pair.find('=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, ""),
        };
        if k != name && unescape(k).as_deref() != Some(name) {
            continue;
        }
        return Some(unescape(v).unwrap_or_else(|| v.to_string()));
    }
    None
}

/// Decodes `+` and `%XX`; `None` for a broken escape or bytes that are not
/// UTF-8.
pub fn unescape(s: &str) -> Option<String> {
    if !s.contains(|c| c == '%' || c == '+') {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = b.get(i + 1).and_then(|c| (*c as char).to_digit(16))?;
                let lo = b.get(i + 2).and_then(|c| (*c as char).to_digit(16))?;
                out.push((hi << 4 | lo) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params() {
        let q = "a=1&api%5Fkey=s%20e+cret&b&a=2&bad=%zz";
        assert_eq!(query_param(q, "a").as_deref(), Some("1"));
        assert_eq!(query_param(q, "api_key").as_deref(), Some("s e cret"));
        assert_eq!(query_param(q, "b").as_deref(), Some(""));
        assert_eq!(query_param(q, "bad").as_deref(), Some("%zz"));
        assert_eq!(query_param(q, "c"), None);
        assert_eq!(query_param("", "a"), None);
    }

    #[test]
    fn native_stubs_refuse() {
        let req = Request::new();
        assert_eq!(req.method(), "");
        assert!(req.header("x").is_none());
        assert!(req.set_header("x", "y").unwrap_err().is_not_allowed());
        assert!(req.send_response(99, b"").unwrap_err().is_bad_argument());
        assert!(req.send_response(204, b"x").unwrap_err().is_bad_argument());
        assert!(req.send_response(200, b"x").unwrap_err().is_not_allowed());
        assert_eq!(Response::new().status(), 0);
    }
}
