;; on_request with a parameter it should not have.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (param i32) (result i32) (i32.const 0)))
