package redistest

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

func TestLifecycle(t *testing.T) {
	s := Start(t)
	if r, err := s.Do("PING"); err != nil || r != "PONG" {
		t.Fatalf("PING: %q %v", r, err)
	}
	if r, err := s.Do("SET", "k", "v"); err != nil || r != "OK" {
		t.Fatalf("SET: %q %v", r, err)
	}
	if r, err := s.Do("GET", "k"); err != nil || r != "v" {
		t.Fatalf("GET: %q %v", r, err)
	}
	if r, err := s.Do("CONFIG", "GET", "save"); err != nil || r != "save\n" {
		t.Fatalf("persistence: CONFIG GET save = %q %v, want none", r, err)
	}
	if r, err := s.Do("NOSUCHCOMMAND"); err != nil || !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("error reply: %q %v", r, err)
	}

	addr := s.Addr()
	s.Kill()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("killed server still accepts connections")
	}
	s.Kill() // idempotent

	s.Restart()
	if s.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr(), addr)
	}
	if r, err := s.Do("GET", "k"); err != nil || r != "" {
		t.Fatalf("restarted server kept data: %q %v", r, err)
	}

	s.Pause()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err) // the kernel still accepts
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 16)); err == nil {
		t.Fatal("paused server answered")
	}
	s.Resume()
	if r, err := s.Do("PING"); err != nil || r != "PONG" {
		t.Fatalf("PING after resume: %q %v", r, err)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"+OK\r\n", "OK", ""},
		{":42\r\n", "42", ""},
		{"-ERR nope\r\n", "-ERR nope", ""},
		{"$3\r\nabc\r\n", "abc", ""},
		{"$-1\r\n", "", ""},
		{"*2\r\n$1\r\na\r\n:7\r\n", "a\n7", ""},
		{"*-1\r\n", "", ""},
		{"$999999999999\r\n", "", "bulk of"},
		{"$5\r\nab", "", "reading bulk"},
		{"?\r\n", "", "unexpected reply"},
		{"", "", "reading reply"},
	}
	for _, tt := range tests {
		got, err := readReply(bufio.NewReader(strings.NewReader(tt.in)))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %q %v, want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %q %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzReadReply: any bytes from the wire give a reply or an error, never a
// panic or a huge allocation.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "*2\r\n$1\r\na\r\n:7\r\n", "$3\r\nabc\r\n", "*1\r\n*1\r\n*1\r\n+x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = readReply(bufio.NewReader(bytes.NewReader(b)))
	})
}
