;; on_init never returns: only the cold-start deadline stops it.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_init") (param i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
  (func (export "on_request") (result i32) (i32.const 0)))
