//go:build wasip1

package main

import wasmgate "github.com/wasmgate/wasmgate/sdk/go"

var (
	v        *verifier
	rejected = wasmgate.NewCounter("rejected")
	// unavail counts 503s: tokens that could not be judged because the
	// JWKS was unreachable.
	unavail = wasmgate.NewCounter("unavailable")
)

func init() {
	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) (err error) {
			v, err = newVerifier(b)
			return err
		},
		OnRequest: func(req *wasmgate.Request) wasmgate.Action {
			id, rej, err := v.authenticate(req, wasmgate.Now())
			if err != nil {
				return wasmgate.Fail(err)
			}
			if rej == nil {
				// For the route's rate limits keyed by consumer, and the access log.
				if id.consumer != "" {
					if err := wasmgate.SetConsumer(id.consumer); err != nil {
						return wasmgate.Fail(err)
					}
				}
				// For the route's authorize policy (scopes, groups, claims).
				if err := wasmgate.SetClaims(id.claims); err != nil {
					return wasmgate.Fail(err)
				}
				return wasmgate.Continue
			}
			if rej.status == 401 {
				rejected.Inc()
			} else {
				unavail.Inc()
			}
			resp, err := req.SendResponse(rej.status, rej.body)
			if err != nil {
				return wasmgate.Fail(err)
			}
			resp.SetHeader("Content-Type", "application/json")
			if rej.wwwAuthenticate != "" {
				resp.SetHeader("WWW-Authenticate", rej.wwwAuthenticate)
			}
			if rej.retryAfter != "" {
				resp.SetHeader("Retry-After", rej.retryAfter)
			}
			resp.SetHeader("Cache-Control", "no-store")
			return wasmgate.Stop
		},
	})
}

func main() {}
