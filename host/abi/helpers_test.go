package abi

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
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

// naiveMem checks ranges with wrapping uint32 arithmetic, as a careless
// engine might: the host's own checks must stop what it would let through.
type naiveMem []byte

func (m naiveMem) Read(off, n uint32) ([]byte, bool) {
	if off+n > uint32(len(m)) {
		return nil, false
	}
	return m[off : off+n], true
}

func (m naiveMem) Write(off uint32, b []byte) bool {
	v, ok := m.Read(off, uint32(len(b)))
	copy(v, b)
	return ok
}

const memSize = 1 << 16

// harness drives host functions by name against a Call the way a runtime
// does: parameters in uint64 slots, results read back from the stack.
type harness struct {
	t    testing.TB
	c    *Call
	mem  testMem
	next uint32 // bump allocator into mem
	fns  map[string]Func
	logs *bytes.Buffer
}

// newHarness returns a harness in phase with a parsed request, an empty
// response and an Env with a KV, metrics and a debug logger.
func newHarness(t testing.TB, phase Phase) *harness {
	t.Helper()
	h := &harness{t: t, mem: make(testMem, memSize), next: 16, fns: map[string]Func{}, logs: &bytes.Buffer{}}
	for _, f := range Functions() {
		h.fns[f.Name] = f
	}
	vecs, err := NewMetricVecs(nil)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{
		Plugin: "p1",
		Route:  "r1",
		Config: []byte(`{"k":"v"}`),
		// Tagged as the gateway tags a plugin's logger (Env.Log).
		Log:     slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("plugin", "p1", "route", "r1"),
		KV:      NewKV(100, 1<<20),
		Metrics: NewPluginMetrics("p1", vecs),
	}
	h.c = &Call{Ctx: context.Background(), Mem: h.mem, Phase: phase, Env: env,
		Req:  parseRequest(t, "POST /a%20b/./c?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nX-Multi: one\r\nx-multi: two\r\nX-Empty:\r\nContent-Length: 11\r\n\r\nhello world"),
		Resp: &fasthttp.Response{}, Scope: &Scope{Client: []byte("192.0.2.7")}}
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

// bytes returns the guest bytes at ptr.
func (h *harness) bytes(ptr uint64, n int) []byte { return h.mem[ptr : ptr+uint64(n)] }

// call runs the host function name with args and returns its result slot.
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

// call32 runs name and returns its i32 result.
func (h *harness) call32(name string, args ...uint64) int32 {
	return int32(uint32(h.call(name, args...)))
}

// get runs a (…, buf, len) getter with a buffer of n bytes and returns the
// result and the bytes written (up to the result).
func (h *harness) get(name string, n int, args ...uint64) (int32, []byte) {
	h.t.Helper()
	buf := h.alloc(n)
	r := h.call32(name, append(args, buf, uint64(n))...)
	if r < 0 {
		return r, nil
	}
	return r, h.bytes(buf, min(int(r), n))
}

// i32arg encodes an i32 argument.
func i32arg(v int32) uint64 { return uint64(uint32(v)) }

// mustPanicOOB runs f and checks that it panics with OutOfBounds for fn.
func mustPanicOOB(t *testing.T, fn string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		oob, ok := r.(OutOfBounds)
		if !ok {
			t.Fatalf("%s: want OutOfBounds panic, got %v", fn, r)
		}
		if oob.Func != fn {
			t.Fatalf("OutOfBounds names %q, want %q", oob.Func, fn)
		}
		if !strings.HasPrefix(oob.Error(), "out of bounds: wasmgate."+fn+"(ptr=") {
			t.Fatalf("message %q", oob.Error())
		}
	}()
	f()
}

// i64arg encodes an i64 argument.
func i64arg(v int64) uint64 { return uint64(v) }
