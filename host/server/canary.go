package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/fleet"
	"github.com/wasmgate/wasmgate/host/traffic"
	"github.com/wasmgate/wasmgate/host/wasm"
)

// kindCanary is a plugin canary in the traffic store: canarySpec. It has
// no value in the file; like every traffic change it is audited, rolled
// back by POST /rollback and kept in the state file.
const kindCanary = "plugin_canary"

// canarySpec is a plugin canary as PUT /plugins/NAME/canary writes it: a
// kept version, and the share of users that runs it (a percentage of the
// sticky hash, or a segment).
type canarySpec struct {
	SHA256  string `json:"sha256"`
	Percent *int   `json:"percent,omitempty"`
	Segment string `json:"segment,omitempty"`
}

// canaryModule is a plugin's canary version loaded for a snapshot.
type canaryModule struct {
	spec    canarySpec
	version *pluginVersion
	module  *wasm.Module
	percent int
}

// loadCanary loads the canary the traffic state names for a plugin; nil
// when it has none.
func (b *builder) loadCanary(ctx context.Context, name string, running *pluginVersion, view traffic.View) (*canaryModule, error) {
	raw := view.Value(traffic.Key{Kind: kindCanary, Name: name})
	h := b.history[name]
	if raw == nil {
		if h != nil {
			h.canary = ""
		}
		return nil, nil
	}
	var spec canarySpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, err
	}
	var v *pluginVersion
	if h != nil {
		v = h.find(spec.SHA256)
		h.canary = spec.SHA256
		if v == nil {
			// Uploaded through another gateway of the fleet.
			wasm, err := b.modules.version(spec.SHA256)
			if err != nil {
				return nil, fmt.Errorf("version %.12s: %w", spec.SHA256, err)
			}
			if wasm != nil {
				v = &pluginVersion{sha: spec.SHA256, wasm: wasm, loadedAt: time.Now(), source: "upload"}
				h.remember(v)
			}
		}
	}
	switch {
	case v == nil:
		return nil, fmt.Errorf("version %.12s is not kept (upload it with POST /plugins/%s/versions)", spec.SHA256, name)
	case v.sha == running.sha:
		return nil, fmt.Errorf("version %.12s is the running version", spec.SHA256)
	}
	m, err := b.plugins.runtime.Load(ctx, name, v.wasm)
	if err != nil {
		return nil, fmt.Errorf("version %.12s: %s", v.sha, unwrapPluginName(err))
	}
	c := &canaryModule{spec: spec, version: v, module: m, percent: 100}
	if spec.Percent != nil {
		c.percent = *spec.Percent
	}
	return c, nil
}

// canaryEndpoints are the admin endpoints of plugin canaries.
func (tc *trafficControl) canaryEndpoints() []admin.Endpoint {
	return []admin.Endpoint{
		{Method: "POST", Path: "/plugins/{name}/versions", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (PluginChange, error) {
			return pluginAnswer(tc.UploadVersion(admin.Param(ctx, "name"), append([]byte(nil), ctx.PostBody()...)))
		})},
		{Method: "PUT", Path: "/plugins/{name}/canary", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (TrafficChange, error) {
			return tc.SetCanary(admin.Param(ctx, "name"), ctx.PostBody(), actor(ctx))
		})},
		{Method: "DELETE", Path: "/plugins/{name}/canary", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (TrafficChange, error) {
			return tc.AbortCanary(admin.Param(ctx, "name"), actor(ctx))
		})},
		{Method: "POST", Path: "/plugins/{name}/promote", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (PluginChange, error) {
			return pluginAnswer(tc.PromoteCanary(admin.Param(ctx, "name"), actor(ctx)))
		})},
	}
}

// UploadVersion keeps a module as a version of the plugin without serving
// it: compiled and checked, ready for a canary or a rollback.
func (tc *trafficControl) UploadVersion(name string, module []byte) (PluginChange, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	snap := tc.current.Load()
	h := tc.b.history[name]
	if snap.plugins[name] == nil || h == nil {
		return PluginChange{}, errUnknownPlugin(name)
	}
	if _, err := wasm.Inspect(module); err != nil {
		return PluginChange{}, fmt.Errorf("plugin %q: module rejected: %w", name, err)
	}
	m, err := tc.b.plugins.runtime.Load(context.Background(), name, module)
	if err != nil {
		return PluginChange{}, fmt.Errorf("plugin %q: module rejected: %s", name, unwrapPluginName(err))
	}
	_ = m.Release(context.Background())
	v := &pluginVersion{sha: shaOf(module), wasm: module, loadedAt: time.Now(), source: "upload"}
	if tc.fleet != nil {
		if err := tc.fleet.storeVersion(module); err != nil {
			return PluginChange{}, fleetUnavailable(err)
		}
	}
	h.remember(v)
	return PluginChange{Status: "kept", Plugin: name, SHA256: v.sha, Version: v.sha[:12], ConfigVersion: snap.version}, nil
}

// SetCanary starts (or changes) a plugin canary: {"sha256": kept version
// or a unique prefix, "percent": 0..100} or {"sha256", "segment": NAME}.
// The version is bound on every route of the plugin before any request
// runs it.
func (tc *trafficControl) SetCanary(name string, body []byte, by string) (TrafficChange, error) {
	var spec canarySpec
	if err := decodeStrict(body, &spec); err != nil {
		return TrafficChange{}, invalid("body: want {\"sha256\": VERSION, \"percent\": 0..100} or {\"sha256\": VERSION, \"segment\": NAME}: %v", err)
	}
	tc.mu.Lock()
	snap := tc.current.Load()
	h := tc.b.history[name]
	var found *pluginVersion
	var err error
	if snap.plugins[name] == nil || h == nil {
		err = &admin.Error{Status: http.StatusNotFound, Code: "unknown_plugin", Message: errUnknownPlugin(name).Error()}
	} else {
		for _, v := range h.versions {
			if spec.SHA256 != "" && strings.HasPrefix(v.sha, spec.SHA256) {
				if found != nil {
					err = invalid("sha256 prefix %q is ambiguous", spec.SHA256)
				}
				found = v
			}
		}
		if found == nil && err == nil && len(spec.SHA256) == 64 {
			// A whole digest: a version uploaded through another gateway
			// of the fleet.
			var wasm []byte
			if wasm, err = tc.b.modules.version(spec.SHA256); err == nil && wasm != nil {
				found = &pluginVersion{sha: spec.SHA256, wasm: wasm, loadedAt: time.Now(), source: "upload"}
				h.remember(found)
			} else if err != nil {
				err = fleetUnavailable(err)
			}
		}
		switch {
		case err != nil:
		case found == nil:
			err = invalid("no kept version %q of plugin %q (kept: %s; POST /plugins/%s/versions keeps one)", spec.SHA256, name, h.shas(), name)
		case (spec.Percent == nil) == (spec.Segment == ""):
			err = invalid("give percent or segment, one of them")
		case spec.Percent != nil && (*spec.Percent < 0 || *spec.Percent > 100):
			err = invalid("percent must be 0 to 100, got %d", *spec.Percent)
		case spec.Segment != "" && snap.traffic.Load().segments[spec.Segment] == nil:
			err = invalid("unknown segment %q", spec.Segment)
		}
	}
	tc.mu.Unlock()
	if err != nil {
		return TrafficChange{}, err
	}
	spec.SHA256 = found.sha
	raw, _ := json.Marshal(spec)
	ch, err := tc.apply(func(st *traffic.Store, check traffic.Check) (traffic.Change, error) {
		return st.Set(traffic.Key{Kind: kindCanary, Name: name}, raw, by, check)
	}, nil)
	return changeAnswer(ch), err
}

// AbortCanary ends a plugin's canary: every request runs the running
// version again.
func (tc *trafficControl) AbortCanary(name, by string) (TrafficChange, error) {
	key := traffic.Key{Kind: kindCanary, Name: name}
	if tc.b.traffic.View().Value(key) == nil {
		return TrafficChange{}, &admin.Error{Status: http.StatusNotFound, Code: "no_canary", Message: fmt.Sprintf("plugin %q has no canary", name)}
	}
	ch, err := tc.apply(func(st *traffic.Store, check traffic.Check) (traffic.Change, error) {
		return st.Set(key, nil, by, check)
	}, nil)
	return changeAnswer(ch), err
}

// PromoteCanary makes a plugin's canary version the running one, for
// every request, and ends the canary: one swap.
func (tc *trafficControl) PromoteCanary(name, by string) (PluginChange, error) {
	key := traffic.Key{Kind: kindCanary, Name: name}
	var spec canarySpec
	if err := json.Unmarshal(tc.b.traffic.View().Value(key), &spec); err != nil || spec.SHA256 == "" {
		return PluginChange{}, errNoCanary(name)
	}
	_, err := tc.apply(func(st *traffic.Store, check traffic.Check) (traffic.Change, error) {
		return st.Set(key, nil, by, check)
	}, func(b *builder) (func(), error) {
		h := b.history[name]
		v := h.find(spec.SHA256)
		if v == nil {
			return nil, fmt.Errorf("plugin %q: the canary's version %.12s is no longer kept", name, spec.SHA256)
		}
		prev := h.pinned
		p := *v
		p.source = "promote"
		if tc.fleet != nil {
			// The version first, so that no gateway ends the canary
			// without the version to serve in its place.
			if err := tc.fleet.publishPin(name, &p, h.fileSHA); err != nil {
				return nil, fleetUnavailable(err)
			}
		}
		h.pinned = &p
		return func() { h.pinned = prev }, nil
	})
	if err != nil {
		return PluginChange{}, err
	}
	snap := tc.current.Load()
	return PluginChange{Status: "ok", Plugin: name, SHA256: spec.SHA256, Version: spec.SHA256[:12], ConfigVersion: snap.version}, nil
}

type errNoCanary string

func (e errNoCanary) Error() string {
	return fmt.Sprintf("plugin %q has no canary to promote", string(e))
}

// applyTraffic makes a run-time traffic change: the store checks the
// candidate state by compiling it for the running snapshot, or, when it
// changes what plugins run (a canary, or prepare's adjustment of the
// builder), by building a new snapshot; the result is swapped in once the
// change is recorded. prepare, when given, returns how to undo its
// adjustment if the change is refused. Nothing changes when a step fails.
//
// A fleet's gateway writes the change to the fleet's etcd before it swaps
// it in; a change that lost the race to another gateway's is made again
// on the fleet's newest state, a few times.
func (tc *trafficControl) apply(change func(*traffic.Store, traffic.Check) (traffic.Change, error), prepare func(*builder) (undo func(), err error)) (traffic.Change, error) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for attempt := 1; ; attempt++ {
		ch, err := tc.applyLocked(change, prepare)
		if tc.fleet == nil || !errors.As(err, new(*fleet.ConflictError)) {
			return ch, err
		}
		if attempt == 3 {
			return ch, &admin.Error{Status: http.StatusConflict, Code: "traffic_conflict",
				Message: "nothing changed: the fleet's traffic state changed under this change three times, or this gateway cannot take it (GET /fleet says why); try again"}
		}
		if err := tc.fleet.syncTraffic(); err != nil {
			return ch, fleetUnavailable(err)
		}
	}
}

// applyLocked is apply with the build lock held, once.
func (tc *trafficControl) applyLocked(change func(*traffic.Store, traffic.Check) (traffic.Change, error), prepare func(*builder) (undo func(), err error)) (traffic.Change, error) {
	old := tc.current.Load()
	undo := func() {}
	if prepare != nil {
		var err error
		if undo, err = prepare(tc.b); err != nil {
			if errors.As(err, new(*admin.Error)) {
				return traffic.Change{}, err
			}
			return traffic.Change{}, invalid("%v", err)
		}
	}
	var next *snapshot
	var tv *trafficView
	ch, err := change(tc.b.traffic, func(v traffic.View) (err error) {
		if prepare == nil && !canariesDiffer(old, v) {
			tv, err = compileTraffic(old, v)
			return err
		}
		tc.b.candidate = &v
		defer func() { tc.b.candidate = nil }()
		next, err = tc.b.safeBuild(old.cfg, old.table, old)
		return err
	})
	if err != nil {
		undo()
		if next != nil {
			tc.b.discard(next, old)
		}
		var ae *admin.Error
		var de *traffic.DiscardedError
		var pe *traffic.PersistError
		switch {
		case errors.Is(err, traffic.ErrNothingToRollBack):
			return ch, conflict("nothing to roll back: no run-time change is left in the history")
		case errors.As(err, &de):
			return ch, conflict("%v", err)
		case errors.As(err, new(*fleet.ConflictError)):
			return ch, err // apply tries again
		case errors.As(err, &pe) && tc.fleet != nil:
			return ch, fleetUnavailable(err)
		case errors.As(err, &pe):
			// Not the change's fault: the state could not be kept.
			return ch, &admin.Error{Status: http.StatusServiceUnavailable, Code: "state_file_unwritable",
				Message: "nothing changed: " + err.Error()}
		case errors.As(err, &ae):
			return ch, err
		}
		return ch, invalid("%v", err)
	}
	switch {
	case next != nil:
		tc.commit(old, next)
		tc.watchCanaries(next)
	case tv != nil:
		old.traffic.Store(tv)
	default:
		return ch, nil // the state already was so
	}
	if ch.Kind != "" { // not a fleet's state taken whole (fleetSync.applyTraffic)
		tc.log.Info("traffic changed", "kind", ch.Kind, "name", ch.Name, "action", ch.Action, "seq", ch.Seq, "after", string(ch.After))
	}
	return ch, nil
}

// canariesDiffer reports whether the traffic state v runs other plugin
// canaries than snap does.
func canariesDiffer(snap *snapshot, v traffic.View) bool {
	for _, e := range v.Entries {
		if e.Kind == kindCanary && e.Value != nil && snap.plugins[e.Name] == nil {
			return true
		}
	}
	for name, lp := range snap.plugins {
		raw := v.Value(traffic.Key{Kind: kindCanary, Name: name})
		if raw == nil || lp.canary == nil {
			if (raw == nil) != (lp.canary == nil) {
				return true
			}
			continue
		}
		var spec canarySpec
		if json.Unmarshal(raw, &spec) != nil {
			return true
		}
		c := lp.canary.spec
		if spec.SHA256 != c.SHA256 || spec.Segment != c.Segment || (spec.Percent == nil) != (c.Percent == nil) ||
			spec.Percent != nil && *spec.Percent != *c.Percent {
			return true
		}
	}
	return false
}

// watchCanaries starts the watch of every canary snap runs that is not
// watched yet: one watcher per plugin and version, however the canary came
// (PUT, a rollback that restored it, the state file at start).
func (tc *trafficControl) watchCanaries(snap *snapshot) {
	for name, lp := range snap.plugins {
		if lp.canary == nil {
			continue
		}
		key := name + "@" + lp.canary.version.sha
		if _, watched := tc.watching.LoadOrStore(key, true); !watched {
			go func() {
				defer tc.watching.Delete(key)
				tc.watchCanary(name, lp.canary.version.sha)
			}()
		}
	}
}

// watchCanary ends a canary by itself when its version fails more than the
// running version by plugin_runtime.canary.abort_margin_percent (once it has
// min_calls hook calls), or when a route quarantines it. It stops when the
// canary is replaced, promoted or aborted.
func (tc *trafficControl) watchCanary(name, sha string) {
	for {
		time.Sleep(50 * time.Millisecond)
		snap := tc.current.Load()
		lp := snap.plugins[name]
		if lp == nil || lp.canary == nil || lp.canary.version.sha != sha {
			return
		}
		cc := snap.cfg.Runtime.Canary
		var cur, can struct{ calls, failures int64 }
		quarantined := ""
		for _, r := range snap.routes {
			for _, l := range r.chain {
				if l.plugin != name || l.canary == nil {
					continue
				}
				cur.calls += l.calls.Load()
				cur.failures += l.failures.Load()
				can.calls += l.canary.calls.Load()
				can.failures += l.canary.failures.Load()
				if quarantined == "" && l.canary.binding.Stats().Quarantined {
					quarantined = r.name
				}
			}
		}
		rate := func(c struct{ calls, failures int64 }) float64 {
			if c.calls == 0 {
				return 0
			}
			return 100 * float64(c.failures) / float64(c.calls)
		}
		why := ""
		switch {
		case quarantined != "":
			why = "quarantined on route " + quarantined
		case can.calls >= int64(cc.MinCalls) && rate(can)-rate(cur) > float64(cc.AbortMarginPercent):
			why = fmt.Sprintf("canary failed %.1f%% of %d calls, the running version %.1f%% of %d", rate(can), can.calls, rate(cur), cur.calls)
		default:
			continue
		}
		tc.log.Error("plugin canary is failing; aborting it automatically", "plugin", name, "sha256", sha, "why", why)
		tc.metrics.AutoRollback(name)
		if _, err := tc.AbortCanary(name, "auto-abort ("+why+")"); err != nil {
			tc.log.Error("automatic canary abort failed", "plugin", name, "err", err.Error())
		}
		return
	}
}
