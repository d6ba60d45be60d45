/* The admin API. PUT /ges/api/v1/services/{name} validates and stores a callback service
 * configuration through the scheduler (which owns configuration) and answers 201 when it
 * created the service, 200 when it updated it; GET returns the effective configuration.
 * POST/GET /ges/api/v1/keys and DELETE /ges/api/v1/keys/{keyId} create, list and revoke the
 * admin key's tenant's API keys. GET /ges/api/v1/callbacks[/export] and POST
 * /ges/api/v1/gdpr/{erase,export} go to history_admin.c. */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "callin_v3.h"
#include "engage.pb-c.h"
#include "engage/keys.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "history_admin.h"
#include "sched_client.h"

static int service_route(api_t *api, eg_http_req_t *req, const api_identity_t *who,
                         const char *name)
{
    const char *method = eg_http_method(req);
    bool put = strcmp(method, "PUT") == 0, del = strcmp(method, "DELETE") == 0;
    if (!put && !del && strcmp(method, "GET") != 0) {
        eg_http_add_header(req, "Allow", "GET, PUT, DELETE");
        eg_http_reply_envelope(req, 405, "method not allowed: use GET, PUT or DELETE", NULL);
        return 405;
    }
    const char *subject =
        put ? EG_SUBJ_SERVICE_PUT : (del ? EG_SUBJ_SERVICE_DELETE : EG_SUBJ_SERVICE_GET);
    int code;
    Eg__ServiceReply *r;
    if (put) {
        const char *body;
        size_t len;
        eg_status_t st = eg_http_body(req, &body, &len);
        if (st != EG_OK) {
            eg_http_reply_error(req, st, "body: could not be read or is over 256 KiB");
            return eg_status_http(st);
        }
        Eg__ServicePutRequest pr = EG__SERVICE_PUT_REQUEST__INIT;
        pr.tenant_id = (char *)who->tenant;
        pr.name = (char *)name;
        pr.config_json = eg_xstrndup(body, len);
        r = sched_ask_ok(api, req, subject, &pr.base, &eg__service_reply__descriptor, &code);
        free(pr.config_json);
    } else {
        Eg__ServiceRequest gr = EG__SERVICE_REQUEST__INIT;
        gr.tenant_id = (char *)who->tenant;
        gr.name = (char *)name;
        r = sched_ask_ok(api, req, subject, &gr.base, &eg__service_reply__descriptor, &code);
    }
    if (!r)
        return code;
    char jerr[128];
    eg_json_t *cfg = eg_json_parse(r->config_json, strlen(r->config_json), 0, jerr, sizeof jerr);
    code = put && r->created ? 201 : 200;
    eg_http_reply_envelope(req, code, code == 201 ? "Created" : (del ? "Deleted" : "OK"), cfg);
    if (put || del)
        eg_log_info("service %s %s", name, del ? "deleted" : (code == 201 ? "created" : "updated"));
    eg__service_reply__free_unpacked(r, NULL);
    return code;
}

/* ---- API keys: POST/GET /ges/api/v1/keys, DELETE /ges/api/v1/keys/{keyId} ----
 * The api draws the new key (eg_key_generate) and the scheduler stores its hash: a create that
 * sched_call retries after a lost answer carries the same key and creates nothing new. The key
 * is in the 201 answer only; no answer ever holds a secret or a hash after that. */

#define KEY_MAX_RATE_LIMIT 1000000
#define KEY_DEFAULT_RATE_LIMIT 2000
#define KEY_MAX_NAME_LEN 128

/* A key's public record (never its secret or hash). */
static eg_json_t *key_json(const Eg__KeyInfo *k)
{
    char created[EG_ISO_LEN + 1];
    eg_time_format_iso(k->created_ms, created);
    eg_json_t *o = eg_json_object();
    eg_json_set_str(o, "keyId", k->key_id);
    eg_json_set_str(o, "role", k->role);
    eg_json_set_int(o, "rateLimit", k->rate_limit);
    eg_json_set_str(o, "createdAt", created);
    eg_json_set_bool(o, "revoked", k->revoked);
    return o;
}

/* The create body: {"role": "api"|"admin" (default "api"), "rateLimit": 0..1000000 (default
 * 2000, 0 = unlimited), "name": label}. false when the 400 naming the field has been sent. */
static bool parse_key_create(eg_http_req_t *req, Eg__KeyCreateRequest *kr, char *name,
                             size_t namelen)
{
    const char *body;
    size_t len;
    char err[192] = "";
    eg_json_t *j = NULL;
    eg_status_t st = eg_http_body(req, &body, &len);
    if (st != EG_OK) {
        eg_http_reply_error(req, st, "body: could not be read or is over 256 KiB");
        return false;
    }
    kr->role = "api";
    kr->rate_limit = KEY_DEFAULT_RATE_LIMIT;
    size_t skip = 0;
    while (skip < len &&
           (body[skip] == ' ' || body[skip] == '\t' || body[skip] == '\r' || body[skip] == '\n'))
        skip++;
    if (skip == len)
        return true; /* no body: every default */
    char jerr[128];
    j = eg_json_parse(body, len, 0, jerr, sizeof jerr);
    if (!j || !eg_json_is_object(j)) {
        snprintf(err, sizeof err, "body: must be a JSON object%s%s", j ? "" : ": ", j ? "" : jerr);
        goto out;
    }
    eg_json_t *role = eg_json_get(j, "role");
    if (role) {
        const char *r = eg_json_str(role);
        if (r && strcmp(r, "api") == 0)
            kr->role = "api";
        else if (r && strcmp(r, "admin") == 0)
            kr->role = "admin";
        else
            snprintf(err, sizeof err, "role: must be \"api\" or \"admin\"");
    }
    eg_json_t *rate = eg_json_get(j, "rateLimit");
    if (!*err && rate) {
        if (!eg_json_is_integer(rate) || eg_json_int(rate) < 0 ||
            eg_json_int(rate) > KEY_MAX_RATE_LIMIT)
            snprintf(err, sizeof err,
                     "rateLimit: must be an integer from 0 (unlimited) to %d requests/s",
                     KEY_MAX_RATE_LIMIT);
        else
            kr->rate_limit = (int32_t)eg_json_int(rate);
    }
    eg_json_t *label = eg_json_get(j, "name");
    if (!*err && label && !eg_json_is_null(label)) {
        if (!eg_json_is_string(label) || eg_json_str_len(label) > KEY_MAX_NAME_LEN)
            snprintf(err, sizeof err, "name: must be a string of at most %d characters",
                     KEY_MAX_NAME_LEN);
        else
            snprintf(name, namelen, "%s", eg_json_str(label));
    }
out:
    eg_json_free(j);
    if (*err) {
        eg_http_reply_error(req, EG_EINVAL, err);
        return false;
    }
    return true;
}

static int key_create(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    char name[KEY_MAX_NAME_LEN + 1] = "", key[EG_KEY_LEN + 1], id[EG_KEY_ID_LEN + 1];
    Eg__KeyCreateRequest kr = EG__KEY_CREATE_REQUEST__INIT;
    if (!parse_key_create(req, &kr, name, sizeof name))
        return 400;
    eg_key_generate(key, id);
    kr.tenant_id = (char *)who->tenant;
    kr.api_key = key;
    kr.name = name;
    kr.actor_key_id = (char *)who->key_id;
    int code;
    Eg__KeyReply *r =
        sched_ask_ok(api, req, EG_SUBJ_KEY_CREATE, &kr.base, &eg__key_reply__descriptor, &code);
    if (r && r->n_keys != 1) {
        eg_http_reply_error(req, EG_EINTERNAL, "internal error");
        code = 500;
    } else if (r) {
        eg_json_t *data = key_json(r->keys[0]);
        eg_json_set_str(data, "apiKey", key);
        eg_http_reply_envelope(req, 201, "Created", data);
        code = 201;
    }
    memset(key, 0, sizeof key);
    if (r)
        eg__key_reply__free_unpacked(r, NULL);
    return code;
}

static int key_list(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    Eg__KeyRequest kr = EG__KEY_REQUEST__INIT;
    kr.tenant_id = (char *)who->tenant;
    kr.actor_key_id = (char *)who->key_id;
    int code;
    Eg__KeyReply *r =
        sched_ask_ok(api, req, EG_SUBJ_KEY_LIST, &kr.base, &eg__key_reply__descriptor, &code);
    if (!r)
        return code;
    eg_json_t *data = eg_json_array();
    for (size_t i = 0; i < r->n_keys; i++)
        eg_json_append(data, key_json(r->keys[i]));
    eg_http_reply_envelope(req, 200, "OK", data);
    eg__key_reply__free_unpacked(r, NULL);
    return 200;
}

static int key_revoke(api_t *api, eg_http_req_t *req, const api_identity_t *who, const char *id)
{
    size_t len = strlen(id);
    bool ok = len == EG_KEY_ID_LEN;
    for (size_t i = 0; ok && i < len; i++)
        ok = (id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f');
    if (!ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "keyId: must be %d lower-case hexadecimal characters",
                 EG_KEY_ID_LEN);
        eg_http_reply_error(req, EG_EINVAL, msg);
        return 400;
    }
    Eg__KeyRequest kr = EG__KEY_REQUEST__INIT;
    kr.tenant_id = (char *)who->tenant;
    kr.key_id = (char *)id;
    kr.actor_key_id = (char *)who->key_id;
    int code;
    Eg__KeyReply *r =
        sched_ask_ok(api, req, EG_SUBJ_KEY_REVOKE, &kr.base, &eg__key_reply__descriptor, &code);
    if (!r)
        return code;
    eg_http_reply_envelope(req, 200, "Revoked", r->n_keys == 1 ? key_json(r->keys[0]) : NULL);
    eg__key_reply__free_unpacked(r, NULL);
    return 200;
}

/* /keys (sub "") and /keys/{keyId} (sub "/{keyId}"); admin keys only. */
static int keys_route(api_t *api, eg_http_req_t *req, const char *sub)
{
    if (*sub == '/' && strchr(sub + 1, '/')) {
        char msg[160];
        snprintf(msg, sizeof msg, "no such endpoint: %s %.100s", eg_http_method(req),
                 eg_http_path(req));
        eg_http_reply_error(req, EG_ENOTFOUND, msg);
        return 404;
    }
    api_identity_t who;
    if (!api_begin(api, req, &who, true))
        return 401;
    const char *method = eg_http_method(req);
    const char *id = *sub == '/' ? sub + 1 : "";
    if (!*id && strcmp(method, "POST") == 0)
        return key_create(api, req, &who);
    if (!*id && strcmp(method, "GET") == 0)
        return key_list(api, req, &who);
    if (*id && strcmp(method, "DELETE") == 0)
        return key_revoke(api, req, &who, id);
    eg_http_add_header(req, "Allow", *id ? "DELETE" : "GET, POST");
    eg_http_reply_envelope(
        req, 405, *id ? "method not allowed: use DELETE" : "method not allowed: use GET or POST",
        NULL);
    return 405;
}

int admin_route(eg_http_req_t *req, void *arg)
{
    api_t *api = arg;
    const char *rest = eg_http_path(req) + strlen("/ges/api/v1");
    if (strcmp(rest, "/keys") == 0 || strncmp(rest, "/keys/", 6) == 0)
        return keys_route(api, req, rest + strlen("/keys"));
    const char *callin = "/call-in-groups/";
    if (strncmp(rest, callin, strlen(callin)) == 0 && rest[strlen(callin)] &&
        !strchr(rest + strlen(callin), '/')) {
        api_identity_t who;
        if (!api_begin(api, req, &who, true))
            return 401;
        return admin_callin_group(api, req, &who, rest + strlen(callin));
    }
    /* History search and export, GDPR (history_admin.c). */
    bool history = strcmp(rest, "/callbacks") == 0 || strcmp(rest, "/callbacks/export") == 0;
    if (history || strncmp(rest, "/gdpr/", 6) == 0) {
        api_identity_t who;
        if (!api_begin(api, req, &who, true))
            return 401;
        return history ? admin_callbacks(api, req, &who, rest + strlen("/callbacks"))
                       : admin_gdpr(api, req, &who, rest + strlen("/gdpr/"));
    }
    const char *prefix = "/services/";
    if (strncmp(rest, prefix, strlen(prefix)) != 0 || !rest[strlen(prefix)] ||
        strchr(rest + strlen(prefix), '/')) {
        char msg[160];
        snprintf(msg, sizeof msg, "no such endpoint: %s %.100s", eg_http_method(req),
                 eg_http_path(req));
        eg_http_reply_error(req, EG_ENOTFOUND, msg);
        return 404;
    }
    api_identity_t who;
    if (!api_begin(api, req, &who, true))
        return 401;
    return service_route(api, req, &who, rest + strlen(prefix));
}

int admin_ui(eg_http_req_t *req, void *arg)
{
    (void)arg;
    static const char page[] =
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Engage</title></head>"
        "<body><h1>Engage</h1><p>The supervisor UI is served here. The admin API lives under "
        "<code>/ges/api/v1/</code>.</p></body></html>";
    eg_http_reply(req, 200, "text/html; charset=utf-8", page, sizeof page - 1);
    return 200;
}
