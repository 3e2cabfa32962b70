;; header: the bench's http-wasm twin of header-native.wat: adds the request
;; header "X-Bench: 1" in handle_request and the response header
;; "X-Bench-Response: 1" in handle_response (http_handler ABI, v0.7.0).
(module
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "add_header_value" (func $add_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Bench")
  (data (i32.const 16) "1")
  (data (i32.const 32) "X-Bench-Response")
  ;; buffer_response (2): response headers may be written after next.
  (func $init (drop (call $enable_features (i32.const 2))))
  (start $init)
  (func (export "handle_request") (result i64)
    (call $add_header_value (i32.const 0) (i32.const 0) (i32.const 7) (i32.const 16) (i32.const 1))
    (i64.const 1))
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $add_header_value (i32.const 1) (i32.const 32) (i32.const 16) (i32.const 16) (i32.const 1))))
