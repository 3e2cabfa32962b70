;; Declares a memory of 20 to 100 pages, for the memory cap checks.
(module
  (memory (export "memory") 20 100)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))
