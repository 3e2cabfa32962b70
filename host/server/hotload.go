package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/wasm"
)

// keepVersions is how many module versions of a plugin are kept for rollback.
const keepVersions = 5

// pluginVersion is one module version the gateway has served for a plugin.
type pluginVersion struct {
	sha      string
	wasm     []byte
	loadedAt time.Time
	source   string // "config" (the module file), "admin" (PUT), "rollback"
}

// pluginHistory is what the gateway remembers of a plugin across snapshots:
// the versions it served, and the one an operator pinned over the config's
// module file (by a PUT or a rollback).
type pluginHistory struct {
	versions []*pluginVersion // oldest first
	pinned   *pluginVersion
	fileSHA  string // the module file's content when last read
	canary   string // sha256 of the canary version the last build loaded
}

func (h *pluginHistory) find(sha string) *pluginVersion {
	for _, v := range h.versions {
		if v.sha == sha {
			return v
		}
	}
	return nil
}

// remember records v as served, keeping the last keepVersions besides
// the pinned version and the canary's, which are never dropped: every
// build needs them.
func (h *pluginHistory) remember(v *pluginVersion) {
	if h.find(v.sha) != nil {
		return
	}
	h.versions = append(h.versions, v)
	for len(h.versions) > keepVersions {
		i := slices.IndexFunc(h.versions, func(o *pluginVersion) bool {
			return o.sha != h.canary && (h.pinned == nil || o.sha != h.pinned.sha)
		})
		if i < 0 {
			return
		}
		h.versions = slices.Delete(h.versions, i, i+1)
	}
}

func shaOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// moduleFor returns the bytes a snapshot serves for a plugin: the pinned
// version, unless the module file changed since it was pinned (a config
// edit then wins), else the file. Called with reloadMu held.
func (b *builder) moduleFor(cfg *config.Config, pc *config.Plugin) (*pluginVersion, error) {
	data, err := b.modules.module(cfg, pc)
	h := b.history[pc.Name]
	if h == nil {
		h = &pluginHistory{}
		b.history[pc.Name] = h
	}
	if err != nil {
		if h.pinned != nil {
			return h.pinned, nil
		}
		return nil, fmt.Errorf("cannot read module: %w", err)
	}
	sha := shaOf(data)
	if h.fileSHA != "" && h.fileSHA != sha {
		h.pinned = nil // the operator changed the file: it wins over a pin
	}
	h.fileSHA = sha
	if h.pinned != nil {
		return h.pinned, nil
	}
	if v := h.find(sha); v != nil {
		return v, nil
	}
	return &pluginVersion{sha: sha, wasm: data, loadedAt: time.Now(), source: "config"}, nil
}

// HotLoad makes wasm the plugin's module: compiled, validated and bound on
// every route that uses the plugin (configs accepted by on_init, pools
// pre-warmed) before it takes any traffic, then swapped in atomically. On
// any error the running version keeps serving.
func (s *Server) HotLoad(name string, module []byte, source string) (PluginChange, error) {
	if s.fleet != nil {
		// Stored by digest before the lock: other changes need not wait
		// for the upload.
		if err := s.fleet.storeVersion(module); err != nil {
			return PluginChange{}, fleetUnavailable(err)
		}
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.snap.Load()
	if old.plugins[name] == nil {
		return PluginChange{}, errUnknownPlugin(name)
	}
	if _, err := wasm.Inspect(module); err != nil {
		return PluginChange{}, fmt.Errorf("plugin %q: module rejected: %w", name, err)
	}
	v := &pluginVersion{sha: shaOf(module), wasm: module, loadedAt: time.Now(), source: source}
	return s.swapPinned(old, name, v, true)
}

// Rollback pins a version the plugin served before: the given sha256 (or a
// unique prefix of it), or the one before the running version.
func (s *Server) Rollback(name, sha string) (PluginChange, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.snap.Load()
	lp := old.plugins[name]
	h := s.b.history[name]
	if lp == nil || h == nil {
		return PluginChange{}, errUnknownPlugin(name)
	}
	var target *pluginVersion
	if sha == "" {
		for i, v := range h.versions {
			if v.sha == lp.version.sha && i > 0 {
				target = h.versions[i-1]
			}
		}
		if target == nil {
			return PluginChange{}, fmt.Errorf("plugin %q: no earlier version to roll back to", name)
		}
	} else {
		for _, v := range h.versions {
			if strings.HasPrefix(v.sha, sha) {
				if target != nil {
					return PluginChange{}, fmt.Errorf("plugin %q: sha256 prefix %q is ambiguous", name, sha)
				}
				target = v
			}
		}
		if target == nil {
			return PluginChange{}, fmt.Errorf("plugin %q: no kept version %q (kept: %s)", name, sha, h.shas())
		}
	}
	if target.sha == lp.version.sha {
		// Already running: a rollback is idempotent, and swaps nothing in.
		return PluginChange{Status: "unchanged", Plugin: name, SHA256: target.sha, Version: target.sha[:12], ConfigVersion: old.version}, nil
	}
	rolled := *target
	rolled.source = "rollback"
	return s.swapPinned(old, name, &rolled, true)
}

func (h *pluginHistory) shas() string {
	var out []string
	for _, v := range h.versions {
		out = append(out, v.sha[:12])
	}
	return strings.Join(out, ", ")
}

// swapPinned builds a snapshot with v pinned for the plugin and swaps it in;
// on failure the previous pin is restored. With share, a fleet's gateway
// makes v the fleet's version (fleetSync.publishPin) before the swap, and
// a version the fleet's etcd did not take is not swapped in. Called with
// reloadMu held.
func (s *Server) swapPinned(old *snapshot, name string, v *pluginVersion, share bool) (PluginChange, error) {
	h := s.b.history[name]
	prevPin := h.pinned
	h.pinned = v
	next, err := s.b.safeBuild(old.cfg, old.table, old)
	if err != nil {
		h.pinned = prevPin
		s.log.Error("plugin version rejected; the running version stays", "plugin", name, "sha256", v.sha, "err", err.Error())
		return PluginChange{}, err
	}
	if share && s.fleet != nil {
		if err := s.fleet.publishPin(name, v, h.fileSHA); err != nil {
			h.pinned = prevPin
			s.b.discard(next, old)
			return PluginChange{}, fleetUnavailable(err)
		}
	}
	s.commit(old, next)
	s.log.Info("plugin version swapped in", "plugin", name, "sha256", v.sha, "source", v.source, "config_version", next.version)
	if prev := old.plugins[name].version; v.source == "admin" || v.source == "watch" {
		go s.watchNewVersion(name, v.sha, prev)
	}
	return PluginChange{Status: "ok", Plugin: name, SHA256: v.sha, Version: v.sha[:12], ConfigVersion: next.version}, nil
}

// keepHistory saves what a build may change in the plugins' history (the
// pins, the module files' digests, plugins first seen) and returns what
// restores it when *errp says the build failed. Called with reloadMu held.
func (b *builder) keepHistory() func(errp *error) {
	type saved struct {
		pinned  *pluginVersion
		fileSHA string
	}
	was := make(map[string]saved, len(b.history))
	for name, h := range b.history {
		was[name] = saved{h.pinned, h.fileSHA}
	}
	return func(errp *error) {
		if *errp == nil {
			return
		}
		for name, h := range b.history {
			if w, ok := was[name]; ok {
				h.pinned, h.fileSHA = w.pinned, w.fileSHA
			} else {
				delete(b.history, name)
			}
		}
	}
}

type errUnknownPlugin string

func (e errUnknownPlugin) Error() string {
	return fmt.Sprintf("no plugin %q in the running config (define it under plugins: first)", string(e))
}

// watchNewVersion rolls a freshly swapped-in version back to prev when,
// within the window after the swap, its hooks fail more than
// plugin_runtime.auto_rollback allows, or any route quarantines it: a
// version that only a low-traffic route runs is quarantined after a few
// failures and then sees too few calls to reach min_calls, yet its route
// answers 503 until someone acts. It stops early when the version is
// replaced.
func (s *Server) watchNewVersion(name, sha string, prev *pluginVersion) {
	ar := s.snap.Load().cfg.Runtime.AutoRollback
	if ar.Window <= 0 || prev.sha == sha {
		return
	}
	for end := time.Now().Add(ar.Window.D()); time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
		snap := s.snap.Load()
		if lp := snap.plugins[name]; lp == nil || lp.version.sha != sha {
			return
		}
		var calls, failures int64
		quarantined := ""
		for _, r := range snap.routes {
			for _, l := range r.chain {
				if l.plugin == name {
					calls += l.calls.Load()
					failures += l.failures.Load()
					if quarantined == "" && l.binding.Stats().Quarantined {
						quarantined = r.name
					}
				}
			}
		}
		why := ""
		switch {
		case quarantined != "":
			why = "quarantined on route " + quarantined
		case calls >= int64(ar.MinCalls) && failures*100 > calls*int64(ar.MaxFailurePercent):
			why = fmt.Sprintf("%d of %d hook calls failed", failures, calls)
		default:
			continue
		}
		s.log.Error("hot-loaded plugin version is failing; rolling back automatically",
			"plugin", name, "sha256", sha, "why", why, "calls", calls, "failures", failures, "to", prev.sha)
		s.metrics.AutoRollback(name)
		s.reloadMu.Lock()
		if cur := s.snap.Load(); cur.plugins[name] != nil && cur.plugins[name].version.sha == sha {
			back := *prev
			back.source = "auto-rollback"
			if _, err := s.swapPinned(cur, name, &back, true); err != nil {
				s.log.Error("automatic rollback failed", "plugin", name, "err", err.Error())
			}
		}
		s.reloadMu.Unlock()
		return
	}
}

type errPluginInUse string

func (e errPluginInUse) Error() string { return string(e) }

// DeletePlugin drops a plugin that no route uses from the running gateway:
// its module and kept versions go. It stays in the config file, so a config
// reload brings it back; a plugin some route uses is refused (409).
func (s *Server) DeletePlugin(name string) (PluginChange, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.snap.Load()
	if old.plugins[name] == nil {
		return PluginChange{}, errUnknownPlugin(name)
	}
	if s.fleet != nil {
		return PluginChange{}, errPluginInUse(fmt.Sprintf("plugin %q: a fleet's plugins are those of its pushed config: remove it there and push it (wasmgate config push)", name))
	}
	var users []string
	for _, r := range old.routes {
		for _, l := range r.chain {
			if l.plugin == name {
				users = append(users, r.name)
				break
			}
		}
	}
	if len(users) > 0 {
		return PluginChange{}, errPluginInUse(fmt.Sprintf("plugin %q is used by routes %s: remove it from their chains first", name, strings.Join(users, ", ")))
	}
	// A copy of the config without the plugin: the snapshot owns its config.
	cfg := *old.cfg
	cfg.Plugins = nil
	for _, p := range old.cfg.Plugins {
		if p.Name != name {
			cfg.Plugins = append(cfg.Plugins, p)
		}
	}
	next, err := s.b.safeBuild(&cfg, old.table, old)
	if err != nil {
		return PluginChange{}, err
	}
	delete(s.b.history, name)
	s.commit(old, next)
	s.log.Info("plugin deleted", "plugin", name)
	return PluginChange{Status: "ok", Plugin: name, Deleted: true, ConfigVersion: next.version}, nil
}
