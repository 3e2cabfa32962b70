//go:build !wasip1

package wasmgate

import (
	"encoding/json"
	"testing"
	"time"
)

type testKey struct {
	Kid    string `json:"kid"`
	Secret string `json:"secret"`
}

type testConfig struct {
	Keys    []testKey         `json:"keys"`
	Leeway  Duration          `json:"leeway"`
	Strict  bool              `json:"strict"`
	Ratio   float64           `json:"ratio"`
	Count   int               `json:"count"`
	Headers map[string]string `json:"headers"`
}

func TestDecodeConfig(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
		check         func(testConfig) bool
	}{
		{name: "empty bytes", in: "", check: func(c testConfig) bool { return c.Keys == nil }},
		{name: "whitespace", in: " \n", check: func(c testConfig) bool { return c.Keys == nil }},
		{name: "empty object", in: "{}", check: func(c testConfig) bool { return !c.Strict }},
		{
			name: "full", in: `{"keys":[{"kid":"a","secret":"s"}],"leeway":30,"strict":true,"ratio":0.5,"count":3,"headers":{"a":"b"}}`,
			check: func(c testConfig) bool {
				return len(c.Keys) == 1 && c.Keys[0].Kid == "a" && c.Leeway.D() == 30*time.Second && c.Strict && c.Count == 3 && c.Headers["a"] == "b"
			},
		},
		{name: "duration string", in: `{"leeway":"1m30s"}`, check: func(c testConfig) bool { return c.Leeway.D() == 90*time.Second }},
		{name: "duration fraction", in: `{"leeway":0.25}`, check: func(c testConfig) bool { return c.Leeway.D() == 250*time.Millisecond }},
		{name: "duration null", in: `{"leeway":null}`, check: func(c testConfig) bool { return c.Leeway == 0 }},
		{name: "unknown field", in: `{"secrett":"x"}`, err: `unknown field "secrett"`},
		{name: "nested unknown field", in: `{"keys":[{"kidd":"x"}]}`, err: `unknown field "kidd"`},
		{name: "wrong type", in: `{"count":"3"}`, err: `field "count": want integer, got string`},
		{name: "wrong nested type", in: `{"keys":[{"kid":1}]}`, err: `field "keys.kid": want string, got number`},
		{name: "list expected", in: `{"keys":{}}`, err: `field "keys": want list, got object`},
		{name: "not an object", in: `[]`, err: `want object, got array`},
		{name: "syntax", in: `{"count":}`, err: `invalid JSON at byte 10: invalid character '}' looking for beginning of value`},
		{name: "truncated", in: `{"count":1`, err: `invalid JSON: unexpected end of the config`},
		{name: "trailing data", in: `{} {}`, err: `unexpected data after the config object at byte 4`},
		{name: "bad duration", in: `{"leeway":"soon"}`, err: `duration "soon": want like "500ms", "2s" or a number of seconds`},
		{name: "negative duration", in: `{"leeway":-1}`, err: `duration -1 seconds is out of range`},
		{name: "negative duration string", in: `{"leeway":"-1s"}`, err: `duration "-1s" is negative`},
		{name: "duration bool", in: `{"leeway":true}`, err: `duration true: want like "500ms", "2s" or a number of seconds`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c testConfig
			err := DecodeConfig([]byte(tc.in), &c)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v\nwant %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("decoded %+v", c)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	b, err := json.Marshal(Duration(1500 * time.Millisecond))
	if err != nil || string(b) != `"1.5s"` {
		t.Fatalf("marshal: %s %v", b, err)
	}
	var d Duration
	if err := json.Unmarshal(b, &d); err != nil || d.D() != 1500*time.Millisecond || d.String() != "1.5s" {
		t.Fatalf("round trip: %v %v", d, err)
	}
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"1s"`, `30`, `0.5`, `-1`, `"x"`, `1e400`, `"9999999999h"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var d Duration
		if err := d.UnmarshalJSON([]byte(s)); err == nil && d < 0 {
			t.Fatalf("%s decoded to negative %v", s, d)
		}
	})
}
