/*
 * hostcheck.h: what the files of the C hostcheck guest share (see
 * ../README.md; the specification is sdk/tck/hostcheck's package
 * documentation, the same for every language).
 */
#ifndef HOSTCHECK_H
#define HOSTCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wasmgate.h"

/* ---- JSON writer (json_writer.c) ---------------------------------------- */

/* A JSON text being written: values, and keys inside objects, in order;
 * commas and colons are the writer's. Out of memory sets failed and stops
 * writing; jw_text then answers NULL. */
typedef struct {
    wasmgate_bytes out;
    bool comma;     /* a value ends the text so far: the next one needs a ',' */
    bool after_key; /* a key was written: its value needs no ',' */
    bool failed;
} jw;

void jw_init(jw *w);
void jw_free(jw *w);
/* The text (NUL-terminated; *len, when not NULL, gets its length), or NULL
 * after a failure. Owned by w. */
const char *jw_text(jw *w, size_t *len);

void jw_begin_object(jw *w);
void jw_end_object(jw *w);
void jw_begin_array(jw *w);
void jw_end_array(jw *w);
void jw_key(jw *w, const char *key);
void jw_key_n(jw *w, const char *key, size_t len); /* a key of len bytes */
void jw_null(jw *w);
void jw_bool(jw *w, bool v);
void jw_int(jw *w, int64_t v);
/* A number in its shortest form that reads back the same; null when not
 * finite (JSON has no NaN or infinity). */
void jw_double(jw *w, double v);
/* A string of len bytes (any bytes: control characters are escaped). */
void jw_string(jw *w, const char *s, size_t len);
void jw_cstring(jw *w, const char *s);
/* A JSON text written as is (the caller vouches for it). */
void jw_raw(jw *w, const char *json, size_t len);

/* key: value shorthands. */
void jw_kint(jw *w, const char *key, int64_t v);
void jw_kbool(jw *w, const char *key, bool v);
void jw_kdouble(jw *w, const char *key, double v);
void jw_kstring(jw *w, const char *key, const char *s, size_t len);
void jw_kcstring(jw *w, const char *key, const char *s);
void jw_kraw(jw *w, const char *key, const char *json);

/* ---- Config (config.c) -------------------------------------------------- */

/* The plugin config (sdk/tck/hostcheck's "Config keys"). Strings point
 * into the parsed JSON kept for the instance's life. */
typedef struct {
    const char *check;
    const char *tag; /* "" when absent */
    bool stop, local;
    int64_t big_body;
    wasmgate_request *batch; /* the outbound check's requests, as the SDK takes them */
    size_t batch_len;
    const char *reject;
} hc_config;

/* Parses and checks config text into c: 0, or -1 with the reason in err
 * (err_len bytes). The text must outlive nothing: c keeps its own tree. */
int parse_config(const char *text, size_t len, hc_config *c, char *err, size_t err_len);
/* Frees what parse_config allocated. */
void free_config(hc_config *c);

/* ---- Checks (checks.c) ---------------------------------------------------- */

/* Per-instance state (main.c). */
extern hc_config cfg;
extern wasmgate_bytes cfg_raw;       /* the config bytes on_init received */
extern char *initialize_probe;       /* JSON: what _initialize saw */
extern char *init_probe;             /* JSON: what on_init saw (phase), else NULL */
extern char instance_id[17];         /* 8 random bytes in hex */
extern int64_t calls, inits;

/* What on_init probes for the phase check, as JSON (malloc'd), or NULL. */
char *probe_on_init(void);
/* What _initialize probes, as JSON (malloc'd), or NULL. */
char *probe_initialize(void);

/* on_request of each check: WASMGATE_CONTINUE, WASMGATE_STOP or a failure. */
int32_t inspect_request(void);
int32_t phase_request(void);
int32_t kv_request(void);
int32_t metrics_request(void);
int32_t log_request(void);
int32_t outbound_request(void);
int32_t chain_request(void);
int32_t instance_request(void);
int32_t buffers_request(void);
int32_t gateway_request(void);
int32_t flags_request(void);

/* on_response of the checks that have one: 0 or a failure. */
int32_t inspect_response(void);
int32_t phase_response(void);
int32_t chain_response(void);
int32_t instance_response(void);

/* Small helpers (checks.c). */

/* The hex of n bytes into out (2n+1 bytes). */
void hex_encode(const unsigned char *b, size_t n, char *out);
/* A whole decimal int64 ("+5", "-3"; no spaces), as Go's strconv.ParseInt. */
bool parse_int64(const char *s, int64_t *out);
/* The batch of n GET requests of url that http_batch refuses (n > 64),
 * encoded with the SDK's codec, bypassing wasmgate_fetch's own check. */
int32_t encode_gets(size_t n, const char *url, wasmgate_bytes *out);

#endif /* HOSTCHECK_H */
