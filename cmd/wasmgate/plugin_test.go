package main

// Tests of `wasmgate plugin check` through the real binary (built by
// TestMain): the example plugins pass, and every kind of module the
// gateway refuses is refused with the runtime's own reason.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkBound bounds one `plugin check` run: compiling a Go plugin with
// wazero's compiler takes seconds on a busy machine.
const checkBound = 2 * time.Minute

// examplePlugins are the example modules, relative to plugins/.
var examplePlugins = []string{
	"noop/noop.wasm", "raw-wat/plugin.wasm", "jwt-auth/jwt-auth.wasm", "api-key/api-key.wasm",
	"rewrite/rewrite.wasm", "json-transform/json-transform.wasm", "aggregate/aggregate.wasm",
	"client-shape/client-shape.wasm",
}

// runCheck runs `wasmgate plugin check ARGS...` to completion.
func runCheck(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	p := startProc(t, testEnv(), wasmgateBin, append([]string{"plugin", "check"}, args...)...)
	code = p.wait(t, checkBound)
	return code, p.stdout.String(), p.stderr.String()
}

// skipOrFail skips a test for a missing prerequisite, except in CI.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: it must be there)", why)
	}
	t.Skip(why)
}

// examplePaths returns the built example plugins, or skips the test.
func examplePaths(t *testing.T) []string {
	t.Helper()
	var paths []string
	for _, m := range examplePlugins {
		p := filepath.Join("..", "..", "plugins", m)
		if _, err := os.Stat(p); err != nil {
			skipOrFail(t, "example plugins not built (bash plugins/build.sh): "+err.Error())
		}
		paths = append(paths, p)
	}
	return paths
}

// assembleWat assembles WAT source into dir/name.wasm. noCheck skips wabt's
// validation, to make modules only the engine can refuse.
func assembleWat(t *testing.T, dir, name, src string, noCheck bool) string {
	t.Helper()
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		skipOrFail(t, "wat2wasm (wabt) not installed")
	}
	in := filepath.Join(dir, name+".wat")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+".wasm")
	args := []string{in, "-o", out}
	if noCheck {
		args = append(args, "--no-check")
	}
	if msg, err := exec.Command("wat2wasm", args...).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, msg)
	}
	return out
}

// watFixture assembles host/wasm/testdata/NAME.wat, the runtime's own fault
// fixtures.
func watFixture(t *testing.T, dir, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "host", "wasm", "testdata", name+".wat"))
	if err != nil {
		t.Fatal(err)
	}
	return assembleWat(t, dir, name, string(src), false)
}

// TestPluginCheckExamples: every example plugin would be accepted, with
// its interface printed. The Go plugins are compiled with the interpreter
// (a compile of a few hundred ms instead of seconds); the smallest of each
// kind with the compiler too.
func TestPluginCheckExamples(t *testing.T) {
	paths := examplePaths(t)
	for _, run := range []struct {
		name  string
		args  []string
		files []string
	}{
		{"interpreter", []string{"-interpreter"}, paths},
		{"compiler", nil, paths[:2]}, // noop, raw-wat
	} {
		t.Run(run.name, func(t *testing.T) {
			code, stdout, stderr := runCheck(t, append(run.args, run.files...)...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s\nstdout:\n%s", code, stderr, stdout)
			}
			if n := strings.Count(stdout, "result        ok: would be accepted"); n != len(run.files) {
				t.Errorf("%d modules accepted, want %d:\n%s", n, len(run.files), stdout)
			}
			for _, f := range run.files {
				if !strings.Contains(stdout, f+"\n") {
					t.Errorf("output does not name %s", f)
				}
			}
			for _, want := range []string{"abi           v1", "wasmgate.config_get", "func (i32,i32)->i32",
				"wasmgate_abi_v1  func ()->()", "on_request       func ()->i32", "sha256        ",
				"WASI reactor", "engine        wazero-" + run.name} {
				if !strings.Contains(stdout, want) {
					t.Errorf("output lacks %q:\n%s", want, stdout)
				}
			}
			if run.name == "compiler" {
				// raw-wat, whole: the hand-written module's interface.
				for _, want := range []string{
					"hooks         on_init, on_request, on_response",
					"kind          plain module (no _initialize)",
					"memory        min 1 page (64 KiB), max 1 page (64 KiB)",
					"wasmgate.request_path   func (i32,i32)->i32",
					"wasmgate.header_add     func (i32,i32,i32,i32,i32)->i32",
					"wasmgate.send_response  func (i32,i32,i32)->i32",
					"interruption  instrumented",
				} {
					if !strings.Contains(stdout, want) {
						t.Errorf("raw-wat output lacks %q:\n%s", want, stdout)
					}
				}
			}
		})
	}
}

// TestPluginCheckConfig: with -config the module is instantiated and its
// on_init judges the config.
func TestPluginCheckConfig(t *testing.T) {
	paths := examplePaths(t)
	raw, jwt := paths[1], paths[2]
	code, stdout, stderr := runCheck(t, "-config", `{"any":"thing"}`, raw)
	if code != 0 || !strings.Contains(stdout, "on_init       accepted the config") {
		t.Errorf("raw-wat with a config: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "jwt.json")
	if err := os.WriteFile(cfg, []byte(`{"keys":[{"secret":"0123456789abcdef0123456789abcdef"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCheck(t, "-interpreter", "-config", "@"+cfg, jwt)
	if code != 0 || !strings.Contains(stdout, "on_init       accepted the config") {
		t.Errorf("jwt-auth with keys: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// A module without on_init checks no config, and says so.
	noInit := assembleWat(t, t.TempDir(), "noinit", `(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))`, false)
	code, stdout, stderr = runCheck(t, "-config", `{"any":"thing"}`, noInit)
	if code != 0 || !strings.Contains(stdout, "on_init       none: the config is not checked") || strings.Contains(stdout, "accepted the config") {
		t.Errorf("a module without on_init: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// jwt-auth requires keys: its on_init refuses, and says why.
	code, stdout, stderr = runCheck(t, "-interpreter", "-config", "{}", jwt)
	if code != 1 || !strings.Contains(stderr, jwt+": rejected: on_init rejected the config: ") ||
		!strings.Contains(stderr, "keys") || !strings.Contains(stdout, "result        rejected") {
		t.Errorf("jwt-auth without keys: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestPluginCheckRejects: each kind of module the gateway refuses exits 1
// with the runtime's reason naming the symbol.
func TestPluginCheckRejects(t *testing.T) {
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "plugin.wasm")
	if err := os.WriteFile(notWasm, []byte("#!/bin/sh\necho not a module\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		// stderr and stdout must contain these.
		stderr, stdout []string
	}{
		{name: "not wasm", path: notWasm,
			stderr: []string{notWasm + `: rejected: not a WebAssembly module: no \0asm magic number`}},
		{name: "missing file", path: filepath.Join(dir, "missing.wasm"),
			stderr: []string{"missing.wasm: rejected: open ", "no such file or directory"}},
		{name: "missing marker", path: watFixture(t, dir, "nomarker"),
			stderr: []string{`rejected: missing export "wasmgate_abi_v1"`}, stdout: []string{"abi           none"}},
		{name: "v2 marker", path: watFixture(t, dir, "v2"),
			stderr: []string{`rejected: module targets wasmgate ABI v2 (exports "wasmgate_abi_v2"); this gateway implements v1 ("wasmgate_abi_v1")`},
			stdout: []string{"abi           v2", "wasmgate_abi_v2  func ()->()"}},
		{name: "unknown import", path: watFixture(t, dir, "unknown_import"),
			stderr: []string{`rejected: unknown import "env"."foo"`}, stdout: []string{"env.foo  func ()->()"}},
		{name: "unknown host function", path: watFixture(t, dir, "unknown_host"),
			stderr: []string{`rejected: unknown import "wasmgate"."teleport"`}},
		{name: "wrong host signature", path: watFixture(t, dir, "badsig"),
			stderr: []string{`rejected: import "wasmgate"."request_method" has signature (i32)->i32, want (i32,i32)->i32`}},
		{name: "_start command", path: watFixture(t, dir, "start"),
			stderr: []string{`rejected: exports "_start" (a WASI command`}, stdout: []string{"kind          WASI command (exports _start)"}},
		{name: "several problems", path: assembleWat(t, dir, "several", `(module
  (import "env" "foo" (func))
  (memory (export "mem") 1))`, false),
			stderr: []string{"rejected (3 problems):", `  missing export "wasmgate_abi_v1"`, `  missing export "memory"`, `  unknown import "env"."foo"`}},
		{name: "engine refuses", path: assembleWat(t, dir, "badbody", `(module
  (memory (export "memory") 1)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i64.const 0)))`, true),
			// Inspect passes; the wazero compile finds the type error.
			stderr: []string{`badbody.wasm: rejected: plugin "badbody": `, "on_request", "i64"},
			stdout: []string{"abi           v1", "hooks         on_request"}},
		{name: "memory over the cap", path: assembleWat(t, dir, "bigmem", `(module
  (memory (export "memory") 600)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))`, false),
			stderr: []string{"rejected: the module needs 600 memory pages at start, over the cap of 512 pages (limits.memory_pages)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCheck(t, tt.path)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, want := range tt.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
			for _, want := range append(tt.stdout, tt.path+"\n", "result        rejected") {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout)
				}
			}
		})
	}

	// One bad module among good ones: all are checked, the exit says one failed.
	good := watFixture(t, dir, "noop")
	code, stdout, stderr := runCheck(t, good, notWasm, good)
	if code != 1 || strings.Count(stdout, "ok: would be accepted") != 2 || strings.Count(stderr, "rejected") != 1 {
		t.Errorf("mixed files: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestPluginCheckMemoryCap: -memory-pages is the cap the module is held to.
func TestPluginCheckMemoryCap(t *testing.T) {
	dir := t.TempDir()
	m := assembleWat(t, dir, "max8", `(module
  (memory (export "memory") 2 8)
  (func (export "wasmgate_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))`, false)
	if code, stdout, stderr := runCheck(t, "-memory-pages", "8", m); code != 0 ||
		!strings.Contains(stdout, "memory        min 2 pages (128 KiB), max 8 pages (512 KiB)") {
		t.Errorf("cap 8: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	code, _, stderr := runCheck(t, "-memory-pages", "4", m)
	if code != 1 || !strings.Contains(stderr, "rejected: the module declares a maximum of 8 memory pages, over the cap of 4 pages") {
		t.Errorf("cap 4: exit %d\nstderr:\n%s", code, stderr)
	}
}

func TestPluginCheckUsage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no subcommand", []string{"plugin"}, "usage: wasmgate plugin check"},
		{"unknown subcommand", []string{"plugin", "frobnicate"}, `unknown subcommand "frobnicate"`},
		{"no file", []string{"plugin", "check"}, "usage: wasmgate plugin check"},
		{"unknown flag", []string{"plugin", "check", "-frobnicate", "x.wasm"}, "flag provided but not defined"},
		{"bad config", []string{"plugin", "check", "-config", "{nope", "x.wasm"}, "-config is not valid JSON"},
		{"missing config file", []string{"plugin", "check", "-config", "@/nonexistent/c.json", "x.wasm"}, "no such file"},
		{"zero cap", []string{"plugin", "check", "-memory-pages", "0", "x.wasm"}, "want 1 to 65536"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runBin(t, testEnv(), tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d (want 2), stderr %q (want %q)", code, stderr, tc.stderr)
			}
		})
	}
}
