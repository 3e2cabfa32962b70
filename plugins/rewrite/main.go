//go:build wasip1

package main

import (
	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	_ "github.com/wasmgate/wasmgate/sdk/go/response" // response header rewrites
)

var rw *rewriter

func init() {
	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) (err error) {
			rw, err = newRewriter(b)
			return err
		},
		OnRequest: func(req *wasmgate.Request) wasmgate.Action {
			if rw.path != nil {
				if p, changed := rw.path.rewritePath(req.Path()); changed {
					if err := req.SetPath(p); err != nil {
						return wasmgate.Fail(err)
					}
				}
			}
			if err := rw.request.apply(req); err != nil {
				return wasmgate.Fail(err)
			}
			return wasmgate.Continue
		},
		OnResponse: func(resp *wasmgate.Response) error { return rw.response.apply(resp) },
	})
}

func main() {}
