package config

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestPluginConfigJSONRules pins, one claim per row, the JSON a plugin's
// config_get returns for a YAML config (sdk/ABI.md section 5 lists the
// same rules).
func TestPluginConfigJSONRules(t *testing.T) {
	t.Setenv("WG_TEST_PORT", "8080")
	t.Setenv("WG_TEST_EMPTY", "")
	tests := []struct {
		name, yaml, json string
	}{
		// Shape: compact, keys in the order written (not sorted).
		{"key order kept", `{b: 1, a: 2, c: {z: 1, y: 2}}`, `{"b":1,"a":2,"c":{"z":1,"y":2}}`},
		{"block style", "\n      zeta: 1\n      alpha: [x, y]", `{"zeta":1,"alpha":["x","y"]}`},
		{"empty mapping", `{}`, `{}`},
		{"a list", `[1, two, {three: 3}]`, `[1,"two",{"three":3}]`},
		{"a scalar", `plain`, `"plain"`},
		// Keys are strings as written, whatever they would resolve to.
		{"keys as written", `{2: a, true: b, null: c, 1.50: d, 0x10: e}`, `{"2":"a","true":"b","null":"c","1.50":"d","0x10":"e"}`},
		// Integers: any YAML form, written in decimal.
		{"int64", `{max: 9223372036854775807, min: -9223372036854775808}`, `{"max":9223372036854775807,"min":-9223372036854775808}`},
		{"int forms", `{hex: 0x1F, oct: 0o17, bin: 0b101, under: 1_000, plus: +5}`, `{"hex":31,"oct":15,"bin":5,"under":1000,"plus":5}`},
		{"leading zero is octal", `{zip: 01234, quoted: "01234"}`, `{"zip":668,"quoted":"01234"}`},
		// Past int64: a string as written up to 2^64-1, a float past that.
		{"over int64 to uint64", `{a: 9223372036854775808, b: 18446744073709551615, c: 0xFFFFFFFFFFFFFFFF}`, `{"a":"9223372036854775808","b":"18446744073709551615","c":"0xFFFFFFFFFFFFFFFF"}`},
		{"past uint64 or below int64", `{a: 18446744073709551616, b: -9223372036854775809, c: 123456789012345678901234567890}`, `{"a":"18446744073709551616","b":"-9223372036854775809","c":"123456789012345678901234567890"}`},
		{"floats stay numbers", `{a: 1.5, b: 1e300, c: -0.25}`, `{"a":1.5,"b":1e+300,"c":-0.25}`},
		{"quoted big number", `{id: "123456789012345678901234567890"}`, `{"id":"123456789012345678901234567890"}`},
		// Floats: shortest form that reads back; no Inf or NaN in JSON.
		{"floats", `{a: 1.0, b: 0.1, c: 1e3, d: 1e6, e: 1.5e300, f: .5, g: -0.0, h: 1e-400}`, `{"a":1,"b":0.1,"c":1000,"d":1e+06,"e":1.5e+300,"f":0.5,"g":-0,"h":0}`},
		{"inf and nan stay strings", `{a: .inf, b: -.Inf, c: .NaN, d: 1e400}`, `{"a":".inf","b":"-.Inf","c":".NaN","d":"1e400"}`},
		// Booleans: YAML 1.2's; yes, no, on, off are strings.
		{"booleans", `{a: true, b: False, c: TRUE, d: yes, e: no, f: on, g: off, h: y}`, `{"a":true,"b":false,"c":true,"d":"yes","e":"no","f":"on","g":"off","h":"y"}`},
		{"nulls", "{a: null, b: ~, c: , d: Null}", `{"a":null,"b":null,"c":null,"d":null}`},
		// Other tags: the text as written.
		{"timestamps", `{d: 2001-12-14, t: 2001-12-14T21:59:43.10-05:00}`, `{"d":"2001-12-14","t":"2001-12-14T21:59:43.10-05:00"}`},
		{"binary stays base64", `{b: !!binary aGVsbG8=}`, `{"b":"aGVsbG8="}`},
		{"explicit tags", `{s: !!str 12, i: !!int "12", f: !!float 1, x: !custom 5}`, `{"s":"12","i":12,"f":1,"x":"5"}`},
		// Anchors and aliases are expanded; merge keys merged, own keys first.
		{"aliases", `{base: &b {x: 1, y: 2}, copy: *b}`, `{"base":{"x":1,"y":2},"copy":{"x":1,"y":2}}`},
		{"merge keys", `{base: &b {x: 1, y: 2}, m: {<<: *b, y: 3, z: 4}}`, `{"base":{"x":1,"y":2},"m":{"y":3,"z":4,"x":1}}`},
		// Strings: JSON-escaped as encoding/json does (HTML-safe).
		{"strings", `{tab: "a\tb", nl: "a\nb", ctl: "\x01", u: "é", html: "<&>", q: 'it''s'}`, `{"tab":"a\tb","nl":"a\nb","ctl":"\u0001","u":"é","html":"\u003c\u0026\u003e","q":"it's"}`},
		// ${VAR} in a value expands to a string, even when it looks like a number.
		{"env", "\n      port: ${WG_TEST_PORT}\n      def: ${WG_TEST_EMPTY:-none}\n      lit: $${WG_TEST_PORT}\n      ${WG_TEST_PORT}: key", `{"port":"8080","def":"none","lit":"${WG_TEST_PORT}","${WG_TEST_PORT}":"key"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte("plugins:\n  - name: p\n    module: p.wasm\n    config: "+tt.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			got := string(c.Plugins[0].Config)
			if got != tt.json {
				t.Errorf("config %s\n got %s\nwant %s", tt.yaml, got, tt.json)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
}

// TestPluginConfigJSONAbsent: a null or missing config is none (the plugin
// reads "{}", or for a route's entry the plugin's own config), and a
// duplicate key is a config error, not a last-one-wins.
func TestPluginConfigJSONAbsent(t *testing.T) {
	for _, y := range []string{"config: ~\n", "config:\n", ""} {
		c, err := Parse("c.yaml", []byte("plugins:\n  - name: p\n    module: p.wasm\n    "+y))
		if err != nil {
			t.Fatal(err)
		}
		if c.Plugins[0].Config != nil {
			t.Errorf("%q: config %q, want none", y, c.Plugins[0].Config)
		}
	}
	_, err := Parse("c.yaml", []byte("plugins:\n  - name: p\n    module: p.wasm\n    config: {a: 1, a: 2}\n"))
	if err == nil || !strings.Contains(err.Error(), `duplicate key "a"`) {
		t.Errorf("duplicate key: %v", err)
	}
}
