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
	// Timeout bounds one decision's round trip, connecting included, and
	// each probe; default 50ms. A decision that takes longer is decided by
	// the fallback.
	Timeout time.Duration
	// ProbeInterval is how often a failed Redis is PINGed to detect its
	// recovery; default 1s.
	ProbeInterval time.Duration
	// Fallback decides while Redis fails; nil means a NewLocal of its own.
	// It may be the gateway's local limiter, as long as the keys (or limit
	// names) of Redis-backed limits differ from those of local ones.
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
// When Redis fails (an error, or no answer within Timeout), the decision and
// the following ones are taken by the fallback Local, with
// Decision.Fallback set: the gateway fails open onto per-instance limits
// rather than refusing or letting everything through. Redis is not tried
// again by requests until a background probe (a PING every ProbeInterval)
// succeeds, so an outage costs requests nothing.
//
// Two consequences worth knowing. A decision that timed out may still reach
// Redis and be charged there once it answers, besides the fallback's charge:
// the error is on the side of limiting. And any error switches, an error
// reply too: if something else writes a key under Prefix (WRONGTYPE), the
// store goes back and forth between Redis and the fallback at the probe's
// pace, each switch reported by OnFallback and OnRecover.
type Redis struct {
	client        *redis.Client
	prefix        string
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

// ErrClosed is returned by Decide after Close.
var ErrClosed = errors.New("ratelimit: redis store closed")

// NewRedis returns a Store on the Redis server at opts.Addr. It does not
// connect: connections are made by the decisions, so a gateway starts while
// Redis is down, on its fallback.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Addr == "" {
		return nil, errors.New("ratelimit: redis: empty address")
	}
	if opts.Timeout < 0 || opts.ProbeInterval < 0 {
		return nil, fmt.Errorf("ratelimit: redis %s: negative timeout %v or probe interval %v", opts.Addr, opts.Timeout, opts.ProbeInterval)
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
		// A retry or a redial would spend the decision's time budget
		// on a server that just failed; the fallback is the retry.
		MaxRetries:    -1,
		DialerRetries: 1,
		DialTimeout:   r.timeout,
		ReadTimeout:   r.timeout,
		WriteTimeout:  r.timeout,
		PoolTimeout:   r.timeout,
		// Deadlines come from the decision's context.
		ContextTimeoutEnabled: true,
		// No extra round trips when connecting.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return r, nil
}

// Close stops the probe and closes the connections. A Fallback passed in
// RedisOptions is left open; the one NewRedis made is closed.
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

// Degraded reports whether decisions are currently taken by the fallback.
func (r *Redis) Degraded() bool { return r.epoch.Load()&1 == 1 }

// Decide implements Store. It fails only on invalid input, when ctx is done
// (a caller that gave up is no reason to think Redis failed), or after Close;
// a Redis failure is answered by the fallback.
func (r *Redis) Decide(ctx context.Context, key string, limits []Limit, cost int64, d *Decision) error {
	if cost < 0 {
		return ErrNegativeCost
	}
	if err := checkLimits(limits); err != nil {
		return err
	}
	var buf [maxStack]params
	ps := buf[:0]
	if len(limits) > maxStack {
		ps = make([]params, 0, len(limits))
	}
	for i := range limits {
		ps = append(ps, prepare(&limits[i], cost))
	}
	if len(limits) == 0 {
		d.reset(0)
		d.Allowed = true
		return nil
	}

	select {
	case <-r.done:
		return ErrClosed
	default:
	}
	ep := r.epoch.Load()
	if ep&1 == 1 {
		return r.fallbackDecide(key, limits, ps, cost, d)
	}

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
	res, err := decideScript.Run(cctx, r.client, []string{r.prefix + key}, args...).Int64Slice()
	cancel()
	if err == nil && len(res) != 1+2*len(limits) {
		err = fmt.Errorf("script answered %d values for %d limits", len(res), len(limits))
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("ratelimit: redis decision for %q: %w", key, cerr)
		}
		select {
		case <-r.done: // closed under a decision: not an outage
		default:
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

// probe PINGs Redis until it answers, then switches decisions back to it.
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
		ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
		err := r.client.Ping(ctx).Err()
		cancel()
		if err != nil {
			continue
		}
		if r.epoch.CompareAndSwap(ep, ep+1) && r.onRecover != nil {
			r.onRecover()
		}
		return
	}
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
