package wasmgate

import (
	"strconv"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// Error is the error of a host function that answered with a negative ABI
// code. Compare with errors.Is against ErrNotFound, ErrBadArgument,
// ErrNotAllowed, ErrTooLarge and ErrUnavailable: the sentinels match any
// Error with the same code, whichever function returned it.
type Error struct {
	// Func is the host function, e.g. "header_set"; empty in the sentinels.
	Func string
	// Code is the ABI return code, e.g. -2.
	Code int32
}

// The ABI's error codes as errors.
var (
	// ErrNotFound: no such header, key or metric (code -1).
	ErrNotFound error = &Error{Code: abi.NotFound}
	// ErrBadArgument: an argument is invalid, e.g. a header value with a
	// line break, a status outside 200–599 or a malformed batch (code -2).
	ErrBadArgument error = &Error{Code: abi.BadArgument}
	// ErrNotAllowed: the function is not allowed in this hook, an outbound
	// destination is not allowed for the route, or a body is set on a
	// response whose status has none (code -3). Outside a wasm host (a
	// native build) every host function fails with it.
	ErrNotAllowed error = &Error{Code: abi.NotAllowed}
	// ErrTooLarge: over a limit, e.g. a body over the route's limit or a KV
	// value over the store's budget (code -4).
	ErrTooLarge error = &Error{Code: abi.TooLarge}
	// ErrUnavailable: unavailable, e.g. SetCacheKey on a route without a
	// cache, or outbound concurrency exhausted (code -5); also returned when
	// data kept changing size while the SDK tried to read it.
	ErrUnavailable error = &Error{Code: abi.Unavailable}
)

// Error implements error: "wasmgate.header_set: bad argument".
func (e *Error) Error() string {
	msg := codeText(e.Code)
	if e.Func == "" {
		return "wasmgate: " + msg
	}
	return "wasmgate." + e.Func + ": " + msg
}

// Is makes errors.Is(err, ErrNotFound) true for every Error with code -1
// (and likewise for the other sentinels).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Func == "" && t.Code == e.Code
}

// codeText is the ABI's name of a code in words: "bad argument" for
// BAD_ARGUMENT. The names are upper-case ASCII and '_', lowered here by
// hand: strings.ToLower would link the Unicode case tables into every
// plugin.
func codeText(code int32) string {
	name := abi.CodeName(code)
	if name == "" {
		return "error code " + strconv.Itoa(int(code))
	}
	b := []byte(name)
	for i, c := range b {
		if c == '_' {
			b[i] = ' '
		} else {
			b[i] = c | 0x20
		}
	}
	return string(b)
}

// codeErr turns the result of host function fn into an error: nil for a
// non-negative result.
func codeErr(fn string, code int32) error {
	if code >= 0 {
		return nil
	}
	return &Error{Func: fn, Code: code}
}
