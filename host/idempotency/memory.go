package idempotency

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// MemoryOptions configure NewMemory. Zero fields take the defaults.
type MemoryOptions struct {
	// MaxKeys bounds the keys held, claimed or completed (default 100,000).
	MaxKeys int
	// MaxBytes bounds the stored responses' size (default 64 MiB).
	MaxBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Memory is a Store in the gateway's memory. When it is full, completed
// keys are evicted oldest first (a repeat of an evicted key reaches the
// upstream again: size MaxKeys and MaxBytes for the keys' TTL); claimed
// keys are never evicted, and a claim that finds no room fails with
// ErrFull.
type Memory struct {
	opts MemoryOptions

	mu    sync.Mutex
	keys  map[string]*memEntry
	done  list.List // completed entries, oldest first
	bytes int64
	token uint64
}

type memEntry struct {
	fp      Fingerprint
	token   uint64
	resp    *Response     // nil while claimed
	expires time.Time     // lease, then TTL
	changed chan struct{} // closed when the claim ends
	elem    *list.Element // in done, once completed
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.MaxKeys <= 0 {
		opts.MaxKeys = 100_000
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Memory{opts: opts, keys: map[string]*memEntry{}}
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, key string, fp Fingerprint, lease time.Duration) (Claim, error) {
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.keys[key]; e != nil {
		if now.Before(e.expires) {
			switch {
			case e.fp != fp:
				return Claim{State: Mismatch}, nil
			case e.resp != nil:
				return Claim{State: Replay, Response: e.resp}, nil
			default:
				return Claim{State: InFlight}, nil
			}
		}
		m.dropLocked(key, e) // lease or TTL over: the key is free
	}
	if len(m.keys) >= m.opts.MaxKeys && !m.evictLocked(now, true, 0) {
		return Claim{}, ErrFull
	}
	m.token++
	m.keys[key] = &memEntry{fp: fp, token: m.token, expires: now.Add(lease), changed: make(chan struct{})}
	return Claim{State: Claimed, Token: m.token}, nil
}

// Complete implements Store.
func (m *Memory) Complete(_ context.Context, key string, token uint64, resp *Response, ttl time.Duration) error {
	now := m.opts.Now()
	size := int64(resp.Size())
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.keys[key]
	if e == nil || e.token != token || e.resp != nil || !now.Before(e.expires) {
		return ErrLeaseLost
	}
	if size > m.opts.MaxBytes || m.bytes+size > m.opts.MaxBytes && !m.evictLocked(now, false, size) {
		// No room: the key is released rather than left claimed.
		m.dropLocked(key, e)
		return ErrFull
	}
	e.resp, e.expires = resp, now.Add(ttl)
	e.elem = m.done.PushBack(key)
	m.bytes += size
	close(e.changed)
	return nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, key string, token uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.keys[key]; e != nil && e.token == token && e.resp == nil {
		m.dropLocked(key, e)
	}
	return nil
}

// Wait implements Store.
func (m *Memory) Wait(ctx context.Context, key string) error {
	m.mu.Lock()
	e := m.keys[key]
	if e == nil || e.resp != nil {
		m.mu.Unlock()
		return nil
	}
	changed, left := e.changed, e.expires.Sub(m.opts.Now())
	m.mu.Unlock()
	// A claim whose holder vanished ends with its lease: look again then.
	t := time.NewTimer(max(left, time.Millisecond))
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close implements Store.
func (m *Memory) Close() error { return nil }

// Len is the number of keys held.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// dropLocked removes an entry, waking its waiters if it was claimed.
func (m *Memory) dropLocked(key string, e *memEntry) {
	delete(m.keys, key)
	if e.elem != nil {
		m.done.Remove(e.elem)
		m.bytes -= int64(e.resp.Size())
		return
	}
	close(e.changed)
}

// evictLocked makes room for size more bytes, and one more key if newKey:
// first by dropping claims whose lease ran out (their holders vanished),
// then completed keys, oldest first. It reports whether it made room.
func (m *Memory) evictLocked(now time.Time, newKey bool, size int64) bool {
	if newKey && len(m.keys) >= m.opts.MaxKeys {
		for key, e := range m.keys {
			if e.resp == nil && !now.Before(e.expires) {
				m.dropLocked(key, e)
			}
		}
	}
	for newKey && len(m.keys) >= m.opts.MaxKeys || m.bytes+size > m.opts.MaxBytes {
		front := m.done.Front()
		if front == nil {
			return false
		}
		key := front.Value.(string)
		m.dropLocked(key, m.keys[key])
	}
	return true
}
