package wasmgate_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

// A complete request plugin: it requires a header named in its config and
// answers 400 itself when the header is missing. (Handlers are registered
// from init: a plugin's main never runs.)
func ExampleRegister() {
	type config struct {
		Header string `json:"header"`
	}
	var cfg config

	wasmgate.Register(wasmgate.Plugin{
		Init: func(b []byte) error {
			if err := wasmgate.DecodeConfig(b, &cfg); err != nil {
				return err
			}
			if cfg.Header == "" {
				return errors.New(`missing "header"`)
			}
			return nil
		},
		OnRequest: func(req *wasmgate.Request) wasmgate.Action {
			if _, ok := req.Header(cfg.Header); ok {
				return wasmgate.Continue
			}
			resp, err := req.SendResponse(400, []byte(`{"error":"missing `+cfg.Header+`"}`))
			if err != nil {
				return wasmgate.Fail(err)
			}
			resp.SetHeader("Content-Type", "application/json")
			return wasmgate.Stop
		},
	})
}

// DecodeConfig is strict: a typo in the operator's YAML is an error that
// names the field, which the gateway shows with the file and line.
func ExampleDecodeConfig() {
	var cfg struct {
		Keys   []string          `json:"keys"`
		Leeway wasmgate.Duration `json:"leeway"`
	}
	err := wasmgate.DecodeConfig([]byte(`{"keys":["a"],"leeway":"45s"}`), &cfg)
	fmt.Println(cfg.Keys, cfg.Leeway, err)

	err = wasmgate.DecodeConfig([]byte(`{"keyz":["a"]}`), &cfg)
	fmt.Println(err)

	err = wasmgate.DecodeConfig([]byte(`{"keys":"a"}`), &cfg)
	fmt.Println(err)
	// Output:
	// [a] 45s <nil>
	// unknown field "keyz"
	// field "keys": want list, got string
}

// Durations in configs are Go duration strings or numbers of seconds.
func ExampleDuration() {
	var cfg struct {
		Leeway  wasmgate.Duration `json:"leeway"`
		Timeout wasmgate.Duration `json:"timeout"`
	}
	_ = json.Unmarshal([]byte(`{"leeway":30,"timeout":"250ms"}`), &cfg)
	fmt.Println(cfg.Leeway.D(), cfg.Timeout.D())
	// Output: 30s 250ms
}

// Fetch runs requests in parallel on the host; each result carries its own
// failure, so a plugin can serve what did arrive.
func ExampleFetch() {
	results, err := wasmgate.Fetch(
		wasmgate.OutboundRequest{URL: "upstream://users/users/7", Timeout: 300 * time.Millisecond},
		wasmgate.OutboundRequest{URL: "upstream://feed/feed?user=7", Timeout: 500 * time.Millisecond},
	)
	if err != nil {
		wasmgate.Logf(wasmgate.LevelError, "batch: %v", err)
		return
	}
	for i, r := range results {
		if err := r.Err(); err != nil {
			wasmgate.Logf(wasmgate.LevelWarn, "part %d: %v", i, err)
			continue
		}
		wasmgate.Logf(wasmgate.LevelDebug, "part %d: %d, %d bytes in %v", i, r.Status, len(r.Body), r.Duration)
	}
}

// A result without an HTTP answer says why through Err.
func ExampleOutboundResult_Err() {
	for _, status := range []int{200, 503, -1, -2, -3} {
		r := wasmgate.OutboundResult{Status: status}
		fmt.Println(status, r.Err())
	}
	// Output:
	// 200 <nil>
	// 503 <nil>
	// -1 wasmgate: outbound request timed out
	// -2 wasmgate: outbound connect or network error
	// -3 wasmgate.http_batch: not allowed
}

// A fixed-window rate limit shared by every instance of the plugin, with
// the key-value store's atomic increment.
func ExampleKVIncr() {
	limit := func(req *wasmgate.Request) wasmgate.Action {
		window := wasmgate.Now().Unix() / 60
		key := "rl:" + req.ClientIP() + ":" + strconv.FormatInt(window, 10)
		n, err := wasmgate.KVIncr(key, 1, time.Minute)
		if err != nil {
			return wasmgate.Fail(err)
		}
		if n > 100 {
			if resp, err := req.SendResponse(429, nil); err == nil {
				resp.SetHeader("Retry-After", "60")
			}
			return wasmgate.Stop
		}
		return wasmgate.Continue
	}
	wasmgate.Register(wasmgate.Plugin{OnRequest: limit})
}

// Metrics are declared once as package variables; the first record defines
// them on the host, later records are one host call each.
func ExampleNewCounter() {
	rejected := wasmgate.NewCounter("rejected")
	latency := wasmgate.NewHistogram("check_seconds")

	wasmgate.Register(wasmgate.Plugin{OnRequest: func(req *wasmgate.Request) wasmgate.Action {
		start := wasmgate.Now()
		_, ok := req.Header("Authorization")
		latency.Observe(wasmgate.Now().Sub(start).Seconds())
		if !ok {
			rejected.Inc()
			req.SendResponse(401, nil)
			return wasmgate.Stop
		}
		return wasmgate.Continue
	}})
}

// Host errors match the ABI's codes with errors.Is and name the function.
func ExampleError() {
	err := error(&wasmgate.Error{Func: "kv_get", Code: -1})
	fmt.Println(errors.Is(err, wasmgate.ErrNotFound), err)
	// Output: true wasmgate.kv_get: not found
}
