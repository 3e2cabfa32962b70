package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// EngineKind names a WebAssembly engine a module can run on.
type EngineKind string

// The engines.
const (
	// EngineWazero is wazero (pure Go): its compiler, or its interpreter
	// (Options.Interpreter). The default.
	EngineWazero EngineKind = "wazero"
	// EngineWasmtime is wasmtime (Cranelift, through cgo): only in builds
	// with cgo (WasmtimeAvailable).
	EngineWasmtime EngineKind = "wasmtime"
)

// ParseEngine reads an engine name; "" is EngineWazero.
func ParseEngine(name string) (EngineKind, error) {
	switch EngineKind(name) {
	case "", EngineWazero:
		return EngineWazero, nil
	case EngineWasmtime:
		return EngineWasmtime, nil
	}
	return "", fmt.Errorf("unknown engine %q (want wazero or wasmtime)", name)
}

// Options configure a Runtime.
type Options struct {
	// DefaultEngine is the engine of modules loaded without one (Load of a
	// plugin that SetPluginEngine did not name); "" is EngineWazero. The
	// runtime makes it at once; another engine when a module first asks
	// for it.
	DefaultEngine EngineKind
	// CacheDir is the disk compilation cache ("" keeps compiled code in
	// memory only), shared by both engines (each in a directory of its
	// own).
	CacheDir string
	// Interpreter forces wazero's interpreter.
	Interpreter bool
	// ContextInterruption enforces wazero's deadlines with its context
	// watch instead of instrumenting modules
	// (WazeroOptions.ContextInterruption).
	ContextInterruption bool
	// WasmtimePoolSlots puts wasmtime's instances in its pooling allocator
	// (WasmtimeOptions.PoolSlots); 0 does not.
	WasmtimePoolSlots uint32
	// Log receives guest output and failures when a binding's abi.Env has
	// no logger; nil means slog.Default().
	Log *slog.Logger
	// Registerer gets the runtime's metrics; nil keeps them unregistered
	// (quantiles still work).
	Registerer prometheus.Registerer
	// Engine replaces the default engine (of kind DefaultEngine) built from
	// the options above. The runtime does not close an engine it was
	// given.
	Engine Engine
	// Now is the clock of quarantine backoffs and idle times; nil means
	// time.Now.
	Now func() time.Time
}

// Runtime is the plugin runtime of one gateway process: its engines (the
// default one, and the other once a module asks for it), the module
// registry and the metrics. It is safe for concurrent use.
type Runtime struct {
	opts    Options
	defKind EngineKind
	engine  Engine // the default engine
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	engMu   sync.Mutex
	engines map[EngineKind]Engine // made by the runtime, the default one included; guarded by engMu

	mu       sync.Mutex
	modules  map[moduleKey]*Module
	byPlugin map[string]EngineKind // SetPluginEngine
	closed   bool
}

// moduleKey identifies a module version on one engine.
type moduleKey struct {
	sum    [sha256.Size]byte
	engine EngineKind
}

// NewRuntime returns a runtime.
func NewRuntime(opts Options) (*Runtime, error) {
	kind, err := ParseEngine(string(opts.DefaultEngine))
	if err != nil {
		return nil, err
	}
	r := &Runtime{opts: opts, defKind: kind, engine: opts.Engine, log: opts.Log, now: opts.Now,
		engines: make(map[EngineKind]Engine), modules: make(map[moduleKey]*Module), byPlugin: make(map[string]EngineKind)}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("plugin runtime metrics: %w", err)
	}
	if r.engine == nil {
		e, err := r.newEngine(kind)
		if err != nil {
			return nil, err
		}
		r.engine = e
		r.engines[kind] = e
	}
	return r, nil
}

// newEngine makes an engine of kind from the runtime's options.
func (r *Runtime) newEngine(kind EngineKind) (Engine, error) {
	switch kind {
	case EngineWasmtime:
		e, err := NewWasmtimeEngine(WasmtimeOptions{CacheDir: r.opts.CacheDir, PoolSlots: r.opts.WasmtimePoolSlots})
		if err != nil {
			return nil, fmt.Errorf("engine wasmtime: %w", err)
		}
		return e, nil
	default:
		return NewWazeroEngine(WazeroOptions{CacheDir: r.opts.CacheDir, Interpreter: r.opts.Interpreter,
			ContextInterruption: r.opts.ContextInterruption})
	}
}

// EngineOf returns the engine of kind ("": the default), making it on
// first use.
func (r *Runtime) EngineOf(kind EngineKind) (Engine, error) {
	kind, err := ParseEngine(string(kind))
	if err != nil {
		return nil, err
	}
	if kind == r.defKind {
		return r.engine, nil
	}
	r.engMu.Lock()
	defer r.engMu.Unlock()
	if e := r.engines[kind]; e != nil {
		return e, nil
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	e, err := r.newEngine(kind)
	if err != nil {
		return nil, err
	}
	r.engines[kind] = e
	return e, nil
}

// DefaultEngine is the kind of the default engine.
func (r *Runtime) DefaultEngine() EngineKind { return r.defKind }

// SetPluginEngine makes kind the engine Load uses for the plugin name
// ("": the default engine again). The gateway sets it from each plugin's
// config before loading it, so that every load of the plugin's versions
// (hot loads, canaries, uploads) runs on the engine its config names.
func (r *Runtime) SetPluginEngine(name string, kind EngineKind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == "" || kind == r.defKind {
		delete(r.byPlugin, name)
	} else {
		r.byPlugin[name] = kind
	}
}

// PluginEngine is the engine Load uses for the plugin name.
func (r *Runtime) PluginEngine(name string) EngineKind {
	r.mu.Lock()
	defer r.mu.Unlock()
	if k, ok := r.byPlugin[name]; ok {
		return k
	}
	return r.defKind
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

// Engine returns the runtime's default engine.
func (r *Runtime) Engine() Engine { return r.engine }

// Modules is the number of module versions loaded.
func (r *Runtime) Modules() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.modules)
}

// Close closes the engines the runtime made. Modules and bindings must be
// released first; those left are closed with them.
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
	r.engMu.Lock()
	engines := r.engines
	r.engines = map[EngineKind]Engine{}
	r.engMu.Unlock()
	for _, e := range engines {
		err = errors.Join(err, e.Close(ctx))
	}
	return err
}

// Load validates and compiles a module on the plugin's engine
// (SetPluginEngine; else the default one), or returns the module already
// loaded with the same bytes (sha256) on that engine: several routes or
// plugins using one .wasm compile it once. name is the plugin name, for
// messages and the compile-time metric. Every successful Load must be
// paired with Module.Release. The runtime keeps wasm (to compile it again
// under other memory caps) without copying it: the caller must not modify
// it afterwards.
func (r *Runtime) Load(ctx context.Context, name string, wasm []byte) (*Module, error) {
	return r.LoadOn(ctx, r.PluginEngine(name), name, wasm)
}

// LoadOn is Load on the engine of kind ("": the default one).
func (r *Runtime) LoadOn(ctx context.Context, kind EngineKind, name string, wasm []byte) (*Module, error) {
	if kind == "" {
		kind = r.defKind
	}
	engine, err := r.EngineOf(kind)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w", name, err)
	}
	key := moduleKey{sum: sha256.Sum256(wasm), engine: kind}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if m := r.modules[key]; m != nil {
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
	m := &Module{r: r, key: key, engine: engine, refs: 1, ready: make(chan struct{}),
		caps: make(map[uint32]*capped), names: make(map[string]bool)}
	m.version = hex.EncodeToString(key.sum[:])[:12]
	r.modules[key] = m
	r.mu.Unlock()

	m.err = m.compile(ctx, wasm)
	if m.err != nil {
		r.mu.Lock()
		if r.modules[key] == m {
			delete(r.modules, key)
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
	key     moduleKey
	engine  Engine
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
	// caps: they are the caller's (LoadOn).
	cm, err := m.engine.Compile(ctx, wasm)
	if err != nil {
		return err
	}
	info.CompileTime = time.Since(start)
	info.Engine = m.engine.Name()
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
	if last && r.modules != nil && r.modules[m.key] == m {
		delete(r.modules, m.key)
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
		if c.cm != m.cm {
			err = errors.Join(err, c.cm.Close(ctx))
		}
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
	// The module compiled under this cap already (see Engine.Compile).
	cm := m.cm
	if m.cm.MemoryPages() != pages {
		var err error
		if cm, err = m.cm.WithMemoryLimit(ctx, pages); err != nil {
			return nil, err
		}
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
	if c.cm == m.cm {
		return nil // the module's own: closed with it
	}
	return c.cm.Close(ctx)
}

// ReturnMemory gives the memory compiling and retiring modules freed back
// to the system: the Go heap's (a full collection) and, with wasmtime, the
// C heap's. It costs a full collection; call it after loads, not per
// request.
func ReturnMemory() {
	debug.FreeOSMemory()
	trimNative()
}
