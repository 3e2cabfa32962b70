;; on_request asks for 1000 pages at once, far over any small cap, and traps
;; when refused: a memory failure although the memory stays small. On /ok
;; it grows one page and traps anyway: a plain trap.
(module
  (import "wasmgate" "request_path" (func $request_path (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $greedy (export "on_request") (result i32)
    (drop (call $request_path (i32.const 0) (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 1)) (i32.const 0x6f)) ;; 'o'
      (then (drop (memory.grow (i32.const 1))) unreachable))
    (if (i32.eq (memory.grow (i32.const 1000)) (i32.const -1))
      (then unreachable))
    (i32.const 0)))
