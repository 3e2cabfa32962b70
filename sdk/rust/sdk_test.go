// Package rust holds the Go tests of the Rust SDK (this directory is the
// Rust crate wasmgate; see README.md). They check the crate's declarations
// against sdk/abi without a Rust toolchain, then, with Debian's rustc and
// cargo for wasm32-wasi, build the example plugins and a module importing
// every host function, load them into a real gateway and check what the
// plugins do end to end, and run the crate's own unit tests natively.
// Without the toolchain those tests skip, except with CI=true.
package rust

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
	"github.com/wasmgate/wasmgate/sdk/tck"
	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// The toolchain: Debian's, never a rustup one on PATH (which has no
// wasm32-wasi standard library). WASMGATE_CARGO and WASMGATE_RUSTC point
// elsewhere.
func toolchain(t *testing.T) (cargo, rustc string) {
	t.Helper()
	cargo, rustc = "/usr/bin/cargo", "/usr/bin/rustc"
	if v := os.Getenv("WASMGATE_CARGO"); v != "" {
		cargo = v
	}
	if v := os.Getenv("WASMGATE_RUSTC"); v != "" {
		rustc = v
	}
	for _, p := range []string{cargo, rustc} {
		if _, err := os.Stat(p); err != nil {
			sdktest.SkipOrFail(t, p+" not installed (apt-get install rustc cargo libstd-rust-dev-wasm32 lld)")
		}
	}
	out, err := exec.Command(rustc, "--print", "target-libdir", "--target", "wasm32-wasi").Output()
	if err != nil {
		sdktest.SkipOrFail(t, rustc+" has no wasm32-wasi target (apt-get install libstd-rust-dev-wasm32)")
	}
	if m, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "libstd-*.rlib")); len(m) == 0 {
		sdktest.SkipOrFail(t, "no wasm32-wasi standard library in "+strings.TrimSpace(string(out))+" (apt-get install libstd-rust-dev-wasm32)")
	}
	return cargo, rustc
}

// cargoEnv makes cargo use rustc and find Debian's tools first.
func cargoEnv(rustc string) []string {
	return []string{"RUSTC=" + rustc, "PATH=/usr/bin:" + os.Getenv("PATH"), "CARGO_TERM_COLOR=never"}
}

// targetDir is cargo's target directory, outside the source tree and kept
// across runs like GOCACHE (a cold build takes about 15 s); cargo rebuilds
// what changed.
func targetDir() string {
	if d := os.Getenv("WASMGATE_TEST_CACHE"); d != "" {
		return filepath.Join(d, "rust-target")
	}
	return filepath.Join(os.TempDir(), "wasmgate-test-rust-target")
}

var (
	buildOnce sync.Once
	buildErr  string
	built     map[string]string // example name -> .wasm
)

// examples builds the crate's example plugins with the README's line and
// returns their modules by name.
func examples(t *testing.T) map[string]string {
	t.Helper()
	cargo, rustc := toolchain(t)
	buildOnce.Do(func() {
		cmd := exec.Command(cargo, "build", "--offline", "--release", "--target", "wasm32-wasi", "--examples", "--target-dir", targetDir())
		cmd.Env = append(os.Environ(), cargoEnv(rustc)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Sprintf("cargo build: %v\n%s", err, out)
			return
		}
		built = map[string]string{}
		for _, name := range []string{"headers", "api_key", "json_transform", "aggregate"} {
			built[name] = filepath.Join(targetDir(), "wasm32-wasi", "release", "examples", name+".wasm")
		}
	})
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return built
}

// TestDeclarations checks src/sys.rs and src/abi.rs against sdk/abi: every
// host function with its exact signature, and the codes, constants and
// limits. It needs no Rust toolchain.
func TestDeclarations(t *testing.T) {
	sys, err := os.ReadFile("src/sys.rs")
	if err != nil {
		t.Fatal(err)
	}
	// The wasm32 extern block, before the native stubs.
	block := string(sys)
	block = block[strings.Index(block, "extern \"C\" {"):strings.Index(block, "#[cfg(not(target_arch")]
	got := map[string]string{}
	for _, m := range regexp.MustCompile(`(?s)pub fn (\w+)\(([^)]*)\)\s*->\s*(\w+);`).FindAllStringSubmatch(block, -1) {
		var params []string
		for _, p := range strings.Split(m[2], ",") {
			if p = strings.TrimSpace(p); p != "" {
				params = append(params, rustType(t, strings.TrimSpace(p[strings.Index(p, ":")+1:])))
			}
		}
		got[m[1]] = sdktest.FormatSignature(params, rustType(t, m[3]))
	}
	sdktest.CheckSignatures(t, got, func(name string) string { return "sys::" + name })

	src, err := os.ReadFile("src/abi.rs")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, m := range regexp.MustCompile(`pub const (\w+): [^=]+= ([^;]+);`).FindAllStringSubmatch(string(src), -1) {
		consts[m[1]] = strings.Trim(m[2], `"`)
	}
	// abi::VERSION is the C SDK's WASMGATE_ABI_VERSION.
	sdktest.CheckConstants(t, func(name string) (string, string) {
		if name == "ABI_VERSION" {
			name = "VERSION"
		}
		return consts[name], "abi::" + name
	})
	if consts["MODULE_NAME"] != abi.ModuleName || consts["VERSION_MARKER"] != abi.VersionMarker {
		t.Errorf("MODULE_NAME %q, VERSION_MARKER %q", consts["MODULE_NAME"], consts["VERSION_MARKER"])
	}
	var names []string
	for _, m := range regexp.MustCompile(`pub const \w+: &str = "(\w+)";`).FindAllStringSubmatch(string(src[strings.Index(string(src), "pub mod func"):]), -1) {
		names = append(names, m[1])
	}
	var wantNames []string
	for _, f := range abi.Functions() {
		wantNames = append(wantNames, f.Name)
	}
	slices.Sort(names)
	slices.Sort(wantNames)
	if !slices.Equal(names, wantNames) {
		t.Errorf("abi::func names %v, want %v", names, wantNames)
	}
}

// rustType is the wasm type of a Rust parameter type: pointers are i32.
func rustType(t *testing.T, ty string) string {
	switch {
	case ty == "i32" || strings.HasPrefix(ty, "*const ") || strings.HasPrefix(ty, "*mut "):
		return "i32"
	case ty == "i64" || ty == "f64":
		return ty
	}
	t.Errorf("unexpected Rust type %q in an import", ty)
	return ty
}

// TestModuleShape checks what the examples export and import: a WASI
// reactor (_initialize, no _start), the marker, exactly the hooks plugin!
// was given, and imports of "wasmgate" and "wasi_snapshot_preview1" only.
func TestModuleShape(t *testing.T) {
	mods := examples(t)
	for name, hooks := range map[string]string{"headers": "on_init,on_request,on_response", "api_key": "on_init,on_request"} {
		sdktest.CheckExampleShape(t, name, mods[name], hooks)
		// rustc's cdylib wraps every export to run the constructors on each
		// call unless _initialize takes them over: no wrappers left.
		b, _ := os.ReadFile(mods[name])
		if strings.Contains(string(b), "command_export") {
			t.Errorf("%s has command_export wrappers: the constructors would run on every hook call", name)
		}
	}
}

// TestImportSignatures builds a plugin that refers to every function of
// wasmgate::sys, as a crate depending on the SDK by path with its exports
// written by hand (and reactor!), and has the gateway's loader check the
// signatures the compiler gave them and the module's shape.
func TestImportSignatures(t *testing.T) {
	cargo, rustc := toolchain(t)
	dir := t.TempDir()
	sdk, _ := filepath.Abs(".")
	var refs strings.Builder
	for _, f := range abi.Functions() {
		fmt.Fprintf(&refs, "        wasmgate::sys::%s as usize,\n", f.Name)
	}
	files := map[string]string{
		"Cargo.toml": fmt.Sprintf(`[package]
name = "imports"
version = "0.0.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
wasmgate = { path = %q }
`, sdk),
		"src/lib.rs": fmt.Sprintf(`wasmgate::reactor!();

static mut SINK: [usize; %d] = [0; %[1]d];

#[no_mangle]
pub extern "C" fn on_init(_config_len: i32) -> i32 {
    let fns = [
%s    ];
    unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!(SINK), fns) };
    0
}
`, len(abi.Functions()), refs.String()),
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target := filepath.Join(targetDir(), "imports")
	sdktest.Run(t, dir, cargoEnv(rustc), cargo, "build", "--offline", "--release", "--target", "wasm32-wasi", "--target-dir", target)
	mod := filepath.Join(target, "wasm32-wasi", "release", "imports.wasm")
	sdktest.CheckImportsEveryHostFunction(t, mod)
	b, _ := os.ReadFile(mod)
	if strings.Contains(string(b), "command_export") {
		t.Error("reactor! left command_export wrappers")
	}
}

// TestNativeUnitTests runs the crate's own tests (JSON, batch codec, query
// parsing, buffer convention, checks made before a host call) natively.
func TestNativeUnitTests(t *testing.T) {
	if testing.Short() {
		t.Skip("a native cargo build; skipped in -short mode")
	}
	cargo, rustc := toolchain(t)
	out := sdktest.Run(t, ".", cargoEnv(rustc), cargo, "test", "--offline", "--target-dir", filepath.Join(targetDir(), "native"))
	if !strings.Contains(out, "test result: ok.") {
		t.Fatalf("cargo test:\n%s", out)
	}
}

// TestExamplesEndToEnd loads both example plugins into a gateway and
// checks what a client and the upstream see (sdktest.HeadersAPIKeySuite,
// which the C examples pass too).
func TestExamplesEndToEnd(t *testing.T) {
	mods := examples(t)
	sdktest.HeadersAPIKeySuite(t, sdktest.Lang{Tag: "Rust", Name: "rust", Numbers: true}, mods["headers"], mods["api_key"])
}

// TestConfigErrors checks that on_init's errors reach the operator: the
// gateway refuses the config with the plugin's message.
func TestConfigErrors(t *testing.T) {
	mods := examples(t)
	sdktest.HeadersAPIKeyConfigErrors(t, mods["headers"], mods["api_key"])
}

// probeModule builds testdata/probe, a test plugin that fails in each way a
// hook can or reports what the SDK's wrappers returned.
func probeModule(t *testing.T) string {
	t.Helper()
	cargo, rustc := toolchain(t)
	target := filepath.Join(targetDir(), "probe")
	sdktest.Run(t, "testdata/probe", cargoEnv(rustc), cargo, "build", "--offline", "--release", "--target", "wasm32-wasi", "--target-dir", target)
	return filepath.Join(target, "wasm32-wasi", "release", "probe.wasm")
}

// TestProbe drives the SDK's wrappers through a real gateway with
// testdata/probe: failures (an error, an error with the message the hook
// recorded itself, a panic, Stop without a local response) and how they
// reach the log, the Stop the SDK makes of a
// Continue after send_response, reads of the request (method, path, query,
// client address, repeated headers, body and body ranges), the KV store,
// randomness and time, the codes of the gateway functions, the response
// functions in on_response, and an outbound batch.
func TestProbe(t *testing.T) {
	p := sdktest.StartProbe(t, probeModule(t))
	p.WaitLogged(t, "the log line of Plugin::initialize", "probe initialize: time ok")
	p.CheckFailures(t, []sdktest.Failure{
		{Path: "/probe/fail", Log: "told to fail"},
		{Path: "/probe/recorded", Log: "plugin said: recorded by the hook itself)"}, // HookError::recorded keeps it
		{Path: "/probe/panic", Log: "panic: panicked at 'boom at /probe/panic'"},
		{Path: "/probe/stop", Log: "on_request returned Action::Stop without a successful send_response"},
	})

	hits := p.Upstream.Hits()
	if r := tck.Do(t, "GET", p.URL("/probe/send-then-continue"), nil, nil); r.Status != 201 || string(r.Body) != "made" {
		t.Errorf("Continue after send_response: %d %q, want the local response", r.Status, r.Body)
	}
	if p.Upstream.Hits() != hits {
		t.Error("the upstream was called after send_response")
	}

	p.CheckReport(t, `["X-Multi"]`)
	p.CheckOnResponse(t)
	p.CheckFetch(t)
}
