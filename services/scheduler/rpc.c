/* Decoding of bus requests, dispatch to the operation, encoding of the reply. Every request
 * gets an answer, even an undecodable one (EG_EPROTO), so the api never waits for a timeout
 * because of a bad message; every handler answers through eg_bus_reply, which turns an answer
 * too large for the bus into an EG_ETOOBIG status rather than dropping it. */
#include "queries.h"
#include "rpc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "callbacks.h"
#include "callin.h"
#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "engage/timeutil.h"
#include "gdpr.h"
#include "keys_admin.h"
#include "queue_stats.h"
#include "scheduler.h"
#include "services.h"

static eg_status_t handle_auth(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__AuthRequest *req =
        eg__auth_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    auth_result_t res;
    char key_id[32] = "";
    eg_status_t st = auth_check(w->s, w->pg, req->key, &res, key_id, sizeof key_id);
    Eg__Status s = EG__STATUS__INIT;
    Eg__AuthReply r = EG__AUTH_REPLY__INIT;
    s.code = (int32_t)st;
    r.status = &s;
    if (st == EG_OK) {
        r.tenant_id = res.tenant;
        r.role = res.role;
        r.rate_limit = res.rate_limit;
        r.key_id = key_id;
    }
    eg_bus_reply(bus, msg, &r.base);
    eg__auth_request__free_unpacked(req, NULL);
    return (st == EG_EAUTH || st == EG_EPROTO) ? EG_OK : st;
}

static eg_status_t handle_callback_op(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg, const char *op)
{
    Eg__CallbackReply r = EG__CALLBACK_REPLY__INIT;
    if (strcmp(op, "create") == 0) {
        Eg__CreateRequest *req =
            eg__create_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        cb_create(w, req, &r);
        eg__create_request__free_unpacked(req, NULL);
    } else if (strcmp(op, "reschedule") == 0) {
        Eg__RescheduleRequest *req =
            eg__reschedule_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        cb_reschedule(w, req, &r);
        eg__reschedule_request__free_unpacked(req, NULL);
    } else if (strcmp(op, "progress") == 0) {
        Eg__ProgressRequest *req =
            eg__progress_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        cb_progress(w, req, &r);
        eg__progress_request__free_unpacked(req, NULL);
    } else {
        Eg__IdRequest *req =
            eg__id_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        if (strcmp(op, "retrieve") == 0)
            cb_retrieve(w, req, &r);
        else
            cb_cancel(w, req, &r);
        eg__id_request__free_unpacked(req, NULL);
    }
    eg_bus_reply(bus, msg, &r.base);
    eg_status_t st = (eg_status_t)r.status->code;
    cb_reply_clear(&r);
    return st == EG_EPROTO ? EG_EIO : st; /* answered: not "undecodable" */
}

enum { SVC_GET, SVC_PUT, SVC_DELETE };

static eg_status_t handle_service(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg, int op)
{
    bool put = op == SVC_PUT;
    char err[512] = "";
    char *effective = NULL;
    bool created = false;
    eg_status_t st;
    if (put) {
        Eg__ServicePutRequest *req =
            eg__service_put_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        st = svc_put(w->s, w->pg, req->tenant_id, req->name, req->config_json, &created, &effective,
                     err, sizeof err);
        eg__service_put_request__free_unpacked(req, NULL);
    } else {
        Eg__ServiceRequest *req =
            eg__service_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
        if (!req)
            return EG_EPROTO;
        if (op == SVC_DELETE)
            st = svc_delete(w->s, w->pg, w->store, req->tenant_id, req->name, &effective, err,
                            sizeof err);
        else
            st = svc_get(w->s, w->pg, req->tenant_id, req->name, &effective);
        if (st == EG_ENOTFOUND)
            snprintf(err, sizeof err, "callback service '%s' does not exist", req->name);
        eg__service_request__free_unpacked(req, NULL);
    }
    Eg__Status s = EG__STATUS__INIT;
    Eg__ServiceReply r = EG__SERVICE_REPLY__INIT;
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

static eg_status_t handle_create(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_callback_op(w, bus, msg, "create");
}
static eg_status_t handle_retrieve(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_callback_op(w, bus, msg, "retrieve");
}
static eg_status_t handle_cancel(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_callback_op(w, bus, msg, "cancel");
}
static eg_status_t handle_progress(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_callback_op(w, bus, msg, "progress");
}
static eg_status_t handle_reschedule(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_callback_op(w, bus, msg, "reschedule");
}

static eg_status_t handle_find(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__FindRequest *req =
        eg__find_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!req)
        return EG_EPROTO;
    Eg__FindReply r = EG__FIND_REPLY__INIT;
    cb_find(w, req, &r);
    eg__find_request__free_unpacked(req, NULL);
    eg_bus_reply(bus, msg, &r.base);
    eg_status_t st = (eg_status_t)r.status->code;
    for (size_t i = 0; i < r.n_callbacks; i++)
        eg__callback__free_unpacked(r.callbacks[i], NULL);
    free(r.callbacks);
    if (r.status->message != protobuf_c_empty_string)
        free(r.status->message);
    free(r.status);
    return st == EG_EPROTO ? EG_EIO : st;
}

static eg_status_t handle_service_put(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_service(w, bus, msg, SVC_PUT);
}
static eg_status_t handle_service_get(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_service(w, bus, msg, SVC_GET);
}
static eg_status_t handle_service_delete(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_service(w, bus, msg, SVC_DELETE);
}

/* Every request subject and its handler. A module adds its operations here (one line each);
 * its handlers have the rpc_fn signature of rpc.h. */
static const struct {
    const char *subject;
    rpc_fn fn;
} routes[] = {
    {EG_SUBJ_AUTH, handle_auth},
    {EG_SUBJ_CREATE, handle_create},
    {EG_SUBJ_RETRIEVE, handle_retrieve},
    {EG_SUBJ_CANCEL, handle_cancel},
    {EG_SUBJ_PROGRESS, handle_progress},
    {EG_SUBJ_RESCHEDULE, handle_reschedule},
    {EG_SUBJ_FIND, handle_find},
    {EG_SUBJ_AVAILABILITY, q_availability},
    {EG_SUBJ_OPEN_FOR, q_open_for},
    {EG_SUBJ_QUEUE_STATUS, q_queue_status},
    {EG_SUBJ_EWT, q_ewt},
    {EG_SUBJ_STATS, q_stats},
    {EG_SUBJ_SERVICE_PUT, handle_service_put},
    {EG_SUBJ_SERVICE_GET, handle_service_get},
    {EG_SUBJ_SERVICE_DELETE, handle_service_delete},
    {EG_SUBJ_KEY_CREATE, keys_admin_create},
    {EG_SUBJ_KEY_LIST, keys_admin_list},
    {EG_SUBJ_KEY_REVOKE, keys_admin_revoke},
    {EG_SUBJ_CALLIN_GROUP_PUT, callin_rpc_group_put},
    {EG_SUBJ_CALLIN_GROUP_GET, callin_rpc_group_get},
    {EG_SUBJ_CALLIN_GROUP_DELETE, callin_rpc_group_delete},
    {EG_SUBJ_CALLIN_CREATE, callin_rpc_create},
    {EG_SUBJ_CALLIN_MATCH, callin_rpc_match},
    {EG_SUBJ_QSTATS_PUT, qstats_rpc_put},
    {EG_SUBJ_GDPR_ERASE, gdpr_rpc_erase},
};

void rpc_handle(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg)
{
    worker_t *w = arg;
    int64_t t0 = eg_mono_ms();
    const char *subject = eg_bus_msg_subject(msg);
    eg_log_set_corr(eg_bus_msg_corr_id(msg));
    eg_counter_inc(w->s->requests);

    /* A handler returns EG_EPROTO only when it could not decode the request and so has not
     * answered; every other status has been answered already. */
    eg_status_t st = EG_EPROTO;
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        if (strcmp(subject, routes[i].subject) == 0) {
            st = routes[i].fn(w, bus, msg);
            break;
        }
    }

    if (st == EG_EPROTO) {
        eg_log_warn("request on %s could not be decoded", subject);
        eg_bus_reply_status(bus, msg, st, "request could not be decoded");
    }
    if (st == EG_EIO || st == EG_EUNAVAIL || st == EG_EINTERNAL || st == EG_EPROTO)
        eg_counter_inc(w->s->errors);
    eg_histogram_observe(w->s->latency, (double)(eg_mono_ms() - t0) / 1000.0);
    eg_log_set_corr(NULL);
}

void rpc_config_changed(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg)
{
    (void)bus;
    sched_t *s = arg;
    Eg__ConfigChanged *m =
        eg__config_changed__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (!m)
        return;
    if (strcmp(m->kind, "service") == 0)
        svc_registry_forget(s->services, m->tenant_id, m->name[0] ? m->name : NULL);
    else if (strcmp(m->kind, "key") == 0)
        auth_forget(s, m->name);
    else if (strcmp(m->kind, "callin-group") == 0)
        callin_registry_forget(s->callin, m->tenant_id, m->name[0] ? m->name : NULL);
    eg__config_changed__free_unpacked(m, NULL);
}
