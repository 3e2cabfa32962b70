// Command jwt-auth is a wasmgate plugin that authenticates requests with
// JSON Web Tokens (RFC 7519) signed with HS256, RS256, PS256, ES256 or
// EdDSA (Ed25519), with keys from its config and/or from a JWKS fetched
// from a URL. A request without a valid token is answered 401 with a
// WWW-Authenticate challenge (RFC 6750); a valid one goes on with the
// configured claims forwarded as request headers.
//
// Config keys ("keys", "jwks" or both):
//
//	keys            the verification keys, each with exactly one of:
//	  secret          HS256 shared secret (text, at least 32 bytes)
//	  secret_base64   HS256 shared secret in base64 (standard or URL alphabet)
//	  public_key      a public key in PEM: PUBLIC KEY (RSA, EC P-256 or
//	                  Ed25519) or RSA PUBLIC KEY. RSA: at least 2048 bits,
//	                  RS256 (PS256 with alg: PS256); EC P-256: ES256;
//	                  Ed25519: EdDSA. For a certificate, give its key:
//	                  openssl x509 -pubkey -noout -in cert.pem
//	  and optionally:
//	  kid             the key id; a token with a kid is checked only with that key,
//	                  one without a kid with every key of its algorithm
//	  alg             HS256, RS256, PS256, ES256 or EdDSA; must agree with the key material
//	jwks            a JSON Web Key Set (RFC 7517) fetched through the gateway:
//	  url             "upstream://NAME/path" or "http://host:port/path" (required).
//	                  The route's plugin entry must allow it: outbound:
//	                  {upstreams: [NAME]} or {hosts: ["host:port"]}; otherwise
//	                  every fetch fails (logged) and tokens that need the set get 503
//	  cache_ttl       how long a fetched set is used before it is fetched again,
//	                  on the next request (default 5m, at least 1s)
//	  min_refresh_interval  at most one fetch per interval, for all of the
//	                  plugin's instances (default 30s, at least 1s, at most cache_ttl)
//	  max_stale       how long past cache_ttl a set is still used while fetches
//	                  fail (default 24h; 0: not at all)
//	  timeout         one fetch's timeout (default: the plugin's call deadline;
//	                  a fetch runs inside on_request, so give the route a
//	                  call_timeout of a second or so)
//	issuer, issuers     accepted "iss" values (default: any)
//	audience, audiences accepted "aud" values; a token's aud (string or list) must
//	                    contain one (default: any)
//	leeway          clock skew allowed on exp, nbf and iat: "30s" or seconds
//	                (default 60s; 0 for none; max 10m)
//	require_exp     refuse tokens without "exp" (default true)
//	header          where the token is (default Authorization, as "Bearer <token>";
//	                any other header holds the bare token)
//	query           a query parameter that may hold the token instead (default none)
//	realm           the challenge's realm (default "wasmgate")
//	forward_claims  claim path → request header, e.g. {sub: X-User-Id}; dotted
//	                paths reach nested claims (realm_access.roles). Those headers
//	                are always removed from the client's request first, so they
//	                only ever carry verified values. Lists are comma-joined.
//	strip_token     remove the token header before proxying (default false)
//	consumer_claim  the claim that names the consumer (default "sub"), told to the
//	                gateway with set_consumer: rate limits with key: consumer
//	                count per consumer, and the access log shows it. The whole
//	                verified payload goes to the gateway with set_claims, for
//	                the route's authorize policy (scopes, groups, claims).
//	verify          where RSA signatures (RS256, PS256) are checked: "host"
//	                (default; the gateway's crypto_verify, native code) or
//	                "guest" (this module's own wasm code, an order of magnitude
//	                slower; kept as a cross-check). ES256 and EdDSA are always
//	                checked by the host.
//
// Time claims: a token is refused when now >= exp + leeway ("token
// expired"), now < nbf - leeway ("token not yet valid") or now < iat -
// leeway ("token issued in the future"); a time claim that is not a number
// makes the token malformed.
//
// The JWKS. Keys of type RSA (n, e), EC on P-256 (x, y) and OKP Ed25519 (x)
// are used; a key whose "use" is not "sig", whose "key_ops" lack "verify",
// of another type or curve (symmetric "oct" keys included), or whose "alg"
// this plugin does not verify is skipped (and logged at each fetch). A
// key's "alg", when present, is the only algorithm it verifies; an RSA key
// without one verifies RS256 and PS256. A token without a kid is tried
// with every key of its algorithm; a kid that names a configured key never
// consults the JWKS.
//
// The set is fetched on the first request that needs it (on_init cannot
// make outbound calls), kept by each instance and shared through the
// plugin's KV store (so one fetch serves every instance and route of the
// same URL), and fetched again on the first request after cache_ttl or
// when a token names a kid the set does not have (a rotation), in both
// cases at most once per min_refresh_interval across all instances: a
// spray of tokens with made-up kids costs at most one fetch per interval,
// and each such token gets 401 "unknown key". (An instance with no usable
// set at all, e.g. one started while another fetched, may also fetch once
// per interval on its own.) A failed fetch (network, timeout, non-200
// status, not a key set, over 1 MiB) keeps the keys already fetched in use
// up to max_stale; a token those keys cannot vouch for (an unknown kid, or
// no set at all) is answered 503 with Retry-After (when the next fetch may
// be tried) and {"error":"temporarily_unavailable","error_description":
// "signing keys unavailable"}: the token may be good, the gateway cannot
// tell. Counters: jwks_fetches, jwks_fetch_failures, unavailable (503s).
//
// Example:
//
//	plugins:
//	  - name: jwt
//	    module: plugins/jwt-auth/jwt-auth.wasm
//	    config:
//	      keys:
//	        - {kid: hs1, secret: "${JWT_SECRET}"}
//	        - kid: rs1
//	          public_key: |
//	            -----BEGIN PUBLIC KEY-----
//	            ...
//	            -----END PUBLIC KEY-----
//	      issuer: https://auth.example.com
//	      audience: api
//	      leeway: 30s
//	      forward_claims: {sub: X-User-Id, scope: X-Scopes}
//
// With keys from an identity provider's JWKS (the outbound allowance and
// limits are the route's plugin entry's):
//
//	upstreams:
//	  - {name: idp, targets: [{address: auth.internal:8080}]}
//	routes:
//	  - name: api
//	    match: {path_prefix: /api}
//	    upstream: api
//	    plugins:
//	      - name: jwt
//	        outbound: {upstreams: [idp]}
//	        limits: {call_timeout: 1s}
//	        config:
//	          jwks: {url: "upstream://idp/.well-known/jwks.json", cache_ttl: 5m, min_refresh_interval: 30s}
//	          issuer: https://auth.example.com
//	          audience: api
//
// Answers:
//
//	no token       401, WWW-Authenticate: Bearer realm="wasmgate"
//	invalid token  401, WWW-Authenticate: Bearer realm="wasmgate", error="invalid_token",
//	               error_description="token expired" (or "token not yet valid",
//	               "token issued in the future", "invalid signature",
//	               "unknown key", "invalid audience", ...)
//	keys unavailable  503, Retry-After: N (JWKS only, see above)
//
// with a JSON body {"error": ..., "error_description": ...}. The metric
// counter "rejected" counts 401s.
//
// Cost: an RS256 verification is a 2048-bit RSA public-key operation. With
// verify: host it runs natively in the gateway, which keeps the parsed key
// cached; with verify: guest it runs in wasm, where big-number arithmetic
// has no assembly. host/wasm's BenchmarkJWTAuth measures one on_request
// with a valid RS256 token both ways. HS256 is a hash, always in the guest.
// A request whose JWKS keys are fresh in the instance makes no KV or
// outbound call.
package main
