// Command rewrite is a wasmgate plugin that rewrites the request path and
// request and response headers.
//
// Config keys (every one optional, but at least one rewrite is required):
//
//	request:
//	  path:                       one of:
//	    prefix, replace             replace a leading path prefix (on a segment
//	                                boundary: /api matches /api and /api/x, not /apix)
//	    regex, replace              replace every match of an RE2 regexp; $1, ${name}
//	                                expand groups. A result without a leading "/"
//	                                gets one; a "?" in the result replaces the query
//	  headers:
//	    remove: [names]             removed first
//	    set:    {name: value}       then replaced (every value)
//	    add:    {name: value or [values]}  then added
//	response:
//	  headers: {remove, set, add}   the same on the response
//
// Example: serve /api/v1/... from an upstream that knows /v1/..., tell it
// who called, and hide what the upstream runs on.
//
//	plugins:
//	  - name: rewrite
//	    module: plugins/rewrite/rewrite.wasm
//	    config:
//	      request:
//	        path: {prefix: /api, replace: ""}
//	        headers: {set: {X-Gateway: wasmgate}, remove: [Cookie]}
//	      response:
//	        headers: {remove: [Server, X-Powered-By], add: {Cache-Control: no-store}}
//
// The path is the one the client sent (request_path); the rewritten path
// replaces the one sent upstream.
package main
