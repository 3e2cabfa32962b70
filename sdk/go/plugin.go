package wasmgate

import (
	"errors"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/wasmgate/wasmgate/sdk/abi"
	"github.com/wasmgate/wasmgate/sdk/go/internal/hooks"
)

// Plugin is a plugin's set of handlers. Register it from an init function;
// any handler may be nil.
type Plugin struct {
	// Init receives the plugin's config for the route (JSON, "{}" when none;
	// sdk/ABI.md section 5) once per instance, before any request. It
	// validates and keeps what the hooks need; a non-nil error rejects the
	// config and its text is what the operator sees, e.g. `missing "keys"`.
	// DecodeConfig does the strict JSON part. With Init nil the plugin takes
	// no config: anything but an empty object is rejected.
	Init func(config []byte) error

	// OnRequest runs for every request of a route that lists the plugin, in
	// chain order. It returns Continue, Stop after SendResponse, or
	// Fail(err).
	OnRequest func(req *Request) Action

	// OnResponse runs for every response, in reverse chain order. A non-nil
	// error fails the hook (the route's failure policy applies). It is called
	// only if the plugin also imports
	// github.com/wasmgate/wasmgate/sdk/go/response, which exports the
	// on_response hook: a plugin without it costs nothing on the response
	// path. Init fails with a clear message if the import is missing.
	OnResponse func(resp *Response) error
}

// Action is what OnRequest tells the gateway to do next.
type Action int32

const (
	// Continue passes the request to the next plugin, then the upstream.
	Continue Action = abi.Continue
	// Stop ends the chain with the local response built by SendResponse;
	// the plugins after this one and the upstream are skipped.
	Stop Action = abi.Stop
)

// hookFailed is the value a failing hook returns: any value the ABI does
// not list fails the hook, and -1 is the one no future version will assign.
const hookFailed = -1

// Fail records err as the reason this hook fails (see SetError) and returns
// the Action that makes the gateway apply the route's failure policy
// (fail_closed: 502; fail_open: skip the plugin).
func Fail(err error) Action {
	msg := "plugin failed"
	if err != nil {
		msg = err.Error()
	}
	SetError(msg)
	return hookFailed
}

var (
	registered    Plugin
	registrations int
	// localSent is true once SendResponse succeeded in the current
	// on_request: the hook must then return Stop.
	localSent bool

	request  Request
	response Response
)

func init() { hooks.Response = handleResponse }

// Register installs the plugin's handlers. Call it exactly once, from an
// init function of package main: a wasm reactor (-buildmode=c-shared) runs
// package initialisation but never main.
func Register(p Plugin) {
	registered = p
	registrations++
}

// handleInit is the on_init hook: read the config, hand it to Init.
func handleInit(configLen int32) (code int32) {
	defer recoverHook(&code)
	switch {
	case registrations == 0:
		return failInit(errors.New("no handlers registered: call wasmgate.Register from an init function (main does not run in a plugin)"))
	case registrations > 1:
		return failInit(errors.New("wasmgate.Register called " + strconv.Itoa(registrations) + " times; call it once"))
	case registered.OnResponse != nil && !hooks.ResponseExported:
		return failInit(errors.New(`Plugin.OnResponse is set but on_response is not exported: import _ "github.com/wasmgate/wasmgate/sdk/go/response"`))
	}
	cfg, err := readConfig(configLen)
	if err != nil {
		return failInit(errors.New("reading the config: " + err.Error()))
	}
	if registered.Init == nil {
		// Checked without encoding/json, which a plugin that takes no
		// config should not have to link.
		if !emptyObject(cfg) {
			return failInit(errors.New("this plugin takes no config, got " + truncateUTF8(string(cfg), 200)))
		}
		return 0
	}
	if err := registered.Init(cfg); err != nil {
		return failInit(err)
	}
	return 0
}

func failInit(err error) int32 {
	SetError(err.Error())
	return 1
}

// emptyObject reports whether b is "{}", "null" or nothing, with any
// surrounding whitespace.
func emptyObject(b []byte) bool {
	s := strings.Trim(string(b), " \t\r\n")
	if s == "" || s == "null" {
		return true
	}
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return false
	}
	return strings.Trim(s[1:len(s)-1], " \t\r\n") == ""
}

// readConfig reads the config bytes; size is on_init's hint, so one call
// with an exact buffer is the common case.
func readConfig(size int32) ([]byte, error) {
	if size < 0 || size > maxRead {
		return nil, &Error{Func: abi.FuncConfigGet, Code: abi.BadArgument}
	}
	buf := make([]byte, size)
	n := hostConfigGet(buf)
	switch {
	case n < 0:
		return nil, codeErr(abi.FuncConfigGet, n)
	case n <= size:
		return buf[:n], nil
	}
	return readOwned(abi.FuncConfigGet, hostConfigGet)
}

// handleRequest is the on_request hook.
func handleRequest() (code int32) {
	localSent = false
	if registered.OnRequest == nil {
		return int32(Continue)
	}
	defer recoverHook(&code)
	return requestResult(registered.OnRequest(&request))
}

// requestResult maps OnRequest's Action to the hook's result and holds the
// SDK's guarantee that Stop and a local response go together: Continue after
// a successful SendResponse is Stop (the response is built, the request must
// go no further), and Stop without one is a failure with a clear message.
// Other values pass through unchanged; the gateway treats them as failures.
func requestResult(a Action) int32 {
	switch a {
	case Continue:
		if localSent {
			return int32(Stop)
		}
	case Stop:
		if !localSent {
			SetError("OnRequest returned Stop without a successful SendResponse")
			return hookFailed
		}
	}
	return int32(a)
}

// handleResponse is the on_response hook (exported by package response).
func handleResponse() (code int32) {
	if registered.OnResponse == nil {
		return 0
	}
	defer recoverHook(&code)
	if err := registered.OnResponse(&response); err != nil {
		SetError(err.Error())
		return hookFailed
	}
	return 0
}

// recoverHook turns a panic in a handler into a failed hook whose error
// names the panic and the frames below it, instead of a runtime abort that
// would lose the message.
func recoverHook(code *int32) {
	r := recover()
	if r == nil {
		return
	}
	SetError("panic: " + panicText(r) + "\n" + panicFrames(debug.Stack()))
	*code = hookFailed
}

// panicText formats a panic value without fmt, which the hook path should
// not force every plugin to link.
func panicText(r any) string {
	switch v := r.(type) {
	case string:
		return v
	case error:
		return v.Error()
	case interface{ String() string }:
		return v.String()
	case int:
		return strconv.Itoa(v)
	}
	return "(a value of a type without a String method)"
}

// panicFrames drops the frames of debug.Stack above the panicking function
// (the goroutine header, debug.Stack, recoverHook and the runtime's panic),
// so the 1 KiB kept by set_error shows the plugin's own frames.
func panicFrames(stack []byte) string {
	s := string(stack)
	if i := strings.Index(s, "\npanic("); i >= 0 {
		s = s[i+1:]
		// Skip "panic(...)" and its file:line.
		for range 2 {
			if j := strings.IndexByte(s, '\n'); j >= 0 {
				s = s[j+1:]
			}
		}
	}
	return s
}
