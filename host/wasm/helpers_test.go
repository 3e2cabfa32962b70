package wasm

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
)

var (
	watMu    sync.Mutex
	watCache = map[string][]byte{}
)

// wat compiles a WAT file with wabt's wat2wasm (function names kept for
// stack traces). Without wat2wasm the test is skipped, or fails in CI.
func wat(tb testing.TB, path string) []byte {
	tb.Helper()
	watMu.Lock()
	defer watMu.Unlock()
	if b, ok := watCache[path]; ok {
		return b
	}
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal("wat2wasm (wabt) is required in CI")
		}
		tb.Skip("wat2wasm (wabt) not installed")
	}
	dir, err := os.MkdirTemp("", "wasmgate-wat")
	if err != nil {
		tb.Fatal(err)
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "m.wasm")
	if msg, err := exec.Command("wat2wasm", "--debug-names", path, "-o", out).CombinedOutput(); err != nil {
		tb.Fatalf("wat2wasm %s: %v\n%s", path, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	watCache[path] = b
	return b
}

// fixture compiles testdata/name.wat.
func fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	return wat(tb, filepath.Join("testdata", name+".wat"))
}

// rawWat compiles the hand-written example plugin.
func rawWat(tb testing.TB) []byte {
	tb.Helper()
	return wat(tb, filepath.Join("..", "..", "plugins", "raw-wat", "plugin.wat"))
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newTestRuntime(tb testing.TB, opts Options) *Runtime {
	tb.Helper()
	if opts.Log == nil {
		opts.Log = quiet
	}
	r, err := NewRuntime(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// bind loads a fixture and binds it; both are released at cleanup.
func bind(tb testing.TB, r *Runtime, wasm []byte, cfg BindingConfig) *Binding {
	tb.Helper()
	ctx := context.Background()
	m, err := r.Load(ctx, "test", wasm)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := m.Bind(ctx, testEnv(), cfg)
	if err != nil {
		_ = m.Release(ctx)
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = b.Close(context.Background())
		_ = m.Release(context.Background())
	})
	return b
}

func testEnv() *abi.Env { return &abi.Env{Plugin: "test", Route: "r", Log: quiet} }

// request builds a request for path.
func request(path string) (*fasthttp.Request, *fasthttp.Response) {
	req, resp := new(fasthttp.Request), new(fasthttp.Response)
	req.SetRequestURI("http://example.test" + path)
	return req, resp
}

// serve runs one request through a binding: acquire, on_request,
// on_response (unless the plugin answered), release.
func serve(tb testing.TB, b *Binding, path string) (*fasthttp.Response, error) {
	tb.Helper()
	inst, err := b.Acquire(context.Background())
	if err != nil {
		return nil, err
	}
	req, resp := request(path)
	action, err := inst.OnRequest(req, resp, &abi.Scope{Client: []byte("127.0.0.1")})
	if err == nil && action == 0 {
		err = inst.OnResponse(req, resp, &abi.Scope{Client: []byte("127.0.0.1")})
	}
	b.Release(inst, err != nil)
	return resp, err
}

// fakeClock is an injectable clock for quarantine tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEngine is an engine the engine-neutral tests run on.
type testEngine struct {
	name string
	opts Options
}

// testEngines are wazero (its compiler where supported) and, in builds
// with cgo, wasmtime.
func testEngines() []testEngine {
	es := []testEngine{{"wazero", Options{}}}
	if WasmtimeAvailable() {
		es = append(es, testEngine{"wasmtime", Options{DefaultEngine: EngineWasmtime}})
	}
	return es
}

// onEngines runs f as a subtest on every engine of testEngines.
func onEngines(t *testing.T, f func(t *testing.T, opts Options)) {
	t.Helper()
	for _, e := range testEngines() {
		t.Run(e.name, func(t *testing.T) { f(t, e.opts) })
	}
}

// liveCompiled is the number of compiled modules (one per version and per
// version and memory cap) of r's default engine not yet closed.
func liveCompiled(tb testing.TB, r *Runtime) int64 {
	tb.Helper()
	switch e := r.Engine().(type) {
	case *WazeroEngine:
		return e.LiveRuntimes()
	case *WasmtimeEngine:
		return e.LiveModules()
	}
	tb.Fatalf("engine %T", r.Engine())
	return 0
}

// compilations is the number of Compile calls of r's default engine.
func compilations(r *Runtime) int64 {
	return r.Engine().(interface{ Compilations() int64 }).Compilations()
}
