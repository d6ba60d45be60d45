/* The call-in bus handlers: engage.sched.callin.create (lend a pair), the group admin
 * operations, and engage.sched.callin.match (call.inbound: match a call to its request, route
 * it, and complete the caller's pending callbacks). Validation of what arrives on the bus
 * happens here; the Redis steps are callin_store.c's. */
#include "callin.h"
#include "callin_store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_store.h"
#include "callbacks.h"
#include "engage/ids.h"
#include "engage/json.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/names.h"
#include "engage/phone.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "engage/userdata.h"
#include "services.h"

static void set_status(Eg__CallInReply *reply, eg_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_status(Eg__CallInReply *reply, eg_status_t st, const char *fmt, ...)
{
    reply->status = eg_xmalloc(sizeof *reply->status);
    eg__status__init(reply->status);
    reply->status->code = (int32_t)st;
    if (fmt) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        reply->status->message = eg_xstrdup(msg);
    }
}

static void reply_clear(Eg__CallInReply *reply)
{
    if (reply->status) {
        if (reply->status->message != protobuf_c_empty_string)
            free(reply->status->message);
        free(reply->status);
        reply->status = NULL;
    }
    if (reply->request) {
        eg__call_in_request__free_unpacked(reply->request, NULL);
        reply->request = NULL;
    }
}

/* Returns the status for the scheduler's metrics: the one answered, except EG_EFULL for a group
 * with no free pair (answered as EG_EUNAVAIL, but it is not a failing dependency). */
static eg_status_t create(worker_t *w, const Eg__CallInCreateRequest *req, Eg__CallInReply *reply)
{
    const callin_config_t *cfg = NULL;
    if (!eg_uuid_valid(req->id) || !req->tenant_id[0]) {
        set_status(reply, EG_EINVAL, "id: the request id must be a UUID");
        return EG_EINVAL;
    }
    if (!eg_name_valid(req->group)) {
        set_status(reply, EG_EINVAL, "groupName: must be 1-%d characters A-Z a-z 0-9 _ . -",
                   CALLIN_NAME_MAX);
        return EG_EINVAL;
    }
    if (req->from_phone[0] && !eg_phone_valid(req->from_phone)) {
        set_status(reply, EG_EINVAL,
                   "fromPhoneNumber: must be an E.164 number: '+' then 8 to 15 digits");
        return EG_EINVAL;
    }
    if (strlen(req->user_data_json) > EG_USER_DATA_MAX) {
        set_status(reply, EG_EINVAL, "userData: must be at most %d bytes as JSON",
                   EG_USER_DATA_MAX);
        return EG_EINVAL;
    }
    eg_status_t st = callin_registry_get(w->s->callin, w->pg, req->tenant_id, req->group, &cfg);
    if (st == EG_ENOTFOUND) {
        set_status(reply, st, "groupName: call-in group '%s' does not exist", req->group);
        return st;
    }
    if (st != EG_OK) {
        set_status(reply, EG_EUNAVAIL, "configuration store unavailable; retry");
        return EG_EUNAVAIL;
    }
    const char *cbsvc =
        req->callback_service_id[0] ? req->callback_service_id : cfg->callback_service;
    int64_t retry_ms = 0;
    st = callin_store_allocate(w->store, w->callin_script, req->tenant_id, cfg, req->id,
                               req->from_phone, cbsvc, req->user_data_json, &reply->request,
                               &retry_ms);
    if (st == EG_OK) {
        char masked[32];
        eg_log_mask_phone(reply->request->to_phone, masked, sizeof masked);
        eg_log_info("call-in %s: group %s lends %s until %" PRId64, reply->request->id, cfg->name,
                    masked, reply->request->expires_ms);
        set_status(reply, EG_OK, NULL);
    } else if (st == EG_EUNAVAIL) {
        st = EG_EFULL;
        reply->retry_after_ms = retry_ms;
        set_status(reply, EG_EUNAVAIL,
                   "no free number in call-in group '%s': all %zu number%s%s held by live "
                   "requests; retry in %lld s",
                   cfg->name, cfg->n_numbers, cfg->n_numbers == 1 ? "" : "s",
                   cfg->use_access_codes ? " (with every access code tried)" : " are",
                   (long long)(retry_ms + 999) / 1000);
    } else {
        eg_log_error("call-in group %s: allocation failed: %s (%s)", cfg->name, eg_status_str(st),
                     eg_store_error(w->store));
        set_status(reply, EG_EUNAVAIL, "call-in store unavailable; retry");
        st = EG_EUNAVAIL;
    }
    callin_registry_release(w->s->callin, cfg);
    return st;
}

eg_status_t callin_rpc_create(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__CallInCreateRequest *req =
        eg__call_in_create_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    Eg__CallInReply r = EG__CALL_IN_REPLY__INIT;
    eg_status_t st = create(w, req, &r);
    eg__call_in_create_request__free_unpacked(req, NULL);
    eg_bus_reply(bus, msg, &r.base);
    reply_clear(&r);
    return st == EG_EPROTO ? EG_EIO : st;
}

/* The three group operations share one reply shape. */
static eg_status_t group_op(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg, char op)
{
    char err[512] = "";
    char *effective = NULL;
    bool created = false;
    eg_status_t st;
    if (op == 'p') {
        Eg__CallInGroupPutRequest *req =
            eg__call_in_group_put_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        st = callin_group_put(w->s, w->pg, req->tenant_id, req->name, req->config_json, &created,
                              &effective, err, sizeof err);
        eg__call_in_group_put_request__free_unpacked(req, NULL);
    } else {
        Eg__CallInGroupRequest *req =
            eg__call_in_group_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        if (op == 'g')
            st = callin_group_get(w->s, w->pg, req->tenant_id, req->name, &effective);
        else
            st = callin_group_delete(w->s, w->pg, req->tenant_id, req->name);
        if (st == EG_ENOTFOUND)
            snprintf(err, sizeof err, "call-in group '%s' does not exist", req->name);
        else if (st != EG_OK)
            snprintf(err, sizeof err, "configuration store unavailable; retry");
        eg__call_in_group_request__free_unpacked(req, NULL);
    }
    Eg__Status s = EG__STATUS__INIT;
    Eg__CallInGroupReply r = EG__CALL_IN_GROUP_REPLY__INIT;
    s.code = (int32_t)st;
    s.message = err;
    r.status = &s;
    r.created = created;
    if (effective)
        r.config_json = effective;
    eg_bus_reply(bus, msg, &r.base);
    free(effective);
    return st == EG_EPROTO ? EG_EIO : st;
}

eg_status_t callin_rpc_group_put(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return group_op(w, bus, msg, 'p');
}

eg_status_t callin_rpc_group_get(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return group_op(w, bus, msg, 'g');
}

eg_status_t callin_rpc_group_delete(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return group_op(w, bus, msg, 'd');
}

/* Where a matched call goes: the virtual queue of the request's callback service when that
 * service exists, else the call-in group's name. */
static void destination_of(worker_t *w, const Eg__CallInRequest *req, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", req->group);
    if (!req->callback_service_id[0])
        return;
    const svc_config_t *svc = NULL;
    if (svc_registry_get(w->s->services, w->pg, req->tenant_id, req->callback_service_id, &svc) ==
        EG_OK) {
        snprintf(out, outlen, "%s", svc->virtual_queue);
        svc_registry_release(w->s->services, svc);
    } else {
        eg_log_warn("call-in %s: callback service '%s' unknown; routing to group %s", req->id,
                    req->callback_service_id, req->group);
    }
}

static bool printable(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

static eg_status_t match(worker_t *w, const Eg__CallInMatchRequest *req, Eg__CallInMatchReply *r,
                         char *dest, size_t destlen, char *text, size_t textlen)
{
    if (!eg_uuid_valid(req->tenant_id)) {
        snprintf(text, textlen, "tenant: must be a UUID");
        return EG_EINVAL;
    }
    if (!req->call_id[0] || !printable(req->call_id, 128)) {
        snprintf(text, textlen, "call_id: 1 to 128 printable characters");
        return EG_EINVAL;
    }
    if (!printable(req->access_code, 16) || !printable(req->caller_number, 32)) {
        snprintf(text, textlen, "access_code or caller_number: too long or not printable");
        return EG_EINVAL;
    }
    eg_status_t st = EG_OK;
    if (eg_phone_valid(req->dialed_number)) {
        const char *why = NULL;
        st = callin_store_match(w->store, req->tenant_id, req->dialed_number, req->access_code,
                                req->caller_number, req->call_id, &r->request, &why);
        if (st == EG_OK) {
            r->matched = true;
            destination_of(w, r->request, dest, destlen);
            r->destination = dest;
            eg_log_info("call %s matched call-in request %s (group %s): route to %s", req->call_id,
                        r->request->id, r->request->group, dest);
        } else if (st == EG_ENOTFOUND) {
            snprintf(text, textlen, "%s", why);
            r->reason = text;
            st = EG_OK;
        } else {
            eg_log_error("call %s: call-in match failed: %s", req->call_id, eg_status_str(st));
            snprintf(text, textlen, "call-in store unavailable; retry");
            return EG_EUNAVAIL;
        }
    } else {
        snprintf(text, textlen, "dialed_number: must be an E.164 number");
        r->reason = text;
    }
    /* The customer reached us on their own: their pending callbacks are done. */
    if (eg_phone_valid(req->caller_number)) {
        eg_status_t cst = cb_customer_contacted(w, req->tenant_id, req->caller_number,
                                                &r->completed_ids, &r->n_completed_ids);
        if (cst != EG_OK) {
            eg_log_error("call %s: completing the caller's callbacks failed: %s", req->call_id,
                         eg_status_str(cst));
            snprintf(text, textlen, "callback store unavailable; retry");
            return EG_EUNAVAIL;
        }
    }
    return st;
}

eg_status_t callin_rpc_match(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__CallInMatchRequest *req =
        eg__call_in_match_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    Eg__CallInMatchReply r = EG__CALL_IN_MATCH_REPLY__INIT;
    Eg__Status s = EG__STATUS__INIT;
    char dest[160] = "", text[256] = "";
    eg_status_t st = match(w, req, &r, dest, sizeof dest, text, sizeof text);
    s.code = (int32_t)st;
    if (st != EG_OK)
        s.message = text;
    r.status = &s;
    eg_bus_reply(bus, msg, &r.base);
    if (r.request)
        eg__call_in_request__free_unpacked(r.request, NULL);
    for (size_t i = 0; i < r.n_completed_ids; i++)
        free(r.completed_ids[i]);
    free(r.completed_ids);
    eg__call_in_match_request__free_unpacked(req, NULL);
    return st == EG_EPROTO ? EG_EIO : st;
}
