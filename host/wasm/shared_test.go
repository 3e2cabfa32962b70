package wasm

import (
	"context"
	"testing"
)

// TestSharedRuntimes checks that module versions share one wazero runtime
// per (interruption mode, memory cap), and that the runtimes are closed
// with the last module using them.
func TestSharedRuntimes(t *testing.T) {
	for _, ctxMode := range []bool{false, true} {
		r := newTestRuntime(t, Options{ContextInterruption: ctxMode})
		eng := r.Engine().(*WazeroEngine)
		ctx := context.Background()
		var mods []*Module
		var binds []*Binding
		for _, wasm := range [][]byte{rawWat(t), fixture(t, "counter"), fixture(t, "paths")} {
			m, err := r.Load(ctx, "shared", wasm)
			if err != nil {
				t.Fatal(err)
			}
			mods = append(mods, m)
			b, err := m.Bind(ctx, testEnv(), BindingConfig{MemoryPages: 16})
			if err != nil {
				t.Fatal(err)
			}
			binds = append(binds, b)
			if _, err := serve(t, b, "/ok"); err != nil {
				t.Fatal(err)
			}
		}
		// Three versions, each compiled under the default cap and under 16
		// pages: six compiled modules in the engine's base runtime and at
		// most two runtimes per interruption mode in use (all three share
		// them under ContextInterruption).
		if n := eng.LiveRuntimes(); n != 6 {
			t.Errorf("context=%v: %d compiled modules, want 6", ctxMode, n)
		}
		if n := eng.SharedRuntimes(); n < 3 || n > 5 || ctxMode && n != 3 {
			t.Errorf("context=%v: %d wazero runtimes, want 3 (up to 5 with mixed interruption)", ctxMode, n)
		}
		before := eng.SharedRuntimes()
		for i, b := range binds {
			mustClose(t, b)
			_ = mods[i].Release(ctx)
			if _, err := serve(t, binds[len(binds)-1], "/ok"); i < len(binds)-1 && err != nil {
				t.Fatalf("context=%v: a version failed after another was released: %v", ctxMode, err)
			}
		}
		// The engine keeps its base runtime (uncapped, its own
		// interruption mode) until it is closed.
		if n, s := eng.LiveRuntimes(), eng.SharedRuntimes(); n != 0 || s != 1 || before <= 1 {
			t.Errorf("context=%v: %d compiled modules, %d runtimes (of %d) left after release, want 0 and the base runtime", ctxMode, n, s, before)
		}
		if err := r.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if s := eng.SharedRuntimes(); s != 0 {
			t.Errorf("context=%v: %d runtimes left after the engine closed", ctxMode, s)
		}
	}
}

// TestCloseCompiledClosesInstances checks that closing a compiled module
// closes the instances left in its (shared, still open) runtime, and that
// it can no longer be instantiated.
func TestCloseCompiledClosesInstances(t *testing.T) {
	e, err := NewWazeroEngine(WazeroOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer e.Close(ctx)
	keep, err := e.Compile(ctx, fixture(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close(ctx)
	cm, err := e.Compile(ctx, rawWat(t))
	if err != nil {
		t.Fatal(err)
	}
	var insts []ModuleInstance
	for range 3 {
		i, err := cm.Instantiate(ctx, InstanceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, i)
	}
	// One closed by its owner, two left to the compiled module.
	if err := insts[1].Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cm.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if e.SharedRuntimes() != 2 {
		t.Fatalf("%d runtimes, want the base one and the default cap's, still used by another module", e.SharedRuntimes())
	}
	for _, i := range []ModuleInstance{insts[0], insts[2]} {
		if !i.(*wzInstance).mod.IsClosed() {
			t.Error("instance left open after its compiled module closed")
		}
		if err := i.Close(ctx); err != nil {
			t.Error(err)
		}
	}
	if _, err := cm.Instantiate(ctx, InstanceOptions{}); err == nil {
		t.Error("instantiated a closed compiled module")
	}
	ki, err := keep.Instantiate(ctx, InstanceOptions{})
	if err != nil {
		t.Fatalf("other module in the shared runtime: %v", err)
	}
	_ = ki.Close(ctx)
}

// TestDefaultCapSharesCompiled: a module is compiled once for the
// bindings with the default memory cap (a wazero compiled module holds a
// decoded copy of the module: megabytes for a Go plugin); other caps, no
// cap included, compile their own.
func TestDefaultCapSharesCompiled(t *testing.T) {
	r := newTestRuntime(t, Options{})
	eng := r.Engine().(*WazeroEngine)
	ctx := context.Background()
	m, err := r.Load(ctx, "shared", rawWat(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release(ctx)
	for k, cfg := range []BindingConfig{{}, {MemoryPages: DefaultMemoryPages}, {MemoryPages: 1 << 16}, {MemoryPages: 16}} {
		b, err := m.Bind(ctx, testEnv(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer mustClose(t, b)
		if _, err := serve(t, b, "/ok"); err != nil {
			t.Fatalf("pages %d: %v", cfg.MemoryPages, err)
		}
		if want := []bool{true, true, false, false}[k]; (b.cm == m.cm) != want {
			t.Errorf("pages %d: uses the module's own compiled module: %v, want %v", cfg.MemoryPages, b.cm == m.cm, want)
		}
		if got, want := uint64(b.cm.MemoryPages()), b.capSize>>16; got != want {
			t.Errorf("pages %d: compiled under a cap of %d pages, want %d", cfg.MemoryPages, got, want)
		}
	}
	if n := eng.LiveRuntimes(); n != 3 {
		t.Errorf("%d compiled modules for the default cap, no cap and 16 pages, want 3", n)
	}
}
