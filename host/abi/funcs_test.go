package abi

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
)

// TestFunctionsTable: the table handed out is a copy. That it is the
// functions of sdk/ABI.md is TestABIDocHostFunctions's.
func TestFunctionsTable(t *testing.T) {
	fns := Functions()
	fns[0].Name = "changed"
	if Functions()[0].Name == "changed" {
		t.Error("Functions returns the package table itself")
	}
}

func TestRequestGetters(t *testing.T) {
	tests := []struct {
		fn, want string
	}{
		{"request_method", "POST"},
		{"request_path", "/a%20b/./c"}, // as sent: encoding and dot segment intact
		{"request_query", "x=1&y=2"},
		{"request_client_ip", "192.0.2.7"},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			for _, phase := range []Phase{PhaseRequest, PhaseResponse} {
				h := newHarness(t, phase)
				// len 0 asks for the size alone, whatever the pointer.
				if r := h.call32(tt.fn, 0xFFFFFFFF, 0); r != int32(len(tt.want)) {
					t.Fatalf("size query = %d, want %d", r, len(tt.want))
				}
				// A short buffer gets a prefix and the full size.
				buf := h.alloc(8)
				if r := h.call32(tt.fn, buf, 2); r != int32(len(tt.want)) {
					t.Fatalf("short buffer = %d", r)
				}
				if got := h.bytes(buf, 3); string(got[:2]) != tt.want[:2] || got[2] != 0xAA {
					t.Fatalf("short buffer wrote %q", got)
				}
				if r, got := h.get(tt.fn, 64); r != int32(len(tt.want)) || string(got) != tt.want {
					t.Fatalf("got %d %q, want %q", r, got, tt.want)
				}
			}
			h := newHarness(t, PhaseInit)
			if r, _ := h.get(tt.fn, 64); r != ErrNotAllowed {
				t.Fatalf("in on_init = %d, want NOT_ALLOWED", r)
			}
		})
	}
	// An empty query answers size 0.
	h := newHarness(t, PhaseRequest)
	h.c.Req.SetRequestURI("/plain")
	if r, _ := h.get("request_query", 8); r != 0 {
		t.Fatalf("empty query size %d", r)
	}
}

func TestRequestSetPath(t *testing.T) {
	tests := []struct {
		in        string
		code      int32
		path, qry string
	}{
		{"/new", 0, "/new", "x=1&y=2"},
		{"/new/p%2Fq", 0, "/new/p%2Fq", "x=1&y=2"},
		{"/new?a=b", 0, "/new", "a=b"},
		{"/new?", 0, "/new", ""},
		{"/n?a=b?c", 0, "/n", "a=b?c"},
		{"new", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/a b/../c//d/%7e", 0, "/c/d/~", "x=1&y=2"}, // canonical form, like a client's path
		{"/a%zz", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/a%00", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/..;/admin", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/a?b c", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/a\r\nX-Evil: 1", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/a?b\n", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/a#frag", 0, "/a%23frag", "x=1&y=2"},
		{"/a?b#frag", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
		{"/a\x00", ErrBadArgument, "/a%20b/./c", "x=1&y=2"},
	}
	for _, tt := range tests {
		h := newHarness(t, PhaseRequest)
		p, n := h.put(tt.in)
		if r := h.call32("request_set_path", p, n); r != tt.code {
			t.Errorf("%q: %d, want %d", tt.in, r, tt.code)
		}
		if _, got := h.get("request_path", 64); string(got) != tt.path {
			t.Errorf("%q: path %q, want %q", tt.in, got, tt.path)
		}
		if _, got := h.get("request_query", 64); string(got) != tt.qry {
			t.Errorf("%q: query %q, want %q", tt.in, got, tt.qry)
		}
	}
	for _, phase := range []Phase{PhaseInit, PhaseResponse} {
		h := newHarness(t, phase)
		p, n := h.put("/x")
		if r := h.call32("request_set_path", p, n); r != ErrNotAllowed {
			t.Errorf("phase %d: %d, want NOT_ALLOWED", phase, r)
		}
	}
}

// hdr runs a header function of kind with a name (and value) in guest memory.
func (h *harness) hdr(fn string, kind int32, name string, rest ...uint64) int32 {
	np, nl := h.put(name)
	return h.call32(fn, append([]uint64{i32arg(kind), np, nl}, rest...)...)
}

func (h *harness) hdrGet(fn string, kind int32, name string) (int32, string) {
	buf := h.alloc(256)
	r := h.hdr(fn, kind, name, buf, 256)
	if r < 0 {
		return r, ""
	}
	return r, string(h.bytes(buf, int(r)))
}

func (h *harness) hdrSet(fn string, kind int32, name, value string) int32 {
	vp, vl := h.put(value)
	return h.hdr(fn, kind, name, vp, vl)
}

func TestHeaderRead(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	tests := []struct {
		fn, name string
		code     int32
		want     string
	}{
		{"header_get", "host", 11, "example.com"},
		{"header_get", "X-MULTI", 3, "one"},
		{"header_get", "x-empty", 0, ""}, // present but empty: not NOT_FOUND
		{"header_get", "x-none", ErrNotFound, ""},
		{"header_values", "x-multi", 8, "one\x00two\x00"},
		{"header_values", "Host", 12, "example.com\x00"},
		{"header_values", "x-none", ErrNotFound, ""},
		{"header_get", "", ErrBadArgument, ""},
		{"header_get", "bad name", ErrBadArgument, ""},
		{"header_get", "bad:name", ErrBadArgument, ""},
		{"header_values", "bad\x00", ErrBadArgument, ""},
		{"header_get", "é", ErrBadArgument, ""},
	}
	for _, tt := range tests {
		r, got := h.hdrGet(tt.fn, KindRequest, tt.name)
		if r != tt.code || got != tt.want {
			t.Errorf("%s(%q) = %d %q, want %d %q", tt.fn, tt.name, r, got, tt.code, tt.want)
		}
	}
	// header_names: every name once per value, NUL-terminated.
	r, names := h.get("header_names", 256, i32arg(KindRequest))
	want := []string{"Host", "Content-Length", "X-Multi", "X-Multi", "X-Empty"}
	got := strings.Split(strings.TrimSuffix(string(names), "\x00"), "\x00")
	slices.Sort(got)
	slices.Sort(want)
	if int(r) != len(names) || !slices.Equal(got, want) {
		t.Errorf("header_names = %d %q, want %q", r, names, want)
	}
	// Size retry on lists: len 0, then a short buffer holding a prefix.
	if r2, _ := h.get("header_names", 0, i32arg(KindRequest)); r2 != r {
		t.Errorf("header_names size query %d, want %d", r2, r)
	}
	np, nl := h.put("x-multi")
	if r2, part := h.get("header_values", 5, i32arg(KindRequest), np, nl); r2 != 8 || string(part) != "one\x00t" {
		t.Errorf("header_values short = %d %q", r2, part)
	}
	if r2, _ := h.get("header_names", 8, i32arg(7)); r2 != ErrBadArgument {
		t.Errorf("bad kind = %d", r2)
	}
}

func TestHeaderWrite(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	if r := h.hdrSet("header_set", KindRequest, "x-multi", "only"); r != 0 {
		t.Fatalf("header_set = %d", r)
	}
	if r, v := h.hdrGet("header_values", KindRequest, "X-Multi"); r != 5 || v != "only\x00" {
		t.Fatalf("after set: %d %q", r, v)
	}
	if r := h.hdrSet("header_add", KindRequest, "X-Multi", "more"); r != 0 {
		t.Fatalf("header_add = %d", r)
	}
	if _, v := h.hdrGet("header_values", KindRequest, "x-multi"); v != "only\x00more\x00" {
		t.Fatalf("after add: %q", v)
	}
	if r := h.hdr("header_remove", KindRequest, "X-MULTI"); r != 0 {
		t.Fatalf("header_remove = %d", r)
	}
	if r, _ := h.hdrGet("header_get", KindRequest, "x-multi"); r != ErrNotFound {
		t.Fatalf("after remove: %d", r)
	}
	if r := h.hdr("header_remove", KindRequest, "x-absent"); r != 0 {
		t.Fatalf("remove absent = %d", r)
	}
	if r := h.hdrSet("header_set", KindRequest, "host", "other.example"); r != 0 || string(h.c.Req.Header.Host()) != "other.example" ||
		string(h.c.Req.URI().Host()) != "other.example" {
		t.Fatalf("set Host = %d, header %q, URI %q", r, h.c.Req.Header.Host(), h.c.Req.URI().Host())
	}
	bad := []struct {
		fn, name, value string
		code            int32
	}{
		{"header_set", "x-a", "v\r\nX-Evil: 1", ErrBadArgument},
		{"header_add", "x-a", "v\n", ErrBadArgument},
		{"header_set", "x-a", "v\x00", ErrBadArgument},
		{"header_set", "x a", "v", ErrBadArgument},
		{"header_add", "", "v", ErrBadArgument},
		{"header_set", "x-a:", "v", ErrBadArgument},
		{"header_set", "Content-Length", "5", ErrNotAllowed},
		{"header_add", "transfer-encoding", "chunked", ErrNotAllowed},
	}
	for _, tt := range bad {
		if r := h.hdrSet(tt.fn, KindRequest, tt.name, tt.value); r != tt.code {
			t.Errorf("%s(%q, %q) = %d, want %d", tt.fn, tt.name, tt.value, r, tt.code)
		}
	}
	if r := h.hdr("header_remove", KindRequest, "content-length"); r != ErrNotAllowed {
		t.Errorf("remove Content-Length = %d", r)
	}
	if _, v := h.hdrGet("header_get", KindRequest, "x-a"); v != "" {
		t.Errorf("a refused write left %q", v)
	}
	// A tab inside a value is fine.
	if r := h.hdrSet("header_set", KindRequest, "x-tab", "a\tb"); r != 0 {
		t.Errorf("tab value = %d", r)
	}
}

// TestHeaderRawNames covers headers that keep names as received, like the
// responses of the proxy's upstream client: lookups, replacement and
// removal still ignore case.
func TestHeaderRawNames(t *testing.T) {
	h := newHarness(t, PhaseResponse)
	rh := &h.c.Resp.Header
	rh.DisableNormalizing()
	rh.Add("x-raw", "1")
	rh.Add("X-RAW", "2")
	rh.Add("X-Raw", "3")
	if _, v := h.hdrGet("header_get", KindResponse, "X-Raw"); v != "1" {
		t.Fatalf("get = %q", v)
	}
	if _, v := h.hdrGet("header_values", KindResponse, "x-raw"); v != "1\x002\x003\x00" {
		t.Fatalf("values = %q", v)
	}
	if r := h.hdrSet("header_set", KindResponse, "X-Raw", "only"); r != 0 {
		t.Fatal(r)
	}
	if _, v := h.hdrGet("header_values", KindResponse, "x-raw"); v != "only\x00" {
		t.Fatalf("values after set = %q", v)
	}
	if r := h.hdr("header_remove", KindResponse, "x-RAW"); r != 0 {
		t.Fatal(r)
	}
	if r, _ := h.hdrGet("header_get", KindResponse, "x-raw"); r != ErrNotFound {
		t.Fatalf("after remove = %d", r)
	}
	if !rh.DisableNormalizing() {
		t.Fatal("removal changed the header's normalizing mode")
	}
}

// TestKindAccess is the table "Where header and body functions work".
func TestKindAccess(t *testing.T) {
	tests := []struct {
		phase       Phase
		local       bool
		kind        int32
		read, write int32
	}{
		{PhaseRequest, false, KindRequest, 0, 0},
		{PhaseRequest, false, KindResponse, ErrNotAllowed, ErrNotAllowed},
		{PhaseRequest, true, KindResponse, 0, 0},
		{PhaseResponse, false, KindRequest, 0, ErrNotAllowed},
		{PhaseResponse, false, KindResponse, 0, 0},
		{PhaseInit, false, KindRequest, ErrNotAllowed, ErrNotAllowed},
		{PhaseInit, false, KindResponse, ErrNotAllowed, ErrNotAllowed},
		{PhaseRequest, false, 2, ErrBadArgument, ErrBadArgument},
		{PhaseResponse, false, -1, ErrBadArgument, ErrBadArgument},
	}
	for _, tt := range tests {
		h := newHarness(t, tt.phase)
		h.c.LocalResponse = tt.local
		h.c.Resp.Header.Set("X-Resp", "r")
		h.c.Resp.SetBody([]byte("resp"))
		reads := map[string]int32{
			"header_get":    h.hdr("header_get", tt.kind, "x-resp", 0, 0),
			"header_values": h.hdr("header_values", tt.kind, "x-resp", 0, 0),
			"header_names":  h.call32("header_names", i32arg(tt.kind), 0, 0),
			"body_get":      int32(h.call("body_get", i32arg(tt.kind), 0, 0, 0)),
		}
		for fn, r := range reads {
			if (tt.read == 0 && r < 0 && r != ErrNotFound) || (tt.read != 0 && r != tt.read) {
				t.Errorf("phase %d local %v kind %d: %s = %d, want %d", tt.phase, tt.local, tt.kind, fn, r, tt.read)
			}
		}
		bp, bl := h.put("b")
		writes := map[string]int32{
			"header_set":    h.hdrSet("header_set", tt.kind, "x-w", "v"),
			"header_add":    h.hdrSet("header_add", tt.kind, "x-w", "v"),
			"header_remove": h.hdr("header_remove", tt.kind, "x-w"),
			"body_set":      h.call32("body_set", i32arg(tt.kind), bp, bl),
		}
		for fn, r := range writes {
			if r != tt.write {
				t.Errorf("phase %d local %v kind %d: %s = %d, want %d", tt.phase, tt.local, tt.kind, fn, r, tt.write)
			}
		}
	}
}

func TestBodyGet(t *testing.T) {
	const body = "hello world"
	tests := []struct {
		off  int64
		n    int
		want string
	}{
		{0, 0, ""},
		{0, 5, "hello"},
		{0, 64, body},
		{6, 3, "wor"},
		{6, 64, "world"},
		{11, 8, ""},
		{12, 8, ""},
		{math.MaxInt64, 8, ""},
	}
	h := newHarness(t, PhaseRequest)
	for _, tt := range tests {
		buf := h.alloc(tt.n + 1)
		r := int64(h.call("body_get", KindRequest, uint64(tt.off), buf, uint64(tt.n)))
		if r != int64(len(body)) {
			t.Errorf("off %d len %d: size %d", tt.off, tt.n, r)
		}
		got := h.bytes(buf, tt.n+1)
		if string(got[:len(tt.want)]) != tt.want || got[len(tt.want)] != 0xAA {
			t.Errorf("off %d len %d: wrote %q, want %q and nothing more", tt.off, tt.n, got, tt.want)
		}
	}
	if r := int64(h.call("body_get", KindRequest, uint64(1<<63), 0, 0)); r != ErrBadArgument {
		t.Errorf("negative offset = %d", r)
	}
}

func TestBodySet(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	h.c.Env.MaxBody = 8
	p, n := h.put("new body")
	if r := h.call32("body_set", KindRequest, p, n); r != 0 {
		t.Fatal(r)
	}
	if string(h.c.Req.Body()) != "new body" || h.c.Req.Header.ContentLength() != 8 {
		t.Fatalf("body %q, content-length %d", h.c.Req.Body(), h.c.Req.Header.ContentLength())
	}
	p, n = h.put("too large!")
	if r := h.call32("body_set", KindRequest, p, n); r != ErrTooLarge {
		t.Fatalf("over MaxBody = %d", r)
	}
	if r := h.call32("body_set", KindRequest, 0, 0); r != 0 || len(h.c.Req.Body()) != 0 {
		t.Fatalf("empty body = %d, %q", r, h.c.Req.Body())
	}
	h = newHarness(t, PhaseResponse)
	p, n = h.put("resp")
	if r := h.call32("body_set", KindResponse, p, n); r != 0 || string(h.c.Resp.Body()) != "resp" || h.c.Resp.Header.ContentLength() != 4 {
		t.Fatalf("response body_set = %d, %q", r, h.c.Resp.Body())
	}
}

func TestStatusAndSendResponse(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	if r := h.call32("response_status"); r != ErrNotAllowed {
		t.Fatalf("response_status before send_response = %d", r)
	}
	if r := h.call32("response_set_status", 201); r != ErrNotAllowed {
		t.Fatalf("response_set_status before send_response = %d", r)
	}
	if r := h.hdrSet("header_set", KindResponse, "x-a", "b"); r != ErrNotAllowed {
		t.Fatalf("response header before send_response = %d", r)
	}
	p, n := h.put(`{"error":"denied"}`)
	for _, bad := range []int32{0, 99, 600, -1} {
		if r := h.call32("send_response", i32arg(bad), p, n); r != ErrBadArgument {
			t.Fatalf("send_response(%d) = %d", bad, r)
		}
	}
	if h.c.LocalResponse {
		t.Fatal("a refused send_response set LocalResponse")
	}
	h.c.Env.MaxBody = 4
	if r := h.call32("send_response", 403, p, n); r != ErrTooLarge {
		t.Fatalf("send_response over MaxBody = %d", r)
	}
	h.c.Env.MaxBody = 0
	if r := h.call32("send_response", 403, p, n); r != 0 || !h.c.LocalResponse {
		t.Fatalf("send_response = %d, local %v", r, h.c.LocalResponse)
	}
	if h.c.Resp.StatusCode() != 403 || string(h.c.Resp.Body()) != `{"error":"denied"}` {
		t.Fatalf("response %d %q", h.c.Resp.StatusCode(), h.c.Resp.Body())
	}
	// After it, the response is the plugin's to shape.
	if r := h.hdrSet("header_set", KindResponse, "Content-Type", "application/json"); r != 0 {
		t.Fatalf("header_set after send_response = %d", r)
	}
	if r := h.call32("response_status"); r != 403 {
		t.Fatalf("response_status = %d", r)
	}
	if r := h.call32("response_set_status", 401); r != 0 || h.c.Resp.StatusCode() != 401 {
		t.Fatalf("response_set_status = %d", r)
	}
	for _, bad := range []int32{99, 600} {
		if r := h.call32("response_set_status", i32arg(bad)); r != ErrBadArgument {
			t.Fatalf("response_set_status(%d) = %d", bad, r)
		}
	}
	for _, phase := range []Phase{PhaseInit, PhaseResponse} {
		h := newHarness(t, phase)
		if r := h.call32("send_response", 200, 0, 0); r != ErrNotAllowed {
			t.Fatalf("send_response in phase %d = %d", phase, r)
		}
	}
	h = newHarness(t, PhaseResponse)
	h.c.Resp.SetStatusCode(502)
	if r := h.call32("response_status"); r != 502 {
		t.Fatalf("response_status in on_response = %d", r)
	}
	if r := h.call32("response_set_status", 200); r != 0 || h.c.Resp.StatusCode() != 200 {
		t.Fatalf("response_set_status in on_response = %d", r)
	}
	if r := newHarness(t, PhaseInit).call32("response_status"); r != ErrNotAllowed {
		t.Fatalf("response_status in on_init = %d", r)
	}
}

// pointerArgs lists, per function, its (ptr, len) parameter pairs; a
// negative len index is a fixed length (kv_incr's 8-byte result).
var pointerArgs = map[string][][2]int{
	"request_method":    {{0, 1}},
	"request_path":      {{0, 1}},
	"request_set_path":  {{0, 1}},
	"request_query":     {{0, 1}},
	"request_client_ip": {{0, 1}},
	"header_get":        {{1, 2}, {3, 4}},
	"header_values":     {{1, 2}, {3, 4}},
	"header_names":      {{1, 2}},
	"header_set":        {{1, 2}, {3, 4}},
	"header_add":        {{1, 2}, {3, 4}},
	"header_remove":     {{1, 2}},
	"body_get":          {{2, 3}},
	"body_set":          {{1, 2}},
	"send_response":     {{1, 2}},
	"config_get":        {{0, 1}},
	"log":               {{1, 2}},
	"set_error":         {{0, 1}},
	"random_get":        {{0, 1}},
	"kv_get":            {{0, 1}, {2, 3}},
	"kv_set":            {{0, 1}, {2, 3}},
	"kv_delete":         {{0, 1}},
	"kv_incr":           {{0, 1}, {4, -8}},
	"metric_define":     {{1, 2}},
	"http_batch":        {{0, 1}},
	"http_batch_result": {{0, 1}},
	"crypto_verify":     {{1, 2}, {3, 4}, {5, 6}},
}

// TestOutOfBounds gives every pointer of every function a range outside
// memory, the others valid, in every phase: the function must not run and
// must panic with OutOfBounds naming it.
func TestOutOfBounds(t *testing.T) {
	bad := []struct {
		name     string
		ptr, len uint64
	}{
		{"past end", memSize - 4, 8},
		{"far past end", 1 << 31, 16},
		{"negative len", 16, i32arg(-1)},
		{"min int len", 16, i32arg(math.MinInt32)},
		{"wraps 2^32", 0xFFFFFFF0, 0x20},
		{"max ptr", 0xFFFFFFFF, 1},
	}
	for _, f := range Functions() {
		for pi, pair := range pointerArgs[f.Name] {
			for _, b := range bad {
				if pair[1] < 0 && b.ptr == 16 {
					continue // a fixed length cannot be negative
				}
				for _, phase := range []Phase{PhaseInit, PhaseRequest, PhaseResponse} {
					h := newHarness(t, phase)
					h.c.Mem = naiveMem(h.mem)
					args := make([]uint64, len(f.Params))
					args[0] = KindRequest
					for _, q := range pointerArgs[f.Name] {
						p, _ := h.put("x-ok")
						args[q[0]] = p
						if q[1] >= 0 {
							args[q[1]] = 4
						}
					}
					args[pair[0]] = b.ptr
					if pair[1] >= 0 {
						args[pair[1]] = b.len
					}
					before := slices.Clone(h.mem)
					mustPanicOOB(t, f.Name, func() { h.call(f.Name, args...) })
					if !bytes.Equal(before, h.mem) {
						t.Errorf("%s pair %d %s: memory changed by a call that must not run", f.Name, pi, b.name)
					}
				}
			}
		}
	}
	// kv_incr's result pointer gets 8 bytes: the last 7 bytes do not fit.
	h := newHarness(t, PhaseRequest)
	kp, kl := h.put("k")
	mustPanicOOB(t, "kv_incr", func() { h.call("kv_incr", kp, kl, 1, 0, memSize-7) })
	if r := h.call32("kv_incr", kp, kl, 1, 0, memSize-8); r != 0 {
		t.Fatalf("kv_incr at the last 8 bytes = %d", r)
	}
	// Output buffers of length 0 accept any pointer; so do empty inputs.
	if r := h.call32("request_method", 0xFFFFFFFF, 0); r != 4 {
		t.Fatalf("size query with a wild pointer = %d", r)
	}
	if r := h.call32("set_error", 0xFFFFFFFF, 0); r != 0 {
		t.Fatalf("empty input with a wild pointer = %d", r)
	}
}

// hostCall is a host function and its arguments.
type hostCall struct {
	fn   string
	args []uint64
}

// requestCalls prepares h for, and returns, the calls a plugin makes on
// every request.
func requestCalls(h *harness) []hostCall {
	h.c.Env.KV.Set("k", []byte("value"), 0)
	np, nl := h.put("X-Multi")
	kp, kl := h.put("k")
	mp, ml := h.put("hits")
	id := h.call32("metric_define", MetricCounter, mp, ml)
	buf := h.alloc(128)
	return []hostCall{
		{"request_method", []uint64{buf, 128}},
		{"request_path", []uint64{buf, 128}},
		{"request_query", []uint64{buf, 128}},
		{"header_get", []uint64{KindRequest, np, nl, buf, 128}},
		{"header_values", []uint64{KindRequest, np, nl, buf, 128}},
		{"header_names", []uint64{KindRequest, buf, 128}},
		{"body_get", []uint64{KindRequest, 2, buf, 128}},
		{"kv_get", []uint64{kp, kl, buf, 128}},
		{"metric_record", []uint64{uint64(id), math.Float64bits(1)}},
		{"response_status", nil},
		{"time_now", nil},
	}
}

// TestZeroAllocs checks the getters a plugin calls on every request.
func TestZeroAllocs(t *testing.T) {
	h := newHarness(t, PhaseRequest)
	stack := make([]uint64, 8)
	for _, cl := range requestCalls(h) {
		fn := h.fns[cl.fn].Fn
		allocs := testing.AllocsPerRun(100, func() {
			copy(stack, cl.args)
			fn(h.c, stack)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", cl.fn, allocs)
		}
	}
}
