;; Invalid on purpose: it names a function or type one past its own, which a
;; rewriter's appended $yield or $bulk would make valid (TestGuestCannotReachTheCounters).
(module
  (memory (export "memory") 1)
  (table 1 funcref)
  (elem (i32.const 0) func 1)
  (func (export "f") (memory.fill (i32.const 0) (i32.const 0) (i32.const 0))))
