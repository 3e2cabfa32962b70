package abi

import (
	"strings"
	"testing"
)

func TestIsToken(t *testing.T) {
	// RFC 9110 section 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" /
	// "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
	for c := range 256 {
		want := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", byte(c)) >= 0
		if got := IsToken([]byte{byte(c)}); got != want {
			t.Errorf("IsToken(%q) = %v", byte(c), got)
		}
		if got := IsToken(string(rune(c))); c < 0x80 && got != want {
			t.Errorf("IsToken(string %q) = %v", byte(c), got)
		}
	}
	for _, s := range []string{"", "a b", "X-Ok\r", "é"} {
		if IsToken(s) || IsToken([]byte(s)) {
			t.Errorf("IsToken(%q) = true", s)
		}
	}
	if !IsToken("X-Request-Id") || !IsToken([]byte("GET")) {
		t.Error("a plain header name is not a token")
	}
	if n := testing.AllocsPerRun(100, func() { IsToken("Content-Type") }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestValidMetricName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"requests_total", true}, {"a0_9", true}, {"a" + strings.Repeat("b", 62), true},
		{"", false}, {"a" + strings.Repeat("b", 63), false}, {"0a", false}, {"_a", false},
		{"Abc", false}, {"a-b", false}, {"a.b", false}, {"a b", false}, {"aé", false},
	}
	for _, tt := range tests {
		if got := ValidMetricName(tt.name); got != tt.ok {
			t.Errorf("ValidMetricName(%q) = %v", tt.name, got)
		}
		if got := ValidMetricName([]byte(tt.name)); got != tt.ok {
			t.Errorf("ValidMetricName([]byte %q) = %v", tt.name, got)
		}
	}
}
