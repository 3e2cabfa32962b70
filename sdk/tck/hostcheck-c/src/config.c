/*
 * config.c: the hostcheck config (sdk/tck/hostcheck's "Config keys"), read
 * with the SDK's JSON reader and checked as the Go guest checks it: unknown
 * keys and wrong types are errors (sdk/go's DecodeConfig), then the rules
 * of its parseConfig, with the same messages.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostcheck.h"

/* The values of "check". */
static const char *const checks[] = {"inspect", "phase",    "kv",      "metrics", "log",   "outbound",
                                     "chain",   "instance", "buffers", "gateway", "flags", NULL};

/* The tree the config's strings point into. */
static wasmgate_json *tree;

/* A config error: the message into err; -1. */
static int fail(char *err, size_t err_len, const char *format, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t err_len, const char *format, ...) {
    va_list ap;
    va_start(ap, format);
    vsnprintf(err, err_len, format, ap);
    va_end(ap);
    return -1;
}

/* The checks' names as Go's %q prints a []string: ["inspect" "phase" ...]. */
static void check_list(char *out, size_t n) {
    size_t used = 0;
    out[0] = 0;
    used += (size_t)snprintf(out + used, n - used, "[");
    for (const char *const *c = checks; *c && used < n; c++)
        used += (size_t)snprintf(out + used, n - used, "%s\"%s\"", c == checks ? "" : " ", *c);
    if (used < n) snprintf(out + used, n - used, "]");
}

/* What a config error says it got, in encoding/json's words (sdk/go's
 * DecodeConfig): "array", "bool", "number 1.5" for a number that is not
 * the integer wanted. */
static const char *got(const wasmgate_json *v, bool want_int, char *buf, size_t n) {
    double d;
    switch (wasmgate_json_type(v)) {
    case WASMGATE_JSON_ARRAY: return "array";
    case WASMGATE_JSON_BOOL: return "bool";
    case WASMGATE_JSON_NUMBER:
        if (!want_int || !wasmgate_json_number(v, &d)) return "number";
        for (int prec = 1; prec <= 17; prec++) { /* the shortest text that reads back */
            snprintf(buf, n, "number %.*g", prec, d);
            if (strtod(buf + 7, NULL) == d) break;
        }
        return buf;
    }
    return wasmgate_json_type_name(v);
}

static bool absent(const wasmgate_json *v) { return v == NULL || wasmgate_json_type(v) == WASMGATE_JSON_NULL; }

/* Reads an optional string field of obj; false (with err) for another type. */
static bool get_string(const wasmgate_json *obj, const char *key, const char *field, const char **out, char *err,
                       size_t err_len) {
    const wasmgate_json *v = wasmgate_json_get(obj, key);
    *out = "";
    if (absent(v)) return true;
    const char *s = wasmgate_json_string(v, NULL);
    if (s == NULL) {
        char b[40];
        fail(err, err_len, "field \"%s\": want string, got %s", field, got(v, false, b, sizeof b));
        return false;
    }
    *out = s;
    return true;
}

static bool get_bool(const wasmgate_json *obj, const char *key, bool *out, char *err, size_t err_len) {
    const wasmgate_json *v = wasmgate_json_get(obj, key);
    *out = false;
    if (absent(v)) return true;
    if (!wasmgate_json_bool(v, out)) {
        char b[40];
        fail(err, err_len, "field \"%s\": want boolean, got %s", key, got(v, false, b, sizeof b));
        return false;
    }
    return true;
}

static bool get_int(const wasmgate_json *obj, const char *key, const char *field, int64_t *out, char *err,
                    size_t err_len) {
    const wasmgate_json *v = wasmgate_json_get(obj, key);
    *out = 0;
    if (absent(v)) return true;
    if (!wasmgate_json_int(v, out)) {
        char b[40];
        fail(err, err_len, "field \"%s\": want integer, got %s", field, got(v, true, b, sizeof b));
        return false;
    }
    return true;
}

/* Reads batch[i] into r and *timeout (its types; parse_config checks the
 * values after the config's own rules, as the Go guest does). */
static int parse_call(const wasmgate_json *item, wasmgate_request *r, int64_t *timeout, char *err, size_t err_len) {
    if (wasmgate_json_type(item) != WASMGATE_JSON_OBJECT)
        return fail(err, err_len, "field \"batch\": want object, got %s", got(item, false, NULL, 0));
    static const char *const known[] = {"url", "method", "timeout_ms", "headers", "body", NULL};
    const char *unknown = wasmgate_json_unknown_key(item, known);
    if (unknown) return fail(err, err_len, "unknown field \"%s\"", unknown);
    const char *method, *body;
    if (!get_string(item, "url", "batch.url", &r->url, err, err_len) ||
        !get_string(item, "method", "batch.method", &method, err, err_len) ||
        !get_string(item, "body", "batch.body", &body, err, err_len) ||
        !get_int(item, "timeout_ms", "batch.timeout_ms", timeout, err, err_len))
        return -1;
    r->method = method[0] ? method : NULL; /* the SDK's GET */
    r->body = body;
    wasmgate_json_string(wasmgate_json_get(item, "body"), &r->body_len);
    const wasmgate_json *h = wasmgate_json_get(item, "headers");
    if (absent(h)) return 0;
    if (wasmgate_json_type(h) != WASMGATE_JSON_OBJECT)
        return fail(err, err_len, "field \"batch.headers\": want object, got %s", got(h, false, NULL, 0));
    size_t n = wasmgate_json_count(h);
    wasmgate_header *hs = calloc(n > 0 ? n : 1, sizeof *hs);
    if (hs == NULL) return fail(err, err_len, "out of memory");
    r->headers = hs;
    r->header_count = n;
    for (size_t k = 0; k < n; k++) {
        hs[k].name = wasmgate_json_key(h, k);
        hs[k].value = wasmgate_json_string(wasmgate_json_item(h, k), NULL);
        if (hs[k].value == NULL)
            return fail(err, err_len, "field \"batch.headers.%s\": want string, got %s", hs[k].name,
                        got(wasmgate_json_item(h, k), false, NULL, 0));
    }
    return 0;
}

static int check_config(hc_config *c, const int64_t *timeouts, char *err, size_t err_len);

int parse_config(const char *text, size_t len, hc_config *c, char *err, size_t err_len) {
    memset(c, 0, sizeof *c);
    c->check = c->tag = c->reject = "";
    tree = wasmgate_json_parse(text, len, err, err_len);
    if (tree == NULL) return -1;
    if (wasmgate_json_type(tree) == WASMGATE_JSON_NULL) {
        /* null decodes to the zero config, as in Go */
    } else if (wasmgate_json_type(tree) != WASMGATE_JSON_OBJECT) {
        return fail(err, err_len, "want object, got %s", got(tree, false, NULL, 0));
    }
    static const char *const known[] = {"check", "tag", "stop", "local", "big_body", "batch", "reject", "echo", NULL};
    const char *unknown = wasmgate_json_unknown_key(tree, known);
    if (unknown) return fail(err, err_len, "unknown field \"%s\"", unknown);
    if (!get_string(tree, "check", "check", &c->check, err, err_len) ||
        !get_string(tree, "tag", "tag", &c->tag, err, err_len) ||
        !get_string(tree, "reject", "reject", &c->reject, err, err_len) ||
        !get_bool(tree, "stop", &c->stop, err, err_len) || !get_bool(tree, "local", &c->local, err, err_len) ||
        !get_int(tree, "big_body", "big_body", &c->big_body, err, err_len))
        return -1;
    const wasmgate_json *batch = wasmgate_json_get(tree, "batch");
    int64_t *timeouts = NULL;
    if (!absent(batch)) {
        if (wasmgate_json_type(batch) != WASMGATE_JSON_ARRAY)
            return fail(err, err_len, "field \"batch\": want list, got %s", got(batch, false, NULL, 0));
        c->batch_len = wasmgate_json_count(batch);
        c->batch = calloc(c->batch_len > 0 ? c->batch_len : 1, sizeof *c->batch);
        timeouts = calloc(c->batch_len > 0 ? c->batch_len : 1, sizeof *timeouts);
        if (c->batch == NULL || timeouts == NULL) {
            free(timeouts);
            return fail(err, err_len, "out of memory");
        }
        for (size_t i = 0; i < c->batch_len; i++)
            if (parse_call(wasmgate_json_item(batch, i), &c->batch[i], &timeouts[i], err, err_len) < 0) {
                free(timeouts);
                return -1;
            }
    }
    int rc = check_config(c, timeouts, err, err_len);
    free(timeouts);
    return rc;
}

/* The rules of the Go guest's parseConfig, in its order. */
static int check_config(hc_config *c, const int64_t *timeouts, char *err, size_t err_len) {
    char list[160];
    bool known_check = false;
    for (const char *const *k = checks; *k; k++) known_check = known_check || strcmp(*k, c->check) == 0;
    if (c->reject[0]) return fail(err, err_len, "%s", c->reject);
    if (c->check[0] == 0) {
        check_list(list, sizeof list);
        return fail(err, err_len, "missing \"check\" (one of %s)", list);
    }
    if (!known_check) {
        check_list(list, sizeof list);
        return fail(err, err_len, "\"check\": unknown check \"%s\" (want one of %s)", c->check, list);
    }
    if (strcmp(c->check, "chain") == 0 && c->tag[0] == 0) return fail(err, err_len, "check \"chain\" needs a \"tag\"");
    if (strcmp(c->check, "outbound") == 0 && c->batch_len == 0)
        return fail(err, err_len, "check \"outbound\" needs a \"batch\"");
    if (c->big_body < 0) return fail(err, err_len, "\"big_body\" is negative");
    for (size_t i = 0; i < c->batch_len; i++) {
        if (c->batch[i].url[0] == 0) return fail(err, err_len, "batch[%zu]: missing \"url\"", i);
        if (timeouts[i] < 0) return fail(err, err_len, "batch[%zu]: negative \"timeout_ms\"", i);
        if (timeouts[i] > UINT32_MAX)
            return fail(err, err_len, "batch[%zu]: \"timeout_ms\" %" PRId64 " too long", i, timeouts[i]);
        c->batch[i].timeout_ms = (uint32_t)timeouts[i];
    }
    return 0;
}

void free_config(hc_config *c) {
    for (size_t i = 0; c->batch && i < c->batch_len; i++) free((void *)c->batch[i].headers);
    free(c->batch);
    wasmgate_json_free(tree);
    tree = NULL;
    memset(c, 0, sizeof *c);
    c->check = c->tag = c->reject = "";
}
