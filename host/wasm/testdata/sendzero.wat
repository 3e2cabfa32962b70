;; on_request answers locally but returns 0 (continue): the request must
;; end all the same. On /stop it returns 1 without send_response: a failure.
(module
  (import "wasmgate" "send_response" (func $send_response (param i32 i32 i32) (result i32)))
  (import "wasmgate" "request_path" (func $request_path (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (drop (call $request_path (i32.const 0) (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 1)) (i32.const 0x73)) ;; 's'
      (then (return (i32.const 1))))
    (drop (call $send_response (i32.const 418) (i32.const 0) (i32.const 0)))
    (i32.const 0)))
