package main

// Tests of `wasmgate plugin new` through the real binary: a project of
// each language builds with `plugin build` and passes its own CASES.yaml.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot is the wasmgate checkout the tests run in.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// needTools skips (or fails in CI) when a language's toolchain is missing.
func needTools(t *testing.T, lang string) {
	t.Helper()
	var tools []string
	switch lang {
	case "go":
		tools = []string{goTool()}
	case "rust":
		tools = []string{"/usr/bin/cargo", "/usr/bin/rustc"}
	case "c":
		tools = []string{"clang"}
	case "assemblyscript":
		tools = []string{"node", "npm", "npx"}
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, tool+" not installed: the "+lang+" template cannot be built")
		}
	}
	if lang == "c" {
		out, err := exec.Command("clang", "--target=wasm32-wasi", "-print-file-name=crt1-reactor.o").Output()
		if p := strings.TrimSpace(string(out)); err != nil || !filepath.IsAbs(p) {
			skipOrFail(t, "wasi-libc not installed (clang finds no crt1-reactor.o)")
		}
	}
}

// TestPluginNewBuildTest: for each language, plugin new writes a project
// that plugin build builds and checks, whose CASES.yaml passes with plugin
// test, and whose config.yaml and request.http work with plugin run.
func TestPluginNewBuildTest(t *testing.T) {
	root := repoRoot(t)
	for _, lang := range langs {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			needTools(t, lang)
			name := "hello-" + lang
			dir := filepath.Join(t.TempDir(), name)
			// The Go toolchain of the tests, whatever PATH says.
			env := []string{"WASMGATE_GO=" + goTool()}
			code, stdout, stderr := runPluginCmd(t, "", env, "plugin", "new", "--lang", lang, "--sdk", root, name, dir)
			if code != 0 {
				t.Fatalf("plugin new: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			mustContain(t, "plugin new's output", stdout, "wrote the ", filepath.Join(dir, "CASES.yaml"),
				"wasmgate plugin build "+dir, "wasmgate plugin test "+filepath.Join(dir, name+".wasm"))
			for _, f := range []string{"CASES.yaml", "README.md", "config.yaml", "request.http", ".gitignore"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("no %s: %v", f, err)
				}
			}
			readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
			mustContain(t, "README.md", string(readme), "wasmgate plugin build .", "wasmgate plugin test "+name+".wasm CASES.yaml", root)

			code, stdout, stderr = runPluginCmd(t, dir, env, "plugin", "build")
			if code != 0 {
				if lang == "assemblyscript" && strings.Contains(stderr, "npm could not install") {
					skipOrFail(t, "npm could not install the AssemblyScript compiler (no registry?):\n"+stderr)
				}
				t.Fatalf("plugin build: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			mustContain(t, "plugin build's output", stdout, "$ (cd . && ", "built "+name+".wasm (", "result        ok: would be accepted",
				"hooks         on_init, on_request, on_response")

			code, stdout, stderr = runPluginCmd(t, dir, nil, "plugin", "test", name+".wasm", "CASES.yaml")
			if code != 0 || !strings.Contains(stdout, "ok: 3 passed (CASES.yaml)") {
				t.Errorf("plugin test: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}

			code, stdout, stderr = runPluginCmd(t, dir, nil, "plugin", "run", name+".wasm", "--config", "config.yaml", "--request", "request.http")
			if code != 0 {
				t.Fatalf("plugin run: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			mustContain(t, "plugin run's output", stdout,
				"    header   ~ X-Plugin: spoofed by the client → "+name+"\n",
				"  on_request  info   on_request /hello\n",
				`header_set(response, "X-Plugin", "`+name+`") → 0`)
		})
	}
}

// fakeCheckout makes a directory that looks like a wasmgate checkout to
// plugin new: go.mod, sdk/ABI.md and each SDK's marker file.
func fakeCheckout(t *testing.T, langs ...string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"go.mod":     "module github.com/wasmgate/wasmgate\n\ngo 1.99.1\n",
		"sdk/ABI.md": "# ABI\n",
	}
	for _, l := range langs {
		switch l {
		case "go":
			files["sdk/go/plugin.go"] = "package wasmgate\n"
		case "rust":
			files["sdk/rust/Cargo.toml"] = "[package]\nname = \"wasmgate\"\n"
		case "c":
			files["sdk/c/wasmgate.h"] = "\n"
		case "assemblyscript":
			files["sdk/assemblyscript/package.json"] = `{"devDependencies": {"assemblyscript": "9.9.9"}}`
		}
	}
	for p, body := range files {
		p = filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, p, body)
	}
	return root
}

// TestPluginNewInCheckout: a project inside a checkout finds it from its
// directory and refers to the SDK by a relative path; a Go one is a
// package of the checkout's module (no go.mod of its own).
func TestPluginNewInCheckout(t *testing.T) {
	root := fakeCheckout(t, langs...)
	plugins := filepath.Join(root, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(plugins, filepath.FromSlash(p)))
		if err != nil {
			t.Error(err)
		}
		return string(b)
	}
	env := []string{"WASMGATE_SDK="}
	for _, lang := range langs {
		code, stdout, stderr := runPluginCmd(t, plugins, env, "plugin", "new", "--lang", lang, "in-"+lang)
		if code != 0 || !strings.Contains(stdout, "using the SDK of the wasmgate checkout "+root+":") {
			t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", lang, code, stdout, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(plugins, "in-go", "go.mod")); err == nil {
		t.Error("a Go project inside the checkout has a go.mod of its own")
	}
	mustContain(t, "in-go/README.md", read("in-go/README.md"), "a package of its module")
	mustContain(t, "in-go/main.go", read("in-go/main.go"), `"github.com/wasmgate/wasmgate/sdk/go"`, "//go:build wasip1", "hello from in-go")
	mustContain(t, "in-rust/Cargo.toml", read("in-rust/Cargo.toml"), `name = "in-rust"`, `wasmgate = { path = "../../sdk/rust" }`)
	mustContain(t, "in-c/Makefile", read("in-c/Makefile"), "NAME = in-c\n", "WASMGATE_SDK ?= ../..\n", "\t$(CC) $(CFLAGS) -I $(WASMGATE_SDK)/sdk/c")
	mustContain(t, "in-assemblyscript/package.json", read("in-assemblyscript/package.json"),
		`"@wasmgate/sdk-assemblyscript": "file:../../sdk/assemblyscript"`, `"assemblyscript": "9.9.9"`)

	// Outside the checkout: absolute paths, and the Go project a module of
	// its own replacing the SDK's.
	out := filepath.Join(t.TempDir(), "out-go")
	code, stdout, stderr := runPluginCmd(t, "", env, "plugin", "new", "--sdk", root, "out-go", out)
	if code != 0 {
		t.Fatalf("outside: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	gomod, _ := os.ReadFile(filepath.Join(out, "go.mod"))
	mustContain(t, "out-go/go.mod", string(gomod), "module out-go\n", "go 1.99.1\n", "replace github.com/wasmgate/wasmgate => "+root+"\n")
	// --sdk may name the checkout's sdk directory too.
	code, _, stderr = runPluginCmd(t, "", env, "plugin", "new", "--lang", "c", "--sdk", filepath.Join(root, "sdk"), "out-c", filepath.Join(t.TempDir(), "c"))
	if code != 0 {
		t.Errorf("--sdk ROOT/sdk: exit %d\n%s", code, stderr)
	}
}

// TestPluginNewErrors: bad names, languages and directories, and an SDK
// that cannot be found, are refused with the reason.
func TestPluginNewErrors(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	full := filepath.Join(tmp, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(full, "keep.txt"), "mine")
	noRust := fakeCheckout(t, "go")
	tests := []struct {
		name string
		dir  string // working directory ("": the test's)
		env  []string
		args []string
		code int
		want string
	}{
		{name: "no name", args: nil, code: 2, want: "usage: wasmgate plugin new"},
		{name: "bad name", args: []string{"Bad_Name"}, code: 2, want: `name "Bad_Name": want lower-case letters, digits and dashes`},
		{name: "bad language", args: []string{"--lang", "cobol", "x"}, code: 2, want: `--lang "cobol": want one of go, rust, c, assemblyscript`},
		{name: "not empty", args: []string{"--sdk", root, "x", full}, code: 1, want: "is not empty (--force writes into it anyway)"},
		{name: "not a checkout", args: []string{"--sdk", tmp, "x", filepath.Join(tmp, "a")}, code: 1, want: "--sdk " + tmp + " is not a wasmgate checkout (no sdk/ABI.md in it)"},
		{name: "bad WASMGATE_SDK", env: []string{"WASMGATE_SDK=" + tmp}, args: []string{"x", filepath.Join(tmp, "b")}, code: 1, want: "$WASMGATE_SDK " + tmp + " is not a wasmgate checkout"},
		{name: "no SDK found", dir: "/", env: []string{"WASMGATE_SDK="}, args: []string{"x", filepath.Join(tmp, "c")}, code: 1,
			want: "cannot find the wasmgate SDK: pass --sdk DIR or set WASMGATE_SDK to a wasmgate checkout"},
		{name: "no such language SDK", args: []string{"--lang", "rust", "--sdk", noRust, "x", filepath.Join(tmp, "d")}, code: 1,
			want: "has no Rust SDK (sdk/rust/Cargo.toml is missing)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPluginCmd(t, tt.dir, tt.env, append([]string{"plugin", "new"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d (want %d)\nstderr:\n%s\nwant it to contain %q\nstdout:\n%s", code, tt.code, stderr, tt.want, stdout)
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(full, "keep.txt")); string(b) != "mine" {
		t.Errorf("a refused plugin new changed the directory")
	}
	// --force writes into a directory that is not empty, keeping other files.
	code, _, stderr := runPluginCmd(t, "", nil, "plugin", "new", "--force", "--lang", "c", "--sdk", root, "x", full)
	if b, _ := os.ReadFile(filepath.Join(full, "keep.txt")); code != 0 || string(b) != "mine" {
		t.Errorf("--force: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(full, "plugin.c")); err != nil {
		t.Errorf("--force wrote no plugin.c: %v", err)
	}
}

// TestPluginNewRefusesAnUnquotableSDKPath: the SDK path goes unquoted into
// go.mod, a Makefile, Cargo.toml and package.json, so a path with a space
// or a quote is refused with a clear message instead of a broken project.
func TestPluginNewRefusesAnUnquotableSDKPath(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(t.TempDir(), "my sdk")
	if err := os.Symlink(repo, spaced); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := pluginNew([]string{"--lang", "go", "--sdk", spaced, "p", filepath.Join(t.TempDir(), "p")}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "holds ' '") {
		t.Fatalf("exit %d, stderr %q: want a refusal naming the space", code, stderr.String())
	}
}
