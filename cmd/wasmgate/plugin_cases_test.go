package main

// Tests of `wasmgate plugin test` through the real binary: the example
// plugins pass their CASES.yaml, and a failing case says what differed.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPluginTestExamples runs plugins/*/CASES.yaml against the built
// example plugins: every case passes.
func TestPluginTestExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "plugins", "*", "CASES.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("%d CASES.yaml under plugins/, want at least jwt-auth, api-key, rewrite and json-transform: %v", len(files), files)
	}
	for _, cases := range files {
		dir := filepath.Dir(cases)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wasm := filepath.Join(dir, name+".wasm")
			if name == "raw-wat" {
				wasm = filepath.Join(dir, "plugin.wasm")
			}
			examplePlugin(t, filepath.Join(name, filepath.Base(wasm)))
			code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "test", wasm, cases)
			if code != 0 || stderr != "" || !strings.Contains(stdout, "ok: ") || strings.Contains(stdout, "FAIL") {
				t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			// Every case ran.
			src, err := os.ReadFile(cases)
			if err != nil {
				t.Fatal(err)
			}
			if want, got := strings.Count(string(src), "\n  - name: "), strings.Count(stdout, "PASS  "); got != want {
				t.Errorf("%d cases passed, the file has %d:\n%s", got, want, stdout)
			}
		})
	}
}

// failingCases exercise every kind of expectation against raw-wat-like
// behaviour (chattyWat): each of the first case's checks fails.
const failingCases = `
config: {anything: [1, 2]}
cases:
  - name: everything wrong
    request:
      method: POST
      path: /x?y=1
      json: {a: 1}
    upstream:
      status: 201
      json: {user: {name: ada, roles: [a, b]}, n: 1.0}
    expect:
      status: 200
      local: true
      headers:
        X-Wat: "2"
        Content-Type: ~
        X-Missing: {present: true}
        X-Wat-Again: {contains: z}
      body: {json: {user: {name: bob, roles: [a]}, n: 2, extra: true}, contains: nowhere}
      upstream_received:
        method: GET
        path: /x
        headers: {X-Wat: {matches: "^[0-9]{2}$"}}
        body: '{"a":2}'
      log: [not logged]
      consumer: someone

  - name: all right
    request: {path: /ok}
    upstream: {body: "line one\nline two\n"}
    expect:
      status: 200
      local: false
      headers: {X-Wat: "1", X-Nope: ~}
      body: "line one\nline two\n"
      upstream_received: {path: /ok, headers: {X-Wat: "1"}}
      log: [hello from wat]

  - name: a multi-line body that differs
    upstream: {body: "line one\nline 2\nline three\n"}
    expect:
      body: "line one\nline two\nline three\n"

  - name: a failure that was not expected
    config: {}
    expect:
      error: boom
`

// TestPluginTestFailures: failing cases are reported one problem a line,
// with a diff for bodies, and the exit status is 1; -run picks cases.
func TestPluginTestFailures(t *testing.T) {
	dir := t.TempDir()
	wasm := assembleWat(t, dir, "chatty", chattyWat, false)
	cases := filepath.Join(dir, "CASES.yaml")
	writeTestFile(t, cases, failingCases)
	code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "test", wasm, cases)
	if code != 1 || stderr != "" {
		t.Fatalf("exit %d (want 1)\nstderr:\n%s\nstdout:\n%s", code, stderr, stdout)
	}
	mustContain(t, "the output", stdout,
		"FAIL  everything wrong (",
		"      "+cases+":4\n",
		"      status: got 201, want 200\n",
		"      local: the request went upstream, want the plugin to answer it\n",
		`      header X-Wat: got "1", want "2"`,
		`      header Content-Type: got "application/json", want it absent`,
		"      header X-Missing: got absent, want it present",
		"      header X-Wat-Again: got absent, want it to contain \"z\"",
		`      body: does not contain "nowhere"; got:`,
		`      body.extra: missing, want true`,
		`      body.n: got 1, want 2`,
		`      body.user.name: got "ada", want "bob"`,
		`      body.user.roles: got 2 elements, want 1: ["a","b"]`,
		"      upstream_received.method: got POST, want GET",
		`      upstream_received.path: got "/x?y=1", want "/x"`,
		`      upstream_received.header X-Wat: got "1", want it to match "^[0-9]{2}$"`,
		"      upstream_received.body: not equal (- want, + got):\n          {\n        -   \"a\": 2\n        +   \"a\": 1\n          }\n",
		`      log: no line contains "not logged"`,
		"        on_request info: hello from wat",
		`      consumer: got "", want "someone"`,
		"PASS  all right (",
		"FAIL  a multi-line body that differs (",
		"      body: not equal (- want, + got):\n          line one\n        - line two\n        + line 2\n          line three\n",
		"FAIL  a failure that was not expected (",
		`      error: the plugin did not fail, want a failure containing "boom"`,
		"FAIL: 3 of 4 case(s) failed, 1 passed ("+cases+")\n",
	)

	// -run picks the passing case only; -v shows its exchange.
	code, stdout, _ = runPluginCmd(t, "", nil, "plugin", "test", "-run", "^all right$", "-v", wasm, cases)
	if code != 0 {
		t.Fatalf("-run: exit %d\n%s", code, stdout)
	}
	mustContain(t, "the -run output", stdout, "PASS  all right (", "    | on_request continue (",
		"    |   on_request  log(info, \"hello from wat\") → 0", "ok: 1 passed, 3 skipped (-run)")
	code, stdout, _ = runPluginCmd(t, "", nil, "plugin", "test", "-run", "nothing matches", wasm, cases)
	if code != 1 || !strings.Contains(stdout, `no case matches -run "nothing matches"`) {
		t.Errorf("-run matching nothing: exit %d\n%s", code, stdout)
	}

	// A trap where none was expected names the failure; one expected passes.
	trap := assembleWat(t, dir, "trap", trapWat, false)
	trapCases := filepath.Join(dir, "trap.yaml")
	writeTestFile(t, trapCases, "cases:\n  - name: expected\n    expect: {error: unreachable, status: 502, body: {json: {error: plugin_failed, kind: trap}}}\n  - name: unexpected\n    expect: {status: 200}\n")
	code, stdout, _ = runPluginCmd(t, "", nil, "plugin", "test", trap, trapCases)
	if code != 1 {
		t.Errorf("trap cases: exit %d\n%s", code, stdout)
	}
	mustContain(t, "the trap output", stdout, "PASS  expected (", "FAIL  unexpected (", "      the plugin failed: ", "      status: got 502, want 200")
}

// TestPluginTestBadCases: a CASES.yaml that does not read exits 2 and
// names the problem.
func TestPluginTestBadCases(t *testing.T) {
	dir := t.TempDir()
	wasm := assembleWat(t, dir, "chatty", chattyWat, false)
	tests := []struct{ name, yaml, want string }{
		{"unknown key", "cases:\n  - name: a\n    expect: {stauts: 200}\n", `CASES.yaml:3: unknown key "stauts"`},
		{"unknown header form", "cases:\n  - expect: {headers: {X-A: {equals: b}}}\n", `CASES.yaml:2: header X-A: unknown key "equals"`},
		{"bad regexp", "cases:\n  - expect: {headers: {X-A: {matches: \"(\"}}}\n", "CASES.yaml:2: header X-A: matches: error parsing regexp"},
		{"no cases", "config: {}\n", "no cases (want a list under cases:)"},
		{"not yaml", "cases: [\n", "did not find expected"},
		{"duplicate names", "cases:\n  - name: a\n  - name: a\n", `two cases named "a"`},
		{"body and json", "cases:\n  - request: {body: x, json: {}}\n", "request: body and json both given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"), "CASES.yaml")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			writeTestFile(t, p, tt.yaml)
			code, stdout, stderr := runPluginCmd(t, "", nil, "plugin", "test", wasm, p)
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d (want 2)\nstderr:\n%s\nwant it to contain %q\nstdout:\n%s", code, stderr, tt.want, stdout)
			}
		})
	}
	code, _, stderr := runPluginCmd(t, "", nil, "plugin", "test", wasm)
	if code != 2 || !strings.Contains(stderr, "usage: wasmgate plugin test [flags] FILE.wasm CASES.yaml") {
		t.Errorf("one argument: exit %d\n%s", code, stderr)
	}
	code, _, stderr = runPluginCmd(t, "", nil, "plugin", "test", wasm, filepath.Join(dir, "missing.yaml"))
	if code != 2 || !strings.Contains(stderr, "missing.yaml: no such file") {
		t.Errorf("a missing file: exit %d\n%s", code, stderr)
	}
}
