package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/host/testkit/tlstest"
)

// ups is a valid upstream section (lines 1-3) that route cases build on.
const ups = "upstreams:\n  - name: u\n    targets: [{address: \"127.0.0.1:9000\"}]\n"

// route returns ups plus one route (line 5) written as a flow mapping.
// A match is added when body has none (match is required).
func route(body string) string {
	if !strings.Contains(body, "match:") {
		body += ", match: {path_prefix: /}"
	}
	return ups + "routes:\n  - {name: r, " + body + "}\n"
}

func TestParseErrors(t *testing.T) {
	t.Setenv("WG_SET", "x")
	tests := []struct {
		name, yaml string
		want       []string
	}{
		// Decoding.
		{"unknown top key", "listn: {}\n", []string{`1:1: unknown key "listn" in config (known: listen, admin, log, upstreams, routes, plugins, plugin_runtime, redis, traffic, fleet)`}},
		{"unknown route key", route("upstrem: u, match: {path: /}"), []string{
			`5:5: route "r": needs upstream, split, or active and standby (or plugins that answer)`,
			`5:15: unknown key "upstrem" in route (known: name, match, upstream, split, sticky, active, standby, shadow, rewrite, timeouts, retries, max_body_bytes, max_response_bytes, priority, plugins, cache, rate_limits, authorize, idempotency)`}},
		{"mapping for list", "routes: {name: r}\n", []string{`1:9: expected a list for routes, got a mapping`}},
		{"string for int", "listen: {max_connections: abc}\n", []string{`1:27: expected an integer for max_connections, got "abc"`}},
		{"float for int", "listen: {max_connections: 1.5}\n", []string{`1:27: expected an integer for max_connections, got "1.5"`}},
		{"list for string", "log: {level: [info]}\n", []string{`1:14: expected a string for level, got a list`}},
		{"scalar for struct", "listen: 8080\n", []string{`1:9: expected a mapping for listen, got "8080"`}},
		{"scalar for nested struct", "upstreams: [{name: u, discovery: 5}]\n", []string{`1:34: expected a mapping for discovery, got "5"`}},
		{"list for list element", "routes: [[{name: r}]]\n", []string{`1:10: expected a mapping for route, got a list`}},
		{"bad bool", "admin: {watch_config: maybe}\n", []string{`1:23: expected true or false for watch_config, got "maybe"`}},
		{"bad duration", "listen: {read_timeout: 10x}\n", []string{
			`1:24: bad duration "10x" for read_timeout: want a number with a unit (ns, us, ms, s, m, h), e.g. "250ms" or "1m30s"`}},
		{"bad byte size", "listen: {max_body_bytes: 10XB}\n", []string{
			`1:26: bad byte size "10XB" for max_body_bytes: want a non-negative integer with an optional unit B, KB, MB, GB, KiB, MiB or GiB, e.g. "16KiB"`}},
		{"huge byte size", "listen: {max_body_bytes: 9999999999GiB}\n", []string{`1:26: bad byte size "9999999999GiB" for max_body_bytes: too large`}},
		{"duplicate key", "log:\n  level: info\n  level: warn\n", []string{`3:3: duplicate key "level" in log (first at 2:3)`}},
		{"non-string key", "log: {[a]: b}\n", []string{`1:7: keys in log must be plain strings, got a list`}},
		{"empty", "", []string{`1:1: config is empty (want a mapping with keys listen, admin, log, upstreams, routes, plugins, plugin_runtime, redis, traffic, fleet)`}},
		{"only comments", "# nothing\n", []string{`1:1: config is empty (want a mapping with keys listen, admin, log, upstreams, routes, plugins, plugin_runtime, redis, traffic, fleet)`}},
		{"two documents", "log: {}\n---\nlog: {}\n", []string{`2:1: a config file holds one YAML document; found a second one`}},
		{"syntax", "log: {level: info\n", []string{`2:1: YAML syntax error: did not find expected ',' or '}'`}},
		{"unknown anchor", "log: *nope\n", []string{`1:6: YAML syntax error: unknown anchor 'nope' referenced`}},
		{"bad merge", "log: {<<: 3}\n", []string{`1:11: merge key (<<) in log needs a mapping or a list of mappings, got "3"`}},
		{"unset env", "log: {level: \"${WG_UNSET_VAR}\"}\n", []string{
			`1:14: level: environment variable WG_UNSET_VAR is not set (write ${WG_UNSET_VAR:-default} to give a default)`}},
		{"unterminated env", "log:\n  access_log: ${WG_SET\n", []string{`2:15: access_log: unterminated ${ in "${WG_SET"`}},
		{"bad env name", "log:\n  access_log: ${1X}\n", []string{`2:15: access_log: bad variable name "1X" in "${1X}" (want ${NAME} or ${NAME:-default})`}},

		// Tags: required, enum, durations, max_*.
		{"required", "upstreams:\n  - targets: [{address: \"h:1\"}]\n", []string{`2:5: missing required key "name" in upstream`}},
		{"null route", "routes: [~]\n", []string{`1:10: missing required key "name" in route`, `1:10: missing required key "match" in route`, `1:10: route #1: needs upstream, split, or active and standby (or plugins that answer)`}},
		{"required empty", "upstreams:\n  - name: \"\"\n    targets: [{address: \"h:1\"}]\n", []string{`2:11: name must not be empty`}},
		{"enum", "log: {level: loud}\n", []string{`1:14: bad level "loud" (want one of: debug, info, warn, error)`}},
		{"negative duration", "listen: {idle_timeout: -1s}\n", []string{`1:24: idle_timeout must not be negative, got -1s`}},
		{"negative max", ups + "    max_conns_per_target: -1\n", []string{`4:27: max_conns_per_target must be >= 0, got -1`}},

		// Cache and rate limits.
		{"cache budget", route("upstream: u, cache: {max_bytes: 1KiB, max_object_bytes: 2KiB}"), []string{
			`5:71: route "r": cache.max_object_bytes must be > 0 and at most max_bytes (1024), got 2048`}},
		{"cache status", route("upstream: u, cache: {statuses: [200, 99]}"), []string{
			`5:46: route "r": cache.statuses: 99 is not an HTTP status`}},
		{"cache key", route("upstream: u, cache: {status_header: \"X Cache\", key: {headers: [\"a b\"], query: [id, utm_x], ignore_query: [\"utm_*\"], cookies: [\"a=b\"]}}"), []string{
			`5:51: route "r": cache.status_header "X Cache" is not a header name`,
			`5:78: route "r": cache.key.headers: "a b" is not a header name`,
			`5:98: route "r": cache.key: query parameter "utm_x" is both keyed and ignored`,
			`5:141: route "r": cache.key.cookies: bad name "a=b"`}},
		{"rate limit", route("upstream: u, rate_limits: [{name: a, rate: 0, period: 0s, burst: -1, key: ip}, {name: a, rate: 1, key: \"header:a b\"}, {name: r, rate: 1, store: redis}]"), []string{
			`5:58: route "r": rate limit "a": rate must be >= 1, got 0`,
			`5:69: route "r": rate limit "a": period must be > 0`,
			`5:80: route "r": rate limit "a": burst must be >= 0 (0: the rate), got -1`,
			`5:89: route "r": rate limit "a": bad key "ip" (want client_ip, route, consumer, header:NAME or plugin)`,
			`5:101: route "r": duplicate rate limit name "a" (first at 5:49)`,
			`5:118: route "r": rate limit "a": key "header:a b" names no valid header`,
			`5:159: route "r": rate limit "r": store redis needs a top-level redis section`}},
		{"rate limit required", route("upstream: u, rate_limits: [{period: 1s}]"), []string{
			`5:42: missing required key "name" in rate_limit`,
			`5:42: missing required key "rate" in rate_limit`}},
		{"redis", "redis: {address: nohost, timeout: 0s}\n", []string{
			`1:18: bad redis.address "nohost": want host:port`,
			`1:35: redis.timeout must be > 0`}},

		// Listener, admin, log.
		{"listen address", "listen: {address: localhost}\n", []string{`1:19: bad listen.address "localhost": want host:port`}},
		{"tls on the plain address", "listen: {address: \"127.0.0.1:80\", tls: {address: \"127.0.0.1:80\", certificates: [{cert: c, key: k}]}}\n", []string{
			`1:50: listen.tls.address "127.0.0.1:80" is listen.address too`}},
		{"tls without certificates", "listen: {tls: {address: \"127.0.0.1:443\", min_version: \"1.1\"}}\n", []string{
			`1:15: missing required key "certificates" in tls`, `1:55: bad min_version "1.1" (want one of: 1.2, 1.3)`}},
		{"probe address", "listen: {probe_address: probe}\n", []string{`1:25: bad listen.probe_address "probe": want host:port`}},
		{"admin port", "admin: {address: \"127.0.0.1:99999\"}\n", []string{`1:18: bad admin.address "127.0.0.1:99999": port must be a number between 0 and 65535`}},
		{"trusted proxies", "listen:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n", []string{
			`2:33: bad CIDR "10.0.0.0/33" in trusted_proxies (want e.g. 10.0.0.0/8 or 192.0.2.1)`}},
		{"access log", "log: {access_log: logs/}\n", []string{`1:19: bad access_log "logs/" (want stdout, stderr, off, or a file path)`}},

		// Upstreams.
		{"dup upstream", ups + "  - name: u\n    targets: [{address: \"h:1\"}]\n", []string{`4:11: duplicate upstream name "u" (first at 2:11)`}},
		{"no targets", "upstreams: [{name: u}]\n", []string{`1:13: upstream "u": needs targets or discovery`}},
		{"target no port", "upstreams: [{name: u, targets: [{address: h}]}]\n", []string{`1:43: bad upstream "u": target address "h": want host:port`}},
		{"target bad port", "upstreams: [{name: u, targets: [{address: \"h:0\"}]}]\n", []string{
			`1:43: bad upstream "u": target address "h:0": port must be a number between 1 and 65535`}},
		{"target bad host", "upstreams: [{name: u, targets: [{address: \"a..b:1\"}]}]\n", []string{`1:43: bad upstream "u": target address "a..b:1": bad host "a..b"`}},
		{"target weight", "upstreams: [{name: u, targets: [{address: \"h:1\", weight: 0}]}]\n", []string{`1:58: upstream "u": target weight must be >= 1, got 0`}},
		{"hash missing", ups + "    balance: consistent_hash\n", []string{`4:14: upstream "u": balance consistent_hash needs hash (source: header, cookie or client_ip)`}},
		{"hash name", ups + "    balance: consistent_hash\n    hash: {source: header}\n", []string{`5:11: upstream "u": hash source header needs a name`}},
		{"hash source", ups + "    hash: {name: x}\n", []string{`4:11: missing required key "source" in hash`}},
		{"srv port", "upstreams: [{name: u, discovery: {dns: {name: _http._tcp.example.com, type: SRV, port: 80}}}]\n", []string{
			`1:88: upstream "u": SRV discovery takes ports from the records; remove port`}},
		{"a no port", "upstreams: [{name: u, discovery: {dns: {name: example.com}}}]\n", []string{
			`1:40: upstream "u": A discovery needs a port between 1 and 65535, got 0`}},
		{"dns missing", "upstreams: [{name: u, discovery: {}}]\n", []string{`1:34: missing required key "dns" in discovery`}},
		{"health path", ups + "    health_check: {path: healthz, healthy_threshold: 0}\n", []string{
			`4:26: upstream "u": health_check path "healthz" must start with "/"`,
			`4:54: upstream "u": healthy_threshold must be >= 1, got 0`}},
		{"breaker", ups + "    circuit_breaker: {consecutive_failures: 0}\n", []string{`4:45: upstream "u": consecutive_failures must be >= 1, got 0`}},
		{"retries on", ups + "    retries: {on: [timeout, \"404\", 5xx, 503]}\n", []string{
			`4:29: upstream "u": unknown retry condition "404" (want connect_error, timeout, reset, or a 5xx status such as 503)`,
			`4:36: upstream "u": unknown retry condition "5xx" (want connect_error, timeout, reset, or a 5xx status such as 503)`}},

		// Routes.
		{"dup route", ups + "routes:\n  - {name: r, upstream: u, match: {}}\n  - {name: r, upstream: u, match: {}}\n", []string{`6:12: duplicate route name "r" (first at 5:12)`}},
		{"neither", route("match: {path: /}"), []string{`5:5: route "r": needs upstream, split, or active and standby (or plugins that answer)`}},
		{"both", route("upstream: u, split: [{upstream: u, weight: 1}]"), []string{`5:35: route "r": use one of upstream, split, active/standby (got upstream and split)`}},
		{"unknown upstream", route("upstream: user"), []string{`5:25: route "r": unknown upstream "user" (defined: u)`}},
		{"unknown split upstream", route("split: [{upstream: u, weight: 0}, {upstream: v, weight: -1}]"), []string{
			`5:22: route "r": split needs a weighted entry with weight above 0 (for users in no segment)`,
			`5:60: route "r": unknown upstream "v" (defined: u)`,
			`5:71: route "r": split weight must be 0 to 100, got -1`}},
		{"split weight over 100", route("split: [{upstream: u, weight: 101}]"), []string{`5:45: route "r": split weight must be 0 to 100, got 101`}},
		{"split without weight", route("split: [{upstream: u}]"), []string{
			`5:22: route "r": split needs a weighted entry with weight above 0 (for users in no segment)`,
			`5:23: route "r": split entry needs weight (0 to 100) or segment`}},
		{"split upstream twice", route("split: [{upstream: u, weight: 1}, {upstream: u, weight: 2}]"), []string{
			`5:60: route "r": upstream "u" has two weights in the split`}},
		{"split unknown segment", route("split: [{upstream: u, segment: beta}, {upstream: u, weight: 1}]"), []string{
			`5:46: route "r": split: unknown segment "beta" (none are defined)`}},
		{"active alone", route("active: u"), []string{
			`5:23: route "r": active and standby go together`}},
		{"active is standby", route("active: u, standby: u"), []string{
			`5:35: route "r": active and standby are both "u"`}},
		{"active and upstream", route("upstream: u, active: u, standby: u"), []string{
			`5:36: route "r": use one of upstream, split, active/standby (got upstream and active/standby)`,
			`5:48: route "r": active and standby are both "u"`}},
		{"bad sticky", route("upstream: u, sticky: head:X"), []string{
			`5:36: route "r": sticky: source "head:X": unknown kind "head" (want header:NAME, cookie:NAME, query:NAME, consumer or claim:PATH)`}},
		{"unknown match segment", route("upstream: u, match: {segments: [beta], flags: [f]}"), []string{
			`5:47: route "r": match: unknown segment "beta" (none are defined)`,
			`5:62: route "r": match: unknown flag "f" (none are defined)`}},
		{"shadow on own upstream", route("upstream: u, shadow: {upstream: u, percent: 101, max_in_flight: 0, compare: {ignore: [\"a[\"]}}"), []string{
			`5:47: route "r": shadow: upstream "u" is the route's own: a shadow compares a candidate with it`,
			`5:59: route "r": shadow: percent must be 0 to 100, got 101`,
			`5:79: route "r": shadow: max_in_flight must be >= 1`,
			`5:91: route "r": shadow: compare: invalid shadow comparison: ignore[0]: ignore path "a[": at offset 2: unclosed '['`}},
		{"segment without criteria", "traffic: {segments: [{name: s}]}\n", []string{`1:22: segment "s": needs keys, source and values, or percent`}},
		{"segment keys without sticky", "traffic: {segments: [{name: s, keys: [a]}]}\n", []string{
			`1:38: segment "s": keys are values of traffic.sticky, which is not set`}},
		{"segment values without source", "traffic: {sticky: consumer, segments: [{name: s, values: [a], percent: 120}]}\n", []string{
			`1:58: segment "s": values need a source (header:NAME, cookie:NAME, query:NAME, consumer or claim:PATH)`,
			`1:72: segment "s": percent must be 0 to 100, got 120`}},
		{"flag unknown segment", "traffic: {flags: [{name: f, enabled: true, segment: s, percent: -1}]}\n", []string{
			`1:53: flag "f": unknown segment "s" (none are defined)`,
			`1:65: flag "f": percent must be 0 to 100, got -1`}},
		{"two path forms", route("upstream: u, match: {path: /a, path_prefix: /b}"), []string{
			`5:59: route "r": match may use only one of path, path_prefix, path_regex (got path and path_prefix)`}},
		{"relative prefix", route("upstream: u, match: {path_prefix: api}"), []string{`5:49: route "r": path_prefix "api" must start with "/"`}},
		{"params in prefix", route("upstream: u, match: {path_prefix: \"/a/{id}\"}"), []string{
			`5:49: route "r": path_prefix "/a/{id}" is literal; {params} are only allowed in path`}},
		{"unclosed param", route("upstream: u, match: {path: \"/a/{id\"}"), []string{`5:42: route "r": bad path "/a/{id": segment "{id": a {param} must be a whole segment`}},
		{"partial segment", route("upstream: u, match: {path: \"/a-{id}\"}"), []string{`5:42: route "r": bad path "/a-{id}": segment "a-{id}": a {param} must be a whole segment`}},
		{"bad param name", route("upstream: u, match: {path: \"/{1x}\"}"), []string{
			`5:42: route "r": bad path "/{1x}": bad param name "1x" (want letters, digits and _, not starting with a digit)`}},
		{"catch-all not last", route("upstream: u, match: {path: \"/{rest...}/x\"}"), []string{
			`5:42: route "r": bad path "/{rest...}/x": catch-all {rest...} must be the last segment`}},
		{"dup param", route("upstream: u, match: {path: \"/{id}/{id}\"}"), []string{`5:42: route "r": bad path "/{id}/{id}": duplicate param {id}`}},
		{"bad path regex", route("upstream: u, match: {path_regex: \"(\"}"), []string{
			"5:48: route \"r\": bad path_regex: error parsing regexp: missing closing ): `(`"}},
		{"header regex", route("upstream: u, match: {headers: [{name: X-A, regex: \"[\"}]}"), []string{
			"5:65: route \"r\": header \"X-A\": bad regex: error parsing regexp: missing closing ]: `[`"}},
		{"value and regex", route("upstream: u, match: {query: [{name: a, value: b, regex: c}]}"), []string{
			`5:44: route "r": query "a": use either value or regex, not both`}},
		{"absent and value", route("upstream: u, match: {cookies: [{name: a, value: b, absent: true}]}"), []string{
			`5:74: route "r": cookie "a": absent cannot be combined with value or regex`}},
		{"bad header name", route("upstream: u, match: {headers: [{name: \"X A\"}]}"), []string{`5:53: route "r": bad header name "X A"`}},
		{"methods", route("upstream: u, match: {methods: [get, \"GE T\"]}"), []string{`5:51: route "r": bad method "GE T"`}},
		{"hosts", route("upstream: u, match: {hosts: [\"*.Example.com\", \"exa mple.com\", \"*.\"]}"), []string{
			`5:61: route "r": bad host "exa mple.com" (want a hostname like api.example.com or a wildcard like *.example.com)`,
			`5:77: route "r": bad host "*." (want a hostname like api.example.com or a wildcard like *.example.com)`}},
		{"rewrite unknown param", route("upstream: u, match: {path: \"/u/{id}\"}, rewrite: {path: \"/v2/{uid}\"}"), []string{
			`5:70: route "r": rewrite path uses {uid}, which the match does not define (defined: id)`}},
		{"rewrite regex group", route(`upstream: u, match: {path_regex: "^/u/(?P<id>[0-9]+)$"}, rewrite: {path: "/v2/{id}/{x}"}`), []string{
			`5:88: route "r": rewrite path uses {x}, which the match does not define (defined: id)`}},
		{"strip with regex", route("upstream: u, match: {path_regex: ^/a}, rewrite: {strip_prefix: /a}"), []string{
			`5:78: route "r": strip_prefix needs match.path_prefix or match.path`}},
		{"strip not prefix", route("upstream: u, match: {path_prefix: /api}, rewrite: {strip_prefix: /v1}"), []string{
			`5:80: route "r": strip_prefix "/v1" is not a prefix of the matched path "/api"`}},
		{"authorize without plugins", route("upstream: u, authorize: {consumers: [a]}"), []string{
			`5:39: route "r": authorize: the route has no plugins: an auth plugin must establish the consumer or claims it decides on`}},
		{"authorize bad parts", "plugins: [{name: p, module: p.wasm}]\n" + route(`upstream: u, plugins: [{name: p}], authorize: {require_scopes: ["a b"], realm: x}`), []string{
			`6:78: route "r": authorize: require_scopes: scope "a b" holds ' ' (a scope is printable ASCII without space, '"' or '\')`}},
		{"authorize empty lists", "plugins: [{name: p, module: p.wasm}]\n" + route(`upstream: u, plugins: [{name: p}], authorize: {consumers: [], claims: {role: []}}`), []string{
			`6:85: route "r": authorize: claims: "role" lists no value (it could admit no one)`}},
		{"authorize claim shapes", "plugins: [{name: p, module: p.wasm}]\n" + route(`upstream: u, plugins: [{name: p}], authorize: {claims: {role: {a: b}}}`), []string{
			`6:70: route "r": authorize: claims: "role": want a string, number or boolean, or a list of them, got {"a":"b"}`}},
		{"authorize claims a list", "plugins: [{name: p, module: p.wasm}]\n" + route(`upstream: u, plugins: [{name: p}], authorize: {claims: [role]}`), []string{
			`6:70: route "r": authorize: claims: want a mapping of claim to value or list of values`}},
		{"route retries", route("upstream: u, retries: {attempts: -1}"), []string{`5:48: route "r": retries attempts must be >= 0, got -1`}},
		{"route negative timeout", route("upstream: u, timeouts: {read: -2s}"), []string{`5:45: read must not be negative, got -2s`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tt.yaml))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v (%T), want an ErrorList", err, err)
			}
			if c != nil {
				t.Errorf("config not nil with errors")
			}
			var got []string
			for _, e := range list {
				if e.File != "t.yaml" {
					t.Errorf("File = %q", e.File)
				}
				got = append(got, strings.TrimPrefix(e.Error(), "t.yaml:"))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

const full = `listen:
  address: "127.0.0.1:0"
  trusted_proxies: [10.0.0.0/8]
admin:
  token: ${WG_TOKEN}
log: {level: debug, access_log: "${WG_LOG:-/var/log/wg.log}"}
x-base: &timeouts {connect: 1s, read: 5s}
upstreams:
  - name: users
    balance: consistent_hash
    hash: {source: header, name: X-User}
    targets:
      - address: "10.0.0.1:8080"
      - {address: "[::1]:8080", weight: 3}
    timeouts: *timeouts
    health_check: {}
    retries: {attempts: 2, on: [timeout, 503]}
  - name: orders
    discovery: {dns: {name: orders.svc.local, port: 80}}
    timeouts: {<<: *timeouts, read: 9s}
routes:
  - name: users
    match: {path: "/users/{id}", methods: [get, Post], hosts: [API.example.com]}
    upstream: users
    rewrite: {path: "/v2/users/{id}"}
    timeouts: {read: 2s}
  - name: orders
    match: {path_prefix: /orders}
    split: [{upstream: orders, weight: 90}, {upstream: users, weight: 10}]
    rewrite: {strip_prefix: /orders}
    retries: {}
    max_body_bytes: 1MiB
`

func TestFull(t *testing.T) {
	t.Setenv("WG_TOKEN", "s3cret")
	t.Setenv("WG_LOG", "")
	c, err := Parse("full.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	users, orders := &c.Upstreams[0], &c.Upstreams[1]
	r0, r1 := &c.Routes[0], &c.Routes[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"file", c.File, "full.yaml"},
		{"token from env", c.Admin.Token, "s3cret"},
		{"env default when empty", c.Log.AccessLog, "/var/log/wg.log"},
		{"listen default", c.Listen.ReadTimeout.D(), 10 * time.Second},
		{"byte size default", c.Listen.MaxHeaderBytes, ByteSize(16 << 10)},
		{"body default", c.Listen.MaxBodyBytes, ByteSize(10 << 20)},
		{"admin address default", c.Admin.Address, "127.0.0.1:9901"},
		{"*bool default", *c.Admin.WatchConfig, true},
		{"target weight default", users.Targets[0].Weight, 1},
		{"target weight", users.Targets[1].Weight, 3},
		{"alias", users.Timeouts.Read.D(), 5 * time.Second},
		{"alias then default", users.Timeouts.Write.D(), 30 * time.Second},
		{"merge", orders.Timeouts.Connect.D(), time.Second},
		{"merge override", orders.Timeouts.Read.D(), 9 * time.Second},
		{"upstream timeouts default", orders.Timeouts.Total.D(), 60 * time.Second},
		{"route timeouts inherit", r0.Timeouts, Timeouts{Read: Duration(2 * time.Second), Pos: r0.Timeouts.Pos, At: r0.Timeouts.At}},
		{"health check defaults", *users.HealthCheck, HealthCheck{Path: "/healthz", Interval: Duration(5 * time.Second), Timeout: Duration(time.Second),
			UnhealthyThreshold: 3, HealthyThreshold: 2, Pos: users.HealthCheck.Pos, At: Positions{}}},
		{"absent section stays nil", orders.HealthCheck, (*HealthCheck)(nil)},
		{"retries kept", users.Retries.On, []string{"timeout", "503"}},
		{"retries default", r1.Retries.On, []string{"connect_error"}},
		{"retries *bool default", *r1.Retries.IdempotentOnly, true},
		{"discovery defaults", []any{orders.Discovery.DNS.Type, orders.Discovery.DNS.Interval.D()}, []any{"A", 10 * time.Second}},
		{"methods upper-cased", r0.Match.Methods, []string{"GET", "POST"}},
		{"hosts lower-cased", r0.Match.Hosts, []string{"api.example.com"}},
		{"route byte size", r1.MaxBodyBytes, ByteSize(1 << 20)},
		{"split", r1.Split[1].Upstream, "users"},
		// Positions: Pos is the mapping, At the value of each key.
		{"config pos", c.Pos, Pos{1, 1}},
		{"route pos", r0.Pos, Pos{22, 5}},
		{"route upstream at", r0.At["upstream"], Pos{24, 15}},
		{"flow mapping pos", r0.Match.Pos, Pos{23, 12}},
		{"flow value at", users.Targets[1].At["weight"], Pos{14, 41}},
		{"alias at", users.At["timeouts"], Pos{15, 15}},
		{"anchored mapping pos", users.Timeouts.Pos, Pos{7, 9}},
		{"merged key at", orders.Timeouts.At["connect"], Pos{7, 29}},
		{"Of fallback", r0.At.Of("split", r0.Pos), r0.Pos},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s: got %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestExpand(t *testing.T) {
	t.Setenv("WG_A", "a")
	t.Setenv("WG_EMPTY", "")
	tests := []struct{ in, want, err string }{
		{"plain $HOME $", "plain $HOME $", ""},
		{"${WG_A}/${WG_A:-b}", "a/a", ""},
		{"${WG_EMPTY}", "", ""},
		{"${WG_EMPTY:-d}", "d", ""},
		{"${WG_NOPE:-}", "", ""},
		{"${WG_NOPE:-x:-y}", "x:-y", ""},
		{"$${WG_A} ${WG_A}", "${WG_A} a", ""},
		{"${WG_NOPE}", "", "environment variable WG_NOPE is not set"},
		{"${WG_A", "", "unterminated"},
		{"${}", "", "bad variable name"},
	}
	for _, tt := range tests {
		got, err := expand(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	// Expansion never changes the structure: a value that looks like YAML stays a string.
	t.Setenv("WG_YAML", "{a: b}\nlevel: x")
	c, err := Parse("", []byte("admin:\n  token: ${WG_YAML}\n"))
	if err != nil || c.Admin.Token != "{a: b}\nlevel: x" {
		t.Errorf("got %+v, %v", c, err)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "16KiB": 16384, "10MiB": 10 << 20, "1GiB": 1 << 30,
		"10KB": 10000, "10MB": 10e6, "2 GB": 2e9, "7B": 7} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "10kib", "10 TiB"} {
		if _, err := parseByteSize(in); err == nil {
			t.Errorf("parseByteSize(%q) succeeded", in)
		}
	}
}

// TestDefaultTags decodes every default tag with the config decoder: a tag
// that does not parse would silently leave its field zero.
func TestDefaultTags(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(tp reflect.Type) {
		for tp.Kind() == reflect.Pointer || tp.Kind() == reflect.Slice {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || seen[tp] || tp == durationType {
			return
		}
		seen[tp] = true
		for _, f := range fieldsOf(tp) {
			if tag, ok := f.sf.Tag.Lookup("default"); ok {
				v := reflect.New(f.sf.Type).Elem()
				setDefault(v, tag)
				if v.IsZero() && tag != "0s" {
					t.Errorf("%s.%s: default %q decodes to zero", tp.Name(), f.sf.Name, tag)
				}
			}
			walk(f.sf.Type)
		}
	}
	walk(configType)
	if len(seen) < 15 {
		t.Errorf("walked %d struct types", len(seen))
	}
}

// yamlKeys returns every YAML key of the config types.
func yamlKeys() map[string]bool {
	keys := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(tp reflect.Type) {
		for tp.Kind() == reflect.Pointer || tp.Kind() == reflect.Slice {
			tp = tp.Elem()
		}
		if tp.Kind() != reflect.Struct || tp == posType {
			return
		}
		for _, f := range fieldsOf(tp) {
			keys[f.key] = true
			walk(f.sf.Type)
		}
	}
	walk(configType)
	return keys
}

func TestSchema(t *testing.T) {
	b, err := Schema()
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" || s["additionalProperties"] != false {
		t.Errorf("bad head: %v %v", s["$schema"], s["additionalProperties"])
	}
	for k := range yamlKeys() {
		if !strings.Contains(string(b), fmt.Sprintf("%q: {", k)) {
			t.Errorf("schema does not mention key %q", k)
		}
	}
	route := s["$defs"].(map[string]any)["Route"].(map[string]any)
	if got := fmt.Sprint(route["required"]); got != "[name match]" {
		t.Errorf("Route required = %s", got)
	}
	for _, want := range []string{`"default": "10s"`, `"default": 16384`, `"default": [` + "\n" + `            "connect_error"`, `"enum": [`, `"$ref": "#/$defs/Timeouts"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("schema lacks %s", want)
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Setenv("WG_TOKEN", "s3cret")
	c, err := Parse("full.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Redacted(c)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	if strings.Contains(out, "s3cret") || !strings.Contains(out, `"token": "[redacted]"`) {
		t.Errorf("token not redacted:\n%s", out)
	}
	for _, bad := range []string{`"Pos"`, `"At"`, `"File"`, `"Line"`, `"hash": null`} {
		if strings.Contains(out, bad) {
			t.Errorf("output has %s", bad)
		}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	listen := m["listen"].(map[string]any)
	if listen["read_timeout"] != "10s" || listen["max_header_bytes"] != 16384.0 {
		t.Errorf("listen = %v", listen)
	}
	if c.Admin.Token != "s3cret" {
		t.Error("Redacted changed the config")
	}
	c.Admin.Token = ""
	if b, _ := Redacted(c); !strings.Contains(string(b), `"token": ""`) {
		t.Errorf("empty token should stay empty")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte("log: {level: loud}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:1:14: bad level "loud" (want one of: debug, info, warn, error)`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if err := os.WriteFile(path, []byte("log: {level: warn}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil || c.File != path || c.Log.Level != "warn" {
		t.Errorf("Load = %+v, %v", c, err)
	}
	_, err = Load(filepath.Join(dir, "missing.yaml"))
	var list ErrorList
	if !errors.As(err, &list) || !errors.Is(err, list[0]) || !strings.Contains(err.Error(), "missing.yaml: cannot read config") {
		t.Errorf("missing file: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{"f.yaml", 3, 7, "m"}, "f.yaml:3:7: m"},
		{Error{"f.yaml", 3, 0, "m"}, "f.yaml:3: m"},
		{Error{"f.yaml", 0, 0, "m"}, "f.yaml: m"},
		{Error{"", 0, 0, "m"}, "m"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	var l ErrorList
	if l.Err() != nil {
		t.Error("empty list is an error")
	}
	l.Add(Pos{5, 1}, "f", "b %d", 2)
	l.Add(Pos{2, 9}, "f", "a")
	l.Add(Pos{5, 1}, "f", "b %d", 2)
	if got := l.Err().Error(); got != "f:2:9: a\nf:5:1: b 2" {
		t.Errorf("list = %q", got)
	}
}

// TestAliasBomb checks that aliases cannot blow a small file up: 1100 routes
// aliasing one with 1000 hosts would be 1.1 million values.
func TestAliasBomb(t *testing.T) {
	yaml := ups + "x-h: &h [" + strings.Repeat("a.com, ", 1000) + "]\n" +
		"x-r: &r {name: r, upstream: u, match: {hosts: *h}}\nroutes: [" + strings.Repeat("*r, ", 1100) + "]\n"
	c, err := Parse("t.yaml", []byte(yaml))
	var list ErrorList
	if !errors.As(err, &list) || c != nil || len(list) != 1 || !strings.Contains(list[0].Msg, "config too large") {
		t.Fatalf("err = %.300v", err)
	}
	// At the alias being expanded when the budget ran out, one of the *r.
	if e := list[0]; e.Line != 6 || e.Col < 10 || (e.Col-10)%4 != 0 || !strings.Contains(e.Msg, "alias *r") {
		t.Errorf("error at %d:%d, want it at one of the *r of line 6: %v", e.Line, e.Col, e)
	}
	// A mapping merging itself must not loop.
	if _, err := Parse("", []byte("log: &l {<<: *l}\n")); err == nil {
		t.Fatal("accepted a self-merge")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(route("upstream: u, match: {path: \"/{a}/{b...}\"}, rewrite: {path: /x/{b}}")))
	f.Add([]byte("log: &l {<<: [*l, {level: info}]}\n"))
	f.Add([]byte("listen: {max_body_bytes: 1GiB, read_timeout: ${X:-1s}}\n"))
	f.Add([]byte(ups + "    tls: {ca: nope.pem, client_cert: /dev/null, client_key: ., min_version: \"1.3\", server_name: x, insecure_skip_verify: true}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("no config and no error")
			}
			if _, err := Redacted(c); err != nil {
				t.Fatalf("Redacted: %v", err)
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 || c != nil {
			t.Fatalf("Parse = %v, %#v; want no config and an ErrorList", c, err)
		}
		checkErrors(t, "f.yaml", bytes.TrimPrefix(data, []byte("\ufeff")), list)
	})
}

// TestUpstreamTLS: an upstream's tls files are read at load, relative to
// the config file, and every problem is reported at the key naming the file.
func TestUpstreamTLS(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	tlstest.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	tlstest.WriteCert(t, dir, "client", ca.Client(t, "gw"))
	tlstest.WriteCert(t, dir, "other", other.Client(t, "gw2"))
	tlstest.WriteFile(t, filepath.Join(dir, "garbage.pem"), []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	tlstest.WriteFile(t, filepath.Join(dir, "enc.key"), []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"))
	file := filepath.Join(dir, "gw.yaml")
	head := "upstreams:\n  - name: u\n    targets: [{address: \"127.0.0.1:9000\"}]\n    tls:\n" // tls keys from line 5, values at column 7+len(key)+2

	c, err := Parse(file, []byte(head+"      ca: ca.pem\n      client_cert: client.crt\n      client_key: "+filepath.Join(dir, "client.key")+"\n      min_version: 1.3\n      server_name: api.internal\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := UpstreamTLS{CA: filepath.Join(dir, "ca.pem"), ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
		MinVersion: "1.3", ServerName: "api.internal"}
	if got := *c.Upstreams[0].TLS; !reflect.DeepEqual(got, UpstreamTLS{CA: want.CA, ClientCert: want.ClientCert, ClientKey: want.ClientKey,
		MinVersion: want.MinVersion, ServerName: want.ServerName, Pos: got.Pos, At: got.At}) {
		t.Errorf("tls = %+v, want paths made relative to the config file", got)
	}
	c, err = Parse(file, []byte(head+"      insecure_skip_verify: true\n"))
	if err != nil || c.Upstreams[0].TLS.MinVersion != "1.2" || !c.Upstreams[0].TLS.InsecureSkipVerify {
		t.Errorf("defaults: %+v %v", c.Upstreams[0].TLS, err)
	}

	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"missing ca", "      ca: nope.pem\n", []string{`5:11: upstream "u": tls.ca: cannot read DIR/nope.pem: no such file or directory`}},
		{"ca is a directory", "      ca: .\n", []string{`5:11: upstream "u": tls.ca: cannot read DIR: not a regular file`}},
		{"ca without certificate", "      ca: client.key\n", []string{`5:11: upstream "u": tls.ca: DIR/client.key: no certificate in PEM (found PRIVATE KEY)`}},
		{"ca that does not parse", "      ca: garbage.pem\n", []string{`5:11: upstream "u": tls.ca: DIR/garbage.pem: certificate #1 does not parse: x509: malformed certificate`}},
		{"cert without key", "      client_cert: client.crt\n", []string{`5:20: upstream "u": tls.client_cert needs tls.client_key (both or neither)`}},
		{"key without cert", "      client_key: client.key\n", []string{`5:19: upstream "u": tls.client_key needs tls.client_cert (both or neither)`}},
		{"key of another cert", "      client_cert: client.crt\n      client_key: other.key\n", []string{
			`6:19: upstream "u": tls.client_key: DIR/other.key does not match the certificate of tls.client_cert DIR/client.crt`}},
		{"cert file holds a key", "      client_cert: client.key\n      client_key: client.key\n", []string{
			`5:20: upstream "u": tls.client_cert: DIR/client.key: no certificate in PEM (found PRIVATE KEY)`}},
		{"key file holds a cert", "      client_cert: client.crt\n      client_key: client.crt\n", []string{
			`6:19: upstream "u": tls.client_key: DIR/client.crt: no private key in PEM`}},
		{"encrypted key", "      client_cert: client.crt\n      client_key: enc.key\n", []string{
			`6:19: upstream "u": tls.client_key: DIR/enc.key: the private key is encrypted (not supported: give an unencrypted key, readable by the gateway only)`}},
		{"bad server_name", "      server_name: \"a b\"\n", []string{`5:20: upstream "u": bad tls.server_name "a b" (want a host name or an IP address)`}},
		{"min_version", "      min_version: 1.1\n", []string{`5:20: bad min_version "1.1" (want one of: 1.2, 1.3)`}},
		{"unknown key", "      verify: false\n", []string{`5:7: unknown key "verify" in tls (known: ca, server_name, client_cert, client_key, min_version, insecure_skip_verify)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(file, []byte(head+tc.yaml))
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v, want an ErrorList", err)
			}
			var got []string
			for _, e := range list {
				got = append(got, strings.ReplaceAll(strings.TrimPrefix(e.Error(), file+":"), dir, "DIR"))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n got %q\nwant %q", got, tc.want)
			}
		})
	}

	// A tls block repeated through an alias reads its files once.
	yaml := "x-t: &t {ca: ca.pem, client_cert: client.crt, client_key: client.key}\nupstreams:\n"
	for i := range 200 {
		yaml += fmt.Sprintf("  - {name: u%d, targets: [{address: \"127.0.0.1:9000\"}], tls: *t}\n", i)
	}
	if _, err := Parse(file, []byte(yaml)); err != nil {
		t.Fatal(err)
	}
}
