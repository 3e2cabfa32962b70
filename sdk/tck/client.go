package tck

import (
	"encoding/json"
	"net/textproto"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Response is a response with every header value kept.
type Response struct {
	Status  int
	Headers map[string][]string // by canonical name (textproto.CanonicalMIMEHeaderKey)
	Body    []byte
}

// Get returns the first value of the header name, "" if none.
func (r Response) Get(name string) string {
	if v := r.Headers[textproto.CanonicalMIMEHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// JSON decodes the body into v (a pointer), zeroed first: decoding into a
// used map would merge, not replace. A body that is not that JSON fails
// the test.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	reflect.ValueOf(v).Elem().SetZero()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("status %d: body %q is not the expected JSON: %v", r.Status, r.Body, err)
	}
}

// client sends paths as written (percent-encoding intact).
var client = &fasthttp.Client{ReadTimeout: 15 * time.Second, WriteTimeout: 5 * time.Second, DisablePathNormalizing: true}

// Do sends one request, its path as written, with repeatable headers
// (name, value pairs; "Host" sets the Host header), and fails the test if
// no response comes.
func Do(t testing.TB, method, url string, headers []string, body []byte) Response {
	t.Helper()
	r, err := tryDo(method, url, headers, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

// tryDo is Do that returns the error, for goroutines other than the test's.
func tryDo(method, url string, headers []string, body []byte) (Response, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(method)
	req.SetRequestURI(url)
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Host") {
			req.Header.SetHost(headers[i+1])
			req.UseHostHeader = true
			continue
		}
		req.Header.Add(headers[i], headers[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	if err := client.Do(req, resp); err != nil {
		return Response{}, err
	}
	r := Response{Status: resp.StatusCode(), Headers: map[string][]string{}, Body: append([]byte(nil), resp.Body()...)}
	for k, v := range resp.Header.All() {
		name := textproto.CanonicalMIMEHeaderKey(string(k))
		r.Headers[name] = append(r.Headers[name], string(v))
	}
	return r, nil
}

// EqJSON compares a decoded JSON value (or JSON text) with want, as
// values: key order and spacing do not matter.
func EqJSON(t testing.TB, what string, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %s: %v", what, want, err)
	}
	if s, ok := got.(string); ok {
		if err := json.Unmarshal([]byte(s), &got); err != nil {
			t.Fatalf("%s: %q is not JSON: %v", what, s, err)
		}
	}
	if !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		t.Errorf("%s:\n got %s\nwant %s", what, gb, want)
	}
}

// expectCodes checks numeric fields of a decoded report.
func expectCodes(t *testing.T, what string, r map[string]any, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		got, ok := r[k].(float64)
		if !ok || got != v {
			t.Errorf("%s: %s = %v, want %v", what, k, r[k], v)
		}
	}
}

// findLog returns the first log line for which match is true, nil if none.
func findLog(lines []map[string]any, match func(map[string]any) bool) map[string]any {
	for _, m := range lines {
		if match(m) {
			return m
		}
	}
	return nil
}

func str(v any) string { s, _ := v.(string); return s }

// waitFor polls cond until it holds, failing the test after 10 s (a bound
// against hanging, not a timing assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
