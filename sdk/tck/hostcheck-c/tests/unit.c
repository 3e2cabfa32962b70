/*
 * Unit tests of the C hostcheck guest's own logic (the config rules, the
 * JSON writer, the helpers), built natively with its sources and the SDK,
 * whose host functions are stubs there that answer WASMGATE_NOT_ALLOWED.
 * sdk/tck/hostcheck-c/unit_test.go builds and runs it (with AddressSanitizer
 * and UBSan when they link):
 *
 *   cd sdk/tck/hostcheck-c && clang -g -Wall -Wextra -I ../../c -I src -o unit \
 *       tests/unit.c src/json_writer.c src/config.c src/checks.c src/main.c ../../c/wasmgate.c && ./unit
 *
 * It prints one line per failure and ends with "N passed, N failed".
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostcheck.h"

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

/* The cases of the Go guest's TestParseConfig (sdk/tck/hostcheck), and a
 * few of C's own: want_err "" accepts the config, else the error contains it. */
static void test_config(void) {
    static const struct {
        const char *in, *want_err;
    } cases[] = {
        {"{\"check\":\"inspect\"}", ""},
        {"{\"check\":\"chain\",\"tag\":\"A\",\"stop\":true}", ""},
        {"{\"check\":\"outbound\",\"batch\":[{\"url\":\"upstream://a/x\",\"timeout_ms\":50}]}", ""},
        {"{\"check\":\"inspect\",\"echo\":{\"nested\":[1,\"two\"]}}", ""},
        {"{}", "missing \"check\""},
        {"{\"check\":\"nope\"}", "unknown check \"nope\""},
        {"{\"check\":\"chain\"}", "needs a \"tag\""},
        {"{\"check\":\"outbound\"}", "needs a \"batch\""},
        {"{\"check\":\"outbound\",\"batch\":[{}]}", "batch[0]: missing \"url\""},
        {"{\"check\":\"outbound\",\"batch\":[{\"url\":\"x\",\"timeout_ms\":-1}]}", "negative \"timeout_ms\""},
        {"{\"check\":\"inspect\",\"big_body\":-1}", "negative"},
        {"{\"check\":\"inspect\",\"reject\":\"told to\"}", "told to"},
        {"{\"check\":\"inspect\",\"unknown\":1}", "unknown field \"unknown\""},
        /* C's own: types, JSON errors, the message listing the checks. */
        {"", "missing \"check\" (one of [\"inspect\" \"phase\" \"kv\""},
        {"null", "missing \"check\""},
        {"[1]", "want object, got array"},
        {"{\"check\":1}", "field \"check\": want string, got number"},
        {"{\"check\":\"inspect\",\"stop\":\"yes\"}", "field \"stop\": want boolean, got string"},
        {"{\"check\":true}", "field \"check\": want string, got bool"},
        {"{\"check\":\"inspect\",\"big_body\":0.1}", "want integer, got number 0.1"},
        {"{\"check\":\"inspect\",\"big_body\":1.5}", "field \"big_body\": want integer, got number 1.5"},
        {"{\"check\":\"outbound\",\"batch\":{}}", "field \"batch\": want list, got object"},
        {"{\"check\":\"outbound\",\"batch\":[{\"url\":\"x\",\"headers\":{\"A\":1}}]}", "want string, got number"},
        {"{\"check\":\"outbound\",\"batch\":[{\"url\":\"x\",\"speed\":1}]}", "unknown field \"speed\""},
        {"{\"check\":\"outbound\",\"batch\":[{\"url\":\"x\",\"timeout_ms\":4294967296}]}", "too long"},
        {"{\"check\":", "invalid JSON at byte 9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hc_config c;
        char err[256] = "";
        int rc = parse_config(cases[i].in, strlen(cases[i].in), &c, err, sizeof err);
        bool ok = cases[i].want_err[0] == 0 ? rc == 0 : rc < 0 && strstr(err, cases[i].want_err) != NULL;
        if (!ok) printf("     config %s: rc %d, error %s (want %s)\n", cases[i].in, rc, err, cases[i].want_err);
        CHECK(ok);
        free_config(&c);
    }

    /* The outbound batch as the SDK takes it. */
    const char *text = "{\"check\":\"outbound\",\"batch\":[{\"url\":\"http://h/one?x=1\",\"method\":\"POST\","
                       "\"headers\":{\"X-Part\":\"p1\",\"Host\":\"h.test\"},\"body\":\"a\\u0000b\",\"timeout_ms\":100},"
                       "{\"url\":\"upstream://a/two\",\"method\":null}]}";
    hc_config c;
    char err[256];
    CHECK(parse_config(text, strlen(text), &c, err, sizeof err) == 0);
    CHECK(strcmp(c.check, "outbound") == 0 && c.tag[0] == 0 && !c.stop && !c.local && c.big_body == 0);
    CHECK(c.batch_len == 2);
    if (c.batch_len == 2) {
        CHECK(strcmp(c.batch[0].url, "http://h/one?x=1") == 0 && strcmp(c.batch[0].method, "POST") == 0);
        CHECK(c.batch[0].timeout_ms == 100 && c.batch[0].body_len == 3 && memcmp(c.batch[0].body, "a\0b", 3) == 0);
        CHECK(c.batch[0].header_count == 2 && strcmp(c.batch[0].headers[1].name, "Host") == 0 &&
              strcmp(c.batch[0].headers[1].value, "h.test") == 0);
        CHECK(c.batch[1].method == NULL && c.batch[1].header_count == 0 && c.batch[1].body_len == 0 &&
              c.batch[1].timeout_ms == 0);
    }
    free_config(&c);
}

/* Writes with the writer and compares the text. */
static void test_writer(void) {
    jw w;
    jw_init(&w);
    jw_begin_object(&w);
    jw_kint(&w, "a", -3);
    jw_key(&w, "list");
    jw_begin_array(&w);
    jw_int(&w, 1);
    jw_begin_object(&w);
    jw_end_object(&w);
    jw_begin_array(&w);
    jw_end_array(&w);
    jw_null(&w);
    jw_bool(&w, false);
    jw_end_array(&w);
    jw_kstring(&w, "s", "q\"\\\n\x01\0<&", 8);
    jw_kdouble(&w, "d", 0.1);
    jw_kdouble(&w, "e", 1.5e300);
    jw_kdouble(&w, "n", NAN);
    jw_kraw(&w, "raw", "{\"x\":[1]}");
    jw_kraw(&w, "none", NULL);
    jw_key_n(&w, "k\0y", 3);
    jw_cstring(&w, NULL);
    jw_kcstring(&w, "", NULL);
    jw_kbool(&w, "t", true);
    jw_end_object(&w);
    size_t len;
    const char *text = jw_text(&w, &len);
    const char *want = "{\"a\":-3,\"list\":[1,{},[],null,false],\"s\":\"q\\\"\\\\\\n\\u0001\\u0000<&\",\"d\":0.1,"
                       "\"e\":1.5e+300,\"n\":null,\"raw\":{\"x\":[1]},\"none\":null,\"k\\u0000y\":\"\",\"\":\"\",\"t\":true}";
    CHECK(text != NULL && len == strlen(want) && strcmp(text, want) == 0);
    if (text && strcmp(text, want) != 0) printf("     got  %s\n     want %s\n", text, want);
    /* The SDK's reader reads it back. */
    wasmgate_json *v = text ? wasmgate_json_parse(text, len, NULL, 0) : NULL;
    CHECK(v != NULL && wasmgate_json_count(v) == 11);
    wasmgate_json_free(v);
    jw_free(&w);
    CHECK(jw_text(&w, NULL) == NULL);

    /* Doubles: the shortest text that reads back the same. */
    static const struct {
        double v;
        const char *want;
    } doubles[] = {{0, "0"}, {1, "1"}, {-4, "-4"}, {2.5, "2.5"}, {0.3, "0.3"}, {1.0 / 3, "0.3333333333333333"}, {1e21, "1e+21"}, {123.456, "123.456"}};
    for (size_t i = 0; i < sizeof doubles / sizeof doubles[0]; i++) {
        jw_init(&w);
        jw_double(&w, doubles[i].v);
        text = jw_text(&w, NULL);
        CHECK(text != NULL && strcmp(text, doubles[i].want) == 0);
        if (text && strcmp(text, doubles[i].want) != 0) printf("     double: got %s want %s\n", text, doubles[i].want);
        jw_free(&w);
    }
}

static void test_helpers(void) {
    char hex[9];
    hex_encode((const unsigned char *)"\x00\x0f\xab\xff", 4, hex);
    CHECK(strcmp(hex, "000fabff") == 0);

    int64_t v;
    CHECK(parse_int64("257", &v) && v == 257);
    CHECK(parse_int64("-5", &v) && v == -5);
    CHECK(parse_int64("+7", &v) && v == 7);
    CHECK(parse_int64("9223372036854775807", &v) && v == INT64_MAX);
    CHECK(!parse_int64("9223372036854775808", &v));
    CHECK(!parse_int64("", &v) && !parse_int64("-", &v) && !parse_int64(" 1", &v) && !parse_int64("1 ", &v));
    CHECK(!parse_int64("0x10", &v) && !parse_int64("1.5", &v) && !parse_int64("abc", &v));

    /* count + 2 x (timeout, method_len, "GET", url_len, "u", headers, body_len),
     * as the Go guest's TestEncodeGets. */
    wasmgate_bytes b;
    CHECK(encode_gets(2, "u", &b) == 0);
    CHECK(b.len == 4 + 2 * (4 + 4 + 3 + 4 + 1 + 4 + 4) && b.data[0] == 2);
    wasmgate_bytes_free(&b);
    CHECK(encode_gets(65, "http://h/x", &b) == 0 && (unsigned char)b.data[0] == 65);
    wasmgate_bytes_free(&b);
}

/* Natively every host function answers NOT_ALLOWED: the hooks fail
 * cleanly, and _initialize's probe (run by the constructor) says so. */
static void test_native_hooks(void) {
    CHECK(initialize_probe != NULL && strstr(initialize_probe, "\"request_method\":-3") != NULL &&
          strstr(initialize_probe, "\"time_now_ok\":false") != NULL);
    CHECK(on_init(2) == WASMGATE_FAILED);
    char *p = probe_on_init();
    CHECK(p != NULL && strstr(p, "\"set_claims\":-3") != NULL && strstr(p, "\"metric_define_ok\":false") != NULL);
    free(p);
}

int main(void) {
    test_config();
    test_writer();
    test_helpers();
    test_native_hooks();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
