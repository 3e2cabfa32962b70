package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/cpu"

	"github.com/wasmgate/wasmgate/host/abi"
)

// WazeroOptions configure the wazero engine.
type WazeroOptions struct {
	// CacheDir keeps compiled code on disk so that a restart does not
	// recompile; empty keeps it in memory only.
	CacheDir string
	// Interpreter forces wazero's interpreter even where its compiler
	// works (debugging, or platforms where mapping executable memory is
	// forbidden).
	Interpreter bool
	// Host is the table of host functions; nil means abi.Functions().
	Host []abi.Func
	// ContextInterruption enforces deadlines with wazero's own mechanism
	// (WithCloseOnContextDone) for every module, instead of instrumenting
	// modules with a cheap interruption check (see instrument). The
	// interpreter always uses it.
	ContextInterruption bool
}

// WazeroEngine is the Engine on wazero (pure Go).
//
// wazero applies a memory cap per runtime (RuntimeConfig.WithMemoryLimitPages),
// so the engine keeps one wazero runtime per (module, cap), all sharing one
// CompilationCache: the machine code is compiled once and shared, and a
// runtime is closed as soon as the CompiledModule that owns it is closed.
type WazeroEngine struct {
	name       string
	cache      wazero.CompilationCache
	configCtx  wazero.RuntimeConfig // deadlines by wazero's context watch
	configFast wazero.RuntimeConfig // deadlines by instrumentation
	instrument bool
	host       []abi.Func
	modCfg     wazero.ModuleConfig

	runtimes atomic.Int64 // live wazero runtimes
	compiles atomic.Int64 // Compile calls
}

// compilerSupported mirrors wazero's own check (internal/platform): its
// optimizing compiler runs on amd64 with SSE4.1 and on arm64, on these
// systems.
func compilerSupported() bool {
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd", "netbsd", "windows", "dragonfly", "solaris", "illumos":
	default:
		return false
	}
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasSSE41
	case "arm64":
		return runtime.GOOS != "dragonfly" && runtime.GOOS != "solaris" && runtime.GOOS != "illumos"
	}
	return false
}

// NewWazeroEngine returns a wazero engine: the compiler where supported,
// else (or when forced) the interpreter.
func NewWazeroEngine(opts WazeroOptions) (*WazeroEngine, error) {
	e := &WazeroEngine{host: opts.Host}
	if e.host == nil {
		e.host = abi.Functions()
	}
	var cfg wazero.RuntimeConfig
	if !opts.Interpreter && compilerSupported() {
		cfg, e.name = wazero.NewRuntimeConfigCompiler(), "wazero-compiler"
	} else {
		cfg, e.name = wazero.NewRuntimeConfigInterpreter(), "wazero-interpreter"
	}
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache %s: %w", opts.CacheDir, err)
		}
		e.cache = c
	} else {
		e.cache = wazero.NewCompilationCache()
	}
	// Deadlines stop even a guest that never calls the host: either the
	// module is instrumented with checks (instrument, the compiler's
	// default), or CloseOnContextDone compiles wazero's own, slower checks
	// into loops and watches each call's context.
	e.configFast = cfg.WithCompilationCache(e.cache)
	e.configCtx = e.configFast.WithCloseOnContextDone(true)
	e.instrument = !opts.ContextInterruption && e.name == "wazero-compiler"
	// No FS, env or args (the zero ModuleConfig has none); real clocks and
	// crypto randomness instead of wazero's deterministic defaults. Start
	// functions are not run by wazero: the runtime calls _initialize itself
	// under a deadline, and _start modules are rejected at load.
	e.modCfg = wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	return e, nil
}

// Name implements Engine.
func (e *WazeroEngine) Name() string { return e.name }

// LiveRuntimes is the number of wazero runtimes not yet closed: one per
// compiled module and memory cap in use.
func (e *WazeroEngine) LiveRuntimes() int64 { return e.runtimes.Load() }

// Compilations is the number of Compile calls (each may be a cache hit).
func (e *WazeroEngine) Compilations() int64 { return e.compiles.Load() }

// Close implements Engine: it drops the in-memory compilation cache.
func (e *WazeroEngine) Close(ctx context.Context) error { return e.cache.Close(ctx) }

// Compile implements Engine.
func (e *WazeroEngine) Compile(ctx context.Context, wasm []byte) (CompiledModule, error) {
	info, err := parse(wasm)
	if err != nil {
		return nil, err
	}
	// The ABI check is the Runtime's (before compiling); here it only
	// derives the hooks and the reactor flag from the exports.
	_ = validate(&info)
	e.compiles.Add(1)
	if !e.instrument {
		info.Interruption = "context"
		return e.compile(ctx, info, wasm, 0, false)
	}
	code, err := instrument(wasm)
	if err != nil {
		info.Interruption = "context (not instrumented: " + err.Error() + ")"
		return e.compile(ctx, info, wasm, 0, false)
	}
	info.Interruption = "instrumented"
	c, err := e.compile(ctx, info, code, 0, true)
	if err != nil {
		// A rewriter bug must not cost the plugin: the original bytes
		// compile with wazero's own deadline checks.
		info.Interruption = "context (instrumented module failed to compile: " + err.Error() + ")"
		if c2, err2 := e.compile(ctx, info, wasm, 0, false); err2 == nil {
			return c2, nil
		}
	}
	return c, err
}

// compile makes a runtime capped at pages (0: wazero's default, 4 GiB)
// with the host modules, and compiles code in it.
func (e *WazeroEngine) compile(ctx context.Context, info ModuleInfo, code []byte, pages uint32, instrumented bool) (*wzCompiled, error) {
	cfg := e.configCtx
	if instrumented {
		cfg = e.configFast
	}
	if pages > 0 {
		cfg = cfg.WithMemoryLimitPages(pages)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	e.runtimes.Add(1)
	c := &wzCompiled{e: e, info: info, code: code, instrumented: instrumented, rt: rt, pages: pages}
	if err := e.instantiateHost(ctx, rt); err != nil {
		_ = c.Close(ctx)
		return nil, err
	}
	cm, err := rt.CompileModule(ctx, code)
	if err != nil {
		_ = c.Close(ctx)
		return nil, fmt.Errorf("compile: %w", err)
	}
	c.cm = cm
	return c, nil
}

// instantiateHost adds the "wasmgate" and "wasi_snapshot_preview1" host
// modules to rt.
func (e *WazeroEngine) instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.ModuleName)
	for _, f := range e.host {
		fn := f.Fn
		b.NewFunctionBuilder().
			WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
				fn(callOf(ctx), stack)
			}), wzTypes(f.Params), wzTypes(f.Results)).
			WithName(f.Name).
			Export(f.Name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("host module %s: %w", abi.ModuleName, err)
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return fmt.Errorf("host module %s: %w", wasiModule, err)
	}
	return nil
}

func wzTypes(ts []abi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range fromABI(ts) {
		out[i] = api.ValueType(t)
	}
	return out
}

// errNoCall is the panic of a host function run outside any hook; wazero
// turns it into a trap of the guest.
var errNoCall = errors.New("wasmgate host function called outside a hook")

// callOf finds the abi.Call of the running instance. The runtime passes
// the instance's own *callCtx as the context of every guest call, and
// wazero hands that context to host functions unchanged: a type assertion
// finds the Call with no map lookup and no allocation.
func callOf(ctx context.Context) *abi.Call {
	if c, ok := ctx.(*callCtx); ok {
		return c.call
	}
	if c, ok := ctx.Value(callKey{}).(*abi.Call); ok {
		return c
	}
	panic(errNoCall)
}

// wasiFuncs returns the signatures of wazero's wasi_snapshot_preview1.
var wasiFuncs = sync.OnceValue(func() map[string]Signature {
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := wasi_snapshot_preview1.NewBuilder(rt).Compile(ctx)
	if err != nil {
		return map[string]Signature{}
	}
	m := make(map[string]Signature)
	for name, def := range cm.ExportedFunctions() {
		m[name] = Signature{Params: fromWZ(def.ParamTypes()), Results: fromWZ(def.ResultTypes())}
	}
	return m
})

func fromWZ(ts []api.ValueType) []ValueType {
	out := make([]ValueType, len(ts))
	for i, t := range ts {
		out[i] = ValueType(t)
	}
	return out
}

// wzCompiled is a module compiled in its own wazero runtime.
type wzCompiled struct {
	e            *WazeroEngine
	info         ModuleInfo
	code         []byte // what was compiled: the module, maybe instrumented
	instrumented bool
	rt           wazero.Runtime
	cm           wazero.CompiledModule
	pages        uint32
	closed       atomic.Bool
}

// Info implements CompiledModule.
func (c *wzCompiled) Info() ModuleInfo { return c.info }

// WithMemoryLimit implements CompiledModule. The new runtime compiles the
// same bytes, a hit in the shared compilation cache.
func (c *wzCompiled) WithMemoryLimit(ctx context.Context, pages uint32) (CompiledModule, error) {
	m := c.info.Memory
	switch {
	case pages == 0:
		return nil, errors.New("memory cap of 0 pages")
	case m.Min > pages:
		return nil, fmt.Errorf("the module needs %d memory pages at start, over the cap of %d pages", m.Min, pages)
	case m.HasMax && m.Max > pages:
		// wazero refuses a declared maximum above its limit rather than
		// clamping it; say what to change.
		return nil, fmt.Errorf("the module declares a maximum of %d memory pages, over the cap of %d pages: raise the cap or lower the module's maximum", m.Max, pages)
	}
	return c.e.compile(ctx, c.info, c.code, pages, c.instrumented)
}

// Close implements CompiledModule: it closes the runtime (and any instance
// left in it) and releases this use of the compiled code.
func (c *wzCompiled) Close(ctx context.Context) error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := c.rt.Close(ctx)
	if c.cm != nil {
		err = errors.Join(err, c.cm.Close(ctx))
	}
	c.e.runtimes.Add(-1)
	return err
}

// Instantiate implements CompiledModule.
func (c *wzCompiled) Instantiate(ctx context.Context, opts InstanceOptions) (ModuleInstance, error) {
	if opts.Call == nil {
		opts.Call = new(abi.Call)
	}
	i := &wzInstance{call: opts.Call, capBytes: uint64(c.pages) << 16}
	if c.pages == 0 {
		i.capBytes = 1 << 32
	}
	i.cc.init(opts.Call)
	cfg := c.e.modCfg.WithNanosleep(i.cc.sleep)
	if opts.Stdout != nil {
		cfg = cfg.WithStdout(opts.Stdout)
	}
	if opts.Stderr != nil {
		cfg = cfg.WithStderr(opts.Stderr)
	}
	opts.Call.Ctx = &i.cc
	i.cc.arm(opts.InitTimeout)
	mod, err := c.rt.InstantiateModule(&i.cc, c.cm, cfg)
	fired := i.cc.disarm()
	if err != nil {
		i.cc.stop()
		return nil, deadlineErr(fmt.Errorf("instantiate: %w", err), fired)
	}
	i.mod = mod
	i.mem = mod.Memory()
	if i.mem != nil {
		opts.Call.Mem = &wzMemory{i.mem}
	}
	if c.instrumented {
		flag, ok := mod.ExportedGlobal(interruptExport).(api.MutableGlobal)
		if !ok {
			_ = i.Close(ctx)
			return nil, errors.New("instrumented module lacks its interruption global")
		}
		i.cc.onFire = func() { flag.Set(1) }
		i.grow, _ = mod.ExportedGlobal(growExport).(api.MutableGlobal)
	}
	for h := Hook(0); h < numHooks; h++ {
		if c.info.Hooks.Has(h) {
			i.fns[h] = mod.ExportedFunction(h.String())
		}
	}
	// The start function (instrumented modules run it here, under the
	// deadline), then _initialize.
	for _, name := range [...]string{startExport, exportInit} {
		if name == exportInit && !c.info.Reactor || name == startExport && !c.instrumented {
			continue
		}
		f := mod.ExportedFunction(name)
		if f == nil {
			continue
		}
		opts.Call.Ctx = &i.cc
		i.cc.arm(opts.InitTimeout)
		err := f.CallWithStack(&i.cc, i.stack[:])
		if fired := i.cc.disarm(); err != nil || fired {
			err = deadlineErr(orLate(err), fired)
			_ = i.Close(ctx)
			if name == startExport {
				name = "start function"
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return i, nil
}

// errLate is the error of a call that returned after its deadline fired.
var errLate = errors.New("returned after its deadline")

func orLate(err error) error {
	if err == nil {
		return errLate
	}
	return err
}

// deadlineErr marks err as a deadline error when the deadline fired or
// wazero closed the module for it.
func deadlineErr(err error, fired bool) error {
	var exit *sys.ExitError
	if fired || errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded {
		return fmt.Errorf("%w: %w", ErrDeadline, err)
	}
	return err
}

// wzInstance is a wazero module instance.
type wzInstance struct {
	mod      api.Module
	mem      api.Memory
	grow     api.MutableGlobal // instrumented: the last memory.grow result
	capBytes uint64
	call     *abi.Call
	fns      [numHooks]api.Function
	stack    [1]uint64
	cc       callCtx
}

// CallHook implements ModuleInstance.
func (i *wzInstance) CallHook(h Hook, arg uint32, timeout time.Duration) (int32, error) {
	f := i.fns[h]
	if f == nil {
		return 0, fmt.Errorf("hook %s is not exported", h)
	}
	i.stack[0] = uint64(arg)
	i.call.Ctx = &i.cc
	i.cc.arm(timeout)
	err := f.CallWithStack(&i.cc, i.stack[:])
	if fired := i.cc.disarm(); err != nil || fired {
		// A guest that returned after its deadline overran it all the same.
		return 0, deadlineErr(orLate(err), fired)
	}
	return int32(uint32(i.stack[0])), nil
}

// MemorySize implements ModuleInstance.
func (i *wzInstance) MemorySize() uint32 {
	if i.mem == nil {
		return 0
	}
	return i.mem.Size()
}

// OutOfMemory implements ModuleInstance. Without the instrumented record
// of the last memory.grow, it guesses from the size: within min(cap/8,
// 4 MiB) of the cap, the step in which Go's runtime grows its heap, the
// guest had no room left.
func (i *wzInstance) OutOfMemory() bool {
	if i.grow != nil {
		return uint32(i.grow.Get()) == 0xffffffff
	}
	size := uint64(i.MemorySize())
	return size+min(i.capBytes/8, 4<<20) > i.capBytes
}

// Close implements ModuleInstance.
func (i *wzInstance) Close(ctx context.Context) error {
	i.cc.stop()
	return i.mod.Close(ctx)
}

// wzMemory adapts api.Memory to abi.Memory.
type wzMemory struct{ m api.Memory }

func (w *wzMemory) Read(offset, length uint32) ([]byte, bool) { return w.m.Read(offset, length) }
func (w *wzMemory) Write(offset uint32, b []byte) bool        { return w.m.Write(offset, b) }
