package idempotency

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
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
	// Prefix starts every key the store writes; default "idempotency:".
	Prefix string
	// Timeout bounds one operation; default 200ms.
	Timeout time.Duration
	// PollInterval is how often Wait looks at a claimed key; default 20ms.
	PollInterval time.Duration
}

// Redis is a Store shared by every gateway using the same Redis. Each
// operation is one Lua script, atomic on the server: two gateways
// claiming one key at once get one Claimed and one InFlight. Leases and
// TTLs are Redis key expiries, on Redis's clock. A record is a hash:
// state ("c" claimed, "d" done), the request's fingerprint, the claim's
// fencing token (from one counter, PREFIX + "fence"), the response.
//
// When Redis cannot be reached, operations fail; the gateway then answers
// as the route's failure policy says (idempotency.on_store_failure).
type Redis struct {
	client *redis.Client
	prefix string
	fence  string
	opts   RedisOptions
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store on the Redis at opts.Addr. It does not connect
// until the first operation.
func NewRedis(opts RedisOptions) (*Redis, error) {
	if opts.Addr == "" {
		return nil, errors.New("idempotency: redis address required")
	}
	if opts.Prefix == "" {
		opts.Prefix = "idempotency:"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 200 * time.Millisecond
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	client := redis.NewClient(&redis.Options{
		Addr: opts.Addr, Username: opts.Username, Password: opts.Password, DB: opts.DB,
		DialTimeout: opts.Timeout, ReadTimeout: opts.Timeout, WriteTimeout: opts.Timeout,
		// A claim resent after a lost answer could claim twice: the
		// caller sees the error and answers per its failure policy.
		MaxRetries: -1, DialerRetries: 1,
		ContextTimeoutEnabled: true,
		// No extra round trips when connecting.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return &Redis{client: client, prefix: opts.Prefix, fence: opts.Prefix + "fence", opts: opts}, nil
}

// claimScript: KEYS[1] the record, KEYS[2] the fencing counter; ARGV[1]
// the fingerprint, ARGV[2] the lease in ms. It returns {0, token}
// claimed, {1, response} replay, {2} in flight, {3} mismatch.
var claimScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 's', 'f', 'r')
if not r[1] then
  local t = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[1], 's', 'c', 'f', ARGV[1], 't', t)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {0, t}
end
if r[2] ~= ARGV[1] then return {3} end
if r[1] == 'd' then return {1, r[3]} end
return {2}
`)

// completeScript: KEYS[1] the record; ARGV[1] the token, ARGV[2] the
// response, ARGV[3] the TTL in ms. 1 stored, 0 the lease was lost.
var completeScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 's', 't')
if r[1] ~= 'c' or r[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 's', 'd', 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// releaseScript: KEYS[1] the record; ARGV[1] the token.
var releaseScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 's', 't')
if r[1] == 'c' and r[2] == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`)

func (r *Redis) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.opts.Timeout)
}

// Claim implements Store.
func (r *Redis) Claim(ctx context.Context, key string, fp Fingerprint, lease time.Duration) (Claim, error) {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	v, err := claimScript.Run(ctx, r.client, []string{r.prefix + key, r.fence}, hex.EncodeToString(fp[:]), max(lease.Milliseconds(), 1)).Slice()
	if err != nil {
		return Claim{}, fmt.Errorf("idempotency store (redis %s): %w", r.opts.Addr, err)
	}
	state, _ := v[0].(int64)
	switch State(state) {
	case Claimed:
		t, _ := v[1].(int64)
		return Claim{State: Claimed, Token: uint64(t)}, nil
	case Replay:
		s, _ := v[1].(string)
		resp, err := decodeResponse([]byte(s))
		if err != nil {
			return Claim{}, fmt.Errorf("idempotency store (redis %s): key %q: %w: %w", r.opts.Addr, key, ErrUnreadable, err)
		}
		return Claim{State: Replay, Response: resp}, nil
	case InFlight, Mismatch:
		return Claim{State: State(state)}, nil
	}
	return Claim{}, fmt.Errorf("idempotency store (redis %s): unexpected answer %v", r.opts.Addr, v)
}

// Complete implements Store.
func (r *Redis) Complete(ctx context.Context, key string, token uint64, resp *Response, ttl time.Duration) error {
	enc, err := resp.appendEncoded(nil)
	if err != nil {
		return fmt.Errorf("idempotency store: %w", err)
	}
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	n, err := completeScript.Run(ctx, r.client, []string{r.prefix + key}, token, enc, max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return fmt.Errorf("idempotency store (redis %s): %w", r.opts.Addr, err)
	}
	if n == 0 {
		return ErrLeaseLost
	}
	return nil
}

// Release implements Store.
func (r *Redis) Release(ctx context.Context, key string, token uint64) error {
	ctx, cancel := r.ctx(ctx)
	defer cancel()
	if err := releaseScript.Run(ctx, r.client, []string{r.prefix + key}, token).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("idempotency store (redis %s): %w", r.opts.Addr, err)
	}
	return nil
}

// Wait implements Store: it polls the record until it is no longer
// claimed (completed, released or expired).
func (r *Redis) Wait(ctx context.Context, key string) error {
	t := time.NewTicker(r.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		octx, cancel := r.ctx(ctx)
		s, err := r.client.HGet(octx, r.prefix+key, "s").Result()
		cancel()
		if errors.Is(err, redis.Nil) || err == nil && s != "c" {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			// The wait's own deadline, which the read may hit first.
			return context.DeadlineExceeded
		}
		if err != nil {
			return fmt.Errorf("idempotency store (redis %s): %w", r.opts.Addr, err)
		}
	}
}

// Close implements Store.
func (r *Redis) Close() error { return r.client.Close() }
