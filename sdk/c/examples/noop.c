/*
 * noop: a wasmgate plugin in C that does nothing: its on_request returns
 * WASMGATE_CONTINUE at once. The same plugin as plugins/noop (Go) and
 * sdk/assemblyscript/examples/noop: it measures the fixed cost of a C plugin
 * in a route's chain (instance checkout, one hook call) in the benchmarks
 * (bench/: `wasmgate bench plugins`, `wasmgate bench coldstart`), and is the
 * smallest complete C plugin.
 *
 * It exports on_init and on_request only, so the response path skips it.
 *
 * Config: none; anything but an empty object (or null) is rejected.
 *
 * Build: clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *          -o noop.wasm sdk/c/examples/noop.c sdk/c/wasmgate.c
 */
#include "wasmgate.h"

WASMGATE_EXPORT(on_init) int32_t on_init(int32_t config_len) {
    wasmgate_bytes text;
    int32_t rc = wasmgate_read_config(config_len, &text);
    if (rc < 0) return wasmgate_failf("reading the config: %s", wasmgate_code_name(rc));
    char err[200];
    wasmgate_json *config = wasmgate_json_parse(text.data, text.len, err, sizeof err);
    wasmgate_bytes_free(&text);
    if (config == NULL) return wasmgate_fail(err);
    int type = wasmgate_json_type(config);
    size_t n = wasmgate_json_count(config);
    wasmgate_json_free(config);
    if (type != WASMGATE_JSON_NULL && (type != WASMGATE_JSON_OBJECT || n != 0))
        return wasmgate_fail("this plugin takes no config");
    return WASMGATE_CONTINUE;
}

WASMGATE_EXPORT(on_request) int32_t on_request(void) { return WASMGATE_CONTINUE; }
