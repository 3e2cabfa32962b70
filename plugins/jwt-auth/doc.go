// Command jwt-auth is a wasmgate plugin that authenticates requests with
// JSON Web Tokens (RFC 7519) signed with HS256 or RS256. A request without
// a valid token is answered 401 with a WWW-Authenticate challenge
// (RFC 6750); a valid one goes on with the configured claims forwarded as
// request headers.
//
// Config keys:
//
//	keys            required; the verification keys, each with exactly one of:
//	  secret          HS256 shared secret (text, at least 32 bytes)
//	  secret_base64   HS256 shared secret in base64 (standard or URL alphabet)
//	  public_key      RS256 public key in PEM: PUBLIC KEY or RSA PUBLIC KEY
//	                  (at least 2048 bits; for a certificate, give its key:
//	                  openssl x509 -pubkey -noout -in cert.pem)
//	  and optionally:
//	  kid             the key id; a token with a kid is checked only with that key,
//	                  one without a kid with every key of its algorithm
//	  alg             HS256 or RS256; must agree with the key material
//	issuer, issuers     accepted "iss" values (default: any)
//	audience, audiences accepted "aud" values; a token's aud (string or list) must
//	                    contain one (default: any)
//	leeway          clock skew allowed on exp and nbf: "30s" or seconds (default 0, max 10m)
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
//	                count per consumer, and the access log shows it
//	verify          where RS256 signatures are checked: "host" (default; the
//	                gateway's crypto_verify, native code) or "guest" (this
//	                module's own wasm code, an order of magnitude slower; kept
//	                for hosts without crypto_verify and as a cross-check)
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
// Answers:
//
//	no token       401, WWW-Authenticate: Bearer realm="wasmgate"
//	invalid token  401, WWW-Authenticate: Bearer realm="wasmgate", error="invalid_token",
//	               error_description="token expired" (or "invalid signature",
//	               "unknown key", "invalid audience", ...)
//
// with a JSON body {"error": ..., "error_description": ...}. The metric
// counter "rejected" counts 401s.
//
// Cost: an RS256 verification is a 2048-bit RSA public-key operation. With
// verify: host it runs natively in the gateway, which keeps the parsed key
// cached; with verify: guest it runs in wasm, where big-number arithmetic
// has no assembly. host/wasm's BenchmarkJWTAuth measures one on_request
// with a valid RS256 token both ways. HS256 is a hash, always in the guest.
package main
