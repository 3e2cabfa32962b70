;; A loop of 64 KiB fills on memory 0, and a never-called fill on a second,
;; 64-bit memory that chargeBulk's i32 $bulk cannot meter (the whole module
;; is then refused). Built with wat2wasm --enable-memory64 --enable-multi-memory.
(module
  (memory (export "memory") 3)
  (memory $m i64 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32)
    (loop $forever
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 65536))
      (i32.store (i32.const 0x20000) (i32.add (i32.load (i32.const 0x20000)) (i32.const 1)))
      (br $forever))
    (i32.const 0))
  (func $unused (memory.fill $m (i64.const 0) (i32.const 0) (i64.const 0))))
