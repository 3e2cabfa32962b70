;; on_request fills 64 KiB over and over and never returns: only the
;; deadline stops it. It counts its rounds at address 0x20000.
(module
  (memory (export "memory") 3)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (loop $forever
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 65536))
      (i32.store (i32.const 0x20000) (i32.add (i32.load (i32.const 0x20000)) (i32.const 1)))
      (br $forever))
    (i32.const 0)))
