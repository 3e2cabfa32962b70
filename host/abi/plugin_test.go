package abi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestConfigGet(t *testing.T) {
	for _, phase := range []Phase{PhaseInit, PhaseRequest, PhaseResponse} {
		h := newHarness(t, phase)
		if r, got := h.get("config_get", 64); r != 9 || string(got) != `{"k":"v"}` {
			t.Fatalf("config_get = %d %q", r, got)
		}
		if r, got := h.get("config_get", 3); r != 9 || string(got) != `{"k` {
			t.Fatalf("short config_get = %d %q", r, got)
		}
		h.c.Env.Config = nil
		if r, got := h.get("config_get", 64); r != 2 || string(got) != "{}" {
			t.Fatalf("no config = %d %q", r, got)
		}
	}
}

// logLines decodes the JSON lines a harness logged.
func logLines(t *testing.T, h *harness) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(h.logs.String()), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLog(t *testing.T) {
	h := newHarness(t, PhaseInit) // any hook
	levels := []struct {
		level int32
		want  string
	}{{LogDebug, "DEBUG"}, {LogInfo, "INFO"}, {LogWarn, "WARN"}, {LogError, "ERROR"}}
	for _, l := range levels {
		p, n := h.put("msg " + l.want)
		if r := h.call32("log", i32arg(l.level), p, n); r != 0 {
			t.Fatalf("log(%d) = %d", l.level, r)
		}
	}
	for _, bad := range []int32{-1, 4, 100} {
		p, n := h.put("x")
		if r := h.call32("log", i32arg(bad), p, n); r != ErrBadArgument {
			t.Fatalf("log(%d) = %d", bad, r)
		}
	}
	long := strings.Repeat("x", MaxLogMessage+100)
	p, n := h.put(long)
	h.call32("log", LogInfo, p, n)
	if n := strings.Count(h.logs.String(), `"plugin":`); n != 5 {
		t.Errorf("%d plugin keys in 5 lines: a key is repeated\n%s", n, h.logs)
	}
	lines := logLines(t, h)
	if len(lines) != 5 {
		t.Fatalf("%d lines logged, want 5: %s", len(lines), h.logs)
	}
	for i, l := range levels {
		m := lines[i]
		if m["level"] != l.want || m["msg"] != "msg "+l.want || m["plugin"] != "p1" || m["route"] != "r1" {
			t.Errorf("line %d = %v", i, m)
		}
	}
	if got := lines[4]["msg"].(string); len(got) != MaxLogMessage {
		t.Errorf("long message kept %d bytes, want %d", len(got), MaxLogMessage)
	}
}

func TestLogRateLimited(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	var sink bytes.Buffer
	rl := NewRateLimitedLogs(slog.New(slog.NewTextHandler(&sink, nil)), "p1", 1, 3)
	now := time.Unix(1000, 0)
	rl.now = func() time.Time { return now }
	rl.last, rl.summary = now, now
	h.c.Env.LogRate = rl
	logN := func(n int) {
		for range n {
			p, l := h.put("line")
			if r := h.call32("log", LogInfo, p, l); r != 0 {
				t.Fatalf("log = %d", r)
			}
		}
	}
	logN(10)
	if got := len(logLines(t, h)); got != 3 {
		t.Fatalf("%d lines written, want the burst of 3", got)
	}
	if rl.Dropped() != 7 {
		t.Fatalf("dropped %d, want 7", rl.Dropped())
	}
	if sink.Len() != 0 {
		t.Fatalf("summary before its interval: %s", sink.String())
	}
	// Two seconds refill two tokens.
	now = now.Add(2 * time.Second)
	logN(3)
	if got := len(logLines(t, h)); got != 5 {
		t.Fatalf("%d lines after refill, want 5", got)
	}
	// Past the summary interval, the next line reports the drops.
	now = now.Add(DefaultLogSummaryEvery)
	logN(1)
	if !strings.Contains(sink.String(), `msg="8 plugin log lines dropped" plugin=p1 dropped=8`) {
		t.Fatalf("summary = %q", sink.String())
	}
	sink.Reset()
	// A disabled level costs no budget.
	h.c.Env.Log = slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
	before := rl.Dropped()
	logN(20)
	if rl.Dropped() != before {
		t.Fatal("lines below the logger's level consumed the budget")
	}
	// Flush reports what is pending; a nil limiter allows everything.
	h.c.Env.Log = slog.New(slog.NewJSONHandler(h.logs, nil))
	rl.tokens = 0
	logN(2)
	rl.Flush()
	if !strings.Contains(sink.String(), `"2 plugin log lines dropped"`) {
		t.Fatalf("flush = %q", sink.String())
	}
	var none *RateLimitedLogs
	if !none.Allow() || none.Dropped() != 0 {
		t.Fatal("nil limiter refuses")
	}
	none.Flush()
}

func TestSetError(t *testing.T) {
	h := newHarness(t, PhaseInit)
	p, n := h.put("missing \"keys\"")
	if r := h.call32("set_error", p, n); r != 0 || string(h.c.ErrMsg) != `missing "keys"` {
		t.Fatalf("set_error = %d %q", r, h.c.ErrMsg)
	}
	p, n = h.put(strings.Repeat("e", 3000))
	h.call32("set_error", p, n)
	if len(h.c.ErrMsg) != MaxErrMsg {
		t.Fatalf("kept %d bytes, want %d", len(h.c.ErrMsg), MaxErrMsg)
	}
	h.c.Reset()
	if len(h.c.ErrMsg) != 0 {
		t.Fatal("Reset kept the error")
	}
}

func TestTimeAndRandom(t *testing.T) {
	h := newHarness(t, PhaseInit)
	before := time.Now().UnixNano()
	got := int64(h.call("time_now"))
	after := time.Now().UnixNano()
	if got < before || got > after {
		t.Fatalf("time_now %d not within [%d, %d]", got, before, after)
	}
	buf := h.alloc(33)
	if r := h.call32("random_get", buf, 32); r != 32 {
		t.Fatalf("random_get = %d", r)
	}
	b := h.bytes(buf, 33)
	if bytes.Count(b[:32], []byte{0xAA}) == 32 || b[32] != 0xAA {
		t.Fatalf("random_get wrote %x", b)
	}
	if r := h.call32("random_get", 0, 0); r != 0 {
		t.Fatalf("random_get(len 0) = %d", r)
	}
}
