//go:build !wasip1

package wasmgate

import (
	"time"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// hostAPI is the host as the native (non-wasm) build sees it. Native builds
// exist so that `go vet` and `go test` work on every platform; they have no
// gateway behind them. Only the SDK's own tests install an implementation
// (an in-process fake of the host's buffer and error conventions); plugins
// keep their logic in pure functions and test those instead.
type hostAPI interface {
	RequestMethod(buf []byte) int32
	RequestPath(buf []byte) int32
	RequestSetPath(path string) int32
	RequestQuery(buf []byte) int32
	RequestClientIP(buf []byte) int32
	HeaderGet(kind int32, name string, buf []byte) int32
	HeaderValues(kind int32, name string, buf []byte) int32
	HeaderNames(kind int32, buf []byte) int32
	HeaderSet(kind int32, name, value string) int32
	HeaderAdd(kind int32, name, value string) int32
	HeaderRemove(kind int32, name string) int32
	BodyGet(kind int32, offset int64, buf []byte) int64
	BodySet(kind int32, body []byte) int32
	ResponseStatus() int32
	ResponseSetStatus(status int32) int32
	SendResponse(status int32, body []byte) int32
	ConfigGet(buf []byte) int32
	Log(level int32, msg string) int32
	SetError(msg string) int32
	TimeNow() int64
	RandomGet(buf []byte) int32
	KVGet(key string, buf []byte) int32
	KVSet(key string, value []byte, ttlMillis int64) int32
	KVDelete(key string) int32
	KVIncr(key string, delta, ttlMillis int64, result *int64) int32
	MetricDefine(kind int32, name string) int32
	MetricRecord(id int32, value float64) int32
	HTTPBatch(batch []byte) int32
	HTTPBatchResult(buf []byte) int32
	SetConsumer(id string) int32
	SetClaims(claims []byte) int32
	CacheSetKey(key string) int32
	RateLimit(name, key string, cost int64, result *[2]int64) int32
	FlagEnabled(name string) int32
}

// native is the host of a native build: noHost unless a test of this
// package installs a fake.
var native hostAPI = noHost{}

// noHost answers every call with NOT_ALLOWED: there is no gateway here.
type noHost struct{}

func (noHost) RequestMethod([]byte) int32                { return abi.NotAllowed }
func (noHost) RequestPath([]byte) int32                  { return abi.NotAllowed }
func (noHost) RequestSetPath(string) int32               { return abi.NotAllowed }
func (noHost) RequestQuery([]byte) int32                 { return abi.NotAllowed }
func (noHost) RequestClientIP([]byte) int32              { return abi.NotAllowed }
func (noHost) HeaderGet(int32, string, []byte) int32     { return abi.NotAllowed }
func (noHost) HeaderValues(int32, string, []byte) int32  { return abi.NotAllowed }
func (noHost) HeaderNames(int32, []byte) int32           { return abi.NotAllowed }
func (noHost) HeaderSet(int32, string, string) int32     { return abi.NotAllowed }
func (noHost) HeaderAdd(int32, string, string) int32     { return abi.NotAllowed }
func (noHost) HeaderRemove(int32, string) int32          { return abi.NotAllowed }
func (noHost) BodyGet(int32, int64, []byte) int64        { return abi.NotAllowed }
func (noHost) BodySet(int32, []byte) int32               { return abi.NotAllowed }
func (noHost) ResponseStatus() int32                     { return abi.NotAllowed }
func (noHost) ResponseSetStatus(int32) int32             { return abi.NotAllowed }
func (noHost) SendResponse(int32, []byte) int32          { return abi.NotAllowed }
func (noHost) ConfigGet([]byte) int32                    { return abi.NotAllowed }
func (noHost) Log(int32, string) int32                   { return abi.NotAllowed }
func (noHost) SetError(string) int32                     { return abi.NotAllowed }
func (noHost) TimeNow() int64                            { return time.Now().UnixNano() }
func (noHost) RandomGet([]byte) int32                    { return abi.NotAllowed }
func (noHost) KVGet(string, []byte) int32                { return abi.NotAllowed }
func (noHost) KVSet(string, []byte, int64) int32         { return abi.NotAllowed }
func (noHost) KVDelete(string) int32                     { return abi.NotAllowed }
func (noHost) KVIncr(string, int64, int64, *int64) int32 { return abi.NotAllowed }
func (noHost) MetricDefine(int32, string) int32          { return abi.NotAllowed }
func (noHost) MetricRecord(int32, float64) int32         { return abi.NotAllowed }
func (noHost) HTTPBatch([]byte) int32                    { return abi.NotAllowed }
func (noHost) HTTPBatchResult([]byte) int32              { return abi.NotAllowed }
func (noHost) SetConsumer(string) int32                  { return abi.NotAllowed }
func (noHost) SetClaims([]byte) int32                    { return abi.NotAllowed }
func (noHost) CacheSetKey(string) int32                  { return abi.NotAllowed }

func (noHost) RateLimit(string, string, int64, *[2]int64) int32 { return abi.NotAllowed }
func (noHost) FlagEnabled(string) int32                         { return abi.NotAllowed }

// The same functions as in host_wasip1.go, routed to native.

func hostRequestMethod(buf []byte) int32   { return native.RequestMethod(buf) }
func hostRequestPath(buf []byte) int32     { return native.RequestPath(buf) }
func hostRequestSetPath(path string) int32 { return native.RequestSetPath(path) }
func hostRequestQuery(buf []byte) int32    { return native.RequestQuery(buf) }
func hostRequestClientIP(buf []byte) int32 { return native.RequestClientIP(buf) }

func hostHeaderGet(kind int32, name string, buf []byte) int32 {
	return native.HeaderGet(kind, name, buf)
}

func hostHeaderValues(kind int32, name string, buf []byte) int32 {
	return native.HeaderValues(kind, name, buf)
}

func hostHeaderNames(kind int32, buf []byte) int32       { return native.HeaderNames(kind, buf) }
func hostHeaderSet(kind int32, name, value string) int32 { return native.HeaderSet(kind, name, value) }
func hostHeaderAdd(kind int32, name, value string) int32 { return native.HeaderAdd(kind, name, value) }
func hostHeaderRemove(kind int32, name string) int32     { return native.HeaderRemove(kind, name) }

func hostBodyGet(kind int32, offset int64, buf []byte) int64 {
	return native.BodyGet(kind, offset, buf)
}

func hostBodySet(kind int32, body []byte) int32           { return native.BodySet(kind, body) }
func hostResponseStatus() int32                           { return native.ResponseStatus() }
func hostResponseSetStatus(status int32) int32            { return native.ResponseSetStatus(status) }
func hostSendResponse(status int32, body []byte) int32    { return native.SendResponse(status, body) }
func hostConfigGet(buf []byte) int32                      { return native.ConfigGet(buf) }
func hostLog(level int32, msg string) int32               { return native.Log(level, msg) }
func hostSetError(msg string) int32                       { return native.SetError(msg) }
func hostTimeNow() int64                                  { return native.TimeNow() }
func hostRandomGet(buf []byte) int32                      { return native.RandomGet(buf) }
func hostKVGet(key string, buf []byte) int32              { return native.KVGet(key, buf) }
func hostKVSet(key string, value []byte, ttl int64) int32 { return native.KVSet(key, value, ttl) }
func hostKVDelete(key string) int32                       { return native.KVDelete(key) }

func hostKVIncr(key string, delta, ttlMillis int64, result *int64) int32 {
	return native.KVIncr(key, delta, ttlMillis, result)
}

func hostMetricDefine(kind int32, name string) int32 { return native.MetricDefine(kind, name) }
func hostMetricRecord(id int32, v float64) int32     { return native.MetricRecord(id, v) }
func hostHTTPBatch(batch []byte) int32               { return native.HTTPBatch(batch) }
func hostHTTPBatchResult(buf []byte) int32           { return native.HTTPBatchResult(buf) }
func hostSetConsumer(id string) int32                { return native.SetConsumer(id) }
func hostSetClaims(claims []byte) int32              { return native.SetClaims(claims) }
func hostCacheSetKey(key string) int32               { return native.CacheSetKey(key) }

func hostFlagEnabled(name string) int32 { return native.FlagEnabled(name) }

func hostRateLimit(name, key string, cost int64, result *[2]int64) int32 {
	return native.RateLimit(name, key, cost, result)
}
