package server

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/idempotency"
	"github.com/wasmgate/wasmgate/host/proxy"
)

// Idempotency keys (config: routes[].idempotency; host/idempotency has the
// store and its guarantee). The key is claimed after the plugin chain (a
// repeat is only replayed to a request the route's auth let through, and
// keys are scoped per consumer), right before the upstream; the upstream's
// answer is stored before on_response, as the cache stores it, and a
// replay goes through on_response like an upstream answer.

// routeIdempotency is a route's compiled idempotency-key policy.
type routeIdempotency struct {
	store    idempotency.Store
	header   string
	methods  [][]byte
	required bool
	ttl      time.Duration
	wait     time.Duration
	lease    time.Duration
	maxBody  int
	reject   bool // on a store failure: 503, else forward unprotected
}

// leaseSlack is added to a route's total upstream timeout to make the
// default lease: the claim must outlive every attempt of the exchange.
const leaseSlack = 5 * time.Second

// defaultTotalTimeout is config.Timeouts.Total's default.
const defaultTotalTimeout = 60 * time.Second

// maxIdempotencyKey bounds a key's length (the draft leaves it to the
// server; a key is an opaque, usually UUID-sized, string).
const maxIdempotencyKey = 255

// Response headers not stored with an answer: the connection's, and those
// the gateway writes for every answer.
var unstoredHeaders = [][]byte{
	[]byte("Content-Length"), []byte("Transfer-Encoding"), []byte("Connection"), []byte("Date"), []byte("Server"),
}

var (
	keyIdempotentReplayed    = []byte("Idempotent-Replayed")
	keyIdempotentBodyOmitted = []byte("Idempotent-Body-Omitted")
	keyIdempotencyFence      = []byte("Idempotency-Fence")
	keyRetryAfter            = []byte("Retry-After")
)

var (
	rejectIdemMissing  = &rejection{status: fasthttp.StatusBadRequest, code: "idempotency_key_missing", msg: "this route requires an idempotency key"}
	rejectIdemInvalid  = &rejection{status: fasthttp.StatusBadRequest, code: "idempotency_key_invalid", msg: "the idempotency key is empty or longer than 255 bytes"}
	rejectIdemInFlight = &rejection{status: fasthttp.StatusConflict, code: "idempotency_key_in_flight", msg: "a request with this idempotency key is still being processed: retry later"}
	rejectIdemMismatch = &rejection{status: fasthttp.StatusUnprocessableEntity, code: "idempotency_key_reused", msg: "the idempotency key was used for a different request"}
	rejectIdemStore    = &rejection{status: fasthttp.StatusServiceUnavailable, code: "idempotency_store_unavailable", msg: "the idempotency store cannot be reached"}
)

// routeIdempotency compiles rc's policy, with the store it names.
func (bs *build) routeIdempotency(rc *config.Route) (*routeIdempotency, error) {
	p := rc.Idempotency
	ri := &routeIdempotency{
		header:   p.Header,
		required: p.Required,
		ttl:      p.TTL.D(),
		wait:     p.Wait.D(),
		lease:    p.Lease.D(),
		maxBody:  int(p.MaxBodyBytes),
		reject:   p.OnStoreFailure == "reject" || p.OnStoreFailure == "" && p.Required,
	}
	for _, m := range p.Methods {
		ri.methods = append(ri.methods, []byte(m))
	}
	// The claim must outlive the whole exchange, retries included, on any
	// upstream the route may send to: a split, blue-green, or one a
	// run-time change switches it to. The longest total of the config.
	total := rc.Timeouts.Total.D()
	if total <= 0 {
		for _, u := range bs.cfg.Upstreams {
			total = max(total, cmp.Or(u.Timeouts.Total.D(), defaultTotalTimeout))
		}
	}
	total = cmp.Or(total, defaultTotalTimeout)
	switch {
	case ri.lease <= 0:
		ri.lease = total + leaseSlack
	case ri.lease <= total:
		return nil, fmt.Errorf("route %q: idempotency: lease %s is not longer than the route's total upstream timeout %s: a request could outlive its claim and be sent twice", rc.Name, ri.lease, total)
	}
	switch {
	case p.Store == "redis" || p.Store == "" && bs.snap.redis != nil:
		if bs.snap.redis == nil {
			return nil, fmt.Errorf("route %q: idempotency: store redis needs a redis section", rc.Name)
		}
		ri.store = bs.snap.redis.idem
	default:
		ri.store = bs.b.idemLocal
	}
	return ri, nil
}

// applies reports whether requests of method carry keys on the route.
func (ri *routeIdempotency) applies(method []byte) bool {
	for _, m := range ri.methods {
		if bytes.Equal(m, method) {
			return true
		}
	}
	return false
}

// idemState is a request's hold on its idempotency key.
type idemState struct {
	key       string
	token     uint64
	claimed   bool
	claimedAt time.Time
	replay    *idempotency.Response
}

// leaseLost reports whether the request's claim has run out before its
// request was sent (the gateway stalled: another may hold the key now). A
// request on a lost claim is not sent: it would be a second send.
func (rq *request) leaseLost() bool {
	return rq.idem.claimed && time.Since(rq.idem.claimedAt) >= rq.route.idem.lease
}

// leaseEnd is when the request's claim runs out (zero without one): its
// exchange ends by then, however long the gateway stalled before sending,
// so that it never runs past the lease into another gateway's claim.
func (rq *request) leaseEnd() time.Time {
	if !rq.idem.claimed {
		return time.Time{}
	}
	return rq.idem.claimedAt.Add(rq.route.idem.lease)
}

// claimKey claims the request's idempotency key, or finds its stored
// answer (rq.idem.replay). It returns the refusal when the request is
// answered here: a missing or invalid key, a repeat of a request still in
// flight (after waiting up to the route's wait), a key reused for another
// request, a store that cannot be reached (when the route rejects then).
func (rq *request) claimKey() *rejection {
	rq.idem = idemState{}
	ri, m := rq.route.idem, rq.route.metrics
	req := &rq.ctx.Request
	// The fence is the gateway's word to the upstream: a client's own
	// never reaches it.
	req.Header.DelBytes(keyIdempotencyFence)
	if !ri.applies(req.Header.Method()) {
		return nil
	}
	raw := req.Header.Peek(ri.header)
	switch {
	case len(raw) == 0 && ri.required:
		m.Idempotency("missing")
		return rejectIdemMissing
	case len(raw) == 0:
		return nil
	case len(raw) > maxIdempotencyKey:
		m.Idempotency("invalid")
		return rejectIdemInvalid
	}
	// Scoped per route and per consumer: one client's key never answers
	// another's request.
	key := rq.route.name + "\x00" + string(rq.scope.Consumer) + "\x00" + string(raw)
	fp := idempotency.NewFingerprint(req.Header.Method(), req.URI().RequestURI(), req.Body())
	deadline := time.Now().Add(ri.wait)
	for {
		// Taken before the claim: the lease may start at the store's
		// clock any time until Claim returns.
		asked := time.Now()
		c, err := ri.store.Claim(background, key, fp, ri.lease)
		if err != nil {
			m.Idempotency("store_error")
			rq.snap.svc.log.Warn("idempotency store failed", "route", rq.route.name, "err", err)
			// A key whose answer cannot be read was answered once: sending
			// the request again would be a second effect.
			if ri.reject || errors.Is(err, idempotency.ErrUnreadable) {
				return rejectIdemStore
			}
			return nil
		}
		switch c.State {
		case idempotency.Claimed:
			rq.idem = idemState{key: key, token: c.Token, claimed: true, claimedAt: asked}
			req.Header.SetCanonical(keyIdempotencyFence, fasthttp.AppendUint(rq.scratch[:0], int(c.Token)))
			return nil
		case idempotency.Replay:
			rq.idem.replay = c.Response
			m.Idempotency("replayed")
			return nil
		case idempotency.Mismatch:
			m.Idempotency("mismatch")
			return rejectIdemMismatch
		}
		left := time.Until(deadline)
		if left <= 0 {
			m.Idempotency("in_flight")
			rq.ctx.Response.Header.SetCanonical(keyRetryAfter, []byte("1"))
			return rejectIdemInFlight
		}
		ctx, cancel := context.WithTimeout(background, left)
		err = ri.store.Wait(ctx, key)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			rq.snap.svc.log.Warn("idempotency store failed", "route", rq.route.name, "err", err)
		}
	}
}

// replayKey answers the request with its key's stored answer.
func (rq *request) replayKey() {
	r, resp := rq.idem.replay, &rq.ctx.Response
	resp.Reset()
	resp.SetStatusCode(r.Status)
	for _, h := range r.Header {
		resp.Header.Add(h.Name, h.Value)
	}
	resp.Header.SetCanonical(keyIdempotentReplayed, []byte("true"))
	resp.SetBody(r.Body)
	rq.upstream = "idempotency"
}

// settleKey settles the request's key after the exchange (err: how it
// failed). The upstream's answer is stored, whatever it is, unless it says
// the request was not processed (408, 425, 429, 503): then the key is
// released and the client may retry. A failed exchange releases the key
// only when the request provably never reached a target (one attempt,
// which could not connect or found no target); after a timeout or a reset
// nobody knows whether the upstream acted, so the key stays claimed until
// its lease ends, and a repeat meanwhile is in flight (409), not a
// second send.
func (rq *request) settleKey(err error) {
	if !rq.idem.claimed {
		return
	}
	ri, m := rq.route.idem, rq.route.metrics
	key, token := rq.idem.key, rq.idem.token
	rq.idem.claimed = false
	resp := &rq.ctx.Response
	if err != nil && !neverSent(err, rq.exchange.Attempts) {
		m.Idempotency("not_stored")
		rq.snap.svc.log.Warn("idempotency key held until its lease ends: the upstream may have acted on the request", "route", rq.route.name, "err", err)
		return
	}
	if err != nil || notProcessed(resp.StatusCode()) {
		m.Idempotency("not_stored")
		if err := ri.store.Release(background, key, token); err != nil {
			rq.snap.svc.log.Warn("idempotency store failed", "route", rq.route.name, "err", err)
		}
		return
	}
	stored := &idempotency.Response{Status: resp.StatusCode()}
	for k, v := range resp.Header.All() {
		if !unstored(k) {
			stored.Header = append(stored.Header, idempotency.Header{Name: string(k), Value: string(v)})
		}
	}
	if body := resp.Body(); len(body) <= ri.maxBody {
		stored.Body = bytes.Clone(body)
	} else {
		stored.Header = append(stored.Header, idempotency.Header{Name: string(keyIdempotentBodyOmitted), Value: "true"})
	}
	err = ri.store.Complete(background, key, token, stored, ri.ttl)
	switch {
	case err == nil:
		m.Idempotency("stored")
	case errors.Is(err, idempotency.ErrLeaseLost):
		m.Idempotency("not_stored")
		rq.snap.svc.log.Warn("idempotency key's lease ran out before the answer: not stored (raise idempotency.lease)", "route", rq.route.name)
	default:
		m.Idempotency("store_error")
		rq.snap.svc.log.Warn("idempotency store failed: answer not stored", "route", rq.route.name, "err", err)
	}
}

// neverSent reports whether a failed exchange never reached a target: a
// single attempt that could not connect, or had no target to try.
func neverSent(err error, attempts int) bool {
	var perr *proxy.Error
	if !errors.As(err, &perr) || attempts > 1 {
		return false
	}
	switch perr.Kind {
	case proxy.ErrConnect, proxy.ErrNoTarget, proxy.ErrCircuitOpen, proxy.ErrTLS, proxy.ErrBusy, proxy.ErrRequest:
		return true
	}
	return false
}

// notProcessed reports whether an answer says the upstream did not act on
// the request, so that the client may send it again.
func notProcessed(status int) bool {
	switch status {
	case fasthttp.StatusRequestTimeout, 425 /* Too Early */, fasthttp.StatusTooManyRequests, fasthttp.StatusServiceUnavailable:
		return true
	}
	return false
}

func unstored(name []byte) bool {
	for _, u := range unstoredHeaders {
		if bytes.EqualFold(u, name) {
			return true
		}
	}
	return false
}
