package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/certs"
)

const certUsage = `usage: wasmgate cert [-out DIR] [-names localhost,127.0.0.1] [-days 30]

Makes a certificate authority of its own and a server certificate it signs,
for development and the demo: DIR/ca.pem (what a client trusts: curl
--cacert DIR/ca.pem), DIR/server.pem and DIR/server.key (what listen.tls
certificates names). ECDSA P-256 keys; the files are written 0600, the
directory 0700. Production certificates come from a real CA.

Flags:
`

// certCmd runs `wasmgate cert`.
func certCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, certUsage); fs.PrintDefaults() }
	out := fs.String("out", "bin/demo-tls", "directory to write ca.pem, server.pem and server.key to")
	names := fs.String("names", "localhost,127.0.0.1", "comma-separated DNS names and IP addresses of the server certificate")
	days := fs.Int("days", 30, "validity of the certificates, in days")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *days < 1 || *days > 3650 {
		fs.Usage()
		return 2
	}
	if err := writeCerts(*out, strings.Split(*names, ","), time.Duration(*days)*24*time.Hour); err != nil {
		fmt.Fprintln(stderr, "wasmgate cert:", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (trust it: curl --cacert %s), %s and %s\n", filepath.Join(*out, "ca.pem"),
		filepath.Join(*out, "ca.pem"), filepath.Join(*out, "server.pem"), filepath.Join(*out, "server.key"))
	return 0
}

func writeCerts(dir string, names []string, validFor time.Duration) error {
	for i, n := range names {
		names[i] = strings.TrimSpace(n)
		if names[i] == "" {
			return fmt.Errorf("-names: an empty name")
		}
	}
	ca, err := certs.NewCA("wasmgate development CA", validFor)
	if err != nil {
		return err
	}
	srv, err := ca.Issue(certs.Request{CN: names[0], Names: names, NotAfter: time.Now().Add(validFor)})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"ca.pem": ca.PEM, "server.pem": srv.PEM, "server.key": srv.KeyPEM} {
		path := filepath.Join(dir, name)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}
