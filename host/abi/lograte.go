package abi

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of a plugin's log budget.
const (
	DefaultLogRate         = 20               // lines per second, sustained
	DefaultLogBurst        = 50               // lines at once
	DefaultLogSummaryEvery = 10 * time.Second // at most one "dropped" summary per interval
)

// RateLimitedLogs is the log budget of one plugin: a token bucket shared by
// the log function and the plugin's stdout/stderr, so that a plugin logging
// in a loop cannot flood the gateway log. Lines over the budget are dropped
// and counted; the count is reported as one "N plugin log lines dropped"
// line at most every DefaultLogSummaryEvery, when the plugin next logs, or
// on Flush. A nil *RateLimitedLogs allows everything.
type RateLimitedLogs struct {
	log   *slog.Logger
	what  string           // what the summary counts: "plugin log lines"
	attrs []slog.Attr      // on the summary line: the plugin's name
	rate  float64          // tokens per second
	burst float64          // bucket size
	every time.Duration    // summary interval
	now   func() time.Time // the clock, replaced by tests

	total atomic.Uint64 // lines dropped since creation

	mu      sync.Mutex
	tokens  float64
	last    time.Time // last refill
	dropped uint64    // lines dropped since the last summary
	summary time.Time // last summary
}

// NewRateLimitedLogs returns a budget of perSecond lines a second with
// bursts of burst lines, reporting drops to log (slog.Default if nil) tagged
// with plugin. Non-positive values take the defaults.
func NewRateLimitedLogs(log *slog.Logger, plugin string, perSecond float64, burst int) *RateLimitedLogs {
	return NewLogBudget(log, "plugin log lines", perSecond, burst, slog.String("plugin", plugin))
}

// NewLogBudget is NewRateLimitedLogs for lines of any kind: the summary
// reads "N <what> dropped", with attrs.
func NewLogBudget(log *slog.Logger, what string, perSecond float64, burst int, attrs ...slog.Attr) *RateLimitedLogs {
	if log == nil {
		log = slog.Default()
	}
	if perSecond <= 0 {
		perSecond = DefaultLogRate
	}
	if burst <= 0 {
		burst = DefaultLogBurst
	}
	now := time.Now()
	return &RateLimitedLogs{
		log: log, what: what, attrs: attrs, rate: perSecond, burst: float64(burst),
		every: DefaultLogSummaryEvery, now: time.Now,
		tokens: float64(burst), last: now, summary: now,
	}
}

// Allow takes one line from the budget and reports whether the line may be
// written; a refused line is counted as dropped.
func (r *RateLimitedLogs) Allow() bool {
	if r == nil {
		return true
	}
	now := r.now()
	r.mu.Lock()
	if d := now.Sub(r.last); d > 0 {
		r.tokens = min(r.burst, r.tokens+d.Seconds()*r.rate)
		r.last = now
	}
	ok := r.tokens >= 1
	if ok {
		r.tokens--
	} else {
		r.dropped++
		r.total.Add(1)
	}
	var report uint64
	if r.dropped > 0 && now.Sub(r.summary) >= r.every {
		report, r.dropped, r.summary = r.dropped, 0, now
	}
	r.mu.Unlock()
	r.report(report)
	return ok
}

// Flush reports the lines dropped since the last summary, if any; the
// runtime calls it when it retires the plugin so no count is lost.
func (r *RateLimitedLogs) Flush() {
	if r == nil {
		return
	}
	r.mu.Lock()
	report := r.dropped
	r.dropped, r.summary = 0, r.now()
	r.mu.Unlock()
	r.report(report)
}

// Dropped returns the number of lines dropped since creation.
func (r *RateLimitedLogs) Dropped() uint64 {
	if r == nil {
		return 0
	}
	return r.total.Load()
}

func (r *RateLimitedLogs) report(n uint64) {
	if n == 0 {
		return
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn,
		strconv.FormatUint(n, 10)+" "+r.what+" dropped",
		append(r.attrs[:len(r.attrs):len(r.attrs)], slog.Uint64("dropped", n))...)
}
