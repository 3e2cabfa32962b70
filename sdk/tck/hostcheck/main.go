//go:build wasip1

package main

import (
	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
	_ "github.com/wasmgate/wasmgate/sdk/go/response" // the checks look at responses too
)

func init() {
	// Package initialisation is the reactor's _initialize: probe the host
	// before on_init, then register.
	initializeProbe = probeInitialize()
	wasmgate.Register(wasmgate.Plugin{
		Init:       onInit,
		OnRequest:  onRequest,
		OnResponse: onResponse,
	})
}

func main() {}
