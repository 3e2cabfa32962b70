package certs_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/certs"

	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// served is the first DNS name or IP of the certificate GetCertificate
// picks for server name sni.
func served(t *testing.T, s *certs.Store, sni string) string {
	t.Helper()
	c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: sni, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedVersions: []uint16{tls.VersionTLS13}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.Subject.CommonName
}

func TestGetCertificateBySNI(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	var pairs []certs.Pair
	for _, names := range [][]string{
		{"default.test"},
		{"example.com", "www.example.com"},
		{"*.wild.test"},
		{"a.wild.test"},
		{"127.0.0.1"},
	} {
		c, k := tlstest.WriteCert(t, dir, names[0], ca.Issue(t, tlstest.Options{CN: names[0], Names: names}))
		pairs = append(pairs, certs.Pair{Cert: c, Key: k})
	}
	var s certs.Store
	if err := s.Load(pairs); err != nil {
		t.Fatal(err)
	}
	for sni, want := range map[string]string{
		"example.com":      "example.com",
		"WWW.Example.COM.": "example.com", // case and a trailing dot
		"b.wild.test":      "*.wild.test",
		"a.wild.test":      "a.wild.test",  // exact beats the wildcard
		"x.b.wild.test":    "default.test", // a wildcard covers one label
		"wild.test":        "default.test",
		"unknown.org":      "default.test",
		"":                 "default.test",
		"127.0.0.1":        "127.0.0.1",
	} {
		if got := served(t, &s, sni); got != want {
			t.Errorf("SNI %q: served %s, want %s", sni, got, want)
		}
	}
}

func TestLoadErrorsKeepServed(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	c, k := tlstest.WriteCert(t, dir, "good", ca.Server(t, "good.test"))
	other, otherKey := tlstest.WriteCert(t, dir, "other", ca.Server(t, "other.test"))
	garbage := filepath.Join(dir, "garbage.pem")
	tlstest.WriteFile(t, garbage, []byte("not a certificate"))
	var s certs.Store
	if err := s.Load([]certs.Pair{{Cert: c, Key: k}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pairs []certs.Pair
		want  string
	}{
		{nil, "no certificates"},
		{[]certs.Pair{{Cert: filepath.Join(dir, "missing.crt"), Key: k}}, "missing.crt"},
		{[]certs.Pair{{Cert: garbage, Key: k}}, "garbage.pem"},
		{[]certs.Pair{{Cert: c, Key: otherKey}}, "private key does not match"},
		{[]certs.Pair{{Cert: c, Key: k}, {Cert: other, Key: garbage}}, "garbage.pem"},
	} {
		err := s.Load(tc.pairs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%v): %v, want an error with %q", tc.pairs, err, tc.want)
		}
		if got := served(t, &s, "good.test"); got != "good.test" {
			t.Fatalf("after a failed load: served %s", got)
		}
	}
}

// TestRenewedFiles: a renewed certificate written over the files is
// noticed (Changed) and served after Reload, through a real handshake.
func TestRenewedFiles(t *testing.T) {
	ca := tlstest.NewCA(t, "test CA")
	dir := t.TempDir()
	first := ca.Issue(t, tlstest.Options{CN: "first", Names: []string{"127.0.0.1"}})
	c, k := tlstest.WriteCert(t, dir, "site", first)
	var s certs.Store
	if err := s.Load([]certs.Pair{{Cert: c, Key: k}}); err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", certs.ServerConfig(&s, tls.VersionTLS12, "http/1.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.(*tls.Conn).Handshake()
			conn.Close()
		}
	}()
	cn := func() string {
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		st := conn.ConnectionState()
		if st.NegotiatedProtocol != "http/1.1" {
			t.Errorf("ALPN %q", st.NegotiatedProtocol)
		}
		return st.PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("served %s", got)
	}
	if s.Changed() {
		t.Fatal("Changed before any change")
	}
	time.Sleep(10 * time.Millisecond) // a modification time that differs
	renewed := ca.Issue(t, tlstest.Options{CN: "renewed", Names: []string{"127.0.0.1"}})
	tlstest.WriteCert(t, dir, "site", renewed)
	if !s.Changed() {
		t.Fatal("Changed missed the renewal")
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := cn(); got != "renewed" {
		t.Fatalf("after the reload: served %s", got)
	}
	// An old client offering only TLS 1.1 is refused.
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11})
	if err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}
}

// FuzzLoad feeds arbitrary certificate and key files to Load: an error or
// certificates that serve, never a panic.
func FuzzLoad(f *testing.F) {
	ca, err := certs.NewCA("fuzz CA", time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	good, err := ca.Issue(certs.Request{CN: "fuzz", Names: []string{"fuzz.test", "*.wild.test"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.PEM, good.KeyPEM)
	f.Add(good.PEM[:len(good.PEM)/2], good.KeyPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n"), good.KeyPEM)
	f.Add(ca.PEM, good.KeyPEM)
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		dir := t.TempDir()
		c, k := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
		if err := os.WriteFile(c, cert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(k, key, 0o600); err != nil {
			t.Fatal(err)
		}
		var s certs.Store
		if err := s.Load([]certs.Pair{{Cert: c, Key: k}}); err != nil {
			return
		}
		if _, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: "fuzz.test"}); err != nil {
			t.Fatalf("loaded certificates serve nothing: %v", err)
		}
	})
}
