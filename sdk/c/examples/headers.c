/*
 * headers: a wasmgate plugin in C that edits headers both ways.
 *
 * Config (every key optional):
 *
 *   config:
 *     request:  {X-From-C: "yes"}   # set on every request sent upstream
 *     response: {X-Served-By: c}    # set on every response
 *     deny_prefix: /private         # paths under it are answered 403 here
 *
 * On every request it also sets X-C-Count (a counter shared by all
 * instances, in the plugin's key-value store) and counts the request in the
 * metric "requests". On every response it adds X-C-Method (read from the
 * request) and X-C-Status.
 *
 * Build: clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *          -o headers.wasm sdk/c/examples/headers.c sdk/c/wasmgate.c
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmgate.h"

/* The config, kept for the instance's life. */
static wasmgate_json *config;
static const wasmgate_json *request_headers, *response_headers;
static const char *deny_prefix;

static wasmgate_metric requests = WASMGATE_COUNTER("requests");

/* Checks a {name: "value"} object of headers. */
static int32_t check_headers(const char *key, const wasmgate_json **out) {
    const wasmgate_json *m = wasmgate_json_get(config, key);
    *out = NULL;
    if (m == NULL || wasmgate_json_type(m) == WASMGATE_JSON_NULL) return 0;
    if (wasmgate_json_type(m) != WASMGATE_JSON_OBJECT)
        return wasmgate_failf("field \"%s\": want object, got %s", key, wasmgate_json_type_name(m));
    for (size_t i = 0; i < wasmgate_json_count(m); i++) {
        const char *name = wasmgate_json_key(m, i);
        if (!wasmgate_is_token(name, strlen(name)))
            return wasmgate_failf("%s: \"%s\" is not a valid header name", key, name);
        if (wasmgate_json_string(wasmgate_json_item(m, i), NULL) == NULL)
            return wasmgate_failf("%s.%s: want a string, got %s", key, name,
                                  wasmgate_json_type_name(wasmgate_json_item(m, i)));
    }
    *out = m;
    return 0;
}

static int32_t set_all(int32_t kind, const wasmgate_json *m) {
    for (size_t i = 0; i < wasmgate_json_count(m); i++) {
        int32_t rc = wasmgate_header_set_str(kind, wasmgate_json_key(m, i), wasmgate_json_string(wasmgate_json_item(m, i), NULL));
        if (rc < 0) return rc;
    }
    return 0;
}

WASMGATE_EXPORT(on_init) int32_t on_init(int32_t config_len) {
    wasmgate_bytes text;
    int32_t rc = wasmgate_read_config(config_len, &text);
    if (rc < 0) return wasmgate_failf("reading the config: %s", wasmgate_code_name(rc));
    char err[200];
    config = wasmgate_json_parse(text.data, text.len, err, sizeof err);
    wasmgate_bytes_free(&text);
    if (config == NULL) return wasmgate_fail(err);
    if (wasmgate_json_type(config) != WASMGATE_JSON_OBJECT)
        return wasmgate_failf("want object, got %s", wasmgate_json_type_name(config));
    static const char *const known[] = {"request", "response", "deny_prefix", NULL};
    const char *unknown = wasmgate_json_unknown_key(config, known);
    if (unknown) return wasmgate_failf("unknown field \"%s\"", unknown);
    if (check_headers("request", &request_headers) < 0 || check_headers("response", &response_headers) < 0)
        return WASMGATE_FAILED;
    const wasmgate_json *deny = wasmgate_json_get(config, "deny_prefix");
    if (deny && wasmgate_json_type(deny) != WASMGATE_JSON_NULL) {
        deny_prefix = wasmgate_json_string(deny, NULL);
        if (deny_prefix == NULL || deny_prefix[0] != '/') return wasmgate_fail("\"deny_prefix\" must start with \"/\"");
    }
    return 0;
}

WASMGATE_EXPORT(on_request) int32_t on_request(void) {
    int32_t rc = wasmgate_metric_add(&requests, 1);
    if (rc < 0) return wasmgate_failf("counting: %s", wasmgate_code_name(rc));
    if (deny_prefix) {
        wasmgate_bytes path;
        if ((rc = wasmgate_read_path(&path)) < 0) return wasmgate_failf("path: %s", wasmgate_code_name(rc));
        int denied = strncmp(path.data, deny_prefix, strlen(deny_prefix)) == 0;
        wasmgate_bytes_free(&path);
        if (denied) {
            rc = wasmgate_send_response_str(403, "{\"error\":\"denied by the c plugin\"}\n");
            if (rc == 0) rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "Content-Type", "application/json");
            if (rc == 0) rc = set_all(WASMGATE_KIND_RESPONSE, response_headers);
            if (rc < 0) return wasmgate_failf("local response: %s", wasmgate_code_name(rc));
            return WASMGATE_STOP;
        }
    }
    if ((rc = set_all(WASMGATE_KIND_REQUEST, request_headers)) < 0)
        return wasmgate_failf("request headers: %s", wasmgate_code_name(rc));
    int64_t n;
    if ((rc = wasmgate_kv_incr_str("count", 1, 0, &n)) < 0) return wasmgate_failf("kv_incr: %s", wasmgate_code_name(rc));
    char num[24];
    snprintf(num, sizeof num, "%" PRId64, n);
    if ((rc = wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-C-Count", num)) < 0)
        return wasmgate_failf("X-C-Count: %s", wasmgate_code_name(rc));
    return WASMGATE_CONTINUE;
}

WASMGATE_EXPORT(on_response) int32_t on_response(void) {
    int32_t rc = set_all(WASMGATE_KIND_RESPONSE, response_headers);
    wasmgate_bytes method;
    if (rc == 0 && (rc = wasmgate_read_method(&method)) == 0) {
        rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-C-Method", method.data);
        wasmgate_bytes_free(&method);
    }
    char status[12];
    snprintf(status, sizeof status, "%d", (int)wasmgate_response_status());
    if (rc == 0) rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-C-Status", status);
    if (rc < 0) return wasmgate_failf("response headers: %s", wasmgate_code_name(rc));
    return WASMGATE_CONTINUE;
}
