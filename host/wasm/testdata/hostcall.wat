;; on_request calls a cheap host function 1000 times (request_method with
;; len 0 asks for the size only), for BenchmarkHostCall.
(module
  (import "wasmgate" "request_method" (func $request_method (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (local $i i32)
    (loop $again
      (drop (call $request_method (i32.const 0) (i32.const 0)))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (i32.const 1000))))
    (i32.const 0)))
