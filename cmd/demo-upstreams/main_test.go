package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// waitBound is the generous bound of every wait for something
// asynchronous; tests never sleep a fixed time.
const waitBound = 10 * time.Second

// startService starts the named service on a random loopback port and
// shuts it down when the test ends.
func startService(t *testing.T, name string) *service {
	t.Helper()
	s, err := newService(name, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			t.Errorf("shutdown %s: %v", name, err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", name, err)
		}
	})
	return s
}

// response is one HTTP exchange's result.
type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any // nil when the body is not a JSON object
}

// get returns the value at a dotted path of the JSON body, e.g.
// "data.users.0.name"; nil when absent.
func (r *response) get(path string) any {
	var v any = r.json
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitBound}
}

func do(t *testing.T, c *http.Client, method, url string, header map[string]string, body string) *response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(b) > 0 {
		if err := json.Unmarshal(b, &r.json); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, url, b, err)
		}
	}
	return r
}

// num turns a JSON number into an int for comparisons.
func num(v any) any {
	if f, ok := v.(float64); ok {
		return int(f)
	}
	return v
}

// want maps a dotted JSON path of the answer to its value (numbers as int).
type want map[string]any

// endpointTest is one request to one service and what must come back.
type endpointTest struct {
	service, method, path string
	header                map[string]string
	body                  string
	status                int
	contentType           string // prefix; default application/json
	want                  want
	wantHeader            map[string]string
	bodyLen               int // for answers that are not JSON
}

func TestEndpoints(t *testing.T) {
	svcs := map[string]*service{}
	for _, def := range serviceDefs {
		svcs[def.name] = startService(t, def.name)
	}
	c := newClient(t)

	tests := []endpointTest{
		// users
		{service: "users", method: "GET", path: "/users", status: 200, want: want{"data.total": 5, "data.users.0.name": "Ada Lovelace", "data.users.4.id": 5}},
		{service: "users", method: "GET", path: "/users/3", status: 200, want: want{"data.name": "Grace Hopper", "data.email": "grace@example.com"}},
		{service: "users", method: "GET", path: "/users/999", status: 404, want: want{"error": `user "999" not found`}},
		{service: "users", method: "GET", path: "/users/abc", status: 404},
		{service: "users", method: "GET", path: "/users/1/extra", status: 404},
		{service: "users", method: "POST", path: "/users", body: `{"name":"Barbara Liskov","email":"barbara@example.com"}`, status: 201,
			want: want{"data.name": "Barbara Liskov", "data.plan": "free"}},
		{service: "users", method: "POST", path: "/users", body: `{"name":`, status: 400},
		{service: "users", method: "POST", path: "/users", body: `{"name":"No Mail"}`, status: 422},
		{service: "users", method: "DELETE", path: "/users", status: 405, wantHeader: map[string]string{"Allow": "GET, POST"}},
		// the cap of /bytes, transferred once (HEAD checks it everywhere)
		{service: "users", method: "GET", path: "/bytes/99999999", status: 200, contentType: "application/octet-stream", bodyLen: maxBytes},
		// orders
		{service: "orders", method: "GET", path: "/orders", status: 200, want: want{"data.total": 5, "data.orders.0.id": "ord_1001"}},
		{service: "orders", method: "GET", path: "/orders?user=1", status: 200, want: want{"data.total": 2, "data.orders.1.id": "ord_1003"}},
		{service: "orders", method: "GET", path: "/orders/ord_1002", status: 200, want: want{"data.status": "shipped", "data.total_cents": 12999, "data.items.0.name": "Mechanical keyboard"}},
		{service: "orders", method: "GET", path: "/orders/ord_9", status: 404},
		{service: "orders", method: "POST", path: "/orders", body: `{"user_id":2,"items":[{"sku":"book-gopl","qty":2},{"sku":"sticker","qty":1}]}`, status: 201,
			want: want{"data.total_cents": 2*3999 + 299, "data.status": "created", "data.replayed": false, "data.currency": "EUR"}},
		{service: "orders", method: "POST", path: "/orders", body: `{"user_id":2,"items":[{"sku":"unicorn","qty":1}]}`, status: 422, want: want{"error": `unknown sku "unicorn"`}},
		{service: "orders", method: "POST", path: "/orders", body: `{"user_id":2,"items":[]}`, status: 422},
		{service: "orders", method: "POST", path: "/orders", body: `[]`, status: 400},
		// feed
		{service: "feed", method: "GET", path: "/feed?user=2", status: 200, want: want{"data.user": 2, "data.items.0.author": "Grace Hopper", "data.items.3.id": "post_203", "data.items.4": nil}},
		{service: "feed", method: "GET", path: "/feed", header: map[string]string{"X-User-Id": "3"}, status: 200, want: want{"data.user": 3}},
		{service: "feed", method: "GET", path: "/feed", status: 400},
		{service: "feed", method: "GET", path: "/feed?user=abc", status: 400},
		{service: "feed", method: "GET", path: "/feed?user=0", status: 400},
		// notifications
		{service: "notifications", method: "GET", path: "/notifications?user=1", status: 200,
			want: want{"data.user": 1, "data.unread": 2, "data.notifications.0.type": "like", "data.notifications.3.read": true}},
		{service: "notifications", method: "GET", path: "/notifications", status: 400},
		// legacy: users (its own shape), orders and feed under one upstream
		{service: "legacy", method: "GET", path: "/users", status: 200,
			want: want{"data.total": 5, "data.users.0.name": "Ada Lovelace", "data.users.0.email": "ada@example.com", "data.users.2.email": "GRACE@EXAMPLE.COM"}},
		{service: "legacy", method: "GET", path: "/users/3", status: 200, want: want{"data.id": 3, "data.name": "Grace Hopper", "data.email": "GRACE@EXAMPLE.COM"}},
		{service: "legacy", method: "GET", path: "/users/1", status: 200, want: want{"data.name": "Ada Lovelace", "data.email": "ada@example.com"}},
		{service: "legacy", method: "GET", path: "/users/999", status: 404, want: want{"error": `user "999" not found`}},
		{service: "legacy", method: "POST", path: "/users", body: `{"name":"Barbara Liskov","email":"barbara@example.com"}`, status: 201,
			want: want{"data.name": "Barbara Liskov", "data.email": "barbara@example.com", "data.plan": "free"}},
		{service: "legacy", method: "POST", path: "/users", body: `{"name":"No Mail"}`, status: 422},
		{service: "legacy", method: "DELETE", path: "/users", status: 405, wantHeader: map[string]string{"Allow": "GET, POST"}},
		{service: "legacy", method: "GET", path: "/orders?user=1", status: 200, want: want{"data.total": 2, "data.orders.1.id": "ord_1003"}},
		{service: "legacy", method: "GET", path: "/orders/ord_1002", status: 200, want: want{"data.status": "shipped", "data.total_cents": 12999}},
		{service: "legacy", method: "GET", path: "/orders/ord_9", status: 404},
		{service: "legacy", method: "POST", path: "/orders", body: `{"user_id":2,"items":[{"sku":"mug","qty":2}]}`, status: 201,
			want: want{"data.total_cents": 2 * 1299, "data.status": "created", "data.replayed": false}},
		{service: "legacy", method: "POST", path: "/orders", body: `{"user_id":2,"items":[{"sku":"unicorn","qty":1}]}`, status: 422},
		{service: "legacy", method: "PUT", path: "/orders/ord_1002", status: 405, wantHeader: map[string]string{"Allow": "GET"}},
		{service: "legacy", method: "GET", path: "/feed?user=2", status: 200, want: want{"data.user": 2, "data.items.0.author": "Grace Hopper", "data.items.3.id": "post_203"}},
		{service: "legacy", method: "GET", path: "/feed", header: map[string]string{"X-User-Id": "3"}, status: 200, want: want{"data.user": 3}},
		{service: "legacy", method: "GET", path: "/feed", status: 400},
		{service: "legacy", method: "GET", path: "/notifications?user=1", status: 404},
	}
	// The common endpoints, on every service.
	for _, def := range serviceDefs {
		n := def.name
		tests = append(tests, []endpointTest{
			{service: n, method: "GET", path: "/healthz", status: 200, contentType: "text/plain", bodyLen: 2},
			{service: n, method: "HEAD", path: "/healthz", status: 200, contentType: "text/plain", bodyLen: 0},
			{service: n, method: "GET", path: "/bench", status: 200, contentType: "text/plain", bodyLen: 64},
			{service: n, method: "GET", path: "/", status: 200, want: want{"data.endpoints.0": def.routes[0].String()}},
			{service: n, method: "GET", path: "/status/418", status: 418, want: want{"data.status": 418, "data.text": "I'm a teapot"}},
			{service: n, method: "GET", path: "/status/503", status: 503},
			{service: n, method: "GET", path: "/status/204", status: 204, bodyLen: 0},
			{service: n, method: "GET", path: "/status/99", status: 400},
			{service: n, method: "GET", path: "/status/abc", status: 400},
			{service: n, method: "GET", path: "/bytes/0", status: 200, contentType: "application/octet-stream", bodyLen: 0},
			{service: n, method: "GET", path: "/bytes/1000", status: 200, contentType: "application/octet-stream", bodyLen: 1000},
			{service: n, method: "HEAD", path: "/bytes/99999999", status: 200, contentType: "application/octet-stream", wantHeader: map[string]string{"Content-Length": strconv.Itoa(maxBytes)}},
			{service: n, method: "GET", path: "/bytes/-1", status: 400},
			{service: n, method: "GET", path: "/slow?ms=1", status: 200, want: want{"data.requested_ms": 1, "data.sleep_ms": 1, "data.interrupted": false}},
			{service: n, method: "GET", path: "/slow", status: 200, want: want{"data.sleep_ms": 0}},
			{service: n, method: "GET", path: "/slow?ms=x", status: 400},
			{service: n, method: "POST", path: "/healthz", status: 405, wantHeader: map[string]string{"Allow": "GET"}},
			{service: n, method: "GET", path: "/nope", status: 404, want: want{"error": "no route for GET /nope"}},
		}...)
	}

	for _, tt := range tests {
		t.Run(tt.service+" "+tt.method+" "+tt.path, func(t *testing.T) {
			s := svcs[tt.service]
			r := do(t, c, tt.method, "http://"+s.instance+tt.path, tt.header, tt.body)
			if r.status != tt.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.status, r.body)
			}
			// Every answer names its service, JSON or not, 2xx or not.
			if got := r.header.Values("X-Served-By"); len(got) != 1 || got[0] != s.name {
				t.Errorf("X-Served-By = %q, want exactly %q", got, s.name)
			}
			ct := cmp.Or(tt.contentType, "application/json")
			if tt.status == 204 {
				ct = ""
			}
			if got := r.header.Get("Content-Type"); ct != "" && !strings.HasPrefix(got, ct) {
				t.Errorf("Content-Type = %q, want %q", got, ct)
			}
			if r.json != nil {
				if r.get("service") != s.name || r.get("instance") != s.instance {
					t.Errorf("service, instance = %v, %v; want %s, %s", r.get("service"), r.get("instance"), s.name, s.instance)
				}
				if r.get("request.method") != tt.method {
					t.Errorf("request.method = %v, want %s", r.get("request.method"), tt.method)
				}
			} else if len(r.body) != tt.bodyLen {
				t.Errorf("body length = %d, want %d", len(r.body), tt.bodyLen)
			}
			for path, w := range tt.want {
				if got := num(r.get(path)); got != w {
					t.Errorf("%s = %#v, want %#v; body %s", path, got, w, r.body)
				}
			}
			for k, w := range tt.wantHeader {
				if got := r.header.Get(k); got != w {
					t.Errorf("header %s = %q, want %q", k, got, w)
				}
			}
		})
	}
}

func TestBenchAndHealthzBodies(t *testing.T) {
	s := startService(t, "feed")
	c := newClient(t)
	if r := do(t, c, "GET", "http://"+s.instance+"/bench", nil, ""); !bytes.Equal(r.body, benchBody) || len(r.body) != 64 {
		t.Errorf("/bench body = %q (%d bytes), want the 64-byte bench body", r.body, len(r.body))
	}
	if r := do(t, c, "GET", "http://"+s.instance+"/healthz", nil, ""); string(r.body) != "ok" {
		t.Errorf("/healthz body = %q, want ok", r.body)
	}
	r := do(t, c, "GET", "http://"+s.instance+"/bytes/100", nil, "")
	if want := bytesPayload()[:100]; !bytes.Equal(r.body, want) {
		t.Errorf("/bytes/100 = %q, want %q", r.body, want)
	}
}

func TestRequestEcho(t *testing.T) {
	s := startService(t, "users")
	c := newClient(t)
	// The headers a gateway sets or forwards, spelled out (not taken from
	// echoHeaders) so that dropping one from the code fails the test.
	echoed := map[string]string{
		"X-Request-Id":      "01J9Z6Q4W8",
		"X-Forwarded-For":   "203.0.113.7, 10.0.0.1",
		"X-Forwarded-Proto": "https",
		"X-Forwarded-Host":  "api.example.com",
		"Forwarded":         `for=203.0.113.7;proto=https;host="api.example.com"`,
		"Traceparent":       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"X-Consumer":        "mobile-app",
		"X-User-Id":         "42",
	}
	sent := map[string]string{"X-Not-Echoed": "secret", "Authorization": "Bearer x"}
	for k, v := range echoed {
		sent[k] = v
	}
	r := do(t, c, "GET", "http://"+s.instance+"/users/1?b=2&a=1", sent, "")
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	for k, want := range map[string]any{
		"request.method": "GET",
		"request.path":   "/users/1",
		"request.query":  "b=2&a=1",
		"request.host":   s.instance,
	} {
		if got := r.get(k); got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	got, _ := r.get("request.headers").(map[string]any)
	if len(got) != len(echoed) {
		t.Errorf("echoed headers = %v, want exactly %v", got, echoed)
	}
	for k, v := range echoed {
		if got[k] != v {
			t.Errorf("header %s echoed as %v, want %q", k, got[k], v)
		}
	}
}

// TestFeedHasNoOwnPosts checks that no user sees their own posts.
func TestFeedHasNoOwnPosts(t *testing.T) {
	s := startService(t, "feed")
	c := newClient(t)
	for uid := 1; uid <= len(seedUsers)+1; uid++ {
		r := do(t, c, "GET", fmt.Sprintf("http://%s/feed?user=%d", s.instance, uid), nil, "")
		items, _ := r.get("data.items").([]any)
		if r.status != 200 || len(items) == 0 {
			t.Fatalf("user %d: status %d body %s", uid, r.status, r.body)
		}
		for _, it := range items {
			if num(it.(map[string]any)["author_id"]) == uid {
				t.Errorf("user %d sees their own post %v", uid, it)
			}
		}
	}
}

func TestCreateUserLocation(t *testing.T) {
	s := startService(t, "users")
	c := newClient(t)
	a := do(t, c, "POST", "http://"+s.instance+"/users", nil, `{"name":"A","email":"a@example.com"}`)
	b := do(t, c, "POST", "http://"+s.instance+"/users", nil, `{"name":"B","email":"b@example.com"}`)
	if a.status != 201 || b.status != 201 {
		t.Fatalf("status %d, %d", a.status, b.status)
	}
	if num(a.get("data.id")) == num(b.get("data.id")) {
		t.Errorf("two created users got the same id %v", a.get("data.id"))
	}
	if loc, want := a.header.Get("Location"), fmt.Sprintf("/users/%v", num(a.get("data.id"))); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
}

// TestOrderIdempotency runs on both services that create orders.
func TestOrderIdempotency(t *testing.T) {
	for _, name := range []string{"orders", "legacy"} {
		t.Run(name, func(t *testing.T) { testOrderIdempotency(t, name) })
	}
}

func testOrderIdempotency(t *testing.T, name string) {
	s := startService(t, name)
	c := newClient(t)
	url := "http://" + s.instance + "/orders"
	const body = `{"user_id":4,"items":[{"sku":"mug","qty":3}]}`
	key := map[string]string{"Idempotency-Key": "k-123"}

	first := do(t, c, "POST", url, key, body)
	if first.status != 201 || first.get("data.replayed") != false {
		t.Fatalf("first: status %d, body %s", first.status, first.body)
	}
	id := first.get("data.id")

	again := do(t, c, "POST", url, key, body)
	if again.status != 201 || again.get("data.id") != id || again.get("data.replayed") != true {
		t.Fatalf("replay: status %d, body %s; want id %v replayed", again.status, again.body, id)
	}
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replay without Idempotent-Replayed header")
	}
	if got := do(t, c, "GET", url+"/"+id.(string), nil, ""); got.status != 200 || num(got.get("data.total_cents")) != 3*1299 {
		t.Errorf("GET created order: status %d, body %s", got.status, got.body)
	}

	other := do(t, c, "POST", url, key, `{"user_id":4,"items":[{"sku":"mug","qty":4}]}`)
	if other.status != 422 {
		t.Errorf("key reused with another body: status %d, want 422", other.status)
	}

	n1 := do(t, c, "POST", url, nil, body)
	n2 := do(t, c, "POST", url, nil, body)
	if n1.get("data.id") == n2.get("data.id") || n1.get("data.id") == id {
		t.Errorf("orders without a key share an id: %v %v %v", id, n1.get("data.id"), n2.get("data.id"))
	}

	long := map[string]string{"Idempotency-Key": strings.Repeat("k", maxIdempotencyKey+1)}
	if r := do(t, c, "POST", url, long, body); r.status != 400 {
		t.Errorf("over-long key: status %d, want 400", r.status)
	}

	list := do(t, c, "GET", url, nil, "")
	if num(list.get("data.total")) != len(seedOrders)+3 {
		t.Errorf("orders total = %v, want %d", list.get("data.total"), len(seedOrders)+3)
	}
}

// TestSlowInterruptedByShutdown checks that a sleeping /slow handler wakes
// on shutdown instead of holding the process.
func TestSlowInterruptedByShutdown(t *testing.T) {
	s, err := newService("notifications", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.serve() }()
	c := newClient(t)
	got := make(chan *response, 1)
	go func() {
		resp, err := c.Get("http://" + s.instance + "/slow?ms=100000")
		if err != nil {
			got <- &response{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		r := &response{status: resp.StatusCode, body: b}
		_ = json.Unmarshal(b, &r.json)
		got <- r
	}()
	for deadline := time.Now().Add(waitBound); s.slowWaiting.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the /slow request never started")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-got
	if r.status != 200 || r.get("data.interrupted") != true || num(r.get("data.sleep_ms")) != int(maxSlow/time.Millisecond) {
		t.Errorf("slow answer: status %d, body %s; want 200, interrupted, capped at %v", r.status, r.body, maxSlow)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestBenchDoesNotAllocate(t *testing.T) {
	s, err := newService("users", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln.Close()
	var ctx fasthttp.RequestCtx
	var req fasthttp.Request
	req.SetRequestURI("/bench")
	req.Header.SetMethod("GET")
	ctx.Init(&req, nil, nil)
	s.handle(&ctx) // warm up
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		s.handle(&ctx)
	})
	if allocs != 0 {
		t.Errorf("/bench allocates %v times per request, want 0", allocs)
	}
	if !bytes.Equal(ctx.Response.Body(), benchBody) || ctx.Response.StatusCode() != 200 {
		t.Errorf("/bench answered %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if got := string(ctx.Response.Header.Peek("X-Served-By")); got != "users" {
		t.Errorf("/bench X-Served-By = %q, want users", got)
	}
}

func TestInstanceAddr(t *testing.T) {
	tests := []struct {
		base    string
		i       int
		want    string
		wantErr string
	}{
		{"127.0.0.1:9101", 0, "127.0.0.1:9101", ""},
		{"127.0.0.1:9101", 2, "127.0.0.1:11101", ""},
		{"[::1]:9101", 1, "[::1]:10101", ""},
		{"localhost:9104", 3, "localhost:12104", ""},
		{"127.0.0.1:9105", 1, "127.0.0.1:10105", ""},
		{"127.0.0.1:0", 3, "127.0.0.1:0", ""},
		{"127.0.0.1:65000", 1, "", "above 65535"},
		{"127.0.0.1", 0, "", "missing port"},
		{"127.0.0.1:http", 0, "", "bad port"},
	}
	for _, tt := range tests {
		got, err := instanceAddr(tt.base, tt.i)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("instanceAddr(%q, %d) err = %v, want %q", tt.base, tt.i, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("instanceAddr(%q, %d) = %q, %v; want %q", tt.base, tt.i, got, err, tt.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	defaults := map[string]string{}
	for _, def := range serviceDefs {
		defaults[def.name] = def.addr
	}
	tests := []struct {
		args      []string
		addrs     map[string]string // overrides of the defaults
		instances int
		wantErr   string
	}{
		{args: nil, instances: 1},
		{args: []string{"-users", "", "-feed", "127.0.0.1:7000", "-instances", "3"}, addrs: map[string]string{"users": "", "feed": "127.0.0.1:7000"}, instances: 3},
		{args: []string{"-legacy", "", "-instances", "2"}, addrs: map[string]string{"legacy": ""}, instances: 2},
		{args: []string{"-legacy", "127.0.0.1:7105"}, addrs: map[string]string{"legacy": "127.0.0.1:7105"}, instances: 1},
		{args: []string{"-instances", "0"}, wantErr: "want 1 to 50"},
		{args: []string{"extra"}, wantErr: "unexpected arguments"},
		{args: []string{"-nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		opts, err := parseFlags(tt.args, io.Discard)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFlags(%q) err = %v, want %q", tt.args, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tt.args, err)
		}
		want := map[string]string{}
		for k, v := range defaults {
			want[k] = v
		}
		for k, v := range tt.addrs {
			want[k] = v
		}
		if fmt.Sprint(opts.addrs) != fmt.Sprint(want) || opts.instances != tt.instances {
			t.Errorf("parseFlags(%q) = %v %d, want %v %d", tt.args, opts.addrs, opts.instances, want, tt.instances)
		}
	}
}

// TestRun drives run as main does: it logs one line per instance, serves
// every instance and returns nil when its context ends.
func TestRun(t *testing.T) {
	opts := options{
		addrs:     map[string]string{"users": "127.0.0.1:0", "orders": "", "feed": "127.0.0.1:0", "notifications": "127.0.0.1:0", "legacy": "127.0.0.1:0"},
		instances: 2,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, opts, pw)
		pw.Close()
		done <- err
	}()

	type listener struct{ name, addr string }
	var got []listener
	sc := bufio.NewScanner(pr)
	for len(got) < 8 && sc.Scan() {
		var name, url string
		if _, err := fmt.Sscanf(sc.Text(), "demo-upstreams: %s listening on %s", &name, &url); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		got = append(got, listener{name, strings.TrimPrefix(url, "http://")})
	}
	var names []string
	for _, l := range got {
		names = append(names, l.name)
	}
	if want := []string{"users", "users", "feed", "feed", "notifications", "notifications", "legacy", "legacy"}; !slices.Equal(names, want) {
		t.Fatalf("services logged = %q, want %q", names, want)
	}
	c := newClient(t)
	seen := map[string]bool{}
	for _, l := range got {
		r := do(t, c, "GET", "http://"+l.addr+"/", nil, "")
		if r.status != 200 || r.get("service") != l.name || r.get("instance") != l.addr || r.header.Get("X-Served-By") != l.name {
			t.Errorf("%s on %s: status %d body %s", l.name, l.addr, r.status, r.body)
		}
		seen[l.addr] = true
	}
	if len(seen) != len(got) {
		t.Errorf("instances share addresses: %v", got)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(waitBound):
		t.Fatal("run did not return after cancel")
	}
	for _, l := range got {
		if conn, err := net.Dial("tcp", l.addr); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections on %s after shutdown", l.name, l.addr)
		}
	}
}

func TestRunErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	tests := []struct {
		name    string
		addrs   map[string]string
		wantErr string
	}{
		{"all disabled", map[string]string{}, "every service is disabled"},
		{"port in use", map[string]string{"users": "127.0.0.1:0", "feed": busy.Addr().String()}, "feed: listen:"},
		{"bad address", map[string]string{"users": "nowhere"}, "users: address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), options{addrs: tt.addrs, instances: 1}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestDefaultAddrs checks the fixed ports of the demo: legacy on 9105, and
// no two instances of any services on the same address, up to the most
// instances -instances allows.
func TestDefaultAddrs(t *testing.T) {
	i := slices.IndexFunc(serviceDefs, func(d serviceDef) bool { return d.name == "legacy" })
	if i < 0 || serviceDefs[i].addr != "127.0.0.1:9105" {
		t.Fatalf("legacy service missing or not on 127.0.0.1:9105: %+v", serviceDefs)
	}
	seen := map[string]string{}
	for _, def := range serviceDefs {
		for i := range 50 {
			addr, err := instanceAddr(def.addr, i)
			if err != nil {
				t.Fatalf("%s instance %d: %v", def.name, i, err)
			}
			if other, dup := seen[addr]; dup {
				t.Errorf("%s instance %d and %s both on %s", def.name, i, other, addr)
			}
			seen[addr] = fmt.Sprintf("%s instance %d", def.name, i)
		}
	}
}

// jsonDiff lists the dotted paths (as response.get takes them) where two
// parsed JSON values differ, sorted; a key present on one side only is a
// difference at its path.
func jsonDiff(a, b any, path string) []string {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			return []string{path}
		}
		keys := map[string]bool{}
		for k := range x {
			keys[k] = true
		}
		for k := range y {
			keys[k] = true
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			xv, xok := x[k]
			yv, yok := y[k]
			if xok != yok {
				out = append(out, join(k))
				continue
			}
			out = append(out, jsonDiff(xv, yv, join(k))...)
		}
		return out
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return []string{path}
		}
		var out []string
		for i := range x {
			out = append(out, jsonDiff(x[i], y[i], join(strconv.Itoa(i)))...)
		}
		return out
	default:
		if !reflect.DeepEqual(a, b) {
			return []string{path}
		}
		return nil
	}
}

// withoutProcess checks and removes from an answer what names the process
// that served it (service, instance, request.host): the only parts of the
// envelope that may differ between two services' answers to one request.
func withoutProcess(t *testing.T, r *response, s *service) map[string]any {
	t.Helper()
	if r.json == nil {
		t.Fatalf("%s: answer is not a JSON object: %s", s.name, r.body)
	}
	if r.get("service") != s.name || r.get("instance") != s.instance || r.get("request.host") != s.instance {
		t.Errorf("%s answered service %v, instance %v, host %v", s.name, r.get("service"), r.get("instance"), r.get("request.host"))
	}
	delete(r.json, "service")
	delete(r.json, "instance")
	if req, ok := r.json["request"].(map[string]any); ok {
		delete(req, "host")
	}
	return r.json
}

// legacyPair is one request's answers from a new service and from legacy,
// the process-naming parts removed.
func legacyPair(t *testing.T, c *http.Client, newSvc, legacy *service, path string, header map[string]string) (n, l *response) {
	t.Helper()
	n = do(t, c, "GET", "http://"+newSvc.instance+path, header, "")
	l = do(t, c, "GET", "http://"+legacy.instance+path, header, "")
	if n.status != l.status {
		t.Fatalf("GET %s: %s answered %d, legacy %d", path, newSvc.name, n.status, l.status)
	}
	withoutProcess(t, n, newSvc)
	withoutProcess(t, l, legacy)
	return n, l
}

// TestLegacyUsersMatchUsers proves that the legacy service's users answers
// are the users service's, compared as parsed JSON for every user id, the
// list and unknown ids, except for exactly the two intended differences:
// updated_at on every legacy user, and user 3's email in upper case. With
// updated_at ignored, GET /users/3 differs in data.email only and every
// other id not at all.
func TestLegacyUsersMatchUsers(t *testing.T) {
	users, legacy := startService(t, "users"), startService(t, "legacy")
	c := newClient(t)
	const quirkID, newEmail, legacyEmail = 3, "grace@example.com", "GRACE@EXAMPLE.COM"
	if legacyQuirkUserID != quirkID {
		t.Fatalf("legacyQuirkUserID = %d, but the docs and the demo say %d", legacyQuirkUserID, quirkID)
	}

	type check struct {
		path string
		// diffs are the paths where the answers must differ, and nowhere else.
		diffs []string
		// emailAt is the path of user 3's email, "" when not in the answer.
		emailAt string
	}
	checks := []check{{path: "/users/999"}, {path: "/users/abc"}, {path: "/users/0"}}
	var listDiffs []string
	listEmailAt := ""
	for i, u := range seedUsers {
		c := check{path: "/users/" + strconv.Itoa(u.ID), diffs: []string{"data.updated_at"}}
		listDiffs = append(listDiffs, fmt.Sprintf("data.users.%d.updated_at", i))
		if u.ID == quirkID {
			c.diffs = []string{"data.email", "data.updated_at"}
			c.emailAt = "data.email"
			listEmailAt = fmt.Sprintf("data.users.%d.email", i)
			listDiffs = append(listDiffs, listEmailAt)
		}
		checks = append(checks, c)
	}
	slices.Sort(listDiffs)
	checks = append(checks, check{path: "/users", diffs: listDiffs, emailAt: listEmailAt})

	for _, ck := range checks {
		t.Run(ck.path, func(t *testing.T) {
			n, l := legacyPair(t, c, users, legacy, ck.path, nil)
			if got := jsonDiff(n.json, l.json, ""); !slices.Equal(got, ck.diffs) {
				t.Errorf("users and legacy differ at %q, want exactly %q\nusers:  %s\nlegacy: %s", got, ck.diffs, n.body, l.body)
			}
			if ck.emailAt != "" && (n.get(ck.emailAt) != newEmail || l.get(ck.emailAt) != legacyEmail) {
				t.Errorf("%s: users %v, legacy %v; want %q, %q", ck.emailAt, n.get(ck.emailAt), l.get(ck.emailAt), newEmail, legacyEmail)
			}
			// Both differences removed, the answers are the same JSON.
			for _, d := range ck.diffs {
				if strings.HasSuffix(d, ".updated_at") {
					obj, _ := l.get(strings.TrimSuffix(d, ".updated_at")).(map[string]any)
					if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(obj["updated_at"])); err != nil {
						t.Errorf("%s = %v: %v", d, obj["updated_at"], err)
					}
					delete(obj, "updated_at")
				}
			}
			if ck.emailAt != "" {
				l.get(strings.TrimSuffix(ck.emailAt, ".email")).(map[string]any)["email"] = newEmail
			}
			if !reflect.DeepEqual(n.json, l.json) {
				t.Errorf("with updated_at removed and the email lower-cased, the answers still differ\nusers:  %s\nlegacy: %s", n.body, l.body)
			}
		})
	}

	// Field for field and in the same order: the legacy record encodes as
	// the users service's with updated_at appended (and user 3's email).
	at := time.Date(2025, 7, 1, 12, 0, 0, 123, time.UTC)
	for _, u := range seedUsers {
		nb, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		lb, err := json.Marshal(legacyRecord(u, at))
		if err != nil {
			t.Fatal(err)
		}
		want := string(nb[:len(nb)-1]) + `,"updated_at":"2025-07-01T12:00:00.000000123Z"}`
		if u.ID == quirkID {
			want = strings.Replace(want, `"email":"`+newEmail+`"`, `"email":"`+legacyEmail+`"`, 1)
		}
		if string(lb) != want {
			t.Errorf("user %d: legacy encodes as\n%s\nwant\n%s", u.ID, lb, want)
		}
	}
}

// TestLegacyOrdersAndFeedMatch checks that the legacy service answers
// orders and feed as the orders and feed services do: the same JSON, the
// process-naming parts aside.
func TestLegacyOrdersAndFeedMatch(t *testing.T) {
	orders, feed, legacy := startService(t, "orders"), startService(t, "feed"), startService(t, "legacy")
	c := newClient(t)
	type check struct {
		svc    *service
		path   string
		header map[string]string
	}
	var checks []check
	for _, p := range []string{"/orders", "/orders?user=1", "/orders?user=99", "/orders/ord_1004", "/orders/ord_9"} {
		checks = append(checks, check{svc: orders, path: p})
	}
	for uid := 1; uid <= len(seedUsers)+2; uid++ {
		checks = append(checks, check{svc: feed, path: fmt.Sprintf("/feed?user=%d", uid)})
	}
	checks = append(checks,
		check{svc: feed, path: "/feed", header: map[string]string{"X-User-Id": "4"}},
		check{svc: feed, path: "/feed"},
		check{svc: feed, path: "/feed?user=x"})
	for _, ck := range checks {
		n, l := legacyPair(t, c, ck.svc, legacy, ck.path, ck.header)
		if d := jsonDiff(n.json, l.json, ""); len(d) > 0 {
			t.Errorf("GET %s: %s and legacy differ at %q\n%s:  %s\nlegacy: %s", ck.path, ck.svc.name, d, ck.svc.name, n.body, l.body)
		}
	}
}

// TestLegacyUpdatedAt checks the volatile field: every legacy user answer
// carries updated_at, the time of the answer, different in any two
// answers (the same for every user of one list); created users too.
func TestLegacyUpdatedAt(t *testing.T) {
	s := startService(t, "legacy")
	c := newClient(t)
	parse := func(r *response, path string) time.Time {
		t.Helper()
		v, _ := r.get(path).(string)
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t.Fatalf("%s = %q: %v; body %s", path, v, err, r.body)
		}
		return at
	}
	before := time.Now()
	seen := map[time.Time]bool{}
	for range 20 {
		at := parse(do(t, c, "GET", "http://"+s.instance+"/users/1", nil, ""), "data.updated_at")
		if seen[at] {
			t.Errorf("two answers carry updated_at %v", at)
		}
		seen[at] = true
	}
	list := do(t, c, "GET", "http://"+s.instance+"/users", nil, "")
	at := parse(list, "data.users.0.updated_at")
	for i := range seedUsers {
		if got := parse(list, fmt.Sprintf("data.users.%d.updated_at", i)); !got.Equal(at) {
			t.Errorf("user %d of one list updated at %v, user 0 at %v", i, got, at)
		}
	}
	if seen[at] {
		t.Errorf("the list repeats the updated_at %v of an earlier answer", at)
	}
	seen[at] = true
	created := do(t, c, "POST", "http://"+s.instance+"/users", nil, `{"name":"Barbara Liskov","email":"Barbara@Example.com"}`)
	if created.status != 201 || created.get("data.email") != "Barbara@Example.com" {
		t.Fatalf("POST /users: %d %s; want 201 with the email as sent", created.status, created.body)
	}
	if loc, want := created.header.Get("Location"), fmt.Sprintf("/users/%v", num(created.get("data.id"))); loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	seen[parse(created, "data.updated_at")] = true
	after := time.Now()
	for at := range seen {
		if at.Before(before.Add(-time.Second)) || at.After(after.Add(time.Second)) {
			t.Errorf("updated_at %v is not the time of the answer (%v to %v)", at, before, after)
		}
	}
	if len(seen) != 22 {
		t.Errorf("%d distinct updated_at in 22 answers", len(seen))
	}
}
