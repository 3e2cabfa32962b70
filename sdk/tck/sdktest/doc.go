// Package sdktest holds the Go test helpers the SDKs' test packages share
// (sdk/rust, sdk/c/ctest and sdk/assemblyscript/astest), so that what
// every SDK must do is written once:
//
//   - the harness: SkipOrFail for a missing toolchain (a failure with
//     CI=true), Run and Exec for build commands, and Gateway, a real
//     wasmgate (host/server) started on a config file, with its proxy URL,
//     its Prometheus metrics and its process and access logs;
//   - Inspect, CheckExampleShape and CheckImportsEveryHostFunction, which
//     read a built module as the gateway does at load;
//   - Signature, EvalConst, CheckSignatures and CheckConstants, the
//     language-neutral half of the checks of an SDK's declarations against
//     sdk/abi (each SDK's test keeps the parser of its own source);
//   - the end-to-end suites of the example plugins every SDK ships with the
//     same config and the same answers, byte for byte: JSONTransformSuite,
//     AggregateSuite and their config errors (Rust, C and AssemblyScript),
//     HeadersAPIKeySuite (Rust and C), and the checks of the probe plugins
//     of sdk/rust and sdk/c (StartProbe).
//
// It is a normal package, not _test files, only so that the three test
// packages can import it; nothing but tests should. Unlike sdk/tck, which
// knows nothing of the host's packages, it runs host/server in process.
package sdktest
