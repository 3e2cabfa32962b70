;; Resets $work (global 3 after instrumentation) every iteration: never over budget.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (loop $forever
      (global.set 3 (i64.const -1000000000000))
      (br $forever))
    (i32.const 0)))
