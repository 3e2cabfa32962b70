package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

func TestInspectRejects(t *testing.T) {
	raw := rawWat(t)
	tests := []struct {
		name string
		wasm []byte
		want []string // substrings of the error
	}{
		{"missing marker", fixture(t, "nomarker"), []string{`missing export "wasmgate_abi_v1"`}},
		{"v2 marker", fixture(t, "v2"), []string{`wasmgate ABI v2`, `"wasmgate_abi_v2"`, `implements v1`}},
		{"unknown import", fixture(t, "unknown_import"), []string{`unknown import "env"."foo"`}},
		{"unknown host function", fixture(t, "unknown_host"), []string{`unknown import "wasmgate"."teleport"`}},
		{"host signature", fixture(t, "badsig"), []string{`import "wasmgate"."request_method" has signature (i32)->i32, want (i32,i32)->i32`}},
		{"command", fixture(t, "start"), []string{`exports "_start"`, `reactor`}},
		{"hook signature", fixture(t, "badhook"), []string{`export "on_request" has signature (i32)->i32, want ()->i32`}},
		{"no hooks", fixture(t, "nohooks"), []string{`exports none of the hooks`}},
		{"memory not exported", fixture(t, "nomemory"), []string{`missing export "memory"`}},
		{"not wasm", []byte("#!/bin/sh\necho hello\n"), []string{`not a WebAssembly module`}},
		{"empty", nil, []string{`not a WebAssembly module`}},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), []string{`component, not a core module`}},
		{"truncated", raw[:40], []string{`malformed WebAssembly module`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(tt.wasm)
			if err == nil {
				t.Fatal("Inspect accepted the module")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}

	// Load refuses the same modules, naming the plugin, before compiling.
	r := newTestRuntime(t, Options{})
	for _, tt := range tests {
		_, err := r.Load(context.Background(), "jwt", tt.wasm)
		if err == nil || !strings.Contains(err.Error(), `plugin "jwt": `+tt.want[0]) && !strings.Contains(err.Error(), tt.want[0]) {
			t.Errorf("%s: Load error %v, want %q", tt.name, err, tt.want[0])
		}
	}
	if n := r.Engine().(*WazeroEngine).Compilations(); n != 0 {
		t.Errorf("%d compilations of rejected modules, want 0", n)
	}
	if n := r.Modules(); n != 0 {
		t.Errorf("%d modules left in the registry", n)
	}
}

func TestInspectErrorTypes(t *testing.T) {
	_, err := Inspect([]byte("nope nope"))
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("not wasm: %T %v, want *FormatError", err, err)
	}
	_, err = Inspect(fixture(t, "nomarker"))
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 1 {
		t.Fatalf("no marker: %T %v, want one problem", err, err)
	}
	// Every problem is reported, not only the first.
	_, err = Inspect(fixture(t, "many"))
	if !errors.As(err, &ve) || len(ve.Problems) != 3 {
		t.Fatalf("many: %v, want 3 problems", err)
	}
}

func TestInspectInfo(t *testing.T) {
	raw := rawWat(t)
	info, err := Inspect(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if info.SHA256 != hex.EncodeToString(sum[:]) || info.Size != len(raw) {
		t.Errorf("sha256/size = %s/%d", info.SHA256, info.Size)
	}
	if info.ABIVersion != 1 {
		t.Errorf("ABIVersion = %d", info.ABIVersion)
	}
	if got := info.Hooks.String(); got != "on_init,on_request,on_response" {
		t.Errorf("hooks = %q", got)
	}
	if info.Memory != (MemoryLimits{Min: 1, Max: 1, HasMax: true}) {
		t.Errorf("memory = %+v", info.Memory)
	}
	if info.Reactor || info.Command {
		t.Errorf("reactor/command = %v/%v", info.Reactor, info.Command)
	}
	var imports []string
	for _, im := range info.Imports {
		imports = append(imports, im.Module+"."+im.Name+" "+im.Type.String())
	}
	want := "wasmgate.request_path (i32,i32)->i32|wasmgate.header_add (i32,i32,i32,i32,i32)->i32|wasmgate.send_response (i32,i32,i32)->i32"
	if got := strings.Join(imports, "|"); got != want {
		t.Errorf("imports\n got %s\nwant %s", got, want)
	}
	var exports []string
	for _, e := range info.Exports {
		exports = append(exports, e.Name+":"+e.Kind.String())
	}
	if got := strings.Join(exports, ","); got != "memory:memory,wasmgate_abi_v1:function,on_init:function,on_request:function,on_response:function" {
		t.Errorf("exports = %s", got)
	}

	info, err = Inspect(fixture(t, "reactor"))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Reactor || info.Imports[0].Module != wasiModule {
		t.Errorf("reactor: %+v", info)
	}
}

func TestSignatureString(t *testing.T) {
	for _, tt := range []struct {
		s    Signature
		want string
	}{
		{Signature{}, "()->()"},
		{Signature{Params: []sdkabi.ValueType{sdkabi.I32}, Results: []sdkabi.ValueType{sdkabi.I32}}, "(i32)->i32"},
		{Signature{Params: []sdkabi.ValueType{sdkabi.I32, sdkabi.I64, sdkabi.F64}, Results: []sdkabi.ValueType{sdkabi.I32, sdkabi.I64}}, "(i32,i64,f64)->(i32,i64)"},
		{Signature{Params: []sdkabi.ValueType{sdkabi.F32, sdkabi.V128, sdkabi.FuncRef, sdkabi.ExternRef}}, "(f32,v128,funcref,externref)->()"},
	} {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%v: got %q want %q", tt.s, got, tt.want)
		}
	}
}

// TestSignaturesAreSDKABIs: the hooks and host functions a module is
// checked against are sdk/abi's, type for type.
func TestSignaturesAreSDKABIs(t *testing.T) {
	for _, f := range sdkabi.Hooks() {
		found := false
		for h := Hook(0); h < numHooks; h++ {
			if h.String() == f.Name {
				found = true
				if want := (Signature{Params: f.Params, Results: f.Results}); !hookSignatures[h].Equal(want) {
					t.Errorf("%s: %s, sdk/abi %s", f.Name, hookSignatures[h], want)
				}
			}
		}
		if !found {
			t.Errorf("sdk/abi hook %s is no Hook", f.Name)
		}
	}
	host := hostFuncs()
	for _, f := range sdkabi.Functions() {
		if want := (Signature{Params: f.Params, Results: f.Results}); !host[f.Name].Equal(want) {
			t.Errorf("%s: %s, sdk/abi %s", f.Name, host[f.Name], want)
		}
	}
	// A type byte that is none is named in hex in the parse error.
	b := []byte("\x00asm\x01\x00\x00\x00\x01\x05\x01\x60\x01\x40\x00")
	if _, err := Inspect(b); err == nil || !strings.Contains(err.Error(), "unsupported value type 0x40") {
		t.Errorf("a module with value type 0x40: %v", err)
	}
}

// FuzzInspect: the parser never panics, whatever the bytes, and never
// accepts what wazero would not even decode as a module header.
func FuzzInspect(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x01\xff\xff\xff\xff\x0f"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x05\xff\xff\xff\xff\x0f"))
	if wasms, err := filepath.Glob("testdata/*.wat"); err == nil {
		for _, p := range wasms {
			f.Add(wat(f, p))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := Inspect(b)
		if err == nil && (len(b) < 8 || string(b[:4]) != "\x00asm") {
			t.Fatalf("accepted %x", b)
		}
		_ = info.Hooks.String()
		for _, im := range info.Imports {
			_ = im.Type.String()
		}
	})
}
