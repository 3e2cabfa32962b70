/*
 * probe: a test plugin of sdk/c/ctest (TestProbe). By the last path segment
 * it fails in each way a hook can, or answers a JSON report of what the
 * SDK's helpers returned, which the Go test compares with what it sent and
 * what the gateway knows. Not an example.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmgate.h"

/* Runs during _initialize, before on_init. */
__attribute__((constructor)) static void probe_constructor(void) {
    wasmgate_log_str(WASMGATE_LOG_INFO, wasmgate_time_now() > 0 ? "probe constructor: time ok" : "probe constructor: time zero");
    printf("probe stdout\n");
    fflush(stdout);
}

WASMGATE_EXPORT(on_init) int32_t on_init(int32_t config_len) {
    wasmgate_bytes cfg;
    int32_t rc = wasmgate_read_config(config_len, &cfg);
    if (rc < 0) return wasmgate_fail("no config");
    int empty = strcmp(cfg.data, "{}") == 0;
    wasmgate_bytes_free(&cfg);
    return empty ? 0 : wasmgate_fail("this plugin takes no config");
}

/* The report being built. */
static wasmgate_bytes out;

static void key(const char *k) {
    wasmgate_bytes_append(&out, out.len > 1 ? "," : "", out.len > 1);
    wasmgate_json_quote(&out, k, strlen(k));
    wasmgate_bytes_append(&out, ":", 1);
}

static void str(const char *k, const char *v, size_t len) {
    key(k);
    wasmgate_json_quote(&out, v, len);
}

static void num(const char *k, int64_t v) {
    char b[24];
    key(k);
    snprintf(b, sizeof b, "%" PRId64, v);
    wasmgate_bytes_append(&out, b, strlen(b));
}

static void boolean(const char *k, bool v) {
    key(k);
    wasmgate_bytes_append(&out, v ? "true" : "false", v ? 4 : 5);
}

/* A code as its name, "ok" for a success. */
static void code(const char *k, int32_t rc) {
    const char *name = rc >= 0 ? "ok" : wasmgate_code_name(rc);
    str(k, name, strlen(name));
}

static void list(const char *k, const wasmgate_bytes *l) {
    key(k);
    wasmgate_bytes_append(&out, "[", 1);
    int first = 1;
    for (const char *v = NULL; (v = wasmgate_list_next(l, v)); first = 0) {
        if (!first) wasmgate_bytes_append(&out, ",", 1);
        wasmgate_json_quote(&out, v, strlen(v));
    }
    wasmgate_bytes_append(&out, "]", 1);
}

static int32_t report(const char *path) {
    out = (wasmgate_bytes){0};
    wasmgate_bytes_append(&out, "{", 1);
    wasmgate_bytes b, q;
    if (wasmgate_read_method(&b) == 0) str("method", b.data, b.len), wasmgate_bytes_free(&b);
    str("path", path, strlen(path));
    if (wasmgate_read_query(&b) == 0) {
        str("query", b.data, b.len);
        if (wasmgate_query_param(b.data, b.len, "q", &q) == 0) str("q", q.data, q.len), wasmgate_bytes_free(&q);
        wasmgate_bytes_free(&b);
    }
    if (wasmgate_read_client_ip(&b) == 0) str("client_ip", b.data, b.len), wasmgate_bytes_free(&b);
    if (wasmgate_read_header_values(WASMGATE_KIND_REQUEST, "X-Multi", &b) == 0) list("multi", &b), wasmgate_bytes_free(&b);
    if (wasmgate_read_header_names(WASMGATE_KIND_REQUEST, &b) == 0) {
        int n = 0;
        for (const char *v = NULL; (v = wasmgate_list_next(&b, v));) n += strcmp(v, "X-Multi") == 0;
        num("multi_names", n); /* the host lists a name once per value */
        wasmgate_bytes_free(&b);
    }
    boolean("absent", wasmgate_read_header(WASMGATE_KIND_REQUEST, "X-Absent", &b) == WASMGATE_NOT_FOUND);
    if (wasmgate_read_body(WASMGATE_KIND_REQUEST, &b) == 0) str("body", b.data, b.len), wasmgate_bytes_free(&b);
    char range[3];
    int64_t size = wasmgate_body_get(WASMGATE_KIND_REQUEST, 2, range, sizeof range);
    str("range", range, size - 2 < 3 ? (size_t)(size - 2) : 3);
    num("size", size);
    wasmgate_kv_set_str("k", "v1", 2, 60000);
    if (wasmgate_read_kv("k", &b) == 0) str("kv", b.data, b.len), wasmgate_bytes_free(&b);
    code("kv_delete", wasmgate_kv_delete_str("k"));
    code("kv_gone", wasmgate_read_kv("k", &b));
    int64_t n = 0;
    wasmgate_kv_incr_str("n", 5, 0, &n);
    num("kv_incr", n);
    unsigned char rnd[16] = {0}, zero[16] = {0};
    wasmgate_random_get(rnd, sizeof rnd);
    boolean("random", memcmp(rnd, zero, sizeof rnd) != 0);
    boolean("now", wasmgate_time_now() > INT64_C(1600000000000000000));
    code("flag", wasmgate_flag_enabled_str("no-such-flag"));
    wasmgate_limit lim;
    code("limit", wasmgate_rate_limit_str("no-such-limit", "k", 1, &lim));
    code("cache_key", wasmgate_cache_set_key_str("k"));
    code("claims_not_object", wasmgate_set_claims_str("[1]"));
    code("claims", wasmgate_set_claims_str("{\"sub\":\"probe\"}"));
    code("consumer", wasmgate_set_consumer_str("probe"));
    code("bad_key", wasmgate_check_public_key(WASMGATE_ALG_EDDSA, "not a key", 9));
    code("bad_path", wasmgate_request_set_path_str("no-slash"));
    code("bad_header", wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "bad name", "v"));
    wasmgate_send_response(299, NULL, 0);
    num("response_status", wasmgate_response_status());
    wasmgate_bytes_append(&out, "}", 1);
    int32_t rc = wasmgate_send_response(200, out.data, (int32_t)out.len);
    if (rc == 0) rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "Content-Type", "application/json");
    wasmgate_bytes_free(&out);
    return rc < 0 ? wasmgate_failf("report: %s", wasmgate_code_name(rc)) : WASMGATE_STOP;
}

/* Fetches the URLs of the X-Fetch header (space-separated) and answers
 * their statuses, errors, and bodies. */
static int32_t fetch(void) {
    wasmgate_bytes urls;
    if (wasmgate_read_header(WASMGATE_KIND_REQUEST, "X-Fetch", &urls) < 0) return wasmgate_fail("no X-Fetch");
    wasmgate_request reqs[8];
    wasmgate_header part[] = {{"X-Part", "p"}};
    size_t n = 0;
    for (char *u = strtok(urls.data, " "); u && n < 8; u = strtok(NULL, " "))
        reqs[n++] = (wasmgate_request){"POST", u, part, 1, "hi", 2, 2000};
    wasmgate_results res;
    int32_t rc = wasmgate_fetch(reqs, n, &res);
    wasmgate_bytes_free(&urls);
    if (rc < 0) return wasmgate_failf("fetch: %s", wasmgate_code_name(rc));
    out = (wasmgate_bytes){0};
    wasmgate_bytes_append(&out, "[", 1);
    for (size_t i = 0; i < res.count; i++) {
        const wasmgate_result *r = &res.items[i];
        size_t ulen = 0;
        const char *up = wasmgate_result_header(r, "x-upstream", &ulen);
        char head[64];
        const char *err = wasmgate_outbound_error(r->status);
        snprintf(head, sizeof head, "%s{\"status\":%d,\"error\":", i ? "," : "", (int)r->status);
        wasmgate_bytes_append(&out, head, strlen(head));
        wasmgate_json_quote(&out, err ? err : "", err ? strlen(err) : 0);
        wasmgate_bytes_append(&out, ",\"upstream\":", 12);
        wasmgate_json_quote(&out, up ? up : "", ulen);
        wasmgate_bytes_append(&out, ",\"body\":", 8);
        wasmgate_json_quote(&out, r->body, r->body_len);
        wasmgate_bytes_append(&out, "}", 1);
    }
    wasmgate_bytes_append(&out, "]", 1);
    wasmgate_results_free(&res);
    rc = wasmgate_send_response(200, out.data, (int32_t)out.len);
    wasmgate_bytes_free(&out);
    return rc < 0 ? wasmgate_failf("answer: %s", wasmgate_code_name(rc)) : WASMGATE_STOP;
}

static const char *last_segment(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

WASMGATE_EXPORT(on_request) int32_t on_request(void) {
    wasmgate_bytes path;
    if (wasmgate_read_path(&path) < 0) return wasmgate_fail("no path");
    const char *last = last_segment(path.data);
    int32_t rc = WASMGATE_CONTINUE;
    if (strcmp(last, "fail") == 0) rc = wasmgate_fail("told to fail");
    else if (strcmp(last, "trap") == 0) __builtin_trap();
    else if (strcmp(last, "report") == 0) rc = report(path.data);
    else if (strcmp(last, "fetch") == 0) rc = fetch();
    wasmgate_bytes_free(&path);
    return rc;
}

WASMGATE_EXPORT(on_response) int32_t on_response(void) {
    wasmgate_bytes path;
    if (wasmgate_read_path(&path) < 0) return wasmgate_fail("no path");
    int rewrite = strcmp(last_segment(path.data), "rewrite-body") == 0;
    wasmgate_bytes_free(&path);
    if (!rewrite) return WASMGATE_CONTINUE;
    wasmgate_bytes body;
    if (wasmgate_read_body(WASMGATE_KIND_RESPONSE, &body) < 0) return wasmgate_fail("no body");
    out = (wasmgate_bytes){0};
    char head[32];
    snprintf(head, sizeof head, "{\"status\":%d,\"upstream\":", (int)wasmgate_response_status());
    wasmgate_bytes_append(&out, head, strlen(head));
    wasmgate_json_quote(&out, body.data, body.len);
    wasmgate_bytes_append(&out, "}", 1);
    wasmgate_bytes_free(&body);
    int32_t rc = wasmgate_body_set(WASMGATE_KIND_RESPONSE, out.data, (int32_t)out.len);
    wasmgate_bytes_free(&out);
    if (rc == 0) rc = wasmgate_response_set_status(203);
    if (rc == 0) rc = wasmgate_header_remove_str(WASMGATE_KIND_RESPONSE, "X-Upstream");
    return rc < 0 ? wasmgate_failf("rewrite: %s", wasmgate_code_name(rc)) : WASMGATE_CONTINUE;
}
