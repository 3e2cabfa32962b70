package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/abi/httpwasm"
)

// Mode is how a binding hands out instances.
type Mode uint8

// Instance modes (sdk/ABI.md, README "instance modes").
const (
	// ModePooled reuses instances across requests (never two at once).
	ModePooled Mode = iota
	// ModeFresh makes a new instance for every request and closes it
	// after: the strongest isolation, at the cost of a cold start each time.
	ModeFresh
)

// String returns the config name of the mode.
func (m Mode) String() string {
	if m == ModeFresh {
		return "fresh"
	}
	return "pooled"
}

// Defaults of BindingConfig's zero fields (those of host/config).
const (
	DefaultMemoryPages       = 512
	DefaultCallTimeout       = 100 * time.Millisecond
	DefaultPoolMax           = 16
	DefaultAcquireTimeout    = 100 * time.Millisecond
	DefaultQuarantineAfter   = 5
	DefaultQuarantineBackoff = time.Second
	DefaultQuarantineMax     = time.Minute
	DefaultIdleTimeout       = 30 * time.Second
	minInitTimeout           = time.Second
)

// BindingConfig are the sandbox limits and pool bounds of one binding.
// Zero fields take the defaults above.
type BindingConfig struct {
	Mode Mode
	// MemoryPages caps each instance's linear memory (64 KiB pages).
	MemoryPages uint32
	// CallTimeout is the deadline of one hook call.
	CallTimeout time.Duration
	// InitTimeout bounds an instance's cold start (start section,
	// _initialize, on_init); default 10×CallTimeout, at least 1s.
	InitTimeout time.Duration
	// PoolMax bounds the instances alive at once, in either mode: more
	// concurrent requests wait up to AcquireTimeout, then fail with
	// ErrPoolExhausted.
	PoolMax int
	// PoolMin instances are made at Bind (pooled mode; at least one).
	PoolMin int
	// MaxRequestsPerInstance recycles an instance after that many
	// requests; 0 never.
	MaxRequestsPerInstance int
	// MemoryHighWaterPages recycles an instance whose memory grew past it;
	// 0 never.
	MemoryHighWaterPages uint32
	// AcquireTimeout is how long Acquire waits for a free instance.
	AcquireTimeout time.Duration
	// IdleTimeout closes an instance left idle that long, down to PoolMin
	// live instances, so a pool grown by a burst shrinks back; negative
	// never does.
	IdleTimeout time.Duration
	// QuarantineAfter consecutive failures of one stage quarantine the
	// binding; a negative value never does. Failures are counted per
	// stage: the cold start (instantiation, _initialize, on_init: what
	// Acquire does for a new instance), on_request and on_response. A
	// success of a stage resets that stage's count only, so a stage that
	// fails on every request is quarantined whatever the other stages do
	// (in pooled mode each hook is a request of its own to the binding).
	QuarantineAfter int
	// QuarantineBackoff is the first quarantine period; it doubles after
	// each failed trial, up to QuarantineMaxBackoff. It also doubles when
	// the binding is quarantined again before it was healthy in every
	// stage since its last quarantine (a trial that passed one stage while
	// another goes on failing); it restarts at QuarantineBackoff once every
	// stage's count is back to zero.
	QuarantineBackoff    time.Duration
	QuarantineMaxBackoff time.Duration
}

func (c *BindingConfig) defaults() {
	if c.MemoryPages == 0 {
		c.MemoryPages = DefaultMemoryPages
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.InitTimeout <= 0 {
		c.InitTimeout = max(10*c.CallTimeout, minInitTimeout)
	}
	if c.PoolMax <= 0 {
		c.PoolMax = DefaultPoolMax
	}
	c.PoolMin = min(max(c.PoolMin, 1), c.PoolMax)
	if c.AcquireTimeout <= 0 {
		c.AcquireTimeout = DefaultAcquireTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.QuarantineAfter == 0 {
		c.QuarantineAfter = DefaultQuarantineAfter
	}
	if c.QuarantineBackoff <= 0 {
		c.QuarantineBackoff = DefaultQuarantineBackoff
	}
	if c.QuarantineMaxBackoff < c.QuarantineBackoff {
		c.QuarantineMaxBackoff = max(DefaultQuarantineMax, c.QuarantineBackoff)
	}
}

// Binding is a module bound to one plugin entry of one route: its config
// (abi.Env), its limits, and its instances. It is safe for concurrent use.
type Binding struct {
	m       *Module
	env     *abi.Env
	cfg     BindingConfig
	cm      CompiledModule
	hooks   Hooks
	abi     ABI // the module's: how its hooks are called
	cfgLen  uint32
	capSize uint64 // memory cap in bytes
	series  *series
	sink    *logSink
	now     func() time.Time

	// slots holds one token per instance checked out or being made: its
	// capacity is the pool bound, and a full channel is backpressure.
	slots chan struct{}

	// Pre-built rejections, so an overloaded, quarantined or closed
	// binding answers without allocating. Callers must not modify them.
	errQuarantined *PluginError
	errExhausted   *PluginError
	errClosed      *PluginError

	// reaper closes instances idle for IdleTimeout (see reap); nil when
	// the binding never shrinks. reaping counts the reaps closing an
	// instance, which Close waits for before it tears the binding down.
	reaper  *time.Timer
	reaping sync.WaitGroup

	mu      sync.Mutex
	idle    []*Instance // LIFO: the warmest instance last, the coldest at 0
	live    int
	inUse   int
	closed  bool
	drained chan struct{}
	// memBytes sums the linear memory of the live instances, each as
	// counted at its creation or last Release (Instance.counted).
	memBytes uint64
	reaped   uint64 // instances closed idle
	// reapArmed: the reaper is scheduled or running, so Release need not
	// schedule it.
	reapArmed bool
	// Quarantine. fails counts consecutive failures per stage, indexed by
	// hook: HookInit counts cold starts (see QuarantineAfter).
	fails       [numHooks]int
	quarantined bool
	until       time.Time
	backoff     time.Duration
	trial       bool
}

// Bind makes a binding of the module with env and cfg: it instantiates
// PoolMin instances (at least one; in fresh mode exactly one, closed right
// after) and runs on_init on each, so that a config the plugin rejects
// fails here, with the guest's set_error message (see ConfigRejected),
// before any request.
func (m *Module) Bind(ctx context.Context, env *abi.Env, cfg BindingConfig) (*Binding, error) {
	if env == nil {
		env = &abi.Env{}
	}
	cfg.defaults()
	if !m.retain() {
		return nil, ErrClosed
	}
	b := &Binding{m: m, env: env, cfg: cfg, hooks: m.info.Hooks, abi: m.info.ABI, now: m.r.now,
		slots: make(chan struct{}, cfg.PoolMax)}
	b.cfgLen = uint32(len(env.Config))
	if b.cfgLen == 0 {
		b.cfgLen = 2 // "{}", what config_get answers for no config
	}
	b.errQuarantined = &PluginError{Plugin: env.Plugin, Kind: KindQuarantined, Msg: "failing repeatedly; backing off", Err: ErrQuarantined}
	b.errExhausted = &PluginError{Plugin: env.Plugin, Kind: KindExhausted, Err: ErrPoolExhausted,
		Msg: "all " + strconv.Itoa(cfg.PoolMax) + " instances busy for " + cfg.AcquireTimeout.String()}
	b.errClosed = &PluginError{Plugin: env.Plugin, Kind: KindInit, Msg: "binding closed", Err: ErrClosed}
	log := env.Log
	if log == nil {
		log = m.r.log.With(slog.String("plugin", env.Plugin), slog.String("route", env.Route))
	}
	b.sink = newLogSink(log, env)

	var err error
	if b.cm, err = m.withCap(ctx, min(cfg.MemoryPages, 1<<16)); err != nil {
		m.release(ctx)
		return nil, fmt.Errorf("plugin %q: %w", env.Plugin, err)
	}
	b.capSize = uint64(min(cfg.MemoryPages, 1<<16)) << 16
	b.series = m.r.metrics.acquire(env.Plugin, m.version)

	n := cfg.PoolMin
	if cfg.Mode == ModeFresh {
		n = 1
	}
	warm := make([]*Instance, 0, n)
	for range n {
		inst, err := b.newInstance()
		if err != nil {
			for _, i := range warm {
				b.closeInstance(i)
			}
			b.teardown(ctx)
			return nil, err
		}
		warm = append(warm, inst)
	}
	if cfg.Mode == ModeFresh {
		// The instances proved the config; fresh requests get their own.
		for _, i := range warm {
			b.closeInstance(i)
		}
		warm = nil
	}
	b.idle = warm
	if cfg.Mode == ModePooled && cfg.IdleTimeout > 0 && cfg.PoolMax > cfg.PoolMin {
		// Made once, stopped: Release arms it with Reset, which does not
		// allocate.
		b.reaper = time.AfterFunc(time.Hour, b.reap)
		b.reaper.Stop()
	}
	return b, nil
}

// teardown releases what Bind took from the module.
func (b *Binding) teardown(ctx context.Context) error {
	err := b.m.releaseCap(ctx, min(b.cfg.MemoryPages, 1<<16))
	b.m.r.metrics.release(b.series)
	b.sink.close()
	return errors.Join(err, b.m.release(ctx))
}

// Module returns the bound module.
func (b *Binding) Module() *Module { return b.m }

// Hooks are the hooks the module exports: a chain skips the others.
func (b *Binding) Hooks() Hooks { return b.hooks }

// Config returns the binding's effective config.
func (b *Binding) Config() BindingConfig { return b.cfg }

// newInstance makes an instance ready for requests: instantiated,
// _initialize and on_init run. Its duration is the cold start metric.
func (b *Binding) newInstance() (*Instance, error) {
	start := time.Now()
	inst := &Instance{b: b}
	// Host functions may run from the start function or _initialize
	// already: they see the init phase and the binding's env.
	inst.call.Phase, inst.call.Env = abi.PhaseInit, b.env
	if b.abi == ABIHTTPWasm {
		// Before instantiation: _start or a start section may call
		// enable_features or get_config.
		inst.call.Ext = httpwasm.NewState()
	}
	inst.stdout = guestLog{sink: b.sink, stream: "stdout", level: slog.LevelInfo}
	inst.stderr = guestLog{sink: b.sink, stream: "stderr", level: slog.LevelWarn}
	mi, err := b.cm.Instantiate(context.Background(), InstanceOptions{
		Call: &inst.call, Stdout: &inst.stdout, Stderr: &inst.stderr, InitTimeout: b.cfg.InitTimeout,
		LongLived: b.cfg.Mode == ModePooled,
	})
	if errors.Is(err, ErrPoolExhausted) {
		b.series.failures[KindExhausted].Inc()
		return nil, &PluginError{Plugin: b.env.Plugin, Kind: KindExhausted, Msg: err.Error(), Err: err}
	}
	if err != nil {
		return nil, b.initError(err.Error(), err)
	}
	inst.mi = mi
	if b.hooks.Has(HookInit) {
		c := &inst.call
		c.Phase, c.Env = abi.PhaseInit, b.env
		rc, err := mi.CallHook(HookInit, b.cfgLen, b.cfg.InitTimeout)
		said := string(c.ErrMsg)
		c.Reset()
		switch {
		case err != nil:
			_ = mi.Close(context.Background())
			msg := "on_init: " + err.Error()
			if errors.Is(err, ErrDeadline) {
				msg = "on_init ran past the cold-start deadline of " + b.cfg.InitTimeout.String() +
					" (10x call_timeout, at least 1s) and was interrupted"
			}
			if said != "" {
				msg += " (plugin said: " + said + ")"
			}
			return nil, b.initError(msg, err)
		case rc != 0:
			_ = mi.Close(context.Background())
			if said == "" {
				said = "on_init returned " + strconv.Itoa(int(rc))
			}
			return nil, b.initError(said, errRejected)
		}
	}
	b.series.instantiate.Observe(time.Since(start).Seconds())
	b.series.instances.Inc()
	inst.mem = mi.MemorySize()
	inst.counted = inst.mem
	b.series.memory(inst.mem)
	b.series.memBytes.Add(float64(inst.mem))
	b.mu.Lock()
	b.live++
	b.memBytes += uint64(inst.mem)
	b.settleLocked(false, 1<<HookInit, false, HookInit) // a cold start that worked
	b.mu.Unlock()
	return inst, nil
}

func (b *Binding) initError(msg string, err error) error {
	b.series.failures[KindInit].Inc()
	pe := &PluginError{Plugin: b.env.Plugin, Kind: KindInit, Msg: msg, Err: err}
	b.sink.emit(slog.LevelError, "plugin instance failed to start", slog.String("error", pe.Error()))
	return pe
}

// closeInstance closes an instance that is no longer in the pool.
func (b *Binding) closeInstance(i *Instance) {
	b.mu.Lock()
	b.dropLocked(i)
	b.mu.Unlock()
	b.finishClose(i)
}

// dropLocked takes an instance about to be closed out of the binding's
// counts. It is done before closing, so the reaper, counting live
// instances against PoolMin, never counts one being closed.
func (b *Binding) dropLocked(i *Instance) {
	b.live--
	b.memBytes -= uint64(i.counted)
}

// finishClose closes an instance dropped from the counts, outside b.mu.
func (b *Binding) finishClose(i *Instance) {
	i.stdout.flush()
	i.stderr.flush()
	_ = i.mi.Close(context.Background())
	b.series.instances.Dec()
	if i.counted != 0 {
		b.series.memBytes.Sub(float64(i.counted))
	}
}

// reap runs on the reaper's timer: it closes the instances idle for
// IdleTimeout or more, coldest first, while more than PoolMin are live,
// then schedules itself for the next idle instance to expire. An instance
// Acquire took is no longer in b.idle, so it is never reaped; one at a time
// leaves b.mu free for Acquire and Release in between.
func (b *Binding) reap() {
	for {
		b.mu.Lock()
		if b.closed {
			b.reapArmed = false
			b.mu.Unlock()
			return
		}
		i, wait := b.expiredLocked(b.now())
		if i == nil {
			// Nothing to wait for (no idle instance above PoolMin): the
			// next Release that leaves one idle schedules the reaper.
			b.reapArmed = wait > 0
			if wait > 0 {
				b.reaper.Reset(wait)
			}
			b.mu.Unlock()
			return
		}
		b.dropLocked(i)
		b.reaped++
		b.reaping.Add(1)
		b.mu.Unlock()
		b.series.reaped.Inc()
		b.finishClose(i)
		b.reaping.Done()
	}
}

// expiredLocked takes the coldest idle instance out of the pool if it has
// been idle for IdleTimeout and more than PoolMin instances are live. Else
// it returns how long until it will have been (0: no candidate).
func (b *Binding) expiredLocked(now time.Time) (*Instance, time.Duration) {
	n := len(b.idle)
	if n == 0 || b.live <= b.cfg.PoolMin {
		return nil, 0
	}
	i := b.idle[0]
	if age := now.Sub(i.idleAt); age < b.cfg.IdleTimeout {
		return nil, b.cfg.IdleTimeout - age
	}
	// Shift down rather than reslice from 1, which would lose capacity
	// that Release's append then reallocates.
	copy(b.idle, b.idle[1:])
	b.idle[n-1] = nil
	b.idle = b.idle[:n-1]
	return i, 0
}

// Acquire checks out an instance for one request: an idle one, or a new
// one while the pool is below PoolMax (always new in fresh mode). When the
// pool is full it waits up to AcquireTimeout (or ctx), then fails with
// ErrPoolExhausted; a quarantined binding fails at once with
// ErrQuarantined. The instance must be given back with Release.
func (b *Binding) Acquire(ctx context.Context) (*Instance, error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, b.errClosed
	}
	trial := false
	if b.quarantined {
		if b.trial || b.now().Before(b.until) {
			b.mu.Unlock()
			b.series.failures[KindQuarantined].Inc()
			return nil, b.errQuarantined
		}
		b.trial, trial = true, true
	}
	b.mu.Unlock()

	select {
	case b.slots <- struct{}{}:
	default:
		if err := b.waitSlot(ctx); err != nil {
			if trial {
				b.mu.Lock()
				b.trial = false
				b.mu.Unlock()
			}
			return nil, err
		}
	}

	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.slots
		return nil, b.errClosed
	}
	b.inUse++
	var inst *Instance
	if n := len(b.idle); n > 0 {
		inst = b.idle[n-1]
		b.idle[n-1] = nil
		b.idle = b.idle[:n-1]
	}
	b.mu.Unlock()

	if inst == nil {
		var err error
		if inst, err = b.newInstance(); err != nil {
			// An engine out of instance slots is backpressure, not the
			// plugin's failure: it counts toward no quarantine.
			b.settle(trial, !errors.Is(err, ErrPoolExhausted))
			return nil, err
		}
	}
	inst.trial = trial
	inst.held = true
	inst.ok, inst.last = 0, HookRequest
	return inst, nil
}

// waitSlot is the slow path of Acquire: the pool is full.
func (b *Binding) waitSlot(ctx context.Context) error {
	t := time.NewTimer(b.cfg.AcquireTimeout)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-t.C:
		b.series.failures[KindExhausted].Inc()
		return b.errExhausted
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back an instance checked out by Acquire. An instance whose
// hook failed (failed, or any error its hooks returned) is closed, never
// reused; so is one past MaxRequestsPerInstance or MemoryHighWaterPages,
// every fresh-mode instance, and any instance of a closed binding. The
// pool replaces it lazily, on a later Acquire. An instance back in the pool
// while more than PoolMin are live schedules the reaper, which closes it
// if it stays idle for IdleTimeout.
//
// Release also settles the checkout for quarantine (see settleLocked):
// each hook that succeeded on the instance since Acquire resets its own
// stage's failure count; a failure counts one against the hook that
// failed (when failed is set with no hook failing, against the hook the
// instance ran last, on_request if none). A checkout that ran no hook
// and did not fail changes no count.
func (b *Binding) Release(inst *Instance, failed bool) {
	if inst == nil || inst.b != b || !inst.held {
		return
	}
	inst.held = false
	if st, ok := inst.call.Ext.(*httpwasm.State); ok && st.Pending() {
		// handle_response never ran (a caller that did not finish the
		// request): no request state outlives the request.
		st.End()
	}
	failed = failed || inst.broken
	ok := inst.ok
	if failed {
		ok &^= 1 << inst.last
	}
	inst.requests++
	recycle := failed || b.cfg.Mode == ModeFresh ||
		b.cfg.MaxRequestsPerInstance > 0 && inst.requests >= b.cfg.MaxRequestsPerInstance ||
		b.cfg.MemoryHighWaterPages > 0 && uint64(inst.mem) > uint64(b.cfg.MemoryHighWaterPages)<<16
	var grew float64 // the memory counted anew, for the gauge
	if !recycle {
		if b.reaper != nil {
			inst.idleAt = b.now()
		}
		grew = float64(inst.mem) - float64(inst.counted)
	}

	b.mu.Lock()
	b.settleLocked(inst.trial, ok, failed, inst.last)
	if b.closed {
		recycle = true
	}
	if !recycle {
		b.memBytes = b.memBytes - uint64(inst.counted) + uint64(inst.mem)
		inst.counted = inst.mem
		b.idle = append(b.idle, inst)
		if !b.reapArmed && b.reaper != nil && b.live > b.cfg.PoolMin {
			b.reapArmed = true
			b.reaper.Reset(b.cfg.IdleTimeout)
		}
	} else {
		b.dropLocked(inst)
	}
	b.mu.Unlock()
	if recycle {
		b.finishClose(inst)
	} else if grew != 0 {
		b.series.memBytes.Add(grew)
	}
	b.mu.Lock()
	b.inUse--
	if b.closed && b.inUse == 0 && b.drained != nil {
		close(b.drained)
		b.drained = nil
	}
	b.mu.Unlock()
	<-b.slots
}

// settle records a failed cold start in Acquire and gives back its slot.
func (b *Binding) settle(trial, failed bool) {
	b.mu.Lock()
	if failed {
		b.settleLocked(trial, 0, true, HookInit)
	} else if trial {
		b.trial = false // the trial did not happen: the next request tries
	}
	b.inUse--
	if b.closed && b.inUse == 0 && b.drained != nil {
		close(b.drained)
		b.drained = nil
	}
	b.mu.Unlock()
	<-b.slots
}

// settleLocked runs the quarantine state machine with the outcome of one
// checkout (or cold start): the stages in ok succeeded, and when failed,
// stage h failed. A stage is a hook, or HookInit for the cold start.
//
//   - A success of a stage resets that stage's consecutive-failure count,
//     and only that one.
//   - A failure adds one to stage h's count; when any stage's count
//     reaches QuarantineAfter, the binding is quarantined for the backoff.
//   - When the backoff ends, Acquire lets one trial checkout through. A
//     trial that does not fail lifts the quarantine; one that fails
//     doubles the backoff (up to the maximum) and starts it again.
//   - Lifting the quarantine does not reset the other stages' counts: one
//     more failure of a stage still at QuarantineAfter quarantines the
//     binding again, with the backoff doubled. The backoff restarts from
//     QuarantineBackoff only after a success leaves every count at zero.
//
// Checkouts that were in flight when the binding was quarantined still
// count, but neither lift nor extend the quarantine.
func (b *Binding) settleLocked(trial bool, ok Hooks, failed bool, h Hook) {
	if ok != 0 {
		for s := range b.fails {
			if ok.Has(Hook(s)) {
				b.fails[s] = 0
			}
		}
	}
	if !failed {
		if trial {
			b.quarantined, b.trial = false, false
		}
		if !b.quarantined && b.backoff != 0 && b.fails == [numHooks]int{} {
			b.backoff = 0 // healthy in every stage: the next quarantine starts afresh
		}
		return
	}
	b.fails[h]++
	switch {
	case trial:
		b.trial = false
		b.backoff = min(2*b.backoff, b.cfg.QuarantineMaxBackoff)
		b.until = b.now().Add(b.backoff)
	case !b.quarantined && b.cfg.QuarantineAfter > 0 && b.fails[h] >= b.cfg.QuarantineAfter:
		b.quarantined = true
		if b.backoff == 0 {
			b.backoff = b.cfg.QuarantineBackoff
		} else {
			b.backoff = min(2*b.backoff, b.cfg.QuarantineMaxBackoff)
		}
		b.until = b.now().Add(b.backoff)
		b.sink.emit(slog.LevelError, "plugin quarantined", slog.String("stage", stageName(h)),
			slog.Int("consecutive_failures", b.fails[h]), slog.Duration("backoff", b.backoff))
	}
}

// ABI is the contract of the binding's module.
func (b *Binding) ABI() ABI { return b.abi }

// stageName names a quarantine stage for logs.
func stageName(h Hook) string {
	if h == HookInit {
		return "cold_start"
	}
	return h.String()
}

// Close stops the binding: Acquire fails from now on, the reaper stops,
// idle instances are closed, and Close waits (bounded by ctx) for instances
// in use to be released before closing the module's runtime for this cap. Instances
// still in use when ctx ends fail their current call.
func (b *Binding) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	if b.reaper != nil {
		b.reaper.Stop() // a reap already running sees closed and stops
	}
	idle := b.idle
	b.idle = nil
	var wait chan struct{}
	if b.inUse > 0 {
		b.drained = make(chan struct{})
		wait = b.drained
	}
	b.mu.Unlock()
	for _, i := range idle {
		b.closeInstance(i)
	}
	var err error
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			err = fmt.Errorf("plugin %q: closing with instances in use: %w", b.env.Plugin, ctx.Err())
		}
	}
	b.reaping.Wait() // an instance the reaper is closing uses the module still
	return errors.Join(err, b.teardown(context.Background()))
}

// BindingStats is a snapshot of a binding, for the admin API.
type BindingStats struct {
	Live, Idle, InUse int
	Quarantined       bool
	QuarantineUntil   time.Time
	// ConsecutiveFailures is the largest consecutive-failure count of the
	// binding's stages (cold start, on_request, on_response): the one that
	// QuarantineAfter is compared with.
	ConsecutiveFailures int
	// Instantiate summarizes the cold starts of the plugin version (all
	// bindings of the same plugin name and module).
	Instantiate Quantiles
	// MemoryHighWater is the largest memory seen in an instance of the
	// plugin version, in bytes.
	MemoryHighWater uint32
	// MemoryBytes sums the linear memory of the binding's live instances,
	// idle and in use, each as of its creation or last release.
	MemoryBytes uint64
	// Reaped counts the instances closed for being idle (IdleTimeout).
	Reaped uint64
}

// Stats returns a snapshot of the binding.
func (b *Binding) Stats() BindingStats {
	b.mu.Lock()
	s := BindingStats{Live: b.live, Idle: len(b.idle), InUse: b.inUse,
		Quarantined: b.quarantined, ConsecutiveFailures: slices.Max(b.fails[:]),
		MemoryBytes: b.memBytes, Reaped: b.reaped}
	if b.quarantined {
		s.QuarantineUntil = b.until
	}
	b.mu.Unlock()
	s.Instantiate = b.series.quantiles()
	s.MemoryHighWater = b.series.maxMem.Load()
	return s
}
