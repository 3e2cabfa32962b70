//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64))

package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/abi/httpwasm"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// wasmtimeVersion is the wasmtime of wasmtime-go (go.mod): part of the
// compilation cache key, since compiled code only loads into the version
// that made it.
const wasmtimeVersion = "39.0.1"

// WasmtimeAvailable reports whether this build has the wasmtime engine
// (cgo, on a platform wasmtime-go ships a library for).
func WasmtimeAvailable() bool { return true }

// WasmtimeOptions configure the wasmtime engine.
type WasmtimeOptions struct {
	// CacheDir keeps compiled code on disk (in a wasmtime-VERSION
	// directory beside wazero's) so that a restart does not recompile;
	// empty compiles every module. As with wazero's cache, the directory
	// must be as trusted as the binary: its native code is loaded as is.
	CacheDir string
	// Host is the table of host functions; nil means abi.Functions().
	Host []abi.Func
	// PoolSlots, when not 0, makes instances in wasmtime's pooling
	// allocator: that many instance slots (each with a linear memory and
	// a table) are reserved up front, and an instance takes one and gives
	// it back instead of mapping its memory: instantiation costs about
	// half. Each slot reserves (does not commit) 4 GiB plus guard pages of
	// address space; an instance beyond PoolSlots live at once fails to
	// instantiate. 0 maps each instance's memory on its own.
	PoolSlots uint32
}

// WasmtimeEngine is the Engine on wasmtime (Cranelift, through cgo).
//
// One wasmtime engine and one linker, with the wasmgate host functions
// and WASI (wasip1.go, the same sandbox as on wazero) defined once, serve
// every module. An instance is a module instantiated in a store of its
// own: the memory cap is the store's limiter, so one compiled module
// serves every cap.
//
// A call's deadline is a budget of fuel (wasmtime_fuel.go), and its
// wall-clock ceiling uses wasmtime's epoch interruption: compiled code checks the
// engine's epoch at function entries and loop headers. Each store starts
// one epoch ahead and has a deadline callback (wasmtime_capi.go) that lets
// its guest run on into the next epoch unless the store was stopped; to
// stop one guest, interrupt sets its store's flag and increments the
// epoch: that guest traps, every other running guest passes one callback
// and runs on. Any goroutine may stop an instance that way (callCtx's
// timer does, at the call's deadline).
type WasmtimeEngine struct {
	engine    *wasmtime.Engine
	linker    *wasmtime.Linker
	cacheDir  string  // "": no disk cache
	fuelRate  float64 // fuel per CPU-second; 0: no fuel, wall-clock deadlines
	poolSlots uint32  // 0: no pooling allocator

	live      atomic.Int64 // CompiledModules not yet closed
	instances atomic.Int64 // instances not yet closed
	compiles  atomic.Int64 // Compile calls
	cacheHits atomic.Int64 // compiled code read from the disk cache
	closed    atomic.Bool
}

// NewWasmtimeEngine returns a wasmtime engine.
func NewWasmtimeEngine(opts WasmtimeOptions) (*WasmtimeEngine, error) {
	if err := wtCheckLayout(); err != nil {
		return nil, err
	}
	wtQuietBacktraces()
	cfg := wasmtime.NewConfig()
	cfg.SetEpochInterruption(true)
	rate := wtFuelRate()
	cfg.SetConsumeFuel(rate > 0)
	if opts.PoolSlots > 0 {
		if err := wtCheckReservation(opts.PoolSlots); err != nil {
			return nil, fmt.Errorf("wasmtime engine: %w", err)
		}
		wtPooling(cfg, opts.PoolSlots, 4<<30)
	}
	engine := wasmtime.NewEngineWithConfig(cfg)
	e := &WasmtimeEngine{engine: engine, fuelRate: rate, poolSlots: opts.PoolSlots}
	e.linker = wasmtime.NewLinker(e.engine)
	hosts := wtDefaultHosts()
	if opts.Host != nil {
		hosts = wtRegister(wtHostTable(opts.Host))
	}
	for _, env := range hosts {
		h := wtHostFunc(env)
		if err := wtDefine(e.linker, h.module, h.name, h.params, h.results, env); err != nil {
			e.linker.Close()
			e.engine.Close()
			return nil, fmt.Errorf("host function %s.%s: %w", h.module, h.name, err)
		}
	}
	if opts.CacheDir != "" {
		dir := filepath.Join(opts.CacheDir, "wasmtime-"+wasmtimeVersion+"-"+runtime.GOOS+"-"+runtime.GOARCH)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			e.linker.Close()
			e.engine.Close()
			return nil, fmt.Errorf("compilation cache %s: %w", opts.CacheDir, err)
		}
		e.cacheDir = dir
	}
	// One store, to check on a live object what wtStorePtr assumes.
	s := wasmtime.NewStore(e.engine)
	ok := wtSameContext(s)
	s.Close()
	if !ok {
		e.linker.Close()
		e.engine.Close()
		return nil, errWasmtimeLayout("Store")
	}
	return e, nil
}

// wtQuietBacktraces keeps wasmtime from capturing a native backtrace with
// every error (a guest's trap, a deadline) when RUST_BACKTRACE is set: it
// costs hundreds of µs per trap, and the engine reports wasm frames only.
// An explicit RUST_LIB_BACKTRACE is left alone. It is set before the first
// engine runs anything, as Rust reads it once.
var wtQuietBacktraces = sync.OnceFunc(func() {
	if _, ok := os.LookupEnv("RUST_LIB_BACKTRACE"); !ok {
		_ = os.Setenv("RUST_LIB_BACKTRACE", "0")
	}
})

// Name implements Engine.
func (e *WasmtimeEngine) Name() string { return "wasmtime" }

// LiveModules is the number of compiled modules not yet closed: one per
// module version and one per (version, memory cap) in use.
func (e *WasmtimeEngine) LiveModules() int64 { return e.live.Load() }

// LiveInstances is the number of instances not yet closed.
func (e *WasmtimeEngine) LiveInstances() int64 { return e.instances.Load() }

// Compilations is the number of Compile calls; CacheHits those served
// from the disk cache.
func (e *WasmtimeEngine) Compilations() int64 { return e.compiles.Load() }

// CacheHits is the number of Compile calls served from the disk cache.
func (e *WasmtimeEngine) CacheHits() int64 { return e.cacheHits.Load() }

// Close implements Engine.
func (e *WasmtimeEngine) Close(context.Context) error {
	if e.closed.Swap(true) {
		return nil
	}
	e.linker.Close()
	e.engine.Close()
	return nil
}

// Compile implements Engine.
func (e *WasmtimeEngine) Compile(_ context.Context, wasm []byte) (CompiledModule, error) {
	if e.closed.Load() {
		return nil, errors.New("compile: engine closed")
	}
	info, err := parse(wasm)
	if err != nil {
		return nil, err
	}
	// The ABI check is the Runtime's (before compiling); here it only
	// derives the hooks and the reactor flag from the exports.
	_ = validate(&info)
	info.Interruption = "epoch"
	if e.fuelRate > 0 {
		info.Interruption = "fuel"
	}
	e.compiles.Add(1)
	// The module records its memory.grow results (recordGrows) and, with
	// fuel, burns fuel by the length of its bulk memory operations
	// (chargeBulk). One recordGrows cannot handle runs as it is, its
	// memory failures then guessed from the size; one whose bulk
	// operations cannot be metered is refused: it would run gigabytes of
	// them for one unit of fuel each.
	var m *wasmtime.Module
	code, grows, err := recordGrows(wasm)
	if err != nil {
		code, grows = wasm, false
	}
	bulk := false
	if e.fuelRate > 0 {
		var charged []byte
		if charged, bulk, err = chargeBulk(code); err != nil {
			return nil, fmt.Errorf("compile: metering bulk memory operations: %w", err)
		}
		if bulk {
			code = charged
		}
	}
	if grows || bulk {
		if m, err = e.module(code); err != nil {
			if bulk {
				return nil, fmt.Errorf("compile: metering bulk memory operations: %w", err)
			}
			m, grows = nil, false
		}
	}
	if m == nil {
		if m, err = e.module(wasm); err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
	}
	mod := &wtModule{m: m, code: wasm, grows: grows}
	mod.refs.Store(1)
	// _initialize (or an http-wasm command's _start) is called unchecked:
	// only with the signature it must have.
	initOK := false
	for _, ex := range info.Exports {
		if ex.Name == info.InitExport() && ex.Kind == ExternFunc && ex.Type.Equal(Signature{}) {
			initOK = true
		}
	}
	e.live.Add(1)
	return &wtCompiled{e: e, info: info, mod: mod, initOK: initOK}, nil
}

// module compiles wasm, or loads what an earlier compile of the same
// bytes left in the disk cache.
func (e *WasmtimeEngine) module(wasm []byte) (*wasmtime.Module, error) {
	if e.cacheDir == "" {
		return wasmtime.NewModule(e.engine, wasm)
	}
	sum := sha256.Sum256(wasm)
	path := filepath.Join(e.cacheDir, hex.EncodeToString(sum[:])+".cwasm")
	// A module loaded from its cache file maps the file instead of copying
	// it: its code and its memory image are file pages, resident only once
	// touched and shared by every process on the same cache. Where the file
	// cannot be mapped executable (a noexec mount), it is read and copied.
	// wasmtime refuses code of another version or configuration; then the
	// module is compiled again and the entry replaced (by rename, so a
	// mapping of the old file stays valid).
	if m, err := wasmtime.NewModuleDeserializeFile(e.engine, path); err == nil {
		e.cacheHits.Add(1)
		return m, nil
	}
	if b, err := os.ReadFile(path); err == nil {
		if m, err := wasmtime.NewModuleDeserialize(e.engine, b); err == nil {
			e.cacheHits.Add(1)
			return m, nil
		}
	}
	m, err := wasmtime.NewModule(e.engine, wasm)
	if err != nil {
		return nil, err
	}
	b, err := m.Serialize()
	if err != nil || !writeCacheFile(path, b) {
		return m, nil // best effort: a failure only costs the next start a compile
	}
	if mapped, err := wasmtime.NewModuleDeserializeFile(e.engine, path); err == nil {
		m.Close()
		return mapped, nil
	}
	return m, nil
}

// writeCacheFile writes b to path atomically: a reader sees the old file
// or the whole new one. It reports whether the file was written. The file
// is read-only: wasmtime maps it into running gateways, and one changed
// or truncated in place would change their code or crash them (SIGBUS);
// it is only ever replaced by a rename.
func writeCacheFile(path string, b []byte) bool {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return false
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o444)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err == nil
}

// wtModule is compiled code, shared by the CompiledModules of every memory
// cap of a version. A store keeps what its instance uses alive, so the
// module may be closed before its instances.
type wtModule struct {
	m     *wasmtime.Module
	code  []byte // the module's bytes, for the signatures of trap frames
	grows bool   // the module records memory.grow results (recordGrows)
	refs  atomic.Int32
	sigs  func() []Signature
	once  sync.Once
}

// signatures are the types of every function of the module, by index.
func (m *wtModule) signatures() []Signature {
	m.once.Do(func() {
		s := funcSignatures(m.code)
		m.sigs = func() []Signature { return s }
	})
	return m.sigs()
}

func (m *wtModule) release() {
	if m.refs.Add(-1) == 0 {
		m.m.Close()
	}
}

// wtCompiled is a module under one memory cap.
type wtCompiled struct {
	e      *WasmtimeEngine
	info   ModuleInfo
	mod    *wtModule
	pages  uint32 // 0: no cap beyond wasm32's 4 GiB
	initOK bool   // _initialize is ()->()
	closed atomic.Bool
}

// Info implements CompiledModule.
func (c *wtCompiled) Info() ModuleInfo { return c.info }

// WithMemoryLimit implements CompiledModule: the same code, instantiated in
// stores whose limiter caps memory at pages.
func (c *wtCompiled) WithMemoryLimit(_ context.Context, pages uint32) (CompiledModule, error) {
	m := c.info.Memory
	switch {
	case pages == 0:
		return nil, errors.New("memory cap of 0 pages")
	case m.Min > pages:
		return nil, fmt.Errorf("the module needs %d memory pages at start, over the cap of %d pages", m.Min, pages)
	case m.HasMax && m.Max > pages:
		// As on wazero: a declared maximum above the cap is refused rather
		// than clamped; say what to change.
		return nil, fmt.Errorf("the module declares a maximum of %d memory pages, over the cap of %d pages: raise the cap or lower the module's maximum", m.Max, pages)
	}
	if c.closed.Load() {
		return nil, errors.New("compiled module closed")
	}
	c.mod.refs.Add(1)
	c.e.live.Add(1)
	return &wtCompiled{e: c.e, info: c.info, mod: c.mod, pages: pages, initOK: c.initOK}, nil
}

// MemoryPages implements CompiledModule.
func (c *wtCompiled) MemoryPages() uint32 { return c.pages }

// Close implements CompiledModule. Instances still open keep working until
// their owner closes them (a store cannot be freed under a running call).
func (c *wtCompiled) Close(context.Context) error {
	if c.closed.Swap(true) {
		return nil
	}
	c.mod.release()
	c.e.live.Add(-1)
	return nil
}

// Slots of wg_inst.fns: the hooks, then _initialize.
const wtSlotInit = int(numHooks)

// Instantiate implements CompiledModule.
func (c *wtCompiled) Instantiate(_ context.Context, opts InstanceOptions) (ModuleInstance, error) {
	if c.closed.Load() {
		return nil, errors.New("instantiate: compiled module closed")
	}
	if opts.Call == nil {
		opts.Call = new(abi.Call)
	}
	store := wasmtime.NewStore(c.e.engine)
	if c.pages > 0 {
		store.Limiter(int64(c.pages)<<16, -1, -1, -1, -1)
	}
	i := &wtInstance{c: c, store: store, call: opts.Call, capBytes: uint64(c.pages) << 16}
	if c.pages == 0 {
		i.capBytes = 1 << 32
	}
	i.w = wtNewInst(store)
	i.stop = wtInstallStop(store)
	if i.w == nil || i.stop == nil {
		store.Close()
		if i.w != nil {
			wtFreeInst(i.w)
		}
		return nil, errors.New("instantiate: out of memory")
	}
	i.mem.i = i
	i.cc.init(opts.Call)
	i.cc.onFire = i.interrupt
	if rate := c.e.fuelRate; rate > 0 {
		i.fuel = &wtFuel{w: i.w, rate: rate}
		i.cc.meter = i.fuel
	}
	i.wasi = wasiEnv{stdout: opts.Stdout, stderr: opts.Stderr, sleep: i.cc.sleep}
	opts.Call.Mem = &i.mem
	wtLive.Store(wtCx(i.w), i)
	c.e.instances.Add(1)

	opts.Call.Ctx = &i.cc
	i.cc.arm(opts.InitTimeout)
	fl := wtInstantiate(c.e.linker, i.w, c.mod.m, i.fuelFor(opts.InitTimeout))
	if fired := i.cc.disarm(); fl != nil || fired {
		err := wtDeadline(i.failure(fl), fired || fl.outOfFuel())
		_ = i.Close(context.Background())
		if fl != nil && strings.Contains(fl.msg, "concurrent limit") {
			err = fmt.Errorf("%w: every slot of plugin_runtime.wasmtime_pool_slots is taken (%w)", ErrPoolExhausted, err)
		}
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	i.mem.resolved = wtExportMemory(i.w)
	i.grows = c.mod.grows && wtExportGrow(i.w)
	if !i.mem.resolved {
		opts.Call.Mem = nil
	}
	for h := Hook(0); h < numHooks; h++ {
		i.has[h] = c.info.Hooks.Has(h) && wtExportFunc(i.w, h.Export(c.info.ABI), int(h))
	}
	if name := c.info.InitExport(); name != "" && c.initOK && wtExportFunc(i.w, name, wtSlotInit) {
		opts.Call.Ctx = &i.cc
		i.cc.arm(opts.InitTimeout)
		i.hostErr, i.hostFunc = "", nil
		_, fl := wtCall(i.w, wtSlotInit, 0, 0, i.fuelFor(opts.InitTimeout))
		if fired := i.cc.disarm(); fl != nil || fired {
			err := wtDeadline(i.failure(fl), fired || fl.outOfFuel())
			_ = i.Close(context.Background())
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return i, nil
}

// wtLive finds an instance by the context of its store, for host
// functions (wgHostCall).
var wtLive sync.Map // uintptr -> *wtInstance

func wtInstanceOf(cx uintptr) *wtInstance {
	if v, ok := wtLive.Load(cx); ok {
		return v.(*wtInstance)
	}
	return nil
}

// wtInstance is an instance in a store of its own.
type wtInstance struct {
	c        *wtCompiled // immutable
	store    *wasmtime.Store
	w        wtInst // the C side: context, instance, functions, memory
	stop     wtStop
	has      [numHooks]bool
	grows    bool // the instance records memory.grow results
	call     *abi.Call
	mem      wtMemory
	wasi     wasiEnv
	cc       callCtx
	fuel     *wtFuel // nil: wall-clock deadlines
	capBytes uint64
	stack    [16]uint64 // a host function's parameters and results

	// Of the running call: a host function's failure ("" none), and the
	// host function.
	hostErr  string
	hostFunc *wtHost
	dead     bool // a call failed: the instance is unusable
	closed   bool
}

// interrupt stops the running guest: it traps at its next function entry
// or loop header (or when it returns to wasm from a host function). Any
// goroutine may call it; callCtx's timer does at the call's deadline.
func (i *wtInstance) interrupt() {
	wtSetStop(i.stop)
	i.c.e.engine.IncrementEpoch()
}

// CallHook implements ModuleInstance.
func (i *wtInstance) CallHook(h Hook, arg uint32, timeout time.Duration) (int32, error) {
	v, err := i.CallHookRaw(h, arg, 0, timeout)
	return int32(uint32(v)), err
}

// CallHookRaw implements ModuleInstance.
func (i *wtInstance) CallHookRaw(h Hook, a0, a1 uint32, timeout time.Duration) (uint64, error) {
	switch {
	case i.dead || i.closed:
		return 0, errors.New("instance unusable after a failure")
	case !i.has[h]:
		return 0, fmt.Errorf("hook %s is not exported", h.Export(i.c.info.ABI))
	}
	i.hostErr, i.hostFunc = "", nil
	i.call.Ctx = &i.cc
	i.cc.arm(timeout)
	rc, fl := wtCall(i.w, int(h), a0, a1, i.fuelFor(timeout))
	if fired := i.cc.disarm(); fl != nil || fired {
		// A guest that returned after its deadline overran it all the same.
		i.dead = true
		return 0, wtDeadline(i.failure(fl), fired || fl.outOfFuel())
	}
	return rc, nil
}

// fuelFor is the fuel of a call with deadline timeout; 0 when the engine
// does not consume fuel.
func (i *wtInstance) fuelFor(timeout time.Duration) uint64 {
	if i.fuel == nil {
		return 0
	}
	return i.fuel.fuelFor(timeout)
}

// errLateWt is the error of a call that returned after its deadline fired.
var errLateWt = errors.New("returned after its deadline")

// wtDeadline marks err as a deadline error when the deadline fired.
func wtDeadline(err error, fired bool) error {
	if fired {
		return fmt.Errorf("%w: %w", ErrDeadline, err)
	}
	return err
}

// failure describes a failed call as wazero does: the message, then the
// wasm stack trace, innermost first, with each function's signature.
func (i *wtInstance) failure(fl *wtFailure) error {
	if fl == nil {
		return errLateWt
	}
	var b strings.Builder
	switch {
	case i.hostErr != "":
		b.WriteString(i.hostErr)
		if strings.HasPrefix(i.hostErr, "module closed with exit_code(") {
			return errString(b.String()) // proc_exit: no trace, as on wazero
		}
	case fl.code >= 0:
		b.WriteString("wasm error: ")
		b.WriteString(wtTrapName(fl.code))
	default:
		b.WriteString(wtCause(fl.msg))
	}
	if len(fl.frames) > 0 || i.hostFunc != nil {
		b.WriteString("\nwasm stack trace:")
		if h := i.hostFunc; h != nil {
			b.WriteString("\n\t")
			writeFrame(&b, h.module, h.name, Signature{Params: h.params, Results: h.results})
		}
		sigs := i.c.mod.signatures()
		for _, f := range fl.frames {
			name := f.name
			if name == "" {
				name = fmt.Sprintf("$%d", f.index)
			}
			var sig Signature
			if int(f.index) < len(sigs) {
				sig = sigs[f.index]
			}
			b.WriteString("\n\t")
			writeFrame(&b, "", name, sig)
		}
	}
	return errString(b.String())
}

// writeFrame writes a frame of a stack trace as wazero does:
// "module.name(i32,i32) i32".
func writeFrame(b *strings.Builder, module, name string, sig Signature) {
	b.WriteString(module)
	b.WriteByte('.')
	b.WriteString(name)
	writeTypes(b, sig.Params, true)
	switch len(sig.Results) {
	case 0:
	case 1:
		b.WriteByte(' ')
		b.WriteString(sig.Results[0].String())
	default:
		b.WriteByte(' ')
		writeTypes(b, sig.Results, true)
	}
}

// wtCause is the cause in wasmtime's message of an error, without the
// backtraces it appends ("error while executing at wasm backtrace: ...
// Caused by: MSG", "Stack backtrace: ..." when RUST_BACKTRACE is set).
func wtCause(msg string) string {
	if i := strings.Index(msg, "\n\nStack backtrace:"); i >= 0 {
		msg = msg[:i]
	}
	if i := strings.LastIndex(msg, "Caused by:\n"); i >= 0 {
		msg = msg[i+len("Caused by:\n"):]
	}
	lines := strings.Split(strings.TrimSpace(msg), "\n")
	for k, l := range lines {
		lines[k] = strings.TrimSpace(l)
	}
	return strings.Join(lines, "; ")
}

// MemorySize implements ModuleInstance.
func (i *wtInstance) MemorySize() uint32 {
	if !i.mem.resolved || i.closed {
		return 0
	}
	return uint32(wtMemorySize(i.w))
}

// OutOfMemory implements ModuleInstance: the module's record of its last
// memory.grow (recordGrows) says whether it failed. Without one (a module
// the rewriter left alone), as wazero does for modules it runs without
// instrumentation, it guesses from the size: within min(cap/8, 4 MiB) of
// the cap, the step in which Go's runtime grows its heap, the guest had no
// room left.
func (i *wtInstance) OutOfMemory() bool {
	if i.grows && !i.closed {
		return wtGrow(i.w) == -1
	}
	size := uint64(i.MemorySize())
	return size+min(i.capBytes/8, 4<<20) > i.capBytes
}

// Close implements ModuleInstance.
func (i *wtInstance) Close(context.Context) error {
	if i.closed {
		return nil
	}
	i.closed = true
	// After stop, the timer no longer fires, so interrupt no longer
	// touches the store's flag, which goes with the store.
	i.cc.stop()
	wtLive.Delete(wtCx(i.w))
	i.store.Close()
	wtFreeInst(i.w)
	i.c.e.instances.Add(-1)
	return nil
}

// enterHost and leaveHost bracket a host function: the guest cannot run
// (or grow its memory) meanwhile, so the memory's address is looked up
// once.
func (i *wtInstance) enterHost(caller unsafe.Pointer) {
	if !i.mem.resolved && wtCallerMemory(i.w, caller) {
		// A start function calling the host, before the exports are read.
		i.mem.resolved = true
	}
	i.mem.inHost = true
}

func (i *wtInstance) leaveHost() {
	i.mem.inHost, i.mem.cache = false, nil
}

// hostFailed records the panic of a host function (an out-of-bounds
// buffer, proc_exit, a bug) as the failure of the call and returns the
// trap message.
func (i *wtInstance) hostFailed(h *wtHost, r any) string {
	var msg string
	switch v := r.(type) {
	case abi.OutOfBounds:
		msg = v.Error()
	case wasiExit:
		msg = v.Error()
	case error:
		msg = v.Error()
	default:
		msg = fmt.Sprint(v)
	}
	i.hostErr, i.hostFunc = msg, h
	return msg
}

// wtMemory is an instance's linear memory as abi.Memory.
type wtMemory struct {
	i        *wtInstance
	resolved bool   // the memory is known (the module exports one)
	inHost   bool   // a host function runs: cache is valid once set
	cache    []byte // the memory, while a host function runs
}

func (m *wtMemory) data() []byte {
	if m.cache != nil {
		return m.cache
	}
	if !m.resolved {
		return nil
	}
	d := wtMemoryData(m.i.w)
	if m.inHost {
		m.cache = d
	}
	return d
}

// Read implements abi.Memory, with wazero's bounds.
func (m *wtMemory) Read(offset, length uint32) ([]byte, bool) {
	d := m.data()
	if uint64(offset)+uint64(length) > uint64(len(d)) {
		return nil, false
	}
	return d[offset : offset+length : offset+length], true
}

// Write implements abi.Memory.
func (m *wtMemory) Write(offset uint32, b []byte) bool {
	d, ok := m.Read(offset, uint32(len(b)))
	if !ok || uint64(len(b)) > 1<<32 {
		return false
	}
	copy(d, b)
	return true
}

// Host functions. Each engine's linker defines them with env, their index
// in a process-wide table that wgHostCall reads without a lock.

// wtHost is a host function: wasmgate's (fn) or WASI's (wasi).
type wtHost struct {
	module, name    string
	params, results []sdkabi.ValueType
	fn              func(c *abi.Call, stack []uint64)
	wasi            func(w *wasiEnv, m abi.Memory, stack []uint64)
}

var (
	wtHostsMu sync.Mutex                // serializes wtRegister
	wtHosts   atomic.Pointer[[]*wtHost] // copied on write
)

// wtRegister adds host functions to the table and returns their indices.
func wtRegister(hs []*wtHost) []uintptr {
	wtHostsMu.Lock()
	defer wtHostsMu.Unlock()
	var list []*wtHost
	if p := wtHosts.Load(); p != nil {
		list = *p
	}
	next := append(make([]*wtHost, 0, len(list)+len(hs)), list...)
	idx := make([]uintptr, len(hs))
	for k, h := range hs {
		idx[k] = uintptr(len(next))
		next = append(next, h)
	}
	wtHosts.Store(&next)
	return idx
}

func wtHostFunc(env uintptr) *wtHost {
	if p := wtHosts.Load(); p != nil && env < uintptr(len(*p)) {
		return (*p)[env]
	}
	return nil
}

// wtHostTable is the wasmgate functions of host, and WASI.
func wtHostTable(host []abi.Func) []*wtHost {
	hs := make([]*wtHost, 0, len(host)+len(wasip1Funcs))
	for _, f := range host {
		hs = append(hs, &wtHost{module: f.ImportModule(), name: f.Name, params: f.Params, results: f.Results, fn: f.Fn})
	}
	for _, f := range wasip1Funcs {
		hs = append(hs, &wtHost{module: wasiModule, name: f.name, params: f.params, results: f.results, wasi: f.fn})
	}
	return hs
}

// wtDefaultHosts is abi.Functions(), httpwasm.Functions() and WASI,
// registered once.
var wtDefaultHosts = sync.OnceValue(func() []uintptr {
	return wtRegister(wtHostTable(slices.Concat(abi.Functions(), httpwasm.Functions())))
})

// funcSignatures reads the type of every function of a module, imports
// first, as function indices count them; nil where the module cannot be
// read.
func funcSignatures(wasm []byte) []Signature {
	if len(wasm) < 8 {
		return nil
	}
	var types, sigs []Signature
	r := reader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(wasm)-r.off) {
			return sigs
		}
		s := reader{b: wasm[:r.off+int(size)], off: r.off}
		switch id {
		case 1:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				if s.byte() != 0x60 {
					return sigs
				}
				var sig Signature
				sig.Params = s.valtypes()
				sig.Results = s.valtypes()
				types = append(types, sig)
			}
		case 2:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				s.name()
				s.name()
				switch ExternKind(s.byte()) {
				case ExternFunc:
					sigs = append(sigs, s.sig(types, s.u32()))
				case ExternTable:
					s.byte()
					s.limits()
				case ExternMemory:
					s.limits()
				case ExternGlobal:
					s.byte()
					s.byte()
				case ExternTag:
					s.byte()
					s.u32()
				default:
					return sigs
				}
			}
		case 3:
			for n := s.count(); n > 0 && s.err == nil; n-- {
				sigs = append(sigs, s.sig(types, s.u32()))
			}
		}
		r.off += int(size)
	}
	return sigs
}
