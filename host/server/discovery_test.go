package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/valyala/fasthttp"
)

// srvName is the SRV name the discovery test's gateway resolves.
const srvName = "_http._tcp.svc.test."

// dnsZone is a real DNS server on 127.0.0.1 (UDP) that answers the SRV
// records of srvName and the A records of their targets from state the test
// changes under a mutex, as a service registry would.
type dnsZone struct {
	addr string

	mu    sync.Mutex
	srvs  map[string]srvTarget // SRV records by target name (fully qualified)
	hosts map[string]net.IP    // A records by name (fully qualified)
}

type srvTarget struct {
	port, weight uint16
}

func startDNSZone(t *testing.T) *dnsZone {
	t.Helper()
	z := &dnsZone{srvs: map[string]srvTarget{}, hosts: map[string]net.IP{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z.addr = pc.LocalAddr().String()
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: z, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("dns server did not start")
	}
	t.Cleanup(func() { _ = srv.Shutdown() })
	return z
}

// ServeDNS answers SRV queries for srvName and A queries for known hosts;
// AAAA queries for known hosts get an empty NOERROR answer (the name exists,
// it has no IPv6 address) and anything else NXDOMAIN.
func (z *dnsZone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	z.mu.Lock()
	if len(q.Question) == 1 {
		name := dns.CanonicalName(q.Question[0].Name)
		_, isHost := z.hosts[name]
		switch qtype := q.Question[0].Qtype; {
		case name == srvName && qtype == dns.TypeSRV:
			for target, s := range z.srvs {
				m.Answer = append(m.Answer, &dns.SRV{
					Hdr:      dns.RR_Header{Name: srvName, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1},
					Priority: 10, Weight: s.weight, Port: s.port, Target: target,
				})
			}
		case isHost && qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   z.hosts[name],
			})
		case isHost || name == srvName:
			// NOERROR without records.
		default:
			m.Rcode = dns.RcodeNameError
		}
	}
	z.mu.Unlock()
	_ = w.WriteMsg(m)
}

// publish makes b reachable as name: an A record and an SRV record with
// b's port and the given weight.
func (z *dnsZone) publish(name string, b *dnsBackend, weight uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.hosts[name] = net.IPv4(127, 0, 0, 1)
	z.srvs[name] = srvTarget{port: b.port, weight: weight}
}

// withdraw removes name's SRV record; its A record stays, as it would while
// a deregistered instance drains.
func (z *dnsZone) withdraw(name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.srvs, name)
}

// dnsBackend is a real fasthttp upstream that answers with its id, counts
// the requests it started and those it is serving, and can hold requests.
type dnsBackend struct {
	id       string
	addr     string
	port     uint16
	hits     atomic.Int64
	inflight atomic.Int64

	mu   sync.Mutex
	gate chan struct{} // while not nil, requests wait for it to close
}

func startDNSBackend(t *testing.T, id string) *dnsBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &dnsBackend{id: id, addr: ln.Addr().String(), port: uint16(ln.Addr().(*net.TCPAddr).Port)}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		b.hits.Add(1)
		b.inflight.Add(1)
		defer b.inflight.Add(-1)
		b.mu.Lock()
		gate := b.gate
		b.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-time.After(10 * time.Second): // never outlive the test
			}
		}
		ctx.SetBodyString(b.id)
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return b
}

// holdRequests makes new requests wait until the returned release is
// called, so that a test can have requests in flight on b for sure.
func (b *dnsBackend) holdRequests() (release func()) {
	gate := make(chan struct{})
	b.mu.Lock()
	b.gate = gate
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			b.gate = nil
			b.mu.Unlock()
			close(gate)
		})
	}
}

// listedTargets returns the targets GET /upstreams shows for upstream name,
// address to weight.
func listedTargets(t *testing.T, g *gateway, name string) map[string]int {
	t.Helper()
	r := g.admin(t, "GET", "/upstreams")
	if r.status != 200 {
		t.Fatalf("GET /upstreams: %d %s", r.status, r.body)
	}
	var body struct {
		Upstreams []struct {
			Name    string `json:"name"`
			Targets []struct {
				Address string `json:"address"`
				Weight  int    `json:"weight"`
			} `json:"targets"`
		} `json:"upstreams"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("GET /upstreams: %v: %s", err, r.body)
	}
	out := map[string]int{}
	for _, u := range body.Upstreams {
		if u.Name != name {
			continue
		}
		for _, tg := range u.Targets {
			out[tg.Address] = tg.Weight
		}
	}
	return out
}

func sameTargets(got, want map[string]int) bool {
	if len(got) != len(want) {
		return false
	}
	for a, w := range want {
		if gw, ok := got[a]; !ok || gw != w {
			return false
		}
	}
	return true
}

// TestDNSDiscoveryThroughGateway runs SRV discovery against a real DNS
// server while clients send traffic without pause: a target published in
// DNS starts taking requests, a withdrawn one stops taking new ones, the
// requests it holds when withdrawn complete, and no request fails.
func TestDNSDiscoveryThroughGateway(t *testing.T) {
	zone := startDNSZone(t)
	b1, b2, b3 := startDNSBackend(t, "t1"), startDNSBackend(t, "t2"), startDNSBackend(t, "t3")
	zone.publish("t1.svc.test.", b1, 10)
	zone.publish("t2.svc.test.", b2, 20)

	g := startGateway(t, 1000, fmt.Sprintf(`
upstreams:
  - name: svc
    discovery:
      dns: {name: _http._tcp.svc.test, type: SRV, interval: 50ms, timeout: 1s, resolver: %s}
routes:
  - {name: all, match: {path_prefix: /}, upstream: svc}
`, zone.addr))

	// The first resolution happens before the gateway serves.
	want := map[string]int{b1.addr: 10, b2.addr: 20}
	waitFor(t, "the initial SRV targets listed", func() bool { return sameTargets(listedTargets(t, g, "svc"), want) })

	// Four clients send requests back to back until the end of the test.
	// Each records the marker generation its last completed request
	// started in: once every client has completed a request started after
	// a change was observed, no request from before the change is left.
	const workers = 4
	var (
		marker    atomic.Int64
		doneGen   [workers]atomic.Int64
		doneAfter [workers]atomic.Int64 // requests completed that started at the current marker
		ok        atomic.Int64
		failed    atomic.Int64
		firstErr  atomic.Value
		wg        sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer func() { stop(); wg.Wait() }()
	valid := map[string]bool{"t1": true, "t2": true, "t3": true}
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
				gen := marker.Load()
				r, err := tryDo("GET", g.url("/work"), nil, nil)
				if err != nil || r.status != 200 || !valid[string(r.body)] {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("err=%v status=%d body=%q", err, r.status, r.body))
					continue
				}
				ok.Add(1)
				if doneGen[w].Swap(gen) == gen {
					doneAfter[w].Add(1)
				} else {
					doneAfter[w].Store(1)
				}
			}
		})
	}
	// allDone reports whether every client completed n requests that
	// started at marker generation gen or later.
	allDone := func(gen, n int64) bool {
		for w := range workers {
			if doneGen[w].Load() < gen || doneAfter[w].Load() < n {
				return false
			}
		}
		return true
	}
	waitFor(t, "the initial targets to take requests", func() bool { return b1.hits.Load() > 0 && b2.hits.Load() > 0 })

	// Published: t3 joins the pool and takes requests.
	zone.publish("t3.svc.test.", b3, 30)
	want = map[string]int{b1.addr: 10, b2.addr: 20, b3.addr: 30}
	waitFor(t, "t3 listed after it was published", func() bool { return sameTargets(listedTargets(t, g, "svc"), want) })
	waitFor(t, "t3 to take requests", func() bool { return b3.hits.Load() > 0 })

	// Withdrawn while it holds requests: t2 leaves the pool, what it holds
	// completes, and it gets nothing new.
	release := b2.holdRequests()
	defer release()
	waitFor(t, "requests held on t2", func() bool { return b2.inflight.Load() > 0 })
	zone.withdraw("t2.svc.test.")
	want = map[string]int{b1.addr: 10, b3.addr: 30}
	waitFor(t, "t2 gone from the list after it was withdrawn", func() bool { return sameTargets(listedTargets(t, g, "svc"), want) })
	held := b2.inflight.Load()
	if held == 0 {
		t.Fatal("no request was in flight on t2 when it left the pool")
	}
	gen := marker.Add(1)
	release()
	waitFor(t, "every client past the withdrawal", func() bool { return allDone(gen, 1) })
	if n := b2.inflight.Load(); n != 0 {
		t.Fatalf("%d requests still on t2 after every client moved on", n)
	}
	hits1, hits2, hits3 := b1.hits.Load(), b2.hits.Load(), b3.hits.Load()
	gen = marker.Add(1)
	waitFor(t, "50 more requests per client", func() bool { return allDone(gen, 50) })
	if n := b2.hits.Load() - hits2; n != 0 {
		t.Errorf("t2 received %d new requests after it was withdrawn from DNS", n)
	}
	if b1.hits.Load() == hits1 || b3.hits.Load() == hits3 {
		t.Errorf("remaining targets did not share the load: t1 %d→%d, t3 %d→%d", hits1, b1.hits.Load(), hits3, b3.hits.Load())
	}

	stop()
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed while targets changed; first: %v", n, n+ok.Load(), firstErr.Load())
	}
	t.Logf("%d requests, %d held on t2 when it was withdrawn; hits t1=%d t2=%d t3=%d",
		ok.Load(), held, b1.hits.Load(), b2.hits.Load(), b3.hits.Load())
}
