package ctest

import (
	"path/filepath"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// TestABIRecipe builds the C recipe of sdk/ABI.md section 9, as written and
// with its build line's flags, and runs it in the gateway: the request the
// upstream gets carries the header it sets.
func TestABIRecipe(t *testing.T) {
	cc := clang(t)
	src, mod := filepath.Join(workDir, "recipe.c"), filepath.Join(workDir, "recipe.wasm")
	sdktest.WriteRecipe(t, src, "c")
	sdktest.Run(t, ".", nil, cc, "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wl,--strip-debug", "-o", mod, src)
	sdktest.CheckRecipe(t, mod, "X-C")
}
