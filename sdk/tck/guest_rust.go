package tck

// RustGuest is sdk/tck/hostcheck-rust, the hostcheck guest written with the
// Rust SDK (sdk/rust), built to module. Its build line, in that folder
// (Debian's toolchain; see sdk/rust/README.md):
//
//	RUSTC=/usr/bin/rustc /usr/bin/cargo build --offline --release --target wasm32-wasi
//
// makes target/wasm32-wasi/release/hostcheck.wasm (host/server's
// TestConformanceRustGuest builds it into $TMPDIR and runs Run with it).
func RustGuest(module string) Guest {
	return Guest{
		Module: module,
		// wasmgate::plugin! exports _initialize, which runs the C
		// constructors and then Plugin::initialize, where the guest probes
		// the host and logs "hostcheck _initialize log line".
		Initialize: true,
		// std::io::stdout (line-buffered; the guest flushes it) and
		// std::io::stderr (unbuffered) write with WASI fd_write.
		Stdio: true,
		// The Display of sdk/rust's OutboundError::Timeout, and a part of
		// OutboundError::NotAllowed's ("wasmgate.http_batch: not allowed").
		TimeoutErr:    "wasmgate: outbound request timed out",
		NotAllowedErr: "not allowed",
	}
}
