use std::fmt;

use crate::abi;

/// The error of a host function that answered with a negative ABI code, or
/// of a check the SDK makes before calling it. It names the function:
/// `wasmgate.header_set: bad argument`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// The host function, e.g. `"header_set"` (see [`abi::func`]).
    pub func: &'static str,
    /// The ABI code, e.g. [`abi::BAD_ARGUMENT`].
    pub code: i32,
}

impl Error {
    /// An error of `func` with `code`.
    pub const fn new(func: &'static str, code: i32) -> Error {
        Error { func, code }
    }

    /// `NOT_FOUND`: no such header, key, metric, flag or rate limit.
    pub fn is_not_found(&self) -> bool {
        self.code == abi::NOT_FOUND
    }
    /// `BAD_ARGUMENT`: an argument is invalid.
    pub fn is_bad_argument(&self) -> bool {
        self.code == abi::BAD_ARGUMENT
    }
    /// `NOT_ALLOWED`: not in this hook, or not to this destination. Every
    /// host function answers it in a native (non-wasm) build.
    pub fn is_not_allowed(&self) -> bool {
        self.code == abi::NOT_ALLOWED
    }
    /// `TOO_LARGE`: over a limit.
    pub fn is_too_large(&self) -> bool {
        self.code == abi::TOO_LARGE
    }
    /// `UNAVAILABLE`: unavailable (also: data kept changing size while the
    /// SDK read it).
    pub fn is_unavailable(&self) -> bool {
        self.code == abi::UNAVAILABLE
    }
}

impl fmt::Display for Error {
    /// `wasmgate.header_set: bad argument`, or `error code N` for a code the
    /// ABI does not name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wasmgate.{}: ", self.func)?;
        let name = abi::code_name(self.code);
        if name.is_empty() {
            return write!(f, "error code {}", self.code);
        }
        for c in name.chars() {
            let c = if c == '_' { ' ' } else { c.to_ascii_lowercase() };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// A result of a host function.
pub type Result<T> = std::result::Result<T, Error>;

/// `Ok(code)` for a non-negative result of `func`, else its [`Error`].
pub(crate) fn check(func: &'static str, code: i32) -> Result<i32> {
    if code < 0 {
        Err(Error::new(func, code))
    } else {
        Ok(code)
    }
}

/// Why a hook failed: its message reaches the gateway log (and, from
/// `init`, the operator as the config error), then the route's failure
/// policy applies. Any error that displays converts into it, so a hook can
/// use `?` on host calls ([`Error`]), parsers and its own `String`s:
///
/// ```ignore
/// fn on_request(&mut self, req: &Request) -> Result<Action, HookError> {
///     req.set_header("X-Checked", "1")?;
///     let n: u32 = req.header("X-Count").unwrap_or_default().parse()?;
///     if n > 10 { return Err("too many".into()); }
///     Ok(Action::Continue)
/// }
/// ```
pub struct HookError(pub String);

impl HookError {
    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }

    /// Fails the hook with the message it already recorded itself with
    /// [`crate::set_error`] (or the raw [`crate::sys::set_error`]): the SDK
    /// records no message of its own, so that one stands, as it reached the
    /// host. It is the error with an empty message: any such error fails
    /// the hook this way (with no message at all when none was recorded).
    ///
    /// ```ignore
    /// wasmgate::set_error(&format!("refused by rule {rule}"));
    /// return Err(HookError::recorded());
    /// ```
    pub fn recorded() -> HookError {
        HookError(String::new())
    }
}

impl<E: fmt::Display> From<E> for HookError {
    fn from(e: E) -> HookError {
        HookError(e.to_string())
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookError({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display() {
        assert_eq!(Error::new("header_set", abi::BAD_ARGUMENT).to_string(), "wasmgate.header_set: bad argument");
        assert_eq!(Error::new("kv_get", -9).to_string(), "wasmgate.kv_get: error code -9");
        let e: HookError = Error::new("kv_get", abi::NOT_FOUND).into();
        assert_eq!(e.message(), "wasmgate.kv_get: not found");
        let e: HookError = "plain".into();
        assert_eq!(e.message(), "plain");
        assert_eq!(HookError::recorded().message(), "");
    }
}
