package config

import (
	"strings"
	"testing"
	"time"
)

func TestPoolIdleTimeout(t *testing.T) {
	const head = `
plugins:
  - name: p
    module: p.wasm
`
	tests := []struct {
		name string
		pool string // the pool line, "" for none
		want time.Duration
		err  string // FILE:LINE:COL prefix and message, "" for valid
	}{
		{"default", ``, 30 * time.Second, ""},
		{"set", `    pool: {idle_timeout: 5m}`, 5 * time.Minute, ""},
		{"zero is never", `    pool: {idle_timeout: 0s}`, 0, ""},
		{"with min", `    pool: {min_instances: 4, idle_timeout: 250ms}`, 250 * time.Millisecond, ""},
		{"negative", `    pool: {idle_timeout: -1s}`, 0, `c.yaml:5:26: idle_timeout must not be negative, got -1s`},
		{"not a duration", `    pool: {idle_timeout: soon}`, 0, `c.yaml:5:26: bad duration "soon" for idle_timeout`},
		{"unitless", `    pool: {idle_timeout: 30}`, 0, `c.yaml:5:26: bad duration "30" for idle_timeout`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("c.yaml", []byte(head+tc.pool+"\n"))
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error, want %q", tc.err)
				}
				if !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %q, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Plugins[0].Pool.IdleTimeout.D(); got != tc.want {
				t.Errorf("idle_timeout = %v, want %v", got, tc.want)
			}
		})
	}
}
