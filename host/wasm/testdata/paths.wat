;; Behaves by request path: /loop never returns, /fail traps, anything else
;; continues. For tests where a binding must keep serving after failures.
(module
  (import "wasmgate" "request_path" (func $request_path (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $on_request (export "on_request") (result i32)
    (local $c i32)
    (drop (call $request_path (i32.const 0) (i32.const 16)))
    (local.set $c (i32.load8_u (i32.const 1)))
    (if (i32.eq (local.get $c) (i32.const 0x6c)) ;; 'l'
      (then (loop $forever (br $forever))))
    (if (i32.eq (local.get $c) (i32.const 0x66)) ;; 'f'
      (then unreachable))
    (i32.const 0)))
