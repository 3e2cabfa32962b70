package main

import (
	"errors"
	"fmt"
	"slices"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

// checks are the values of "check".
var checks = []string{"inspect", "phase", "kv", "metrics", "log", "outbound", "chain", "instance", "buffers", "gateway", "flags"}

// config is the plugin config (see the package documentation).
type config struct {
	Check   string         `json:"check"`
	Tag     string         `json:"tag"`
	Stop    bool           `json:"stop"`
	Local   bool           `json:"local"`
	BigBody int            `json:"big_body"`
	Batch   []outboundCall `json:"batch"`
	Reject  string         `json:"reject"`
	Echo    any            `json:"echo"`
}

// outboundCall is one request of the outbound check's batch.
type outboundCall struct {
	URL       string            `json:"url"`
	Method    string            `json:"method"`
	TimeoutMS int               `json:"timeout_ms"`
	Headers   map[string]string `json:"headers"`
	Body      string            `json:"body"`
}

// parseConfig decodes and checks the config. A "reject" message is returned
// as the error, so that tests can see a plugin's own words reach the
// operator.
func parseConfig(b []byte) (*config, error) {
	c := &config{}
	if err := wasmgate.DecodeConfig(b, c); err != nil {
		return nil, err
	}
	switch {
	case c.Reject != "":
		return nil, errors.New(c.Reject)
	case c.Check == "":
		return nil, fmt.Errorf(`missing "check" (one of %q)`, checks)
	case !slices.Contains(checks, c.Check):
		return nil, fmt.Errorf(`"check": unknown check %q (want one of %q)`, c.Check, checks)
	case c.Check == "chain" && c.Tag == "":
		return nil, errors.New(`check "chain" needs a "tag"`)
	case c.Check == "outbound" && len(c.Batch) == 0:
		return nil, errors.New(`check "outbound" needs a "batch"`)
	case c.BigBody < 0:
		return nil, errors.New(`"big_body" is negative`)
	}
	for i, o := range c.Batch {
		if o.URL == "" {
			return nil, fmt.Errorf(`batch[%d]: missing "url"`, i)
		}
		if o.TimeoutMS < 0 {
			return nil, fmt.Errorf(`batch[%d]: negative "timeout_ms"`, i)
		}
	}
	return c, nil
}
