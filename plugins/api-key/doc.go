// Command api-key is a wasmgate plugin that authenticates requests by API
// key. Each key belongs to a named consumer, forwarded upstream in a header
// (X-Consumer by default); a request with a missing or unknown key is
// answered 401. Keys are compared in constant time, as SHA-256 digests, so
// neither the match nor the key's length leaks through timing.
//
// Config keys:
//
//	keys             required; each {consumer, key} or {consumer, key_sha256}:
//	  consumer         the consumer's name (forwarded; must be a valid header value)
//	  key              the key itself, or
//	  key_sha256       the hex SHA-256 of the key, to keep keys out of the config
//	header           the request header holding the key (default X-Api-Key; "-" for none)
//	query            a query parameter that may hold it instead (default none)
//	consumer_header  the header the consumer name is forwarded in (default X-Consumer);
//	                 it is always removed from the client's request first.
//	                 The consumer is also told to the gateway (set_consumer):
//	                 rate limits with key: consumer count per consumer
//	strip            remove the key before proxying, from the header or the
//	                 query where it was found (default true)
//	realm            the challenge's realm (default "wasmgate")
//
// Example:
//
//	plugins:
//	  - name: api-key
//	    module: plugins/api-key/api-key.wasm
//	    config:
//	      keys:
//	        - {consumer: mobile-app, key: "${MOBILE_KEY}"}
//	        - {consumer: partner-x, key_sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8}
//	      query: api_key
//
// Answers 401 with WWW-Authenticate: ApiKey realm="wasmgate", header="X-Api-Key"
// and a JSON body {"error": "missing API key"} or {"error": "invalid API key"}.
package main
