package main

// Tests of `wasmgate plugin build`'s refusals through the real binary (a
// successful build of each language is TestPluginNewBuildTest's).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginBuildMissingToolchain: without its toolchain a project does
// not build, and the message names what is missing and the line that
// installs it.
func TestPluginBuildMissingToolchain(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	emptyPath := filepath.Join(tmp, "empty-path")
	if err := os.MkdirAll(emptyPath, 0o755); err != nil {
		t.Fatal(err)
	}
	// A rustc without the wasm32-wasi standard library (a rustup one, say).
	fakeRustc := filepath.Join(tmp, "rustc")
	writeTestFile(t, fakeRustc, "#!/bin/sh\necho "+filepath.Join(tmp, "no-such-libdir")+"\n")
	if err := os.Chmod(fakeRustc, 0o755); err != nil {
		t.Fatal(err)
	}
	project := func(lang string) string {
		dir := filepath.Join(tmp, lang)
		if code, _, stderr := runPluginCmd(t, "", nil, "plugin", "new", "--lang", lang, "--sdk", root, "p-"+lang, dir); code != 0 {
			t.Fatalf("plugin new --lang %s: exit %d\n%s", lang, code, stderr)
		}
		return dir
	}
	dirs := map[string]string{}
	for _, l := range langs {
		dirs[l] = project(l)
	}
	noPath := []string{"PATH=" + emptyPath, "WASMGATE_GO=", "WASMGATE_CLANG=", "WASMGATE_NPX=", "WASMGATE_NPM="}
	tests := []struct {
		name, lang string
		env        []string
		wants      []string
	}{
		{"go", "go", noPath, []string{
			"wasmgate plugin build: the Go toolchain is missing: go not found on PATH\ninstall it (Debian/Ubuntu, as root):\n",
			"    curl -LO https://go.dev/dl/go1.", "tar -C /usr/local -xzf go1.", "Debian's golang-go is older"}},
		{"go named", "go", []string{"WASMGATE_GO=" + filepath.Join(tmp, "nogo")}, []string{
			"the Go toolchain is missing: $WASMGATE_GO=" + filepath.Join(tmp, "nogo") + ": not an executable file"}},
		{"cargo", "rust", []string{"WASMGATE_CARGO=" + filepath.Join(tmp, "nocargo")}, []string{
			"the Rust toolchain is missing: $WASMGATE_CARGO=" + filepath.Join(tmp, "nocargo") + ": not an executable file",
			"    apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld\n", "a rustup toolchain"}},
		{"rustc without wasm32-wasi", "rust", []string{"WASMGATE_CARGO=" + fakeRustc, "WASMGATE_RUSTC=" + fakeRustc}, []string{
			"the Rust toolchain is missing: " + fakeRustc + " has no wasm32-wasi standard library",
			"    apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld\n"}},
		{"clang", "c", noPath, []string{
			"the C toolchain is missing: clang not found on PATH",
			"    apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32\n"}},
		{"node", "assemblyscript", noPath, []string{
			"the AssemblyScript toolchain is missing: node not found on PATH",
			"    apt-get install -y nodejs npm\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPluginCmd(t, dirs[tt.lang], tt.env, "plugin", "build")
			if code != 1 {
				t.Errorf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			mustContain(t, "stderr", stderr, tt.wants...)
			if _, err := os.Stat(filepath.Join(dirs[tt.lang], "p-"+tt.lang+".wasm")); err == nil {
				t.Errorf("a module was written")
			}
		})
	}
}

// TestPluginBuildErrors: no project, a Go module that is not a plugin,
// bad flags, a failing compile and a module the gateway would refuse.
func TestPluginBuildErrors(t *testing.T) {
	tmp := t.TempDir()
	mk := func(name string, files map[string]string) string {
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f, body := range files {
			writeTestFile(t, filepath.Join(dir, f), body)
		}
		return dir
	}
	empty := mk("empty", nil)
	notPlugin := mk("not-plugin", map[string]string{"go.mod": "module example.com/x\n\ngo 1.26\n", "main.go": "package main\nfunc main() {}\n"})
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing to build", []string{empty}, 1, "no plugin project found (want Cargo.toml, package.json with assemblyscript, go.mod with github.com/wasmgate/wasmgate"},
		{"not a plugin module", []string{notPlugin}, 1, "go.mod does not require github.com/wasmgate/wasmgate: not a wasmgate plugin"},
		{"no such directory", []string{filepath.Join(tmp, "nope")}, 2, "nope: no such file or directory"},
		{"bad language", []string{"--lang", "cobol", empty}, 2, `--lang "cobol": want one of go, rust, c, assemblyscript`},
		{"two directories", []string{empty, empty}, 2, "usage: wasmgate plugin build"},
		{"AssemblyScript without entry", []string{"--lang", "assemblyscript", empty}, 1, "no assembly/index.ts"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPluginCmd(t, "", nil, append([]string{"plugin", "build"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d (want %d)\nstderr:\n%s\nwant it to contain %q\nstdout:\n%s", code, tt.code, stderr, tt.want, stdout)
			}
		})
	}

	t.Run("c", func(t *testing.T) {
		needTools(t, "c")
		root := repoRoot(t)
		// A compile error: clang's message, and exit 1.
		broken := mk("broken", map[string]string{"plugin.c": "int on_request(void) { return nope; }\n"})
		code, _, stderr := runPluginCmd(t, "", nil, "plugin", "build", "--sdk", root, broken)
		if code != 1 || !strings.Contains(stderr, "nope") || !strings.Contains(stderr, "wasmgate plugin build: clang failed: exit status 1") {
			t.Errorf("a compile error: exit %d\n%s", code, stderr)
		}
		// It builds (the SDK's wasmgate.c brings the version marker), but
		// exports no hook: the check refuses it as the gateway would.
		bare := mk("bare", map[string]string{"plugin.c": "int helper(int x) { return x + 1; }\n", "Makefile": "NAME = bare-name\n"})
		code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "build", "--sdk", root, bare)
		if code != 1 || !strings.Contains(stderr, "bare-name.wasm: rejected") || !strings.Contains(stderr, `exports none of the hooks "on_init", "on_request", "on_response"`) {
			t.Errorf("a module without the ABI: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		mustContain(t, "stdout", stdout, "built "+filepath.Join(bare, "bare-name.wasm")+" (C, ", "result        rejected")
		// -o and --config: on_init judges the config.
		hello := filepath.Join(tmp, "hello-c")
		if code, _, stderr := runPluginCmd(t, "", nil, "plugin", "new", "--lang", "c", "--sdk", root, "hello-c", hello); code != 0 {
			t.Fatalf("plugin new: %s", stderr)
		}
		out := filepath.Join(tmp, "elsewhere.wasm")
		code, stdout, stderr = runPluginCmd(t, "", nil, "plugin", "build", "-o", out, "--config", "{heder: X}", hello)
		if code != 1 || !strings.Contains(stderr, `rejected: on_init rejected the config: unknown field "heder"`) {
			t.Errorf("--config: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if _, err := os.Stat(out); err != nil {
			t.Errorf("-o: %v", err)
		}
		code, stdout, _ = runPluginCmd(t, "", nil, "plugin", "build", "-o", out, "--config", "{header: X-Ok}", hello)
		if code != 0 || !strings.Contains(stdout, "on_init       accepted the config") {
			t.Errorf("a good config: exit %d\n%s", code, stdout)
		}
	})
}

// TestProjectNameStaysInTheProject: a build file cannot send the module
// outside the project or pass it to a tool as a flag.
func TestProjectNameStaysInTheProject(t *testing.T) {
	for _, c := range []struct{ lang, file, content, want string }{
		{"c", "Makefile", "NAME = ../../escape/owned\n", "my-proj"},
		{"c", "Makefile", "NAME = -o\n", "my-proj"},
		{"c", "Makefile", "NAME = fine_name\n", "fine_name"},
		{"assemblyscript", "package.json", `{"name": "@x/../../y"}`, "my-proj"},
		{"assemblyscript", "package.json", `{"name": "@scope/good"}`, "good"},
		{"rust", "Cargo.toml", "[package]\nname = \"../up\"\n", "my-proj"},
	} {
		dir := filepath.Join(t.TempDir(), "my-proj")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.file), []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := projectName(dir, c.lang); got != c.want {
			t.Errorf("%s %q: name %q, want %q", c.file, c.content, got, c.want)
		}
	}
}
