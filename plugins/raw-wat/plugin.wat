;; raw-wat: a wasmgate plugin written by hand against sdk/ABI.md, with no
;; SDK and no language runtime. It proves the ABI is language-neutral and is
;; the smallest possible cold start (no _initialize, no allocator).
;;
;; on_init      accepts any config.
;; on_request   adds the request header "X-Raw-Wat: 1"; on the path
;;              /raw-wat/deny it answers 403 "denied by raw-wat" itself.
;; on_response  adds the response header "X-Raw-Wat-Response: 1".
;;
;; Build: ./build.sh (wat2wasm from wabt).
(module
  ;; Host functions (sdk/ABI.md section 4). Buffers are (ptr, len) pairs in
  ;; this module's memory; results are sizes or negative error codes.
  (import "wasmgate" "request_path" (func $request_path (param i32 i32) (result i32)))
  (import "wasmgate" "header_add"
    (func $header_add (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasmgate" "send_response" (func $send_response (param i32 i32 i32) (result i32)))

  ;; One page is plenty: constants below 0x100, the path buffer after.
  (memory (export "memory") 1 1)

  (data (i32.const 0x00) "X-Raw-Wat")          ;; 9 bytes
  (data (i32.const 0x10) "1")                  ;; 1 byte
  (data (i32.const 0x20) "/raw-wat/deny")      ;; 13 bytes
  (data (i32.const 0x30) "denied by raw-wat")  ;; 17 bytes
  (data (i32.const 0x50) "X-Raw-Wat-Response") ;; 18 bytes

  (global $path_buf i32 (i32.const 0x100))
  (global $path_cap i32 (i32.const 0x100))

  ;; The ABI version marker: never called, only looked up.
  (func (export "wasmgate_abi_v1"))

  ;; on_init(config_len) -> 0 accepts the config, whatever it is.
  (func (export "on_init") (param $config_len i32) (result i32)
    (i32.const 0))

  ;; on_request() -> 0 continue, 1 a local response was sent.
  (func (export "on_request") (result i32)
    (local $n i32)
    ;; Header names and values: kind 0 is the request.
    (drop (call $header_add (i32.const 0)
      (i32.const 0x00) (i32.const 9)     ;; X-Raw-Wat
      (i32.const 0x10) (i32.const 1)))   ;; 1
    ;; The host writes min(size, cap) bytes and returns the full size.
    (local.set $n (call $request_path (global.get $path_buf) (global.get $path_cap)))
    (if (i32.and
          (i32.eq (local.get $n) (i32.const 13))
          (call $equal (global.get $path_buf) (i32.const 0x20) (i32.const 13)))
      (then
        (drop (call $send_response (i32.const 403) (i32.const 0x30) (i32.const 17)))
        (return (i32.const 1))))
    (i32.const 0))

  ;; on_response() -> 0. Kind 1 is the response.
  (func (export "on_response") (result i32)
    (drop (call $header_add (i32.const 1)
      (i32.const 0x50) (i32.const 18)    ;; X-Raw-Wat-Response
      (i32.const 0x10) (i32.const 1)))   ;; 1
    (i32.const 0))

  ;; equal(a, b, n) -> 1 when the n bytes at a and b are the same.
  (func $equal (param $a i32) (param $b i32) (param $n i32) (result i32)
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $n)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.const 0))
)
