package httpwasm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/http-wasm/http-wasm-host-go/api/handler"
	refhandler "github.com/http-wasm/http-wasm-host-go/handler"
	"github.com/http-wasm/http-wasm-host-go/tck"
	"github.com/tetratelabs/wazero"
	wazeroapi "github.com/tetratelabs/wazero/api"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/abi"
)

// testMem is the guest memory stand-in: a byte slice whose views alias it,
// as wazero's memory does.
type testMem []byte

func (m testMem) Read(off, n uint32) ([]byte, bool) {
	if uint64(off)+uint64(n) > uint64(len(m)) {
		return nil, false
	}
	return m[off : off+n : off+n], true
}

func (m testMem) Write(off uint32, b []byte) bool {
	if uint64(off)+uint64(len(b)) > uint64(len(m)) {
		return false
	}
	copy(m[off:], b)
	return true
}

const memSize = 1 << 16

// harness drives the http_handler functions by name against a Call the way
// a runtime does: parameters in uint64 slots, results read back from the
// stack; its State is h.s, hung on the Call as the runtime hangs it.
type harness struct {
	t    testing.TB
	c    *abi.Call
	s    *State
	mem  testMem
	next uint32 // bump allocator into mem
	fns  map[string]abi.Func
	logs *bytes.Buffer
}

const testRequest = "POST /a%20b/c?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Multi: one\r\nx-multi: two\r\nX-Empty:\r\n" +
	"Content-Length: 11\r\n\r\nhello world"

// newHarness returns a harness outside any request (as in a start
// function), with a parsed request, an empty response, a scope with a peer
// and a protocol, and an Env with a config and a debug JSON logger.
func newHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, mem: make(testMem, memSize), next: 16, fns: map[string]abi.Func{}, logs: &bytes.Buffer{}, s: NewState()}
	for _, f := range Functions() {
		h.fns[f.Name] = f
	}
	env := &abi.Env{
		Plugin: "p1",
		Route:  "r1",
		Config: []byte(`{"k":"v"}`),
		Log:    slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("plugin", "p1", "route", "r1"),
	}
	h.c = &abi.Call{Ctx: context.Background(), Mem: h.mem, Phase: abi.PhaseInit, Env: env, Ext: h.s}
	return h
}

// begin starts a request: the Call carries it as in handle_request.
func (h *harness) begin() *harness {
	h.t.Helper()
	h.c.Phase = abi.PhaseRequest
	h.c.Req = parseRequest(h.t, testRequest)
	h.c.Resp = &fasthttp.Response{}
	h.c.Scope = &abi.Scope{Client: []byte("192.0.2.7"), Peer: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54321}, Proto: "HTTP/2.0"}
	h.s.Begin()
	return h
}

// afterNext moves to handle_response (after handle_request said next=1):
// the Call's response is the upstream's, status 201, X-Up: 1, "upstream".
func (h *harness) afterNext() *harness {
	h.s.Next(7)
	h.s.AfterNext()
	h.c.Phase = abi.PhaseResponse
	h.c.Resp = &fasthttp.Response{}
	h.c.Resp.SetStatusCode(201)
	h.c.Resp.Header.Set("X-Up", "1")
	h.c.Resp.SetBodyString("upstream")
	return h
}

func parseRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	req := &fasthttp.Request{}
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return req
}

// alloc reserves n bytes of guest memory filled with 0xAA (to see what the
// host writes) and returns their address.
func (h *harness) alloc(n int) uint64 {
	p := h.next
	if int(p)+n > len(h.mem) {
		h.t.Fatalf("test memory exhausted")
	}
	for i := range n {
		h.mem[int(p)+i] = 0xAA
	}
	h.next += uint32(n+7) &^ 7
	return uint64(p)
}

// put copies b into guest memory and returns its (ptr, len).
func (h *harness) put(b string) (uint64, uint64) {
	p := h.alloc(len(b))
	copy(h.mem[p:], b)
	return p, uint64(len(b))
}

func (h *harness) bytes(ptr uint64, n int) []byte { return h.mem[ptr : ptr+uint64(n)] }

// call runs the function name with args and returns its result slot.
func (h *harness) call(name string, args ...uint64) uint64 {
	h.t.Helper()
	f, ok := h.fns[name]
	if !ok {
		h.t.Fatalf("no host function %q", name)
	}
	if len(args) != len(f.Params) {
		h.t.Fatalf("%s: %d args, want %d", name, len(args), len(f.Params))
	}
	stack := make([]uint64, max(len(f.Params), len(f.Results)))
	copy(stack, args)
	f.Fn(h.c, stack)
	if len(f.Results) == 0 {
		return 0
	}
	return stack[0]
}

// get runs a (…, buf, buf_limit) function with a fresh buffer of n bytes
// and returns its result and the whole buffer (0xAA where nothing was
// written).
func (h *harness) get(name string, n int, args ...uint64) (uint64, []byte) {
	h.t.Helper()
	buf := h.alloc(n)
	r := h.call(name, append(args, buf, uint64(n))...)
	return r, h.bytes(buf, n)
}

// getString runs a BufLimit getter with a large buffer and returns what it
// wrote.
func (h *harness) getString(name string, args ...uint64) string {
	h.t.Helper()
	r, b := h.get(name, 4096, args...)
	if r > 4096 {
		h.t.Fatalf("%s = %d", name, r)
	}
	return string(b[:r&0xffffffff])
}

// list runs get_header_names or get_header_values with a large buffer and
// returns the strings and the CountLen.
func (h *harness) list(name string, args ...uint64) ([]string, uint64) {
	h.t.Helper()
	r, b := h.get(name, 4096, args...)
	count, size := r>>32, r&0xffffffff
	if size == 0 {
		return nil, r
	}
	items := strings.Split(strings.TrimSuffix(string(b[:size]), "\x00"), "\x00")
	if uint64(len(items)) != count {
		h.t.Fatalf("%s: %d items %q, count says %d", name, len(items), items, count)
	}
	return items, r
}

// header runs a header write (set_header_value, add_header_value with a
// value; remove_header without).
func (h *harness) header(fn string, kind handler.HeaderKind, name string, value ...string) {
	h.t.Helper()
	np, nl := h.put(name)
	if fn == handler.FuncRemoveHeader {
		h.call(fn, uint64(kind), np, nl)
		return
	}
	vp, vl := h.put(value[0])
	h.call(fn, uint64(kind), np, nl, vp, vl)
}

func (h *harness) values(kind handler.HeaderKind, name string) []string {
	h.t.Helper()
	np, nl := h.put(name)
	v, _ := h.list(handler.FuncGetHeaderValues, uint64(kind), np, nl)
	return v
}

// trapOf runs f and returns the Trap it panicked with; any other panic,
// or none, fails the test.
func trapOf(t testing.TB, f func()) (tr Trap) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		var ok bool
		if tr, ok = r.(Trap); !ok {
			t.Fatalf("want a Trap panic, got %#v", r)
		}
	}()
	f()
	return tr
}

// mustTrap checks that f traps in fn with a message containing msg.
func mustTrap(t testing.TB, fn, msg string, f func()) {
	t.Helper()
	tr := trapOf(t, f)
	if tr.Func != fn || !strings.Contains(tr.Msg, msg) {
		t.Fatalf("trap %q, want one of %s containing %q", tr.Error(), fn, msg)
	}
	if !strings.HasPrefix(tr.Error(), "http_handler."+fn+": ") {
		t.Fatalf("trap message %q does not name http_handler.%s", tr.Error(), fn)
	}
}

// TestTableMatchesReference: the table has exactly the functions of the
// reference host module (http-wasm-host-go v0.7.0's handler package, with
// wazero), with their signatures.
func TestTableMatchesReference(t *testing.T) {
	ctx := context.Background()
	var rt wazero.Runtime
	mw, err := refhandler.NewMiddleware(ctx, tck.GuestWASM, handler.UnimplementedHost{},
		refhandler.Runtime(func(ctx context.Context) (wazero.Runtime, error) {
			rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
			return rt, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close(ctx)
	mod := rt.Module(ModuleName)
	if mod == nil {
		t.Fatalf("the reference instantiated no %s module", ModuleName)
	}
	ref := mod.ExportedFunctionDefinitions()
	ours := map[string]abi.Func{}
	for _, f := range Functions() {
		ours[f.Name] = f
	}
	if len(ref) != len(ours) || len(ours) != 19 {
		t.Errorf("the reference has %d functions, the table %d (want 19)", len(ref), len(ours))
	}
	types := func(ts []wazeroapi.ValueType) []abi.ValueType {
		out := []abi.ValueType{}
		for _, v := range ts {
			out = append(out, abi.ValueType(v))
		}
		return out
	}
	for name, def := range ref {
		f, ok := ours[name]
		switch {
		case !ok:
			t.Errorf("%s.%s is not in the table", ModuleName, name)
		case !slices.Equal(f.Params, types(def.ParamTypes())) || !slices.Equal(f.Results, types(def.ResultTypes())):
			t.Errorf("%s: table %v -> %v, reference %v -> %v", name, f.Params, f.Results, types(def.ParamTypes()), types(def.ResultTypes()))
		}
	}
	for name := range ours {
		if ref[name] == nil {
			t.Errorf("%s.%s is not in the reference", ModuleName, name)
		}
	}
	// Every import of the TCK guest is in the table, with its signature.
	cm, err := rt.CompileModule(ctx, tck.GuestWASM)
	if err != nil {
		t.Fatal(err)
	}
	for _, def := range cm.ImportedFunctions() {
		if m, name, _ := def.Import(); m == ModuleName {
			f := ours[name]
			if !slices.Equal(f.Params, types(def.ParamTypes())) || !slices.Equal(f.Results, types(def.ResultTypes())) {
				t.Errorf("tck.wasm imports %s %v -> %v, table %v -> %v", name, types(def.ParamTypes()), types(def.ResultTypes()), f.Params, f.Results)
			}
		}
	}
}

func TestFunctionsTable(t *testing.T) {
	fns := Functions()
	for _, f := range fns {
		if f.Module != ModuleName || f.ImportModule() != "http_handler" || f.Fn == nil {
			t.Errorf("%s: module %q (%q), fn %v", f.Name, f.Module, f.ImportModule(), f.Fn != nil)
		}
	}
	fns[0].Name = "changed"
	if Functions()[0].Name == "changed" {
		t.Error("Functions returns the package table itself")
	}
	for _, f := range abi.Functions() {
		if f.ImportModule() != abi.ModuleName {
			t.Errorf("native %s in module %q", f.Name, f.ImportModule())
		}
	}
}

func TestTrap(t *testing.T) {
	tr := Trap{Func: "set_uri", Msg: "bad"}
	if tr.Error() != "http_handler.set_uri: bad" {
		t.Fatalf("Error() = %q", tr.Error())
	}
	// wazero wraps a recovered error panic: errors.As still finds the Trap.
	var got Trap
	if err := fmt.Errorf("%w (recovered by wazero)", error(tr)); !errors.As(err, &got) || got != tr {
		t.Fatalf("errors.As = %v", got)
	}
}

func TestEnableFeatures(t *testing.T) {
	h := newHarness(t)
	enable := func(f handler.Features) handler.Features {
		return handler.Features(h.call(handler.FuncEnableFeatures, uint64(f)))
	}
	// Outside a request: the instance's features, accumulated; trailers
	// never granted.
	if got := enable(handler.FeatureBufferRequest | handler.FeatureTrailers); got != handler.FeatureBufferRequest {
		t.Fatalf("init enable = %v", got)
	}
	if got := enable(0); got != handler.FeatureBufferRequest {
		t.Fatalf("init union = %v", got)
	}
	// A request starts from them; what it enables is its own.
	h.begin()
	if got := enable(handler.FeatureBufferResponse); got != Supported {
		t.Fatalf("request enable = %v, want %v", got, Supported)
	}
	if got := enable(7); got != Supported {
		t.Fatalf("enable(7) = %v", got)
	}
	h.s.End()
	h.begin()
	if got := enable(0); got != handler.FeatureBufferRequest {
		t.Fatalf("the last request's features leaked: %v", got)
	}
	// Features never spill to another instance.
	if got := handler.Features(newHarness(t).call(handler.FuncEnableFeatures, 0)); got != 0 {
		t.Fatalf("fresh instance = %v", got)
	}
}

func TestGetConfig(t *testing.T) {
	for _, inRequest := range []bool{false, true} {
		h := newHarness(t)
		if inRequest {
			h.begin()
		}
		if got := h.getString(handler.FuncGetConfig); got != `{"k":"v"}` {
			t.Fatalf("config = %q", got)
		}
		// Too small: the length, nothing written.
		r, b := h.get(handler.FuncGetConfig, 8)
		if r != 9 || !bytes.Equal(b, bytes.Repeat([]byte{0xAA}, 8)) {
			t.Fatalf("short buffer: %d %q", r, b)
		}
		// A buffer outside memory is not touched when nothing fits.
		if r := h.call(handler.FuncGetConfig, memSize-2, 3); r != 9 {
			t.Fatalf("size query = %d", r)
		}
		h.c.Env.Config = nil
		if r, b := h.get(handler.FuncGetConfig, 8); r != 0 || b[0] != 0xAA {
			t.Fatalf("no config: %d %q", r, b)
		}
		h.c.Env = nil
		if r, _ := h.get(handler.FuncGetConfig, 8); r != 0 {
			t.Fatalf("no env: %d", r)
		}
	}
}

func logLines(t *testing.T, h *harness) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(h.logs.String()), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLog(t *testing.T) {
	h := newHarness(t)
	levels := []struct {
		level int32
		slog  string
	}{{-1, "DEBUG"}, {0, "INFO"}, {1, "WARN"}, {2, "ERROR"}}
	for _, l := range levels {
		if r := h.call(handler.FuncLogEnabled, uint64(uint32(l.level))); r != 1 {
			t.Errorf("log_enabled(%d) = %d", l.level, r)
		}
		p, n := h.put("msg " + l.slog)
		h.call(handler.FuncLog, uint64(uint32(l.level)), p, n)
	}
	for _, off := range []int32{3, 99, -2} {
		if r := h.call(handler.FuncLogEnabled, uint64(uint32(off))); r != 0 {
			t.Errorf("log_enabled(%d) = %d", off, r)
		}
		// Not read: a dangling buffer does not trap.
		h.call(handler.FuncLog, uint64(uint32(off)), memSize+100, 10)
	}
	lines := logLines(t, h)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), h.logs)
	}
	for i, l := range levels {
		if m := lines[i]; m["level"] != l.slog || m["msg"] != "msg "+l.slog || m["plugin"] != "p1" || m["route"] != "r1" {
			t.Errorf("line %d = %v", i, m)
		}
	}
	// A level the logger drops: disabled, and the message is not read.
	h.logs.Reset()
	h.c.Env.Log = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if r := h.call(handler.FuncLogEnabled, 0); r != 0 {
		t.Errorf("info enabled under a warn logger")
	}
	h.call(handler.FuncLog, 0, memSize+100, 10)
	// An enabled one reads it: out of bounds traps; long messages are cut.
	mustTrap(t, handler.FuncLog, "out of bounds", func() { h.call(handler.FuncLog, 2, memSize-4, 10) })
	p, n := h.put(strings.Repeat("x", abi.MaxLogMessage+10))
	h.call(handler.FuncLog, 2, p, n)
	if lines := logLines(t, h); len(lines) != 1 || len(lines[0]["msg"].(string)) != abi.MaxLogMessage {
		t.Fatalf("long message: %v", lines)
	}
	// The budget is the plugin's, shared with the native log function.
	h.logs.Reset()
	h.c.Env.Log = slog.New(slog.NewJSONHandler(h.logs, nil))
	h.c.Env.LogRate = abi.NewRateLimitedLogs(slog.New(slog.DiscardHandler), "p1", 0.001, 3)
	native := map[string]abi.Func{}
	for _, f := range abi.Functions() {
		native[f.Name] = f
	}
	for range 2 {
		p, n := h.put("native")
		native["log"].Fn(h.c, []uint64{uint64(abi.LogInfo), p, n})
	}
	for range 5 {
		p, n := h.put("http-wasm")
		h.call(handler.FuncLog, 0, p, n)
	}
	if lines := logLines(t, h); len(lines) != 3 || h.c.Env.LogRate.Dropped() != 4 {
		t.Fatalf("%d lines, %d dropped; want the burst of 3 shared", len(lines), h.c.Env.LogRate.Dropped())
	}
}

func TestMethod(t *testing.T) {
	h := newHarness(t).begin()
	if got := h.getString(handler.FuncGetMethod); got != "POST" {
		t.Fatalf("method = %q", got)
	}
	p, n := h.put("PATCH")
	h.call(handler.FuncSetMethod, p, n)
	if got := h.getString(handler.FuncGetMethod); got != "PATCH" || string(h.c.Req.Header.Method()) != "PATCH" {
		t.Fatalf("method after set = %q", got)
	}
	mustTrap(t, handler.FuncSetMethod, "cannot be empty", func() { h.call(handler.FuncSetMethod, p, 0) })
	p, n = h.put("GE T")
	mustTrap(t, handler.FuncSetMethod, "not a token", func() { h.call(handler.FuncSetMethod, p, n) })
	// The client's connection is framed by its own method: never to or
	// from HEAD, never to CONNECT.
	for _, m := range []string{"HEAD", "CONNECT"} {
		p, n = h.put(m)
		mustTrap(t, handler.FuncSetMethod, "to or from HEAD", func() { h.call(handler.FuncSetMethod, p, n) })
	}
	h.c.Req.Header.SetMethod("HEAD")
	p, n = h.put("GET")
	mustTrap(t, handler.FuncSetMethod, "to or from HEAD", func() { h.call(handler.FuncSetMethod, p, n) })
	h.c.Req.Header.SetMethod("PATCH")
	h.afterNext()
	p, n = h.put("GET")
	mustTrap(t, handler.FuncSetMethod, "can't set method after next handler", func() { h.call(handler.FuncSetMethod, p, n) })
	if got := h.getString(handler.FuncGetMethod); got != "PATCH" {
		t.Fatalf("method after next = %q", got)
	}
}

func TestGetURI(t *testing.T) {
	for _, tc := range []struct{ target, want string }{
		{"/a%20b/c?x=1&y=2", "/a%20b/c?x=1&y=2"},
		{"/simple%26clean", "/simple%26clean"},
		{"/disney?name=chip%26dale", "/disney?name=chip%26dale"},
		{"/", "/"},
	} {
		h := newHarness(t).begin()
		h.c.Req.SetRequestURI(tc.target)
		if got := h.getString(handler.FuncGetURI); got != tc.want {
			t.Errorf("%s: get_uri = %q, want %q", tc.target, got, tc.want)
		}
	}
	h := newHarness(t).begin()
	h.c.Req.URI().SetPathBytes(nil)
	h.c.Req.URI().SetQueryString("")
	if got := h.getString(handler.FuncGetURI); got != "/" {
		t.Errorf("empty path: %q", got)
	}
	// All or nothing.
	h.c.Req.SetRequestURI("/abc?d")
	if r, b := h.get(handler.FuncGetURI, 5); r != 6 || b[0] != 0xAA {
		t.Errorf("short buffer: %d %q", r, b)
	}
	if r, b := h.get(handler.FuncGetURI, 6); r != 6 || string(b) != "/abc?d" {
		t.Errorf("exact buffer: %d %q", r, b)
	}
}

func TestSetURI(t *testing.T) {
	for _, tc := range []struct {
		uri, path, query, requestURI string
		trap                         string
	}{
		{uri: "/simple%26clean", path: "/simple%26clean", requestURI: "/simple%26clean"},
		{uri: "/disney?name=chip%26dale", path: "/disney", query: "name=chip%26dale", requestURI: "/disney?name=chip%26dale"},
		{uri: "/x", path: "/x", requestURI: "/x"}, // the query is cleared
		{uri: "", path: "/", requestURI: "/"},
		{uri: "/a/./b/../c?", path: "/a/c", requestURI: "/a/c"},
		{uri: "/%7euser", path: "/~user", requestURI: "/~user"},
		{uri: "/a%2fb", path: "/a%2Fb", requestURI: "/a%2Fb"},
		{uri: "noslash", trap: "origin-form"},
		{uri: "?x=1", trap: "origin-form"},
		{uri: "http://h/x", trap: "origin-form"},
		{uri: "/a#b", trap: "fragment"},
		{uri: "/a?x#y", trap: "fragment"},
		{uri: "/%zz", trap: "percent-encoding"},
		{uri: "/a?x y", trap: "space or a control byte"},
		{uri: "/a?x\x7f", trap: "space or a control byte"},
		{uri: "/%00", trap: "NUL"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			h := newHarness(t).begin()
			p, n := h.put(tc.uri)
			if tc.trap != "" {
				mustTrap(t, handler.FuncSetURI, tc.trap, func() { h.call(handler.FuncSetURI, p, n) })
				if got := h.getString(handler.FuncGetURI); got != "/a%20b/c?x=1&y=2" {
					t.Fatalf("a refused uri changed the request: %q", got)
				}
				return
			}
			h.call(handler.FuncSetURI, p, n)
			u := h.c.Req.URI()
			// As the upstream client sends it (host/proxy: DisablePathNormalizing).
			u.DisablePathNormalizing = true
			if string(u.PathOriginal()) != tc.path || string(u.QueryString()) != tc.query || string(u.RequestURI()) != tc.requestURI {
				t.Fatalf("path %q query %q requestURI %q, want %q %q %q", u.PathOriginal(), u.QueryString(), u.RequestURI(), tc.path, tc.query, tc.requestURI)
			}
		})
	}
	h := newHarness(t).begin().afterNext()
	p, n := h.put("/x")
	mustTrap(t, handler.FuncSetURI, "can't set uri after next handler", func() { h.call(handler.FuncSetURI, p, n) })
}

func TestProtocolVersion(t *testing.T) {
	h := newHarness(t).begin()
	if got := h.getString(handler.FuncGetProtocolVersion); got != "HTTP/2.0" {
		t.Fatalf("scope's protocol: %q", got)
	}
	h.c.Scope.Proto = ""
	if got := h.getString(handler.FuncGetProtocolVersion); got != "HTTP/1.1" {
		t.Fatalf("request's protocol: %q", got)
	}
	h.c.Req.Header.SetProtocol("HTTP/1.0")
	if got := h.getString(handler.FuncGetProtocolVersion); got != "HTTP/1.0" {
		t.Fatalf("HTTP/1.0: %q", got)
	}
	h.c.Scope = nil
	if r, b := h.get(handler.FuncGetProtocolVersion, 4); r != 8 || b[0] != 0xAA {
		t.Fatalf("short buffer: %d %q", r, b)
	}
}

func TestHeaderNames(t *testing.T) {
	h := newHarness(t).begin()
	names, r := h.list(handler.FuncGetHeaderNames, uint64(handler.HeaderKindRequest))
	slices.Sort(names)
	want := []string{"content-length", "host", "x-empty", "x-multi"} // lower case, X-Multi once
	if !slices.Equal(names, want) {
		t.Fatalf("names = %q, want %q", names, want)
	}
	size := uint64(len("content-length host x-empty x-multi ")) // a NUL for each space
	if r != 4<<32|size {
		t.Fatalf("CountLen = %#x, want %#x", r, 4<<32|size)
	}
	// All or nothing; the guest retries with the length.
	if r2, b := h.get(handler.FuncGetHeaderNames, int(size-1), uint64(handler.HeaderKindRequest)); r2 != r || b[0] != 0xAA {
		t.Fatalf("short buffer: %#x %q", r2, b)
	}
	if r2, b := h.get(handler.FuncGetHeaderNames, int(size), uint64(handler.HeaderKindRequest)); r2 != r || b[size-1] != 0 {
		t.Fatalf("exact buffer: %#x %q", r2, b)
	}
	// The response before next: the staged headers.
	if names, r := h.list(handler.FuncGetHeaderNames, uint64(handler.HeaderKindResponse)); names != nil || r != 0 {
		t.Fatalf("nothing staged: %q %#x", names, r)
	}
	h.header(handler.FuncAddHeaderValue, handler.HeaderKindResponse, "X-Staged", "1")
	h.header(handler.FuncAddHeaderValue, handler.HeaderKindResponse, "x-staged", "2")
	h.header(handler.FuncAddHeaderValue, handler.HeaderKindResponse, "Other", "3")
	if names, _ := h.list(handler.FuncGetHeaderNames, uint64(handler.HeaderKindResponse)); !slices.Equal(names, []string{"x-staged", "other"}) {
		t.Fatalf("staged names = %q", names)
	}
	// No trailers.
	for _, k := range []handler.HeaderKind{handler.HeaderKindRequestTrailers, handler.HeaderKindResponseTrailers} {
		if r, _ := h.get(handler.FuncGetHeaderNames, 64, uint64(k)); r != 0 {
			t.Fatalf("trailers %d = %#x", k, r)
		}
	}
	mustTrap(t, handler.FuncGetHeaderNames, "unsupported header kind: 9", func() { h.get(handler.FuncGetHeaderNames, 64, 9) })
	// After next: the upstream's.
	h.afterNext()
	names, _ = h.list(handler.FuncGetHeaderNames, uint64(handler.HeaderKindResponse))
	if !slices.Contains(names, "x-up") || slices.Contains(names, "x-staged") {
		t.Fatalf("upstream names = %q", names)
	}
}

func TestHeaderValues(t *testing.T) {
	h := newHarness(t).begin()
	req := uint64(handler.HeaderKindRequest)
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"x-multi", []string{"one", "two"}},
		{"X-MULTI", []string{"one", "two"}},
		{"host", []string{"example.com"}},
		{"x-empty", []string{""}},
		{"x-none", nil},
	} {
		if got := h.values(handler.HeaderKindRequest, tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("%s = %q, want %q", tc.name, got, tc.want)
		}
	}
	np, nl := h.put("x-multi")
	if r, b := h.get(handler.FuncGetHeaderValues, 7, req, np, nl); r != 2<<32|8 || b[0] != 0xAA {
		t.Errorf("short buffer: %#x %q", r, b)
	}
	if r, b := h.get(handler.FuncGetHeaderValues, 8, req, np, nl); r != 2<<32|8 || string(b) != "one\x00two\x00" {
		t.Errorf("exact buffer: %#x %q", r, b)
	}
	mustTrap(t, handler.FuncGetHeaderValues, "name cannot be empty", func() { h.get(handler.FuncGetHeaderValues, 8, req, np, 0) })
	mustTrap(t, handler.FuncGetHeaderValues, "unsupported header kind: 4", func() { h.get(handler.FuncGetHeaderValues, 8, 4, np, nl) })
	if r, _ := h.get(handler.FuncGetHeaderValues, 8, uint64(handler.HeaderKindRequestTrailers), np, nl); r != 0 {
		t.Errorf("trailer values = %#x", r)
	}
	h.header(handler.FuncSetHeaderValue, handler.HeaderKindResponse, "X-Staged", "s")
	if got := h.values(handler.HeaderKindResponse, "x-staged"); !slices.Equal(got, []string{"s"}) {
		t.Errorf("staged = %q", got)
	}
	h.afterNext()
	if got := h.values(handler.HeaderKindResponse, "x-up"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("upstream = %q", got)
	}
	if got := h.values(handler.HeaderKindResponse, "x-staged"); got != nil {
		t.Errorf("staged after next = %q", got)
	}
}

func TestHeaderWrite(t *testing.T) {
	const (
		set = handler.FuncSetHeaderValue
		add = handler.FuncAddHeaderValue
		rm  = handler.FuncRemoveHeader
		req = handler.HeaderKindRequest
		rsp = handler.HeaderKindResponse
	)
	// The request, before next.
	h := newHarness(t).begin()
	h.header(set, req, "X-MULTI", "only")
	h.header(rm, req, "x-empty")
	h.header(rm, req, "x-absent")
	// (After the removals: fasthttp's delete moves the last field into the
	// deleted one's place, which can reorder the values of another name.)
	h.header(add, req, "x-new", "a")
	h.header(add, req, "X-New", "b")
	h.header(set, req, "Content-Length", "999") // the host's: ignored
	h.header(rm, req, "content-length")
	h.header(set, req, "host", "other.example")
	for _, c := range []struct {
		name string
		want []string
	}{
		{"x-multi", []string{"only"}},
		{"x-new", []string{"a", "b"}},
		{"x-empty", nil},
		{"content-length", []string{"11"}},
		{"host", []string{"other.example"}},
	} {
		if got := h.values(req, c.name); !slices.Equal(got, c.want) {
			t.Errorf("request %s = %q, want %q", c.name, got, c.want)
		}
	}
	if string(h.c.Req.URI().Host()) != "other.example" {
		t.Errorf("URI host %q: not kept in step with Host", h.c.Req.URI().Host())
	}
	// The response, before next: staged, the Call's response untouched.
	h.header(add, rsp, "X-A", "1")
	h.header(add, rsp, "X-B", "2")
	h.header(add, rsp, "x-a", "3")
	h.header(set, rsp, "X-B", "4")
	h.header(rm, rsp, "x-a")
	h.header(add, rsp, "X-C", "5")
	h.header(set, rsp, "Transfer-Encoding", "chunked") // ignored
	if got := h.c.Resp.Header.Peek("X-B"); got != nil {
		t.Errorf("a staged header reached the response: %q", got)
	}
	var staged []string
	for _, f := range h.s.early.fields {
		staged = append(staged, string(h.s.early.name(f))+"="+string(h.s.early.value(f)))
	}
	if !slices.Equal(staged, []string{"X-B=4", "X-C=5"}) {
		t.Errorf("staged = %q", staged)
	}
	if string(h.s.early.arena) != "X-B4X-C5" {
		t.Errorf("arena not compacted: %q", h.s.early.arena)
	}
	// Bad names and values trap; so do trailers and unknown kinds.
	for _, tc := range []struct {
		fn          string
		kind        handler.HeaderKind
		name, value string
		msg         string
	}{
		{set, req, "", "v", "name cannot be empty"},
		{add, rsp, "bad name", "v", "not a token"},
		{set, req, "x", "a\nb", "CR, LF or NUL"},
		{add, rsp, "x", "a\rb", "CR, LF or NUL"},
		{set, req, "x", "a\x00b", "CR, LF or NUL"},
		{set, handler.HeaderKindRequestTrailers, "x", "v", "trailers are not supported"},
		{add, handler.HeaderKindResponseTrailers, "x", "v", "trailers are not supported"},
		{rm, handler.HeaderKindResponseTrailers, "x", "", "trailers are not supported"},
		{rm, 17, "x", "", "unsupported header kind: 17"},
	} {
		mustTrap(t, tc.fn, tc.msg, func() { h.header(tc.fn, tc.kind, tc.name, tc.value) })
	}
	// After next: the request is gone; the response needs buffer_response.
	h.afterNext()
	for _, fn := range []string{set, add, rm} {
		mustTrap(t, fn, "after next handler", func() { h.header(fn, req, "x", "v") })
		mustTrap(t, fn, "after next handler unless buffer_response is enabled", func() { h.header(fn, rsp, "x", "v") })
	}
	h.s.features = Supported
	h.header(set, rsp, "x-up", "2")
	h.header(add, rsp, "X-Late", "1")
	h.header(rm, rsp, "content-type")
	if got := h.values(rsp, "x-up"); !slices.Equal(got, []string{"2"}) {
		t.Errorf("x-up after set = %q", got)
	}
	if got := string(h.c.Resp.Header.Peek("X-Late")); got != "1" {
		t.Errorf("X-Late = %q", got)
	}
}

func TestReadBody(t *testing.T) {
	const req, rsp = uint64(handler.BodyKindRequest), uint64(handler.BodyKindResponse)
	h := newHarness(t).begin()
	big := strings.Repeat("a", 5000)
	h.c.Req.SetBodyString(big)
	var got []byte
	for _, want := range []uint64{2048, 2048, 1<<32 | 904} {
		r, b := h.get(handler.FuncReadBody, 2048, req)
		if r != want {
			t.Fatalf("read_body = %#x, want %#x", r, want)
		}
		got = append(got, b[:r&0xffffffff]...)
	}
	if string(got) != big {
		t.Fatal("the body read back differs")
	}
	if r, _ := h.get(handler.FuncReadBody, 2048, req); r != 1<<32 {
		t.Fatalf("read past the end = %#x", r)
	}
	// An empty body is EOF at once; the response before next is the staged body.
	if r, _ := h.get(handler.FuncReadBody, 16, rsp); r != 1<<32 {
		t.Fatalf("empty staged body = %#x", r)
	}
	p, n := h.put("staged")
	h.call(handler.FuncWriteBody, rsp, p, n)
	if r, b := h.get(handler.FuncReadBody, 4, rsp); r != 4 || string(b) != "stag" {
		t.Fatalf("staged read = %#x %q", r, b)
	}
	// Only what is written is bounds-checked; limit 0 and bad kinds trap.
	if r := h.call(handler.FuncReadBody, rsp, memSize-2, 1000); r != 1<<32|2 {
		t.Fatalf("read near the end of memory = %#x", r)
	}
	mustTrap(t, handler.FuncReadBody, "buf_limit==0", func() { h.get(handler.FuncReadBody, 0, req) })
	mustTrap(t, handler.FuncReadBody, "unsupported body kind: 2", func() { h.get(handler.FuncReadBody, 8, 2) })
	h.s.reqRead = 0
	mustTrap(t, handler.FuncReadBody, "out of bounds", func() { h.call(handler.FuncReadBody, req, memSize-2, 1000) })
	// After next the response is the upstream's, read from its start; each
	// needs its buffer_ feature.
	h.s.reqRead = 0
	h.afterNext()
	mustTrap(t, handler.FuncReadBody, "can't read request body after next handler unless buffer_request is enabled", func() { h.get(handler.FuncReadBody, 8, req) })
	mustTrap(t, handler.FuncReadBody, "can't read response body after next handler unless buffer_response is enabled", func() { h.get(handler.FuncReadBody, 8, rsp) })
	h.s.features = Supported
	if r, b := h.get(handler.FuncReadBody, 64, rsp); r != 1<<32|8 || string(b[:8]) != "upstream" {
		t.Fatalf("upstream body = %#x %q", r, b[:8])
	}
	if r, _ := h.get(handler.FuncReadBody, 4, req); r != 4 {
		t.Fatalf("request body after next = %#x", r)
	}
}

func TestWriteBody(t *testing.T) {
	const req, rsp = uint64(handler.BodyKindRequest), uint64(handler.BodyKindResponse)
	h := newHarness(t).begin()
	h.c.Env.MaxBody = 10
	write := func(kind uint64, s string) {
		t.Helper()
		p, n := h.put(s)
		h.call(handler.FuncWriteBody, kind, p, n)
	}
	// The request: the first write replaces, later ones append.
	write(req, "abc")
	write(req, "def")
	if string(h.c.Req.Body()) != "abcdef" || h.c.Req.Header.ContentLength() != 6 {
		t.Fatalf("request body %q, Content-Length %d", h.c.Req.Body(), h.c.Req.Header.ContentLength())
	}
	mustTrap(t, handler.FuncWriteBody, "request body over the route's limit of 10 bytes", func() { write(req, "12345") })
	// The response before next: staged.
	write(rsp, "hello ")
	write(rsp, "you")
	if string(h.s.early.body) != "hello you" || len(h.c.Resp.Body()) != 0 {
		t.Fatalf("staged %q, response %q", h.s.early.body, h.c.Resp.Body())
	}
	mustTrap(t, handler.FuncWriteBody, "response body over the route's limit", func() { write(rsp, "!!") })
	mustTrap(t, handler.FuncWriteBody, "unsupported body kind: 3", func() { write(3, "x") })
	// After next.
	h.afterNext()
	mustTrap(t, handler.FuncWriteBody, "can't write request body after next handler", func() { write(req, "x") })
	mustTrap(t, handler.FuncWriteBody, "unless buffer_response is enabled", func() { write(rsp, "x") })
	h.s.features = handler.FeatureBufferResponse
	write(rsp, "new")
	write(rsp, " body")
	if string(h.c.Resp.Body()) != "new body" || h.c.Resp.Header.ContentLength() != 8 {
		t.Fatalf("response body %q, Content-Length %d", h.c.Resp.Body(), h.c.Resp.Header.ContentLength())
	}
	mustTrap(t, handler.FuncWriteBody, "response body over the route's limit", func() { write(rsp, "123") })
	// A 204 takes no body.
	h.c.Resp.SetStatusCode(204)
	h.c.Resp.ResetBody()
	write(rsp, "dropped")
	if len(h.c.Resp.Body()) != 0 {
		t.Fatalf("a 204 got a body: %q", h.c.Resp.Body())
	}
}

func TestStatus(t *testing.T) {
	h := newHarness(t).begin()
	if r := h.call(handler.FuncGetStatusCode); r != 200 {
		t.Fatalf("default = %d", r)
	}
	h.call(handler.FuncSetStatusCode, 418)
	if r := h.call(handler.FuncGetStatusCode); r != 418 || h.c.Resp.StatusCode() != 200 {
		t.Fatalf("staged %d, response %d", r, h.c.Resp.StatusCode())
	}
	for _, bad := range []uint64{0, 99, 101, 199, 600, 0xffffffff} {
		mustTrap(t, handler.FuncSetStatusCode, "not a final status", func() { h.call(handler.FuncSetStatusCode, bad) })
	}
	h.afterNext()
	if r := h.call(handler.FuncGetStatusCode); r != 201 {
		t.Fatalf("upstream status = %d", r)
	}
	mustTrap(t, handler.FuncSetStatusCode, "can't set status code after next handler unless buffer_response is enabled", func() {
		h.call(handler.FuncSetStatusCode, 500)
	})
	h.s.features = handler.FeatureBufferResponse
	h.call(handler.FuncSetStatusCode, 304) // drops the body, as native response_set_status
	if h.c.Resp.StatusCode() != 304 || len(h.c.Resp.Body()) != 0 {
		t.Fatalf("status %d body %q", h.c.Resp.StatusCode(), h.c.Resp.Body())
	}
}

// unixAddr is a net.Addr that is not a *net.TCPAddr.
type unixAddr string

func (a unixAddr) Network() string { return "unix" }
func (a unixAddr) String() string  { return string(a) }

func TestSourceAddr(t *testing.T) {
	for _, tc := range []struct {
		peer net.Addr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234}, "127.0.0.1:1234"}, // net.IPv4 is 16 bytes: mapped, unmapped
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 1234}, "[::1]:1234"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 80}, "192.0.2.1:80"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 9, Zone: "eth0"}, "[fe80::1%eth0]:9"},
		{unixAddr("/run/gw.sock"), "/run/gw.sock"},
		{(*net.TCPAddr)(nil), ""},
		{&net.TCPAddr{}, ""},
		{nil, ""},
	} {
		h := newHarness(t).begin()
		h.c.Scope.Peer = tc.peer
		if got := h.getString(handler.FuncGetSourceAddr); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.peer, got, tc.want)
		}
	}
	h := newHarness(t).begin()
	h.c.Scope = nil
	if r, _ := h.get(handler.FuncGetSourceAddr, 64); r != 0 {
		t.Errorf("no scope: %d", r)
	}
	h.c.Scope = &abi.Scope{Peer: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5}}
	if r, b := h.get(handler.FuncGetSourceAddr, 9); r != 10 || b[0] != 0xAA {
		t.Errorf("short buffer: %d %q", r, b)
	}
}

// TestOutOfBounds: every function given a buffer outside memory traps
// naming itself.
func TestOutOfBounds(t *testing.T) {
	const far, n = memSize - 2, 8 // crosses the end of memory
	for _, tc := range []struct {
		fn   string
		args []uint64
		set  func(h *harness) // makes the buffer matter
	}{
		{handler.FuncGetConfig, []uint64{far, 64}, nil},
		{handler.FuncLog, []uint64{0, far, n}, nil},
		{handler.FuncGetMethod, []uint64{far, 64}, nil},
		{handler.FuncSetMethod, []uint64{far, n}, nil},
		{handler.FuncGetURI, []uint64{far, 64}, nil},
		{handler.FuncSetURI, []uint64{far, n}, nil},
		{handler.FuncGetProtocolVersion, []uint64{far, 64}, nil},
		{handler.FuncGetHeaderNames, []uint64{0, far, 4096}, nil},
		{handler.FuncGetHeaderValues, []uint64{0, far, n, 0, 64}, nil},
		{handler.FuncGetHeaderValues, []uint64{0, 0, 7, far, 64}, func(h *harness) { copy(h.mem, "x-multi") }},
		{handler.FuncSetHeaderValue, []uint64{0, far, n, 0, 1}, nil},
		{handler.FuncSetHeaderValue, []uint64{1, 0, 1, far, n}, func(h *harness) { h.mem[0] = 'x' }},
		{handler.FuncAddHeaderValue, []uint64{1, far, n, 0, 1}, nil},
		{handler.FuncRemoveHeader, []uint64{0, far, n}, nil},
		{handler.FuncReadBody, []uint64{0, far, 64}, nil},
		{handler.FuncWriteBody, []uint64{1, far, n}, nil},
		{handler.FuncWriteBody, []uint64{0, 0xffffffff, 2}, nil}, // the end would wrap a u32
		{handler.FuncGetSourceAddr, []uint64{far, 64}, nil},
	} {
		h := newHarness(t).begin()
		if tc.set != nil {
			tc.set(h)
		}
		mustTrap(t, tc.fn, "out of bounds (ptr=", func() { h.call(tc.fn, tc.args...) })
	}
	// No memory at all (a start function before the engine found it).
	h := newHarness(t)
	h.c.Mem = nil
	mustTrap(t, handler.FuncGetConfig, "out of bounds", func() { h.call(handler.FuncGetConfig, 0, 64) })
}

// TestOutsideRequest: in a start function only enable_features,
// get_config, log_enabled and log work; the rest trap.
func TestOutsideRequest(t *testing.T) {
	anytime := map[string]bool{handler.FuncEnableFeatures: true, handler.FuncGetConfig: true, handler.FuncLogEnabled: true, handler.FuncLog: true}
	for _, f := range Functions() {
		h := newHarness(t)
		args := make([]uint64, len(f.Params))
		if anytime[f.Name] {
			h.call(f.Name, args...)
			continue
		}
		mustTrap(t, f.Name, "called outside a request", func() { h.call(f.Name, args...) })
		// Nor after End.
		h.begin()
		h.s.End()
		mustTrap(t, f.Name, "called outside a request", func() { h.call(f.Name, args...) })
	}
	// An instance without a State is not an http-wasm instance.
	h := newHarness(t)
	h.c.Ext = nil
	mustTrap(t, handler.FuncEnableFeatures, "no http-wasm state", func() { h.call(handler.FuncEnableFeatures, 1) })
}

func TestStateLifecycle(t *testing.T) {
	h := newHarness(t).begin()
	if h.s.Pending() {
		t.Fatal("pending before next")
	}
	h.s.Next(42)
	if !h.s.Pending() || h.s.ReqCtx() != 42 {
		t.Fatalf("Next: pending %v ctx %d", h.s.Pending(), h.s.ReqCtx())
	}
	h.s.AfterNext()
	h.s.End()
	if h.s.Pending() || h.s.ReqCtx() != 0 || h.s.active || h.s.afterNext {
		t.Fatalf("End kept the request: %+v", h.s)
	}
	// Large buffers are not kept past the request.
	h.begin()
	h.s.early.body = make([]byte, 0, 1<<20)
	h.s.buf = make([]byte, 10, 100)
	h.s.End()
	if h.s.early.body != nil || cap(h.s.buf) != 100 || len(h.s.buf) != 0 {
		t.Fatalf("End: body cap %d, buf %d/%d", cap(h.s.early.body), len(h.s.buf), cap(h.s.buf))
	}
}

func TestAnswer(t *testing.T) {
	h := newHarness(t).begin()
	// Nothing staged: a 200 with an empty body.
	resp := &fasthttp.Response{}
	h.s.Answer(resp)
	if resp.StatusCode() != 200 || len(resp.Body()) != 0 || resp.Header.ContentLength() != 0 {
		t.Fatalf("empty answer: %d %q %d", resp.StatusCode(), resp.Body(), resp.Header.ContentLength())
	}
	h.call(handler.FuncSetStatusCode, 403)
	h.header(handler.FuncAddHeaderValue, handler.HeaderKindResponse, "X-Why", "a")
	h.header(handler.FuncAddHeaderValue, handler.HeaderKindResponse, "X-Why", "b")
	h.header(handler.FuncSetHeaderValue, handler.HeaderKindResponse, "Content-Type", "text/plain")
	p, n := h.put("denied")
	h.call(handler.FuncWriteBody, uint64(handler.BodyKindResponse), p, n)
	resp = &fasthttp.Response{}
	h.s.Answer(resp)
	why := peekAll(resp, "X-Why")
	if resp.StatusCode() != 403 || string(resp.Body()) != "denied" || resp.Header.ContentLength() != 6 ||
		!slices.Equal(why, []string{"a", "b"}) || string(resp.Header.ContentType()) != "text/plain" {
		t.Fatalf("answer: %s", resp.String())
	}
	// A 204 carries no body.
	h.call(handler.FuncSetStatusCode, 204)
	resp = &fasthttp.Response{}
	h.s.Answer(resp)
	if resp.StatusCode() != 204 || len(resp.Body()) != 0 {
		t.Fatalf("204 answer: %s", resp.String())
	}
}

// peekAll returns every value of a response header.
func peekAll(r *fasthttp.Response, name string) []string {
	var out []string
	for _, v := range r.Header.PeekAll(name) {
		out = append(out, string(v))
	}
	return out
}

func TestMerge(t *testing.T) {
	upstream := func(status int) *fasthttp.Response {
		r := &fasthttp.Response{}
		r.SetStatusCode(status)
		r.Header.Set("X-Handled", "upstream")
		r.SetBodyString("from upstream")
		return r
	}
	h := newHarness(t).begin()
	// Nothing staged: untouched.
	resp := upstream(200)
	h.s.Merge(resp, false)
	if string(resp.Body()) != "from upstream" || resp.Header.Len() != upstream(200).Header.Len() {
		t.Fatalf("merge of nothing: %s", resp.String())
	}
	h.call(handler.FuncSetStatusCode, 500)
	h.header(handler.FuncSetHeaderValue, handler.HeaderKindResponse, "X-Handled", "1")
	p, n := h.put("guest:")
	h.call(handler.FuncWriteBody, uint64(handler.BodyKindResponse), p, n)
	for _, tc := range []struct {
		status int
		head   bool
		body   string
	}{
		{200, false, "guest:from upstream"},
		{404, false, "guest:from upstream"},
		{200, true, "from upstream"}, // a HEAD answer's body is never sent
		{204, false, ""},
	} {
		resp := upstream(tc.status)
		if tc.status == 204 {
			resp.ResetBody()
		}
		h.s.Merge(resp, tc.head)
		handled := peekAll(resp, "X-Handled")
		if resp.StatusCode() != tc.status || string(resp.Body()) != tc.body ||
			!slices.Equal(handled, []string{"upstream", "1"}) {
			t.Errorf("merge into %d head=%v: %s", tc.status, tc.head, resp.String())
		}
		if !tc.head && tc.status != 204 && resp.Header.ContentLength() != len(tc.body) {
			t.Errorf("Content-Length %d, body %d", resp.Header.ContentLength(), len(tc.body))
		}
	}
}

// TestZeroAllocs checks the functions a guest calls on every request.
func TestZeroAllocs(t *testing.T) {
	h := newHarness(t).begin()
	h.c.Req.SetBodyString(strings.Repeat("b", 100))
	name, nameLen := h.put("x-multi")
	value, valueLen := h.put("v")
	body, bodyLen := h.put("body")
	buf := h.alloc(4096)
	calls := []struct {
		fn   string
		args []uint64
	}{
		{handler.FuncEnableFeatures, []uint64{3}},
		{handler.FuncGetConfig, []uint64{buf, 4096}},
		{handler.FuncLogEnabled, []uint64{0}},
		{handler.FuncGetMethod, []uint64{buf, 4096}},
		{handler.FuncGetURI, []uint64{buf, 4096}},
		{handler.FuncGetProtocolVersion, []uint64{buf, 4096}},
		{handler.FuncGetHeaderNames, []uint64{0, buf, 4096}},
		{handler.FuncGetHeaderNames, []uint64{1, buf, 4096}},
		{handler.FuncGetHeaderValues, []uint64{0, name, nameLen, buf, 4096}},
		{handler.FuncGetHeaderValues, []uint64{1, name, nameLen, buf, 4096}},
		{handler.FuncSetHeaderValue, []uint64{0, name, nameLen, value, valueLen}},
		{handler.FuncSetHeaderValue, []uint64{1, name, nameLen, value, valueLen}},
		{handler.FuncRemoveHeader, []uint64{0, name, nameLen}},
		{handler.FuncRemoveHeader, []uint64{1, name, nameLen}},
		{handler.FuncReadBody, []uint64{0, buf, 16}},
		{handler.FuncWriteBody, []uint64{1, body, bodyLen}},
		{handler.FuncGetStatusCode, nil},
		{handler.FuncSetStatusCode, []uint64{201}},
		{handler.FuncGetSourceAddr, []uint64{buf, 4096}},
	}
	stack := make([]uint64, 8)
	for _, cl := range calls {
		fn := h.fns[cl.fn].Fn
		allocs := testing.AllocsPerRun(100, func() {
			copy(stack, cl.args)
			fn(h.c, stack)
			h.s.early.body = h.s.early.body[:0] // a write_body loop would hit the body limit
			h.s.reqRead = 0
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", cl.fn, allocs)
		}
	}
	// add_header_value grows the header: measured with its undoing.
	add, rm := h.fns[handler.FuncAddHeaderValue].Fn, h.fns[handler.FuncRemoveHeader].Fn
	for _, kind := range []uint64{0, 1} {
		allocs := testing.AllocsPerRun(100, func() {
			copy(stack, []uint64{kind, name, nameLen, value, valueLen})
			add(h.c, stack)
			copy(stack, []uint64{kind, name, nameLen})
			rm(h.c, stack)
		})
		if allocs != 0 {
			t.Errorf("add_header_value(%d): %v allocations per call", kind, allocs)
		}
	}
	// So does the staged response Merge applies.
	resp := &fasthttp.Response{}
	if allocs := testing.AllocsPerRun(100, func() {
		resp.Reset()
		resp.SetBodyString("upstream")
		h.s.Merge(resp, false)
	}); allocs != 0 {
		t.Errorf("Merge: %v allocations", allocs)
	}
	// A whole request with nothing staged merges for free.
	h.s.End()
	h.s.Begin()
	if allocs := testing.AllocsPerRun(100, func() { h.s.Merge(resp, false); h.s.End(); h.s.Begin() }); allocs != 0 {
		t.Errorf("Merge/End/Begin: %v allocations", allocs)
	}
}

// FuzzFuncs runs random sequences of http_handler calls with random
// arguments, interleaved with the runtime's State transitions, against a
// small memory holding random bytes: the only panic allowed is a Trap
// naming the function called, and what a function answers stays within
// the ABI's encodings.
func FuzzFuncs(f *testing.F) {
	f.Add([]byte{19, 0, 3, 0, 0, 0, 0, 9, 0, 0, 64, 0, 0}, []byte("x-multi\x00value"))
	f.Add([]byte{19, 11, 1, 0, 7, 8, 5, 20, 1, 21, 0, 2, 9, 0, 0, 64}, []byte("x-multi\x00value"))
	f.Add([]byte{19, 15, 1, 0, 5, 14, 1, 16, 32, 22, 20, 0, 21, 15, 1, 0, 3}, []byte("hello world"))
	f.Add([]byte{7, 0, 6, 19, 7, 0, 6, 6, 16, 32}, []byte("/a?b#c"))
	fns := Functions()
	f.Fuzz(func(t *testing.T, prog, mem []byte) {
		h := newHarness(t)
		small := make(testMem, 256)
		copy(small, mem)
		h.mem, h.c.Mem = small, small
		h.c.Env.MaxBody = 64
		h.c.Env.Log = slog.New(slog.DiscardHandler)
		h.c.Req = parseRequest(t, testRequest)
		h.c.Resp = &fasthttp.Response{}
		h.c.Scope = &abi.Scope{Peer: &net.TCPAddr{IP: net.IPv6loopback, Port: 1}}
		// arg reads one argument: a byte, with the top values standing for
		// the edges of the u32 range.
		arg := func() uint64 {
			if len(prog) == 0 {
				return 0
			}
			b := prog[0]
			prog = prog[1:]
			switch b {
			case 0xff:
				return 0xffffffff
			case 0xfe:
				return 0x80000000
			case 0xfd:
				return 0x7fffffff
			}
			return uint64(b)
		}
		for steps := 0; len(prog) > 0 && steps < 64; steps++ {
			op := int(prog[0]) % (len(fns) + 5)
			prog = prog[1:]
			switch op - len(fns) {
			case 0:
				h.s.Begin()
			case 1:
				h.s.Next(uint32(arg()))
			case 2:
				h.s.AfterNext()
			case 3:
				h.s.End()
			case 4:
				if arg()%2 == 0 {
					h.c.Resp = nil
				} else {
					h.c.Resp = &fasthttp.Response{}
				}
			default:
				fn := fns[op]
				stack := make([]uint64, max(len(fn.Params), len(fn.Results)))
				for i := range fn.Params {
					stack[i] = arg()
				}
				args := slices.Clone(stack)
				func() {
					defer func() {
						if r := recover(); r != nil {
							if tr, ok := r.(Trap); !ok || tr.Func != fn.Name {
								t.Fatalf("%s%v panicked: %#v", fn.Name, args, r)
							}
						}
					}()
					fn.Fn(h.c, stack)
					checkResult(t, fn.Name, args, stack[0])
				}()
			}
			checkState(t, h.s)
		}
		for _, resp := range []*fasthttp.Response{{}, {}} {
			resp.SetBodyString("upstream")
			h.s.Merge(resp, false)
			h.s.Answer(resp)
		}
	})
}

// checkResult checks a result against the ABI's encodings.
func checkResult(t *testing.T, fn string, args []uint64, r uint64) {
	t.Helper()
	switch fn {
	case handler.FuncEnableFeatures:
		if handler.Features(r)&^Supported != 0 {
			t.Fatalf("enable_features%v = %#x: an unsupported feature", args, r)
		}
	case handler.FuncReadBody:
		if n, eof := r&0xffffffff, r>>32; n > args[2] || eof > 1 {
			t.Fatalf("read_body%v = %#x", args, r)
		}
	case handler.FuncGetHeaderNames, handler.FuncGetHeaderValues:
		if count, size := r>>32, r&0xffffffff; count > size || (count == 0) != (size == 0) {
			t.Fatalf("%s%v = %#x: not a CountLen", fn, args, r)
		}
	case handler.FuncGetStatusCode:
		if r < 100 || r > 599 {
			t.Fatalf("get_status_code = %d", r)
		}
	case handler.FuncLogEnabled:
		if r > 1 {
			t.Fatalf("log_enabled = %d", r)
		}
	}
}

// checkState checks the staged headers' arena holds exactly their bytes.
func checkState(t *testing.T, s *State) {
	t.Helper()
	off := 0
	for _, f := range s.early.fields {
		if f.off != off {
			t.Fatalf("staged field at %d, want %d", f.off, off)
		}
		off += f.nameLen + f.valueLen
	}
	if off != len(s.early.arena) {
		t.Fatalf("arena holds %d bytes, fields %d", len(s.early.arena), off)
	}
}

// TestStackSlots: the functions read only their parameters' low 32 bits,
// whatever an engine leaves in the high ones.
func TestStackSlots(t *testing.T) {
	h := newHarness(t).begin()
	p, n := h.put("PUT")
	dirty := func(v uint64) uint64 { return v | 0xdead_beef_0000_0000 }
	h.call(handler.FuncSetMethod, dirty(p), dirty(n))
	if string(h.c.Req.Header.Method()) != "PUT" {
		t.Fatalf("method %q", h.c.Req.Header.Method())
	}
	if r := h.call(handler.FuncLogEnabled, dirty(0xffffffff)); r != 1 {
		t.Fatalf("log_enabled(-1 with a dirty high word) = %d", r)
	}
}
