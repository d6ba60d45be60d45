/* The admin API. PUT /ges/api/v1/services/{name} validates and stores a callback service
 * configuration through the scheduler (which owns configuration) and answers 201 when it
 * created the service, 200 when it updated it; GET returns the effective configuration. */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "sched_client.h"

static int service_route(api_t *api, eg_http_req_t *req, const api_identity_t *who,
                         const char *name)
{
    const char *method = eg_http_method(req);
    bool put = strcmp(method, "PUT") == 0;
    if (!put && strcmp(method, "GET") != 0) {
        eg_http_add_header(req, "Allow", "GET, PUT");
        eg_http_reply_envelope(req, 405, "method not allowed: use GET or PUT", NULL);
        return 405;
    }
    uint8_t *buf;
    size_t n;
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
        n = eg__service_put_request__get_packed_size(&pr);
        buf = eg_xmalloc(n);
        eg__service_put_request__pack(&pr, buf);
        free(pr.config_json);
    } else {
        Eg__ServiceRequest gr = EG__SERVICE_REQUEST__INIT;
        gr.tenant_id = (char *)who->tenant;
        gr.name = (char *)name;
        n = eg__service_request__get_packed_size(&gr);
        buf = eg_xmalloc(n);
        eg__service_request__pack(&gr, buf);
    }
    void *raw = NULL;
    size_t raw_len = 0;
    eg_status_t st = sched_call(api, put ? EG_SUBJ_SERVICE_PUT : EG_SUBJ_SERVICE_GET, buf, n,
                                eg_http_corr_id(req), &raw, &raw_len);
    free(buf);
    if (st != EG_OK) {
        eg_http_reply_error(req, EG_EUNAVAIL, "service temporarily unavailable; retry");
        return 503;
    }
    Eg__ServiceReply *r = eg__service_reply__unpack(NULL, raw_len, raw);
    free(raw);
    if (!r || !r->status) {
        if (r)
            eg__service_reply__free_unpacked(r, NULL);
        eg_http_reply_error(req, EG_EINTERNAL, "internal error");
        return 500;
    }
    int code;
    st = (eg_status_t)r->status->code;
    if (st == EG_OK) {
        char jerr[128];
        eg_json_t *cfg =
            eg_json_parse(r->config_json, strlen(r->config_json), 0, jerr, sizeof jerr);
        code = put && r->created ? 201 : 200;
        eg_http_reply_envelope(req, code, code == 201 ? "Created" : "OK", cfg);
        if (put)
            eg_log_info("service %s %s", name, code == 201 ? "created" : "updated");
    } else {
        code = eg_status_http(st);
        eg_http_reply_error(req, st, *r->status->message ? r->status->message : eg_status_str(st));
    }
    eg__service_reply__free_unpacked(r, NULL);
    return code;
}

int admin_route(eg_http_req_t *req, void *arg)
{
    api_t *api = arg;
    const char *rest = eg_http_path(req) + strlen("/ges/api/v1");
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
