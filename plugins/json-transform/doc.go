// Command json-transform is a wasmgate plugin that edits JSON bodies by dot
// path: rename, remove, add and move fields of the request body before it
// goes upstream, or of the response body before it goes to the client.
// Member order and number formatting are kept (package
// github.com/wasmgate/wasmgate/sdk/go/jsonpath).
//
// Config keys:
//
//	request     ops applied to JSON request bodies, in order
//	response    ops applied to JSON response bodies, in order
//	statuses    response statuses to transform (default: all)
//	max_body    bodies over this many bytes pass through untouched
//	            (default 8388608, 8 MiB)
//	on_invalid  a body that is not valid JSON: "skip" it (default) or "fail"
//	            (request: 400; response: the hook fails, the route's policy applies)
//
// An op is one of:
//
//	{op: rename, path: user.fullName, to: name}    rename a member in place
//	{op: remove, path: items.internal_id}          remove (every match)
//	{op: add, path: meta.source, value: gateway}   set, creating parents; value is any JSON
//	{op: move, from: user.address.city, to: city}  move one value elsewhere
//
// Paths: "a.b" members, "items.0" an element, "items.id" the id of every
// element, "*" every member or element, "\." a literal dot.
//
// Only bodies whose Content-Type mentions json and that are not
// Content-Encoding compressed are touched. Example:
//
//	plugins:
//	  - name: json-transform
//	    module: plugins/json-transform/json-transform.wasm
//	    config:
//	      response:
//	        - {op: remove, path: items.internal_id}
//	        - {op: rename, path: user.fullName, to: name}
//	        - {op: add, path: meta.via, value: wasmgate}
//	      statuses: [200]
package main
