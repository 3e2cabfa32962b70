package jsonpath_test

import (
	"encoding/json"
	"fmt"

	"github.com/wasmgate/wasmgate/sdk/go/jsonpath"
)

// Ops come from a plugin config and are compiled once, in Init; applying
// them keeps member order and number formatting.
func ExampleApply() {
	var cfgs []jsonpath.OpConfig
	_ = json.Unmarshal([]byte(`[
		{"op": "remove", "path": "items.secret"},
		{"op": "rename", "path": "user.fullName", "to": "name"},
		{"op": "add", "path": "meta.via", "value": "wasmgate"}]`), &cfgs)
	ops, err := jsonpath.Compile("response", cfgs)
	if err != nil {
		fmt.Println(err)
		return
	}
	doc, _ := jsonpath.Parse([]byte(`{"user": {"fullName": "Ann"}, "items": [{"id": 1.50, "secret": "s"}]}`))
	n := jsonpath.Apply(doc, ops)
	fmt.Println(n, string(doc.AppendJSON(nil)))
	// Output: 3 {"user":{"name":"Ann"},"items":[{"id":1.50}],"meta":{"via":"wasmgate"}}
}

// A Selection keeps only the named paths, like a GraphQL field list; a name
// applied to an array selects it in every element.
func ExampleSelection() {
	var paths []jsonpath.Path
	for _, s := range []string{"items.id", "user.name"} {
		p, _ := jsonpath.ParsePath(s)
		paths = append(paths, p)
	}
	doc, _ := jsonpath.Parse([]byte(`{"user": {"name": "Ann", "email": "a@x"}, "items": [{"id": 1, "text": "hi"}, {"id": 2, "text": "yo"}]}`))
	fmt.Println(string(jsonpath.NewSelection(paths).Apply(doc).AppendJSON(nil)))
	// Output: {"user":{"name":"Ann"},"items":[{"id":1},{"id":2}]}
}

// Compile reports config mistakes by position, for the operator.
func ExampleCompile() {
	_, err := jsonpath.Compile("request", []jsonpath.OpConfig{{Op: "rename", Path: "a.b", To: "c.d"}})
	fmt.Println(err)
	// Output: request[0] (rename): "to" is a member name, not a path ("c.d"); use "move" to change the parent
}
