;; The marker and nothing to call.
(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1")))
