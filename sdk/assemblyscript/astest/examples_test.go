package astest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/wasm"
	"github.com/wasmgate/wasmgate/sdk/abi"
	"github.com/wasmgate/wasmgate/sdk/tck"
)

// The tests of examples/json-transform and examples/aggregate: each plugin
// loaded into a real gateway in front of the kit's upstreams (sdk/tck: /doc
// answers tck.DocBody, /part… a small JSON naming the upstream and the URI
// it saw, anything else an echo of the request). The expected bodies are
// those of the Rust and C examples (sdk/rust/examples_test.go,
// sdk/c/ctest/examples_test.go), byte for byte: the three plugins share
// their config and their answers.

// transformAggregate are the two examples, built with the other modules
// (build_test.go's extraModules), and the hooks each exports.
var transformAggregate = []struct {
	module
	hooks []string
}{
	{module{"json-transform", "examples/json-transform/index.ts"}, []string{"on_init", "on_request", "on_response"}},
	{module{"aggregate", "examples/aggregate/index.ts"}, []string{"on_init", "on_request"}},
}

func init() {
	for _, m := range transformAggregate {
		extraModules = append(extraModules, m.module)
	}
}

// TestTransformAggregateShape: each module is a reactor of ABI v1 that
// imports only wasmgate functions, with their signatures, and exports the
// hooks it needs (aggregate answers locally: no on_response).
func TestTransformAggregateShape(t *testing.T) {
	hostFuncs := map[string]abi.Func{}
	for _, f := range abi.Functions() {
		hostFuncs[f.Name] = f
	}
	for _, m := range transformAggregate {
		t.Run(m.name, func(t *testing.T) {
			b, err := os.ReadFile(wasmPath(t, m.name))
			if err != nil {
				t.Fatal(err)
			}
			info, err := wasm.Inspect(b)
			if err != nil {
				t.Fatalf("the gateway refuses it: %v", err)
			}
			t.Logf("%s: %d bytes, %d imports", m.name, info.Size, len(info.Imports))
			if info.ABIVersion != abi.Version || !info.Reactor || info.Command {
				t.Errorf("abi v%d, reactor %v, command %v", info.ABIVersion, info.Reactor, info.Command)
			}
			for _, im := range info.Imports {
				f, ok := hostFuncs[im.Name]
				if im.Module != abi.ModuleName || !ok {
					t.Errorf("import %q.%q: want only %q functions", im.Module, im.Name, abi.ModuleName)
				} else if want := (wasm.Signature{Params: f.Params, Results: f.Results}); !im.Type.Equal(want) {
					t.Errorf("import %s: %v, want %v", im.Name, im.Type, want)
				}
			}
			var exports []string
			for _, e := range info.Exports {
				exports = append(exports, e.Name)
			}
			want := append([]string{"_initialize", "memory", abi.VersionMarker}, m.hooks...)
			slices.Sort(exports)
			slices.Sort(want)
			if !slices.Equal(exports, want) {
				t.Errorf("exports %v, want %v", exports, want)
			}
		})
	}
}

// TestTransformAggregateBuildLines: README.md shows the build line the
// tests use for both examples, and each example's header shows it too.
func TestTransformAggregateBuildLines(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(sdkDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range transformAggregate {
		line := "npx " + strings.Join(ascArgs(m.entry, "build/"+m.name+".wasm"), " ")
		if !strings.Contains(string(readme), line) {
			t.Errorf("README.md lacks the build line %q", line)
		}
		src, err := os.ReadFile(filepath.Join(sdkDir, m.entry))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), line) {
			t.Errorf("%s does not show its build line %q", m.entry, line)
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

// TestJSONTransform edits the response of /doc and the body of a request
// by path, and leaves alone what it must not touch: other statuses, bodies
// that are not JSON, bodies over max_body.
func TestJSONTransform(t *testing.T) {
	mod := wasmPath(t, "json-transform")
	up := tck.StartUpstream(t, "a")
	g := startGateway(t, fmt.Sprintf(`
plugins:
  - name: as-json
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
  - {name: doc, match: {path_prefix: /doc}, upstream: a, plugins: [{name: as-json}]}
  - {name: status, match: {path_prefix: /status}, upstream: a, plugins: [{name: as-json}]}
  - name: only404
    match: {path_prefix: /only404}
    upstream: a
    plugins:
      - name: as-json
        config:
          response: [{op: add, path: seen, value: {by: as, n: [1, 2.50]}}]
          statuses: [404]
  - name: req
    match: {path_prefix: /req}
    upstream: a
    plugins:
      - name: as-json
        config:
          request:
            - {op: rename, path: user.fullName, to: name}
            - {op: remove, path: user.password}
            - {op: add, path: source, value: {via: gateway, tags: [a, b]}}
  - name: small
    match: {path_prefix: /small}
    upstream: a
    plugins:
      - name: as-json
        config:
          request: [{op: remove, path: user}]
          max_body: 16
  - name: edits
    match: {path_prefix: /edits}
    upstream: a
    plugins:
      - name: as-json
        config:
          request:
            - {op: rename, path: a, to: b}
            - {op: remove, path: list.1}
            - {op: add, path: list.0, value: {x: 1}}
            - {op: add, path: list.0.y, value: 2}
            - {op: add, path: new.deep.path, value: null}
`, mod, up.Addr))

	t.Run("response", func(t *testing.T) {
		for i := range 3 { // a pooled instance keeps the config's value intact across requests
			r := tck.Do(t, "GET", g.url("/doc"), nil, nil)
			want := `{"user":{"id":7,"name":"Ada Lovelace","email":"ada@example.test"},` +
				`"items":[{"id":1,"text":"first","likes":3,"author":"ada","first":true},{"id":2,"text":"second","likes":5,"author":"bob"}],` +
				`"meta":{"via":"wasmgate"}}`
			if r.Status != 200 || string(r.Body) != want || r.Get("Content-Type") != "application/json" {
				t.Fatalf("request %d: %d %v\n got %s\nwant %s", i, r.Status, r.Headers, r.Body, want)
			}
			checkLength(t, "/doc", r)
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
		if cl := e.Headers["Content-Length"]; cl != nil && cl[0] != strconv.Itoa(len(want)) {
			t.Errorf("upstream saw Content-Length %v for %d bytes", cl, len(want))
		}
	})

	t.Run("edits", func(t *testing.T) {
		// rename drops a member already called so; an index selects an
		// element; add replaces an element and creates missing parents;
		// strings are re-escaped, non-ASCII kept.
		in := `{"b":0,"a":"x\"\u00e9\n","list":[1,2,3]}`
		r := tck.Do(t, "POST", g.url("/edits"), []string{"Content-Type", "application/json"}, []byte(in))
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
			r := tck.Do(t, "POST", g.url(c.path), hs, []byte(c.body))
			var e tck.Echo
			r.JSON(t, &e)
			if r.Status != 200 || e.Body != c.body {
				t.Errorf("%s %s %q: %d, upstream saw %q", c.path, c.contentType, c.body, r.Status, e.Body)
			}
		}
		// Within max_body it is transformed.
		r := tck.Do(t, "POST", g.url("/small/x"), []string{"Content-Type", "application/json"}, []byte(`{"user":1,"k":2}`))
		var e tck.Echo
		r.JSON(t, &e)
		if e.Body != `{"k":2}` {
			t.Errorf("within max_body: upstream saw %q", e.Body)
		}
	})
}

// TestAggregate fans out to the kit's upstreams by name and by address in
// one batch, with a query parameter substituted, and checks the merged
// answer with every part answering, with parts failing in partial mode (a
// dead address, a 404, a destination the route does not allow, a
// timeout), in strict mode, and with every part failing.
func TestAggregate(t *testing.T) {
	mod := wasmPath(t, "aggregate")
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
	g := startGateway(t, fmt.Sprintf(`
plugins:
  - name: as-aggregate
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
    plugins: [{name: as-aggregate, outbound: {upstreams: [a, b], hosts: [%[3]q]}}]
  - name: partial
    match: {path: /partial}
    plugins:
      - name: as-aggregate
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
      - name: as-aggregate
        outbound: {upstreams: [a], hosts: [%[4]q]}
        config:
          mode: strict
          parts:
            - {name: one, url: "upstream://a/part/one"}
            - {name: gone, url: "http://%[4]s/part"}
  - name: down
    match: {path: /down}
    plugins:
      - name: as-aggregate
        outbound: {hosts: [%[4]q]}
        config:
          mode: partial
          parts:
            - {name: gone, url: "http://%[4]s/part"}
  - name: parallel
    match: {path: /parallel}
    plugins:
      - name: as-aggregate
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
      - name: as-aggregate
        outbound: {upstreams: [a], hosts: [%[5]q]}
        config:
          mode: partial
          parts:
            - {name: ok, url: "upstream://a/status/201"}
            - {name: text, url: "http://%[5]s/text"}
            - {name: empty, url: "http://%[5]s/empty"}
`, mod, a.Addr, b.Addr, dead, text))

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
		// part's JSON is embedded compact. The route's upstream is never
		// called: the plugin answers.
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

// TestTransformAggregateConfigErrors: a bad config is refused by on_init,
// and the gateway's config with it, in the words of the Rust and C
// examples, naming the field.
func TestTransformAggregateConfigErrors(t *testing.T) {
	mods := map[string]string{"json-transform": wasmPath(t, "json-transform"), "aggregate": wasmPath(t, "aggregate")}
	for _, c := range []struct{ plugin, config, want string }{
		{"json-transform", `{}`, `no ops: give "request" or "response" a list of ops like {op: remove, path: a.b}`},
		{"json-transform", `{response: [{op: zap, path: a}]}`, `response.0 (zap): unknown op "zap" (want rename, remove or add)`},
		{"json-transform", `{response: [{path: a}]}`, `response.0: missing "op" (one of rename, remove, add)`},
		{"json-transform", `{response: [{op: rename, path: a, to: b.c}]}`, `response.0 (rename): "to" is a member name, not a path ("b.c")`},
		{"json-transform", `{response: [{op: rename, path: a}]}`, `response.0 (rename): missing "to" (the new member name)`},
		{"json-transform", `{response: [{op: rename, path: items.0, to: x}]}`, `response.0 (rename): "path" must end in a member name to rename, not "0"`},
		{"json-transform", `{request: [{op: remove, path: x}, {op: remove, path: "a..b"}]}`, `request.1 (remove): "path": path "a..b": empty segment`},
		{"json-transform", `{response: [{op: add, path: a}]}`, `response.0 (add): missing "value"`},
		{"json-transform", `{response: [{op: remove}]}`, `response.0 (remove): missing "path"`},
		{"json-transform", `{response: [{op: remove, path: a, to: b}]}`, `response.0 (remove): "to" does not apply to this op`},
		{"json-transform", `{response: [{op: rename, path: a, to: b, value: 1}]}`, `response.0 (rename): "value" does not apply to this op`},
		{"json-transform", `{response: [{op: remove, path: a, typo: 1}]}`, `unknown field "response.0.typo"`},
		{"json-transform", `{response: [{op: remove, path: 5}]}`, `field "response.0.path": want string, got number`},
		{"json-transform", `{response: [5]}`, `field "response.0": want object, got number`},
		{"json-transform", `{response: {op: remove}}`, `field "response": want list, got object`},
		{"json-transform", `{response: [{op: remove, path: a}], statuses: [42]}`, `"statuses": 42 is not an HTTP status`},
		{"json-transform", `{response: [{op: remove, path: a}], statuses: ["200"]}`, `field "statuses.0": want integer, got string`},
		{"json-transform", `{response: [{op: remove, path: a}], max_body: 0}`, `"max_body" must be positive`},
		{"json-transform", `{response: [{op: remove, path: a}], extra: 1}`, `unknown field "extra"`},
		{"aggregate", `{}`, `missing "parts": list {name, url} for each service to call`},
		{"aggregate", `{parts: [{name: a, url: "ftp://x/y"}]}`, `parts.0: url "ftp://x/y": want upstream://NAME/path or http://host:port/path`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/{user}"}]}`, `parts.0: url "upstream://a/{user}": only {query.NAME} may be substituted`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/{query.}"}]}`, `parts.0: url "upstream://a/{query.}": only {query.NAME} may be substituted`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x}"}]}`, `parts.0: url "upstream://a/x}": only {query.NAME} may be substituted`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x y"}]}`, `parts.0: url "upstream://a/x y": no spaces or control characters`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x"}, {name: a, url: "upstream://a/y"}]}`, `parts.1: duplicate name "a"`},
		{"aggregate", `{parts: [{name: errors, url: "upstream://a/x"}]}`, `parts.0: name "errors" is the member listing failed parts`},
		{"aggregate", `{parts: [{name: "a b", url: "upstream://a/x"}]}`, `parts.0: name "a b": use letters, digits, "_" and "-"`},
		{"aggregate", `{parts: [{name: a}]}`, `parts.0: missing "url"`},
		{"aggregate", `{parts: [{url: "upstream://a/x"}]}`, `parts.0: missing "name"`},
		{"aggregate", `{mode: lenient, parts: [{name: a, url: "upstream://a/x"}]}`, `"mode": "lenient": want strict or partial`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", timeout: soon}]}`, `parts.0: "timeout" "soon": want a duration like 300ms or 2s (at most 1h), or seconds`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", timeout: 0}]}`, `parts.0: "timeout" 0: want a duration`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", timeout: 2h}]}`, `parts.0: "timeout" "2h": want a duration`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", timeout: 3601s}]}`, `parts.0: "timeout" "3601s": want a duration`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x", typo: 1}]}`, `unknown field "parts.0.typo"`},
		{"aggregate", `{parts: [{name: a, url: "upstream://a/x"}], timeout_ms: 5}`, `unknown field "timeout_ms"`},
		{"aggregate", `{parts: {name: a}}`, `field "parts": want list, got object`},
	} {
		_, err := newGateway(t, fmt.Sprintf(`
plugins:
  - {name: p, module: %q, config: %s}
routes:
  - {name: r, match: {path_prefix: /}, plugins: [{name: p}]}
`, mods[c.plugin], c.config))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %s: %v; want an error holding %q", c.plugin, c.config, err, c.want)
		}
	}

	// Timeouts the parts accept (a number is seconds; whole milliseconds,
	// rounded up).
	for _, timeout := range []string{"300ms", "2s", "1.5s", "0.5", "1", "0.25", "3600s", "3600000ms"} {
		_, err := newGateway(t, fmt.Sprintf(`
plugins:
  - {name: p, module: %q, config: {parts: [{name: a, url: "upstream://a/x?q={query.q}", timeout: %s}]}}
routes:
  - {name: r, match: {path_prefix: /}, plugins: [{name: p}]}
`, mods["aggregate"], timeout))
		if err != nil {
			t.Errorf("timeout %s: %v", timeout, err)
		}
	}
}
