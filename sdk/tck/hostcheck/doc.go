// Command hostcheck is the Go guest of wasmgate's conformance kit (package
// github.com/wasmgate/wasmgate/sdk/tck, whose tck.Run drives it through a
// real gateway): it calls every host function of sdk/ABI.md section 4,
// through the SDK and, where the SDK hides what the host answered (return
// codes of getters, the buffer-size convention, bad kinds, arguments the
// SDK refuses before the host sees them), through raw imports of its own,
// and reports what it observed as JSON so that the runner can assert the
// exact values the host gave it. It is a test guest, not a plugin to
// deploy. The gateway's own tests load it outside the kit too (the
// "gateway" check in host/server's cache and rate-limit tests).
//
// This documentation is the specification a hostcheck in another language
// follows: the same config keys, the same checks, the same report keys and
// log lines (tck.Guest lists what may differ by language).
//
// Build: bash plugins/build.sh hostcheck (to sdk/tck/hostcheck/hostcheck.wasm).
//
// Config keys:
//
//	check     required; what to exercise:
//	  inspect   on_request reads the method, path, query, client IP, headers
//	            (get, values, names), the body (whole, ranges, past the end),
//	            the config, time and randomness; edits headers (X-Set replaced,
//	            X-Multi added to, X-Remove removed, Host set to hostcheck.test)
//	            and, if the request has X-Set-Path, the path; records the error
//	            codes of bad kinds, names, values, framing headers and paths;
//	            then replaces the request body with its JSON report.
//	            on_response reads the response and the request as sent, checks
//	            that the request is read-only, edits the response (status 203,
//	            X-Resp-Set, X-Resp-Multi added to, X-Upstream-Remove removed)
//	            and answers {"request": <on_request report>, "response": {...}}.
//	  phase     records the codes of calls made where they are not allowed:
//	            during _initialize, on_init, on_request before send_response and
//	            on_response; with local, on_request answers 202 itself and records
//	            what works after send_response. The report is the response body.
//	  kv        one KV operation per request, from the query:
//	            ?op=get|get_raw|set|set_raw|delete|incr&key=K&value=V&ttl_ms=N&delta=N
//	            (key_len=N: a key of N bytes); answers {"code", "value", "result"}.
//	  metrics   defines hc_counter, hc_gauge, hc_hist and records ?counter=, ?gauge=,
//	            ?hist=; records the SDK metrics hc_sdk_counter (+2), hc_sdk_gauge (7)
//	            and hc_sdk_histogram (0.5); reports ids and the error codes of bad
//	            names, kinds, ids and values. ?fill=1 defines metrics until refused.
//	  log       logs "hc-log LEVEL M" at each level (M from ?m=), the edge cases
//	            (bad levels, 5000 bytes, empty), one SDK line "hc-sdk M" and lines
//	            on stdout and stderr; ?fail=MSG fails the hook with MSG,
//	            ?fail_long=1 with 2000 bytes of set_error, ?flood=N logs N lines.
//	  outbound  runs "batch" with http_batch and answers every result, plus the
//	            codes of a malformed batch, one over 64 requests, a bad method
//	            and a bad header, and the buffer convention of http_batch_result.
//	  chain     on_request appends "tag" to the request's X-Chain and counts itself
//	            in the KV key chain_requests; with stop it answers 200 locally with
//	            X-Chain-Resp: local:TAG. on_response appends the tag to X-Chain-Resp.
//	  instance  sets the request header X-Instance and the response header
//	            X-Instance-Resp to "ID/CALLS/INITS" of the instance running the hook.
//	  buffers   probes every getter with a 0-byte, a 3-byte and a full buffer.
//	  gateway   set_consumer (?consumer=ID), set_claims (?claims=JSON, or
//	            ?claims_size=N for an object of N bytes) and cache_set_key
//	            (?cache_key=K), then the request goes on (a failed call answers
//	            500 {"FUNCTION": code}); rate_limit (?limit=NAME&key=K&cost=N)
//	            answers {rc, allowed, remaining, retry_ms}.
//	  flags     flag_enabled for each name of ?names=a,b: answers
//	            {"NAME": {"on", "code"}}.
//	tag       chain: this plugin's mark
//	stop      chain: answer locally
//	local     phase: answer locally
//	big_body  inspect: bytes of the over-the-limit bodies tried with body_set and
//	          send_response (0: not tried)
//	batch     outbound: [{url, method, timeout_ms, headers, body}]
//	reject    reject the config with this message
//	echo      any value; ignored (inspect reports the config bytes)
package main
