// Package certs holds the certificates a TLS listener serves: loaded from
// PEM files, indexed by the names they cover (SNI: exact names, wildcards,
// a default), and swapped atomically when the files or the config change,
// so that a reload needs no new listener and drops no connection: live
// connections keep the certificate they shook hands with, new handshakes
// get the new one.
package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Pair names the files of one certificate: the chain (leaf first) and its
// private key, both PEM.
type Pair struct {
	Cert, Key string
}

// Store serves the certificates of the last successful Load. The zero
// value serves none; it is safe for concurrent use.
type Store struct {
	cur atomic.Pointer[Set]
}

// Set is one loaded generation of certificates.
type Set struct {
	pairs    []Pair
	stamps   []stamp
	exact    map[string][]*tls.Certificate // by lower-case DNS name or IP
	wildcard map[string][]*tls.Certificate // "*.example.com" by ".example.com"
	def      *tls.Certificate              // the first pair's: no SNI, or no name matches
	leaves   []*x509.Certificate
}

// stamp is what a file looked like when it was loaded, to notice a change.
type stamp struct {
	size int64
	mod  time.Time
}

// Load reads pairs and, when all of them load, makes them the certificates
// served; on any error the ones served before stay, and the error names
// the file and what is wrong with it.
func (s *Store) Load(pairs []Pair) error {
	set, err := Load(pairs)
	if err != nil {
		return err
	}
	s.Use(set)
	return nil
}

// Use makes set the certificates served: a caller that must load first
// and decide later (a config reload that may still be refused) uses Load
// and then Use.
func (s *Store) Use(set *Set) { s.cur.Store(set) }

// Load reads pairs into a Set; the error names the file and what is wrong.
func Load(pairs []Pair) (*Set, error) {
	if len(pairs) == 0 {
		return nil, errors.New("no certificates")
	}
	next := &Set{pairs: pairs, exact: map[string][]*tls.Certificate{}, wildcard: map[string][]*tls.Certificate{}}
	for _, p := range pairs {
		before := [2]stamp{stampOf(p.Cert), stampOf(p.Key)}
		c, err := tls.LoadX509KeyPair(p.Cert, p.Key)
		if err != nil {
			return nil, fmt.Errorf("certificate %s with key %s: %w", p.Cert, p.Key, err)
		}
		leaf := c.Leaf
		if leaf == nil {
			if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certificate %s: %w", p.Cert, err)
			}
			c.Leaf = leaf
		}
		cert := &c
		next.stamps = append(next.stamps, before[0], before[1])
		next.leaves = append(next.leaves, leaf)
		if next.def == nil {
			next.def = cert
		}
		names := append([]string(nil), leaf.DNSNames...)
		for _, ip := range leaf.IPAddresses {
			names = append(names, ip.String())
		}
		if len(names) == 0 && leaf.Subject.CommonName != "" {
			names = append(names, leaf.Subject.CommonName) // legacy certificates without SANs
		}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if rest, ok := strings.CutPrefix(n, "*."); ok {
				next.wildcard["."+rest] = append(next.wildcard["."+rest], cert)
			} else {
				next.exact[n] = append(next.exact[n], cert)
			}
		}
	}
	return next, nil
}

// Changed reports whether a file of the served certificates changed since
// it was loaded (its size or modification time), so that a watcher loads
// them again.
func (s *Store) Changed() bool {
	cur := s.cur.Load()
	if cur == nil {
		return false
	}
	for i, p := range cur.pairs {
		if stampOf(p.Cert) != cur.stamps[2*i] || stampOf(p.Key) != cur.stamps[2*i+1] {
			return true
		}
	}
	return false
}

// Reload loads the served pairs again (after Changed).
func (s *Store) Reload() error {
	cur := s.cur.Load()
	if cur == nil {
		return errors.New("no certificates loaded")
	}
	return s.Load(cur.pairs)
}

// Same reports whether pairs are the pairs served (a config reload that
// leaves them alone need not read them).
func (s *Store) Same(pairs []Pair) bool {
	cur := s.cur.Load()
	if cur == nil || len(cur.pairs) != len(pairs) {
		return false
	}
	for i := range pairs {
		if cur.pairs[i] != pairs[i] {
			return false
		}
	}
	return true
}

// Leaves are the leaf certificates served, in the order of the pairs.
func (s *Store) Leaves() []*x509.Certificate {
	if cur := s.cur.Load(); cur != nil {
		return cur.leaves
	}
	return nil
}

// GetCertificate picks the certificate for a handshake: one naming the
// client's server name exactly, else one whose wildcard covers it (one
// label: *.example.com covers a.example.com, not a.b.example.com nor
// example.com), else the default (the first pair's). Among several for a
// name, the first the client supports (ECDSA or RSA, its signature
// schemes) wins.
func (s *Store) GetCertificate(hi *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cur := s.cur.Load()
	if cur == nil {
		return nil, errors.New("no certificates loaded")
	}
	name := strings.ToLower(strings.TrimSuffix(hi.ServerName, "."))
	if name == "" {
		// No SNI: a client that dialled an address; its local address
		// may be one a certificate names.
		if hi.Conn != nil {
			if host, _, err := net.SplitHostPort(hi.Conn.LocalAddr().String()); err == nil {
				name = host
			}
		}
	}
	if c := pick(cur.exact[name], hi); c != nil {
		return c, nil
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := pick(cur.wildcard[name[i:]], hi); c != nil {
			return c, nil
		}
	}
	return cur.def, nil
}

func pick(cs []*tls.Certificate, hi *tls.ClientHelloInfo) *tls.Certificate {
	for _, c := range cs {
		if hi.SupportsCertificate(c) == nil {
			return c
		}
	}
	if len(cs) > 0 {
		return cs[0]
	}
	return nil
}

func stampOf(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{size: -1}
	}
	return stamp{size: fi.Size(), mod: fi.ModTime()}
}

// ServerConfig is the TLS configuration of a listener serving s: TLS 1.2
// or later (minVersion may raise it to 1.3), 1.3 preferred; for 1.2 only
// forward-secret AEAD suites (no CBC, no RSA key exchange), which is also
// what HTTP/2 requires; certificates from s by SNI. protos is the ALPN
// list, in the server's order of preference.
func ServerConfig(s *Store, minVersion uint16, protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion: max(minVersion, tls.VersionTLS12),
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		GetCertificate: s.GetCertificate,
		NextProtos:     protos,
	}
}
