package server

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/admin"
	"github.com/wasmgate/wasmgate/host/config"
	"github.com/wasmgate/wasmgate/host/metrics"
	"github.com/wasmgate/wasmgate/host/proxy"
	"github.com/wasmgate/wasmgate/host/shadow"
)

// routeShadow mirrors a share of a route's requests to a candidate
// upstream and compares its answers with the primary'tc. The copy goes out
// after the primary answered, from a goroutine of its own: the client's
// answer never waits for it, and at most max_in_flight copies of the
// route are out at once (the others are dropped and counted).
type routeShadow struct {
	cfg      *config.Shadow
	up       *managedUpstream
	compare  *shadow.Comparer
	gate     *shadow.Gate
	rec      *shadow.Recorder // kept across reloads: the route's counts and recent mismatches
	timeouts config.Timeouts
	noRetry  *config.Retries
}

// newRouteShadow compiles a route's shadow. Its counts, recent mismatches
// and in-flight bound carry over from prev, the route's shadow in the
// previous snapshot: a reload neither resets them nor lets copies of the
// old snapshot go uncounted against max_in_flight.
func newRouteShadow(cfg *config.Shadow, up *managedUpstream, prev *routeShadow) (*routeShadow, error) {
	cmp, err := shadow.NewComparer(cfg.Compare.Spec())
	if err != nil {
		return nil, err
	}
	rec, gate := shadow.NewRecorder(), shadow.NewGate(cfg.MaxInFlight)
	if prev != nil {
		rec = prev.rec
		if prev.cfg.MaxInFlight == cfg.MaxInFlight {
			gate = prev.gate
		}
	}
	t := cfg.Timeout
	return &routeShadow{
		cfg: cfg, up: up, compare: cmp, gate: gate, rec: rec,
		timeouts: config.Timeouts{Connect: min(t, config.Duration(2*time.Second)), Read: t, Write: t, Total: t},
		noRetry:  &config.Retries{},
	}, nil
}

// mirror sends a copy of the request the primary answered to the
// candidate, when the request is one to mirror and there is room. It copies
// the request and the primary's answer (what is compared of it) before
// returning: the client's request and response are recycled once it is
// answered.
func (rq *request) mirror(sh *routeShadow) {
	req := &rq.ctx.Request
	if sh.cfg.Percent < 100 && rand.IntN(100) >= sh.cfg.Percent {
		return
	}
	if !sh.cfg.UnsafeMethods && !shadow.Safe(req.Header.Method()) ||
		int64(len(req.Body())) > int64(sh.cfg.MaxBodyBytes) {
		sh.rec.Skipped()
		return
	}
	if !sh.gate.TryAcquire() {
		sh.rec.Dropped()
		return
	}
	resp := &rq.ctx.Response
	primary := sh.compare.Capture(&shadow.Response{Status: resp.StatusCode(), Header: resp.Header.PeekAll,
		Body: resp.Body(), ContentType: string(resp.Header.ContentType())})
	copyReq := fasthttp.AcquireRequest()
	req.CopyTo(copyReq)
	go sh.send(copyReq, primary, string(resp.Header.ContentEncoding()))
}

// send runs one shadow exchange and records how it compared. Bodies are
// compared decoded (gzip, deflate), in this goroutine: the two upstreams
// may compress differently, or one not at all.
func (sh *routeShadow) send(req *fasthttp.Request, primary *shadow.Response, primaryEncoding string) {
	defer sh.gate.Release()
	defer fasthttp.ReleaseRequest(req)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	sh.rec.Sent()
	x := &proxy.Exchange{Req: req, Resp: resp, Timeouts: sh.timeouts, Retries: sh.noRetry}
	if err := sh.up.Do(x); err != nil {
		sh.rec.Failed(err)
		return
	}
	limit := int(sh.cfg.MaxBodyBytes)
	primary.Body = decoded(primaryEncoding, primary.Body, limit)
	candidate := &shadow.Response{Status: resp.StatusCode(), Header: resp.Header.PeekAll,
		Body: decoded(string(resp.Header.ContentEncoding()), resp.Body(), limit), ContentType: string(resp.Header.ContentType())}
	sh.rec.Compared(req.Header.Method(), req.URI().Path(), primary.Status, candidate.Status, sh.compare.Diff(primary, candidate))
}

// ShadowSummary is one route's shadow in GET /traffic.
type ShadowSummary struct {
	Route    string        `json:"route"`
	Upstream string        `json:"upstream"`
	Percent  int           `json:"percent"`
	Counts   shadow.Counts `json:"counts"`
}

// ShadowView is GET /routes/NAME/shadow: the counts and the latest
// mismatching pairs with their differences.
type ShadowView struct {
	Route    string `json:"route"`
	Upstream string `json:"upstream"`
	Percent  int    `json:"percent"`
	InFlight int    `json:"in_flight"`
	shadow.Report
}

func (tc *trafficControl) shadowEndpoints() []admin.Endpoint {
	return []admin.Endpoint{{Method: "GET", Path: "/routes/{name}/shadow", Handler: admin.JSON(func(ctx *fasthttp.RequestCtx) (ShadowView, error) {
		name := admin.Param(ctx, "name")
		for _, r := range tc.current.Load().routes {
			if r.name == name && r.shadow != nil {
				sh := r.shadow
				return ShadowView{Route: name, Upstream: sh.cfg.Upstream, Percent: sh.cfg.Percent, InFlight: sh.gate.InFlight(), Report: sh.rec.Snapshot()}, nil
			}
		}
		return ShadowView{}, &admin.Error{Status: http.StatusNotFound, Code: "no_shadow", Message: "no route " + name + " with a shadow"}
	})}}
}

func (tc *trafficControl) shadowSummaries(snap *snapshot) []ShadowSummary {
	out := []ShadowSummary{}
	for _, r := range snap.routes {
		if sh := r.shadow; sh != nil {
			out = append(out, ShadowSummary{Route: r.name, Upstream: sh.cfg.Upstream, Percent: sh.cfg.Percent, Counts: sh.rec.Counts()})
		}
	}
	return out
}

// shadowStats feeds wasmgate_shadow_requests_total.
func (tc *trafficControl) shadowStats() []metrics.ShadowStats {
	snap := tc.current.Load()
	if snap == nil {
		return nil
	}
	var out []metrics.ShadowStats
	for _, r := range snap.routes {
		if sh := r.shadow; sh != nil {
			c := sh.rec.Counts()
			out = append(out, metrics.ShadowStats{Route: r.name, Sent: c.Sent, Matches: c.Matches, Mismatches: c.Mismatches,
				Dropped: c.Dropped, Errors: c.Errors, Skipped: c.Skipped})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Route < out[j].Route })
	return out
}

// decoded is body decoded from its Content-Encoding (gzip or deflate), at
// most limit bytes of it; body itself for any other encoding, or when it
// does not decode.
func decoded(encoding string, body []byte, limit int) []byte {
	var r io.ReadCloser
	var err error
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "gzip", "x-gzip":
		r, err = gzip.NewReader(bytes.NewReader(body))
	case "deflate":
		r = flate.NewReader(bytes.NewReader(body))
	default:
		return body
	}
	if err != nil {
		return body
	}
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, int64(limit)))
	if err != nil {
		return body
	}
	return out
}
