package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// WrkResult is what one `wrk --latency` run printed. Latencies are in
// microseconds, the unit wrk measures in, so that no precision is lost to
// rounding before medians are taken.
type WrkResult struct {
	// Requests is the number of requests completed ("N requests in T").
	Requests int64 `json:"requests"`
	// Seconds is the measured run time wrk reports next to Requests.
	Seconds float64 `json:"seconds"`
	// RequestsPerSec is wrk's "Requests/sec:" line.
	RequestsPerSec float64 `json:"requests_per_sec"`

	LatencyAvgMicros float64 `json:"latency_avg_us"`
	LatencyMaxMicros float64 `json:"latency_max_us"`
	P50Micros        float64 `json:"p50_us"`
	P75Micros        float64 `json:"p75_us"`
	P90Micros        float64 `json:"p90_us"`
	P99Micros        float64 `json:"p99_us"`

	// Socket errors; wrk prints the line only when one of them is non-zero.
	ConnectErrors int64 `json:"connect_errors"`
	ReadErrors    int64 `json:"read_errors"`
	WriteErrors   int64 `json:"write_errors"`
	TimeoutErrors int64 `json:"timeout_errors"`
	// Non2xx3xx counts responses with a status outside 200-399.
	Non2xx3xx int64 `json:"non_2xx_3xx"`
}

// ParseWrk parses the standard output of `wrk --latency`. It accepts the
// layout of wrk 4.x (and the percentile lines of wrk2), tolerates extra lines
// such as those a Lua done() hook prints, and fails when the summary lines a
// benchmark depends on (request count, Requests/sec, p50 and p99) are missing.
func ParseWrk(out []byte) (WrkResult, error) {
	var (
		r                      WrkResult
		haveRPS, haveCount     bool
		have50, have99, inDist bool
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if inDist {
			if len(f) == 2 && strings.HasSuffix(f[0], "%") {
				p, err := parseWrkFloat(strings.TrimSuffix(f[0], "%"))
				if err != nil {
					return r, fmt.Errorf("wrk output line %d: percentile %q: %w", lineNo, f[0], err)
				}
				v, err := parseWrkTime(f[1])
				if err != nil {
					return r, fmt.Errorf("wrk output line %d: %v%% latency: %w", lineNo, p, err)
				}
				switch p {
				case 50:
					r.P50Micros, have50 = v, true
				case 75:
					r.P75Micros = v
				case 90:
					r.P90Micros = v
				case 99:
					r.P99Micros, have99 = v, true
				}
				continue
			}
			inDist = false
		}
		switch {
		case strings.HasPrefix(line, "Latency Distribution"):
			inDist = true
		case len(f) >= 4 && f[0] == "Latency":
			// Thread stats: "Latency  Avg  Stdev  Max  +/- Stdev".
			var err error
			if r.LatencyAvgMicros, err = parseWrkTime(f[1]); err != nil {
				return r, fmt.Errorf("wrk output line %d: average latency: %w", lineNo, err)
			}
			if r.LatencyMaxMicros, err = parseWrkTime(f[3]); err != nil {
				return r, fmt.Errorf("wrk output line %d: max latency: %w", lineNo, err)
			}
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("wrk output line %d: request count %q is not a count", lineNo, f[0])
			}
			us, err := parseWrkTime(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return r, fmt.Errorf("wrk output line %d: run time: %w", lineNo, err)
			}
			r.Requests, r.Seconds, haveCount = n, us/1e6, true
		case strings.HasPrefix(line, "Socket errors:"):
			if err := parseSocketErrors(strings.TrimPrefix(line, "Socket errors:"), &r); err != nil {
				return r, fmt.Errorf("wrk output line %d: %w", lineNo, err)
			}
		case strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(line, "Non-2xx or 3xx responses:")), 10, 64)
			if err != nil || n < 0 {
				return r, fmt.Errorf("wrk output line %d: bad non-2xx/3xx count", lineNo)
			}
			r.Non2xx3xx = n
		case strings.HasPrefix(line, "Requests/sec:"):
			v, err := parseWrkFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")))
			if err != nil {
				return r, fmt.Errorf("wrk output line %d: Requests/sec: %w", lineNo, err)
			}
			r.RequestsPerSec, haveRPS = v, true
		}
	}
	if err := sc.Err(); err != nil {
		return r, fmt.Errorf("reading wrk output: %w", err)
	}
	var missing []string
	if !haveCount {
		missing = append(missing, `"N requests in T"`)
	}
	if !haveRPS {
		missing = append(missing, `"Requests/sec:"`)
	}
	if !have50 || !have99 {
		missing = append(missing, "the 50% and 99% lines of the Latency Distribution (was --latency passed?)")
	}
	if len(missing) > 0 {
		return r, fmt.Errorf("wrk output lacks %s", strings.Join(missing, ", "))
	}
	return r, nil
}

// parseSocketErrors parses " connect 0, read 1, write 0, timeout 3".
func parseSocketErrors(s string, r *WrkResult) error {
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) != 2 {
			return fmt.Errorf("socket errors: malformed %q", strings.TrimSpace(part))
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("socket errors: %s count %q is not a count", f[0], f[1])
		}
		switch f[0] {
		case "connect":
			r.ConnectErrors = n
		case "read":
			r.ReadErrors = n
		case "write":
			r.WriteErrors = n
		case "timeout":
			r.TimeoutErrors = n
		}
	}
	return nil
}

// wrkTimeUnits are the suffixes wrk's format_time_us prints, with their length
// in microseconds. The two-letter ones come first so that "ms" is not read as
// "s" after an "m".
var wrkTimeUnits = [...]struct {
	suffix string
	micros float64
}{
	{"us", 1},
	{"ms", 1e3},
	{"s", 1e6},
	{"m", 60e6},
	{"h", 3600e6},
}

// parseWrkTime converts a wrk duration such as "512.34us", "1.20ms", "2.00s"
// or "1.50m" to microseconds. A bare number is taken as microseconds, the unit
// wrk counts in.
func parseWrkTime(s string) (float64, error) {
	num, scale := s, 1.0
	for _, u := range wrkTimeUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, scale = strings.TrimSuffix(s, u.suffix), u.micros
			break
		}
	}
	v, err := parseWrkFloat(num)
	if err != nil {
		return 0, fmt.Errorf("time %q: %w", s, err)
	}
	return v * scale, nil
}

var errNotFinite = errors.New("not a finite non-negative number")

// parseWrkFloat accepts only finite, non-negative decimals: wrk prints "nan"
// or "inf" for runs with no samples, and those must not reach a median.
func parseWrkFloat(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: %w", s, errNotFinite)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q: %w", s, errNotFinite)
	}
	return v, nil
}
