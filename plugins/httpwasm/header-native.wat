;; header-native: header.wat against the native ABI (sdk/ABI.md).
(module
  (import "wasmgate" "header_add" (func $header_add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Bench")
  (data (i32.const 16) "1")
  (data (i32.const 32) "X-Bench-Response")
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (drop (call $header_add (i32.const 0) (i32.const 0) (i32.const 7) (i32.const 16) (i32.const 1)))
    (i32.const 0))
  (func (export "on_response") (result i32)
    (drop (call $header_add (i32.const 1) (i32.const 32) (i32.const 16) (i32.const 16) (i32.const 1)))
    (i32.const 0)))
