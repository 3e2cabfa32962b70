//go:build !wasip1

package wasmgate

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

func TestRequestAccessors(t *testing.T) {
	f := newFakeHost().install(t)
	f.method, f.path, f.query, f.clientIP = "POST", "/api/a%2Fb", "user=7&x=%20y", "192.0.2.1"
	f.headers[0] = []HeaderField{{"Accept", "a"}, {"X-Multi", "1"}, {"x-multi", "2"}, {"Host", "h"}}
	r := &Request{}
	if r.Method() != "POST" || r.Path() != "/api/a%2Fb" || r.Query() != "user=7&x=%20y" || r.ClientIP() != "192.0.2.1" {
		t.Fatalf("accessors: %q %q %q %q", r.Method(), r.Path(), r.Query(), r.ClientIP())
	}
	if v, ok := r.Header("x-MULTI"); !ok || v != "1" {
		t.Fatalf("Header = %q %v", v, ok)
	}
	if _, ok := r.Header("Missing"); ok {
		t.Fatal("missing header found")
	}
	if got := r.HeaderValues("X-Multi"); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Fatalf("HeaderValues = %q", got)
	}
	if got := r.HeaderValues("Missing"); got != nil {
		t.Fatalf("HeaderValues(missing) = %q", got)
	}
	if got := r.HeaderNames(); !reflect.DeepEqual(got, []string{"Accept", "X-Multi", "Host"}) {
		t.Fatalf("HeaderNames = %q", got)
	}
	if v, ok := r.QueryParam("x"); !ok || v != " y" {
		t.Fatalf("QueryParam = %q %v", v, ok)
	}

	if err := r.SetHeader("X-Multi", "3"); err != nil {
		t.Fatal(err)
	}
	if err := r.AddHeader("X-Multi", "4"); err != nil {
		t.Fatal(err)
	}
	if got := r.HeaderValues("x-multi"); !reflect.DeepEqual(got, []string{"3", "4"}) {
		t.Fatalf("after set+add: %q", got)
	}
	if err := r.RemoveHeader("X-Multi"); err != nil || r.HeaderValues("X-Multi") != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := r.SetHeader("X-Bad", "a\r\nb"); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("CRLF value: %v", err)
	}
	if err := r.SetPath("/new?q=1"); err != nil || f.path != "/new" || f.query != "q=1" {
		t.Fatalf("SetPath: %v %q %q", err, f.path, f.query)
	}
	if err := r.SetPath("relative"); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("SetPath(relative): %v", err)
	}
}

func TestResponseInRequestHook(t *testing.T) {
	f := newFakeHost().install(t)
	r := &request
	// Before SendResponse the response does not exist yet.
	if _, ok := response.Header("X"); ok || response.Status() != 0 {
		t.Fatal("response readable before SendResponse")
	}
	if _, err := r.SendResponse(600, nil); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("status 600: %v", err)
	}
	resp, err := r.SendResponse(401, []byte(`{"error":"no"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.SetHeader("WWW-Authenticate", `Bearer realm="x"`); err != nil {
		t.Fatal(err)
	}
	if resp.Status() != 401 || string(f.bodies[1]) != `{"error":"no"}` || f.headers[1][0].Value != `Bearer realm="x"` {
		t.Fatalf("local response: %d %q %v", resp.Status(), f.bodies[1], f.headers[1])
	}
	if resp.Request() != r {
		t.Fatal("Response.Request is not the request")
	}
}

func TestRequestReadOnlyInResponseHook(t *testing.T) {
	f := newFakeHost().install(t)
	f.phase = 2
	f.headers[0] = []HeaderField{{"User-Agent", "ua"}}
	req := response.Request()
	if v, _ := req.Header("User-Agent"); v != "ua" {
		t.Fatalf("request header in response hook: %q", v)
	}
	if err := req.SetHeader("X", "y"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("request write in response hook: %v", err)
	}
	if _, err := req.SendResponse(200, nil); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("SendResponse in response hook: %v", err)
	}
}

func TestBody(t *testing.T) {
	f := newFakeHost().install(t)
	f.phase = 2
	large := []byte(strings.Repeat("0123456789", 1000)) // 10 kB: over the scratch buffer
	for _, body := range [][]byte{nil, []byte("small"), large} {
		f.bodies[1] = body
		f.calls["body_get"] = 0
		got, err := response.Body()
		if err != nil || string(got) != string(body) {
			t.Fatalf("Body: %d bytes, %v", len(got), err)
		}
		want := 1
		if len(body) > scratchInitial {
			want = 2
		}
		if f.calls["body_get"] != want {
			t.Fatalf("%d-byte body took %d calls, want %d", len(body), f.calls["body_get"], want)
		}
	}
	// Body returns a copy: the next read does not overwrite it.
	f.bodies[1] = []byte("one")
	a, _ := response.Body()
	f.bodies[1] = []byte("two")
	if _, _ = response.Body(); string(a) != "one" {
		t.Fatalf("Body aliased the scratch buffer: %q", a)
	}

	f.bodies[1] = large
	buf := make([]byte, 4)
	for _, tc := range []struct {
		off  int64
		want string
	}{{0, "0123"}, {9998, "89"}, {10000, ""}, {20000, ""}} {
		n, size, err := response.BodyRange(tc.off, buf)
		if err != nil || size != 10000 || string(buf[:n]) != tc.want {
			t.Fatalf("BodyRange(%d) = %q, %d, %v; want %q", tc.off, buf[:n], size, err, tc.want)
		}
	}
	if _, _, err := response.BodyRange(-1, buf); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("negative offset: %v", err)
	}
	if err := response.SetBody([]byte("new")); err != nil || string(f.bodies[1]) != "new" {
		t.Fatalf("SetBody: %v", err)
	}
	if err := response.SetBody(make([]byte, 2<<20)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("SetBody over the limit: %v", err)
	}
	if _, err := request.Body(); err != nil {
		t.Fatalf("request body readable in response: %v", err)
	}
	if err := request.SetBody(nil); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("request body write in response: %v", err)
	}
}

func TestQueryParam(t *testing.T) {
	for _, tc := range []struct {
		q, name, want string
		ok            bool
	}{
		{"", "a", "", false},
		{"a=1", "a", "1", true},
		{"b=2&a=1&a=3", "a", "1", true},
		{"a", "a", "", true},
		{"a=", "a", "", true},
		{"ab=1", "a", "", false},
		{"a=x%20y+z", "a", "x y z", true},
		{"a%5Fb=1", "a_b", "1", true},
		{"a=%zz", "a", "%zz", true}, // undecodable: raw
		{"&&a=1", "a", "1", true},
	} {
		got, ok := queryParam(tc.q, tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("queryParam(%q, %q) = %q %v, want %q %v", tc.q, tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func FuzzQueryParam(f *testing.F) {
	f.Add("a=1&b=2", "b")
	f.Add("%41=%zz&+=", "A")
	f.Fuzz(func(t *testing.T, q, name string) {
		v, ok := queryParam(q, name)
		if !ok && v != "" {
			t.Fatalf("absent with value %q", v)
		}
		// The decoder agrees with net/url's.
		got, gotOK := queryUnescape(q)
		want, err := url.QueryUnescape(q)
		if gotOK != (err == nil) || gotOK && got != want {
			t.Fatalf("queryUnescape(%q) = %q %v, net/url %q %v", q, got, gotOK, want, err)
		}
	})
}

func TestKV(t *testing.T) {
	f := newFakeHost().install(t)
	if _, err := KVGet("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
	if err := KVSet("k", []byte("v"), 1500*time.Microsecond); err != nil || f.kvTTL["k"] != 2 {
		t.Fatalf("set: %v, ttl %d ms (want 1.5ms rounded up to 2)", err, f.kvTTL["k"])
	}
	if err := KVSet("k", []byte("v"), time.Nanosecond); err != nil || f.kvTTL["k"] != 1 {
		t.Fatalf("1ns TTL became %d ms, want 1 (0 would mean no expiry)", f.kvTTL["k"])
	}
	if err := KVSet("k", []byte("v"), -time.Second); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("negative TTL: %v", err)
	}
	if v, err := KVGet("k"); err != nil || string(v) != "v" {
		t.Fatalf("get: %q %v", v, err)
	}
	if err := KVSet(strings.Repeat("k", 300), nil, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long key: %v", err)
	}
	if err := KVDelete("k"); err != nil {
		t.Fatal(err)
	}
	if err := KVDelete("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	for i, want := range []int64{5, 3} {
		v, err := KVIncr("n", []int64{5, -2}[i], time.Minute)
		if err != nil || v != want {
			t.Fatalf("incr %d: %d %v", i, v, err)
		}
	}
	if f.kvTTL["n"] != 60000 {
		t.Fatalf("incr ttl %d ms", f.kvTTL["n"])
	}
	f.kv["s"] = []byte("text")
	if _, err := KVIncr("s", 1, 0); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("incr of text: %v", err)
	}
	f.phase = 0
	if _, err := KVGet("n"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("KV in on_init: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	f := newFakeHost().install(t)
	c, g, h := NewCounter("requests"), NewGauge("queue_depth"), NewHistogram("latency_seconds")
	if f.calls["metric_define"] != 0 {
		t.Fatal("declaring a metric called the host")
	}
	for range 3 {
		if err := c.Inc(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(2.5); err != nil {
		t.Fatal(err)
	}
	if err := g.Set(-4); err != nil {
		t.Fatal(err)
	}
	if err := h.Observe(0.25); err != nil {
		t.Fatal(err)
	}
	if f.calls["metric_define"] != 3 {
		t.Fatalf("metric_define called %d times, want once per metric", f.calls["metric_define"])
	}
	if !reflect.DeepEqual(f.records, []float64{1, 1, 1, 2.5, -4, 0.25}) {
		t.Fatalf("records %v", f.records)
	}
	if err := c.Add(-1); !errors.Is(err, ErrBadArgument) {
		t.Fatalf("negative counter add: %v", err)
	}
	for _, name := range []string{"", "Upper", "9lives", "has-dash", strings.Repeat("a", 64)} {
		if err := NewCounter(name).Inc(); !errors.Is(err, ErrBadArgument) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if !abi.ValidMetricName(strings.Repeat("a", 63)) || !abi.ValidMetricName("a_1") {
		t.Fatal("valid names rejected")
	}
}

func TestLogErrorTimeRandom(t *testing.T) {
	f := newFakeHost().install(t)
	Log(LevelWarn, "careful")
	Logf(LevelInfo, "n=%d", 3)
	if !reflect.DeepEqual(f.logs, []string{"warn: careful", "info: n=3"}) {
		t.Fatalf("logs %q", f.logs)
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	SetError(long)
	if len(f.errMsg) > abi.MaxErrorMessage || !utf8.ValidString(f.errMsg) || len(f.errMsg) < abi.MaxErrorMessage-1 {
		t.Fatalf("SetError kept %d bytes, valid UTF-8 %v", len(f.errMsg), utf8.ValidString(f.errMsg))
	}
	f.now = 1_700_000_000_123_456_789
	if got := Now(); got.UnixNano() != f.now {
		t.Fatalf("Now = %v", got)
	}
	b := make([]byte, 8)
	if err := FillRandom(b); err != nil || b[0] != 0x80 || b[7] != 0x87 {
		t.Fatalf("FillRandom: % x %v", b, err)
	}
	if LevelError.String() != "error" || Level(9).String() != "Level(9)" {
		t.Fatal("Level.String")
	}
}

func TestNoHost(t *testing.T) {
	resetSDK()
	// Without a fake the native build has no gateway: calls fail cleanly.
	if _, err := KVGet("k"); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("KVGet natively: %v", err)
	}
	if m := (&Request{}).Method(); m != "" {
		t.Fatalf("Method natively: %q", m)
	}
	if Now().IsZero() {
		t.Fatal("Now natively is zero")
	}
}
