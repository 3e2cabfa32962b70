package main

import (
	"errors"
	"fmt"
	"slices"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

// garbageValue is the hook result of mode garbage: not a value the ABI lists.
const garbageValue = 0x5eed

var (
	modes = []string{"ok", "loop", "alloc", "trap", "panic", "exit", "garbage", "bad_pointer"}
	hooks = []string{"init", "request", "response"}
)

// config is the plugin's config.
type config struct {
	Mode   string `json:"mode"`
	On     string `json:"on"`
	Every  int64  `json:"every"`
	Header string `json:"header"`
}

// parseConfig decodes and checks the config, filling defaults.
func parseConfig(b []byte) (config, error) {
	var c config
	if err := wasmgate.DecodeConfig(b, &c); err != nil {
		return c, err
	}
	switch {
	case c.Mode == "":
		return c, fmt.Errorf(`missing "mode" (one of %q)`, modes)
	case !slices.Contains(modes, c.Mode):
		return c, fmt.Errorf(`"mode": unknown mode %q (want one of %q)`, c.Mode, modes)
	}
	if c.On == "" {
		c.On = "request"
	}
	if !slices.Contains(hooks, c.On) {
		return c, fmt.Errorf(`"on": unknown hook %q (want init, request or response)`, c.On)
	}
	if c.Every == 0 {
		c.Every = 1
	}
	if c.Every < 0 {
		return c, errors.New(`"every" must be positive`)
	}
	if c.Every > 1 && c.On == "init" {
		return c, errors.New(`"every" counts requests: it does not apply to "on: init"`)
	}
	return c, nil
}

// fires reports whether the call numbered n (from 1) misbehaves.
func (c *config) fires(n int64) bool { return c.Mode != "ok" && n%c.Every == 0 }
