package tck

import "testing"

// Gateway is what Run needs of a gateway the caller started with the
// config Run handed it. The gateway serves HTTP/1.1 on 127.0.0.1 (the
// guest is asked for the client's IP) and logs JSON.
type Gateway interface {
	// URL returns the absolute URL of path (with its query, as written)
	// on the gateway's proxy listener: "http://127.0.0.1:PORT" + path.
	URL(path string) string
	// Logs returns the gateway's process log so far, one decoded JSON
	// object per line, with the keys msg, level (DEBUG, INFO, WARN, ERROR),
	// plugin, route, error, and for a guest's stdout and stderr, line and
	// stream.
	Logs() []map[string]any
	// Metrics returns the gateway's Prometheus text exposition (the admin
	// API's GET /metrics).
	Metrics() (string, error)
}

// Guest is one build of the hostcheck guest (sdk/tck/hostcheck is the Go
// one, and its package documentation the specification of the checks, the
// config keys and the report keys), and what Run may expect of its
// language and SDK beyond the ABI. Everything else Run asserts is the
// ABI's (sdk/ABI.md) and the gateway's, the same for every language.
type Guest struct {
	// Module is the path of the guest's .wasm, as the config names it.
	Module string

	// Initialize: the guest's own code runs during the reactor's
	// _initialize (Go: package initialisation; C: constructors;
	// AssemblyScript: top-level statements exported as _initialize), where
	// it probes the host for the phase check's "initialize" report and
	// logs "hostcheck _initialize log line". False for a language that
	// cannot run code there: the "phase rules" subtest then skips those
	// assertions (and only those).
	Initialize bool

	// Stdio: the log check writes "hc-stdout M" to WASI stdout and
	// "hc-stderr M" to stderr (fd_write), flushed before the hook returns.
	// False: those two lines are not awaited.
	Stdio bool

	// TimeoutErr is the exact "err" text the guest reports for an outbound
	// result with status -1 (its SDK's timeout error), and NotAllowedErr a
	// part of the text it reports for status -3 (a destination the route
	// does not allow). The statuses are checked whatever these say.
	TimeoutErr, NotAllowedErr string
}

// GoGuest is sdk/tck/hostcheck built with the Go SDK (sdk/go) to module
// (bash plugins/build.sh hostcheck builds sdk/tck/hostcheck/hostcheck.wasm).
func GoGuest(module string) Guest {
	return Guest{
		Module:        module,
		Initialize:    true,                                   // package init runs in _initialize
		Stdio:         true,                                   // os.Stdout and os.Stderr are unbuffered
		TimeoutErr:    "wasmgate: outbound request timed out", // sdk/go ErrTimeout
		NotAllowedErr: "not allowed",                          // sdk/go *Error with code NOT_ALLOWED
	}
}

// conformance is one Run: the guest, the gateway and the upstreams.
type conformance struct {
	guest Guest
	g     Gateway
	a, b  *Upstream
}

// Run checks a gateway against the native ABI with a hostcheck guest. It
// starts two Upstreams ("a" and "b") and finds a dead address, calls start
// with the config for them and guest.Module (Config), then drives every
// host function of sdk/ABI.md section 4 through the gateway start
// returned, and asserts the exact values and codes the host gave the guest,
// in subtests named for what they check. start fails the test itself if
// the gateway does not start; the gateway must outlive Run (stop it in a
// t.Cleanup).
//
// A Go host test:
//
//	tck.Run(t, tck.GoGuest(path), func(t *testing.T, config string) tck.Gateway {
//		return startMyGateway(t, myListenersAndAdmin+config)
//	})
func Run(t *testing.T, guest Guest, start func(t *testing.T, config string) Gateway) {
	t.Helper()
	if guest.Module == "" {
		t.Fatal("tck.Run: the guest has no Module")
	}
	cf := &conformance{guest: guest, a: StartUpstream(t, "a"), b: StartUpstream(t, "b")}
	cf.g = start(t, Config(guest.Module, cf.a.Addr, cf.b.Addr, DeadAddr(t)))
	if cf.g == nil {
		t.Fatal("tck.Run: start returned no gateway")
	}
	t.Run("inspect", cf.inspect)
	t.Run("buffer convention", cf.buffers)
	t.Run("phase rules", cf.phases)
	t.Run("kv", cf.kv)
	t.Run("metrics", cf.metrics)
	t.Run("log", cf.log)
	t.Run("outbound", cf.outbound)
	t.Run("chain order", cf.chainOrder)
	t.Run("chain short-circuit", cf.chainStop)
	t.Run("pooled and fresh instances", cf.instances)
	t.Run("feature flags", cf.flags)
	t.Run("authorize", cf.authorize)
}

// scrape returns the gateway's metrics, failing the test without them.
func scrape(t *testing.T, g Gateway) string {
	t.Helper()
	m, err := g.Metrics()
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return m
}
