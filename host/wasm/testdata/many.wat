;; Several problems at once: each is reported.
(module
  (import "env" "foo" (func $foo))
  (memory 1)
  (func (export "on_request") (result i32) (i32.const 0)))
