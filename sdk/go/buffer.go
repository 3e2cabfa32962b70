package wasmgate

import "github.com/wasmgate/wasmgate/sdk/abi"

// Host functions that return data follow one convention (sdk/ABI.md section
// 3): the guest hands a buffer, the host writes what fits and returns the
// full size, and the guest retries with a buffer at least that large. The
// SDK reads into one package-level scratch buffer that grows to the largest
// item seen and is reused, so steady-state reads allocate only the string or
// slice handed to the plugin.
//
// An instance runs one hook at a time and the Go wasm runtime is single
// threaded, so the scratch buffer needs no lock; a plugin that starts its own
// goroutines must not call the SDK from two of them at once.

const (
	// scratchInitial is the scratch buffer's first size: most headers,
	// paths and config documents fit, so one host call is the common case.
	scratchInitial = 2 << 10
	// maxAttempts bounds the grow-and-retry loop. Data may change between
	// two calls (another instance rewriting a KV value); a value that keeps
	// growing is reported as ErrUnavailable rather than chased for ever.
	maxAttempts = 4
	// maxRead is the largest item the SDK reads in one piece (1 GiB): wasm32
	// memory is 4 GiB at most, and a host answering more is broken.
	maxRead = 1 << 30
)

var scratch []byte

// readScratch calls call with the scratch buffer until the data fits and
// returns a view of the scratch buffer, valid until the next read. fn names
// the host function in errors.
func readScratch(fn string, call func(buf []byte) int32) ([]byte, error) {
	if scratch == nil {
		scratch = make([]byte, scratchInitial)
	}
	for range maxAttempts {
		n := call(scratch)
		if n < 0 {
			return nil, codeErr(fn, n)
		}
		if int(n) <= len(scratch) {
			return scratch[:n], nil
		}
		if n > maxRead {
			return nil, &Error{Func: fn, Code: abi.TooLarge}
		}
		// Grow at least geometrically so that a slowly growing item does
		// not cost a reallocation per call.
		scratch = make([]byte, max(int(n), 2*len(scratch)))
	}
	return nil, &Error{Func: fn, Code: abi.Unavailable}
}

// readOwned is readScratch for data handed to the plugin to keep (config,
// KV values): it returns a slice of its own. A small item is copied out of
// the scratch buffer; a large one is read straight into an exact-size
// allocation so the scratch buffer does not grow to the largest value ever
// read.
func readOwned(fn string, call func(buf []byte) int32) ([]byte, error) {
	if scratch == nil {
		scratch = make([]byte, scratchInitial)
	}
	buf, inScratch := scratch, true
	for range maxAttempts {
		n := call(buf)
		if n < 0 {
			return nil, codeErr(fn, n)
		}
		if int(n) <= len(buf) {
			if inScratch {
				return append([]byte(nil), buf[:n]...), nil
			}
			return buf[:n:n], nil
		}
		if n > maxRead {
			return nil, &Error{Func: fn, Code: abi.TooLarge}
		}
		buf, inScratch = make([]byte, n), false
	}
	return nil, &Error{Func: fn, Code: abi.Unavailable}
}

// readString is readScratch returning a copy as a string.
func readString(fn string, call func(buf []byte) int32) (string, error) {
	b, err := readScratch(fn, call)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// splitList splits a host list (items each followed by one NUL byte) into
// strings. A missing final NUL is tolerated: the last item ends the list.
func splitList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	n := 0
	for _, c := range b {
		if c == 0 {
			n++
		}
	}
	if b[len(b)-1] != 0 {
		n++
	}
	out := make([]string, 0, n)
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	if start < len(b) {
		out = append(out, string(b[start:]))
	}
	return out
}
