package sdktest

import (
	"os"
	"testing"

	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/abi"
)

// Inspect reads a module as the gateway does at load, failing the test on
// any ABI violation.
func Inspect(t testing.TB, path string) wasm.ModuleInfo {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := wasm.Inspect(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return info
}

// CheckExampleShape checks an example plugin's module: a WASI reactor
// (_initialize, no _start) of ABI v1 with exactly hooks ("on_init,
// on_request" as wasm.Hooks writes them), importing from "wasmgate" and
// "wasi_snapshot_preview1" only. It returns what Inspect read.
func CheckExampleShape(t testing.TB, name, path, hooks string) wasm.ModuleInfo {
	t.Helper()
	info := Inspect(t, path)
	if !info.Reactor || info.Command || info.ABIVersion != 1 || info.Hooks.String() != hooks {
		t.Errorf("%s: reactor %v, command %v, ABI v%d, hooks %s; want a reactor of ABI v1 with %s",
			name, info.Reactor, info.Command, info.ABIVersion, info.Hooks, hooks)
	}
	for _, im := range info.Imports {
		if im.Module != abi.ModuleName && im.Module != "wasi_snapshot_preview1" {
			t.Errorf("%s imports %s.%s", name, im.Module, im.Name)
		}
	}
	return info
}

// CheckImportsEveryHostFunction checks the module of a test plugin that
// refers to every host function of its SDK and exports on_init alone: the
// gateway's loader accepts the signatures the compiler gave them (Inspect),
// it imports every one, and it is a reactor of ABI v1.
func CheckImportsEveryHostFunction(t testing.TB, path string) wasm.ModuleInfo {
	t.Helper()
	info := Inspect(t, path)
	var got []string
	for _, im := range info.Imports {
		if im.Module == abi.ModuleName {
			got = append(got, im.Name)
		}
	}
	if len(got) != len(abi.Functions()) {
		t.Errorf("the module imports %d host functions, want all %d: %v", len(got), len(abi.Functions()), got)
	}
	if !info.Reactor || info.ABIVersion != 1 || info.Hooks.String() != "on_init" {
		t.Errorf("reactor %v, ABI v%d, hooks %s", info.Reactor, info.ABIVersion, info.Hooks)
	}
	return info
}
