// Package faulty holds what the gateway's fault tests share: upstreams on
// 127.0.0.1 that misbehave at the TCP level (hang, answer slowly, break
// off mid-body, send what is not HTTP, die and come back on the same
// port), a raw HTTP/1.1 client that keeps no goroutine of its own, and a
// check that a test case leaves no goroutine behind (go.uber.org/goleak).
// Only tests import it.
package faulty

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Handler serves one accepted connection until it returns; the connection
// is closed then. A handler that waits must also return once Down is
// closed (Kill or Close).
type Handler func(c *Conn)

// Upstream is a TCP server on 127.0.0.1 whose connections a Handler
// serves. It counts the requests its handlers read (Conn.ReadRequest).
type Upstream struct {
	addr    string
	handler Handler

	mu    sync.Mutex
	ln    net.Listener
	conns map[*Conn]struct{}
	down  chan struct{} // closed by Kill and Close
	wg    sync.WaitGroup

	requests atomic.Int64
	accepted atomic.Int64
}

// Start starts an upstream on a free port; the test's cleanup closes it
// and waits for its handlers.
func Start(t testing.TB, h Handler) *Upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{addr: ln.Addr().String(), handler: h, conns: map[*Conn]struct{}{}}
	u.serve(ln)
	t.Cleanup(u.Close)
	return u
}

// Addr is the upstream's host:port; it stays across Kill and Restart.
func (u *Upstream) Addr() string { return u.addr }

// Requests is how many requests its handlers have read.
func (u *Upstream) Requests() int64 { return u.requests.Load() }

// Accepted is how many connections it has accepted.
func (u *Upstream) Accepted() int64 { return u.accepted.Load() }

func (u *Upstream) serve(ln net.Listener) {
	u.mu.Lock()
	u.ln, u.down = ln, make(chan struct{})
	down := u.down
	u.mu.Unlock()
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c := &Conn{Conn: nc, br: bufio.NewReader(nc), u: u, down: down}
			u.mu.Lock()
			if u.ln != ln { // killed while accepting
				u.mu.Unlock()
				c.Reset()
				return
			}
			u.conns[c] = struct{}{}
			u.wg.Add(1)
			u.mu.Unlock()
			u.accepted.Add(1)
			go func() {
				defer u.wg.Done()
				defer func() {
					u.mu.Lock()
					delete(u.conns, c)
					u.mu.Unlock()
					c.Close()
				}()
				u.handler(c)
			}()
		}
	}()
}

// Kill is the upstream's process dying: the listener is closed (new
// connections are refused) and every open connection is reset. It returns
// once every handler has returned.
func (u *Upstream) Kill() {
	u.mu.Lock()
	ln, down := u.ln, u.down
	u.ln = nil
	conns := make([]*Conn, 0, len(u.conns))
	for c := range u.conns {
		conns = append(conns, c)
	}
	u.mu.Unlock()
	if ln == nil {
		return
	}
	ln.Close()
	close(down)
	for _, c := range conns {
		c.Reset()
	}
	u.wg.Wait()
}

// Restart listens again on the same address after Kill.
func (u *Upstream) Restart() error {
	ln, err := net.Listen("tcp", u.addr)
	if err != nil {
		return err
	}
	u.serve(ln)
	return nil
}

// Close is Kill; the test's cleanup calls it.
func (u *Upstream) Close() { u.Kill() }

// Conn is one connection an upstream accepted.
type Conn struct {
	net.Conn
	br   *bufio.Reader
	u    *Upstream
	down <-chan struct{}
}

// Down is closed when the upstream is killed or closed.
func (c *Conn) Down() <-chan struct{} { return c.down }

// ReadRequest reads one request, its body included, and counts it.
func (c *Conn) ReadRequest() (*http.Request, []byte, error) {
	r, err := http.ReadRequest(c.br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, err
	}
	c.u.requests.Add(1)
	return r, body, nil
}

// Send writes s as it is.
func (c *Conn) Send(s string) error {
	_, err := io.WriteString(c.Conn, s)
	return err
}

// Reset closes the connection with a TCP reset (RST) rather than a FIN.
func (c *Conn) Reset() {
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Conn.Close()
}

// Wait blocks for d, or until the upstream goes down; false when it did.
func (c *Conn) Wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.down:
		return false
	}
}

// Serve is a Handler that reads requests one after the other on a
// keep-alive connection and writes what answer returns for each, byte for
// byte; an empty answer closes the connection without answering.
func Serve(answer func(r *http.Request, body []byte) string) Handler {
	return func(c *Conn) {
		for {
			r, body, err := c.ReadRequest()
			if err != nil {
				return
			}
			out := answer(r, body)
			if out == "" || c.Send(out) != nil {
				return
			}
		}
	}
}

// OK is an answer with status 200 and body.
func OK(body string) string {
	return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Status is an answer with the status and body.
func Status(code int, body string) string {
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\nContent-Type: text/plain\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
}

// Response is what a Client read.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Client sends raw HTTP/1.1 requests on one keep-alive connection,
// dialing a new one when it has none (or the server closed it). It
// starts no goroutine: a test that closes it leaves nothing behind.
type Client struct {
	Addr string
	// TLS, when set, makes the connection TLS with this config.
	TLS *tls.Config
	// Timeout bounds one exchange (default 10s): it keeps a broken test
	// from hanging, it is not an assertion.
	Timeout time.Duration

	conn net.Conn
	br   *bufio.Reader
}

// Do writes raw and reads one response. On an error the connection is
// closed; the next Do dials again.
func (c *Client) Do(raw string) (*Response, error) {
	if c.conn == nil {
		var conn net.Conn
		var err error
		d := &net.Dialer{Timeout: c.timeout()}
		if c.TLS != nil {
			conn, err = tls.DialWithDialer(d, "tcp", c.Addr, c.TLS)
		} else {
			conn, err = d.Dial("tcp", c.Addr)
		}
		if err != nil {
			return nil, err
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	_ = c.conn.SetDeadline(time.Now().Add(c.timeout()))
	resp, err := c.exchange(raw)
	if err != nil || resp.Header.Get("Connection") == "close" {
		c.Close()
	}
	return resp, err
}

func (c *Client) exchange(raw string) (*Response, error) {
	if _, err := io.WriteString(c.conn, raw); err != nil {
		return nil, err
	}
	method, _, _ := strings.Cut(raw, " ")
	r, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	if r.Close {
		r.Header.Set("Connection", "close")
	}
	return &Response{Status: r.StatusCode, Header: r.Header, Body: body}, nil
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 10 * time.Second
}

// Close closes the connection, if any.
func (c *Client) Close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn, c.br = nil, nil
	}
}

// Fetch sends raw on a connection of its own and reads one response.
func Fetch(addr, raw string) (*Response, error) {
	c := &Client{Addr: addr}
	defer c.Close()
	return c.Do(raw)
}

// Get is a GET of path on a connection of its own, closed after it.
func Get(addr, path string) (*Response, error) {
	return Fetch(addr, "GET "+path+" HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n")
}

// ErrStillOpen is what ClosedWithin returns for a connection the peer did
// not close in time.
var ErrStillOpen = errors.New("the connection is still open")

// ClosedWithin reads from conn, discarding what comes, until the peer
// closes it (EOF or a reset: nil) or bound passes (ErrStillOpen). The
// bound only keeps a broken test from hanging.
func ClosedWithin(conn net.Conn, bound time.Duration) ([]byte, error) {
	_ = conn.SetReadDeadline(time.Now().Add(bound))
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			return got, ErrStillOpen
		default:
			return got, nil
		}
	}
}

// The goroutines of fasthttp that notice a stop only after a sleep of
// their own, and its process-wide clock; none of them is a leak:
//   - a server's worker pool cleaner sleeps up to 10s (MaxIdleWorkerDuration)
//     between rounds and sees Shutdown at the next one (the server's
//     Serve and connection goroutines, which a leak would show, end at
//     Shutdown);
//   - a HostClient's idle connection cleaner sleeps up to its
//     MaxIdleConnDuration (an upstream's max_idle_conn_time) and ends once
//     the pool it sweeps is empty, which closing the upstream makes it;
//   - updateServerDate refreshes the Date header once a second for the
//     life of the process, started by the first server response.
var fasthttpSleepers = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*HostClient).connsCleaner"),
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
}

// CheckLeaks fails t if, once t's cleanups have run, a goroutine that was
// not running when CheckLeaks was called is still running. Call it first
// in a test case, before the case starts a gateway or an upstream: its own
// cleanup is then the last, after their shutdowns. Goroutines that are
// ending get up to 10s (what is still there then is a leak); those of the
// case's parent test and of the testing package are not counted, nor
// fasthttp's sleepers (fasthttpSleepers). Tests that use it must not run
// in parallel with others.
func CheckLeaks(t testing.TB) {
	t.Helper()
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, fasthttpSleepers...)
	t.Cleanup(func() {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if goleak.Find(opts...) == nil {
				return
			}
		}
		goleak.VerifyNone(t, opts...)
	})
}
