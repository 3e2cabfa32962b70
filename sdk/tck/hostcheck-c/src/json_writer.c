/*
 * json_writer.c: the small JSON writer of the reports (hostcheck.h). It
 * builds on the SDK's wasmgate_bytes_append and wasmgate_json_quote.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostcheck.h"

void jw_init(jw *w) { memset(w, 0, sizeof *w); }

void jw_free(jw *w) {
    wasmgate_bytes_free(&w->out);
    jw_init(w);
}

const char *jw_text(jw *w, size_t *len) {
    if (w->failed || w->out.data == NULL) return NULL;
    if (len) *len = w->out.len;
    return w->out.data;
}

static void put(jw *w, const char *s, size_t n) {
    if (!w->failed && wasmgate_bytes_append(&w->out, s, n) != 0) w->failed = true;
}

/* Before a value or a key: the comma that separates it from the last. */
static void sep(jw *w) {
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->comma) put(w, ",", 1);
}

void jw_begin_object(jw *w) {
    sep(w);
    put(w, "{", 1);
    w->comma = false;
}

void jw_end_object(jw *w) {
    put(w, "}", 1);
    w->comma = true;
}

void jw_begin_array(jw *w) {
    sep(w);
    put(w, "[", 1);
    w->comma = false;
}

void jw_end_array(jw *w) {
    put(w, "]", 1);
    w->comma = true;
}

void jw_key(jw *w, const char *key) { jw_key_n(w, key, strlen(key)); }

void jw_key_n(jw *w, const char *key, size_t len) {
    jw_string(w, key, len);
    put(w, ":", 1);
    w->comma = false;
    w->after_key = true;
}

/* Writes a scalar's text. */
static void scalar(jw *w, const char *s, size_t n) {
    sep(w);
    put(w, s, n);
    w->comma = true;
}

void jw_null(jw *w) { scalar(w, "null", 4); }

void jw_bool(jw *w, bool v) { scalar(w, v ? "true" : "false", v ? 4 : 5); }

void jw_int(jw *w, int64_t v) {
    char b[24];
    int n = snprintf(b, sizeof b, "%" PRId64, v);
    scalar(w, b, (size_t)n);
}

void jw_double(jw *w, double v) {
    if (!isfinite(v)) {
        jw_null(w);
        return;
    }
    char b[32];
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(b, sizeof b, "%.*g", prec, v);
        if (strtod(b, NULL) == v) break;
    }
    scalar(w, b, (size_t)n);
}

void jw_string(jw *w, const char *s, size_t len) {
    sep(w);
    if (!w->failed && wasmgate_json_quote(&w->out, s ? s : "", s ? len : 0) != 0) w->failed = true;
    w->comma = true;
}

void jw_cstring(jw *w, const char *s) { jw_string(w, s, s ? strlen(s) : 0); }

void jw_raw(jw *w, const char *json, size_t len) { scalar(w, json, len); }

void jw_kint(jw *w, const char *key, int64_t v) {
    jw_key(w, key);
    jw_int(w, v);
}

void jw_kbool(jw *w, const char *key, bool v) {
    jw_key(w, key);
    jw_bool(w, v);
}

void jw_kdouble(jw *w, const char *key, double v) {
    jw_key(w, key);
    jw_double(w, v);
}

void jw_kstring(jw *w, const char *key, const char *s, size_t len) {
    jw_key(w, key);
    jw_string(w, s, len);
}

void jw_kcstring(jw *w, const char *key, const char *s) {
    jw_key(w, key);
    jw_cstring(w, s);
}

void jw_kraw(jw *w, const char *key, const char *json) {
    jw_key(w, key);
    if (json == NULL) jw_null(w);
    else jw_raw(w, json, strlen(json));
}
