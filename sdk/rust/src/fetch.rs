use std::fmt;
use std::time::Duration;

use crate::abi::{self, func};
use crate::buffer::len32;
use crate::error::{Error, Result};
use crate::sys;

/// One request of a [`fetch`] batch. Build it with [`OutboundRequest::get`]
/// or [`OutboundRequest::new`] and the setters:
///
/// ```ignore
/// let reqs = [
///     OutboundRequest::get("upstream://users/v1/me"),
///     OutboundRequest::new("POST", "http://127.0.0.1:9000/audit")
///         .header("Content-Type", "application/json")
///         .body(br#"{"event":"login"}"#.to_vec())
///         .timeout(Duration::from_millis(200)),
/// ];
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboundRequest {
    /// The method; empty means GET.
    pub method: String,
    /// `upstream://NAME/path?query` (load-balanced over the named upstream)
    /// or `http://host:port/path?query`. Only destinations the route allows
    /// for the plugin (`outbound.upstreams`, `outbound.hosts`) are called;
    /// others come back with status [`abi::STATUS_NOT_ALLOWED`].
    pub url: String,
    /// Header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Bounds this request; zero means the plugin's call deadline.
    /// Sub-millisecond timeouts round up to 1 ms.
    pub timeout: Duration,
}

impl OutboundRequest {
    /// A request with this method and URL.
    pub fn new(method: &str, url: &str) -> OutboundRequest {
        OutboundRequest { method: method.to_string(), url: url.to_string(), ..Default::default() }
    }

    /// A GET of `url`.
    pub fn get(url: &str) -> OutboundRequest {
        OutboundRequest::new("GET", url)
    }

    /// Adds a header field.
    pub fn header(mut self, name: &str, value: &str) -> OutboundRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> OutboundRequest {
        self.body = body;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> OutboundRequest {
        self.timeout = timeout;
        self
    }
}

/// The answer to one [`OutboundRequest`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutboundResult {
    /// The HTTP status, or a negative value when there is no HTTP answer:
    /// [`OutboundResult::error`] says which.
    pub status: i32,
    /// How long the request took.
    pub duration: Duration,
    /// The response's header fields, in order.
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: Vec<u8>,
}

/// Why an outbound request got no HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboundError {
    /// The request's timeout or the hook's deadline passed.
    Timeout,
    /// Connecting or talking to the destination failed.
    Network,
    /// The destination is not allowed for the route.
    NotAllowed,
    /// Any other failure (e.g. a response over its size limit), with the
    /// status the host gave.
    Other(i32),
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutboundError::Timeout => f.write_str("wasmgate: outbound request timed out"),
            OutboundError::Network => f.write_str("wasmgate: outbound connect or network error"),
            OutboundError::NotAllowed => f.write_str("wasmgate.http_batch: not allowed"),
            OutboundError::Other(s) if *s == abi::STATUS_OTHER => f.write_str("wasmgate: outbound request failed"),
            OutboundError::Other(s) => write!(f, "wasmgate: outbound request failed (status {s})"),
        }
    }
}

impl std::error::Error for OutboundError {}

impl OutboundResult {
    /// `None` when the request got an HTTP answer (of any status), else why
    /// not.
    pub fn error(&self) -> Option<OutboundError> {
        match self.status {
            s if s >= 0 => None,
            abi::STATUS_TIMEOUT => Some(OutboundError::Timeout),
            abi::STATUS_NETWORK => Some(OutboundError::Network),
            abi::STATUS_NOT_ALLOWED => Some(OutboundError::NotAllowed),
            s => Some(OutboundError::Other(s)),
        }
    }

    /// The first value of the response header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a batch as a whole failed before the host ran it.
fn batch_err(code: i32) -> Error {
    Error::new(func::HTTP_BATCH, code)
}

/// Runs the requests in parallel on the host and returns their results in
/// the same order, once all have finished or timed out. The hook waits
/// meanwhile; the batch's wall time is bounded by the longest timeout and by
/// the hook's deadline. A per-request failure is in its result
/// ([`OutboundResult::error`]); the error is for the batch as a whole:
/// `BAD_ARGUMENT` (malformed: an empty URL, a method that is not a token, a
/// bad header), `TOO_LARGE` (over 64 requests or 16 MiB), `NOT_ALLOWED`
/// (outside `on_request`/`on_response`), `UNAVAILABLE`.
pub fn fetch(reqs: &[OutboundRequest]) -> Result<Vec<OutboundResult>> {
    if reqs.is_empty() {
        return Ok(Vec::new());
    }
    if reqs.len() > abi::MAX_BATCH {
        return Err(batch_err(abi::TOO_LARGE));
    }
    let mut enc = Vec::new();
    batch::append_count(&mut enc, reqs.len());
    for r in reqs {
        if r.url.is_empty() {
            return Err(batch_err(abi::BAD_ARGUMENT));
        }
        let method = if r.method.is_empty() { "GET" } else { r.method.as_str() };
        batch::append_request(
            &mut enc,
            timeout_ms(r.timeout),
            method.as_bytes(),
            r.url.as_bytes(),
            &r.headers,
            &r.body,
        );
    }
    if enc.len() > abi::MAX_BATCH_BYTES {
        return Err(batch_err(abi::TOO_LARGE));
    }
    let n = len32(func::HTTP_BATCH, &enc)?;
    let size = unsafe { sys::http_batch(enc.as_ptr(), n) };
    if size < 0 {
        return Err(batch_err(size));
    }
    drop(enc);
    let out = crate::buffer::read_sized(func::HTTP_BATCH_RESULT, size as usize, |p, n| unsafe {
        sys::http_batch_result(p, n)
    })?;
    let results = batch::decode_results(&out).map_err(|_| Error::new(func::HTTP_BATCH_RESULT, abi::BAD_ARGUMENT))?;
    if results.len() != reqs.len() {
        return Err(Error::new(func::HTTP_BATCH_RESULT, abi::BAD_ARGUMENT));
    }
    Ok(results)
}

/// A timeout in whole milliseconds, rounded up (so that a short timeout is
/// never 0, which means the call deadline), saturating at `u32::MAX`.
fn timeout_ms(d: Duration) -> u32 {
    let ms = d.as_millis() + u128::from(d.subsec_nanos() % 1_000_000 != 0);
    ms.min(u32::MAX as u128) as u32
}

/// The `http_batch` and `http_batch_result` encodings (sdk/ABI.md section
/// 4, "Outbound HTTP"): a count, then each request or result; every integer
/// a little-endian `u32` (a status an `i32` in the same four bytes), every
/// byte string its length, then its bytes. [`fetch`] uses them; they are
/// public for guests that build or check encodings themselves.
pub mod batch {
    use std::time::Duration;

    use super::OutboundResult;

    /// Appends the count that starts an encoding of `n` requests or results.
    pub fn append_count(dst: &mut Vec<u8>, n: usize) {
        put_u32(dst, n as u32);
    }

    /// Appends one request.
    pub fn append_request<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        dst: &mut Vec<u8>,
        timeout_ms: u32,
        method: &[u8],
        url: &[u8],
        headers: &[(N, V)],
        body: &[u8],
    ) {
        put_u32(dst, timeout_ms);
        put_bytes(dst, method);
        put_bytes(dst, url);
        put_headers(dst, headers);
        put_bytes(dst, body);
    }

    /// Appends one result (what a host writes; for tests and fakes).
    pub fn append_result<N: AsRef<[u8]>, V: AsRef<[u8]>>(
        dst: &mut Vec<u8>,
        status: i32,
        duration_us: u32,
        headers: &[(N, V)],
        body: &[u8],
    ) {
        put_u32(dst, status as u32);
        put_u32(dst, duration_us);
        put_headers(dst, headers);
        put_bytes(dst, body);
    }

    fn put_u32(dst: &mut Vec<u8>, v: u32) {
        dst.extend_from_slice(&v.to_le_bytes());
    }

    fn put_bytes(dst: &mut Vec<u8>, b: &[u8]) {
        put_u32(dst, b.len() as u32);
        dst.extend_from_slice(b);
    }

    fn put_headers<N: AsRef<[u8]>, V: AsRef<[u8]>>(dst: &mut Vec<u8>, headers: &[(N, V)]) {
        put_u32(dst, headers.len() as u32);
        for (n, v) in headers {
            put_bytes(dst, n.as_ref());
            put_bytes(dst, v.as_ref());
        }
    }

    /// A results encoding that does not parse: a length past the end, a
    /// count no input could hold, or bytes left over.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Malformed;

    struct Reader<'a> {
        b: &'a [u8],
    }

    impl<'a> Reader<'a> {
        fn u32(&mut self) -> Result<u32, Malformed> {
            if self.b.len() < 4 {
                return Err(Malformed);
            }
            let v = u32::from_le_bytes([self.b[0], self.b[1], self.b[2], self.b[3]]);
            self.b = &self.b[4..];
            Ok(v)
        }

        fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
            let n = self.u32()? as usize;
            if n > self.b.len() {
                return Err(Malformed);
            }
            let (v, rest) = self.b.split_at(n);
            self.b = rest;
            Ok(v)
        }

        /// A count of items of at least `min` bytes each.
        fn count(&mut self, min: usize) -> Result<usize, Malformed> {
            let n = self.u32()? as usize;
            if n.checked_mul(min).map_or(true, |need| need > self.b.len()) {
                return Err(Malformed);
            }
            Ok(n)
        }

        fn headers(&mut self) -> Result<Vec<(String, String)>, Malformed> {
            let n = self.count(8)?;
            let mut hs = Vec::with_capacity(n);
            for _ in 0..n {
                let name = text(self.bytes()?);
                let value = text(self.bytes()?);
                hs.push((name, value));
            }
            Ok(hs)
        }
    }

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// Decodes the results of an `http_batch` (what `http_batch_result`
    /// copies).
    pub fn decode_results(b: &[u8]) -> Result<Vec<OutboundResult>, Malformed> {
        let mut r = Reader { b };
        let n = r.count(16)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let status = r.u32()? as i32;
            let duration = Duration::from_micros(u64::from(r.u32()?));
            let headers = r.headers()?;
            let body = r.bytes()?.to_vec();
            out.push(OutboundResult { status, duration, headers, body });
        }
        if !r.b.is_empty() {
            return Err(Malformed);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_sdk_abi() {
        // The bytes sdk/abi.EncodeBatch writes for the same request (Go:
        // abi.EncodeBatch(nil, []abi.BatchRequest{{TimeoutMS: 5, Method: "GET",
        // URL: "u", Headers: []abi.Header{{"A", "b"}}, Body: "x"}})).
        let mut enc = Vec::new();
        batch::append_count(&mut enc, 1);
        batch::append_request(&mut enc, 5, b"GET", b"u", &[("A", "b")], b"x");
        let want: Vec<u8> = [
            &[1u8, 0, 0, 0][..],
            &[5, 0, 0, 0],
            &[3, 0, 0, 0],
            b"GET",
            &[1, 0, 0, 0],
            b"u",
            &[1, 0, 0, 0],
            &[1, 0, 0, 0],
            b"A",
            &[1, 0, 0, 0],
            b"b",
            &[1, 0, 0, 0],
            b"x",
        ]
        .concat();
        assert_eq!(enc, want);
    }

    #[test]
    fn results_round_trip() {
        let mut enc = Vec::new();
        batch::append_count(&mut enc, 2);
        batch::append_result(&mut enc, 200, 1500, &[("Content-Type", "text/plain")], b"hi");
        batch::append_result::<&str, &str>(&mut enc, abi::STATUS_TIMEOUT, 7, &[], b"");
        let got = batch::decode_results(&enc).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].status, 200);
        assert_eq!(got[0].duration, Duration::from_micros(1500));
        assert_eq!(got[0].header("content-type"), Some("text/plain"));
        assert_eq!(got[0].body, b"hi");
        assert_eq!(got[0].error(), None);
        assert_eq!(got[1].error(), Some(OutboundError::Timeout));
        assert_eq!(got[1].error().unwrap().to_string(), "wasmgate: outbound request timed out");
        // Truncated, padded and impossible counts.
        assert!(batch::decode_results(&enc[..enc.len() - 1]).is_err());
        let mut long = enc.clone();
        long.push(0);
        assert!(batch::decode_results(&long).is_err());
        assert!(batch::decode_results(&[255, 255, 255, 255]).is_err());
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(timeout_ms(Duration::ZERO), 0);
        assert_eq!(timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(timeout_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(timeout_ms(Duration::from_secs(u64::MAX)), u32::MAX);
    }

    #[test]
    fn batch_checks() {
        assert!(fetch(&[]).unwrap().is_empty());
        assert!(fetch(&[OutboundRequest::get("")]).unwrap_err().is_bad_argument());
        let many = vec![OutboundRequest::get("upstream://a/"); 65];
        assert!(fetch(&many).unwrap_err().is_too_large());
        assert!(fetch(&[OutboundRequest::get("upstream://a/")]).unwrap_err().is_not_allowed());
    }
}
