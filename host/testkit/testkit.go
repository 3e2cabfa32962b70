// Package testkit holds what the gateway's tests share: a buffer that a
// server writes while the test reads it, and a bounded wait for a
// condition. (host/redistest, beside it, runs a real redis-server.)
package testkit

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is an io.Writer safe for concurrent writes and reads: a log
// destination or a child's output that the test inspects as it runs.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor polls cond every few milliseconds until it holds, and fails the
// test naming what it waited for once bound has passed. The bound only
// keeps a broken test from hanging: make it generous, never a wall-clock
// assertion.
func WaitFor(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
