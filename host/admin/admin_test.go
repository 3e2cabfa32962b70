package admin

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

type answer struct {
	Name string `json:"name"`
}

func TestRouter(t *testing.T) {
	a, err := New("secret",
		Endpoint{Method: "GET", Path: "/things", Handler: JSON(func(*fasthttp.RequestCtx) ([]string, error) { return []string{"a"}, nil })},
		Endpoint{Method: "PUT", Path: "/things/{name}", Handler: JSON(func(ctx *fasthttp.RequestCtx) (answer, error) {
			return answer{Param(ctx, "name")}, nil
		})},
		Endpoint{Method: "DELETE", Path: "/things/{name}", Handler: JSON(func(ctx *fasthttp.RequestCtx) (answer, error) {
			return answer{}, &Error{Status: 409, Code: "in_use", Message: Param(ctx, "name") + " is used"}
		})},
		Endpoint{Method: "POST", Path: "/things/{name}/fail", Handler: JSON(func(*fasthttp.RequestCtx) (answer, error) {
			return answer{}, errors.New("boom")
		})},
		Endpoint{Method: "GET", Path: "/files/…", Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString(string(ctx.Path())) }},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path, token string
		status              int
		body, allow         string
	}{
		{"GET", "/things", "secret", 200, `"a"`, ""},
		{"GET", "/things", "wrong", 401, `"unauthorized"`, ""},
		{"GET", "/things", "", 401, `"unauthorized"`, ""},
		{"PUT", "/things/x1", "secret", 200, `"name": "x1"`, ""},
		{"DELETE", "/things/x2", "secret", 409, `"message": "x2 is used"`, ""},
		{"GET", "/things/x3", "secret", 405, `"method_not_allowed"`, "PUT, DELETE"},
		{"PUT", "/things/", "secret", 405, `"method_not_allowed"`, "GET"}, // "/things/" is "/things"
		{"PUT", "/things/x4/", "secret", 200, `"name": "x4"`, ""},
		{"GET", "/things/", "secret", 200, `"a"`, ""},
		{"PUT", "/things/a/b", "secret", 404, `"not_found"`, ""},
		{"POST", "/things/x/fail", "secret", 500, `"message": "boom"`, ""},
		{"GET", "/files/a/b", "secret", 200, "/files/a/b", ""},
		{"GET", "/files", "secret", 404, `"not_found"`, ""},
		{"GET", "/nowhere", "secret", 404, `"not_found"`, ""},
	} {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod(tc.method)
		ctx.Request.SetRequestURI(tc.path)
		if tc.token != "" {
			ctx.Request.Header.Set("Authorization", "Bearer "+tc.token)
		}
		a.Handle(&ctx)
		if ctx.Response.StatusCode() != tc.status || !strings.Contains(string(ctx.Response.Body()), tc.body) ||
			string(ctx.Response.Header.Peek("Allow")) != tc.allow {
			t.Errorf("%s %s: %d %s (Allow %q); want %d with %s (Allow %q)", tc.method, tc.path, ctx.Response.StatusCode(),
				ctx.Response.Body(), ctx.Response.Header.Peek("Allow"), tc.status, tc.body, tc.allow)
		}
	}
	if _, err := New("t", Endpoint{Method: "GET", Path: "/a", Handler: a.Handle}, Endpoint{Method: "GET", Path: "/a", Handler: a.Handle}); err == nil {
		t.Error("an endpoint registered twice was accepted")
	}
}

// TestList: only a multi-error itself is split; one wrapped with context
// stays one message.
func TestList(t *testing.T) {
	joined := errors.Join(errors.New("a"), errors.New("b"))
	if got := List(joined); len(got) != 2 {
		t.Errorf("List(join) = %q", got)
	}
	wrapped := fmt.Errorf("gw.yaml:3:4: route %q: %w", "r", joined)
	if got := List(wrapped); len(got) != 1 || !strings.HasPrefix(got[0], "gw.yaml:3:4: ") {
		t.Errorf("List(wrapped) = %q", got)
	}
}
