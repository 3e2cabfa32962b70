// Command aggregate is a wasmgate plugin that answers a request by fanning
// out to several services in parallel (the ABI's outbound batch: one host
// call, no callbacks) and merging their JSON answers into one object keyed
// by part name. The route's own upstream is never called: the plugin
// answers locally.
//
// Config keys:
//
//	parts            required; each:
//	  name             the key in the answer ([A-Za-z0-9_-], unique)
//	  url              upstream://NAME/path?query or http://host:port/path?query;
//	                   {user} is replaced by the user id. The route must allow
//	                   the destination (plugins[].outbound.upstreams / hosts)
//	  timeout          this part's timeout: "300ms" or seconds (default: the
//	                   plugin's call deadline)
//	  method           default GET
//	  headers          {name: value} sent with this part
//	mode             strict (default): any failed part fails the answer with 502;
//	                 partial: failed parts are null and described under errors_key,
//	                 the rest is served (502 only if every part failed)
//	user             where the user id comes from: {header: X-User-Id, query: user}
//	                 (these defaults; header first). Required when a url has {user}:
//	                 a request without one is answered 400. Ids are [A-Za-z0-9._~-]{1,128}
//	forward_headers  client request headers copied to every part (e.g. Authorization)
//	errors_key       the member listing failed parts in partial mode (default "_errors")
//
// A part fails when it times out, cannot connect, is not allowed, answers a
// status outside 200–299, or answers something that is not JSON.
//
// The plugin's call deadline bounds the whole batch: give the plugin a
// limits.call_timeout above the largest part timeout plus a few
// milliseconds to merge (the default 100ms is too short for the example
// below). A part still running at the deadline interrupts the hook, and the
// route's failure policy answers instead of the partial result.
//
// Example (/feed = feed + notifications + profile, after jwt-auth set X-User-Id):
//
//	plugins:
//	  - name: aggregate
//	    module: plugins/aggregate/aggregate.wasm
//	    limits: {call_timeout: 1s}
//	routes:
//	  - name: feed-page
//	    match: {path: /feed}
//	    plugins:
//	      - name: jwt
//	      - name: aggregate
//	        outbound: {upstreams: [feed, notifications, users]}
//	        config:
//	          mode: partial
//	          parts:
//	            - {name: feed, url: "upstream://feed/feed?user={user}", timeout: 800ms}
//	            - {name: notifications, url: "upstream://notifications/notifications?user={user}", timeout: 300ms}
//	            - {name: user, url: "upstream://users/users/{user}", timeout: 300ms}
//
// Answer (partial, notifications timed out):
//
//	{"feed": {...}, "notifications": null, "user": {...},
//	 "_errors": {"notifications": {"error": "timeout"}}}
//
// with a Server-Timing header giving each part's duration. Metrics: the
// histogram "batch_seconds" and the counter "part_failures".
package main
