package abi

import (
	"context"
	"testing"

	"github.com/valyala/fasthttp"
)

// The benchmarks below drive host functions through the table, as the
// runtime does, so that they measure the same thing whatever the functions
// are built from: the per-call cost of the ABI on the host side.

// BenchmarkHostCall runs the functions a plugin calls on every request,
// and header_set.
func BenchmarkHostCall(b *testing.B) {
	h := newHarness(b, PhaseRequest)
	np, nl := h.put("X-Multi")
	vp, vl := h.put("v")
	calls := append(requestCalls(h), hostCall{"header_set", []uint64{KindRequest, np, nl, vp, vl}})
	stack := make([]uint64, 8)
	for _, cl := range calls {
		fn := h.fns[cl.fn].Fn
		b.Run(cl.fn, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				copy(stack, cl.args)
				fn(h.c, stack)
			}
		})
	}
}

// BenchmarkHTTPBatch runs a batch of n requests to an in-process upstream
// (no network): decoding, checks, dispatch and the encoding of the results.
func BenchmarkHTTPBatch(b *testing.B) {
	for _, n := range []int{1, 4} {
		b.Run(string(rune('0'+n)), func(b *testing.B) {
			h := newHarness(b, PhaseRequest)
			h.c.Env.Out = &Outbound{
				Upstreams: map[string]bool{"users": true},
				Upstream: func(_ context.Context, _ string, _ *fasthttp.Request, resp *fasthttp.Response) error {
					resp.SetStatusCode(200)
					resp.Header.Set("Content-Type", "application/json")
					resp.SetBodyString(`{"id":1}`)
					return nil
				},
			}
			reqs := make([]BatchRequest, n)
			for i := range reqs {
				reqs[i] = BatchRequest{Method: []byte("GET"), URL: []byte("upstream://users/u/1"),
					Headers: []Header{{Name: []byte("Accept"), Value: []byte("application/json")}}}
			}
			enc := EncodeBatch(nil, reqs)
			p := h.alloc(len(enc))
			copy(h.mem[p:], enc)
			fn := h.fns["http_batch"].Fn
			stack := make([]uint64, 2)
			b.ReportAllocs()
			for b.Loop() {
				stack[0], stack[1] = p, uint64(len(enc))
				fn(h.c, stack)
				if int32(stack[0]) <= 0 {
					b.Fatalf("http_batch = %d", int32(stack[0]))
				}
			}
		})
	}
}
