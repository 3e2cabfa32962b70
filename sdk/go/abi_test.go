//go:build !wasip1

package wasmgate

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// The //go:wasmimport and //go:wasmexport directives must spell names as
// literals, so they are the one place the SDK cannot use sdk/abi's
// constants. These tests read them from the source (the files build only
// for wasip1) and check them against sdk/abi.

// directives returns the functions of the package's files (this directory
// and response/) that carry the directive, by the directive's arguments.
func directives(t *testing.T, directive string) map[string]*ast.FuncType {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("response/*.go")
	out := map[string]*ast.FuncType{}
	for _, name := range append(files, more...) {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Doc == nil {
				continue
			}
			for _, c := range fn.Doc.List {
				if args, ok := strings.CutPrefix(c.Text, "//go:"+directive+" "); ok {
					if _, dup := out[args]; dup {
						t.Errorf("%s %s declared twice", directive, args)
					}
					out[args] = fn.Type
				}
			}
		}
	}
	return out
}

// wasmTypes lowers a Go parameter or result list as the compiler does for
// wasmimport and wasmexport: a string is a (ptr, len) pair of i32.
func wasmTypes(t *testing.T, fl *ast.FieldList) []abi.ValueType {
	t.Helper()
	out := []abi.ValueType{}
	if fl == nil {
		return out
	}
	for _, field := range fl.List {
		var vt []abi.ValueType
		switch typ := types.ExprString(field.Type); typ {
		case "int32", "uint32", "unsafe.Pointer":
			vt = []abi.ValueType{abi.I32}
		case "string":
			vt = []abi.ValueType{abi.I32, abi.I32}
		case "int64", "uint64":
			vt = []abi.ValueType{abi.I64}
		case "float64":
			vt = []abi.ValueType{abi.F64}
		default:
			t.Errorf("type %s has no lowering here", typ)
		}
		for range max(len(field.Names), 1) {
			out = append(out, vt...)
		}
	}
	return out
}

func TestWasmImports(t *testing.T) {
	imports := directives(t, "wasmimport")
	for _, f := range abi.Functions() {
		ft, ok := imports[abi.ModuleName+" "+f.Name]
		if !ok {
			t.Errorf("%s.%s is not imported", abi.ModuleName, f.Name)
			continue
		}
		delete(imports, abi.ModuleName+" "+f.Name)
		params, results := wasmTypes(t, ft.Params), wasmTypes(t, ft.Results)
		if !slices.Equal(params, f.Params) || !slices.Equal(results, f.Results) {
			t.Errorf("%s: imported as %v -> %v, sdk/abi says %v -> %v", f.Name, params, results, f.Params, f.Results)
		}
	}
	for args := range imports {
		t.Errorf("wasmimport %s is no host function of sdk/abi", args)
	}
}

func TestWasmExports(t *testing.T) {
	exports := directives(t, "wasmexport")
	want := append(abi.Hooks(), abi.Func{Name: abi.VersionMarker, Params: []abi.ValueType{}, Results: []abi.ValueType{}})
	for _, f := range want {
		ft, ok := exports[f.Name]
		if !ok {
			t.Errorf("%s is not exported", f.Name)
			continue
		}
		delete(exports, f.Name)
		params, results := wasmTypes(t, ft.Params), wasmTypes(t, ft.Results)
		if !slices.Equal(params, f.Params) || !slices.Equal(results, f.Results) {
			t.Errorf("%s: exported as %v -> %v, sdk/abi says %v -> %v", f.Name, params, results, f.Params, f.Results)
		}
	}
	for name := range exports {
		t.Errorf("wasmexport %s is no hook of sdk/abi", name)
	}
}
