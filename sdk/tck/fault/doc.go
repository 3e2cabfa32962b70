// Command fault is the guest of wasmgate's conformance kit (sdk/tck) that
// misbehaves on purpose, for tests of a host's sandbox and failure
// policies: it loops forever, allocates without end, traps, panics, exits,
// returns a value the ABI does not list, or hands a host function an
// out-of-bounds pointer. tck.Run does not drive it: the host's own tests do
// (in wasmgate, the quarantine, failure-policy and hot-load tests of
// host/server). It is a test guest, not a plugin to deploy.
//
// Config keys:
//
//	mode    what to do (required):
//	          ok          nothing: the hook succeeds (with "header", marks it)
//	          loop        spin forever (the call deadline must cut it off)
//	          alloc       allocate 8 MiB blocks without end (the memory cap must stop it)
//	          trap        execute `unreachable` (a WebAssembly trap)
//	          panic       a Go panic (the SDK reports it with set_error and fails the hook)
//	          exit        os.Exit(3), i.e. WASI proc_exit in the middle of a hook
//	          garbage     return 0x5eed from the hook (on_init: reject the config)
//	          bad_pointer call wasmgate.random_get with a buffer outside memory
//	on      the hook that misbehaves: init, request (default) or response
//	every   misbehave on every Nth call only (default 1: every call); counted
//	        across all instances of the plugin in the KV store (not for init)
//	header  with mode ok or on calls that do not misbehave, set this header
//	        (request header in on_request, response header in on_response)
//	        to "1", so a test can tell the plugin ran
//
// Example:
//
//	plugins:
//	  - name: fault-loop
//	    module: sdk/tck/fault/fault.wasm
//	    limits: {call_timeout: 50ms}
//	    failure_policy: fail_open
//	    config: {mode: loop, on: request}
//
// Which limit stops loop and alloc depends on the binding: alloc reaches a
// 32 MiB cap in tens of milliseconds but a large cap takes longer than the
// default 100ms call deadline, so a test of the memory cap sets a generous
// call_timeout (and one of the deadline a small memory_pages, or mode loop).
//
// The module exports on_request (through the SDK) and its own on_response,
// so that "garbage" can return a raw value from either hook.
//
// Build: bash plugins/build.sh fault (to sdk/tck/fault/fault.wasm).
package main
