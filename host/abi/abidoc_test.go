package abi

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/host/httpsyntax"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// sdk/ABI.md is the contract guests are written from; sdk/abi declares it
// for Go and this package implements it. The tests below read the
// document's tables and check that the three say the same.

const abiDoc = "../../sdk/ABI.md"

// docSection returns the text of the section of sdk/ABI.md whose "## "
// heading starts with prefix, up to the next such heading.
func docSection(t *testing.T, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(abiDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range strings.Split(string(b), "\n## ")[1:] {
		if strings.HasPrefix(s, prefix) {
			return s
		}
	}
	t.Fatalf("%s has no section %q", abiDoc, prefix)
	return ""
}

// tableRows returns the cells of the rows of every table in text whose
// header row starts with the given column names, without the header and
// the delimiter rows.
func tableRows(text string, columns ...string) [][]string {
	var rows [][]string
	in := false
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case !in:
			in = len(cells) >= len(columns) && slices.Equal(cells[:len(columns)], columns)
		case strings.HasPrefix(cells[0], "---"):
		default:
			rows = append(rows, cells)
		}
	}
	return rows
}

// docFuncs reads the functions of the tables with the given first column
// (name, then signature) in text: "`header_get`" and
// "`(kind, name_ptr, name_len, buf, len) -> i32`". A parameter written
// without a type is an i32 (a pointer, a length, a kind), as everywhere in
// the document.
func docFuncs(t *testing.T, text, column string) map[string]sdkabi.Func {
	t.Helper()
	fs := map[string]sdkabi.Func{}
	for _, cells := range tableRows(text, column, "signature") {
		name := strings.Trim(cells[0], "`")
		sig := strings.Trim(cells[1], "`")
		params, results, ok := strings.Cut(sig, "->")
		params = strings.TrimSpace(params)
		if !ok || !strings.HasPrefix(params, "(") || !strings.HasSuffix(params, ")") {
			t.Errorf("%s: %s: signature %q does not read as (params) -> results", abiDoc, name, sig)
			continue
		}
		f := sdkabi.Func{Name: name, Params: []sdkabi.ValueType{}}
		if list := strings.TrimSpace(params[1 : len(params)-1]); list != "" {
			for p := range strings.SplitSeq(list, ",") {
				words := strings.Fields(p)
				if len(words) == 0 || len(words) > 2 {
					t.Errorf("%s: %s: parameter %q", abiDoc, name, p)
					continue
				}
				typ := sdkabi.I32
				if len(words) == 2 {
					if typ, ok = valueType(words[1]); !ok {
						t.Errorf("%s: %s: parameter %q has no value type", abiDoc, name, p)
					}
				}
				f.Params = append(f.Params, typ)
			}
		}
		for r := range strings.FieldsSeq(strings.Trim(strings.TrimSpace(results), "()")) {
			typ, ok := valueType(strings.Trim(r, ","))
			if !ok {
				t.Errorf("%s: %s: result %q is not a value type", abiDoc, name, r)
			}
			f.Results = append(f.Results, typ)
		}
		if _, dup := fs[name]; dup {
			t.Errorf("%s lists %s twice", abiDoc, name)
		}
		fs[name] = f
	}
	return fs
}

func valueType(s string) (sdkabi.ValueType, bool) {
	for _, v := range []sdkabi.ValueType{sdkabi.I32, sdkabi.I64, sdkabi.F64} {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// sameFuncs reports every function of doc missing from got, every one of
// got missing from doc, and every signature that differs.
func sameFuncs(t *testing.T, doc map[string]sdkabi.Func, who string, got []sdkabi.Func) {
	t.Helper()
	seen := map[string]bool{}
	for _, g := range got {
		seen[g.Name] = true
		d, ok := doc[g.Name]
		switch {
		case !ok:
			t.Errorf("%s has %s, which %s does not list", who, g.Name, abiDoc)
		case !slices.Equal(d.Params, g.Params) || !slices.Equal(d.Results, g.Results):
			t.Errorf("%s: %s says %s, %s has %s", g.Name, abiDoc, sigText(d), who, sigText(g))
		}
	}
	for name := range doc {
		if !seen[name] {
			t.Errorf("%s lists %s, which %s does not have", abiDoc, name, who)
		}
	}
}

func sigText(f sdkabi.Func) string {
	text := func(ts []sdkabi.ValueType) string {
		s := make([]string, len(ts))
		for i, v := range ts {
			s[i] = v.String()
		}
		return strings.Join(s, ", ")
	}
	return "(" + text(f.Params) + ") -> (" + text(f.Results) + ")"
}

// TestABIDocHostFunctions: the host functions of section 4 are exactly
// those sdk/abi declares and this package registers, with the same
// signatures.
func TestABIDocHostFunctions(t *testing.T) {
	sec := docSection(t, "4.")
	if heading, _, _ := strings.Cut(sec, "\n"); !strings.Contains(heading, "`"+sdkabi.ModuleName+"`") {
		t.Errorf("section 4 heading %q does not name the module %q", heading, sdkabi.ModuleName)
	}
	doc := docFuncs(t, sec, "function")
	if len(doc) == 0 {
		t.Fatalf("no host function tables found in section 4 of %s", abiDoc)
	}
	sameFuncs(t, doc, "sdk/abi", sdkabi.Functions())
	var registered []sdkabi.Func
	for _, f := range Functions() {
		registered = append(registered, sdkabi.Func{Name: f.Name, Params: f.Params, Results: f.Results})
		if f.Fn == nil {
			t.Errorf("%s: nil Fn", f.Name)
		}
	}
	sameFuncs(t, doc, "host/abi", registered)
}

// TestABIDocHooks: the hooks of section 2 are sdk/abi's, and section 1
// names the version marker.
func TestABIDocHooks(t *testing.T) {
	sameFuncs(t, docFuncs(t, docSection(t, "2."), "export"), "sdk/abi", sdkabi.Hooks())
	if !strings.Contains(docSection(t, "1."), "`"+sdkabi.VersionMarker+"`") {
		t.Errorf("section 1 does not name the version marker %q", sdkabi.VersionMarker)
	}
}

// TestABIDocCodes: the return codes table is sdk/abi's codes.
func TestABIDocCodes(t *testing.T) {
	rows := tableRows(docSection(t, "3."), "code", "name", "meaning")
	doc := map[int32]string{}
	for _, cells := range rows {
		code, err := strconv.ParseInt(strings.Trim(cells[0], "`"), 10, 32)
		if err != nil {
			t.Errorf("code %q: %v", cells[0], err)
			continue
		}
		doc[int32(code)] = strings.Trim(cells[1], "`")
	}
	if len(doc) == 0 {
		t.Fatalf("no return codes table in section 3 of %s", abiDoc)
	}
	for code := int32(-64); code < 64; code++ {
		if got, want := sdkabi.CodeName(code), doc[code]; got != want {
			t.Errorf("code %d: %s names it %q, sdk/abi %q", code, abiDoc, want, got)
		}
	}
}

// TestABIDocAlgorithms: the crypto_verify algorithms table is sdk/abi's.
func TestABIDocAlgorithms(t *testing.T) {
	want := map[string]int{"RS256": sdkabi.AlgRS256, "PS256": sdkabi.AlgPS256, "ES256": sdkabi.AlgES256, "EdDSA": sdkabi.AlgEdDSA}
	algName := regexp.MustCompile(`^[A-Za-z0-9]+`)
	rows := tableRows(docSection(t, "4."), "`alg`", "name", "signature")
	if len(rows) != len(want) {
		t.Errorf("%s lists %d algorithms, sdk/abi %d", abiDoc, len(rows), len(want))
	}
	for _, cells := range rows {
		name := algName.FindString(cells[1])
		n, err := strconv.Atoi(strings.Trim(cells[0], "`"))
		if w, ok := want[name]; err != nil || !ok || n != w {
			t.Errorf("%s: algorithm %s is %q, sdk/abi has %d", abiDoc, name, cells[0], w)
		}
	}
}

// TestTokenTables: the guest's token check (sdk/abi) and the host's
// (httpsyntax, which the host functions use) accept the same bytes, so a
// name a plugin checked is one the host takes.
func TestTokenTables(t *testing.T) {
	for c := range 256 {
		b := []byte{byte(c)}
		if sdkabi.IsToken(b) != httpsyntax.IsToken(b) {
			t.Errorf("byte %#x: sdk/abi says %v, the host %v", c, sdkabi.IsToken(b), httpsyntax.IsToken(b))
		}
	}
}

// TestReadmeCountsHostFunctions: the README's count of host functions is
// the ABI's.
func TestReadmeCountsHostFunctions(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("one import module `wasmgate` of (\\d+) host\\s+functions").FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md no longer says how many host functions there are")
	}
	if want := strconv.Itoa(len(sdkabi.Functions())); string(m[1]) != want {
		t.Fatalf("README.md says %s host functions; the ABI has %s", m[1], want)
	}
}
