;; A plugin that does nothing: the floor of a hook call.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))
