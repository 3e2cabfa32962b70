package wasm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/http-wasm/http-wasm-host-go/api/handler"

	"github.com/wasmgate/wasmgate/host/abi"
	"github.com/wasmgate/wasmgate/host/abi/httpwasm"
	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// Signature is a function type, in sdk/abi's value types.
type Signature struct {
	Params  []sdkabi.ValueType
	Results []sdkabi.ValueType
}

// String formats the signature as in error messages: "(i32,i32)->i32",
// "()->()", "(i32)->(i32,i64)".
func (s Signature) String() string {
	var b strings.Builder
	writeTypes(&b, s.Params, true)
	b.WriteString("->")
	writeTypes(&b, s.Results, len(s.Results) != 1)
	return b.String()
}

func writeTypes(b *strings.Builder, ts []sdkabi.ValueType, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.String())
	}
	if paren {
		b.WriteByte(')')
	}
}

// Equal reports whether both signatures are the same function type.
func (s Signature) Equal(o Signature) bool {
	return equalTypes(s.Params, o.Params) && equalTypes(s.Results, o.Results)
}

func equalTypes(a, b []sdkabi.ValueType) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ExternKind is what an import or export is.
type ExternKind byte

// Extern kinds, in their binary encoding.
const (
	ExternFunc   ExternKind = 0
	ExternTable  ExternKind = 1
	ExternMemory ExternKind = 2
	ExternGlobal ExternKind = 3
	ExternTag    ExternKind = 4
)

// String names the kind for messages ("a function").
func (k ExternKind) String() string {
	switch k {
	case ExternFunc:
		return "function"
	case ExternTable:
		return "table"
	case ExternMemory:
		return "memory"
	case ExternGlobal:
		return "global"
	case ExternTag:
		return "tag"
	}
	return "kind 0x" + strconv.FormatUint(uint64(k), 16)
}

// Import is one import of a module. Type is set for functions.
type Import struct {
	Module string
	Name   string
	Kind   ExternKind
	Type   Signature
}

// Export is one export of a module. Type is set for functions.
type Export struct {
	Name string
	Kind ExternKind
	Type Signature
}

// MemoryLimits are the declared limits of the module's memory, in 64 KiB
// pages.
type MemoryLimits struct {
	Min    uint32
	Max    uint32 // meaningful when HasMax
	HasMax bool
	Is64   bool // memory64 proposal: not supported
	Shared bool // threads proposal: not supported
}

// Hook is a guest export the host calls (sdk/ABI.md section 2).
type Hook uint8

// The hooks of ABI v1.
const (
	HookInit Hook = iota
	HookRequest
	HookResponse
	numHooks
)

// String returns the export name of the hook.
func (h Hook) String() string {
	switch h {
	case HookInit:
		return abi.HookInit
	case HookRequest:
		return abi.HookRequest
	case HookResponse:
		return abi.HookResponse
	}
	return "hook" + strconv.Itoa(int(h))
}

// ABI is the contract a module was written against.
type ABI uint8

const (
	// ABINative is sdk/ABI.md: the wasmgate import module and the
	// wasmgate_abi_v1 marker.
	ABINative ABI = iota
	// ABIHTTPWasm is http-wasm's handler ABI (the http_handler import
	// module, handle_request and handle_response), as http-wasm-host-go
	// v0.7.0 implements it; see host/abi/httpwasm.
	ABIHTTPWasm
)

// String names the ABI as the config's plugins[].abi does.
func (a ABI) String() string {
	if a == ABIHTTPWasm {
		return "http-wasm"
	}
	return "native"
}

// Export is the name the module exports hook h under: http-wasm's
// handle_request and handle_response take the places of on_request and
// on_response (it has no on_init).
func (h Hook) Export(a ABI) string {
	if a == ABIHTTPWasm {
		switch h {
		case HookRequest:
			return handler.FuncHandleRequest
		case HookResponse:
			return handler.FuncHandleResponse
		}
	}
	return h.String()
}

// hookSignatures are the exact types sdk/ABI.md section 2 requires: sdk/abi's
// Hooks, by Hook. A hook of one without the other stops the package from
// initialising, so the two cannot drift apart.
var hookSignatures = func() (sigs [numHooks]Signature) {
	hooks := sdkabi.Hooks()
	if len(hooks) != int(numHooks) {
		panic("host/wasm: sdk/abi declares " + strconv.Itoa(len(hooks)) + " hooks, this package knows " + strconv.Itoa(int(numHooks)))
	}
	for _, f := range hooks {
		h := Hook(0)
		for h < numHooks && h.String() != f.Name {
			h++
		}
		if h == numHooks {
			panic("host/wasm: unknown hook " + f.Name + " in sdk/abi")
		}
		sigs[h] = Signature{Params: f.Params, Results: f.Results}
	}
	return sigs
}()

// Hooks is a set of hooks.
type Hooks uint8

// Has reports whether h is in the set.
func (hs Hooks) Has(h Hook) bool { return hs&(1<<h) != 0 }

// List returns the hooks' export names in call order.
func (hs Hooks) List() []string {
	var out []string
	for h := Hook(0); h < numHooks; h++ {
		if hs.Has(h) {
			out = append(out, h.String())
		}
	}
	return out
}

// String lists the hooks, comma-separated.
func (hs Hooks) String() string { return strings.Join(hs.List(), ",") }

// ModuleInfo describes a plugin module, read from its binary without
// instantiating it.
type ModuleInfo struct {
	SHA256     string // hex
	Size       int    // bytes
	ABIVersion int    // N of the wasmgate_abi_vN marker; 0 when absent
	Imports    []Import
	Exports    []Export
	Memory     MemoryLimits // of the exported "memory" (or the first memory)
	Hooks      Hooks
	Reactor    bool // exports _initialize
	Command    bool // exports _start
	ABI        ABI  // the contract: detected from the imports and exports
	// Set by the engine and Runtime.Load.
	CompileTime time.Duration
	Engine      string
	// Interruption says how deadlines stop this module: "instrumented"
	// (cheap checks added at load, see instrument) or "context" (wazero's
	// context watch), with the reason when instrumentation was not possible.
	Interruption string
}

// HookNames lists the hooks' export names, in call order.
func (info ModuleInfo) HookNames() []string {
	var out []string
	for h := Hook(0); h < numHooks; h++ {
		if info.Hooks.Has(h) {
			out = append(out, h.Export(info.ABI))
		}
	}
	return out
}

// InitExport is what runs once after instantiation: _initialize for a
// reactor; for an http-wasm guest that is a WASI command, _start (http-wasm
// hosts run it, through wazero's default start functions); else "".
func (info ModuleInfo) InitExport() string {
	switch {
	case info.Reactor:
		return exportInit
	case info.Command && info.ABI == ABIHTTPWasm:
		return exportStart
	}
	return ""
}

// ValidationError lists why a module does not meet sdk/ABI.md.
type ValidationError struct {
	Problems []string
}

// Error implements error: the problems, separated by "; ".
func (e *ValidationError) Error() string { return strings.Join(e.Problems, "; ") }

// FormatError is a binary that is not a WebAssembly core module, or a
// malformed one.
type FormatError struct {
	Offset int
	Msg    string
}

// Error implements error.
func (e *FormatError) Error() string {
	if e.Offset < 0 {
		return "not a WebAssembly module: " + e.Msg
	}
	return "malformed WebAssembly module at offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Inspect reads a module's imports, exports, memory limits, ABI version and
// hooks, and checks them against sdk/ABI.md. The info is filled as far as
// the binary could be read, also when err is not nil: a *FormatError when
// the bytes are not a well-formed module, a *ValidationError listing every
// ABI violation otherwise. It does not compile the code: a module that
// passes may still fail to compile.
func Inspect(wasm []byte) (ModuleInfo, error) {
	info, err := parse(wasm)
	if err != nil {
		return info, err
	}
	return info, validate(&info)
}

// hostFuncs indexes abi.Functions() by name.
var hostFuncs = sync.OnceValue(func() map[string]Signature { return funcTable(abi.Functions()) })

// httpWasmFuncs indexes httpwasm.Functions() by name.
var httpWasmFuncs = sync.OnceValue(func() map[string]Signature { return funcTable(httpwasm.Functions()) })

func funcTable(fs []abi.Func) map[string]Signature {
	m := make(map[string]Signature, len(fs))
	for _, f := range fs {
		m[f.Name] = Signature{Params: f.Params, Results: f.Results}
	}
	return m
}

const (
	wasiModule    = "wasi_snapshot_preview1"
	exportMemory  = "memory"
	exportInit    = "_initialize"
	exportStart   = "_start"
	markerVersion = 1
)

// detectABI tells the contract a module was written against: a wasmgate
// marker or import is native; else an http_handler import or a
// handle_request export is http-wasm; else native, whose validation then
// says what is missing.
func detectABI(info *ModuleInfo) ABI {
	httpWasm := false
	for _, e := range info.Exports {
		switch {
		case strings.HasPrefix(e.Name, abi.VersionPrefix):
			return ABINative
		case e.Name == handler.FuncHandleRequest:
			httpWasm = true
		}
	}
	for _, im := range info.Imports {
		switch im.Module {
		case abi.ModuleName:
			return ABINative
		case httpwasm.ModuleName:
			httpWasm = true
		}
	}
	if httpWasm {
		return ABIHTTPWasm
	}
	return ABINative
}

// validate checks info against its ABI (sdk/ABI.md section 1, or
// http-wasm's) and sets ABI, Hooks, ABIVersion, Reactor and Command.
func validate(info *ModuleInfo) error {
	if info.ABI = detectABI(info); info.ABI == ABIHTTPWasm {
		return validateHTTPWasm(info)
	}
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }

	var other []string
	var marker, memory bool
	for _, e := range info.Exports {
		switch {
		case e.Name == abi.VersionMarker:
			marker = true
			info.ABIVersion = markerVersion
			if e.Kind != ExternFunc {
				add("export %q is a %s, want a function", e.Name, e.Kind)
			} else if want := (Signature{}); !e.Type.Equal(want) {
				add("export %q has signature %s, want %s", e.Name, e.Type, want)
			}
		case strings.HasPrefix(e.Name, abi.VersionPrefix):
			other = append(other, e.Name)
		case e.Name == exportMemory:
			memory = e.Kind == ExternMemory
			if !memory {
				add("export %q is a %s, want the linear memory", e.Name, e.Kind)
			}
		case e.Name == exportInit:
			info.Reactor = true
			if e.Kind != ExternFunc || !e.Type.Equal(Signature{}) {
				add("export %q must be a function ()->()", e.Name)
			}
		case e.Name == exportStart:
			info.Command = true
		}
		for h := Hook(0); h < numHooks; h++ {
			if e.Name != h.String() {
				continue
			}
			if e.Kind != ExternFunc {
				add("export %q is a %s, want a function", e.Name, e.Kind)
			} else if want := hookSignatures[h]; !e.Type.Equal(want) {
				add("export %q has signature %s, want %s", e.Name, e.Type, want)
			} else {
				info.Hooks |= 1 << h
			}
		}
	}
	if !marker {
		if len(other) > 0 {
			v := strings.TrimPrefix(other[0], abi.VersionPrefix)
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				info.ABIVersion = n
			}
			add("module targets wasmgate ABI v%s (exports %q); this gateway implements v1 (%q)", v, other[0], abi.VersionMarker)
		} else {
			add("missing export %q", abi.VersionMarker)
		}
	}
	if info.Hooks == 0 && marker {
		add("exports none of the hooks %q, %q, %q", abi.HookInit, abi.HookRequest, abi.HookResponse)
	}
	checkMemory(add, info, memory)
	if info.Command {
		add("exports %q (a WASI command, whose runtime exits after main); build a reactor (Go: -buildmode=c-shared, clang: -mexec-model=reactor)", exportStart)
	}

	for _, im := range info.Imports {
		switch im.Module {
		case abi.ModuleName:
			checkImport(add, im, hostFuncs())
		case wasiModule:
			checkImport(add, im, wasiFuncs())
		case httpwasm.ModuleName:
			add("unknown import %q.%q (a module uses one ABI: wasmgate's or http-wasm's)", im.Module, im.Name)
		default:
			add("unknown import %q.%q", im.Module, im.Name)
		}
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

// checkMemory checks the exported memory, which both ABIs require: present
// (exported says so), 32-bit and unshared.
func checkMemory(add func(string, ...any), info *ModuleInfo, exported bool) {
	if !exported {
		add("missing export %q (the linear memory)", exportMemory)
	} else if info.Memory.Is64 || info.Memory.Shared {
		add("export %q must be a 32-bit unshared memory", exportMemory)
	}
}

// checkImport checks an import of a host module whose functions are funcs.
func checkImport(add func(string, ...any), im Import, funcs map[string]Signature) {
	want, ok := funcs[im.Name]
	switch {
	case !ok:
		add("unknown import %q.%q", im.Module, im.Name)
	case im.Kind != ExternFunc:
		add("import %q.%q is a %s, want a function", im.Module, im.Name, im.Kind)
	case !im.Type.Equal(want):
		add("import %q.%q has signature %s, want %s", im.Module, im.Name, im.Type, want)
	}
}

// httpWasmHooks are the exports of an http-wasm guest, by hook.
var httpWasmHooks = [...]struct {
	hook Hook
	sig  Signature
}{
	{HookRequest, Signature{Results: []sdkabi.ValueType{sdkabi.I64}}},
	{HookResponse, Signature{Params: []sdkabi.ValueType{sdkabi.I32, sdkabi.I32}}},
}

// validateHTTPWasm checks an http-wasm guest: handle_request ()->i64 and
// handle_response (i32,i32)->() exported, its memory, and imports only of
// http_handler and WASI, each with its signature.
func validateHTTPWasm(info *ModuleInfo) error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	memory := false
	for _, e := range info.Exports {
		switch e.Name {
		case exportMemory:
			memory = e.Kind == ExternMemory
			if !memory {
				add("export %q is a %s, want the linear memory", e.Name, e.Kind)
			}
		case exportInit, exportStart:
			if e.Kind != ExternFunc || !e.Type.Equal(Signature{}) {
				add("export %q must be a function ()->()", e.Name)
			}
			info.Reactor = info.Reactor || e.Name == exportInit
			info.Command = info.Command || e.Name == exportStart
		}
		for _, hk := range httpWasmHooks {
			if e.Name != hk.hook.Export(ABIHTTPWasm) {
				continue
			}
			if e.Kind != ExternFunc {
				add("export %q is a %s, want a function", e.Name, e.Kind)
			} else if !e.Type.Equal(hk.sig) {
				add("export %q has signature %s, want %s", e.Name, e.Type, hk.sig)
			} else {
				info.Hooks |= 1 << hk.hook
			}
		}
	}
	for _, hk := range httpWasmHooks {
		if name := hk.hook.Export(ABIHTTPWasm); !info.Hooks.Has(hk.hook) && !slices.ContainsFunc(info.Exports, func(e Export) bool { return e.Name == name }) {
			add("missing export %q (an http-wasm guest exports handle_request ()->i64 and handle_response (i32,i32)->())", name)
		}
	}
	checkMemory(add, info, memory)
	for _, im := range info.Imports {
		switch im.Module {
		case httpwasm.ModuleName:
			checkImport(add, im, httpWasmFuncs())
		case wasiModule:
			checkImport(add, im, wasiFuncs())
		default:
			add("unknown import %q.%q", im.Module, im.Name)
		}
	}
	if len(probs) > 0 {
		return &ValidationError{Problems: probs}
	}
	return nil
}

// parse reads the sections of a core module that describe its interface.
// The code section is skipped: it is the compiler's business.
func parse(wasm []byte) (ModuleInfo, error) {
	sum := sha256.Sum256(wasm)
	info := ModuleInfo{SHA256: hex.EncodeToString(sum[:]), Size: len(wasm)}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return info, &FormatError{Offset: -1, Msg: "no \\0asm magic number"}
	}
	switch v := binary.LittleEndian.Uint32(wasm[4:8]); {
	case v == 1:
	case v&0xffff == 0x0d: // layer 1, version 0x0d: the component model
		return info, &FormatError{Offset: -1, Msg: "a WebAssembly component, not a core module"}
	default:
		return info, &FormatError{Offset: -1, Msg: "unsupported binary version " + strconv.FormatUint(uint64(v), 10)}
	}

	var (
		types     []Signature
		funcTypes []uint32 // type index of every function, imports first
		mems      []MemoryLimits
		rawExp    []struct {
			name string
			kind ExternKind
			idx  uint32
		}
	)
	r := reader{b: wasm, off: 8}
	for !r.done() {
		id := r.byte()
		size := r.u32()
		if r.err != nil {
			return info, r.err
		}
		start := r.off
		if uint64(size) > uint64(len(wasm)-start) {
			return info, &FormatError{Offset: start, Msg: "section " + strconv.Itoa(int(id)) + " runs past the end"}
		}
		s := reader{b: wasm[:start+int(size)], off: start}
		switch id {
		case 1: // type
			n := s.count()
			for i := uint32(0); i < n && s.err == nil; i++ {
				if form := s.byte(); form != 0x60 && s.err == nil {
					s.fail("unsupported type form 0x" + strconv.FormatUint(uint64(form), 16))
					break
				}
				var sig Signature
				sig.Params = s.valtypes()
				sig.Results = s.valtypes()
				types = append(types, sig)
			}
		case 2: // import
			n := s.count()
			for i := uint32(0); i < n && s.err == nil; i++ {
				im := Import{Module: s.name(), Name: s.name(), Kind: ExternKind(s.byte())}
				switch im.Kind {
				case ExternFunc:
					ti := s.u32()
					funcTypes = append(funcTypes, ti)
					im.Type = s.sig(types, ti)
				case ExternTable:
					s.byte() // reftype
					s.limits()
				case ExternMemory:
					mems = append(mems, s.limits())
				case ExternGlobal:
					s.byte() // valtype
					s.byte() // mutability
				case ExternTag:
					s.byte() // attribute
					s.u32()  // type index
				default:
					s.fail("unknown import kind 0x" + strconv.FormatUint(uint64(im.Kind), 16))
				}
				info.Imports = append(info.Imports, im)
			}
		case 3: // function
			n := s.count()
			for i := uint32(0); i < n && s.err == nil; i++ {
				funcTypes = append(funcTypes, s.u32())
			}
		case 5: // memory
			n := s.count()
			for i := uint32(0); i < n && s.err == nil; i++ {
				mems = append(mems, s.limits())
			}
		case 7: // export
			n := s.count()
			for i := uint32(0); i < n && s.err == nil; i++ {
				name := s.name()
				kind := ExternKind(s.byte())
				idx := s.u32()
				rawExp = append(rawExp, struct {
					name string
					kind ExternKind
					idx  uint32
				}{name, kind, idx})
			}
		}
		// Other sections (code, data, custom...) are skipped whole.
		if s.err != nil {
			return info, s.err
		}
		if parsed := id == 1 || id == 2 || id == 3 || id == 5 || id == 7; parsed && s.off != start+int(size) {
			return info, &FormatError{Offset: s.off, Msg: "section " + strconv.Itoa(int(id)) + " has trailing bytes"}
		}
		r.off = start + int(size)
	}

	memIdx := -1
	for _, e := range rawExp {
		ex := Export{Name: e.name, Kind: e.kind}
		switch e.kind {
		case ExternFunc:
			if uint64(e.idx) >= uint64(len(funcTypes)) {
				return info, &FormatError{Offset: -1, Msg: fmt.Sprintf("export %q names function %d of %d", e.name, e.idx, len(funcTypes))}
			}
			ti := funcTypes[e.idx]
			if uint64(ti) >= uint64(len(types)) {
				return info, &FormatError{Offset: -1, Msg: fmt.Sprintf("function %d has type %d of %d", e.idx, ti, len(types))}
			}
			ex.Type = types[ti]
		case ExternMemory:
			if e.name == exportMemory {
				memIdx = int(e.idx)
			}
		}
		info.Exports = append(info.Exports, ex)
	}
	switch {
	case memIdx >= 0 && memIdx < len(mems):
		info.Memory = mems[memIdx]
	case len(mems) > 0:
		info.Memory = mems[0]
	}
	return info, nil
}

// reader decodes the binary format; the first error sticks and every
// later read returns zero, so callers check once per section.
type reader struct {
	b   []byte
	off int
	err error
	// imm is the index the last instr read, for instrGlobal and instrFunc.
	imm uint32
}

func (r *reader) done() bool { return r.err != nil || r.off >= len(r.b) }

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = &FormatError{Offset: r.off, Msg: msg}
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits+7 || shift >= 64 {
			r.fail("integer too long")
			return 0
		}
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if bits < 64 && v>>bits != 0 {
				r.fail("integer overflows " + strconv.Itoa(int(bits)) + " bits")
				return 0
			}
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

// count reads a vector length, bounded by the bytes left (every element
// takes at least one byte) so a forged count cannot make us loop or
// allocate for long.
func (r *reader) count() uint32 {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.off) {
		r.fail("vector length " + strconv.FormatUint(uint64(n), 10) + " exceeds the section")
		return 0
	}
	return n
}

func (r *reader) name() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

func (r *reader) valtypes() []sdkabi.ValueType {
	n := r.count()
	if r.err != nil || n == 0 {
		return nil
	}
	out := make([]sdkabi.ValueType, n)
	for i := range out {
		t := sdkabi.ValueType(r.byte())
		switch t {
		case sdkabi.I32, sdkabi.I64, sdkabi.F32, sdkabi.F64, sdkabi.V128, sdkabi.FuncRef, sdkabi.ExternRef:
		default:
			if r.err == nil {
				r.fail("unsupported value type " + t.String())
			}
			return nil
		}
		out[i] = t
	}
	return out
}

func (r *reader) sig(types []Signature, ti uint32) Signature {
	if r.err != nil {
		return Signature{}
	}
	if uint64(ti) >= uint64(len(types)) {
		r.fail("type index " + strconv.FormatUint(uint64(ti), 10) + " out of range")
		return Signature{}
	}
	return types[ti]
}

// limits reads a limits pair. A memory64 or shared memory is read and
// flagged; validate rejects it.
func (r *reader) limits() MemoryLimits {
	flags := r.byte()
	if flags > 7 {
		r.fail("bad limits flags 0x" + strconv.FormatUint(uint64(flags), 16))
		return MemoryLimits{}
	}
	bits := uint(32)
	if flags&4 != 0 {
		bits = 64
	}
	clamp := func(v uint64) uint32 {
		if v > 1<<32-1 {
			return 1<<32 - 1
		}
		return uint32(v)
	}
	l := MemoryLimits{Min: clamp(r.uleb(bits)), Is64: flags&4 != 0, Shared: flags&2 != 0}
	if flags&1 != 0 {
		l.Max, l.HasMax = clamp(r.uleb(bits)), true
	}
	return l
}
