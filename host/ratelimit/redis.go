package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// RedisOptions configure NewRedis.
type RedisOptions struct {
	// Addr is the Redis server's host:port.
	Addr string
	// Username and Password authenticate (ACL user, or requirepass with
	// an empty Username).
	Username, Password string
	// DB is the database number.
	DB int
	// Prefix starts every key the limiter writes; default "ratelimit:".
	Prefix string
	// Timeout bounds one decision, from asking for a pooled connection to
	// the script's answer, connecting included, and each probe; default
	// 50ms. A decision that takes longer is decided by the fallback.
	Timeout time.Duration
	// PoolSize bounds the connections to Redis, hence the decisions on
	// Redis at once; default 10 per GOMAXPROCS. A decision waits at most
	// Timeout/2 for a connection, then is decided by the fallback alone
	// (see Redis): raise PoolSize when Decision.Fallback shows up in bursts
	// while Redis is healthy.
	PoolSize int
	// ProbeInterval is how often a failed Redis is probed to detect its
	// recovery; default 1s.
	ProbeInterval time.Duration
	// Fallback decides while Redis fails, and after Close; nil means a
	// NewLocal of its own. It may be the gateway's local limiter, as long
	// as the keys (or limit names) of Redis-backed limits differ from
	// those of local ones.
	Fallback *Local
	// OnFallback is called once when decisions switch to the fallback,
	// with the error that made them switch. OnRecover is called once when
	// they switch back. They run on a decision's or the probe's goroutine:
	// they must not block, nor call Close.
	OnFallback func(err error)
	OnRecover  func()
}

// Redis is a Store shared by every gateway instance using the same Redis:
// each decision is one Lua script, one round trip, deciding and charging all
// limits of the decision atomically on Redis's clock.
//
// When Redis fails, the decision and the following ones are taken by the
// fallback Local, with Decision.Fallback set: the gateway fails open onto
// per-instance limits rather than refusing or letting everything through.
// Redis fails when a decision gets no answer within Timeout (connection
// refused or lost, server hung) or an error reply that any decision would
// get: no permission (NOPERM), a script running too long (BUSY), a replica
// (READONLY), out of memory (OOM), still loading (LOADING). Redis is then not
// tried again by requests until a background probe, every ProbeInterval,
// succeeds, so an outage costs requests nothing. The probe is a decision:
// the script itself, charging a dedicated key under Prefix, so the store
// switches back only once decisions work again, writes included, and not
// merely when the server answers a PING.
//
// Two failures concern one decision only; it is taken by the fallback
// (Decision.Fallback set) but the store does not switch and no hook is
// called:
//   - no pooled connection within Timeout/2: every connection is busy with
//     a decision in flight, a burst rather than an outage. If Redis is
//     failing, those decisions find out and switch. The other half of
//     Timeout is left for the round trip, so that a decision that waited
//     long still has time to be answered.
//   - WRONGTYPE: the decision's key holds a value that is not the limiter's
//     (something else writes under Prefix). Only that key is affected, so
//     only its decisions are taken by the fallback, without switching
//     everything back and forth.
//
// A decision that timed out may still reach Redis and be charged there once
// it answers, besides the fallback's charge: the error is on the side of
// limiting.
//
// After Close, Decide keeps answering on the fallback (Decision.Fallback
// set, no hook called): a gateway closes the store of an old configuration
// while requests that started on it may still be deciding.
type Redis struct {
	client        *redis.Client
	prefix        string
	probeKey      string
	timeout       time.Duration
	probeInterval time.Duration
	fallback      *Local
	ownFallback   bool // made by NewRedis: Close closes it
	onFallback    func(error)
	onRecover     func()

	// epoch counts switches: even while Redis serves, odd while the
	// fallback does. A decision that fails switches only from the epoch it
	// started in, so a late failure of an old call cannot undo a recovery.
	epoch atomic.Uint64

	mu     sync.Mutex // guards closed and probes.Add against Close
	closed bool
	done   chan struct{}
	probes sync.WaitGroup
}

// probeSuffix completes Prefix into the probe's key. A NUL cannot come from
// an HTTP field, so no request's key is the probe's.
const probeSuffix = "\x00probe"

// probeLimits is what the probe decides on its key: a limit that never
// denies (a burst of 2^30) and whose debt after one charge, about a
// nanosecond, makes the key expire within a millisecond or two.
var (
	probeLimits = []Limit{{Name: "probe", Rate: 1 << 30, Period: time.Second}}
	probeParams = []params{prepare(&probeLimits[0], 1)}
)

// NewRedis returns a Store on the Redis server at opts.Addr. It does not
// connect: connections are made by the decisions, so a gateway starts while
// Redis is down, on its fallback.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Addr == "" {
		return nil, errors.New("ratelimit: redis: empty address")
	}
	if opts.Timeout < 0 || opts.ProbeInterval < 0 || opts.PoolSize < 0 {
		return nil, fmt.Errorf("ratelimit: redis %s: negative timeout %v, probe interval %v or pool size %d", opts.Addr, opts.Timeout, opts.ProbeInterval, opts.PoolSize)
	}
	r := &Redis{
		prefix:        opts.Prefix,
		timeout:       opts.Timeout,
		probeInterval: opts.ProbeInterval,
		fallback:      opts.Fallback,
		onFallback:    opts.OnFallback,
		onRecover:     opts.OnRecover,
		done:          make(chan struct{}),
	}
	if r.prefix == "" {
		r.prefix = "ratelimit:"
	}
	r.probeKey = r.prefix + probeSuffix
	if r.timeout == 0 {
		r.timeout = 50 * time.Millisecond
	}
	if r.probeInterval == 0 {
		r.probeInterval = time.Second
	}
	if r.fallback == nil {
		r.fallback = NewLocal(LocalOptions{})
		r.ownFallback = true
	}
	r.client = redis.NewClient(&redis.Options{
		Addr:     opts.Addr,
		Username: opts.Username,
		Password: opts.Password,
		DB:       opts.DB,
		PoolSize: opts.PoolSize,
		// A retry or a redial would spend the decision's time budget
		// on a server that just failed; the fallback is the retry.
		MaxRetries:    -1,
		DialerRetries: 1,
		DialTimeout:   r.timeout,
		ReadTimeout:   r.timeout,
		WriteTimeout:  r.timeout,
		// Shorter than the decision's deadline, so that a wait for a
		// connection ends with ErrPoolTimeout, which says the pool is
		// saturated, rather than with the deadline, which would read as
		// a server that does not answer.
		PoolTimeout: poolTimeout(r.timeout),
		// Deadlines come from the decision's context.
		ContextTimeoutEnabled: true,
		// No extra round trips when connecting.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return r, nil
}

// poolTimeout is the longest wait for a pooled connection of a decision
// whose budget is timeout: half of it, leaving the other half for the round
// trip.
func poolTimeout(timeout time.Duration) time.Duration { return max(timeout/2, 1) }

// Close stops the probe and closes the connections. Decisions keep working
// on the fallback. A Fallback passed in RedisOptions is left open; the one
// NewRedis made is closed (it keeps deciding, without its janitor).
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	r.mu.Unlock()
	r.probes.Wait()
	if r.ownFallback {
		_ = r.fallback.Close()
	}
	if err := r.client.Close(); err != nil {
		return fmt.Errorf("ratelimit: closing redis client: %w", err)
	}
	return nil
}

// Degraded reports whether decisions are currently taken by the fallback
// because Redis fails.
func (r *Redis) Degraded() bool { return r.epoch.Load()&1 == 1 }

func (r *Redis) isClosed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Decide implements Store. It fails only on invalid input, or when ctx is
// done (a caller that gave up is no reason to think Redis failed). A Redis
// failure is answered by the fallback, and so is every decision after Close.
func (r *Redis) Decide(ctx context.Context, key string, limits []Limit, cost int64, d *Decision) error {
	var buf [maxStack]params
	ps, err := prepared(&buf, limits, cost)
	if err != nil {
		return err
	}
	if len(limits) == 0 {
		d.reset(0)
		d.Allowed = true
		return nil
	}

	ep := r.epoch.Load()
	if ep&1 == 1 || r.isClosed() {
		return r.fallbackDecide(key, limits, ps, cost, d)
	}
	res, err := r.run(ctx, r.prefix+key, limits, ps, cost)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("ratelimit: redis decision for %q: %w", key, cerr)
		}
		// Closed under a decision, or a failure of this decision alone:
		// not an outage.
		if !r.isClosed() && !oneDecisionOnly(err) {
			r.fail(ep, fmt.Errorf("ratelimit: redis %s: %w", r.client.Options().Addr, err))
		}
		return r.fallbackDecide(key, limits, ps, cost, d)
	}

	d.reset(len(limits))
	d.Allowed = res[0] == 1
	for i := range ps {
		x := span{res[1+2*i], res[2+2*i]}
		if w := ps[i].outcome(x, d.Allowed, cost > 0, &d.States[i]); w > d.RetryAfter {
			d.RetryAfter = w
		}
	}
	return nil
}

// run sends one decision's script for the Redis key rkey, within Timeout, and
// returns the script's checked reply.
func (r *Redis) run(ctx context.Context, rkey string, limits []Limit, ps []params, cost int64) ([]int64, error) {
	args := make([]any, 1, 1+argsPerLimit*len(limits))
	args[0] = 0
	if cost > 0 {
		args[0] = 1
	}
	for i := range ps {
		p := &ps[i]
		args = append(args, limits[i].Name, p.cost.n, p.cost.f, p.window.n, p.window.f, p.rate)
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	res, err := decideScript.Run(cctx, r.client, []string{rkey}, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 1+2*len(limits) {
		err = fmt.Errorf("script answered %d values for %d limits", len(res), len(limits))
	}
	return res, err
}

// oneDecisionOnly reports whether err, the failure of a decision, concerns
// that decision alone rather than Redis: see Redis.
func oneDecisionOnly(err error) bool {
	return errors.Is(err, redis.ErrPoolTimeout) || redis.HasErrorPrefix(err, "WRONGTYPE")
}

func (r *Redis) fallbackDecide(key string, limits []Limit, ps []params, cost int64, d *Decision) error {
	r.fallback.decide(key, limits, ps, cost, d)
	d.Fallback = true
	return nil
}

// fail switches to the fallback if the failing call started while Redis was
// serving and nobody switched since.
func (r *Redis) fail(ep uint64, err error) {
	if ep&1 == 1 || !r.epoch.CompareAndSwap(ep, ep+1) {
		return
	}
	if r.onFallback != nil {
		r.onFallback(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.probes.Add(1)
	go r.probe(ep + 1)
}

// probe runs a decision on the probe key every probeInterval until one
// succeeds, then switches decisions back to Redis.
func (r *Redis) probe(ep uint64) {
	defer r.probes.Done()
	t := time.NewTicker(r.probeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		if r.probeOnce() != nil {
			continue
		}
		if r.epoch.CompareAndSwap(ep, ep+1) && r.onRecover != nil {
			r.onRecover()
		}
		return
	}
}

// probeOnce decides one request on the probe key, charging it so that the
// script's writes are tested too: a replica, a read-only ACL or a full
// memory let a mere read through but fail every charging decision. A
// WRONGTYPE there (something wrote the probe key) still proves that
// decisions run, as it fails no other key.
func (r *Redis) probeOnce() error {
	_, err := r.run(context.Background(), r.probeKey, probeLimits, probeParams, 1)
	if err != nil && redis.HasErrorPrefix(err, "WRONGTYPE") {
		return nil
	}
	return err
}

// argsPerLimit is the number of script arguments per limit.
const argsPerLimit = 6

// decideScript is the whole Redis side of a decision. A key's state is a hash
// with one field per limit name holding its theoretical arrival time as
// "seconds nanoseconds fraction" on Redis's clock (TIME). Lua numbers are
// doubles, exact below 2^53: the script therefore works on times relative to
// now (at most about 2^53 ns, see MaxWindow) and never multiplies; Go computes
// the products (cost × T, Burst × T) exactly and passes them as nanoseconds
// plus a fraction in units of 1/rate. string.format('%d') writes numbers back,
// since Lua's tostring keeps only 14 digits.
//
// ARGV[1] is 1 to charge when every limit allows, 0 to consult. Then per
// limit: name, cost ns, cost fraction, window ns, window fraction, rate.
// The reply is the verdict (1 allowed) and, per limit, the debt before the
// decision (ns, fraction); Go derives everything else from them.
var decideScript = redis.NewScript(`
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now_s = tonumber(t[1])
local now_n = tonumber(t[2]) * 1000
local n = (#ARGV - 1) / 6
local names = {}
for i = 1, n do names[i] = ARGV[2 + (i - 1) * 6] end
local vals = redis.call('HMGET', KEYS[1], unpack(names))
local out = {1}
local need_n, need_f = {}, {}
for i = 1, n do
  local b = 2 + (i - 1) * 6
  local rate = tonumber(ARGV[b + 5])
  local xn, xf = 0, 0
  local v = vals[i]
  if v then
    local s, ns, f = string.match(v, '^(%d+) (%d+) (%d+)$')
    if s then
      xn = (tonumber(s) - now_s) * 1000000000 + (tonumber(ns) - now_n)
      xf = tonumber(f)
      if xf >= rate then xf = rate - 1 end
      if xn < 0 then xn, xf = 0, 0 end
    end
  end
  out[2 * i], out[2 * i + 1] = xn, xf
  local dn, df = xn + tonumber(ARGV[b + 1]), xf + tonumber(ARGV[b + 2])
  if df >= rate then dn, df = dn + 1, df - rate end
  local wn, wf = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  if dn > wn or (dn == wn and df > wf) then out[1] = 0 end
  need_n[i], need_f[i] = dn, df
end
if out[1] == 1 and ARGV[1] == '1' then
  local kv = {}
  local ttl = 0
  for i = 1, n do
    local total = now_n + need_n[i]
    local carry = math.floor(total / 1000000000)
    kv[2 * i - 1] = names[i]
    kv[2 * i] = string.format('%d %d %d', now_s + carry, total - carry * 1000000000, need_f[i])
    if need_n[i] > ttl then ttl = need_n[i] end
  end
  redis.call('HSET', KEYS[1], unpack(kv))
  local ms = math.floor(ttl / 1000000) + 1
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
end
return out
`)
