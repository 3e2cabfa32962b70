package sdktest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// The language-neutral half of the checks of an SDK's declarations against
// sdk/abi: each SDK's test parses its own source (sys.rs, wasmgate.h) into
// signatures and constant texts, and these compare them with sdk/abi.

// FormatSignature writes a function type as "(i32,i64)->i32" from the wasm
// names of its parameters and results.
func FormatSignature(params []string, results ...string) string {
	return "(" + strings.Join(params, ",") + ")->" + strings.Join(results, ",")
}

// Signature writes a host function's signature as FormatSignature does.
func Signature(f abi.Func) string {
	var p, r []string
	for _, v := range f.Params {
		p = append(p, v.String())
	}
	for _, v := range f.Results {
		r = append(r, v.String())
	}
	return FormatSignature(p, r...)
}

// CheckSignatures compares the host functions an SDK declares, got (ABI
// name to FormatSignature's text), with sdk/abi's: every one with its
// exact signature, and no other. sdkName is how the SDK names a function,
// for the messages ("sys::log", "wasmgate_log").
func CheckSignatures(t testing.TB, got map[string]string, sdkName func(name string) string) {
	t.Helper()
	want := map[string]string{}
	for _, f := range abi.Functions() {
		want[f.Name] = Signature(f)
	}
	for name, sig := range want {
		if got[name] != sig {
			t.Errorf("%s: %q, want %q", sdkName(name), got[name], sig)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is not a host function of sdk/abi", sdkName(name))
		}
	}
}

// EvalConst evaluates the text of an integer constant: N, -N or A << B.
func EvalConst(t testing.TB, s string) int64 {
	t.Helper()
	if a, b, ok := strings.Cut(s, "<<"); ok {
		return EvalConst(t, strings.TrimSpace(a)) << EvalConst(t, strings.TrimSpace(b))
	}
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		t.Errorf("constant %q: %v", s, err)
	}
	return v
}

// ABIConstants are sdk/abi's integer constants by the names the C SDK
// gives them after its WASMGATE_ prefix (the Rust SDK's, in its abi
// module, are the same but for VERSION): the version, the hook results,
// the codes, the status bounds, the kinds, log levels, metric kinds,
// outbound statuses, signature algorithms and limits.
func ABIConstants() map[string]int64 {
	return map[string]int64{
		"ABI_VERSION": abi.Version, "CONTINUE": abi.Continue, "STOP": abi.Stop,
		"NOT_FOUND": abi.NotFound, "BAD_ARGUMENT": abi.BadArgument, "NOT_ALLOWED": abi.NotAllowed,
		"TOO_LARGE": abi.TooLarge, "UNAVAILABLE": abi.Unavailable,
		"MIN_STATUS": abi.MinStatus, "MAX_STATUS": abi.MaxStatus,
		"KIND_REQUEST": abi.KindRequest, "KIND_RESPONSE": abi.KindResponse,
		"LOG_DEBUG": abi.LogDebug, "LOG_INFO": abi.LogInfo, "LOG_WARN": abi.LogWarn, "LOG_ERROR": abi.LogError,
		"METRIC_COUNTER": abi.MetricCounter, "METRIC_GAUGE": abi.MetricGauge, "METRIC_HISTOGRAM": abi.MetricHistogram,
		"STATUS_TIMEOUT": abi.StatusTimeout, "STATUS_NETWORK": abi.StatusNetwork,
		"STATUS_NOT_ALLOWED": abi.StatusNotAllowed, "STATUS_OTHER": abi.StatusOther,
		"ALG_RS256": abi.AlgRS256, "ALG_PS256": abi.AlgPS256, "ALG_ES256": abi.AlgES256, "ALG_EDDSA": abi.AlgEdDSA,
		"MAX_ERROR_MESSAGE": abi.MaxErrorMessage, "MAX_LOG_MESSAGE": abi.MaxLogMessage, "MAX_KV_KEY": abi.MaxKVKey,
		"MAX_METRICS": abi.MaxMetrics, "MAX_METRIC_NAME": abi.MaxMetricName, "MAX_BATCH": abi.MaxBatch,
		"MAX_BATCH_BYTES": abi.MaxBatchBytes, "MAX_BATCH_HEADERS": abi.MaxBatchHeaders,
		"MAX_CONSUMER": abi.MaxConsumer, "MAX_CACHE_KEY": abi.MaxCacheKey, "MAX_CLAIMS": abi.MaxClaims,
		"MAX_VERIFY_KEY": abi.MaxVerifyKey, "MAX_VERIFY_MESSAGE": abi.MaxVerifyMessage,
	}
}

// CheckConstants checks an SDK's value of each of ABIConstants: lookup
// returns, for a name of ABIConstants, the text of the SDK's constant
// (evaluated by EvalConst; "" when it has none) and the SDK's name for it,
// for the messages ("abi::VERSION", "WASMGATE_ABI_VERSION").
func CheckConstants(t testing.TB, lookup func(name string) (text, sdkName string)) {
	t.Helper()
	for name, v := range ABIConstants() {
		text, sdkName := lookup(name)
		if got := EvalConst(t, text); got != v {
			t.Errorf("%s = %q (%d), want %d", sdkName, text, got, v)
		}
	}
}
