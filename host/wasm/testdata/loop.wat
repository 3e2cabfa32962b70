;; on_request never returns: only the deadline stops it.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $spin (export "on_request") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))
