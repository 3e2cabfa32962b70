// Package tck is wasmgate's conformance kit for the native plugin ABI
// (sdk/ABI.md): guests that exercise a host, and a runner that checks what
// the host answered them. http-wasm-host-go's tck is the model: a guest
// plus tck.Run.
//
// # The guests
//
// Each guest is a WASI reactor in its own folder, built by
// plugins/build.sh to sdk/tck/<name>/<name>.wasm (the .wasm files are
// build outputs, not in git):
//
//   - hostcheck calls every host function of sdk/ABI.md section 4, through
//     the SDK and through raw imports where the SDK would hide what the host
//     answered, and reports what it saw as JSON. Its package documentation
//     is the specification: config keys, checks, report keys, log lines. The
//     Go one is sdk/tck/hostcheck; a version in another language implements
//     the same specification.
//   - fault misbehaves on purpose (loops, allocates without end, traps,
//     panics, exits, returns garbage, passes bad pointers), for a host's
//     sandbox, deadline, memory-cap, quarantine and failure-policy tests.
//     The runner does not drive it; the host's tests load it themselves.
//
// # The runner
//
// Run takes a Guest (a hostcheck build and what may differ by language)
// and a start function. It starts two echo Upstreams on 127.0.0.1 and
// finds a dead address, hands start the config for them (Config: plugins,
// upstreams and routes, to which the host adds its listeners, admin API,
// log and runtime settings), and drives the gateway start returned through
// the Gateway interface: requests on its proxy URL, its JSON log, its
// Prometheus metrics. In subtests named for what they check (inspect,
// buffer convention, phase rules, kv, metrics, log, outbound, chain order,
// chain short-circuit, pooled and fresh instances) it asserts the exact
// values and return codes the guest reports, what the upstreams saw, what
// the client got, the log lines and the metrics. The runner knows nothing
// of the host's packages: any host that reads wasmgate's config and logs
// as wasmgate does can run it.
//
// # Using it from a host
//
// A Go test of the host builds the guest, starts its gateway in start and
// adapts it to Gateway (host/server's TestPluginHostFunctions is the one
// for wasmgate):
//
//	func TestConformance(t *testing.T) {
//		tck.Run(t, tck.GoGuest("sdk/tck/hostcheck/hostcheck.wasm"),
//			func(t *testing.T, config string) tck.Gateway {
//				return startGateway(t, listenersAndAdmin+config) // stopped at t.Cleanup
//			})
//	}
//
// # A guest in a new language
//
// Write hostcheck in that language from sdk/tck/hostcheck's documentation
// (same checks, config keys, report keys and log lines; its SDK's own
// functions where the Go guest uses sdk/go's, raw imports where it uses
// raw ones), build it beside the Go one, and call Run with a Guest that
// says what its language can do: Guest.Initialize (code runs during
// _initialize), Guest.Stdio (WASI stdout and stderr) and the texts of its
// SDK's outbound errors (Guest.TimeoutErr, Guest.NotAllowedErr). Nothing
// else in the runner depends on the language.
//
// Upstream, Echo, DocBody, DeadAddr, Do, Response and EqJSON are exported
// for a host's own plugin tests, which need the same backend and client.
package tck
