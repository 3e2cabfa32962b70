/*
 * checks.c: the checks of the C hostcheck guest, one function per check
 * and hook, in the order of the Go guest's checks.go (sdk/tck/hostcheck),
 * with the same report keys.
 *
 * Where the Go guest calls sdk/go, this guest calls the C SDK's helpers
 * (wasmgate_read_*, the *_str wrappers, wasmgate_fetch, wasmgate_metric_add,
 * ...); where the Go guest makes a raw call, to see exactly what the host
 * answered (a getter's return code, the buffer convention, a bad kind, a
 * NUL in a value, a bogus pointer with length 0), this guest calls the
 * import that wasmgate.h declares, which is the raw host function.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hostcheck.h"

/* An address no buffer is at: with length 0 the host must not touch it. */
#define BOGUS_PTR ((char *)(uintptr_t)0xfffffff0u)

/* ---- Helpers ----------------------------------------------------------------- */

void hex_encode(const unsigned char *b, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

bool parse_int64(const char *s, int64_t *out) {
    const char *digits = s + (*s == '+' || *s == '-');
    if (*digits < '0' || *digits > '9') return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != 0) return false;
    *out = (int64_t)v;
    return true;
}

int32_t encode_gets(size_t n, const char *url, wasmgate_bytes *out) {
    wasmgate_request *reqs = calloc(n > 0 ? n : 1, sizeof *reqs);
    if (reqs == NULL) return WASMGATE_TOO_LARGE;
    for (size_t i = 0; i < n; i++) reqs[i].url = url;
    int32_t rc = wasmgate_batch_encode(reqs, n, out);
    free(reqs);
    return rc;
}

/* The ABI code an SDK call returned, as the Go guest's code(err): 0 for
 * success (a size, an id), else the negative code. */
static int64_t code(int64_t rc) { return rc < 0 ? rc : 0; }

/* Fails the hook for an SDK error, as the Go guest's wasmgate.Fail(err). */
static int32_t fail_code(const char *fn, int32_t rc) {
    return wasmgate_failf("wasmgate.%s: %s", fn, wasmgate_code_name(rc));
}

static int32_t fail_oom(void) { return wasmgate_fail("hostcheck: out of memory"); }

/* The request's query, read once per hook that needs its parameters. */
static wasmgate_bytes query;

static void load_query(void) {
    wasmgate_bytes_free(&query);
    wasmgate_read_query(&query);
}

/* The first value of the query parameter name, unescaped (the SDK's
 * wasmgate_query_param): false when absent. */
static bool param(const char *name, wasmgate_bytes *out) {
    return wasmgate_query_param(query.data ? query.data : "", query.len, name, out) == 0;
}

/* An integer parameter (Go's strconv.ParseInt): false when absent or not one. */
static bool param_int(const char *name, int64_t *out) {
    wasmgate_bytes v;
    *out = 0;
    if (!param(name, &v)) return false;
    bool ok = strlen(v.data) == v.len && parse_int64(v.data, out);
    if (!ok) *out = 0;
    wasmgate_bytes_free(&v);
    return ok;
}

/* A number parameter (strtod, which reads what Go's ParseFloat does). */
static bool param_float(const char *name, double *out) {
    wasmgate_bytes v;
    *out = 0;
    if (!param(name, &v)) return false;
    char *end = v.data;
    if (v.len > 0) *out = strtod(v.data, &end);
    bool ok = v.len > 0 && end == v.data + v.len;
    if (!ok) *out = 0;
    wasmgate_bytes_free(&v);
    return ok;
}

/* A string of n copies of c (malloc'd, NUL-terminated), or NULL. */
static char *repeat(char c, size_t n) {
    char *s = malloc(n + 1);
    if (s == NULL) return NULL;
    memset(s, c, n);
    s[n] = 0;
    return s;
}

/* key: the bytes an SDK read gave ("" when it failed); frees them. */
static void kread(jw *w, const char *key, wasmgate_bytes *b) {
    jw_kstring(w, key, b->data, b->len);
    wasmgate_bytes_free(b);
}

/* key: a NUL-separated list as a JSON array, null when the read failed
 * (rc < 0), as a nil slice marshals; frees it. With unique, each name once
 * (case-insensitive, the first spelling kept), as sdk/go's HeaderNames. */
static void klist(jw *w, const char *key, int32_t rc, wasmgate_bytes *list, bool unique) {
    jw_key(w, key);
    if (rc < 0) {
        jw_null(w);
        return;
    }
    jw_begin_array(w);
    for (const char *v = NULL; (v = wasmgate_list_next(list, v));) {
        bool seen = false;
        for (const char *u = NULL; unique && !seen && (u = wasmgate_list_next(list, u)) != v;)
            seen = strcasecmp(u, v) == 0;
        if (!seen) jw_cstring(w, v);
    }
    jw_end_array(w);
    wasmgate_bytes_free(list);
}

/* Answers locally with the JSON of w and a newline, as the Go guest's
 * respond; frees w. */
static int32_t respond(int32_t status, jw *w) {
    size_t len;
    const char *text = jw_text(w, &len);
    if (text == NULL) {
        jw_free(w);
        return fail_oom();
    }
    wasmgate_bytes body = {0};
    if (wasmgate_bytes_append(&body, text, len) != 0 || wasmgate_bytes_append(&body, "\n", 1) != 0) {
        jw_free(w);
        wasmgate_bytes_free(&body);
        return fail_oom();
    }
    jw_free(w);
    int32_t rc = wasmgate_send_response(status, body.data, (int32_t)body.len);
    wasmgate_bytes_free(&body);
    if (rc < 0) return fail_code("send_response", rc);
    rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "Content-Type", "application/json");
    if (rc < 0) return fail_code("header_set", rc);
    return WASMGATE_STOP;
}

/* ---- Readers: the (buf, len) -> size functions, for probe ------------------- */

typedef struct {
    int32_t kind;
    const char *name;
    int64_t offset;
} target;

static int32_t r_method(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_method(b, n); }
static int32_t r_path(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_path(b, n); }
static int32_t r_query(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_query(b, n); }
static int32_t r_client_ip(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_client_ip(b, n); }
static int32_t r_config(void *c, char *b, int32_t n) { (void)c; return wasmgate_config_get(b, n); }
static int32_t r_batch_result(void *c, char *b, int32_t n) { (void)c; return wasmgate_http_batch_result(b, n); }

static int32_t r_header(void *c, char *b, int32_t n) {
    target *t = c;
    return wasmgate_header_get(t->kind, t->name, (int32_t)strlen(t->name), b, n);
}

static int32_t r_values(void *c, char *b, int32_t n) {
    target *t = c;
    return wasmgate_header_values(t->kind, t->name, (int32_t)strlen(t->name), b, n);
}

static int32_t r_names(void *c, char *b, int32_t n) { return wasmgate_header_names(((target *)c)->kind, b, n); }

static int32_t r_body(void *c, char *b, int32_t n) {
    target *t = c;
    return (int32_t)wasmgate_body_get(t->kind, t->offset, b, n);
}

static int32_t r_kv(void *c, char *b, int32_t n) {
    target *t = c;
    return wasmgate_kv_get(t->name, (int32_t)strlen(t->name), b, n);
}

/* What a reader answers with the buffer convention (sdk/ABI.md section 3). */
typedef struct {
    int32_t size0;     /* with len 0: the size alone */
    int32_t small_ret; /* with a 3-byte buffer: still the full size */
    char small[8];     /* an 8-byte buffer after that call: 3 bytes written, "#####" untouched */
    int32_t full_ret;  /* with a buffer of size0 bytes */
    char *full;        /* that buffer (size0 bytes, zeroed first) */
} probed;

static void probe_run(wasmgate_reader fn, void *ctx, probed *p) {
    memset(p, 0, sizeof *p);
    p->size0 = fn(ctx, NULL, 0);
    memset(p->small, '#', sizeof p->small);
    p->small_ret = fn(ctx, p->small, 3);
    if (p->size0 >= 0) {
        p->full = calloc((size_t)p->size0 + 1, 1);
        if (p->full != NULL) p->full_ret = fn(ctx, p->full, p->size0);
    }
}

/* key: {"size0", "small_ret", "small_bytes", "full_ret", "full"}. */
static void probe(jw *w, const char *key, wasmgate_reader fn, void *ctx) {
    probed p;
    probe_run(fn, ctx, &p);
    jw_key(w, key);
    jw_begin_object(w);
    jw_kint(w, "size0", p.size0);
    jw_kint(w, "small_ret", p.small_ret);
    jw_kstring(w, "small_bytes", p.small, sizeof p.small);
    jw_kint(w, "full_ret", p.full_ret);
    jw_kstring(w, "full", p.full, p.full ? (size_t)p.size0 : 0);
    jw_end_object(w);
    free(p.full);
}

/* sdk/go's BodyRange: the bytes from offset into buf; n copied, the size. */
static int32_t body_range(int32_t kind, int64_t offset, char *buf, int32_t len, int64_t *n, int64_t *size) {
    *n = *size = 0;
    if (offset < 0) return WASMGATE_BAD_ARGUMENT;
    int64_t s = wasmgate_body_get(kind, offset, buf, len);
    if (s < 0) return (int32_t)s;
    int64_t left = s - offset > 0 ? s - offset : 0;
    *n = left < len ? left : len;
    *size = s;
    return 0;
}

/* ---- _initialize and on_init ------------------------------------------------- */

char *probe_initialize(void) {
    unsigned char rnd[8];
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kint(&w, "request_method", wasmgate_request_method(NULL, 0));
    jw_kint(&w, "header_get", wasmgate_header_get(0, "X-Anything", 10, NULL, 0));
    jw_kint(&w, "kv_get", wasmgate_kv_get("k", 1, NULL, 0));
    jw_kint(&w, "http_batch", wasmgate_http_batch(NULL, 0));
    jw_kint(&w, "config_get", wasmgate_config_get(NULL, 0));
    jw_kint(&w, "metric_define", wasmgate_metric_define(WASMGATE_METRIC_COUNTER, "hc_initialize", 13));
    jw_kint(&w, "log", wasmgate_log(WASMGATE_LOG_INFO, "hostcheck _initialize log line", 30));
    jw_kbool(&w, "time_now_ok", wasmgate_time_now() > 0);
    jw_kint(&w, "random_get", wasmgate_random_get(rnd, sizeof rnd));
    jw_end_object(&w);
    char *out = jw_text(&w, NULL) ? strdup(jw_text(&w, NULL)) : NULL;
    jw_free(&w);
    return out;
}

char *probe_on_init(void) {
    unsigned char rnd[8];
    int32_t id = wasmgate_metric_define(WASMGATE_METRIC_COUNTER, "hc_on_init", 10);
    wasmgate_request fetch = {.url = "http://127.0.0.1:1/"};
    wasmgate_results results;
    int32_t fetch_rc = wasmgate_fetch(&fetch, 1, &results);
    wasmgate_results_free(&results);
    int64_t incr;
    int32_t incr_rc = wasmgate_kv_incr_str("k", 1, 0, &incr);
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kint(&w, "request_method", wasmgate_request_method(NULL, 0));
    jw_kint(&w, "request_path", wasmgate_request_path(NULL, 0));
    jw_kint(&w, "request_query", wasmgate_request_query(NULL, 0));
    jw_kint(&w, "request_client_ip", wasmgate_request_client_ip(NULL, 0));
    jw_kint(&w, "request_set_path", code(wasmgate_request_set_path_str("/x")));
    jw_kint(&w, "header_get", wasmgate_header_get(0, "X-A", 3, NULL, 0));
    jw_kint(&w, "header_values", wasmgate_header_values(0, "X-A", 3, NULL, 0));
    jw_kint(&w, "header_names", wasmgate_header_names(0, NULL, 0));
    jw_kint(&w, "header_set", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-A", "1")));
    jw_kint(&w, "header_add", code(wasmgate_header_add_str(WASMGATE_KIND_REQUEST, "X-A", "1")));
    jw_kint(&w, "header_remove", code(wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, "X-A")));
    jw_kint(&w, "body_get", wasmgate_body_get(0, 0, NULL, 0));
    jw_kint(&w, "body_set", code(wasmgate_body_set(WASMGATE_KIND_REQUEST, "x", 1)));
    jw_kint(&w, "response_status", wasmgate_response_status());
    jw_kint(&w, "response_set_status", code(wasmgate_response_set_status(200)));
    jw_kint(&w, "send_response", wasmgate_send_response(200, NULL, 0));
    jw_kint(&w, "kv_get", wasmgate_kv_get("k", 1, NULL, 0));
    jw_kint(&w, "kv_set", code(wasmgate_kv_set_str("k", "v", 1, 0)));
    jw_kint(&w, "kv_delete", code(wasmgate_kv_delete_str("k")));
    jw_kint(&w, "kv_incr", code(incr_rc));
    jw_kbool(&w, "metric_define_ok", id >= 0);
    jw_kint(&w, "metric_record", wasmgate_metric_record(id, 1));
    jw_kint(&w, "http_batch", code(fetch_rc));
    jw_kint(&w, "http_batch_result", wasmgate_http_batch_result(NULL, 0));
    jw_kint(&w, "config_get", wasmgate_config_get(NULL, 0));
    jw_kint(&w, "log", wasmgate_log(WASMGATE_LOG_DEBUG, "hostcheck on_init log line", 26));
    jw_kint(&w, "set_error", wasmgate_set_error("", 0));
    jw_kbool(&w, "time_now_ok", wasmgate_time_now() > 0);
    jw_kint(&w, "random_get", wasmgate_random_get(rnd, sizeof rnd));
    jw_kint(&w, "set_consumer", code(wasmgate_set_consumer_str("c")));
    jw_kint(&w, "set_claims", code(wasmgate_set_claims_str("{}")));
    jw_end_object(&w);
    char *out = jw_text(&w, NULL) ? strdup(jw_text(&w, NULL)) : NULL;
    jw_free(&w);
    return out;
}

/* ---- instance ------------------------------------------------------------------ */

/* "id/calls/inits" of this instance. */
static void instance_state(char *out, size_t n) {
    snprintf(out, n, "%s/%" PRId64 "/%" PRId64, instance_id, calls, inits);
}

int32_t instance_request(void) {
    char state[64];
    instance_state(state, sizeof state);
    int32_t rc = wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-Instance", state);
    return rc < 0 ? fail_code("header_set", rc) : WASMGATE_CONTINUE;
}

int32_t instance_response(void) {
    char state[64];
    instance_state(state, sizeof state);
    int32_t rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-Instance-Resp", state);
    return rc < 0 ? fail_code("header_set", rc) : 0;
}

/* ---- flags --------------------------------------------------------------------- */

int32_t flags_request(void) {
    load_query();
    wasmgate_bytes names;
    param("names", &names);
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    const char *s = names.data ? names.data : "", *end = s + names.len;
    for (const char *p = s;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        bool dup = false; /* a name twice: one key, as a Go map */
        for (const char *q = s; q < p && !dup;) {
            const char *qc = memchr(q, ',', (size_t)(end - q));
            dup = (size_t)(qc - q) == (size_t)(e - p) && memcmp(q, p, (size_t)(e - p)) == 0;
            q = qc + 1;
        }
        if (!dup) {
            int32_t rc = wasmgate_flag_enabled(p, (int32_t)(e - p));
            jw_key_n(&w, p, (size_t)(e - p));
            jw_begin_object(&w);
            jw_kbool(&w, "on", rc == 1);
            jw_kint(&w, "code", code(rc));
            jw_end_object(&w);
        }
        if (comma == NULL) break;
        p = comma + 1;
    }
    jw_end_object(&w);
    wasmgate_bytes_free(&names);
    return respond(200, &w);
}

/* ---- gateway ------------------------------------------------------------------- */

/* Answers 500 {"FUNCTION": code} for a gateway call that failed. */
static int32_t gateway_failed(const char *fn, int32_t rc) {
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kint(&w, fn, rc);
    jw_end_object(&w);
    return respond(500, &w);
}

int32_t gateway_request(void) {
    load_query();
    wasmgate_bytes v;
    if (param("consumer", &v)) {
        int32_t rc = wasmgate_set_consumer(v.data, (int32_t)v.len);
        wasmgate_bytes_free(&v);
        if (rc < 0) return gateway_failed("set_consumer", rc);
    }
    int64_t size;
    bool have = param("claims", &v);
    if (param_int("claims_size", &size) && size >= 8) {
        wasmgate_bytes_free(&v);
        char *fill = repeat('a', (size_t)size - 8);
        if (fill == NULL || wasmgate_bytes_append(&v, "{\"x\":\"", 6) != 0 ||
            wasmgate_bytes_append(&v, fill, (size_t)size - 8) != 0 || wasmgate_bytes_append(&v, "\"}", 2) != 0) {
            free(fill);
            wasmgate_bytes_free(&v);
            return fail_oom();
        }
        free(fill);
        have = true;
    }
    if (have) {
        /* The SDK's wasmgate_set_claims_str, with the length the query gave. */
        int32_t rc = v.len > WASMGATE_MAX_CLAIMS ? WASMGATE_TOO_LARGE : wasmgate_set_claims(v.data ? v.data : "", (int32_t)v.len);
        wasmgate_bytes_free(&v);
        if (rc < 0) return gateway_failed("set_claims", rc);
    }
    if (param("cache_key", &v)) {
        int32_t rc = wasmgate_cache_set_key(v.data, (int32_t)v.len);
        wasmgate_bytes_free(&v);
        if (rc < 0) return gateway_failed("cache_set_key", rc);
    }
    wasmgate_bytes name, key;
    if (!param("limit", &name)) return WASMGATE_CONTINUE;
    param("key", &key);
    int64_t cost;
    param_int("cost", &cost);
    wasmgate_limit l = {0};
    int32_t rc = wasmgate_rate_limit_str(name.data, key.data ? key.data : "", cost, &l);
    wasmgate_bytes_free(&name);
    wasmgate_bytes_free(&key);
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kint(&w, "rc", code(rc));
    jw_kbool(&w, "allowed", l.allowed);
    jw_kint(&w, "remaining", l.remaining);
    jw_kint(&w, "retry_ms", l.retry_after_ms);
    jw_end_object(&w);
    return respond(200, &w);
}

/* ---- inspect ------------------------------------------------------------------- */

int32_t inspect_request(void) {
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    wasmgate_bytes b;
    int32_t rc;

    wasmgate_read_method(&b);
    kread(&w, "method", &b);
    wasmgate_read_path(&b);
    kread(&w, "path", &b);
    load_query();
    jw_kstring(&w, "query", query.data, query.len);
    bool found = param("q", &b);
    kread(&w, "query_param_q", &b);
    jw_kbool(&w, "query_param_q_found", found);
    wasmgate_read_client_ip(&b);
    kread(&w, "client_ip", &b);
    rc = wasmgate_read_header(WASMGATE_KIND_REQUEST, "x-probe", &b); /* names are case-insensitive */
    kread(&w, "header_probe", &b);
    jw_kbool(&w, "header_probe_found", rc == 0);
    rc = wasmgate_read_header(WASMGATE_KIND_REQUEST, "X-Absent", &b);
    wasmgate_bytes_free(&b);
    jw_kbool(&w, "header_absent_found", rc == 0);
    jw_kint(&w, "header_absent_code", wasmgate_header_get(0, "X-Absent", 8, NULL, 0));
    rc = wasmgate_read_header_values(WASMGATE_KIND_REQUEST, "X-Multi", &b);
    klist(&w, "header_values_multi", rc, &b, false);
    jw_kint(&w, "header_values_absent_code", wasmgate_header_values(0, "X-Absent", 8, NULL, 0));
    rc = wasmgate_read_header_names(WASMGATE_KIND_REQUEST, &b);
    klist(&w, "header_names", rc, &b, true);

    rc = wasmgate_read_body(WASMGATE_KIND_REQUEST, &b);
    kread(&w, "body", &b);
    jw_kint(&w, "body_code", code(rc));
    char buf[4];
    int64_t n, size;
    rc = body_range(WASMGATE_KIND_REQUEST, 2, buf, sizeof buf, &n, &size);
    jw_key(&w, "body_range");
    jw_begin_object(&w);
    jw_kint(&w, "n", n);
    jw_kint(&w, "size", size);
    jw_kstring(&w, "bytes", buf, (size_t)n);
    jw_kint(&w, "code", code(rc));
    jw_end_object(&w);
    rc = body_range(WASMGATE_KIND_REQUEST, size + 5, buf, sizeof buf, &n, &size);
    jw_key(&w, "body_range_past_end");
    jw_begin_object(&w);
    jw_kint(&w, "n", n);
    jw_kint(&w, "size", size);
    jw_kint(&w, "code", code(rc));
    jw_end_object(&w);
    rc = body_range(WASMGATE_KIND_REQUEST, 0, NULL, 0, &n, &size);
    jw_key(&w, "body_size_only");
    jw_begin_object(&w);
    jw_kint(&w, "size", size);
    jw_kint(&w, "code", code(rc));
    jw_end_object(&w);
    jw_kint(&w, "body_negative_offset_code", wasmgate_body_get(0, -1, NULL, 0));

    jw_kint(&w, "bad_kind_header_get_code", wasmgate_header_get(2, "X-Probe", 7, NULL, 0));
    jw_kint(&w, "bad_kind_header_set_code", wasmgate_header_set(-1, "X-Probe", 7, "v", 1));
    jw_kint(&w, "bad_kind_body_get_code", wasmgate_body_get(7, 0, NULL, 0));
    jw_kint(&w, "bad_name_get_code", wasmgate_header_get(0, "bad name", 8, NULL, 0));
    jw_kint(&w, "bad_name_set_code", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "bad name", "v")));
    jw_kint(&w, "bad_value_crlf_code", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-Bad", "a\r\nb")));
    /* A NUL cannot be in a C string: the value goes with its length. */
    jw_kint(&w, "bad_value_nul_code", code(wasmgate_header_add(WASMGATE_KIND_REQUEST, "X-Bad", 5, "a\0b", 3)));
    jw_kint(&w, "content_length_set_code", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "Content-Length", "5")));
    jw_kint(&w, "transfer_encoding_add_code",
            code(wasmgate_header_add_str(WASMGATE_KIND_REQUEST, "Transfer-Encoding", "chunked")));
    jw_kint(&w, "content_length_remove_code", code(wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, "content-length")));

    jw_kint(&w, "set_code", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-Set", "set-value")));
    jw_kint(&w, "add_code", code(wasmgate_header_add_str(WASMGATE_KIND_REQUEST, "X-Multi", "added")));
    jw_kint(&w, "remove_code", code(wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, "X-Remove")));
    jw_kint(&w, "remove_absent_code", code(wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, "X-Never-Sent")));
    rc = wasmgate_read_header_values(WASMGATE_KIND_REQUEST, "X-Multi", &b);
    klist(&w, "header_values_after_add", rc, &b, false);
    rc = wasmgate_read_header(WASMGATE_KIND_REQUEST, "X-Remove", &b);
    wasmgate_bytes_free(&b);
    jw_kbool(&w, "removed_found", rc == 0);
    jw_kint(&w, "host_set_code", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "Host", "hostcheck.test")));

    if (wasmgate_read_header(WASMGATE_KIND_REQUEST, "X-Set-Path", &b) == 0) {
        jw_kint(&w, "set_path_code", code(wasmgate_request_set_path(b.data, (int32_t)b.len)));
        wasmgate_bytes_free(&b);
        wasmgate_read_path(&b);
        kread(&w, "path_after", &b);
        wasmgate_read_query(&b);
        kread(&w, "query_after", &b);
    }
    jw_kint(&w, "set_path_no_slash_code", code(wasmgate_request_set_path_str("no-slash")));
    jw_kint(&w, "set_path_bad_escape_code", code(wasmgate_request_set_path_str("/a%zz")));
    jw_kint(&w, "set_path_dot_params_code", code(wasmgate_request_set_path_str("/..;/b")));
    jw_kint(&w, "set_path_query_space_code", code(wasmgate_request_set_path_str("/a?b c")));
    jw_kint(&w, "set_path_empty_code", code(wasmgate_request_set_path_str("")));

    jw_kstring(&w, "config", cfg_raw.data, cfg_raw.len);
    int32_t cfg_size = wasmgate_config_get(NULL, 0);
    char *cfg_buf = calloc(cfg_size > 0 ? (size_t)cfg_size : 1, 1);
    if (cfg_buf != NULL && cfg_size > 0) wasmgate_config_get(cfg_buf, cfg_size);
    jw_kstring(&w, "config_get", cfg_buf, cfg_buf && cfg_size > 0 ? (size_t)cfg_size : 0);
    free(cfg_buf);
    jw_kint(&w, "time_now", wasmgate_time_now());
    jw_kint(&w, "time_now_raw", wasmgate_time_now());
    unsigned char rnd[16];
    char rnd_hex[33];
    memset(rnd, 0, sizeof rnd);
    jw_kint(&w, "random_code", code(wasmgate_random_get(rnd, sizeof rnd)));
    hex_encode(rnd, sizeof rnd, rnd_hex);
    jw_kcstring(&w, "random", rnd_hex);
    unsigned char five[5];
    jw_kint(&w, "random_raw_ret", wasmgate_random_get(five, sizeof five));
    jw_kint(&w, "random_zero_len_ret", wasmgate_random_get(BOGUS_PTR, 0));
    if (cfg.big_body > 0) {
        char *big = calloc((size_t)cfg.big_body, 1);
        if (big == NULL) {
            jw_free(&w);
            return fail_oom();
        }
        jw_kint(&w, "body_set_too_large_code", code(wasmgate_body_set(WASMGATE_KIND_REQUEST, big, (int32_t)cfg.big_body)));
        jw_kint(&w, "send_response_too_large_code", wasmgate_send_response(200, big, (int32_t)cfg.big_body));
        free(big);
    }
    jw_kint(&w, "send_response_bad_status_code", wasmgate_send_response(600, NULL, 0));
    jw_kint(&w, "response_status_before_send", wasmgate_response_status());
    jw_end_object(&w);

    size_t len;
    const char *text = jw_text(&w, &len);
    if (text == NULL) {
        jw_free(&w);
        return fail_oom();
    }
    rc = wasmgate_body_set(WASMGATE_KIND_REQUEST, text, (int32_t)len);
    jw_free(&w);
    if (rc < 0) return fail_code("body_set", rc);
    rc = wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "Content-Type", "application/json");
    if (rc < 0) return fail_code("header_set", rc);
    return WASMGATE_CONTINUE;
}

/* Whether text is one JSON value (the SDK's reader). */
static bool json_valid(const char *text, size_t len) {
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')) i++;
    if (i == len) return false; /* the reader takes an empty text as {}; JSON does not */
    wasmgate_json *v = wasmgate_json_parse(text, len, NULL, 0);
    bool ok = v != NULL;
    wasmgate_json_free(v);
    return ok;
}

int32_t inspect_response(void) {
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    wasmgate_bytes b;
    int32_t rc;
    int32_t status = wasmgate_response_status();
    jw_kint(&w, "status", status < 0 ? 0 : status);
    jw_kint(&w, "status_raw", wasmgate_response_status());
    rc = wasmgate_read_header(WASMGATE_KIND_RESPONSE, "x-upstream", &b);
    kread(&w, "header_upstream", &b);
    jw_kbool(&w, "header_upstream_found", rc == 0);
    rc = wasmgate_read_header_values(WASMGATE_KIND_RESPONSE, "X-Resp-Multi", &b);
    klist(&w, "header_values_multi", rc, &b, false);
    rc = wasmgate_read_header_names(WASMGATE_KIND_RESPONSE, &b);
    klist(&w, "header_names", rc, &b, true);
    rc = wasmgate_read_body(WASMGATE_KIND_RESPONSE, &b);
    kread(&w, "upstream_body", &b);
    jw_kint(&w, "upstream_body_code", code(rc));
    char buf[5];
    int64_t n, size;
    rc = body_range(WASMGATE_KIND_RESPONSE, 1, buf, sizeof buf, &n, &size);
    jw_key(&w, "body_range");
    jw_begin_object(&w);
    jw_kint(&w, "n", n);
    jw_kint(&w, "size", size);
    jw_kstring(&w, "bytes", buf, (size_t)n);
    jw_kint(&w, "code", code(rc));
    jw_end_object(&w);

    wasmgate_read_method(&b);
    kread(&w, "req_method", &b);
    wasmgate_read_path(&b);
    kread(&w, "req_path", &b);
    wasmgate_read_query(&b);
    kread(&w, "req_query", &b);
    wasmgate_read_client_ip(&b);
    kread(&w, "req_client_ip", &b);
    wasmgate_read_header(WASMGATE_KIND_REQUEST, "X-Set", &b);
    kread(&w, "req_header_set", &b);
    wasmgate_read_header(WASMGATE_KIND_REQUEST, "Host", &b);
    kread(&w, "req_host", &b);
    wasmgate_bytes report;
    rc = wasmgate_read_body(WASMGATE_KIND_REQUEST, &report);
    if (rc < 0) {
        jw_free(&w);
        return fail_code("body_get", rc);
    }
    jw_kint(&w, "req_set_header_code", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-Late", "1")));
    jw_kint(&w, "req_add_header_code", code(wasmgate_header_add_str(WASMGATE_KIND_REQUEST, "X-Late", "1")));
    jw_kint(&w, "req_remove_header_code", code(wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, "X-Set")));
    jw_kint(&w, "req_set_body_code", code(wasmgate_body_set(WASMGATE_KIND_REQUEST, "late", 4)));
    jw_kint(&w, "req_set_path_code", code(wasmgate_request_set_path_str("/late")));
    jw_kint(&w, "send_response_code", wasmgate_send_response(200, NULL, 0));

    jw_kint(&w, "set_status_600_code", wasmgate_response_set_status(600));
    jw_kint(&w, "set_status_99_code", wasmgate_response_set_status(99));
    jw_kint(&w, "set_status_code", code(wasmgate_response_set_status(203)));
    status = wasmgate_response_status();
    jw_kint(&w, "status_after", status < 0 ? 0 : status);
    jw_kint(&w, "resp_set_code", code(wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-Resp-Set", "1")));
    jw_kint(&w, "resp_add_code", code(wasmgate_header_add_str(WASMGATE_KIND_RESPONSE, "X-Resp-Multi", "b")));
    jw_kint(&w, "resp_remove_code", code(wasmgate_header_remove_str(WASMGATE_KIND_RESPONSE, "X-Upstream-Remove")));
    jw_kint(&w, "resp_content_length_code", code(wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "Content-Length", "1")));
    jw_kint(&w, "resp_bad_value_code", code(wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-Resp-Bad", "a\nb")));
    rc = wasmgate_read_header_values(WASMGATE_KIND_RESPONSE, "X-Resp-Multi", &b);
    klist(&w, "resp_header_values_after_add", rc, &b, false);
    if (cfg.big_body > 0) {
        char *big = calloc((size_t)cfg.big_body, 1);
        if (big == NULL) {
            jw_free(&w);
            wasmgate_bytes_free(&report);
            return fail_oom();
        }
        jw_kint(&w, "resp_body_set_too_large_code",
                code(wasmgate_body_set(WASMGATE_KIND_RESPONSE, big, (int32_t)cfg.big_body)));
        free(big);
    }
    jw_end_object(&w);

    /* {"request": <on_request's report>, "response": <this one>} */
    jw out;
    jw_init(&out);
    jw_begin_object(&out);
    jw_key(&out, "request");
    if (json_valid(report.data, report.len)) jw_raw(&out, report.data, report.len);
    else jw_string(&out, report.data, report.len);
    wasmgate_bytes_free(&report);
    size_t len;
    const char *text = jw_text(&w, &len);
    jw_key(&out, "response");
    if (text) jw_raw(&out, text, len);
    else out.failed = true;
    jw_end_object(&out);
    jw_free(&w);
    text = jw_text(&out, &len);
    if (text == NULL || wasmgate_bytes_append(&out.out, "\n", 1) != 0) {
        jw_free(&out);
        return fail_oom();
    }
    rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "Content-Type", "application/json");
    if (rc < 0) {
        jw_free(&out);
        return fail_code("header_set", rc);
    }
    rc = wasmgate_body_set(WASMGATE_KIND_RESPONSE, out.out.data, (int32_t)out.out.len);
    jw_free(&out);
    return rc < 0 ? fail_code("body_set", rc) : 0;
}

/* ---- phase --------------------------------------------------------------------- */

int32_t phase_request(void) {
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kraw(&w, "initialize", initialize_probe);
    jw_kraw(&w, "init", init_probe);
    jw_key(&w, "request");
    jw_begin_object(&w);
    jw_kint(&w, "response_status", wasmgate_response_status());
    jw_kint(&w, "response_set_status", wasmgate_response_set_status(200));
    jw_kint(&w, "header_get_resp", wasmgate_header_get(1, "X-A", 3, NULL, 0));
    jw_kint(&w, "header_values_resp", wasmgate_header_values(1, "X-A", 3, NULL, 0));
    jw_kint(&w, "header_names_resp", wasmgate_header_names(1, NULL, 0));
    jw_kint(&w, "header_set_resp", code(wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-A", "1")));
    jw_kint(&w, "header_add_resp", code(wasmgate_header_add_str(WASMGATE_KIND_RESPONSE, "X-A", "1")));
    jw_kint(&w, "header_remove_resp", code(wasmgate_header_remove_str(WASMGATE_KIND_RESPONSE, "X-A")));
    jw_kint(&w, "body_get_resp", wasmgate_body_get(1, 0, NULL, 0));
    jw_kint(&w, "body_set_resp", code(wasmgate_body_set(WASMGATE_KIND_RESPONSE, "x", 1)));
    jw_kint(&w, "request_method", wasmgate_request_method(NULL, 0));
    jw_kint(&w, "header_set_req", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-Phase-Req", "1")));
    jw_kint(&w, "kv_get", wasmgate_kv_get("phase-absent", 12, NULL, 0));
    jw_kint(&w, "metric_record", wasmgate_metric_record(wasmgate_metric_define(0, "hc_phase", 8), 1));
    jw_kint(&w, "http_batch_result", wasmgate_http_batch_result(NULL, 0));
    static const char empty_batch[4] = {0, 0, 0, 0};
    jw_kint(&w, "http_batch_empty_ret", wasmgate_http_batch(empty_batch, sizeof empty_batch));
    jw_end_object(&w);

    int32_t rc;
    size_t len;
    const char *text;
    if (!cfg.local) {
        jw_end_object(&w);
        text = jw_text(&w, &len);
        if (text == NULL) {
            jw_free(&w);
            return fail_oom();
        }
        rc = wasmgate_body_set(WASMGATE_KIND_REQUEST, text, (int32_t)len);
        jw_free(&w);
        return rc < 0 ? fail_code("body_set", rc) : WASMGATE_CONTINUE;
    }
    rc = wasmgate_send_response_str(418, "pending");
    if (rc < 0) {
        jw_free(&w);
        return fail_code("send_response", rc);
    }
    jw_key(&w, "request_after_send");
    jw_begin_object(&w);
    jw_kint(&w, "response_status", wasmgate_response_status());
    jw_kint(&w, "header_set_resp", code(wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-Local", "yes")));
    jw_kint(&w, "header_get_resp", wasmgate_header_get(1, "X-Local", 7, NULL, 0));
    jw_kbool(&w, "header_names_resp_ok", wasmgate_header_names(1, NULL, 0) > 0);
    jw_kint(&w, "body_get_resp", wasmgate_body_get(1, 0, NULL, 0));
    jw_kint(&w, "response_set_status", wasmgate_response_set_status(202));
    jw_kint(&w, "request_method", wasmgate_request_method(NULL, 0));
    jw_kint(&w, "header_set_req", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-Phase-Req", "2")));
    jw_kint(&w, "status_after", wasmgate_response_status());
    jw_end_object(&w);
    jw_end_object(&w);
    text = jw_text(&w, &len);
    if (text == NULL) {
        jw_free(&w);
        return fail_oom();
    }
    rc = wasmgate_body_set(WASMGATE_KIND_RESPONSE, text, (int32_t)len);
    jw_free(&w);
    return rc < 0 ? fail_code("body_set", rc) : WASMGATE_STOP;
}

int32_t phase_response(void) {
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kint(&w, "request_set_path", code(wasmgate_request_set_path_str("/x")));
    jw_kint(&w, "header_set_req", code(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-A", "1")));
    jw_kint(&w, "header_add_req", code(wasmgate_header_add_str(WASMGATE_KIND_REQUEST, "X-A", "1")));
    jw_kint(&w, "header_remove_req", code(wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, "X-A")));
    jw_kint(&w, "body_set_req", code(wasmgate_body_set(WASMGATE_KIND_REQUEST, "x", 1)));
    jw_kint(&w, "header_set_req_raw", wasmgate_header_set(0, "X-A", 3, "1", 1));
    jw_kint(&w, "send_response", wasmgate_send_response(200, NULL, 0));
    jw_kint(&w, "request_method", wasmgate_request_method(NULL, 0));
    jw_kint(&w, "header_get_req", wasmgate_header_get(0, "X-Phase-Req", 11, NULL, 0));
    jw_kint(&w, "response_status", wasmgate_response_status());
    jw_kint(&w, "response_set_status", wasmgate_response_set_status(201));
    jw_kint(&w, "header_set_resp", code(wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-Phase-Resp", "1")));
    jw_kint(&w, "kv_get", wasmgate_kv_get("phase-absent", 12, NULL, 0));
    jw_kint(&w, "metric_record", wasmgate_metric_record(wasmgate_metric_define(0, "hc_phase", 8), 1));
    static const char empty_batch[4] = {0, 0, 0, 0};
    jw_kint(&w, "http_batch_empty", wasmgate_http_batch(empty_batch, sizeof empty_batch));
    jw_kint(&w, "set_consumer", code(wasmgate_set_consumer_str("c")));
    jw_kint(&w, "set_claims", code(wasmgate_set_claims_str("{}")));
    jw_end_object(&w);

    /* The request body is on_request's report, a JSON object: add
     * "response" to it. */
    wasmgate_bytes report;
    int32_t rc = wasmgate_read_body(WASMGATE_KIND_REQUEST, &report);
    if (rc < 0) {
        jw_free(&w);
        return fail_code("body_get", rc);
    }
    char err[160];
    wasmgate_json *v = json_valid(report.data, report.len) ? wasmgate_json_parse(report.data, report.len, err, sizeof err) : NULL;
    bool object = wasmgate_json_type(v) == WASMGATE_JSON_OBJECT;
    size_t members = wasmgate_json_count(v);
    wasmgate_json_free(v);
    if (!object) {
        jw_free(&w);
        wasmgate_bytes_free(&report);
        return wasmgate_fail("phase: the request body is not the on_request report");
    }
    size_t end = report.len;
    while (end > 0 && report.data[end - 1] != '}') end--;
    size_t len;
    const char *text = jw_text(&w, &len);
    wasmgate_bytes out = {0};
    bool ok = text != NULL && wasmgate_bytes_append(&out, report.data, end - 1) == 0 &&
              wasmgate_bytes_append(&out, members > 0 ? ",\"response\":" : "\"response\":", members > 0 ? 12 : 11) == 0 &&
              wasmgate_bytes_append(&out, text, len) == 0 && wasmgate_bytes_append(&out, "}", 1) == 0;
    jw_free(&w);
    wasmgate_bytes_free(&report);
    if (!ok) {
        wasmgate_bytes_free(&out);
        return fail_oom();
    }
    rc = wasmgate_body_set(WASMGATE_KIND_RESPONSE, out.data, (int32_t)out.len);
    wasmgate_bytes_free(&out);
    return rc < 0 ? fail_code("body_set", rc) : 0;
}

/* ---- kv ------------------------------------------------------------------------ */

int32_t kv_request(void) {
    load_query();
    wasmgate_bytes op, key, value;
    param("op", &op);
    param("key", &key);
    int64_t key_len;
    if (param_int("key_len", &key_len)) {
        wasmgate_bytes_free(&key);
        key.data = repeat('k', key_len > 0 ? (size_t)key_len : 0);
        if (key.data == NULL) {
            wasmgate_bytes_free(&op);
            return fail_oom();
        }
        key.len = strlen(key.data);
    }
    param("value", &value);
    int64_t ttl_ms, delta;
    param_int("ttl_ms", &ttl_ms);
    param_int("delta", &delta);
    const char *k = key.data ? key.data : "", *o = op.data ? op.data : "";
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kstring(&w, "op", op.data, op.len);
    int32_t status = 200;
    if (strcmp(o, "get") == 0) {
        wasmgate_bytes v;
        int32_t rc = wasmgate_read_kv(k, &v);
        jw_kint(&w, "code", code(rc));
        kread(&w, "value", &v);
    } else if (strcmp(o, "get_raw") == 0) {
        target t = {0, k, 0};
        probe(&w, "probe", r_kv, &t);
    } else if (strcmp(o, "set") == 0) {
        jw_kint(&w, "code", code(wasmgate_kv_set_str(k, value.data ? value.data : "", value.len, ttl_ms)));
    } else if (strcmp(o, "set_raw") == 0) {
        jw_kint(&w, "code", wasmgate_kv_set(k, (int32_t)key.len, value.data, (int32_t)value.len, ttl_ms));
    } else if (strcmp(o, "delete") == 0) {
        jw_kint(&w, "code", code(wasmgate_kv_delete_str(k)));
    } else if (strcmp(o, "incr") == 0) {
        int64_t v = 0;
        int32_t rc = wasmgate_kv_incr_str(k, delta, ttl_ms, &v);
        jw_kint(&w, "code", code(rc));
        jw_kint(&w, "result", rc < 0 ? 0 : v);
    } else {
        jw_free(&w);
        jw_init(&w);
        jw_begin_object(&w);
        char msg[300];
        snprintf(msg, sizeof msg, "unknown op \"%s\"", o);
        jw_kcstring(&w, "error", msg);
        status = 400;
    }
    jw_end_object(&w);
    wasmgate_bytes_free(&op);
    wasmgate_bytes_free(&key);
    wasmgate_bytes_free(&value);
    return respond(status, &w);
}

/* ---- metrics ------------------------------------------------------------------- */

/* SDK-declared metrics, recorded next to the raw ones. */
static wasmgate_metric sdk_counter = WASMGATE_COUNTER("hc_sdk_counter");
static wasmgate_metric sdk_gauge = WASMGATE_GAUGE("hc_sdk_gauge");
static wasmgate_metric sdk_histogram = WASMGATE_HISTOGRAM("hc_sdk_histogram");

static int32_t define(int32_t kind, const char *name) { return wasmgate_metric_define(kind, name, (int32_t)strlen(name)); }

int32_t metrics_request(void) {
    load_query();
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    wasmgate_bytes v;
    if (param("fill", &v)) {
        wasmgate_bytes_free(&v);
        int32_t last = -1, fail_code_ = 0, fail_at = -1;
        for (int i = 0; i < 64; i++) {
            char name[16];
            snprintf(name, sizeof name, "fill_%d", i);
            int32_t id = define(WASMGATE_METRIC_COUNTER, name);
            if (id < 0) {
                fail_code_ = id;
                fail_at = i;
                break;
            }
            last = id;
        }
        jw_kint(&w, "last_id", last);
        jw_kint(&w, "fail_code", fail_code_);
        jw_kint(&w, "fail_at", fail_at);
        jw_end_object(&w);
        return respond(200, &w);
    }
    int32_t counter = define(WASMGATE_METRIC_COUNTER, "hc_counter");
    int32_t gauge = define(WASMGATE_METRIC_GAUGE, "hc_gauge");
    int32_t hist = define(WASMGATE_METRIC_HISTOGRAM, "hc_hist");
    jw_key(&w, "ids");
    jw_begin_object(&w);
    jw_kint(&w, "counter", counter);
    jw_kint(&w, "gauge", gauge);
    jw_kint(&w, "hist", hist);
    jw_end_object(&w);
    jw_kint(&w, "counter_again", define(WASMGATE_METRIC_COUNTER, "hc_counter"));
    jw_kint(&w, "counter_name_as_gauge", define(WASMGATE_METRIC_GAUGE, "hc_counter"));
    jw_kint(&w, "bad_name_code", define(WASMGATE_METRIC_COUNTER, "Bad-Name"));
    jw_kint(&w, "empty_name_code", define(WASMGATE_METRIC_COUNTER, ""));
    char name[66];
    name[0] = 'a';
    memset(name + 1, 'b', 63);
    name[64] = 0;
    jw_kint(&w, "long_name_code", define(WASMGATE_METRIC_COUNTER, name)); /* 64 bytes */
    name[63] = 0;
    jw_kbool(&w, "max_name_ok", define(WASMGATE_METRIC_COUNTER, name) >= 0); /* 63 bytes */
    jw_kint(&w, "bad_kind_code", define(3, "hc_kind"));
    jw_kint(&w, "unknown_id_code", wasmgate_metric_record(31, 1));
    jw_kint(&w, "negative_id_code", wasmgate_metric_record(-1, 1));
    jw_kint(&w, "nan_code", wasmgate_metric_record(gauge, NAN));
    jw_kint(&w, "counter_negative_code", wasmgate_metric_record(counter, -1));
    jw_kint(&w, "counter_inf_code", wasmgate_metric_record(counter, INFINITY));
    jw_kint(&w, "gauge_negative_code", wasmgate_metric_record(gauge, -2.5));
    double x;
    if (param_float("counter", &x)) jw_kint(&w, "counter_code", wasmgate_metric_record(counter, x));
    if (param_float("gauge", &x)) jw_kint(&w, "gauge_code", wasmgate_metric_record(gauge, x));
    if (param_float("hist", &x)) jw_kint(&w, "hist_code", wasmgate_metric_record(hist, x));
    jw_kint(&w, "sdk_counter_code", code(wasmgate_metric_add(&sdk_counter, 2)));
    jw_kint(&w, "sdk_gauge_code", code(wasmgate_metric_add(&sdk_gauge, 7)));
    jw_kint(&w, "sdk_histogram_code", code(wasmgate_metric_add(&sdk_histogram, 0.5)));
    jw_end_object(&w);
    return respond(200, &w);
}

/* ---- log ----------------------------------------------------------------------- */

/* log(level, "PREFIX M"): what the host answered. */
static int32_t log_mark(int32_t level, const char *prefix, const wasmgate_bytes *m) {
    wasmgate_bytes line = {0};
    if (wasmgate_bytes_append(&line, prefix, strlen(prefix)) != 0 || wasmgate_bytes_append(&line, m->data, m->len) != 0) {
        wasmgate_bytes_free(&line);
        return WASMGATE_TOO_LARGE;
    }
    int32_t rc = wasmgate_log(level, line.data, (int32_t)line.len);
    wasmgate_bytes_free(&line);
    return rc;
}

int32_t log_request(void) {
    load_query();
    wasmgate_bytes m, v;
    param("m", &m);
    if (m.data == NULL && wasmgate_bytes_append(&m, "", 0) != 0) return fail_oom();
    if (param("fail", &v)) {
        int32_t rc = wasmgate_fail(v.data);
        wasmgate_bytes_free(&v);
        wasmgate_bytes_free(&m);
        return rc;
    }
    if (param("fail_long", &v)) {
        wasmgate_bytes_free(&v);
        wasmgate_bytes_free(&m);
        char *e = repeat('e', 2000);
        if (e == NULL) return fail_oom();
        wasmgate_set_error(e, 2000); /* the host keeps 1 KiB */
        free(e);
        return WASMGATE_FAILED;
    }
    int64_t flood;
    if (param_int("flood", &flood)) {
        for (int64_t i = 0; i < flood && i < 1000; i++) {
            char num[24];
            snprintf(num, sizeof num, " %" PRId64, i);
            wasmgate_bytes line = {0};
            if (wasmgate_bytes_append(&line, "hc-flood ", 9) == 0 && wasmgate_bytes_append(&line, m.data, m.len) == 0 &&
                wasmgate_bytes_append(&line, num, strlen(num)) == 0)
                wasmgate_log(WASMGATE_LOG_INFO, line.data, (int32_t)line.len);
            wasmgate_bytes_free(&line);
        }
        wasmgate_bytes_free(&m);
        jw w;
        jw_init(&w);
        jw_begin_object(&w);
        jw_kint(&w, "flooded", flood);
        jw_end_object(&w);
        return respond(200, &w);
    }
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kint(&w, "debug", log_mark(WASMGATE_LOG_DEBUG, "hc-log debug ", &m));
    jw_kint(&w, "info", log_mark(WASMGATE_LOG_INFO, "hc-log info ", &m));
    jw_kint(&w, "warn", log_mark(WASMGATE_LOG_WARN, "hc-log warn ", &m));
    jw_kint(&w, "error", log_mark(WASMGATE_LOG_ERROR, "hc-log error ", &m));
    jw_kint(&w, "bad_level_4", log_mark(4, "hc-log bad ", &m));
    jw_kint(&w, "bad_level_minus", log_mark(-1, "hc-log bad ", &m));
    wasmgate_bytes long_mark = {0};
    char *ls = repeat('L', 5000);
    if (ls == NULL || wasmgate_bytes_append(&long_mark, m.data, m.len) != 0 || wasmgate_bytes_append(&long_mark, " ", 1) != 0 ||
        wasmgate_bytes_append(&long_mark, ls, 5000) != 0) {
        free(ls);
        wasmgate_bytes_free(&long_mark);
        wasmgate_bytes_free(&m);
        jw_free(&w);
        return fail_oom();
    }
    free(ls);
    jw_kint(&w, "long", log_mark(WASMGATE_LOG_INFO, "hc-long ", &long_mark));
    wasmgate_bytes_free(&long_mark);
    jw_kint(&w, "empty", wasmgate_log(WASMGATE_LOG_INFO, "", 0));
    jw_end_object(&w);
    /* The SDK's log, then WASI stdout and stderr: the gateway logs each
     * line it gets through fd_write; stdio's buffers are flushed before the
     * hook returns. */
    wasmgate_logf(WASMGATE_LOG_WARN, "hc-sdk %s", m.data);
    printf("hc-stdout %s\n", m.data);
    fflush(stdout);
    fprintf(stderr, "hc-stderr %s\n", m.data);
    fflush(stderr);
    wasmgate_bytes_free(&m);
    return respond(200, &w);
}

/* ---- outbound ------------------------------------------------------------------ */

int32_t outbound_request(void) {
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    wasmgate_results res;
    int32_t rc = wasmgate_fetch(cfg.batch, cfg.batch_len, &res);
    jw_kint(&w, "code", code(rc));
    jw_key(&w, "results");
    jw_begin_array(&w);
    for (size_t i = 0; rc == 0 && i < res.count; i++) {
        const wasmgate_result *r = &res.items[i];
        jw_begin_object(&w);
        jw_kint(&w, "status", r->status);
        const char *e = wasmgate_outbound_error(r->status);
        if (e) jw_kcstring(&w, "err", e);
        jw_kdouble(&w, "duration_ms", r->duration_us / 1000.0);
        if (r->header_count > 0) {
            jw_key(&w, "headers");
            jw_begin_object(&w);
            for (size_t h = 0; h < r->header_count; h++) {
                const wasmgate_field *f = &r->headers[h];
                bool seen = false; /* the first value of a name, as a Go map keeps it */
                for (size_t g = 0; g < h && !seen; g++)
                    seen = r->headers[g].name_len == f->name_len && memcmp(r->headers[g].name, f->name, f->name_len) == 0;
                if (seen) continue;
                jw_key_n(&w, f->name, f->name_len);
                jw_string(&w, f->value, f->value_len);
            }
            jw_end_object(&w);
        }
        jw_kstring(&w, "body", r->body, r->body_len);
        jw_end_object(&w);
    }
    jw_end_array(&w);
    wasmgate_results_free(&res);

    /* The results of the last batch stay readable, with the buffer
     * convention, until the next http_batch. */
    probed p;
    probe_run(r_batch_result, NULL, &p);
    char small_hex[17];
    hex_encode((const unsigned char *)p.small, sizeof p.small, small_hex);
    free(p.full);
    jw_key(&w, "result_probe");
    jw_begin_object(&w);
    jw_kint(&w, "size0", p.size0);
    jw_kint(&w, "small_ret", p.small_ret);
    jw_kcstring(&w, "small_hex", small_hex);
    jw_kint(&w, "full_ret", p.full_ret);
    jw_end_object(&w);

    static const char malformed[5] = {1, 0, 0, 0, 5};
    jw_kint(&w, "malformed_code", wasmgate_http_batch(malformed, sizeof malformed));
    jw_kint(&w, "result_after_malformed", wasmgate_http_batch_result(NULL, 0));
    wasmgate_bytes gets;
    rc = encode_gets(65, cfg.batch[0].url, &gets);
    if (rc < 0) {
        jw_free(&w);
        return fail_oom();
    }
    jw_kint(&w, "too_many_code", wasmgate_http_batch(gets.data, (int32_t)gets.len));
    wasmgate_bytes_free(&gets);
    static const char empty_batch[4] = {0, 0, 0, 0};
    jw_kint(&w, "empty_batch_ret", wasmgate_http_batch(empty_batch, sizeof empty_batch));
    wasmgate_request bad = {.method = "BAD METHOD", .url = cfg.batch[0].url};
    rc = wasmgate_fetch(&bad, 1, &res);
    wasmgate_results_free(&res);
    jw_kint(&w, "bad_method_code", code(rc));
    wasmgate_header bad_header = {"X-Bad", "a\r\nb"};
    wasmgate_request with_bad_header = {.url = cfg.batch[0].url, .headers = &bad_header, .header_count = 1};
    rc = wasmgate_fetch(&with_bad_header, 1, &res);
    wasmgate_results_free(&res);
    jw_kint(&w, "bad_header_code", code(rc));
    jw_end_object(&w);
    return respond(200, &w);
}

/* ---- chain --------------------------------------------------------------------- */

/* TAG, or PREV,TAG when the header has a value (malloc'd). */
static char *append_tag(int32_t kind, const char *header) {
    wasmgate_bytes prev, v = {0};
    bool ok = true;
    if (wasmgate_read_header(kind, header, &prev) == 0)
        ok = wasmgate_bytes_append(&v, prev.data, prev.len) == 0 && wasmgate_bytes_append(&v, ",", 1) == 0;
    wasmgate_bytes_free(&prev);
    ok = ok && wasmgate_bytes_append(&v, cfg.tag, strlen(cfg.tag)) == 0;
    if (!ok) wasmgate_bytes_free(&v);
    return v.data;
}

int32_t chain_request(void) {
    char *v = append_tag(WASMGATE_KIND_REQUEST, "X-Chain");
    if (v == NULL) return fail_oom();
    int32_t rc = wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-Chain", v);
    if (rc < 0) {
        free(v);
        return fail_code("header_set", rc);
    }
    int64_t n;
    rc = wasmgate_kv_incr_str("chain_requests", 1, 0, &n);
    if (rc < 0 || !cfg.stop) {
        free(v);
        return rc < 0 ? fail_code("kv_incr", rc) : WASMGATE_CONTINUE;
    }
    char *body = malloc(strlen(cfg.tag) + strlen(v) + 32);
    if (body == NULL) {
        free(v);
        return fail_oom();
    }
    sprintf(body, "stopped by %s; X-Chain=%s\n", cfg.tag, v);
    free(v);
    rc = wasmgate_send_response_str(200, body);
    free(body);
    if (rc < 0) return fail_code("send_response", rc);
    char *mark = malloc(strlen(cfg.tag) + 7);
    if (mark == NULL) return fail_oom();
    sprintf(mark, "local:%s", cfg.tag);
    rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-Chain-Resp", mark);
    free(mark);
    return rc < 0 ? fail_code("header_set", rc) : WASMGATE_STOP;
}

int32_t chain_response(void) {
    char *v = append_tag(WASMGATE_KIND_RESPONSE, "X-Chain-Resp");
    if (v == NULL) return fail_oom();
    int32_t rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "X-Chain-Resp", v);
    free(v);
    return rc < 0 ? fail_code("header_set", rc) : 0;
}

/* ---- buffers ------------------------------------------------------------------- */

int32_t buffers_request(void) {
    static const char kv_value[] = "kv-value-0123456789";
    int32_t rc = wasmgate_kv_set_str("buffers", kv_value, sizeof kv_value - 1, 0);
    if (rc < 0) return fail_code("kv_set", rc);
    wasmgate_bytes long_header; /* over the SDK's first buffer: it retries */
    wasmgate_read_header(WASMGATE_KIND_REQUEST, "X-Long", &long_header);
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    probe(&w, "request_method", r_method, NULL);
    probe(&w, "request_path", r_path, NULL);
    probe(&w, "request_query", r_query, NULL);
    probe(&w, "request_client_ip", r_client_ip, NULL);
    target long_t = {0, "X-Long", 0}, multi = {0, "X-Multi", 0}, req = {0, NULL, 0}, req4 = {0, NULL, 4},
           kv = {0, "buffers", 0};
    probe(&w, "header_get", r_header, &long_t);
    probe(&w, "header_values", r_values, &multi);
    probe(&w, "header_names", r_names, &req);
    probe(&w, "body_get", r_body, &req);
    probe(&w, "body_get_offset", r_body, &req4);
    probe(&w, "config_get", r_config, NULL);
    probe(&w, "kv_get", r_kv, &kv);
    jw_kint(&w, "zero_len_bogus_ptr", wasmgate_header_get(0, "X-Long", 6, BOGUS_PTR, 0));
    jw_kint(&w, "sdk_long_header_len", (int64_t)long_header.len);
    wasmgate_bytes_free(&long_header);
    jw_end_object(&w);
    return respond(200, &w);
}
