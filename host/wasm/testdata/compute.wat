;; on_request runs a tight arithmetic loop (an xorshift over 100k rounds),
;; the worst case for interruption checks, for BenchmarkDeadlineOverhead.
(module
  (memory (export "memory") 1)
  (global $seed (mut i32) (i32.const 1))
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (local $i i32) (local $x i32)
    (local.set $x (global.get $seed))
    (loop $again
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
      (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (i32.const 100000))))
    (global.set $seed (local.get $x))
    (i32.const 0)))
