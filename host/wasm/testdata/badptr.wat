;; on_request hands a host function a buffer outside its memory.
(module
  (import "wasmgate" "request_method" (func $request_method (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $poke (export "on_request") (result i32)
    (drop (call $request_method (i32.const 0xfffffff0) (i32.const 100)))
    (i32.const 0)))
