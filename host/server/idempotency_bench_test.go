package server

import (
	"strconv"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/redistest"
	"github.com/wasmgate/wasmgate/host/testkit"
)

// BenchmarkIdempotency measures what an idempotency key costs a POST: the
// same route without keys, with the local store and with Redis (a real
// redis-server on loopback), each POST with a new key (a claim and a
// completion), and a repeat (a replay, which does not reach the upstream).
// The gateway, the upstream and the client share the process: cpu-ns/op
// is the whole process's CPU per POST, the figure the ratios compare.
//
//	go test -run '^$' -bench Idempotency -benchtime 3000x ./host/server/
func BenchmarkIdempotency(b *testing.B) {
	for _, bc := range []struct {
		name   string
		store  string // "": no idempotency
		repeat bool
	}{
		{"none", "", false},
		{"local", "local", false},
		{"local-replay", "local", true},
		{"redis", "redis", false},
		{"redis-replay", "redis", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			o := startOrders(b)
			redisAddr, policy := "", "{}"
			switch bc.store {
			case "":
				policy = ""
			case "redis":
				redisAddr, policy = redistest.Start(b).Addr(), "{store: redis}"
			}
			cfg := idemConfig(o, redisAddr, policy)
			if policy == "" {
				cfg = idemConfig(o, "", "{methods: [PATCH]}") // the route, keys off for POST
			}
			g := startGateway(b, 100, cfg)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(g.url("/orders"))
			req.Header.SetMethod("POST")
			req.Header.SetContentType("application/json")
			req.SetBodyString(`{"sku":"book-gopl","qty":1}`)
			hc := &fasthttp.HostClient{Addr: g.ProxyAddr()}
			req.Header.Set("Idempotency-Key", "warm")
			if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 201 {
				b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
			}
			key := make([]byte, 0, 32)
			cpu0 := testkit.ProcessCPU()
			b.ResetTimer()
			for i := range b.N {
				if !bc.repeat {
					key = strconv.AppendInt(append(key[:0], "k-"...), int64(i), 10)
					req.Header.SetBytesV("Idempotency-Key", key)
				}
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 201 {
					b.Fatalf("%v %d", err, resp.StatusCode())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(testkit.ProcessCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
