package wasm

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// TestWASITable: the WASI of engines without wazero's (wasip1.go) has
// every function of wazero's wasi_snapshot_preview1, with the signature
// validation admits.
func TestWASITable(t *testing.T) {
	want := wasiFuncs()
	got := map[string]bool{}
	for _, f := range wasip1Funcs {
		got[f.name] = true
		sig, ok := want[f.name]
		switch {
		case !ok:
			t.Errorf("%s is not a function of wazero's WASI", f.name)
		case !sig.Equal(Signature{Params: f.params, Results: f.results}):
			t.Errorf("%s: signature %s, wazero's is %s", f.name, Signature{Params: f.params, Results: f.results}, sig)
		}
	}
	for name := range want {
		if !got[name] {
			t.Errorf("%s is missing", name)
		}
	}
}

// Addresses of the WASI parity probe's memory (one page).
const (
	pIOV      = 0x100   // {0x300, 4}
	pIOVEmpty = 0x110   // {0x300, 0}
	pIOVOOB   = 0x120   // {0xfffffff0, 16}
	pPath     = 0x400   // "etc/passwd"
	pAbs      = 0x410   // "/etc"
	pDotDot   = 0x420   // "../x"
	pSubs     = 0x500   // subscriptions, 48 bytes each (see parityData)
	pOut      = 0x2000  // 128 bytes of output per case
	pErrno    = 0x14000 // the errno of each case
	pRandom   = 0x18000 // outputs that differ from run to run
	pOOB      = 0xfffffff0
	pEnd      = 0x30000 // the end of memory (3 pages): an empty range there is valid
	outSize   = 128
)

// Subscriptions at pSubs, by index.
const (
	subClock  = iota // clock, relative 1ms
	subRead0         // fd_read on stdin
	subRead1         // fd_read on stdout
	subRead3         // fd_read on a descriptor that is not open
	subWrite1        // fd_write on stdout
	subWrite3        // fd_write on a descriptor that is not open
	subAbs           // clock, absolute
	subBad           // an unknown event type
	subRead1b        // then, contiguous: fd_read on stdout, clock
	subClockb
	subRead3b // fd_read on 3, clock
	subClockc
	subWrite1b // fd_write on stdout, clock
	subClockd
)

func sub(i int) int64 { return pSubs + int64(i)*48 }

// parityData is the data segment of the probe.
func parityData() string {
	mem := make([]byte, 0x1000)
	le := binary.LittleEndian
	le.PutUint32(mem[pIOV:], 0x300)
	le.PutUint32(mem[pIOV+4:], 4)
	le.PutUint32(mem[pIOVEmpty:], 0x300)
	le.PutUint32(mem[pIOVOOB:], pOOB)
	le.PutUint32(mem[pIOVOOB+4:], 16)
	copy(mem[0x300:], "abcd")
	copy(mem[pPath:], "etc/passwd")
	copy(mem[pAbs:], "/etc")
	copy(mem[pDotDot:], "../x")
	put := func(i int, typ byte, fd uint32, timeout uint64, flags uint16) {
		s := mem[sub(i):]
		le.PutUint64(s, 0x1100+uint64(i)) // userdata
		s[8] = typ
		if typ == 0 {
			le.PutUint32(s[16:], 1) // monotonic
			le.PutUint64(s[24:], timeout)
			le.PutUint16(s[40:], flags)
		} else {
			le.PutUint32(s[16:], fd)
		}
	}
	put(subClock, 0, 0, 1e6, 0)
	put(subRead0, 1, 0, 0, 0)
	put(subRead1, 1, 1, 0, 0)
	put(subRead3, 1, 3, 0, 0)
	put(subWrite1, 2, 1, 0, 0)
	put(subWrite3, 2, 3, 0, 0)
	put(subAbs, 0, 0, 1e6, 1)
	put(subBad, 7, 0, 0, 0)
	put(subRead1b, 1, 1, 0, 0)
	put(subClockb, 0, 0, 1e6, 0)
	put(subRead3b, 1, 3, 0, 0)
	put(subClockc, 0, 0, 1e6, 0)
	put(subWrite1b, 2, 1, 0, 0)
	put(subClockd, 0, 0, 1e6, 0)
	var b strings.Builder
	for _, c := range mem {
		fmt.Fprintf(&b, "\\%02x", c)
	}
	return b.String()
}

// parityCase is one WASI call of the probe. In args, out stands for the
// case's own output buffer.
type parityCase struct {
	fn   string
	args []int64
}

const out = -1 << 40 // placeholder: the case's output buffer

func parityCases() []parityCase {
	var cs []parityCase
	add := func(fn string, args ...int64) { cs = append(cs, parityCase{fn, args}) }
	fds := []int64{0, 1, 2, 3, -1}
	for _, fn := range []string{"args_get", "environ_get"} {
		add(fn, out, out+32)
		add(fn, pOOB, out)
		add(fn, out, pOOB)
		add(fn, pEnd, pEnd)
		add(fn, pEnd+1, 0)
	}
	for _, fn := range []string{"args_sizes_get", "environ_sizes_get"} {
		add(fn, out, out+4)
		add(fn, pOOB, out)
		add(fn, out, pOOB)
	}
	for id := int64(0); id < 4; id++ {
		add("clock_res_get", id, out)
	}
	add("clock_res_get", 0, pOOB)
	add("clock_time_get", 0, 0, pRandom)
	add("clock_time_get", 1, 0, pRandom)
	add("clock_time_get", 2, 0, out)
	add("clock_time_get", 0, 0, pOOB)
	for _, fd := range fds {
		add("fd_advise", fd, 0, 0, 0)
		add("fd_allocate", fd, 0, 0)
		add("fd_datasync", fd)
		add("fd_sync", fd)
		add("fd_fdstat_get", fd, out)
		add("fd_fdstat_set_flags", fd, 0)
		add("fd_filestat_get", fd, out)
		add("fd_filestat_set_size", fd, 0)
		add("fd_pread", fd, pIOV, 1, 0, out)
		add("fd_pread", fd, pIOVEmpty, 1, 0, out)
		add("fd_prestat_get", fd, out)
		add("fd_prestat_dir_name", fd, out, 0)
		add("fd_prestat_dir_name", fd, out, 4)
		add("fd_pwrite", fd, pIOV, 1, 0, out)
		add("fd_pwrite", fd, pIOVEmpty, 1, 0, out)
		add("fd_read", fd, pIOV, 1, out)
		add("fd_read", fd, pIOVEmpty, 1, out)
		add("fd_read", fd, pIOVOOB, 1, out)
		add("fd_read", fd, pOOB, 1, out)
		add("fd_readdir", fd, out, 32, 0, out+40)
		add("fd_renumber", fd, 5)
		add("fd_seek", fd, 0, 0, out)
		add("fd_tell", fd, out)
		add("fd_write", fd, pIOV, 1, out)
		add("fd_write", fd, pIOVEmpty, 1, out)
		add("fd_write", fd, pIOV, 0, out)
		add("sock_accept", fd, 0, out)
		add("sock_recv", fd, pIOV, 1, 0, out, out+4)
		add("sock_send", fd, pIOV, 1, 0, out)
		add("sock_send", fd, pIOV, 1, 1, out)
		add("sock_shutdown", fd, 1)
		for _, p := range [][2]int64{{pPath, 10}, {pAbs, 4}, {pDotDot, 4}, {pPath, 0}, {pOOB, 4}} {
			add("path_create_directory", fd, p[0], p[1])
			add("path_filestat_get", fd, 0, p[0], p[1], out)
			add("path_filestat_set_times", fd, 0, p[0], p[1], 0, 0, 0)
			add("path_link", fd, 0, p[0], p[1], fd, pPath, 10)
			add("path_open", fd, 0, p[0], p[1], 0, 0, 0, 0, out)
			add("path_readlink", fd, p[0], p[1], out, 16, out+32)
			add("path_remove_directory", fd, p[0], p[1])
			add("path_rename", fd, p[0], p[1], fd, pPath, 10)
			add("path_symlink", p[0], p[1], fd, pPath, 10)
			add("path_unlink_file", fd, p[0], p[1])
		}
		add("path_filestat_set_times", fd, 0, pPath, 10, 0, 0, 3)
		add("path_readlink", fd, pPath, 10, out, 0, out+32)
	}
	add("fd_advise", 1, 0, 0, 6)
	add("fd_allocate", 1, 0, 1)
	add("fd_allocate", 1, -1, 0)
	add("fd_fdstat_get", 1, pOOB)
	add("fd_fdstat_get", 3, pOOB)
	for _, flags := range []int64{1, 2, 4, 8, 16} {
		add("fd_fdstat_set_flags", 1, flags)
		add("fd_fdstat_set_flags", 3, flags)
	}
	add("fd_fdstat_set_rights", 1, 0, 0)
	add("fd_filestat_get", 1, pOOB)
	// On stdio, fd_filestat_set_times makes wazero trap: only what fails
	// before that is compared.
	add("fd_filestat_set_times", 1, 0, 0, 3)
	add("fd_filestat_set_times", 1, 0, 0, 12)
	add("fd_filestat_set_times", 3, 0, 0, 0)
	add("fd_prestat_get", 0, pOOB)
	add("fd_prestat_dir_name", 0, pOOB, 0)
	add("fd_prestat_dir_name", 0, pEnd, 0)
	add("fd_read", 0, pIOV, 1, pOOB)
	add("fd_readdir", 1, out, 8, 0, out+40)
	add("fd_renumber", 1, -1)
	add("fd_write", 1, pIOVOOB, 1, out)
	add("fd_write", 1, pIOV, 1, pOOB)
	add("fd_seek", 1, 0, 9, pOOB)
	for _, subs := range [][2]int64{
		{subClock, 1}, {subRead0, 1}, {subRead1, 1}, {subRead1b, 2}, {subRead3b, 2},
		{subWrite1b, 2}, {subWrite3, 2}, {subAbs, 1}, {subBad, 1}, {subClock, 0},
	} {
		add("poll_oneoff", sub(int(subs[0])), out, subs[1], out+120)
	}
	add("poll_oneoff", pOOB, out, 1, out+120)
	add("poll_oneoff", sub(subClock), pOOB, 1, out+120)
	add("poll_oneoff", sub(subClock), out, 1, pOOB)
	add("proc_raise", 1)
	add("sched_yield")
	add("random_get", pRandom, 16)
	add("random_get", pOOB, 16)
	add("random_get", pEnd, 0)
	// Closing, last: what a closed descriptor answers.
	add("fd_close", 3)
	add("fd_close", 2)
	add("fd_close", 2)
	add("fd_write", 2, pIOV, 1, out)
	add("fd_fdstat_get", 2, out)
	add("fd_close", 0)
	add("fd_read", 0, pIOV, 1, out)
	add("poll_oneoff", sub(subRead1b), out, 2, out+120)
	add("poll_oneoff", sub(subClock), out, 1, out+120)
	return cs
}

// parityProbe is a module that makes every call of cases and answers with
// its memory: each case's errno and output buffer.
func parityProbe(t *testing.T, cases []parityCase) []byte {
	sigs := wasiFuncs()
	var b strings.Builder
	b.WriteString("(module\n")
	imported := map[string]bool{}
	for _, c := range cases {
		if imported[c.fn] {
			continue
		}
		imported[c.fn] = true
		sig := sigs[c.fn]
		fmt.Fprintf(&b, "  (import \"wasi_snapshot_preview1\" %q (func $%s", c.fn, c.fn)
		writeWATTypes(&b, "param", sig.Params)
		writeWATTypes(&b, "result", sig.Results)
		b.WriteString("))\n")
	}
	b.WriteString("  (import \"wasmgate\" \"send_response\" (func $send_response (param i32 i32 i32) (result i32)))\n")
	b.WriteString("  (memory (export \"memory\") 3 3)\n")
	fmt.Fprintf(&b, "  (data (i32.const 0) \"%s\")\n", parityData())
	b.WriteString("  (func (export \"wasmgate_abi_v1\"))\n  (func (export \"on_request\") (result i32)\n")
	for k, c := range cases {
		sig := sigs[c.fn]
		fmt.Fprintf(&b, "    (i32.store (i32.const %d) (call $%s", pErrno+4*k, c.fn)
		for i, a := range c.args {
			if a >= out-1<<20 && a < out+1<<20 {
				a = a - out + pOut + int64(k)*outSize
			}
			fmt.Fprintf(&b, " (%s.const %d)", sig.Params[i], a)
		}
		b.WriteString("))\n")
	}
	fmt.Fprintf(&b, "    (drop (call $send_response (i32.const 200) (i32.const 0) (i32.const %d)))\n    (i32.const 1)))\n", pRandom)
	path := filepath.Join(t.TempDir(), "parity.wat")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return wat(t, path)
}

func writeWATTypes(b *strings.Builder, kw string, ts []sdkabi.ValueType) {
	if len(ts) == 0 {
		return
	}
	b.WriteString(" (" + kw)
	for _, t := range ts {
		b.WriteString(" " + t.String())
	}
	b.WriteString(")")
}

// TestWASIParity runs the same probe of every WASI function on each engine
// and compares what each call answered and wrote with wazero's answers.
func TestWASIParity(t *testing.T) {
	if !WasmtimeAvailable() {
		t.Skip("no wasmtime in this build (cgo)")
	}
	cases := parityCases()
	if pOut+len(cases)*outSize > pErrno || pErrno+4*len(cases) > pRandom {
		t.Fatalf("%d cases overflow the probe's memory", len(cases))
	}
	wasm := parityProbe(t, cases)
	answers := map[string][]byte{}
	for _, e := range testEngines() {
		b := bind(t, newTestRuntime(t, e.opts), wasm, BindingConfig{CallTimeout: 10 * time.Second})
		resp, err := serve(t, b, "/")
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		answers[e.name] = append([]byte(nil), resp.Body()...)
	}
	want, got := answers["wazero"], answers["wasmtime"]
	if len(want) != pRandom || len(got) != pRandom {
		t.Fatalf("bodies of %d and %d bytes", len(want), len(got))
	}
	le := binary.LittleEndian
	bad := 0
	for k, c := range cases {
		e1, e2 := le.Uint32(want[pErrno+4*k:]), le.Uint32(got[pErrno+4*k:])
		o1 := want[pOut+k*outSize : pOut+(k+1)*outSize]
		o2 := got[pOut+k*outSize : pOut+(k+1)*outSize]
		if e1 != e2 || string(o1) != string(o2) {
			bad++
			t.Errorf("%s%v: wazero errno %d, wasmtime errno %d\n wazero output   %x\n wasmtime output %x", c.fn, c.args, e1, e2, o1, o2)
		}
	}
	if string(want[:pOut]) != string(got[:pOut]) {
		t.Error("the probe's data differs after the calls")
	}
	t.Logf("%d calls of %d WASI functions compared, %d differ", len(cases), len(wasip1Funcs), bad)
}

// TestWASIExit: proc_exit in a hook fails it the same way on both
// engines.
func TestWASIExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exit.wat")
	src := `(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $leave (export "on_request") (result i32) (call $proc_exit (i32.const 3)) (i32.const 0)))`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	wasm := wat(t, path)
	onEngines(t, func(t *testing.T, opts Options) {
		b := bind(t, newTestRuntime(t, opts), wasm, BindingConfig{})
		_, err := serve(t, b, "/")
		if pe := pluginErr(t, err, KindTrap); !strings.Contains(pe.Msg, "module closed with exit_code(3)") {
			t.Errorf("message %q", pe.Msg)
		}
	})
}
