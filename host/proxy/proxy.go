// Package proxy is the upstream side of the gateway: a named pool of targets
// with load balancing, active health checks, per-target circuit breakers,
// retries, timeouts, and the header hygiene a proxy owes both sides.
//
// An Upstream is built once per configuration and kept across reloads while
// its configuration is unchanged; its target set is replaced atomically by
// service discovery. The request path (Do and the balancers) reads one
// immutable snapshot of the target set through an atomic pointer and does not
// allocate unless an exchange fails.
package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/wasmgate/wasmgate/host/config"
)

// Target is one backend address of an upstream with its relative weight.
type Target struct {
	Address string
	Weight  int
}

// Fallbacks for zero timeouts, so that an Upstream built from a config that
// skipped defaulting (tests, embedding) never waits forever.
const (
	fallbackConnect = 2 * time.Second
	fallbackRead    = 30 * time.Second
	fallbackWrite   = 30 * time.Second
	fallbackTotal   = 60 * time.Second
)

// Upstream is a pool of targets and the policies for sending requests to them.
// It is safe for concurrent use.
type Upstream struct {
	cfg    config.Upstream
	log    *slog.Logger
	algo   balance
	hashOn hashSource
	hashBy string // header or cookie name for consistent_hash

	base     clientKey     // the upstream's own connect/read/write timeouts
	total    time.Duration // the upstream's total timeout
	maxConns int
	idle     time.Duration
	dialer   net.Dialer // no DNS cache of its own, so nothing runs after Close
	tls      *tlsSource // nil: plain HTTP to the targets
	scheme   []byte     // of the requests sent: "http" or "https" (fasthttp checks it against the client's IsTLS)

	// maxBody bounds the response bodies Do reads (SetMaxResponseBody);
	// 0: no bound.
	maxBody atomic.Int64

	cbFailures int32 // consecutive failures that open a circuit; 0 = no breaker
	cbOpenFor  int64 // nanoseconds
	now        func() int64

	pool atomic.Pointer[pool]

	mu      sync.Mutex // serializes SetTargets, Start and Close
	started bool
	closed  bool
	stop    chan struct{}
	done    chan struct{}
}

// New builds an upstream. Static targets come from cfg.Targets. Discovery
// (cfg.Discovery) is handled by the caller through SetTargets.
func New(cfg config.Upstream, log *slog.Logger) (*Upstream, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &Upstream{
		cfg:      cfg,
		log:      log.With("upstream", cfg.Name),
		maxConns: cfg.MaxConns,
		idle:     cfg.MaxIdleTime.D(),
		now:      func() int64 { return time.Now().UnixNano() },
		scheme:   strHTTP,
	}
	if cfg.TLS != nil {
		src, err := newTLSSource(cfg.TLS, u.log)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", cfg.Name, err)
		}
		u.tls, u.scheme = src, strHTTPS
	}
	switch cfg.Balance {
	case "", "round_robin":
		u.algo = balRoundRobin
	case "weighted_round_robin":
		u.algo = balWeighted
	case "least_inflight":
		u.algo = balLeastInflight
	case "consistent_hash":
		u.algo = balHash
		if cfg.Hash == nil {
			return nil, fmt.Errorf("upstream %q: consistent_hash needs hash", cfg.Name)
		}
		switch cfg.Hash.Source {
		case "header":
			u.hashOn = hashHeader
		case "cookie":
			u.hashOn = hashCookie
		case "client_ip":
			u.hashOn = hashClientIP
		default:
			return nil, fmt.Errorf("upstream %q: unknown hash source %q", cfg.Name, cfg.Hash.Source)
		}
		if u.hashOn != hashClientIP && cfg.Hash.Name == "" {
			return nil, fmt.Errorf("upstream %q: hash on %s needs a name", cfg.Name, cfg.Hash.Source)
		}
		u.hashBy = cfg.Hash.Name
	default:
		return nil, fmt.Errorf("upstream %q: unknown balance %q", cfg.Name, cfg.Balance)
	}
	u.base = clientKey{
		connect: orDefault(cfg.Timeouts.Connect.D(), fallbackConnect),
		read:    orDefault(cfg.Timeouts.Read.D(), fallbackRead),
		write:   orDefault(cfg.Timeouts.Write.D(), fallbackWrite),
	}
	u.total = orDefault(cfg.Timeouts.Total.D(), fallbackTotal)
	if cb := cfg.CircuitBreaker; cb != nil && cb.ConsecutiveFailures > 0 {
		u.cbFailures = int32(min(cb.ConsecutiveFailures, 1<<30))
		u.cbOpenFor = int64(cb.OpenFor.D())
	}
	ts := make([]Target, len(cfg.Targets))
	for i, t := range cfg.Targets {
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			return nil, fmt.Errorf("upstream %q: target %q: %w", cfg.Name, t.Address, err)
		}
		ts[i] = Target{Address: t.Address, Weight: t.Weight}
	}
	u.SetTargets(ts)
	return u, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// SetMaxResponseBody bounds the response bodies of the exchanges that do
// not set their own (Exchange.MaxResponseBody); 0: no bound. The gateway
// holds a whole body in memory (for plugins, the cache, the access log),
// so an upstream that sends without end would otherwise make it allocate
// without end. It applies to the exchanges that start after it.
func (u *Upstream) SetMaxResponseBody(n int64) { u.maxBody.Store(max(n, 0)) }

// Name returns the upstream's name.
func (u *Upstream) Name() string { return u.cfg.Name }

// Config returns the configuration as passed to New, so that the caller can
// keep an unchanged upstream (its pools, health and counters) across reloads.
func (u *Upstream) Config() config.Upstream { return u.cfg }

// Start starts active health checks if they are configured. Calling it again,
// or after Close, does nothing.
func (u *Upstream) Start() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.started || u.closed || u.cfg.HealthCheck == nil {
		return
	}
	u.started = true
	u.stop = make(chan struct{})
	u.done = make(chan struct{})
	go u.healthLoop(*u.cfg.HealthCheck)
}

// Close stops health checks and closes idle connections. Requests in flight
// still complete; their connections are closed when they return.
func (u *Upstream) Close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	u.closed = true
	if u.started {
		close(u.stop)
		<-u.done
	}
	for _, t := range u.pool.Load().targets {
		t.retire()
	}
}

// SetTargets atomically replaces the target set. Targets whose address stays
// keep their connection pool, health and counters; removed targets stop
// getting new requests, requests in flight on them complete, then their idle
// connections are closed. Entries with an empty address are ignored; a
// repeated address has its weights summed; a weight below 1 counts as 1.
// After Close it does nothing.
func (u *Upstream) SetTargets(ts []Target) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return
	}
	old := map[string]*target{}
	if p := u.pool.Load(); p != nil {
		for _, t := range p.targets {
			old[t.addr] = t
		}
	}
	var targets []*target
	var weights []int
	index := map[string]int{}
	for _, e := range ts {
		if e.Address == "" {
			continue
		}
		w := max(e.Weight, 1)
		if i, ok := index[e.Address]; ok {
			weights[i] += w
			continue
		}
		t := old[e.Address]
		if t == nil {
			t = newTarget(u, e.Address)
		}
		delete(old, e.Address)
		index[e.Address] = len(targets)
		targets = append(targets, t)
		weights = append(weights, w)
	}
	u.pool.Store(newPool(u.algo, targets, weights))
	for _, t := range old {
		t.retire()
	}
}

// Exchange is one proxied request and its result.
type Exchange struct {
	Req      *fasthttp.Request  // ready to send: path rewritten, forwarded headers set
	Resp     *fasthttp.Response // filled by Do
	ClientIP []byte             // textual client IP, for consistent_hash on client_ip
	Timeouts config.Timeouts    // the route's overrides; zero fields inherit the upstream's
	Retries  *config.Retries    // the route's override; nil = the upstream's policy (nil there = none)
	// MaxResponseBody bounds the response body (the route's limit); 0:
	// the upstream's (SetMaxResponseBody). A body over it fails the
	// exchange with ErrBodyTooLarge as soon as it is known to be: from
	// its Content-Length, or once the bytes read pass it.
	MaxResponseBody int64
	// NotAfter, when set, ends the exchange by then at the latest, retries
	// included, before its total timeout would: an idempotency claim's
	// lease, past which another gateway may send the request.
	NotAfter time.Time

	// Target is the address of the target that produced Resp (or the last one tried).
	Target string
	// Attempts is the number of targets tried.
	Attempts int
}

// ErrorKind classifies why an exchange failed; its String is a bounded set
// fit for a metric label.
type ErrorKind uint8

// The kinds of failed exchanges.
const (
	ErrOther        ErrorKind = iota // anything else: a malformed response, ...
	ErrConnect                       // no connection: refused, unreachable, connect timeout, pool exhausted
	ErrTimeout                       // the target did not answer in time (read, write or total timeout)
	ErrReset                         // the connection broke before the response was complete
	ErrNoTarget                      // no healthy target
	ErrCircuitOpen                   // every healthy target's circuit is open
	ErrBodyTooLarge                  // the response body is over the limit
	ErrRequest                       // the request could not be sent as it is: the gateway's fault, not the target's
	ErrBusy                          // the gateway's pool of connections to the target is full
	// ErrTLS is a TLS refusal, on either side: the target's certificate
	// does not verify (unknown authority, expired or not yet valid, another
	// name), the target refused ours or wanted one we do not have, no
	// common TLS version, or a target that does not speak TLS. It counts
	// against the target (its breaker) but is never retried on the same
	// target: it is not transient. A retry policy with connect_error may
	// send the request to another target (the request never reached this
	// one).
	ErrTLS
)

var kindNames = [...]string{"other", "connect", "timeout", "reset", "no_target", "circuit_open", "body_too_large", "request", "busy", "tls"}

// String returns the kind's label: connect, timeout, reset, no_target,
// circuit_open, body_too_large, request, busy, tls or other.
func (k ErrorKind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "other"
}

// Error is a failed exchange.
type Error struct {
	Kind   ErrorKind
	Target string // the target that failed; empty for no_target and circuit_open
	Err    error
}

var (
	errNoTarget    = errors.New("no healthy target")
	errCircuitOpen = errors.New("the circuit of every healthy target is open")
)

// Error describes the failure with its kind and target.
func (e *Error) Error() string {
	if e.Target == "" {
		return fmt.Sprintf("upstream %s: %v", e.Kind, e.Err)
	}
	return fmt.Sprintf("upstream %s: target %s: %v", e.Kind, e.Target, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status the gateway answers with: 504 for a timeout, 503
// when no target could be tried, 500 for a request it could not send, 502
// otherwise (tls included).
func (e *Error) Status() int {
	switch e.Kind {
	case ErrTimeout:
		return fasthttp.StatusGatewayTimeout
	case ErrNoTarget, ErrCircuitOpen, ErrBusy:
		return fasthttp.StatusServiceUnavailable
	case ErrRequest:
		return fasthttp.StatusInternalServerError
	default:
		return fasthttp.StatusBadGateway
	}
}

var (
	strHTTP  = []byte("http")
	strHTTPS = []byte("https")
)

// Do sends x.Req to a target chosen by the balancer and fills x.Resp. It
// retries per the effective policy, on another target when one is available,
// all within the total timeout: 1 + attempts requests at most, each one
// counted in x.Attempts. The one exception, also counted: a request that
// failed on a pooled keep-alive connection the target had closed while
// idle, before any response byte, is sent once more on a new connection,
// if it is idempotent (it most likely never reached the target). A
// response is a success for Do (nil error) whatever its status; when
// retries on a status are exhausted, the last response is kept. The error
// is nil or an *Error.
//
// Only the target's own failures count toward its circuit breaker: no
// connection, a TLS refusal, a timeout, a broken connection, a malformed
// response or a 5xx; never a request the gateway could not send. A target
// that failed TLS is not tried again within the exchange.
func (u *Upstream) Do(x *Exchange) error {
	x.Target, x.Attempts = "", 0
	key, total := u.effective(&x.Timeouts)
	key.body = u.maxBody.Load()
	if x.MaxResponseBody > 0 {
		key.body = x.MaxResponseBody
	}
	deadline := time.Now().Add(total)
	// cut: the exchange ends at NotAfter, before the target's own time is
	// up; a timeout then is the caller's bound, not the target's fault.
	cut := !x.NotAfter.IsZero() && x.NotAfter.Before(deadline)
	if cut {
		deadline = x.NotAfter
	}
	pol := x.Retries
	if pol == nil {
		pol = u.cfg.Retries
	}
	attempts := 1
	if pol != nil && pol.Attempts > 0 && !x.Req.IsBodyStream() &&
		(pol.IdempotentOnly != nil && !*pol.IdempotentOnly || idempotent(x.Req)) {
		attempts += pol.Attempts
	}
	// The client side may have been TLS or not; the hop to the target is
	// the upstream's (https with a tls block), and fasthttp refuses a
	// scheme that differs from its client's.
	if uri := x.Req.URI(); !bytes.Equal(uri.Scheme(), u.scheme) {
		uri.SetSchemeBytes(u.scheme)
	}
	// A proxy forwards the client's Content-Type or none; fasthttp would
	// invent one for a body without it.
	x.Req.Header.SetNoDefaultContentType(true)
	// A request without a Host (HTTP/1.0 allows it) names the target.
	noHost := len(x.Req.Header.Host()) == 0 && len(x.Req.URI().Host()) == 0
	var tr tried
	var refused tried // targets that failed TLS: never again in this exchange
	var last *Error
	staleRetried := false
	for {
		t, kind := u.pick(u.pool.Load(), x.Req, x.ClientIP, &tr)
		if t == nil {
			if x.Attempts > 0 {
				return errOrNil(last) // keep what the last attempt produced
			}
			err := errNoTarget
			if kind == ErrCircuitOpen {
				err = errCircuitOpen
			}
			return &Error{Kind: kind, Err: err}
		}
		tr.add(t)
	send:
		x.Attempts++
		x.Target = t.addr
		if noHost {
			x.Req.Header.SetHost(t.addr)
			x.Req.URI().SetHost(t.addr) // fasthttp writes the URI's host
		}
		t.inflight.Add(1)
		t.requests.Add(1)
		dials, refusals := t.dials.Load(), t.tlsRefusals.Load()
		err := t.client(key).DoDeadline(x.Req, x.Resp, deadline)
		t.release()
		if err != nil && u.tls != nil {
			err = t.tlsRefusalOf(err, refusals)
		}

		retry := false
		if err != nil {
			kind := classify(err)
			if kind != ErrBodyTooLarge && kind != ErrRequest && kind != ErrBusy && kind != ErrTLS && !time.Now().Before(deadline) {
				kind = ErrTimeout // whatever broke, the total timeout is what ran out
			}
			last = &Error{Kind: kind, Target: t.addr, Err: err}
			if kind == ErrTLS {
				// Not transient: a retry (if the policy allows one)
				// may only go to another target.
				refused.add(t)
				tr.refused = &refused
			}
			if !staleRetried && kind != ErrTLS && staleConn(err) && t.dials.Load() == dials && idempotent(x.Req) && time.Now().Before(deadline) {
				// The target closed an idle pooled connection: not its
				// failure, and the request most likely never reached it.
				// (No dial during the attempt means the connection was a
				// pooled one; a concurrent dial only forgoes this retry.)
				staleRetried = true
				u.uncounted(t)
				goto send
			}
			if targetsFault(kind, err, x.Req) && !(cut && kind == ErrTimeout) {
				u.record(t, true)
			} else {
				u.uncounted(t)
			}
			retry = pol != nil && retryOnKind(pol, kind)
		} else {
			last = nil
			code := x.Resp.StatusCode()
			u.record(t, code >= 500)
			retry = pol != nil && retryOnStatus(pol, code)
		}
		// The stale resend is one more than the policy's attempts, not
		// one of them: a target that died with pooled connections to it
		// costs a request its resend there and still leaves it its
		// retries on other targets.
		sent := x.Attempts
		if staleRetried {
			sent--
		}
		if !retry || sent >= attempts {
			return errOrNil(last)
		}
		if b := pol.Backoff.D(); b > 0 {
			if time.Until(deadline) <= b {
				return errOrNil(last)
			}
			time.Sleep(b)
		}
		if !time.Now().Before(deadline) {
			return errOrNil(last)
		}
	}
}

// errOrNil avoids returning a typed nil pointer as a non-nil error.
func errOrNil(e *Error) error {
	if e == nil {
		return nil
	}
	return e
}

// effective merges the route's timeout overrides into the upstream's.
func (u *Upstream) effective(o *config.Timeouts) (clientKey, time.Duration) {
	k := u.base
	if d := o.Connect.D(); d > 0 {
		k.connect = d
	}
	if d := o.Read.D(); d > 0 {
		k.read = d
	}
	if d := o.Write.D(); d > 0 {
		k.write = d
	}
	return k, orDefault(o.Total.D(), u.total)
}

// idempotent reports whether a request may be sent twice: by its method or
// because the client made it so with an Idempotency-Key.
func idempotent(req *fasthttp.Request) bool {
	switch string(req.Header.Method()) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return len(peekFold(&req.Header, "Idempotency-Key")) > 0
}

// retryOnKind reports whether the policy retries a failure of this kind.
func retryOnKind(p *config.Retries, k ErrorKind) bool {
	var name string
	switch k {
	case ErrConnect, ErrTLS:
		// A TLS refusal is a failure to connect as far as retries go:
		// the request never reached the target. Do never sends it to
		// the same target again.
		name = "connect_error"
	case ErrTimeout:
		name = "timeout"
	case ErrReset:
		name = "reset"
	default:
		return false
	}
	for _, on := range p.On {
		if on == name {
			return true
		}
	}
	return false
}

// retryOnStatus reports whether the policy retries a response with this status.
func retryOnStatus(p *config.Retries, code int) bool {
	for _, on := range p.On {
		if len(on) == 3 && on[0] >= '1' && on[0] <= '9' && on[1] >= '0' && on[1] <= '9' && on[2] >= '0' && on[2] <= '9' &&
			int(on[0]-'0')*100+int(on[1]-'0')*10+int(on[2]-'0') == code {
			return true
		}
	}
	return false
}

// dialError marks a failure to connect, so that it is classified as such
// whatever the dialer's error looks like.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// targetsFault reports whether a failed exchange counts against the target
// (its circuit breaker and failure count): only what the target did. Not
// a response over the gateway's limit, not a request the gateway could
// not send, not the gateway's own pool being full, and not a connection
// the target closed while the request's body was still being written: a
// server may answer early (a 413, say) and close without reading the body
// (RFC 9112, 9.6).
func targetsFault(kind ErrorKind, err error, req *fasthttp.Request) bool {
	switch kind {
	case ErrBodyTooLarge, ErrRequest, ErrBusy:
		return false
	case ErrTLS:
		return true // even when it broke the write of a body: the target refused the connection
	}
	var we *writeError
	return !errors.As(err, &we) || len(req.Body()) == 0
}

// classify maps an error of fasthttp (or of the network under it) to a kind.
func classify(err error) ErrorKind {
	var de *dialError
	var ne net.Error
	switch {
	case strings.Contains(err.Error(), "missing required host header"):
		// fasthttp's error is unexported; Do fills a missing Host, so this
		// is a guard, kept apart from the target's failures.
		return ErrRequest
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return ErrBusy
	case tlsFailure(err):
		// Before dialError: a refused handshake is wrapped as a TLS
		// failure by the dialer (tls.go), and a remote alert or a
		// refused client certificate may also come on the first read.
		return ErrTLS
	case errors.As(err, &de), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ErrConnect
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return ErrBodyTooLarge
	case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, net.ErrClosed):
		return ErrReset
	}
	return ErrOther
}

// staleConn reports whether err is how a keep-alive connection that the
// target closed while it sat idle fails: before the first response byte,
// either while the request is written or when the response should start.
// A connection that breaks after response bytes is not stale: the target
// got the request.
func staleConn(err error) bool {
	var we *writeError
	return errors.As(err, &we) || err == io.EOF || errors.Is(err, fasthttp.ErrConnectionClosed)
}

// writeError marks an error of writing the request to the target, so that
// Do can tell it from one of reading the response.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// trackedConn is a connection to a target whose write errors are marked
// and whose response heads are checked (framing.go).
type trackedConn struct {
	net.Conn
	head headCheck
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.head.arm()
	n, err := c.Conn.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if m, bad := c.head.check(p[:n]); bad != nil {
			return m, bad
		}
	}
	return n, err
}

// UpstreamStatus is a snapshot of an upstream for the admin API.
type UpstreamStatus struct {
	Name    string         `json:"name"`
	Balance string         `json:"balance"`
	Targets []TargetStatus `json:"targets"`
}

// TargetStatus is a snapshot of one target.
type TargetStatus struct {
	Address  string `json:"address"`
	Weight   int    `json:"weight"`
	Healthy  bool   `json:"healthy"`
	Circuit  string `json:"circuit"` // closed, open or half_open
	InFlight int64  `json:"in_flight"`
	Requests int64  `json:"requests"`
	Failures int64  `json:"failures"` // transport errors and 5xx responses
}

// Status returns a snapshot of the upstream and its targets.
func (u *Upstream) Status() UpstreamStatus {
	p := u.pool.Load()
	s := UpstreamStatus{Name: u.cfg.Name, Balance: balanceNames[u.algo], Targets: make([]TargetStatus, len(p.targets))}
	for i, t := range p.targets {
		s.Targets[i] = TargetStatus{
			Address:  t.addr,
			Weight:   p.weights[i],
			Healthy:  t.healthy.Load(),
			Circuit:  circuitNames[t.state.Load()],
			InFlight: t.inflight.Load(),
			Requests: t.requests.Load(),
			Failures: t.failures.Load(),
		}
	}
	return s
}
