package tck

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Upstream is the kit's backend: a real fasthttp server on 127.0.0.1.
// By default it echoes the whole request (every header value and the
// body) as an Echo in JSON, with a few response headers for plugins to
// edit (X-Upstream: its id, X-Resp-Multi: a, X-Upstream-Remove: gone).
// Besides, by path:
//
//	…/hold…        held until the test ends (at most 10 s), then echoed
//	…/status/NNN…  answered NNN with {"status":NNN}
//	/part…         answered {"from": id, "uri": the request URI, "x_part": X-Part}
//	…/doc          answered DocBody
//
// Run starts two of them (ids "a" and "b"); a host's own plugin tests may
// start more.
type Upstream struct {
	// ID is the upstream's name in its answers (Echo.ID, X-Upstream).
	ID string
	// Addr is its host:port on 127.0.0.1.
	Addr    string
	hits    atomic.Int64
	release chan struct{}
}

// Echo is what an Upstream saw, as it answers it.
type Echo struct {
	ID      string              `json:"id"`
	Method  string              `json:"method"`
	URI     string              `json:"uri"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// DocBody is the JSON document an Upstream answers on a path ending in
// /doc, for plugins that reshape JSON.
const DocBody = `{"user":{"id":7,"fullName":"Ada Lovelace","email":"ada@example.test"},` +
	`"items":[{"id":1,"text":"first","internal_id":"x1","likes":3,"author":"ada"},` +
	`{"id":2,"text":"second","internal_id":"x2","likes":5,"author":"bob"}],"debug":true}`

// quietLogger drops fasthttp's server log (requests the tests send broken
// on purpose).
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// StartUpstream starts an Upstream named id; it stops when the test ends.
func StartUpstream(t testing.TB, id string) *Upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &Upstream{ID: id, Addr: ln.Addr().String(), release: make(chan struct{})}
	srv := &fasthttp.Server{Handler: u.handle, Logger: quietLogger{}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	t.Cleanup(func() { close(u.release) }) // runs first: held requests end before Shutdown waits for them
	return u
}

// Hits is the number of requests the upstream received so far.
func (u *Upstream) Hits() int64 { return u.hits.Load() }

func (u *Upstream) handle(ctx *fasthttp.RequestCtx) {
	u.hits.Add(1)
	path := string(ctx.Path())
	switch {
	case strings.Contains(path, "/hold"):
		select {
		case <-u.release:
		case <-time.After(10 * time.Second):
		}
	case strings.Contains(path, "/status/"):
		var status int
		fmt.Sscanf(path[strings.Index(path, "/status/"):], "/status/%d", &status)
		ctx.SetStatusCode(status)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(fmt.Sprintf(`{"status":%d}`, status))
		return
	case strings.HasPrefix(path, "/part"):
		ctx.SetContentType("application/json")
		b, _ := json.Marshal(map[string]string{"from": u.ID, "uri": string(ctx.RequestURI()), "x_part": string(ctx.Request.Header.Peek("X-Part"))})
		ctx.SetBody(b)
		return
	case strings.HasSuffix(path, "/doc"):
		ctx.SetContentType("application/json")
		ctx.SetBodyString(DocBody)
		return
	}
	e := Echo{ID: u.ID, Method: string(ctx.Method()), URI: string(ctx.RequestURI()), Host: string(ctx.Host()),
		Headers: map[string][]string{}, Body: string(ctx.PostBody())}
	for k, v := range ctx.Request.Header.All() {
		e.Headers[string(k)] = append(e.Headers[string(k)], string(v))
	}
	b, _ := json.Marshal(e)
	ctx.Response.Header.Set("X-Upstream", u.ID)
	ctx.Response.Header.Add("X-Resp-Multi", "a")
	ctx.Response.Header.Set("X-Upstream-Remove", "gone")
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// DeadAddr returns a loopback address nothing listens on.
func DeadAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
