package tck

// CGuest is sdk/tck/hostcheck-c, the hostcheck guest written in C with the
// C SDK (sdk/c), built to module. Its build line, from the repository root
// (Debian's clang, lld and wasi-libc; see sdk/c/README.md):
//
//	clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wl,--strip-debug \
//	    -I sdk/c -o hostcheck-c.wasm sdk/tck/hostcheck-c/src/*.c sdk/c/wasmgate.c
//
// (host/server's TestTCKCGuest builds it into a temporary directory and
// runs Run with it).
func CGuest(module string) Guest {
	return Guest{
		Module: module,
		// -mexec-model=reactor links wasi-libc's crt1-reactor.o, whose
		// _initialize runs the constructors: the guest's
		// __attribute__((constructor)) probes the host there and logs
		// "hostcheck _initialize log line".
		Initialize: true,
		// printf and fprintf(stderr) write with WASI fd_write; the log
		// check calls fflush(stdout) and fflush(stderr) before the hook
		// returns, so both lines reach the log during the request.
		Stdio: true,
		// wasmgate_outbound_error's texts: "wasmgate: outbound request
		// timed out" for status -1, "wasmgate.http_batch: not allowed" for
		// -3 (the Go and Rust SDKs' words).
		TimeoutErr:    "wasmgate: outbound request timed out",
		NotAllowedErr: "not allowed",
	}
}
