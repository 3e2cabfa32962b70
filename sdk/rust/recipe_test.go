package rust

import (
	"path/filepath"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// TestABIRecipe builds the Rust recipe of sdk/ABI.md section 9, as written,
// as the cdylib its Cargo.toml makes, and runs it in the gateway: the
// module is a reactor, and the request the upstream gets carries the
// header it sets.
func TestABIRecipe(t *testing.T) {
	_, rustc := toolchain(t)
	dir := t.TempDir()
	src, mod := filepath.Join(dir, "lib.rs"), filepath.Join(dir, "recipe.wasm")
	sdktest.WriteRecipe(t, src, "rust")
	sdktest.Run(t, dir, nil, rustc, "--edition", "2021", "--target", "wasm32-wasi", "-O", "--crate-type", "cdylib", "-o", mod, src)
	if info := sdktest.Inspect(t, mod); !info.Reactor {
		t.Fatalf("the recipe's module is not a reactor: exports %v", info.Exports)
	}
	sdktest.CheckRecipe(t, mod, "X-Rust")
}
