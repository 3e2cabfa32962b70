;; A wasmgate import with the wrong signature.
(module
  (import "wasmgate" "request_method" (func $m (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))
