;; Counts the requests its instance served and answers each with status
;; 200+count: a fresh instance always answers 201, a reused one 202, 203...
(module
  (import "wasmgate" "send_response" (func $send_response (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $n (mut i32) (i32.const 0))
  (func (export "wasmgate_abi_v1"))
  (func (export "on_init") (param i32) (result i32) (i32.const 0))
  (func (export "on_request") (result i32)
    (global.set $n (i32.add (global.get $n) (i32.const 1)))
    (drop (call $send_response (i32.add (i32.const 200) (global.get $n)) (i32.const 0) (i32.const 0)))
    (i32.const 1))
  (func (export "on_response") (result i32) (i32.const 0)))
