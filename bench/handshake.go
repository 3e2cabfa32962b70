package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// HandshakeResult is one run of the handshake client: clients connecting
// over and over, each connection a TCP connect, a TLS handshake, a
// close_notify and the server's close, no request.
type HandshakeResult struct {
	// Handshakes completed, of which Resumed resumed a session.
	Handshakes int64 `json:"handshakes"`
	Resumed    int64 `json:"resumed"`
	// Errors are connections that failed before their handshake completed;
	// FirstError says why the first one did.
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	PerSec     float64 `json:"handshakes_per_sec"`
	// P50Micros and P99Micros are the client's connect + handshake times.
	P50Micros float64 `json:"p50_us"`
	P99Micros float64 `json:"p99_us"`
	// Negotiated is what the first handshake agreed on: version, cipher
	// suite and key exchange group.
	Negotiated string `json:"negotiated"`
}

// handshakeClients is the most concurrent connections the handshake client
// keeps open: enough to keep a one-CPU server busy.
const handshakeClients = 16

// handshakeTimeout bounds one connection of the handshake client.
const handshakeTimeout = 10 * time.Second

// runHandshakes connects to addr with cfg from clients goroutines for d,
// each connection: TCP connect, TLS handshake, close_notify, then reading
// until the server closes, which also takes in the session tickets the
// server sent (a client with a session cache resumes with them next time).
// It sends no request, so that what the server spends on the connections
// is the handshake and the connection itself. Cancelling ctx ends it with
// ctx's error.
func runHandshakes(ctx context.Context, addr string, cfg *tls.Config, clients int, d time.Duration) (HandshakeResult, error) {
	var (
		mu       sync.Mutex
		res      HandshakeResult
		lat      []float64
		firstErr error
		wg       sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for range max(1, clients) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []float64
			var n, resumed, errs int64
			var negotiated string
			var first error
			for ctx.Err() == nil && time.Now().Before(end) {
				t0 := time.Now()
				st, err := handshakeOnce(ctx, addr, cfg)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				mine = append(mine, float64(time.Since(t0).Nanoseconds())/1e3)
				n++
				if st.DidResume {
					resumed++
				}
				if negotiated == "" {
					negotiated = describeTLS(st)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lat = append(lat, mine...)
			res.Handshakes += n
			res.Resumed += resumed
			res.Errors += errs
			if firstErr == nil && first != nil {
				firstErr = first
			}
			if res.Negotiated == "" {
				res.Negotiated = negotiated
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return res, context.Cause(ctx)
	}
	res.Seconds = time.Since(start).Seconds()
	res.PerSec = float64(res.Handshakes) / res.Seconds
	res.P50Micros, res.P99Micros = math.NaN(), math.NaN()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50Micros, res.P99Micros = percentile(lat, 50), percentile(lat, 99)
	}
	if firstErr != nil {
		res.FirstError = firstErr.Error()
	}
	if res.Handshakes == 0 {
		return res, fmt.Errorf("handshakes with %s: none completed: %v", addr, firstErr)
	}
	if float64(res.Errors) > maxBadShare*float64(res.Handshakes+res.Errors) {
		return res, fmt.Errorf("handshakes with %s: %d of %d connections failed, the first: %v",
			addr, res.Errors, res.Handshakes+res.Errors, firstErr)
	}
	return res, nil
}

// handshakeOnce makes one connection of the handshake client and returns
// its TLS state. Errors after the handshake (the server closing without
// close_notify, or with a reset) do not count: the handshake was done.
func handshakeOnce(ctx context.Context, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := net.Dialer{Timeout: handshakeTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	c := tls.Client(raw, cfg)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := c.HandshakeContext(ctx); err != nil {
		return tls.ConnectionState{}, err
	}
	st := c.ConnectionState()
	// close_notify: the server reads the end of the stream where it waits
	// for a request, and closes the connection; reading until then takes
	// in the session tickets (TLS 1.3 sends them after the handshake).
	if err := c.CloseWrite(); err == nil {
		_, _ = io.Copy(io.Discard, c)
	}
	return st, nil
}

// describeTLS is a connection's version, cipher suite and key exchange
// group in one line: "TLSv1.3 TLS_AES_128_GCM_SHA256 X25519".
func describeTLS(st tls.ConnectionState) string {
	v := tls.VersionName(st.Version)
	if rest, ok := strings.CutPrefix(v, "TLS "); ok {
		v = "TLSv" + rest // the spelling OpenSSL and h2load print
	}
	s := v + " " + tls.CipherSuiteName(st.CipherSuite)
	if st.CurveID != 0 {
		s += " " + st.CurveID.String()
	}
	return s
}

// pinHarness moves every thread of this process to cpu and returns what
// puts them back on the CPUs they had: the handshake client runs in the
// harness, and must stay on the load's CPU, off the proxy's. Threads
// started meanwhile inherit the pinning from the thread that starts them;
// restore passes over the threads twice to catch those.
func pinHarness(cpu int) (restore func(), err error) {
	var orig unix.CPUSet
	if err := unix.SchedGetaffinity(0, &orig); err != nil {
		return nil, fmt.Errorf("reading this process's CPU affinity: %w", err)
	}
	var one unix.CPUSet
	one.Set(cpu)
	set := func(to *unix.CPUSet) error {
		var errs []error
		for range 2 {
			tids, err := os.ReadDir("/proc/self/task")
			if err != nil {
				return err
			}
			for _, t := range tids {
				tid, err := strconv.Atoi(t.Name())
				if err != nil {
					continue
				}
				if err := unix.SchedSetaffinity(tid, to); err != nil && !errors.Is(err, unix.ESRCH) {
					errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
				}
			}
		}
		return errors.Join(errs...)
	}
	if err := set(&one); err != nil {
		_ = set(&orig)
		return nil, fmt.Errorf("pinning the handshake client to CPU %d: %w", cpu, err)
	}
	return func() { _ = set(&orig) }, nil
}
