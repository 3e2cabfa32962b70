package astest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// The tests of examples/json-transform and examples/aggregate: the suites
// of sdk/tck/sdktest, which the Rust and C examples pass too (the three
// plugins share their config and their answers, byte for byte), after the
// checks of the modules and their build lines.

// transformAggregate are the two examples, built with the other modules
// (build_test.go's extraModules), and the hooks each exports.
var transformAggregate = []struct {
	module
	hooks []string
}{
	{module{"json-transform", "examples/json-transform/index.ts"}, []string{"on_init", "on_request", "on_response"}},
	{module{"aggregate", "examples/aggregate/index.ts"}, []string{"on_init", "on_request"}},
}

func init() {
	for _, m := range transformAggregate {
		extraModules = append(extraModules, m.module)
	}
}

// TestTransformAggregateShape: each module is a reactor of ABI v1 that
// imports only wasmgate functions, with their signatures, and exports the
// hooks it needs (aggregate answers locally: no on_response), as
// TestModuleShape checks the other modules.
func TestTransformAggregateShape(t *testing.T) {
	for _, m := range transformAggregate {
		t.Run(m.name, func(t *testing.T) { checkShape(t, m.name, m.hooks) })
	}
}

// TestTransformAggregateBuildLines: README.md shows the build line the
// tests use for both examples, and each example's header shows it too.
func TestTransformAggregateBuildLines(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(sdkDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range transformAggregate {
		line := "npx " + strings.Join(ascArgs(m.entry, "build/"+m.name+".wasm"), " ")
		if !strings.Contains(string(readme), line) {
			t.Errorf("README.md lacks the build line %q", line)
		}
		src, err := os.ReadFile(filepath.Join(sdkDir, m.entry))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), line) {
			t.Errorf("%s does not show its build line %q", m.entry, line)
		}
	}
}

// TestJSONTransform: sdktest.JSONTransformSuite.
func TestJSONTransform(t *testing.T) {
	sdktest.JSONTransformSuite(t, wasmPath(t, "json-transform"))
}

// TestAggregate: sdktest.AggregateSuite.
func TestAggregate(t *testing.T) {
	sdktest.AggregateSuite(t, wasmPath(t, "aggregate"))
}

// TestTransformAggregateConfigErrors: a bad config is refused by on_init,
// and the gateway's config with it, in the words of the Rust and C
// examples, naming the field; the timeouts aggregate documents are
// accepted.
func TestTransformAggregateConfigErrors(t *testing.T) {
	sdktest.JSONTransformConfigErrors(t, wasmPath(t, "json-transform"))
	sdktest.AggregateConfigErrors(t, wasmPath(t, "aggregate"))
}
