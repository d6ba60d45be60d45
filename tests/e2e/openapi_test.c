/* End to end: the OpenAPI document the api serves at /engagement/v3/openapi.json (public, raw)
 * and the routes the server really has agree. Every path + method of the document is called and
 * must be routed (not 404 "no such endpoint", not 405); every route family of API.md must be in
 * the document. The calls are harmless: PUT bodies are invalid on purpose, {name} is a fresh
 * name, and a key that a POST /keys creates is revoked at once. */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <strings.h>

#include "e2e.h"
#include "engage/ids.h"

#define DOC_PATH "/engagement/v3/openapi.json"

/* GET the document without a key; checks the raw answer and returns the parsed document. */
static eg_json_t *fetch_doc(void)
{
    char url[512], ctype[128] = "";
    snprintf(url, sizeof url, "%s%s", e2e_env("ENGAGE_URL"), DOC_PATH);
    eg_http_resp_t raw;
    cr_assert_eq(eg_http_fetch("GET", url, NULL, NULL, 0, 10000, &raw), EG_OK, "GET %s", url);
    cr_assert_eq(raw.status, 200, "GET %s without a key: %d %.200s", DOC_PATH, raw.status,
                 raw.body);
    eg_http_resp_header(&raw, "Content-Type", ctype, sizeof ctype);
    cr_expect(strncasecmp(ctype, "application/json", 16) == 0, "Content-Type is '%s'", ctype);
    char err[128] = "";
    eg_json_t *doc = eg_json_parse(raw.body, raw.len, 64, err, sizeof err);
    eg_http_resp_free(&raw);
    cr_assert(doc && eg_json_is_object(doc), "the document is not a JSON object: %s", err);
    return doc;
}

static bool is_method(const char *k)
{
    static const char *const methods[] = {"get",   "put",  "post",   "delete",
                                          "patch", "head", "options"};
    for (size_t i = 0; i < sizeof methods / sizeof *methods; i++)
        if (strcmp(k, methods[i]) == 0)
            return true;
    return false;
}

/* The path with each {parameter} replaced by a value that makes the call harmless. */
static void fill_path(const char *tmpl, const char *name, char *out, size_t outlen)
{
    size_t o = 0;
    for (const char *p = tmpl; *p && o + 1 < outlen;) {
        if (*p != '{') {
            out[o++] = *p++;
            continue;
        }
        const char *close = strchr(p, '}');
        cr_assert(close, "unbalanced braces in path %s", tmpl);
        char param[64], value[64];
        snprintf(param, sizeof param, "%.*s", (int)(close - p - 1), p + 1);
        if (strcmp(param, "service") == 0) {
            const char *demo = getenv("ENGAGE_DEMO_SERVICE");
            snprintf(value, sizeof value, "%s", demo && *demo ? demo : "demo");
        } else if (strcmp(param, "name") == 0) {
            snprintf(value, sizeof value, "%s", name);
        } else if (strcmp(param, "keyId") == 0) {
            unsigned char b[8];
            eg_random_bytes(b, sizeof b);
            for (size_t i = 0; i < sizeof b; i++)
                snprintf(value + 2 * i, 3, "%02x", b[i]);
        } else {
            eg_uuid_v7_str(value);
        }
        o += (size_t)snprintf(out + o, outlen - o, "%s", value);
        p = close + 1;
    }
    out[o < outlen ? o : outlen - 1] = '\0';
}

Test(openapi, served_public_and_raw)
{
    eg_json_t *doc = fetch_doc();
    const char *version = eg_json_str(eg_json_get(doc, "openapi"));
    cr_assert(version && strncmp(version, "3.", 2) == 0, "openapi is '%s'",
              version ? version : "(absent)");
    cr_expect_null(eg_json_get(doc, "status"), "the document is not wrapped in the envelope");
    cr_expect(eg_json_is_object(eg_json_get(doc, "paths")), "paths is an object");
    cr_expect(eg_json_is_object(eg_json_get(eg_json_get(doc, "components"), "securitySchemes")),
              "components.securitySchemes is an object");
    eg_json_free(doc);
}

/* The check below must be able to fail: an unknown path is "no such endpoint". */
Test(openapi, unknown_path_is_no_such_endpoint)
{
    e2e_resp_t r =
        e2e_call("GET", "/engagement/v3/no-such-thing", e2e_env("ENGAGE_API_KEY"), NULL, NULL);
    cr_expect_eq(r.status, 404);
    cr_expect(strncmp(e2e_message(&r), "no such endpoint", 16) == 0, "%s", e2e_message(&r));
    e2e_free(&r);
}

Test(openapi, every_documented_route_exists)
{
    eg_json_t *doc = fetch_doc();
    eg_json_t *paths = eg_json_get(doc, "paths");
    const char *api_key = e2e_env("ENGAGE_API_KEY"), *admin_key = e2e_env("ENGAGE_ADMIN_KEY");
    char name[40];
    unsigned r32;
    eg_random_bytes(&r32, sizeof r32);
    snprintf(name, sizeof name, "oas-check-%u", r32);

    int checked = 0;
    void *it = NULL;
    const char *tmpl;
    eg_json_t *item;
    while (eg_json_object_next(paths, &it, &tmpl, &item)) {
        void *it2 = NULL;
        const char *m;
        eg_json_t *op;
        while (eg_json_object_next(item, &it2, &m, &op)) {
            if (!is_method(m))
                continue;
            char method[16], path[512];
            size_t i = 0;
            for (; m[i] && i + 1 < sizeof method; i++)
                method[i] = (char)toupper((unsigned char)m[i]);
            method[i] = '\0';
            fill_path(tmpl, name, path, sizeof path);
            eg_json_t *sec = eg_json_get(op, "security");
            bool public = sec && eg_json_is_array(sec) && eg_json_array_size(sec) == 0;
            const char *key = public                                   ? NULL
                              : strncmp(tmpl, "/ges/api/v1/", 12) == 0 ? admin_key
                                                                       : api_key;
            const char *body = strcmp(method, "POST") == 0  ? "{}"
                               : strcmp(method, "PUT") == 0 ? "[]"
                                                            : NULL;
            e2e_resp_t r = e2e_call(method, path, key, NULL, body);
            const char *msg = e2e_message(&r);
            cr_expect(r.status != 404 || strncmp(msg, "no such endpoint", 16) != 0,
                      "%s %s is documented but the server has no such endpoint (%s)", method, tmpl,
                      msg);
            cr_expect_neq(r.status, 405, "%s %s is documented but answers 405 (%s)", method, tmpl,
                          msg);
            cr_expect(r.status != 500 && r.status != 0, "%s %s answers %d (%s)", method, tmpl,
                      r.status, msg);
            /* POST /keys with {} creates a key with the defaults: revoke it. */
            const char *key_id = e2e_data_str(&r, "keyId");
            if (strcmp(tmpl, "/ges/api/v1/keys") == 0 && r.status == 201 && key_id) {
                char del[128];
                snprintf(del, sizeof del, "/ges/api/v1/keys/%s", key_id);
                e2e_resp_t d = e2e_call("DELETE", del, admin_key, NULL, NULL);
                cr_expect_eq(d.status, 200, "revoking the key POST /keys created: %d %s", d.status,
                             e2e_message(&d));
                e2e_free(&d);
            }
            e2e_free(&r);
            checked++;
        }
    }
    cr_expect_geq(checked, 20, "only %d operations in the document", checked);
    eg_json_free(doc);
}

/* Every route family of ../shared/API.md (and the operational endpoints) is documented. */
Test(openapi, every_route_of_the_contract_is_documented)
{
    static const struct {
        const char *method, *path;
    } routes[] = {
        {"post", "/engagement/v3/callbacks/create"},
        {"post", "/engagement/v3/callbacks/cancel"},
        {"post", "/engagement/v3/callbacks/retrieve"},
        {"post", "/engagement/v3/callbacks/reschedule"},
        {"get", "/engagement/v3/callbacks/find"},
        {"get", "/engagement/v3/callbacks/availability/{service}"},
        {"get", "/engagement/v3/callbacks/open-for/{service}"},
        {"get", "/engagement/v3/callbacks/queue-status/{service}"},
        {"get", "/engagement/v3/estimated-wait-time"},
        {"post", "/engagement/v3/call-in/requests/create"},
        {"post", "/engagement/v3/statistics/operations/get-statistic-ex"},
        {"get", "/engagement/v3/openapi.json"},
        {"put", "/ges/api/v1/services/{name}"},
        {"get", "/ges/api/v1/services/{name}"},
        {"delete", "/ges/api/v1/services/{name}"},
        {"post", "/ges/api/v1/keys"},
        {"get", "/ges/api/v1/keys"},
        {"delete", "/ges/api/v1/keys/{keyId}"},
        {"put", "/ges/api/v1/call-in-groups/{name}"},
        {"get", "/ges/api/v1/call-in-groups/{name}"},
        {"delete", "/ges/api/v1/call-in-groups/{name}"},
        {"get", "/ges/api/v1/callbacks"},
        {"get", "/ges/api/v1/callbacks/export"},
        {"post", "/ges/api/v1/gdpr/erase"},
        {"post", "/ges/api/v1/gdpr/export"},
        {"get", "/healthz"},
        {"get", "/readyz"},
        {"get", "/metrics"},
    };
    eg_json_t *doc = fetch_doc();
    eg_json_t *paths = eg_json_get(doc, "paths");
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        eg_json_t *item = eg_json_get(paths, routes[i].path);
        cr_expect(item && eg_json_get(item, routes[i].method), "%s %s is not in the document",
                  routes[i].method, routes[i].path);
    }
    eg_json_free(doc);
}
