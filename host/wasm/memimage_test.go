//go:build linux

package wasm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
)

// watString is s as a WAT string literal.
func watString(s []byte) string {
	var b strings.Builder
	for _, c := range s {
		fmt.Fprintf(&b, "\\%02x", c)
	}
	return b.String()
}

// dataModule compiles a module of the imports and memory in prelude and
// the given data segments (WAT text after "data").
func dataModule(t *testing.T, prelude string, segments ...string) []byte {
	t.Helper()
	var src strings.Builder
	src.WriteString("(module\n  " + prelude + "\n")
	for _, s := range segments {
		src.WriteString("  (data " + s + ")\n")
	}
	src.WriteString("  (func (export \"on_request\") (param i32) (result i32) i32.const 0))\n")
	path := filepath.Join(t.TempDir(), "m.wat")
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return wat(t, path)
}

// pattern is n bytes that differ from page to page and from zero.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/251) ^ byte(i) ^ seed | 1
	}
	return b
}

func TestSplitData(t *testing.T) {
	big := pattern(70_000, 1)
	other := pattern(80_000, 2)
	tests := []struct {
		name     string
		prelude  string
		segments []string
		want     map[uint32][]byte // where the image holds what; nil: not split
		left     uint32            // segments left in the split module
	}{
		{"two active segments", "(memory 4)",
			[]string{`(i32.const 0) "` + watString(big) + `"`, `(i32.const 0x20000) "` + watString(other) + `"`},
			map[uint32][]byte{0: big, 0x20000: other}, 0},
		{"a data count section keeps every index", "(memory 4) (func data.drop 1)",
			[]string{`(i32.const 0) "` + watString(big) + `"`, `"passive bytes"`, `(i32.const 0x20000) "` + watString(other) + `"`},
			map[uint32][]byte{0: big, 0x20000: other}, 3},
		{"a later segment overwrites an earlier one", "(memory 4)",
			[]string{`(i32.const 0) "` + watString(big) + `"`, `(i32.const 100) "` + watString(other[:1000]) + `"`},
			map[uint32][]byte{0: big[:100], 100: other[:1000], 1100: big[1100:]}, 0},
		{"passive segments kept", "(memory 4)",
			[]string{`(i32.const 16) "` + watString(big) + `"`, `"passive bytes"`},
			map[uint32][]byte{16: big}, 1},
		{"ends exactly at the minimum", "(memory 2 10)",
			[]string{`(i32.const ` + fmt.Sprint(2<<16-len(big)) + `) "` + watString(big) + `"`},
			map[uint32][]byte{uint32(2<<16 - len(big)): big}, 0},
		{"past the minimum: left to fail instantiation", "(memory 2 10)",
			[]string{`(i32.const ` + fmt.Sprint(2<<16-len(big)+1) + `) "` + watString(big) + `"`}, nil, 0},
		{"a negative offset is past the memory", "(memory 4)",
			[]string{`(i32.const -1) "` + watString(big) + `"`}, nil, 0},
		{"an offset from a global", `(import "env" "g" (global $g i32)) (memory 4)`,
			[]string{`(global.get $g) "` + watString(big) + `"`}, nil, 0},
		{"too little data for an image", "(memory 4)",
			[]string{`(i32.const 0) "` + watString(big[:1000]) + `"`}, nil, 0},
		{"a data count section and memory.init", "(memory 4) (func (memory.init 0 (i32.const 0) (i32.const 0) (i32.const 1)))",
			[]string{`(i32.const 0) "` + watString(big) + `"`}, nil, 0},
		{"an imported memory", `(import "env" "memory" (memory 4))`,
			[]string{`(i32.const 0) "` + watString(big) + `"`}, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wasm := dataModule(t, tc.prelude, tc.segments...)
			code, segs, size, ok := splitData(wasm)
			if ok != (tc.want != nil) {
				t.Fatalf("split: %v, want %v", ok, tc.want != nil)
			}
			if !ok {
				return
			}
			mem := make([]byte, size)
			for _, s := range segs {
				copy(mem[s.offset:], s.bytes)
			}
			for off, want := range tc.want {
				if got := mem[off : int(off)+len(want)]; !bytes.Equal(got, want) {
					t.Errorf("image at %#x differs", off)
				}
			}
			if len(code) >= len(wasm)-len(big) {
				t.Errorf("split module is %d bytes, from %d: the segments' bytes are still in it", len(code), len(wasm))
			}
			info, err := parse(code)
			if err != nil {
				t.Fatalf("split module: %v", err)
			}
			rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
			defer rt.Close(context.Background())
			if _, err := rt.CompileModule(context.Background(), code); err != nil {
				t.Fatalf("wazero refuses the split module: %v", err)
			}
			if got := dataSegments(t, code); got != tc.left {
				t.Errorf("%d segments left, want %d", got, tc.left)
			}
			if was := mustParse(t, wasm); info.Memory != was.Memory || len(info.Exports) != len(was.Exports) {
				t.Errorf("split module: memory %+v and %d exports, was %+v and %d", info.Memory, len(info.Exports), was.Memory, len(was.Exports))
			}
		})
	}
}

// dataSegments is the number of segments in wasm's data section.
func dataSegments(t *testing.T, wasm []byte) uint32 {
	t.Helper()
	l, err := readLayout(wasm)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l.secs {
		if s.id == 11 {
			r := reader{b: wasm[:s.end], off: s.start}
			return r.count()
		}
	}
	return 0
}

// TestSplitDataRefusesInvalidModules: a module wazero refuses stays one
// it refuses: splitting a second data section or one out of order away
// would make it valid.
func TestSplitDataRefusesInvalidModules(t *testing.T) {
	valid := dataModule(t, "(memory 4)", `(i32.const 0) "`+watString(pattern(70_000, 4))+`"`)
	l, err := readLayout(valid)
	if err != nil {
		t.Fatal(err)
	}
	var data, code section
	for _, s := range l.secs {
		switch s.id {
		case 11:
			data = s
		case 10:
			code = s
		}
	}
	sec := func(s section) []byte { return appendSection(nil, s.id, valid[s.start:s.end]) }
	rebuild := func(order ...section) []byte {
		out := append([]byte(nil), valid[:8]...)
		for _, s := range order {
			out = append(out, sec(s)...)
		}
		return out
	}
	var others []section
	for _, s := range l.secs {
		if s.id != 11 && s.id != 10 {
			others = append(others, s)
		}
	}
	for name, wasm := range map[string][]byte{
		"data before code":  rebuild(append(append(others[:len(others):len(others)], data), code)...),
		"two data sections": rebuild(append(append(others[:len(others):len(others)], code), data, data)...),
	} {
		rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
		if _, err := rt.CompileModule(context.Background(), wasm); err == nil {
			t.Errorf("%s: wazero accepts the module; the test is wrong", name)
		}
		_ = rt.Close(context.Background())
		if _, _, _, ok := splitData(wasm); ok {
			t.Errorf("%s: split", name)
		}
	}
}

func mustParse(t *testing.T, wasm []byte) ModuleInfo {
	t.Helper()
	info, err := parse(wasm)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestMemoryImageInstances: an instance of a module whose data moved into
// an image starts with exactly the memory the segments make, pooled
// (mapped copy-on-write) or fresh (copied); what an instance writes no
// other instance sees, nor a later one; the image is shared by the memory
// caps of a module and closed with the last.
func TestMemoryImageInstances(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("memory images need Linux")
	}
	big := pattern(200_000, 3)
	wasm := dataModule(t, "(memory 8 16)", `(i32.const 1000) "`+watString(big)+`"`, `(i32.const 300000) "`+watString(big[:70000])+`"`)
	want := make([]byte, 8<<16)
	copy(want[1000:], big)
	copy(want[300000:], big[:70000])
	for _, interp := range []bool{false, true} {
		t.Run(fmt.Sprintf("interpreter=%v", interp), func(t *testing.T) {
			e, err := NewWazeroEngine(WazeroOptions{Interpreter: interp})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			defer e.Close(ctx)
			cm, err := e.Compile(ctx, wasm)
			if err != nil {
				t.Fatal(err)
			}
			if cm.(*wzCompiled).img == nil {
				t.Fatal("no image for a module with 270 KB of data")
			}
			// Where the system refuses a mapping: a Go slice, the image
			// copied in.
			g := &goMemory{img: cm.(*wzCompiled).img}
			if got := g.Reallocate(uint64(len(want))); !bytes.Equal(got, want) {
				t.Error("the image copied into a Go slice differs from the segments'")
			}
			capped, err := cm.WithMemoryLimit(ctx, 32)
			if err != nil {
				t.Fatal(err)
			}
			if capped.(*wzCompiled).img != cm.(*wzCompiled).img {
				t.Error("a second memory cap made an image of its own")
			}
			images := memfds(t)
			if images != 1 {
				t.Errorf("%d memory images open, want the one both caps share", images)
			}
			// Either may close first: the other keeps the image.
			for _, c := range []CompiledModule{capped, cm} {
				for _, longLived := range []bool{true, false} {
					a, err := c.Instantiate(ctx, InstanceOptions{LongLived: longLived})
					if err != nil {
						t.Fatal(err)
					}
					if a.(*wzInstance).lin == nil {
						t.Fatal("the instance's memory is not mapped")
					}
					mem := a.(*wzInstance).mem
					got, _ := mem.Read(0, mem.Size())
					if !bytes.Equal(got, want) {
						t.Fatalf("longLived=%v: initial memory differs from the segments'", longLived)
					}
					mem.WriteByte(1000, 0)
					mem.WriteByte(300000, 0)
					if !mem.Write(uint32(len(want)-4), []byte{1, 2, 3, 4}) {
						t.Fatal("write at the end of memory")
					}
					if _, ok := mem.Grow(2); !ok {
						t.Fatal("grow")
					}
					if b, _ := mem.Read(uint32(len(want)), 1<<16); !bytes.Equal(b, make([]byte, 1<<16)) {
						t.Error("grown memory is not zero")
					}
					b, err := c.Instantiate(ctx, InstanceOptions{LongLived: longLived})
					if err != nil {
						t.Fatal(err)
					}
					if got, _ := b.(*wzInstance).mem.Read(0, uint32(len(want))); !bytes.Equal(got, want) {
						t.Errorf("longLived=%v: an instance sees another's writes", longLived)
					}
					_ = a.Close(ctx)
					_ = b.Close(ctx)
				}
				_ = c.Close(ctx)
			}
			if n := memfds(t); n != 0 {
				t.Errorf("%d memory images left open after both caps closed", n)
			}
		})
	}
}

// memfds counts this process's open memory images.
func memfds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.Contains(target, "wasmgate-memory-image") {
			n++
		}
	}
	return n
}

// TestGoPluginsGetAnImage: the Go example plugins, the heaviest, are
// split (a change in Go's linker that defeated splitData would quietly
// bring back a copy of the data per instance).
func TestGoPluginsGetAnImage(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("memory images need Linux")
	}
	wasm, err := os.ReadFile(filepath.Join("..", "..", "plugins", "noop", "noop.wasm"))
	if err != nil {
		t.Skip("plugins/noop not built (make plugins)")
	}
	_, segs, size, ok := splitData(wasm)
	if !ok {
		t.Fatal("plugins/noop's data not split")
	}
	n := 0
	for _, s := range segs {
		n += len(s.bytes)
	}
	t.Logf("%d segments, %d KiB of data in an initial memory of %d KiB", len(segs), n>>10, size>>10)
}

// TestI32ConstExpr: a data offset is read as wazero reads it: an i32 in at
// most 5 bytes, sign-extended, then taken as unsigned; anything else is
// not a constant this splitter moves.
func TestI32ConstExpr(t *testing.T) {
	for _, c := range []struct {
		expr []byte
		want uint32
		ok   bool
	}{
		{[]byte{0x41, 0x00, 0x0b}, 0, true},
		{[]byte{0x41, 0x7f, 0x0b}, 0xffffffff, true},
		{[]byte{0x41, 0x80, 0x80, 0x04, 0x0b}, 0x10000, true},
		{[]byte{0x41, 0xff, 0xff, 0xff, 0xff, 0x07, 0x0b}, 1<<31 - 1, true},
		{[]byte{0x41, 0x80, 0x80, 0x80, 0x80, 0x78, 0x0b}, 1 << 31, true},
		{[]byte{0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b}, 0, false}, // 6 bytes
		{[]byte{0x41, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0b}, 0, false},       // past int32
		{[]byte{0x41, 0x00}, 0, false},                                     // no end
		{[]byte{0x23, 0x00, 0x0b}, 0, false},                               // global.get
	} {
		r := reader{b: c.expr}
		got, ok := r.i32ConstExpr()
		if ok != c.ok || ok && got != c.want {
			t.Errorf("% x: %#x %v, want %#x %v", c.expr, got, ok, c.want, c.ok)
		}
	}
}
