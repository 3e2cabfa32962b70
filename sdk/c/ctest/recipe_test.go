package ctest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck"
)

// TestABIRecipe builds the C recipe of sdk/ABI.md section 9, as written and
// with its build line's flags, and runs it in the gateway: the request the
// upstream gets carries the header it sets.
func TestABIRecipe(t *testing.T) {
	cc := clang(t)
	src := filepath.Join(workDir, "recipe.c")
	if err := os.WriteFile(src, []byte(tck.ABIRecipe(t, "../ABI.md", "c")), 0o600); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(workDir, "recipe.wasm")
	run(t, ".", nil, cc, "--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wl,--strip-debug", "-o", mod, src)
	up := tck.StartUpstream(t, "a")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`
plugins: [{name: recipe, module: %q}]
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: a, plugins: [{name: recipe}]}]
`, mod, up.Addr)))
	r := tck.Do(t, "GET", g.url("/x"), nil, nil)
	var e tck.Echo
	r.JSON(t, &e)
	if r.Status != 200 || strings.Join(e.Headers["X-C"], ",") != "yes" {
		t.Fatalf("%d, the upstream saw %v", r.Status, e.Headers)
	}
}
