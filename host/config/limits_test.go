package config

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// plugin returns a config with one plugin whose config is the YAML value v.
func plugin(v string) string {
	return "plugins:\n  - name: p\n    module: p.wasm\n    config: " + v + "\n"
}

// laughs returns the anchors of a "billion laughs": *l9 is a list of 10^9
// strings in a few hundred bytes.
func laughs() string {
	b := "x-l0: &l0 lol\n"
	for i := 1; i <= 9; i++ {
		b += "x-l" + string(rune('0'+i)) + ": &l" + string(rune('0'+i)) + " [" + strings.Repeat("*l"+string(rune('0'+i-1))+", ", 10) + "]\n"
	}
	return b
}

// mergeLaughs is laughs with merge keys: each level merges the one below 40
// times, which yields ten keys but visits 10 * 40^4 of them (merges nest at
// most four lists deep).
func mergeLaughs() string {
	b := "x-m0: &m0 {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}\n"
	for i := 1; i <= 4; i++ {
		b += "x-m" + string(rune('0'+i)) + ": &m" + string(rune('0'+i)) + " {<<: [" + strings.Repeat("*m"+string(rune('0'+i-1))+", ", 40) + "]}\n"
	}
	return b
}

// at returns the position of the first occurrence of sub in s.
func at(s, sub string) Pos {
	i := strings.Index(s, sub)
	if i < 0 {
		panic("no " + sub)
	}
	return posAt([]byte(s), i)
}

// TestLimits feeds Parse inputs that are too large, too deep, not text or
// not YAML: each must be rejected with errors that all name a line and a
// column, never accepted with parts missing and never a panic.
func TestLimits(t *testing.T) {
	bigList := plugin("["+strings.Repeat("1,", maxNodes+50_000)+"1]") + ups + "routes: [{name: r, upstream: nope, match: {path: /}}]\n"
	bomb := laughs() + plugin("*l9")
	routeBomb := laughs() + ups + "routes: [{name: r, upstream: u, match: {path: /, hosts: *l9}}]\n"
	mergeBomb := mergeLaughs() + "log: *m4\n"
	longText := "x-s: &s '" + strings.Repeat("x", 3<<20) + "'\n" + plugin("["+strings.Repeat("*s, ", maxTextBytes/(3<<20)+1)+"]")
	deepList := plugin(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000))
	deepMap := plugin(strings.Repeat("{a: ", 10_000) + "1" + strings.Repeat("}", 10_000))
	var deepBlock strings.Builder
	deepBlock.WriteString("plugins:\n- name: p\n  module: p.wasm\n  config:\n")
	for i := range 2 * maxDepth {
		deepBlock.WriteString(strings.Repeat(" ", 4+i) + "a:\n")
	}
	tooLarge := "# " + strings.Repeat("x", maxFileBytes)
	garbage := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	errs := "log: {" + strings.Repeat("bad: 1, ", 2*maxErrors)
	for i := range 2 * maxErrors {
		errs += "k" + strings.Repeat("x", i) + ": 1, "
	}
	errs += "}\n"

	tests := []struct {
		name, yaml string
		want       string // in the message of one of the errors
		at         Pos    // of that error, when not zero
	}{
		// Budgets.
		{"1.1M-item list in a plugin config", bigList, "config too large: more than 1048576 keys and values", Pos{Line: 4}},
		{"billion laughs in a plugin config", bomb, "config too large: more than 1048576 keys and values once alias *l9 is expanded", at(bomb, "*l9\n")},
		{"billion laughs in route hosts", routeBomb, `expected a string for hosts, got a list`, Pos{}},
		{"merge keys", mergeBomb, "config too large: more than 1048576 keys and values once alias *m4 is expanded", at(mergeBomb, "*m4\n")},
		{"aliases of a long string", longText, "config too large: more than 67108864 bytes of text once alias *s is expanded", Pos{}},
		{"self-merge", "log: &l {<<: *l}\n", "merge keys (<<) nested too deeply in log", Pos{1, 14}},
		{"alias in its own anchor", plugin("&a [1, *a]"), "alias *a is used inside its own anchor (at 4:13), which would make it endless", Pos{4, 20}},
		{"alias in its own mapping", plugin("&a {b: {c: *a}}"), "alias *a is used inside its own anchor (at 4:13), which would make it endless", Pos{4, 24}},
		{"file too large", tooLarge, "config too large: more than 4194304 bytes (4 MiB)", Pos{1, maxFileBytes + 1}},
		{"too many errors", errs, "too many problems: only the first 100 found are reported", Pos{}},

		// Nesting.
		{"10,000 levels of lists", deepList, "config nested too deeply: more than 100 levels", at(deepList, "[").add(maxDepth - 3)},
		{"10,000 levels of mappings", deepMap, "config nested too deeply: more than 100 levels", Pos{}},
		{"200 levels of block mappings", deepBlock.String(), "config nested too deeply: more than 100 levels", Pos{102, 102}},
		{"yaml.v3's depth limit", strings.Repeat("[", 10_001), "YAML syntax error: exceeded max depth of 10000", Pos{1, 1}},
		{"yaml.v3's depth limit in a list", strings.Repeat("- ", 10_001) + "x\n", "YAML syntax error: exceeded max depth of 10000", Pos{1, 1}},

		// Not text.
		{"binary garbage", string(garbage), "", Pos{}},
		{"PNG header", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "config is not UTF-8 text: invalid byte 0x89", Pos{1, 1}},
		{"UTF-16", "\xff\xfel\x00o\x00g\x00", "config is not UTF-8 text: invalid byte 0xff", Pos{1, 1}},
		{"NUL bytes", "log: {level: info}\n\x00\x00\x00", "character U+0000 is not allowed in YAML", Pos{2, 1}},
		{"NUL in a value", "log: {level: \"in\x00fo\"}\n", "character U+0000 is not allowed in YAML", Pos{1, 17}},
		{"DEL", "log: {level: info\x7f}\n", "character U+007F is not allowed in YAML", Pos{1, 18}},
		{"C1 control", "log: {level: info\u0080}\n", "character U+0080 is not allowed in YAML", Pos{1, 18}},
		{"invalid UTF-8 in a value", "log:\n  level: \"inf\xff\"\n", "config is not UTF-8 text: invalid byte 0xff", Pos{2, 14}},
		{"invalid UTF-8 in a key", "log:\n  lév\xc3el: info\n", "config is not UTF-8 text: invalid byte 0xc3", Pos{2, 6}},
		{"after a BOM", "\ufefflog: {level: \"\xc0\"}\n", "config is not UTF-8 text: invalid byte 0xc0", Pos{1, 15}},
		{"after CR line breaks", "log:\r  level: x\r\n  access_log: \"\xfe\"\n", "invalid byte 0xfe", Pos{3, 16}},

		// Syntax.
		{"tab indentation", "log:\n\tlevel: info\n", "YAML syntax error: found character that cannot start any token", Pos{2, 1}},
		{"tab after spaces", "log:\n  level: info\n\t access_log: x\n", "YAML syntax error: found a tab character that violates indentation", Pos{3, 1}},
		{"tab at the top", "\tlog: {}\n", "YAML syntax error: found character that cannot start any token", Pos{1, 1}},
		{"bad character", "log: {level: @x}\n", "YAML syntax error: found character that cannot start any token", Pos{1, 14}},
		{"unclosed flow mapping", "log: {}\nadmin: {token: x\n", "YAML syntax error: did not find expected ',' or '}'", Pos{2, 1}},
		{"unclosed quote", "log: {}\nadmin:\n  token: 'x\n", "YAML syntax error: found unexpected end of stream", Pos{3, 3}},
		{"bad indentation", "log:\n  level: info\n access_log: x\n", "YAML syntax error: did not find expected key", Pos{3, 2}},
		{"list item in a mapping", "upstreams:\n  - name: u\n  targets: []\n", "YAML syntax error: did not find expected '-' indicator", Pos{2, 3}},
		{"mapping in a value", "log: level: info\n", "YAML syntax error: mapping values are not allowed in this context", Pos{1, 1}},
		{"second directive", "%YAML 1.1\n%YAML 1.1\n---\nlog: {}\n", "YAML syntax error: found duplicate %YAML directive", Pos{2, 1}},
		{"unknown alias", "x-a: &a {}\nlog: *ab\n", "YAML syntax error: unknown anchor 'ab' referenced", Pos{2, 6}},
		{"bad escape", "log:\n  level: \"\\q\"\n", "YAML syntax error: found unknown escape character", Pos{2, 3}},
		{"past the last line", "log:\n  level: 'x", "YAML syntax error: found unexpected end of stream", Pos{2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.yaml))
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("err = %.300v (%T), want an ErrorList", err, err)
			}
			if c != nil {
				t.Errorf("config not nil with errors")
			}
			checkErrors(t, "t.yaml", []byte(tt.yaml), list)
			for _, e := range list {
				if strings.Contains(e.Msg, tt.want) {
					if tt.at.Line > 0 && (e.Line != tt.at.Line || tt.at.Col > 0 && e.Col != tt.at.Col) {
						t.Errorf("%q at %d:%d, want %d:%d", e.Msg, e.Line, e.Col, tt.at.Line, tt.at.Col)
					}
					return
				}
			}
			t.Errorf("no error says %q in:\n%.2000v", tt.want, err)
		})
	}
}

// add returns p moved n columns right.
func (p Pos) add(n int) Pos { return Pos{p.Line, p.Col + n} }

// checkErrors checks what every error Parse returns must have: the file, a
// line and a column in data, and a message that is no recovered panic.
func checkErrors(t *testing.T, file string, data []byte, list ErrorList) {
	t.Helper()
	lines := posAt(data, len(data)).Line
	if len(list) > maxErrors+1 {
		t.Errorf("%d errors, want at most %d", len(list), maxErrors+1)
	}
	for _, e := range list {
		if e.File != file || e.Line < 1 || e.Line > lines || e.Col < 1 || e.Msg == "" || len(e.Msg) > 1200 {
			t.Fatalf("bad error %q: %#v (input has %d lines)", e.Error(), e, lines)
		}
		if strings.Contains(e.Msg, "internal error") {
			t.Fatalf("recovered panic: %v", e) // a bug, even though Parse survived it
		}
	}
}

func TestLoadTooLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	data := []byte("log: {}\n" + strings.Repeat("#\n", maxFileBytes))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	p := posAt(data, maxFileBytes)
	if want := fmt.Sprintf("%s:%d:%d: config too large: more than 4194304 bytes (4 MiB)", path, p.Line, p.Col); err == nil || err.Error() != want {
		t.Fatalf("err = %.300v, want %s", err, want)
	}
}

func TestClip(t *testing.T) {
	c, err := Parse("t.yaml", []byte("log: {level: \""+strings.Repeat("é", 5000)+"\"}\n"))
	var list ErrorList
	if !errors.As(err, &list) || c != nil || len(list) != 1 {
		t.Fatalf("err = %.300v", err)
	}
	msg := list[0].Msg
	if len(msg) > 1100 || !strings.HasPrefix(msg, `bad level "éé`) || !strings.Contains(msg, "bytes left out") || !strings.HasSuffix(msg, `éé" (want one of: debug, info, warn, error)`) {
		t.Errorf("msg = %q", msg)
	}
}
