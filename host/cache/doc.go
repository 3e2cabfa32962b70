// Package cache is wasmgate's HTTP response cache: one Cache per route,
// with the semantics of a shared cache (RFC 9111, plus RFC 5861's
// stale-while-revalidate and stale-if-error), stored in ristretto under a
// byte budget.
//
// The server calls Serve between a route's plugin chain and its upstream,
// with a Fetcher that performs the upstream exchange. Serve answers from
// the store, or fills the store through the Fetcher, or passes the request
// through untouched, and says which with a Status (BYPASS, MISS, HIT,
// STALE, REVALIDATED) that it also writes into a response header.
//
// # Keys and fill requests
//
// A request's key is computed from the parts Policy.Key selects (see
// KeySpec). Its text form is stable, so that admins purge by prefix:
//
//	host path [ "?" query ] { " h:" name "=" value } { " c:" name "=" value }
//	example.com/products?color=red&page=2 h:accept-language=en c:ab=b
//
// host is lower-cased, without a trailing dot or the scheme's default
// port. path is the canonical path (httpsyntax.CleanPath, encoded slashes
// kept): the one the gateway matched and forwards ("/a/../b" and "/%61"
// are "/b" and "/a"; "/a%2Fb" stays apart from "/a/b").
// query holds the keyed parameters only, sorted by name then value, each
// decoded and re-encoded canonically (unreserved characters literal, all
// else %XX in upper case), and is omitted when empty. The keyed headers
// (lower-case names, first occurrence) and cookies present in the request
// follow in name order, their values escaped so that the text holds no
// space or control byte: two different requests never share a key by
// concatenation. Credentials (a keyed Authorization, Proxy-Authorization
// or whole Cookie header) appear as "#" and 32 hex digits of their
// SHA-256, so that a key listing does not show them. The host, path and
// query part is the key's target URI, which unsafe methods invalidate.
//
// A plugin may set a request's key instead (Serve's key argument). It is
// stored as "@" followed by the plugin's key: a computed key never starts
// with '@' (the host escapes it as %40), so a plugin key such as
// "example.com/home" cannot name, and poison, the entry of GET
// example.com/home. Keys lists plugin keys with their "@", and admins
// purge them as such: PurgeKey("@tenant-a/home"), PurgePrefix("@tenant-a/"),
// PurgePrefix("@") for all of them.
//
// The request a fill sends upstream is built from those same parts, not
// copied from the client's request: GET, Host, path, the keyed query
// parameters in their canonical order and encoding, the keyed headers and
// cookies (the Cookie header is rebuilt from the keyed cookies), the
// request headers the stored response Varies on, and the cache's own
// conditional headers. Nothing else the client sent reaches the upstream
// on a fill: not X-Forwarded-Host, X-Original-URL, X-HTTP-Method-Override
// or any other unkeyed header, not an unkeyed cookie or query parameter,
// not a body. What a fill stores under a key is therefore what the
// upstream answers for exactly that key, whoever caused the fill: the
// unkeyed-input attacks of web cache poisoning have nothing to work with.
// The price is that a route whose upstream depends on an input must key
// it. Requests the cache does not store (other methods, an unkeyed
// Authorization, hit-for-pass variants) go upstream untouched.
//
// When the answer to a fill may not be stored (private, no-store,
// Set-Cookie, Vary: *, too large, a status not in Policy.Statuses...),
// nobody gets it: it answers the fill request, not the client's, and
// lacks the client's unkeyed inputs (with an unkeyed session cookie, the
// anonymous page or a 401). The client whose request started the fill is
// answered by its own request, sent untouched (BYPASS), like the requests
// coalesced behind it. The first request for a key whose responses are
// not storable therefore costs two upstream requests; hit-for-pass then
// sends the next ones straight upstream.
//
// # What is stored
//
// Responses to GET, with a status in Policy.Statuses, that the upstream
// allows a shared cache to store: not no-store (unless must-understand),
// not private (private="field" and no-cache="field" store the response
// without those fields), not Vary: *, not Set-Cookie unless
// Policy.StoreSetCookie (the stored copy drops it), not larger than
// Policy.MaxObjectBytes, and with a freshness lifetime or a validator. A
// request carrying Authorization is cached only when Authorization is a
// keyed header, and its response only when it says public, s-maxage or
// must-revalidate. A request with Cache-Control: no-store is answered from
// the store when it can be and its response is not stored. HEAD is
// answered from the GET entry, and a HEAD miss fills with GET.
//
// Freshness comes from s-maxage, max-age, Expires - Date, in that order,
// then Policy.DefaultTTL when the upstream said nothing; Policy.MaxTTL caps
// it. Age counts the upstream's Age header and the time the exchange took
// (RFC 9111 section 4.2.3), and served responses carry Age. An invalid or
// conflicting max-age, or an invalid Expires, makes a response stale.
// no-cache stores but validates before each use; must-revalidate,
// proxy-revalidate and s-maxage forbid serving stale.
//
// Clients' max-age, max-stale, min-fresh, no-cache, no-store and
// only-if-cached (504 when nothing acceptable is stored) are honoured, and
// Pragma: no-cache when there is no Cache-Control. If-None-Match and
// If-Modified-Since are answered 304 from stored 2xx responses.
//
// Stale entries with a validator are revalidated with a conditional fill;
// a 304 refreshes the stored headers and freshness (REVALIDATED). Within
// stale-while-revalidate a stale response is served (STALE) and one
// background request per key refreshes it; within stale-if-error it is
// served when the upstream fails or answers 500, 502, 503 or 504. Unsafe
// methods that succeed invalidate the stored responses of their target
// URI.
//
// # Coalescing
//
// Concurrent misses (and revalidations) of one key (and Vary variant)
// make one upstream request; the others wait and are answered from its
// response. When that response turns out not storable, nobody gets it:
// each request, the fill's included, is passed through with its own
// request, and the variant is marked hit-for-pass for a few seconds so
// that later requests for it go upstream in parallel instead of queueing
// behind fills nobody may share. The mark replaces that variant's stored
// response, if any, and leaves the key's other variants (a key without
// Vary is one variant). A server error is different: when the upstream
// answers 5xx (or the Fetcher fails) and nothing stale may be served,
// the fill's client gets that response (or error) and every waiting
// request a copy of it (or the same error), as MISS, so that N coalesced
// requests do not become N more requests to an upstream that is failing;
// errors do not mark hit-for-pass.
//
// # Store, index and purges
//
// ristretto holds one node per key (the key's Vary variants, at most 32),
// charged the bytes of key, fields, body and a fixed overhead, with a TTL
// covering freshness, the stale windows and, for responses with a
// validator, Policy.Keep: an expired response that can still be
// revalidated costs a 304 instead of a full body. Beside it an index, kept exact
// through ristretto's exit callback, maps keys, target URIs and surrogate
// keys (Surrogate-Key, space separated; Cache-Tag, comma separated) to
// nodes for PurgeKey, PurgePrefix, PurgeSurrogate and Keys; its size
// follows the store's. Surrogate-Key and Surrogate-Control are not served
// to clients. A fill that started before a purge and ends after it does
// not store what the purge covered.
//
// # Close
//
// Close returns at once, even while stale-while-revalidate refreshes are
// waiting for the upstream (possibly for its timeouts times its retries):
// the server calls it under its reload lock. No refresh starts after it;
// those running end when their Fetcher returns and store nothing, since
// the closed store refuses writes.
//
// # Hot path
//
// A hit does not allocate: the key is built in pooled memory, ristretto is
// keyed by it directly, header fields are copied from the entry's compact
// form and the body is handed to fasthttp with SetBodyRaw. Stored entries
// are immutable and shared, so callers must not modify a served body in
// place (replacing it is fine).
//
// # Deviations
//
//   - Date: fasthttp manages the Date header of the responses it serves,
//     so a served response carries the serving time, not the stored
//     response's Date; Age carries the age. Downstream caches compute the
//     same age either way.
//   - Range requests are answered with the whole 200 response (a cache may
//     ignore Range); partial content is not stored.
//   - Keyed headers, Vary headers, cookies and the request's Cache-Control
//     are read from their first occurrence, and only that one is sent on
//     fills; the key and the fill always agree.
//   - The first fill of a key cannot know which headers its response
//     Varies on, so it sends none of them; when the client sent such a
//     header, the cache then fills the client's own variant with a second
//     request.
//   - A stored response answers everyone who asks for its key, the client
//     whose request caused the fill included, whatever unkeyed inputs
//     they sent: with an unkeyed session cookie and a storable anonymous
//     page, that is the anonymous page. Key what the upstream
//     personalizes on, or keep such requests away from the cache in a
//     plugin. (A response that may not be stored is never shared: see
//     above.)
//   - Location and Content-Location targets are not invalidated by unsafe
//     methods, only the request's own target URI, and keys set by plugins
//     are not reached by it.
package cache
