package main

import (
	"errors"
	"strings"
	"testing"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{in: `{"check":"inspect"}`},
		{in: `{"check":"chain","tag":"A","stop":true}`},
		{in: `{"check":"outbound","batch":[{"url":"upstream://a/x","timeout_ms":50}]}`},
		{in: `{"check":"inspect","echo":{"nested":[1,"two"]}}`},
		{in: `{}`, err: `missing "check"`},
		{in: `{"check":"nope"}`, err: `unknown check "nope"`},
		{in: `{"check":"chain"}`, err: `needs a "tag"`},
		{in: `{"check":"outbound"}`, err: `needs a "batch"`},
		{in: `{"check":"outbound","batch":[{}]}`, err: `batch[0]: missing "url"`},
		{in: `{"check":"outbound","batch":[{"url":"x","timeout_ms":-1}]}`, err: `negative "timeout_ms"`},
		{in: `{"check":"inspect","big_body":-1}`, err: `negative`},
		{in: `{"check":"inspect","reject":"told to"}`, err: "told to"},
		{in: `{"check":"inspect","unknown":1}`, err: `unknown field "unknown"`},
	} {
		_, err := parseConfig([]byte(tc.in))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %v, want an error containing %q", tc.in, err, tc.err)
		}
	}
}

func TestEncodeGets(t *testing.T) {
	b := encodeGets(2, "u")
	// count + 2 × (timeout, method_len, "GET", url_len, "u", headers, body_len)
	if want := 4 + 2*(4+4+3+4+1+4+4); len(b) != want || b[0] != 2 {
		t.Fatalf("encoding of %d bytes (count byte %d), want %d", len(b), b[0], want)
	}
}

func TestCode(t *testing.T) {
	if code(nil) != 0 {
		t.Fatal("nil error is not 0")
	}
	// Natively every host function answers NOT_ALLOWED.
	if c := code(wasmgate.KVDelete("k")); c != -3 {
		t.Fatalf("code = %d, want -3", c)
	}
}

func TestCodeOfForeignError(t *testing.T) {
	if c := code(errors.New("not from the host")); c != -100 {
		t.Fatalf("code = %d, want -100", c)
	}
}
