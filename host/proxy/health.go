package proxy

import (
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/host/config"
)

// healthLoop probes every target now and then on every interval until Close.
func (u *Upstream) healthLoop(hc config.HealthCheck) {
	defer close(u.done)
	path := hc.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	interval := orDefault(hc.Interval.D(), 5*time.Second)
	timeout := orDefault(hc.Timeout.D(), time.Second)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for _, t := range u.pool.Load().targets {
			wg.Go(func() { u.probe(t, string(u.scheme)+"://"+t.addr+path, timeout, &hc) })
		}
		wg.Wait()
		select {
		case <-u.stop:
			return
		case <-tick.C:
		}
	}
}

// probe sends one health check: a 2xx or 3xx answer in time is a success.
func (u *Upstream) probe(t *target, uri string, timeout time.Duration, hc *config.HealthCheck) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(uri)
	k := u.base // the pool of the requests that keep the upstream's timeouts
	k.body = u.maxBody.Load()
	err := t.client(k).DoTimeout(req, resp, timeout)
	if code := resp.StatusCode(); err == nil && code >= 200 && code < 400 {
		t.failStreak = 0
		t.okStreak++
		if !t.healthy.Load() && t.okStreak >= max(hc.HealthyThreshold, 1) {
			t.healthy.Store(true)
			u.log.Info("target healthy", "target", t.addr)
		}
		return
	}
	t.okStreak = 0
	t.failStreak++
	if t.healthy.Load() && t.failStreak >= max(hc.UnhealthyThreshold, 1) {
		t.healthy.Store(false)
		if err == nil {
			u.log.Warn("target unhealthy", "target", t.addr, "status", resp.StatusCode())
		} else {
			u.log.Warn("target unhealthy", "target", t.addr, "err", err)
		}
	}
}
