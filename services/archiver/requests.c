/* Decoding of engage.archive.* requests, dispatch to history.c and gdpr.c, encoding of the
 * answer. Each worker thread has its own subscription in the queue group "archiver" and its own
 * PostgreSQL connections, so requests run in parallel and no connection is shared.
 *
 * Searches (the admin search and export, the callback finder) read through the worker's read
 * connection (ENGAGE_PG_READ_DSN), which may be a streaming standby: they see the history as
 * of the standby's replay, a moment behind the primary (docs/operations.md). GDPR erase and
 * export stay on the primary: an erase writes, and an export must hold everything of the
 * number, and it writes its audit row. */
#include "requests.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engage.pb-c.h"
#include "engage/log.h"
#include "engage/mem.h"
#include "engage/subjects.h"
#include "history.h"

static eg_status_t handle_search(arch_worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    char why[160] = "";
    Eg__ArchiveSearchReply *r = NULL;
    Eg__ArchiveSearchRequest *req =
        eg__archive_search_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    if (req == NULL)
        return EG_EPROTO;
    eg_status_t st =
        history_search(w->read_pg != NULL ? w->read_pg : w->pg, req, &r, why, sizeof why);
    eg__archive_search_request__free_unpacked(req, NULL);
    if (st != EG_OK) {
        eg_bus_reply_status(bus, msg, st, why);
        return st;
    }
    r->status = eg_xmalloc(sizeof *r->status);
    eg__status__init(r->status);
    eg_bus_reply(bus, msg, &r->base);
    eg__archive_search_reply__free_unpacked(r, NULL);
    return EG_OK;
}

static eg_status_t handle_gdpr(arch_worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg, bool erase)
{
    Eg__GdprRequest *req =
        eg__gdpr_request__unpack(NULL, eg_bus_msg_len(msg), eg_bus_msg_data(msg));
    eg_status_t st;
    if (req == NULL)
        return EG_EPROTO;
    if (erase) {
        Eg__GdprEraseReply *r = gdpr_erase(&w->gdpr, w->pg, req, eg_bus_msg_corr_id(msg));
        st = (eg_status_t)r->status->code;
        eg_bus_reply(bus, msg, &r->base);
        eg__gdpr_erase_reply__free_unpacked(r, NULL);
    } else {
        Eg__GdprExportReply *r = gdpr_export(&w->gdpr, w->pg, req, eg_bus_msg_corr_id(msg));
        st = (eg_status_t)r->status->code;
        eg_bus_reply(bus, msg, &r->base);
        eg__gdpr_export_reply__free_unpacked(r, NULL);
    }
    eg__gdpr_request__free_unpacked(req, NULL);
    return st == EG_EPROTO ? EG_EIO : st;
}

static eg_status_t handle_erase(arch_worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_gdpr(w, bus, msg, true);
}

static eg_status_t handle_export(arch_worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg)
{
    return handle_gdpr(w, bus, msg, false);
}

/* Every request subject and its handler; a handler returns EG_EPROTO only when it could not
 * decode the request and so has not answered. */
static const struct {
    const char *subject;
    eg_status_t (*fn)(arch_worker_t *w, eg_bus_t *bus, eg_bus_msg_t *msg);
} routes[] = {
    {EG_SUBJ_ARCHIVE_SEARCH, handle_search},
    {EG_SUBJ_ARCHIVE_GDPR_ERASE, handle_erase},
    {EG_SUBJ_ARCHIVE_GDPR_EXPORT, handle_export},
};

void requests_handle(eg_bus_t *bus, eg_bus_msg_t *msg, void *arg)
{
    arch_worker_t *w = arg;
    const char *subject = eg_bus_msg_subject(msg);
    eg_status_t st = EG_EPROTO;
    /* Counted in before looking at stopping (both sequentially consistent): main either sees
     * this request in flight and waits, or this request sees stopping and leaves. */
    atomic_fetch_add(&w->gate->inflight, 1);
    if (atomic_load(&w->gate->stopping)) {
        eg_bus_reply_status(bus, msg, EG_EUNAVAIL, "the archiver is stopping; retry");
        atomic_fetch_sub(&w->gate->inflight, 1);
        return;
    }
    eg_log_set_corr(eg_bus_msg_corr_id(msg));
    eg_counter_inc(w->requests);
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
        eg_counter_inc(w->errors);
    eg_log_set_corr(NULL);
    atomic_fetch_sub(&w->gate->inflight, 1);
}
