package wasm

import (
	"os"
	"path/filepath"
	"testing"
)

// wasiProbeWAT answers every request with the errno of WASI calls a
// sandboxed plugin might try, one byte each, then the counts environ_* and
// args_* report.
const wasiProbeWAT = `(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $sock_shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasmgate" "send_response" (func $send_response (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0x200) "\00\03\00\00\04\00\00\00") ;; one iovec: 4 bytes at 0x300
  (data (i32.const 0x400) "etc/passwd")
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (i32.store8 (i32.const 0x100) (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 0x500)))
    (i32.store8 (i32.const 0x101) (call $sock_accept (i32.const 1) (i32.const 0) (i32.const 0x500)))
    (i32.store8 (i32.const 0x102) (call $sock_recv (i32.const 3) (i32.const 0x200) (i32.const 1) (i32.const 0) (i32.const 0x500) (i32.const 0x504)))
    (i32.store8 (i32.const 0x103) (call $sock_recv (i32.const 0) (i32.const 0x200) (i32.const 1) (i32.const 0) (i32.const 0x500) (i32.const 0x504)))
    (i32.store8 (i32.const 0x104) (call $sock_send (i32.const 1) (i32.const 0x200) (i32.const 1) (i32.const 0) (i32.const 0x500)))
    (i32.store8 (i32.const 0x105) (call $sock_shutdown (i32.const 1) (i32.const 3)))
    (i32.store8 (i32.const 0x106) (call $fd_prestat_get (i32.const 3) (i32.const 0x500)))
    (i32.store8 (i32.const 0x107) (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x400) (i32.const 10)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0x500)))
    (drop (call $environ_sizes_get (i32.const 0x510) (i32.const 0x514)))
    (i32.store8 (i32.const 0x108) (i32.load (i32.const 0x510)))
    (drop (call $args_sizes_get (i32.const 0x518) (i32.const 0x51c)))
    (i32.store8 (i32.const 0x109) (i32.load (i32.const 0x518)))
    (drop (call $send_response (i32.const 200) (i32.const 0x100) (i32.const 10)))
    (i32.const 1))
)`

// TestWASISandbox pins sdk/ABI.md section 7: socket calls fail with EBADF
// (no socket is open, and stdin/stdout are none), no directory is
// preopened, and there are no environment variables or arguments.
func TestWASISandbox(t *testing.T) { onEngines(t, testWASISandbox) }

func testWASISandbox(t *testing.T, opts Options) {
	path := filepath.Join(t.TempDir(), "wasiprobe.wat")
	if err := os.WriteFile(path, []byte(wasiProbeWAT), 0o600); err != nil {
		t.Fatal(err)
	}
	b := bind(t, newTestRuntime(t, opts), wat(t, path), BindingConfig{})
	resp, err := serve(t, b, "/")
	if err != nil {
		t.Fatal(err)
	}
	const ebadf = 8 // WASI errno
	want := []byte{ebadf, ebadf, ebadf, ebadf, ebadf, ebadf, ebadf, ebadf, 0, 0}
	names := []string{"sock_accept(3)", "sock_accept(stdout)", "sock_recv(3)", "sock_recv(stdin)",
		"sock_send(stdout)", "sock_shutdown(stdout)", "fd_prestat_get(3)", "path_open(3)", "environ count", "args count"}
	got := resp.Body()
	if len(got) != len(want) {
		t.Fatalf("body %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s = %d, want %d", names[i], got[i], want[i])
		}
	}
}
