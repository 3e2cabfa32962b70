package main

// `wasmgate plugin new`: a plugin project from templates/, in Go, Rust, C
// or AssemblyScript, wired to the SDK of a wasmgate checkout.

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/template"
)

//go:embed all:templates/common all:templates/go all:templates/rust all:templates/c all:templates/assemblyscript
var templatesFS embed.FS

const newUsage = `usage: wasmgate plugin new [--lang go|rust|c|assemblyscript] [--sdk DIR] [--force] NAME [DIR]

Writes a plugin project to DIR (default ./NAME): a plugin that sets a
header on every request and response (a skeleton to edit), its build file,
CASES.yaml (its tests, for wasmgate plugin test), config.yaml and
request.http (for wasmgate plugin run) and a README with the commands.

The project uses the SDK of a wasmgate checkout (the directory that holds
sdk/): --sdk DIR, else $WASMGATE_SDK, else the checkout DIR is in, the
current directory is in, or this binary was built in. A project inside the
checkout refers to it by a relative path (a Go project is then a package of
the checkout's module, as the example plugins are); one outside, by an
absolute path, written in one place (go.mod's replace, Cargo.toml's path
dependency, the Makefile's WASMGATE_SDK, package.json's file: dependency).

Flags:
`

// langs are the languages of plugin new and plugin build.
var langs = []string{"go", "rust", "c", "assemblyscript"}

// langNames are their names in prose.
var langNames = map[string]string{"go": "Go", "rust": "Rust", "c": "C", "assemblyscript": "AssemblyScript"}

// validName is what a plugin may be called: a plugin name in the config,
// a metric label, a module and crate name.
var validName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// templateData is what the templates see (templates/README.md).
type templateData struct {
	Name, Ident, Lang, LangName string
	SDK                         string
	InRepo                      bool
	GoVersion                   string
	ASCVersion                  string
	Wasm                        string
	Build                       string
	SDKNote                     string
}

func pluginNew(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("plugin new", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, newUsage)
		flags.PrintDefaults()
	}
	lang := flags.String("lang", "go", "the language: go, rust, c or assemblyscript")
	sdkFlag := flags.String("sdk", "", "the wasmgate checkout whose sdk/ the project uses (default: $WASMGATE_SDK, else found)")
	force := flags.Bool("force", false, "write into DIR even if it is not empty (files of the template are overwritten)")
	pos, err := parseInterspersed(flags, args)
	if err != nil {
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "wasmgate plugin new: "+format+"\n", a...)
		return code
	}
	if len(pos) < 1 || len(pos) > 2 {
		fmt.Fprint(stderr, "usage: wasmgate plugin new [--lang go|rust|c|assemblyscript] [--sdk DIR] NAME [DIR] (-h for more)\n")
		return 2
	}
	name := pos[0]
	if !validName.MatchString(name) {
		return fail(2, "name %q: want lower-case letters, digits and dashes, starting with a letter (at most 63)", name)
	}
	if *lang == "as" || *lang == "ts" {
		*lang = "assemblyscript"
	}
	if !slices.Contains(langs, *lang) {
		return fail(2, "--lang %q: want one of %s", *lang, strings.Join(langs, ", "))
	}
	dir := name
	if len(pos) == 2 {
		dir = pos[1]
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fail(1, "%v", err)
	}
	if entries, err := os.ReadDir(absDir); err == nil && len(entries) > 0 && !*force {
		return fail(1, "%s is not empty (--force writes into it anyway)", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail(1, "%v", err)
	}
	sdk, err := findSDK(*sdkFlag, absDir)
	if err != nil {
		return fail(1, "%v", err)
	}
	if err := checkSDKLang(sdk, *lang); err != nil {
		return fail(1, "%v", err)
	}

	d := templateData{Name: name, Ident: strings.ReplaceAll(name, "-", "_"), Lang: *lang, LangName: langNames[*lang],
		Wasm: name + ".wasm", GoVersion: sdkGoVersion(sdk), ASCVersion: sdkASCVersion(sdk)}
	if rel, err := filepath.Rel(sdk, absDir); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
		d.InRepo = true
		up, _ := filepath.Rel(absDir, sdk)
		d.SDK = filepath.ToSlash(up)
	} else {
		d.SDK = filepath.ToSlash(sdk)
	}
	// The path is written unquoted into go.mod, a Makefile, Cargo.toml and
	// package.json: refuse what one of them would read otherwise.
	if i := strings.IndexFunc(d.SDK, func(r rune) bool { return r <= ' ' || strings.ContainsRune("\"'\\$#%`;&|<>*?(){}[]=", r) }); i >= 0 {
		return fail(1, "the SDK path %q holds %q, which go.mod, Makefiles, Cargo.toml or package.json would read otherwise: move the checkout (or --sdk) to a plain path", d.SDK, d.SDK[i])
	}
	d.Build = strings.Join(buildCommand(*lang, d.Wasm, d.SDK), " ")
	d.SDKNote = sdkNote(*lang, d)

	files, err := renderTemplates(*lang, d)
	if err != nil {
		return fail(1, "%v", err)
	}
	if err := os.MkdirAll(absDir, 0o755); err != nil {
		return fail(1, "%v", err)
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(absDir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fail(1, "%v", err)
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return fail(1, "%v", err)
		}
		written = append(written, f.path)
	}
	fmt.Fprintf(stdout, "wrote the %s plugin %q to %s, using the SDK of the wasmgate checkout %s:\n", langNames[*lang], name, dir, sdk)
	for _, f := range written {
		fmt.Fprintf(stdout, "  %s\n", filepath.Join(dir, filepath.FromSlash(f)))
	}
	wasmPath := filepath.Join(dir, d.Wasm)
	fmt.Fprintf(stdout, "\nnext:\n")
	fmt.Fprintf(stdout, "  wasmgate plugin build %s\n", dir)
	fmt.Fprintf(stdout, "  wasmgate plugin test %s %s\n", wasmPath, filepath.Join(dir, "CASES.yaml"))
	fmt.Fprintf(stdout, "  wasmgate plugin run %s --config %s --request %s\n", wasmPath,
		filepath.Join(dir, "config.yaml"), filepath.Join(dir, "request.http"))
	return 0
}

// sdkNote says, in the README, where the SDK comes from.
func sdkNote(lang string, d templateData) string {
	where := map[string]string{
		"go":             "go.mod's `replace` line",
		"rust":           "Cargo.toml's `wasmgate = { path = ... }` dependency",
		"c":              "the Makefile's `WASMGATE_SDK` (or `wasmgate plugin build --sdk DIR`, or `$WASMGATE_SDK`)",
		"assemblyscript": "package.json's `file:` dependency (run `npm install` after changing it)",
	}[lang]
	if lang == "go" && d.InRepo {
		return "The SDK is the one of the wasmgate checkout this project is in: the plugin is a package of its module, as the example plugins are (`plugins/build.sh` builds it too when it is under `plugins/`)."
	}
	return "The SDK comes from the wasmgate checkout at `" + d.SDK + "`: to use another, change " + where + "."
}

type renderedFile struct {
	path string
	data []byte
}

// renderTemplates renders templates/common and templates/LANG; a file
// that renders to nothing but space is not written.
func renderTemplates(lang string, d templateData) ([]renderedFile, error) {
	var files []renderedFile
	for _, root := range []string{"templates/common", "templates/" + lang} {
		err := fs.WalkDir(templatesFS, root, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			src, err := templatesFS.ReadFile(p)
			if err != nil {
				return err
			}
			t, err := template.New(p).Delims("[%", "%]").Option("missingkey=error").Parse(string(src))
			if err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			var out bytes.Buffer
			if err := t.Execute(&out, d); err != nil {
				return fmt.Errorf("template %s: %w", p, err)
			}
			if len(bytes.TrimSpace(out.Bytes())) == 0 {
				return nil
			}
			rel := strings.TrimSuffix(strings.TrimPrefix(p, root+"/"), ".tmpl")
			files = append(files, renderedFile{path: rel, data: out.Bytes()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(files, func(a, b renderedFile) int { return strings.Compare(a.path, b.path) })
	return files, nil
}

// ---- Finding the SDK ----

// sdkModule is the module path of a wasmgate checkout.
const sdkModule = "github.com/wasmgate/wasmgate"

// isSDKRoot reports whether dir is a wasmgate checkout: it holds
// sdk/ABI.md.
func isSDKRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "sdk", "ABI.md"))
	return err == nil
}

// findSDK returns the wasmgate checkout to use, as an absolute path: the
// flag's, $WASMGATE_SDK, or the first checkout holding one of from, the
// current directory or this binary.
func findSDK(flagValue string, from ...string) (string, error) {
	explicit := func(what, v string) (string, error) {
		abs, err := filepath.Abs(v)
		if err != nil {
			return "", err
		}
		switch {
		case isSDKRoot(abs):
			return abs, nil
		case filepath.Base(abs) == "sdk" && isSDKRoot(filepath.Dir(abs)):
			return filepath.Dir(abs), nil
		}
		return "", fmt.Errorf("%s %s is not a wasmgate checkout (no sdk/ABI.md in it)", what, v)
	}
	if flagValue != "" {
		return explicit("--sdk", flagValue)
	}
	if v := os.Getenv("WASMGATE_SDK"); v != "" {
		return explicit("$WASMGATE_SDK", v)
	}
	starts := slices.Clone(from)
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			starts = append(starts, filepath.Dir(exe))
		}
	}
	for _, s := range starts {
		for dir := s; ; dir = filepath.Dir(dir) {
			if isSDKRoot(dir) && modulePath(filepath.Join(dir, "go.mod")) == sdkModule {
				return dir, nil
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return "", errors.New("cannot find the wasmgate SDK: pass --sdk DIR or set WASMGATE_SDK to a wasmgate checkout (the directory holding sdk/)")
}

// checkSDKLang checks that the checkout has the language's SDK.
func checkSDKLang(sdk, lang string) error {
	need := map[string]string{
		"go":             "sdk/go/plugin.go",
		"rust":           "sdk/rust/Cargo.toml",
		"c":              "sdk/c/wasmgate.h",
		"assemblyscript": "sdk/assemblyscript/package.json",
	}[lang]
	if _, err := os.Stat(filepath.Join(sdk, filepath.FromSlash(need))); err != nil {
		return fmt.Errorf("the wasmgate checkout %s has no %s SDK (%s is missing)", sdk, langNames[lang], need)
	}
	return nil
}

// modulePath is the module line of a go.mod, "" when there is none.
func modulePath(gomod string) string {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// sdkGoVersion is the go line of the checkout's go.mod.
func sdkGoVersion(sdk string) string {
	b, err := os.ReadFile(filepath.Join(sdk, "go.mod"))
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "go" {
				return f[1]
			}
		}
	}
	return "1.26.8"
}

// sdkASCVersion is the AssemblyScript compiler the SDK pins.
func sdkASCVersion(sdk string) string {
	var p struct {
		Dev  map[string]string `json:"devDependencies"`
		Deps map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(sdk, "sdk", "assemblyscript", "package.json"))
	if err == nil && json.Unmarshal(b, &p) == nil {
		for _, m := range []map[string]string{p.Dev, p.Deps} {
			if v := m["assemblyscript"]; v != "" {
				return v
			}
		}
	}
	return "0.28.20"
}

// buildCommand is the command line plugin build runs for lang, as the
// README shows it (paths as the project sees them).
func buildCommand(lang, wasm, sdk string) []string {
	switch lang {
	case "go":
		return []string{"GOOS=wasip1", "GOARCH=wasm", "go", "build", "-buildmode=c-shared", "-trimpath", "-o", wasm, "."}
	case "rust":
		return []string{"RUSTC=/usr/bin/rustc", "/usr/bin/cargo", "build", "--offline", "--release", "--target", "wasm32-wasi"}
	case "c":
		return slices.Concat([]string{"clang"}, cFlags, []string{"-I", path.Join(sdk, "sdk/c"), "-o", wasm, "plugin.c", path.Join(sdk, "sdk/c/wasmgate.c")})
	case "assemblyscript":
		return []string{"npx", "--no", "asc", "assembly/index.ts", "--config", "asconfig.json", "--target", "release", "-o", wasm}
	}
	return nil
}
