package server

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/testkit"
)

// startJSONUpstream serves handler on 127.0.0.1.
func startJSONUpstream(t *testing.T, handler fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: handler}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// userService answers /users/ID with a user whose name it makes with
// name, an updated_at that differs on every call, and writes that count.
func userService(name func(id string) string, delay time.Duration, writes *int64, mu *sync.Mutex) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if !ctx.IsGet() {
			mu.Lock()
			*writes++
			mu.Unlock()
		}
		time.Sleep(delay)
		id := strings.TrimPrefix(string(ctx.Path()), "/users/")
		ctx.SetContentType("application/json")
		fmt.Fprintf(ctx, `{"data": {"id": %q, "name": %q, "tags": ["a", "b"], "updated_at": %d}}`, id, name(id), time.Now().UnixNano())
	}
}

func (g *gateway) shadowView(t *testing.T, route string) ShadowView {
	t.Helper()
	var v ShadowView
	r := g.admin(t, "GET", "/routes/"+route+"/shadow")
	if err := json.Unmarshal(r.body, &v); r.status != 200 || err != nil {
		t.Fatalf("GET /routes/%s/shadow: %d %s", route, r.status, r.body)
	}
	return v
}

const shadowConfig = `
upstreams:
  - {name: legacy, targets: [{address: %s}]}
  - {name: users-v2, targets: [{address: %s}]}
  - {name: slow-v2, targets: [{address: %s}]}
routes:
  - name: users
    match: {path_prefix: /users}
    upstream: legacy
    shadow: {upstream: users-v2, compare: {headers: [Content-Type], ignore: [data.updated_at]}}
  - name: plain
    match: {path_prefix: /plain}
    upstream: legacy
    rewrite: {path: /users/1}
  - name: slow
    match: {path_prefix: /slow}
    upstream: legacy
    rewrite: {path: /users/1}
    shadow: {upstream: slow-v2, max_in_flight: 2, timeout: 300ms}
`

// TestShadow: the client gets the primary's answer, unchanged; the diff
// finds a changed field and ignores the ignored one; unsafe methods are
// not mirrored; a slow candidate drops copies past max_in_flight and every
// copy ends within its timeout.
func TestShadow(t *testing.T) {
	var mu sync.Mutex
	var legacyWrites, v2Writes, slowWrites int64
	legacy := startJSONUpstream(t, userService(func(string) string { return "Ada" }, 0, &legacyWrites, &mu))
	v2 := startJSONUpstream(t, userService(func(id string) string {
		if id == "2" {
			return "ADA"
		}
		return "Ada"
	}, 0, &v2Writes, &mu))
	slow := startJSONUpstream(t, userService(func(string) string { return "Ada" }, 2*time.Second, &slowWrites, &mu))
	g := startGateway(t, 1000, fmt.Sprintf(shadowConfig, legacy, v2, slow))

	for i := range 10 {
		id := []string{"1", "2"}[i%2]
		r := do(t, "GET", g.url("/users/"+id), nil, nil)
		var got struct {
			Data struct{ Name string } `json:"data"`
		}
		if err := json.Unmarshal(r.body, &got); r.status != 200 || err != nil || got.Data.Name != "Ada" {
			t.Fatalf("client answer %d %s: not the primary's", r.status, r.body)
		}
	}
	// The client's headers are those of the same answer on a route without
	// a shadow: a shadow adds, removes and changes none.
	names := func(r response) string {
		var ks []string
		for k := range r.headers {
			if k != "Date" {
				ks = append(ks, k+"="+map[bool]string{true: "*", false: r.headers[k]}[k == "X-Request-Id" || k == "Content-Length"])
			}
		}
		slices.Sort(ks)
		return strings.Join(ks, " ")
	}
	if with, without := names(do(t, "GET", g.url("/users/1"), nil, nil)), names(do(t, "GET", g.url("/plain"), nil, nil)); with != without {
		t.Errorf("headers with a shadow: %s\nwithout: %s", with, without)
	}
	do(t, "POST", g.url("/users/3"), nil, []byte(`{}`))
	testkit.WaitFor(t, 10*time.Second, "11 shadow copies compared", func() bool {
		c := g.shadowView(t, "users").Counts
		return c.Matches+c.Mismatches == 11
	})
	v := g.shadowView(t, "users")
	if v.Counts.Mismatches != 5 || v.Counts.Matches != 6 || v.Counts.Skipped != 1 || v.Counts.Sent != 11 {
		t.Errorf("counts: %+v", v.Counts)
	}
	if len(v.Recent) != 5 {
		t.Fatalf("recent mismatches: %+v", v.Recent)
	}
	m := v.Recent[0]
	if m.Method != "GET" || m.Path != "/users/2" || len(m.Differences) != 1 || m.Differences[0].Path != "body.data.name" ||
		m.Differences[0].Primary != `"Ada"` || m.Differences[0].Candidate != `"ADA"` {
		t.Errorf("mismatch: %+v", m)
	}
	mu.Lock()
	if v2Writes != 0 || legacyWrites != 1 {
		t.Errorf("writes: legacy %d, v2 %d (a POST must not be mirrored)", legacyWrites, v2Writes)
	}
	mu.Unlock()

	// A slow candidate: at most 2 copies out, the rest dropped; the client
	// is answered at the primary's pace. Client latency with and without
	// a shadow, side by side, is logged, not asserted.
	lat := func(path string) []time.Duration {
		var mu sync.Mutex
		var out []time.Duration
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 10 {
					start := time.Now()
					r, err := tryDo("GET", g.url(path), nil, nil)
					if err != nil || r.status != 200 || !strings.Contains(string(r.body), `"name": "Ada"`) {
						t.Errorf("client answer on %s: %v %d %s", path, err, r.status, r.body)
					}
					mu.Lock()
					out = append(out, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(out)
		return out
	}
	without, with := lat("/plain"), lat("/slow")
	t.Logf("client p99 without shadow %v, with a 2 s candidate %v", without[len(without)*99/100], with[len(with)*99/100])
	s := g.shadowView(t, "slow")
	if s.Counts.Dropped == 0 || s.Counts.Sent > 40-s.Counts.Dropped {
		t.Errorf("slow candidate counts: %+v", s.Counts)
	}
	testkit.WaitFor(t, 5*time.Second, "every shadow copy to end within its timeout", func() bool {
		s := g.shadowView(t, "slow")
		return s.InFlight == 0 && s.Counts.Errors == s.Counts.Sent
	})
	metrics := string(g.admin(t, "GET", "/metrics").body)
	for _, want := range []string{`wasmgate_shadow_requests_total{outcome="mismatch",route="users"} 5`, `wasmgate_shadow_requests_total{outcome="skipped",route="users"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestShadowDecoded(t *testing.T) {
	var gz, fl bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"a":1}`))
	w.Close()
	fw, _ := flate.NewWriter(&fl, flate.BestSpeed)
	fw.Write([]byte(`{"a":1}`))
	fw.Close()
	for _, c := range []struct {
		enc  string
		body []byte
		want string
	}{
		{"gzip", gz.Bytes(), `{"a":1}`},
		{" GZIP ", gz.Bytes(), `{"a":1}`},
		{"deflate", fl.Bytes(), `{"a":1}`},
		{"", []byte(`{"a":1}`), `{"a":1}`},
		{"br", []byte("\x0b\x02"), "\x0b\x02"},                                           // not decoded: compared as sent
		{"gzip", []byte("not gzip"), "not gzip"},                                         // does not decode: as sent
		{"gzip", gz.Bytes()[:len(gz.Bytes())-4], string(gz.Bytes()[:len(gz.Bytes())-4])}, // truncated
	} {
		if got := string(decoded(c.enc, c.body, 1<<20)); got != c.want {
			t.Errorf("decoded(%q, %q) = %q, want %q", c.enc, c.body, got, c.want)
		}
	}
	if got := decoded("gzip", gz.Bytes(), 3); string(got) != `{"a` {
		t.Errorf("decoded past the limit: %q", got)
	}
}
