/*
 * aggregate: a wasmgate plugin in C that answers a request by fanning out
 * to several services at once and merging their JSON answers into one
 * object keyed by part name. The parts go out in ONE outbound batch
 * (http_batch: the host runs them in parallel, the hook waits once); the
 * route's own upstream is never called. A subset of the Go plugin
 * plugins/aggregate.
 *
 * Config:
 *
 *   config:
 *     parts:                      # required, 1 to 64
 *       - {name: user, url: "upstream://users/users/{query.user}", timeout: 300ms}
 *       - {name: feed, url: "upstream://feed/feed?user={query.user}"}
 *       - {name: status, url: "http://127.0.0.1:9000/status", timeout: 0.5}
 *     mode: partial               # or strict (the default)
 *
 * - name is the part's key in the answer (letters, digits, "_", "-";
 *   unique; not "errors").
 * - url is upstream://NAME/path?query (balanced over the gateway's upstream
 *   NAME) or http://host:port/path?query; the route must allow it
 *   (plugins[].outbound: {upstreams: [...], hosts: [...]}). {query.NAME} is
 *   replaced by the request's query parameter NAME, percent-encoded; a
 *   request without it (or with it empty) is answered 400.
 * - timeout bounds the part: "300ms", "2s" or a number of seconds (default:
 *   the plugin's call deadline, which bounds the whole batch: give the
 *   plugin limits.call_timeout above the largest part timeout).
 *
 * A part fails when it times out, cannot connect, is not allowed, answers a
 * status outside 200-299, or answers something that is not JSON. The answer
 * is 200 application/json:
 *
 *   {"user": {...}, "feed": null, "errors": {"feed": "timeout"}}
 *
 * with null for a failed part and "errors" (only when a part failed) saying
 * why, in partial mode. In strict mode a failed part, and in partial mode
 * the failure of every part, makes the answer 502:
 * {"error": "part \"feed\" failed: timeout", "failed": {"feed": "timeout"}}.
 *
 * Build: clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *          -o aggregate.wasm sdk/c/examples/aggregate.c sdk/c/wasmgate.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasmgate.h"

#define ERRORS_KEY "errors"

typedef struct {
    const char *name;
    const char *url; /* with {query.NAME} placeholders */
    uint32_t timeout_ms;
} part;

static wasmgate_json *config;
static part *parts;
static size_t nparts;
static bool partial;

/* Checks a URL template: the scheme, no spaces, and {query.NAME} the only
 * placeholder. 0 or WASMGATE_FAILED after set_error. */
static int32_t check_url(size_t i, const char *url) {
    if (strncmp(url, "upstream://", 11) != 0 && strncmp(url, "http://", 7) != 0)
        return wasmgate_failf("parts.%zu: url \"%s\": want upstream://NAME/path or http://host:port/path", i, url);
    for (const char *c = url; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == 0x7f)
            return wasmgate_failf("parts.%zu: url \"%s\": no spaces or control characters", i, url);
    for (const char *c = url; (c = strpbrk(c, "{}")); c++) {
        const char *name = strncmp(c, "{query.", 7) == 0 ? c + 7 : NULL;
        const char *close = name ? strchr(name, '}') : NULL;
        if (close == NULL || close == name || memchr(name, '{', (size_t)(close - name)))
            return wasmgate_failf("parts.%zu: url \"%s\": only {query.NAME} may be substituted", i, url);
        c = close;
    }
    return 0;
}

/* Whether s[0..n) is 1 to max digits. */
static bool digits(const char *s, size_t n, size_t max) {
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* A timeout in ms: "300ms", "2s", "1.5s", or a number of seconds, in (0,
 * 1h], rounded up to whole milliseconds; 0 when it is none of these. */
static uint32_t timeout_ms(const wasmgate_json *v) {
    wasmgate_bytes text = {NULL, 0};
    uint64_t scale = 1000;
    if (wasmgate_json_type(v) == WASMGATE_JSON_NUMBER) {
        if (wasmgate_json_write(&text, v) < 0) return 0;
    } else {
        size_t n;
        const char *s = wasmgate_json_string(v, &n);
        if (s == NULL || wasmgate_bytes_append(&text, s, n) < 0) return 0;
        if (n >= 2 && strcmp(s + n - 2, "ms") == 0) text.len -= 2, scale = 1;
        else if (n >= 1 && s[n - 1] == 's') text.len -= 1;
        else text.len = 0; /* no unit */
    }
    /* Digits with an optional fraction, read without floating point. */
    const char *num = text.data ? text.data : "", *dot = memchr(num, '.', text.len);
    size_t int_len = dot ? (size_t)(dot - num) : text.len, frac_len = dot ? text.len - int_len - 1 : 0;
    uint64_t ms = 0;
    if (digits(num, int_len, 7) && (!dot || digits(dot + 1, frac_len, 9))) {
        uint64_t pow = 1, frac = 0, whole = 0;
        for (size_t i = 0; i < frac_len; i++) pow *= 10, frac = frac * 10 + (uint64_t)(dot[1 + i] - '0');
        for (size_t i = 0; i < int_len; i++) whole = whole * 10 + (uint64_t)(num[i] - '0');
        ms = whole * scale + (frac * scale + pow - 1) / pow;
    }
    wasmgate_bytes_free(&text);
    return ms > 3600000 ? 0 : (uint32_t)ms;
}

/* A string member of part i, NULL when absent or null; *bad after set_error
 * when it is another type. */
static const char *str_member(const wasmgate_json *o, size_t i, const char *key, bool *bad) {
    const wasmgate_json *v = wasmgate_json_get(o, key);
    if (v == NULL || wasmgate_json_type(v) == WASMGATE_JSON_NULL) return NULL;
    const char *s = wasmgate_json_string(v, NULL);
    if (s == NULL) {
        wasmgate_failf("field \"parts.%zu.%s\": want string, got %s", i, key, wasmgate_json_type_name(v));
        *bad = true;
    }
    return s;
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
    static const char *const known[] = {"parts", "mode", NULL};
    const char *unknown = wasmgate_json_unknown_key(config, known);
    if (unknown) return wasmgate_failf("unknown field \"%s\"", unknown);

    const wasmgate_json *mode = wasmgate_json_get(config, "mode");
    if (mode != NULL && wasmgate_json_type(mode) != WASMGATE_JSON_NULL) {
        const char *m = wasmgate_json_string(mode, NULL);
        if (m == NULL) return wasmgate_failf("field \"mode\": want string, got %s", wasmgate_json_type_name(mode));
        if (strcmp(m, "partial") == 0) partial = true;
        else if (strcmp(m, "strict") != 0) return wasmgate_failf("\"mode\": \"%s\": want strict or partial", m);
    }

    const wasmgate_json *list = wasmgate_json_get(config, "parts");
    if (list != NULL && wasmgate_json_type(list) != WASMGATE_JSON_NULL &&
        wasmgate_json_type(list) != WASMGATE_JSON_ARRAY)
        return wasmgate_failf("field \"parts\": want list, got %s", wasmgate_json_type_name(list));
    nparts = wasmgate_json_count(list);
    if (nparts == 0) return wasmgate_fail("missing \"parts\": list {name, url} for each service to call");
    if (nparts > WASMGATE_MAX_BATCH)
        return wasmgate_failf("\"parts\": %zu parts, at most %d", nparts, WASMGATE_MAX_BATCH);
    parts = calloc(nparts, sizeof *parts);
    if (parts == NULL) return wasmgate_fail("out of memory");
    static const char *const part_fields[] = {"name", "url", "timeout", NULL};
    for (size_t i = 0; i < nparts; i++) {
        const wasmgate_json *item = wasmgate_json_item(list, i);
        if (wasmgate_json_type(item) != WASMGATE_JSON_OBJECT)
            return wasmgate_failf("field \"parts.%zu\": want object, got %s", i, wasmgate_json_type_name(item));
        if ((unknown = wasmgate_json_unknown_key(item, part_fields)))
            return wasmgate_failf("unknown field \"parts.%zu.%s\"", i, unknown);
        part *p = &parts[i];
        bool bad = false;
        p->name = str_member(item, i, "name", &bad);
        if (bad) return WASMGATE_FAILED;
        if (p->name == NULL || p->name[0] == 0) return wasmgate_failf("parts.%zu: missing \"name\"", i);
        for (const char *c = p->name; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
                return wasmgate_failf("parts.%zu: name \"%s\": use letters, digits, \"_\" and \"-\"", i, p->name);
        if (strcmp(p->name, ERRORS_KEY) == 0)
            return wasmgate_failf("parts.%zu: name \"" ERRORS_KEY "\" is the member listing failed parts", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(parts[j].name, p->name) == 0) return wasmgate_failf("parts.%zu: duplicate name \"%s\"", i, p->name);
        p->url = str_member(item, i, "url", &bad);
        if (bad) return WASMGATE_FAILED;
        if (p->url == NULL || p->url[0] == 0) return wasmgate_failf("parts.%zu: missing \"url\"", i);
        if (check_url(i, p->url) < 0) return WASMGATE_FAILED;
        const wasmgate_json *t = wasmgate_json_get(item, "timeout");
        if (t != NULL && wasmgate_json_type(t) != WASMGATE_JSON_NULL && (p->timeout_ms = timeout_ms(t)) == 0) {
            wasmgate_bytes shown = {NULL, 0};
            wasmgate_json_write(&shown, t);
            rc = wasmgate_failf("parts.%zu: \"timeout\" %s: want a duration like 300ms or 2s (at most 1h), or seconds", i,
                                shown.data ? shown.data : "");
            wasmgate_bytes_free(&shown);
            return rc;
        }
    }
    return 0;
}

/* Appends s percent-encoded: everything but unreserved characters, so that
 * a value cannot change the shape of the URL it goes in. */
static int32_t append_escaped(wasmgate_bytes *out, const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    int32_t rc = 0;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                          (c != 0 && strchr("-._~", c) != NULL);
        if (unreserved) {
            rc = wasmgate_bytes_append(out, &s[i], 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = wasmgate_bytes_append(out, e, 3);
        }
    }
    return rc;
}

/* Sends a local JSON answer (body gets a newline) and stops the chain. */
static int32_t answer(int32_t status, wasmgate_bytes *body) {
    int32_t rc = wasmgate_bytes_append(body, "\n", 1);
    if (rc == 0) rc = wasmgate_send_response(status, body->data, (int32_t)body->len);
    if (rc == 0) rc = wasmgate_header_set_str(WASMGATE_KIND_RESPONSE, "Content-Type", "application/json");
    wasmgate_bytes_free(body);
    if (rc < 0) return wasmgate_failf("answering %d: %s", (int)status, wasmgate_code_name(rc));
    return WASMGATE_STOP;
}

/* Builds part p's URL for this request into out; WASMGATE_NOT_FOUND (and
 * *missing, the parameter's name) when a parameter is absent or empty. */
static int32_t build_url(const part *p, const wasmgate_bytes *query, wasmgate_bytes *out, char *missing, size_t n) {
    int32_t rc = wasmgate_bytes_append(out, "", 0);
    const char *s = p->url;
    for (const char *open; rc == 0 && (open = strchr(s, '{'));) {
        const char *name = open + strlen("{query."), *close = strchr(open, '}');
        rc = wasmgate_bytes_append(out, s, (size_t)(open - s));
        snprintf(missing, n, "%.*s", (int)(close - name), name);
        wasmgate_bytes v = {NULL, 0};
        if (rc == 0 && wasmgate_query_param(query->data, query->len, missing, &v) < 0) rc = WASMGATE_NOT_FOUND;
        if (rc == 0 && v.len == 0) rc = WASMGATE_NOT_FOUND;
        if (rc == 0) rc = append_escaped(out, v.data, v.len);
        wasmgate_bytes_free(&v);
        s = close + 1;
    }
    if (rc == 0) rc = wasmgate_bytes_append(out, s, strlen(s));
    return rc;
}

/* Why a part failed, NULL when it did not (then *doc holds its JSON). */
static const char *failure(const wasmgate_result *r, wasmgate_json **doc, char *buf, size_t n) {
    *doc = NULL;
    switch (r->status) {
    case WASMGATE_STATUS_TIMEOUT: return "timeout";
    case WASMGATE_STATUS_NETWORK: return "connect or network error";
    case WASMGATE_STATUS_NOT_ALLOWED: return "destination not allowed by the route's outbound config";
    }
    if (r->status < 0) return "request failed";
    if (r->status < 200 || r->status > 299) {
        snprintf(buf, n, "status %d", (int)r->status);
        return buf;
    }
    /* wasmgate_json_parse reads blank text as {} (a config): not an answer. */
    size_t i = 0;
    while (i < r->body_len && r->body[i] != 0 && strchr(" \t\r\n", r->body[i]) != NULL) i++;
    if (i < r->body_len) *doc = wasmgate_json_parse(r->body, r->body_len, NULL, 0);
    return *doc ? NULL : "answer is not JSON";
}

WASMGATE_EXPORT(on_request) int32_t on_request(void) {
    wasmgate_bytes query, body = {NULL, 0};
    int32_t rc = wasmgate_read_query(&query);
    if (rc < 0) return wasmgate_failf("reading the query: %s", wasmgate_code_name(rc));
    wasmgate_bytes *urls = calloc(nparts, sizeof *urls);
    wasmgate_request *reqs = calloc(nparts, sizeof *reqs);
    wasmgate_json **docs = calloc(nparts, sizeof *docs);
    const char **why = calloc(nparts, sizeof *why);
    char (*reason)[32] = calloc(nparts, sizeof *reason);
    wasmgate_results res = {NULL, 0, NULL};
    int32_t out = WASMGATE_FAILED;
    if (!urls || !reqs || !docs || !why || !reason) {
        out = wasmgate_fail("out of memory");
        goto done;
    }
    for (size_t i = 0; i < nparts; i++) {
        char missing[256];
        rc = build_url(&parts[i], &query, &urls[i], missing, sizeof missing);
        if (rc == WASMGATE_NOT_FOUND) {
            rc = wasmgate_bytes_append(&body, "{\"error\":", 9);
            char text[300];
            snprintf(text, sizeof text, "missing query parameter \"%s\"", missing);
            if (rc == 0) rc = wasmgate_json_quote(&body, text, strlen(text));
            if (rc == 0) rc = wasmgate_bytes_append(&body, "}", 1);
            out = rc == 0 ? answer(400, &body) : wasmgate_fail("out of memory");
            goto done;
        }
        if (rc < 0) {
            out = wasmgate_fail("out of memory");
            goto done;
        }
        reqs[i].url = urls[i].data;
        reqs[i].timeout_ms = parts[i].timeout_ms;
    }

    /* One batch: the host runs every part at once. */
    rc = wasmgate_fetch(reqs, nparts, &res);
    if (rc < 0) {
        out = wasmgate_failf("http_batch: %s", wasmgate_code_name(rc));
        goto done;
    }

    size_t failed = 0, first = 0;
    for (size_t i = 0; i < nparts; i++) {
        why[i] = failure(&res.items[i], &docs[i], reason[i], sizeof reason[i]);
        if (why[i] && failed++ == 0) first = i;
    }
    int32_t status = 200;
    rc = 0;
    if (failed > 0 && (!partial || failed == nparts)) {
        /* {"error": "part \"x\" failed: why", "failed": {"x": "why", ...}} */
        char text[300];
        snprintf(text, sizeof text, "part \"%s\" failed: %s", parts[first].name, why[first]);
        status = 502;
        rc = wasmgate_bytes_append(&body, "{\"error\":", 9);
        if (rc == 0) rc = wasmgate_json_quote(&body, text, strlen(text));
        if (rc == 0) rc = wasmgate_bytes_append(&body, ",\"failed\":", 10);
    } else {
        /* {"name": <json or null>, ..., "errors": {"x": "why", ...}} */
        rc = wasmgate_bytes_append(&body, "{", 1);
        for (size_t i = 0; rc == 0 && i < nparts; i++) {
            if (i > 0) rc = wasmgate_bytes_append(&body, ",", 1);
            if (rc == 0) rc = wasmgate_json_quote(&body, parts[i].name, strlen(parts[i].name));
            if (rc == 0) rc = wasmgate_bytes_append(&body, ":", 1);
            if (rc == 0) rc = docs[i] ? wasmgate_json_write(&body, docs[i]) : wasmgate_bytes_append(&body, "null", 4);
        }
        if (rc == 0 && failed > 0) rc = wasmgate_bytes_append(&body, ",\"" ERRORS_KEY "\":", strlen(ERRORS_KEY) + 4);
    }
    if (failed > 0) {
        for (size_t i = 0, k = 0; rc == 0 && i < nparts; i++) {
            if (!why[i]) continue;
            rc = wasmgate_bytes_append(&body, k++ ? "," : "{", 1);
            if (rc == 0) rc = wasmgate_json_quote(&body, parts[i].name, strlen(parts[i].name));
            if (rc == 0) rc = wasmgate_bytes_append(&body, ":", 1);
            if (rc == 0) rc = wasmgate_json_quote(&body, why[i], strlen(why[i]));
        }
        if (rc == 0) rc = wasmgate_bytes_append(&body, "}", 1);
    }
    if (rc == 0) rc = wasmgate_bytes_append(&body, "}", 1);
    out = rc == 0 ? answer(status, &body) : wasmgate_fail("out of memory");

done:
    wasmgate_bytes_free(&query);
    wasmgate_bytes_free(&body);
    for (size_t i = 0; i < nparts; i++) {
        if (urls) wasmgate_bytes_free(&urls[i]);
        if (docs) wasmgate_json_free(docs[i]);
    }
    wasmgate_results_free(&res);
    free(urls);
    free(reqs);
    free(docs);
    free(why);
    free(reason);
    return out;
}
