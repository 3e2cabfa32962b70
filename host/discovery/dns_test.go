package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/wasmgate/wasmgate/host/config"
)

// waitBound is the generous upper bound of every wait for something
// asynchronous; tests never sleep a fixed time.
const waitBound = 10 * time.Second

// testServer is a real DNS server on 127.0.0.1 (UDP and TCP on one port)
// answering from records the test changes under a mutex.
type testServer struct {
	addr string

	mu          sync.Mutex
	answers     map[string][]dns.RR // by "name TYPE"
	extra       map[string][]dns.RR // additional section, by "name TYPE"
	names       map[string]bool     // names that exist (others get NXDOMAIN)
	rcode       int                 // forced response code when not NOERROR
	drop        bool                // never answer (the client times out)
	truncateUDP bool                // answer UDP with TC and no records
	queries     []string            // "net name TYPE" of every query seen
}

func key(name string, qtype uint16) string {
	return dns.CanonicalName(name) + " " + dns.TypeToString[qtype]
}

// startServer starts a DNS server on a random loopback port.
func startServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.reset()
	var pc net.PacketConn
	var ln net.Listener
	// UDP and TCP must share the port (truncation falls back to TCP on the
	// same address); another process may hold the TCP side, so retry.
	for attempt := 0; ; attempt++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if attempt == 20 {
			t.Fatalf("no port free for both UDP and TCP: %v", err)
		}
	}
	ts.addr = pc.LocalAddr().String()
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: ts},
		{Listener: ln, Handler: ts},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { _ = srv.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(waitBound):
			t.Fatal("dns server did not start")
		}
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return ts
}

func (ts *testServer) reset() {
	ts.answers = map[string][]dns.RR{}
	ts.extra = map[string][]dns.RR{}
	ts.names = map[string]bool{}
	ts.rcode = dns.RcodeSuccess
	ts.drop = false
	ts.truncateUDP = false
}

// set replaces the records of the zone; rrs in text form, e.g.
// "web.test. 60 IN A 10.0.0.1". Records after the "extra" marker go to the
// additional section of the answer to the last record's owner and type.
func (ts *testServer) set(t *testing.T, rrs ...string) {
	t.Helper()
	answers := map[string][]dns.RR{}
	extra := map[string][]dns.RR{}
	names := map[string]bool{}
	var lastKey string
	inExtra := false
	for _, s := range rrs {
		if s == "extra" {
			inExtra = true
			continue
		}
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		h := rr.Header()
		names[dns.CanonicalName(h.Name)] = true
		if inExtra {
			extra[lastKey] = append(extra[lastKey], rr)
			continue
		}
		lastKey = key(h.Name, h.Rrtype)
		answers[lastKey] = append(answers[lastKey], rr)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.answers, ts.extra, ts.names = answers, extra, names
}

// addName makes name exist without records (NODATA rather than NXDOMAIN).
func (ts *testServer) addName(name string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.names[dns.CanonicalName(name)] = true
}

func (ts *testServer) update(f func(ts *testServer)) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	f(ts)
}

func (ts *testServer) seen() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return slices.Clone(ts.queries)
}

// ServeDNS implements dns.Handler.
func (ts *testServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	network := w.LocalAddr().Network()
	ts.queries = append(ts.queries, network+" "+key(q.Name, q.Qtype))
	if ts.drop {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	switch {
	case ts.rcode != dns.RcodeSuccess:
		m.Rcode = ts.rcode
	case !ts.names[dns.CanonicalName(q.Name)]:
		m.Rcode = dns.RcodeNameError
	case network == "udp" && ts.truncateUDP:
		m.Truncated = true
	default:
		k := key(q.Name, q.Qtype)
		m.Answer = append(m.Answer, ts.answers[k]...)
		m.Extra = append(m.Extra, ts.extra[k]...)
		// CNAME chains: answer with the CNAME and the target's records.
		if q.Qtype != dns.TypeCNAME {
			for _, rr := range ts.answers[key(q.Name, dns.TypeCNAME)] {
				m.Answer = append(m.Answer, rr)
				m.Answer = append(m.Answer, ts.answers[key(rr.(*dns.CNAME).Target, q.Qtype)]...)
			}
		}
	}
	_ = w.WriteMsg(m)
}

func newResolver(t *testing.T, ts *testServer, cfg config.DNSDiscovery) *Resolver {
	r, _ := newResolverLog(t, ts, cfg)
	return r
}

// newResolverLog returns a resolver querying ts and the log it writes.
func newResolverLog(t *testing.T, ts *testServer, cfg config.DNSDiscovery) (*Resolver, *testLog) {
	t.Helper()
	cfg.Resolver = ts.addr
	if cfg.Timeout == 0 {
		cfg.Timeout = config.Duration(waitBound)
	}
	log := &testLog{t: t}
	r, err := NewDNS(cfg, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return r, log
}

// testLog keeps log output and copies it to the test log.
type testLog struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *testLog) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	l.t.Log(line)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return len(p), nil
}

// count returns how many lines contain all of subs.
func (l *testLog) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

func TestResolve(t *testing.T) {
	ts := startServer(t)
	tests := []struct {
		name    string
		cfg     config.DNSDiscovery
		records []string
		setup   func(ts *testServer)
		want    []Target
		wantErr string
		// wantQueries lists queries that must have been seen, noQueries
		// queries that must not have been.
		wantQueries []string
		noQueries   []string
	}{
		{
			name: "A",
			cfg:  config.DNSDiscovery{Name: "web.test", Type: "A", Port: 8080},
			records: []string{
				"web.test. 60 IN A 10.0.0.10",
				"web.test. 60 IN A 10.0.0.2",
				"web.test. 60 IN A 10.0.0.2", // duplicate
			},
			want: []Target{{"10.0.0.2:8080", 1}, {"10.0.0.10:8080", 1}},
		},
		{
			name:    "AAAA only",
			cfg:     config.DNSDiscovery{Name: "web.test.", Type: "AAAA", Port: 443},
			records: []string{"web.test. 60 IN AAAA 2001:db8::2", "web.test. 60 IN AAAA 2001:db8::1", "web.test. 60 IN A 10.0.0.1"},
			want:    []Target{{"[2001:db8::1]:443", 1}, {"[2001:db8::2]:443", 1}},
			noQueries: []string{
				"udp web.test. A",
			},
		},
		{
			name:        "A merges AAAA",
			cfg:         config.DNSDiscovery{Name: "web.test", Port: 80},
			records:     []string{"web.test. 60 IN AAAA 2001:db8::1", "web.test. 60 IN A 192.0.2.1"},
			want:        []Target{{"192.0.2.1:80", 1}, {"[2001:db8::1]:80", 1}},
			wantQueries: []string{"udp web.test. A", "udp web.test. AAAA"},
		},
		{
			name:    "A without AAAA",
			cfg:     config.DNSDiscovery{Name: "web.test", Type: "A", Port: 80},
			records: []string{"web.test. 60 IN A 192.0.2.1"},
			want:    []Target{{"192.0.2.1:80", 1}},
		},
		{
			name:    "CNAME chain",
			cfg:     config.DNSDiscovery{Name: "alias.test", Type: "A", Port: 80},
			records: []string{"alias.test. 60 IN CNAME real.test.", "real.test. 60 IN A 192.0.2.7"},
			want:    []Target{{"192.0.2.7:80", 1}},
		},
		{
			name: "SRV weights ports and target resolution",
			cfg:  config.DNSDiscovery{Name: "_http._tcp.svc.test", Type: "SRV"},
			records: []string{
				// b.svc.test. has no glue: the resolver must ask for it.
				"b.svc.test. 60 IN A 10.1.0.2",
				"b.svc.test. 60 IN A 10.1.0.3",
				"backup.svc.test. 60 IN A 10.1.0.9",
				"_http._tcp.svc.test. 60 IN SRV 10 60 9001 a.svc.test.",
				"_http._tcp.svc.test. 60 IN SRV 10 0 9002 b.svc.test.",
				"_http._tcp.svc.test. 60 IN SRV 10 5 9003 b.svc.test.",
				"_http._tcp.svc.test. 60 IN SRV 20 99 9009 backup.svc.test.", // higher priority value: backup
				"_http._tcp.svc.test. 60 IN SRV 10 7 9004 .",                 // not available
				"extra",
				"a.svc.test. 60 IN A 10.1.0.1",
				"a.svc.test. 60 IN AAAA 2001:db8::a",
				"unrelated.svc.test. 60 IN A 10.9.9.9",
			},
			want: []Target{
				{"10.1.0.1:9001", 60},
				{"10.1.0.2:9002", 1},
				{"10.1.0.2:9003", 5},
				{"10.1.0.3:9002", 1},
				{"10.1.0.3:9003", 5},
				{"[2001:db8::a]:9001", 60},
			},
			wantQueries: []string{"udp _http._tcp.svc.test. SRV", "udp b.svc.test. A", "udp b.svc.test. AAAA"},
			noQueries:   []string{"udp a.svc.test. A", "udp a.svc.test. AAAA", "udp backup.svc.test. A"},
		},
		{
			name: "SRV lowest priority wins whatever the order",
			cfg:  config.DNSDiscovery{Name: "_x._tcp.svc.test", Type: "SRV"},
			records: []string{
				"_x._tcp.svc.test. 60 IN SRV 30 1 80 c.svc.test.",
				"_x._tcp.svc.test. 60 IN SRV 20 1 80 b.svc.test.",
				"_x._tcp.svc.test. 60 IN SRV 5 1 80 a.svc.test.",
				"_x._tcp.svc.test. 60 IN SRV 20 1 80 b.svc.test.",
				"extra",
				"a.svc.test. 60 IN A 10.1.0.1",
				"b.svc.test. 60 IN A 10.1.0.2",
				"c.svc.test. 60 IN A 10.1.0.3",
			},
			want: []Target{{"10.1.0.1:80", 1}},
		},
		{
			name: "SRV duplicate keeps larger weight",
			cfg:  config.DNSDiscovery{Name: "_x._tcp.svc.test", Type: "SRV"},
			records: []string{
				"_x._tcp.svc.test. 60 IN SRV 0 3 80 a.svc.test.",
				"_x._tcp.svc.test. 60 IN SRV 0 8 80 a.svc.test.",
				"extra",
				"a.svc.test. 60 IN A 10.1.0.1",
			},
			want: []Target{{"10.1.0.1:80", 8}},
		},
		{
			name: "SRV target failing fails the resolution",
			cfg:  config.DNSDiscovery{Name: "_x._tcp.svc.test", Type: "SRV"},
			records: []string{
				"_x._tcp.svc.test. 60 IN SRV 0 3 80 gone.svc.test.",
			},
			wantErr: "srv target gone.svc.test.: dns query gone.svc.test. A via 127.0.0.1:",
		},
		{
			name:    "NODATA is empty, not an error",
			cfg:     config.DNSDiscovery{Name: "web.test", Type: "A", Port: 80},
			records: []string{"web.test. 60 IN TXT \"hello\""},
			want:    []Target{},
		},
		{
			name:    "NXDOMAIN",
			cfg:     config.DNSDiscovery{Name: "missing.test", Type: "A", Port: 80},
			records: []string{"web.test. 60 IN A 10.0.0.1"},
			wantErr: "NXDOMAIN",
		},
		{
			name:    "SERVFAIL",
			cfg:     config.DNSDiscovery{Name: "web.test", Type: "A", Port: 80},
			records: []string{"web.test. 60 IN A 10.0.0.1"},
			setup:   func(ts *testServer) { ts.rcode = dns.RcodeServerFailure },
			wantErr: "SERVFAIL",
		},
		{
			name:        "truncated UDP falls back to TCP",
			cfg:         config.DNSDiscovery{Name: "web.test", Type: "A", Port: 80},
			records:     []string{"web.test. 60 IN A 10.0.0.1", "web.test. 60 IN AAAA 2001:db8::1"},
			setup:       func(ts *testServer) { ts.truncateUDP = true },
			want:        []Target{{"10.0.0.1:80", 1}, {"[2001:db8::1]:80", 1}},
			wantQueries: []string{"udp web.test. A", "tcp web.test. A", "udp web.test. AAAA", "tcp web.test. AAAA"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.update(func(ts *testServer) { ts.reset(); ts.queries = nil })
			ts.set(t, tt.records...)
			if tt.setup != nil {
				ts.update(tt.setup)
			}
			r := newResolver(t, ts, tt.cfg)
			got, err := r.Resolve(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q (targets %v)", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("targets = %v, want %v", got, tt.want)
			}
			seen := ts.seen()
			for _, q := range tt.wantQueries {
				if !slices.Contains(seen, q) {
					t.Errorf("query %q not seen; seen %q", q, seen)
				}
			}
			for _, q := range tt.noQueries {
				if slices.Contains(seen, q) {
					t.Errorf("query %q seen, want none; seen %q", q, seen)
				}
			}
		})
	}
}

func TestResolveTimeout(t *testing.T) {
	ts := startServer(t)
	ts.set(t, "web.test. 60 IN A 10.0.0.1")
	ts.update(func(ts *testServer) { ts.drop = true })
	r := newResolver(t, ts, config.DNSDiscovery{Name: "web.test", Port: 80, Timeout: config.Duration(50 * time.Millisecond)})
	_, err := r.Resolve(context.Background())
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestResolveContextCanceled(t *testing.T) {
	ts := startServer(t)
	ts.set(t, "web.test. 60 IN A 10.0.0.1")
	ts.update(func(ts *testServer) { ts.drop = true })
	r := newResolver(t, ts, config.DNSDiscovery{Name: "web.test", Port: 80})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Resolve(ctx); err == nil {
		t.Fatal("Resolve with a canceled context succeeded")
	}
}

// runner runs Resolver.Run in the background and collects its updates.
type runner struct {
	updates chan []Target
	cancel  context.CancelFunc
	done    chan struct{}
}

func startRun(t *testing.T, r *Resolver) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rn := &runner{updates: make(chan []Target, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rn.done)
		r.Run(ctx, func(ts []Target) { rn.updates <- ts })
	}()
	t.Cleanup(rn.stop)
	return rn
}

// stop cancels Run and waits for it to return.
func (rn *runner) stop() {
	rn.cancel()
	<-rn.done
}

func (rn *runner) next(t *testing.T) []Target {
	t.Helper()
	select {
	case ts := <-rn.updates:
		return ts
	case <-time.After(waitBound):
		t.Fatal("no update from Run")
		return nil
	}
}

// expectNone asserts that no update is pending.
func (rn *runner) expectNone(t *testing.T) {
	t.Helper()
	select {
	case ts := <-rn.updates:
		t.Fatalf("unexpected update %v", ts)
	default:
	}
}

// waitRounds waits until the server has seen n more queries for name,
// proving that Run went through that many more resolutions.
func waitRounds(t *testing.T, ts *testServer, query string, n int) {
	t.Helper()
	count := func() int {
		c := 0
		for _, q := range ts.seen() {
			if q == query {
				c++
			}
		}
		return c
	}
	want := count() + n
	deadline := time.Now().Add(waitBound)
	for count() < want {
		if time.Now().After(deadline) {
			t.Fatalf("server saw %d queries %q, want %d", count(), query, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRun(t *testing.T) {
	const q = "udp web.test. A"
	tests := []struct {
		name string
		// fail makes the next resolutions fail or come back empty.
		fail func(t *testing.T, ts *testServer)
		// warning is what the log must say, level WARN, while failing.
		warning []string
	}{
		{
			name: "SERVFAIL",
			fail: func(t *testing.T, ts *testServer) {
				ts.update(func(ts *testServer) { ts.rcode = dns.RcodeServerFailure })
			},
			warning: []string{"dns discovery failed; keeping last targets", "targets=2", "SERVFAIL"},
		},
		{
			name:    "NXDOMAIN",
			fail:    func(t *testing.T, ts *testServer) { ts.set(t, "other.test. 60 IN A 10.0.0.1") },
			warning: []string{"dns discovery failed; keeping last targets", "NXDOMAIN"},
		},
		{
			name:    "no records",
			fail:    func(t *testing.T, ts *testServer) { ts.set(t); ts.addName("web.test") },
			warning: []string{"dns discovery found no records; keeping last targets", "targets=2"},
		},
		{
			name:    "timeout",
			fail:    func(t *testing.T, ts *testServer) { ts.update(func(ts *testServer) { ts.drop = true }) },
			warning: []string{"dns discovery failed; keeping last targets", "timeout"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t)
			ts.set(t, "web.test. 60 IN A 10.0.0.1")
			r, log := newResolverLog(t, ts, config.DNSDiscovery{
				Name:     "web.test",
				Port:     80,
				Interval: config.Duration(20 * time.Millisecond),
				Timeout:  config.Duration(50 * time.Millisecond),
			})
			rn := startRun(t, r)

			if got, want := rn.next(t), []Target{{"10.0.0.1:80", 1}}; !slices.Equal(got, want) {
				t.Fatalf("first update = %v, want %v", got, want)
			}
			// Unchanged records: more rounds, no update.
			waitRounds(t, ts, q, 3)
			rn.expectNone(t)

			// A change is picked up.
			ts.set(t, "web.test. 60 IN A 10.0.0.1", "web.test. 60 IN AAAA 2001:db8::1")
			if got, want := rn.next(t), []Target{{"10.0.0.1:80", 1}, {"[2001:db8::1]:80", 1}}; !slices.Equal(got, want) {
				t.Fatalf("second update = %v, want %v", got, want)
			}

			// Failures keep the last set: no update, in particular no empty one.
			tt.fail(t, ts)
			waitRounds(t, ts, q, 3)
			rn.expectNone(t)
			if log.count(append([]string{"level=WARN"}, tt.warning...)...) == 0 {
				t.Errorf("no warning with %q logged", tt.warning)
			}

			// Recovery with new records is picked up again.
			ts.update(func(ts *testServer) { ts.reset() })
			ts.set(t, "web.test. 60 IN A 10.0.0.3")
			if got, want := rn.next(t), []Target{{"10.0.0.3:80", 1}}; !slices.Equal(got, want) {
				t.Fatalf("update after recovery = %v, want %v", got, want)
			}
		})
	}
}

func TestRunNothingBeforeFirstGoodSet(t *testing.T) {
	ts := startServer(t)
	ts.addName("web.test")
	r := newResolver(t, ts, config.DNSDiscovery{Name: "web.test", Port: 80, Interval: config.Duration(20 * time.Millisecond)})
	rn := startRun(t, r)
	waitRounds(t, ts, "udp web.test. A", 3)
	rn.expectNone(t)
	ts.set(t, "web.test. 60 IN A 10.0.0.1")
	if got, want := rn.next(t), []Target{{"10.0.0.1:80", 1}}; !slices.Equal(got, want) {
		t.Fatalf("update = %v, want %v", got, want)
	}
}

func TestRunUpdateOwnsItsSlice(t *testing.T) {
	ts := startServer(t)
	ts.set(t, "web.test. 60 IN A 10.0.0.1")
	r := newResolver(t, ts, config.DNSDiscovery{Name: "web.test", Port: 80, Interval: config.Duration(20 * time.Millisecond)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan int, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n := 0
		r.Run(ctx, func(got []Target) {
			n++
			got[0].Address = "scribbled" // must not change what Run compares against
			calls <- n
		})
	}()
	select {
	case <-calls:
	case <-time.After(waitBound):
		t.Fatal("no update")
	}
	waitRounds(t, ts, "udp web.test. A", 3)
	cancel()
	<-done
	if len(calls) != 0 {
		t.Fatalf("update called again after the caller changed its slice")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ts := startServer(t)
	ts.set(t, "web.test. 60 IN A 10.0.0.1")
	r := newResolver(t, ts, config.DNSDiscovery{Name: "web.test", Port: 80, Interval: config.Duration(time.Hour)})
	rn := startRun(t, r)
	rn.next(t)
	rn.cancel()
	select {
	case <-rn.done:
	case <-time.After(waitBound):
		t.Fatal("Run did not return after cancel")
	}
}

func TestNewDNS(t *testing.T) {
	dir := t.TempDir()
	writeConf := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeConf("good", "search example.com\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n")
	v6 := writeConf("v6", "nameserver 2001:db8::53\n")
	empty := writeConf("empty", "search example.com\n")

	tests := []struct {
		name       string
		cfg        config.DNSDiscovery
		resolvConf string
		wantServer string
		wantErr    string
	}{
		{name: "explicit resolver", cfg: config.DNSDiscovery{Name: "a.test", Port: 80, Resolver: "127.0.0.1:5353"}, wantServer: "127.0.0.1:5353"},
		{name: "resolver without port", cfg: config.DNSDiscovery{Name: "a.test", Port: 80, Resolver: "127.0.0.1"}, wantServer: "127.0.0.1:53"},
		{name: "IPv6 resolver without port", cfg: config.DNSDiscovery{Name: "a.test", Port: 80, Resolver: "::1"}, wantServer: "[::1]:53"},
		{name: "IPv6 resolver with port", cfg: config.DNSDiscovery{Name: "a.test", Port: 80, Resolver: "[::1]:5353"}, wantServer: "[::1]:5353"},
		{name: "resolv.conf first nameserver", cfg: config.DNSDiscovery{Name: "a.test", Port: 80}, resolvConf: good, wantServer: "192.0.2.53:53"},
		{name: "resolv.conf IPv6", cfg: config.DNSDiscovery{Name: "a.test", Port: 80}, resolvConf: v6, wantServer: "[2001:db8::53]:53"},
		{name: "resolv.conf without nameserver", cfg: config.DNSDiscovery{Name: "a.test", Port: 80}, resolvConf: empty, wantErr: "no nameserver in"},
		{name: "resolv.conf missing", cfg: config.DNSDiscovery{Name: "a.test", Port: 80}, resolvConf: filepath.Join(dir, "nope"), wantErr: "unreadable"},
		{name: "SRV needs no port", cfg: config.DNSDiscovery{Name: "_a._tcp.test", Type: "SRV", Resolver: "127.0.0.1"}, wantServer: "127.0.0.1:53"},
		{name: "empty name", cfg: config.DNSDiscovery{Port: 80, Resolver: "127.0.0.1"}, wantErr: "name is empty"},
		{name: "bad name", cfg: config.DNSDiscovery{Name: "a..b", Port: 80, Resolver: "127.0.0.1"}, wantErr: "not a valid domain name"},
		{name: "bad type", cfg: config.DNSDiscovery{Name: "a.test", Type: "MX", Port: 80, Resolver: "127.0.0.1"}, wantErr: `unknown record type "MX"`},
		{name: "A needs port", cfg: config.DNSDiscovery{Name: "a.test", Type: "A", Resolver: "127.0.0.1"}, wantErr: "port 0 out of range"},
		{name: "port too large", cfg: config.DNSDiscovery{Name: "a.test", Type: "AAAA", Port: 65536, Resolver: "127.0.0.1"}, wantErr: "port 65536 out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.resolvConf != "" {
				old := resolvConfPath
				resolvConfPath = tt.resolvConf
				defer func() { resolvConfPath = old }()
			}
			r, err := NewDNS(tt.cfg, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Server() != tt.wantServer {
				t.Errorf("server = %q, want %q", r.Server(), tt.wantServer)
			}
			if r.interval != defaultInterval {
				t.Errorf("interval = %v, want default %v", r.interval, defaultInterval)
			}
		})
	}
}

func ExampleResolver_Run() {
	r, err := NewDNS(config.DNSDiscovery{
		Name:     "api.internal.example",
		Type:     "A",
		Port:     8080,
		Interval: config.Duration(10 * time.Second),
		Resolver: "127.0.0.1:53",
	}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real caller runs until shutdown
	r.Run(ctx, func(targets []Target) {
		// Swap the pool's targets here.
	})
	// Output:
}
