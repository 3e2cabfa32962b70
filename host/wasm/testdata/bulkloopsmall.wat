;; on_request fills 4,000 bytes over and over and never returns: a bulk
;; operation under chargeBulk's coarse round (16 KiB) is still charged.
;; It counts its rounds at address 0x20000.
(module
  (memory (export "memory") 3)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (loop $forever
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 4000))
      (i32.store (i32.const 0x20000) (i32.add (i32.load (i32.const 0x20000)) (i32.const 1)))
      (br $forever))
    (i32.const 0)))
