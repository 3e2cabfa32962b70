// Package abi is the wasmgate plugin ABI v1 (sdk/ABI.md) as Go
// declarations: the names, codes and limits of the contract and the
// http_batch encoding. The host (host/abi) and the Go SDK (sdk/go) both
// import it, so that neither keeps a copy that could drift from the other.
//
// It imports nothing outside the standard library and builds for
// GOOS=wasip1, so a guest pays only for what it uses. sdk/ABI.md stays the
// contract; host/abi's tests check it against this package.
package abi

// Version is the ABI version this package describes.
const Version = 1

// Module names and markers (sdk/ABI.md section 1).
const (
	// ModuleName is the import module of the host functions.
	ModuleName = "wasmgate"
	// VersionPrefix starts every version marker, so that a host can tell
	// a module built for another version from one built for none.
	VersionPrefix = "wasmgate_abi_v"
	// VersionMarker is the export (no parameters, no results, never
	// called) that marks a module built for this version.
	VersionMarker = VersionPrefix + "1"
)

// Hooks: the exports the host calls (sdk/ABI.md section 2). Hooks lists
// their signatures.
const (
	HookInit     = "on_init"     // once per instance, with the config's size
	HookRequest  = "on_request"  // for every request, in chain order
	HookResponse = "on_response" // for every response, in reverse order
)

// Hook results. Any value not listed fails the hook.
const (
	Continue = 0 // on_request, on_response: go on; on_init: the config is accepted
	Stop     = 1 // on_request: a local response was set with send_response
)

// Return codes of host functions (sdk/ABI.md section 3). A function
// returns one of them instead of a size, status or id when it fails;
// CodeName gives their names.
const (
	NotFound    = -1 // no such header, key, metric or rate limit
	BadArgument = -2 // an argument is invalid
	NotAllowed  = -3 // not allowed in this hook, or to this destination
	TooLarge    = -4 // over a limit
	Unavailable = -5 // temporarily unavailable, e.g. outbound concurrency exhausted
)

// codeNames are the names sdk/ABI.md gives the codes, by -code.
var codeNames = [...]string{
	-NotFound:    "NOT_FOUND",
	-BadArgument: "BAD_ARGUMENT",
	-NotAllowed:  "NOT_ALLOWED",
	-TooLarge:    "TOO_LARGE",
	-Unavailable: "UNAVAILABLE",
}

// CodeName returns the name sdk/ABI.md gives a return code, such as
// "NOT_FOUND", or "" for a value that is not one.
func CodeName(code int32) string {
	if code >= 0 || -int64(code) >= int64(len(codeNames)) {
		return ""
	}
	return codeNames[-int64(code)]
}

// The statuses a plugin may give a response (response_set_status,
// send_response): final ones only. A 1xx is an interim response: sent as
// the answer, it would leave the client waiting for the final one.
const (
	MinStatus = 200
	MaxStatus = 599
)

// BodylessStatus reports whether a response with this status has no body
// (RFC 9110 section 6.4.1): a 1xx, 204 No Content or 304 Not Modified.
// On such a response body_set refuses a body and response_set_status drops
// the body; send_response refuses such a status with a body (sdk/ABI.md
// section 4, "Bodies: HEAD and statuses without one").
func BodylessStatus(status int) bool { return status < 200 || status == 204 || status == 304 }

// Kinds: what a header or body function acts on.
const (
	KindRequest  = 0
	KindResponse = 1
)

// Levels of the log function.
const (
	LogDebug = 0
	LogInfo  = 1
	LogWarn  = 2
	LogError = 3
)

// Kinds of metric_define.
const (
	MetricCounter   = 0
	MetricGauge     = 1
	MetricHistogram = 2
)

// Statuses of an http_batch result that are not HTTP statuses: a set of
// their own, apart from the return codes.
const (
	StatusTimeout    = -1 // the request's timeout or the hook's deadline passed
	StatusNetwork    = -2 // connect or network error
	StatusNotAllowed = -3 // the destination is not allowed for the route
	StatusOther      = -4 // any other failure, e.g. a response over its size limit
)

// Signature algorithms of crypto_verify: the JWS names of RFC 7518 (and
// RFC 8037 for EdDSA), numbered for the ABI.
const (
	AlgRS256 = 1 // RSASSA-PKCS1-v1_5 with SHA-256
	AlgPS256 = 2 // RSASSA-PSS with SHA-256, MGF1-SHA-256, 32-byte salt
	AlgES256 = 3 // ECDSA on P-256 with SHA-256; signature r||s, 64 bytes
	AlgEdDSA = 4 // Ed25519 (pure); signature 64 bytes
)

// Limits of the ABI. A guest may check them first to fail without a host
// call; the host enforces them whatever the guest does.
const (
	MaxErrorMessage = 1 << 10  // bytes of a set_error message kept
	MaxLogMessage   = 4 << 10  // bytes of a log line kept; the rest is cut
	MaxKVKey        = 256      // bytes in a KV key
	MaxMetrics      = 32       // metrics one plugin defines
	MaxMetricName   = 63       // bytes in a metric name (see ValidMetricName)
	MaxBatch        = 64       // requests in one http_batch
	MaxBatchBytes   = 16 << 20 // bytes of one encoded batch
	MaxBatchHeaders = 256      // headers of one outbound request: bounds the decoding work
	MaxConsumer     = 256      // bytes of a set_consumer id and of a rate_limit key
	MaxCacheKey     = 1024     // bytes of a cache_set_key key
	MaxClaims       = 16 << 10 // bytes of a set_claims JSON object

	// crypto_verify runs on the host, where the hook's deadline cannot
	// interrupt it; these bound the work of one call.
	MaxVerifyKey     = 16 << 10 // bytes of a key (BAD_ARGUMENT above); an 8192-bit RSA key is about 1.1 KB
	MaxVerifyMessage = 16 << 20 // bytes of a message (TOO_LARGE above): tens of ms of hashing at most
	MinRSABits       = 2048     // smallest RSA modulus: a smaller one is breakable in practice
	MaxRSABits       = 8192     // largest (crypto/tls's bound): a larger one costs ms of host CPU per check
)
