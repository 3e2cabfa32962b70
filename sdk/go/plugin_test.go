//go:build !wasip1

package wasmgate

import (
	"errors"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/go/internal/hooks"
)

func TestHandleInit(t *testing.T) {
	type cfg struct {
		Name string `json:"name"`
	}
	var got cfg
	withInit := Plugin{Init: func(b []byte) error {
		got = cfg{}
		if err := DecodeConfig(b, &got); err != nil {
			return err
		}
		if got.Name == "" {
			return errors.New(`missing "name"`)
		}
		return nil
	}}
	for _, tc := range []struct {
		name      string
		plugins   []Plugin // registered in order
		exported  bool     // on_response exported
		config    string
		want      int32
		wantError string
	}{
		{name: "accepts", plugins: []Plugin{withInit}, config: `{"name":"x"}`, want: 0},
		{name: "rejects", plugins: []Plugin{withInit}, config: `{}`, want: 1, wantError: `missing "name"`},
		{name: "strict decode", plugins: []Plugin{withInit}, config: `{"nam":"x"}`, want: 1, wantError: `unknown field "nam"`},
		{name: "nothing registered", want: 1, wantError: "no handlers registered: call wasmgate.Register from an init function"},
		{name: "registered twice", plugins: []Plugin{withInit, withInit}, config: `{"name":"x"}`, want: 1, wantError: "wasmgate.Register called 2 times"},
		{
			name: "OnResponse without the response import", config: `{}`, want: 1,
			plugins:   []Plugin{{OnResponse: func(*Response) error { return nil }}},
			wantError: `import _ "github.com/wasmgate/wasmgate/sdk/go/response"`,
		},
		{name: "OnResponse with the import", plugins: []Plugin{{OnResponse: func(*Response) error { return nil }}}, exported: true, config: `{}`},
		{name: "no Init takes no config", plugins: []Plugin{{}}, config: `{}`, want: 0},
		{name: "no Init, spaced empty config", plugins: []Plugin{{}}, config: " { \n} ", want: 0},
		{name: "no Init, null config", plugins: []Plugin{{}}, config: "null", want: 0},
		{name: "no Init rejects config", plugins: []Plugin{{}}, config: `{"a":1}`, want: 1, wantError: `this plugin takes no config, got {"a":1}`},
		{name: "panic in Init", plugins: []Plugin{{Init: func([]byte) error { panic("boom") }}}, config: `{}`, want: hookFailed, wantError: "panic: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost().install(t)
			f.phase, f.config = 0, []byte(tc.config)
			prev := hooks.ResponseExported
			hooks.ResponseExported = tc.exported
			defer func() { hooks.ResponseExported = prev }()
			for _, p := range tc.plugins {
				Register(p)
			}
			if code := handleInit(int32(len(tc.config))); code != tc.want {
				t.Fatalf("on_init = %d, want %d (error %q)", code, tc.want, f.errMsg)
			}
			if !strings.Contains(f.errMsg, tc.wantError) || (tc.wantError == "") != (f.errMsg == "") {
				t.Fatalf("set_error %q, want %q", f.errMsg, tc.wantError)
			}
		})
	}
}

func TestHandleInitConfigSizeHint(t *testing.T) {
	f := newFakeHost().install(t)
	f.phase, f.config = 0, []byte(`{"a":"`+strings.Repeat("x", 5000)+`"}`)
	var got map[string]string
	Register(Plugin{Init: func(b []byte) error { return DecodeConfig(b, &got) }})
	// A hint smaller than the config (it changed) still reads all of it.
	if code := handleInit(10); code != 0 || len(got["a"]) != 5000 {
		t.Fatalf("on_init = %d, %q", code, f.errMsg)
	}
	if code := handleInit(-1); code != 1 || !strings.Contains(f.errMsg, "config_get") {
		t.Fatalf("negative hint: %d %q", code, f.errMsg)
	}
}

func TestHandleRequest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		handler   func(*Request) Action
		want      int32
		wantError string
	}{
		{name: "no handler", want: 0},
		{name: "continue", handler: func(*Request) Action { return Continue }, want: 0},
		{
			name: "stop after send", want: 1,
			handler: func(r *Request) Action {
				if _, err := r.SendResponse(401, []byte("no")); err != nil {
					return Fail(err)
				}
				return Stop
			},
		},
		{
			name: "continue after send is stop", want: 1,
			handler: func(r *Request) Action { r.SendResponse(204, nil); return Continue },
		},
		{name: "stop without send", handler: func(*Request) Action { return Stop }, want: hookFailed, wantError: "Stop without a successful SendResponse"},
		{
			name: "stop after failed send", want: hookFailed, wantError: "Stop without",
			handler: func(r *Request) Action { r.SendResponse(99, nil); return Stop },
		},
		{name: "fail", handler: func(*Request) Action { return Fail(errors.New("upstream key store down")) }, want: hookFailed, wantError: "upstream key store down"},
		{name: "fail nil", handler: func(*Request) Action { return Fail(nil) }, want: hookFailed, wantError: "plugin failed"},
		{name: "other values pass through", handler: func(*Request) Action { return 42 }, want: 42},
		{name: "panic", handler: func(*Request) Action { var m map[string]int; m["x"] = 1; return Continue }, want: hookFailed, wantError: "panic: assignment to entry in nil map"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHost().install(t)
			Register(Plugin{OnRequest: tc.handler})
			if code := handleRequest(); code != tc.want {
				t.Fatalf("on_request = %d, want %d (error %q)", code, tc.want, f.errMsg)
			}
			if !strings.Contains(f.errMsg, tc.wantError) || (tc.wantError == "") != (f.errMsg == "") {
				t.Fatalf("set_error %q, want %q", f.errMsg, tc.wantError)
			}
		})
	}
}

func TestPanicFramesShowPlugin(t *testing.T) {
	f := newFakeHost().install(t)
	Register(Plugin{OnRequest: func(*Request) Action { return explode() }})
	handleRequest()
	if !strings.HasPrefix(f.errMsg, "panic: kaboom\n") || !strings.Contains(f.errMsg, "explode") {
		t.Fatalf("error %q lacks the panic and the plugin frame", f.errMsg)
	}
	if strings.Contains(f.errMsg, "runtime/debug.Stack") {
		t.Fatalf("error %q keeps the SDK's own frames", f.errMsg)
	}
}

func explode() Action { panic("kaboom") }

func TestLocalSentResetPerRequest(t *testing.T) {
	f := newFakeHost().install(t)
	n := 0
	Register(Plugin{OnRequest: func(r *Request) Action {
		n++
		if n == 1 {
			r.SendResponse(403, nil)
			return Stop
		}
		return Continue
	}})
	if code := handleRequest(); code != 1 {
		t.Fatalf("first = %d", code)
	}
	f.localSent = false
	if code := handleRequest(); code != 0 {
		t.Fatalf("second request kept the first one's local response: %d", code)
	}
}

func TestHandleResponse(t *testing.T) {
	f := newFakeHost().install(t)
	f.phase = 2
	if code := handleResponse(); code != 0 {
		t.Fatalf("no handler: %d", code)
	}
	Register(Plugin{OnResponse: func(r *Response) error {
		if r.Status() != 200 {
			return errors.New("unexpected status")
		}
		return r.SetStatus(203)
	}})
	if code := handleResponse(); code != 0 || f.status != 203 {
		t.Fatalf("on_response = %d, status %d, error %q", code, f.status, f.errMsg)
	}
	if code := handleResponse(); code != hookFailed || f.errMsg != "unexpected status" {
		t.Fatalf("failing on_response = %d, error %q", code, f.errMsg)
	}
	if hooks.Response == nil {
		t.Fatal("wasmgate did not hand its response handler to package response")
	}
}
