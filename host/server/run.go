package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
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

// watchConfig reloads when the config file's content changes. It watches the
// directory, not the file, because editors and config managers replace files
// by rename; bursts of events are debounced and unchanged content is ignored.
func (s *Server) watchConfig(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	path, err := filepath.Abs(s.opts.ConfigPath)
	if err != nil {
		w.Close()
		return err
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return err
	}
	// Compare with what was loaded, not with the file now: an edit made
	// between the load and this watch must still be picked up.
	lastSum := s.loadedSum
	go func() {
		defer w.Close()
		const debounce = 150 * time.Millisecond
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		if !bytes.Equal(fileSum(path), lastSum) {
			timer.Reset(0)
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if filepath.Clean(ev.Name) == path {
					timer.Reset(debounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("config watch error", "err", err)
			case <-timer.C:
				sum := fileSum(path)
				if sum == nil || bytes.Equal(sum, lastSum) {
					continue
				}
				lastSum = sum
				_, _ = s.Reload("file change")
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
