/*
 * main.c: the hooks of the C hostcheck guest and the per-instance state.
 * What each check does is in checks.c; the specification (config keys,
 * checks, report keys, log lines) is sdk/tck/hostcheck's package
 * documentation.
 */
#include <stdlib.h>
#include <string.h>

#include "hostcheck.h"

/* Per-instance state. An instance runs one hook at a time: no locks. */
hc_config cfg;
wasmgate_bytes cfg_raw;
char *initialize_probe;
char *init_probe;
char instance_id[17];
int64_t calls, inits;

/* The reactor's _initialize (wasi-libc's crt1-reactor.o) runs the
 * constructors: probe the host before on_init, where only the functions
 * sdk/ABI.md marks "any" work. */
__attribute__((constructor)) static void hostcheck_initialize(void) { initialize_probe = probe_initialize(); }

WASMGATE_EXPORT(on_init) int32_t on_init(int32_t config_len) {
    free_config(&cfg);
    wasmgate_bytes_free(&cfg_raw);
    int32_t rc = wasmgate_read_config(config_len, &cfg_raw);
    if (rc < 0) return wasmgate_failf("reading the config: %s", wasmgate_code_name(rc));
    char err[WASMGATE_MAX_ERROR_MESSAGE + 8]; /* wasmgate_fail cuts at 1 KiB without splitting a character */
    if (parse_config(cfg_raw.data, cfg_raw.len, &cfg, err, sizeof err) < 0) {
        free_config(&cfg);
        return wasmgate_fail(err);
    }
    inits++;
    unsigned char id[8];
    rc = wasmgate_random_get(id, sizeof id);
    if (rc < 0) return wasmgate_failf("wasmgate.random_get: %s", wasmgate_code_name(rc));
    hex_encode(id, sizeof id, instance_id);
    if (strcmp(cfg.check, "phase") == 0) {
        free(init_probe);
        init_probe = probe_on_init();
        if (init_probe == NULL) return wasmgate_fail("phase: out of memory");
    }
    return 0;
}

WASMGATE_EXPORT(on_request) int32_t on_request(void) {
    calls++;
    static const struct {
        const char *check;
        int32_t (*run)(void);
    } hooks[] = {
        {"inspect", inspect_request}, {"phase", phase_request},       {"kv", kv_request},
        {"metrics", metrics_request}, {"log", log_request},           {"outbound", outbound_request},
        {"chain", chain_request},     {"instance", instance_request}, {"buffers", buffers_request},
        {"gateway", gateway_request}, {"flags", flags_request},
    };
    for (size_t i = 0; i < sizeof hooks / sizeof hooks[0]; i++)
        if (strcmp(cfg.check, hooks[i].check) == 0) return hooks[i].run();
    return WASMGATE_CONTINUE;
}

WASMGATE_EXPORT(on_response) int32_t on_response(void) {
    if (strcmp(cfg.check, "inspect") == 0) return inspect_response();
    if (strcmp(cfg.check, "phase") == 0) return phase_response();
    if (strcmp(cfg.check, "chain") == 0) return chain_response();
    if (strcmp(cfg.check, "instance") == 0) return instance_response();
    return WASMGATE_CONTINUE;
}
