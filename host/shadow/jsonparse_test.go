package shadow

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestParserAgreesWithEncodingJSON checks the parser accepts what json.Valid does.
func TestParserAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range []string{
		``, ` `, `1`, `-`, `-0`, `-01`, `01`, `1.`, `.1`, `1e`, `1e+`, `1E-2`, `0.0e0`, `tru`, `true`, `nul`, `null `,
		`"`, `"\"`, `"\u12"`, `"\u12g4"`, `"\a"`, "\"\x01\"", "\"\xff\"", `"\/"`, `[`, `[]`, `[,]`, `[1,]`, `[1 2]`,
		`{}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":1 "b":2}`, `{"a":1}}`, `[]]`, "\ufeff{}", `[[[[]]]]`,
		strings.Repeat("[", 150) + strings.Repeat("]", 150), strings.Repeat("[", 150) + strings.Repeat("]", 149),
		strings.Repeat(`{"a":`, 150) + "1" + strings.Repeat("}", 150), strings.Repeat(`[{"a":`, 75) + `[1,"x",{},[],null]` + strings.Repeat("}]", 75),
		strings.Repeat(`[{"a":`, 75) + `[1,"x",{},[],null]` + strings.Repeat("}]", 74) + "]]",
	} {
		var p parser
		if got, want := p.parse([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("parse(%q) = %v, json.Valid = %v", s, got, want)
		}
	}
}

func TestNumEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		equal bool
	}{
		{"1", "1.0", true}, {"1", "1e0", true}, {"1", "10e-1", true}, {"1", "0.1e1", true}, {"1", "1E+0", true},
		{"100", "1e2", true}, {"100", "1.00e2", true}, {"0.001", "1e-3", true}, {"-0", "0", true}, {"0", "0.0e99", true},
		{"-1.5", "-15e-1", true}, {"1e007", "1e7", true}, {"12e-1", "1.2", true},
		{"1", "-1", false}, {"1", "2", false}, {"1", "10", false}, {"0.1", "1", false}, {"0", "1e-400", false},
		{"9007199254740993", "9007199254740992", false}, // equal as float64
		{"12345678901234567890123", "1.2345678901234567890123e22", true},
		{"12345678901234567890123", "1.2345678901234567890124e22", false},
		{"1e999999999999999999999", "10e999999999999999999998", true},
		{"1e999999999999999999999", "1e999999999999999999998", false},
		{"1e-999999999999999999999", "0.1e-999999999999999999998", true},
		{"1e999999999999999999999", "1e-999999999999999999999", false},
		{"5e18", "50e17", true}, {"1e0000000000000000000000000001", "10", true},
	} {
		if got := numEqual([]byte(tc.a), []byte(tc.b)); got != tc.equal {
			t.Errorf("numEqual(%s, %s) = %v", tc.a, tc.b, got)
		}
		if got := numEqual([]byte(tc.b), []byte(tc.a)); got != tc.equal {
			t.Errorf("numEqual(%s, %s) = %v", tc.b, tc.a, got)
		}
	}
}

func TestDecodeString(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`plain`, "plain"},
		{`\"\\\/\b\f\n\r\t`, "\"\\/\b\f\n\r\t"},
		{`\u00e9\u0041`, "éA"},
		{`\ud83d\ude00`, "😀"},
		{`\ud83d`, "\ufffd"},
		{`\ud83dx`, "\ufffdx"},
		{`\ud83d\u0041`, "\ufffdA"},
		{`\ude00\ud83d`, "\ufffd\ufffd"},
	} {
		if got := string(decodeString(nil, []byte(tc.raw))); got != tc.want {
			t.Errorf("decodeString(%s) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
