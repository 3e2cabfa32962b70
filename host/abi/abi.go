// Package abi is the host side of the wasmgate plugin ABI v1 (sdk/ABI.md):
// the table of host functions of the "wasmgate" import module and the
// per-call state they act on.
//
// It is engine-neutral: a runtime (host/wasm) turns each Func into a host
// function of its engine and hands it the Call of the instance being run.
package abi

import (
	"context"
	"log/slog"

	"github.com/valyala/fasthttp"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// The ABI's names, codes, limits and encodings are declared once, in
// sdk/abi, which the guest SDK imports too; they are re-exported here so
// that the host's packages need only this one.

// Names fixed by the ABI.
const (
	ModuleName    = sdkabi.ModuleName    // the import module of host functions
	VersionMarker = sdkabi.VersionMarker // export that marks an ABI v1 module
	VersionPrefix = sdkabi.VersionPrefix // any version marker starts with this

	HookInit     = sdkabi.HookInit
	HookRequest  = sdkabi.HookRequest
	HookResponse = sdkabi.HookResponse
)

// Return codes of host functions (sdk/ABI.md section 3).
const (
	ErrNotFound    = sdkabi.NotFound
	ErrBadArgument = sdkabi.BadArgument
	ErrNotAllowed  = sdkabi.NotAllowed
	ErrTooLarge    = sdkabi.TooLarge
	ErrUnavailable = sdkabi.Unavailable
)

// Hook results.
const (
	Continue = sdkabi.Continue // on_request / on_response: go on
	Stop     = sdkabi.Stop     // on_request: a local response was set
)

// Kinds: what a header or body function acts on.
const (
	KindRequest  = sdkabi.KindRequest
	KindResponse = sdkabi.KindResponse
)

// Log levels of the log function.
const (
	LogDebug = sdkabi.LogDebug
	LogInfo  = sdkabi.LogInfo
	LogWarn  = sdkabi.LogWarn
	LogError = sdkabi.LogError
)

// Metric kinds of metric_define.
const (
	MetricCounter   = sdkabi.MetricCounter
	MetricGauge     = sdkabi.MetricGauge
	MetricHistogram = sdkabi.MetricHistogram
)

// Statuses of an outbound result that are not HTTP statuses.
const (
	StatusTimeout    = sdkabi.StatusTimeout
	StatusNetwork    = sdkabi.StatusNetwork
	StatusNotAllowed = sdkabi.StatusNotAllowed
	StatusOther      = sdkabi.StatusOther
)

// Signature algorithms of crypto_verify.
const (
	AlgRS256 = sdkabi.AlgRS256
	AlgPS256 = sdkabi.AlgPS256
	AlgES256 = sdkabi.AlgES256
	AlgEdDSA = sdkabi.AlgEdDSA
)

// Limits of the ABI (sdk/ABI.md).
const (
	MaxErrMsg        = sdkabi.MaxErrorMessage
	MaxLogMessage    = sdkabi.MaxLogMessage
	MaxKVKey         = sdkabi.MaxKVKey
	MaxMetrics       = sdkabi.MaxMetrics
	MaxBatch         = sdkabi.MaxBatch
	MaxBatchBytes    = sdkabi.MaxBatchBytes
	MaxBatchHeaders  = sdkabi.MaxBatchHeaders
	MaxVerifyKey     = sdkabi.MaxVerifyKey
	MaxVerifyMessage = sdkabi.MaxVerifyMessage
	MinRSABits       = sdkabi.MinRSABits
	MaxRSABits       = sdkabi.MaxRSABits
	MaxConsumer      = sdkabi.MaxConsumer
	MaxCacheKey      = sdkabi.MaxCacheKey
	MaxClaims        = sdkabi.MaxClaims
)

// Limits of this host: defaults the config may change.
const (
	DefaultKVKeys  = 10000    // keys per plugin store by default
	DefaultKVBytes = 16 << 20 // bytes per plugin store by default
)

// ValueType is a WebAssembly value type of a host function signature.
type ValueType = sdkabi.ValueType

// The value types used by the ABI.
const (
	I32 = sdkabi.I32
	I64 = sdkabi.I64
	F64 = sdkabi.F64
)

// The http_batch encodings (sdk/ABI.md section 4, "Outbound HTTP").
type (
	Header       = sdkabi.Header
	BatchRequest = sdkabi.BatchRequest
	BatchResult  = sdkabi.BatchResult
)

// Decoding errors of the http_batch encodings.
var (
	ErrMalformedBatch = sdkabi.ErrMalformedBatch
	ErrBatchTooLarge  = sdkabi.ErrBatchTooLarge
)

// EncodeBatch appends the encoding of reqs to dst.
func EncodeBatch(dst []byte, reqs []BatchRequest) []byte { return sdkabi.EncodeBatch(dst, reqs) }

// EncodeResults appends the encoding of results to dst.
func EncodeResults(dst []byte, results []BatchResult) []byte {
	return sdkabi.EncodeResults(dst, results)
}

// DecodeBatch decodes an encoded batch of at most MaxBatch requests and
// MaxBatchBytes bytes. The byte slices of the result are views of b.
func DecodeBatch(b []byte) ([]BatchRequest, error) { return sdkabi.DecodeBatch(b) }

// DecodeResults decodes the results of an http_batch (what
// http_batch_result copies). The byte slices of the result are views of b.
func DecodeResults(b []byte) ([]BatchResult, error) { return sdkabi.DecodeResults(b) }

// Func is one host function. Fn reads its parameters from stack and writes
// its results back to stack[0..len(Results)), the calling convention of
// wazero's api.GoFunction and easy to adapt for other engines.
type Func struct {
	// Module is the import module of the function: "" is ModuleName
	// ("wasmgate"); another ABI's functions (http-wasm's "http_handler")
	// name theirs, so that engines group one table by module.
	Module  string
	Name    string
	Params  []ValueType
	Results []ValueType
	Fn      func(c *Call, stack []uint64)
}

// ImportModule is the import module f belongs to.
func (f Func) ImportModule() string {
	if f.Module == "" {
		return ModuleName
	}
	return f.Module
}

// Memory is the calling instance's linear memory.
type Memory interface {
	// Read returns a view of length bytes at offset (not a copy), false when
	// the range is out of bounds. Writes through the view are writes to the
	// guest's memory (wazero's api.Memory.Read has this contract): host
	// functions copy their results straight into it, with no second copy.
	// The view is valid until the guest runs again.
	Read(offset, length uint32) ([]byte, bool)
	// Write copies b to offset, false when the range is out of bounds.
	Write(offset uint32, b []byte) bool
}

// OutOfBounds is the panic value of a host function given a guest buffer
// outside the guest's memory. The runtime recovers it as a failure of the
// hook (sdk/ABI.md section 8); it never crosses the runtime's boundary.
type OutOfBounds struct {
	Func     string
	Ptr, Len uint64
}

func (e OutOfBounds) Error() string {
	return "out of bounds: " + ModuleName + "." + e.Func + "(ptr=" + itoa(e.Ptr) + ", len=" + itoa(e.Len) + ")"
}

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// Phase is the hook being run, which decides what a host function may do.
type Phase uint8

// Phases.
const (
	PhaseInit Phase = iota
	PhaseRequest
	PhaseResponse
)

// Call is the state one hook invocation acts on. The runtime owns one per
// instance, fills it before each hook and clears it after; host functions
// read and write through it. It is never shared by two running hooks.
type Call struct {
	Ctx   context.Context // the hook's deadline; outbound calls honour it
	Mem   Memory
	Phase Phase
	Env   *Env // the plugin binding: name, config, KV, metrics, outbound rules
	Req   *fasthttp.Request
	Resp  *fasthttp.Response
	Scope *Scope // the request's state shared by the whole chain; nil outside hooks

	// LocalResponse is set by send_response during on_request.
	LocalResponse bool
	// ErrMsg is what the guest said through set_error (at most 1 KiB).
	ErrMsg []byte

	// Ext is the per-instance state of another ABI's host functions
	// (*httpwasm.State for an http-wasm guest; nil for a native plugin). The
	// runtime sets it once, before instantiation (a start function may call
	// those functions), and it lives as long as the instance: Reset leaves it.
	Ext any

	batchResult []byte     // encoded results of the last http_batch
	scratch     []byte     // header name copies for case-insensitive removal
	batch       batchState // decoded batch and per-request slots, reused
}

// Reset clears the per-request fields, keeping buffers for reuse (and Ext,
// which belongs to the instance).
func (c *Call) Reset() {
	c.Ctx, c.Req, c.Resp, c.Scope = nil, nil, nil, nil
	c.LocalResponse = false
	c.ErrMsg = c.ErrMsg[:0]
	c.batchResult = c.batchResult[:0]
}

// BatchResult returns the encoded results of the last http_batch of the
// hook (what http_batch_result copies), valid until the next call.
func (c *Call) BatchResult() []byte { return c.batchResult }

// Env is what one plugin binding (a plugin on a route, with its config)
// gives every instance of it. A nil KV or Metrics makes the functions that
// need them answer UNAVAILABLE; a nil Log logs to slog.Default; a nil
// LogRate does not limit.
type Env struct {
	Plugin  string // plugin name: log tag and metric label
	Route   string
	Config  []byte // JSON config bytes (sdk/ABI.md section 5); empty reads as "{}"
	MaxBody int64  // body_set and send_response limit in bytes; 0: none
	// Log is the plugin's logger, tagged with its plugin and route names
	// (nil: slog.Default, tagged here).
	Log     *slog.Logger
	KV      *KV              // shared by every binding of the plugin
	Metrics *PluginMetrics   // shared by every binding of the plugin
	Out     *Outbound        // nil: no outbound calls allowed
	LogRate *RateLimitedLogs // shared by every binding of the plugin
	Limits  Limiter          // the route's rate limits for rate_limit; nil: none
	Cache   bool             // the route caches responses: cache_set_key works
}
