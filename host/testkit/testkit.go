// Package testkit holds what the gateway's tests share: a buffer that a
// server writes while the test reads it, and a bounded wait for a
// condition. (host/redistest, beside it, runs a real redis-server.)
package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
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

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago: for
// a server the test starts as a process, which binds it itself.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// TailFile returns the last 4000 bytes of a log file, for a failure
// message; what went wrong reading it when it cannot be read.
func TailFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Program returns the path of an installed program the tests run: on PATH,
// else in /usr/bin (a PATH without it, under some CI runners); "" when it
// is not installed.
func Program(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := "/usr/bin/" + name
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// Retry calls f until it succeeds or bound has passed, pausing between
// calls, and returns its last error: a server restarted on a port that was
// its own a moment ago may find it still taken.
func Retry(bound, pause time.Duration, f func() error) error {
	deadline := time.Now().Add(bound)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pause)
	}
}
