/* The scheduler's half of a GDPR erase: cancel, then delete, a number's callbacks in Redis.
 *
 * The number's callbacks are found through its hash (STORE_NUMBER: every callback booked
 * for the number, kept as long as the longest-lived of them). Each active one is
 * cancelled exactly as the API cancels (compare-and-set, an event in the outbox, the voice
 * platform told through the relay and the ors-bridge); the cancel events reach the archiver,
 * which drops them because the erase tombstoned those ids first (services/archiver/gdpr.c). Then
 * one pipelined round trip deletes the records, their entries in the services' due, queue and
 * watch ZSETs, and the number's hash (its index, live counts and per-day history). The deletes are
 * not one atomic step; they do not need to be: each is idempotent, and an erase that fails half-way
 * is repeated.
 *
 * A callback with an agent (PROCESSING) cannot be cancelled, so the erase refuses (EG_ECONFLICT)
 * before changing anything; it is repeated once the call has ended.
 *
 * Call-in requests that name the number as their caller are not indexed by number: the erase
 * finds them with a SCAN of the tenant's request keys (they live minutes to at most 24 hours,
 * so there are few) and deletes each with its (number, code) pair (callin_store.c). */
#include "gdpr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "callback_store.h"
#include "callbacks.h"
#include "callin_store.h"
#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"

#define GDPR_SCAN_MAX 10000 /* ids of one number considered per request */

static void reply_send(eg_bus_t *bus, eg_bus_msg_t *msg, Eg__GdprEraseReply *r, eg_status_t st,
                       const char *text)
{
    Eg__Status s = EG__STATUS__INIT;
    s.code = (int32_t)st;
    s.message = (char *)(text ? text : "");
    r->status = &s;
    eg_bus_reply(bus, msg, &r->base);
    r->status = NULL;
}

/* Did the callback reach COMPLETED (or vanish)? A cancel refused as "not cancellable" means
 * that, or that an agent took it meanwhile. */
static bool completed_now(worker_t *w, const char *tenant, const char *id)
{
    Eg__Callback *cb = NULL;
    eg_status_t st = cb_store_get(w->store, tenant, id, &cb, NULL, NULL);
    bool done = st == EG_ENOTFOUND || (st == EG_OK && cb->state == EG__STATE__STATE_COMPLETED);
    if (cb != NULL)
        eg__callback__free_unpacked(cb, NULL);
    return done;
}

eg_status_t gdpr_rpc_erase(worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    Eg__GdprRequest *req =
        eg__gdpr_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (req == NULL)
        return EG_EPROTO;
    Eg__GdprEraseReply r = EG__GDPR_ERASE_REPLY__INIT;
    char **ids = eg_xcalloc(GDPR_SCAN_MAX, sizeof *ids);
    Eg__Callback **cbs = eg_xcalloc(GDPR_SCAN_MAX, sizeof *cbs);
    char why[256] = "", masked[24];
    int n = 0;
    eg_log_mask_phone(req->phone, masked, sizeof masked);

    eg_status_t st = EG_EINVAL;
    if (!req->tenant_id[0] || !req->phone[0]) {
        snprintf(why, sizeof why, "tenant_id and phone are required");
        goto out;
    }
    st = cb_store_phone_ids(w->store, req->tenant_id, req->phone, GDPR_SCAN_MAX, ids, &n);
    for (int i = 0; st == EG_OK && i < n; i++) {
        eg_status_t g = cb_store_get(w->store, req->tenant_id, ids[i], &cbs[i], NULL, NULL);
        if (g != EG_OK && g != EG_ENOTFOUND)
            st = g;
        else if (g == EG_OK && cbs[i]->state == EG__STATE__STATE_PROCESSING) {
            st = EG_ECONFLICT;
            snprintf(why, sizeof why,
                     "phoneNumber: callback %s of this number is with an agent now; erase again "
                     "when the call has ended",
                     ids[i]);
        }
    }
    if (st != EG_OK) {
        if (!why[0])
            snprintf(why, sizeof why, "callback store unavailable");
        goto out;
    }
    if (!req->dry_run) {
        /* Cancel the active ones: the ordinary cancel, so the voice platform is told. */
        for (int i = 0; st == EG_OK && i < n; i++) {
            if (cbs[i] == NULL || cbs[i]->state == EG__STATE__STATE_COMPLETED)
                continue;
            Eg__IdRequest ir = EG__ID_REQUEST__INIT;
            Eg__CallbackReply cr = EG__CALLBACK_REPLY__INIT;
            ir.tenant_id = req->tenant_id;
            ir.id = ids[i];
            cb_cancel(w, &ir, &cr);
            eg_status_t c = (eg_status_t)cr.status->code;
            if (c == EG_ESTATE && completed_now(w, req->tenant_id, ids[i]))
                c = EG_ENOTFOUND; /* it ended meanwhile: nothing to cancel */
            if (c == EG_OK) {
                r.cancelled++;
            } else if (c == EG_ESTATE || c == EG_ECONFLICT) {
                st = EG_ECONFLICT;
                snprintf(why, sizeof why,
                         "phoneNumber: callback %s of this number is changing or with an agent; "
                         "erase again shortly",
                         ids[i]);
            } else if (c != EG_ENOTFOUND) {
                st = c;
                snprintf(why, sizeof why, "callback store unavailable");
            }
            cb_reply_clear(&cr);
        }
        int callin = 0;
        if (st == EG_OK) {
            st = callin_store_erase_caller(w->store, req->tenant_id, req->phone, &callin);
            if (st != EG_OK)
                snprintf(why, sizeof why, "callback store unavailable");
            else if (callin)
                eg_log_info("GDPR erase of %s: %d call-in request(s) deleted", masked, callin);
        }
        if (st == EG_OK) {
            st = cb_store_erase_number(w->store, req->tenant_id, req->phone, ids, cbs, n,
                                       &r.redis_deleted);
            if (st != EG_OK)
                snprintf(why, sizeof why, "callback store unavailable");
        }
    }
    if (st == EG_OK) {
        r.ids = ids;
        r.n_ids = (size_t)n;
        if (!req->dry_run)
            eg_log_info("GDPR erase of %s: %d callback(s) in Redis, %d cancelled, %d deleted",
                        masked, n, r.cancelled, r.redis_deleted);
    }
out:
    if (st != EG_OK)
        eg_log_warn("GDPR erase of %s%s: %s (%s)", masked, req->dry_run ? " (dry run)" : "",
                    eg_status_str(st), why);
    reply_send(bus, msg, &r, st, st == EG_OK ? NULL : why);
    for (int i = 0; i < n; i++) {
        free(ids[i]);
        if (cbs[i] != NULL)
            eg__callback__free_unpacked(cbs[i], NULL);
    }
    free(ids);
    free(cbs);
    eg__gdpr_request__free_unpacked(req, NULL);
    return st == EG_EPROTO ? EG_EIO : st;
}
