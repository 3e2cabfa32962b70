package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/testkit"
	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// pki is what the TLS tests share: two unrelated CAs, and files of a good
// server certificate for 127.0.0.1, an expired one, and client
// certificates of each CA.
type pki struct {
	dir                  string
	ca, other            *tlstest.CA
	caFile, otherFile    string        // the CAs' certificates
	bundle               string        // both CAs in one file
	server, serverOther  *tlstest.Cert // for 127.0.0.1, by ca and by other
	serverNamed          *tlstest.Cert // by ca, for api.internal only
	expired              *tlstest.Cert // by ca, for 127.0.0.1
	notYetValid          *tlstest.Cert // by ca, for 127.0.0.1
	client, clientOther  *tlstest.Cert // by ca ("gateway") and by other ("gateway-2")
	certF, keyF          string        // client's files
	certOF, keyOF        string        // clientOther's files
	expiredCF, expiredKF string        // an expired client certificate's files
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir(), ca: tlstest.NewCA(t, "test CA"), other: tlstest.NewCA(t, "other CA")}
	p.caFile, p.otherFile = filepath.Join(p.dir, "ca.pem"), filepath.Join(p.dir, "other.pem")
	tlstest.WriteFile(t, p.caFile, p.ca.PEM)
	tlstest.WriteFile(t, p.otherFile, p.other.PEM)
	p.bundle = filepath.Join(p.dir, "both.pem")
	tlstest.WriteFile(t, p.bundle, append(append([]byte(nil), p.ca.PEM...), p.other.PEM...))
	p.server = p.ca.Server(t)
	p.serverOther = p.other.Server(t)
	p.serverNamed = p.ca.Server(t, "api.internal")
	p.expired = p.ca.Issue(t, tlstest.Options{CN: "127.0.0.1", Names: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	p.notYetValid = p.ca.Issue(t, tlstest.Options{CN: "127.0.0.1", Names: []string{"127.0.0.1"},
		NotBefore: time.Now().Add(time.Hour), NotAfter: time.Now().Add(48 * time.Hour)})
	p.client = p.ca.Client(t, "gateway")
	p.clientOther = p.other.Client(t, "gateway-2")
	expiredClient := p.ca.Issue(t, tlstest.Options{CN: "old-gateway", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	p.certF, p.keyF = tlstest.WriteCert(t, p.dir, "client", p.client)
	p.certOF, p.keyOF = tlstest.WriteCert(t, p.dir, "client-other", p.clientOther)
	p.expiredCF, p.expiredKF = tlstest.WriteCert(t, p.dir, "client-expired", expiredClient)
	return p
}

// tlsUpstream is an upstream over TLS to addrs.
func tlsUpstream(t *testing.T, c config.UpstreamTLS, log *slog.Logger, addrs ...string) *Upstream {
	t.Helper()
	cfg := upstreamConfig("round_robin", addrs...)
	cfg.TLS = &c
	u, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

// fastChecks makes u look at its TLS files at every dial (a millisecond
// apart at least) instead of once a second.
func fastChecks(u *Upstream) {
	u.tls.every = time.Millisecond
	u.tls.next.Store(0)
}

func tlsLog() (*slog.Logger, *testkit.SyncBuffer) {
	buf := &testkit.SyncBuffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}

func TestTLSGood(t *testing.T) {
	p := newPKI(t)
	plain := tlstest.NewServer(t, "tls", tlstest.ServerConfig{Cert: p.server, KeepAlive: true})
	mtls := tlstest.NewServer(t, "mtls", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool(), KeepAlive: true})
	named := tlstest.NewServer(t, "named", tlstest.ServerConfig{Cert: p.serverNamed, KeepAlive: true})
	for _, tc := range []struct {
		name string
		cfg  config.UpstreamTLS
		addr string
		want string // the client certificate's CN the server saw
	}{
		{"tls", config.UpstreamTLS{CA: p.caFile}, plain.Addr, "-"},
		{"tls 1.3 only", config.UpstreamTLS{CA: p.caFile, MinVersion: "1.3"}, plain.Addr, "-"},
		{"tls, CA in a bundle", config.UpstreamTLS{CA: p.bundle}, plain.Addr, "-"},
		{"mtls", config.UpstreamTLS{CA: p.caFile, ClientCert: p.certF, ClientKey: p.keyF}, mtls.Addr, "gateway"},
		{"client certificate to a server that asks for none", config.UpstreamTLS{CA: p.caFile, ClientCert: p.certF, ClientKey: p.keyF}, plain.Addr, "-"},
		{"server_name", config.UpstreamTLS{CA: p.caFile, ServerName: "api.internal"}, named.Addr, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tlsUpstream(t, tc.cfg, nil, tc.addr)
			for range 3 {
				body, x, err := send(u, "GET", nil)
				if err != nil || body != tc.want || x.Resp.StatusCode() != 200 {
					t.Fatalf("got %d %q %v, want 200 %q", x.Resp.StatusCode(), body, err, tc.want)
				}
			}
		})
	}
	// Keep-alive: three requests, one handshake per server and upstream.
	if n := plain.Handshakes.Load(); n != 4 {
		t.Errorf("plain server saw %d handshakes for 4 upstreams of 3 requests, want 4", n)
	}
}

// TestTLSRefused: each way TLS can fail is kind tls, answered 502, counted
// against the target, and tried once: not again on the same target, though
// the retry policy retries connect errors.
func TestTLSRefused(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name   string
		server tlstest.ServerConfig
		plain  bool // the target speaks plain HTTP
		cfg    config.UpstreamTLS
		want   string // in the error; alternatives split by |
	}{
		{"wrong CA", tlstest.ServerConfig{Cert: p.serverOther}, false,
			config.UpstreamTLS{CA: p.caFile}, "certificate signed by unknown authority"},
		{"system roots do not know a private CA", tlstest.ServerConfig{Cert: p.server}, false,
			config.UpstreamTLS{}, "certificate signed by unknown authority"},
		{"expired certificate", tlstest.ServerConfig{Cert: p.expired}, false,
			config.UpstreamTLS{CA: p.caFile}, "certificate has expired or is not yet valid"},
		{"certificate not valid yet", tlstest.ServerConfig{Cert: p.notYetValid}, false,
			config.UpstreamTLS{CA: p.caFile}, "certificate has expired or is not yet valid"},
		{"server_name mismatch", tlstest.ServerConfig{Cert: p.serverNamed}, false,
			config.UpstreamTLS{CA: p.caFile, ServerName: "other.internal"}, "not other.internal"},
		{"IP target, certificate for a name", tlstest.ServerConfig{Cert: p.serverNamed}, false,
			config.UpstreamTLS{CA: p.caFile}, "doesn't contain any IP SANs"},
		{"missing client certificate, TLS 1.3", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool()}, false,
			config.UpstreamTLS{CA: p.caFile}, "certificate required|asked for a client certificate (none configured)"},
		{"missing client certificate, TLS 1.2", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool(), MaxVersion: tls.VersionTLS12}, false,
			config.UpstreamTLS{CA: p.caFile}, "bad certificate|handshake failure"},
		{"client certificate of another CA, TLS 1.3", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool()}, false,
			config.UpstreamTLS{CA: p.caFile, ClientCert: p.certOF, ClientKey: p.keyOF}, "unknown certificate authority|asked for a client certificate (it was sent)"},
		{"client certificate of another CA, TLS 1.2", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool(), MaxVersion: tls.VersionTLS12}, false,
			config.UpstreamTLS{CA: p.caFile, ClientCert: p.certOF, ClientKey: p.keyOF}, "unknown certificate authority"},
		{"expired client certificate", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool()}, false,
			config.UpstreamTLS{CA: p.caFile, ClientCert: p.expiredCF, ClientKey: p.expiredKF}, "expired certificate|asked for a client certificate (it was sent)"},
		{"no common version", tlstest.ServerConfig{Cert: p.server, MaxVersion: tls.VersionTLS12}, false,
			config.UpstreamTLS{CA: p.caFile, MinVersion: "1.3"}, "protocol version"},
		{"plain HTTP target", tlstest.ServerConfig{}, true,
			config.UpstreamTLS{CA: p.caFile}, "does not look like a TLS handshake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var addr string
			var handshakes func() int64
			if tc.plain {
				addr, handshakes = plainServer(t), func() int64 { return 1 }
			} else {
				s := tlstest.NewServer(t, "s", tc.server)
				addr, handshakes = s.Addr, s.Handshakes.Load
			}
			log, buf := tlsLog()
			cfg := upstreamConfig("round_robin", addr)
			cfg.TLS = &tc.cfg
			cfg.Retries = &config.Retries{Attempts: 3, On: []string{"connect_error", "reset", "timeout", "502"}}
			cfg.CircuitBreaker = &config.CircuitBreaker{ConsecutiveFailures: 2, OpenFor: config.Duration(time.Hour)}
			u, err := New(cfg, log)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(u.Close)
			_, x, err := send(u, "GET", nil)
			var e *Error
			if !errors.As(err, &e) || e.Kind != ErrTLS || e.Status() != 502 || !containsAny(err.Error(), tc.want) {
				t.Fatalf("err = %v (kind %s), want kind tls, 502, mentioning %q", err, kindOf(err), tc.want)
			}
			if x.Attempts != 1 || handshakes() != 1 {
				t.Errorf("attempts %d, server saw %d handshakes: want one of each (no retry on the same target)", x.Attempts, handshakes())
			}
			if st := targetStatus(u, addr); st.Failures != 1 || st.Circuit != "closed" {
				t.Errorf("target status %+v: want 1 failure counted", st)
			}
			_, _, err = send(u, "GET", nil)
			if kindOf(err) != "tls" || targetStatus(u, addr).Circuit != "open" {
				t.Errorf("second request: %v, circuit %s: want tls, then the circuit open", err, targetStatus(u, addr).Circuit)
			}
			if _, _, err = send(u, "GET", nil); kindOf(err) != "circuit_open" {
				t.Errorf("third request: %v, want circuit_open", err)
			}
			if tc.name == "expired client certificate" && !strings.Contains(buf.String(), "client certificate has expired") {
				t.Errorf("no warning of the expired client certificate in the log:\n%s", buf)
			}
		})
	}
}

// plainServer is an HTTP server without TLS; it answers a ClientHello with
// a 400.
func plainServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ErrorLog: stdlog.New(io.Discard, "", 0), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// containsAny reports whether s contains one of the |-separated alternatives:
// under TLS 1.3 a server's refusal of the client certificate comes as an
// alert, or, when the request was already in its socket, as a reset after
// which the alert may be lost (tlsConn names the refusal then).
func containsAny(s, alts string) bool {
	for a := range strings.SplitSeq(alts, "|") {
		if strings.Contains(s, a) {
			return true
		}
	}
	return false
}

// TestTLSRetryGoesElsewhere: a TLS refusal is retried on another target
// when the policy retries connect errors, never on the same one.
func TestTLSRetryGoesElsewhere(t *testing.T) {
	p := newPKI(t)
	bad := tlstest.NewServer(t, "bad", tlstest.ServerConfig{Cert: p.serverOther})
	good := tlstest.NewServer(t, "good", tlstest.ServerConfig{Cert: p.server, KeepAlive: true})
	cfg := upstreamConfig("round_robin", bad.Addr, good.Addr)
	cfg.TLS = &config.UpstreamTLS{CA: p.caFile}
	cfg.Retries = &config.Retries{Attempts: 3, On: []string{"connect_error"}}
	u := newUpstream(t, cfg)
	for i := range 4 {
		before := bad.Handshakes.Load()
		_, x, err := send(u, "GET", nil)
		if err != nil || x.Resp.StatusCode() != 200 || x.Target != good.Addr {
			t.Fatalf("request %d: %v from %s", i, err, x.Target)
		}
		if n := bad.Handshakes.Load() - before; n > 1 || x.Attempts != int(n)+1 {
			t.Fatalf("request %d: %d attempts, %d handshakes with the bad target", i, x.Attempts, n)
		}
	}

	// Without connect_error in the policy a TLS refusal is not retried.
	cfg.Retries = &config.Retries{Attempts: 3, On: []string{"reset", "timeout"}}
	u = newUpstream(t, cfg)
	fails := 0
	for range 4 {
		_, x, err := send(u, "GET", nil)
		if err != nil {
			fails++
			if kindOf(err) != "tls" || x.Attempts != 1 {
				t.Fatalf("%v after %d attempts", err, x.Attempts)
			}
		}
	}
	if fails != 2 {
		t.Errorf("%d of 4 requests failed, want the 2 that went to the bad target", fails)
	}
}

func TestTLSInsecureSkipVerify(t *testing.T) {
	p := newPKI(t)
	s := tlstest.NewServer(t, "s", tlstest.ServerConfig{Cert: p.expired})
	log, buf := tlsLog()
	u := tlsUpstream(t, config.UpstreamTLS{CA: p.otherFile, InsecureSkipVerify: true}, log, s.Addr)
	if body, x, err := send(u, "GET", nil); err != nil || x.Resp.StatusCode() != 200 || body != "-" {
		t.Fatalf("got %q %v", body, err)
	}
	if out := buf.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "insecure_skip_verify") || !strings.Contains(out, "upstream=test") {
		t.Errorf("no warning naming the upstream:\n%s", out)
	}
}

// TestTLSHealthCheck: probes speak TLS too, and a target whose certificate
// does not verify is marked down by them.
func TestTLSHealthCheck(t *testing.T) {
	p := newPKI(t)
	good := tlstest.NewServer(t, "good", tlstest.ServerConfig{Cert: p.server, KeepAlive: true})
	bad := tlstest.NewServer(t, "bad", tlstest.ServerConfig{Cert: p.serverOther, KeepAlive: true})
	cfg := upstreamConfig("round_robin", good.Addr, bad.Addr)
	cfg.TLS = &config.UpstreamTLS{CA: p.caFile}
	cfg.HealthCheck = &config.HealthCheck{Path: "/healthz", Interval: config.Duration(10 * time.Millisecond),
		Timeout: config.Duration(time.Second), UnhealthyThreshold: 2, HealthyThreshold: 1}
	u := newUpstream(t, cfg)
	u.Start()
	waitFor(t, "bad target down", func() bool { return !targetStatus(u, bad.Addr).Healthy })
	waitFor(t, "probes reached the good target", func() bool { return good.Requests.Load() >= 3 })
	if !targetStatus(u, good.Addr).Healthy {
		t.Error("good target marked down")
	}
	if bad.Requests.Load() != 0 {
		t.Error("a request reached the target whose certificate does not verify")
	}
}

// TestTLSReload: the files change on disk, no reload, no new Upstream:
// new connections use the new files; a version that does not load is
// logged once and the previous one stays.
func TestTLSReload(t *testing.T) {
	p := newPKI(t)
	// Every request is a new connection, so each one shows which files
	// the handshake used.
	s := tlstest.NewServer(t, "s", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool()})
	certF, keyF := tlstest.WriteCert(t, p.dir, "rotating", p.client)
	caF := filepath.Join(p.dir, "rotating-ca.pem")
	tlstest.WriteFile(t, caF, p.ca.PEM)
	log, buf := tlsLog()
	u := tlsUpstream(t, config.UpstreamTLS{CA: caF, ClientCert: certF, ClientKey: keyF}, log, s.Addr)
	fastChecks(u)
	expect := func(what, body, kind string) {
		t.Helper()
		got, _, err := send(u, "GET", nil)
		if kindOf(err) != kind && !(kind == "" && err == nil) || err == nil && got != body {
			t.Fatalf("%s: got %q %v, want %q %s", what, got, err, body, kind)
		}
	}
	expect("before", "gateway", "")

	// The server now wants certificates of the other CA: ours is refused.
	s.Set(tlstest.ServerConfig{Cert: p.server, ClientCAs: p.other.Pool()})
	expect("server rotated", "", "tls")

	// Rotate the client certificate on disk: certificate first, then the
	// key, as a tool would. In between the pair does not match: the old
	// pair stays and the problem is logged once.
	tlstest.WriteFile(t, certF, p.clientOther.PEM)
	time.Sleep(5 * time.Millisecond)
	expect("half rotated", "", "tls")
	expect("half rotated, again", "", "tls")
	if n := strings.Count(buf.String(), "do not load"); n != 1 {
		t.Errorf("the half-rotated files were logged %d times, want once:\n%s", n, buf)
	}
	tlstest.WriteFile(t, keyF, p.clientOther.KeyPEM)
	time.Sleep(5 * time.Millisecond)
	expect("client certificate rotated", "gateway-2", "")
	if !strings.Contains(buf.String(), "upstream TLS files reloaded") {
		t.Errorf("no reload logged:\n%s", buf)
	}

	// The server's certificate moves to the other CA: refused until the
	// ca file follows.
	s.Set(tlstest.ServerConfig{Cert: p.serverOther, ClientCAs: p.other.Pool()})
	expect("server certificate rotated", "", "tls")
	tlstest.WriteFile(t, caF, p.other.PEM)
	time.Sleep(5 * time.Millisecond)
	expect("ca rotated", "gateway-2", "")

	// Garbage in a file: refused at the check, the previous files stay.
	tlstest.WriteFile(t, caF, []byte("not a certificate"))
	time.Sleep(5 * time.Millisecond)
	expect("ca file broken", "gateway-2", "")
	if !strings.Contains(buf.String(), "no certificate in PEM") {
		t.Errorf("broken ca file not logged:\n%s", buf)
	}
}

// TestTLSKeepAliveSurvivesRotation: an open keep-alive connection keeps the
// certificate it was made with; the next new connection takes the new one.
func TestTLSKeepAliveSurvivesRotation(t *testing.T) {
	p := newPKI(t)
	s := tlstest.NewServer(t, "s", tlstest.ServerConfig{Cert: p.server, ClientCAs: p.ca.Pool(), KeepAlive: true})
	certF, keyF := tlstest.WriteCert(t, p.dir, "ka", p.client)
	u := tlsUpstream(t, config.UpstreamTLS{CA: p.caFile, ClientCert: certF, ClientKey: keyF}, nil, s.Addr)
	fastChecks(u)
	if body, _, err := send(u, "GET", nil); err != nil || body != "gateway" {
		t.Fatalf("%q %v", body, err)
	}
	tlstest.WriteCert(t, p.dir, "ka", p.ca.Client(t, "gateway-new"))
	time.Sleep(5 * time.Millisecond)
	if body, _, err := send(u, "GET", nil); err != nil || body != "gateway" {
		t.Fatalf("open connection: %q %v, want the old certificate", body, err)
	}
	for _, tg := range u.pool.Load().targets {
		tg.closeIdle()
	}
	if body, _, err := send(u, "GET", nil); err != nil || body != "gateway-new" {
		t.Fatalf("new connection: %q %v, want the new certificate", body, err)
	}
	if s.Handshakes.Load() != 2 {
		t.Errorf("%d handshakes, want 2", s.Handshakes.Load())
	}
}

func TestTLSNewErrors(t *testing.T) {
	p := newPKI(t)
	garbage := filepath.Join(p.dir, "garbage.pem")
	tlstest.WriteFile(t, garbage, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	for _, tc := range []struct {
		cfg  config.UpstreamTLS
		want string
	}{
		{config.UpstreamTLS{CA: filepath.Join(p.dir, "missing.pem")}, "tls.ca: cannot read " + filepath.Join(p.dir, "missing.pem") + ": no such file or directory"},
		{config.UpstreamTLS{CA: p.dir}, "not a regular file"},
		{config.UpstreamTLS{CA: p.keyF}, "tls.ca " + p.keyF + ": no certificate in PEM"},
		{config.UpstreamTLS{CA: garbage}, "certificate #1 does not parse"},
		{config.UpstreamTLS{ClientCert: p.certF}, "both or neither"},
		{config.UpstreamTLS{ClientCert: p.certF, ClientKey: p.keyOF}, "does not match the certificate of tls.client_cert"},
		{config.UpstreamTLS{ClientCert: p.keyF, ClientKey: p.keyF}, "tls.client_cert " + p.keyF + ": no certificate in PEM"},
	} {
		cfg := upstreamConfig("round_robin", "127.0.0.1:1")
		cfg.TLS = &tc.cfg
		if _, err := New(cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestClassifyTLS(t *testing.T) {
	remote := func(code uint8) error {
		// What crypto/tls returns for an alert the server sent.
		return &net.OpError{Op: "remote error", Err: tlsAlertLike(code)}
	}
	for _, tc := range []struct {
		err  error
		want ErrorKind
	}{
		{&tlsError{errors.New("x")}, ErrTLS},
		{fmt.Errorf("read: %w", remote(116)), ErrTLS},
		{tls.AlertError(42), ErrTLS},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ErrTLS},
		{&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}, ErrTLS},
		{x509.CertificateInvalidError{Reason: x509.Expired}, ErrTLS},
		{x509.HostnameError{Certificate: &x509.Certificate{}, Host: "x"}, ErrTLS},
		{&dialError{io.EOF}, ErrConnect}, // broke during the handshake: a connect error
		{&writeError{syscall.EPIPE}, ErrReset},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	for _, tc := range []struct {
		err     error
		refused bool
	}{
		{remote(48), true},
		{errors.New("tls: server selected unsupported protocol version 301"), true},
		{&tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}}}, true},
		{io.EOF, false},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), false},
		{&net.OpError{Op: "read", Err: timeoutErr{}}, false},
	} {
		if got := handshakeRefused(tc.err); got != tc.refused {
			t.Errorf("handshakeRefused(%v) = %v", tc.err, got)
		}
	}
	if got := (&Error{Kind: ErrTLS}).Status(); got != 502 || ErrTLS.String() != "tls" {
		t.Errorf("tls: status %d, label %s", got, ErrTLS)
	}
	if p := (&config.Retries{On: []string{"connect_error"}}); !retryOnKind(p, ErrTLS) || retryOnKind(&config.Retries{On: []string{"reset", "timeout"}}, ErrTLS) {
		t.Error("tls must be retried (elsewhere) exactly when connect errors are")
	}
}

// tlsAlertLike stands in for crypto/tls's unexported alert type.
type tlsAlertLike uint8

func (a tlsAlertLike) Error() string { return fmt.Sprintf("tls: alert(%d)", uint8(a)) }

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestTLSConcurrentRotation: requests on many goroutines while the files
// rotate: every request is answered, by the old or the new certificate.
func TestTLSConcurrentRotation(t *testing.T) {
	p := newPKI(t)
	both := x509.NewCertPool()
	both.AddCert(p.ca.Cert)
	both.AddCert(p.other.Cert)
	s := tlstest.NewServer(t, "s", tlstest.ServerConfig{Cert: p.server, ClientCAs: both})
	certF, keyF := tlstest.WriteCert(t, p.dir, "conc", p.client)
	u := tlsUpstream(t, config.UpstreamTLS{CA: p.caFile, ClientCert: certF, ClientKey: keyF}, nil, s.Addr)
	fastChecks(u)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if body, _, err := send(u, "GET", nil); err != nil || body != "gateway" && body != "gateway-2" {
					t.Errorf("%q %v", body, err)
					return
				}
			}
		})
	}
	for i := range 10 {
		c := p.client
		if i%2 == 0 {
			c = p.clientOther
		}
		// A check between the two writes sees a pair that does not
		// match, and keeps the previous one.
		tlstest.WriteFile(t, certF, c.PEM)
		tlstest.WriteFile(t, keyF, c.KeyPEM)
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}

// TestTLSDoAllocs: over a kept-alive TLS connection, the exchange allocates
// nothing of its own. crypto/tls allocates one small reader per record it
// reads (Conn.readFromUntil): one on the client for the response, one on
// this test's server for the request.
func TestTLSDoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	p := newPKI(t)
	// A fasthttp server: net/http's allocations would be counted too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go func() {
		_ = srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{p.server.TLS},
			ClientCAs: p.ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}))
	}()
	t.Cleanup(func() { _ = srv.Shutdown() })
	u := tlsUpstream(t, config.UpstreamTLS{CA: p.caFile, ClientCert: p.certF, ClientKey: p.keyF}, nil, ln.Addr().String())
	x := &Exchange{Req: new(fasthttp.Request), Resp: new(fasthttp.Response)}
	x.Req.SetRequestURI("/x")
	x.Req.Header.SetHost("gw.test")
	if n := testing.AllocsPerRun(100, func() {
		if err := u.Do(x); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("%v allocations per exchange, want at most crypto/tls's 2", n)
	}
}
