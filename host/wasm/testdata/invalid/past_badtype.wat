;; Invalid on purpose: it names a function or type one past its own, which a
;; rewriter's appended $yield or $bulk would make valid (TestGuestCannotReachTheCounters).
(module
  (type (func))
  (memory (export "memory") 1)
  (table 1 funcref)
  (func (export "f") (param i32) (result i32)
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))
    (call_indirect (type 2) (local.get 0) (i32.const 0))))
