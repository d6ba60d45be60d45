/* Click-to-Call-In on the api. The create endpoint validates the body (each rejection names the
 * field), picks the request id (so a create the api retries after a lost answer allocates
 * nothing new), asks the scheduler, and answers in the v3 envelope: 200 with the number to call
 * (and the access code), 404 for an unknown group, 503 with Retry-After when every pair of the
 * group is held. The scheduler owns the groups and the allocation (services/scheduler/callin.c);
 * the admin routes of call-in groups are a thin pass-through to it, like services in admin.c. */
#include "callin_v3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "callbacks_v3.h"
#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/names.h"
#include "engage/phone.h"
#include "engage/subjects.h"
#include "engage/userdata.h"
#include "sched_client.h"
#include "validate.h"

#define CALLBACK_SERVICE_ID_MAX 128

/* An optional string member: absent or null leaves *out NULL. */
static bool opt_string(const eg_json_t *root, const char *key, const char **out)
{
    eg_json_t *v = eg_json_get(root, key);
    *out = NULL;
    if (!v || eg_json_is_null(v))
        return true;
    if (!eg_json_is_string(v))
        return false;
    *out = eg_json_str(v);
    return true;
}

/* Fill cr (strings malloc'd; release with create_clear) from the body. EG_EINVAL with err
 * naming the field. */
static eg_status_t parse_create(const char *body, size_t len, Eg__CallInCreateRequest *cr,
                                char *err, size_t errlen)
{
    eg_status_t st = EG_EINVAL;
    char jerr[200];
    const char *s;
    eg_json_t *root = NULL;
    if (len == 0) {
        snprintf(err, errlen, "body: a JSON object is required");
        goto out;
    }
    root = eg_json_parse(body, len, API_MAX_JSON_DEPTH, jerr, sizeof jerr);
    if (!root) {
        snprintf(err, errlen, "body: %s", jerr);
        goto out;
    }
    if (!eg_json_is_object(root)) {
        snprintf(err, errlen, "body: must be a JSON object");
        goto out;
    }

    eg_json_t *v = eg_json_get(root, "groupName");
    if (!v || eg_json_is_null(v)) {
        snprintf(err, errlen, "groupName: is required");
        goto out;
    }
    if (!eg_json_is_string(v) || !eg_name_valid_n(eg_json_str(v), eg_json_str_len(v))) {
        snprintf(err, errlen, "groupName: must be a string of " EG_NAME_RULE);
        goto out;
    }
    cr->group = eg_xstrdup(eg_json_str(v));

    if (!opt_string(root, "fromPhoneNumber", &s) || (s && !eg_phone_valid(s))) {
        snprintf(err, errlen,
                 "fromPhoneNumber: must be an E.164 number: '+' then 8 to 15 digits, e.g. "
                 "+15551234567");
        goto out;
    }
    if (s)
        cr->from_phone = eg_xstrdup(s);

    if (!opt_string(root, "callbackServiceId", &s) ||
        (s && (!*s || strlen(s) > CALLBACK_SERVICE_ID_MAX))) {
        snprintf(err, errlen, "callbackServiceId: must be a string of 1 to %d characters",
                 CALLBACK_SERVICE_ID_MAX);
        goto out;
    }
    if (s)
        cr->callback_service_id = eg_xstrdup(s);

    v = eg_json_get(root, "userData");
    if (v && !eg_json_is_null(v)) {
        if (!eg_json_is_object(v)) {
            snprintf(err, errlen, "userData: must be a JSON object");
            goto out;
        }
        size_t n;
        char *text = eg_json_dump(v, &n);
        if (n > EG_USER_DATA_MAX) {
            free(text);
            snprintf(err, errlen, "userData: must be at most %d bytes as JSON (got %zu)",
                     EG_USER_DATA_MAX, n);
            goto out;
        }
        cr->user_data_json = text;
    }
    st = EG_OK;
out:
    eg_json_free(root);
    return st;
}

static void create_clear(Eg__CallInCreateRequest *cr)
{
    char **fields[] = {&cr->group, &cr->from_phone, &cr->callback_service_id, &cr->user_data_json};
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        if (*fields[i] && *fields[i] != protobuf_c_empty_string)
            free(*fields[i]);
        *fields[i] = (char *)protobuf_c_empty_string;
    }
}

static eg_json_t *request_json(const Eg__CallInRequest *r)
{
    eg_json_t *d = eg_json_object();
    eg_json_set_str(d, "id", r->id);
    eg_json_set_str(d, "toPhoneNumber", r->to_phone);
    eg_json_set_str(d, "groupName", r->group);
    eg_json_set_int(d, "expirationTime", r->expires_ms);
    if (r->access_code[0])
        eg_json_set_str(d, "accessCode", r->access_code);
    if (r->from_phone[0])
        eg_json_set_str(d, "fromPhoneNumber", r->from_phone);
    if (r->callback_service_id[0])
        eg_json_set_str(d, "callbackServiceId", r->callback_service_id);
    return d;
}

static int handle_create(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    const char *body;
    size_t len;
    char err[256];
    eg_status_t st = eg_http_body(req, &body, &len);
    if (st != EG_OK) {
        eg_http_reply_error(req, st == EG_ETOOBIG ? st : EG_EINVAL,
                            st == EG_ETOOBIG ? "body: larger than the 256 KiB limit"
                                             : "body: could not be read");
        return eg_status_http(st == EG_ETOOBIG ? st : EG_EINVAL);
    }
    Eg__CallInCreateRequest cr = EG__CALL_IN_CREATE_REQUEST__INIT;
    if (parse_create(body, len, &cr, err, sizeof err) != EG_OK) {
        create_clear(&cr);
        eg_http_reply_error(req, EG_EINVAL, err);
        return 400;
    }
    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    cr.id = id;
    cr.tenant_id = (char *)who->tenant;
    int code;
    Eg__CallInReply *r =
        sched_ask(api, req, EG_SUBJ_CALLIN_CREATE, &cr.base, &eg__call_in_reply__descriptor, &code);
    cr.id = (char *)protobuf_c_empty_string;
    cr.tenant_id = (char *)protobuf_c_empty_string;
    create_clear(&cr);
    if (!r)
        return code;
    if (r->status->code == EG_OK && r->request) {
        eg_http_reply_envelope(req, 200, "OK", request_json(r->request));
        code = 200;
    } else {
        if (r->retry_after_ms > 0) {
            char secs[24];
            snprintf(secs, sizeof secs, "%lld", (long long)(r->retry_after_ms + 999) / 1000);
            eg_http_add_header(req, "Retry-After", secs);
        }
        code = sched_reply_status(req, r->status);
    }
    eg__call_in_reply__free_unpacked(r, NULL);
    return code;
}

int v3_callin(eg_http_req_t *req, void *arg)
{
    api_t *api = arg;
    const char *op = eg_http_path(req) + strlen("/engagement/v3/call-in");
    if (strcmp(op, "/requests/create") != 0)
        return v3_unknown(req, arg);
    if (strcmp(eg_http_method(req), "POST") != 0) {
        eg_http_add_header(req, "Allow", "POST");
        eg_http_reply_envelope(req, 405, "method not allowed: use POST", NULL);
        return 405;
    }
    api_identity_t who;
    if (!api_begin(api, req, &who, false))
        return 400;
    return handle_create(api, req, &who);
}

/* ---- admin: /ges/api/v1/call-in-groups/{name} ------------------------------------------- */

int admin_callin_group(api_t *api, eg_http_req_t *req, const api_identity_t *who, const char *name)
{
    const char *method = eg_http_method(req);
    bool put = strcmp(method, "PUT") == 0, get = strcmp(method, "GET") == 0,
         del = strcmp(method, "DELETE") == 0;
    if (!put && !get && !del) {
        eg_http_add_header(req, "Allow", "GET, PUT, DELETE");
        eg_http_reply_envelope(req, 405, "method not allowed: use GET, PUT or DELETE", NULL);
        return 405;
    }
    if (!eg_name_valid(name)) {
        eg_http_reply_error(req, EG_EINVAL, "name: a call-in group name is " EG_NAME_RULE);
        return 400;
    }
    int code;
    Eg__CallInGroupReply *r;
    if (put) {
        const char *body;
        size_t len;
        eg_status_t st = eg_http_body(req, &body, &len);
        if (st != EG_OK) {
            eg_http_reply_error(req, st, "body: could not be read or is over 256 KiB");
            return eg_status_http(st);
        }
        Eg__CallInGroupPutRequest pr = EG__CALL_IN_GROUP_PUT_REQUEST__INIT;
        pr.tenant_id = (char *)who->tenant;
        pr.name = (char *)name;
        pr.config_json = eg_xstrndup(body, len);
        r = sched_ask_ok(api, req, EG_SUBJ_CALLIN_GROUP_PUT, &pr.base,
                         &eg__call_in_group_reply__descriptor, &code);
        free(pr.config_json);
    } else {
        Eg__CallInGroupRequest gr = EG__CALL_IN_GROUP_REQUEST__INIT;
        gr.tenant_id = (char *)who->tenant;
        gr.name = (char *)name;
        r = sched_ask_ok(api, req, get ? EG_SUBJ_CALLIN_GROUP_GET : EG_SUBJ_CALLIN_GROUP_DELETE,
                         &gr.base, &eg__call_in_group_reply__descriptor, &code);
    }
    if (!r)
        return code;
    if (del) {
        eg_json_t *data = eg_json_object();
        eg_json_set_str(data, "name", name);
        eg_http_reply_envelope(req, 200, "Deleted", data);
        eg_log_info("call-in group %s deleted", name);
        code = 200;
    } else {
        char jerr[128];
        eg_json_t *cfg =
            eg_json_parse(r->config_json, strlen(r->config_json), 0, jerr, sizeof jerr);
        code = put && r->created ? 201 : 200;
        eg_http_reply_envelope(req, code, code == 201 ? "Created" : "OK", cfg);
        if (put)
            eg_log_info("call-in group %s %s", name, code == 201 ? "created" : "updated");
    }
    eg__call_in_group_reply__free_unpacked(r, NULL);
    return code;
}
