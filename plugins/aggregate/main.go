//go:build wasip1

package main

import wasmgate "github.com/wasmgate/wasmgate/sdk/go"

var (
	agg          *aggregator
	batchSeconds = wasmgate.NewHistogram("batch_seconds")
	partFailures = wasmgate.NewCounter("part_failures")
)

func init() {
	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) (err error) {
			agg, err = newAggregator(b)
			return err
		},
		OnRequest: func(req *wasmgate.Request) wasmgate.Action {
			user, err := agg.userID(req)
			if err != nil {
				return respond(req, 400, agg.missingUserBody(err), "")
			}
			start := wasmgate.Now()
			results, err := wasmgate.Fetch(agg.requests(user, req)...)
			if err != nil {
				return wasmgate.Fail(err)
			}
			batchSeconds.Observe(wasmgate.Now().Sub(start).Seconds())
			ans := agg.merge(results)
			if ans.failed > 0 {
				partFailures.Add(float64(ans.failed))
			}
			return respond(req, ans.status, ans.body, ans.timing)
		},
	})
}

func respond(req *wasmgate.Request, status int, body []byte, timing string) wasmgate.Action {
	resp, err := req.SendResponse(status, body)
	if err != nil {
		return wasmgate.Fail(err)
	}
	resp.SetHeader("Content-Type", "application/json")
	if timing != "" {
		resp.SetHeader("Server-Timing", timing)
	}
	return wasmgate.Stop
}

func main() {}
