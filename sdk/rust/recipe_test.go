package rust

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck"
)

// TestABIRecipe builds the Rust recipe of sdk/ABI.md section 9, as written,
// as the cdylib its Cargo.toml makes, and runs it in the gateway: the
// module is a reactor, and the request the upstream gets carries the
// header it sets.
func TestABIRecipe(t *testing.T) {
	_, rustc := toolchain(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "lib.rs")
	if err := os.WriteFile(src, []byte(tck.ABIRecipe(t, "../ABI.md", "rust")), 0o600); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(dir, "recipe.wasm")
	run(t, dir, nil, rustc, "--edition", "2021", "--target", "wasm32-wasi", "-O", "--crate-type", "cdylib", "-o", mod, src)
	if info := inspect(t, mod); !info.Reactor {
		t.Fatalf("the recipe's module is not a reactor: exports %v", info.Exports)
	}
	up := tck.StartUpstream(t, "a")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`
plugins: [{name: recipe, module: %q}]
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: a, plugins: [{name: recipe}]}]
`, mod, up.Addr)))
	r := tck.Do(t, "GET", g.url("/x"), nil, nil)
	var e tck.Echo
	r.JSON(t, &e)
	if r.Status != 200 || strings.Join(e.Headers["X-Rust"], ",") != "yes" {
		t.Fatalf("%d, the upstream saw %v", r.Status, e.Headers)
	}
}
