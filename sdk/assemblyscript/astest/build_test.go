// Package astest tests the AssemblyScript SDK (sdk/assemblyscript) from Go:
// it installs the pinned compiler (npm ci, skipped when node_modules
// already matches package-lock.json), builds the examples and the SDK's
// test guest with the README's build line, checks the modules' shape
// against sdk/abi, and runs them in the real gateway (host/server).
//
// Without node and npm the tests that need them skip, except with CI=true,
// where they fail.
package astest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/sdk/assemblyscript/asnpm"
	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// sdkDir is sdk/assemblyscript, where package.json and asconfig.json are:
// the build runs there.
const sdkDir = ".."

// module is one .wasm the tests build: its entry file, relative to sdkDir.
type module struct{ name, entry string }

// modules are the examples (README.md shows their build lines) and the
// SDK's test guest.
var modules = []module{
	{"headers", "examples/headers/index.ts"},
	{"api-key", "examples/api-key/index.ts"},
	{"sdkcheck", "astest/testdata/sdkcheck/index.ts"},
}

// extraModules are built with modules, in the same parallel build, by
// wasmPath; other files add to them in init (examples_test.go: the JSON
// transform and aggregation examples) and check them in tests of their
// own, so TestModuleShape's list stays as it is.
var extraModules []module

// ascArgs is the README's build line for entry, after "npx": the options
// are asconfig.json's (runtime, exported start, --use of the runtime
// replacements) and its release target's.
func ascArgs(entry, out string) []string {
	return []string{"asc", entry, "--config", "asconfig.json", "--target", "release", "-o", out}
}

var (
	outDir    string // where the modules are built, removed by TestMain
	buildOnce sync.Once
	buildSkip string // why the build cannot run here (missing tools)
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmgate-as-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// wasmPath builds every module once (npm ci first if needed) and returns
// the path of the named one; it skips the test without node and npm.
func wasmPath(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(buildAll)
	if buildSkip != "" {
		sdktest.SkipOrFail(t, buildSkip)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(outDir, name+".wasm")
}

func buildAll() {
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			buildSkip = tool + " not installed (node 20 and npm build the AssemblyScript SDK)"
			return
		}
	}
	if err := npmCI(); err != nil {
		buildErr = err
		return
	}
	all := append(slices.Clone(modules), extraModules...)
	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, m := range all {
		wg.Go(func() {
			errs[i] = run(3*time.Minute, "npx", ascArgs(m.entry, filepath.Join(outDir, m.name+".wasm"))...)
		})
	}
	wg.Wait()
	buildErr = errors.Join(errs...)
}

// npmCI installs package-lock.json's packages, unless node_modules
// already holds exactly those versions.
func npmCI() error { return asnpm.Install(sdkDir, 5*time.Minute) }

// run runs a command in sdkDir, bounded in time, and returns its error
// with its output.
func run(bound time.Duration, name string, args ...string) error {
	_, err := sdktest.Exec(bound, sdkDir, nil, name, args...)
	return err
}
