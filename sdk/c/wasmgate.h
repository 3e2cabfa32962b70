/*
 * wasmgate.h: the guest SDK for writing wasmgate gateway plugins in C.
 *
 * It declares the plugin ABI v1 (sdk/ABI.md): every host function of the
 * "wasmgate" import module with its exact signature (wasmgate_<name>, e.g.
 * wasmgate_header_get), the ABI's codes and limits, and the hooks a plugin
 * exports. wasmgate.c, compiled into every plugin, exports the version
 * marker wasmgate_abi_v1 and adds helpers with the surface of the Go SDK
 * (sdk/go): reads that follow the buffer convention into allocated buffers,
 * C-string wrappers, metrics, rate limits, batched outbound HTTP and a small
 * JSON reader for the config.
 *
 * Build a plugin as a WASI reactor with Debian's clang, lld and wasi-libc:
 *
 *   clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *         -o plugin.wasm plugin.c sdk/c/wasmgate.c
 *
 * A plugin defines the hooks it needs with WASMGATE_EXPORT (the gateway
 * calls only the hooks a module exports):
 *
 *   #include "wasmgate.h"
 *
 *   WASMGATE_EXPORT(on_init) int32_t on_init(int32_t config_len) { return 0; }
 *
 *   WASMGATE_EXPORT(on_request) int32_t on_request(void) {
 *       wasmgate_header_set_str(WASMGATE_KIND_REQUEST, "X-From-C", "1");
 *       return WASMGATE_CONTINUE;
 *   }
 *
 * Conventions of the helpers: a function returning int32_t returns 0 (or a
 * non-negative size, id or flag where it says so) on success and one of the
 * negative WASMGATE_NOT_FOUND ... WASMGATE_UNAVAILABLE codes on failure;
 * strings passed as `const char *` without a length are NUL-terminated.
 * Memory the SDK allocates is the caller's to free with the matching
 * *_free function. An instance runs one hook at a time on one thread.
 *
 * Outside WebAssembly (a native build of a plugin's own logic for tests) the
 * imports are replaced by stubs in wasmgate.c that answer
 * WASMGATE_NOT_ALLOWED (time_now answers 0).
 */
#ifndef WASMGATE_H
#define WASMGATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The ABI: names, codes and limits (sdk/abi in Go) ------------------ */

#define WASMGATE_ABI_VERSION 1

/* Hook results. Any value not listed (WASMGATE_FAILED) fails the hook. */
#define WASMGATE_CONTINUE 0 /* on_request, on_response: go on; on_init: config accepted */
#define WASMGATE_STOP 1     /* on_request: a local response was set with send_response */
#define WASMGATE_FAILED (-1)

/* Return codes of host functions (sdk/ABI.md section 3). */
#define WASMGATE_NOT_FOUND (-1)    /* no such header, key, metric, flag or rate limit */
#define WASMGATE_BAD_ARGUMENT (-2) /* an argument is invalid */
#define WASMGATE_NOT_ALLOWED (-3)  /* not in this hook, or not to this destination */
#define WASMGATE_TOO_LARGE (-4)    /* over a limit */
#define WASMGATE_UNAVAILABLE (-5)  /* unavailable (e.g. cache_set_key without a cache) */

/* Kinds of the header and body functions. */
#define WASMGATE_KIND_REQUEST 0
#define WASMGATE_KIND_RESPONSE 1

/* Levels of log. */
#define WASMGATE_LOG_DEBUG 0
#define WASMGATE_LOG_INFO 1
#define WASMGATE_LOG_WARN 2
#define WASMGATE_LOG_ERROR 3

/* Kinds of metric_define. */
#define WASMGATE_METRIC_COUNTER 0
#define WASMGATE_METRIC_GAUGE 1
#define WASMGATE_METRIC_HISTOGRAM 2

/* Statuses of an http_batch result that are not HTTP statuses. */
#define WASMGATE_STATUS_TIMEOUT (-1)     /* the timeout or the hook's deadline passed */
#define WASMGATE_STATUS_NETWORK (-2)     /* connect or network error */
#define WASMGATE_STATUS_NOT_ALLOWED (-3) /* destination not allowed for the route */
#define WASMGATE_STATUS_OTHER (-4)       /* any other failure */

/* Signature algorithms of crypto_verify (JWS names). */
#define WASMGATE_ALG_RS256 1 /* RSASSA-PKCS1-v1_5 with SHA-256 */
#define WASMGATE_ALG_PS256 2 /* RSASSA-PSS with SHA-256, 32-byte salt */
#define WASMGATE_ALG_ES256 3 /* ECDSA P-256 with SHA-256; signature r||s, 64 bytes */
#define WASMGATE_ALG_EDDSA 4 /* Ed25519; signature 64 bytes */

/* Statuses a plugin may give a response: final ones only. */
#define WASMGATE_MIN_STATUS 200
#define WASMGATE_MAX_STATUS 599

/* Limits of the ABI. */
#define WASMGATE_MAX_ERROR_MESSAGE (1 << 10)    /* bytes of a set_error message kept */
#define WASMGATE_MAX_LOG_MESSAGE (4 << 10)      /* bytes of a log line kept */
#define WASMGATE_MAX_KV_KEY 256                 /* bytes in a KV key */
#define WASMGATE_MAX_METRICS 32                 /* metrics one plugin defines */
#define WASMGATE_MAX_METRIC_NAME 63             /* bytes in a metric name */
#define WASMGATE_MAX_BATCH 64                   /* requests in one http_batch */
#define WASMGATE_MAX_BATCH_BYTES (16 << 20)     /* bytes of one encoded batch */
#define WASMGATE_MAX_BATCH_HEADERS 256          /* headers of one outbound request */
#define WASMGATE_MAX_CONSUMER 256               /* bytes of a consumer id and a rate_limit key */
#define WASMGATE_MAX_CACHE_KEY 1024             /* bytes of a cache_set_key key */
#define WASMGATE_MAX_CLAIMS (16 << 10)          /* bytes of a set_claims JSON object */
#define WASMGATE_MAX_VERIFY_KEY (16 << 10)      /* bytes of a crypto_verify key */
#define WASMGATE_MAX_VERIFY_MESSAGE (16 << 20)  /* bytes of a crypto_verify message */

/* ---- Imports and exports ------------------------------------------------ */

#if defined(__wasm__)
#define WASMGATE_IMPORT(name) __attribute__((import_module("wasmgate"), import_name(#name)))
#define WASMGATE_EXPORT(name) __attribute__((export_name(#name)))
#else
#define WASMGATE_IMPORT(name)
#define WASMGATE_EXPORT(name) __attribute__((used))
#endif

/* The hooks (sdk/ABI.md section 2). Define those the plugin needs, each
 * with WASMGATE_EXPORT(name); these prototypes make the compiler check
 * their signatures. */
int32_t on_init(int32_t config_len); /* 0 accepts the config; anything else rejects it */
int32_t on_request(void);            /* WASMGATE_CONTINUE, or WASMGATE_STOP after send_response */
int32_t on_response(void);           /* WASMGATE_CONTINUE */

/* The host functions (sdk/ABI.md section 4), named wasmgate_<ABI name>.
 * A (ptr, len) pair is a pointer into this module's memory and an int32_t
 * length; functions that return data write min(size, len) bytes and
 * return the full size (len 0 asks for the size alone). */

/* Request and response. */
WASMGATE_IMPORT(request_method) int32_t wasmgate_request_method(char *buf, int32_t len);
WASMGATE_IMPORT(request_path) int32_t wasmgate_request_path(char *buf, int32_t len);
WASMGATE_IMPORT(request_set_path) int32_t wasmgate_request_set_path(const char *path, int32_t len);
WASMGATE_IMPORT(request_query) int32_t wasmgate_request_query(char *buf, int32_t len);
WASMGATE_IMPORT(request_client_ip) int32_t wasmgate_request_client_ip(char *buf, int32_t len);
WASMGATE_IMPORT(header_get)
int32_t wasmgate_header_get(int32_t kind, const char *name, int32_t name_len, char *buf, int32_t len);
WASMGATE_IMPORT(header_values)
int32_t wasmgate_header_values(int32_t kind, const char *name, int32_t name_len, char *buf, int32_t len);
WASMGATE_IMPORT(header_names) int32_t wasmgate_header_names(int32_t kind, char *buf, int32_t len);
WASMGATE_IMPORT(header_set)
int32_t wasmgate_header_set(int32_t kind, const char *name, int32_t name_len, const char *value, int32_t value_len);
WASMGATE_IMPORT(header_add)
int32_t wasmgate_header_add(int32_t kind, const char *name, int32_t name_len, const char *value, int32_t value_len);
WASMGATE_IMPORT(header_remove) int32_t wasmgate_header_remove(int32_t kind, const char *name, int32_t name_len);
WASMGATE_IMPORT(body_get) int64_t wasmgate_body_get(int32_t kind, int64_t offset, void *buf, int32_t len);
WASMGATE_IMPORT(body_set) int32_t wasmgate_body_set(int32_t kind, const void *body, int32_t len);
WASMGATE_IMPORT(response_status) int32_t wasmgate_response_status(void);
WASMGATE_IMPORT(response_set_status) int32_t wasmgate_response_set_status(int32_t status);
WASMGATE_IMPORT(send_response) int32_t wasmgate_send_response(int32_t status, const void *body, int32_t len);

/* Config, logging, errors, time, randomness: any hook. */
WASMGATE_IMPORT(config_get) int32_t wasmgate_config_get(char *buf, int32_t len);
WASMGATE_IMPORT(log) int32_t wasmgate_log(int32_t level, const char *msg, int32_t len);
WASMGATE_IMPORT(set_error) int32_t wasmgate_set_error(const char *msg, int32_t len);
WASMGATE_IMPORT(time_now) int64_t wasmgate_time_now(void);
WASMGATE_IMPORT(random_get) int32_t wasmgate_random_get(void *buf, int32_t len);

/* Key-value store: request and response hooks. */
WASMGATE_IMPORT(kv_get) int32_t wasmgate_kv_get(const char *key, int32_t key_len, void *buf, int32_t len);
WASMGATE_IMPORT(kv_set)
int32_t wasmgate_kv_set(const char *key, int32_t key_len, const void *value, int32_t value_len, int64_t ttl_ms);
WASMGATE_IMPORT(kv_delete) int32_t wasmgate_kv_delete(const char *key, int32_t key_len);
WASMGATE_IMPORT(kv_incr)
int32_t wasmgate_kv_incr(const char *key, int32_t key_len, int64_t delta, int64_t ttl_ms, int64_t *result);

/* Metrics: define in any hook, record in request and response hooks. */
WASMGATE_IMPORT(metric_define) int32_t wasmgate_metric_define(int32_t kind, const char *name, int32_t name_len);
WASMGATE_IMPORT(metric_record) int32_t wasmgate_metric_record(int32_t id, double value);

/* Outbound HTTP: request and response hooks. */
WASMGATE_IMPORT(http_batch) int32_t wasmgate_http_batch(const void *batch, int32_t len);
WASMGATE_IMPORT(http_batch_result) int32_t wasmgate_http_batch_result(void *buf, int32_t len);

/* Cryptography: any hook. */
WASMGATE_IMPORT(crypto_verify)
int32_t wasmgate_crypto_verify(int32_t alg, const void *key, int32_t key_len, const void *msg, int32_t msg_len,
                               const void *sig, int32_t sig_len);

/* Gateway: consumer, claims, cache key, feature flags, rate limits. */
WASMGATE_IMPORT(set_consumer) int32_t wasmgate_set_consumer(const char *id, int32_t len);
WASMGATE_IMPORT(set_claims) int32_t wasmgate_set_claims(const char *json, int32_t len);
WASMGATE_IMPORT(cache_set_key) int32_t wasmgate_cache_set_key(const char *key, int32_t len);
WASMGATE_IMPORT(flag_enabled) int32_t wasmgate_flag_enabled(const char *name, int32_t len);
WASMGATE_IMPORT(rate_limit)
int32_t wasmgate_rate_limit(const char *name, int32_t name_len, const char *key, int32_t key_len, int64_t cost,
                            int64_t result[2]);

/* ---- Helpers (wasmgate.c) ----------------------------------------------- */

/* The ABI's name of a code ("NOT_FOUND"), or "" for a value that is not one. */
const char *wasmgate_code_name(int32_t code);

/* Whether s (len bytes) is an HTTP token: a header name or method the host
 * accepts. Check names from the config in on_init. */
bool wasmgate_is_token(const char *s, size_t len);

/* Whether s is a metric name: [a-z][a-z0-9_]{0,62}. */
bool wasmgate_valid_metric_name(const char *s, size_t len);

/* Records msg (NUL-terminated, cut to 1 KiB) with set_error and returns
 * WASMGATE_FAILED, which fails any hook (and rejects the config from
 * on_init): `return wasmgate_fail("missing \"keys\"");` */
int32_t wasmgate_fail(const char *msg);

/* wasmgate_fail with printf formatting. */
int32_t wasmgate_failf(const char *format, ...) __attribute__((format(printf, 1, 2)));

/* Writes a log line (NUL-terminated); best effort. */
void wasmgate_log_str(int32_t level, const char *msg);

/* Writes a log line with printf formatting. */
void wasmgate_logf(int32_t level, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Bytes the SDK allocated: data holds len bytes and a NUL after them (so a
 * text can be used as a C string). Free with wasmgate_bytes_free. */
typedef struct {
    char *data;
    size_t len;
} wasmgate_bytes;

/* Frees b's data and empties it. */
void wasmgate_bytes_free(wasmgate_bytes *b);

/* A host function that returns data: (buf, len) -> size or code. */
typedef int32_t (*wasmgate_reader)(void *ctx, char *buf, int32_t len);

/* Reads with fn until the data fits (sdk/ABI.md section 3): a first buffer
 * of hint bytes (256 when 0), then the size the host said. Returns 0 and
 * sets *out, or a code (WASMGATE_UNAVAILABLE when the data kept growing). */
int32_t wasmgate_read(wasmgate_reader fn, void *ctx, size_t hint, wasmgate_bytes *out);

/* Reads of the request and response; 0 or a code. */
int32_t wasmgate_read_method(wasmgate_bytes *out);
int32_t wasmgate_read_path(wasmgate_bytes *out);
int32_t wasmgate_read_query(wasmgate_bytes *out);
int32_t wasmgate_read_client_ip(wasmgate_bytes *out);
/* The first value of a header; WASMGATE_NOT_FOUND when absent. */
int32_t wasmgate_read_header(int32_t kind, const char *name, wasmgate_bytes *out);
/* Every value of a header, each followed by a NUL (iterate with
 * wasmgate_list_next); WASMGATE_NOT_FOUND when absent. */
int32_t wasmgate_read_header_values(int32_t kind, const char *name, wasmgate_bytes *out);
/* Every header name, each followed by a NUL, a name once per value. */
int32_t wasmgate_read_header_names(int32_t kind, wasmgate_bytes *out);
/* The whole body. */
int32_t wasmgate_read_body(int32_t kind, wasmgate_bytes *out);
/* The plugin's config (JSON); config_len is on_init's argument. */
int32_t wasmgate_read_config(int32_t config_len, wasmgate_bytes *out);
/* A KV value; WASMGATE_NOT_FOUND when absent or expired. */
int32_t wasmgate_read_kv(const char *key, wasmgate_bytes *out);

/* The item after item in a NUL-separated list (the first one for item
 * NULL), NULL after the last:
 *   for (const char *v = NULL; (v = wasmgate_list_next(&list, v)); ) ... */
const char *wasmgate_list_next(const wasmgate_bytes *list, const char *item);

/* The first value of the parameter name in a raw query (a=1&b=2),
 * unescaped (+ and %XX); WASMGATE_NOT_FOUND when absent. */
int32_t wasmgate_query_param(const char *query, size_t len, const char *name, wasmgate_bytes *out);

/* C-string wrappers of the host functions; they return what the host did. */
int32_t wasmgate_request_set_path_str(const char *path);
int32_t wasmgate_header_set_str(int32_t kind, const char *name, const char *value);
int32_t wasmgate_header_add_str(int32_t kind, const char *name, const char *value);
int32_t wasmgate_header_remove_str(int32_t kind, const char *name);
int32_t wasmgate_send_response_str(int32_t status, const char *body);
int32_t wasmgate_kv_set_str(const char *key, const void *value, size_t len, int64_t ttl_ms);
int32_t wasmgate_kv_delete_str(const char *key);
int32_t wasmgate_kv_incr_str(const char *key, int64_t delta, int64_t ttl_ms, int64_t *result);
int32_t wasmgate_set_consumer_str(const char *id);
int32_t wasmgate_set_claims_str(const char *json);
int32_t wasmgate_cache_set_key_str(const char *key);
/* 1 on, 0 off, WASMGATE_NOT_FOUND for a flag the config does not declare. */
int32_t wasmgate_flag_enabled_str(const char *name);

/* The outcome of wasmgate_rate_limit_str. */
typedef struct {
    bool allowed;
    int64_t remaining;      /* quota left after this call */
    int64_t retry_after_ms; /* when denied: until the cost would fit */
} wasmgate_limit;

/* Charges cost (0: only consult) against the route's rate limit name for
 * the subject key; 0 and *out, or a code (WASMGATE_NOT_FOUND: no such limit). */
int32_t wasmgate_rate_limit_str(const char *name, const char *key, int64_t cost, wasmgate_limit *out);

/* 0 when the host can verify alg signatures with key (DER), else
 * WASMGATE_BAD_ARGUMENT: call it from on_init for every configured key. */
int32_t wasmgate_check_public_key(int32_t alg, const void *key, size_t len);

/* A lazily defined metric: declare it static, record in request and
 * response hooks; the first record defines it.
 *   static wasmgate_metric denied = WASMGATE_COUNTER("denied");
 *   wasmgate_metric_add(&denied, 1); */
typedef struct {
    const char *name;
    int32_t kind;
    int32_t id; /* -1 until defined */
} wasmgate_metric;

#define WASMGATE_COUNTER(name) {(name), WASMGATE_METRIC_COUNTER, -1}
#define WASMGATE_GAUGE(name) {(name), WASMGATE_METRIC_GAUGE, -1}
#define WASMGATE_HISTOGRAM(name) {(name), WASMGATE_METRIC_HISTOGRAM, -1}

/* Records v: a counter adds it (>= 0), a gauge is set to it, a histogram
 * observes it. 0 or a code. */
int32_t wasmgate_metric_add(wasmgate_metric *m, double v);

/* ---- Outbound HTTP -------------------------------------------------------- */

/* A header of an outbound request (NUL-terminated strings). */
typedef struct {
    const char *name;
    const char *value;
} wasmgate_header;

/* One request of a batch. */
typedef struct {
    const char *method; /* NULL: GET */
    const char *url;    /* upstream://NAME/path?query or http://host:port/path?query */
    const wasmgate_header *headers;
    size_t header_count;
    const void *body;
    size_t body_len;
    uint32_t timeout_ms; /* 0: the plugin's call deadline */
} wasmgate_request;

/* A header of a result: views of the results buffer, not NUL-terminated. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} wasmgate_field;

/* The answer to one request. */
typedef struct {
    int32_t status; /* HTTP status, or a WASMGATE_STATUS_* value */
    uint32_t duration_us;
    const wasmgate_field *headers;
    size_t header_count;
    const char *body; /* a view of the results buffer */
    size_t body_len;
} wasmgate_result;

/* All results of a batch, in the order of the requests. */
typedef struct {
    wasmgate_result *items;
    size_t count;
    void *mem_; /* owns everything above */
} wasmgate_results;

/* Runs the requests in parallel on the host and decodes their results (a
 * per-request failure is in its status). 0, or a code for the batch as a
 * whole: WASMGATE_BAD_ARGUMENT (malformed), WASMGATE_TOO_LARGE (over 64
 * requests or 16 MiB), WASMGATE_NOT_ALLOWED (outside a request or response
 * hook), WASMGATE_UNAVAILABLE. Free the results with wasmgate_results_free. */
int32_t wasmgate_fetch(const wasmgate_request *reqs, size_t n, wasmgate_results *out);

/* NULL for a result with an HTTP status, else why there is none, in the Go
 * and Rust SDKs' words: "wasmgate: outbound request timed out" (-1),
 * "wasmgate: outbound connect or network error" (-2),
 * "wasmgate.http_batch: not allowed" (-3), "wasmgate: outbound request
 * failed" (-4 and any other). */
const char *wasmgate_outbound_error(int32_t status);

/* Frees what wasmgate_fetch or wasmgate_results_decode made. */
void wasmgate_results_free(wasmgate_results *r);

/* The first value of a result's header (case-insensitive name), or NULL;
 * *len gets its length. */
const char *wasmgate_result_header(const wasmgate_result *r, const char *name, size_t *len);

/* The encodings themselves (sdk/ABI.md, "Outbound HTTP"). */
int32_t wasmgate_batch_encode(const wasmgate_request *reqs, size_t n, wasmgate_bytes *out);
/* Decodes a results encoding (copied); WASMGATE_BAD_ARGUMENT when malformed. */
int32_t wasmgate_results_decode(const void *buf, size_t len, wasmgate_results *out);

/* ---- JSON ------------------------------------------------------------------ */

/* A parsed JSON value (a tree the parser allocated). Objects keep their
 * keys in order; numbers keep their text. */
typedef struct wasmgate_json wasmgate_json;

enum {
    WASMGATE_JSON_NULL,
    WASMGATE_JSON_BOOL,
    WASMGATE_JSON_NUMBER,
    WASMGATE_JSON_STRING,
    WASMGATE_JSON_ARRAY,
    WASMGATE_JSON_OBJECT,
};

/* Parses len bytes of JSON (an empty or all-space text reads as {}, as a
 * config does). NULL on error, with a message such as "invalid JSON at byte
 * 7: expected ',' or '}'" in err (err_len bytes, may be 0). */
wasmgate_json *wasmgate_json_parse(const char *text, size_t len, char *err, size_t err_len);
void wasmgate_json_free(wasmgate_json *v);

/* The type (WASMGATE_JSON_*), -1 for NULL. */
int wasmgate_json_type(const wasmgate_json *v);
/* The type's name as errors say it: null, boolean, number, string, list,
 * object ("missing" for NULL). */
const char *wasmgate_json_type_name(const wasmgate_json *v);
/* An object's member key (the first), NULL when absent or v is not an object. */
const wasmgate_json *wasmgate_json_get(const wasmgate_json *v, const char *key);
/* The items of an array or members of an object; 0 for other values. */
size_t wasmgate_json_count(const wasmgate_json *v);
/* The i-th item of an array, or the value of the i-th member of an object. */
const wasmgate_json *wasmgate_json_item(const wasmgate_json *v, size_t i);
/* The key of the i-th member of an object. */
const char *wasmgate_json_key(const wasmgate_json *v, size_t i);
/* A string's bytes (NUL-terminated; *len, when not NULL, gets the length,
 * which counts any \u0000), or NULL when v is not a string. */
const char *wasmgate_json_string(const wasmgate_json *v, size_t *len);
/* A number's value; false when v is not a number. */
bool wasmgate_json_number(const wasmgate_json *v, double *out);
/* An integer's value (written without fraction or exponent, in range). */
bool wasmgate_json_int(const wasmgate_json *v, int64_t *out);
/* A boolean's value. */
bool wasmgate_json_bool(const wasmgate_json *v, bool *out);
/* The first key of an object that is not in the NULL-terminated list
 * known, or NULL: for "unknown field" config errors. */
const char *wasmgate_json_unknown_key(const wasmgate_json *v, const char *const *known);

/* Appends s (len bytes) as a quoted, escaped JSON string to out (which may
 * be empty); 0 or WASMGATE_TOO_LARGE when memory runs out. */
int32_t wasmgate_json_quote(wasmgate_bytes *out, const char *s, size_t len);

/* Appends v as compact JSON to out (which may be empty): members in order,
 * numbers as written, strings escaped as wasmgate_json_quote does, so that
 * a parsed value is written back without loss (to re-emit or embed JSON a
 * plugin parsed). 0, WASMGATE_BAD_ARGUMENT for NULL, or WASMGATE_TOO_LARGE
 * when memory runs out (out then holds what was written so far). */
int32_t wasmgate_json_write(wasmgate_bytes *out, const wasmgate_json *v);

/* Appends len bytes to out, keeping the trailing NUL; 0 or
 * WASMGATE_TOO_LARGE when memory runs out. */
int32_t wasmgate_bytes_append(wasmgate_bytes *out, const void *s, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* WASMGATE_H */
