package tck

import "fmt"

// Config returns the gateway config of Run for the hostcheck guest at
// module: the guest under many plugin names (one per check, some pooled
// with one instance, some fresh) and the routes that drive them, over the
// upstreams a and b (host:port of two Upstreams, ids "a" and "b") and dead,
// an address nothing listens on (DeadAddr).
//
// It holds the top-level keys plugins, traffic (the feature flags
// flag_enabled reads), upstreams and routes; the host
// adds the rest of its config (listeners, admin API, log, plugin runtime)
// around it. Every plugin has a call_timeout of 5s, generous on a busy
// machine for a Go guest; the routes' limits (max_body_bytes 64KiB on
// /inspect) are part of what the runner asserts.
func Config(module, a, b, dead string) string {
	return fmt.Sprintf(config, module, a, b, dead)
}

// config is Config's text. Arguments: module, upstream a, upstream b, the
// dead address.
const config = `
plugins:
  - {name: hostcheck, module: %[1]q, limits: {call_timeout: 5s}}
  - {name: hc-phase, module: %[1]q, limits: {call_timeout: 5s}, config: {check: phase}}
  - {name: hc-kv, module: %[1]q, limits: {call_timeout: 5s}, mode: fresh, config: {check: kv}}
  - {name: hc-kv-other, module: %[1]q, limits: {call_timeout: 5s}, config: {check: kv}}
  - {name: hc-metrics, module: %[1]q, limits: {call_timeout: 5s}, config: {check: metrics}}
  - {name: hc-metrics-fill, module: %[1]q, limits: {call_timeout: 5s}, config: {check: metrics}}
  - {name: hc-log, module: %[1]q, limits: {call_timeout: 5s}, config: {check: log}}
  - {name: hc-flood, module: %[1]q, limits: {call_timeout: 5s}, config: {check: log}}
  - {name: hc-outbound, module: %[1]q, limits: {call_timeout: 5s}}
  - {name: hc-a, module: %[1]q, limits: {call_timeout: 5s}, config: {check: chain, tag: A}}
  - {name: hc-b, module: %[1]q, limits: {call_timeout: 5s}, config: {check: chain, tag: B}}
  - {name: hc-c, module: %[1]q, limits: {call_timeout: 5s}, config: {check: chain, tag: C}}
  - {name: hc-pooled, module: %[1]q, limits: {call_timeout: 5s}, pool: {max_instances: 1}, config: {check: instance}}
  - {name: hc-fresh, module: %[1]q, limits: {call_timeout: 5s}, mode: fresh, config: {check: instance}}
  - {name: hc-buffers, module: %[1]q, limits: {call_timeout: 5s}, config: {check: buffers}}
  - {name: hc-flags, module: %[1]q, limits: {call_timeout: 5s}, config: {check: flags}}
  - {name: hc-gateway, module: %[1]q, limits: {call_timeout: 5s}, config: {check: gateway}}
  - {name: hc-tag, module: %[1]q, limits: {call_timeout: 5s}, config: {check: chain, tag: T}}
traffic:
  sticky: "header:X-User-Id"
  segments: [{name: tck-beta, keys: [beta-user]}]
  flags:
    - {name: tck-on, enabled: true}
    - {name: tck-off, enabled: false}
    - {name: tck-beta, enabled: true, segment: tck-beta}
upstreams:
  - {name: a, targets: [{address: %[2]s}]}
  - {name: b, targets: [{address: %[3]s}]}
routes:
  - {name: flags, match: {path_prefix: /flags}, plugins: [{name: hc-flags}]}
  - name: inspect
    match: {path_prefix: /inspect}
    upstream: a
    max_body_bytes: 64KiB
    plugins: [{name: hostcheck, config: {check: inspect, big_body: 70000, echo: {nested: [1, two]}}}]
  - {name: phase, match: {path_prefix: /phase/upstream}, upstream: a, plugins: [{name: hc-phase}]}
  - {name: phase-local, match: {path_prefix: /phase/local}, upstream: a, plugins: [{name: hc-phase, config: {check: phase, local: true}}]}
  - {name: kv, match: {path_prefix: /kv}, plugins: [{name: hc-kv}]}
  - {name: kv2, match: {path_prefix: /kv2}, plugins: [{name: hc-kv}]}
  - {name: kv-other, match: {path_prefix: /kv-other}, plugins: [{name: hc-kv-other}]}
  - {name: kv-c, match: {path_prefix: /kv-c}, plugins: [{name: hc-c, config: {check: kv}}]}
  - {name: metrics, match: {path_prefix: /metrics-check}, plugins: [{name: hc-metrics}]}
  - {name: metrics-fill, match: {path_prefix: /metrics-fill}, plugins: [{name: hc-metrics-fill}]}
  - {name: log, match: {path_prefix: /log}, plugins: [{name: hc-log}]}
  - {name: log-open, match: {path_prefix: /open-log}, upstream: a, plugins: [{name: hc-log, failure_policy: fail_open}]}
  - {name: flood, match: {path_prefix: /flood}, plugins: [{name: hc-flood}]}
  - name: outbound
    match: {path_prefix: /outbound}
    upstream: a
    plugins:
      - name: hc-outbound
        outbound: {upstreams: [a], hosts: [%[3]q, %[4]q]}
        config:
          check: outbound
          batch:
            - {url: "http://%[3]s/echo/one?x=1", method: POST, headers: {X-Part: p1}, body: hello}
            - {url: "upstream://a/echo/two"}
            - {url: "upstream://b/echo/three"}
            - {url: "http://%[2]s/echo/four"}
            - {url: "ftp://example.test/five"}
            - {url: "http://%[3]s/hold", timeout_ms: 100}
            - {url: "http://%[4]s/dead"}
            - {url: "upstream://a/status/404"}
            - {url: "upstream://a/echo/host", headers: {Host: custom.test}}
  - {name: chain, match: {path_prefix: /chain/all}, upstream: a, plugins: [{name: hc-a}, {name: hc-b}, {name: hc-c}]}
  - name: chain-stop
    match: {path_prefix: /chain/stop}
    upstream: a
    plugins: [{name: hc-a}, {name: hc-b, config: {check: chain, tag: B, stop: true}}, {name: hc-c}]
  - {name: pooled, match: {path_prefix: /instance/pooled}, upstream: a, plugins: [{name: hc-pooled}]}
  - {name: fresh, match: {path_prefix: /instance/fresh}, upstream: a, plugins: [{name: hc-fresh}]}
  - {name: buffers, match: {path_prefix: /buffers}, plugins: [{name: hc-buffers, config: {check: buffers, echo: "e"}}]}
  - name: authorize
    match: {path_prefix: /authorize}
    upstream: a
    plugins: [{name: hc-tag}, {name: hc-gateway}]
    authorize: {require_scopes: ["orders:read", "orders:write"], claims: {groups: [admins, ops], org.plan: pro}, consumers: [alice], realm: tck}
`
