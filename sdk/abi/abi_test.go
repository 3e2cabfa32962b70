package abi

import (
	"strconv"
	"strings"
	"testing"
)

// The declarations are checked against sdk/ABI.md by host/abi's tests,
// which see both this package and the functions the host registers; the
// tests here check what this package holds by itself.

func TestVersionMarker(t *testing.T) {
	if VersionMarker != VersionPrefix+strconv.Itoa(Version) {
		t.Fatalf("VersionMarker %q is not VersionPrefix + Version %d", VersionMarker, Version)
	}
}

func TestFunctions(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range append(Functions(), Hooks()...) {
		if f.Name == "" || seen[f.Name] {
			t.Errorf("name %q empty or listed twice", f.Name)
		}
		seen[f.Name] = true
		if len(f.Results) > 1 {
			t.Errorf("%s: %d results", f.Name, len(f.Results))
		}
		for _, v := range append(f.Params, f.Results...) {
			if v != I32 && v != I64 && v != F64 {
				t.Errorf("%s: value type %v", f.Name, v)
			}
		}
	}
	fs := Functions()
	fs[0].Name = "changed"
	if Functions()[0].Name == "changed" {
		t.Error("Functions returns the package's table itself")
	}
}

func TestCodeName(t *testing.T) {
	want := map[int32]string{NotFound: "NOT_FOUND", BadArgument: "BAD_ARGUMENT", NotAllowed: "NOT_ALLOWED",
		TooLarge: "TOO_LARGE", Unavailable: "UNAVAILABLE"}
	for code := int32(-10); code <= 10; code++ {
		if got := CodeName(code); got != want[code] {
			t.Errorf("CodeName(%d) = %q, want %q", code, got, want[code])
		}
	}
	for _, code := range []int32{-1 << 31, 1<<31 - 1} {
		if got := CodeName(code); got != "" {
			t.Errorf("CodeName(%d) = %q", code, got)
		}
	}
}

func TestValueTypeString(t *testing.T) {
	var names []string
	for _, v := range []ValueType{I32, I64, F32, F64, V128, FuncRef, ExternRef, 0, 0x40} {
		names = append(names, v.String())
	}
	if got := strings.Join(names, " "); got != "i32 i64 f32 f64 v128 funcref externref 0x0 0x40" {
		t.Fatal(got)
	}
}

func TestBodylessStatus(t *testing.T) {
	for _, s := range []int{100, 101, 103, 199, 204, 304} {
		if !BodylessStatus(s) {
			t.Errorf("BodylessStatus(%d) = false", s)
		}
	}
	for _, s := range []int{MinStatus, 201, 202, 205, 206, 300, 301, 303, 305, 307, 400, 404, 500, MaxStatus} {
		if BodylessStatus(s) {
			t.Errorf("BodylessStatus(%d) = true", s)
		}
	}
}
