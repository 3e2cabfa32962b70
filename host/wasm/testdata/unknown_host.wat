;; A wasmgate import the ABI does not define.
(module
  (import "wasmgate" "teleport" (func $t (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))
