//go:build cgo && ((linux && (amd64 || arm64)) || (darwin && (amd64 || arm64)) || (windows && amd64))

package wasm

// The per-call paths of the wasmtime engine, on wasmtime's C API directly.
//
// wasmtime-go (which links libwasmtime) wraps every call in reflection,
// finalizers and global locks: a hook call through Func.Call costs ~4µs,
// and a host function through Linker.FuncNew allocates its arguments. The
// engine keeps wasmtime-go for what is done once (engine, config, module
// compilation and serialization, stores, linkers) and goes to the C API
// for what is done per call: instantiating, calling a hook
// (wasmtime_func_call_unchecked), host functions (unchecked callbacks
// with the raw value slots), guest memory, and the per-store epoch
// deadline callback that lets one store be interrupted without the others.
//
// wasmtime-go's headers live in its module directory, which a cgo
// preamble here cannot name, so the few declarations used are repeated
// below from wasmtime v39's headers (wasm.h, wasmtime/*.h); go.mod pins
// wasmtime-go v39.0.1, whose library they match. The layouts of the
// structs passed by value were checked against those headers (sizes in
// the comments), and wtCheckLayout checks the Go side at engine start.

/*
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct wasm_engine_t wasm_engine_t;
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_caller wasmtime_caller_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct wasm_trap_t wasm_trap_t;
typedef struct wasmtime_linker wasmtime_linker_t;
typedef struct wasmtime_module wasmtime_module_t;
typedef struct wasm_functype_t wasm_functype_t;
typedef struct wasm_valtype_t wasm_valtype_t;
typedef struct wasm_frame_t wasm_frame_t;
typedef uint8_t wasm_valkind_t;
typedef uint8_t wasmtime_trap_code_t;
typedef uint8_t wasmtime_update_deadline_kind_t;
typedef uint8_t wasmtime_extern_kind_t;

typedef struct wasm_byte_vec_t { size_t size; char *data; } wasm_byte_vec_t;                  // 16
typedef wasm_byte_vec_t wasm_name_t;
typedef struct wasm_frame_vec_t { size_t size; wasm_frame_t **data; } wasm_frame_vec_t;        // 16
typedef struct wasm_valtype_vec_t { size_t size; wasm_valtype_t **data; } wasm_valtype_vec_t;  // 16

typedef struct wasmtime_func { uint64_t store_id; void *__private; } wasmtime_func_t;  // 16
typedef struct wasmtime_memory {                                                       // 24
	struct { uint64_t store_id; uint32_t __private1; } inner;
	uint32_t __private2;
} wasmtime_memory_t;
typedef struct wasmtime_table {                                                        // 24
	struct { uint64_t store_id; uint32_t __private1; } inner;
	uint32_t __private2;
} wasmtime_table_t;
typedef struct wasmtime_global {                                                       // 24
	uint64_t store_id; uint32_t __private1; uint32_t __private2; uint32_t __private3;
} wasmtime_global_t;
typedef union wasmtime_extern_union {
	wasmtime_func_t func;
	wasmtime_global_t global;
	wasmtime_table_t table;
	wasmtime_memory_t memory;
	struct wasmtime_sharedmemory *sharedmemory;
} wasmtime_extern_union_t;
typedef struct wasmtime_extern { wasmtime_extern_kind_t kind; wasmtime_extern_union_t of; } wasmtime_extern_t;  // 32, of at 8
typedef struct wasmtime_instance { uint64_t store_id; size_t __private; } wasmtime_instance_t;  // 16
typedef union wasmtime_val_raw {                                                                 // 16
	int32_t i32; int64_t i64; float f32; double f64; uint8_t v128[16];
	uint32_t anyref; uint32_t externref; void *funcref;
} wasmtime_val_raw_t;

#define WG_EXTERN_FUNC 0
#define WG_EXTERN_GLOBAL 1
#define WG_EXTERN_MEMORY 3

// wg_val has room for a wasmtime_val_t (32 bytes, the value at 8).
typedef struct { uint8_t kind; uint8_t pad[7]; union { int32_t i32; int64_t i64; uint8_t bytes[40]; } of; } wg_val;
extern void wasmtime_global_get(wasmtime_context_t *store, const wasmtime_global_t *global, wg_val *out);

typedef wasm_trap_t *(*wasmtime_func_unchecked_callback_t)(void *env, wasmtime_caller_t *caller,
	wasmtime_val_raw_t *args_and_results, size_t num_args_and_results);

extern wasmtime_context_t *wasmtime_store_context(wasmtime_store_t *store);
extern void wasmtime_store_epoch_deadline_callback(wasmtime_store_t *store,
	wasmtime_error_t *(*func)(wasmtime_context_t *, void *, uint64_t *, wasmtime_update_deadline_kind_t *),
	void *data, void (*finalizer)(void *));
extern void wasmtime_context_set_epoch_deadline(wasmtime_context_t *context, uint64_t ticks_beyond_current);
extern wasmtime_error_t *wasmtime_context_set_fuel(wasmtime_context_t *store, uint64_t fuel);
extern wasmtime_error_t *wasmtime_context_get_fuel(const wasmtime_context_t *context, uint64_t *fuel);
extern wasmtime_error_t *wasmtime_error_new(const char *msg);
extern void wasmtime_error_message(const wasmtime_error_t *error, wasm_name_t *message);
extern void wasmtime_error_wasm_trace(const wasmtime_error_t *error, wasm_frame_vec_t *out);
extern void wasmtime_error_delete(wasmtime_error_t *error);
extern wasm_trap_t *wasmtime_trap_new(const char *msg, size_t msg_len);
extern bool wasmtime_trap_code(const wasm_trap_t *trap, wasmtime_trap_code_t *code);
extern void wasm_trap_message(const wasm_trap_t *trap, wasm_name_t *out);
extern void wasm_trap_trace(const wasm_trap_t *trap, wasm_frame_vec_t *out);
extern void wasm_trap_delete(wasm_trap_t *trap);
extern uint32_t wasm_frame_func_index(const wasm_frame_t *frame);
extern const wasm_name_t *wasmtime_frame_func_name(const wasm_frame_t *frame);
extern void wasm_frame_vec_delete(wasm_frame_vec_t *vec);
extern void wasm_byte_vec_delete(wasm_byte_vec_t *vec);
extern wasmtime_error_t *wasmtime_func_call_unchecked(wasmtime_context_t *store, const wasmtime_func_t *func,
	wasmtime_val_raw_t *args_and_results, size_t args_and_results_len, wasm_trap_t **trap);
extern wasmtime_error_t *wasmtime_linker_define_func_unchecked(wasmtime_linker_t *linker,
	const char *module, size_t module_len, const char *name, size_t name_len, const wasm_functype_t *ty,
	wasmtime_func_unchecked_callback_t cb, void *data, void (*finalizer)(void *));
extern wasmtime_context_t *wasmtime_caller_context(wasmtime_caller_t *caller);
extern wasmtime_error_t *wasmtime_linker_instantiate(const wasmtime_linker_t *linker, wasmtime_context_t *store,
	const wasmtime_module_t *module, wasmtime_instance_t *instance, wasm_trap_t **trap);
extern bool wasmtime_instance_export_get(wasmtime_context_t *store, const wasmtime_instance_t *instance,
	const char *name, size_t name_len, wasmtime_extern_t *item);
extern void wasmtime_extern_delete(wasmtime_extern_t *val);
extern uint8_t *wasmtime_memory_data(const wasmtime_context_t *store, const wasmtime_memory_t *memory);
extern size_t wasmtime_memory_data_size(const wasmtime_context_t *store, const wasmtime_memory_t *memory);
extern wasm_valtype_t *wasm_valtype_new(wasm_valkind_t kind);
extern void wasm_valtype_vec_new(wasm_valtype_vec_t *out, size_t size, wasm_valtype_t *const data[]);
extern wasm_functype_t *wasm_functype_new(wasm_valtype_vec_t *params, wasm_valtype_vec_t *results);
extern void wasm_functype_delete(wasm_functype_t *type);

extern bool wasmtime_caller_export_get(wasmtime_caller_t *caller, const char *name, size_t name_len,
	wasmtime_extern_t *item);

typedef struct wasm_config_t wasm_config_t;
typedef struct wasmtime_pooling_allocation_config_t wasmtime_pooling_allocation_config_t;
extern wasmtime_pooling_allocation_config_t *wasmtime_pooling_allocation_config_new(void);
extern void wasmtime_pooling_allocation_config_delete(wasmtime_pooling_allocation_config_t *);
extern void wasmtime_pooling_allocation_config_total_core_instances_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_total_memories_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_total_tables_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_max_memory_size_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_max_unused_warm_slots_set(wasmtime_pooling_allocation_config_t *, uint32_t);
extern void wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_config_table_keep_resident_set(wasmtime_pooling_allocation_config_t *, size_t);
extern void wasmtime_pooling_allocation_strategy_set(wasm_config_t *, const wasmtime_pooling_allocation_config_t *);

static void wg_pooling(wasm_config_t *cfg, uint32_t slots, size_t max_memory) {
	wasmtime_pooling_allocation_config_t *p = wasmtime_pooling_allocation_config_new();
	wasmtime_pooling_allocation_config_total_core_instances_set(p, slots);
	wasmtime_pooling_allocation_config_total_memories_set(p, slots);
	wasmtime_pooling_allocation_config_total_tables_set(p, slots);
	wasmtime_pooling_allocation_config_max_memory_size_set(p, max_memory);
	// A slot given back keeps its first 2 MiB mapped (zeroed with memset
	// rather than dropped), so the next instance does not fault them in
	// again: a fault costs microseconds, and a small module's instance
	// touches its stack and data pages at once (Rust's 1 MiB stack, then
	// its data: 2 MiB covers it).
	// At most 16 such slots stay warm while unused: 32 MiB resident.
	wasmtime_pooling_allocation_config_linear_memory_keep_resident_set(p, 2 << 20);
	wasmtime_pooling_allocation_config_table_keep_resident_set(p, 1 << 16);
	wasmtime_pooling_allocation_config_max_unused_warm_slots_set(p, 16);
	wasmtime_pooling_allocation_strategy_set(cfg, p);
	wasmtime_pooling_allocation_config_delete(p);
}

// wgHostCall is the Go side of every host function (wasmtime_export.go).
extern void *wgHostCall(uintptr_t env, void *caller, void *ctx, void *vals, size_t n);

static wasm_trap_t *wg_host_shim(void *env, wasmtime_caller_t *caller, wasmtime_val_raw_t *vals, size_t n) {
	return (wasm_trap_t *)wgHostCall((uintptr_t)env, caller, wasmtime_caller_context(caller), vals, n);
}

// wg_define defines a host function whose Go side is wgHostCall(env).
// kinds are wasm_valkind_t bytes.
static wasmtime_error_t *wg_define(wasmtime_linker_t *linker, const char *module, size_t module_len,
		const char *name, size_t name_len, const uint8_t *kinds, size_t nparams, size_t nresults, uintptr_t env) {
	wasm_valtype_t *types[24];
	if (nparams + nresults > 24) {
		return wasmtime_error_new("wasmgate: too many parameters");
	}
	for (size_t i = 0; i < nparams + nresults; i++) {
		types[i] = wasm_valtype_new(kinds[i]);
	}
	wasm_valtype_vec_t params, results;
	wasm_valtype_vec_new(&params, nparams, types);
	wasm_valtype_vec_new(&results, nresults, types + nparams);
	wasm_functype_t *ty = wasm_functype_new(&params, &results);
	wasmtime_error_t *err = wasmtime_linker_define_func_unchecked(linker, module, module_len, name, name_len,
		ty, wg_host_shim, (void *)env, NULL);
	wasm_functype_delete(ty);
	return err;
}

// wg_stop is a store's interruption flag: the epoch callback of the store
// reads it; a stop sets it and bumps the engine's epoch.
typedef struct { int stop; } wg_stop;

static wasmtime_error_t *wg_epoch(wasmtime_context_t *cx, void *data, uint64_t *delta,
		wasmtime_update_deadline_kind_t *kind) {
	if (__atomic_load_n(&((wg_stop *)data)->stop, __ATOMIC_ACQUIRE)) {
		return wasmtime_error_new("interrupted at the deadline");
	}
	// Another store was stopped: run on until the next epoch.
	*delta = 1;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return NULL;
}

static wg_stop *wg_install_stop(wasmtime_store_t *store) {
	wg_stop *s = calloc(1, sizeof *s);
	if (s == NULL) {
		return NULL;
	}
	wasmtime_store_epoch_deadline_callback(store, wg_epoch, s, free);
	wasmtime_context_set_epoch_deadline(wasmtime_store_context(store), 1);
	return s;
}

static void wg_set_stop(wg_stop *s) { __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE); }

// wg_inst is the C side of an instance: its store's context, the
// instance, the functions the host calls (the hooks, then _initialize),
// its memory and the value slot of a call.
#define WG_SLOTS 4
typedef struct {
	wasmtime_context_t *cx;
	wasmtime_instance_t inst;
	wasmtime_func_t fns[WG_SLOTS];
	wasmtime_memory_t mem;
	wasmtime_global_t grow; // the result of the last memory.grow (recordGrows)
	wasmtime_val_raw_t raw[2]; // the most any hook takes (handle_response) or returns
	wasm_trap_t *trap;      // of the last call
} wg_inst;

static wg_inst *wg_inst_new(wasmtime_context_t *cx) {
	wg_inst *w = calloc(1, sizeof *w);
	if (w != NULL) {
		w->cx = cx;
	}
	return w;
}

// wg_fuel gives the store fuel for its next call (wasmtime_fuel.go); 0
// when the engine does not consume fuel.
static void wg_fuel(wg_inst *w, uint64_t fuel) {
	if (fuel != 0) {
		wasmtime_error_t *err = wasmtime_context_set_fuel(w->cx, fuel);
		if (err != NULL) {
			wasmtime_error_delete(err);
		}
	}
}

// wg_charge takes n fuel from the store (a guest's sleep), never below 0.
static void wg_charge(wasmtime_context_t *cx, uint64_t n) {
	uint64_t left = 0;
	wasmtime_error_t *err = wasmtime_context_get_fuel(cx, &left);
	if (err != NULL) {
		wasmtime_error_delete(err);
		return;
	}
	err = wasmtime_context_set_fuel(cx, left > n ? left - n : 0);
	if (err != NULL) {
		wasmtime_error_delete(err);
	}
}

static wasmtime_error_t *wg_instantiate(const wasmtime_linker_t *linker, wg_inst *w,
		const wasmtime_module_t *module, uint64_t fuel) {
	w->trap = NULL;
	wg_fuel(w, fuel);
	return wasmtime_linker_instantiate(linker, w->cx, module, &w->inst, &w->trap);
}

// wg_call calls fns[slot] with up to two i32 arguments: (i32) -> i32,
// () -> i32, () -> (), and http-wasm's () -> i64 and (i32, i32) -> (), with
// fuel (when not 0); the result is left in raw[0], a trap in trap. (No Go
// pointer is passed: cgo would move what it points to to the heap, a
// garbage per call.)
static wasmtime_error_t *wg_call(wg_inst *w, int slot, int32_t a0, int32_t a1, uint64_t fuel) {
	w->trap = NULL;
	w->raw[0].i64 = 0;
	w->raw[0].i32 = a0;
	w->raw[1].i64 = 0;
	w->raw[1].i32 = a1;
	wg_fuel(w, fuel);
	return wasmtime_func_call_unchecked(w->cx, &w->fns[slot], w->raw, 2, &w->trap);
}

static uint64_t wg_result(wg_inst *w) { return (uint64_t)w->raw[0].i64; }

// wg_grow reads the recorded result of the last memory.grow.
static int32_t wg_grow(wg_inst *w) {
	wg_val v;
	wasmtime_global_get(w->cx, &w->grow, &v);
	return v.kind == 0 ? v.of.i32 : 0; // WASMTIME_I32
}

// wg_caller_memory finds the calling instance's memory, for a host
// function run before the instance's exports are known (a start function).
static bool wg_caller_memory(wasmtime_caller_t *caller, wasmtime_memory_t *out) {
	wasmtime_extern_t item;
	if (!wasmtime_caller_export_get(caller, "memory", 6, &item)) {
		return false;
	}
	bool ok = item.kind == WG_EXTERN_MEMORY;
	if (ok) {
		*out = item.of.memory;
	}
	wasmtime_extern_delete(&item);
	return ok;
}

// wg_export finds an exported function or memory; false when the instance
// has no such export of that kind.
static bool wg_export(wasmtime_context_t *cx, const wasmtime_instance_t *inst, const char *name, size_t len,
		wasmtime_extern_kind_t kind, void *out) {
	wasmtime_extern_t item;
	if (!wasmtime_instance_export_get(cx, inst, name, len, &item)) {
		return false;
	}
	bool ok = item.kind == kind;
	if (ok && kind == WG_EXTERN_FUNC) {
		*(wasmtime_func_t *)out = item.of.func;
	} else if (ok && kind == WG_EXTERN_MEMORY) {
		*(wasmtime_memory_t *)out = item.of.memory;
	} else if (ok && kind == WG_EXTERN_GLOBAL) {
		*(wasmtime_global_t *)out = item.of.global;
	}
	wasmtime_extern_delete(&item);
	return ok;
}
*/
import "C"

import (
	"reflect"
	"strconv"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"

	sdkabi "github.com/wasmgate/wasmgate/sdk/abi"
)

// wtCheckLayout checks what the engine assumes of wasmtime-go's types: a
// Store, Linker and Module begin with the pointer to their C object, which
// wtStorePtr, wtLinkerPtr and wtModulePtr read.
func wtCheckLayout() error {
	for _, t := range []reflect.Type{reflect.TypeFor[wasmtime.Store](), reflect.TypeFor[wasmtime.Linker](), reflect.TypeFor[wasmtime.Module]()} {
		if t.NumField() == 0 || t.Field(0).Name != "_ptr" || t.Field(0).Type.Kind() != reflect.Pointer || t.Field(0).Offset != 0 {
			return errWasmtimeLayout(t.String())
		}
	}
	return nil
}

type errWasmtimeLayout string

func (e errWasmtimeLayout) Error() string {
	return "wasmtime-go's " + string(e) + " is not laid out as this engine expects (go.mod pins v39.0.1)"
}

func wtStorePtr(s *wasmtime.Store) *C.wasmtime_store_t {
	return *(**C.wasmtime_store_t)(unsafe.Pointer(s))
}

func wtPooling(cfg *wasmtime.Config, slots uint32, maxMemory uint64) {
	C.wg_pooling(*(**C.wasm_config_t)(unsafe.Pointer(cfg)), C.uint32_t(slots), C.size_t(maxMemory))
}

func wtLinkerPtr(l *wasmtime.Linker) *C.wasmtime_linker_t {
	return *(**C.wasmtime_linker_t)(unsafe.Pointer(l))
}

func wtModulePtr(m *wasmtime.Module) *C.wasmtime_module_t {
	return *(**C.wasmtime_module_t)(unsafe.Pointer(m))
}

// wtContext is the context of a store, the same for its life.
func wtContext(s *wasmtime.Store) *C.wasmtime_context_t {
	return C.wasmtime_store_context(wtStorePtr(s))
}

// wtSameContext reports whether wasmtime-go's context of s is the one read
// through wtStorePtr: a check of the layout assumption on a live store.
func wtSameContext(s *wasmtime.Store) bool {
	return unsafe.Pointer(wtContext(s)) == unsafe.Pointer(s.Context())
}

// wtKinds converts value types to wasm_valkind_t.
func wtKinds(ts []sdkabi.ValueType) []byte {
	out := make([]byte, len(ts))
	for i, t := range ts {
		switch t {
		case sdkabi.I32:
			out[i] = 0
		case sdkabi.I64:
			out[i] = 1
		case sdkabi.F32:
			out[i] = 2
		case sdkabi.F64:
			out[i] = 3
		default:
			panic("wasmtime engine: unsupported value type " + t.String())
		}
	}
	return out
}

// wtDefine defines module.name in l as the host function env of
// wgHostCall.
func wtDefine(l *wasmtime.Linker, module, name string, params, results []sdkabi.ValueType, env uintptr) error {
	kinds := append(wtKinds(params), wtKinds(results)...)
	if len(kinds) == 0 {
		kinds = []byte{0} // a valid pointer
	}
	err := C.wg_define(wtLinkerPtr(l), C._GoStringPtr(module), C.size_t(len(module)),
		C._GoStringPtr(name), C.size_t(len(name)),
		(*C.uint8_t)(unsafe.Pointer(&kinds[0])), C.size_t(len(params)), C.size_t(len(results)), C.uintptr_t(env))
	if err != nil {
		return errString(wtCause(wtTakeError(err, nil).msg))
	}
	return nil
}

// wtFailure is what a failed call or instantiation reported: wasmtime's
// message, its trap code when it is a trap, and the wasm frames,
// innermost first.
type wtFailure struct {
	msg    string
	code   int // -1: none
	frames []wtFrame
}

// outOfFuel reports whether the call used its work budget.
func (f *wtFailure) outOfFuel() bool { return f != nil && f.code == wtTrapOutOfFuel }

type wtFrame struct {
	index uint32
	name  string // "" when the module has no name for it
}

type errString string

func (e errString) Error() string { return string(e) }

// wtTakeError reads and frees what a C API call returned.
func wtTakeError(err *C.wasmtime_error_t, trap *C.wasm_trap_t) wtFailure {
	f := wtFailure{code: -1}
	var msg C.wasm_name_t
	var frames C.wasm_frame_vec_t
	switch {
	case trap != nil:
		var code C.wasmtime_trap_code_t
		if C.wasmtime_trap_code(trap, &code) {
			f.code = int(code)
		}
		C.wasm_trap_message(trap, &msg)
		C.wasm_trap_trace(trap, &frames)
		defer C.wasm_trap_delete(trap) // after the frames, which borrow from it
	case err != nil:
		C.wasmtime_error_message(err, &msg)
		C.wasmtime_error_wasm_trace(err, &frames)
		defer C.wasmtime_error_delete(err)
	default:
		return f
	}
	if msg.size > 0 {
		f.msg = C.GoStringN(msg.data, C.int(msg.size))
		for len(f.msg) > 0 && f.msg[len(f.msg)-1] == 0 {
			f.msg = f.msg[:len(f.msg)-1]
		}
	}
	C.wasm_byte_vec_delete(&msg)
	if frames.size > 0 {
		list := unsafe.Slice(frames.data, frames.size)
		f.frames = make([]wtFrame, len(list))
		for i, fr := range list {
			f.frames[i].index = uint32(C.wasm_frame_func_index(fr))
			if n := C.wasmtime_frame_func_name(fr); n != nil && n.size > 0 {
				f.frames[i].name = C.GoStringN(n.data, C.int(n.size))
			}
		}
	}
	C.wasm_frame_vec_delete(&frames)
	return f
}

// wtNewTrap makes the trap a host function returns.
func wtNewTrap(msg string) unsafe.Pointer {
	if msg == "" {
		msg = "host function failed"
	}
	return unsafe.Pointer(C.wasmtime_trap_new(C._GoStringPtr(msg), C.size_t(len(msg))))
}

// wtStop is the interruption flag of one store (C memory, freed with the
// store).
type wtStop = *C.wg_stop

func wtInstallStop(s *wasmtime.Store) wtStop { return C.wg_install_stop(wtStorePtr(s)) }

func wtSetStop(s wtStop) { C.wg_set_stop(s) }

// wtInst is the C side of an instance (wg_inst), freed by wtFreeInst.
type wtInst = *C.wg_inst

// wtNewInst allocates the C side of an instance of the store s.
func wtNewInst(s *wasmtime.Store) wtInst { return C.wg_inst_new(wtContext(s)) }

func wtFreeInst(w wtInst) { C.free(unsafe.Pointer(w)) }

// wtCx is the context of w's store, the key of the instance in wtLive.
func wtCx(w wtInst) uintptr { return uintptr(unsafe.Pointer(w.cx)) }

// wtInstantiate instantiates m in w's store with l's definitions.
func wtInstantiate(l *wasmtime.Linker, w wtInst, m *wasmtime.Module, fuel uint64) *wtFailure {
	err := C.wg_instantiate(wtLinkerPtr(l), w, wtModulePtr(m), C.uint64_t(fuel))
	if err == nil && w.trap == nil {
		return nil
	}
	f := wtTakeError(err, w.trap)
	w.trap = nil
	return &f
}

// wtExportFunc finds the exported function name and keeps it in slot.
func wtExportFunc(w wtInst, name string, slot int) bool {
	return bool(C.wg_export(w.cx, &w.inst, C._GoStringPtr(name), C.size_t(len(name)), C.WG_EXTERN_FUNC, unsafe.Pointer(&w.fns[slot])))
}

// wtExportMemory finds the exported memory.
func wtExportMemory(w wtInst) bool {
	name := exportMemory
	return bool(C.wg_export(w.cx, &w.inst, C._GoStringPtr(name), C.size_t(len(name)), C.WG_EXTERN_MEMORY, unsafe.Pointer(&w.mem)))
}

// wtExportGrow finds the global recordGrows added.
func wtExportGrow(w wtInst) bool {
	name := growExport
	return bool(C.wg_export(w.cx, &w.inst, C._GoStringPtr(name), C.size_t(len(name)), C.WG_EXTERN_GLOBAL, unsafe.Pointer(&w.grow)))
}

// wtGrow is the result of the guest's last memory.grow (0 before any).
func wtGrow(w wtInst) int32 { return int32(C.wg_grow(w)) }

// wtCallerMemory finds the memory of the instance calling a host function.
func wtCallerMemory(w wtInst, caller unsafe.Pointer) bool {
	return bool(C.wg_caller_memory((*C.wasmtime_caller_t)(caller), &w.mem))
}

// wtCharge takes n fuel from w's store.
func wtCharge(w wtInst, n uint64) { C.wg_charge(w.cx, C.uint64_t(n)) }

// wtCall calls the function in slot with up to two i32 arguments and
// returns its first result's 64 bits (see wg_call).
func wtCall(w wtInst, slot int, a0, a1 uint32, fuel uint64) (uint64, *wtFailure) {
	err := C.wg_call(w, C.int(slot), C.int32_t(a0), C.int32_t(a1), C.uint64_t(fuel))
	if err == nil && w.trap == nil {
		return uint64(C.wg_result(w)), nil
	}
	fl := wtTakeError(err, w.trap)
	w.trap = nil
	return 0, &fl
}

// wtMemoryData is the guest memory, valid until the guest runs again.
func wtMemoryData(w wtInst) []byte {
	n := C.wasmtime_memory_data_size(w.cx, &w.mem)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(C.wasmtime_memory_data(w.cx, &w.mem)), int(n))
}

func wtMemorySize(w wtInst) uint64 { return uint64(C.wasmtime_memory_data_size(w.cx, &w.mem)) }

// wtTrapNames are wazero's messages for wasmtime's trap codes, so that a
// trap reads the same on both engines.
var wtTrapNames = map[int]string{
	0:  "stack overflow",
	1:  "out of bounds memory access",
	2:  "unaligned atomic",
	3:  "invalid table access",
	4:  "invalid table access", // indirect call to null
	5:  "indirect call type mismatch",
	6:  "integer overflow",
	7:  "integer divide by zero",
	8:  "invalid conversion to integer",
	9:  "unreachable",
	10: "interrupted",
	12: "interrupted", // out of fuel: the work budget, as wazero's instrumented deadline
	13: "expected shared memory",
	14: "null reference",
}

func wtTrapName(code int) string {
	if s, ok := wtTrapNames[code]; ok {
		return s
	}
	return "trap code " + strconv.Itoa(code)
}
