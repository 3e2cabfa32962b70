package config

import (
	"strings"
	"testing"
)

func TestPluginConfig(t *testing.T) {
	const base = `
upstreams: [{name: feed, targets: [{address: "127.0.0.1:1"}]}]
plugins:
  - name: jwt
    module: jwt.wasm
    config: {keys: [{kid: a, secret: "${PLUGIN_SECRET}"}], leeway: 30, strict: true, ratio: 0.5, none: ~}
`
	t.Setenv("PLUGIN_SECRET", `s"e`)
	tests := []struct {
		name string
		yaml string
		errs []string
	}{
		{"valid", base + `
routes:
  - name: r
    match: {path: /}
    upstream: feed
    plugins:
      - name: jwt
        limits: {call_timeout: 5ms}
        outbound: {upstreams: [feed], hosts: ["127.0.0.1:9000"]}
`, nil},
		{"plugins alone may answer", base + `
routes:
  - {name: r, match: {path: /}, plugins: [{name: jwt}]}
`, nil},
		{"unknown plugin", base + `
routes:
  - {name: r, match: {path: /}, upstream: feed, plugins: [{name: jwk}]}
`, []string{`9:66: route "r": unknown plugin "jwk" (defined: jwt)`}},
		{"duplicate plugin", base + `  - {name: jwt, module: other.wasm}
`, []string{`7:12: duplicate plugin name "jwt" (first at 4:11)`}},
		{"bad outbound", base + `
routes:
  - name: r
    match: {path: /}
    upstream: feed
    plugins: [{name: jwt, outbound: {upstreams: [nope], hosts: ["nohost"]}}]
`, []string{`12:50: route "r": outbound: unknown upstream "nope" (defined: feed)`, `12:65: bad outbound host "nohost"`}},
		{"bad limits and pool", `
plugins:
  - name: p
    module: p.wasm
    mode: shared
    pool: {max_instances: 2, min_instances: 3}
    limits: {memory_pages: 70000}
    failure_policy: maybe
`, []string{`5:11: bad mode "shared"`, `6:45: plugin "p": pool.min_instances 3 exceeds max_instances 2`, `7:28: plugin "p": memory_pages must be between 1 and 65536`, `8:21: bad failure_policy "maybe"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte(tc.yaml))
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.errs)
			}
			got := err.Error()
			for _, want := range tc.errs {
				if !strings.Contains(got, "c.yaml:"+want) {
					t.Errorf("missing %q in:\n%s", want, got)
				}
			}
			_ = c
		})
	}
}

func TestPluginConfigBecomesJSON(t *testing.T) {
	t.Setenv("PLUGIN_SECRET", `s"e`)
	c, err := Parse("c.yaml", []byte(`
plugins:
  - name: jwt
    module: jwt.wasm
    config: {keys: [{kid: a, secret: "${PLUGIN_SECRET}"}], leeway: 30, strict: true, ratio: 0.5, none: ~, "quoted": "1"}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"keys":[{"kid":"a","secret":"s\"e"}],"leeway":30,"strict":true,"ratio":0.5,"none":null,"quoted":"1"}`
	if got := string(c.Plugins[0].Config); got != want {
		t.Fatalf("config JSON\n got %s\nwant %s", got, want)
	}
	if c.Plugins[0].Mode != "pooled" || c.Plugins[0].Limits.CallTimeout.D() == 0 || c.Plugins[0].Pool.MaxInstances != 16 {
		t.Fatalf("plugin defaults not applied: %+v", c.Plugins[0])
	}
	red, err := Redacted(c)
	if err != nil || strings.Contains(string(red), `s\"e`) {
		t.Fatalf("plugin config secret leaked into the redacted config: %s", red)
	}
}
