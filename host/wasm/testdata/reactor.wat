;; A reactor: _initialize runs once per instance, before on_init, which
;; checks it did (and that config_len is that of "{}") and uses WASI.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from the guest\n")
  (global $ready (mut i32) (i32.const 0))
  (func (export "wasmgate_abi_v1"))
  (func (export "_initialize")
    (global.set $ready (i32.add (global.get $ready) (i32.const 1))))
  (func (export "on_init") (param $len i32) (result i32)
    (if (i32.ne (global.get $ready) (i32.const 1)) (then (return (i32.const 2))))
    (if (i32.ne (local.get $len) (i32.const 2)) (then (return (i32.const 3))))
    ;; iovec at 0: {ptr 16, len 21}; bytes written at 8.
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 21))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.const 0))
  (func (export "on_request") (result i32) (i32.const 0)))
