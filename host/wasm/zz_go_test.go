package wasm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/abi"
)

func TestZZGoPlugins(t *testing.T) {
	files, _ := filepath.Glob("../../plugins/*/*.wasm")
	for _, ctxMode := range []bool{false, true} {
		r := newTestRuntime(t, Options{ContextInterruption: ctxMode})
		for _, f := range files {
			b, _ := os.ReadFile(f)
			m, err := r.Load(context.Background(), filepath.Base(f), b)
			if err != nil { fmt.Println("LOAD", f, err); continue }
			fmt.Printf("%-40s ctx=%v %s compile=%v %s\n", f, ctxMode, m.Info().Interruption, m.Info().CompileTime, m.Info().Hooks)
			m.Release(context.Background())
		}
		b, _ := os.ReadFile("../../plugins/fault/fault.wasm")
		m, err := r.Load(context.Background(), "fault", b)
		if err != nil { t.Fatal(err) }
		for _, mode := range []string{"ok", "loop", "alloc", "trap", "panic", "exit", "garbage", "bad_pointer"} {
			env := &abi.Env{Plugin: "fault", Config: []byte(`{"mode":"` + mode + `"}`), Log: quiet, KV: abi.NewKV(0, 0)}
			bd, err := m.Bind(context.Background(), env, BindingConfig{CallTimeout: 300 * time.Millisecond, MemoryPages: 512})
			if err != nil { fmt.Println("BIND", mode, err); continue }
			start := time.Now()
			_, err = serve(t, bd, "/")
			s := fmt.Sprint(err)
			if len(s) > 300 { s = s[:300] }
			fmt.Printf("  mode %-12s %v %s\n", mode, time.Since(start).Round(time.Millisecond), s)
			st := bd.Stats()
			fmt.Printf("    instantiate p50=%v count=%d mem=%d\n", st.Instantiate.P50, st.Instantiate.Count, st.MemoryHighWater)
			bd.Close(context.Background())
		}
		m.Release(context.Background())
	}
}
