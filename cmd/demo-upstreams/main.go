// Command demo-upstreams runs the backend services of the gateway demo
// (`make run`): users, orders, feed and notifications, each a real fasthttp
// server on loopback answering JSON with fake but plausible data, and
// legacy, the monolith a strangler-fig migration moves away from.
//
// Every JSON answer carries "service", "instance" (the host:port that
// served it) and "request": the method, path, query, host and the
// forwarding headers the gateway set (X-Request-Id, X-Forwarded-*,
// Forwarded, Traceparent, X-Consumer, X-User-Id), so the demo shows exactly
// what was proxied and which target took it. Every answer, JSON or not,
// carries the header X-Served-By: <service name> (users, legacy, ...), so
// a client of the gateway sees which side of a split served it.
//
// Usage:
//
//	demo-upstreams [-users ADDR] [-orders ADDR] [-feed ADDR] [-notifications ADDR] [-legacy ADDR] [-instances N]
//
// Default addresses: users 127.0.0.1:9101, orders :9102, feed :9103,
// notifications :9104, legacy :9105. An empty address disables a service.
// With -instances N, instance i (0-based) of a service listens on its port
// + 1000*i: users on 9101, 10101 and 11101 with -instances 3, so a
// load-balancing demo has several targets per upstream. Port 0 picks a
// free port for every instance.
//
// Endpoints of every service: GET / (index), GET /healthz, GET /slow?ms=N,
// GET /status/{code}, GET /bytes/{n} and GET /bench (a fixed 64-byte
// text/plain body built once, for load tests). Service endpoints:
//
//	users:         GET /users, GET /users/{id}, POST /users
//	orders:        GET /orders, GET /orders/{id}, POST /orders (Idempotency-Key)
//	feed:          GET /feed?user=ID
//	notifications: GET /notifications?user=ID
//	legacy:        the users, orders and feed endpoints above, under one upstream
//
// The legacy service answers orders and feed exactly as the orders and feed
// services do (but "service": "legacy"). Its users answers are the users
// service's, field for field, with two intended differences for the
// shadow-diff demo:
//
//   - every user carries "updated_at", the time of the answer, different
//     in any two answers: a shadow comparison ignores it (data.updated_at,
//     data.users[*].updated_at);
//   - user 3 (Grace Hopper) has the email the legacy system kept in upper
//     case, "GRACE@EXAMPLE.COM", where the users service answers
//     "grace@example.com": the one real mismatch, in GET /users/3 (and in
//     the list, as data.users[2].email).
//
// Beyond these, only what names the answering process differs between two
// services' answers to the same request: the envelope's "service",
// "instance" and "request.host", and the X-Served-By header.
//
// State (created orders, idempotency keys) is per instance: a retried POST
// with the same Idempotency-Key is replayed only by the instance that saw
// it first, which is what a gateway's consistent hashing on that header is
// for. SIGINT or SIGTERM shuts the servers down gracefully and exits 0.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// shutdownTimeout bounds the graceful shutdown; /slow handlers return as
// soon as shutdown starts, so only slow clients can take this long.
const shutdownTimeout = 5 * time.Second

// options is the parsed command line.
type options struct {
	// addrs maps a service name to its base listen address ("" disables it).
	addrs     map[string]string
	instances int
}

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-upstreams:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, opts, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "demo-upstreams:", err)
		os.Exit(1)
	}
}

// parseFlags parses args into options; one address flag per service of
// serviceDefs.
func parseFlags(args []string, errOut io.Writer) (options, error) {
	fs := flag.NewFlagSet("demo-upstreams", flag.ContinueOnError)
	fs.SetOutput(errOut)
	addrs := make(map[string]*string, len(serviceDefs))
	for _, def := range serviceDefs {
		addrs[def.name] = fs.String(def.name, def.addr, "listen address of the "+def.name+" service (empty disables it)")
	}
	instances := fs.Int("instances", 1, "instances per service; instance i listens on the service's port + 1000*i")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *instances < 1 || *instances > 50 {
		return options{}, fmt.Errorf("-instances %d: want 1 to 50", *instances)
	}
	opts := options{addrs: make(map[string]string, len(addrs)), instances: *instances}
	for name, a := range addrs {
		opts.addrs[name] = *a
	}
	return opts, nil
}

// instanceAddr is the listen address of instance i of a service whose
// first instance listens on base: the port moves up by 1000 per instance,
// and port 0 (any free port) stays 0.
func instanceAddr(base string, i int) (string, error) {
	host, portStr, err := net.SplitHostPort(base)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", base, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", fmt.Errorf("address %q: bad port %q", base, portStr)
	}
	if port == 0 {
		return base, nil
	}
	if p := port + 1000*i; p <= 65535 {
		return net.JoinHostPort(host, strconv.Itoa(p)), nil
	}
	return "", fmt.Errorf("address %q: instance %d would listen on port %d, above 65535", base, i, port+1000*i)
}

// run listens on every enabled service instance, logs one line per
// instance to out, serves until ctx is done and then shuts down gracefully.
// It returns nil after a clean shutdown.
func run(ctx context.Context, opts options, out io.Writer) error {
	var svcs []*service
	closeAll := func() {
		for _, s := range svcs {
			s.ln.Close()
		}
	}
	for _, def := range serviceDefs {
		base := opts.addrs[def.name]
		if base == "" {
			continue
		}
		for i := range opts.instances {
			addr, err := instanceAddr(base, i)
			if err == nil {
				var s *service
				if s, err = newService(def.name, addr); err == nil {
					svcs = append(svcs, s)
					continue
				}
			}
			closeAll()
			return fmt.Errorf("%s: %w", def.name, err)
		}
	}
	if len(svcs) == 0 {
		return errors.New("every service is disabled")
	}

	errc := make(chan error, len(svcs))
	for _, s := range svcs {
		fmt.Fprintf(out, "demo-upstreams: %s listening on http://%s\n", s.name, s.instance)
		go func() { errc <- s.serve() }()
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		// Serve returns before shutdown only when its listener fails.
		serveErr = fmt.Errorf("serve: %w", cmp.Or(err, errors.New("server stopped")))
	}

	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(svcs))
	for i, s := range svcs {
		wg.Go(func() {
			if err := s.shutdown(sctx); err != nil {
				errs[i] = fmt.Errorf("%s on %s: shutdown: %w", s.name, s.instance, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(append(errs, serveErr)...)
}
