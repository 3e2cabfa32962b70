package wasm

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// wazeroDir is the source of the wazero module, for its spec test corpus.
func wazeroDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skip("wazero's source (module cache) not available")
	}
	return dir
}

// TestInstrumentSpec runs the WebAssembly spec test suites shipped with
// wazero (core v2 with SIMD, threads, tail calls, exceptions) on every
// module twice, as is and instrumented, and requires the same results and
// traps: the rewriter changes no behaviour.
func TestInstrumentSpec(t *testing.T) {
	root := filepath.Join(wazeroDir(t), "internal", "integration_test", "spectest")
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfigCompiler().WithCoreFeatures(api.CoreFeaturesV2 |
		experimental.CoreFeaturesThreads | experimental.CoreFeaturesTailCall |
		experimental.CoreFeaturesExtendedConst | experimental.CoreFeaturesExceptionHandling)
	if !compilerSupported() {
		cfg = wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2)
	}
	// One engine for all the runtimes: making one compiles its trampolines.
	cache := wazero.NewCompilationCache()
	defer cache.Close(ctx)
	cfg = cfg.WithCompilationCache(cache)
	// v1 is a subset of v2; typed function references are not a wazero
	// feature yet.
	var files []string
	for _, suite := range []string{"v2", "threads", "tail-call", "exception-handling", "extended-const"} {
		fs, _ := filepath.Glob(filepath.Join(root, suite, "testdata", "*.json"))
		files = append(files, fs...)
	}
	if testing.Short() || raceEnabled {
		// The control-flow suites: where the checks are inserted.
		var sample []string
		for _, f := range files {
			switch strings.TrimSuffix(filepath.Base(f), ".json") {
			case "loop", "block", "br", "br_if", "br_table", "if", "call", "call_indirect",
				"return", "switch", "unwind", "fac", "nop", "start", "return_call", "try_table",
				"memory_fill", "memory_copy", "memory_init", "bulk":
				sample = append(sample, f)
			}
		}
		files = sample
	}
	if len(files) == 0 {
		t.Skip("no spec tests in " + root)
	}
	// Each rewriter: wazero's instrumentation, and wasmtime's bulk
	// memory charge (chargeBulk; a module without bulk operations is
	// left out, unchanged).
	rewriters := []struct {
		name string
		fn   func([]byte) ([]byte, error)
	}{
		{"instrument", func(b []byte) ([]byte, error) { return rewrite(b, false) }},
		{"chargeBulk", func(b []byte) ([]byte, error) {
			out, changed, err := chargeBulk(b)
			if err == nil && !changed {
				err = errors.New("no bulk memory operation")
			}
			return out, err
		}},
	}
	for _, rw := range rewriters {
		t.Run(rw.name, func(t *testing.T) {
			var modules, asserts int
			for _, f := range files {
				var suite struct {
					Commands []struct {
						Type     string
						Filename string
						Action   *struct {
							Type, Field, Module string
							Args                []struct{ Type, Value string }
						}
					}
				}
				b, err := os.ReadFile(f)
				if err != nil || json.Unmarshal(b, &suite) != nil {
					continue
				}
				var mods [2]api.Module
				var rts []wazero.Runtime
				for _, c := range suite.Commands {
					switch c.Type {
					case "module":
						mods = [2]api.Module{}
						orig, err := os.ReadFile(filepath.Join(filepath.Dir(f), c.Filename))
						if err != nil {
							continue
						}
						inst, err := rw.fn(orig)
						if err != nil {
							continue // no functions, or not a binary module
						}
						for i, code := range [][]byte{orig, inst} {
							rt := wazero.NewRuntimeWithConfig(ctx, cfg)
							rts = append(rts, rt)
							if _, err := rt.CompileModule(ctx, code); err != nil {
								if i == 1 {
									if _, err0 := rts[len(rts)-2].CompileModule(ctx, orig); err0 == nil {
										t.Errorf("%s: the instrumented module does not compile: %v", c.Filename, err)
									}
								}
								mods = [2]api.Module{}
								break
							}
							m, err := rt.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithName(""))
							if err != nil {
								mods = [2]api.Module{}
								break
							}
							if f := m.ExportedFunction(startExport); f != nil {
								_, _ = f.Call(ctx)
							}
							mods[i] = m
						}
						if mods[1] != nil {
							modules++
						}
					case "assert_return", "assert_trap", "action":
						a := c.Action
						if mods[1] == nil || a == nil || a.Type != "invoke" || a.Module != "" {
							continue
						}
						args, ok := specArgs(a.Args)
						if !ok {
							continue
						}
						var res [2]string
						for i, m := range mods {
							fn := m.ExportedFunction(a.Field)
							if fn == nil {
								ok = false
								break
							}
							out, err := fn.Call(ctx, args...)
							if err != nil {
								res[i] = "trap: " + strings.SplitN(err.Error(), "\n", 2)[0]
							} else {
								res[i] = specResults(fn.Definition().ResultTypes(), out)
							}
						}
						if !ok {
							continue
						}
						asserts++
						if res[0] != res[1] {
							t.Errorf("%s %s: %s as is, %s rewritten", filepath.Base(f), a.Field, res[0], res[1])
						}
					}
				}
				for _, rt := range rts {
					_ = rt.Close(ctx)
				}
			}
			t.Logf("%d spec files, %d modules, %d invocations compared", len(files), modules, asserts)
		})
	}
}

func specArgs(in []struct{ Type, Value string }) ([]uint64, bool) {
	var out []uint64
	for _, a := range in {
		switch a.Type {
		case "i32", "i64", "f32", "f64":
		default:
			return nil, false
		}
		if strings.HasPrefix(a.Value, "nan") {
			return nil, false
		}
		u, err := strconv.ParseUint(a.Value, 10, 64)
		if err != nil {
			return nil, false
		}
		out = append(out, u)
	}
	return out, true
}

// specResults formats results; references are opaque host pointers that
// differ between two instances, so only their nullness is compared.
func specResults(types []api.ValueType, out []uint64) string {
	var b strings.Builder
	for i, v := range out {
		if i < len(types) && (types[i] == api.ValueTypeExternref || types[i] == 0x70) {
			v = map[bool]uint64{true: 1}[v != 0]
		}
		if i < len(types) && (types[i] == api.ValueTypeF64 || types[i] == api.ValueTypeF32) {
			f := math.Float64frombits(v)
			if types[i] == api.ValueTypeF32 {
				f = float64(math.Float32frombits(uint32(v)))
			}
			if math.IsNaN(f) {
				b.WriteString("nan ")
				continue
			}
		}
		b.WriteString(strconv.FormatUint(v, 10) + " ")
	}
	return b.String()
}

func TestInstrumentShape(t *testing.T) {
	orig := fixture(t, "paths")
	code, err := instrument(orig)
	if err != nil {
		t.Fatal(err)
	}
	oi, err := parse(orig)
	if err != nil {
		t.Fatal(err)
	}
	ni, err := parse(code)
	if err != nil {
		t.Fatal(err)
	}
	// The imports and the original exports are unchanged; three globals
	// are exported after them (stop, grow, work).
	if len(ni.Imports) != len(oi.Imports) || len(ni.Exports) != len(oi.Exports)+3 {
		t.Fatalf("imports %d->%d, exports %d->%d", len(oi.Imports), len(ni.Imports), len(oi.Exports), len(ni.Exports))
	}
	for i, e := range oi.Exports {
		if ne := ni.Exports[i]; ne.Name != e.Name || !ne.Type.Equal(e.Type) {
			t.Errorf("export %d: %+v -> %+v", i, e, ne)
		}
	}
	for i, name := range []string{interruptExport, growExport, workExport} {
		if e := ni.Exports[len(oi.Exports)+i]; e.Name != name || e.Kind != ExternGlobal {
			t.Errorf("added export %+v, want global %s", e, name)
		}
	}
	// Deterministic, so the disk cache hits across restarts.
	again, _ := instrument(orig)
	if string(again) != string(code) {
		t.Error("instrument is not deterministic")
	}
	// Refusals.
	for _, tt := range []struct {
		wasm []byte
		want string
	}{
		{[]byte("nope"), "not a core module"},
		{code, "already exports"},
	} {
		if _, err := instrument(tt.wasm); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("instrument: %v, want %q", err, tt.want)
		}
	}
}

// FuzzInstrument: the rewriters (instrument, and wasmtime's chargeBulk)
// never panic, and a module wazero accepts stays one wazero accepts once
// rewritten.
func FuzzInstrument(f *testing.F) {
	for _, name := range []string{"paths", "counter", "reactor", "startloop", "compute", "sleep", "bulk"} {
		f.Add(fixture(f, name))
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { _ = rt.Close(ctx) })
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := instrument(b)
		charged, _, cerr := chargeBulk(b)
		if err != nil && cerr != nil {
			return
		}
		cm, err0 := rt.CompileModule(ctx, b)
		if err0 != nil {
			return
		}
		_ = cm.Close(ctx)
		for _, m := range []struct {
			code []byte
			err  error
			by   string
		}{{out, err, "instrument"}, {charged, cerr, "chargeBulk"}} {
			if m.err != nil {
				continue
			}
			cm, err := rt.CompileModule(ctx, m.code)
			if err != nil {
				t.Fatalf("module rewritten by %s rejected: %v", m.by, err)
			}
			_ = cm.Close(ctx)
		}
	})
}

// TestBulkMemoryIsCharged: a bulk memory instruction is charged its length
// / bulkBytesPerInstr, so a guest looping over large fills and copies uses
// its work budget (and is stopped by it) as one looping over plain
// instructions does; the operations still do exactly what they did.
func TestBulkMemoryIsCharged(t *testing.T) {
	code, err := instrument(fixture(t, "bulk"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	mod, err := rt.InstantiateWithConfig(ctx, code, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	work := func() uint64 {
		// $work is brought up to date at each yield; a fill of a full
		// budget's worth forces one.
		return mod.ExportedGlobal(workExport).Get()
	}
	const n, rounds = 60000, 1000
	before := work()
	if _, err := mod.ExportedFunction("run").Call(ctx, n, rounds); err != nil {
		t.Fatal(err)
	}
	// Two bulk operations of n bytes per round; the yield that counts the
	// last of them may not have happened yet.
	charged := work() - before
	if want := uint64(2*n/bulkBytesPerInstr*rounds) - yieldEvery - 2*n/bulkBytesPerInstr; charged < want {
		t.Errorf("%d rounds of two %d-byte bulk operations charged %d instructions, want at least %d", rounds, n, charged, want)
	}
	mem := mod.Memory()
	if b, _ := mem.Read(65536+n-1, 1); b[0] != 7 {
		t.Errorf("memory.copy copied %d, want 7", b[0])
	}
	if b, _ := mem.Read(131072, 16); string(b) != "0123456789abcdef" {
		t.Errorf("memory.init wrote %q", b)
	}
	// The length, which $bulk passes through, is the instruction's own:
	// an out-of-bounds copy still traps, a copy of 0 bytes at the end does
	// not.
	if _, err := mod.ExportedFunction("copy").Call(ctx, 0, 4<<16-10, 11); err == nil {
		t.Error("an out-of-bounds memory.copy did not trap")
	}
	if _, err := mod.ExportedFunction("copy").Call(ctx, 4<<16, 0, 0); err != nil {
		t.Errorf("a 0-byte memory.copy at the end of memory: %v", err)
	}
}
