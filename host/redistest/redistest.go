// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, in the test's temporary directory, stopped when
// the test ends. Tests can kill, pause and restart it to exercise failures.
//
// Tests using it skip, saying why, when redis-server is not installed (the
// Debian package redis-server provides /usr/bin/redis-server).
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
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

// startTimeout bounds how long a redis-server may take to accept commands.
// Generous: the machine running the tests may be busy.
const startTimeout = 20 * time.Second

// Server is a redis-server process owned by a test.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	proc   *os.Process // nil while killed
	exited chan error  // receives the process's exit
}

// Binary returns the path of redis-server, or "" when it is not installed.
func Binary() string { return testkit.Program("redis-server") }

// Start starts a redis-server on a free port of 127.0.0.1 and waits until it
// answers PING. It is killed when the test ends. Start skips the test when
// redis-server is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("redis-server not found in PATH or /usr/bin: install the redis-server package to run this test")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s.port, err = testkit.FreePort(); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		if err = s.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// Addr returns the server's address, host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Kill stops the server at once (SIGKILL) and waits for it to exit; its data
// is lost. Killing a killed server does nothing.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	_ = s.proc.Kill() // SIGKILL ends a paused (stopped) process too
	<-s.exited
	s.proc, s.exited = nil, nil
}

// Restart starts the server again on the same port after Kill (an empty one:
// nothing is persisted), and waits until it answers. A running server is
// killed first.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	// The port was free a moment ago; another process may take it in
	// between, which would fail here clearly rather than flakily later.
	if err := testkit.Retry(startTimeout, 50*time.Millisecond, s.start); err != nil {
		s.t.Fatalf("redistest: restart on port %d: %v", s.port, err)
	}
}

// Pause stops the server process (SIGSTOP) without closing its connections,
// so clients see a server that does not answer: a slow or hung Redis.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		s.t.Fatalf("redistest: %v sent to a killed server", sig)
	}
	if err := s.proc.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v: %v", sig, err)
	}
}

// Do sends one command to the server on a new connection and returns its
// reply as text: a status or bulk string, an integer in decimal, an error as
// "ERR ..." prefixed by "-", an array as its elements joined by newlines.
// It is for tests that inspect or poke at the server directly.
func (s *Server) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", fmt.Errorf("redistest: %w", err)
	}
	return readReply(bufio.NewReader(conn))
}

// maxBulk bounds a bulk string's length: Redis's own default limit
// (proto-max-bulk-len).
const maxBulk = 512 << 20

func readReply(r *bufio.Reader) (string, error) { return readReplyDepth(r, 0) }

func readReplyDepth(r *bufio.Reader, depth int) (string, error) {
	if depth > 32 {
		return "", errors.New("redistest: reply nested too deep")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redistest: reading reply: %w", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("redistest: empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return line, nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redistest: bad bulk length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		if n > maxBulk {
			return "", fmt.Errorf("redistest: bulk of %d bytes", n)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("redistest: reading bulk: %w", err)
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redistest: bad array length %q", line)
		}
		var parts []string
		for i := 0; i < n; i++ {
			p, err := readReplyDepth(r, depth+1)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("redistest: unexpected reply %q", line)
}

// start launches redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	logPath := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--logfile", logPath,
		"--daemonize", "no",
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server on port %d exited (%v); log:\n%s", s.port, err, testkit.TailFile(logPath))
		default:
		}
		if reply, err := s.Do("PING"); err == nil && reply == "PONG" {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer PING within %v; log:\n%s", s.port, startTimeout, testkit.TailFile(logPath))
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	s.proc, s.exited = cmd.Process, exited
	s.mu.Unlock()
	return nil
}
