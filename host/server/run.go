package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Run starts the server and blocks: SIGHUP reloads the config, SIGTERM or
// SIGINT (or ctx) drains in-flight requests up to listen.shutdown_timeout and
// returns nil on a clean drain.
//
// A second SIGTERM or SIGINT during the drain stops waiting.
func (s *Server) Run(ctx context.Context) error {
	// Signals first: a SIGHUP that arrives while starting must not take the
	// default action, which would end the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	if err := s.Start(); err != nil {
		return err
	}
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_, _ = s.Reload("SIGHUP")
				continue
			}
			s.log.Info("shutting down: draining in-flight requests", "signal", sig.String())
			return s.drainUnlessSignalled(sigs)
		case <-ctx.Done():
			s.log.Info("shutting down: draining in-flight requests", "reason", context.Cause(ctx).Error())
			return s.drainUnlessSignalled(sigs)
		case err := <-s.serveErr:
			_ = s.drain()
			return fmt.Errorf("listener stopped: %w", err)
		}
	}
}

// drainUnlessSignalled drains, unless a second SIGTERM or SIGINT asks to stop now.
func (s *Server) drainUnlessSignalled(sigs <-chan os.Signal) error {
	done := make(chan error, 1)
	go func() { done <- s.drain() }()
	for {
		select {
		case err := <-done:
			return err
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				s.log.Warn("second signal: exiting without waiting for in-flight requests", "signal", sig.String())
				return fmt.Errorf("shutdown interrupted by %s", sig)
			}
		}
	}
}

func (s *Server) drain() error {
	timeout := s.snap.Load().cfg.Listen.ShutdownTimeout.D()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := s.Shutdown(ctx)
	if err != nil {
		s.log.Warn("shutdown deadline passed with requests still in flight", "timeout", timeout.String(), "err", err)
		return err
	}
	s.log.Info("shutdown complete", "drained_in", time.Since(start).String())
	return nil
}

// watchConfig reloads when the config file's content changes.
func (s *Server) watchConfig(ctx context.Context) error {
	path, err := filepath.Abs(s.opts.ConfigPath)
	if err != nil {
		return err
	}
	// Compare with what was loaded, not with the file now: an edit made
	// between the load and this watch must still be picked up.
	lastSum := s.loadedSum
	changed := func(p string) {
		if p != path {
			return
		}
		sum := fileSum(path)
		if sum == nil || bytes.Equal(sum, lastSum) {
			return
		}
		lastSum = sum
		_, _ = s.Reload("file change")
	}
	changed(path) // before the watch starts: changed is not safe for concurrent use
	return s.watchDir(ctx, filepath.Dir(path), "config", changed)
}

// watchPlugins hot-loads DIR/NAME.wasm as plugin NAME whenever the file is
// created or changes (the third way in, beside PUT /plugins/NAME and a
// config reload). A file whose content is already running is ignored.
func (s *Server) watchPlugins(ctx context.Context, dir string) error {
	return s.watchDir(ctx, dir, "plugin directory", func(path string) {
		name, ok := strings.CutSuffix(filepath.Base(path), ".wasm")
		if !ok {
			return
		}
		data, err := os.ReadFile(path)
		if err != nil || len(data) == 0 {
			return // removed, or still being written: a later event follows
		}
		if lp := s.snap.Load().plugins[name]; lp == nil {
			s.log.Warn("plugin directory: no plugin of that name in the config; ignored", "file", path)
			return
		} else if lp.version.sha == shaOf(data) {
			return
		}
		if _, err := s.HotLoad(name, data, "watch"); err != nil {
			s.log.Error("plugin directory: version rejected", "file", path, "err", err.Error())
		}
	})
}

// watchDir calls changed(path) once a burst of events on a file of dir has
// settled. It watches the directory, not files, because editors and
// deployment tools replace files by rename.
func (s *Server) watchDir(ctx context.Context, dir, what string, changed func(path string)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err == nil {
		err = w.Add(abs)
	}
	if err != nil {
		w.Close()
		return fmt.Errorf("watch %s %s: %w", what, dir, err)
	}
	go func() {
		defer w.Close()
		const debounce = 150 * time.Millisecond
		pending := map[string]time.Time{}
		tick := time.NewTicker(debounce / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				pending[filepath.Clean(ev.Name)] = time.Now().Add(debounce)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("watch error", "what", what, "err", err)
			case now := <-tick.C:
				for p, due := range pending {
					if now.After(due) {
						delete(pending, p)
						changed(p)
					}
				}
			}
		}
	}()
	return nil
}

func fileSum(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(data)
	return sum[:]
}
