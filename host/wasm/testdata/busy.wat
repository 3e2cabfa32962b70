;; Detects an instance used by two requests at once: on_request marks the
;; instance busy until on_response, and fails (returns 7) if it already is.
(module
  (memory (export "memory") 1)
  (global $busy (mut i32) (i32.const 0))
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (local $i i32)
    (if (global.get $busy) (then (return (i32.const 7))))
    (global.set $busy (i32.const 1))
    ;; A little work, to widen the window.
    (loop $spin
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $spin (i32.lt_u (local.get $i) (i32.const 2000))))
    (i32.const 0))
  (func (export "on_response") (result i32)
    (if (i32.eqz (global.get $busy)) (then (return (i32.const 7))))
    (global.set $busy (i32.const 0))
    (i32.const 0)))
