//go:build wasip1

package main

import wasmgate "github.com/wasmgate/wasmgate/sdk/go"

func init() {
	wasmgate.Register(wasmgate.Plugin{
		OnRequest: func(*wasmgate.Request) wasmgate.Action { return wasmgate.Continue },
	})
}

func main() {}
