/*
 * api_key: a wasmgate plugin in C that authenticates requests by API key.
 * Each key belongs to a consumer; a request with a missing or unknown key is
 * answered 401 here. A known key's consumer is told to the gateway
 * (set_consumer: rate limits keyed by consumer, authorize.consumers, the
 * access log), forwarded upstream in a header, and its scope becomes the
 * request's claims (set_claims: {"sub": consumer, "scope": "..."}), which
 * the route's authorize.require_scopes checks.
 *
 * Config:
 *
 *   config:
 *     keys:                                  # required
 *       - {consumer: mobile-app, key: "${MOBILE_KEY}", scope: "orders:read"}
 *     header: X-Api-Key                      # where the key is (default)
 *     consumer_header: X-Consumer            # forwarded upstream (default);
 *                                            # always removed from the client's request
 *
 * Keys are at least 16 bytes; the key header is removed before proxying.
 * The comparison reads every byte of every configured key, so its time says
 * nothing about which key, or how much of one, matched.
 *
 * Build: clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *          -o api_key.wasm sdk/c/examples/api_key.c sdk/c/wasmgate.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmgate.h"

#define MIN_KEY_LEN 16

typedef struct {
    const char *consumer;
    const char *key;
    size_t key_len;
    wasmgate_bytes claims; /* {"sub":...,"scope":...} */
} api_key;

static wasmgate_json *config;
static api_key *keys;
static size_t nkeys;
static const char *header = "X-Api-Key";
static const char *consumer_header = "X-Consumer";
static char challenge[256];

/* A string field of obj, or def when absent; NULL (after set_error) when it
 * is not a string. */
static const char *str_field(const wasmgate_json *obj, const char *path, const char *key, const char *def,
                             bool *bad) {
    const wasmgate_json *v = wasmgate_json_get(obj, key);
    if (v == NULL || wasmgate_json_type(v) == WASMGATE_JSON_NULL) return def;
    const char *s = wasmgate_json_string(v, NULL);
    if (s == NULL) {
        wasmgate_failf("field \"%s%s\": want string, got %s", path, key, wasmgate_json_type_name(v));
        *bad = true;
    }
    return s;
}

static int32_t claims_for(api_key *k, const char *scope) {
    wasmgate_bytes *c = &k->claims;
    c->data = NULL;
    c->len = 0;
    int32_t rc = wasmgate_bytes_append(c, "{\"sub\":", 7);
    if (rc == 0) rc = wasmgate_json_quote(c, k->consumer, strlen(k->consumer));
    if (rc == 0 && scope) {
        rc = wasmgate_bytes_append(c, ",\"scope\":", 9);
        if (rc == 0) rc = wasmgate_json_quote(c, scope, strlen(scope));
    }
    if (rc == 0) rc = wasmgate_bytes_append(c, "}", 1);
    return rc;
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
    static const char *const known[] = {"keys", "header", "consumer_header", NULL};
    const char *unknown = wasmgate_json_unknown_key(config, known);
    if (unknown) return wasmgate_failf("unknown field \"%s\"", unknown);
    bool bad = false;
    header = str_field(config, "", "header", header, &bad);
    consumer_header = str_field(config, "", "consumer_header", consumer_header, &bad);
    if (bad) return WASMGATE_FAILED;
    if (!wasmgate_is_token(header, strlen(header))) return wasmgate_failf("\"header\": \"%s\" is not a valid header name", header);
    if (!wasmgate_is_token(consumer_header, strlen(consumer_header)))
        return wasmgate_failf("\"consumer_header\": \"%s\" is not a valid header name", consumer_header);
    snprintf(challenge, sizeof challenge, "ApiKey realm=\"wasmgate\", header=\"%s\"", header);

    const wasmgate_json *list = wasmgate_json_get(config, "keys");
    if (list != NULL && wasmgate_json_type(list) != WASMGATE_JSON_ARRAY)
        return wasmgate_failf("field \"keys\": want list, got %s", wasmgate_json_type_name(list));
    nkeys = wasmgate_json_count(list);
    if (nkeys == 0) return wasmgate_fail("missing \"keys\": list {consumer, key} pairs");
    keys = calloc(nkeys, sizeof *keys);
    if (keys == NULL) return wasmgate_fail("out of memory");
    static const char *const key_fields[] = {"consumer", "key", "scope", NULL};
    for (size_t i = 0; i < nkeys; i++) {
        const wasmgate_json *item = wasmgate_json_item(list, i);
        char path[32];
        snprintf(path, sizeof path, "keys.%zu.", i);
        if (wasmgate_json_type(item) != WASMGATE_JSON_OBJECT)
            return wasmgate_failf("field \"keys.%zu\": want object, got %s", i, wasmgate_json_type_name(item));
        if ((unknown = wasmgate_json_unknown_key(item, key_fields)))
            return wasmgate_failf("unknown field \"%s%s\"", path, unknown);
        keys[i].consumer = str_field(item, path, "consumer", NULL, &bad);
        keys[i].key = str_field(item, path, "key", NULL, &bad);
        const char *scope = str_field(item, path, "scope", NULL, &bad);
        if (bad) return WASMGATE_FAILED;
        if (keys[i].consumer == NULL) return wasmgate_failf("keys.%zu: missing \"consumer\"", i);
        if (keys[i].key == NULL) return wasmgate_failf("keys.%zu: missing \"key\"", i);
        keys[i].key_len = strlen(keys[i].key);
        if (keys[i].key_len < MIN_KEY_LEN)
            return wasmgate_failf("keys.%zu: \"key\" of %zu bytes: want at least %d", i, keys[i].key_len, MIN_KEY_LEN);
        for (size_t j = 0; j < i; j++)
            if (keys[j].key_len == keys[i].key_len && memcmp(keys[j].key, keys[i].key, keys[i].key_len) == 0)
                return wasmgate_failf("keys.%zu: the same key as keys.%zu", i, j);
        if (claims_for(&keys[i], scope) < 0) return wasmgate_fail("out of memory");
    }
    return 0;
}

/* The key equal to given, comparing every byte of every key. */
static const api_key *lookup(const char *given, size_t len) {
    const api_key *found = NULL;
    for (size_t i = 0; i < nkeys; i++) {
        unsigned diff = keys[i].key_len != len;
        for (size_t j = 0; j < keys[i].key_len; j++)
            diff |= (unsigned char)keys[i].key[j] ^ (unsigned char)(j < len ? given[j] : 0);
        if (diff == 0) found = &keys[i];
    }
    return found;
}

static int32_t reject(const char *body) {
    int32_t rc = wasmgate_send_response_str(401, body);
    if (rc == 0) rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "Content-Type", "application/json");
    if (rc == 0) rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "WWW-Authenticate", challenge);
    if (rc < 0) return wasmgate_failf("401: %s", wasmgate_code_name(rc));
    return WASMGATE_STOP;
}

WASMGATE_EXPORT(on_request) int32_t on_request(void) {
    int32_t rc = wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, consumer_header);
    if (rc < 0) return wasmgate_failf("%s: %s", consumer_header, wasmgate_code_name(rc));
    wasmgate_bytes given;
    rc = wasmgate_read_header(WASMGATE_KIND_REQUEST, header, &given);
    if (rc == WASMGATE_NOT_FOUND) return reject("{\"error\":\"missing API key\"}\n");
    if (rc < 0) return wasmgate_failf("%s: %s", header, wasmgate_code_name(rc));
    /* Trim spaces and tabs. */
    char *s = given.data, *e = given.data + given.len;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    const api_key *k = s == e ? NULL : lookup(s, (size_t)(e - s));
    bool missing = s == e;
    wasmgate_bytes_free(&given);
    if (k == NULL) return reject(missing ? "{\"error\":\"missing API key\"}\n" : "{\"error\":\"invalid API key\"}\n");
    rc = wasmgate_header_set_str(WASMGATE_KIND_REQUEST, consumer_header, k->consumer);
    if (rc == 0) rc = wasmgate_header_remove_str(WASMGATE_KIND_REQUEST, header);
    if (rc == 0) rc = wasmgate_set_consumer_str(k->consumer);
    if (rc == 0) rc = wasmgate_set_claims(k->claims.data, (int32_t)k->claims.len);
    if (rc < 0) return wasmgate_failf("forwarding the consumer: %s", wasmgate_code_name(rc));
    return WASMGATE_CONTINUE;
}
