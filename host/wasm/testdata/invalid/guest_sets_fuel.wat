;; Writes global 0, which exists only once instrumentation appends $fuel
;; keeps the fuel full, so $yield (and $stop) are never reached.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (loop $forever
      (global.set 0 (i32.const 1000000000))
      (br $forever))
    (i32.const 0)))
