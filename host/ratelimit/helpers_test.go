package ratelimit

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is an injected clock: time moves only when a test says so.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(1_700_000_000 * int64(time.Second))
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// local returns a Local on the clock without a janitor: only decisions
// sweep, deterministically.
func (c *fakeClock) local(maxKeys int) *Local {
	return NewLocal(LocalOptions{Now: c.Now, MaxKeys: maxKeys, SweepInterval: -1})
}

// newLocal returns a default Local closed when the test ends.
func newLocal(t testing.TB) *Local {
	l := NewLocal(LocalOptions{})
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// sfItem is one member of a Structured Field List whose items are Strings
// with Integer parameters: all the RateLimit headers use.
type sfItem struct {
	name   string
	params map[string]int64
	order  []string
}

// parseSFList parses a Structured Field List (RFC 9651 §4.2.1) restricted to
// String items with Integer parameters, strictly: what a client would see.
func parseSFList(s string) ([]sfItem, error) {
	var out []sfItem
	i := 0
	for i < len(s) {
		if s[i] != '"' {
			return nil, fmt.Errorf("at %d: want '\"', got %q", i, s[i])
		}
		i++
		var name []byte
		for {
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated string")
			}
			c := s[i]
			i++
			if c == '\\' {
				if i >= len(s) || s[i] != '"' && s[i] != '\\' {
					return nil, fmt.Errorf("at %d: bad escape", i)
				}
				name = append(name, s[i])
				i++
				continue
			}
			if c == '"' {
				break
			}
			if c < 0x20 || c > 0x7e {
				return nil, fmt.Errorf("at %d: byte %#x in a string", i-1, c)
			}
			name = append(name, c)
		}
		it := sfItem{name: string(name), params: map[string]int64{}}
		for i < len(s) && s[i] == ';' {
			i++
			j := i
			for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= '0' && s[i] <= '9' && i > j || s[i] == '_' || s[i] == '-' || s[i] == '.' || s[i] == '*') {
				i++
			}
			if i == j || s[j] < 'a' || s[j] > 'z' {
				return nil, fmt.Errorf("at %d: bad parameter key", j)
			}
			key := s[j:i]
			if i >= len(s) || s[i] != '=' {
				return nil, fmt.Errorf("at %d: parameter %s without integer value", i, key)
			}
			i++
			j = i
			if i < len(s) && s[i] == '-' {
				i++
			}
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
			digits := s[j:i]
			if d := trimMinus(digits); d == "" || len(d) > 15 {
				return nil, fmt.Errorf("at %d: bad integer %q", j, digits)
			}
			v, err := strconv.ParseInt(digits, 10, 64)
			if err != nil {
				return nil, err
			}
			if _, dup := it.params[key]; dup {
				return nil, fmt.Errorf("parameter %s twice", key)
			}
			it.params[key] = v
			it.order = append(it.order, key)
		}
		out = append(out, it)
		if i == len(s) {
			break
		}
		// OWS "," OWS; a trailing comma is an error.
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i >= len(s) || s[i] != ',' {
			return nil, fmt.Errorf("at %d: want ','", i)
		}
		i++
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			return nil, fmt.Errorf("trailing comma")
		}
	}
	return out, nil
}

func trimMinus(s string) string {
	if len(s) > 0 && s[0] == '-' {
		return s[1:]
	}
	return s
}
