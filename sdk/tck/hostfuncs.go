package tck

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The subtests of Run, in its order. Each gets the gateway (g) and the
// upstreams (a, b) it needs from the conformance under test.

// inspect drives /inspect: on_request reads and edits the request
// (hostcheck's check "inspect"), on_response reads the response and the
// request as sent, and the exact values and codes the host gave come back in
// the response.
func (cf *conformance) inspect(t *testing.T) {
	g := cf.g
	before := time.Now().UnixNano()
	r := Do(t, "POST", g.URL("/inspect/a%20b/./c%2a?q=v+w&x=1"), []string{
		"X-Probe", "p", "X-Multi", "m1", "X-Multi", "m2", "X-Set", "s1", "X-Set", "s2",
		"X-Remove", "r", "X-Set-Path", "/new/p%20ath?n=1",
	}, []byte("0123456789"))
	after := time.Now().UnixNano()
	if r.Status != 203 {
		t.Fatalf("status %d (want the 203 on_response set): %s", r.Status, r.Body)
	}
	var rep struct {
		Request  map[string]any `json:"request"`
		Response map[string]any `json:"response"`
	}
	r.JSON(t, &rep)
	q, p := rep.Request, rep.Response

	// Reads of the request in on_request.
	for k, want := range map[string]any{
		"method": "POST", "path": "/inspect/a%20b/c%2A", "query": "q=v+w&x=1", "query_param_q": "v w",
		"client_ip": "127.0.0.1", "header_probe": "p", "header_probe_found": true, "header_absent_found": false,
		"body": "0123456789", "path_after": "/new/p%20ath", "query_after": "n=1", "removed_found": false,
		"config":     `{"check":"inspect","big_body":70000,"echo":{"nested":[1,"two"]}}`,
		"config_get": `{"check":"inspect","big_body":70000,"echo":{"nested":[1,"two"]}}`,
	} {
		if q[k] != want {
			t.Errorf("on_request %s = %#v, want %#v", k, q[k], want)
		}
	}
	EqJSON(t, "header_values X-Multi", q["header_values_multi"], `["m1","m2"]`)
	EqJSON(t, "header_values after add", q["header_values_after_add"], `["m1","m2","added"]`)
	EqJSON(t, "header_names", q["header_names"], `["Host","Content-Length","Content-Type","User-Agent","X-Probe","X-Multi","X-Set","X-Remove","X-Set-Path","X-Request-Id"]`)
	EqJSON(t, "body_get [2,6)", q["body_range"], `{"n":4,"size":10,"bytes":"2345","code":0}`)
	EqJSON(t, "body_get past the end", q["body_range_past_end"], `{"n":0,"size":10,"code":0}`)
	EqJSON(t, "body_get size only", q["body_size_only"], `{"size":10,"code":0}`)
	expectCodes(t, "on_request", q, map[string]float64{
		"body_code": 0, "header_absent_code": -1, "header_values_absent_code": -1, "body_negative_offset_code": -2,
		"bad_kind_header_get_code": -2, "bad_kind_header_set_code": -2, "bad_kind_body_get_code": -2,
		"bad_name_get_code": -2, "bad_name_set_code": -2, "bad_value_crlf_code": -2, "bad_value_nul_code": -2,
		"content_length_set_code": -3, "transfer_encoding_add_code": -3, "content_length_remove_code": -3,
		"set_code": 0, "add_code": 0, "remove_code": 0, "remove_absent_code": 0, "host_set_code": 0,
		"set_path_code": 0, "set_path_no_slash_code": -2, "set_path_bad_escape_code": -2, "set_path_dot_params_code": -2, "set_path_query_space_code": -2,
		"set_path_empty_code": -2, "random_code": 0, "random_raw_ret": 5, "random_zero_len_ret": 0,
		"body_set_too_large_code": -4, "send_response_too_large_code": -4, "send_response_bad_status_code": -2,
		"response_status_before_send": -3,
	})
	for _, k := range []string{"time_now", "time_now_raw"} {
		if ts, _ := q[k].(float64); ts < float64(before) || ts > float64(after) {
			t.Errorf("%s = %.0f, not within the request [%d, %d]", k, ts, before, after)
		}
	}
	rnd, _ := q["random"].(string)
	if len(rnd) != 32 || rnd == strings.Repeat("0", 32) {
		t.Errorf("random_get gave %q", rnd)
	}

	// The upstream got the edited request, with the report as its body.
	var e Echo
	if err := json.Unmarshal([]byte(str(p["upstream_body"])), &e); err != nil {
		t.Fatalf("upstream body %q: %v", p["upstream_body"], err)
	}
	if e.URI != "/new/p%20ath?n=1" || e.Host != "hostcheck.test" || e.Method != "POST" {
		t.Errorf("upstream saw %s %s Host %s", e.Method, e.URI, e.Host)
	}
	for name, want := range map[string]string{"X-Set": `["set-value"]`, "X-Multi": `["m1","m2","added"]`, "X-Probe": `["p"]`} {
		wb, _ := json.Marshal(e.Headers[name])
		if string(wb) != want {
			t.Errorf("upstream header %s = %s, want %s", name, wb, want)
		}
	}
	if _, ok := e.Headers["X-Remove"]; ok {
		t.Error("X-Remove reached the upstream")
	}
	var fromBody map[string]any
	if err := json.Unmarshal([]byte(e.Body), &fromBody); err != nil || fromBody["method"] != "POST" {
		t.Errorf("upstream body is not the on_request report (body_set): %q", e.Body)
	}
	if cl := e.Headers["Content-Length"]; len(cl) != 1 || cl[0] != fmt.Sprint(len(e.Body)) {
		t.Errorf("Content-Length %v for a body of %d bytes", cl, len(e.Body))
	}

	// on_response: the response, and the request as sent upstream.
	for k, want := range map[string]any{
		"header_upstream": "a", "header_upstream_found": true,
		"req_method": "POST", "req_path": "/new/p%20ath", "req_query": "n=1", "req_client_ip": "127.0.0.1",
		"req_header_set": "set-value", "req_host": "hostcheck.test",
	} {
		if p[k] != want {
			t.Errorf("on_response %s = %#v, want %#v", k, p[k], want)
		}
	}
	EqJSON(t, "response header_values", p["header_values_multi"], `["a"]`)
	EqJSON(t, "response header_values after add", p["resp_header_values_after_add"], `["a","b"]`)
	EqJSON(t, "response header_names", p["header_names"], `["Content-Length","Content-Type","Server","Date","X-Upstream","X-Resp-Multi","X-Upstream-Remove"]`)
	size := float64(len(str(p["upstream_body"])))
	EqJSON(t, "response body_get [1,6)", p["body_range"], fmt.Sprintf(`{"n":5,"size":%.0f,"bytes":"\"id\":","code":0}`, size))
	expectCodes(t, "on_response", p, map[string]float64{
		"status": 200, "status_raw": 200, "status_after": 203, "upstream_body_code": 0,
		"req_set_header_code": -3, "req_add_header_code": -3, "req_remove_header_code": -3,
		"req_set_body_code": -3, "req_set_path_code": -3, "send_response_code": -3,
		"set_status_600_code": -2, "set_status_99_code": -2, "set_status_code": 0,
		"resp_set_code": 0, "resp_add_code": 0, "resp_remove_code": 0, "resp_content_length_code": -3,
		"resp_bad_value_code": -2, "resp_body_set_too_large_code": -4,
	})
	// The client got the edited response.
	if r.Get("X-Resp-Set") != "1" || strings.Join(r.Headers["X-Resp-Multi"], ",") != "a,b" || r.Get("X-Upstream-Remove") != "" {
		t.Errorf("response headers not edited: %v", r.Headers)
	}
	if r.Get("Content-Length") != fmt.Sprint(len(r.Body)) || r.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Length %q Content-Type %q for a body of %d bytes", r.Get("Content-Length"), r.Get("Content-Type"), len(r.Body))
	}

	// Randomness differs between calls.
	var rep2 struct{ Request map[string]any }
	Do(t, "GET", g.URL("/inspect/again"), nil, nil).JSON(t, &rep2)
	if rep2.Request["random"] == rnd || rep2.Request["body"] != "" {
		t.Errorf("second request: random %v (first %v), body %q", rep2.Request["random"], rnd, rep2.Request["body"])
	}
}

// buffers checks the buffer convention of every getter (sdk/ABI.md section
// 3): the size with a 0-byte buffer, a short buffer filled and the size still
// returned, the whole value with a buffer of that size.
func (cf *conformance) buffers(t *testing.T) {
	g := cf.g
	long := strings.Repeat("x", 3000) // over a first buffer of 2 KiB (sdk/go's): the SDK must retry with the size the host gave
	r := Do(t, "POST", g.URL("/buffers/p?q=1"), []string{"X-Long", long, "X-Multi", "m1", "X-Multi", "m2"}, []byte("0123456789"))
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var rep map[string]any
	r.JSON(t, &rep)
	probe := func(name, full string) {
		t.Helper()
		small := full
		if len(small) > 3 {
			small = small[:3]
		}
		want, _ := json.Marshal(map[string]any{"size0": len(full), "small_ret": len(full),
			"small_bytes": small + strings.Repeat("#", 8-len(small)), "full_ret": len(full), "full": full})
		EqJSON(t, name, rep[name], string(want))
	}
	probe("request_method", "POST")
	probe("request_path", "/buffers/p")
	probe("request_query", "q=1")
	probe("request_client_ip", "127.0.0.1")
	probe("header_get", long)
	probe("header_values", "m1\x00m2\x00")
	probe("body_get", "0123456789")
	probe("config_get", `{"check":"buffers","echo":"e"}`)
	probe("kv_get", "kv-value-0123456789")
	// With an offset: the size is the whole body's, the bytes from the offset.
	EqJSON(t, "body_get offset 4", rep["body_get_offset"],
		`{"size0":10,"small_ret":10,"small_bytes":"456#####","full_ret":10,"full":"456789\u0000\u0000\u0000\u0000"}`)
	names, _ := rep["header_names"].(map[string]any)
	if full := str(names["full"]); !strings.Contains(full, "\x00X-Long\x00") || !strings.HasSuffix(full, "\x00") ||
		strings.Count(full, "X-Multi\x00") != 2 ||
		names["size0"] != float64(len(full)) || names["small_ret"] != names["size0"] {
		t.Errorf("header_names probe (a name once per value) %q", names)
	}
	if rep["zero_len_bogus_ptr"] != 3000.0 || rep["sdk_long_header_len"] != 3000.0 {
		t.Errorf("zero-length read at a bogus pointer %v, SDK long header %v", rep["zero_len_bogus_ptr"], rep["sdk_long_header_len"])
	}
}

// phases checks which functions each phase allows: _initialize
// (Guest.Initialize), on_init, on_request before and after send_response,
// on_response.
func (cf *conformance) phases(t *testing.T) {
	g, a := cf.g, cf.a
	hits := a.Hits()
	r := Do(t, "GET", g.URL("/phase/upstream"), nil, nil)
	if r.Status != 201 || r.Get("X-Phase-Resp") != "1" {
		t.Fatalf("status %d X-Phase-Resp %q: %s", r.Status, r.Get("X-Phase-Resp"), r.Body)
	}
	if a.Hits() != hits+1 {
		t.Error("the upstream was not called")
	}
	var rep map[string]map[string]any
	r.JSON(t, &rep)
	if cf.guest.Initialize { // language-specific: see Guest.Initialize
		checkInitialize(t, g, rep["initialize"])
	}
	expectCodes(t, "on_init", rep["init"], map[string]float64{
		"request_method": -3, "request_path": -3, "request_query": -3, "request_client_ip": -3,
		"request_set_path": -3, "header_get": -3, "header_values": -3, "header_names": -3,
		"header_set": -3, "header_add": -3, "header_remove": -3, "body_get": -3, "body_set": -3,
		"response_status": -3, "response_set_status": -3, "send_response": -3,
		"kv_get": -3, "kv_set": -3, "kv_delete": -3, "kv_incr": -3, "metric_record": -3,
		"http_batch": -3, "http_batch_result": -3,
		"config_get": float64(len(`{"check":"phase"}`)), "log": 0, "set_error": 0, "random_get": 8,
		"set_consumer": -3, "set_claims": -3,
	})
	if rep["init"]["metric_define_ok"] != true || rep["init"]["time_now_ok"] != true {
		t.Errorf("on_init: metric_define %v time_now %v, want both to work", rep["init"]["metric_define_ok"], rep["init"]["time_now_ok"])
	}
	expectCodes(t, "on_request before send_response", rep["request"], map[string]float64{
		"response_status": -3, "response_set_status": -3, "header_get_resp": -3, "header_values_resp": -3,
		"header_names_resp": -3, "header_set_resp": -3, "header_add_resp": -3, "header_remove_resp": -3,
		"body_get_resp": -3, "body_set_resp": -3,
		"request_method": 3, "header_set_req": 0, "kv_get": -1, "metric_record": 0,
		"http_batch_result": 0, "http_batch_empty_ret": 4,
	})
	expectCodes(t, "on_response", rep["response"], map[string]float64{
		"request_set_path": -3, "header_set_req": -3, "header_add_req": -3, "header_remove_req": -3,
		"body_set_req": -3, "header_set_req_raw": -3, "send_response": -3,
		"request_method": 3, "header_get_req": 1, "response_status": 200, "response_set_status": 0,
		"header_set_resp": 0, "kv_get": -1, "metric_record": 0, "http_batch_empty": 4,
		"set_consumer": -3, "set_claims": -3,
	})

	// After send_response, the response is readable and writable.
	hits = a.Hits()
	r = Do(t, "GET", g.URL("/phase/local"), nil, nil)
	if r.Status != 202 || r.Get("X-Local") != "yes" {
		t.Fatalf("local answer %d X-Local %q: %s", r.Status, r.Get("X-Local"), r.Body)
	}
	if a.Hits() != hits {
		t.Error("a local response still reached the upstream")
	}
	var local map[string]map[string]any
	r.JSON(t, &local)
	expectCodes(t, "on_request after send_response", local["request_after_send"], map[string]float64{
		"response_status": 418, "header_set_resp": 0, "header_get_resp": 3, "body_get_resp": 7,
		"response_set_status": 0, "status_after": 202, "request_method": 3, "header_set_req": 0,
	})
	if local["request_after_send"]["header_names_resp_ok"] != true {
		t.Error("header_names of the local response failed")
	}
}

// kv checks the KV store: one store per plugin across its routes and fresh
// instances, key and value limits, kv_incr (atomic, TTL only on creation),
// TTLs.
func (cf *conformance) kv(t *testing.T) {
	g := cf.g
	kv := func(route, query string) map[string]any {
		t.Helper()
		r := Do(t, "GET", g.URL("/"+route+"?"+query), nil, nil)
		if r.Status != 200 {
			t.Fatalf("%s?%s: %d %s", route, query, r.Status, r.Body)
		}
		var m map[string]any
		r.JSON(t, &m)
		return m
	}
	want := func(route, query string, fields map[string]any) {
		t.Helper()
		got := kv(route, query)
		for k, v := range fields {
			if got[k] != v {
				t.Errorf("%s?%s: %s = %#v, want %#v (all: %v)", route, query, k, got[k], v, got)
			}
		}
	}
	// hc-kv runs fresh: every request is a new instance, and the store
	// outlives them all; kv2 is another route (binding) of the same plugin.
	want("kv", "op=set&key=k1&value=v1", map[string]any{"code": 0.0})
	want("kv2", "op=get&key=k1", map[string]any{"code": 0.0, "value": "v1"})
	want("kv-other", "op=get&key=k1", map[string]any{"code": -1.0}) // another plugin, another store
	EqJSON(t, "kv_get buffer convention", kv("kv", "op=get_raw&key=k1")["probe"],
		`{"size0":2,"small_ret":2,"small_bytes":"v1######","full_ret":2,"full":"v1"}`)
	want("kv2", "op=delete&key=k1", map[string]any{"code": 0.0})
	want("kv", "op=delete&key=k1", map[string]any{"code": -1.0})
	want("kv", "op=get&key=k1", map[string]any{"code": -1.0})

	// Errors.
	want("kv", "op=set&key_len=256&value=x", map[string]any{"code": 0.0})
	want("kv", "op=set&key_len=257&value=x", map[string]any{"code": -2.0})
	want("kv", "op=get&key_len=257", map[string]any{"code": -2.0})
	want("kv", "op=set_raw&key=neg&value=x&ttl_ms=-1", map[string]any{"code": -2.0})
	want("kv", "op=set&key=s&value=abc", map[string]any{"code": 0.0})
	want("kv", "op=incr&key=s&delta=1", map[string]any{"code": -2.0})
	want("kv", "op=set&key=big&value=9223372036854775807", map[string]any{"code": 0.0})
	want("kv", "op=incr&key=big&delta=1", map[string]any{"code": -2.0})
	want("kv", "op=get&key=big", map[string]any{"value": "9223372036854775807"})
	want("kv", "op=incr&key=fresh&delta=-5", map[string]any{"code": 0.0, "result": -5.0})

	// kv_incr is atomic across instances and routes.
	var wg sync.WaitGroup
	var bad atomic.Int64
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				route := []string{"kv", "kv2"}[w%2]
				r, err := tryDo("GET", g.URL("/"+route+"?op=incr&key=n&delta=2"), nil, nil)
				if err != nil || r.Status != 200 {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d concurrent incr requests failed", bad.Load())
	}
	want("kv", "op=get&key=n", map[string]any{"value": "36"})

	// TTL: a key set with one expires; kv_incr's TTL applies only when it
	// creates the key; a key without one stays.
	want("kv", "op=set&key=long&value=x&ttl_ms=3600000", map[string]any{"code": 0.0})
	want("kv", "op=incr&key=noexp&delta=1", map[string]any{"result": 1.0})
	want("kv", "op=incr&key=noexp&delta=1&ttl_ms=1", map[string]any{"result": 2.0})
	want("kv", "op=incr&key=short-incr&delta=1&ttl_ms=50", map[string]any{"code": 0.0})
	want("kv", "op=set&key=short&value=x&ttl_ms=50", map[string]any{"code": 0.0})
	waitFor(t, "the TTL'd keys to expire", func() bool {
		return kv("kv2", "op=get&key=short")["code"] == -1.0 && kv("kv2", "op=get&key=short-incr")["code"] == -1.0
	})
	want("kv", "op=get&key=noexp", map[string]any{"code": 0.0, "value": "2"})
	want("kv", "op=get&key=long", map[string]any{"code": 0.0, "value": "x"})
}

// metrics checks metric_define and metric_record (ids, redefinition, bad
// names, kinds, ids and values, 32 metrics at most) and their export on
// /metrics.
func (cf *conformance) metrics(t *testing.T) {
	g := cf.g
	var rep map[string]any
	for range 2 {
		r := Do(t, "GET", g.URL("/metrics-check?counter=2.5&gauge=-4&hist=0.3"), nil, nil)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		r.JSON(t, &rep)
	}
	ids, _ := rep["ids"].(map[string]any)
	c, gg, h := ids["counter"], ids["gauge"], ids["hist"]
	if c.(float64) < 0 || gg.(float64) < 0 || h.(float64) < 0 || c == gg || gg == h || c == h {
		t.Fatalf("metric ids %v", ids)
	}
	if rep["counter_again"] != c || rep["counter_name_as_gauge"] == c || rep["counter_name_as_gauge"].(float64) < 0 {
		t.Errorf("redefinition: same kind %v (want %v), other kind %v (want a new id)", rep["counter_again"], c, rep["counter_name_as_gauge"])
	}
	if rep["max_name_ok"] != true {
		t.Error("a 63-character name was refused")
	}
	expectCodes(t, "metrics", rep, map[string]float64{
		"bad_name_code": -2, "empty_name_code": -2, "long_name_code": -2, "bad_kind_code": -2,
		"unknown_id_code": -1, "negative_id_code": -1, "nan_code": -2, "counter_negative_code": -2,
		"counter_inf_code": -2, "gauge_negative_code": 0, "counter_code": 0, "gauge_code": 0, "hist_code": 0,
		"sdk_counter_code": 0, "sdk_gauge_code": 0, "sdk_histogram_code": 0,
	})
	m := scrape(t, g)
	for _, want := range []string{
		`wasmgate_plugin_counter_total{name="hc_counter",plugin="hc-metrics"} 5`,
		`wasmgate_plugin_gauge{name="hc_gauge",plugin="hc-metrics"} -4`,
		`wasmgate_plugin_histogram_count{name="hc_hist",plugin="hc-metrics"} 2`,
		`wasmgate_plugin_histogram_sum{name="hc_hist",plugin="hc-metrics"} 0.6`,
		`wasmgate_plugin_histogram_bucket{name="hc_hist",plugin="hc-metrics",le="0.4096"} 2`,
		`wasmgate_plugin_counter_total{name="hc_sdk_counter",plugin="hc-metrics"} 4`,
		`wasmgate_plugin_gauge{name="hc_sdk_gauge",plugin="hc-metrics"} 7`,
		`wasmgate_plugin_histogram_count{name="hc_sdk_histogram",plugin="hc-metrics"} 2`,
	} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var fill map[string]any
	Do(t, "GET", g.URL("/metrics-fill?fill=1"), nil, nil).JSON(t, &fill)
	if fill["last_id"] != 31.0 || fill["fail_code"] != -4.0 {
		t.Errorf("defining past 32 metrics: %v (want last id 31, then -4)", fill)
	}
}

// log checks log levels and tags, the 4 KiB cut, the SDK's log, WASI stdout
// and stderr (Guest.Stdio), set_error with fail_closed and fail_open and its
// 1 KiB cut, and the per-plugin log rate limit.
func (cf *conformance) log(t *testing.T) {
	g := cf.g
	mark := fmt.Sprintf("m%d", time.Now().UnixNano())
	r := Do(t, "GET", g.URL("/log?m="+mark), nil, nil)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var rep map[string]any
	r.JSON(t, &rep)
	expectCodes(t, "log", rep, map[string]float64{"debug": 0, "info": 0, "warn": 0, "error": 0,
		"bad_level_4": -2, "bad_level_minus": -2, "long": 0, "empty": 0})
	tagged := func(m map[string]any) bool { return m["plugin"] == "hc-log" && m["route"] == "log" }
	for level, want := range map[string]string{"info": "INFO", "warn": "WARN", "error": "ERROR"} {
		l := findLog(g.Logs(), func(m map[string]any) bool { return m["msg"] == "hc-log "+level+" "+mark })
		if l == nil || l["level"] != want || !tagged(l) {
			t.Errorf("log level %s: line %v, want level %s tagged plugin=hc-log route=log", level, l, want)
		}
	}
	if l := findLog(g.Logs(), func(m map[string]any) bool { return m["msg"] == "hc-log debug "+mark }); l != nil {
		t.Errorf("a debug line passed an info-level log: %v", l)
	}
	if l := findLog(g.Logs(), func(m map[string]any) bool { return m["msg"] == "hc-sdk "+mark }); l == nil || l["level"] != "WARN" || !tagged(l) {
		t.Errorf("SDK log line: %v", l)
	}
	l := findLog(g.Logs(), func(m map[string]any) bool { return strings.HasPrefix(str(m["msg"]), "hc-long "+mark) })
	if l == nil || len(str(l["msg"])) != 4096 {
		t.Errorf("a 5000-byte message must be cut at 4 KiB: %d bytes", len(str(l["msg"])))
	}
	if cf.guest.Stdio { // language-specific: see Guest.Stdio
		for stream, level := range map[string]string{"stdout": "INFO", "stderr": "WARN"} {
			waitFor(t, "the guest's "+stream+" line in the log", func() bool {
				l := findLog(g.Logs(), func(m map[string]any) bool { return m["line"] == "hc-"+stream+" "+mark })
				return l != nil && l["stream"] == stream && l["level"] == level && tagged(l)
			})
		}
	}

	// set_error reaches the log; the route's failure policy answers.
	r = Do(t, "GET", g.URL("/log?fail=boom-"+mark), nil, nil)
	if r.Status != 502 || !strings.Contains(string(r.Body), `"plugin":"hc-log"`) {
		t.Fatalf("failing hook, fail_closed: %d %s", r.Status, r.Body)
	}
	if l := findLog(g.Logs(), func(m map[string]any) bool { return strings.Contains(str(m["error"]), "plugin said: boom-"+mark) }); l == nil || !tagged(l) {
		t.Errorf("set_error message not in a tagged log line: %v", l)
	}
	r = Do(t, "GET", g.URL("/open-log?fail=open-"+mark), nil, nil)
	if r.Status != 200 || r.Get("X-Upstream") != "a" {
		t.Fatalf("failing hook, fail_open: %d %s", r.Status, r.Body)
	}
	if m := scrape(t, g); !strings.Contains(m, `wasmgate_plugin_skipped_total{kind="bad_return",plugin="hc-log",route="log-open"} 1`) {
		t.Error("fail_open skip not counted")
	}
	if r := Do(t, "GET", g.URL("/log?fail_long=1"), nil, nil); r.Status != 502 {
		t.Fatalf("fail_long: %d", r.Status)
	}
	if l := findLog(g.Logs(), func(m map[string]any) bool { return strings.Contains(str(m["error"]), "plugin said: eee") }); l == nil ||
		!strings.Contains(str(l["error"]), "plugin said: "+strings.Repeat("e", 1024)+")") {
		t.Errorf("set_error must keep exactly 1 KiB: %v", l)
	}

	// Rate limit: a burst of 50 lines, then lines are dropped.
	if r := Do(t, "GET", g.URL("/flood?flood=200&m="+mark), nil, nil); r.Status != 200 {
		t.Fatalf("flood: %d", r.Status)
	}
	n := 0
	for _, l := range g.Logs() {
		if strings.HasPrefix(str(l["msg"]), "hc-flood "+mark+" ") {
			n++
		}
	}
	if n < 50 || n >= 200 {
		t.Errorf("%d of 200 flood lines logged, want the burst of 50 (plus a refill) and the rest dropped", n)
	}
}

// outbound checks http_batch: destinations allowed and refused, timeouts,
// dead hosts, upstream:// load balancing and Host, the result's buffer
// convention and batch errors.
func (cf *conformance) outbound(t *testing.T) {
	g, a, b := cf.g, cf.a, cf.b
	hits := a.Hits()
	r := Do(t, "GET", g.URL("/outbound"), nil, nil)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	var rep struct {
		Code    int
		Results []struct {
			Status     int
			Err        string
			DurationMS float64 `json:"duration_ms"`
			Headers    map[string]string
			Body       string
		}
		ResultProbe map[string]any `json:"result_probe"`
		Malformed   int            `json:"malformed_code"`
		AfterBad    int            `json:"result_after_malformed"`
		TooMany     int            `json:"too_many_code"`
		Empty       int            `json:"empty_batch_ret"`
		BadMethod   int            `json:"bad_method_code"`
		BadHeader   int            `json:"bad_header_code"`
	}
	r.JSON(t, &rep)
	if rep.Code != 0 || len(rep.Results) != 9 {
		t.Fatalf("batch: code %d, %d results: %s", rep.Code, len(rep.Results), r.Body)
	}
	res := rep.Results
	var one Echo
	if x := res[0]; x.Status != 200 || json.Unmarshal([]byte(x.Body), &one) != nil || one.ID != "b" || one.Method != "POST" ||
		one.URI != "/echo/one?x=1" || one.Body != "hello" || strings.Join(one.Headers["X-Part"], ",") != "p1" || one.Host != b.Addr {
		t.Errorf("http://b: %+v (upstream saw %+v)", x, one)
	}
	if res[0].Headers["X-Upstream"] != "b" || res[0].Headers["Content-Type"] != "application/json" {
		t.Errorf("result headers %v", res[0].Headers)
	}
	for i, why := range map[int]string{2: "an upstream the route does not allow", 3: "a host the route does not allow", 4: "a scheme other than http"} {
		if x := res[i]; x.Status != -3 || !strings.Contains(x.Err, cf.guest.NotAllowedErr) {
			t.Errorf("%s: %+v, want status -3", why, x)
		}
	}
	// Held until the test ends: only its 100ms timeout ends it.
	if x := res[5]; x.Status != -1 || x.Err != cf.guest.TimeoutErr {
		t.Errorf("a request over its timeout: %+v, want status -1", x)
	}
	if x := res[6]; x.Status != -2 {
		t.Errorf("a dead destination: %+v, want status -2", x)
	}
	// upstream:// destinations, load-balanced over the named upstream;
	// without a Host header, the upstream's name is sent.
	var two Echo
	upstreamCalls := int64(0)
	if x := res[1]; x.Status != 200 || json.Unmarshal([]byte(x.Body), &two) != nil || two.ID != "a" || two.URI != "/echo/two" || two.Host != "a" {
		t.Errorf("upstream://a: %+v (upstream saw %+v)", x, two)
	} else {
		upstreamCalls++
		if x := res[7]; x.Status != 404 {
			t.Errorf("an HTTP error status through upstream://: %+v", x)
		}
		upstreamCalls++
		// A Host the plugin set is sent.
		var custom Echo
		switch x := res[8]; {
		case x.Status != 200 || json.Unmarshal([]byte(x.Body), &custom) != nil || custom.Host != "custom.test":
			t.Errorf("upstream:// with Host custom.test: %+v (upstream saw %+v)", x, custom)
		default:
			upstreamCalls++
		}
	}
	size := rep.ResultProbe["size0"].(float64)
	if size <= 0 || rep.ResultProbe["small_ret"] != size || rep.ResultProbe["full_ret"] != size ||
		rep.ResultProbe["small_hex"] != "0900002323232323" {
		t.Errorf("http_batch_result buffer convention: %v", rep.ResultProbe)
	}
	if rep.Malformed != -2 || rep.AfterBad != 0 || rep.TooMany != -4 || rep.Empty != 4 || rep.BadMethod != -2 || rep.BadHeader != -2 {
		t.Errorf("batch errors: malformed %d, results after it %d, 65 requests %d, empty %d, bad method %d, bad header %d",
			rep.Malformed, rep.AfterBad, rep.TooMany, rep.Empty, rep.BadMethod, rep.BadHeader)
	}
	// The plugin answered itself: the route's upstream a was called
	// only by the batch.
	if got := a.Hits() - hits; got != upstreamCalls {
		t.Errorf("upstream a got %d requests, want the %d of the batch", got, upstreamCalls)
	}
}

// chainOrder checks that on_request runs in chain order and on_response in
// reverse.
func (cf *conformance) chainOrder(t *testing.T) {
	g := cf.g
	r := Do(t, "GET", g.URL("/chain/all"), []string{"X-Chain", "client"}, nil)
	var e Echo
	r.JSON(t, &e)
	if got := strings.Join(e.Headers["X-Chain"], "|"); got != "client,A,B,C" {
		t.Errorf("on_request order: upstream saw X-Chain %q, want client,A,B,C", got)
	}
	if got := strings.Join(r.Headers["X-Chain-Resp"], "|"); got != "C,B,A" {
		t.Errorf("on_response order: X-Chain-Resp %q, want C,B,A", got)
	}
}

// chainStop checks that a local answer ends the chain: later plugins and the
// upstream are not called, earlier plugins' on_response still run.
func (cf *conformance) chainStop(t *testing.T) {
	g, a := cf.g, cf.a
	hits := a.Hits()
	before := Do(t, "GET", g.URL("/kv-c?op=get&key=chain_requests"), nil, nil)
	r := Do(t, "GET", g.URL("/chain/stop"), nil, nil)
	if r.Status != 200 || string(r.Body) != "stopped by B; X-Chain=A,B\n" {
		t.Fatalf("local answer %d %q", r.Status, r.Body)
	}
	if got := strings.Join(r.Headers["X-Chain-Resp"], "|"); got != "local:B,A" {
		t.Errorf("X-Chain-Resp %q: want B's local mark, then A's on_response only", got)
	}
	if a.Hits() != hits {
		t.Error("the upstream was called after a local response")
	}
	after := Do(t, "GET", g.URL("/kv-c?op=get&key=chain_requests"), nil, nil)
	if string(before.Body) != string(after.Body) {
		t.Errorf("plugin C ran after B answered: its call count went from %s to %s", before.Body, after.Body)
	}
}

// instances checks instance modes: pooled reuses one instance, fresh makes
// one per request serving both its hooks.
func (cf *conformance) instances(t *testing.T) {
	g := cf.g
	state := func(path string) (req, resp string) {
		t.Helper()
		r := Do(t, "GET", g.URL(path), nil, nil)
		var e Echo
		r.JSON(t, &e)
		return strings.Join(e.Headers["X-Instance"], ","), r.Get("X-Instance-Resp")
	}
	// Pooled with one instance: the same instance, counting requests.
	var id string
	for i := 1; i <= 3; i++ {
		req, resp := state("/instance/pooled")
		parts := strings.Split(req, "/")
		if len(parts) != 3 || parts[1] != fmt.Sprint(i) || parts[2] != "1" || (id != "" && parts[0] != id) || resp != req {
			t.Errorf("pooled request %d: on_request %q on_response %q (first id %q)", i, req, resp, id)
		}
		id = parts[0]
	}
	// Fresh: a new instance per request, serving both its hooks.
	seen := map[string]bool{}
	for i := 1; i <= 3; i++ {
		req, resp := state("/instance/fresh")
		parts := strings.Split(req, "/")
		if len(parts) != 3 || parts[1] != "1" || parts[2] != "1" || seen[parts[0]] || resp != req {
			t.Errorf("fresh request %d: on_request %q on_response %q", i, req, resp)
		}
		seen[parts[0]] = true
	}
}

// checkInitialize checks what the host answered during _initialize (the
// reactor's package initialisation, before on_init): request, KV and
// outbound functions refuse, the "any" functions work.
func checkInitialize(t *testing.T, g Gateway, r map[string]any) {
	t.Helper()
	expectCodes(t, "_initialize", r, map[string]float64{
		"request_method": -3, "header_get": -3, "kv_get": -3, "http_batch": -3, "log": 0, "random_get": 8,
	})
	if r["time_now_ok"] != true {
		t.Error("_initialize: time_now failed")
	}
	if c := r["config_get"]; c != float64(len(`{"check":"phase"}`)) {
		t.Errorf("_initialize: config_get = %v, want the size of the binding's config", c)
	}
	if id, _ := r["metric_define"].(float64); r["metric_define"] == nil || id < 0 {
		t.Errorf("_initialize: metric_define = %v, want an id", r["metric_define"])
	}
	// The line is tagged like any other: the instance's environment is set
	// before _initialize runs.
	if l := findLog(g.Logs(), func(m map[string]any) bool { return m["msg"] == "hostcheck _initialize log line" }); l == nil || l["plugin"] == "" || l["plugin"] == nil {
		t.Errorf("a log line written during _initialize is not in the gateway log, tagged: %v", l)
	}
}

// flags checks flag_enabled: declared flags on and off, one limited to a
// segment (on for its member only), an undeclared flag NOT_FOUND.
func (cf *conformance) flags(t *testing.T) {
	for user, want := range map[string]string{
		"beta-user": `{"tck-on":{"on":true,"code":0},"tck-off":{"on":false,"code":0},"tck-beta":{"on":true,"code":0},"nope":{"on":false,"code":-1}}`,
		"someone":   `{"tck-on":{"on":true,"code":0},"tck-off":{"on":false,"code":0},"tck-beta":{"on":false,"code":0},"nope":{"on":false,"code":-1}}`,
	} {
		r := Do(t, "GET", cf.g.URL("/flags?names=tck-on,tck-off,tck-beta,nope"), []string{"X-User-Id", user}, nil)
		if r.Status != 200 {
			t.Fatalf("as %s: %d %s", user, r.Status, r.Body)
		}
		var got any
		r.JSON(t, &got)
		EqJSON(t, "flag_enabled as "+user, got, want)
	}
}

// authorize checks set_claims and the route's authorize policy on what the
// chain established (consumer alice; scopes orders:read and orders:write;
// a group admins or ops; org.plan pro): 401 with a bare Bearer challenge
// when nothing was established, 403 with error="insufficient_scope" for a
// missing scope, 403 without a challenge for a consumer or claim refused;
// the refusal passes through on_response of the chain (X-Chain-Resp: T).
// set_claims takes one JSON object of at most 16 KiB.
func (cf *conformance) authorize(t *testing.T) {
	const good = `{"sub":"alice","scope":"orders:read orders:write","groups":["dev","ops"],"org":{"plan":"pro"}}`
	insufficient := `Bearer realm="tck", error="insufficient_scope", scope="orders:read orders:write"`
	for _, c := range []struct {
		name, query string
		status      int
		challenge   string
		errorCode   string
	}{
		{"allowed", "consumer=alice&claims=" + url.QueryEscape(good), 200, "", ""},
		{"scp list", "consumer=alice&claims=" + url.QueryEscape(strings.Replace(good, `"scope":"orders:read orders:write"`, `"scp":["orders:write","orders:read"]`, 1)), 200, "", ""},
		{"nothing established", "", 401, `Bearer realm="tck"`, "unauthorized"},
		{"consumer only", "consumer=alice", 403, "", "forbidden"},
		{"other consumer", "consumer=bob&claims=" + url.QueryEscape(good), 403, "", "forbidden"},
		{"claims only", "claims=" + url.QueryEscape(good), 403, "", "forbidden"},
		{"scope missing", "consumer=alice&claims=" + url.QueryEscape(strings.Replace(good, "orders:read orders:write", "orders:read", 1)), 403, insufficient, "forbidden"},
		{"group missing", "consumer=alice&claims=" + url.QueryEscape(strings.Replace(good, `["dev","ops"]`, `["dev"]`, 1)), 403, "", "forbidden"},
		{"nested claim wrong", "consumer=alice&claims=" + url.QueryEscape(strings.Replace(good, `"pro"`, `"free"`, 1)), 403, "", "forbidden"},
	} {
		t.Run(c.name, func(t *testing.T) {
			hits := cf.a.Hits()
			r := Do(t, "GET", cf.g.URL("/authorize?"+c.query), nil, nil)
			if r.Status != c.status || r.Get("WWW-Authenticate") != c.challenge {
				t.Fatalf("status %d WWW-Authenticate %q (%s), want %d %q", r.Status, r.Get("WWW-Authenticate"), r.Body, c.status, c.challenge)
			}
			if r.Get("X-Chain-Resp") != "T" {
				t.Errorf("X-Chain-Resp %q: the chain's on_response did not see the answer", r.Get("X-Chain-Resp"))
			}
			if c.status == 200 {
				if cf.a.Hits() != hits+1 {
					t.Error("an allowed request did not reach the upstream")
				}
				return
			}
			if cf.a.Hits() != hits {
				t.Error("a refused request reached the upstream")
			}
			var body struct{ Error, Message string }
			r.JSON(t, &body)
			if body.Error != c.errorCode || body.Message == "" || strings.Contains(body.Message, "dev") || strings.Contains(body.Message, "free") {
				t.Errorf("body %s: want error %q and a message naming the rule, not a claim's value", r.Body, c.errorCode)
			}
		})
	}
	for _, c := range []struct {
		query string
		code  float64
	}{
		{"claims=" + url.QueryEscape(`["a"]`), -2},
		{"claims=" + url.QueryEscape(`{"a":1}{}`), -2},
		{"claims=" + url.QueryEscape(`{"a":`), -2},
		{"claims=", -2},
		{"claims_size=16384&consumer=alice", 0}, // accepted; the policy then refuses it (no scope)
		{"claims_size=16385", -4},
	} {
		r := Do(t, "GET", cf.g.URL("/authorize?"+c.query), nil, nil)
		if c.code == 0 {
			if r.Status != 403 {
				t.Errorf("%s: %d %s, want the policy's 403", c.query, r.Status, r.Body)
			}
			continue
		}
		var rep map[string]any
		r.JSON(t, &rep)
		expectCodes(t, "set_claims "+c.query, rep, map[string]float64{"set_claims": c.code})
	}
}
