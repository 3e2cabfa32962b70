package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
	"golang.org/x/sys/cpu"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/abi/httpwasm"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
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
// wazero applies a memory cap and the interruption mode per runtime
// (RuntimeConfig.WithMemoryLimitPages, WithCloseOnContextDone), so the
// engine keeps one wazero runtime per (interruption mode, cap), with the
// WASI and "wasmgate" host modules instantiated in it once, and compiles
// every module version into the runtime of its mode and cap. Loading a
// version then costs only its own compilation (a hit in the shared
// CompilationCache for known bytes), not a runtime and two host modules,
// and its first call reuses host function code already warm. A runtime is
// reference counted by the CompiledModules compiled into it and closed
// with the last of them.
type WazeroEngine struct {
	name       string
	cache      wazero.CompilationCache
	configCtx  wazero.RuntimeConfig // deadlines by wazero's context watch
	configFast wazero.RuntimeConfig // deadlines by instrumentation
	instrument bool
	// workRate makes instrumented deadlines budgets of work (deadline.go);
	// 0: wall-clock.
	workRate float64
	host     []abi.Func
	modCfg   wazero.ModuleConfig

	live     atomic.Int64 // CompiledModules not yet closed
	compiles atomic.Int64 // Compile calls

	mu   sync.Mutex
	rts  map[rtKey]*sharedRuntime // guarded by mu
	base *sharedRuntime           // the engine's own reference, see NewWazeroEngine
}

// rtKey selects a shared runtime: what wazero fixes per runtime.
type rtKey struct {
	instrumented bool   // deadlines by instrumentation, else by context watch
	pages        uint32 // memory cap; 0 is wazero's default (4 GiB)
}

// sharedRuntime is a wazero runtime with the host modules, shared by the
// CompiledModules of one rtKey.
type sharedRuntime struct {
	key  rtKey
	rt   wazero.Runtime
	refs int  // CompiledModules using it; guarded by WazeroEngine.mu
	wasi bool // wasi_snapshot_preview1 instantiated; guarded by WazeroEngine.mu
	// httpWasm: http-wasm's http_handler instantiated; guarded by
	// WazeroEngine.mu
	httpWasm bool
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
	e := &WazeroEngine{host: opts.Host, rts: make(map[rtKey]*sharedRuntime)}
	if e.host == nil {
		e.host = slices.Concat(abi.Functions(), httpwasm.Functions())
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
	if e.instrument {
		e.workRate = workRate() // measured now, not in the first cold start
	}
	// No FS, env or args (the zero ModuleConfig has none); real clocks and
	// crypto randomness instead of wazero's deterministic defaults. Start
	// functions are not run by wazero: the runtime calls _initialize (or an
	// http-wasm command's _start) itself under a deadline; a native module
	// exporting _start is rejected at load.
	e.modCfg = wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader)
	// Every module is first compiled without a cap in the runtime of the
	// engine's interruption mode: the engine makes it now and keeps it
	// until Close, so that no Load (the first after a restart included)
	// pays for a runtime and the wasmgate host module. WASI comes with
	// the first module that imports it.
	base, err := e.acquire(context.Background(), rtKey{instrumented: e.instrument}, false, false)
	if err != nil {
		_ = e.cache.Close(context.Background())
		return nil, err
	}
	e.base = base
	return e, nil
}

// Name implements Engine.
func (e *WazeroEngine) Name() string { return e.name }

// LiveRuntimes is the number of compiled modules not yet closed: one per
// module version and one per (version, memory cap) in use. Each used to
// own a wazero runtime; they now share them (see SharedRuntimes), but the
// count keeps its meaning for leak checks: it falls back to 0 when every
// version is released, and stays bounded under hot reloads.
func (e *WazeroEngine) LiveRuntimes() int64 { return e.live.Load() }

// SharedRuntimes is the number of wazero runtimes open: the engine's base
// runtime, and one per other (interruption mode, memory cap) used by a
// live compiled module.
func (e *WazeroEngine) SharedRuntimes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.rts)
}

// Compilations is the number of Compile calls (each may be a cache hit).
func (e *WazeroEngine) Compilations() int64 { return e.compiles.Load() }

// Close implements Engine: it closes the base runtime and drops the
// in-memory compilation cache.
func (e *WazeroEngine) Close(ctx context.Context) error {
	e.mu.Lock()
	base := e.base
	e.base = nil
	e.mu.Unlock()
	var err error
	if base != nil {
		err = e.releaseRuntime(ctx, base)
	}
	return errors.Join(err, e.cache.Close(ctx))
}

// Compile implements Engine. The module is compiled under the default
// memory cap (DefaultMemoryPages) when it fits: each wazero CompiledModule
// holds a decoded copy of the module (its code and data segments,
// megabytes for a Go plugin), and bindings with the default cap then use
// this one (Module.withCap) instead of a second.
func (e *WazeroEngine) Compile(ctx context.Context, wasm []byte) (CompiledModule, error) {
	info, err := parse(wasm)
	if err != nil {
		return nil, err
	}
	// The ABI check is the Runtime's (before compiling); here it only
	// derives the hooks and the reactor flag from the exports.
	_ = validate(&info)
	e.compiles.Add(1)
	pages := uint32(DefaultMemoryPages)
	if m := info.Memory; m.Min > pages || m.HasMax && m.Max > pages {
		pages = 0
	}
	code, instrumented := wasm, false
	info.Interruption = "context"
	if e.instrument {
		if ic, err := instrument(wasm); err != nil {
			info.Interruption = "context (not instrumented: " + err.Error() + ")"
		} else {
			code, instrumented, info.Interruption = ic, true, "instrumented"
		}
	}
	code, img := withImage(code)
	c, err := e.compile(ctx, info, wasm, code, img, pages, instrumented)
	if err != nil && instrumented {
		// A rewriter bug must not cost the plugin: the original bytes
		// compile with wazero's own deadline checks.
		info.Interruption = "context (instrumented module failed to compile: " + err.Error() + ")"
		if c2, err2 := e.compile(ctx, info, wasm, wasm, nil, pages, false); err2 == nil {
			return c2, nil
		}
	}
	return c, err
}

// withImage moves code's data segments into a memory image (memimage.go)
// when it has enough data for one and the system can make one; otherwise
// it returns code as it is and no image.
func withImage(code []byte) ([]byte, *memImage) {
	split, segs, size, ok := splitData(code)
	if !ok {
		return code, nil
	}
	img, err := newMemImage(segs, size)
	if err != nil {
		return code, nil
	}
	return split, img
}

// compile compiles code (src, maybe instrumented) in the shared runtime
// capped at pages (0: wazero's default, 4 GiB).
// img, the image of code's data (nil: none), is the compiled module's from
// then on.
func (e *WazeroEngine) compile(ctx context.Context, info ModuleInfo, src, code []byte, img *memImage, pages uint32, instrumented bool) (*wzCompiled, error) {
	sr, err := e.acquire(ctx, rtKey{instrumented: instrumented, pages: pages}, importsWASI(info), importsModule(info, httpwasm.ModuleName))
	if err == nil {
		var cm wazero.CompiledModule
		if cm, err = sr.rt.CompileModule(ctx, code); err == nil {
			e.live.Add(1)
			return &wzCompiled{e: e, info: info, src: src, instrumented: instrumented, img: img, sr: sr, rt: sr.rt, cm: cm, pages: pages}, nil
		}
		e.releaseRuntime(ctx, sr)
		err = fmt.Errorf("compile: %w", err)
	}
	if img != nil {
		img.release()
	}
	return nil, err
}

// acquire returns the runtime of key with one more reference, creating it
// (and the wasmgate host module) on first use, and WASI the first time a
// module needs it. The lock is held while creating so that concurrent loads
// under a new cap make one runtime, not several.
func (e *WazeroEngine) acquire(ctx context.Context, key rtKey, wasi, httpWasm bool) (*sharedRuntime, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if sr := e.rts[key]; sr != nil {
		if err := sr.needWASI(ctx, wasi); err != nil {
			return nil, err
		}
		if err := e.needHTTPWasm(ctx, sr, httpWasm); err != nil {
			return nil, err
		}
		sr.refs++
		return sr, nil
	}
	cfg := e.configCtx
	if key.instrumented {
		cfg = e.configFast
	}
	if key.pages > 0 {
		cfg = cfg.WithMemoryLimitPages(key.pages)
	}
	// The runtime outlives the load that made it: a caller's context
	// cancelled later must not reach it.
	rt := wazero.NewRuntimeWithConfig(context.WithoutCancel(ctx), cfg)
	if err := e.instantiateHost(ctx, rt, abi.ModuleName); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	sr := &sharedRuntime{key: key, rt: rt, refs: 1}
	err := sr.needWASI(ctx, wasi)
	if err == nil {
		err = e.needHTTPWasm(ctx, sr, httpWasm)
	}
	if err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	e.rts[key] = sr
	return sr, nil
}

// needWASI instantiates WASI in sr if a module needs it and it is not there
// yet. Compiling WASI's ~46 host trampolines is most of a new runtime's
// cost, which a module without WASI imports (WAT, C, Rust without std)
// should not pay at every restart. Called with WazeroEngine.mu held.
func (sr *sharedRuntime) needWASI(ctx context.Context, wasi bool) error {
	if !wasi || sr.wasi {
		return nil
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, sr.rt); err != nil {
		return fmt.Errorf("host module %s: %w", wasiModule, err)
	}
	sr.wasi = true
	return nil
}

// needHTTPWasm instantiates http-wasm's http_handler host module in sr the
// first time a module of that ABI needs it, as needWASI does WASI. Called
// with WazeroEngine.mu held.
func (e *WazeroEngine) needHTTPWasm(ctx context.Context, sr *sharedRuntime, need bool) error {
	if !need || sr.httpWasm {
		return nil
	}
	if err := e.instantiateHost(ctx, sr.rt, httpwasm.ModuleName); err != nil {
		return err
	}
	sr.httpWasm = true
	return nil
}

// importsWASI reports whether a module imports anything from WASI.
func importsWASI(info ModuleInfo) bool { return importsModule(info, wasiModule) }

// importsModule reports whether a module imports anything from module.
func importsModule(info ModuleInfo, module string) bool {
	for _, im := range info.Imports {
		if im.Module == module {
			return true
		}
	}
	return false
}

// releaseRuntime drops a reference to sr and closes it with the last.
func (e *WazeroEngine) releaseRuntime(ctx context.Context, sr *sharedRuntime) error {
	e.mu.Lock()
	sr.refs--
	last := sr.refs == 0
	if last && e.rts[sr.key] == sr {
		delete(e.rts, sr.key)
	}
	e.mu.Unlock()
	if !last {
		return nil
	}
	return sr.rt.Close(ctx)
}

// instantiateHost adds the host module of that name to rt: the functions
// of e.host that belong to it.
func (e *WazeroEngine) instantiateHost(ctx context.Context, rt wazero.Runtime, module string) error {
	b := rt.NewHostModuleBuilder(module)
	for _, f := range e.host {
		if f.ImportModule() != module {
			continue
		}
		fn := f.Fn
		fb := b.NewFunctionBuilder()
		if module == abi.ModuleName {
			fb = fb.WithGoFunction(api.GoFunc(func(ctx context.Context, stack []uint64) {
				fn(callOf(ctx), stack)
			}), wzTypes(f.Params), wzTypes(f.Results))
		} else {
			// Ecosystem guests call their host from a start section,
			// which runs inside InstantiateModule, before Instantiate
			// has set Call.Mem: it is found from the caller then.
			fb = fb.WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
				c := callOf(ctx)
				if c.Mem == nil {
					if mem := m.Memory(); mem != nil {
						c.Mem = &wzMemory{mem}
					}
				}
				fn(c, stack)
			}), wzTypes(f.Params), wzTypes(f.Results))
		}
		fb.WithName(f.Name).Export(f.Name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		return fmt.Errorf("host module %s: %w", module, err)
	}
	return nil
}

// wzTypes converts value types to wazero's, which use the same bytes.
func wzTypes(ts []sdkabi.ValueType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
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

// fromWZ converts wazero's value types, which use the same bytes.
func fromWZ(ts []api.ValueType) []sdkabi.ValueType {
	out := make([]sdkabi.ValueType, len(ts))
	for i, t := range ts {
		out[i] = sdkabi.ValueType(t)
	}
	return out
}

// wzCompiled is a module compiled in a shared wazero runtime.
type wzCompiled struct {
	e            *WazeroEngine
	info         ModuleInfo
	src          []byte    // the module as loaded (shared with the Runtime's caller)
	instrumented bool      // what was compiled is src instrumented
	img          *memImage // the initial memory, out of the compiled code (memimage.go); nil: in it
	sr           *sharedRuntime
	rt           wazero.Runtime // sr.rt
	cm           wazero.CompiledModule
	pages        uint32

	// The runtime is shared, so closing it no longer closes this
	// module's instances: the compiled module keeps them in a list (no
	// allocation per instance) to close those left when it is closed.
	mu     sync.Mutex
	head   *wzInstance // live instances; guarded by mu
	closed bool        // guarded by mu
}

// Info implements CompiledModule.
func (c *wzCompiled) Info() ModuleInfo { return c.info }

// WithMemoryLimit implements CompiledModule. The new runtime compiles the
// same bytes, a hit in the shared compilation cache (but a decoded copy of
// the module of its own).
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
	// The instrumented bytes are made again rather than kept: a new cap
	// is rare, and they are as large as the module.
	code := c.src
	if c.instrumented {
		var err error
		if code, err = instrument(c.src); err != nil {
			return nil, fmt.Errorf("instrument: %w", err)
		}
	}
	// The same bytes split the same way: the image is shared.
	var img *memImage
	if c.img != nil {
		if img = c.image(); img == nil {
			return nil, errors.New("compiled module closed")
		}
		split, _, _, ok := splitData(code)
		if !ok {
			img.release()
			return nil, errors.New("the module split differently") // splitData is deterministic
		}
		code = split
	}
	return c.e.compile(ctx, c.info, c.src, code, img, pages, c.instrumented)
}

// image returns c's memory image with a reference for the caller to
// release; nil when c has none or is closed.
func (c *wzCompiled) image() *memImage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.img == nil {
		return nil
	}
	return c.img.retain()
}

// MemoryPages implements CompiledModule.
func (c *wzCompiled) MemoryPages() uint32 { return c.pages }

// Close implements CompiledModule: it closes any instance left, releases
// this use of the compiled code and of the shared runtime (closed with
// its last module).
func (c *wzCompiled) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	var left []api.Module
	for i := c.head; i != nil; {
		next := i.next
		i.prev, i.next, i.owner = nil, nil, nil
		left = append(left, i.mod)
		i = next
	}
	c.head = nil
	c.mu.Unlock()
	// Only the modules are closed, as closing a runtime of its own did:
	// an instance still held by its owner fails its next call, and its
	// own Close later finds nothing to unlink.
	var err error
	for _, mod := range left {
		err = errors.Join(err, mod.Close(ctx))
	}
	err = errors.Join(err, c.cm.Close(ctx))
	err = errors.Join(err, c.e.releaseRuntime(ctx, c.sr))
	if c.img != nil {
		c.img.release()
	}
	c.e.live.Add(-1)
	return err
}

// track links a new instance into the live list; false once c is closed.
func (c *wzCompiled) track(i *wzInstance) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	i.owner, i.next = c, c.head
	if c.head != nil {
		c.head.prev = i
	}
	c.head = i
	return true
}

// untrack unlinks a closing instance.
func (c *wzCompiled) untrack(i *wzInstance) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i.owner != c {
		return // already unlinked by c.Close
	}
	if i.prev != nil {
		i.prev.next = i.next
	} else {
		c.head = i.next
	}
	if i.next != nil {
		i.next.prev = i.prev
	}
	i.prev, i.next, i.owner = nil, nil, nil
}

// Instantiate implements CompiledModule.
func (c *wzCompiled) Instantiate(ctx context.Context, opts InstanceOptions) (ModuleInstance, error) {
	if opts.Call == nil {
		opts.Call = new(abi.Call)
	}
	i := &wzInstance{c: c, call: opts.Call, capBytes: uint64(c.pages) << 16}
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
	ictx := context.Context(&i.cc)
	// The image is held for the instantiation: the compiled module may be
	// closed meanwhile (a binding torn down), and its memfd with it.
	img := c.image()
	if c.img != nil && img == nil {
		i.cc.disarm()
		i.cc.stop()
		return nil, errors.New("instantiate: compiled module closed")
	}
	if img != nil {
		defer img.release()
	}
	ictx = withLinearMemory(ictx, i, img, opts.LongLived)
	mod, err := c.rt.InstantiateModule(ictx, c.cm, cfg)
	fired := i.cc.disarm()
	if err != nil {
		i.releaseMemory()
		i.cc.stop()
		return nil, deadlineErr(fmt.Errorf("instantiate: %w", err), fired)
	}
	i.mod = mod
	if !c.track(i) {
		i.cc.stop()
		_ = mod.Close(ctx)
		i.releaseMemory()
		return nil, errors.New("instantiate: compiled module closed")
	}
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
		if rate := c.e.workRate; rate > 0 {
			if work := mod.ExportedGlobal(workExport); work != nil {
				i.cc.meter = &workMeter{work: work, rate: rate}
			}
		}
	}
	for h := Hook(0); h < numHooks; h++ {
		if c.info.Hooks.Has(h) {
			i.fns[h] = mod.ExportedFunction(h.Export(c.info.ABI))
		}
	}
	// The start function (instrumented modules run it here, under the
	// deadline), then _initialize (or an http-wasm command's _start).
	for _, name := range [...]string{startExport, c.info.InitExport()} {
		if name == "" || name == startExport && !c.instrumented {
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
	c        *wzCompiled // immutable
	mod      api.Module
	mem      api.Memory
	grow     api.MutableGlobal // instrumented: the last memory.grow result
	capBytes uint64
	call     *abi.Call
	fns      [numHooks]api.Function
	stack    [2]uint64 // the most any hook takes (handle_response) or returns
	cc       callCtx
	lin      interface{ release() } // the linear memory outside the Go heap; nil: wazero's

	// Links in the owner's live list (wzCompiled.track); guarded by
	// owner.mu, nil once unlinked.
	owner      *wzCompiled
	prev, next *wzInstance
}

// CallHook implements ModuleInstance.
func (i *wzInstance) CallHook(h Hook, arg uint32, timeout time.Duration) (int32, error) {
	v, err := i.CallHookRaw(h, arg, 0, timeout)
	return int32(uint32(v)), err
}

// CallHookRaw implements ModuleInstance.
func (i *wzInstance) CallHookRaw(h Hook, a0, a1 uint32, timeout time.Duration) (uint64, error) {
	f := i.fns[h]
	if f == nil {
		return 0, fmt.Errorf("hook %s is not exported", h.Export(i.c.info.ABI))
	}
	i.stack[0], i.stack[1] = uint64(a0), uint64(a1)
	i.call.Ctx = &i.cc
	i.cc.arm(timeout)
	err := f.CallWithStack(&i.cc, i.stack[:])
	if fired := i.cc.disarm(); err != nil || fired {
		// A guest that returned after its deadline overran it all the same.
		return 0, deadlineErr(orLate(err), fired)
	}
	return i.stack[0], nil
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
	// i.c is fixed at creation; untrack reads the links under its lock.
	i.c.untrack(i)
	err := i.mod.Close(ctx)
	i.releaseMemory()
	return err
}

// releaseMemory unmaps the instance's linear memory: wazero only dropped
// its pages (mmapMemory), as its guest might have been running.
func (i *wzInstance) releaseMemory() {
	if i.lin != nil {
		i.lin.release()
		i.lin = nil
	}
}

// wzMemory adapts api.Memory to abi.Memory.
type wzMemory struct{ m api.Memory }

func (w *wzMemory) Read(offset, length uint32) ([]byte, bool) { return w.m.Read(offset, length) }
func (w *wzMemory) Write(offset uint32, b []byte) bool        { return w.m.Write(offset, b) }
