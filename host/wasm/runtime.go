package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Runtime.
type Options struct {
	// CacheDir is the disk compilation cache ("" keeps compiled code in
	// memory only).
	CacheDir string
	// Interpreter forces wazero's interpreter.
	Interpreter bool
	// ContextInterruption enforces deadlines with wazero's context watch
	// instead of instrumenting modules (WazeroOptions.ContextInterruption).
	ContextInterruption bool
	// Log receives guest output and failures when a binding's abi.Env has
	// no logger; nil means slog.Default().
	Log *slog.Logger
	// Registerer gets the runtime's metrics; nil keeps them unregistered
	// (quantiles still work).
	Registerer prometheus.Registerer
	// Engine replaces the wazero engine built from CacheDir and
	// Interpreter. The runtime does not close an engine it was given.
	Engine Engine
	// Now is the clock of quarantine backoffs; nil means time.Now.
	Now func() time.Time
}

// Runtime is the plugin runtime of one gateway process: the engine, the
// module registry and the metrics. It is safe for concurrent use.
type Runtime struct {
	engine    Engine
	ownEngine bool
	log       *slog.Logger
	metrics   *metrics
	now       func() time.Time

	mu      sync.Mutex
	modules map[[sha256.Size]byte]*Module
	closed  bool
}

// NewRuntime returns a runtime.
func NewRuntime(opts Options) (*Runtime, error) {
	r := &Runtime{engine: opts.Engine, log: opts.Log, now: opts.Now,
		modules: make(map[[sha256.Size]byte]*Module)}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	var err error
	if r.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("plugin runtime metrics: %w", err)
	}
	if r.engine == nil {
		e, err := NewWazeroEngine(WazeroOptions{CacheDir: opts.CacheDir, Interpreter: opts.Interpreter,
			ContextInterruption: opts.ContextInterruption})
		if err != nil {
			return nil, err
		}
		r.engine, r.ownEngine = e, true
	}
	return r, nil
}

// InstantiateQuantiles summarizes the cold starts of a plugin version
// (version: Module.Version), for the admin API; false when no binding of
// it is live.
func (r *Runtime) InstantiateQuantiles(plugin, version string) (Quantiles, bool) {
	r.metrics.mu.Lock()
	s := r.metrics.series[seriesKey{plugin, version}]
	r.metrics.mu.Unlock()
	if s == nil {
		return Quantiles{}, false
	}
	return s.quantiles(), true
}

// Engine returns the runtime's engine.
func (r *Runtime) Engine() Engine { return r.engine }

// Modules is the number of module versions loaded.
func (r *Runtime) Modules() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.modules)
}

// Close closes the engine (if the runtime made it). Modules and bindings
// must be released first; those left are closed with it.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	left := make([]*Module, 0, len(r.modules))
	for _, m := range r.modules {
		left = append(left, m)
	}
	r.modules = nil
	r.mu.Unlock()
	var err error
	for _, m := range left {
		<-m.ready
		if m.err == nil {
			err = errors.Join(err, m.close(ctx))
		}
	}
	if r.ownEngine {
		err = errors.Join(err, r.engine.Close(ctx))
	}
	return err
}

// Load validates and compiles a module, or returns the module already
// loaded with the same bytes (sha256): several routes or plugins using one
// .wasm compile it once. name is the plugin name, for messages and the
// compile-time metric. Every successful Load must be paired with
// Module.Release.
func (r *Runtime) Load(ctx context.Context, name string, wasm []byte) (*Module, error) {
	sum := sha256.Sum256(wasm)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if m := r.modules[sum]; m != nil {
		m.refs++
		r.mu.Unlock()
		select {
		case <-m.ready:
		case <-ctx.Done():
			m.release(context.Background())
			return nil, ctx.Err()
		}
		if m.err != nil {
			return nil, fmt.Errorf("plugin %q: %w", name, m.err)
		}
		m.named(name)
		return m, nil
	}
	m := &Module{r: r, sum: sum, refs: 1, ready: make(chan struct{}),
		caps: make(map[uint32]*capped), names: make(map[string]bool)}
	m.version = hex.EncodeToString(sum[:])[:12]
	r.modules[sum] = m
	r.mu.Unlock()

	m.err = m.compile(ctx, wasm)
	if m.err != nil {
		r.mu.Lock()
		if r.modules[sum] == m {
			delete(r.modules, sum)
		}
		r.mu.Unlock()
		close(m.ready)
		return nil, fmt.Errorf("plugin %q: %w", name, m.err)
	}
	close(m.ready)
	m.named(name)
	return m, nil
}

// Module is one compiled module version, shared by every binding of the
// same bytes.
type Module struct {
	r       *Runtime
	sum     [sha256.Size]byte
	version string
	info    ModuleInfo
	cm      CompiledModule

	ready chan struct{} // closed once compiled (or failed)
	err   error

	refs int // loads and bindings; guarded by r.mu

	mu    sync.Mutex
	caps  map[uint32]*capped
	names map[string]bool // plugin names with a compile-time series
}

// capped is the module under one memory cap, shared by the bindings that
// use that cap.
type capped struct {
	cm   CompiledModule
	refs int
}

func (m *Module) compile(ctx context.Context, wasm []byte) error {
	info, err := Inspect(wasm)
	if err != nil {
		return err
	}
	start := time.Now()
	// The engine keeps the bytes to compile them again under other memory
	// caps; the caller may reuse its slice.
	cm, err := m.r.engine.Compile(ctx, bytes.Clone(wasm))
	if err != nil {
		return err
	}
	info.CompileTime = time.Since(start)
	info.Engine = m.r.engine.Name()
	info.Interruption = cm.Info().Interruption
	m.info, m.cm = info, cm
	return nil
}

func (m *Module) named(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.names[name] {
		m.names[name] = true
		m.r.metrics.compile.WithLabelValues(name, m.version).Set(m.info.CompileTime.Seconds())
	}
}

// Info describes the module: sha256, size, compile time, hooks, imports,
// exports and memory limits.
func (m *Module) Info() ModuleInfo { return m.info }

// Version is the first 12 hex digits of the module's sha256, its metric
// label.
func (m *Module) Version() string { return m.version }

// Release drops one Load of the module; the module is closed when no Load
// and no Binding use it any more.
func (m *Module) Release(ctx context.Context) error { return m.release(ctx) }

func (m *Module) retain() bool {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	if m.refs <= 0 {
		return false
	}
	m.refs++
	return true
}

func (m *Module) release(ctx context.Context) error {
	r := m.r
	r.mu.Lock()
	if m.refs <= 0 {
		r.mu.Unlock()
		return nil
	}
	m.refs--
	last := m.refs == 0
	if last && r.modules != nil && r.modules[m.sum] == m {
		delete(r.modules, m.sum)
	}
	r.mu.Unlock()
	if !last {
		return nil
	}
	<-m.ready
	if m.err != nil {
		return nil
	}
	return m.close(ctx)
}

// close releases the compiled code of every cap and the module's series.
func (m *Module) close(ctx context.Context) error {
	m.mu.Lock()
	caps := m.caps
	m.caps = map[uint32]*capped{}
	names := m.names
	m.names = map[string]bool{}
	m.mu.Unlock()
	var err error
	for _, c := range caps {
		err = errors.Join(err, c.cm.Close(ctx))
	}
	for name := range names {
		m.r.metrics.compile.DeleteLabelValues(name, m.version)
	}
	return errors.Join(err, m.cm.Close(ctx))
}

// withCap returns the module under a memory cap of pages, creating it
// (compiled into the engine's shared runtime for that cap) on first use.
func (m *Module) withCap(ctx context.Context, pages uint32) (CompiledModule, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.caps[pages]; c != nil {
		c.refs++
		return c.cm, nil
	}
	cm, err := m.cm.WithMemoryLimit(ctx, pages)
	if err != nil {
		return nil, err
	}
	m.caps[pages] = &capped{cm: cm, refs: 1}
	return cm, nil
}

// releaseCap drops a use of a cap and closes its runtime with the last.
func (m *Module) releaseCap(ctx context.Context, pages uint32) error {
	m.mu.Lock()
	c := m.caps[pages]
	if c == nil {
		m.mu.Unlock()
		return nil
	}
	if c.refs--; c.refs > 0 {
		m.mu.Unlock()
		return nil
	}
	delete(m.caps, pages)
	m.mu.Unlock()
	return c.cm.Close(ctx)
}
