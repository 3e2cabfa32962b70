package ctest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/tck"
)

// The tests of examples/json_transform.c and examples/aggregate.c: each
// plugin loaded into a real gateway in front of the kit's upstreams
// (sdk/tck: /doc answers tck.DocBody, /part… a small JSON naming the
// upstream and the URI it saw, anything else an echo of the request).
// sdk/rust/examples_test.go checks the Rust examples against the same
// bodies, byte for byte.

// TestTransformAggregateShape checks the two examples' exports: a reactor
// of ABI v1 with the hooks each needs.
func TestTransformAggregateShape(t *testing.T) {
	mods := examples(t)
	for name, hooks := range map[string]string{"json_transform": "on_init,on_request,on_response", "aggregate": "on_init,on_request"} {
		info := inspect(t, mods[name])
		if !info.Reactor || info.Command || info.ABIVersion != 1 || info.Hooks.String() != hooks {
			t.Errorf("%s: reactor %v, command %v, ABI v%d, hooks %s; want a reactor of ABI v1 with %s",
				name, info.Reactor, info.Command, info.ABIVersion, info.Hooks, hooks)
		}
	}
}

// checkLength fails unless the response's Content-Length is its body's.
func checkLength(t *testing.T, what string, r tck.Response) {
	t.Helper()
	if cl := r.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.Body)) {
		t.Errorf("%s: Content-Length %s for a body of %d bytes", what, cl, len(r.Body))
	}
}

// TestJSONTransformEndToEnd edits the response of /doc and the body of a
// request by path, and leaves alone what it must not touch: other statuses,
// bodies that are not JSON.
func TestJSONTransformEndToEnd(t *testing.T) {
	mods := examples(t)
	up := tck.StartUpstream(t, "a")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`
plugins:
  - name: c-json
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
  - {name: doc, match: {path_prefix: /doc}, upstream: a, plugins: [{name: c-json}]}
  - {name: status, match: {path_prefix: /status}, upstream: a, plugins: [{name: c-json}]}
  - name: req
    match: {path_prefix: /req}
    upstream: a
    plugins:
      - name: c-json
        config:
          request:
            - {op: rename, path: user.fullName, to: name}
            - {op: remove, path: user.password}
            - {op: add, path: source, value: {via: gateway, tags: [a, b]}}
`, mods["json_transform"], up.Addr)))

	t.Run("response", func(t *testing.T) {
		r := tck.Do(t, "GET", g.url("/doc"), nil, nil)
		want := `{"user":{"id":7,"name":"Ada Lovelace","email":"ada@example.test"},` +
			`"items":[{"id":1,"text":"first","likes":3,"author":"ada","first":true},{"id":2,"text":"second","likes":5,"author":"bob"}],` +
			`"meta":{"via":"wasmgate"}}`
		if r.Status != 200 || string(r.Body) != want || r.Get("Content-Type") != "application/json" {
			t.Fatalf("%d %v\n got %s\nwant %s", r.Status, r.Headers, r.Body, want)
		}
		checkLength(t, "/doc", r)
	})

	t.Run("statuses", func(t *testing.T) {
		// 2xx only by default: a 404's body passes untouched. (add creates
		// the objects missing on its path: items.0.first makes {"0": ...}.)
		for path, want := range map[string]string{
			"/status/200": `{"status":200,"meta":{"via":"wasmgate"},"items":{"0":{"first":true}}}`,
			"/status/404": `{"status":404}`,
		} {
			r := tck.Do(t, "GET", g.url(path), nil, nil)
			if string(r.Body) != want {
				t.Errorf("%s: %d %s, want %s", path, r.Status, r.Body, want)
			}
			checkLength(t, path, r)
		}
	})

	t.Run("request", func(t *testing.T) {
		in := `{"user":{"fullName":"Ada","password":"secret","id":7},"keep":1.50}`
		r := tck.Do(t, "POST", g.url("/req/x"), []string{"Content-Type", "application/json; charset=utf-8"}, []byte(in))
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

	t.Run("not JSON passes untouched", func(t *testing.T) {
		for _, c := range []struct{ contentType, body string }{
			{"text/plain", `{"user":{"password":"secret"}}`},
			{"application/json", `{"user":{"password":"secret"`},
			{"application/json", `  `},
		} {
			r := tck.Do(t, "POST", g.url("/req/x"), []string{"Content-Type", c.contentType}, []byte(c.body))
			var e tck.Echo
			r.JSON(t, &e)
			if r.Status != 200 || e.Body != c.body {
				t.Errorf("%s %q: %d, upstream saw %q", c.contentType, c.body, r.Status, e.Body)
			}
		}
	})
}

// TestAggregateEndToEnd fans out to the kit's upstreams by name and by
// address in one batch, with a query parameter substituted, and checks the
// merged answer with every part answering, with parts failing in partial
// mode (a dead address, a 404, a destination the route does not allow, a
// timeout), in strict mode, and with every part failing.
func TestAggregateEndToEnd(t *testing.T) {
	mods := examples(t)
	a, b := tck.StartUpstream(t, "a"), tck.StartUpstream(t, "b")
	dead := tck.DeadAddr(t)
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`
plugins:
  - name: c-aggregate
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
    plugins: [{name: c-aggregate, outbound: {upstreams: [a, b], hosts: [%[3]q]}}]
  - name: partial
    match: {path: /partial}
    plugins:
      - name: c-aggregate
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
      - name: c-aggregate
        outbound: {upstreams: [a], hosts: [%[4]q]}
        config:
          parts:
            - {name: one, url: "upstream://a/part/one"}
            - {name: gone, url: "http://%[4]s/part"}
  - name: down
    match: {path: /down}
    plugins:
      - name: c-aggregate
        outbound: {hosts: [%[4]q]}
        config:
          mode: partial
          parts:
            - {name: gone, url: "http://%[4]s/part"}
`, mods["aggregate"], a.Addr, b.Addr, dead)))

	check := func(t *testing.T, path string, status int, want string) {
		t.Helper()
		r := tck.Do(t, "GET", g.url(path), nil, nil)
		if r.Status != status || string(r.Body) != want || r.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %v\n got %s\nwant %d %s", path, r.Status, r.Headers, r.Body, status, want)
		}
		checkLength(t, path, r)
	}

	t.Run("every part", func(t *testing.T) {
		// The parameter is decoded, then percent-encoded into the URL; each
		// part's JSON is embedded compact.
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
		check(t, "/strict", 502, `{"error":"part \"gone\" failed: connect or network error","failed":{"gone":"connect or network error"}}`+"\n")
	})

	t.Run("every part failed", func(t *testing.T) {
		check(t, "/down", 502, `{"error":"part \"gone\" failed: connect or network error","failed":{"gone":"connect or network error"}}`+"\n")
	})
}

// TestTransformAggregateConfigErrors checks that the two examples refuse a
// bad config in on_init with a message naming the field.
func TestTransformAggregateConfigErrors(t *testing.T) {
	mods := examples(t)
	for _, c := range []struct{ plugin, config, want string }{
		{"json_transform", `{}`, `no ops: give "request" or "response" a list of ops like {op: remove, path: a.b}`},
		{"json_transform", `{response: [{op: zap, path: a}]}`, `response.0 (zap): unknown op "zap" (want rename, remove or add)`},
		{"json_transform", `{response: [{path: a}]}`, `response.0: missing "op" (one of rename, remove, add)`},
		{"json_transform", `{response: [{op: rename, path: a, to: b.c}]}`, `response.0 (rename): "to" is a member name, not a path ("b.c")`},
		{"json_transform", `{response: [{op: rename, path: items.0, to: x}]}`, `response.0 (rename): "path" must end in a member name to rename, not "0"`},
		{"json_transform", `{request: [{op: remove, path: x}, {op: remove, path: "a..b"}]}`, `request.1 (remove): "path": path "a..b": empty segment`},
		{"json_transform", `{response: [{op: add, path: a}]}`, `response.0 (add): missing "value"`},
		{"json_transform", `{response: [{op: remove, path: a, to: b}]}`, `response.0 (remove): "to" does not apply to this op`},
		{"json_transform", `{response: [{op: remove, path: a, typo: 1}]}`, `unknown field "response.0.typo"`},
		{"json_transform", `{response: [{op: remove, path: 5}]}`, `field "response.0.path": want string, got number`},
		{"json_transform", `{response: [{op: remove, path: a}], statuses: [42]}`, `"statuses": 42 is not an HTTP status`},
		{"json_transform", `{response: [{op: remove, path: a}], max_body: 0}`, `"max_body" must be positive`},
		{"aggregate", `{}`, `missing "parts": list {name, url} for each service to call`},
		{"aggregate", `{parts: [{name: a, url: "ftp://x/y"}]}`, `parts.0: url "ftp://x/y": want upstream://NAME/path or http://host:port/path`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/{user}"}]}`, `parts.0: url "upstream://a/{user}": only {query.NAME} may be substituted`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/{query.}"}]}`, `parts.0: url "upstream://a/{query.}": only {query.NAME} may be substituted`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x"}, {name: a, url: "upstream://a/y"}]}`, `parts.1: duplicate name "a"`},
		{"aggregate", `{parts: [{name: errors, url: "upstream://a/x"}]}`, `parts.0: name "errors" is the member listing failed parts`},
		{"aggregate", `{parts: [{name: "a b", url: "upstream://a/x"}]}`, `parts.0: name "a b": use letters, digits, "_" and "-"`},
		{"aggregate", `{parts: [{name: a}]}`, `parts.0: missing "url"`},
		{"aggregate", `{mode: lenient, parts: [{name: a, url: "upstream://a/x"}]}`, `"mode": "lenient": want strict or partial`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", timeout: soon}]}`, `parts.0: "timeout" "soon": want a duration like 300ms or 2s (at most 1h), or seconds`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", timeout: 0}]}`, `parts.0: "timeout" 0: want a duration`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", typo: 1}]}`, `unknown field "parts.0.typo"`},
	} {
		_, err := newGateway(t, gatewayConfig(fmt.Sprintf(`
plugins:
  - {name: p, module: %q, config: %s}
routes:
  - {name: r, match: {path_prefix: /}, plugins: [{name: p}]}
`, mods[c.plugin], c.config)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %s: %v; want an error holding %q", c.plugin, c.config, err, c.want)
		}
	}
}
