package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// H2loadResult is what one h2load run printed, with the latency
// percentiles computed from its per-request log (h2load itself prints only
// min, max, mean and deviation).
type H2loadResult struct {
	// Requests is the number of requests that succeeded ("N succeeded").
	Requests int64 `json:"requests"`
	// Seconds is the measured run time ("finished in T").
	Seconds        float64 `json:"seconds"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	Failed         int64   `json:"failed"`
	Errored        int64   `json:"errored"`
	Timeout        int64   `json:"timeout"`
	// Non2xx counts responses with a 3xx, 4xx or 5xx status.
	Non2xx int64 `json:"non_2xx"`

	// Logged is the number of requests in the per-request log, which the
	// percentiles are computed from.
	Logged    int64   `json:"logged"`
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`

	// What the TLS handshake negotiated (h2load prints it once per thread).
	TLSProtocol string `json:"tls_protocol,omitempty"`
	Cipher      string `json:"cipher,omitempty"`
	TempKey     string `json:"temp_key,omitempty"`
	ALPN        string `json:"alpn,omitempty"`
}

// Negotiated is the TLS parameters in one line: "TLSv1.3
// TLS_AES_128_GCM_SHA256 X25519".
func (r H2loadResult) Negotiated() string {
	key, _, _ := strings.Cut(r.TempKey, " ") // "X25519 253 bits"
	return strings.Join(strings.Fields(r.TLSProtocol+" "+r.Cipher+" "+key), " ")
}

// ParseH2load parses h2load's standard output (nghttp2 1.4x and 1.5x). It
// fails when the lines a benchmark depends on ("finished in", "requests:",
// "status codes:") are missing.
func ParseH2load(out []byte) (H2loadResult, error) {
	var r H2loadResult
	var haveFinished, haveRequests, haveStatus bool
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "finished in "):
			// "finished in 2.01s, 8368.50 req/s, 925.73KB/s"
			f := strings.Split(strings.TrimPrefix(line, "finished in "), ",")
			if len(f) < 2 {
				return r, fmt.Errorf("h2load output line %d: malformed %q", lineNo, line)
			}
			us, err := parseWrkTime(strings.TrimSpace(f[0]))
			if err != nil {
				return r, fmt.Errorf("h2load output line %d: run time: %w", lineNo, err)
			}
			rate, ok := strings.CutSuffix(strings.TrimSpace(f[1]), " req/s")
			if !ok {
				return r, fmt.Errorf("h2load output line %d: no req/s in %q", lineNo, line)
			}
			if r.RequestsPerSec, err = parseWrkFloat(rate); err != nil {
				return r, fmt.Errorf("h2load output line %d: req/s: %w", lineNo, err)
			}
			r.Seconds, haveFinished = us/1e6, true
		case strings.HasPrefix(line, "requests: "):
			// "requests: 16737 total, 16769 started, 16737 done, 16737 succeeded, 0 failed, 0 errored, 0 timeout"
			n, err := countsLine(strings.TrimPrefix(line, "requests: "))
			if err != nil {
				return r, fmt.Errorf("h2load output line %d: %w", lineNo, err)
			}
			var have bool
			if r.Requests, have = n["succeeded"]; !have {
				return r, fmt.Errorf("h2load output line %d: no succeeded count", lineNo)
			}
			r.Failed, r.Errored, r.Timeout, haveRequests = n["failed"], n["errored"], n["timeout"], true
		case strings.HasPrefix(line, "status codes: "):
			// "status codes: 16745 2xx, 0 3xx, 0 4xx, 0 5xx"
			n, err := countsLine(strings.TrimPrefix(line, "status codes: "))
			if err != nil {
				return r, fmt.Errorf("h2load output line %d: %w", lineNo, err)
			}
			r.Non2xx, haveStatus = n["3xx"]+n["4xx"]+n["5xx"], true
		case strings.HasPrefix(line, "TLS Protocol: "):
			r.TLSProtocol = strings.TrimPrefix(line, "TLS Protocol: ")
		case strings.HasPrefix(line, "Cipher: "):
			r.Cipher = strings.TrimPrefix(line, "Cipher: ")
		case strings.HasPrefix(line, "Server Temp Key: "):
			r.TempKey = strings.TrimPrefix(line, "Server Temp Key: ")
		case strings.HasPrefix(line, "Application protocol: "):
			r.ALPN = strings.TrimPrefix(line, "Application protocol: ")
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("reading h2load output: %w", err)
	}
	var missing []string
	if !haveFinished {
		missing = append(missing, `"finished in"`)
	}
	if !haveRequests {
		missing = append(missing, `"requests:"`)
	}
	if !haveStatus {
		missing = append(missing, `"status codes:"`)
	}
	if len(missing) > 0 {
		return r, fmt.Errorf("h2load output lacks %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// countsLine parses "16737 total, 16769 started, 0 failed" into counts by
// name.
func countsLine(s string) (map[string]int64, error) {
	n := map[string]int64{}
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return nil, fmt.Errorf("malformed count %q", strings.TrimSpace(part))
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%s count %q is not a count", f[1], f[0])
		}
		n[f[1]] = v
	}
	return n, nil
}

// parseH2loadLog reads h2load's --log-file (one line per request: start
// time in µs since the epoch, status code, µs until the end of the
// response, tab-separated) and returns the number of requests logged and
// the 50th and 99th percentiles of their response times (nearest rank).
// Statuses are counted from h2load's summary, not here.
func parseH2loadLog(b []byte) (n int64, p50, p99 float64, err error) {
	var us []float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for lineNo := 1; sc.Scan(); lineNo++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return 0, 0, 0, fmt.Errorf("h2load log line %d: %d fields, want 3", lineNo, len(f))
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			return 0, 0, 0, fmt.Errorf("h2load log line %d: status %q", lineNo, f[1])
		}
		v, err := parseWrkFloat(f[2])
		if err != nil {
			return 0, 0, 0, fmt.Errorf("h2load log line %d: duration: %w", lineNo, err)
		}
		us = append(us, v)
	}
	if err := sc.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("reading the h2load log: %w", err)
	}
	if len(us) == 0 {
		return 0, math.NaN(), math.NaN(), nil
	}
	slices.Sort(us)
	return int64(len(us)), percentile(us, 50), percentile(us, 99), nil
}

// percentile is the nearest-rank p-th percentile of sorted (ascending, not
// empty).
func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// h2load runs one `h2load` against url for d (whole seconds; or, with
// requests > 0, for that many requests), pinned with the load, with conns
// connections of streams concurrent streams each (h1: HTTP/1.1 instead of
// HTTP/2), logging every request to logFile, and parses its output and its
// log. Cancelling ctx kills h2load's process group.
func (r *runner) h2load(ctx context.Context, url string, d time.Duration, requests, conns, streams int, h1 bool, logFile string) (H2loadResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	threads := min(wrkThreads, conns)
	args := []string{r.tools.h2load, "-t" + strconv.Itoa(threads), "-c" + strconv.Itoa(conns),
		"-m" + strconv.Itoa(streams), "--log-file=" + logFile}
	if requests > 0 {
		args = append(args, "-n"+strconv.Itoa(requests))
	} else {
		args = append(args, "-D"+strconv.Itoa(int(wholeSeconds(d)/time.Second)))
	}
	if h1 {
		args = append(args, "--h1")
	}
	_ = os.Remove(logFile) // h2load appends
	defer os.Remove(logFile)
	argv := r.pin.wrap(r.tools.taskset, r.pin.LoadCPU, append(args, url))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	stderr := newTailBuffer(4 << 10)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return H2loadResult{}, fmt.Errorf("h2load %s: %w", url, context.Cause(ctx))
		}
		return H2loadResult{}, fmt.Errorf("h2load %s: %w: %s%s", url, err, stderr.String(), lastBytes(stdout.Bytes(), 2<<10))
	}
	res, err := ParseH2load(stdout.Bytes())
	if err != nil {
		return res, fmt.Errorf("h2load %s: %w\n%s", url, err, lastBytes(stdout.Bytes(), 2<<10))
	}
	log, err := os.ReadFile(logFile)
	if err != nil {
		return res, fmt.Errorf("h2load %s: %w", url, err)
	}
	if res.Logged, res.P50Micros, res.P99Micros, err = parseH2loadLog(log); err != nil {
		return res, fmt.Errorf("h2load %s: %w", url, err)
	}
	if res.Requests == 0 || res.Logged == 0 {
		return res, fmt.Errorf("h2load %s completed no requests (%d failed, %d errored, %d timed out)\n%s",
			url, res.Failed, res.Errored, res.Timeout, lastBytes(stdout.Bytes(), 2<<10))
	}
	return res, nil
}
