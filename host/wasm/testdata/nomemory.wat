;; A memory that is not exported as "memory".
(module
  (memory (export "mem") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))
