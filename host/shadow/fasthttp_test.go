package shadow_test

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/shadow"
)

// TestFasthttpHeaders checks the wiring the gateway uses: fasthttp's
// PeekAll passed as Response.Header as it is, absent and empty fields told
// apart, and a Capture of the primary outliving its fasthttp.Response.
func TestFasthttpHeaders(t *testing.T) {
	read := func(raw string) *fasthttp.Response {
		r := fasthttp.AcquireResponse()
		if err := r.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			t.Fatal(err)
		}
		return r
	}
	primary := read("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Empty:\r\nX-Multi: a\r\nX-Multi: b\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"b\":2}")
	candidate := read("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-multi: a, b\r\nContent-Length: 16\r\n\r\n{\"b\":2,\"a\":1.00}")
	defer fasthttp.ReleaseResponse(candidate)

	c, err := shadow.NewComparer(shadow.Spec{Status: true, Headers: []string{"content-type", "x-empty", "x-multi"}, Body: shadow.BodyJSON})
	if err != nil {
		t.Fatal(err)
	}
	of := func(r *fasthttp.Response) *shadow.Response {
		return &shadow.Response{Status: r.StatusCode(), Header: r.Header.PeekAll, Body: r.Body(), ContentType: string(r.Header.ContentType())}
	}
	captured := c.Capture(of(primary))
	fasthttp.ReleaseResponse(primary) // the client's response is recycled

	got := c.Diff(captured, of(candidate))
	if len(got) != 1 || got[0] != (shadow.Difference{Path: "header:X-Empty", Kind: shadow.KindMissing, Primary: `""`, Candidate: shadow.Absent}) {
		t.Errorf("Diff = %+v", got)
	}
}
