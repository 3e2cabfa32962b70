package rust

import (
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck/sdktest"
)

// The tests of examples/json_transform.rs and examples/aggregate.rs: the
// suites of sdk/tck/sdktest, which the C and AssemblyScript examples pass
// too, with the same config and the same answers, byte for byte.

// TestTransformAggregateShape checks the two examples' exports and
// imports: a reactor of ABI v1 with the hooks each needs.
func TestTransformAggregateShape(t *testing.T) {
	mods := examples(t)
	sdktest.CheckExampleShape(t, "json_transform", mods["json_transform"], "on_init,on_request,on_response")
	sdktest.CheckExampleShape(t, "aggregate", mods["aggregate"], "on_init,on_request")
}

// TestJSONTransformEndToEnd: sdktest.JSONTransformSuite.
func TestJSONTransformEndToEnd(t *testing.T) {
	sdktest.JSONTransformSuite(t, examples(t)["json_transform"])
}

// TestAggregateEndToEnd: sdktest.AggregateSuite.
func TestAggregateEndToEnd(t *testing.T) {
	sdktest.AggregateSuite(t, examples(t)["aggregate"])
}

// TestTransformAggregateConfigErrors checks that the two examples refuse a
// bad config in on_init with a message naming the field.
func TestTransformAggregateConfigErrors(t *testing.T) {
	mods := examples(t)
	sdktest.JSONTransformConfigErrors(t, mods["json_transform"])
	sdktest.AggregateConfigErrors(t, mods["aggregate"])
}
