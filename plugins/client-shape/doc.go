// Command client-shape is a wasmgate plugin that tailors one upstream JSON
// answer to the client asking: a phone gets a trimmed document, a TV
// another, a browser the whole thing; any client can also pick fields with
// a GraphQL-like ?fields=a,b.c selection. It works on the response, reading
// the request's headers and query.
//
// Config keys:
//
//	profiles       required; name → {fields, ops}:
//	  fields         dot paths to keep (default: everything)
//	  ops            json-transform ops applied first (rename, remove, add, move)
//	rules          how a client gets a profile, first match wins; each
//	               {profile, header, pattern (RE2) or equals}. Default: the
//	               built-in rules below, for the profiles that exist
//	client_header  a request header naming the profile outright (default X-Client;
//	               "-" for none); an unknown name falls through to the rules
//	default        the profile when nothing matches (default: "web" if defined,
//	               else no reshaping)
//	fields_param   the query parameter of ad-hoc selections (default "fields";
//	               "-" for none); it replaces the profile's fields
//	max_fields     most paths in one fields= selection (default 32)
//	max_body       larger bodies pass through untouched (default 8 MiB)
//
// Built-in rules:
//
//	tv      User-Agent ~ (?i)smart-?tv|appletv|googletv|android ?tv|roku|tizen|web0?os|hbbtv|bravia|aft[a-z]
//	mobile  Sec-CH-UA-Mobile = ?1
//	mobile  User-Agent ~ (?i)mobile|iphone|ipod|android|blackberry|opera mini|iemobile
//
// Only 2xx JSON answers (not Content-Encoding compressed) are reshaped. The
// answer carries X-Client-Profile and Vary naming the headers consulted, so
// caches keep the variants apart. A bad fields= selection is answered 400.
//
// Example:
//
//	plugins:
//	  - name: client-shape
//	    module: plugins/client-shape/client-shape.wasm
//	    config:
//	      profiles:
//	        mobile: {fields: [user, items.id, items.text, items.author]}
//	        tv:
//	          fields: [items.author, items.text]
//	          ops: [{op: rename, path: items.text, to: caption}]
//	        web: {}
//
//	curl -H 'Sec-CH-UA-Mobile: ?1' localhost:8080/api/feed?user=1
//	curl 'localhost:8080/api/feed?user=1&fields=items.id,items.likes'
package main
