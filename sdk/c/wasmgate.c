/*
 * wasmgate.c: the version marker and the helpers declared in wasmgate.h.
 * Compile it into every plugin (see wasmgate.h for the build line); the
 * linker keeps only the helpers a plugin calls.
 */
#include "wasmgate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The version marker the gateway looks for (sdk/ABI.md section 1); never
 * called. */
WASMGATE_EXPORT(wasmgate_abi_v1) void wasmgate_abi_v1(void) {}

/* ---- Native stubs --------------------------------------------------------- */

#if !defined(__wasm__)
/* Outside WebAssembly every host function is refused as it would be outside
 * a hook, so a plugin's own logic compiles and runs in native tests. */
#define NO return WASMGATE_NOT_ALLOWED
int32_t wasmgate_request_method(char *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_request_path(char *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_request_set_path(const char *p, int32_t n) { (void)p, (void)n; NO; }
int32_t wasmgate_request_query(char *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_request_client_ip(char *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_header_get(int32_t k, const char *nm, int32_t nl, char *b, int32_t n) { (void)k, (void)nm, (void)nl, (void)b, (void)n; NO; }
int32_t wasmgate_header_values(int32_t k, const char *nm, int32_t nl, char *b, int32_t n) { (void)k, (void)nm, (void)nl, (void)b, (void)n; NO; }
int32_t wasmgate_header_names(int32_t k, char *b, int32_t n) { (void)k, (void)b, (void)n; NO; }
int32_t wasmgate_header_set(int32_t k, const char *nm, int32_t nl, const char *v, int32_t vl) { (void)k, (void)nm, (void)nl, (void)v, (void)vl; NO; }
int32_t wasmgate_header_add(int32_t k, const char *nm, int32_t nl, const char *v, int32_t vl) { (void)k, (void)nm, (void)nl, (void)v, (void)vl; NO; }
int32_t wasmgate_header_remove(int32_t k, const char *nm, int32_t nl) { (void)k, (void)nm, (void)nl; NO; }
int64_t wasmgate_body_get(int32_t k, int64_t o, void *b, int32_t n) { (void)k, (void)o, (void)b, (void)n; NO; }
int32_t wasmgate_body_set(int32_t k, const void *b, int32_t n) { (void)k, (void)b, (void)n; NO; }
int32_t wasmgate_response_status(void) { NO; }
int32_t wasmgate_response_set_status(int32_t s) { (void)s; NO; }
int32_t wasmgate_send_response(int32_t s, const void *b, int32_t n) { (void)s, (void)b, (void)n; NO; }
int32_t wasmgate_config_get(char *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_log(int32_t l, const char *m, int32_t n) { (void)l, (void)m, (void)n; NO; }
int32_t wasmgate_set_error(const char *m, int32_t n) { (void)m, (void)n; NO; }
int64_t wasmgate_time_now(void) { return 0; }
int32_t wasmgate_random_get(void *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_kv_get(const char *k, int32_t kl, void *b, int32_t n) { (void)k, (void)kl, (void)b, (void)n; NO; }
int32_t wasmgate_kv_set(const char *k, int32_t kl, const void *v, int32_t vl, int64_t t) { (void)k, (void)kl, (void)v, (void)vl, (void)t; NO; }
int32_t wasmgate_kv_delete(const char *k, int32_t kl) { (void)k, (void)kl; NO; }
int32_t wasmgate_kv_incr(const char *k, int32_t kl, int64_t d, int64_t t, int64_t *r) { (void)k, (void)kl, (void)d, (void)t, (void)r; NO; }
int32_t wasmgate_metric_define(int32_t k, const char *n, int32_t l) { (void)k, (void)n, (void)l; NO; }
int32_t wasmgate_metric_record(int32_t id, double v) { (void)id, (void)v; NO; }
int32_t wasmgate_http_batch(const void *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_http_batch_result(void *b, int32_t n) { (void)b, (void)n; NO; }
int32_t wasmgate_crypto_verify(int32_t a, const void *k, int32_t kl, const void *m, int32_t ml, const void *s, int32_t sl) { (void)a, (void)k, (void)kl, (void)m, (void)ml, (void)s, (void)sl; NO; }
int32_t wasmgate_set_consumer(const char *p, int32_t n) { (void)p, (void)n; NO; }
int32_t wasmgate_set_claims(const char *p, int32_t n) { (void)p, (void)n; NO; }
int32_t wasmgate_cache_set_key(const char *p, int32_t n) { (void)p, (void)n; NO; }
int32_t wasmgate_flag_enabled(const char *p, int32_t n) { (void)p, (void)n; NO; }
int32_t wasmgate_rate_limit(const char *n, int32_t nl, const char *k, int32_t kl, int64_t c, int64_t r[2]) { (void)n, (void)nl, (void)k, (void)kl, (void)c, (void)r; NO; }
#undef NO
#endif

/* ---- Small helpers -------------------------------------------------------- */

const char *wasmgate_code_name(int32_t code) {
    switch (code) {
    case WASMGATE_NOT_FOUND: return "NOT_FOUND";
    case WASMGATE_BAD_ARGUMENT: return "BAD_ARGUMENT";
    case WASMGATE_NOT_ALLOWED: return "NOT_ALLOWED";
    case WASMGATE_TOO_LARGE: return "TOO_LARGE";
    case WASMGATE_UNAVAILABLE: return "UNAVAILABLE";
    }
    return "";
}

static bool tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool wasmgate_is_token(const char *s, size_t len) {
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!tchar((unsigned char)s[i])) return false;
    return true;
}

bool wasmgate_valid_metric_name(const char *s, size_t len) {
    if (len == 0 || len > WASMGATE_MAX_METRIC_NAME || s[0] < 'a' || s[0] > 'z') return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    }
    return true;
}

/* The length of s cut to at most max bytes without splitting a UTF-8
 * character. */
static size_t cut_utf8(const char *s, size_t len, size_t max) {
    if (len <= max) return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80) max--;
    return max;
}

int32_t wasmgate_fail(const char *msg) {
    size_t n = cut_utf8(msg, strlen(msg), WASMGATE_MAX_ERROR_MESSAGE);
    wasmgate_set_error(msg, (int32_t)n);
    return WASMGATE_FAILED;
}

int32_t wasmgate_failf(const char *format, ...) {
    char buf[WASMGATE_MAX_ERROR_MESSAGE + 1];
    va_list ap;
    va_start(ap, format);
    vsnprintf(buf, sizeof buf, format, ap);
    va_end(ap);
    return wasmgate_fail(buf);
}

void wasmgate_log_str(int32_t level, const char *msg) {
    size_t n = cut_utf8(msg, strlen(msg), WASMGATE_MAX_LOG_MESSAGE);
    wasmgate_log(level, msg, (int32_t)n);
}

void wasmgate_logf(int32_t level, const char *format, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(buf, sizeof buf, format, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof buf) {
        wasmgate_log_str(level, buf);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL) return;
    va_start(ap, format);
    vsnprintf(big, (size_t)n + 1, format, ap);
    va_end(ap);
    wasmgate_log_str(level, big);
    free(big);
}

/* ---- Buffers -------------------------------------------------------------- */

void wasmgate_bytes_free(wasmgate_bytes *b) {
    if (b == NULL) return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

int32_t wasmgate_bytes_append(wasmgate_bytes *out, const void *s, size_t len) {
    char *p = realloc(out->data, out->len + len + 1);
    if (p == NULL) return WASMGATE_TOO_LARGE;
    if (len > 0) memcpy(p + out->len, s, len);
    out->data = p;
    out->len += len;
    p[out->len] = 0;
    return 0;
}

/* Data may change between two calls (another instance rewriting a KV
 * value): a value that keeps growing is UNAVAILABLE rather than chased. */
#define MAX_ATTEMPTS 4
/* The largest item read in one piece. */
#define MAX_READ (1u << 30)

int32_t wasmgate_read(wasmgate_reader fn, void *ctx, size_t hint, wasmgate_bytes *out) {
    out->data = NULL;
    out->len = 0;
    size_t size = hint > 0 ? hint : 256;
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (size > MAX_READ) return WASMGATE_TOO_LARGE;
        char *buf = malloc(size + 1);
        if (buf == NULL) return WASMGATE_TOO_LARGE;
        int32_t n = fn(ctx, buf, (int32_t)size);
        if (n < 0) {
            free(buf);
            return n;
        }
        if ((size_t)n <= size) {
            buf[n] = 0;
            out->data = buf;
            out->len = (size_t)n;
            return 0;
        }
        free(buf);
        size = (size_t)n;
    }
    return WASMGATE_UNAVAILABLE;
}

typedef struct {
    int32_t kind;
    const char *name;
} named;

static int32_t r_method(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_method(b, n); }
static int32_t r_path(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_path(b, n); }
static int32_t r_query(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_query(b, n); }
static int32_t r_ip(void *c, char *b, int32_t n) { (void)c; return wasmgate_request_client_ip(b, n); }
static int32_t r_config(void *c, char *b, int32_t n) { (void)c; return wasmgate_config_get(b, n); }

static int32_t r_header(void *c, char *b, int32_t n) {
    named *h = c;
    return wasmgate_header_get(h->kind, h->name, (int32_t)strlen(h->name), b, n);
}

static int32_t r_values(void *c, char *b, int32_t n) {
    named *h = c;
    return wasmgate_header_values(h->kind, h->name, (int32_t)strlen(h->name), b, n);
}

static int32_t r_names(void *c, char *b, int32_t n) { return wasmgate_header_names(*(int32_t *)c, b, n); }

static int32_t r_kv(void *c, char *b, int32_t n) {
    const char *key = c;
    return wasmgate_kv_get(key, (int32_t)strlen(key), b, n);
}

static int32_t r_body(void *c, char *b, int32_t n) {
    int64_t size = wasmgate_body_get(*(int32_t *)c, 0, b, n);
    return size > INT32_MAX ? INT32_MAX : (int32_t)size;
}

int32_t wasmgate_read_method(wasmgate_bytes *out) { return wasmgate_read(r_method, NULL, 16, out); }
int32_t wasmgate_read_path(wasmgate_bytes *out) { return wasmgate_read(r_path, NULL, 0, out); }
int32_t wasmgate_read_query(wasmgate_bytes *out) { return wasmgate_read(r_query, NULL, 0, out); }
int32_t wasmgate_read_client_ip(wasmgate_bytes *out) { return wasmgate_read(r_ip, NULL, 64, out); }

int32_t wasmgate_read_header(int32_t kind, const char *name, wasmgate_bytes *out) {
    named h = {kind, name};
    return wasmgate_read(r_header, &h, 0, out);
}

int32_t wasmgate_read_header_values(int32_t kind, const char *name, wasmgate_bytes *out) {
    named h = {kind, name};
    return wasmgate_read(r_values, &h, 0, out);
}

int32_t wasmgate_read_header_names(int32_t kind, wasmgate_bytes *out) {
    return wasmgate_read(r_names, &kind, 1024, out);
}

int32_t wasmgate_read_body(int32_t kind, wasmgate_bytes *out) { return wasmgate_read(r_body, &kind, 1024, out); }

int32_t wasmgate_read_config(int32_t config_len, wasmgate_bytes *out) {
    return wasmgate_read(r_config, NULL, config_len > 0 ? (size_t)config_len : 2, out);
}

int32_t wasmgate_read_kv(const char *key, wasmgate_bytes *out) { return wasmgate_read(r_kv, (void *)key, 0, out); }

const char *wasmgate_list_next(const wasmgate_bytes *list, const char *item) {
    if (list->data == NULL) return NULL;
    const char *end = list->data + list->len;
    const char *next = item == NULL ? list->data : item + strlen(item) + 1;
    return next < end ? next : NULL;
}

static int unhex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Unescapes s into out (+ and %XX); false for a broken escape. */
static bool unescape(const char *s, size_t len, wasmgate_bytes *out) {
    out->data = malloc(len + 1);
    out->len = 0;
    if (out->data == NULL) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (i + 2 >= len) goto bad;
            int hi = unhex(s[i + 1]), lo = unhex(s[i + 2]);
            if (hi < 0 || lo < 0) goto bad;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        out->data[out->len++] = c;
    }
    out->data[out->len] = 0;
    return true;
bad:
    wasmgate_bytes_free(out);
    return false;
}

int32_t wasmgate_query_param(const char *query, size_t len, const char *name, wasmgate_bytes *out) {
    out->data = NULL;
    out->len = 0;
    size_t name_len = strlen(name);
    const char *p = query, *end = query + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pair_end - p));
        const char *key_end = eq ? eq : pair_end;
        size_t key_len = (size_t)(key_end - p);
        bool match = key_len == name_len && memcmp(p, name, name_len) == 0;
        if (!match && memchr(p, '%', key_len) != NULL) {
            wasmgate_bytes k;
            if (unescape(p, key_len, &k)) {
                match = k.len == name_len && memcmp(k.data, name, name_len) == 0;
                wasmgate_bytes_free(&k);
            }
        }
        if (match) {
            const char *v = eq ? eq + 1 : pair_end;
            size_t vlen = (size_t)(pair_end - v);
            if (unescape(v, vlen, out)) return 0;
            out->data = NULL;
            out->len = 0;
            return wasmgate_bytes_append(out, v, vlen); /* broken escapes: as written */
        }
        p = amp ? amp + 1 : end;
    }
    return WASMGATE_NOT_FOUND;
}

/* ---- C-string wrappers ---------------------------------------------------- */

#define LEN(s) ((int32_t)strlen(s))

int32_t wasmgate_request_set_path_str(const char *path) { return wasmgate_request_set_path(path, LEN(path)); }

int32_t wasmgate_header_set_str(int32_t kind, const char *name, const char *value) {
    return wasmgate_header_set(kind, name, LEN(name), value, LEN(value));
}

int32_t wasmgate_header_add_str(int32_t kind, const char *name, const char *value) {
    return wasmgate_header_add(kind, name, LEN(name), value, LEN(value));
}

int32_t wasmgate_header_remove_str(int32_t kind, const char *name) {
    return wasmgate_header_remove(kind, name, LEN(name));
}

int32_t wasmgate_send_response_str(int32_t status, const char *body) {
    return wasmgate_send_response(status, body, body ? LEN(body) : 0);
}

int32_t wasmgate_kv_set_str(const char *key, const void *value, size_t len, int64_t ttl_ms) {
    if (len > INT32_MAX) return WASMGATE_TOO_LARGE;
    return wasmgate_kv_set(key, LEN(key), value, (int32_t)len, ttl_ms);
}

int32_t wasmgate_kv_delete_str(const char *key) { return wasmgate_kv_delete(key, LEN(key)); }

int32_t wasmgate_kv_incr_str(const char *key, int64_t delta, int64_t ttl_ms, int64_t *result) {
    return wasmgate_kv_incr(key, LEN(key), delta, ttl_ms, result);
}

int32_t wasmgate_set_consumer_str(const char *id) { return wasmgate_set_consumer(id, LEN(id)); }

int32_t wasmgate_set_claims_str(const char *json) {
    size_t n = strlen(json);
    if (n > WASMGATE_MAX_CLAIMS) return WASMGATE_TOO_LARGE;
    return wasmgate_set_claims(json, (int32_t)n);
}

int32_t wasmgate_cache_set_key_str(const char *key) { return wasmgate_cache_set_key(key, LEN(key)); }

int32_t wasmgate_flag_enabled_str(const char *name) { return wasmgate_flag_enabled(name, LEN(name)); }

int32_t wasmgate_rate_limit_str(const char *name, const char *key, int64_t cost, wasmgate_limit *out) {
    int64_t r[2] = {0, 0};
    int32_t rc = wasmgate_rate_limit(name, LEN(name), key, LEN(key), cost, r);
    if (rc < 0) return rc;
    out->allowed = rc == 1;
    out->remaining = r[0];
    out->retry_after_ms = r[1];
    return 0;
}

int32_t wasmgate_check_public_key(int32_t alg, const void *key, size_t len) {
    if (len > INT32_MAX) return WASMGATE_BAD_ARGUMENT;
    int32_t rc = wasmgate_crypto_verify(alg, key, (int32_t)len, NULL, 0, NULL, 0);
    return rc < 0 ? rc : 0;
}

int32_t wasmgate_metric_add(wasmgate_metric *m, double v) {
    if (m->kind == WASMGATE_METRIC_COUNTER && !(v >= 0)) return WASMGATE_BAD_ARGUMENT;
    if (m->id < 0) {
        size_t n = strlen(m->name);
        if (!wasmgate_valid_metric_name(m->name, n)) return WASMGATE_BAD_ARGUMENT;
        int32_t id = wasmgate_metric_define(m->kind, m->name, (int32_t)n);
        if (id < 0) return id;
        m->id = id;
    }
    int32_t rc = wasmgate_metric_record(m->id, v);
    return rc < 0 ? rc : 0;
}

/* ---- Outbound HTTP ------------------------------------------------------- */

static int32_t put_u32(wasmgate_bytes *b, uint32_t v) {
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24)};
    return wasmgate_bytes_append(b, le, 4);
}

static int32_t put_bytes(wasmgate_bytes *b, const void *s, size_t len) {
    if (len > UINT32_MAX) return WASMGATE_TOO_LARGE;
    int32_t rc = put_u32(b, (uint32_t)len);
    return rc < 0 ? rc : wasmgate_bytes_append(b, s, len);
}

int32_t wasmgate_batch_encode(const wasmgate_request *reqs, size_t n, wasmgate_bytes *out) {
    out->data = NULL;
    out->len = 0;
    int32_t rc = put_u32(out, (uint32_t)n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const wasmgate_request *r = &reqs[i];
        const char *method = r->method ? r->method : "GET";
        if (r->url == NULL || r->url[0] == 0 || (r->header_count > 0 && r->headers == NULL)) {
            rc = WASMGATE_BAD_ARGUMENT;
            break;
        }
        rc = put_u32(out, r->timeout_ms);
        if (rc == 0) rc = put_bytes(out, method, strlen(method));
        if (rc == 0) rc = put_bytes(out, r->url, strlen(r->url));
        if (rc == 0) rc = put_u32(out, (uint32_t)r->header_count);
        for (size_t h = 0; rc == 0 && h < r->header_count; h++) {
            rc = put_bytes(out, r->headers[h].name, strlen(r->headers[h].name));
            if (rc == 0) rc = put_bytes(out, r->headers[h].value, strlen(r->headers[h].value));
        }
        if (rc == 0) rc = put_bytes(out, r->body, r->body ? r->body_len : 0);
    }
    if (rc < 0) wasmgate_bytes_free(out);
    return rc;
}

/* A reader of an encoding: every read checks the bytes left. */
typedef struct {
    const unsigned char *p, *end;
    bool bad;
} reader;

static uint32_t get_u32(reader *r) {
    if (r->bad || r->end - r->p < 4) {
        r->bad = true;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return v;
}

static const char *get_bytes(reader *r, size_t *len) {
    uint32_t n = get_u32(r);
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        *len = 0;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += n;
    *len = n;
    return s;
}

/* A count of items of at least min bytes each. */
static size_t get_count(reader *r, size_t min) {
    uint32_t n = get_u32(r);
    if (r->bad || (uint64_t)n * min > (uint64_t)(r->end - r->p)) {
        r->bad = true;
        return 0;
    }
    return n;
}

/* Decodes the results in buf (which out takes ownership of). */
static int32_t decode_owned(char *buf, size_t len, wasmgate_results *out) {
    out->items = NULL;
    out->count = 0;
    out->mem_ = NULL;
    reader r = {(const unsigned char *)buf, (const unsigned char *)buf + len, false};
    /* First pass: counts, to allocate once. */
    size_t n = get_count(&r, 16), fields = 0;
    for (size_t i = 0; i < n && !r.bad; i++) {
        size_t l;
        get_u32(&r);
        get_u32(&r);
        size_t hc = get_count(&r, 8);
        for (size_t h = 0; h < hc && !r.bad; h++) {
            get_bytes(&r, &l);
            get_bytes(&r, &l);
        }
        fields += hc;
        get_bytes(&r, &l);
    }
    if (r.bad || r.p != r.end) {
        free(buf);
        return WASMGATE_BAD_ARGUMENT;
    }
    /* One block: the buffer's pointer, the results, the fields. */
    size_t head = sizeof(char *), items = n * sizeof(wasmgate_result);
    char *mem = malloc(head + items + fields * sizeof(wasmgate_field));
    if (mem == NULL) {
        free(buf);
        return WASMGATE_TOO_LARGE;
    }
    memcpy(mem, &buf, sizeof buf);
    wasmgate_result *res = (wasmgate_result *)(mem + head);
    wasmgate_field *f = (wasmgate_field *)(mem + head + items);
    r = (reader){(const unsigned char *)buf, (const unsigned char *)buf + len, false};
    get_u32(&r);
    for (size_t i = 0; i < n; i++) {
        res[i].status = (int32_t)get_u32(&r);
        res[i].duration_us = get_u32(&r);
        res[i].header_count = get_u32(&r);
        res[i].headers = f;
        for (size_t h = 0; h < res[i].header_count; h++, f++) {
            f->name = get_bytes(&r, &f->name_len);
            f->value = get_bytes(&r, &f->value_len);
        }
        res[i].body = get_bytes(&r, &res[i].body_len);
    }
    out->items = res;
    out->count = n;
    out->mem_ = mem;
    return 0;
}

int32_t wasmgate_results_decode(const void *buf, size_t len, wasmgate_results *out) {
    char *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL) return WASMGATE_TOO_LARGE;
    if (len > 0) memcpy(copy, buf, len);
    return decode_owned(copy, len, out);
}

void wasmgate_results_free(wasmgate_results *r) {
    if (r == NULL || r->mem_ == NULL) return;
    char *buf;
    memcpy(&buf, r->mem_, sizeof buf);
    free(buf);
    free(r->mem_);
    r->mem_ = NULL;
    r->items = NULL;
    r->count = 0;
}

static int32_t r_batch_result(void *c, char *b, int32_t n) {
    (void)c;
    return wasmgate_http_batch_result(b, n);
}

int32_t wasmgate_fetch(const wasmgate_request *reqs, size_t n, wasmgate_results *out) {
    out->items = NULL;
    out->count = 0;
    out->mem_ = NULL;
    if (n == 0) return 0;
    if (n > WASMGATE_MAX_BATCH) return WASMGATE_TOO_LARGE;
    wasmgate_bytes enc;
    int32_t rc = wasmgate_batch_encode(reqs, n, &enc);
    if (rc < 0) return rc;
    if (enc.len > WASMGATE_MAX_BATCH_BYTES) {
        wasmgate_bytes_free(&enc);
        return WASMGATE_TOO_LARGE;
    }
    int32_t size = wasmgate_http_batch(enc.data, (int32_t)enc.len);
    wasmgate_bytes_free(&enc);
    if (size < 0) return size;
    wasmgate_bytes res;
    rc = wasmgate_read(r_batch_result, NULL, size > 0 ? (size_t)size : 4, &res);
    if (rc < 0) return rc;
    rc = decode_owned(res.data, res.len, out);
    if (rc == 0 && out->count != n) {
        wasmgate_results_free(out);
        return WASMGATE_BAD_ARGUMENT;
    }
    return rc;
}

const char *wasmgate_outbound_error(int32_t status) {
    switch (status) {
    case WASMGATE_STATUS_TIMEOUT: return "wasmgate: outbound request timed out";
    case WASMGATE_STATUS_NETWORK: return "wasmgate: outbound connect or network error";
    case WASMGATE_STATUS_NOT_ALLOWED: return "wasmgate.http_batch: not allowed";
    }
    return status < 0 ? "wasmgate: outbound request failed" : NULL;
}

static bool eq_fold(const char *a, size_t alen, const char *b) {
    size_t blen = strlen(b);
    if (alen != blen) return false;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return false;
    }
    return true;
}

const char *wasmgate_result_header(const wasmgate_result *r, const char *name, size_t *len) {
    for (size_t i = 0; i < r->header_count; i++) {
        if (eq_fold(r->headers[i].name, r->headers[i].name_len, name)) {
            if (len) *len = r->headers[i].value_len;
            return r->headers[i].value;
        }
    }
    return NULL;
}

/* ---- JSON ------------------------------------------------------------------- */

struct wasmgate_json {
    int type;
    bool b;
    char *s;    /* string bytes or number text, NUL-terminated */
    size_t len; /* of s */
    size_t count;
    wasmgate_json *items; /* array items or member values */
    char **keys;          /* member keys */
};

#define JSON_MAX_DEPTH 128

typedef struct {
    const char *b;
    size_t i, n;
    char *err;
    size_t err_len;
    bool failed;
} jparser;

static void jerr(jparser *p, const char *msg) {
    if (p->failed) return;
    p->failed = true;
    if (p->err_len > 0) snprintf(p->err, p->err_len, "invalid JSON at byte %zu: %s", p->i, msg);
}

static void jspace(jparser *p) {
    while (p->i < p->n && (p->b[p->i] == ' ' || p->b[p->i] == '\t' || p->b[p->i] == '\r' || p->b[p->i] == '\n'))
        p->i++;
}

static int jpeek(jparser *p) { return p->i < p->n ? (unsigned char)p->b[p->i] : -1; }

static void jfree_inner(wasmgate_json *v) {
    free(v->s);
    for (size_t i = 0; i < v->count; i++) {
        if (v->items) jfree_inner(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void wasmgate_json_free(wasmgate_json *v) {
    if (v == NULL) return;
    jfree_inner(v);
    free(v);
}

static bool jvalue(jparser *p, wasmgate_json *v, int depth);

static int jhex4(jparser *p) {
    int v = 0;
    for (int k = 0; k < 4; k++) {
        int d = p->i < p->n ? unhex(p->b[p->i]) : -1;
        if (d < 0) {
            jerr(p, "invalid \\u escape");
            return -1;
        }
        v = v << 4 | d;
        p->i++;
    }
    return v;
}

static bool put_utf8(wasmgate_bytes *out, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)), u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F)), u[2] = (char)(0x80 | (cp >> 6 & 0x3F)),
        u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    }
    return wasmgate_bytes_append(out, u, n) == 0;
}

/* Parses a string at p->i (the opening quote) into out. */
static bool jstring(jparser *p, wasmgate_bytes *out) {
    out->data = NULL;
    out->len = 0;
    if (wasmgate_bytes_append(out, "", 0) != 0) goto oom;
    p->i++;
    for (;;) {
        if (p->i >= p->n) {
            jerr(p, "unterminated string");
            goto fail;
        }
        unsigned char c = (unsigned char)p->b[p->i];
        if (c == '"') {
            p->i++;
            return true;
        }
        if (c < 0x20) {
            jerr(p, "control character in string");
            goto fail;
        }
        if (c != '\\') {
            size_t start = p->i;
            while (p->i < p->n && p->b[p->i] != '"' && p->b[p->i] != '\\' && (unsigned char)p->b[p->i] >= 0x20) p->i++;
            if (wasmgate_bytes_append(out, p->b + start, p->i - start) != 0) goto oom;
            continue;
        }
        p->i++;
        if (p->i >= p->n) {
            jerr(p, "unterminated string");
            goto fail;
        }
        char e = p->b[p->i++], ch;
        switch (e) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            int cp = jhex4(p);
            if (cp < 0) goto fail;
            if (cp >= 0xD800 && cp < 0xDC00 && p->n - p->i >= 6 && p->b[p->i] == '\\' && p->b[p->i + 1] == 'u') {
                size_t save = p->i;
                p->i += 2;
                int lo = jhex4(p);
                if (lo < 0) goto fail;
                if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else p->i = save;
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* a lone surrogate */
            if (!put_utf8(out, (uint32_t)cp)) goto oom;
            continue;
        }
        default:
            p->i--;
            jerr(p, "invalid escape");
            goto fail;
        }
        if (wasmgate_bytes_append(out, &ch, 1) != 0) goto oom;
    }
oom:
    jerr(p, "out of memory");
fail:
    wasmgate_bytes_free(out);
    return false;
}

static size_t jdigits(jparser *p) {
    size_t start = p->i;
    while (p->i < p->n && p->b[p->i] >= '0' && p->b[p->i] <= '9') p->i++;
    return p->i - start;
}

static bool jnumber(jparser *p, wasmgate_json *v) {
    size_t start = p->i;
    if (jpeek(p) == '-') p->i++;
    size_t int_start = p->i, nd = jdigits(p);
    bool ok = nd > 0 && !(nd > 1 && p->b[int_start] == '0');
    if (ok && jpeek(p) == '.') {
        p->i++;
        ok = jdigits(p) > 0;
    }
    if (ok && (jpeek(p) == 'e' || jpeek(p) == 'E')) {
        p->i++;
        if (jpeek(p) == '+' || jpeek(p) == '-') p->i++;
        ok = jdigits(p) > 0;
    }
    if (!ok) {
        p->i = start;
        jerr(p, "invalid number");
        return false;
    }
    v->type = WASMGATE_JSON_NUMBER;
    v->len = p->i - start;
    v->s = malloc(v->len + 1);
    if (v->s == NULL) {
        jerr(p, "out of memory");
        return false;
    }
    memcpy(v->s, p->b + start, v->len);
    v->s[v->len] = 0;
    return true;
}

static bool jliteral(jparser *p, const char *word) {
    size_t n = strlen(word);
    if (p->n - p->i >= n && memcmp(p->b + p->i, word, n) == 0) {
        p->i += n;
        return true;
    }
    jerr(p, "invalid literal");
    return false;
}

/* Appends an item (and key) to an array or object being built. */
static bool jpush(jparser *p, wasmgate_json *v, size_t *cap, char *key) {
    if (v->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 4;
        wasmgate_json *items = realloc(v->items, ncap * sizeof *items);
        if (items == NULL) goto oom;
        v->items = items;
        if (v->type == WASMGATE_JSON_OBJECT) {
            char **keys = realloc(v->keys, ncap * sizeof *keys);
            if (keys == NULL) goto oom;
            v->keys = keys;
        }
        *cap = ncap;
    }
    memset(&v->items[v->count], 0, sizeof v->items[0]);
    if (v->type == WASMGATE_JSON_OBJECT) v->keys[v->count] = key;
    v->count++;
    return true;
oom:
    free(key);
    jerr(p, "out of memory");
    return false;
}

static bool jvalue(jparser *p, wasmgate_json *v, int depth) {
    if (depth > JSON_MAX_DEPTH) {
        jerr(p, "nested too deep");
        return false;
    }
    int c = jpeek(p);
    switch (c) {
    case -1: jerr(p, "unexpected end of input"); return false;
    case 'n': v->type = WASMGATE_JSON_NULL; return jliteral(p, "null");
    case 't': v->type = WASMGATE_JSON_BOOL; v->b = true; return jliteral(p, "true");
    case 'f': v->type = WASMGATE_JSON_BOOL; v->b = false; return jliteral(p, "false");
    case '"': {
        wasmgate_bytes s;
        if (!jstring(p, &s)) return false;
        v->type = WASMGATE_JSON_STRING;
        v->s = s.data;
        v->len = s.len;
        return true;
    }
    case '[':
    case '{': {
        bool obj = c == '{';
        char close = obj ? '}' : ']';
        v->type = obj ? WASMGATE_JSON_OBJECT : WASMGATE_JSON_ARRAY;
        size_t cap = 0;
        p->i++;
        jspace(p);
        if (jpeek(p) == close) {
            p->i++;
            return true;
        }
        for (;;) {
            jspace(p);
            char *key = NULL;
            if (obj) {
                if (jpeek(p) != '"') {
                    jerr(p, "expected a string key");
                    return false;
                }
                wasmgate_bytes k;
                if (!jstring(p, &k)) return false;
                key = k.data;
                jspace(p);
                if (jpeek(p) != ':') {
                    free(key);
                    jerr(p, "expected ':'");
                    return false;
                }
                p->i++;
                jspace(p);
            }
            if (!jpush(p, v, &cap, key)) return false;
            if (!jvalue(p, &v->items[v->count - 1], depth + 1)) return false;
            jspace(p);
            if (jpeek(p) == ',') {
                p->i++;
                continue;
            }
            if (jpeek(p) == close) {
                p->i++;
                return true;
            }
            jerr(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            return false;
        }
    }
    }
    if (c == '-' || (c >= '0' && c <= '9')) return jnumber(p, v);
    jerr(p, "unexpected character");
    return false;
}

wasmgate_json *wasmgate_json_parse(const char *text, size_t len, char *err, size_t err_len) {
    if (err_len > 0) err[0] = 0;
    wasmgate_json *v = calloc(1, sizeof *v);
    if (v == NULL) {
        if (err_len > 0) snprintf(err, err_len, "out of memory");
        return NULL;
    }
    jparser p = {text, 0, len, err, err_len, false};
    jspace(&p);
    if (p.i == p.n) {
        v->type = WASMGATE_JSON_OBJECT; /* an empty config */
        return v;
    }
    if (jvalue(&p, v, 0)) {
        jspace(&p);
        if (p.i == p.n) return v;
        jerr(&p, "unexpected data after the value");
    }
    wasmgate_json_free(v);
    return NULL;
}

int wasmgate_json_type(const wasmgate_json *v) { return v ? v->type : -1; }

const char *wasmgate_json_type_name(const wasmgate_json *v) {
    switch (wasmgate_json_type(v)) {
    case WASMGATE_JSON_NULL: return "null";
    case WASMGATE_JSON_BOOL: return "boolean";
    case WASMGATE_JSON_NUMBER: return "number";
    case WASMGATE_JSON_STRING: return "string";
    case WASMGATE_JSON_ARRAY: return "list";
    case WASMGATE_JSON_OBJECT: return "object";
    }
    return "missing";
}

const wasmgate_json *wasmgate_json_get(const wasmgate_json *v, const char *key) {
    if (v == NULL || v->type != WASMGATE_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < v->count; i++)
        if (strcmp(v->keys[i], key) == 0) return &v->items[i];
    return NULL;
}

size_t wasmgate_json_count(const wasmgate_json *v) {
    return v && (v->type == WASMGATE_JSON_ARRAY || v->type == WASMGATE_JSON_OBJECT) ? v->count : 0;
}

const wasmgate_json *wasmgate_json_item(const wasmgate_json *v, size_t i) {
    return i < wasmgate_json_count(v) ? &v->items[i] : NULL;
}

const char *wasmgate_json_key(const wasmgate_json *v, size_t i) {
    return v && v->type == WASMGATE_JSON_OBJECT && i < v->count ? v->keys[i] : NULL;
}

const char *wasmgate_json_string(const wasmgate_json *v, size_t *len) {
    if (v == NULL || v->type != WASMGATE_JSON_STRING) return NULL;
    if (len) *len = v->len;
    return v->s;
}

bool wasmgate_json_number(const wasmgate_json *v, double *out) {
    if (v == NULL || v->type != WASMGATE_JSON_NUMBER) return false;
    *out = strtod(v->s, NULL);
    return true;
}

bool wasmgate_json_int(const wasmgate_json *v, int64_t *out) {
    if (v == NULL || v->type != WASMGATE_JSON_NUMBER || strpbrk(v->s, ".eE") != NULL) return false;
    const char *s = v->s;
    bool neg = *s == '-';
    if (neg) s++;
    uint64_t n = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        if (n > (limit - d) / 10) return false;
        n = n * 10 + d;
    }
    *out = neg ? (int64_t)(0 - n) : (int64_t)n;
    return true;
}

bool wasmgate_json_bool(const wasmgate_json *v, bool *out) {
    if (v == NULL || v->type != WASMGATE_JSON_BOOL) return false;
    *out = v->b;
    return true;
}

const char *wasmgate_json_unknown_key(const wasmgate_json *v, const char *const *known) {
    if (v == NULL || v->type != WASMGATE_JSON_OBJECT) return NULL;
    for (size_t i = 0; i < v->count; i++) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, v->keys[i]) == 0;
        if (!ok) return v->keys[i];
    }
    return NULL;
}

int32_t wasmgate_json_quote(wasmgate_bytes *out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    if (wasmgate_bytes_append(out, "\"", 1) != 0) return WASMGATE_TOO_LARGE;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t n = 0;
        switch (c) {
        case '"': esc[0] = '\\', esc[1] = '"', n = 2; break;
        case '\\': esc[0] = '\\', esc[1] = '\\', n = 2; break;
        case '\n': esc[0] = '\\', esc[1] = 'n', n = 2; break;
        case '\r': esc[0] = '\\', esc[1] = 'r', n = 2; break;
        case '\t': esc[0] = '\\', esc[1] = 't', n = 2; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4], esc[5] = hex[c & 15], n = 6;
            }
        }
        if (n == 0) continue;
        if (wasmgate_bytes_append(out, s + start, i - start) != 0 || wasmgate_bytes_append(out, esc, n) != 0)
            return WASMGATE_TOO_LARGE;
        start = i + 1;
    }
    if (wasmgate_bytes_append(out, s + start, len - start) != 0 || wasmgate_bytes_append(out, "\"", 1) != 0)
        return WASMGATE_TOO_LARGE;
    return 0;
}

int32_t wasmgate_json_write(wasmgate_bytes *out, const wasmgate_json *v) {
    if (v == NULL) return WASMGATE_BAD_ARGUMENT;
    int32_t rc = 0;
    switch (v->type) {
    case WASMGATE_JSON_NULL: return wasmgate_bytes_append(out, "null", 4);
    case WASMGATE_JSON_BOOL: return v->b ? wasmgate_bytes_append(out, "true", 4) : wasmgate_bytes_append(out, "false", 5);
    case WASMGATE_JSON_NUMBER: return wasmgate_bytes_append(out, v->s, v->len);
    case WASMGATE_JSON_STRING: return wasmgate_json_quote(out, v->s, v->len);
    case WASMGATE_JSON_ARRAY:
    case WASMGATE_JSON_OBJECT: {
        bool obj = v->type == WASMGATE_JSON_OBJECT;
        rc = wasmgate_bytes_append(out, obj ? "{" : "[", 1);
        for (size_t i = 0; rc == 0 && i < v->count; i++) {
            if (i > 0) rc = wasmgate_bytes_append(out, ",", 1);
            if (rc == 0 && obj) rc = wasmgate_json_quote(out, v->keys[i], strlen(v->keys[i]));
            if (rc == 0 && obj) rc = wasmgate_bytes_append(out, ":", 1);
            if (rc == 0) rc = wasmgate_json_write(out, &v->items[i]);
        }
        if (rc == 0) rc = wasmgate_bytes_append(out, obj ? "}" : "]", 1);
        return rc;
    }
    }
    return WASMGATE_BAD_ARGUMENT;
}
