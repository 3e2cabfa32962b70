package wasm

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/wasmgate/wasmgate/host/abi"
)

// logSink is where a binding's guests write stdout and stderr, and where
// the runtime logs their failures: tagged with plugin and route by the
// logger, and rate-limited by the plugin's log budget (abi.RateLimitedLogs,
// shared with the log host function), so a guest printing or failing in a
// loop cannot flood the gateway log.
type logSink struct {
	log  *slog.Logger
	rate *abi.RateLimitedLogs
	own  bool // rate was made for this binding: flush it on close
}

// Longest guest output line kept; the rest of a longer line is cut.
const maxGuestLine = 4096

func newLogSink(log *slog.Logger, env *abi.Env) *logSink {
	s := &logSink{log: log, rate: env.LogRate}
	if s.rate == nil {
		s.rate, s.own = abi.NewRateLimitedLogs(log, env.Plugin, 0, 0), true
	}
	return s
}

func (s *logSink) emit(level slog.Level, msg string, attrs ...slog.Attr) {
	if !s.rate.Allow() {
		return
	}
	s.log.LogAttrs(context.Background(), level, msg, attrs...)
}

func (s *logSink) close() {
	if s.own {
		s.rate.Flush()
	}
}

// guestLog is one instance's fd 1 or 2: it cuts what the guest writes into
// lines (bounded) and logs each.
type guestLog struct {
	sink   *logSink
	stream string
	level  slog.Level
	buf    []byte
}

// Write implements io.Writer; it never fails, so a guest's fd_write does
// not see errors for lines the limiter drops. A line longer than
// maxGuestLine is cut there; the rest, up to its newline, is dropped.
func (g *guestLog) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if room := maxGuestLine - len(g.buf); room > 0 {
			g.buf = append(g.buf, chunk[:min(len(chunk), room)]...)
		}
		if i < 0 {
			break
		}
		g.flush()
		p = p[i+1:]
	}
	return n, nil
}

// flush logs the buffered line, if any.
func (g *guestLog) flush() {
	if len(g.buf) == 0 || g.sink == nil {
		g.buf = g.buf[:0]
		return
	}
	g.sink.emit(g.level, "plugin output", slog.String("stream", g.stream), slog.String("line", string(g.buf)))
	g.buf = g.buf[:0]
}
