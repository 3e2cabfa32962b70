;; Bulk memory operations in a loop: run(n, rounds) fills, copies and
;; initialises n bytes, rounds times. The instrumentation must charge them
;; by length (interrupt.go, $bulk), not as one instruction each.
(module
  (memory (export "memory") 4)
  (data $d "0123456789abcdef")
  (func (export "run") (param $n i32) (param $rounds i32)
    (loop $again
      (memory.fill (i32.const 0) (i32.const 7) (local.get $n))
      (memory.copy (i32.const 65536) (i32.const 0) (local.get $n))
      (memory.init $d (i32.const 131072) (i32.const 0) (i32.const 16))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $again (local.get $rounds))))
  (func (export "copy") (param $d i32) (param $s i32) (param $n i32) (result i32)
    (memory.copy (local.get $d) (local.get $s) (local.get $n))
    (local.get $n)))
