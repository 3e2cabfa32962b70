//go:build wasip1

package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

var cfg config

func init() {
	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) error {
			c, err := parseConfig(b)
			if err != nil {
				return err
			}
			cfg = c
			if cfg.On == "init" && cfg.Mode != "ok" {
				if r := misbehave(); r != 0 {
					return errors.New("fault: garbage in on_init")
				}
			}
			return nil
		},
		OnRequest: func(req *wasmgate.Request) wasmgate.Action {
			if cfg.On != "request" {
				return wasmgate.Continue
			}
			if cfg.fires(count()) {
				return wasmgate.Action(misbehave())
			}
			if cfg.Header != "" {
				if err := req.SetHeader(cfg.Header, "1"); err != nil {
					return wasmgate.Fail(err)
				}
			}
			return wasmgate.Continue
		},
	})
}

// onResponse is exported here rather than through sdk/go/response so that
// mode garbage returns its raw value from on_response too.
//
//go:wasmexport on_response
func onResponse() (code int32) {
	// Like the SDK's hooks: a panic becomes a failed hook with a message.
	defer func() {
		if r := recover(); r != nil {
			wasmgate.SetError(fmt.Sprint("panic: ", r))
			code = -1
		}
	}()
	if cfg.On != "response" {
		return 0
	}
	if cfg.fires(count()) {
		return misbehave()
	}
	if cfg.Header != "" {
		if err := (&wasmgate.Response{}).SetHeader(cfg.Header, "1"); err != nil {
			wasmgate.SetError(err.Error())
			return -1
		}
	}
	return 0
}

// count numbers the plugin's calls across its instances (1, 2, ...).
func count() int64 {
	if cfg.Every == 1 {
		return 1
	}
	n, err := wasmgate.KVIncr("fault_calls", 1, 0)
	if err != nil {
		wasmgate.Logf(wasmgate.LevelWarn, "fault: counting calls: %v", err)
		return 1
	}
	return n
}

// spin and hog are package variables so the compiler keeps the loops.
var (
	spin uint64
	hog  [][]byte
)

// misbehave does what cfg.Mode says; when it returns, the result is the
// hook's return value.
func misbehave() int32 {
	switch cfg.Mode {
	case "loop":
		for {
			spin++
		}
	case "alloc":
		// 8 MiB blocks reach any memory cap in a few iterations, well
		// before a call deadline; each block is touched and kept.
		for {
			b := make([]byte, 8<<20)
			b[0], b[len(b)-1] = 1, 1
			hog = append(hog, b)
		}
	case "trap":
		runtime.Breakpoint() // compiles to `unreachable`
	case "panic":
		panic("fault: panic mode")
	case "exit":
		os.Exit(3)
	case "garbage":
		return garbageValue
	case "bad_pointer":
		// 64 bytes at the top of the 4 GiB address space: past any memory
		// a plugin can have (and ptr+len wraps a 32-bit sum to 0, which a
		// careless bounds check would let through).
		return badRandomGet(0xFFFF_FFC0, 64)
	}
	return 0
}

// badRandomGet is wasmgate.random_get declared with a raw pointer; the SDK
// does not use random_get here, so the module imports it once.
//
//go:wasmimport wasmgate random_get
func badRandomGet(ptr uint32, n int32) int32

func main() {}
