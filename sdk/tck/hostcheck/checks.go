package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	wasmgate "github.com/wasmgate/wasmgate/sdk/go"
)

// report is what a check observed, marshalled as a JSON object.
type report = map[string]any

// Per-instance state. An instance runs one hook at a time, so no locks.
var (
	cfg    *config
	cfgRaw []byte // the config bytes Init received
	// initializeProbe is what the host answered during _initialize (package
	// initialisation, before on_init): only the "any" functions work there.
	initializeProbe report
	// initProbe is what the host answered during on_init.
	initProbe report
	// instanceID tells instances apart; calls counts on_request calls of
	// this instance and inits its on_init calls (always 1).
	instanceID string
	calls      int
	inits      int
)

// code turns an SDK error into the ABI return code it carries: 0 for nil,
// -100 for an error that did not come from the host.
func code(err error) int {
	if err == nil {
		return 0
	}
	var e *wasmgate.Error
	if errors.As(err, &e) {
		return int(e.Code)
	}
	return -100
}

// bufProbe is how a (buf, len) -> size function honours the buffer
// convention of sdk/ABI.md section 3.
type bufProbe struct {
	Size0      int32  `json:"size0"`       // with len 0: the size alone
	SmallRet   int32  `json:"small_ret"`   // with a 3-byte buffer: still the full size
	SmallBytes string `json:"small_bytes"` // an 8-byte buffer after that call: 3 bytes written, "#####" untouched
	FullRet    int32  `json:"full_ret"`    // with a buffer of size0 bytes
	Full       string `json:"full"`
}

func probe(call func(buf []byte) int32) bufProbe {
	p := bufProbe{Size0: call(nil)}
	small := []byte("########")
	p.SmallRet = call(small[:3])
	p.SmallBytes = string(small)
	if p.Size0 >= 0 {
		full := make([]byte, p.Size0)
		p.FullRet = call(full)
		p.Full = string(full)
	}
	return p
}

// respond answers locally with v as JSON.
func respond(req *wasmgate.Request, status int, v any) wasmgate.Action {
	b, err := json.Marshal(v)
	if err != nil {
		return wasmgate.Fail(err)
	}
	resp, err := req.SendResponse(status, append(b, '\n'))
	if err != nil {
		return wasmgate.Fail(err)
	}
	if err := resp.SetHeader("Content-Type", "application/json"); err != nil {
		return wasmgate.Fail(err)
	}
	return wasmgate.Stop
}

// probeInitialize runs during _initialize: the request, KV and outbound
// functions must answer NOT_ALLOWED, the "any" functions must work.
func probeInitialize() report {
	rnd := make([]byte, 8)
	return report{
		"request_method": rawRequestMethod(nil),
		"header_get":     rawHeaderGet(0, "X-Anything", nil),
		"kv_get":         rawKVGet("k", nil),
		"http_batch":     rawHTTPBatch(nil),
		"config_get":     rawConfigGet(nil),
		"metric_define":  rawMetricDefine(0, "hc_initialize"),
		"log":            rawLog(1, "hostcheck _initialize log line"),
		"time_now_ok":    rawTimeNow() > 0,
		"random_get":     rawRandomGet(rnd),
	}
}

// onInit is Init: parse the config, then probe what on_init may call.
func onInit(b []byte) error {
	c, err := parseConfig(b)
	if err != nil {
		return err
	}
	cfg, cfgRaw = c, append([]byte(nil), b...)
	inits++
	id := make([]byte, 8)
	if err := wasmgate.FillRandom(id); err != nil {
		return err
	}
	instanceID = hex.EncodeToString(id)
	if cfg.Check == "phase" {
		initProbe = probeOnInit()
	}
	return nil
}

// probeOnInit records what the host answers in on_init: NOT_ALLOWED for
// the request, response, KV, metric recording and outbound functions; the
// "any" functions work.
func probeOnInit() report {
	var req wasmgate.Request
	var resp wasmgate.Response
	id := rawMetricDefine(0, "hc_on_init")
	_, fetchErr := wasmgate.Fetch(wasmgate.OutboundRequest{URL: "http://127.0.0.1:1/"})
	_, incrErr := wasmgate.KVIncr("k", 1, 0)
	rnd := make([]byte, 8)
	return report{
		"request_method":      rawRequestMethod(nil),
		"request_path":        rawRequestPath(nil),
		"request_query":       rawRequestQuery(nil),
		"request_client_ip":   rawRequestClientIP(nil),
		"request_set_path":    code(req.SetPath("/x")),
		"header_get":          rawHeaderGet(0, "X-A", nil),
		"header_values":       rawHeaderValues(0, "X-A", nil),
		"header_names":        rawHeaderNames(0, nil),
		"header_set":          code(req.SetHeader("X-A", "1")),
		"header_add":          code(req.AddHeader("X-A", "1")),
		"header_remove":       code(req.RemoveHeader("X-A")),
		"body_get":            rawBodyGet(0, 0, nil),
		"body_set":            code(req.SetBody([]byte("x"))),
		"response_status":     rawResponseStatus(),
		"response_set_status": code(resp.SetStatus(200)),
		"send_response":       rawSendResponse(200, nil),
		"kv_get":              rawKVGet("k", nil),
		"kv_set":              code(wasmgate.KVSet("k", []byte("v"), 0)),
		"kv_delete":           code(wasmgate.KVDelete("k")),
		"kv_incr":             code(incrErr),
		"metric_define_ok":    id >= 0,
		"metric_record":       rawMetricRecord(id, 1),
		"http_batch":          code(fetchErr),
		"http_batch_result":   rawHTTPBatchResult(nil),
		"config_get":          rawConfigGet(nil),
		"log":                 rawLog(0, "hostcheck on_init log line"),
		"set_error":           rawSetError(""),
		"time_now_ok":         rawTimeNow() > 0,
		"random_get":          rawRandomGet(rnd),
		"set_consumer":        code(wasmgate.SetConsumer("c")),
		"set_claims":          code(wasmgate.SetClaims([]byte("{}"))),
	}
}

// onRequest dispatches to the configured check.
func onRequest(req *wasmgate.Request) wasmgate.Action {
	calls++
	switch cfg.Check {
	case "inspect":
		return inspectRequest(req)
	case "phase":
		return phaseRequest(req)
	case "kv":
		return kvRequest(req)
	case "metrics":
		return metricsRequest(req)
	case "log":
		return logRequest(req)
	case "outbound":
		return outboundRequest(req)
	case "chain":
		return chainRequest(req)
	case "instance":
		if err := req.SetHeader("X-Instance", instanceState()); err != nil {
			return wasmgate.Fail(err)
		}
		return wasmgate.Continue
	case "buffers":
		return buffersRequest(req)
	case "gateway":
		return gatewayRequest(req)
	case "flags":
		return flagsRequest(req)
	}
	return wasmgate.Continue
}

// flagsRequest answers, for each name of ?names=a,b,..., what flag_enabled
// said: {"NAME": {"on": bool, "code": N}}.
func flagsRequest(req *wasmgate.Request) wasmgate.Action {
	names, _ := req.QueryParam("names")
	r := report{}
	for _, name := range strings.Split(names, ",") {
		on, err := wasmgate.FlagEnabled(name)
		r[name] = report{"on": on, "code": code(err)}
	}
	return respond(req, 200, r)
}

// gatewayRequest drives set_consumer, set_claims, cache_set_key and
// rate_limit from the query: consumer=ID, claims=JSON and cache_key=KEY are
// set and the request goes on (the gateway's limits, authorize policy and
// cache act on them; claims_size=N sets an object of N bytes);
// limit=NAME&key=K&cost=N charges a limit and answers what the host said.
func gatewayRequest(req *wasmgate.Request) wasmgate.Action {
	if id, ok := req.QueryParam("consumer"); ok {
		if err := wasmgate.SetConsumer(id); err != nil {
			return respond(req, 500, report{"set_consumer": code(err)})
		}
	}
	claims, ok := req.QueryParam("claims")
	if n, sized := queryInt(req, "claims_size"); sized && n >= 8 {
		claims, ok = `{"x":"`+strings.Repeat("a", int(n)-8)+`"}`, true
	}
	if ok {
		if err := wasmgate.SetClaims([]byte(claims)); err != nil {
			return respond(req, 500, report{"set_claims": code(err)})
		}
	}
	if key, ok := req.QueryParam("cache_key"); ok {
		if err := wasmgate.SetCacheKey(key); err != nil {
			return respond(req, 500, report{"cache_set_key": code(err)})
		}
	}
	name, ok := req.QueryParam("limit")
	if !ok {
		return wasmgate.Continue
	}
	key, _ := req.QueryParam("key")
	cost, _ := queryInt(req, "cost")
	l, err := wasmgate.RateLimit(name, key, cost)
	return respond(req, 200, report{"rc": code(err), "allowed": l.Allowed, "remaining": l.Remaining, "retry_ms": l.RetryAfter.Milliseconds()})
}

// onResponse dispatches to the configured check.
func onResponse(resp *wasmgate.Response) error {
	switch cfg.Check {
	case "inspect":
		return inspectResponse(resp)
	case "phase":
		return phaseResponse(resp)
	case "chain":
		return chainResponse(resp)
	case "instance":
		return resp.SetHeader("X-Instance-Resp", instanceState())
	}
	return nil
}

// instanceState is "id/calls/inits" of this instance.
func instanceState() string {
	return instanceID + "/" + strconv.Itoa(calls) + "/" + strconv.Itoa(inits)
}

// inspectRequest reads everything of the request, edits it, and replaces
// its body with the report, which on_response reads back (the request as
// sent upstream) and hands to the client.
func inspectRequest(req *wasmgate.Request) wasmgate.Action {
	r := report{}
	r["method"] = req.Method()
	r["path"] = req.Path()
	r["query"] = req.Query()
	q, ok := req.QueryParam("q")
	r["query_param_q"], r["query_param_q_found"] = q, ok
	r["client_ip"] = req.ClientIP()
	v, ok := req.Header("x-probe") // names are case-insensitive
	r["header_probe"], r["header_probe_found"] = v, ok
	_, ok = req.Header("X-Absent")
	r["header_absent_found"] = ok
	r["header_absent_code"] = rawHeaderGet(0, "X-Absent", nil)
	r["header_values_multi"] = req.HeaderValues("X-Multi")
	r["header_values_absent_code"] = rawHeaderValues(0, "X-Absent", nil)
	r["header_names"] = req.HeaderNames()

	body, err := req.Body()
	r["body"], r["body_code"] = string(body), code(err)
	buf := make([]byte, 4)
	n, size, err := req.BodyRange(2, buf)
	r["body_range"] = report{"n": n, "size": size, "bytes": string(buf[:n]), "code": code(err)}
	n, size, err = req.BodyRange(size+5, buf)
	r["body_range_past_end"] = report{"n": n, "size": size, "code": code(err)}
	_, size, err = req.BodyRange(0, nil)
	r["body_size_only"] = report{"size": size, "code": code(err)}
	r["body_negative_offset_code"] = rawBodyGet(0, -1, nil)

	r["bad_kind_header_get_code"] = rawHeaderGet(2, "X-Probe", nil)
	r["bad_kind_header_set_code"] = rawHeaderSet(-1, "X-Probe", "v")
	r["bad_kind_body_get_code"] = rawBodyGet(7, 0, nil)
	r["bad_name_get_code"] = rawHeaderGet(0, "bad name", nil)
	r["bad_name_set_code"] = code(req.SetHeader("bad name", "v"))
	r["bad_value_crlf_code"] = code(req.SetHeader("X-Bad", "a\r\nb"))
	r["bad_value_nul_code"] = code(req.AddHeader("X-Bad", "a\x00b"))
	r["content_length_set_code"] = code(req.SetHeader("Content-Length", "5"))
	r["transfer_encoding_add_code"] = code(req.AddHeader("Transfer-Encoding", "chunked"))
	r["content_length_remove_code"] = code(req.RemoveHeader("content-length"))

	r["set_code"] = code(req.SetHeader("X-Set", "set-value"))
	r["add_code"] = code(req.AddHeader("X-Multi", "added"))
	r["remove_code"] = code(req.RemoveHeader("X-Remove"))
	r["remove_absent_code"] = code(req.RemoveHeader("X-Never-Sent"))
	r["header_values_after_add"] = req.HeaderValues("X-Multi")
	_, ok = req.Header("X-Remove")
	r["removed_found"] = ok
	r["host_set_code"] = code(req.SetHeader("Host", "hostcheck.test"))

	if p, ok := req.Header("X-Set-Path"); ok {
		r["set_path_code"] = code(req.SetPath(p))
		r["path_after"] = req.Path()
		r["query_after"] = req.Query()
	}
	r["set_path_no_slash_code"] = code(req.SetPath("no-slash"))
	r["set_path_bad_escape_code"] = code(req.SetPath("/a%zz"))
	r["set_path_dot_params_code"] = code(req.SetPath("/..;/b"))
	r["set_path_query_space_code"] = code(req.SetPath("/a?b c"))
	r["set_path_empty_code"] = code(req.SetPath(""))

	r["config"] = string(cfgRaw)
	cfgBuf := make([]byte, rawConfigGet(nil))
	rawConfigGet(cfgBuf)
	r["config_get"] = string(cfgBuf)
	r["time_now"] = wasmgate.Now().UnixNano()
	r["time_now_raw"] = rawTimeNow()
	rnd := make([]byte, 16)
	r["random_code"] = code(wasmgate.FillRandom(rnd))
	r["random"] = hex.EncodeToString(rnd)
	r["random_raw_ret"] = rawRandomGet(make([]byte, 5))
	r["random_zero_len_ret"] = rawRandomGetAt(0xfffffff0, 0)
	if cfg.BigBody > 0 {
		r["body_set_too_large_code"] = code(req.SetBody(make([]byte, cfg.BigBody)))
		r["send_response_too_large_code"] = rawSendResponse(200, make([]byte, cfg.BigBody))
	}
	r["send_response_bad_status_code"] = rawSendResponse(600, nil)
	r["response_status_before_send"] = rawResponseStatus()

	b, err := json.Marshal(r)
	if err != nil {
		return wasmgate.Fail(err)
	}
	if err := req.SetBody(b); err != nil {
		return wasmgate.Fail(err)
	}
	if err := req.SetHeader("Content-Type", "application/json"); err != nil {
		return wasmgate.Fail(err)
	}
	return wasmgate.Continue
}

// inspectResponse reads the upstream's response and the request as sent,
// checks that the request is read-only now, edits the response and answers
// with both reports.
func inspectResponse(resp *wasmgate.Response) error {
	r := report{}
	r["status"] = resp.Status()
	r["status_raw"] = rawResponseStatus()
	v, ok := resp.Header("x-upstream")
	r["header_upstream"], r["header_upstream_found"] = v, ok
	r["header_values_multi"] = resp.HeaderValues("X-Resp-Multi")
	r["header_names"] = resp.HeaderNames()
	up, err := resp.Body()
	r["upstream_body"], r["upstream_body_code"] = string(up), code(err)
	buf := make([]byte, 5)
	n, size, err := resp.BodyRange(1, buf)
	r["body_range"] = report{"n": n, "size": size, "bytes": string(buf[:n]), "code": code(err)}

	req := resp.Request()
	r["req_method"] = req.Method()
	r["req_path"] = req.Path()
	r["req_query"] = req.Query()
	r["req_client_ip"] = req.ClientIP()
	r["req_header_set"], _ = req.Header("X-Set")
	r["req_host"], _ = req.Header("Host")
	reqReport, err := req.Body()
	if err != nil {
		return err
	}
	r["req_set_header_code"] = code(req.SetHeader("X-Late", "1"))
	r["req_add_header_code"] = code(req.AddHeader("X-Late", "1"))
	r["req_remove_header_code"] = code(req.RemoveHeader("X-Set"))
	r["req_set_body_code"] = code(req.SetBody([]byte("late")))
	r["req_set_path_code"] = code(req.SetPath("/late"))
	r["send_response_code"] = rawSendResponse(200, nil)

	r["set_status_600_code"] = rawResponseSetStatus(600)
	r["set_status_99_code"] = rawResponseSetStatus(99)
	r["set_status_code"] = code(resp.SetStatus(203))
	r["status_after"] = resp.Status()
	r["resp_set_code"] = code(resp.SetHeader("X-Resp-Set", "1"))
	r["resp_add_code"] = code(resp.AddHeader("X-Resp-Multi", "b"))
	r["resp_remove_code"] = code(resp.RemoveHeader("X-Upstream-Remove"))
	r["resp_content_length_code"] = code(resp.SetHeader("Content-Length", "1"))
	r["resp_bad_value_code"] = code(resp.SetHeader("X-Resp-Bad", "a\nb"))
	r["resp_header_values_after_add"] = resp.HeaderValues("X-Resp-Multi")
	if cfg.BigBody > 0 {
		r["resp_body_set_too_large_code"] = code(resp.SetBody(make([]byte, cfg.BigBody)))
	}
	if !json.Valid(reqReport) {
		reqReport = []byte(strconv.Quote(string(reqReport)))
	}
	out, err := json.Marshal(report{"request": json.RawMessage(reqReport), "response": r})
	if err != nil {
		return err
	}
	if err := resp.SetHeader("Content-Type", "application/json"); err != nil {
		return err
	}
	return resp.SetBody(append(out, '\n'))
}

// phaseRequest records what on_request may not do before send_response,
// and (local) what it may do after.
func phaseRequest(req *wasmgate.Request) wasmgate.Action {
	var resp wasmgate.Response
	before := report{
		"response_status":      rawResponseStatus(),
		"response_set_status":  rawResponseSetStatus(200),
		"header_get_resp":      rawHeaderGet(1, "X-A", nil),
		"header_values_resp":   rawHeaderValues(1, "X-A", nil),
		"header_names_resp":    rawHeaderNames(1, nil),
		"header_set_resp":      code(resp.SetHeader("X-A", "1")),
		"header_add_resp":      code(resp.AddHeader("X-A", "1")),
		"header_remove_resp":   code(resp.RemoveHeader("X-A")),
		"body_get_resp":        rawBodyGet(1, 0, nil),
		"body_set_resp":        code(resp.SetBody([]byte("x"))),
		"request_method":       rawRequestMethod(nil),
		"header_set_req":       code(req.SetHeader("X-Phase-Req", "1")),
		"kv_get":               rawKVGet("phase-absent", nil),
		"metric_record":        rawMetricRecord(rawMetricDefine(0, "hc_phase"), 1),
		"http_batch_result":    rawHTTPBatchResult(nil),
		"http_batch_empty_ret": rawHTTPBatch([]byte{0, 0, 0, 0}),
	}
	out := report{"initialize": initializeProbe, "init": initProbe, "request": before}
	if !cfg.Local {
		b, err := json.Marshal(out)
		if err != nil {
			return wasmgate.Fail(err)
		}
		if err := req.SetBody(b); err != nil {
			return wasmgate.Fail(err)
		}
		return wasmgate.Continue
	}
	if _, err := req.SendResponse(418, []byte("pending")); err != nil {
		return wasmgate.Fail(err)
	}
	after := report{
		"response_status":      rawResponseStatus(),
		"header_set_resp":      code(resp.SetHeader("X-Local", "yes")),
		"header_get_resp":      rawHeaderGet(1, "X-Local", nil),
		"header_names_resp_ok": rawHeaderNames(1, nil) > 0,
		"body_get_resp":        rawBodyGet(1, 0, nil),
		"response_set_status":  rawResponseSetStatus(202),
		"request_method":       rawRequestMethod(nil),
		"header_set_req":       code(req.SetHeader("X-Phase-Req", "2")),
	}
	after["status_after"] = rawResponseStatus()
	out["request_after_send"] = after
	b, err := json.Marshal(out)
	if err != nil {
		return wasmgate.Fail(err)
	}
	if err := resp.SetBody(b); err != nil {
		return wasmgate.Fail(err)
	}
	return wasmgate.Stop
}

// phaseResponse records what on_response may not do (write the request,
// answer locally) and what it may.
func phaseResponse(resp *wasmgate.Response) error {
	req := resp.Request()
	r := report{
		"request_set_path":    code(req.SetPath("/x")),
		"header_set_req":      code(req.SetHeader("X-A", "1")),
		"header_add_req":      code(req.AddHeader("X-A", "1")),
		"header_remove_req":   code(req.RemoveHeader("X-A")),
		"body_set_req":        code(req.SetBody([]byte("x"))),
		"header_set_req_raw":  rawHeaderSet(0, "X-A", "1"),
		"send_response":       rawSendResponse(200, nil),
		"request_method":      rawRequestMethod(nil),
		"header_get_req":      rawHeaderGet(0, "X-Phase-Req", nil),
		"response_status":     rawResponseStatus(),
		"response_set_status": rawResponseSetStatus(201),
		"header_set_resp":     code(resp.SetHeader("X-Phase-Resp", "1")),
		"kv_get":              rawKVGet("phase-absent", nil),
		"metric_record":       rawMetricRecord(rawMetricDefine(0, "hc_phase"), 1),
		"http_batch_empty":    rawHTTPBatch([]byte{0, 0, 0, 0}),
		"set_consumer":        code(wasmgate.SetConsumer("c")),
		"set_claims":          code(wasmgate.SetClaims([]byte("{}"))),
	}
	reqReport, err := req.Body()
	if err != nil {
		return err
	}
	var out report
	if err := json.Unmarshal(reqReport, &out); err != nil {
		return errors.New("phase: the request body is not the on_request report: " + err.Error())
	}
	out["response"] = r
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return resp.SetBody(b)
}

// kvRequest runs one KV operation named by the query and answers with the
// outcome: ?op=get|set|delete|incr|set_raw|get_raw&key=K&value=V&ttl_ms=N&delta=N.
// key_len=N uses a key of N bytes instead.
func kvRequest(req *wasmgate.Request) wasmgate.Action {
	op, _ := req.QueryParam("op")
	key, _ := req.QueryParam("key")
	if n, ok := queryInt(req, "key_len"); ok {
		key = strings.Repeat("k", int(n))
	}
	value, _ := req.QueryParam("value")
	ttlMS, _ := queryInt(req, "ttl_ms")
	delta, _ := queryInt(req, "delta")
	ttl := time.Duration(ttlMS) * time.Millisecond
	r := report{"op": op}
	switch op {
	case "get":
		v, err := wasmgate.KVGet(key)
		r["code"], r["value"] = code(err), string(v)
	case "get_raw":
		r["probe"] = probe(func(b []byte) int32 { return rawKVGet(key, b) })
	case "set":
		r["code"] = code(wasmgate.KVSet(key, []byte(value), ttl))
	case "set_raw":
		r["code"] = rawKVSet(key, []byte(value), ttlMS)
	case "delete":
		r["code"] = code(wasmgate.KVDelete(key))
	case "incr":
		v, err := wasmgate.KVIncr(key, delta, ttl)
		r["code"], r["result"] = code(err), v
	default:
		return respond(req, 400, report{"error": "unknown op " + strconv.Quote(op)})
	}
	return respond(req, 200, r)
}

// queryInt is an integer query parameter.
func queryInt(req *wasmgate.Request, name string) (int64, bool) {
	s, ok := req.QueryParam(name)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// queryFloat is a float query parameter (NaN and Inf spelled as Go parses them).
func queryFloat(req *wasmgate.Request, name string) (float64, bool) {
	s, ok := req.QueryParam(name)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// SDK-declared metrics, recorded by the metrics check next to the raw ones.
var (
	sdkCounter   = wasmgate.NewCounter("hc_sdk_counter")
	sdkGauge     = wasmgate.NewGauge("hc_sdk_gauge")
	sdkHistogram = wasmgate.NewHistogram("hc_sdk_histogram")
)

// metricsRequest defines hc_counter, hc_gauge and hc_hist and records the
// query's counter=, gauge= and hist= values; fill=1 defines metrics until
// the host refuses. It answers with every id and code.
func metricsRequest(req *wasmgate.Request) wasmgate.Action {
	r := report{}
	if _, ok := req.QueryParam("fill"); ok {
		last, failCode, failAt := int32(-1), int32(0), -1
		for i := range 64 {
			id := rawMetricDefine(0, "fill_"+strconv.Itoa(i))
			if id < 0 {
				failCode, failAt = id, i
				break
			}
			last = id
		}
		r["last_id"], r["fail_code"], r["fail_at"] = last, failCode, failAt
		return respond(req, 200, r)
	}
	counter := rawMetricDefine(0, "hc_counter")
	gauge := rawMetricDefine(1, "hc_gauge")
	hist := rawMetricDefine(2, "hc_hist")
	r["ids"] = report{"counter": counter, "gauge": gauge, "hist": hist}
	r["counter_again"] = rawMetricDefine(0, "hc_counter")
	r["counter_name_as_gauge"] = rawMetricDefine(1, "hc_counter")
	r["bad_name_code"] = rawMetricDefine(0, "Bad-Name")
	r["empty_name_code"] = rawMetricDefine(0, "")
	r["long_name_code"] = rawMetricDefine(0, "a"+strings.Repeat("b", 63))
	r["max_name_ok"] = rawMetricDefine(0, "a"+strings.Repeat("b", 62)) >= 0
	r["bad_kind_code"] = rawMetricDefine(3, "hc_kind")
	r["unknown_id_code"] = rawMetricRecord(31, 1)
	r["negative_id_code"] = rawMetricRecord(-1, 1)
	r["nan_code"] = rawMetricRecord(gauge, math.NaN())
	r["counter_negative_code"] = rawMetricRecord(counter, -1)
	r["counter_inf_code"] = rawMetricRecord(counter, math.Inf(1))
	r["gauge_negative_code"] = rawMetricRecord(gauge, -2.5)
	if v, ok := queryFloat(req, "counter"); ok {
		r["counter_code"] = rawMetricRecord(counter, v)
	}
	if v, ok := queryFloat(req, "gauge"); ok {
		r["gauge_code"] = rawMetricRecord(gauge, v)
	}
	if v, ok := queryFloat(req, "hist"); ok {
		r["hist_code"] = rawMetricRecord(hist, v)
	}
	r["sdk_counter_code"] = code(sdkCounter.Add(2))
	r["sdk_gauge_code"] = code(sdkGauge.Set(7))
	r["sdk_histogram_code"] = code(sdkHistogram.Observe(0.5))
	return respond(req, 200, r)
}

// logRequest logs at every level with the query's marker m, plus the edge
// cases; fail=MSG fails the hook with MSG, fail_long=1 with a 2000-byte
// set_error, flood=N logs N lines.
func logRequest(req *wasmgate.Request) wasmgate.Action {
	m, _ := req.QueryParam("m")
	if msg, ok := req.QueryParam("fail"); ok {
		return wasmgate.Fail(errors.New(msg))
	}
	if _, ok := req.QueryParam("fail_long"); ok {
		rawSetError(strings.Repeat("e", 2000))
		return wasmgate.Action(-1)
	}
	if n, ok := queryInt(req, "flood"); ok {
		for i := range min(n, 1000) {
			rawLog(1, "hc-flood "+m+" "+strconv.FormatInt(i, 10))
		}
		return respond(req, 200, report{"flooded": n})
	}
	r := report{
		"debug":           rawLog(0, "hc-log debug "+m),
		"info":            rawLog(1, "hc-log info "+m),
		"warn":            rawLog(2, "hc-log warn "+m),
		"error":           rawLog(3, "hc-log error "+m),
		"bad_level_4":     rawLog(4, "hc-log bad "+m),
		"bad_level_minus": rawLog(-1, "hc-log bad "+m),
		"long":            rawLog(1, "hc-long "+m+" "+strings.Repeat("L", 5000)),
		"empty":           rawLog(1, ""),
	}
	wasmgate.Log(wasmgate.LevelWarn, "hc-sdk "+m)
	os.Stdout.WriteString("hc-stdout " + m + "\n")
	os.Stderr.WriteString("hc-stderr " + m + "\n")
	return respond(req, 200, r)
}

// outboundResult is one result of the outbound check's batch.
type outboundResult struct {
	Status     int               `json:"status"`
	Err        string            `json:"err,omitempty"`
	DurationMS float64           `json:"duration_ms"`
	Headers    map[string]string `json:"headers,omitempty"`
	Body       string            `json:"body"`
}

// outboundRequest runs the configured batch and answers with every result,
// then checks the batch functions' conventions and errors.
func outboundRequest(req *wasmgate.Request) wasmgate.Action {
	reqs := make([]wasmgate.OutboundRequest, len(cfg.Batch))
	for i, c := range cfg.Batch {
		o := wasmgate.OutboundRequest{URL: c.URL, Method: c.Method, Body: []byte(c.Body),
			Timeout: time.Duration(c.TimeoutMS) * time.Millisecond}
		for k, v := range c.Headers {
			o.Header = append(o.Header, wasmgate.HeaderField{Name: k, Value: v})
		}
		reqs[i] = o
	}
	r := report{}
	results, err := wasmgate.Fetch(reqs...)
	r["code"] = code(err)
	out := make([]outboundResult, len(results))
	for i, res := range results {
		o := outboundResult{Status: res.Status, DurationMS: float64(res.Duration) / float64(time.Millisecond), Body: string(res.Body)}
		if e := res.Err(); e != nil {
			o.Err = e.Error()
		}
		if len(res.Header) > 0 {
			o.Headers = map[string]string{}
			for _, h := range res.Header {
				if _, seen := o.Headers[h.Name]; !seen {
					o.Headers[h.Name] = h.Value
				}
			}
		}
		out[i] = o
	}
	r["results"] = out
	// The results of the last batch stay readable, with the buffer
	// convention, until the next http_batch.
	p := probe(rawHTTPBatchResult)
	r["result_probe"] = report{"size0": p.Size0, "small_ret": p.SmallRet,
		"small_hex": hex.EncodeToString([]byte(p.SmallBytes)), "full_ret": p.FullRet}
	r["malformed_code"] = rawHTTPBatch([]byte{1, 0, 0, 0, 5})
	r["result_after_malformed"] = rawHTTPBatchResult(nil)
	r["too_many_code"] = rawHTTPBatch(encodeGets(65, cfg.Batch[0].URL))
	r["empty_batch_ret"] = rawHTTPBatch([]byte{0, 0, 0, 0})
	_, err = wasmgate.Fetch(wasmgate.OutboundRequest{Method: "BAD METHOD", URL: cfg.Batch[0].URL})
	r["bad_method_code"] = code(err)
	_, err = wasmgate.Fetch(wasmgate.OutboundRequest{URL: cfg.Batch[0].URL,
		Header: []wasmgate.HeaderField{{Name: "X-Bad", Value: "a\r\nb"}}})
	r["bad_header_code"] = code(err)
	return respond(req, 200, r)
}

// encodeGets encodes a batch of n GET requests of url (sdk/ABI.md, batch
// encoding), bypassing the SDK's own checks.
func encodeGets(n int, url string) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	for range n {
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, 3)
		b = append(b, "GET"...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(url)))
		b = append(b, url...)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint32(b, 0)
	}
	return b
}

// chainRequest appends the tag to X-Chain and counts the call in the KV
// store; with stop it answers locally.
func chainRequest(req *wasmgate.Request) wasmgate.Action {
	v := cfg.Tag
	if prev, ok := req.Header("X-Chain"); ok {
		v = prev + "," + cfg.Tag
	}
	if err := req.SetHeader("X-Chain", v); err != nil {
		return wasmgate.Fail(err)
	}
	if _, err := wasmgate.KVIncr("chain_requests", 1, 0); err != nil {
		return wasmgate.Fail(err)
	}
	if !cfg.Stop {
		return wasmgate.Continue
	}
	resp, err := req.SendResponse(200, []byte("stopped by "+cfg.Tag+"; X-Chain="+v+"\n"))
	if err != nil {
		return wasmgate.Fail(err)
	}
	if err := resp.SetHeader("X-Chain-Resp", "local:"+cfg.Tag); err != nil {
		return wasmgate.Fail(err)
	}
	return wasmgate.Stop
}

// chainResponse appends the tag to the response's X-Chain-Resp.
func chainResponse(resp *wasmgate.Response) error {
	v := cfg.Tag
	if prev, ok := resp.Header("X-Chain-Resp"); ok {
		v = prev + "," + cfg.Tag
	}
	return resp.SetHeader("X-Chain-Resp", v)
}

// buffersRequest probes the buffer convention of every getter and answers
// with what it saw.
func buffersRequest(req *wasmgate.Request) wasmgate.Action {
	if err := wasmgate.KVSet("buffers", []byte("kv-value-0123456789"), 0); err != nil {
		return wasmgate.Fail(err)
	}
	long, _ := req.Header("X-Long") // over the SDK's first 2 KiB buffer: it retries
	r := report{
		"request_method":      probe(rawRequestMethod),
		"request_path":        probe(rawRequestPath),
		"request_query":       probe(rawRequestQuery),
		"request_client_ip":   probe(rawRequestClientIP),
		"header_get":          probe(func(b []byte) int32 { return rawHeaderGet(0, "X-Long", b) }),
		"header_values":       probe(func(b []byte) int32 { return rawHeaderValues(0, "X-Multi", b) }),
		"header_names":        probe(func(b []byte) int32 { return rawHeaderNames(0, b) }),
		"body_get":            probe(func(b []byte) int32 { return int32(rawBodyGet(0, 0, b)) }),
		"body_get_offset":     probe(func(b []byte) int32 { return int32(rawBodyGet(0, 4, b)) }),
		"config_get":          probe(rawConfigGet),
		"kv_get":              probe(func(b []byte) int32 { return rawKVGet("buffers", b) }),
		"zero_len_bogus_ptr":  rawHeaderGetAt(0, "X-Long", 0xfffffff0, 0),
		"sdk_long_header_len": len(long),
	}
	return respond(req, 200, r)
}
