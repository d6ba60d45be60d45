/* The v3 callback endpoints. Each handler: common checks (api_begin), body validation,
 * one request to the scheduler, and the answer in the v3 envelope. The api itself keeps no
 * state; the callback id is chosen here so that a create retried after a lost answer is
 * recognised by the scheduler and creates nothing new. */
#include "callbacks_v3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "engage.pb-c.h"
#include "engage/ids.h"
#include "engage/log.h"
#include "engage/phone.h"
#include "engage/states.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "history_client.h"
#include "sched_client.h"
#include "queries_v3.h"
#include "validate.h"

/* Read the body, answering 413 when it is too large. */
static bool read_body(eg_http_req_t *req, const char **body, size_t *len)
{
    eg_status_t st = eg_http_body(req, body, len);
    if (st == EG_ETOOBIG) {
        eg_http_reply_error(req, st, "body: larger than the 256 KiB limit");
        return false;
    }
    if (st != EG_OK) {
        eg_http_reply_error(req, EG_EINVAL, "body: could not be read");
        return false;
    }
    return true;
}

/* A full slot: 429 with data.slots mapping each proposed slot's UTC start to its free places
 * (GES's shape). */
static int reply_full(eg_http_req_t *req, const Eg__CallbackReply *r)
{
    eg_json_t *data = eg_json_object(), *slots = eg_json_object();
    for (size_t i = 0; i < r->n_proposals; i++) {
        char iso[EG_ISO_LEN + 1];
        eg_time_format_iso(r->proposals[i]->start_ms, iso);
        eg_json_set_int(slots, iso, r->proposals[i]->free);
    }
    eg_json_set(data, "slots", slots);
    eg_http_reply_envelope(req, 429, r->status->message, data);
    return 429;
}

static int handle_create(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    const char *body;
    size_t len;
    char err[256];
    if (!read_body(req, &body, &len))
        return 413;
    Eg__CreateRequest cr;
    if (api_parse_create(body, len, &cr, err, sizeof err) != EG_OK) {
        eg_http_reply_error(req, EG_EINVAL, err);
        return 400;
    }
    const char *idem = eg_http_header(req, "Idempotency-Key");
    if (idem && (strlen(idem) == 0 || strlen(idem) > 128)) {
        api_create_request_clear(&cr);
        eg_http_reply_error(req, EG_EINVAL, "Idempotency-Key: must be 1 to 128 characters");
        return 400;
    }
    char id[EG_UUID_STR_LEN + 1];
    eg_uuid_v7_str(id);
    cr.id = id;
    cr.idempotency_key = (char *)(idem ? idem : protobuf_c_empty_string);
    cr.tenant_id = (char *)who->tenant;
    cr.origin = EG__ORIGIN__ORIGIN_API;
    int code;
    Eg__CallbackReply *r =
        sched_ask(api, req, EG_SUBJ_CREATE, &cr.base, &eg__callback_reply__descriptor, &code);
    cr.id = (char *)protobuf_c_empty_string;
    cr.tenant_id = (char *)protobuf_c_empty_string;
    cr.idempotency_key = (char *)protobuf_c_empty_string;
    api_create_request_clear(&cr);
    if (!r)
        return code;
    eg_status_t st = (eg_status_t)r->status->code;
    if (st == EG_OK && r->callback) {
        eg_json_t *data = eg_json_object();
        eg_json_set_str(data, "id", r->callback->id);
        eg_http_reply_envelope(req, 200, "OK", data);
        code = 200;
    } else if (st == EG_EFULL) {
        code = reply_full(req, r);
    } else {
        code = sched_reply_status(req, r->status);
    }
    eg__callback_reply__free_unpacked(r, NULL);
    return code;
}

static eg_json_t *callback_json(const Eg__CallbackReply *r)
{
    const Eg__Callback *cb = r->callback;
    char iso[EG_ISO_LEN + 1];
    eg_json_t *d = eg_json_object();
    eg_json_set_str(d, "id", cb->id);
    eg_time_format_iso(cb->desired_time_ms, iso);
    eg_json_set_str(d, "desiredTime", iso);
    eg_json_set_str(d, "callbackState", eg_state_name(cb->state));
    if (cb->state == EG__STATE__STATE_COMPLETED)
        eg_json_set_str(d, "callbackReason", eg_reason_name(cb->reason));
    eg_json_set_str(d, "phoneNumber", cb->phone);
    if (cb->state == EG__STATE__STATE_QUEUED || cb->state == EG__STATE__STATE_ROUTING ||
        cb->state == EG__STATE__STATE_PROCESSING) {
        eg_json_set_int(d, "positionInQueue", r->position_in_queue);
        eg_json_set_int(d, "estimatedWaitTime", r->estimated_wait_s);
    }
    /* Engage extensions. */
    eg_json_set_str(d, "serviceName", cb->service);
    eg_time_format_iso(cb->created_ms, iso);
    eg_json_set_str(d, "createdTime", iso);
    eg_json_set_int(d, "attempts", cb->attempts);
    eg_json_set_int(d, "priority", cb->priority);
    static const char *const origins[] = {"api", "ui", "ivr", "call-in"};
    eg_json_set_str(d, "origin", (unsigned)cb->origin < 4 ? origins[cb->origin] : "api");
    /* Each dial attempt with its latest voice-platform result. */
    eg_json_t *log = eg_json_array();
    for (size_t i = 0; i < cb->n_attempt_log; i++) {
        const Eg__Attempt *a = cb->attempt_log[i];
        eg_json_t *o = eg_json_object();
        eg_json_set_int(o, "attempt", a->number);
        eg_time_format_iso(a->dialed_ms, iso);
        eg_json_set_str(o, "dialedTime", iso);
        if (a->ended_ms) {
            eg_time_format_iso(a->ended_ms, iso);
            eg_json_set_str(o, "endedTime", iso);
        }
        if (a->result && *a->result)
            eg_json_set_str(o, "result", a->result);
        eg_json_set_bool(o, "customerAnswered", a->answered);
        eg_json_append(log, o);
    }
    eg_json_set(d, "attemptLog", log);
    return d;
}

static int handle_by_id(api_t *api, eg_http_req_t *req, const api_identity_t *who,
                        const char *subject, bool full)
{
    const char *body;
    size_t len;
    char err[256], id[EG_UUID_STR_LEN + 1];
    if (!read_body(req, &body, &len))
        return 413;
    if (api_parse_id(body, len, id, err, sizeof err) != EG_OK) {
        eg_http_reply_error(req, EG_EINVAL, err);
        return 400;
    }
    Eg__IdRequest ir = EG__ID_REQUEST__INIT;
    ir.tenant_id = (char *)who->tenant;
    ir.id = id;
    int code;
    Eg__CallbackReply *r =
        sched_ask(api, req, subject, &ir.base, &eg__callback_reply__descriptor, &code);
    if (!r)
        return code;
    if (r->status->code == EG_OK && r->callback) {
        eg_json_t *data;
        if (full) {
            data = callback_json(r);
        } else {
            data = eg_json_object();
            eg_json_set_str(data, "id", r->callback->id);
        }
        eg_http_reply_envelope(req, 200, "OK", data);
        code = 200;
    } else {
        code = sched_reply_status(req, r->status);
    }
    eg__callback_reply__free_unpacked(r, NULL);
    return code;
}

static int handle_reschedule(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    const char *body;
    size_t len;
    char err[256], id[EG_UUID_STR_LEN + 1];
    int64_t when = 0;
    if (!read_body(req, &body, &len))
        return 413;
    if (api_parse_reschedule(body, len, id, &when, err, sizeof err) != EG_OK) {
        eg_http_reply_error(req, EG_EINVAL, err);
        return 400;
    }
    Eg__RescheduleRequest rr = EG__RESCHEDULE_REQUEST__INIT;
    rr.tenant_id = (char *)who->tenant;
    rr.id = id;
    rr.desired_time_ms = when;
    int code;
    Eg__CallbackReply *r =
        sched_ask(api, req, EG_SUBJ_RESCHEDULE, &rr.base, &eg__callback_reply__descriptor, &code);
    if (!r)
        return code;
    if (r->status->code == EG_OK && r->callback) {
        char iso[EG_ISO_LEN + 1];
        eg_json_t *data = eg_json_object();
        eg_json_set_str(data, "id", r->callback->id);
        eg_time_format_iso(r->callback->desired_time_ms, iso);
        eg_json_set_str(data, "desiredTime", iso);
        eg_http_reply_envelope(req, 200, "OK", data);
        code = 200;
    } else if (r->status->code == EG_EFULL) {
        code = reply_full(req, r);
    } else {
        code = sched_reply_status(req, r->status);
    }
    eg__callback_reply__free_unpacked(r, NULL);
    return code;
}

/* Read an optional integer query parameter in [min, max]. */
static bool query_int(eg_http_req_t *req, const char *name, int min, int max, int *out)
{
    char v[24], msg[128];
    eg_status_t st = eg_http_query_param(req, name, v, sizeof v);
    if (st == EG_ENOTFOUND)
        return true;
    char *end = NULL;
    long n = st == EG_OK ? strtol(v, &end, 10) : 0;
    if (st != EG_OK || !*v || *end || n < min || n > max) {
        snprintf(msg, sizeof msg, "%s: must be an integer from %d to %d", name, min, max);
        eg_http_reply_error(req, EG_EINVAL, msg);
        return false;
    }
    *out = (int)n;
    return true;
}

static int handle_find(api_t *api, eg_http_req_t *req, const api_identity_t *who)
{
    char phone[40], service[80] = "", state[24] = "";
    int limit = 20, offset = 0, st_code = 0;
    if (eg_http_query_param(req, "phoneNumber", phone, sizeof phone) != EG_OK ||
        !eg_phone_valid(phone)) {
        eg_http_reply_error(req, EG_EINVAL,
                            "phoneNumber: required, an E.164 number ('+' then 8 to 15 digits)");
        return 400;
    }
    eg_status_t qs = eg_http_query_param(req, "serviceName", service, sizeof service);
    if (qs == EG_ETOOBIG) {
        eg_http_reply_error(req, EG_EINVAL, "serviceName: at most 64 characters");
        return 400;
    }
    if (eg_http_query_param(req, "state", state, sizeof state) == EG_OK && state[0]) {
        st_code = eg_state_from_name(state);
        if (st_code < 1) {
            eg_http_reply_error(req, EG_EINVAL,
                                "state: one of SCHEDULED, QUEUED, ROUTING, PROCESSING, COMPLETED");
            return 400;
        }
    }
    if (!query_int(req, "limit", 1, 100, &limit) || !query_int(req, "offset", 0, 1000, &offset))
        return 400;
    Eg__FindRequest fr = EG__FIND_REQUEST__INIT;
    fr.tenant_id = (char *)who->tenant;
    fr.phone = phone;
    fr.service = service;
    fr.state = st_code;
    fr.limit = limit;
    fr.offset = offset;
    /* Live records and history together (history_client.c). */
    history_find_t found;
    if (history_find(api, &fr, eg_http_corr_id(req), &found) != EG_OK) {
        eg_http_reply_error(req, EG_EUNAVAIL, "service temporarily unavailable; retry");
        return 503;
    }
    eg_json_t *data = eg_json_object(), *list = eg_json_array();
    for (size_t i = 0; i < found.n; i++) {
        Eg__CallbackReply one = EG__CALLBACK_REPLY__INIT;
        one.callback = found.callbacks[i];
        one.estimated_wait_s = -1;
        eg_json_append(list, callback_json(&one));
    }
    eg_json_set(data, "callbacks", list);
    eg_json_set_int(data, "total", found.total);
    eg_json_set_int(data, "limit", limit);
    eg_json_set_int(data, "offset", offset);
    if (found.partial)
        eg_json_set_bool(data, "historyUnavailable", true);
    eg_http_reply_envelope(req, 200, "OK", data);
    history_find_free(&found);
    return 200;
}

int v3_callbacks(eg_http_req_t *req, void *arg)
{
    api_t *api = arg;
    const char *path = eg_http_path(req);
    const char *op = path + strlen("/engagement/v3/callbacks");
    if (*op == '/')
        op++;
    if (strncmp(op, "availability/", 13) == 0 || strncmp(op, "open-for/", 9) == 0 ||
        strncmp(op, "queue-status/", 13) == 0)
        return v3_service_query(req, api, op);
    bool post = strcmp(op, "create") == 0 || strcmp(op, "retrieve") == 0 ||
                strcmp(op, "cancel") == 0 || strcmp(op, "reschedule") == 0;
    bool get = strcmp(op, "find") == 0;
    if (!post && !get)
        return v3_unknown(req, arg);
    if (strcmp(eg_http_method(req), post ? "POST" : "GET") != 0) {
        eg_http_add_header(req, "Allow", post ? "POST" : "GET");
        eg_http_reply_envelope(
            req, 405, post ? "method not allowed: use POST" : "method not allowed: use GET", NULL);
        return 405;
    }
    api_identity_t who;
    if (!api_begin(api, req, &who, false))
        return 400;
    if (strcmp(op, "create") == 0)
        return handle_create(api, req, &who);
    if (strcmp(op, "retrieve") == 0)
        return handle_by_id(api, req, &who, EG_SUBJ_RETRIEVE, true);
    if (strcmp(op, "reschedule") == 0)
        return handle_reschedule(api, req, &who);
    if (strcmp(op, "find") == 0)
        return handle_find(api, req, &who);
    return handle_by_id(api, req, &who, EG_SUBJ_CANCEL, false);
}

int v3_unknown(eg_http_req_t *req, void *arg)
{
    (void)arg;
    char msg[160];
    snprintf(msg, sizeof msg, "no such endpoint: %s %.100s", eg_http_method(req),
             eg_http_path(req));
    eg_http_reply_error(req, EG_ENOTFOUND, msg);
    return 404;
}
