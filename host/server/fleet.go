package server

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/fleet"
	"github.com/wasmgate/wasmgate/host/router"
	"github.com/wasmgate/wasmgate/host/traffic"
)

// fleetTimeout bounds one exchange with etcd: a read of the fleet's state,
// a write, a module fetched.
const fleetTimeout = 10 * time.Second

// moduleSource reads the plugin modules a build needs: the config's module
// files, or a fleet's store.
type moduleSource interface {
	// module is the module a config names for a plugin.
	module(cfg *config.Config, pc *config.Plugin) ([]byte, error)
	// version is a module by its sha256, for a version this gateway does
	// not keep (nil, nil: none to be had).
	version(sha string) ([]byte, error)
}

// fileModules reads modules from files, relative to the config's directory.
type fileModules struct{}

func (fileModules) module(cfg *config.Config, pc *config.Plugin) ([]byte, error) {
	path := pc.Module
	if !filepath.IsAbs(path) && cfg.File != "" {
		path = filepath.Join(filepath.Dir(cfg.File), path)
	}
	return os.ReadFile(path)
}

func (fileModules) version(string) ([]byte, error) { return nil, nil }

// fleetSync keeps a gateway in step with its fleet: it serves the config
// document in etcd with the modules it names, applies the plugin versions
// pinned and the traffic state any gateway of the fleet wrote, and writes
// what this gateway's admin API changes. It is the ConfigPath of a Server
// started on etcd://HOST:PORT/PREFIX.
//
// What it applies it applies with the Server's reloadMu held, as a reload
// would; a change that this gateway rejects leaves it serving what it had,
// is reported by GET /fleet, and is not tried again until it changes (a
// document, pin or traffic state that could not be read for want of etcd
// is).
type fleetSync struct {
	s    *Server
	cli  *fleet.Client
	self string // this gateway, as its writes name it: host name and process id

	// Under the Server's reloadMu:
	doc            *fleet.Doc        // the document running
	docRev         int64             // its revision
	pending        *fleet.Doc        // the document a build is reading, during a build
	rejected       int64             // the revision of a document this gateway refused
	trafficRev     int64             // the traffic key's revision this gateway last took or wrote
	trafficRefused int64             // the revision of a traffic state this gateway refused
	trafficStale   bool              // a new document was served: take the traffic state again on it
	rejectedPins   map[string]string // plugin → the pin this gateway refused (pinKey)
	appliedRev     int64             // the store revision of the newest state read or written
	epoch          string            // the fleet's store those revisions count in (fleet.State.Epoch)
	cache          map[string][]byte // modules by sha256: those the running document and pins name

	// status mirrors the fields above for readers that must not wait for a
	// build (GET /fleet, metrics); set with reloadMu held (noteStatus).
	status    atomic.Pointer[fleetStatus]
	connected atomic.Bool
	lastCheck atomic.Int64 // unix nanoseconds of the last answer from etcd
	seen      atomic.Int64 // the newest revision the watch reported (run)
	mu        sync.Mutex
	lastErr   string // the last problem: etcd unreachable, a document refused
	lastErrAt time.Time
}

type fleetStatus struct {
	doc                          *fleet.Doc
	docRev, rejected, trafficRev int64
}

// noteStatus publishes the fields status mirrors. Called with reloadMu held.
func (f *fleetSync) noteStatus() {
	f.status.Store(&fleetStatus{doc: f.doc, docRev: f.docRev, rejected: f.rejected, trafficRev: f.trafficRev})
}

func newFleetSync(s *Server, source string) (*fleetSync, error) {
	u, err := fleet.ParseURL(source)
	if err != nil {
		return nil, err
	}
	cli, err := fleet.Dial(u)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	return &fleetSync{s: s, cli: cli, cache: map[string][]byte{}, rejectedPins: map[string]string{},
		self: fmt.Sprintf("%s/%d", host, os.Getpid())}, nil
}

// timeout bounds one exchange with etcd: fleetTimeout, or less while etcd
// is known not to answer, so that an admin call fails fast.
func (f *fleetSync) timeout() (context.Context, context.CancelFunc) {
	d := fleetTimeout
	if !f.connected.Load() {
		d = 2 * time.Second
	}
	return context.WithTimeout(context.Background(), d)
}

// read reads the fleet's state, recording whether etcd answered.
func (f *fleetSync) read() (*fleet.State, error) {
	ctx, cancel := f.timeout()
	defer cancel()
	st, err := f.cli.Read(ctx)
	f.answered(err)
	return st, err
}

// answered records what an exchange with etcd says of the connection: only
// etcd not answering makes the gateway disconnected (and, with
// fleet.unready_without_etcd, not ready); an answer it disliked does not.
func (f *fleetSync) answered(err error) {
	if fleet.Unavailable(err) {
		f.connected.Store(false)
		f.problem(err)
		return
	}
	f.connected.Store(true)
	f.lastCheck.Store(time.Now().UnixNano())
}

func (f *fleetSync) problem(err error) {
	f.mu.Lock()
	f.lastErr, f.lastErrAt = err.Error(), time.Now()
	f.mu.Unlock()
}

// errFetch is a module the gateway could not read: worth trying again,
// unlike a document it refused.
type errFetch struct{ err error }

func (e errFetch) Error() string { return e.err.Error() }
func (e errFetch) Unwrap() error { return e.err }

// config parses and checks a fleet's config document, and fetches the
// modules it names; it becomes f.pending for the build that follows.
func (f *fleetSync) config(st *fleet.State) (*config.Config, *router.Table, error) {
	switch {
	case st.DocErr != nil:
		return nil, nil, fmt.Errorf("fleet %s: %w", f.cli.URL(), st.DocErr)
	case st.Doc == nil:
		return nil, nil, fmt.Errorf("fleet %s: no config has been pushed (wasmgate config push FILE --to %s)", f.cli.URL(), f.cli.URL())
	}
	for path, sha := range st.Doc.Modules {
		if _, err := f.fetch(sha); err != nil {
			return nil, nil, errFetch{fmt.Errorf("%s: module %s: %w", st.Doc.Name, path, err)}
		}
	}
	cfg, err := config.Parse(st.Doc.Name, []byte(st.Doc.YAML))
	if err != nil {
		return nil, nil, err
	}
	cfg.File = st.Doc.Name
	table, err := f.s.opts.check(cfg)
	if err != nil {
		return nil, nil, err
	}
	f.pending = st.Doc
	return cfg, table, nil
}

// fetch returns a module by sha256, from the cache or from etcd.
func (f *fleetSync) fetch(sha string) ([]byte, error) {
	if b, ok := f.cache[sha]; ok {
		return b, nil
	}
	ctx, cancel := f.timeout()
	defer cancel()
	b, err := f.cli.Module(ctx, sha)
	f.answered(err)
	if err != nil {
		return nil, err
	}
	f.cache[sha] = b
	return b, nil
}

// module is moduleSource.module: the bytes pushed with the document being
// built.
func (f *fleetSync) module(cfg *config.Config, pc *config.Plugin) ([]byte, error) {
	doc := f.pending
	if doc == nil {
		doc = f.doc
	}
	sha, ok := doc.Modules[pc.Module]
	if !ok {
		return nil, fmt.Errorf("module %q was not pushed with the config", pc.Module)
	}
	return f.fetch(sha)
}

// version is moduleSource.version: any version a gateway of the fleet
// stored; nil, nil when there is none, or sha is no digest.
func (f *fleetSync) version(sha string) ([]byte, error) {
	if !isDigest(sha) {
		return nil, nil
	}
	b, err := f.fetch(sha)
	if err != nil && !fleet.Unavailable(err) {
		return nil, nil // not stored whole and intact: no such version
	}
	return b, err
}

func isDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// prune keeps in the cache only the modules the running document, the
// pins and the kept versions name.
func (f *fleetSync) prune() {
	keep := map[string]bool{}
	if f.doc != nil {
		for _, sha := range f.doc.Modules {
			keep[sha] = true
		}
	}
	for _, h := range f.s.b.history {
		for _, v := range h.versions {
			keep[v.sha] = true
		}
	}
	maps.DeleteFunc(f.cache, func(sha string, _ []byte) bool { return !keep[sha] })
}

func pinKey(p fleet.Pin) string { return p.SHA256 + "@" + p.Against }

// preparePins pins, before a build of doc, the plugin versions the fleet
// pinned against doc's modules, so that one build serves both. The build's
// caller restores the history when the build fails (applyConfig).
func (f *fleetSync) preparePins(doc *fleet.Doc, cfg *config.Config, pins map[string]fleet.Pin) {
	for i := range cfg.Plugins {
		pc := &cfg.Plugins[i]
		p, ok := pins[pc.Name]
		if !ok || p.Against != doc.Modules[pc.Module] || f.rejectedPins[pc.Name] == pinKey(p) {
			continue
		}
		wasm, err := f.fetch(p.SHA256)
		if err != nil {
			f.problem(fmt.Errorf("plugin %q: pinned version %.12s cannot be read; the config's module serves: %w", pc.Name, p.SHA256, err))
			continue
		}
		h := f.s.b.history[pc.Name]
		if h == nil {
			h = &pluginHistory{}
			f.s.b.history[pc.Name] = h
		}
		v := h.find(p.SHA256)
		if v == nil {
			v = &pluginVersion{sha: p.SHA256, wasm: wasm, loadedAt: time.Now(), source: p.Source}
		}
		h.pinned, h.fileSHA = v, p.Against
	}
}

// start builds the first snapshot's inputs: the document, its modules and
// its pins, and the shared traffic state.
func (f *fleetSync) start() (*config.Config, *router.Table, *fleet.State, error) {
	st, err := f.read()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fleet %s: cannot read the config: %w", f.cli.URL(), err)
	}
	cfg, table, err := f.config(st)
	if err != nil {
		return nil, nil, nil, err
	}
	f.preparePins(st.Doc, cfg, st.Pins)
	f.trafficRev, f.epoch, f.appliedRev = st.TraffRev, st.Epoch, st.Revision
	return cfg, table, st, nil
}

// started records the document the first snapshot serves.
func (f *fleetSync) started(st *fleet.State) {
	f.doc, f.docRev, f.pending = st.Doc, st.DocRev, nil
	f.prune()
	f.noteStatus()
}

// wrote records a write of this gateway: a read older than it must not be
// applied over it. Called with reloadMu held.
func (f *fleetSync) wrote(rev int64) { f.appliedRev = max(f.appliedRev, rev) }

// shareTraffic is the traffic store's Share: a compare-and-swap on the
// revision this gateway last took. Called with reloadMu held.
func (f *fleetSync) shareTraffic(state []byte) error {
	ctx, cancel := f.timeout()
	defer cancel()
	rev, err := f.cli.PutTraffic(ctx, state, f.trafficRev)
	f.answered(err)
	if err != nil {
		return err
	}
	f.trafficRev = rev
	f.wrote(rev)
	f.noteStatus()
	return nil
}

// sync reads the fleet's state and applies what changed: the config
// document (with the pins made against it), then the traffic state with
// the pins made since (in one build), or the pins alone. It returns the
// config's reload result when the document changed.
func (f *fleetSync) sync(source string) (ReloadResult, error) {
	st, err := f.read()
	if err != nil {
		return ReloadResult{}, fmt.Errorf("fleet %s: %w", f.cli.URL(), err)
	}
	return f.apply(source, st)
}

// apply is sync on a state already read.
func (f *fleetSync) apply(source string, st *fleet.State) (ReloadResult, error) {
	f.s.reloadMu.Lock()
	defer f.s.reloadMu.Unlock()
	defer f.noteStatus()
	res := ReloadResult{Status: "unchanged", Version: f.s.snap.Load().version}
	f.sameEpoch(st)
	if st.Revision < f.appliedRev {
		return res, nil // this gateway has read or written a newer state since
	}
	f.appliedRev = st.Revision
	for _, key := range st.BadPins {
		f.problem(fmt.Errorf("fleet: %s holds no pin; ignored", key))
	}
	var cfgErr error
	switch {
	case st.DocRev == f.docRev || st.DocRev == f.rejected && st.DocRev != 0:
	case st.Doc == nil && st.DocErr == nil:
		// Deleted (or etcd lost its data): nothing to serve instead.
		f.problem(fmt.Errorf("fleet %s: no config in etcd; revision %d keeps serving", f.cli.URL(), f.docRev))
	default:
		res, cfgErr = f.applyConfig(source, st)
	}
	pins := f.pinsToApply(st)
	switch {
	case st.Traffic == nil:
		f.trafficRev = st.TraffRev
		f.applyPinsAlone(pins)
	case st.TraffRev != f.trafficRev && st.TraffRev != f.trafficRefused || f.trafficStale:
		f.applyTraffic(st, pins)
	default:
		f.applyPinsAlone(pins)
	}
	return res, cfgErr
}

// sameEpoch forgets the revisions seen when st comes from another store
// than they did (etcd lost its data and a config was pushed again; or it
// is empty): its revisions start again from 1, and what it holds is taken
// as new. Called with reloadMu held.
func (f *fleetSync) sameEpoch(st *fleet.State) {
	if st.Epoch == f.epoch {
		return
	}
	f.s.log.Warn("fleet: etcd holds another store than before (its data lost, a config pushed again?): its state is taken as new",
		"epoch", st.Epoch, "was", f.epoch)
	f.epoch, f.appliedRev, f.rejected, f.trafficRefused = st.Epoch, 0, 0, 0
	f.docRev, f.trafficRev = -1, -1
	clear(f.rejectedPins)
	f.seen.Store(0)
}

// applyConfig serves a new config document. Called with reloadMu held.
func (f *fleetSync) applyConfig(source string, st *fleet.State) (res ReloadResult, err error) {
	// The pins prepared for the build go too when it fails.
	defer f.s.b.keepHistory()(&err)
	cfg, table, err := f.config(st)
	if err == nil {
		f.preparePins(st.Doc, cfg, st.Pins)
	}
	res, err = f.s.reloadLocked(fmt.Sprintf("%s (fleet revision %d)", source, st.DocRev), cfg, table, err)
	f.pending = nil
	if err != nil {
		name, by := "?", "?"
		if st.Doc != nil {
			name, by = st.Doc.Name, st.Doc.PushedBy
		}
		f.problem(fmt.Errorf("config revision %d (%s, pushed by %s) rejected; revision %d keeps serving: %w", st.DocRev, name, by, f.docRev, err))
		// A module that could not be read is read again at the next
		// check; a document refused stays refused until another comes.
		if !errors.As(err, new(errFetch)) {
			f.rejected = st.DocRev
		}
		return res, err
	}
	f.doc, f.docRev, f.rejected = st.Doc, st.DocRev, 0
	// Overrides made against this document's values by gateways that
	// served it first are taken now.
	f.trafficStale = true
	f.prune()
	f.noteStatus()
	return res, nil
}

// pinsToApply returns the versions pinned since the running snapshot was
// built, fetched, by plugin. Called with reloadMu held.
func (f *fleetSync) pinsToApply(st *fleet.State) map[string]*pluginVersion {
	snap := f.s.snap.Load()
	out := map[string]*pluginVersion{}
	for name, p := range st.Pins {
		lp, h := snap.plugins[name], f.s.b.history[name]
		if lp == nil || h == nil || p.Against != h.fileSHA || lp.version.sha == p.SHA256 || f.rejectedPins[name] == pinKey(p) {
			continue
		}
		wasm, err := f.fetch(p.SHA256)
		if err != nil {
			f.problem(fmt.Errorf("plugin %q: pinned version %.12s: %w", name, p.SHA256, err))
			if !fleet.Unavailable(err) {
				f.rejectedPins[name] = pinKey(p)
			}
			continue
		}
		v := h.find(p.SHA256)
		if v == nil {
			v = &pluginVersion{sha: p.SHA256, wasm: wasm, loadedAt: time.Now()}
		}
		pinned := *v
		pinned.source = p.Source
		out[name] = &pinned
	}
	return out
}

// applyPinsAlone swaps in pinned versions, one build each. Called with
// reloadMu held.
func (f *fleetSync) applyPinsAlone(pins map[string]*pluginVersion) {
	for name, v := range pins {
		if _, err := f.s.swapPinned(f.s.snap.Load(), name, v, false); err != nil {
			f.rejectedPins[name] = v.sha + "@" + f.s.b.history[name].fileSHA
			f.problem(fmt.Errorf("plugin %q: pinned version %.12s rejected: %w", name, v.sha, err))
		}
	}
	if len(pins) > 0 {
		f.prune()
	}
}

// applyTraffic takes the shared traffic state, with the pins made since
// in the same build: a canary promoted on another gateway ends its canary
// and pins its version at once. Called with reloadMu held.
func (f *fleetSync) applyTraffic(st *fleet.State, pins map[string]*pluginVersion) {
	var prepare func(*builder) (func(), error)
	if len(pins) > 0 {
		prepare = func(b *builder) (func(), error) {
			prev := map[string]*pluginVersion{}
			for name, v := range pins {
				prev[name] = b.history[name].pinned
				b.history[name].pinned = v
			}
			return func() {
				for name, v := range prev {
					b.history[name].pinned = v
				}
			}, nil
		}
	}
	_, err := f.s.traffic.applyLocked(func(store *traffic.Store, check traffic.Check) (traffic.Change, error) {
		return traffic.Change{}, store.Replace(st.Traffic, check)
	}, prepare)
	f.trafficStale = false
	if err != nil {
		// Not taken: this gateway keeps its state, and refuses changes
		// (a write on an older revision loses) until it can take the
		// fleet's.
		f.trafficRefused = st.TraffRev
		f.problem(fmt.Errorf("traffic state of revision %d rejected by this gateway's config: %w", st.TraffRev, err))
		f.s.log.Error("fleet: traffic state rejected; the running one stays", "revision", st.TraffRev, "err", err.Error())
		f.applyPinsAlone(pins)
		return
	}
	f.trafficRev, f.trafficRefused = st.TraffRev, 0
	f.prune()
	f.s.log.Info("fleet: traffic state taken", "revision", st.TraffRev)
}

// syncTraffic reads the fleet's traffic state after a write lost a race,
// so that the change can be made again on it. Called with reloadMu held.
func (f *fleetSync) syncTraffic() error {
	st, err := f.read()
	if err != nil {
		return err
	}
	f.sameEpoch(st)
	if st.Revision >= f.appliedRev {
		f.appliedRev = st.Revision
		if st.Traffic == nil {
			f.trafficRev = st.TraffRev
		} else {
			f.applyTraffic(st, nil)
		}
		f.noteStatus()
	}
	return nil
}

// publishPin makes v the fleet's version of a plugin: its module stored,
// then the pin. Called with reloadMu held.
func (f *fleetSync) publishPin(name string, v *pluginVersion, against string) error {
	ctx, cancel := f.timeout()
	defer cancel()
	_, err := f.cli.PutModule(ctx, v.wasm)
	var rev int64
	if err == nil {
		rev, err = f.cli.SetPin(ctx, name, fleet.Pin{SHA256: v.sha, Source: v.source, Against: against, By: f.self, At: time.Now().UTC()})
	}
	f.answered(err)
	if err != nil {
		return err
	}
	f.cache[v.sha] = v.wasm
	delete(f.rejectedPins, name)
	f.wrote(rev)
	return nil
}

// storeVersion keeps a module in the fleet's store (by digest: storing it
// again is free), so that every gateway can run it.
func (f *fleetSync) storeVersion(module []byte) error {
	ctx, cancel := f.timeout()
	defer cancel()
	_, err := f.cli.PutModule(ctx, module)
	f.answered(err)
	return err
}

// run keeps the gateway in step until ctx ends: on every change the watch
// reports, and every fleet.check_interval (a check that etcd answers, and
// a full read when this gateway is behind, or the watch may have missed
// changes).
func (f *fleetSync) run(ctx context.Context, from int64) {
	defer func() {
		if r := recover(); r != nil {
			// A bug must not end the process serving traffic: it stops
			// following the fleet, and says so.
			f.connected.Store(false)
			f.problem(fmt.Errorf("internal error; this gateway no longer follows the fleet (please report it): %v", r))
			f.s.log.Error("fleet: sync panicked; the gateway serves what it has", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	watch := f.cli.Watch(ctx, from)
	interval := f.s.snap.Load().cfg.Fleet.CheckInterval.D()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	report := func(source string, err error) {
		if err != nil {
			f.s.log.Warn("fleet: sync failed; the running config stays", "source", source, "err", err.Error())
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case rev, ok := <-watch:
			if !ok {
				return
			}
			if rev == 0 || rev > f.seen.Load() {
				f.seen.Store(max(f.seen.Load(), rev))
				_, err := f.sync("fleet watch")
				report("fleet watch", err)
			}
		case <-tick.C:
			wasConnected := f.connected.Load()
			st, err := f.read()
			if err != nil {
				continue
			}
			if !wasConnected || f.behind(st) {
				_, err := f.apply("fleet check", st) // the state just read: no second read
				report("fleet check", err)
			}
			if next := f.s.snap.Load().cfg.Fleet.CheckInterval.D(); next != interval {
				interval = next
				tick.Reset(interval)
			}
		}
	}
}

// behind reports whether st holds something this gateway has neither
// applied nor refused.
func (f *fleetSync) behind(st *fleet.State) bool {
	f.s.reloadMu.Lock()
	defer f.s.reloadMu.Unlock()
	if st.Epoch != f.epoch || st.DocRev != f.docRev && st.DocRev != f.rejected && (st.Doc != nil || st.DocErr != nil) ||
		st.TraffRev != f.trafficRev && st.TraffRev != f.trafficRefused {
		return true
	}
	snap := f.s.snap.Load()
	for name, p := range st.Pins {
		if lp, h := snap.plugins[name], f.s.b.history[name]; lp != nil && h != nil && p.Against == h.fileSHA &&
			lp.version.sha != p.SHA256 && f.rejectedPins[name] != pinKey(p) {
			return true
		}
	}
	return false
}

// ready is the fleet's part of /readyz: with fleet.unready_without_etcd, a
// gateway that cannot reach etcd reports not ready.
func (f *fleetSync) ready() bool {
	return !f.s.snap.Load().cfg.Fleet.UnreadyWithoutEtcd || f.connected.Load()
}

// FleetView is GET /fleet.
type FleetView struct {
	Source           string    `json:"source"`
	Connected        bool      `json:"connected"`
	LastContact      time.Time `json:"last_contact,omitzero"`
	ConfigRevision   int64     `json:"config_revision"`
	ConfigName       string    `json:"config_name"`
	PushedBy         string    `json:"pushed_by,omitempty"`
	PushedAt         time.Time `json:"pushed_at,omitzero"`
	RejectedRevision int64     `json:"rejected_revision,omitempty"`
	TrafficRevision  int64     `json:"traffic_revision"`
	LastError        string    `json:"last_error,omitempty"`
	LastErrorAt      time.Time `json:"last_error_at,omitzero"`
}

func (f *fleetSync) view() FleetView {
	st := f.status.Load()
	v := FleetView{Source: f.cli.URL().String(), Connected: f.connected.Load(), ConfigRevision: st.docRev,
		ConfigName: st.doc.Name, PushedBy: st.doc.PushedBy, PushedAt: st.doc.PushedAt, RejectedRevision: st.rejected, TrafficRevision: st.trafficRev}
	if ns := f.lastCheck.Load(); ns != 0 {
		v.LastContact = time.Unix(0, ns).UTC()
	}
	f.mu.Lock()
	v.LastError, v.LastErrorAt = f.lastErr, f.lastErrAt
	f.mu.Unlock()
	return v
}

// fleetEndpoints are the admin endpoints of a fleet's gateway.
func (s *Server) fleetEndpoints() []admin.Endpoint {
	return []admin.Endpoint{
		{Method: "GET", Path: "/fleet", Handler: admin.JSON(func(*fasthttp.RequestCtx) (FleetView, error) {
			if s.fleet == nil {
				return FleetView{}, &admin.Error{Status: http.StatusNotFound, Code: "no_fleet",
					Message: "this gateway serves a config file, not a fleet's (serve --config etcd://HOST:PORT/PREFIX)"}
			}
			return s.fleet.view(), nil
		})},
	}
}

// fleetUnavailable is the answer to an admin change a fleet's gateway
// could not share: nothing changed.
func fleetUnavailable(err error) error {
	return &admin.Error{Status: http.StatusServiceUnavailable, Code: "fleet_unavailable",
		Message: "nothing changed: the change could not be written to the fleet's etcd: " + err.Error()}
}

// PushResult is what a config push wrote.
type PushResult struct {
	Revision int64 `json:"revision"` // the config's new revision
	Previous int64 `json:"previous"` // the revision it replaced, 0 for the first
	Modules  int   `json:"modules"`  // plugin modules pushed with it
	Routes   int   `json:"routes"`
}

// AnyRevision is Push's expect for "whatever revision is there now".
const AnyRevision = -1

// Push validates the config file at path as Validate does, stores the
// plugin modules it names in the fleet's etcd at to, and makes it the
// fleet's config if the fleet's config is still at revision expect (0:
// none pushed yet; AnyRevision: the revision read just before the write,
// so that only a concurrent push can lose). A lost race is a
// *fleet.ConflictError. by names the pusher in the document.
//
// Paths of other files the config names (certificates, keys, log files)
// are read by each gateway, relative to its working directory.
func Push(path, to string, expect int64, by, envToken string) (PushResult, error) {
	u, err := fleet.ParseURL(to)
	if err != nil {
		return PushResult{}, err
	}
	cfg, err := Validate(path, envToken)
	if err != nil {
		return PushResult{}, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return PushResult{}, err
	}
	cli, err := fleet.Dial(u)
	if err != nil {
		return PushResult{}, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := &fleet.Doc{Name: filepath.Base(path), YAML: string(raw), Modules: map[string]string{}, Plugins: map[string]string{},
		PushedBy: by, PushedAt: time.Now().UTC()}
	for i := range cfg.Plugins {
		pc := &cfg.Plugins[i]
		doc.Plugins[pc.Name] = pc.Module
		if _, done := doc.Modules[pc.Module]; done {
			continue
		}
		module, err := fileModules{}.module(cfg, pc)
		if err != nil {
			return PushResult{}, fmt.Errorf("plugin %q: %w", pc.Name, err)
		}
		if doc.Modules[pc.Module], err = cli.PutModule(ctx, module); err != nil {
			return PushResult{}, err
		}
	}
	if expect == AnyRevision {
		st, err := cli.Read(ctx)
		if err != nil {
			return PushResult{}, err
		}
		expect = st.DocRev
	}
	rev, err := cli.PushConfig(ctx, doc, expect)
	if err != nil {
		return PushResult{}, err
	}
	return PushResult{Revision: rev, Previous: expect, Modules: len(doc.Modules), Routes: len(cfg.Routes)}, nil
}

// Pull returns the fleet's config file as pushed, its name and revision.
func Pull(from string) (name string, yaml []byte, rev int64, err error) {
	u, err := fleet.ParseURL(from)
	if err != nil {
		return "", nil, 0, err
	}
	cli, err := fleet.Dial(u)
	if err != nil {
		return "", nil, 0, err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	st, err := cli.Read(ctx)
	if err != nil {
		return "", nil, 0, err
	}
	if st.Doc == nil {
		return "", nil, 0, fmt.Errorf("fleet %s: no config has been pushed", u)
	}
	return st.Doc.Name, []byte(st.Doc.YAML), st.DocRev, nil
}
