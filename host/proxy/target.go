package proxy

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/wasmgate/wasmgate/host/config"
)

// Circuit breaker states of a target.
const (
	circuitClosed uint32 = iota
	circuitOpen
	circuitHalfOpen
)

var circuitNames = [...]string{"closed", "open", "half_open"}

// clientKey is what distinguishes the HostClients of one target: routes may
// override these timeouts, and fasthttp takes them per client.
type clientKey struct{ connect, read, write time.Duration }

type clientEntry struct {
	key clientKey
	hc  *fasthttp.HostClient
}

// target is one backend address with its connection pools, health and
// counters. It outlives snapshots: SetTargets carries it over while its
// address stays.
type target struct {
	u    *Upstream
	addr string

	// clients is copy-on-write so that the hot path finds its client with one
	// atomic load and a short scan; mu serializes the writers.
	clients atomic.Pointer[[]clientEntry]
	mu      sync.Mutex

	healthy  atomic.Bool
	retired  atomic.Bool
	inflight atomic.Int64
	requests atomic.Int64
	dials    atomic.Int64 // connections dialed: Do tells a pooled connection from a new one
	failures atomic.Int64

	state     atomic.Uint32 // circuit state
	fails     atomic.Int32  // consecutive failures while closed
	openUntil atomic.Int64  // unix nanoseconds; written before the state turns open

	// Active health check streaks; only the probe of this target touches
	// them, and probes of one target never overlap.
	okStreak, failStreak int
}

func newTarget(u *Upstream, addr string) *target {
	t := &target{u: u, addr: addr}
	t.healthy.Store(true) // innocent until a probe says otherwise: no 503s at startup
	return t
}

// client returns the target's HostClient for these timeouts, creating it on
// first use.
func (t *target) client(k clientKey) *fasthttp.HostClient {
	if p := t.clients.Load(); p != nil {
		for i := range *p {
			if (*p)[i].key == k {
				return (*p)[i].hc
			}
		}
	}
	return t.newClient(k)
}

func (t *target) newClient(k clientKey) *fasthttp.HostClient {
	t.mu.Lock()
	defer t.mu.Unlock()
	var cur []clientEntry
	if p := t.clients.Load(); p != nil {
		cur = *p
		for i := range cur {
			if cur[i].key == k {
				return cur[i].hc
			}
		}
	}
	dialer := &t.u.dialer
	connect := k.connect
	hc := &fasthttp.HostClient{
		Addr: t.addr,
		// fasthttp passes the time left of the request; the connect timeout
		// may only shorten it.
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			if timeout <= 0 || timeout > connect {
				timeout = connect
			}
			t.dials.Add(1)
			c, err := dialer.DialDualStackTimeout(addr, timeout)
			if err != nil {
				return nil, &dialError{err}
			}
			return trackedConn{c}, nil
		},
		MaxConns:            t.u.maxConns,
		MaxIdleConnDuration: t.u.idle,
		MaxConnWaitTimeout:  connect,
		ReadTimeout:         k.read,
		WriteTimeout:        k.write,
		// One request per call: Do owns every retry, counts it, and
		// retries a stale pooled connection itself (staleConn).
		MaxIdemponentCallAttempts:     1,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
	}
	next := append(cur[:len(cur):len(cur)], clientEntry{k, hc})
	t.clients.Store(&next)
	return hc
}

// retire takes the target out of service: once no request is in flight on
// it, its idle connections are closed.
func (t *target) retire() {
	t.retired.Store(true)
	if t.inflight.Load() == 0 {
		t.closeIdle()
	}
}

// release ends one request on the target. The last request on a retired
// target closes the connections it returned to the pool.
func (t *target) release() {
	if t.inflight.Add(-1) == 0 && t.retired.Load() {
		t.closeIdle()
	}
}

func (t *target) closeIdle() {
	if p := t.clients.Load(); p != nil {
		for _, e := range *p {
			e.hc.CloseIdleConnections()
		}
	}
}

// admit reports whether the circuit lets a request through. Once open_for
// has passed, the first caller turns the circuit half-open and is its one
// trial request; everyone else is refused until the trial's outcome is
// recorded.
func (u *Upstream) admit(t *target) bool {
	switch t.state.Load() {
	case circuitClosed:
		return true
	case circuitOpen:
		return u.now() >= t.openUntil.Load() && t.state.CompareAndSwap(circuitOpen, circuitHalfOpen)
	}
	return false
}

// mayAdmit is admit without taking the trial, for balancers that compare
// candidates before choosing one.
func (u *Upstream) mayAdmit(t *target) bool {
	switch t.state.Load() {
	case circuitClosed:
		return true
	case circuitOpen:
		return u.now() >= t.openUntil.Load()
	}
	return false
}

// record feeds an exchange's outcome to the target's counters and breaker.
func (u *Upstream) record(t *target, failed bool) {
	if failed {
		t.failures.Add(1)
	}
	if u.cbFailures == 0 {
		return
	}
	switch st := t.state.Load(); {
	case !failed:
		if t.fails.Load() != 0 {
			t.fails.Store(0)
		}
		if st == circuitHalfOpen && t.state.CompareAndSwap(circuitHalfOpen, circuitClosed) {
			u.log.Info("circuit closed", "target", t.addr)
		}
	case st == circuitHalfOpen:
		t.openUntil.Store(u.now() + u.cbOpenFor)
		if t.state.CompareAndSwap(circuitHalfOpen, circuitOpen) {
			u.log.Warn("circuit reopened: trial request failed", "target", t.addr)
		}
	case st == circuitClosed && t.fails.Add(1) >= u.cbFailures:
		t.openUntil.Store(u.now() + u.cbOpenFor)
		if t.state.CompareAndSwap(circuitClosed, circuitOpen) {
			t.fails.Store(0)
			u.log.Warn("circuit opened", "target", t.addr, "consecutive_failures", u.cbFailures)
		}
	}
}

// uncounted records an exchange that tells nothing of the target: when it
// was the trial of a half-open circuit, the circuit opens again for no
// time at all, so that the next request is the trial.
func (u *Upstream) uncounted(t *target) {
	if t.state.Load() == circuitHalfOpen {
		t.openUntil.Store(u.now())
		t.state.CompareAndSwap(circuitHalfOpen, circuitOpen)
	}
}

// healthLoop probes every target now and then on every interval until Close.
func (u *Upstream) healthLoop(hc config.HealthCheck) {
	defer close(u.done)
	path := hc.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	interval := orDefault(hc.Interval.D(), 5*time.Second)
	timeout := orDefault(hc.Timeout.D(), time.Second)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for _, t := range u.pool.Load().targets {
			wg.Go(func() { u.probe(t, "http://"+t.addr+path, timeout, &hc) })
		}
		wg.Wait()
		select {
		case <-u.stop:
			return
		case <-tick.C:
		}
	}
}

// probe sends one health check: a 2xx or 3xx answer in time is a success.
func (u *Upstream) probe(t *target, uri string, timeout time.Duration, hc *config.HealthCheck) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	err := t.client(u.base).DoTimeout(req, resp, timeout)
	if code := resp.StatusCode(); err == nil && code >= 200 && code < 400 {
		t.failStreak = 0
		t.okStreak++
		if !t.healthy.Load() && t.okStreak >= max(hc.HealthyThreshold, 1) {
			t.healthy.Store(true)
			u.log.Info("target healthy", "target", t.addr)
		}
		return
	}
	t.okStreak = 0
	t.failStreak++
	if t.healthy.Load() && t.failStreak >= max(hc.UnhealthyThreshold, 1) {
		t.healthy.Store(false)
		if err == nil {
			u.log.Warn("target unhealthy", "target", t.addr, "status", resp.StatusCode())
		} else {
			u.log.Warn("target unhealthy", "target", t.addr, "err", err)
		}
	}
}
