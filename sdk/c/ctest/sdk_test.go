// Package ctest holds the Go tests of the C SDK (wasmgate.h and wasmgate.c
// in sdk/c; see its README.md), in a directory of their own because Go
// refuses a package directory holding .c files without cgo. They check the
// header's declarations against sdk/abi without a C toolchain, then, with
// Debian's clang, lld and wasi-libc, build the example plugins and a module
// importing every host function, load them into a real gateway and check
// what the plugins do end to end, and build and run the helpers' unit tests
// (tests/unit.c) natively. Without the toolchain those tests skip, except
// with CI=true.
package ctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// packages is what to install for the toolchain (Debian 12).
const packages = "apt-get install clang lld wasi-libc libclang-rt-dev-wasm32"

// cflags are the README's flags for a plugin, with every warning an error.
var cflags = []string{"--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wl,--strip-debug", "-Wall", "-Wextra", "-Werror", "-I", "."}

var (
	probeOnce sync.Once
	probeErr  string
)

// clang returns the compiler (WASMGATE_CLANG, else clang on PATH) once it
// has built a WASI reactor that uses libc, or skips the test.
func clang(t *testing.T) string {
	t.Helper()
	cc := os.Getenv("WASMGATE_CLANG")
	if cc == "" {
		p, err := exec.LookPath("clang")
		if err != nil {
			sdktest.SkipOrFail(t, "clang not installed ("+packages+")")
		}
		cc = p
	}
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmgate-c-probe")
		if err != nil {
			probeErr = err.Error()
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "probe.c")
		_ = os.WriteFile(src, []byte("#include <stdio.h>\n#include <stdlib.h>\n"+
			"__attribute__((export_name(\"probe\"))) int probe(int n) { char b[16]; char *p = malloc(n); "+
			"int r = snprintf(b, sizeof b, \"%d\", n) + (p != 0); free(p); return r; }\n"), 0o644)
		cmd := exec.Command(cc, "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-o", filepath.Join(dir, "probe.wasm"), src)
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Sprintf("%s cannot build a WASI reactor (%s): %v\n%s", cc, packages, err, out)
		}
	})
	if probeErr != "" {
		sdktest.SkipOrFail(t, probeErr)
	}
	return cc
}

// workDir holds the modules the tests build; TestMain removes it.
var workDir string

func TestMain(m *testing.M) {
	// Every path below is relative to sdk/c, where the SDK is.
	if err := os.Chdir(".."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d, err := os.MkdirTemp("", "wasmgate-test-c")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// build compiles sources (relative to sdk/c, the working directory) with wasmgate.c, with the
// README's flags, into the plugin name.wasm and returns its path.
func build(t *testing.T, name string, sources ...string) string {
	t.Helper()
	cc := clang(t)
	out := filepath.Join(workDir, name+".wasm")
	args := append(append(append([]string{}, cflags...), "-o", out), sources...)
	sdktest.Run(t, ".", nil, cc, append(args, "wasmgate.c")...)
	return out
}

var (
	examplesOnce sync.Once
	exampleMods  map[string]string
)

// examples builds the example plugins once per test binary.
func examples(t *testing.T) map[string]string {
	t.Helper()
	clang(t)
	examplesOnce.Do(func() {
		m := map[string]string{}
		for _, name := range []string{"headers", "api_key", "json_transform", "aggregate"} {
			m[name] = build(t, name, "examples/"+name+".c")
		}
		exampleMods = m
	})
	if exampleMods == nil {
		t.Fatal("the examples did not build (see the first test that built them)")
	}
	return exampleMods
}

// TestDeclarations checks wasmgate.h against sdk/abi: every host function
// with its exact signature and import name, and the codes, constants and
// limits. It needs no C toolchain.
func TestDeclarations(t *testing.T) {
	h, err := os.ReadFile("wasmgate.h")
	if err != nil {
		t.Fatal(err)
	}
	src := string(h)
	got := map[string]string{}
	re := regexp.MustCompile(`(?s)WASMGATE_IMPORT\((\w+)\)\s*(\w+)\s+wasmgate_(\w+)\(([^)]*)\);`)
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		if m[1] != m[3] {
			t.Errorf("wasmgate_%s imports %q", m[3], m[1])
		}
		var params []string
		for _, p := range strings.Split(m[4], ",") {
			if p = strings.TrimSpace(p); p != "" && p != "void" {
				params = append(params, cType(t, p))
			}
		}
		got[m[1]] = sdktest.FormatSignature(params, cType(t, m[2]))
	}
	sdktest.CheckSignatures(t, got, func(name string) string { return "wasmgate_" + name })

	defs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#define WASMGATE_(\w+) \(?(-?\d+(?: << \d+)?)\)?`).FindAllStringSubmatch(src, -1) {
		defs[m[1]] = m[2]
	}
	sdktest.CheckConstants(t, func(name string) (string, string) { return defs[name], "WASMGATE_" + name })
}

// cType is the wasm type of a C parameter or result: pointers (and the
// array parameter of rate_limit) are i32.
func cType(t *testing.T, decl string) string {
	switch {
	case strings.Contains(decl, "*") || strings.Contains(decl, "["):
		return "i32"
	case strings.HasPrefix(decl, "int32_t"):
		return "i32"
	case strings.HasPrefix(decl, "int64_t"):
		return "i64"
	case strings.HasPrefix(decl, "double"):
		return "f64"
	}
	t.Errorf("unexpected C type in %q", decl)
	return decl
}

// TestModuleShape checks what the examples export and import: a WASI
// reactor (_initialize, no _start), the marker, exactly the hooks they
// define, and imports of "wasmgate" and "wasi_snapshot_preview1" only.
func TestModuleShape(t *testing.T) {
	mods := examples(t)
	for name, hooks := range map[string]string{"headers": "on_init,on_request,on_response", "api_key": "on_init,on_request"} {
		sdktest.CheckExampleShape(t, name, mods[name], hooks)
	}
}

// TestImportSignatures builds a plugin that refers to every host function
// of wasmgate.h and has the gateway's loader check the signatures the
// compiler gave them.
func TestImportSignatures(t *testing.T) {
	clang(t)
	var refs strings.Builder
	for _, f := range abi.Functions() {
		fmt.Fprintf(&refs, "    (void (*)(void))wasmgate_%s,\n", f.Name)
	}
	src := filepath.Join(t.TempDir(), "imports.c")
	text := fmt.Sprintf(`#include "wasmgate.h"

static void (*volatile sink[])(void) = {
%s};

/* Never called: its volatile read keeps every import. */
WASMGATE_EXPORT(on_init) int32_t on_init(int32_t config_len) {
    return sink[(uint32_t)config_len %% %d] == 0;
}
`, refs.String(), len(abi.Functions()))
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sdktest.CheckImportsEveryHostFunction(t, build(t, "imports", src))
}

// TestNativeUnitTests builds tests/unit.c with wasmgate.c natively (with
// AddressSanitizer and UBSan when they link) and runs it.
func TestNativeUnitTests(t *testing.T) {
	cc := clang(t)
	exe := filepath.Join(t.TempDir(), "unit")
	args := []string{"-g", "-O1", "-Wall", "-Wextra", "-Werror", "-I", ".", "-o", exe, "tests/unit.c", "wasmgate.c"}
	san := append([]string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all"}, args...)
	if out, err := exec.Command(cc, san...).CombinedOutput(); err != nil {
		t.Logf("without sanitizers (%v: %s)", err, strings.TrimSpace(string(out)))
		sdktest.Run(t, ".", nil, cc, args...)
	}
	out := sdktest.Run(t, ".", nil, exe)
	if !strings.Contains(out, " passed, 0 failed") {
		t.Fatalf("tests/unit.c:\n%s", out)
	}
}

// TestExamplesEndToEnd loads both example plugins into a gateway and
// checks what a client and the upstream see (sdktest.HeadersAPIKeySuite,
// which the Rust examples pass too).
func TestExamplesEndToEnd(t *testing.T) {
	mods := examples(t)
	sdktest.HeadersAPIKeySuite(t, sdktest.Lang{Tag: "C", Name: "c"}, mods["headers"], mods["api_key"])
}

// TestConfigErrors checks that on_init's errors reach the operator: the
// gateway refuses the config with the plugin's message.
func TestConfigErrors(t *testing.T) {
	mods := examples(t)
	sdktest.HeadersAPIKeyConfigErrors(t, mods["headers"], mods["api_key"])
}

// TestProbe drives the SDK's helpers through a real gateway with
// testdata/probe.c: constructors running in _initialize, failures (wasmgate_fail, a trap) and how they reach the
// log, reads of the request (method, path, query and query parameters,
// client address, repeated headers, header names, body and body ranges),
// the KV store, randomness and time, the codes of the gateway functions,
// the response functions in on_response, and an outbound batch.
func TestProbe(t *testing.T) {
	p := sdktest.StartProbe(t, build(t, "probe", "ctest/testdata/probe.c"))
	p.WaitLogged(t, "the log line of a constructor", "probe constructor: time ok")
	p.WaitLogged(t, "the stdout line of a constructor", "probe stdout")
	p.CheckFailures(t, []sdktest.Failure{
		{Path: "/probe/fail", Log: "told to fail"},
		{Path: "/probe/trap", Log: "unreachable"},
	})
	p.CheckReport(t, `2`)
	p.CheckOnResponse(t)
	p.CheckFetch(t)
}
