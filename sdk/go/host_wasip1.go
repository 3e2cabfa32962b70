//go:build wasip1

package wasmgate

import "unsafe"

// The host functions of the "wasmgate" import module (sdk/ABI.md section 4).
// A Go string parameter is lowered by the compiler to the (ptr i32, len i32)
// pair the ABI expects; byte buffers are passed as unsafe.Pointer (i32) and
// an explicit length. //go:noescape keeps buffers on the stack where Go put
// them: the host never retains a pointer past the call.

//go:wasmimport wasmgate request_method
//go:noescape
func wgRequestMethod(buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate request_path
//go:noescape
func wgRequestPath(buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate request_set_path
//go:noescape
func wgRequestSetPath(path string) int32

//go:wasmimport wasmgate request_query
//go:noescape
func wgRequestQuery(buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate request_client_ip
//go:noescape
func wgRequestClientIP(buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate header_get
//go:noescape
func wgHeaderGet(kind int32, name string, buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate header_values
//go:noescape
func wgHeaderValues(kind int32, name string, buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate header_names
//go:noescape
func wgHeaderNames(kind int32, buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate header_set
//go:noescape
func wgHeaderSet(kind int32, name, value string) int32

//go:wasmimport wasmgate header_add
//go:noescape
func wgHeaderAdd(kind int32, name, value string) int32

//go:wasmimport wasmgate header_remove
//go:noescape
func wgHeaderRemove(kind int32, name string) int32

//go:wasmimport wasmgate body_get
//go:noescape
func wgBodyGet(kind int32, offset int64, buf unsafe.Pointer, n int32) int64

//go:wasmimport wasmgate body_set
//go:noescape
func wgBodySet(kind int32, body unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate response_status
func wgResponseStatus() int32

//go:wasmimport wasmgate response_set_status
func wgResponseSetStatus(status int32) int32

//go:wasmimport wasmgate send_response
//go:noescape
func wgSendResponse(status int32, body unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate config_get
//go:noescape
func wgConfigGet(buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate log
//go:noescape
func wgLog(level int32, msg string) int32

//go:wasmimport wasmgate set_error
//go:noescape
func wgSetError(msg string) int32

//go:wasmimport wasmgate time_now
func wgTimeNow() int64

//go:wasmimport wasmgate random_get
//go:noescape
func wgRandomGet(buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate kv_get
//go:noescape
func wgKVGet(key string, buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate kv_set
//go:noescape
func wgKVSet(key string, value unsafe.Pointer, n int32, ttlMillis int64) int32

//go:wasmimport wasmgate kv_delete
//go:noescape
func wgKVDelete(key string) int32

//go:wasmimport wasmgate kv_incr
//go:noescape
func wgKVIncr(key string, delta, ttlMillis int64, result unsafe.Pointer) int32

//go:wasmimport wasmgate metric_define
//go:noescape
func wgMetricDefine(kind int32, name string) int32

//go:wasmimport wasmgate metric_record
func wgMetricRecord(id int32, value float64) int32

//go:wasmimport wasmgate http_batch
//go:noescape
func wgHTTPBatch(batch unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate http_batch_result
//go:noescape
func wgHTTPBatchResult(buf unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate set_consumer
//go:noescape
func wgSetConsumer(id string) int32

//go:wasmimport wasmgate set_claims
//go:noescape
func wgSetClaims(claims unsafe.Pointer, n int32) int32

//go:wasmimport wasmgate cache_set_key
//go:noescape
func wgCacheSetKey(key string) int32

//go:wasmimport wasmgate flag_enabled
//go:noescape
func wgFlagEnabled(name string) int32

//go:wasmimport wasmgate rate_limit
//go:noescape
func wgRateLimit(name, key string, cost int64, result unsafe.Pointer) int32

// ptr is the address of b's first element (nil for an empty b: the host
// accepts any pointer with length 0).
func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// The wrappers below have the same signatures as their native counterparts
// in host_other.go, so the rest of the SDK is the same code on both.

func hostRequestMethod(buf []byte) int32   { return wgRequestMethod(ptr(buf), int32(len(buf))) }
func hostRequestPath(buf []byte) int32     { return wgRequestPath(ptr(buf), int32(len(buf))) }
func hostRequestSetPath(path string) int32 { return wgRequestSetPath(path) }
func hostRequestQuery(buf []byte) int32    { return wgRequestQuery(ptr(buf), int32(len(buf))) }
func hostRequestClientIP(buf []byte) int32 { return wgRequestClientIP(ptr(buf), int32(len(buf))) }

func hostHeaderGet(kind int32, name string, buf []byte) int32 {
	return wgHeaderGet(kind, name, ptr(buf), int32(len(buf)))
}

func hostHeaderValues(kind int32, name string, buf []byte) int32 {
	return wgHeaderValues(kind, name, ptr(buf), int32(len(buf)))
}

func hostHeaderNames(kind int32, buf []byte) int32 {
	return wgHeaderNames(kind, ptr(buf), int32(len(buf)))
}

func hostHeaderSet(kind int32, name, value string) int32 { return wgHeaderSet(kind, name, value) }
func hostHeaderAdd(kind int32, name, value string) int32 { return wgHeaderAdd(kind, name, value) }
func hostHeaderRemove(kind int32, name string) int32     { return wgHeaderRemove(kind, name) }

func hostBodyGet(kind int32, offset int64, buf []byte) int64 {
	return wgBodyGet(kind, offset, ptr(buf), int32(len(buf)))
}

func hostBodySet(kind int32, body []byte) int32 { return wgBodySet(kind, ptr(body), int32(len(body))) }
func hostResponseStatus() int32                 { return wgResponseStatus() }
func hostResponseSetStatus(status int32) int32  { return wgResponseSetStatus(status) }

func hostSendResponse(status int32, body []byte) int32 {
	return wgSendResponse(status, ptr(body), int32(len(body)))
}

func hostConfigGet(buf []byte) int32             { return wgConfigGet(ptr(buf), int32(len(buf))) }
func hostLog(level int32, msg string) int32      { return wgLog(level, msg) }
func hostSetError(msg string) int32              { return wgSetError(msg) }
func hostTimeNow() int64                         { return wgTimeNow() }
func hostRandomGet(buf []byte) int32             { return wgRandomGet(ptr(buf), int32(len(buf))) }
func hostKVGet(key string, buf []byte) int32     { return wgKVGet(key, ptr(buf), int32(len(buf))) }
func hostKVDelete(key string) int32              { return wgKVDelete(key) }
func hostMetricRecord(id int32, v float64) int32 { return wgMetricRecord(id, v) }

func hostKVSet(key string, value []byte, ttlMillis int64) int32 {
	return wgKVSet(key, ptr(value), int32(len(value)), ttlMillis)
}

func hostKVIncr(key string, delta, ttlMillis int64, result *int64) int32 {
	return wgKVIncr(key, delta, ttlMillis, unsafe.Pointer(result))
}

func hostMetricDefine(kind int32, name string) int32 { return wgMetricDefine(kind, name) }
func hostHTTPBatch(batch []byte) int32               { return wgHTTPBatch(ptr(batch), int32(len(batch))) }
func hostHTTPBatchResult(buf []byte) int32           { return wgHTTPBatchResult(ptr(buf), int32(len(buf))) }
func hostSetConsumer(id string) int32                { return wgSetConsumer(id) }
func hostSetClaims(claims []byte) int32              { return wgSetClaims(ptr(claims), int32(len(claims))) }
func hostCacheSetKey(key string) int32               { return wgCacheSetKey(key) }

func hostFlagEnabled(name string) int32 { return wgFlagEnabled(name) }

func hostRateLimit(name, key string, cost int64, result *[2]int64) int32 {
	return wgRateLimit(name, key, cost, unsafe.Pointer(result))
}
