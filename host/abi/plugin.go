// The host functions a plugin may call from any hook: its config, logging,
// its error message, time and randomness (sdk/ABI.md section 4).

package abi

import (
	"crypto/rand"
	"log/slog"
	"time"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

var emptyConfig = []byte("{}")

// configGet copies the binding's config; a binding without one reads "{}"
// (sdk/ABI.md section 5).
func configGet(c *Call, stack []uint64) {
	dst := c.guest(sdkabi.FuncConfigGet, stack[0], stack[1])
	cfg := emptyConfig
	if c.Env != nil && len(c.Env.Config) > 0 {
		cfg = c.Env.Config
	}
	ret32(stack, writeOut(dst, cfg))
}

// slogLevel maps the ABI's log levels to slog's.
var slogLevel = [...]slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

// logFn writes a guest message to the gateway log (Call.LogMessage: tagged,
// rate-limited, cut at MaxLogMessage), as http-wasm's log does.
func logFn(c *Call, stack []uint64) {
	level := i32(stack[0])
	msg := c.guest(sdkabi.FuncLog, stack[1], stack[2])
	if level < LogDebug || level > LogError {
		ret32(stack, ErrBadArgument)
		return
	}
	c.LogMessage(slogLevel[level], msg)
	ret32(stack, 0)
}

// setError keeps the first MaxErrMsg bytes of why the hook fails; a later
// call replaces an earlier one.
func setError(c *Call, stack []uint64) {
	msg := c.guest(sdkabi.FuncSetError, stack[0], stack[1])
	if len(msg) > MaxErrMsg {
		msg = msg[:MaxErrMsg]
	}
	c.ErrMsg = append(c.ErrMsg[:0], msg...)
	ret32(stack, 0)
}

func timeNow(_ *Call, stack []uint64) { ret64(stack, time.Now().UnixNano()) }

// randomGet fills the guest buffer straight from crypto/rand, which never
// fails on supported platforms (it aborts the process instead).
func randomGet(c *Call, stack []uint64) {
	dst := c.guest(sdkabi.FuncRandomGet, stack[0], stack[1])
	_, _ = rand.Read(dst)
	ret32(stack, size(len(dst)))
}
