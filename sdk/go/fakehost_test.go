//go:build !wasip1

package wasmgate

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// fakeHost models the host's side of the ABI conventions in process: the
// buffer protocol (write what fits, return the full size), NUL-separated
// lists, error codes and where functions are allowed. It exists only for
// this package's tests of encoding, decoding and retry logic; the real host
// is exercised end to end by the gateway's tests.
type fakeHost struct {
	phase     int // 0 init, 1 request, 2 response
	localSent bool

	method, path, query, clientIP string
	headers                       [2][]HeaderField // by kind
	bodies                        [2][]byte
	status                        int32
	config                        []byte

	logs   []string
	errMsg string
	now    int64

	kv      map[string][]byte
	kvTTL   map[string]int64
	metrics map[string]int32
	records []float64

	// batch answers http_batch: the results encoding, or a negative code.
	batch       func(req []byte) ([]byte, int32)
	lastBatch   []byte
	batchResult []byte

	// grow makes the named function's data longer on each of its first
	// grow[fn] calls, as a value rewritten by another instance between two
	// reads would be.
	grow  map[string]int
	calls map[string]int

	consumer, cacheKey, claims string
	flags                      map[string]bool // feature flags the host declares
	limit                      func(name, key string, cost int64) (rc int32, remaining, retryMs int64)
}

func newFakeHost() *fakeHost {
	return &fakeHost{
		phase: 1, status: 200,
		kv: map[string][]byte{}, kvTTL: map[string]int64{}, metrics: map[string]int32{},
		grow: map[string]int{}, calls: map[string]int{},
	}
}

// install makes f the host for the test and resets the SDK's state.
func (f *fakeHost) install(t *testing.T) *fakeHost {
	t.Helper()
	prev := native
	native = f
	resetSDK()
	t.Cleanup(func() { native = prev; resetSDK() })
	return f
}

func resetSDK() {
	registered, registrations, localSent = Plugin{}, 0, false
	scratch, batchBuf = nil, nil
}

// out implements the buffer convention for fn: the data may grow per call.
func (f *fakeHost) out(fn string, data []byte, buf []byte) int32 {
	f.calls[fn]++
	if n := min(f.calls[fn], f.grow[fn]); n > 0 {
		data = append(data, strings.Repeat("x", n*100)...)
	}
	copy(buf, data)
	return int32(len(data))
}

func (f *fakeHost) inHook() bool { return f.phase != 0 }

func (f *fakeHost) RequestMethod(buf []byte) int32 {
	if !f.inHook() {
		return abi.NotAllowed
	}
	return f.out("request_method", []byte(f.method), buf)
}

func (f *fakeHost) RequestPath(buf []byte) int32 {
	if !f.inHook() {
		return abi.NotAllowed
	}
	return f.out("request_path", []byte(f.path), buf)
}

func (f *fakeHost) RequestSetPath(path string) int32 {
	if f.phase != 1 {
		return abi.NotAllowed
	}
	if !strings.HasPrefix(path, "/") {
		return abi.BadArgument
	}
	f.path, f.query, _ = strings.Cut(path, "?")
	return 0
}

func (f *fakeHost) RequestQuery(buf []byte) int32 {
	return f.out("request_query", []byte(f.query), buf)
}

func (f *fakeHost) RequestClientIP(buf []byte) int32 {
	return f.out("request_client_ip", []byte(f.clientIP), buf)
}

// access applies the ABI's table of where header and body functions work.
func (f *fakeHost) access(kind int32, write bool) int32 {
	switch {
	case kind != 0 && kind != 1:
		return abi.BadArgument
	case f.phase == 0:
		return abi.NotAllowed
	case kind == 0 && write && f.phase == 2:
		return abi.NotAllowed
	case kind == 1 && f.phase == 1 && !f.localSent:
		return abi.NotAllowed
	}
	return 0
}

func (f *fakeHost) HeaderGet(kind int32, name string, buf []byte) int32 {
	if c := f.access(kind, false); c < 0 {
		return c
	}
	for _, h := range f.headers[kind] {
		if strings.EqualFold(h.Name, name) {
			return f.out("header_get", []byte(h.Value), buf)
		}
	}
	return abi.NotFound
}

func (f *fakeHost) HeaderValues(kind int32, name string, buf []byte) int32 {
	if c := f.access(kind, false); c < 0 {
		return c
	}
	var list []byte
	for _, h := range f.headers[kind] {
		if strings.EqualFold(h.Name, name) {
			list = append(append(list, h.Value...), 0)
		}
	}
	if list == nil {
		return abi.NotFound
	}
	return f.out("header_values", list, buf)
}

func (f *fakeHost) HeaderNames(kind int32, buf []byte) int32 {
	if c := f.access(kind, false); c < 0 {
		return c
	}
	var list []byte
	for _, h := range f.headers[kind] {
		list = append(append(list, h.Name...), 0)
	}
	return f.out("header_names", list, buf)
}

func validHeader(name, value string) bool {
	return abi.IsToken(name) && !strings.ContainsAny(value, "\r\n\x00")
}

func (f *fakeHost) HeaderSet(kind int32, name, value string) int32 {
	if c := f.access(kind, true); c < 0 {
		return c
	}
	if !validHeader(name, value) {
		return abi.BadArgument
	}
	f.HeaderRemove(kind, name)
	f.headers[kind] = append(f.headers[kind], HeaderField{name, value})
	return 0
}

func (f *fakeHost) HeaderAdd(kind int32, name, value string) int32 {
	if c := f.access(kind, true); c < 0 {
		return c
	}
	if !validHeader(name, value) {
		return abi.BadArgument
	}
	f.headers[kind] = append(f.headers[kind], HeaderField{name, value})
	return 0
}

func (f *fakeHost) HeaderRemove(kind int32, name string) int32 {
	if c := f.access(kind, true); c < 0 {
		return c
	}
	kept := f.headers[kind][:0]
	for _, h := range f.headers[kind] {
		if !strings.EqualFold(h.Name, name) {
			kept = append(kept, h)
		}
	}
	f.headers[kind] = kept
	return 0
}

func (f *fakeHost) BodyGet(kind int32, offset int64, buf []byte) int64 {
	if c := f.access(kind, false); c < 0 {
		return int64(c)
	}
	f.calls["body_get"]++
	b := f.bodies[kind]
	if offset < int64(len(b)) {
		copy(buf, b[offset:])
	}
	return int64(len(b))
}

func (f *fakeHost) BodySet(kind int32, body []byte) int32 {
	if c := f.access(kind, true); c < 0 {
		return c
	}
	if len(body) > 1<<20 {
		return abi.TooLarge
	}
	f.bodies[kind] = append([]byte(nil), body...)
	return 0
}

func (f *fakeHost) ResponseStatus() int32 {
	if f.phase != 2 && !f.localSent {
		return abi.NotAllowed
	}
	return f.status
}

func (f *fakeHost) ResponseSetStatus(status int32) int32 {
	if f.phase != 2 && !f.localSent {
		return abi.NotAllowed
	}
	if status < abi.MinStatus || status > abi.MaxStatus {
		return abi.BadArgument
	}
	f.status = status
	return 0
}

func (f *fakeHost) SendResponse(status int32, body []byte) int32 {
	if f.phase != 1 {
		return abi.NotAllowed
	}
	if status < abi.MinStatus || status > abi.MaxStatus || len(body) > 0 && abi.BodylessStatus(int(status)) {
		return abi.BadArgument
	}
	f.localSent, f.status = true, status
	f.bodies[1] = append([]byte(nil), body...)
	f.headers[1] = nil
	return 0
}

func (f *fakeHost) ConfigGet(buf []byte) int32 { return f.out("config_get", f.config, buf) }

func (f *fakeHost) Log(level int32, msg string) int32 {
	if level < 0 || level > 3 {
		return abi.BadArgument
	}
	f.logs = append(f.logs, Level(level).String()+": "+msg)
	return 0
}

func (f *fakeHost) SetError(msg string) int32 {
	if len(msg) > 1024 {
		msg = msg[:1024]
	}
	f.errMsg = msg
	return 0
}

func (f *fakeHost) TimeNow() int64 { return f.now }

func (f *fakeHost) RandomGet(buf []byte) int32 {
	for i := range buf {
		buf[i] = byte(i) | 0x80
	}
	return int32(len(buf))
}

func (f *fakeHost) KVGet(key string, buf []byte) int32 {
	if !f.inHook() {
		return abi.NotAllowed
	}
	v, ok := f.kv[key]
	if !ok {
		return abi.NotFound
	}
	return f.out("kv_get", v, buf)
}

func (f *fakeHost) KVSet(key string, value []byte, ttl int64) int32 {
	if !f.inHook() {
		return abi.NotAllowed
	}
	if len(key) > 256 || len(value) > 1<<16 {
		return abi.TooLarge
	}
	f.kv[key] = append([]byte(nil), value...)
	f.kvTTL[key] = ttl
	return 0
}

func (f *fakeHost) KVDelete(key string) int32 {
	if _, ok := f.kv[key]; !ok {
		return abi.NotFound
	}
	delete(f.kv, key)
	return 0
}

func (f *fakeHost) KVIncr(key string, delta, ttl int64, result *int64) int32 {
	var v int64
	if old, ok := f.kv[key]; ok {
		n, err := strconv.ParseInt(string(old), 10, 64)
		if err != nil {
			return abi.BadArgument
		}
		v = n
	} else {
		f.kvTTL[key] = ttl
	}
	v += delta
	f.kv[key] = strconv.AppendInt(nil, v, 10)
	*result = v
	return 0
}

func (f *fakeHost) MetricDefine(kind int32, name string) int32 {
	f.calls["metric_define"]++
	if id, ok := f.metrics[name]; ok {
		return id
	}
	id := int32(len(f.metrics))
	f.metrics[name] = id
	return id
}

func (f *fakeHost) MetricRecord(id int32, v float64) int32 {
	if f.phase == 0 {
		return abi.NotAllowed
	}
	if int(id) >= len(f.metrics) {
		return abi.NotFound
	}
	f.records = append(f.records, v)
	return 0
}

func (f *fakeHost) HTTPBatch(batch []byte) int32 {
	f.lastBatch = append([]byte(nil), batch...)
	res, code := f.batch(batch)
	if code < 0 {
		return code
	}
	f.batchResult = res
	return int32(len(res))
}

func (f *fakeHost) HTTPBatchResult(buf []byte) int32 {
	return f.out("http_batch_result", f.batchResult, buf)
}

func (f *fakeHost) SetConsumer(id string) int32 {
	if f.phase != 1 {
		return abi.NotAllowed
	}
	f.consumer = id
	return 0
}

func (f *fakeHost) SetClaims(claims []byte) int32 {
	if f.phase != 1 {
		return abi.NotAllowed
	}
	f.claims = string(claims)
	return 0
}

func (f *fakeHost) FlagEnabled(name string) int32 {
	on, ok := f.flags[name]
	switch {
	case f.phase != 1 && f.phase != 2:
		return abi.NotAllowed
	case !ok:
		return abi.NotFound
	case on:
		return 1
	}
	return 0
}

func (f *fakeHost) CacheSetKey(key string) int32 {
	if f.phase != 1 {
		return abi.NotAllowed
	}
	f.cacheKey = key
	return 0
}

func (f *fakeHost) RateLimit(name, key string, cost int64, result *[2]int64) int32 {
	if f.limit == nil {
		return abi.NotFound
	}
	rc, remaining, retry := f.limit(name, key, cost)
	result[0], result[1] = remaining, retry
	return rc
}
