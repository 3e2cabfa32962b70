/*
 * json_transform: a wasmgate plugin in C that edits JSON bodies by dot
 * path: it renames, removes and adds fields of the response body before it
 * goes to the client, and of the request body before it goes upstream. A
 * subset of the Go plugin plugins/json-transform (no "move", no "*").
 *
 * Config (at least one op):
 *
 *   config:
 *     response:                                       # ops on JSON response bodies, in order
 *       - {op: remove, path: items.internal_id}       # remove (every match)
 *       - {op: rename, path: user.fullName, to: name} # rename a member in place
 *       - {op: add, path: meta.via, value: wasmgate}  # set, creating parents; any value
 *     request:                                        # ops on JSON request bodies, in order
 *       - {op: remove, path: debug}
 *     statuses: [200, 201]   # response statuses transformed (default: every 2xx)
 *     max_body: 1048576      # bodies over this many bytes pass untouched (default 8 MiB)
 *
 * Paths: "a.b" is the member b of the member a; on an array, a number
 * selects an element ("items.0") and a name applies to every object element
 * ("items.internal_id"). rename's "to" is a member name (a member already
 * called so is dropped); add replaces a value that is there and creates the
 * objects missing on the way.
 *
 * Only bodies whose Content-Type mentions json, that are not compressed
 * (Content-Encoding) and that parse as JSON are touched; others, and
 * responses of other statuses, pass as they are. A body the ops change is
 * written back compact (members in order, numbers as written); the gateway
 * sets its Content-Length. A body the ops do not change is left alone.
 *
 * The SDK's JSON tree is read-only, so the body is copied into a small
 * editable tree (objects and arrays; every other value kept as its JSON
 * text, written with wasmgate_json_write).
 *
 * Build: clang --target=wasm32-wasi -mexec-model=reactor -O2 -I sdk/c \
 *          -o json_transform.wasm sdk/c/examples/json_transform.c sdk/c/wasmgate.c
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wasmgate.h"

#define DEFAULT_MAX_BODY (8 << 20)
#define MAX_SEGMENTS 64

/* ---- An editable JSON tree ---------------------------------------------- */

enum { N_TEXT, N_ARRAY, N_OBJECT };

typedef struct node node;
struct node {
    int type;
    wasmgate_bytes text; /* N_TEXT: the value's JSON */
    size_t count, cap;
    node **items; /* elements, or member values */
    char **keys;  /* member keys (N_OBJECT) */
};

static void node_free(node *n) {
    if (n == NULL) return;
    wasmgate_bytes_free(&n->text);
    for (size_t i = 0; i < n->count; i++) {
        node_free(n->items[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n);
}

/* Appends a member (key may be NULL for an array); takes key and v. */
static bool node_push(node *n, char *key, node *v) {
    if (n->count == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 4;
        node **items = realloc(n->items, cap * sizeof *items);
        if (items == NULL) return false;
        n->items = items;
        if (n->type == N_OBJECT) {
            char **keys = realloc(n->keys, cap * sizeof *keys);
            if (keys == NULL) return false;
            n->keys = keys;
        }
        n->cap = cap;
    }
    if (n->type == N_OBJECT) n->keys[n->count] = key;
    n->items[n->count++] = v;
    return true;
}

/* Removes the i-th element or member. */
static void node_remove(node *n, size_t i) {
    node_free(n->items[i]);
    if (n->type == N_OBJECT) {
        free(n->keys[i]);
        memmove(&n->keys[i], &n->keys[i + 1], (n->count - i - 1) * sizeof *n->keys);
    }
    memmove(&n->items[i], &n->items[i + 1], (n->count - i - 1) * sizeof *n->items);
    n->count--;
}

static node *node_new(int type) {
    node *n = calloc(1, sizeof *n);
    if (n) n->type = type;
    return n;
}

/* The editable copy of a parsed value; NULL when memory runs out. */
static node *node_from(const wasmgate_json *v) {
    int t = wasmgate_json_type(v);
    node *n = node_new(t == WASMGATE_JSON_OBJECT ? N_OBJECT : t == WASMGATE_JSON_ARRAY ? N_ARRAY : N_TEXT);
    if (n == NULL) return NULL;
    if (n->type == N_TEXT) {
        if (wasmgate_json_write(&n->text, v) == 0) return n;
        node_free(n);
        return NULL;
    }
    for (size_t i = 0; i < wasmgate_json_count(v); i++) {
        char *key = n->type == N_OBJECT ? strdup(wasmgate_json_key(v, i)) : NULL;
        node *item = node_from(wasmgate_json_item(v, i));
        if (item == NULL || (n->type == N_OBJECT && key == NULL) || !node_push(n, key, item)) {
            free(key);
            node_free(item);
            node_free(n);
            return NULL;
        }
    }
    return n;
}

static node *node_clone(const node *v) {
    node *n = node_new(v->type);
    if (n == NULL) return NULL;
    if (v->type == N_TEXT) {
        if (wasmgate_bytes_append(&n->text, v->text.data, v->text.len) == 0) return n;
        node_free(n);
        return NULL;
    }
    for (size_t i = 0; i < v->count; i++) {
        char *key = v->type == N_OBJECT ? strdup(v->keys[i]) : NULL;
        node *item = node_clone(v->items[i]);
        if (item == NULL || (v->type == N_OBJECT && key == NULL) || !node_push(n, key, item)) {
            free(key);
            node_free(item);
            node_free(n);
            return NULL;
        }
    }
    return n;
}

static int32_t node_write(wasmgate_bytes *out, const node *n) {
    if (n->type == N_TEXT) return wasmgate_bytes_append(out, n->text.data, n->text.len);
    bool obj = n->type == N_OBJECT;
    int32_t rc = wasmgate_bytes_append(out, obj ? "{" : "[", 1);
    for (size_t i = 0; rc == 0 && i < n->count; i++) {
        if (i > 0) rc = wasmgate_bytes_append(out, ",", 1);
        if (rc == 0 && obj) rc = wasmgate_json_quote(out, n->keys[i], strlen(n->keys[i]));
        if (rc == 0 && obj) rc = wasmgate_bytes_append(out, ":", 1);
        if (rc == 0) rc = node_write(out, n->items[i]);
    }
    return rc == 0 ? wasmgate_bytes_append(out, obj ? "}" : "]", 1) : rc;
}

/* The index of the first member named key, or -1. */
static long node_find(const node *n, const char *key) {
    for (size_t i = 0; i < n->count; i++)
        if (strcmp(n->keys[i], key) == 0) return (long)i;
    return -1;
}

/* ---- Ops ---------------------------------------------------------------- */

typedef struct {
    char *key;
    long index; /* the element index when key is a decimal number, else -1 */
} seg;

enum { OP_REMOVE, OP_RENAME, OP_ADD };

typedef struct {
    int kind;
    seg *path;
    size_t nsegs;
    char *to;    /* rename */
    node *value; /* add */
} op;

typedef struct {
    op *ops;
    size_t n;
} op_list;

static op_list request_ops, response_ops;
static int64_t statuses[64];
static size_t nstatuses;
static int64_t max_body = DEFAULT_MAX_BODY;

/* Out of memory: a hook can do nothing sensible but fail. */
static bool oom;

/* Applies one op at segs under v; returns how many places it changed. A
 * name on an array applies to each object element. */
static size_t apply(node *v, const seg *segs, size_t n, const op *o) {
    const seg *s = &segs[0];
    bool last = n == 1;
    if (v->type == N_ARRAY) {
        if (s->index < 0) {
            size_t changed = 0;
            for (size_t i = 0; i < v->count; i++)
                if (v->items[i]->type == N_OBJECT) changed += apply(v->items[i], segs, n, o);
            return changed;
        }
        size_t i = (size_t)s->index;
        if (i >= v->count) return 0;
        if (!last) return apply(v->items[i], segs + 1, n - 1, o);
        switch (o->kind) {
        case OP_REMOVE: node_remove(v, i); return 1;
        case OP_ADD: {
            node *c = node_clone(o->value);
            if (c == NULL) return oom = true, 0;
            node_free(v->items[i]);
            v->items[i] = c;
            return 1;
        }
        }
        return 0; /* elements have no names to rename */
    }
    if (v->type != N_OBJECT) return 0;
    long found = node_find(v, s->key);
    if (!last) {
        if (found >= 0) return apply(v->items[found], segs + 1, n - 1, o);
        if (o->kind != OP_ADD) return 0;
        node *parent = node_new(N_OBJECT);
        char *key = strdup(s->key);
        if (parent == NULL || key == NULL || !node_push(v, key, parent)) {
            free(key);
            node_free(parent);
            return oom = true, 0;
        }
        return apply(parent, segs + 1, n - 1, o);
    }
    if (found < 0 && o->kind != OP_ADD) return 0;
    switch (o->kind) {
    case OP_REMOVE: {
        size_t removed = 0;
        for (size_t i = v->count; i-- > 0;)
            if (strcmp(v->keys[i], s->key) == 0) node_remove(v, i), removed++;
        return removed;
    }
    case OP_ADD: {
        node *c = node_clone(o->value);
        char *key = found < 0 ? strdup(s->key) : NULL;
        if (c == NULL || (found < 0 && key == NULL)) {
            node_free(c);
            free(key);
            return oom = true, 0;
        }
        if (found >= 0) {
            node_free(v->items[found]);
            v->items[found] = c;
        } else if (!node_push(v, key, c)) {
            node_free(c);
            free(key);
            return oom = true, 0;
        }
        return 1;
    }
    }
    /* OP_RENAME */
    if (strcmp(v->keys[found], o->to) == 0) return 0;
    char *to = strdup(o->to);
    if (to == NULL) return oom = true, 0;
    free(v->keys[found]);
    v->keys[found] = to;
    for (size_t i = v->count; i-- > 0;) /* a member already named so is dropped */
        if ((long)i != found && strcmp(v->keys[i], to) == 0) {
            node_remove(v, i);
            break;
        }
    return 1;
}

/* ---- Config ------------------------------------------------------------- */

static wasmgate_json *config;

/* Parses a dot path into o->path; 0 or WASMGATE_FAILED after set_error. */
static int32_t parse_path(op *o, const char *where, const char *path) {
    size_t len = strlen(path), nsegs = 1;
    for (size_t i = 0; i < len; i++) nsegs += path[i] == '.';
    if (nsegs > MAX_SEGMENTS) return wasmgate_failf("%s: \"path\": path \"%s\": more than %d segments", where, path, MAX_SEGMENTS);
    o->path = calloc(nsegs, sizeof *o->path);
    if (o->path == NULL) return wasmgate_fail("out of memory");
    const char *p = path;
    for (size_t k = 0; k < nsegs; k++) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0) return wasmgate_failf("%s: \"path\": path \"%s\": empty segment", where, path);
        seg *s = &o->path[o->nsegs++];
        s->key = strndup(p, n);
        if (s->key == NULL) return wasmgate_fail("out of memory");
        /* "0", "12": an index; "012", "+1": a name. */
        s->index = -1;
        bool digits = n <= 9 && (n == 1 || p[0] != '0');
        for (size_t i = 0; i < n && digits; i++) digits = isdigit((unsigned char)p[i]);
        if (digits) s->index = strtol(s->key, NULL, 10);
        p += n + 1;
    }
    return 0;
}

/* A string member of o, NULL when absent or null; *bad after set_error
 * when it is another type. */
static const char *str_member(const wasmgate_json *o, const char *path, const char *key, bool *bad) {
    const wasmgate_json *v = wasmgate_json_get(o, key);
    if (v == NULL || wasmgate_json_type(v) == WASMGATE_JSON_NULL) return NULL;
    const char *s = wasmgate_json_string(v, NULL);
    if (s == NULL) {
        wasmgate_failf("field \"%s.%s\": want string, got %s", path, key, wasmgate_json_type_name(v));
        *bad = true;
    }
    return s;
}

/* Reads the op list key into out; errors name the op ("response.1 (rename): ..."). */
static int32_t compile(const char *key, op_list *out) {
    const wasmgate_json *list = wasmgate_json_get(config, key);
    if (list == NULL || wasmgate_json_type(list) == WASMGATE_JSON_NULL) return 0;
    if (wasmgate_json_type(list) != WASMGATE_JSON_ARRAY)
        return wasmgate_failf("field \"%s\": want list, got %s", key, wasmgate_json_type_name(list));
    out->n = wasmgate_json_count(list);
    out->ops = calloc(out->n ? out->n : 1, sizeof *out->ops);
    if (out->ops == NULL) return wasmgate_fail("out of memory");
    static const char *const fields[] = {"op", "path", "to", "value", NULL};
    for (size_t i = 0; i < out->n; i++) {
        const wasmgate_json *item = wasmgate_json_item(list, i);
        op *o = &out->ops[i];
        char path[48], where[80];
        snprintf(path, sizeof path, "%s.%zu", key, i);
        if (wasmgate_json_type(item) != WASMGATE_JSON_OBJECT)
            return wasmgate_failf("field \"%s\": want object, got %s", path, wasmgate_json_type_name(item));
        const char *unknown = wasmgate_json_unknown_key(item, fields);
        if (unknown) return wasmgate_failf("unknown field \"%s.%s\"", path, unknown);
        bool bad = false;
        const char *name = str_member(item, path, "op", &bad);
        const char *p = str_member(item, path, "path", &bad);
        const char *to = str_member(item, path, "to", &bad);
        const wasmgate_json *value = wasmgate_json_get(item, "value");
        if (bad) return WASMGATE_FAILED;
        if (name == NULL || name[0] == 0) return wasmgate_failf("%s: missing \"op\" (one of rename, remove, add)", path);
        snprintf(where, sizeof where, "%s (%s)", path, name);
        if (strcmp(name, "remove") == 0) o->kind = OP_REMOVE;
        else if (strcmp(name, "rename") == 0) o->kind = OP_RENAME;
        else if (strcmp(name, "add") == 0) o->kind = OP_ADD;
        else return wasmgate_failf("%s: unknown op \"%s\" (want rename, remove or add)", where, name);
        if (p == NULL || p[0] == 0) return wasmgate_failf("%s: missing \"path\"", where);
        if (parse_path(o, where, p) < 0) return WASMGATE_FAILED;
        if (o->kind != OP_RENAME && to != NULL) return wasmgate_failf("%s: \"to\" does not apply to this op", where);
        if (o->kind != OP_ADD && value != NULL) return wasmgate_failf("%s: \"value\" does not apply to this op", where);
        if (o->kind == OP_RENAME) {
            if (to == NULL || to[0] == 0) return wasmgate_failf("%s: missing \"to\" (the new member name)", where);
            if (strchr(to, '.')) return wasmgate_failf("%s: \"to\" is a member name, not a path (\"%s\")", where, to);
            if (o->path[o->nsegs - 1].index >= 0)
                return wasmgate_failf("%s: \"path\" must end in a member name to rename, not \"%s\"", where,
                                      o->path[o->nsegs - 1].key);
            o->to = strdup(to);
            if (o->to == NULL) return wasmgate_fail("out of memory");
        }
        if (o->kind == OP_ADD) {
            if (value == NULL) return wasmgate_failf("%s: missing \"value\"", where);
            o->value = node_from(value);
            if (o->value == NULL) return wasmgate_fail("out of memory");
        }
    }
    return 0;
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
    static const char *const known[] = {"request", "response", "statuses", "max_body", NULL};
    const char *unknown = wasmgate_json_unknown_key(config, known);
    if (unknown) return wasmgate_failf("unknown field \"%s\"", unknown);
    if (compile("request", &request_ops) < 0 || compile("response", &response_ops) < 0) return WASMGATE_FAILED;
    if (request_ops.n == 0 && response_ops.n == 0)
        return wasmgate_fail("no ops: give \"request\" or \"response\" a list of ops like {op: remove, path: a.b}");

    const wasmgate_json *st = wasmgate_json_get(config, "statuses");
    if (st != NULL && wasmgate_json_type(st) != WASMGATE_JSON_NULL) {
        if (wasmgate_json_type(st) != WASMGATE_JSON_ARRAY)
            return wasmgate_failf("field \"statuses\": want list, got %s", wasmgate_json_type_name(st));
        if (wasmgate_json_count(st) > sizeof statuses / sizeof statuses[0])
            return wasmgate_failf("\"statuses\": at most %zu", sizeof statuses / sizeof statuses[0]);
        for (size_t i = 0; i < wasmgate_json_count(st); i++) {
            int64_t s;
            if (!wasmgate_json_int(wasmgate_json_item(st, i), &s))
                return wasmgate_failf("field \"statuses.%zu\": want integer, got %s", i,
                                      wasmgate_json_type_name(wasmgate_json_item(st, i)));
            if (s < 100 || s > 599) return wasmgate_failf("\"statuses\": %lld is not an HTTP status", (long long)s);
            statuses[nstatuses++] = s;
        }
    }
    const wasmgate_json *mb = wasmgate_json_get(config, "max_body");
    if (mb != NULL && wasmgate_json_type(mb) != WASMGATE_JSON_NULL) {
        if (!wasmgate_json_int(mb, &max_body))
            return wasmgate_failf("field \"max_body\": want integer, got %s", wasmgate_json_type_name(mb));
        if (max_body <= 0) return wasmgate_fail("\"max_body\" must be positive");
    }
    return 0;
}

/* ---- Hooks -------------------------------------------------------------- */

/* Whether the headers say kind's body is plain (uncompressed) JSON. */
static bool is_json(int32_t kind) {
    wasmgate_bytes ct, ce;
    if (wasmgate_read_header(kind, "Content-Type", &ct) < 0) return false;
    for (size_t i = 0; i < ct.len; i++) ct.data[i] = (char)tolower((unsigned char)ct.data[i]);
    char *semi = strchr(ct.data, ';');
    if (semi) *semi = 0;
    bool json = strstr(ct.data, "json") != NULL;
    wasmgate_bytes_free(&ct);
    if (!json) return false;
    if (wasmgate_read_header(kind, "Content-Encoding", &ce) < 0) return true;
    const char *s = ce.data, *e = ce.data + ce.len;
    while (s < e && (*s == ' ' || *s == '\t')) s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
    bool plain = s == e || ((size_t)(e - s) == 8 && strncasecmp(s, "identity", 8) == 0);
    wasmgate_bytes_free(&ce);
    return plain;
}

/* Runs ops on kind's body when it is JSON within the size limit. */
static int32_t transform(int32_t kind, const op_list *ops) {
    if (ops->n == 0 || !is_json(kind)) return WASMGATE_CONTINUE;
    /* The size first: a body over the limit never crosses into the plugin. */
    int64_t size = wasmgate_body_get(kind, 0, NULL, 0);
    if (size < 0) return wasmgate_failf("body_get: %s", wasmgate_code_name((int32_t)size));
    if (size == 0 || size > max_body) return WASMGATE_CONTINUE;
    wasmgate_bytes body;
    int32_t rc = wasmgate_read_body(kind, &body);
    if (rc < 0) return wasmgate_failf("reading the body: %s", wasmgate_code_name(rc));
    /* wasmgate_json_parse reads blank text as {} (a config): not a body. */
    size_t start = strspn(body.data, " \t\r\n");
    wasmgate_json *doc = start < body.len ? wasmgate_json_parse(body.data, body.len, NULL, 0) : NULL;
    wasmgate_bytes_free(&body);
    if (doc == NULL) return WASMGATE_CONTINUE; /* not JSON after all: passed as it is */
    node *root = node_from(doc);
    wasmgate_json_free(doc);
    if (root == NULL) return wasmgate_fail("out of memory");
    oom = false;
    size_t changed = 0;
    for (size_t i = 0; i < ops->n; i++) changed += apply(root, ops->ops[i].path, ops->ops[i].nsegs, &ops->ops[i]);
    rc = 0;
    if (changed > 0 && !oom) {
        wasmgate_bytes out = {NULL, 0};
        rc = node_write(&out, root);
        if (rc == 0) rc = wasmgate_body_set(kind, out.data, (int32_t)out.len);
        wasmgate_bytes_free(&out);
    }
    node_free(root);
    if (oom) return wasmgate_fail("out of memory");
    if (rc < 0) return wasmgate_failf("writing the body: %s", wasmgate_code_name(rc));
    return WASMGATE_CONTINUE;
}

WASMGATE_EXPORT(on_request) int32_t on_request(void) { return transform(WASMGATE_KIND_REQUEST, &request_ops); }

WASMGATE_EXPORT(on_response) int32_t on_response(void) {
    int64_t status = wasmgate_response_status();
    bool wanted = nstatuses == 0 && status >= 200 && status <= 299;
    for (size_t i = 0; i < nstatuses && !wanted; i++) wanted = statuses[i] == status;
    return wanted ? transform(WASMGATE_KIND_RESPONSE, &response_ops) : WASMGATE_CONTINUE;
}
