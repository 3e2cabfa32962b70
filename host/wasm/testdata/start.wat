;; A WASI command, not a reactor.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "_start"))
  (func (export "on_request") (result i32) (i32.const 0)))
