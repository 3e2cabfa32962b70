package proxy

// Upstream TLS: an upstream with a `tls` block speaks HTTPS (and mTLS with a
// client certificate) to every target.
//
// The handshake is done here, in the target's dial function, not by
// fasthttp: fasthttp takes any connection with a Handshake method as TLS
// already (it then only checks the request's scheme against IsTLS). Owning
// the handshake buys three things:
//   - every dial takes the current certificates, CA and versions from one
//     atomic pointer (tlsSource.cur): a reload of the files builds a new
//     immutable *tls.Config and stores it; the HostClients and their open
//     keep-alive connections stay, and new connections use the new files;
//   - the handshake is bounded by the connect timeout (TCP connect and
//     handshake share it), where fasthttp would use the write timeout;
//   - a failure is classified where it is known to be one: a refused
//     handshake (certificate, name, version, alert) is wrapped in tlsError
//     (kind tls), a connection that broke or stalled during the handshake
//     in dialError (kind connect, as a refused TCP connect is), so that
//     classify need not guess from strings.
//
// TLS 1.3 moves the server's verdict on our client certificate after the
// client's side of the handshake: a server that refuses it (or wanted one
// and got none) says so with an alert on our first read, or, when the
// request was already in its socket, resets the connection and the alert
// may be lost. tlsConn remembers that the server asked for a certificate,
// and takes a connection broken before the first response byte for a
// refusal too, so that a refused client certificate is one kind whatever
// the timing. fasthttp turns every error of a response's first byte into
// ErrConnectionClosed, so the refusal is also left on the target
// (noteRefusal), where Do finds it when its attempt saw the connection
// closed.
//
// No session resumption: keep-alive pools make handshakes rare, and a
// resumed session would skip verification against a rotated CA (Go's client
// does not verify a resumed session's chain again) and keep the identity of
// a rotated client certificate.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
)

// tlsCheckEvery is how often, at most, the TLS files of an upstream are
// looked at again (a stat of each): when a connection is dialed, never in
// the background. A rotation applies to the connections made from the
// first check after it.
const tlsCheckEvery = time.Second

// maxPEMBytes bounds one TLS file; a bundle of every public root CA is about
// 200 KiB. (host/config checks the files with the same rules at load.)
const maxPEMBytes = 1 << 20

// The files of an upstream's tls block, by index.
const (
	fileCA = iota
	fileCert
	fileKey
	numFiles
)

var fileKeys = [numFiles]string{"ca", "client_cert", "client_key"}

// tlsSource is an upstream's TLS client configuration, reloaded from its
// files when they change on disk.
type tlsSource struct {
	log        *slog.Logger
	paths      [numFiles]string // "" = not configured
	serverName string           // tls.server_name; "" = each target's own
	minVersion uint16
	insecure   bool
	every      time.Duration // tlsCheckEvery; tests shorten it

	cur  atomic.Pointer[tlsMaterial]
	next atomic.Int64 // unix nanoseconds of the next look at the files

	mu     sync.Mutex // serializes refresh
	failed [numFiles]fileStamp
}

// tlsMaterial is one version of the files and the config built from them;
// nothing in it changes once it is stored.
type tlsMaterial struct {
	cfg    *tls.Config // without ServerName when the targets' names differ
	stamps [numFiles]fileStamp
	data   [numFiles][]byte
}

// fileStamp is what a file looked like: a change of identity (a new inode,
// as an atomic rename or a Kubernetes secret update makes), size or
// modification time means it must be read again.
type fileStamp struct{ fi fs.FileInfo }

func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi) && a.fi.Size() == b.fi.Size() && a.fi.ModTime().Equal(b.fi.ModTime())
}

func tlsVersion(s string) uint16 {
	if s == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// newTLSSource reads the files of cfg.TLS and builds the first config. An
// error names the file and what is wrong with it.
func newTLSSource(c *config.UpstreamTLS, log *slog.Logger) (*tlsSource, error) {
	s := &tlsSource{
		log:        log,
		paths:      [numFiles]string{c.CA, c.ClientCert, c.ClientKey},
		serverName: strings.TrimSuffix(c.ServerName, "."),
		minVersion: tlsVersion(c.MinVersion),
		insecure:   c.InsecureSkipVerify,
		every:      tlsCheckEvery,
	}
	if (s.paths[fileCert] == "") != (s.paths[fileKey] == "") {
		return nil, errors.New("tls: client_cert and client_key go together (both or neither)")
	}
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	s.next.Store(time.Now().Add(s.every).UnixNano())
	s.warn(m)
	return s, nil
}

// warn logs what an operator must hear at every load of the files: that
// verification is off, or that the client certificate is out of its dates.
func (s *tlsSource) warn(m *tlsMaterial) {
	if s.insecure {
		s.log.Warn("upstream TLS certificate verification is OFF (tls.insecure_skip_verify): any server, an attacker's too, is accepted as every target; for tests only")
	}
	if m.data[fileCert] == nil {
		return
	}
	if leaf := clientLeaf(m); leaf != nil {
		if now := time.Now(); now.After(leaf.NotAfter) {
			s.log.Warn("upstream TLS client certificate has expired: targets that check it will refuse the gateway", "file", s.paths[fileCert], "not_after", leaf.NotAfter)
		} else if now.Before(leaf.NotBefore) {
			s.log.Warn("upstream TLS client certificate is not valid yet", "file", s.paths[fileCert], "not_before", leaf.NotBefore)
		}
	}
}

func clientLeaf(m *tlsMaterial) *x509.Certificate {
	if c, err := tls.X509KeyPair(m.data[fileCert], m.data[fileKey]); err == nil {
		return c.Leaf
	}
	return nil
}

// load stats and reads every configured file and builds a config from them.
func (s *tlsSource) load() (*tlsMaterial, error) {
	m := &tlsMaterial{}
	for i, p := range s.paths {
		if p == "" {
			continue
		}
		// The stamp is taken before the read: a change during the read is
		// seen at the next check, never missed.
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fileError(i, p, err)
		}
		m.stamps[i] = fileStamp{fi}
		if m.data[i], err = readPEM(p, fi); err != nil {
			return nil, fileError(i, p, err)
		}
	}
	cfg, err := s.build(&m.data)
	if err != nil {
		return nil, err
	}
	m.cfg = cfg
	return m, nil
}

func fileError(i int, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is in the message already
	}
	return fmt.Errorf("tls.%s: cannot read %s: %v", fileKeys[i], path, err)
}

// readPEM reads a regular file (never a device or a pipe, which could block
// or never end) of at most maxPEMBytes.
func readPEM(path string, fi fs.FileInfo) ([]byte, error) {
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err == nil && len(data) > maxPEMBytes {
		err = fmt.Errorf("larger than %d bytes", maxPEMBytes)
	}
	return data, err
}

// build makes the client config of one version of the files.
func (s *tlsSource) build(data *[numFiles][]byte) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         s.minVersion,
		ServerName:         s.serverName,
		InsecureSkipVerify: s.insecure, //nolint:gosec // the operator's explicit choice, warned at every load
		// The client speaks HTTP/1.1 only: a server that would pick h2
		// without ALPN cannot, and one that speaks no HTTP/1.1 fails the
		// handshake (kind tls) instead of the first request.
		NextProtos: []string{"http/1.1"},
	}
	if data[fileCA] != nil {
		pool := x509.NewCertPool()
		certs, err := parseCerts(data[fileCA])
		if err != nil {
			return nil, fmt.Errorf("tls.ca %s: %v", s.paths[fileCA], err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
		cfg.RootCAs = pool
	}
	var pair *tls.Certificate
	if data[fileCert] != nil {
		if _, err := parseCerts(data[fileCert]); err != nil {
			return nil, fmt.Errorf("tls.client_cert %s: %v", s.paths[fileCert], err)
		}
		c, err := tls.X509KeyPair(data[fileCert], data[fileKey])
		if err != nil {
			if strings.Contains(err.Error(), "does not match") {
				return nil, fmt.Errorf("tls.client_key %s does not match the certificate of tls.client_cert %s", s.paths[fileKey], s.paths[fileCert])
			}
			return nil, fmt.Errorf("tls.client_key %s: %v", s.paths[fileKey], strings.TrimPrefix(err.Error(), "tls: "))
		}
		pair = &c
	}
	// Always set, so that the connection learns that the server asked for
	// a certificate (see tlsConn). With none configured the answer is an
	// empty certificate: the server decides whether that is enough.
	cfg.GetClientCertificate = func(info *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if c, ok := info.Context().Value(tlsConnKey{}).(*tlsConn); ok {
			c.asked, c.gave = true, pair != nil
		}
		if pair != nil {
			return pair, nil
		}
		return &tls.Certificate{}, nil
	}
	return cfg, nil
}

// parseCerts parses every CERTIFICATE block of a PEM file; other blocks are
// skipped (as crypto/x509 does), but one certificate at least must be there
// and each must parse.
func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate #%d does not parse: %v", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no certificate in PEM")
	}
	return certs, nil
}

// material returns the current version of the files, first looking at them
// again when tlsCheckEvery has passed since the last look. One dialer looks;
// the others go on with the current version meanwhile.
func (s *tlsSource) material() *tlsMaterial {
	now := time.Now().UnixNano()
	if n := s.next.Load(); now >= n && s.next.CompareAndSwap(n, now+int64(s.every)) {
		s.refresh()
	}
	return s.cur.Load()
}

// refresh reloads the files when one of them changed. A version that does
// not load (a file half written, a key that does not match the new
// certificate yet) is logged once and the current one stays; the files are
// tried again at every check until they load.
func (s *tlsSource) refresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	var stamps [numFiles]fileStamp
	changed := false
	for i, p := range s.paths {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			s.loadFailed(stamps, fileError(i, p, err))
			return
		}
		stamps[i] = fileStamp{fi}
		changed = changed || !stamps[i].same(cur.stamps[i])
	}
	if !changed {
		return
	}
	m, err := s.load()
	if err != nil {
		s.loadFailed(stamps, err)
		return
	}
	s.failed = [numFiles]fileStamp{}
	if sameData(&m.data, &cur.data) {
		// Touched, not changed: keep the config (and the targets' copies).
		same := *cur
		same.stamps = m.stamps
		s.cur.Store(&same)
		return
	}
	s.cur.Store(m)
	s.log.Info("upstream TLS files reloaded: new connections use them, open ones keep theirs", "files", strings.Join(nonEmpty(s.paths[:]), ", "))
	s.warn(m)
}

func sameData(a, b *[numFiles][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// loadFailed logs a failed reload once per state of the files.
func (s *tlsSource) loadFailed(stamps [numFiles]fileStamp, err error) {
	for i := range stamps {
		if !stamps[i].same(s.failed[i]) {
			s.failed = stamps
			s.log.Error("upstream TLS files changed but do not load; the previous ones stay in use", "err", err)
			return
		}
	}
}

// targetTLS is a target's copy of a version's config with the target's own
// server name; made once per version and target.
type targetTLS struct {
	m   *tlsMaterial
	cfg *tls.Config
}

// tlsConfig returns the config for a handshake with the target.
func (t *target) tlsConfig(m *tlsMaterial) *tls.Config {
	if m.cfg.ServerName == t.sni {
		return m.cfg
	}
	if c := t.tlsc.Load(); c != nil && c.m == m {
		return c.cfg
	}
	cfg := m.cfg.Clone()
	cfg.ServerName = t.sni
	t.tlsc.Store(&targetTLS{m, cfg})
	return cfg
}

// serverNameFor is the name a target's certificate is verified against and
// sent as SNI (Go sends no SNI for an IP address, and verifies it against
// the certificate's IP addresses): tls.server_name, else the name that A or
// AAAA discovery resolved, else the host of the target's address.
func serverNameFor(cfg *config.Upstream, addr string) string {
	if cfg.TLS == nil {
		return ""
	}
	if n := cfg.TLS.ServerName; n != "" {
		return strings.TrimSuffix(n, ".")
	}
	if d := cfg.Discovery; d != nil && d.DNS.Type != "SRV" && d.DNS.Name != "" {
		return strings.TrimSuffix(d.DNS.Name, ".")
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

type tlsConnKey struct{}

// handshake makes raw a TLS connection to the target with the current files,
// within deadline. A refusal is a *tlsError, a connection that broke or
// stalled on the way a *dialError.
func (s *tlsSource) handshake(t *target, raw net.Conn, deadline time.Time) (net.Conn, error) {
	c := &tlsConn{t: t}
	c.Conn = tls.Client(raw, t.tlsConfig(s.material()))
	_ = raw.SetDeadline(deadline)
	// The context only carries c to GetClientCertificate: it has no
	// Done channel, so crypto/tls starts no goroutine for it.
	if err := c.HandshakeContext(context.WithValue(context.Background(), tlsConnKey{}, c)); err != nil {
		raw.Close()
		if handshakeRefused(err) {
			return nil, &tlsError{err}
		}
		return nil, &dialError{err}
	}
	_ = raw.SetDeadline(time.Time{})
	c.tls13 = c.ConnectionState().Version == tls.VersionTLS13
	return c, nil
}

// tlsError marks a TLS failure: the target's certificate, name or protocol
// was refused, or the target refused ours.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "TLS: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// handshakeRefused tells a refused handshake from one whose connection
// broke (EOF, reset) or stalled (a deadline): anything crypto/tls reports
// that is not an I/O error is a refusal (an alert, a certificate that does
// not verify, no common version or cipher, a server that does not speak
// TLS).
func handshakeRefused(err error) bool {
	if tlsFailure(err) {
		return true
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return false
	}
	return true
}

// tlsFailure reports the errors that are TLS refusals wherever they occur:
// an alert from the server (crypto/tls reports it as a *net.OpError with Op
// "remote error"; AlertError is checked too, for when it wraps one), a
// certificate that does not verify, a server that does not speak TLS.
func tlsFailure(err error) bool {
	var (
		te  *tlsError
		op  *net.OpError
		ae  tls.AlertError
		rh  tls.RecordHeaderError
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		hn  x509.HostnameError
		sr  x509.SystemRootsError
		cvi x509.ConstraintViolationError
		ia  x509.InsecureAlgorithmError
	)
	return errors.As(err, &te) || errors.As(err, &op) && op.Op == "remote error" ||
		errors.As(err, &ae) || errors.As(err, &rh) || errors.As(err, &cv) ||
		errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &sr) ||
		errors.As(err, &cvi) || errors.As(err, &ia)
}

// tlsConn is a TLS connection to a target. Like trackedConn it marks write
// errors; it also turns a TLS 1.3 connection that breaks before the first
// response byte, after the server asked for a client certificate, into a
// tls failure (see the top of this file).
type tlsConn struct {
	*tls.Conn // its Handshake method tells fasthttp that this is TLS already
	t         *target

	asked, gave bool // the server asked for a client certificate; we had one
	tls13       bool
	read        bool      // a read has returned: the server got past our certificate
	head        headCheck // of the responses (framing.go)
}

func (c *tlsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if m, bad := c.head.check(p[:n]); bad != nil {
			c.read = true
			return m, bad
		}
	}
	if !c.read {
		c.read = n > 0 || err != nil
		if n == 0 && err != nil {
			if err = c.refused(err); tlsFailure(err) {
				c.t.noteRefusal(err)
			}
		}
	}
	return n, err
}

func (c *tlsConn) Write(p []byte) (int, error) {
	c.head.arm()
	n, err := c.Conn.Write(p)
	if err != nil {
		if !c.read {
			err = c.refused(err)
		}
		err = &writeError{err}
	}
	return n, err
}

// refused wraps a broken-connection error on a TLS 1.3 connection whose
// server asked for a client certificate and never answered; an alert is
// wrapped as it is.
func (c *tlsConn) refused(err error) error {
	if tlsFailure(err) {
		return &tlsError{err}
	}
	if !c.asked || !c.tls13 {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err // slow, not refused
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
		!errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		return err
	}
	what := "none configured"
	if c.gave {
		what = "it was sent"
	}
	return &tlsError{fmt.Errorf("the server asked for a client certificate (%s) and closed the connection before answering: %w", what, err)}
}

// noteRefusal records a TLS refusal that came with a response's first read:
// fasthttp reports it as ErrConnectionClosed, and Do takes it back from
// here (tlsRefusalOf).
func (t *target) noteRefusal(err error) {
	t.tlsRefusal.Store(&err)
	t.tlsRefusals.Add(1)
}

// tlsRefusalOf returns the refusal behind err, an attempt's error, when the
// attempt saw its connection closed before the first response byte and the
// target noted a refusal meanwhile (refusals was the count before the
// attempt). A refusal of another attempt at the same moment is one of the
// same certificates by the same target.
func (t *target) tlsRefusalOf(err error, refusals int64) error {
	if t.tlsRefusals.Load() == refusals || !errors.Is(err, fasthttp.ErrConnectionClosed) && !errors.Is(err, io.EOF) {
		return err
	}
	if r := t.tlsRefusal.Load(); r != nil {
		return *r
	}
	return err
}
