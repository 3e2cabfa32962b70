//go:build wasip1

package main

import (
	"runtime"
	"unsafe"
)

// Raw imports of the wasmgate host functions, beside the SDK's own. The SDK
// hides what hostcheck must observe (the exact return codes of getters, the
// buffer-size convention, bad kinds and values the SDK refuses before the
// host sees them), so these take plain u32 addresses: a test can hand the
// host any (ptr, len) pair, including a bogus pointer with length 0.

//go:wasmimport wasmgate request_method
func wgRequestMethod(buf, n uint32) int32

//go:wasmimport wasmgate request_path
func wgRequestPath(buf, n uint32) int32

//go:wasmimport wasmgate request_query
func wgRequestQuery(buf, n uint32) int32

//go:wasmimport wasmgate request_client_ip
func wgRequestClientIP(buf, n uint32) int32

//go:wasmimport wasmgate header_get
func wgHeaderGet(kind int32, name, nameLen, buf, n uint32) int32

//go:wasmimport wasmgate header_values
func wgHeaderValues(kind int32, name, nameLen, buf, n uint32) int32

//go:wasmimport wasmgate header_names
func wgHeaderNames(kind int32, buf, n uint32) int32

//go:wasmimport wasmgate header_set
func wgHeaderSet(kind int32, name, nameLen, value, valueLen uint32) int32

//go:wasmimport wasmgate body_get
func wgBodyGet(kind int32, offset int64, buf, n uint32) int64

//go:wasmimport wasmgate response_status
func wgResponseStatus() int32

//go:wasmimport wasmgate response_set_status
func wgResponseSetStatus(status int32) int32

//go:wasmimport wasmgate send_response
func wgSendResponse(status int32, body, n uint32) int32

//go:wasmimport wasmgate config_get
func wgConfigGet(buf, n uint32) int32

//go:wasmimport wasmgate log
func wgLog(level int32, msg, n uint32) int32

//go:wasmimport wasmgate set_error
func wgSetError(msg, n uint32) int32

//go:wasmimport wasmgate time_now
func wgTimeNow() int64

//go:wasmimport wasmgate random_get
func wgRandomGet(buf, n uint32) int32

//go:wasmimport wasmgate kv_get
func wgKVGet(key, keyLen, buf, n uint32) int32

//go:wasmimport wasmgate kv_set
func wgKVSet(key, keyLen, value, valueLen uint32, ttlMillis int64) int32

//go:wasmimport wasmgate metric_define
func wgMetricDefine(kind int32, name, n uint32) int32

//go:wasmimport wasmgate metric_record
func wgMetricRecord(id int32, value float64) int32

//go:wasmimport wasmgate http_batch
func wgHTTPBatch(batch, n uint32) int32

//go:wasmimport wasmgate http_batch_result
func wgHTTPBatchResult(buf, n uint32) int32

// addr is the address of b's first element in linear memory (0 for nil).
// The callers keep b alive across the call with runtime.KeepAlive; the Go
// wasm heap does not move.
func addr(b []byte) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

func saddr(s string) uint32 { return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s)))) }

func n32(b []byte) uint32 { return uint32(len(b)) }

func rawRequestMethod(buf []byte) int32 {
	r := wgRequestMethod(addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

func rawRequestPath(buf []byte) int32 {
	r := wgRequestPath(addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

func rawRequestQuery(buf []byte) int32 {
	r := wgRequestQuery(addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

func rawRequestClientIP(buf []byte) int32 {
	r := wgRequestClientIP(addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

func rawHeaderGet(kind int32, name string, buf []byte) int32 {
	r := wgHeaderGet(kind, saddr(name), uint32(len(name)), addr(buf), n32(buf))
	runtime.KeepAlive(name)
	runtime.KeepAlive(buf)
	return r
}

// rawHeaderGetAt passes an arbitrary buffer address: with n 0 the host must
// answer the size without touching memory, whatever ptr is.
func rawHeaderGetAt(kind int32, name string, ptr, n uint32) int32 {
	r := wgHeaderGet(kind, saddr(name), uint32(len(name)), ptr, n)
	runtime.KeepAlive(name)
	return r
}

func rawHeaderValues(kind int32, name string, buf []byte) int32 {
	r := wgHeaderValues(kind, saddr(name), uint32(len(name)), addr(buf), n32(buf))
	runtime.KeepAlive(name)
	runtime.KeepAlive(buf)
	return r
}

func rawHeaderNames(kind int32, buf []byte) int32 {
	r := wgHeaderNames(kind, addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

func rawHeaderSet(kind int32, name, value string) int32 {
	r := wgHeaderSet(kind, saddr(name), uint32(len(name)), saddr(value), uint32(len(value)))
	runtime.KeepAlive(name)
	runtime.KeepAlive(value)
	return r
}

func rawBodyGet(kind int32, offset int64, buf []byte) int64 {
	r := wgBodyGet(kind, offset, addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

func rawResponseStatus() int32                  { return wgResponseStatus() }
func rawResponseSetStatus(status int32) int32   { return wgResponseSetStatus(status) }
func rawTimeNow() int64                         { return wgTimeNow() }
func rawMetricRecord(id int32, v float64) int32 { return wgMetricRecord(id, v) }

func rawSendResponse(status int32, body []byte) int32 {
	r := wgSendResponse(status, addr(body), n32(body))
	runtime.KeepAlive(body)
	return r
}

func rawConfigGet(buf []byte) int32 {
	r := wgConfigGet(addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

func rawLog(level int32, msg string) int32 {
	r := wgLog(level, saddr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
	return r
}

func rawSetError(msg string) int32 {
	r := wgSetError(saddr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
	return r
}

func rawRandomGet(buf []byte) int32 {
	r := wgRandomGet(addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}

// rawRandomGetAt is random_get at an arbitrary address (see rawHeaderGetAt).
func rawRandomGetAt(ptr, n uint32) int32 { return wgRandomGet(ptr, n) }

func rawKVGet(key string, buf []byte) int32 {
	r := wgKVGet(saddr(key), uint32(len(key)), addr(buf), n32(buf))
	runtime.KeepAlive(key)
	runtime.KeepAlive(buf)
	return r
}

func rawKVSet(key string, value []byte, ttlMillis int64) int32 {
	r := wgKVSet(saddr(key), uint32(len(key)), addr(value), n32(value), ttlMillis)
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return r
}

func rawMetricDefine(kind int32, name string) int32 {
	r := wgMetricDefine(kind, saddr(name), uint32(len(name)))
	runtime.KeepAlive(name)
	return r
}

func rawHTTPBatch(batch []byte) int32 {
	r := wgHTTPBatch(addr(batch), n32(batch))
	runtime.KeepAlive(batch)
	return r
}

func rawHTTPBatchResult(buf []byte) int32 {
	r := wgHTTPBatchResult(addr(buf), n32(buf))
	runtime.KeepAlive(buf)
	return r
}
