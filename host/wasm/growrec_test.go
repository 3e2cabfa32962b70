package wasm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// TestRecordGrows: the rewrite keeps every module valid (the spec suites'
// modules and the fixtures compile after it as before), adds the global
// only where the code grows memory, and the global holds the result of the
// last memory.grow.
func TestRecordGrows(t *testing.T) {
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2 |
		experimental.CoreFeaturesThreads | experimental.CoreFeaturesTailCall |
		experimental.CoreFeaturesExtendedConst | experimental.CoreFeaturesExceptionHandling)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer rt.Close(ctx)

	var mods [][]byte
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "*.wat"))
	for _, f := range fixtures {
		mods = append(mods, wat(t, f))
	}
	spec := filepath.Join(wazeroDir(t), "internal", "integration_test", "spectest")
	for _, suite := range []string{"v2", "threads", "tail-call", "exception-handling", "extended-const"} {
		fs, _ := filepath.Glob(filepath.Join(spec, suite, "testdata", "*.wasm"))
		for _, f := range fs {
			if b, err := os.ReadFile(f); err == nil {
				mods = append(mods, b)
			}
		}
	}
	var checked, grown int
	for _, m := range mods {
		if _, err := rt.CompileModule(ctx, m); err != nil {
			continue // invalid on purpose (assert_invalid), or unsupported
		}
		out, grows, err := recordGrows(m)
		if err != nil {
			continue // left alone: the module runs unchanged
		}
		checked++
		if !grows {
			if !bytes.Equal(out, m) {
				t.Errorf("a module without memory.grow was changed")
			}
			continue
		}
		grown++
		cm, err := rt.CompileModule(ctx, out)
		if err != nil {
			t.Errorf("the rewritten module does not compile: %v", err)
			continue
		}
		if _, ok := cm.ExportedFunctions()[growExport]; ok {
			t.Errorf("%s is a function", growExport)
		}
	}
	t.Logf("%d modules rewritten, %d with memory.grow", checked, grown)
	if grown < 3 {
		t.Errorf("only %d modules grow memory", grown)
	}

	// The record: 1 page, then refused, in a runtime capped at 4 pages.
	out, grows, err := recordGrows(fixture(t, "grow"))
	if err != nil || !grows {
		t.Fatalf("grow fixture: %v %v", grows, err)
	}
	capped := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(4))
	defer capped.Close(ctx)
	mod, err := capped.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	g := mod.ExportedGlobal(growExport)
	if g == nil || g.Get() != 0 {
		t.Fatalf("global %v before any grow", g)
	}
	if _, err := mod.ExportedFunction("on_request").Call(ctx); err == nil {
		t.Fatal("the grow fixture did not trap")
	}
	if got := uint32(g.Get()); got != 0xffffffff {
		t.Errorf("last grow %#x, want -1", got)
	}

	// A module that exports the name already is left alone.
	path := filepath.Join(t.TempDir(), "taken.wat")
	src := `(module (memory 1) (global (export "` + growExport + `") i32 (i32.const 0))
  (func (export "f") (drop (memory.grow (i32.const 1)))))`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := recordGrows(wat(t, path)); err == nil {
		t.Error("rewrote a module that exports the global's name")
	}
}
