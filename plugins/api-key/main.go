//go:build wasip1

package main

import wasmgate "github.com/wasmgate/wasmgate/sdk/go"

var (
	ch       *checker
	rejected = wasmgate.NewCounter("rejected")
)

func init() {
	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) (err error) {
			ch, err = newChecker(b)
			return err
		},
		OnRequest: func(req *wasmgate.Request) wasmgate.Action {
			consumer, rej, err := ch.check(req)
			if err != nil {
				return wasmgate.Fail(err)
			}
			if rej == nil {
				// For the route's rate limits keyed by consumer, and the access log.
				if err := wasmgate.SetConsumer(consumer); err != nil {
					return wasmgate.Fail(err)
				}
				return wasmgate.Continue
			}
			rejected.Inc()
			resp, err := req.SendResponse(401, rej.body)
			if err != nil {
				return wasmgate.Fail(err)
			}
			resp.SetHeader("Content-Type", "application/json")
			resp.SetHeader("WWW-Authenticate", rej.challenge)
			return wasmgate.Stop
		},
	})
}

func main() {}
