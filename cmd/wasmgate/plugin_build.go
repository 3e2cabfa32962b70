package main

// `wasmgate plugin build`: detect a plugin project's language, run its
// toolchain with the flags a wasmgate plugin needs, check the module.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"
)

const buildUsage = `usage: wasmgate plugin build [flags] [DIR]

Builds the plugin project in DIR (default .) to a WebAssembly module, then
checks it as wasmgate plugin check does. The language is detected:

  Cargo.toml                          Rust:  RUSTC=/usr/bin/rustc /usr/bin/cargo build --offline --release --target wasm32-wasi
  package.json using assemblyscript   AssemblyScript: npx --no asc assembly/index.ts --config asconfig.json --target release
                                      (npm install first when node_modules lacks the compiler or the SDK)
  go.mod requiring the SDK, or .go    Go:    GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath
  files importing it (a package of
  the wasmgate module)
  *.c (and a Makefile)                C:     clang --target=wasm32-wasi -mexec-model=reactor -O2 -Wl,--strip-debug
                                             -I SDK/sdk/c *.c SDK/sdk/c/wasmgate.c

The module is written to DIR/NAME.wasm (-o to choose), NAME being the
project's: go.mod's module (or DIR's name), Cargo.toml's package name,
package.json's name, the Makefile's NAME = (or DIR's name).

The tools: $WASMGATE_GO or go on PATH; $WASMGATE_CARGO and $WASMGATE_RUSTC,
else Debian's /usr/bin/cargo and /usr/bin/rustc (a rustup toolchain usually
has no wasm32-wasi target); $WASMGATE_CLANG or clang on PATH; npx and npm on
PATH. A missing one is named with the line that installs it, and the build
exits 1. The C SDK is --sdk DIR, $WASMGATE_SDK, the Makefile's
WASMGATE_SDK, or the wasmgate checkout DIR is in.

Flags:
`

// cFlags are clang's flags for a plugin (sdk/c/README.md).
var cFlags = []string{"--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wl,--strip-debug"}

// Install lines for the toolchains (the packages the SDKs' READMEs name).
const (
	installRust = "apt-get install -y rustc cargo libstd-rust-dev-wasm32 lld"
	installC    = "apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32"
	installNode = "apt-get install -y nodejs npm"
)

// installGo is how to get Go: Debian's golang-go is older than
// //go:wasmexport (Go 1.24).
func installGo(version string) string {
	file := "go" + version + "." + runtime.GOOS + "-" + runtime.GOARCH + ".tar.gz"
	return "curl -LO https://go.dev/dl/" + file + " && tar -C /usr/local -xzf " + file +
		" && export PATH=$PATH:/usr/local/go/bin"
}

// toolchainError is a missing tool, with how to install it.
type toolchainError struct {
	what, problem string
	install       []string // lines to run
	note          string
}

func (e *toolchainError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the %s toolchain is missing: %s\ninstall it (Debian/Ubuntu, as root):\n", e.what, e.problem)
	for _, l := range e.install {
		fmt.Fprintf(&b, "    %s\n", l)
	}
	if e.note != "" {
		b.WriteString(e.note + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// tool finds a tool: the environment variable's path, else def (a name
// looked up on PATH, or an absolute path).
func tool(env, def string) (string, error) {
	p := def
	if env != "" && os.Getenv(env) != "" {
		p = os.Getenv(env)
	}
	found, err := exec.LookPath(p)
	if err != nil {
		switch {
		case env != "" && os.Getenv(env) != "":
			return "", fmt.Errorf("$%s=%s: not an executable file", env, p)
		case filepath.IsAbs(p):
			return "", fmt.Errorf("%s not found", p)
		}
		return "", fmt.Errorf("%s not found on PATH", p)
	}
	return found, nil
}

// shownTool is how a tool is shown in the echoed command: its name when
// PATH found it, else its path.
func shownTool(env, def, found string) string {
	if (env == "" || os.Getenv(env) == "") && !filepath.IsAbs(def) {
		return def
	}
	return found
}

// project is a plugin project to build.
type project struct {
	dir, lang, name string
	sdk             string // the wasmgate checkout, when the build needs it (C)
}

// detectLang finds the project's language, or says why none fits.
func detectLang(dir string) (string, error) {
	has := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	if has("Cargo.toml") {
		return "rust", nil
	}
	if has("package.json") {
		b, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err != nil {
			return "", err
		}
		if bytes.Contains(b, []byte(`"assemblyscript"`)) {
			return "assemblyscript", nil
		}
	}
	if has("go.mod") {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err != nil {
			return "", err
		}
		if !bytes.Contains(b, []byte(sdkModule)) {
			return "", fmt.Errorf("%s does not require %s: not a wasmgate plugin (the Go SDK is %s/sdk/go)",
				filepath.Join(dir, "go.mod"), sdkModule, sdkModule)
		}
		return "go", nil
	}
	goFiles, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range goFiles {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(`"`+sdkModule+`/sdk/go"`)) {
			return "go", nil
		}
	}
	if cs, _ := filepath.Glob(filepath.Join(dir, "*.c")); len(cs) > 0 {
		return "c", nil
	}
	return "", fmt.Errorf("%s: no plugin project found (want Cargo.toml, package.json with assemblyscript, go.mod with %s or .go files importing its sdk/go, or .c files)", dir, sdkModule)
}

var (
	cargoName     = regexp.MustCompile(`(?m)^\s*name\s*=\s*"([^"]+)"`)
	makefileName  = regexp.MustCompile(`(?m)^NAME\s*[:?]?=\s*(\S+)\s*$`)
	makefileSDK   = regexp.MustCompile(`(?m)^WASMGATE_SDK\s*[:?]?=\s*(\S+)\s*$`)
	cargoPackage  = regexp.MustCompile(`(?m)^\s*\[package\]\s*$`)
	tomlSection   = regexp.MustCompile(`(?m)^\s*\[`)
	goModuleTrail = regexp.MustCompile(`/v[0-9]+$`)
)

// safeModuleName is a name a module file may have: no path, no leading
// dash (a flag to a tool), nothing a shell or make would split.
var safeModuleName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$`)

// projectName is the name the module is written under: the project's own
// name (its build file's), or DIR's, or "plugin", whichever is the first
// that is a plain file name: a build file cannot send the output elsewhere.
func projectName(dir, lang string) string {
	for _, n := range []string{declaredName(dir, lang), filepath.Base(dir)} {
		if safeModuleName.MatchString(n) && !strings.Contains(n, "..") {
			return n
		}
	}
	return "plugin"
}

// declaredName is the name the project's build file gives it, or DIR's.
func declaredName(dir, lang string) string {
	base := filepath.Base(dir)
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	switch lang {
	case "go":
		if m := modulePath(filepath.Join(dir, "go.mod")); m != "" {
			return path0(goModuleTrail.ReplaceAllString(m, ""))
		}
	case "rust":
		s := read("Cargo.toml")
		if loc := cargoPackage.FindStringIndex(s); loc != nil {
			sec := s[loc[1]:]
			if next := tomlSection.FindStringIndex(sec); next != nil {
				sec = sec[:next[0]]
			}
			if m := cargoName.FindStringSubmatch(sec); m != nil {
				return m[1]
			}
		}
	case "assemblyscript":
		var p struct{ Name string }
		if json.Unmarshal([]byte(read("package.json")), &p) == nil && p.Name != "" {
			if _, n, ok := strings.Cut(p.Name, "/"); ok {
				return n
			}
			return p.Name
		}
	case "c":
		if m := makefileName.FindStringSubmatch(read("Makefile")); m != nil {
			return m[1]
		}
	}
	return base
}

// path0 is the last element of a slash-separated path.
func path0(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func pluginBuild(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("plugin build", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, buildUsage)
		flags.PrintDefaults()
	}
	out := flags.String("o", "", "the module to write (default DIR/NAME.wasm)")
	langFlag := flags.String("lang", "", "the language, instead of detecting it: go, rust, c or assemblyscript")
	sdkFlag := flags.String("sdk", "", "the wasmgate checkout holding sdk/ (C; default: $WASMGATE_SDK, the Makefile's WASMGATE_SDK, else found)")
	cfgFlag := flags.String("config", "", "also instantiate the module and run on_init with this config (YAML or JSON, a file or inline), as plugin check -config")
	interp := flags.Bool("interpreter", false, "check with wazero's interpreter instead of its compiler")
	pos, err := parseInterspersed(flags, args)
	if err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmgate plugin build: "+format+"\n", a...)
		return code
	}
	if len(pos) > 1 {
		fmt.Fprint(stderr, "usage: wasmgate plugin build [flags] [DIR] (-h for more)\n")
		return 2
	}
	dir := "."
	if len(pos) == 1 {
		dir = pos[0]
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return fail(2, "%s: %v", dir, errors.Unwrap(err))
	}
	var cfg []byte
	if *cfgFlag != "" {
		if cfg, err = readConfigArg(*cfgFlag); err != nil {
			return fail(2, "--config: %v", err)
		}
		if cfg == nil {
			cfg = []byte("{}")
		}
	}
	lang := *langFlag
	if lang == "as" || lang == "ts" {
		lang = "assemblyscript"
	}
	switch {
	case lang == "":
		if lang, err = detectLang(dir); err != nil {
			return fail(1, "%v", err)
		}
	case !slices.Contains(langs, lang):
		return fail(2, "--lang %q: want one of %s", lang, strings.Join(langs, ", "))
	}
	p := &project{dir: dir, lang: lang, name: projectName(dir, lang)}
	if *out == "" {
		*out = filepath.Join(dir, p.name+".wasm")
	}
	absOut, err := filepath.Abs(*out)
	if err != nil {
		return fail(1, "%v", err)
	}

	start := time.Now()
	var buildErr error
	switch lang {
	case "go":
		buildErr = buildGo(p, absOut, stdout, stderr)
	case "rust":
		buildErr = buildRust(p, absOut, stdout, stderr)
	case "c":
		buildErr = buildC(p, absOut, *sdkFlag, stdout, stderr)
	case "assemblyscript":
		buildErr = buildAS(p, absOut, stdout, stderr)
	}
	if buildErr != nil {
		return fail(1, "%v", buildErr)
	}
	st, err := os.Stat(absOut)
	if err != nil {
		return fail(1, "the build wrote no module: %v", err)
	}
	fmt.Fprintf(stdout, "built %s (%s, %d bytes) in %s\n\n", *out, langNames[lang], st.Size(), roundDuration(time.Since(start)))

	r, err := wasm.NewRuntime(wasm.Options{Interpreter: *interp, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail(1, "%v", err)
	}
	defer r.Close(context.Background())
	if !checkModule(r, *out, checkOptions{config: cfg, interpreter: *interp, pages: wasm.DefaultMemoryPages}, stdout, stderr) {
		return 1
	}
	return 0
}

// runTool runs a build command in dir, echoing it first; its output goes
// to stderr. hint, when the command fails, may add what is likely missing.
func runTool(dir string, env []string, stdout, stderr io.Writer, hint func(output string) string, name, shown string, args ...string) error {
	fmt.Fprintf(stdout, "$ (cd %s && %s)\n", dir, strings.Join(slices.Concat(env, []string{shown}, args), " "))
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var captured bytes.Buffer
	cmd.Stdout = io.MultiWriter(stderr, &captured)
	cmd.Stderr = io.MultiWriter(stderr, &captured)
	if err := cmd.Run(); err != nil {
		msg := fmt.Sprintf("%s failed: %v", filepath.Base(name), err)
		if hint != nil {
			if h := hint(captured.String()); h != "" {
				msg += "\n" + h
			}
		}
		return errors.New(msg)
	}
	return nil
}

func buildGo(p *project, out string, stdout, stderr io.Writer) error {
	goBin, err := tool("WASMGATE_GO", "go")
	if err != nil {
		return &toolchainError{what: "Go", problem: err.Error(), install: []string{installGo(goVersionOf(p.dir))},
			note: "(Go 1.24 or later: //go:wasmexport; Debian's golang-go is older. $WASMGATE_GO names another go.)"}
	}
	return runTool(p.dir, []string{"GOOS=wasip1", "GOARCH=wasm"}, stdout, stderr, nil,
		goBin, shownTool("WASMGATE_GO", "go", goBin), "build", "-buildmode=c-shared", "-trimpath", "-o", out, ".")
}

// goVersionOf is the go line of the go.mod governing dir.
func goVersionOf(dir string) string {
	abs, _ := filepath.Abs(dir)
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return sdkGoVersion(d)
		}
		if filepath.Dir(d) == d {
			return sdkGoVersion("")
		}
	}
}

func buildRust(p *project, out string, stdout, stderr io.Writer) error {
	note := "(wasmgate uses Debian's /usr/bin/cargo and /usr/bin/rustc, or $WASMGATE_CARGO and $WASMGATE_RUSTC: a rustup toolchain, in ~/.cargo/bin, usually has no wasm32-wasi target.)"
	cargo, err := tool("WASMGATE_CARGO", "/usr/bin/cargo")
	if err != nil {
		return &toolchainError{what: "Rust", problem: err.Error(), install: []string{installRust}, note: note}
	}
	rustc, err := tool("WASMGATE_RUSTC", "/usr/bin/rustc")
	if err != nil {
		return &toolchainError{what: "Rust", problem: err.Error(), install: []string{installRust}, note: note}
	}
	lib, err := exec.Command(rustc, "--print", "target-libdir", "--target", "wasm32-wasi").Output()
	libdir := strings.TrimSpace(string(lib))
	std, _ := filepath.Glob(filepath.Join(libdir, "libstd-*.rlib"))
	if err != nil || len(std) == 0 {
		return &toolchainError{what: "Rust", problem: rustc + " has no wasm32-wasi standard library", install: []string{installRust}, note: note}
	}
	hint := func(output string) string {
		if strings.Contains(output, "rust-lld") || strings.Contains(output, "linker") && strings.Contains(output, "not found") {
			return "the wasm linker is missing; install it with: " + "apt-get install -y lld"
		}
		return ""
	}
	if err := runTool(p.dir, []string{"RUSTC=" + rustc}, stdout, stderr, hint,
		cargo, cargo, "build", "--offline", "--release", "--target", "wasm32-wasi"); err != nil {
		return err
	}
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		target = filepath.Join(p.dir, "target")
	} else if !filepath.IsAbs(target) {
		target = filepath.Join(p.dir, target)
	}
	built := filepath.Join(target, "wasm32-wasi", "release", strings.ReplaceAll(p.name, "-", "_")+".wasm")
	b, err := os.ReadFile(built)
	if err != nil {
		return fmt.Errorf("cargo wrote no %s (is the crate a cdylib? [lib] crate-type = [\"cdylib\"]): %v", built, errors.Unwrap(err))
	}
	return os.WriteFile(out, b, 0o644)
}

func buildC(p *project, out, sdkFlag string, stdout, stderr io.Writer) error {
	clang, err := tool("WASMGATE_CLANG", "clang")
	if err != nil {
		return &toolchainError{what: "C", problem: err.Error(), install: []string{installC}}
	}
	srcs, _ := filepath.Glob(filepath.Join(p.dir, "*.c"))
	var names []string
	for _, s := range srcs {
		names = append(names, "./"+filepath.Base(s)) // a file named "-flag.c" stays a file
	}
	slices.Sort(names)
	include := "."
	if _, err := os.Stat(filepath.Join(p.dir, "wasmgate.h")); err != nil {
		sdk := sdkFlag
		if sdk == "" && os.Getenv("WASMGATE_SDK") == "" {
			if b, err := os.ReadFile(filepath.Join(p.dir, "Makefile")); err == nil {
				if m := makefileSDK.FindSubmatch(b); m != nil && !bytes.Contains(m[1], []byte("$")) {
					sdk = string(m[1])
					if !filepath.IsAbs(sdk) {
						sdk = filepath.Join(p.dir, sdk)
					}
				}
			}
		}
		abs, _ := filepath.Abs(p.dir)
		if sdk, err = findSDK(sdk, abs); err != nil {
			return err
		}
		if err := checkSDKLang(sdk, "c"); err != nil {
			return err
		}
		include = filepath.Join(sdk, "sdk", "c")
		if !slices.Contains(names, "./wasmgate.c") {
			src := filepath.Join(include, "wasmgate.c")
			if !filepath.IsAbs(src) {
				src = "./" + src
			}
			names = append(names, src)
		}
	}
	hint := func(output string) string {
		switch {
		case strings.Contains(output, "file not found") && (strings.Contains(output, "stdlib.h") || strings.Contains(output, "string.h") || strings.Contains(output, "wasi/")),
			strings.Contains(output, "crt1-reactor.o"), strings.Contains(output, "-lc"):
			return "wasi-libc (the WASI C library) is missing; install the C toolchain with: " + installC
		case strings.Contains(output, "libclang_rt.builtins-wasm32"):
			return "the wasm32 compiler runtime is missing; install it with: apt-get install -y libclang-rt-dev-wasm32"
		case strings.Contains(output, "wasm-ld"):
			return "the wasm linker (wasm-ld) is missing; install it with: apt-get install -y lld"
		}
		return ""
	}
	args := slices.Concat(cFlags, []string{"-I", include, "-o", out}, names)
	return runTool(p.dir, nil, stdout, stderr, hint, clang, shownTool("WASMGATE_CLANG", "clang", clang), args...)
}

func buildAS(p *project, out string, stdout, stderr io.Writer) error {
	if _, err := tool("", "node"); err != nil {
		return &toolchainError{what: "AssemblyScript", problem: err.Error(), install: []string{installNode}}
	}
	npx, err := tool("WASMGATE_NPX", "npx")
	if err != nil {
		return &toolchainError{what: "AssemblyScript", problem: err.Error(), install: []string{installNode}}
	}
	if _, err := os.Stat(filepath.Join(p.dir, "assembly", "index.ts")); err != nil {
		return fmt.Errorf("%s: no assembly/index.ts, the entry file the build compiles", p.dir)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "asconfig.json")); err != nil {
		return fmt.Errorf(`%s: no asconfig.json (the SDK's compiler options: write {"extends": "./node_modules/@wasmgate/sdk-assemblyscript/asconfig.json"})`, p.dir)
	}
	_, ascErr := os.Stat(filepath.Join(p.dir, "node_modules", ".bin", "asc"))
	_, sdkErr := os.Stat(filepath.Join(p.dir, "node_modules", "@wasmgate", "sdk-assemblyscript", "assembly", "index.ts"))
	if ascErr != nil || sdkErr != nil {
		npm, err := tool("WASMGATE_NPM", "npm")
		if err != nil {
			return &toolchainError{what: "AssemblyScript", problem: err.Error(), install: []string{installNode}}
		}
		hint := func(string) string {
			return "npm could not install the project's packages (the AssemblyScript compiler comes from the npm registry; the SDK from package.json's file: path)"
		}
		if err := runTool(p.dir, nil, stdout, stderr, hint, npm, shownTool("WASMGATE_NPM", "npm", npm), "install", "--no-audit", "--no-fund"); err != nil {
			return err
		}
	}
	return runTool(p.dir, nil, stdout, stderr, nil, npx, shownTool("WASMGATE_NPX", "npx", npx),
		"--no", "asc", "assembly/index.ts", "--config", "asconfig.json", "--target", "release", "-o", out)
}
