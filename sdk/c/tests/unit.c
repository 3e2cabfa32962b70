/*
 * Unit tests of wasmgate.c's helpers, built natively (the host functions
 * are stubs there that answer WASMGATE_NOT_ALLOWED). sdk_test.go builds and
 * runs it with the host's clang (with AddressSanitizer and UBSan when they
 * link):
 *
 *   clang -g -Wall -Wextra -I sdk/c -o unit sdk/c/tests/unit.c sdk/c/wasmgate.c && ./unit
 *
 * It prints one line per failure and ends with "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmgate.h"

static int passed, failed;

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (cond) {                                                        \
            passed++;                                                      \
        } else {                                                           \
            failed++;                                                      \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                  \
    } while (0)

static wasmgate_json *parse(const char *s, char *err, size_t n) { return wasmgate_json_parse(s, strlen(s), err, n); }

static void test_json(void) {
    char err[128];
    wasmgate_json *v = parse(" {\"a\":[1,-2.5e+3,true,null],\"b\":\"x\\\"\\u00e9\\ud83d\\ude00\\n\",\"c\":{},\"big\":9223372036854775807} ", err, sizeof err);
    CHECK(v != NULL);
    if (v == NULL) return;
    CHECK(wasmgate_json_type(v) == WASMGATE_JSON_OBJECT && wasmgate_json_count(v) == 4);
    const wasmgate_json *a = wasmgate_json_get(v, "a");
    double d;
    int64_t i;
    bool b;
    CHECK(wasmgate_json_count(a) == 4);
    CHECK(wasmgate_json_number(wasmgate_json_item(a, 1), &d) && d == -2500.0);
    CHECK(wasmgate_json_int(wasmgate_json_item(a, 0), &i) && i == 1);
    CHECK(!wasmgate_json_int(wasmgate_json_item(a, 1), &i));
    CHECK(wasmgate_json_bool(wasmgate_json_item(a, 2), &b) && b);
    CHECK(wasmgate_json_type(wasmgate_json_item(a, 3)) == WASMGATE_JSON_NULL);
    CHECK(wasmgate_json_item(a, 4) == NULL);
    size_t n;
    const char *s = wasmgate_json_string(wasmgate_json_get(v, "b"), &n);
    CHECK(s != NULL && n == strlen("x\"\xc3\xa9\xf0\x9f\x98\x80\n") && strcmp(s, "x\"\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
    CHECK(wasmgate_json_int(wasmgate_json_get(v, "big"), &i) && i == INT64_MAX);
    CHECK(wasmgate_json_get(v, "missing") == NULL);
    CHECK(strcmp(wasmgate_json_key(v, 2), "c") == 0);
    static const char *const known[] = {"a", "b", "c", NULL};
    CHECK(strcmp(wasmgate_json_unknown_key(v, known), "big") == 0);
    CHECK(strcmp(wasmgate_json_type_name(wasmgate_json_get(v, "c")), "object") == 0);
    wasmgate_json_free(v);

    v = parse(" \n", err, sizeof err);
    CHECK(v != NULL && wasmgate_json_type(v) == WASMGATE_JSON_OBJECT && wasmgate_json_count(v) == 0);
    wasmgate_json_free(v);
    v = parse("-9223372036854775808", err, sizeof err);
    CHECK(wasmgate_json_int(v, &i) && i == INT64_MIN);
    wasmgate_json_free(v);
    v = parse("9223372036854775808", err, sizeof err);
    CHECK(v != NULL && !wasmgate_json_int(v, &i));
    wasmgate_json_free(v);

    struct {
        const char *text, *want;
    } bad[] = {
        {"{\"a\":1,}", "invalid JSON at byte 7: expected a string key"},
        {"[1 2]", "invalid JSON at byte 3: expected ',' or ']'"},
        {"[01]", "invalid JSON at byte 1: invalid number"},
        {"\"abc", "invalid JSON at byte 4: unterminated string"},
        {"{} x", "invalid JSON at byte 3: unexpected data after the value"},
        {"{\"a\" 1}", "invalid JSON at byte 5: expected ':'"},
        {"[\"\\x\"]", "invalid JSON at byte 3: invalid escape"},
        {"nul", "invalid JSON at byte 0: invalid literal"},
        {"[\"a\x01\"]", "invalid JSON at byte 3: control character in string"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        v = parse(bad[k].text, err, sizeof err);
        CHECK(v == NULL);
        if (strcmp(err, bad[k].want) != 0) {
            failed++;
            printf("FAIL json error for %s: %s, want %s\n", bad[k].text, err, bad[k].want);
        } else {
            passed++;
        }
        wasmgate_json_free(v);
    }
    /* Deep nesting is an error, not a stack overflow. */
    char deep[1000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = 0;
    CHECK(parse(deep, err, sizeof err) == NULL && strstr(err, "nested too deep") != NULL);
    /* No error buffer. */
    CHECK(parse("[", NULL, 0) == NULL);
}

static void test_quote(void) {
    wasmgate_bytes b = {0};
    CHECK(wasmgate_bytes_append(&b, "{\"sub\":", 7) == 0);
    CHECK(wasmgate_json_quote(&b, "a\"b\\c\n\x01", 7) == 0);
    CHECK(wasmgate_bytes_append(&b, "}", 1) == 0);
    CHECK(strcmp(b.data, "{\"sub\":\"a\\\"b\\\\c\\n\\u0001\"}") == 0 && b.len == strlen(b.data));
    wasmgate_bytes_free(&b);
    CHECK(b.data == NULL && b.len == 0);
}

static void test_query(void) {
    const char *q = "a=1&api%5Fkey=s%20e+cret&b&a=2&bad=%zz&end=%4";
    wasmgate_bytes v;
    CHECK(wasmgate_query_param(q, strlen(q), "a", &v) == 0 && strcmp(v.data, "1") == 0);
    wasmgate_bytes_free(&v);
    CHECK(wasmgate_query_param(q, strlen(q), "api_key", &v) == 0 && strcmp(v.data, "s e cret") == 0);
    wasmgate_bytes_free(&v);
    CHECK(wasmgate_query_param(q, strlen(q), "b", &v) == 0 && v.len == 0);
    wasmgate_bytes_free(&v);
    CHECK(wasmgate_query_param(q, strlen(q), "bad", &v) == 0 && strcmp(v.data, "%zz") == 0);
    wasmgate_bytes_free(&v);
    CHECK(wasmgate_query_param(q, strlen(q), "end", &v) == 0 && strcmp(v.data, "%4") == 0);
    wasmgate_bytes_free(&v);
    CHECK(wasmgate_query_param(q, strlen(q), "c", &v) == WASMGATE_NOT_FOUND && v.data == NULL);
    CHECK(wasmgate_query_param("", 0, "a", &v) == WASMGATE_NOT_FOUND);
}

/* A fake host answer for wasmgate_read: the data grows once. */
static int32_t fake_read(void *ctx, char *buf, int32_t len) {
    const char *data = ctx;
    int32_t n = (int32_t)strlen(data);
    memcpy(buf, data, (size_t)(n < len ? n : len));
    return n;
}

static int32_t growing(void *ctx, char *buf, int32_t len) {
    (void)buf;
    int *calls = ctx;
    return len + ++*calls;
}

static void test_read(void) {
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    wasmgate_bytes b;
    CHECK(wasmgate_read(fake_read, big, 0, &b) == 0 && b.len == sizeof big - 1 && b.data[b.len] == 0 &&
          memcmp(b.data, big, b.len) == 0);
    wasmgate_bytes_free(&b);
    int calls = 0;
    CHECK(wasmgate_read(growing, &calls, 0, &b) == WASMGATE_UNAVAILABLE && calls == 4 && b.data == NULL);
    /* Stubs outside wasm: every host function is refused. */
    CHECK(wasmgate_read_path(&b) == WASMGATE_NOT_ALLOWED);
    CHECK(wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "a", "b") == WASMGATE_NOT_ALLOWED);
    wasmgate_bytes list = {"a\0bb\0", 5};
    const char *item = wasmgate_list_next(&list, NULL);
    CHECK(item && strcmp(item, "a") == 0);
    item = wasmgate_list_next(&list, item);
    CHECK(item && strcmp(item, "bb") == 0);
    CHECK(wasmgate_list_next(&list, item) == NULL);
    wasmgate_bytes empty = {0};
    CHECK(wasmgate_list_next(&empty, NULL) == NULL);
}

static void test_batch(void) {
    /* The bytes sdk/abi.EncodeBatch writes for the same request. */
    wasmgate_header h[] = {{"A", "b"}};
    wasmgate_request req = {.method = NULL, .url = "u", .headers = h, .header_count = 1, .body = "x", .body_len = 1,
                            .timeout_ms = 5};
    static const char want[] = "\1\0\0\0" "\5\0\0\0" "\3\0\0\0GET" "\1\0\0\0u" "\1\0\0\0" "\1\0\0\0A" "\1\0\0\0b"
                               "\1\0\0\0x";
    wasmgate_bytes enc;
    CHECK(wasmgate_batch_encode(&req, 1, &enc) == 0 && enc.len == sizeof want - 1 && memcmp(enc.data, want, enc.len) == 0);
    wasmgate_bytes_free(&enc);
    wasmgate_request nourl = {0};
    CHECK(wasmgate_batch_encode(&nourl, 1, &enc) == WASMGATE_BAD_ARGUMENT);

    static const char res[] = "\2\0\0\0"
                              "\310\0\0\0" "\334\5\0\0" "\1\0\0\0" "\14\0\0\0Content-Type" "\12\0\0\0text/plain"
                              "\2\0\0\0hi"
                              "\377\377\377\377" "\7\0\0\0" "\0\0\0\0" "\0\0\0\0";
    wasmgate_results r;
    CHECK(wasmgate_results_decode(res, sizeof res - 1, &r) == 0 && r.count == 2);
    if (r.count == 2) {
        size_t n;
        const char *ct = wasmgate_result_header(&r.items[0], "content-type", &n);
        CHECK(r.items[0].status == 200 && r.items[0].duration_us == 1500);
        CHECK(ct && n == 10 && memcmp(ct, "text/plain", 10) == 0);
        CHECK(r.items[0].body_len == 2 && memcmp(r.items[0].body, "hi", 2) == 0);
        CHECK(r.items[1].status == WASMGATE_STATUS_TIMEOUT && r.items[1].header_count == 0 && r.items[1].body_len == 0);
        CHECK(wasmgate_result_header(&r.items[1], "x", NULL) == NULL);
    }
    wasmgate_results_free(&r);
    CHECK(wasmgate_results_decode(res, sizeof res - 2, &r) == WASMGATE_BAD_ARGUMENT);
    CHECK(wasmgate_results_decode(res, sizeof res, &r) == WASMGATE_BAD_ARGUMENT); /* a byte left over */
    CHECK(wasmgate_results_decode("\377\377\377\377", 4, &r) == WASMGATE_BAD_ARGUMENT);
    CHECK(wasmgate_results_decode("\0\0\0\0", 4, &r) == 0 && r.count == 0);
    wasmgate_results_free(&r);
    CHECK(wasmgate_outbound_error(200) == NULL && wasmgate_outbound_error(0) == NULL);
    CHECK(strcmp(wasmgate_outbound_error(WASMGATE_STATUS_TIMEOUT), "wasmgate: outbound request timed out") == 0);
    CHECK(strcmp(wasmgate_outbound_error(WASMGATE_STATUS_NOT_ALLOWED), "wasmgate.http_batch: not allowed") == 0);
    CHECK(strcmp(wasmgate_outbound_error(-9), "wasmgate: outbound request failed") == 0);
    /* Outside wasm the host refuses the batch. */
    CHECK(wasmgate_fetch(&req, 1, &r) == WASMGATE_NOT_ALLOWED);
    CHECK(wasmgate_fetch(&req, 0, &r) == 0 && r.count == 0);
}

static void test_small(void) {
    CHECK(wasmgate_is_token("X-Api-Key", 9));
    CHECK(!wasmgate_is_token("bad name", 8));
    CHECK(!wasmgate_is_token("", 0));
    CHECK(wasmgate_valid_metric_name("requests_total", 14));
    CHECK(!wasmgate_valid_metric_name("Requests", 8));
    CHECK(strcmp(wasmgate_code_name(WASMGATE_TOO_LARGE), "TOO_LARGE") == 0);
    CHECK(strcmp(wasmgate_code_name(7), "") == 0);
    wasmgate_metric bad = WASMGATE_COUNTER("Bad");
    CHECK(wasmgate_metric_add(&bad, 1) == WASMGATE_BAD_ARGUMENT);
    wasmgate_metric c = WASMGATE_COUNTER("ok");
    CHECK(wasmgate_metric_add(&c, -1) == WASMGATE_BAD_ARGUMENT);
    CHECK(wasmgate_metric_add(&c, 1) == WASMGATE_NOT_ALLOWED && c.id == -1);
    CHECK(wasmgate_fail("why") == WASMGATE_FAILED);
}

int main(void) {
    test_json();
    test_quote();
    test_query();
    test_read();
    test_batch();
    test_small();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
