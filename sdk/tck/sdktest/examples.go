package sdktest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/testkit"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

// The end-to-end suites of the example plugins that the Rust, C and
// AssemblyScript SDKs each ship with the same config and the same answers:
// json_transform (json-transform in AssemblyScript) and aggregate. Each
// suite loads the module into a real gateway in front of the kit's
// upstreams (sdk/tck: /doc answers tck.DocBody, /part… a small JSON naming
// the upstream and the URI it saw, /status/NNN that status, anything else
// an echo of the request) and checks the answers byte for byte, in
// subtests.

// CheckLength fails unless the response's Content-Length, if any, is its
// body's length.
func CheckLength(t testing.TB, what string, r tck.Response) {
	t.Helper()
	if cl := r.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.Body)) {
		t.Errorf("%s: Content-Length %s for a body of %d bytes", what, cl, len(r.Body))
	}
}

// ConfigError is a plugin config that on_init must refuse, and a part of
// the message it must refuse it with.
type ConfigError struct{ Config, Want string }

// CheckConfigErrors loads module with each config of cases and checks that
// the gateway refuses it with the plugin's message: on_init's errors reach
// the operator.
func CheckConfigErrors(t *testing.T, module string, cases []ConfigError) {
	t.Helper()
	for _, c := range cases {
		_, err := NewGateway(t, Config(fmt.Sprintf(`
plugins:
  - {name: p, module: %q, config: %s}
routes:
  - {name: r, match: {path_prefix: /}, plugins: [{name: p}]}
`, module, c.Config)))
		if err == nil || !strings.Contains(err.Error(), c.Want) {
			t.Errorf("%s with %s: %v; want an error holding %q", filepath.Base(module), c.Config, err, c.Want)
		}
	}
}

// JSONTransformSuite edits the response of /doc and the body of a request
// by path with the json_transform example in module, and checks that it
// leaves alone what it must not touch: other statuses, bodies that are not
// JSON or over max_body.
func JSONTransformSuite(t *testing.T, module string) {
	up := tck.StartUpstream(t, "a")
	g := StartGateway(t, Config(fmt.Sprintf(`
plugins:
  - name: json
    module: %q
    limits: {call_timeout: 5s}
    config:
      response:
        - {op: remove, path: items.internal_id}
        - {op: rename, path: user.fullName, to: name}
        - {op: add, path: meta.via, value: wasmgate}
        - {op: add, path: items.0.first, value: true}
        - {op: remove, path: debug}
upstreams:
  - {name: a, targets: [{address: %s}]}
routes:
  - {name: doc, match: {path_prefix: /doc}, upstream: a, plugins: [{name: json}]}
  - {name: status, match: {path_prefix: /status}, upstream: a, plugins: [{name: json}]}
  - name: only404
    match: {path_prefix: /only404}
    upstream: a
    plugins:
      - name: json
        config:
          response: [{op: add, path: seen, value: {by: as, n: [1, 2.50]}}]
          statuses: [404]
  - name: req
    match: {path_prefix: /req}
    upstream: a
    plugins:
      - name: json
        config:
          request:
            - {op: rename, path: user.fullName, to: name}
            - {op: remove, path: user.password}
            - {op: add, path: source, value: {via: gateway, tags: [a, b]}}
  - name: small
    match: {path_prefix: /small}
    upstream: a
    plugins:
      - name: json
        config:
          request: [{op: remove, path: user}]
          max_body: 16
  - name: edits
    match: {path_prefix: /edits}
    upstream: a
    plugins:
      - name: json
        config:
          request:
            - {op: rename, path: a, to: b}
            - {op: remove, path: list.1}
            - {op: add, path: list.0, value: {x: 1}}
            - {op: add, path: list.0.y, value: 2}
            - {op: add, path: new.deep.path, value: null}
`, module, up.Addr)))

	t.Run("response", func(t *testing.T) {
		for i := range 3 { // a pooled instance keeps the config's value intact across requests
			r := tck.Do(t, "GET", g.URL("/doc"), nil, nil)
			want := `{"user":{"id":7,"name":"Ada Lovelace","email":"ada@example.test"},` +
				`"items":[{"id":1,"text":"first","likes":3,"author":"ada","first":true},{"id":2,"text":"second","likes":5,"author":"bob"}],` +
				`"meta":{"via":"wasmgate"}}`
			if r.Status != 200 || string(r.Body) != want || r.Get("Content-Type") != "application/json" {
				t.Fatalf("request %d: %d %v\n got %s\nwant %s", i, r.Status, r.Headers, r.Body, want)
			}
			CheckLength(t, "/doc", r)
		}
	})

	t.Run("statuses", func(t *testing.T) {
		// 2xx only by default: a 404's body passes untouched. (add creates
		// the objects missing on its path: items.0.first makes {"0": ...}.)
		for path, want := range map[string]string{
			"/status/200":         `{"status":200,"meta":{"via":"wasmgate"},"items":{"0":{"first":true}}}`,
			"/status/404":         `{"status":404}`,
			"/only404/status/404": `{"status":404,"seen":{"by":"as","n":[1,2.5]}}`, // the config's YAML 2.50 reaches the plugin as 2.5
			"/only404/status/200": `{"status":200}`,
		} {
			r := tck.Do(t, "GET", g.URL(path), nil, nil)
			if string(r.Body) != want {
				t.Errorf("%s: %d %s, want %s", path, r.Status, r.Body, want)
			}
			CheckLength(t, path, r)
		}
	})

	t.Run("request", func(t *testing.T) {
		in := `{"user":{"fullName":"Ada","password":"secret","id":7},"keep":1.50}`
		r := tck.Do(t, "POST", g.URL("/req/x"), []string{"Content-Type", "application/json; charset=utf-8"}, []byte(in))
		var e tck.Echo
		r.JSON(t, &e)
		want := `{"user":{"name":"Ada","id":7},"keep":1.50,"source":{"via":"gateway","tags":["a","b"]}}`
		if r.Status != 200 || e.Body != want {
			t.Fatalf("%d: upstream saw %s, want %s", r.Status, e.Body, want)
		}
		if cl := e.Headers["Content-Length"]; len(cl) != 1 || cl[0] != strconv.Itoa(len(want)) {
			t.Errorf("upstream saw Content-Length %v for %d bytes", cl, len(want))
		}
	})

	t.Run("edits", func(t *testing.T) {
		// rename drops a member already called so; an index selects an
		// element; add replaces an element and creates missing parents;
		// strings are re-escaped, non-ASCII kept.
		in := `{"b":0,"a":"x\"\u00e9\n","list":[1,2,3]}`
		r := tck.Do(t, "POST", g.URL("/edits"), []string{"Content-Type", "application/json"}, []byte(in))
		var e tck.Echo
		r.JSON(t, &e)
		want := `{"b":"x\"é\n","list":[{"x":1,"y":2},3],"new":{"deep":{"path":null}}}`
		if r.Status != 200 || e.Body != want {
			t.Fatalf("%d: upstream saw %s, want %s", r.Status, e.Body, want)
		}
	})

	t.Run("not JSON passes untouched", func(t *testing.T) {
		for _, c := range []struct{ path, contentType, encoding, body string }{
			{"/req/x", "text/plain", "", `{"user":{"password":"secret"}}`},
			{"/req/x", "application/json", "", `{"user":{"password":"secret"`},
			{"/req/x", "application/json", "", `  `},
			{"/req/x", "application/json", "gzip", `{"user":{"password":"secret"}}`},
			{"/small/x", "application/json", "", `{"user":{"password":"secret"}}`}, // over max_body
		} {
			hs := []string{"Content-Type", c.contentType}
			if c.encoding != "" {
				hs = append(hs, "Content-Encoding", c.encoding)
			}
			r := tck.Do(t, "POST", g.URL(c.path), hs, []byte(c.body))
			var e tck.Echo
			r.JSON(t, &e)
			if r.Status != 200 || e.Body != c.body {
				t.Errorf("%s %s %q: %d, upstream saw %q", c.path, c.contentType, c.body, r.Status, e.Body)
			}
		}
		// Within max_body it is transformed.
		r := tck.Do(t, "POST", g.URL("/small/x"), []string{"Content-Type", "application/json"}, []byte(`{"user":1,"k":2}`))
		var e tck.Echo
		r.JSON(t, &e)
		if e.Body != `{"k":2}` {
			t.Errorf("within max_body: upstream saw %q", e.Body)
		}
	})
}

// JSONTransformConfigErrors checks that the json_transform example in
// module refuses a bad config in on_init with a message naming the field.
func JSONTransformConfigErrors(t *testing.T, module string) {
	t.Helper()
	CheckConfigErrors(t, module, []ConfigError{
		{`{}`, `no ops: give "request" or "response" a list of ops like {op: remove, path: a.b}`},
		{`{response: [{op: zap, path: a}]}`, `response.0 (zap): unknown op "zap" (want rename, remove or add)`},
		{`{response: [{path: a}]}`, `response.0: missing "op" (one of rename, remove, add)`},
		{`{response: [{op: rename, path: a, to: b.c}]}`, `response.0 (rename): "to" is a member name, not a path ("b.c")`},
		{`{response: [{op: rename, path: a}]}`, `response.0 (rename): missing "to" (the new member name)`},
		{`{response: [{op: rename, path: items.0, to: x}]}`, `response.0 (rename): "path" must end in a member name to rename, not "0"`},
		{`{request: [{op: remove, path: x}, {op: remove, path: "a..b"}]}`, `request.1 (remove): "path": path "a..b": empty segment`},
		{`{response: [{op: add, path: a}]}`, `response.0 (add): missing "value"`},
		{`{response: [{op: remove}]}`, `response.0 (remove): missing "path"`},
		{`{response: [{op: remove, path: a, to: b}]}`, `response.0 (remove): "to" does not apply to this op`},
		{`{response: [{op: rename, path: a, to: b, value: 1}]}`, `response.0 (rename): "value" does not apply to this op`},
		{`{response: [{op: remove, path: a, typo: 1}]}`, `unknown field "response.0.typo"`},
		{`{response: [{op: remove, path: 5}]}`, `field "response.0.path": want string, got number`},
		{`{response: [5]}`, `field "response.0": want object, got number`},
		{`{response: {op: remove}}`, `field "response": want list, got object`},
		{`{response: [{op: remove, path: a}], statuses: [42]}`, `"statuses": 42 is not an HTTP status`},
		{`{response: [{op: remove, path: a}], statuses: ["200"]}`, `field "statuses.0": want integer, got string`},
		{`{response: [{op: remove, path: a}], max_body: 0}`, `"max_body" must be positive`},
		{`{response: [{op: remove, path: a}], extra: 1}`, `unknown field "extra"`},
	})
}

// AggregateSuite fans out to the kit's upstreams by name and by address in
// one batch with the aggregate example in module, with a query parameter
// substituted, and checks the merged answer with every part answering,
// with parts failing in partial mode (a dead address, a 404, a destination
// the route does not allow, a timeout, an answer that is not JSON), in
// strict mode, and with every part failing; and that the parts of a batch
// run at once.
func AggregateSuite(t *testing.T, module string) {
	a, b := tck.StartUpstream(t, "a"), tck.StartUpstream(t, "b")
	dead := tck.DeadAddr(t)
	// An upstream whose 200s are not JSON: text, and nothing.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/text" {
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprint(w, "not json")
		}
	}))
	t.Cleanup(plain.Close)
	text := strings.TrimPrefix(plain.URL, "http://")
	g := StartGateway(t, Config(fmt.Sprintf(`
plugins:
  - name: aggregate
    module: %[1]q
    limits: {call_timeout: 5s}
    config:
      parts:
        - {name: one, url: "upstream://a/part/one?user={query.user}", timeout: 2s}
        - {name: two, url: "http://%[3]s/part/two"}
        - {name: doc, url: "upstream://b/x/doc", timeout: 1.5}
upstreams:
  - {name: a, targets: [{address: %[2]s}]}
  - {name: b, targets: [{address: %[3]s}]}
routes:
  - name: home
    match: {path: /home}
    plugins: [{name: aggregate, outbound: {upstreams: [a, b], hosts: [%[3]q]}}]
  - name: partial
    match: {path: /partial}
    plugins:
      - name: aggregate
        outbound: {upstreams: [a], hosts: [%[4]q]}
        config:
          mode: partial
          parts:
            - {name: one, url: "upstream://a/part/one?user={query.user}&again={query.user}"}
            - {name: gone, url: "http://%[4]s/part"}
            - {name: missing, url: "upstream://a/status/404"}
            - {name: forbidden, url: "upstream://b/part"}
            - {name: slow, url: "upstream://a/hold", timeout: 300ms}
  - name: strict
    match: {path: /strict}
    plugins:
      - name: aggregate
        outbound: {upstreams: [a], hosts: [%[4]q]}
        config:
          parts:
            - {name: one, url: "upstream://a/part/one"}
            - {name: gone, url: "http://%[4]s/part"}
  - name: strict-explicit
    match: {path: /strict-explicit}
    plugins:
      - name: aggregate
        outbound: {upstreams: [a], hosts: [%[4]q]}
        config:
          mode: strict
          parts:
            - {name: one, url: "upstream://a/part/one"}
            - {name: gone, url: "http://%[4]s/part"}
  - name: down
    match: {path: /down}
    plugins:
      - name: aggregate
        outbound: {hosts: [%[4]q]}
        config:
          mode: partial
          parts:
            - {name: gone, url: "http://%[4]s/part"}
  - name: parallel
    match: {path: /parallel}
    plugins:
      - name: aggregate
        outbound: {upstreams: [a, b]}
        config:
          mode: partial
          parts:
            - {name: s1, url: "upstream://a/hold/1", timeout: 500ms}
            - {name: s2, url: "upstream://b/hold/2", timeout: 500ms}
            - {name: s3, url: "upstream://a/hold/3", timeout: 500ms}
            - {name: ok, url: "upstream://b/part"}
  - name: notjson
    match: {path: /notjson}
    plugins:
      - name: aggregate
        outbound: {upstreams: [a], hosts: [%[5]q]}
        config:
          mode: partial
          parts:
            - {name: ok, url: "upstream://a/status/201"}
            - {name: text, url: "http://%[5]s/text"}
            - {name: empty, url: "http://%[5]s/empty"}
`, module, a.Addr, b.Addr, dead, text)))

	check := func(t *testing.T, path string, status int, want string) {
		t.Helper()
		r := tck.Do(t, "GET", g.URL(path), nil, nil)
		if r.Status != status || string(r.Body) != want || r.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %v\n got %s\nwant %d %s", path, r.Status, r.Headers, r.Body, status, want)
		}
		CheckLength(t, path, r)
	}

	t.Run("every part", func(t *testing.T) {
		// The parameter is decoded, then percent-encoded into the URL; each
		// part's JSON is embedded compact. The route has no upstream: the
		// plugin answers.
		check(t, "/home?user=a%20b/c", 200, `{"one":{"from":"a","uri":"/part/one?user=a%20b%2Fc","x_part":""},`+
			`"two":{"from":"b","uri":"/part/two","x_part":""},"doc":`+tck.DocBody+"}\n")
	})

	t.Run("missing query parameter", func(t *testing.T) {
		hits := a.Hits() + b.Hits()
		check(t, "/home?other=1", 400, `{"error":"missing query parameter \"user\""}`+"\n")
		check(t, "/home?user=", 400, `{"error":"missing query parameter \"user\""}`+"\n")
		if a.Hits()+b.Hits() != hits {
			t.Error("parts were called for a request that lacks their parameter")
		}
	})

	t.Run("partial", func(t *testing.T) {
		// The part's "\u0026" (Go's encoding of "&") comes back as "&": parts
		// are parsed, then written compact.
		check(t, "/partial?user=7", 200, `{"one":{"from":"a","uri":"/part/one?user=7&again=7","x_part":""},`+
			`"gone":null,"missing":null,"forbidden":null,"slow":null,"errors":{"gone":"connect or network error",`+
			`"missing":"status 404","forbidden":"destination not allowed by the route's outbound config","slow":"timeout"}}`+"\n")
	})

	t.Run("strict", func(t *testing.T) {
		// The default mode, and the mode named.
		for _, path := range []string{"/strict", "/strict-explicit"} {
			check(t, path, 502, `{"error":"part \"gone\" failed: connect or network error","failed":{"gone":"connect or network error"}}`+"\n")
		}
	})

	t.Run("every part failed", func(t *testing.T) {
		check(t, "/down", 502, `{"error":"part \"gone\" failed: connect or network error","failed":{"gone":"connect or network error"}}`+"\n")
	})

	t.Run("one batch, run in parallel", func(t *testing.T) {
		// Three parts of 500 ms each: one after the other they would take
		// 1.5 s; in one batch the host runs them at once.
		start := time.Now()
		check(t, "/parallel", 200, `{"s1":null,"s2":null,"s3":null,"ok":{"from":"b","uri":"/part","x_part":""},`+
			`"errors":{"s1":"timeout","s2":"timeout","s3":"timeout"}}`+"\n")
		if d := time.Since(start); d < 500*time.Millisecond || d > 1400*time.Millisecond {
			t.Errorf("the answer took %v: want the parts' 500 ms once, not three times", d)
		}
	})

	t.Run("answer is not JSON", func(t *testing.T) {
		check(t, "/notjson", 200, `{"ok":{"status":201},"text":null,"empty":null,`+
			`"errors":{"text":"answer is not JSON","empty":"answer is not JSON"}}`+"\n")
	})
}

// AggregateConfigErrors checks that the aggregate example in module
// refuses a bad config in on_init with a message naming the field, and
// accepts the timeouts it documents (a number is seconds; whole
// milliseconds, rounded up).
func AggregateConfigErrors(t *testing.T, module string) {
	t.Helper()
	CheckConfigErrors(t, module, []ConfigError{
		{`{}`, `missing "parts": list {name, url} for each service to call`},
		{`{parts: [{name: a, url: "ftp://x/y"}]}`, `parts.0: url "ftp://x/y": want upstream://NAME/path or http://host:port/path`},
		{`{parts: [{name: a, url: "upstream://a/{user}"}]}`, `parts.0: url "upstream://a/{user}": only {query.NAME} may be substituted`},
		{`{parts: [{name: a, url: "upstream://a/{query.}"}]}`, `parts.0: url "upstream://a/{query.}": only {query.NAME} may be substituted`},
		{`{parts: [{name: a, url: "upstream://a/x}"}]}`, `parts.0: url "upstream://a/x}": only {query.NAME} may be substituted`},
		{`{parts: [{name: a, url: "upstream://a/x y"}]}`, `parts.0: url "upstream://a/x y": no spaces or control characters`},
		{`{parts: [{name: a, url: "upstream://a/x"}, {name: a, url: "upstream://a/y"}]}`, `parts.1: duplicate name "a"`},
		{`{parts: [{name: errors, url: "upstream://a/x"}]}`, `parts.0: name "errors" is the member listing failed parts`},
		{`{parts: [{name: "a b", url: "upstream://a/x"}]}`, `parts.0: name "a b": use letters, digits, "_" and "-"`},
		{`{parts: [{name: a}]}`, `parts.0: missing "url"`},
		{`{parts: [{url: "upstream://a/x"}]}`, `parts.0: missing "name"`},
		{`{mode: lenient, parts: [{name: a, url: "upstream://a/x"}]}`, `"mode": "lenient": want strict or partial`},
		{`{parts: [{name: a, url: "upstream://a/x", timeout: soon}]}`, `parts.0: "timeout" "soon": want a duration like 300ms or 2s (at most 1h), or seconds`},
		{`{parts: [{name: a, url: "upstream://a/x", timeout: 0}]}`, `parts.0: "timeout" 0: want a duration`},
		{`{parts: [{name: a, url: "upstream://a/x", timeout: 2h}]}`, `parts.0: "timeout" "2h": want a duration`},
		{`{parts: [{name: a, url: "upstream://a/x", timeout: 3601s}]}`, `parts.0: "timeout" "3601s": want a duration`},
		{`{parts: [{name: a, url: "upstream://a/x", typo: 1}]}`, `unknown field "parts.0.typo"`},
		{`{parts: [{name: a, url: "upstream://a/x"}], timeout_ms: 5}`, `unknown field "timeout_ms"`},
		{`{parts: {name: a}}`, `field "parts": want list, got object`},
	})
	for _, timeout := range []string{"300ms", "2s", "1.5s", "0.5", "1", "0.25", "3600s", "3600000ms"} {
		_, err := NewGateway(t, Config(fmt.Sprintf(`
plugins:
  - {name: p, module: %q, config: {parts: [{name: a, url: "upstream://a/x?q={query.q}", timeout: %s}]}}
routes:
  - {name: r, match: {path_prefix: /}, plugins: [{name: p}]}
`, module, timeout)))
		if err != nil {
			t.Errorf("timeout %s: %v", timeout, err)
		}
	}
}

// Lang is how a language's headers example marks what it does, for
// HeadersAPIKeySuite: Tag in the names of the headers it sets
// (X-From-<Tag> and X-<Tag>-Count on the request, X-<Tag>-Method and
// X-<Tag>-Status on the response; "Rust", "C"), Name in X-Served-By's
// value and in its local response ("denied by the <Name> plugin"; "rust",
// "c") and in the names of the plugins in the suite's config. Numbers
// says whether the example takes a number for a header's value (Rust's
// does: X-Num: 7 reaches the upstream as "7"; C's takes strings only).
type Lang struct {
	Tag, Name string
	Numbers   bool
}

// Keys of the api_key example in HeadersAPIKeySuite's config.
const (
	readerKey = "reader-key-0123456789"
	writerKey = "writer-key-0123456789"
)

// HeadersAPIKeySuite loads the headers and api_key examples of the Rust
// and C SDKs (modules headers and apiKey) into a gateway and checks what a
// client and the upstream see: headers set both ways and a KV counter,
// the local response of deny_prefix, the plugin's counter in /metrics, API
// keys refused and accepted, the two in a chain, and the claims and the
// consumer api_key sets reaching the route's authorize and the access log.
func HeadersAPIKeySuite(t *testing.T, lang Lang, headers, apiKey string) {
	up := tck.StartUpstream(t, "a")
	hp, kp := lang.Name+"-headers", lang.Name+"-api-key"
	num, wantNum := "", ""
	if lang.Numbers {
		num, wantNum = ", X-Num: 7", "7"
	}
	g := StartGateway(t, Config(fmt.Sprintf(`
plugins:
  - name: %[1]s
    module: %[3]q
    limits: {call_timeout: 5s}
    config: {request: {X-From-%[7]s: "yes"%[10]s}, response: {X-Served-By: %[8]s}, deny_prefix: /headers/private}
  - name: %[2]s
    module: %[4]q
    limits: {call_timeout: 5s}
    config:
      keys:
        - {consumer: reader, key: %[5]q, scope: "orders:read"}
        - {consumer: writer, key: %[6]q, scope: "orders:read orders:write"}
upstreams:
  - {name: a, targets: [{address: %[9]s}]}
routes:
  - {name: headers, match: {path_prefix: /headers}, upstream: a, plugins: [{name: %[1]s}]}
  - {name: open, match: {path_prefix: /open}, upstream: a, plugins: [{name: %[2]s}]}
  - name: orders
    match: {path_prefix: /orders}
    upstream: a
    plugins: [{name: %[2]s}]
    authorize: {require_scopes: ["orders:write"]}
  - {name: chain, match: {path_prefix: /chain}, upstream: a, plugins: [{name: %[2]s}, {name: %[1]s}]}
`, hp, kp, headers, apiKey, readerKey, writerKey, lang.Tag, lang.Name, up.Addr, num)))
	from, count := "X-From-"+lang.Tag, "X-"+lang.Tag+"-Count"
	method, status := "X-"+lang.Tag+"-Method", "X-"+lang.Tag+"-Status"

	t.Run("headers both ways", func(t *testing.T) {
		var counts []int
		for _, m := range []string{"GET", "POST"} {
			r := tck.Do(t, m, g.URL("/headers/x?q=1"), nil, []byte("b"))
			var e tck.Echo
			r.JSON(t, &e)
			if r.Status != 200 || strings.Join(e.Headers[from], ",") != "yes" || strings.Join(e.Headers["X-Num"], ",") != wantNum || e.URI != "/headers/x?q=1" {
				t.Fatalf("%s: %d, upstream saw %+v", m, r.Status, e)
			}
			n, err := strconv.Atoi(strings.Join(e.Headers[count], ","))
			if err != nil {
				t.Fatalf("%s %q", count, e.Headers[count])
			}
			counts = append(counts, n)
			if r.Get("X-Served-By") != lang.Name || r.Get(method) != m || r.Get(status) != "200" || r.Get("X-Upstream") != "a" {
				t.Errorf("%s: response headers %v", m, r.Headers)
			}
		}
		if counts[1] != counts[0]+1 {
			t.Errorf("%s %v: the KV counter must go up by one per request", count, counts)
		}
	})

	t.Run("local response", func(t *testing.T) {
		hits := up.Hits()
		r := tck.Do(t, "GET", g.URL("/headers/private/1"), nil, nil)
		if r.Status != 403 || string(r.Body) != `{"error":"denied by the `+lang.Name+` plugin"}`+"\n" ||
			r.Get("Content-Type") != "application/json" || r.Get("X-Served-By") != lang.Name {
			t.Fatalf("%d %v %q", r.Status, r.Headers, r.Body)
		}
		if r.Get(method) != "" {
			t.Error("on_response ran for the plugin that answered itself")
		}
		if up.Hits() != hits {
			t.Error("the upstream was called for a local response")
		}
	})

	t.Run("metrics", func(t *testing.T) {
		re := regexp.MustCompile(`wasmgate_plugin_counter_total\{[^}]*\} (\d+)`)
		found := false
		for _, l := range strings.Split(g.Metrics(t), "\n") {
			if strings.Contains(l, `plugin="`+hp+`"`) && strings.Contains(l, `name="requests"`) {
				if sm := re.FindStringSubmatch(l); sm != nil && sm[1] != "0" {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("no requests counter of %s in /metrics", hp)
		}
	})

	t.Run("api key", func(t *testing.T) {
		for _, c := range []struct {
			name, key string
			status    int
			body      string
		}{
			{"missing", "", 401, `{"error":"missing API key"}`},
			{"blank", "  ", 401, `{"error":"missing API key"}`},
			{"unknown", "not-a-key-0123456789", 401, `{"error":"invalid API key"}`},
			{"a prefix of a key", readerKey[:16], 401, `{"error":"invalid API key"}`},
		} {
			var h []string
			if c.key != "" {
				h = []string{"X-Api-Key", c.key}
			}
			r := tck.Do(t, "GET", g.URL("/open/x"), h, nil)
			if r.Status != c.status || strings.TrimSpace(string(r.Body)) != c.body ||
				r.Get("WWW-Authenticate") != `ApiKey realm="wasmgate", header="X-Api-Key"` {
				t.Errorf("%s: %d %q %v", c.name, r.Status, r.Body, r.Headers)
			}
		}
		r := tck.Do(t, "GET", g.URL("/open/x"), []string{"X-Api-Key", " " + readerKey, "X-Consumer", "forged"}, nil)
		var e tck.Echo
		r.JSON(t, &e)
		if r.Status != 200 || strings.Join(e.Headers["X-Consumer"], ",") != "reader" || e.Headers["X-Api-Key"] != nil {
			t.Errorf("a good key: %d, upstream saw %v", r.Status, e.Headers)
		}
	})

	t.Run("a chain of both", func(t *testing.T) {
		// api_key answers first: the headers plugin then never runs, either way.
		r := tck.Do(t, "GET", g.URL("/chain/x"), nil, nil)
		if r.Status != 401 || r.Get("X-Served-By") != "" {
			t.Errorf("no key: %d %v", r.Status, r.Headers)
		}
		r = tck.Do(t, "GET", g.URL("/chain/x"), []string{"X-Api-Key", writerKey}, nil)
		var e tck.Echo
		r.JSON(t, &e)
		if r.Status != 200 || strings.Join(e.Headers["X-Consumer"], ",") != "writer" ||
			strings.Join(e.Headers[from], ",") != "yes" || r.Get("X-Served-By") != lang.Name {
			t.Errorf("a good key: %d %v, upstream saw %v", r.Status, r.Headers, e.Headers)
		}
	})

	t.Run("claims and consumer reach authorize", func(t *testing.T) {
		r := tck.Do(t, "GET", g.URL("/orders/1"), []string{"X-Api-Key", readerKey}, nil)
		if r.Status != 403 || !strings.Contains(r.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("reader on /orders: %d %v %s", r.Status, r.Headers, r.Body)
		}
		r = tck.Do(t, "GET", g.URL("/orders/1"), []string{"X-Api-Key", writerKey}, nil)
		if r.Status != 200 {
			t.Errorf("writer on /orders: %d %s", r.Status, r.Body)
		}
		testkit.WaitFor(t, 10*time.Second, "the access log line of the writer's request", func() bool {
			for _, l := range g.AccessLines() {
				if l["consumer"] == "writer" && l["route"] == "orders" {
					return true
				}
			}
			return false
		})
	})
}

// HeadersAPIKeyConfigErrors checks that the headers and api_key examples
// of the Rust and C SDKs (modules headers and apiKey) refuse a bad config
// in on_init with a message naming the field.
func HeadersAPIKeyConfigErrors(t *testing.T, headers, apiKey string) {
	t.Helper()
	CheckConfigErrors(t, apiKey, []ConfigError{
		{`{keys: []}`, `missing "keys": list {consumer, key} pairs`},
		{`{keys: [{consumer: a, key: short}]}`, `keys.0: "key" of 5 bytes: want at least 16`},
		{`{keys: [{consumer: a, key: 0123456789abcdef, typo: 1}]}`, `unknown field "keys.0.typo"`},
		{`{keys: [{consumer: 5, key: 0123456789abcdef}]}`, `field "keys.0.consumer": want string, got number`},
	})
	CheckConfigErrors(t, headers, []ConfigError{
		{`{deny_prefix: private}`, `"deny_prefix" must start with "/"`},
		{`{request: {"bad name": x}}`, `request: "bad name" is not a valid header name`},
		{`{typo: 1}`, `unknown field "typo"`},
	})
}

// WriteRecipe writes the recipe in lang ("rust", "c") of sdk/ABI.md
// section 9, as written, to path, for a build. ABI.md is found as
// ../ABI.md: the tests of sdk/rust and sdk/c run in the SDK's directory.
func WriteRecipe(t testing.TB, path, lang string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(tck.ABIRecipe(t, "../ABI.md", lang)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// CheckRecipe loads module, a build of a recipe of sdk/ABI.md section 9,
// in front of an upstream and checks that the request the upstream gets
// carries the header the recipe sets, with the value "yes".
func CheckRecipe(t *testing.T, module, header string) {
	t.Helper()
	up := tck.StartUpstream(t, "a")
	g := StartGateway(t, Config(fmt.Sprintf(`
plugins: [{name: recipe, module: %q}]
upstreams: [{name: a, targets: [{address: %s}]}]
routes: [{name: r, match: {path_prefix: /}, upstream: a, plugins: [{name: recipe}]}]
`, module, up.Addr)))
	r := tck.Do(t, "GET", g.URL("/x"), nil, nil)
	var e tck.Echo
	r.JSON(t, &e)
	if r.Status != 200 || strings.Join(e.Headers[header], ",") != "yes" {
		t.Fatalf("%d, the upstream saw %v", r.Status, e.Headers)
	}
}
