//! The buffer convention (sdk/ABI.md section 3): the guest hands a buffer,
//! the host writes what fits and returns the full size, and the guest
//! retries with a buffer at least that large.

use crate::abi;
use crate::error::{Error, Result};

/// The first attempt reads into this many bytes on the stack: most headers,
/// paths and small values fit, so one host call is the common case.
const STACK: usize = 512;
/// Data may change between two calls (another instance rewriting a KV
/// value): a value that keeps growing is `UNAVAILABLE` rather than chased.
const MAX_ATTEMPTS: usize = 4;
/// The largest item read in one piece: wasm32 memory is 4 GiB at most.
const MAX_READ: usize = 1 << 30;

/// Reads with `call(ptr, len)` until the data fits and returns it.
pub(crate) fn read(func: &'static str, mut call: impl FnMut(*mut u8, i32) -> i32) -> Result<Vec<u8>> {
    let mut stack = [0u8; STACK];
    let n = call(stack.as_mut_ptr(), STACK as i32);
    if n < 0 {
        return Err(Error::new(func, n));
    }
    if n as usize <= STACK {
        return Ok(stack[..n as usize].to_vec());
    }
    read_sized(func, n as usize, call)
}

/// Reads with a first buffer of `size` bytes (a size the host announced).
pub(crate) fn read_sized(
    func: &'static str,
    mut size: usize,
    mut call: impl FnMut(*mut u8, i32) -> i32,
) -> Result<Vec<u8>> {
    for _ in 0..MAX_ATTEMPTS {
        if size > MAX_READ {
            return Err(Error::new(func, abi::TOO_LARGE));
        }
        let mut buf = vec![0u8; size];
        let n = call(buf.as_mut_ptr(), size as i32);
        if n < 0 {
            return Err(Error::new(func, n));
        }
        if n as usize <= size {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        size = n as usize;
    }
    Err(Error::new(func, abi::UNAVAILABLE))
}

/// Bytes as a `String`; bytes that are not UTF-8 (possible in header values)
/// are replaced with U+FFFD.
pub(crate) fn string(b: Vec<u8>) -> String {
    match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Splits a host list (items each followed by one NUL byte). A missing final
/// NUL is tolerated: the last item ends the list.
pub(crate) fn split_list(b: &[u8]) -> Vec<String> {
    if b.is_empty() {
        return Vec::new();
    }
    let b = if b[b.len() - 1] == 0 { &b[..b.len() - 1] } else { b };
    b.split(|&c| c == 0).map(|s| string(s.to_vec())).collect()
}

/// A length for the ABI: slices longer than `i32::MAX` cannot be passed.
pub(crate) fn len32(func: &'static str, b: &[u8]) -> Result<i32> {
    if b.len() > i32::MAX as usize {
        return Err(Error::new(func, abi::TOO_LARGE));
    }
    Ok(b.len() as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_and_retry() {
        let data = vec![7u8; 2000];
        let mut calls = 0;
        let got = read("x", |p, n| {
            calls += 1;
            let k = (n as usize).min(data.len());
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), p, k) };
            data.len() as i32
        })
        .unwrap();
        assert_eq!(got, data);
        assert_eq!(calls, 2);
        assert_eq!(read("x", |_, _| -1).unwrap_err(), Error::new("x", abi::NOT_FOUND));
        let mut size = 1000;
        let e = read("x", |_, _| {
            size += 1000;
            size
        })
        .unwrap_err();
        assert!(e.is_unavailable());
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(b"a\0bb\0"), vec!["a", "bb"]);
        assert_eq!(split_list(b"a\0bb"), vec!["a", "bb"]);
        assert_eq!(split_list(b"\0"), vec![""]);
        assert!(split_list(b"").is_empty());
    }
}
