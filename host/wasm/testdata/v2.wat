;; Targets a future ABI.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v2"))
  (func (export "on_request") (result i32) (i32.const 0)))
