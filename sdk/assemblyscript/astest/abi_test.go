package astest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/sdk/abi"
)

// These tests read the SDK's sources and need no node: the declarations
// of assembly/host.ts and the values of assembly/abi.ts must be sdk/abi's,
// so that the SDK cannot drift from the contract.

func readSource(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sdkDir, "assembly", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// externRE matches one host function declaration of host.ts.
var externRE = regexp.MustCompile(`@external\("([^"]+)", "([^"]+)"\)\s*\nexport declare function (\w+)\(([^)]*)\): (\w+);`)

// TestHostDeclarations: host.ts declares every host function of sdk/abi,
// under its name, with its exact WebAssembly signature, and nothing else.
func TestHostDeclarations(t *testing.T) {
	src := readSource(t, "host.ts")
	valueType := map[string]abi.ValueType{"i32": abi.I32, "usize": abi.I32, "isize": abi.I32, "u32": abi.I32, "i64": abi.I64, "u64": abi.I64, "f64": abi.F64, "f32": abi.F32}
	declared := map[string]abi.Func{}
	for _, m := range externRE.FindAllStringSubmatch(src, -1) {
		module, name, tsName, params, result := m[1], m[2], m[3], m[4], m[5]
		if module != abi.ModuleName {
			t.Errorf("%s imports from %q, want %q", name, module, abi.ModuleName)
		}
		if tsName != name {
			t.Errorf("%s is declared as %s: keep the ABI's name", name, tsName)
		}
		f := abi.Func{Name: name, Params: []abi.ValueType{}}
		for _, p := range strings.Split(params, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			_, typ, _ := strings.Cut(p, ":")
			vt, ok := valueType[strings.TrimSpace(typ)]
			if !ok {
				t.Errorf("%s: parameter %q has no wasm type this test knows", name, p)
			}
			f.Params = append(f.Params, vt)
		}
		if result != "void" {
			f.Results = []abi.ValueType{valueType[result]}
		}
		if _, dup := declared[name]; dup {
			t.Errorf("%s declared twice", name)
		}
		declared[name] = f
	}
	if n := strings.Count(src, "@external("); n != len(declared) {
		t.Errorf("%d @external in host.ts, %d parsed: a declaration this test cannot read", n, len(declared))
	}
	for _, want := range abi.Functions() {
		got, ok := declared[want.Name]
		if !ok {
			t.Errorf("host.ts lacks %s", want.Name)
			continue
		}
		if !slices.Equal(got.Params, want.Params) || !slices.Equal(got.Results, want.Results) {
			t.Errorf("%s: declared %v -> %v, the ABI says %v -> %v", want.Name, got.Params, got.Results, want.Params, want.Results)
		}
		delete(declared, want.Name)
	}
	for name := range declared {
		t.Errorf("host.ts declares %s, which is not a host function of sdk/abi", name)
	}
}

// enumValues returns the members of `export enum NAME { ... }` in src.
func enumValues(t *testing.T, src, name string) map[string]int64 {
	t.Helper()
	m := regexp.MustCompile(`(?s)export enum ` + name + ` \{(.*?)\n\}`).FindStringSubmatch(src)
	if m == nil {
		t.Fatalf("abi.ts has no enum %s", name)
	}
	out := map[string]int64{}
	for _, mm := range regexp.MustCompile(`(?m)^\s*(\w+) = (-?\d+),`).FindAllStringSubmatch(m[1], -1) {
		v, _ := strconv.ParseInt(mm[2], 10, 64)
		out[mm[1]] = v
	}
	return out
}

// TestABIValues: the codes, kinds, levels, statuses, algorithms and limits
// of abi.ts are sdk/abi's.
func TestABIValues(t *testing.T) {
	src := readSource(t, "abi.ts")
	for _, e := range []struct {
		enum string
		want map[string]int64
	}{
		{"Code", map[string]int64{"Ok": 0, "NotFound": abi.NotFound, "BadArgument": abi.BadArgument, "NotAllowed": abi.NotAllowed, "TooLarge": abi.TooLarge, "Unavailable": abi.Unavailable}},
		{"Action", map[string]int64{"Continue": abi.Continue, "Stop": abi.Stop, "Fail": -1}},
		{"Kind", map[string]int64{"Request": abi.KindRequest, "Response": abi.KindResponse}},
		{"Level", map[string]int64{"Debug": abi.LogDebug, "Info": abi.LogInfo, "Warn": abi.LogWarn, "Error": abi.LogError}},
		{"MetricKind", map[string]int64{"Counter": abi.MetricCounter, "Gauge": abi.MetricGauge, "Histogram": abi.MetricHistogram}},
		{"BatchStatus", map[string]int64{"Timeout": abi.StatusTimeout, "Network": abi.StatusNetwork, "NotAllowed": abi.StatusNotAllowed, "Other": abi.StatusOther}},
		{"Alg", map[string]int64{"RS256": abi.AlgRS256, "PS256": abi.AlgPS256, "ES256": abi.AlgES256, "EdDSA": abi.AlgEdDSA}},
	} {
		if got := enumValues(t, src, e.enum); !mapsEqual(got, e.want) {
			t.Errorf("enum %s = %v, want %v", e.enum, got, e.want)
		}
	}

	consts := map[string]int64{}
	for _, m := range regexp.MustCompile(`(?m)^export const (\w+): i32 = (\d+)(?: << (\d+))?;`).FindAllStringSubmatch(src, -1) {
		v, _ := strconv.ParseInt(m[2], 10, 64)
		if m[3] != "" {
			s, _ := strconv.Atoi(m[3])
			v <<= s
		}
		consts[m[1]] = v
	}
	want := map[string]int64{
		"ABI_VERSION": abi.Version, "MIN_STATUS": abi.MinStatus, "MAX_STATUS": abi.MaxStatus,
		"MAX_ERROR_MESSAGE": abi.MaxErrorMessage, "MAX_LOG_MESSAGE": abi.MaxLogMessage, "MAX_KV_KEY": abi.MaxKVKey,
		"MAX_METRICS": abi.MaxMetrics, "MAX_METRIC_NAME": abi.MaxMetricName, "MAX_BATCH": abi.MaxBatch,
		"MAX_BATCH_BYTES": abi.MaxBatchBytes, "MAX_BATCH_HEADERS": abi.MaxBatchHeaders, "MAX_CONSUMER": abi.MaxConsumer,
		"MAX_CACHE_KEY": abi.MaxCacheKey, "MAX_CLAIMS": abi.MaxClaims, "MAX_VERIFY_KEY": abi.MaxVerifyKey,
		"MAX_VERIFY_MESSAGE": abi.MaxVerifyMessage,
	}
	if !mapsEqual(consts, want) {
		t.Errorf("abi.ts constants %v, want %v", consts, want)
	}

	for code := int32(-1); code >= -5; code-- {
		name := abi.CodeName(code)
		if !strings.Contains(src, "return \""+name+"\"") {
			t.Errorf("codeName in abi.ts lacks %s", name)
		}
	}
	if exports := readSource(t, "exports.ts"); !strings.Contains(exports, "export function "+abi.VersionMarker+"(): void {}") {
		t.Errorf("exports.ts does not export the marker %s", abi.VersionMarker)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestReadmeBuildLine: README.md shows the build line the tests use, for
// every example, and asconfig.json holds what that line relies on.
func TestReadmeBuildLine(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(sdkDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, m := range modules {
		if !strings.HasPrefix(m.entry, "examples/") {
			continue
		}
		line := "npx " + strings.Join(ascArgs(m.entry, "build/"+m.name+".wasm"), " ")
		if !strings.Contains(readme, line) {
			t.Errorf("README.md lacks the build line %q", line)
		}
	}
	cfg, err := os.ReadFile(filepath.Join(sdkDir, "asconfig.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"runtime": "minimal"`, `"exportStart": "_initialize"`, `"abort=wasmgate_abort"`,
		`"trace=wasmgate_trace"`, `"seed=wasmgate_seed"`, `"console=wasmgate_console"`, `"Date=wasmgate_Date"`,
		`"performance=wasmgate_performance"`} {
		if !strings.Contains(string(cfg), want) {
			t.Errorf("asconfig.json lacks %s", want)
		}
	}
	pkg, err := os.ReadFile(filepath.Join(sdkDir, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"assemblyscript": "\d+\.\d+\.\d+"`).Match(pkg) {
		t.Errorf("package.json must pin assemblyscript to an exact version:\n%s", pkg)
	}
}
