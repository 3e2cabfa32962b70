;; on_request traps in a named function, for the stack trace.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $explode
    unreachable)
  (func $on_request (export "on_request") (result i32)
    (call $explode)
    (i32.const 0)))
