/* Helpers for end-to-end tests: they drive the running suite over HTTP the way a client does.
 * The test runner (scripts/test.sh) exports the suite's .run/engage.env variables. */
#ifndef TESTS_E2E_H
#define TESTS_E2E_H
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage/httpclient.h"
#include "engage/json.h"
#include "engage/store.h"

typedef struct {
    int status;
    eg_json_t *body; /* parsed body, NULL when not JSON */
    char corr_header[64];
    char retry_after[16];
} e2e_resp_t;

static inline const char *e2e_env(const char *name)
{
    const char *v = getenv(name);
    cr_assert(v && *v, "%s is not set: run the tests through `make test`", name);
    return v;
}

/* method + path under ENGAGE_URL with an optional key, extra header and body. */
static inline e2e_resp_t e2e_call(const char *method, const char *path, const char *key,
                                  const char *extra_header, const char *body)
{
    char url[1024], key_header[256];
    snprintf(url, sizeof url, "%s%s", e2e_env("ENGAGE_URL"), path);
    const char *headers[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    int n = 1;
    if (key) {
        snprintf(key_header, sizeof key_header, "x-api-key: %s", key);
        headers[n++] = key_header;
    }
    if (extra_header)
        headers[n++] = extra_header;
    eg_http_resp_t raw;
    eg_status_t st =
        eg_http_fetch(method, url, headers, body, body ? strlen(body) : 0, 10000, &raw);
    cr_assert_eq(st, EG_OK, "HTTP %s %s failed: %d", method, path, st);
    e2e_resp_t r = {.status = raw.status};
    char err[128];
    r.body = eg_json_parse(raw.body, raw.len, 64, err, sizeof err);
    eg_http_resp_header(&raw, "X-Correlation-Id", r.corr_header, sizeof r.corr_header);
    eg_http_resp_header(&raw, "Retry-After", r.retry_after, sizeof r.retry_after);
    eg_http_resp_free(&raw);
    return r;
}

static inline e2e_resp_t e2e_post(const char *path, const char *key, const char *body)
{
    return e2e_call("POST", path, key, NULL, body);
}

/* data.<field> as a string, or NULL. */
static inline const char *e2e_data_str(const e2e_resp_t *r, const char *field)
{
    return eg_json_str(eg_json_get(eg_json_get(r->body, "data"), field));
}

static inline const char *e2e_message(const e2e_resp_t *r)
{
    const char *m = eg_json_str(eg_json_get(eg_json_get(r->body, "status"), "message"));
    return m ? m : "";
}

static inline void e2e_free(e2e_resp_t *r)
{
    eg_json_free(r->body);
    r->body = NULL;
}

/* Run a command and return its first output line (caller frees), or NULL. */
static inline char *e2e_run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, p);
    int rc = pclose(p);
    if (n <= 0 || rc != 0) {
        free(line);
        return NULL;
    }
    return line;
}

/* How many voice commands of a type (dial, cancel) the commands stream holds for a callback. */
static inline int e2e_voice_commands(eg_store_t *voice, const char *id, const char *type)
{
    const char *argv[] = {"XRANGE", e2e_env("ENGAGE_VOICE_COMMANDS_STREAM"), "-", "+"};
    eg_reply_t *r = NULL;
    cr_assert_eq(eg_store_command(voice, 4, argv, NULL, &r), EG_OK);
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        const eg_reply_t *f = r->element[i]->element[1];
        const char *t = NULL, *cb = NULL;
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            if (strcmp(f->element[j]->str, "type") == 0)
                t = f->element[j + 1]->str;
            if (strcmp(f->element[j]->str, "callback_id") == 0)
                cb = f->element[j + 1]->str;
        }
        if (t && cb && strcmp(t, type) == 0 && strcmp(cb, id) == 0)
            n++;
    }
    eg_reply_free(r);
    return n;
}

#endif
