;; on_request grows memory a page at a time until memory.grow fails, then
;; traps, as a language runtime out of memory would.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func $hog (export "on_request") (result i32)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
