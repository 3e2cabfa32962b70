;; Grows its memory by one page per request (and never fails): for the
;; memory high-water recycling.
(module
  (import "wasmgate" "send_response" (func $send_response (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (drop (memory.grow (i32.const 1)))
    ;; Answer 200 + pages, so the test sees which instance ran.
    (drop (call $send_response (i32.add (i32.const 200) (memory.size)) (i32.const 0) (i32.const 0)))
    (i32.const 1)))
