// Package etcdtest runs a real etcd for tests: one member on free loopback
// ports, its data in the test's temporary directory, stopped when the test
// ends. Tests can stop it and start it again (its data kept) to exercise a
// fleet that loses its store.
//
// Tests using it skip, saying why, when etcd is not installed (the Debian
// package etcd-server provides /usr/bin/etcd).
package etcdtest

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/testkit"
)

// startTimeout bounds how long etcd may take to report healthy. Generous:
// the machine running the tests may be busy, and etcd fsyncs.
const startTimeout = 30 * time.Second

// Server is an etcd process owned by a test.
type Server struct {
	t                    testing.TB
	bin, dir             string
	clientPort, peerPort int

	mu     sync.Mutex
	proc   *os.Process // nil while stopped
	exited chan error
}

// Binary returns the path of etcd, or "" when it is not installed.
func Binary() string { return testkit.Program("etcd") }

// Start starts etcd on free ports of 127.0.0.1 and waits until it reports
// healthy. It is killed when the test ends. Start skips the test when etcd
// is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("etcd not found in PATH or /usr/bin: install the etcd-server package to run this test")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s.clientPort, err = testkit.FreePort(); err == nil {
			s.peerPort, err = testkit.FreePort()
		}
		if err != nil {
			t.Fatalf("etcdtest: %v", err)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// Endpoint is the client address, host:port.
func (s *Server) Endpoint() string { return "127.0.0.1:" + strconv.Itoa(s.clientPort) }

// URL is the gateway's config source for prefix: etcd://host:port/prefix.
func (s *Server) URL(prefix string) string {
	return "etcd://" + s.Endpoint() + "/" + strings.TrimPrefix(prefix, "/")
}

// Kill stops etcd at once (SIGKILL) and waits for it to exit. Its data
// stays on disk for Restart. Killing a stopped server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Signal(syscall.SIGKILL)
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart starts etcd again on the same ports with the same data, after
// Kill, and waits until it is healthy. A running server is killed first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	// The ports were ours a moment ago; one still in TIME_WAIT or taken by
	// another process fails the start, so try again.
	if err := testkit.Retry(startTimeout, 100*time.Millisecond, s.start); err != nil {
		s.t.Fatalf("etcdtest: restart on port %d: %v", s.clientPort, err)
	}
}

// Wipe kills etcd, deletes its data and starts it again on the same ports
// with the same flags: an etcd rebuilt without its data, as a recreated
// volume makes one. Its revisions start again from 1 and, the flags being
// the same, so does its cluster id.
func (s *Server) Wipe() {
	s.t.Helper()
	s.Kill()
	if err := os.RemoveAll(filepath.Join(s.dir, "data")); err != nil {
		s.t.Fatalf("etcdtest: %v", err)
	}
	s.Restart()
}

func (s *Server) start() error {
	client := "http://" + s.Endpoint()
	peer := "http://127.0.0.1:" + strconv.Itoa(s.peerPort)
	logPath := filepath.Join(s.dir, "etcd.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin,
		"--name", "test",
		"--data-dir", filepath.Join(s.dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer,
		"--log-level", "warn", "--logger", "zap",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("etcd on port %d exited (%v); log:\n%s", s.clientPort, err, testkit.TailFile(logPath))
		default:
		}
		if resp, err := hc.Get(client + "/health"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"true"`) {
				break
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("etcd on port %d was not healthy within %v; log:\n%s", s.clientPort, startTimeout, testkit.TailFile(logPath))
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.proc, s.exited = cmd.Process, exited
	s.mu.Unlock()
	return nil
}
