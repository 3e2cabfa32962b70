;; on_init rejects any config, saying why through set_error.
(module
  (import "wasmgate" "set_error" (func $set_error (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "missing \"keys\"")
  (func (export "wasmgate_abi_v1"))
  (func (export "on_init") (param i32) (result i32)
    (drop (call $set_error (i32.const 0) (i32.const 14)))
    (i32.const 1))
  (func (export "on_request") (result i32) (i32.const 0)))
