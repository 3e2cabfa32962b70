package tck

// ASGuest is sdk/tck/hostcheck-as, the hostcheck guest written in
// AssemblyScript with the AssemblyScript SDK (sdk/assemblyscript), built
// to module. Its build line, in sdk/assemblyscript (after npm ci there,
// which installs the pinned compiler; see sdk/assemblyscript/README.md):
//
//	node_modules/.bin/asc ../tck/hostcheck-as/index.ts --config ../tck/hostcheck-as/asconfig.json \
//	    --target release -o ../tck/hostcheck-as/hostcheck-as.wasm
//
// (host/server's TestTCKASGuest builds it into a temporary directory and
// runs Run with it).
func ASGuest(module string) Guest {
	return Guest{
		Module: module,
		// asconfig.json (the SDK's, which the guest's extends) sets
		// exportStart: _initialize, so the entry file's top level runs
		// there: the guest probes the host and logs "hostcheck
		// _initialize log line" before registering the plugin.
		Initialize: true,
		// The SDK imports no WASI (console goes through the log host
		// function); the guest imports wasi_snapshot_preview1.fd_write
		// itself (sdk/ABI.md section 7) and writes each line, unbuffered,
		// to fd 1 and fd 2 before the hook returns.
		Stdio: true,
		// The texts of the SDK's OutboundResult.err(): "wasmgate: outbound
		// request timed out" for status -1, "wasmgate.http_batch: not
		// allowed" for -3 (the Go SDK's words).
		TimeoutErr:    "wasmgate: outbound request timed out",
		NotAllowedErr: "not allowed",
	}
}
