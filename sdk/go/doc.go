// Package wasmgate is the guest SDK for writing wasmgate gateway plugins in
// standard Go. It wraps the plugin ABI v1 (sdk/ABI.md): a plugin registers
// handlers, and the SDK provides the module's exports, typed access to the
// request and response, the config decoder, logging, time and randomness,
// the shared key-value store, metrics and batched outbound HTTP.
//
// # A plugin
//
// A plugin is a main package built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o myplugin.wasm ./myplugin
//
// It registers its handlers from an init function (a reactor runs package
// initialisation, never main; main must exist and stay empty):
//
//	package main
//
//	import wasmgate "github.com/wasmgate/wasmgate/sdk/go"
//
//	type config struct {
//		Header string `json:"header"`
//	}
//
//	var cfg config
//
//	func init() {
//		wasmgate.Register(wasmgate.Plugin{
//			Init: func(b []byte) error { return wasmgate.DecodeConfig(b, &cfg) },
//			OnRequest: func(req *wasmgate.Request) wasmgate.Action {
//				if _, ok := req.Header(cfg.Header); !ok {
//					req.SendResponse(400, []byte("missing "+cfg.Header+"\n"))
//					return wasmgate.Stop
//				}
//				return wasmgate.Continue
//			},
//		})
//	}
//
//	func main() {}
//
// # Lifecycle
//
// The gateway instantiates the module (running package initialisation),
// then calls Init once per instance with the route's config. An instance
// runs one hook at a time. In the default pooled mode OnRequest and
// OnResponse of one request may run on different instances (sdk/ABI.md
// section 2): keep no per-request state in package variables; read what
// OnResponse needs from the request (Response.Request) or pass it in a
// request header. In fresh mode one new instance serves exactly one request.
// Init should keep everything derived from the config
// (compiled regexps, parsed keys) in package variables, so requests only do
// request work.
//
// # Hooks and their cost
//
// The SDK exports wasmgate_abi_v1, on_init and on_request. A plugin with a
// Plugin.OnResponse handler must also import
// github.com/wasmgate/wasmgate/sdk/go/response, which exports on_response;
// the gateway calls only the hooks a module exports, so a request-only
// plugin costs nothing on the response path. A plugin without OnRequest
// still exports on_request (it returns Continue at once): one short call
// into the instance per request, well under a microsecond with the wazero
// compiler (measured about 0.4 µs, against 0.55 µs for the noop plugin's
// whole on_request).
//
// # Failures
//
// A handler fails by returning Fail(err) (OnRequest) or a non-nil error
// (Init, OnResponse); the message goes to the gateway log, and for Init to
// the operator as the config error. A panic in a handler is recovered and
// reported the same way, with the panicking frames. Then the route's
// failure policy applies: fail_closed answers 502, fail_open skips the
// plugin; the instance is discarded either way.
//
// # Buffers and allocation
//
// Data crosses from the host by copy into the plugin's memory. Getters read
// into one reused scratch buffer that grows to the largest item seen, then
// return a string or slice of their own; nothing is read that the plugin
// does not ask for (a body stays on the host until Body or BodyRange).
// Values that name things (header names, keys) are passed to the host
// without copying.
//
// # Errors
//
// A host function's negative ABI code becomes an *Error that matches, with
// errors.Is, one of ErrNotFound, ErrBadArgument, ErrNotAllowed, ErrTooLarge
// and ErrUnavailable, and names the function: "wasmgate.header_set: bad
// argument".
//
// # The ABI itself
//
// The ABI's names, codes and limits and the http_batch encoding are
// declared in github.com/wasmgate/wasmgate/sdk/abi, which this package and
// the gateway share. A plugin may use it too, e.g. abi.IsToken to check a
// header name taken from its config in Init.
//
// # Native builds
//
// The wasm imports and exports are in files built only for wasip1. On other
// platforms the package compiles (so `go vet` and `go test` run on a
// plugin's own logic) and every host function fails with ErrNotAllowed,
// except VerifySignature and CheckPublicKey, which verify in-process with
// the host's rules so that a plugin's native tests can exercise both of its
// verification paths. Keep plugin logic in pure functions and test those
// natively.
package wasmgate
