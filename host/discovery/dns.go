// Package discovery finds upstream targets at run time.
//
// The DNS resolver re-resolves a name on an interval (A/AAAA, or SRV for
// ports and weights) and hands the proxy a new target set only when the set
// changed. A failed or empty resolution never empties a pool that had good
// targets: a DNS outage must not turn into a gateway outage, so the last good
// set is kept until DNS answers again.
//
// The resolver talks DNS itself (github.com/miekg/dns) instead of going
// through net.Resolver so that the server, the per-query timeout and the
// record type are exactly those of the config, SRV weights are visible, and
// no OS cache hides changes between intervals.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/wasmgate/wasmgate/host/config"
)

// Defaults applied when the config leaves a field zero (the config decoder
// normally fills them; these keep a hand-built config safe).
const (
	defaultInterval = 10 * time.Second
	defaultTimeout  = 2 * time.Second
	// ednsSize is the EDNS0 UDP payload size advertised in queries: the
	// DNS Flag Day 2020 value, which avoids IP fragmentation on any path.
	ednsSize = 1232
	// maxSRVTargets bounds the per-resolution work on a hostile or broken
	// answer: each SRV target may cost two more queries.
	maxSRVTargets = 256
)

// resolvConfPath is the file read when the config names no resolver.
// A variable so that tests can point it at a file of their own.
var resolvConfPath = "/etc/resolv.conf"

// Target is one discovered backend.
type Target struct {
	// Address is host:port with the IP in literal form; IPv6 is bracketed.
	Address string
	// Weight is the relative weight, always >= 1.
	Weight int
}

// Resolver resolves one DNSDiscovery config. It is safe for concurrent use;
// Run is meant to be called once per upstream.
type Resolver struct {
	name     string // fully qualified
	qtype    uint16 // dns.TypeA (meaning A and AAAA), dns.TypeAAAA or dns.TypeSRV
	port     uint16 // for A/AAAA
	interval time.Duration
	server   string // host:port of the DNS server
	udp      *dns.Client
	tcp      *dns.Client
	log      *slog.Logger
}

// NewDNS returns a Resolver for cfg. With cfg.Resolver empty it uses the
// first nameserver of /etc/resolv.conf and fails when there is none.
// cfg.Name is taken as fully qualified: no search domains are applied.
// log may be nil.
func NewDNS(cfg config.DNSDiscovery, log *slog.Logger) (*Resolver, error) {
	name := strings.TrimSpace(cfg.Name)
	if name == "" {
		return nil, errors.New("dns discovery: name is empty")
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("dns discovery %q: not a valid domain name", name)
	}
	r := &Resolver{
		name:     dns.Fqdn(name),
		interval: cfg.Interval.D(),
		log:      log,
	}
	switch strings.ToUpper(cfg.Type) {
	case "", "A":
		r.qtype = dns.TypeA
	case "AAAA":
		r.qtype = dns.TypeAAAA
	case "SRV":
		r.qtype = dns.TypeSRV
	default:
		return nil, fmt.Errorf("dns discovery %q: unknown record type %q (want A, AAAA or SRV)", name, cfg.Type)
	}
	if r.qtype != dns.TypeSRV {
		if cfg.Port < 1 || cfg.Port > 65535 {
			return nil, fmt.Errorf("dns discovery %q: port %d out of range 1-65535 (required for %s records)", name, cfg.Port, cfg.Type)
		}
		r.port = uint16(cfg.Port)
	}
	if r.interval <= 0 {
		r.interval = defaultInterval
	}
	timeout := cfg.Timeout.D()
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	server, err := serverAddress(cfg.Resolver)
	if err != nil {
		return nil, fmt.Errorf("dns discovery %q: %w", name, err)
	}
	r.server = server
	r.udp = &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ednsSize}
	r.tcp = &dns.Client{Net: "tcp", Timeout: timeout}
	return r, nil
}

// serverAddress turns the configured resolver into host:port, defaulting
// the port to 53 and the server to the first nameserver of resolv.conf.
func serverAddress(resolver string) (string, error) {
	resolver = strings.TrimSpace(resolver)
	if resolver == "" {
		cc, err := dns.ClientConfigFromFile(resolvConfPath)
		if err != nil {
			return "", fmt.Errorf("no resolver configured and %s unreadable: %w", resolvConfPath, err)
		}
		if len(cc.Servers) == 0 {
			return "", fmt.Errorf("no resolver configured and no nameserver in %s", resolvConfPath)
		}
		return net.JoinHostPort(cc.Servers[0], cc.Port), nil
	}
	if _, _, err := net.SplitHostPort(resolver); err == nil {
		return resolver, nil
	}
	// A bare host or IP (IPv6 included, brackets optional): port 53.
	return net.JoinHostPort(strings.Trim(resolver, "[]"), "53"), nil
}

// Server returns the DNS server host:port the resolver queries.
func (r *Resolver) Server() string { return r.server }

// Resolve performs one resolution. Type A queries A and AAAA and merges
// them; SRV takes port and weight from each record of the lowest priority
// (higher priorities are backups a pool does not know about) and resolves
// the record's target through the additional section or, when absent
// there, A and AAAA queries. The result is sorted by address and has no
// duplicates. An error is returned when any query fails or answers with a
// code other than NOERROR (NXDOMAIN included); a name without records
// yields an empty set and no error.
func (r *Resolver) Resolve(ctx context.Context) ([]Target, error) {
	set := make(map[netip.AddrPort]int)
	switch r.qtype {
	case dns.TypeA:
		if err := r.addHost(ctx, set, r.name, r.port, 1, dns.TypeA, dns.TypeAAAA); err != nil {
			return nil, err
		}
	case dns.TypeAAAA:
		if err := r.addHost(ctx, set, r.name, r.port, 1, dns.TypeAAAA); err != nil {
			return nil, err
		}
	case dns.TypeSRV:
		if err := r.addSRV(ctx, set); err != nil {
			return nil, err
		}
	}
	return sortedTargets(set), nil
}

// addHost queries name for each of qtypes and adds every address found.
func (r *Resolver) addHost(ctx context.Context, set map[netip.AddrPort]int, name string, port uint16, weight int, qtypes ...uint16) error {
	for _, qt := range qtypes {
		msg, err := r.exchange(ctx, name, qt)
		if err != nil {
			return err
		}
		// Every address record of the answer counts, whatever its owner:
		// a recursive server answers a CNAME chain with the CNAMEs and the
		// final records in one section.
		addAddrs(set, msg.Answer, "", port, weight)
	}
	return nil
}

// addSRV resolves the SRV name and then the targets of its records.
func (r *Resolver) addSRV(ctx context.Context, set map[netip.AddrPort]int) error {
	msg, err := r.exchange(ctx, r.name, dns.TypeSRV)
	if err != nil {
		return err
	}
	var srvs []*dns.SRV
	for _, rr := range msg.Answer {
		srv, ok := rr.(*dns.SRV)
		// A target of "." means "service decidedly not available here" (RFC 2782).
		if !ok || srv.Target == "." || srv.Target == "" {
			continue
		}
		if len(srvs) > 0 && srv.Priority > srvs[0].Priority {
			continue
		}
		if len(srvs) > 0 && srv.Priority < srvs[0].Priority {
			srvs = srvs[:0]
		}
		srvs = append(srvs, srv)
	}
	if len(srvs) > maxSRVTargets {
		srvs = srvs[:maxSRVTargets]
	}
	for _, srv := range srvs {
		weight := max(int(srv.Weight), 1)
		if addAddrs(set, msg.Extra, srv.Target, srv.Port, weight) {
			continue
		}
		if err := r.addHost(ctx, set, srv.Target, srv.Port, weight, dns.TypeA, dns.TypeAAAA); err != nil {
			return fmt.Errorf("srv target %s: %w", srv.Target, err)
		}
	}
	return nil
}

// addAddrs adds the A and AAAA records of rrs (only those owned by owner
// when owner is not empty) with port and weight. A duplicate keeps the
// larger weight. It reports whether any record was added.
func addAddrs(set map[netip.AddrPort]int, rrs []dns.RR, owner string, port uint16, weight int) bool {
	added := false
	for _, rr := range rrs {
		var ip netip.Addr
		var ok bool
		switch rr := rr.(type) {
		case *dns.A:
			ip, ok = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			ip, ok = netip.AddrFromSlice(rr.AAAA.To16())
		default:
			continue
		}
		if !ok {
			continue
		}
		if owner != "" && !strings.EqualFold(dns.CanonicalName(rr.Header().Name), dns.CanonicalName(owner)) {
			continue
		}
		ap := netip.AddrPortFrom(ip.Unmap(), port)
		set[ap] = max(set[ap], weight)
		added = true
	}
	return added
}

// sortedTargets flattens set into targets ordered by IP then port.
func sortedTargets(set map[netip.AddrPort]int) []Target {
	aps := make([]netip.AddrPort, 0, len(set))
	for ap := range set {
		aps = append(aps, ap)
	}
	slices.SortFunc(aps, netip.AddrPort.Compare)
	out := make([]Target, len(aps))
	for i, ap := range aps {
		out[i] = Target{Address: ap.String(), Weight: set[ap]}
	}
	return out
}

// exchange sends one query over UDP, retries it over TCP when the answer
// was truncated, and turns any code but NOERROR into an error.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	q.SetEdns0(ednsSize, false)
	what := name + " " + dns.TypeToString[qtype]

	msg, _, err := r.udp.ExchangeContext(ctx, q, r.server)
	if err != nil {
		return nil, fmt.Errorf("dns query %s via %s: %w", what, r.server, err)
	}
	if msg.Truncated {
		msg, _, err = r.tcp.ExchangeContext(ctx, q, r.server)
		if err != nil {
			return nil, fmt.Errorf("dns query %s via %s (tcp after truncation): %w", what, r.server, err)
		}
	}
	if msg.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("dns query %s via %s: %s", what, r.server, rcodeString(msg.Rcode))
	}
	return msg, nil
}

func rcodeString(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(rc)
}

// Run resolves at once and then every interval until ctx is done, calling
// update (from Run's goroutine) with the new set whenever it differs from
// the previous one. A failed resolution or an empty answer is logged and
// leaves the last good set in place: update is never called with an empty
// set. update receives its own copy of the set.
func (r *Resolver) Run(ctx context.Context, update func([]Target)) {
	ticker := time.NewTicker(r.interval)
	defer ticker.Stop()
	var last []Target
	for {
		last = r.refresh(ctx, last, update)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// refresh runs one resolution for Run and returns the set now in force.
func (r *Resolver) refresh(ctx context.Context, last []Target, update func([]Target)) []Target {
	ts, err := r.Resolve(ctx)
	switch {
	case ctx.Err() != nil:
		// Shutting down: the failure is ours, not the DNS server's.
		return last
	case err != nil:
		r.log.Warn("dns discovery failed; keeping last targets",
			"name", r.name, "type", dns.TypeToString[r.qtype], "server", r.server, "targets", len(last), "err", err)
		return last
	case len(ts) == 0:
		r.log.Warn("dns discovery found no records; keeping last targets",
			"name", r.name, "type", dns.TypeToString[r.qtype], "server", r.server, "targets", len(last))
		return last
	case slices.Equal(ts, last):
		return last
	}
	r.log.Info("dns discovery: targets changed",
		"name", r.name, "type", dns.TypeToString[r.qtype], "targets", len(ts), "was", len(last))
	update(slices.Clone(ts))
	return ts
}
