package wasm

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wasmgate/wasmgate/host/abi"
)

func TestBucketQuantile(t *testing.T) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h", Buckets: []float64{0.001, 0.01, 0.1}})
	for range 90 {
		h.Observe(0.0005) // first bucket
	}
	for range 10 {
		h.Observe(0.05) // third bucket
	}
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	p50, p99 := bucketQuantile(0.5, m.Histogram), bucketQuantile(0.99, m.Histogram)
	if p50 <= 0 || p50 > time.Millisecond {
		t.Errorf("p50 %v, want within the first bucket", p50)
	}
	if p99 <= 10*time.Millisecond || p99 > 100*time.Millisecond {
		t.Errorf("p99 %v, want within the third bucket", p99)
	}
	if q := bucketQuantile(0.5, &dto.Histogram{}); q != 0 {
		t.Errorf("empty histogram: %v", q)
	}
}

func TestGuestLogLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	g := guestLog{sink: newLogSink(log, &abi.Env{Plugin: "p"}), stream: "stdout"}
	_, _ = g.Write([]byte("one\ntw"))
	_, _ = g.Write([]byte("o\n" + strings.Repeat("x", maxGuestLine+10) + "\nlast"))
	g.flush()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		i := strings.Index(l, "line=")
		lines = append(lines, l[i+5:])
	}
	if len(lines) != 4 || lines[0] != "one" || lines[1] != "two" || lines[3] != "last" {
		t.Fatalf("lines %q", lines)
	}
	// A line over the limit is cut at it.
	if len(lines[2]) != maxGuestLine {
		t.Errorf("long line kept %d bytes, want %d", len(lines[2]), maxGuestLine)
	}
}

func TestPluginErrorText(t *testing.T) {
	for _, tt := range []struct {
		err  *PluginError
		want string
		is   error
	}{
		{&PluginError{Plugin: "jwt", Kind: KindInit, Msg: `missing "keys"`, Err: errRejected}, `plugin "jwt" rejected its config: missing "keys"`, nil},
		{&PluginError{Plugin: "jwt", Kind: KindInit, Msg: "on_init: trap"}, `plugin "jwt" failed to initialize: on_init: trap`, nil},
		{&PluginError{Plugin: "a", Kind: KindTimeout, Msg: "slow"}, `plugin "a": timeout: slow`, nil},
		{&PluginError{Plugin: "a", Kind: KindExhausted, Msg: "busy"}, `plugin "a": exhausted: busy`, ErrPoolExhausted},
		{&PluginError{Plugin: "a", Kind: KindQuarantined, Msg: "x"}, `plugin "a": quarantined: x`, ErrQuarantined},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %q want %q", got, tt.want)
		}
		if tt.is != nil && !errors.Is(tt.err, tt.is) {
			t.Errorf("%v is not %v", tt.err, tt.is)
		}
		if errors.Is(tt.err, ErrClosed) {
			t.Errorf("%v is ErrClosed", tt.err)
		}
	}
	if Kind(42).String() != "kind42" || KindBadReturn.String() != "bad_return" {
		t.Error("kind names")
	}
}
