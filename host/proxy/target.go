package proxy

import (
	"context"
	"crypto/tls"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// maxResponseHead bounds the status line and headers of a response: a
// longer head fails the exchange as malformed (other, 502). It is the
// size of the buffer fasthttp reads a response with, one per request in
// flight (fasthttp's default, named here so that it stays what the README
// says).
const maxResponseHead = 4 << 10

// clientKey is what distinguishes the HostClients of one target: routes may
// override these timeouts and the response body limit, and fasthttp takes
// them per client.
type clientKey struct {
	connect, read, write time.Duration
	body                 int64 // the response body limit; 0: none
}

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
	sni  string                    // the name TLS verifies (upstreams with tls)
	tlsc atomic.Pointer[targetTLS] // its copy of the TLS config, when sni differs from the upstream's

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

	// The last TLS refusal that came with a response's first read, and how
	// many there were (tls.go: noteRefusal).
	tlsRefusal  atomic.Pointer[error]
	tlsRefusals atomic.Int64

	state     atomic.Uint32 // circuit state
	fails     atomic.Int32  // consecutive failures while closed
	openUntil atomic.Int64  // unix nanoseconds; written before the state turns open

	// Active health check streaks; only the probe of this target touches
	// them, and probes of one target never overlap.
	okStreak, failStreak int
}

func newTarget(u *Upstream, addr string) *target {
	t := &target{u: u, addr: addr, sni: serverNameFor(&u.cfg, addr)}
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
	var tlsCfg *tls.Config
	if src := t.u.tls; src != nil {
		tlsCfg = src.cur.Load().cfg
	}
	hc := &fasthttp.HostClient{
		Addr: t.addr,
		// fasthttp passes the time left of the request; the connect timeout
		// may only shorten it.
		DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
			if timeout <= 0 || timeout > connect {
				timeout = connect
			}
			t.dials.Add(1)
			start := time.Now()
			// A plain net.Dialer: fasthttp's TCPDialer caches DNS
			// answers with a goroutine that sweeps the cache every
			// second for two minutes after the last dial, so every
			// upstream a reload retired left one running that long.
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			c, err := dialer.DialContext(ctx, "tcp", addr)
			cancel()
			if err != nil {
				return nil, &dialError{err}
			}
			if src := t.u.tls; src != nil {
				// The connect timeout bounds the TCP connect and the
				// TLS handshake together.
				return src.handshake(t, c, start.Add(timeout))
			}
			return &trackedConn{Conn: c}, nil
		},
		// With TLS, the dial function returns connections that completed
		// the handshake (tls.go); fasthttp only checks that requests are
		// https. TLSConfig is the first version of the files, for
		// fasthttp's bookkeeping; handshakes take the current one.
		IsTLS:               t.u.tls != nil,
		TLSConfig:           tlsCfg,
		MaxConns:            t.u.maxConns,
		MaxIdleConnDuration: t.u.idle,
		MaxConnWaitTimeout:  connect,
		ReadTimeout:         k.read,
		WriteTimeout:        k.write,
		MaxResponseBodySize: int(min(k.body, math.MaxInt)),
		ReadBufferSize:      maxResponseHead,
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
