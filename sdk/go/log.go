package wasmgate

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// Level is a log level.
type Level int32

// Log levels (sdk/ABI.md, function log).
const (
	LevelDebug Level = abi.LogDebug
	LevelInfo  Level = abi.LogInfo
	LevelWarn  Level = abi.LogWarn
	LevelError Level = abi.LogError
)

// String names the level.
func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return fmt.Sprintf("Level(%d)", int32(l))
}

// Log writes msg to the gateway log, tagged with the plugin and route. The
// gateway rate-limits each plugin's lines and counts what it drops, so a
// chatty plugin cannot flood the log; logging is best effort and reports no
// error.
func Log(level Level, msg string) { hostLog(int32(level), msg) }

// Logf is Log with fmt.Sprintf formatting.
func Logf(level Level, format string, args ...any) { Log(level, fmt.Sprintf(format, args...)) }

// SetError records why the current hook is failing. The message reaches the
// gateway log and, in Init, the config error shown to the operator. Fail
// and a non-nil error from Init or OnResponse call it for you. Messages are
// cut to 1 KiB (on a character boundary), which is what the host keeps.
func SetError(msg string) { hostSetError(truncateUTF8(msg, abi.MaxErrorMessage)) }

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Now is the host's wall-clock time.
func Now() time.Time { return time.Unix(0, hostTimeNow()) }

// FillRandom fills b with cryptographically secure random bytes.
func FillRandom(b []byte) error {
	for len(b) > 0 {
		chunk := b[:min(len(b), math.MaxInt32)]
		if r := hostRandomGet(chunk); r < 0 {
			return codeErr(abi.FuncRandomGet, r)
		}
		b = b[len(chunk):]
	}
	return nil
}
