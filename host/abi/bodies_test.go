package abi

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// The body rules of sdk/ABI.md section 4, "Bodies: HEAD and statuses
// without one", function by function. host/server's bodies_e2e_test.go
// checks what reaches the client through a real gateway.

// wire is resp as the gateway's server writes it to a client: with
// skipBody (a HEAD request) no body.
func wire(t *testing.T, resp *fasthttp.Response, skipBody bool) string {
	t.Helper()
	var out fasthttp.Response
	resp.CopyTo(&out)
	out.SkipBody = skipBody
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := out.Write(w); err != nil {
		t.Fatal(err)
	}
	_ = w.Flush()
	return b.String()
}

// respond puts h in on_response with a response of status and body.
func respond(t *testing.T, status int, body string) *harness {
	t.Helper()
	h := newHarness(t, PhaseResponse)
	h.c.Resp.SetStatusCode(status)
	if body != "" {
		setResponseBody(h.c.Resp, []byte(body))
	}
	return h
}

func TestBodySetOnBodylessStatus(t *testing.T) {
	for _, status := range []int{204, 304} {
		h := respond(t, status, "")
		p, n := h.put("a body")
		if r := h.call32("body_set", KindResponse, p, n); r != ErrNotAllowed {
			t.Errorf("%d: body_set = %d, want NOT_ALLOWED", status, r)
		}
		if r := h.call32("body_set", KindResponse, 0, 0); r != 0 {
			t.Errorf("%d: empty body_set = %d, want 0", status, r)
		}
		if r := int64(h.call("body_get", KindResponse, 0, 0, 0)); r != 0 {
			t.Errorf("%d: body_get = %d", status, r)
		}
		if len(h.c.Resp.Body()) != 0 || h.c.Resp.StatusCode() != status {
			t.Errorf("%d: the response changed: %d %q", status, h.c.Resp.StatusCode(), h.c.Resp.Body())
		}
		if w := wire(t, h.c.Resp, false); strings.Contains(w, "Content-Length") || !strings.HasSuffix(w, "\r\n\r\n") {
			t.Errorf("%d: on the wire %q", status, w)
		}
		// The request's body is not the response's: it stays writable.
		h = newHarness(t, PhaseRequest)
		h.c.Resp.SetStatusCode(status)
		if r := h.call32("body_set", KindRequest, p, n); r != 0 {
			t.Errorf("%d: request body_set = %d", status, r)
		}
	}
}

func TestSetStatusToBodyless(t *testing.T) {
	for _, tt := range []struct {
		status int
		wire   string // the status line and Content-Length the client gets
	}{
		{204, "HTTP/1.1 204 No Content\r\n"},
		// A 304's Content-Length is the representation's (RFC 9110 section
		// 8.6): the body the plugin set.
		{304, "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n"},
	} {
		h := respond(t, 200, "upstream body")
		p, n := h.put("plugin!")
		if r := h.call32("body_set", KindResponse, p, n); r != 0 {
			t.Fatal(r)
		}
		if r := h.call32("response_set_status", i32arg(int32(tt.status))); r != 0 {
			t.Fatalf("response_set_status(%d) = %d", tt.status, r)
		}
		if r := int64(h.call("body_get", KindResponse, 0, 0, 0)); r != 0 {
			t.Errorf("%d: body_get after the status = %d, want 0", tt.status, r)
		}
		if r := h.call32("body_set", KindResponse, p, n); r != ErrNotAllowed {
			t.Errorf("%d: body_set after the status = %d", tt.status, r)
		}
		w := wire(t, h.c.Resp, false)
		got := strings.Split(w, "\r\n")
		lines := got[0] + "\r\n"
		for _, l := range got[1:] {
			if strings.HasPrefix(l, "Content-Length:") {
				lines += l + "\r\n"
			}
		}
		if lines != tt.wire || !strings.HasSuffix(w, "\r\n\r\n") {
			t.Errorf("%d: on the wire %q", tt.status, w)
		}
	}
}

func TestSetStatusFromBodyless(t *testing.T) {
	for _, from := range []int{204, 304} {
		// A response announcing a representation of 99 bytes (as a 304 may).
		h := respond(t, 200, "")
		h.c.Resp.Header.SetContentLength(99)
		h.c.Resp.SetStatusCode(from)
		if r := h.call32("response_set_status", 200); r != 0 {
			t.Fatal(r)
		}
		if cl := h.c.Resp.Header.ContentLength(); cl != 0 || len(h.c.Resp.Body()) != 0 {
			t.Errorf("from %d: Content-Length %d, body %q", from, cl, h.c.Resp.Body())
		}
		// Also on a HEAD request, where nothing corrects it on the way out.
		if w := wire(t, h.c.Resp, true); !strings.Contains(w, "Content-Length: 0\r\n") {
			t.Errorf("from %d: HEAD answer %q", from, w)
		}
		p, n := h.put("filled")
		if r := h.call32("body_set", KindResponse, p, n); r != 0 || string(h.c.Resp.Body()) != "filled" {
			t.Errorf("from %d: body_set after the status = %d", from, r)
		}
	}
	// Between two statuses with a body, or two without, nothing moves.
	h := respond(t, 200, "kept")
	if r := h.call32("response_set_status", 404); r != 0 || string(h.c.Resp.Body()) != "kept" {
		t.Errorf("200 -> 404: %d %q", r, h.c.Resp.Body())
	}
	h = respond(t, 200, "")
	h.c.Resp.Header.SetContentLength(99)
	h.c.Resp.SetStatusCode(304)
	if r := h.call32("response_set_status", 204); r != 0 || len(h.c.Resp.Body()) != 0 || h.c.Resp.Header.ContentLength() != 99 {
		t.Errorf("304 -> 204: %d %q, Content-Length %d", r, h.c.Resp.Body(), h.c.Resp.Header.ContentLength())
	}
}

func TestInformationalStatusRefused(t *testing.T) {
	h := respond(t, 200, "body")
	for _, s := range []int32{100, 101, 103, 199} {
		if r := h.call32("response_set_status", i32arg(s)); r != ErrBadArgument {
			t.Errorf("response_set_status(%d) = %d", s, r)
		}
		h := newHarness(t, PhaseRequest)
		if r := h.call32("send_response", i32arg(s), 0, 0); r != ErrBadArgument || h.c.LocalResponse {
			t.Errorf("send_response(%d) = %d", s, r)
		}
	}
	if h.c.Resp.StatusCode() != 200 || string(h.c.Resp.Body()) != "body" {
		t.Errorf("the response changed: %d %q", h.c.Resp.StatusCode(), h.c.Resp.Body())
	}
}

func TestSendResponseBodyless(t *testing.T) {
	for _, status := range []int32{204, 304} {
		h := newHarness(t, PhaseRequest)
		p, n := h.put("a body")
		if r := h.call32("send_response", i32arg(status), p, n); r != ErrBadArgument || h.c.LocalResponse {
			t.Errorf("send_response(%d, body) = %d, local %v", status, r, h.c.LocalResponse)
		}
		// One with a body first, then the bodyless one: nothing of the first
		// is left, Content-Length included.
		if r := h.call32("send_response", 200, p, n); r != 0 {
			t.Fatal(r)
		}
		if r := h.call32("send_response", i32arg(status), 0, 0); r != 0 || !h.c.LocalResponse {
			t.Errorf("send_response(%d, empty) = %d", status, r)
		}
		if r := int64(h.call("body_get", KindResponse, 0, 0, 0)); r != 0 {
			t.Errorf("%d: body_get = %d", status, r)
		}
		if w := wire(t, h.c.Resp, false); strings.Contains(w, "Content-Length") || !strings.HasSuffix(w, "\r\n\r\n") {
			t.Errorf("%d: on the wire %q", status, w)
		}
	}
}

func TestBodiesOnHead(t *testing.T) {
	// The upstream's answer to HEAD: its Content-Length, no body.
	h := respond(t, 200, "")
	h.c.Req = parseRequest(t, "HEAD /x HTTP/1.1\r\nHost: example.com\r\n\r\n")
	h.c.Resp.Header.Set("Content-Length", "1234")
	if r := int64(h.call("body_get", KindResponse, 0, 0, 0)); r != 0 {
		t.Errorf("body_get = %d, want 0", r)
	}
	if w := wire(t, h.c.Resp, true); !strings.Contains(w, "Content-Length: 1234\r\n") || !strings.HasSuffix(w, "\r\n\r\n") {
		t.Errorf("untouched: %q", w)
	}
	// body_set is the body a GET would be sent: its length, never its bytes.
	p, n := h.put("the GET body")
	if r := h.call32("body_set", KindResponse, p, n); r != 0 {
		t.Fatalf("body_set = %d", r)
	}
	if r := int64(h.call("body_get", KindResponse, 0, 0, 0)); r != int64(n) {
		t.Errorf("body_get after body_set = %d, want %d", r, n)
	}
	if w := wire(t, h.c.Resp, true); !strings.Contains(w, "Content-Length: 12\r\n") || !strings.HasSuffix(w, "\r\n\r\n") {
		t.Errorf("after body_set: %q", w)
	}
	// send_response likewise.
	h = newHarness(t, PhaseRequest)
	h.c.Req = parseRequest(t, "HEAD /x HTTP/1.1\r\nHost: example.com\r\n\r\n")
	p, n = h.put("local")
	if r := h.call32("send_response", 200, p, n); r != 0 {
		t.Fatal(r)
	}
	if w := wire(t, h.c.Resp, true); !strings.Contains(w, "Content-Length: 5\r\n") || !strings.HasSuffix(w, "\r\n\r\n") {
		t.Errorf("send_response: %q", w)
	}
}
