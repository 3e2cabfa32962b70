package main

import (
	"errors"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	tr, err := newTransformer([]byte(`{"response":[
		{"op":"remove","path":"items.internal_id"},
		{"op":"rename","path":"user.fullName","to":"name"},
		{"op":"add","path":"meta.via","value":"wasmgate"},
		{"op":"move","from":"user.address.city","to":"city"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	in := `{"user":{"fullName":"Ann","address":{"city":"Oslo","zip":"0150"}},"items":[{"id":1,"internal_id":"x"},{"id":2.50,"internal_id":"y"}]}`
	out, changed, err := apply([]byte(in), tr.response)
	want := `{"user":{"name":"Ann","address":{"zip":"0150"}},"items":[{"id":1},{"id":2.50}],"meta":{"via":"wasmgate"},"city":"Oslo"}`
	if err != nil || !changed || string(out) != want {
		t.Fatalf("got %s %v %v\nwant %s", out, changed, err, want)
	}
	// Nothing to do: the body is returned as it was, byte for byte.
	orig := `{ "other" : true }`
	out, changed, err = apply([]byte(orig), tr.response[:2])
	if err != nil || changed || string(out) != orig {
		t.Fatalf("no-op changed the body: %s %v %v", out, changed, err)
	}
	if _, _, err := apply([]byte(`{"a":`), tr.response); !errors.Is(err, errInvalid) {
		t.Fatalf("invalid body: %v", err)
	}
}

func TestIsJSON(t *testing.T) {
	for _, tc := range []struct {
		ct, ce string
		want   bool
	}{
		{"application/json", "", true},
		{"application/json; charset=utf-8", "", true},
		{"application/problem+json", "identity", true},
		{"Application/JSON", "", true},
		{"text/html", "", false},
		{"", "", false},
		{"application/json", "gzip", false},
		{"text/plain; note=json", "", false},
	} {
		if got := isJSON(tc.ct, tc.ce); got != tc.want {
			t.Errorf("isJSON(%q, %q) = %v", tc.ct, tc.ce, got)
		}
	}
}

func TestConfig(t *testing.T) {
	tr, err := newTransformer([]byte(`{"request":[{"op":"remove","path":"a"}],"statuses":[200,201],"max_body":100,"on_invalid":"fail"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !tr.wantStatus(201) || tr.wantStatus(500) || tr.maxBody != 100 || !tr.failInvalid {
		t.Fatalf("%+v", tr)
	}
	all, _ := newTransformer([]byte(`{"response":[{"op":"remove","path":"a"}]}`))
	if !all.wantStatus(503) || all.maxBody != defaultMaxBody {
		t.Fatal("defaults")
	}
	for _, tc := range []struct{ cfg, err string }{
		{`{}`, `no ops: give "request" or "response" a list of ops`},
		{`{"request":[{"op":"nope","path":"a"}]}`, `request[0] (nope): unknown op "nope"`},
		{`{"response":[{"op":"rename","path":"a"}]}`, `response[0] (rename): missing "to"`},
		{`{"response":[{"op":"remove","path":"a"}],"statuses":[42]}`, `"statuses": 42 is not an HTTP status`},
		{`{"response":[{"op":"remove","path":"a"}],"max_body":0}`, `"max_body" must be positive`},
		{`{"response":[{"op":"remove","path":"a"}],"on_invalid":"ignore"}`, `"on_invalid": "ignore": want "skip" or "fail"`},
		{`{"response":[{"op":"remove","path":"a","value":1}]}`, `response[0] (remove): "value" does not apply to this op`},
		{`{"responses":[]}`, `unknown field "responses"`},
	} {
		_, err := newTransformer([]byte(tc.cfg))
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("%s\n got %v\nwant %s", tc.cfg, err, tc.err)
		}
	}
}
